#include "daemon/audit_log.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "tests/support/audit_samples.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::kSampleBaseNs;
using testing::ReadFile;
using testing::SampleDecisionAudit;
using testing::SampleDelivery;
using testing::SampleFallbackDecision;
using testing::SampleRoutedDecision;
using testing::TempDir;

struct ReadBack {
  std::vector<std::string> decision_ids;
  std::vector<std::string> delivery_decision_ids;
  std::vector<AuditReadWarning> warnings;
  std::vector<std::pair<std::string, uint64_t>> where;  // file, line of each record
};

ReadBack ReadAll(const std::string& path) {
  ReadBack out;
  Status s = ReadAuditLog(
      path, {},
      [&](const AuditLogEntry& e) {
        if (const auto* d = std::get_if<DecisionAudit>(&e.record)) {
          out.decision_ids.push_back(d->id);
        } else {
          out.delivery_decision_ids.push_back(std::get<DeliveryAudit>(e.record).decision_id);
        }
        out.where.emplace_back(e.file, e.line);
        return true;
      },
      &out.warnings);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return out;
}

std::unique_ptr<AuditLogWriter> OpenOrDie(const AuditLogOptions& options) {
  Result<std::unique_ptr<AuditLogWriter>> w = AuditLogWriter::Open(options);
  EXPECT_TRUE(w.ok()) << w.error().message;
  return w.ok() ? std::move(*w) : nullptr;
}

DecisionAudit Decision(int i) {
  char id[64];
  std::snprintf(id, sizeof id, "20241126T194000.%06dZ-0001", i);
  return SampleDecisionAudit(id, kSampleBaseNs + i * 1000LL, SampleRoutedDecision());
}

TEST(AuditLog, WrittenRecordsReadBackInOrder) {
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  auto writer = OpenOrDie(options);
  ASSERT_TRUE(writer);
  for (int i = 0; i < 5; ++i) {
    DecisionAudit d = Decision(i);
    ASSERT_TRUE(writer->AppendDecision(d).ok());
    ASSERT_TRUE(writer->AppendDelivery(SampleDelivery(d, "payments-data", d.time_ns + 1)).ok());
  }
  EXPECT_EQ(writer->counters().records, 10u);
  EXPECT_GE(writer->counters().syncs, 1u);
  ASSERT_TRUE(writer->Close().ok());
  EXPECT_FALSE(writer->AppendDecision(Decision(9)).ok());

  ReadBack back = ReadAll(options.path);
  EXPECT_TRUE(back.warnings.empty());
  ASSERT_EQ(back.decision_ids.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(back.decision_ids[i], Decision(i).id);
    EXPECT_EQ(back.delivery_decision_ids[i], Decision(i).id);
  }
  EXPECT_EQ(back.where[3], std::make_pair(options.path, uint64_t{4}));
}

TEST(AuditLog, MissingLogIsNotFound) {
  TempDir dir;
  std::vector<AuditReadWarning> warnings;
  Status s = ReadAuditLog(
      dir.path() + "/nothing.jsonl", {}, [](const AuditLogEntry&) { return true; }, &warnings);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
}

TEST(AuditLog, SecondWriterIsRefused) {
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  auto first = OpenOrDie(options);
  Result<std::unique_ptr<AuditLogWriter>> second = AuditLogWriter::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find("in use by another writer"), std::string::npos);
  ASSERT_TRUE(first->Close().ok());
  EXPECT_TRUE(AuditLogWriter::Open(options).ok());
}

// Four writers append a bounded number of records while the log rotates every few records and a
// reader reads the whole log over and over. Every acknowledged record must be in the files
// exactly once, and every read must see at least the records acknowledged before it started.
TEST(AuditLog, RotationUnderConcurrentLoadLosesNoRecord) {
  for (auto sync : {AuditLogOptions::Sync::kEveryRecord, AuditLogOptions::Sync::kBatched}) {
    SCOPED_TRACE(sync == AuditLogOptions::Sync::kEveryRecord ? "every record" : "batched");
    TempDir dir;
    AuditLogOptions options;
    options.path = dir.path() + "/audit.jsonl";
    options.sync = sync;
    options.max_file_bytes = 16 * 1024;  // a decision record is ~3 KiB: rotate every few
    options.max_files = 0;               // keep everything: this test counts records
    auto writer = OpenOrDie(options);
    ASSERT_TRUE(writer);

    constexpr int kThreads = 4;
    constexpr int kPerThread = 150;
    std::atomic<int> acknowledged{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          DecisionAudit d = Decision(t * kPerThread + i);
          if (writer->AppendDecision(d).ok()) {
            acknowledged.fetch_add(1);
          } else {
            failed = true;
          }
        }
      });
    }
    std::atomic<int> reads{0};
    std::atomic<bool> writers_done{false};
    std::thread reader([&] {
      while (!writers_done.load()) {
        const int before = acknowledged.load();
        std::set<std::string> seen;
        size_t records = 0;
        std::vector<AuditReadWarning> warnings;
        Status s = ReadAuditLog(
            options.path, {},
            [&](const AuditLogEntry& e) {
              seen.insert(std::get<DecisionAudit>(e.record).id);
              ++records;
              return true;
            },
            &warnings);
        EXPECT_TRUE(s.ok());
        EXPECT_EQ(seen.size(), records) << "a record was read twice";
        EXPECT_GE(static_cast<int>(records), before) << "a read missed acknowledged records";
        ++reads;
      }
    });
    for (auto& th : threads) th.join();
    writers_done = true;
    reader.join();
    ASSERT_FALSE(failed);
    ASSERT_TRUE(writer->Close().ok());
    EXPECT_GE(reads.load(), 1);

    const AuditLogWriter::Counters c = writer->counters();
    EXPECT_EQ(c.records, static_cast<uint64_t>(kThreads * kPerThread));
    EXPECT_GT(c.rotations, 10u);
    EXPECT_EQ(c.errors, 0u);

    ReadBack back = ReadAll(options.path);
    EXPECT_TRUE(back.warnings.empty());
    std::multiset<std::string> ids(back.decision_ids.begin(), back.decision_ids.end());
    EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kPerThread));
    for (int i = 0; i < kThreads * kPerThread; ++i) {
      EXPECT_EQ(ids.count(Decision(i).id), 1u) << Decision(i).id;
    }
    const std::vector<std::string> files = AuditLogFiles(options.path);
    EXPECT_EQ(files.size(), c.rotations + 1);
    for (const std::string& f : files) {
      EXPECT_LE(std::filesystem::file_size(f), options.max_file_bytes) << f;
    }
    // Each writer's records are in its own order across the rotated files.
    std::map<int, int> last_index;
    for (const std::string& id : back.decision_ids) {
      const int n = std::stoi(id.substr(16, 6));
      const int thread = n / kPerThread;
      EXPECT_LT(last_index.count(thread) ? last_index[thread] : -1, n);
      last_index[thread] = n;
    }
  }
}

TEST(AuditLog, RetentionKeepsTheNewestFiles) {
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  options.max_file_bytes = 8 * 1024;
  options.max_files = 2;
  auto writer = OpenOrDie(options);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(writer->AppendDecision(Decision(i)).ok());
  ASSERT_TRUE(writer->Close().ok());
  const std::vector<std::string> files = AuditLogFiles(options.path);
  ASSERT_EQ(files.size(), 3u);  // two rotated and the current one
  EXPECT_GT(writer->counters().deleted_files, 0u);
  EXPECT_EQ(writer->counters().deleted_files + 2, writer->counters().rotations);
  ReadBack back = ReadAll(options.path);
  ASSERT_FALSE(back.decision_ids.empty());
  EXPECT_EQ(back.decision_ids.back(), Decision(39).id);
  EXPECT_LT(back.decision_ids.size(), 40u);

  // A byte limit applies across all files, and a new writer numbers on from the existing files.
  options.max_files = 0;
  options.max_total_bytes = 24 * 1024;  // the current file's 8 KiB + two rotated files
  writer = OpenOrDie(options);
  for (int i = 40; i < 60; ++i) ASSERT_TRUE(writer->AppendDecision(Decision(i)).ok());
  ASSERT_TRUE(writer->Close().ok());
  uint64_t total = 0;
  for (const std::string& f : AuditLogFiles(options.path)) total += std::filesystem::file_size(f);
  EXPECT_LE(total, options.max_total_bytes);
  back = ReadAll(options.path);
  EXPECT_EQ(back.decision_ids.back(), Decision(59).id);
  const std::vector<std::string> after = AuditLogFiles(options.path);
  ASSERT_EQ(after.size(), 3u);
  EXPECT_GT(after.front(), files.front());  // sequence numbers went on, oldest deleted
}

TEST(AuditLog, TornLastLineIsSkippedWithAWarning) {
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  auto writer = OpenOrDie(options);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(writer->AppendDecision(Decision(i)).ok());
  ASSERT_TRUE(writer->Close().ok());
  // A crash in the middle of the fourth record.
  const std::string record = DecisionRecordJson(Decision(3));
  {
    std::ofstream out(options.path, std::ios::app | std::ios::binary);
    out << record.substr(0, record.size() / 2);
  }
  ReadBack back = ReadAll(options.path);
  EXPECT_EQ(back.decision_ids.size(), 3u);
  ASSERT_EQ(back.warnings.size(), 1u);
  EXPECT_EQ(back.warnings[0].file, options.path);
  EXPECT_EQ(back.warnings[0].line, 4u);
  EXPECT_NE(back.warnings[0].message.find("torn last line"), std::string::npos);

  // The restarted writer ends the torn line, so the next record is whole.
  writer = OpenOrDie(options);
  ASSERT_TRUE(writer->AppendDecision(Decision(4)).ok());
  ASSERT_TRUE(writer->Close().ok());
  back = ReadAll(options.path);
  ASSERT_EQ(back.decision_ids.size(), 4u);
  EXPECT_EQ(back.decision_ids.back(), Decision(4).id);
  ASSERT_EQ(back.warnings.size(), 1u);
  EXPECT_EQ(back.warnings[0].line, 4u);
  EXPECT_EQ(back.where.back().second, 5u);
}

TEST(AuditLog, MalformedLinesAreSkippedWithFileAndLine) {
  TempDir dir;
  const std::string good1 = DecisionRecordJson(Decision(1));
  const std::string good2 = DecisionRecordJson(Decision(2));
  const std::string delivery = DeliveryRecordJson(SampleDelivery(Decision(2), "payments", 1));
  const std::string path =
      dir.Write("audit.jsonl", good1 + "\n" + "this is not json\n" + "\n" +
                                   "{\"schema\":7,\"type\":\"decision\"}\n" + good2 + "\n" +
                                   "[1,2,3]\n" + delivery + "\n");
  ReadBack back = ReadAll(path);
  EXPECT_EQ(back.decision_ids, (std::vector<std::string>{Decision(1).id, Decision(2).id}));
  EXPECT_EQ(back.delivery_decision_ids.size(), 1u);
  ASSERT_EQ(back.warnings.size(), 3u);
  EXPECT_EQ(back.warnings[0].ToString().rfind(path + ":2: record skipped: not JSON", 0), 0u)
      << back.warnings[0].ToString();
  EXPECT_EQ(back.warnings[1].ToString(),
            path + ":4: record skipped: schema 7 is newer than this tracepager reads (1)");
  EXPECT_EQ(back.warnings[2].line, 6u);

  // Lines over the limit are skipped, the rest of the file still read.
  std::vector<AuditReadWarning> warnings;
  AuditReadOptions small;
  small.max_line_bytes = 100;
  size_t n = 0;
  ASSERT_TRUE(ReadAuditLog(
                  path, small, [&](const AuditLogEntry&) { return ++n, true; }, &warnings)
                  .ok());
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(warnings[0].message, "line longer than 100 bytes skipped");
}

TEST(AuditLog, BatchedSyncAfterEveryNRecords) {
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  options.sync = AuditLogOptions::Sync::kBatched;
  options.sync_every_records = 10;
  options.sync_interval = std::chrono::hours(1);  // only the count can trigger here
  auto writer = OpenOrDie(options);
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(writer->AppendDecision(Decision(i)).ok());
  EXPECT_EQ(writer->counters().syncs, 2u);
  // Written (readable) before any sync.
  EXPECT_EQ(ReadAll(options.path).decision_ids.size(), 25u);
  ASSERT_TRUE(writer->Flush().ok());
  EXPECT_EQ(writer->counters().syncs, 3u);
  ASSERT_TRUE(writer->Close().ok());
}

TEST(AuditLog, FailedWriteIsReportedAndCutBack) {
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  auto writer = OpenOrDie(options);
  ASSERT_TRUE(writer->AppendDecision(Decision(0)).ok());
  const uintmax_t size = std::filesystem::file_size(options.path);
  // A file size limit just past the first record makes the next write partial, then fail.
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = size + 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  Status failed = writer->AppendDecision(Decision(1));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(std::filesystem::file_size(options.path), size);  // the partial record was cut
  ASSERT_TRUE(writer->AppendDecision(Decision(2)).ok());
  ASSERT_TRUE(writer->Close().ok());
  EXPECT_EQ(writer->counters().errors, 1u);
  ReadBack back = ReadAll(options.path);
  EXPECT_TRUE(back.warnings.empty());
  EXPECT_EQ(back.decision_ids, (std::vector<std::string>{Decision(0).id, Decision(2).id}));
}

TEST(AuditLog, SecretsNeverReachTheFiles) {
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  options.max_file_bytes = 4096;
  auto writer = OpenOrDie(options);
  const std::string key = "PDKEY-9f8e7d6c5b4a39281706";
  const std::string hook = "https://hooks.slack.com/services/T01/B02/s3cr3tp4th";
  for (int i = 0; i < 10; ++i) {
    DecisionAudit d = Decision(i);
    ASSERT_TRUE(writer->AppendDecision(d).ok());
    DeliveryAudit p = SampleDelivery(d, "payments-data", d.time_ns);
    p.target.secret = key;
    p.target.endpoint = i % 2 ? hook : "https://events.pagerduty.com/v2/enqueue";
    p.attempts[0].error = "400 from " + hook + " with routing_key=" + key;
    ASSERT_TRUE(writer->AppendDelivery(p).ok());
  }
  ASSERT_TRUE(writer->Close().ok());
  ASSERT_GT(writer->counters().rotations, 0u);
  for (const std::string& f : AuditLogFiles(options.path)) {
    const std::string bytes = ReadFile(f);
    EXPECT_EQ(bytes.find(key), std::string::npos) << f;
    EXPECT_EQ(bytes.find("s3cr3tp4th"), std::string::npos) << f;
    EXPECT_EQ(bytes.find("B02"), std::string::npos) << f;
  }
}

}  // namespace
}  // namespace tracepager::daemon
