#include "daemon/intake.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <boost/crc.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kNow = 1'795'728'000 * kSecond;
constexpr int64_t kDedup = 120 * kSecond;
constexpr std::chrono::seconds kWait{20};

RoutingJob MakeJob(const std::string& identity, size_t padding = 0) {
  RoutingJob j;
  j.kind = JobKind::kRoute;
  j.identity = identity;
  j.storm_key = "checkout|errors";
  j.dedup_key = identity + "|route";
  j.source = "alertmanager";
  j.alerting_service = "checkout";
  j.labels["alertname"] = "A-" + identity;
  if (padding > 0) j.annotations["padding"] = std::string(padding, 'p');
  j.received_ns = kNow;
  return j;
}

std::vector<RoutingJob> Jobs(const std::string& prefix, int n, size_t padding = 0) {
  std::vector<RoutingJob> jobs;
  for (int i = 0; i < n; ++i) jobs.push_back(MakeJob(prefix + std::to_string(i), padding));
  return jobs;
}

// The jobs of several appends, in order.
std::vector<RoutingJob> Cat(const std::vector<std::vector<RoutingJob>>& appends) {
  std::vector<RoutingJob> all;
  for (const std::vector<RoutingJob>& jobs : appends)
    all.insert(all.end(), jobs.begin(), jobs.end());
  return all;
}

// A refusal the daemon answers with 503: kUnavailable, the message naming `why`.
void ExpectUnavailable(const Status& st, const std::string& why) {
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(st.error().message.find(why), std::string::npos) << st.error().message;
}

IntakeBatch Batch(const std::string& prefix, int n) {
  IntakeBatch b;
  b.now_ns = kNow;
  b.dedup_window_ns = kDedup;
  for (const RoutingJob& j : Jobs(prefix, n)) b.jobs.push_back(JobRowOf(j));
  return b;
}

// The intake records (numbered up to `upto`) that jobs in the store still read their payload
// from (Store::RefersToIntakeRecords), oldest first.
std::vector<uint64_t> ReferredRecords(const Store& s, uint64_t upto = 100) {
  std::vector<uint64_t> out;
  for (uint64_t seq = 1; seq <= upto; ++seq) {
    if (s.RefersToIntakeRecords(seq, seq)) out.push_back(seq);
  }
  return out;
}

class IntakeTest : public ::testing::Test {
 protected:
  void OpenStore(uint64_t max_bytes = 0) {
    StoreOptions o;
    o.dir = dir_.path();
    o.max_bytes = max_bytes;
    // As the daemon runs it: jobs handed to a worker at the move leave their payload in the log.
    o.intake_payload_reader = [dir = dir_.path()](const IntakeLogRef& ref) {
      return ReadIntakeJobPayload(dir, ref);
    };
    Result<std::unique_ptr<Store>> s = Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
  }
  void OpenIntake(IntakeOptions o = {}) {
    o.dir = dir_.path();
    Result<std::unique_ptr<Intake>> i = Intake::Open(o, store_.get());
    ASSERT_TRUE(i.ok()) << i.error().message;
    intake_ = std::move(*i);
  }
  void Close() {
    intake_.reset();
    store_.reset();
  }
  // Claims the next group and completes it (the jobs are routed): their identities, oldest
  // first; empty when nothing is ready.
  std::vector<std::string> RouteNext() {
    std::vector<std::string> ids;
    Result<std::optional<Claim>> c = store_->ClaimNext(kNow, 100000);
    EXPECT_TRUE(c.ok());
    if (!c.ok() || !c->has_value()) return ids;
    std::vector<int64_t> claimed;
    for (const ClaimedJob& j : (*c)->jobs) {
      ids.push_back(j.job.identity);
      claimed.push_back(j.id);
    }
    Completion done;
    done.job_ids = claimed;
    done.storm_key = (*c)->storm_key;
    done.now_ns = kNow;
    done.decision_kind = "routed";
    done.decision_json = "{}";
    EXPECT_TRUE(store_->Complete(done).ok());
    return ids;
  }
  // Routes every job in the queue: their identities in the order they were claimed.
  std::vector<std::string> RouteAll() {
    std::vector<std::string> ids;
    for (std::vector<std::string> next; !(next = RouteNext()).empty();) {
      ids.insert(ids.end(), next.begin(), next.end());
    }
    return ids;
  }
  // Identities of every job in the queue (routing them all).
  std::multiset<std::string> Queued() {
    std::vector<std::string> ids = RouteAll();
    return std::multiset<std::string>(ids.begin(), ids.end());
  }
  // Expects `c` to hold `want`, in order, each job with its details (Store::DetailedJob).
  void ExpectJobs(const Claim& c, const std::vector<RoutingJob>& want) {
    ASSERT_EQ(c.jobs.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      Result<RoutingJob> job = store_->DetailedJob(c.jobs[i]);
      ASSERT_TRUE(job.ok()) << job.error().message;
      EXPECT_EQ(*job, want[i]) << i;
    }
  }
  // Claims the next group and expects it to hold `want` (ExpectJobs).
  void ExpectNextClaim(const std::vector<RoutingJob>& want) {
    Result<std::optional<Claim>> c = store_->ClaimNext(kNow, 100);
    ASSERT_TRUE(c.ok() && c->has_value());
    ExpectJobs(**c, want);
  }
  // Appends "a" (one job) and waits for its move, then "b" (two), "c" (one) and "d" (two
  // large ones), which wait to be moved under HeldBack options. Returns every job, in order.
  std::vector<RoutingJob> AppendFourRecords() {
    std::vector<std::vector<RoutingJob>> appends = {Jobs("a", 1), Jobs("b", 2), Jobs("c", 1),
                                                    Jobs("d", 2, /*padding=*/3000)};
    for (size_t i = 0; i < appends.size(); ++i) {
      EXPECT_TRUE(intake_->Append(appends[i], kNow, 0).ok()) << i;
      if (i == 0) {
        EXPECT_TRUE(intake_->WaitMoved(kWait));
      }
    }
    return Cat(appends);
  }
  // Options of an intake that paces above `pace_above` jobs, holding an append at most
  // `max_wait`, with a queue bound of `max_queued`.
  static IntakeOptions Pacing(uint64_t pace_above, std::chrono::milliseconds max_wait,
                              uint64_t max_queued = 100'000) {
    IntakeOptions o;
    o.max_queued_jobs = max_queued;
    o.pace_above_jobs = pace_above;
    o.pace_max_wait = max_wait;
    return o;
  }
  std::vector<std::string> SegmentFiles() {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir_.path() + "/intake")) {
      files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Intake> intake_;
};

TEST_F(IntakeTest, AcknowledgedWebhooksAreMovedIntoTheQueue) {
  OpenStore();
  OpenIntake();
  ASSERT_TRUE(intake_->Append(Jobs("a", 3), kNow, kDedup).ok());
  ASSERT_TRUE(intake_->Append(Jobs("b", 2), kNow, kDedup).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  IntakeStats st = intake_->stats();
  EXPECT_EQ(st.appended, 2u);
  EXPECT_EQ(st.appended_jobs, 5u);
  EXPECT_EQ(st.moved, 2u);
  EXPECT_EQ(st.moved_jobs, 5u);
  EXPECT_EQ(st.unmoved_jobs, 0u);
  EXPECT_TRUE(st.moving_ok);
  EXPECT_EQ(store_->stats().queued, 5u);
  EXPECT_EQ(*store_->IntakeApplied(), 2u);
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"a0", "a1", "a2", "b0", "b1"}));
  // An empty webhook is acknowledged without a record.
  EXPECT_TRUE(intake_->Append({}, kNow, kDedup).ok());
  EXPECT_EQ(intake_->stats().appended, 2u);
}

TEST_F(IntakeTest, OpenPreparesTheFirstSegmentAndASpareBothPreallocated) {
  OpenStore();
  IntakeOptions o;
  o.segment_bytes = 64 * 1024;
  OpenIntake(o);
  std::vector<std::string> files = SegmentFiles();
  ASSERT_EQ(files.size(), 2u);
  for (const std::string& f : files) EXPECT_EQ(fs::file_size(f), 64u * 1024) << f;
  EXPECT_EQ(intake_->stats().segments, 2u);
  // Restarts keep using them (a spare may carry the name the next segment gets): no file is
  // added or lost, and records still go through.
  for (int restart = 0; restart < 2; ++restart) {
    Close();
    OpenStore();
    OpenIntake(o);
    EXPECT_EQ(SegmentFiles().size(), 2u) << "restart " << restart;
    EXPECT_EQ(intake_->stats().torn_tails_at_open, 0u);
  }
  ASSERT_TRUE(intake_->Append(Jobs("p", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"p0"}));
}

TEST_F(IntakeTest, DuplicatesWithinTheWindowAreDroppedWhenMoved) {
  OpenStore();
  OpenIntake();
  ASSERT_TRUE(intake_->Append(Jobs("d", 2), kNow, kDedup).ok());
  ASSERT_TRUE(intake_->Append(Jobs("d", 1), kNow + kSecond, kDedup).ok());     // repeat: dropped
  ASSERT_TRUE(intake_->Append(Jobs("d", 1), kNow + 2 * kDedup, kDedup).ok());  // past the window
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(intake_->stats().duplicates, 1u);
  EXPECT_EQ(intake_->stats().moved_jobs, 3u);
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"d0", "d0", "d1"}));
}

TEST_F(IntakeTest, EachRecordIsMovedOnceAcrossReopens) {
  OpenStore();
  OpenIntake();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(intake_->Append(Jobs("r" + std::to_string(i) + "-", 2), kNow, 0).ok());
  }
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  Close();
  // The segment still holds the 20 records; the store's marker says they were moved.
  OpenStore();
  OpenIntake();
  EXPECT_EQ(intake_->stats().replayed_at_open, 0u);
  ASSERT_TRUE(intake_->Append(Jobs("after", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(*store_->IntakeApplied(), 21u) << "sequence numbers continue after a reopen";
  EXPECT_EQ(Queued().size(), 41u);
}

TEST_F(IntakeTest, RecordsNotYetMovedAreMovedAtOpenAndATornTailIsIgnored) {
  OpenStore();
  // What a crash leaves: records written and synced (acknowledged) but not moved, then the
  // first bytes of a record whose write was cut short (never acknowledged).
  std::string segment = EncodeIntakeRecord(1, Batch("x", 2)) + EncodeIntakeRecord(2, Batch("y", 1));
  std::string torn = EncodeIntakeRecord(3, Batch("z", 1));
  segment += torn.substr(0, torn.size() / 2);
  dir_.Write("intake/intake-00000000000000000001.log", segment);
  OpenIntake();
  EXPECT_EQ(intake_->stats().replayed_at_open, 2u);
  EXPECT_EQ(intake_->stats().replayed_jobs_at_open, 3u);
  EXPECT_EQ(intake_->stats().torn_tails_at_open, 1u);
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"x0", "x1", "y0"}));
  // The next record does not reuse the torn record's bytes or number (3 was never read, so it
  // may be reused: nothing acknowledged carries it).
  ASSERT_TRUE(intake_->Append(Jobs("n", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"n0"}));
  Close();
  OpenStore();
  OpenIntake();
  EXPECT_EQ(intake_->stats().replayed_at_open, 0u) << "everything was moved before";
}

TEST_F(IntakeTest, ASegmentMovedButNotMarkedIsMovedAgainOnlyPastTheMarker) {
  OpenStore();
  // The store has moved records 1 and 2 (its marker says so); 3 was acknowledged after.
  std::vector<std::shared_ptr<const IntakeBatch>> moved = {
      std::make_shared<const IntakeBatch>(Batch("m", 1)),
      std::make_shared<const IntakeBatch>(Batch("n", 1))};
  std::promise<Result<EnqueueOutcome>> p;
  store_->ApplyIntakeAsync(moved, 2, [&](Result<EnqueueOutcome> r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(p.get_future().get().ok());
  dir_.Write("intake/intake-00000000000000000001.log", EncodeIntakeRecord(1, Batch("m", 1)) +
                                                           EncodeIntakeRecord(2, Batch("n", 1)) +
                                                           EncodeIntakeRecord(3, Batch("o", 1)));
  OpenIntake();
  EXPECT_EQ(intake_->stats().replayed_at_open, 1u);
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"m0", "n0", "o0"}));
}

TEST_F(IntakeTest, TheQueueBoundCountsJobsNotYetMoved) {
  OpenStore();
  IntakeOptions o;
  o.max_queued_jobs = 5;
  // Every move counts as busy and the interval holds the next one until max_move_jobs wait, so
  // that the jobs checked against the bound are certainly not moved yet. (A move finishing at
  // that moment counts its jobs twice for an instant, by design: the bound then refuses early,
  // never late. The test used to race with that.)
  o.busy_move_records = 1;
  o.move_interval = std::chrono::hours(1);
  o.max_move_jobs = 5;
  OpenIntake(o);
  ASSERT_TRUE(intake_->Append(Jobs("p", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait)) << "the first move starts at once";
  EXPECT_EQ(Queued().size(), 1u);  // and is routed: the queue is empty again
  ASSERT_TRUE(intake_->Append(Jobs("q", 4), kNow, 0).ok());
  EXPECT_EQ(intake_->stats().unmoved_jobs, 4u) << "held by the interval";
  ExpectUnavailable(intake_->Append(Jobs("r", 2), kNow, 0), "queue is full");
  EXPECT_EQ(intake_->stats().rejected_full, 1u);
  EXPECT_TRUE(intake_->Append(Jobs("s", 1), kNow, 0).ok()) << "one more still fits";
  ASSERT_TRUE(intake_->WaitMoved(kWait)) << "max_move_jobs waiting: moved without the interval";
  EXPECT_EQ(Queued().size(), 5u);
  EXPECT_TRUE(intake_->Append(Jobs("t", 5), kNow, 0).ok()) << "routed jobs leave the queue";
}

TEST_F(IntakeTest, SegmentsRotateAndAreReusedWithoutReplayingOldRecords) {
  OpenStore();
  IntakeOptions o;
  o.segment_bytes = 16 * 1024;
  OpenIntake(o);
  int appended = 0;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 30; ++i, ++appended) {
      ASSERT_TRUE(
          intake_->Append(Jobs("g" + std::to_string(appended) + "-", 1, 300), kNow, 0).ok());
    }
    ASSERT_TRUE(intake_->WaitMoved(kWait));
  }
  // 300 records of ~700 bytes went through 16 KiB segments (13 of them), and the files are
  // reused: the current one, at most two spares, and those whose moves are still being synced.
  EXPECT_LE(SegmentFiles().size(), 6u);
  // Each file is named after the first record it holds.
  for (const std::string& path : SegmentFiles()) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    IntakeSegmentContents c = DecodeIntakeSegment(bytes);
    if (c.records.empty()) continue;
    std::string name = fs::path(path).filename().string();
    EXPECT_EQ(std::stoull(name.substr(7, 20)), c.records.front().seq) << name;
  }
  EXPECT_EQ(Queued().size(), 300u);
  Close();
  OpenStore();
  OpenIntake(o);
  EXPECT_EQ(intake_->stats().replayed_at_open, 0u) << "reused files hold only moved records";
  EXPECT_EQ(intake_->stats().torn_tails_at_open, 0u);
  EXPECT_LE(SegmentFiles().size(), 2u) << "the current segment and a spare";
  ASSERT_TRUE(intake_->Append(Jobs("last", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"last0"}));
  EXPECT_EQ(*store_->IntakeApplied(), 301u);
}

TEST_F(IntakeTest, DerivedJobsAreKeptOnlyWhileNothingWaitsInTheQueue) {
  OpenStore();
  IntakeOptions o;
  // After the first move, records wait an hour to be moved, or for four jobs: what each keeps
  // can be read meanwhile.
  o.move_interval = std::chrono::hours(1);
  o.busy_move_records = 1;
  o.max_move_jobs = 4;
  OpenIntake(o);
  ASSERT_TRUE(intake_->Append(Jobs("a", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  // "a0" waits in the queue: a move would not hand "b0" to a worker as derived, so it is not
  // kept so (a claim parses its stored payload).
  ASSERT_EQ(store_->stats().queued, 1u);
  ASSERT_TRUE(intake_->Append(Jobs("b", 2), kNow, 0).ok());
  EXPECT_EQ(intake_->stats().unmoved_jobs, 2u);
  EXPECT_EQ(intake_->stats().unmoved_live_jobs, 0u);
  // Routed: nothing waits, and "c0" keeps its derived jobs for the move's hand-over.
  EXPECT_EQ(RouteAll(), (std::vector<std::string>{"a0"}));
  ASSERT_TRUE(intake_->Append(Jobs("c", 1), kNow, 0).ok());
  EXPECT_EQ(intake_->stats().unmoved_jobs, 3u);
  EXPECT_EQ(intake_->stats().unmoved_live_jobs, 1u);
  // The fourth job moves them all; the move hands them to the next claim (nothing waits), the
  // kept ones as derived, the others parsed: the same jobs either way.
  ASSERT_TRUE(intake_->Append(Jobs("d", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  Result<std::optional<Claim>> c = store_->ClaimNext(kNow, 100);
  ASSERT_TRUE(c.ok() && c->has_value());
  std::vector<RoutingJob> want = Cat({Jobs("b", 2), Jobs("c", 1), Jobs("d", 1)});
  ExpectJobs(**c, want);
  // The claim's first job came with its details, the others without, derived or parsed.
  EXPECT_EQ(((*c)->jobs[0].detailed), true);
  EXPECT_EQ(((*c)->jobs[1].detailed), false);
  EXPECT_EQ(((*c)->jobs[2].detailed), false);
  EXPECT_EQ(((*c)->jobs[3].detailed), false);
}

// A job handed to a worker at its move keeps its payload in the log: the segment holding it is
// kept, across rotations and restarts, until the job is done, and then reused like any other.
TEST_F(IntakeTest, AHandedJobsSegmentIsKeptUntilTheJobIsDone) {
  OpenStore();
  IntakeOptions o;
  o.segment_bytes = 16 * 1024;
  OpenIntake(o);
  EXPECT_TRUE(RouteAll().empty());  // a worker has asked: the next move hands its jobs over
  std::vector<RoutingJob> held = Jobs("held", 2, 300);
  for (RoutingJob& j : held) j.storm_key = "held|errors";  // the others are not held up by it
  ASSERT_TRUE(intake_->Append(held, kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  Result<std::optional<Claim>> c = store_->ClaimNext(kNow, 100);
  ASSERT_TRUE(c.ok() && c->has_value());
  ASSERT_EQ((*c)->jobs.size(), 2u);
  EXPECT_EQ(ReferredRecords(*store_), std::vector<uint64_t>{1});
  ExpectJobs(**c, held);  // the second job's details read from the log

  // Many segments later (every other job routed), the record is still there, and only its
  // segment is kept: the later ones are reused as usual.
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 30; ++i) {
      ASSERT_TRUE(
          intake_->Append(Jobs("g" + std::to_string(round * 30 + i) + "-", 1, 300), kNow, 0).ok());
    }
    ASSERT_TRUE(intake_->WaitMoved(kWait));
    EXPECT_EQ(RouteAll().size(), 30u);
  }
  ExpectJobs(**c, held);
  EXPECT_TRUE(fs::exists(dir_.path() + "/intake/intake-00000000000000000001.log"));
  // 300 records of ~700 bytes went through 16 KiB segments (13 of them): the kept one, the
  // current one, at most two spares, and those whose moves are still being synced.
  EXPECT_LE(SegmentFiles().size(), 7u);

  // ... and after a crash, which leaves the claim to be resumed, it is read from the log.
  Close();
  OpenStore();
  OpenIntake(o);
  EXPECT_EQ(store_->stats().resumed_at_open, 2u);
  EXPECT_EQ(intake_->stats().replayed_at_open, 0u) << "kept for the payload, not moved again";
  EXPECT_EQ(ReferredRecords(*store_), std::vector<uint64_t>{1});
  EXPECT_GT(SegmentFiles().size(), 2u) << "the kept segment, the current one and a spare";
  c = store_->ClaimNext(kNow, 100);
  ASSERT_TRUE(c.ok() && c->has_value());
  ExpectJobs(**c, held);
  Completion done;
  for (const ClaimedJob& j : (*c)->jobs) done.job_ids.push_back(j.id);
  done.storm_key = (*c)->storm_key;
  done.now_ns = kNow;
  done.decision_kind = "routed";
  done.decision_json = "{}";
  ASSERT_TRUE(store_->Complete(done).ok());
  EXPECT_EQ(ReferredRecords(*store_), std::vector<uint64_t>{});

  // Done: the segment is reused or removed like the others.
  Close();
  OpenStore();
  OpenIntake(o);
  EXPECT_LE(SegmentFiles().size(), 2u) << "the current segment and a spare";
  EXPECT_TRUE(RouteAll().empty());
}

// A payload is read from the record at the place given, checked by its header: any other place
// or number is not found, nor is a job the record does not have.
TEST_F(IntakeTest, APayloadIsReadFromTheLogOnlyWhereItsRecordIs) {
  OpenStore();
  IntakeOptions o;
  o.segment_bytes = 4 * 1024;
  // The first record is moved alone; after it, records wait to be moved (the next move is an
  // hour away), so no segment is retired and all records are there to read. Waiting for that
  // first move matters: one that took the whole first segment would let it be reused.
  o.move_interval = std::chrono::hours(1);
  o.busy_move_records = 1;
  o.max_move_jobs = 1000;
  OpenIntake(o);
  std::vector<std::vector<RoutingJob>> appends;
  for (int i = 0; i < 12; ++i) {
    appends.push_back(Jobs("r" + std::to_string(i) + "-", 2, 400));
    ASSERT_TRUE(intake_->Append(appends.back(), kNow, 0).ok());
    if (i == 0) {
      ASSERT_TRUE(intake_->WaitMoved(kWait));
    }
  }
  EXPECT_EQ(intake_->stats().unmoved_jobs, 22u);
  // Where each record is, from the segments as written (several: 4 KiB each).
  std::map<uint64_t, uint64_t> offsets;
  for (const std::string& path : SegmentFiles()) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const IntakeRecord& r : DecodeIntakeSegment(bytes).records) offsets[r.seq] = r.offset;
  }
  ASSERT_EQ(offsets.size(), 12u);
  ASSERT_GE(SegmentFiles().size(), 4u);
  for (const auto& [seq, offset] : offsets) {
    for (uint32_t index = 0; index < 2; ++index) {
      Result<std::string> payload = ReadIntakeJobPayload(dir_.path(), {seq, offset, index});
      ASSERT_TRUE(payload.ok()) << seq << ": " << payload.error().message;
      EXPECT_EQ(*payload, JobToJson(appends[seq - 1][index])) << seq << " " << index;
    }
  }
  auto not_found = [&](const IntakeLogRef& ref, const std::string& why) {
    Result<std::string> r = ReadIntakeJobPayload(dir_.path(), ref);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound) << r.error().message;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  };
  not_found({3, offsets[3], 2}, "holds 2 jobs, not job 2");
  not_found({3, offsets[3] + 1, 0}, "no segment holds it");
  not_found({3, offsets[4], 0}, "no segment holds it");  // another record's place
  not_found({99, 0, 0}, "no segment holds it");
  not_found({0, 0, 0}, "no segment holds it");
  // A damaged record is not taken for the payload.
  std::string first = SegmentFiles().front();
  {
    std::fstream f(first, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offsets[1] + 30));
    f.put('#');
  }
  not_found({1, offsets[1], 0}, "does not check");
  Close();
  fs::remove_all(dir_.path() + "/intake");
  not_found({2, offsets[2], 0}, "no log");
}

// Options under which, after the first move, records wait to be moved until `move_at` jobs
// wait, holding at most `in_memory` of them in memory.
IntakeOptions HeldBack(size_t move_at, size_t in_memory) {
  IntakeOptions o;
  o.move_interval = std::chrono::hours(1);
  o.busy_move_records = 1;
  o.max_move_jobs = move_at;
  o.max_unmoved_in_memory = in_memory;
  return o;
}

TEST_F(IntakeTest, RecordsPastTheMemoryBoundWaitInTheLogAndAreReadBackWhenMoved) {
  OpenStore();
  OpenIntake(HeldBack(/*move_at=*/6, /*in_memory=*/2));
  std::vector<RoutingJob> want = AppendFourRecords();
  // "b" fits in memory; "c" and "d" wait only in the log.
  EXPECT_EQ(intake_->stats().unmoved_jobs, 5u);
  EXPECT_EQ(intake_->stats().unmoved_log_only_jobs, 3u);
  EXPECT_EQ(intake_->stats().read_back, 0u);
  // The sixth job starts a move: "b" from memory, the rest read back from the log.
  ASSERT_TRUE(intake_->Append(Jobs("e", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(intake_->stats().read_back, 3u);
  EXPECT_EQ(intake_->stats().unmoved_jobs, 0u);
  EXPECT_EQ(intake_->stats().unmoved_log_only_jobs, 0u);
  ExpectNextClaim(Cat({want, Jobs("e", 1)}));
}

// The same bound holds for the records a restart finds in the log.
TEST_F(IntakeTest, RecordsReplayedPastTheMemoryBoundAreReadBackWhenMoved) {
  OpenStore();
  OpenIntake(HeldBack(/*move_at=*/100, /*in_memory=*/100));
  std::vector<RoutingJob> want = AppendFourRecords();
  EXPECT_EQ(intake_->stats().unmoved_log_only_jobs, 0u);
  Close();
  OpenStore();
  OpenIntake(HeldBack(/*move_at=*/100, /*in_memory=*/2));
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(intake_->stats().replayed_at_open, 3u);
  EXPECT_EQ(intake_->stats().read_back, 2u) << "b held in memory, c and d read back";
  ExpectNextClaim(want);
}

TEST_F(IntakeTest, ARecordThatDoesNotReadBackFailsTheMoveAndStaysWaiting) {
  OpenStore();
  OpenIntake(HeldBack(/*move_at=*/3, /*in_memory=*/1));
  ASSERT_TRUE(intake_->Append(Jobs("a", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  ASSERT_TRUE(intake_->Append(Jobs("b", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->Append(Jobs("c", 1), kNow, 0).ok());
  ASSERT_EQ(intake_->stats().unmoved_log_only_jobs, 1u);
  // "c" is the last record in the log: damage its body's last byte.
  std::string segment;
  IntakeSegmentContents contents;
  for (const std::string& file : SegmentFiles()) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    IntakeSegmentContents c = DecodeIntakeSegment(bytes);
    if (!c.records.empty()) {
      segment = file;
      contents = std::move(c);
    }
  }
  ASSERT_EQ(contents.records.size(), 3u);
  {
    std::fstream f(segment, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(contents.valid_bytes - 1));
    f.put('\x7f');
  }
  ASSERT_TRUE(intake_->Append(Jobs("d", 1), kNow, 0).ok());  // starts the move
  EXPECT_FALSE(intake_->WaitMoved(std::chrono::milliseconds(300)));
  IntakeStats st = intake_->stats();
  EXPECT_FALSE(st.moving_ok);
  EXPECT_GT(st.move_failures, 0u);
  EXPECT_EQ(st.unmoved_jobs, 3u) << "nothing acknowledged is dropped";
  EXPECT_EQ(store_->stats().queued, 1u);
}

TEST_F(IntakeTest, WhatTheStoreRefusesWaitsInTheLogAndIsMovedLater) {
  OpenStore(/*max_bytes=*/128 * 1024);
  IntakeOptions o;
  o.retry_min = std::chrono::milliseconds(10);
  o.retry_max = std::chrono::milliseconds(50);
  OpenIntake(o);
  // Big jobs fill the capped database; the log still takes them, durably.
  int acked = 0;
  for (; acked < 200 && intake_->stats().moving_ok; ++acked) {
    ASSERT_TRUE(intake_->Append(Jobs("big" + std::to_string(acked) + "-", 1, 8000), kNow, 0).ok());
    (void)intake_->WaitMoved(kWait);
  }
  ASSERT_FALSE(intake_->stats().moving_ok) << "the capped database never refused a move";
  EXPECT_FALSE(intake_->WaitMoved(std::chrono::milliseconds(200)));
  EXPECT_GT(intake_->stats().move_failures, 0u);
  EXPECT_GT(intake_->stats().unmoved_jobs, 0u);
  // Records waiting for the store are held once: their derived jobs went with the failed move.
  EXPECT_EQ(intake_->stats().unmoved_live_jobs, 0u);
  ASSERT_TRUE(intake_->Append(Jobs("late", 1, 8000), kNow, 0).ok());
  ++acked;
  Close();
  // Without the cap everything acknowledged is queued, once.
  OpenStore();
  OpenIntake();
  EXPECT_GT(intake_->stats().replayed_at_open, 0u);
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_TRUE(intake_->stats().moving_ok);
  std::multiset<std::string> queued = Queued();
  EXPECT_EQ(queued.size(), static_cast<size_t>(acked));
  EXPECT_EQ(queued.count("late0"), 1u);
}

TEST_F(IntakeTest, AFailedWriteAnswersUnavailableAndIsNeverQueued) {
  OpenStore();
  IntakeOptions o;
  o.segment_bytes = 1 << 20;
  // After the first move, none for the rest of the test: the store's own files must not grow
  // while the file size limit below is in force.
  o.move_interval = std::chrono::hours(1);
  o.busy_move_records = 0;  // every move counts as busy: none after the first for an hour
  OpenIntake(o);
  ASSERT_TRUE(intake_->Append(Jobs("ok", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait)) << "the first move, of this record alone";
  // Writes past 512 KiB now fail (EFBIG): the preallocated 1 MiB segment fails part-way.
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 512 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  int failed = 0, ok = 1;
  for (int i = 0; i < 400 && failed == 0; ++i) {
    Status st = intake_->Append(Jobs("w" + std::to_string(i) + "-", 1, 4000), kNow, 0);
    if (st.ok()) {
      ++ok;
    } else {
      ++failed;
      ExpectUnavailable(st, "intake: write");
    }
  }
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(failed, 1);
  EXPECT_GT(ok, 100);
  EXPECT_EQ(intake_->stats().write_failures, 1u);
  // The next write goes to a new segment.
  ASSERT_TRUE(intake_->Append(Jobs("again", 1), kNow, 0).ok());
  ++ok;
  Close();
  OpenStore();
  OpenIntake();
  EXPECT_EQ(intake_->stats().replayed_at_open, static_cast<uint64_t>(ok - 1));
  EXPECT_EQ(intake_->stats().torn_tails_at_open, 0u) << "the failed record's header was erased";
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  std::multiset<std::string> queued = Queued();
  EXPECT_EQ(queued.size(), static_cast<size_t>(ok)) << "every acknowledged record, and no other";
  EXPECT_EQ(queued.count("again0"), 1u);
}

TEST_F(IntakeTest, AFailedSyncAnswersUnavailableAndItsRecordIsNeverQueued) {
  OpenStore();
  IntakeOptions o;
  auto calls = std::make_shared<std::atomic<int>>(0);
  o.sync_for_tests = [calls](int fd) {
    if (calls->fetch_add(1) + 1 == 3) {
      errno = EIO;
      return -1;
    }
    return ::fdatasync(fd);
  };
  OpenIntake(o);
  // One append at a time: each is covered by a sync of its own, the third of which fails.
  ASSERT_TRUE(intake_->Append(Jobs("a", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->Append(Jobs("b", 1), kNow, 0).ok());
  ExpectUnavailable(intake_->Append(Jobs("lost", 1), kNow, 0), "intake: sync");
  EXPECT_EQ(intake_->stats().write_failures, 1u);
  // The segment a sync failed on is not written again: the next record starts a new one.
  ASSERT_TRUE(intake_->Append(Jobs("c", 1), kNow, 0).ok());
  EXPECT_TRUE(fs::exists(dir_.path() + "/intake/intake-00000000000000000004.log"));
  Close();
  // Replayed from the log alone (the store never saw a move): the failed record's header was
  // erased, so a read stops before it.
  fs::remove(dir_.path() + "/tracepager.db");
  fs::remove(dir_.path() + "/tracepager.db-wal");
  fs::remove(dir_.path() + "/tracepager.db-shm");
  OpenStore();
  OpenIntake();
  EXPECT_EQ(intake_->stats().replayed_at_open, 3u);
  EXPECT_EQ(intake_->stats().torn_tails_at_open, 0u);
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"a0", "b0", "c0"}));
}

TEST_F(IntakeTest, ALaterSyncAcknowledgesEverythingWrittenBeforeItStartedInOrder) {
  OpenStore();
  // Shared with the syncer threads and the callbacks by value: they may outlive a failed
  // assertion's early return until the intake is closed.
  struct Shared {
    std::atomic<int> calls{0};
    std::promise<void> first_started, release_first;
    std::shared_future<void> first_released = release_first.get_future().share();
    std::mutex mu;
    std::vector<std::string> order;
    std::promise<Status> first_done, second_done;
  };
  auto sh = std::make_shared<Shared>();
  IntakeOptions o;
  o.sync_threads = 2;
  o.sync_for_tests = [sh](int fd) {
    if (sh->calls.fetch_add(1) == 0) {
      // The first sync is held (a slow device flush) until the test has seen the second one
      // acknowledge both records.
      sh->first_started.set_value();
      sh->first_released.wait_for(kWait);
    }
    return ::fdatasync(fd);
  };
  OpenIntake(o);
  std::future<void> first_started = sh->first_started.get_future();
  std::future<Status> first = sh->first_done.get_future();
  std::future<Status> second = sh->second_done.get_future();
  intake_->AppendAsync(Jobs("first", 1), kNow, 0, [sh](Status st) {
    std::lock_guard<std::mutex> g(sh->mu);
    sh->order.push_back("first");
    sh->first_done.set_value(st);
  });
  // The second record is written once the first one's sync is in flight.
  ASSERT_EQ(first_started.wait_for(kWait), std::future_status::ready);
  intake_->AppendAsync(Jobs("second", 1), kNow, 0, [sh](Status st) {
    std::lock_guard<std::mutex> g(sh->mu);
    sh->order.push_back("second");
    sh->second_done.set_value(st);
  });
  EXPECT_EQ(second.wait_for(kWait), std::future_status::ready)
      << "the second syncer's flush covers both records while the first is still held";
  EXPECT_EQ(first.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(sh->calls.load(), 2);
  sh->release_first.set_value();
  ASSERT_EQ(first.wait_for(kWait), std::future_status::ready);
  ASSERT_EQ(second.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(second.get().ok());
  {
    std::lock_guard<std::mutex> g(sh->mu);
    EXPECT_EQ(sh->order, (std::vector<std::string>{"first", "second"}));
  }
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"first0", "second0"}));
}

TEST_F(IntakeTest, UnderLoadMovesWaitForTheIntervalOrAFullBatch) {
  OpenStore();
  IntakeOptions o;
  o.busy_move_records = 1;  // every move counts as busy
  o.move_interval = std::chrono::hours(1);
  o.max_move_jobs = 10;
  OpenIntake(o);
  ASSERT_TRUE(intake_->Append(Jobs("first", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait)) << "the first move starts at once";
  ASSERT_TRUE(intake_->Append(Jobs("held", 9), kNow, 0).ok());
  EXPECT_FALSE(intake_->WaitMoved(std::chrono::milliseconds(100))) << "busy: the interval holds";
  EXPECT_EQ(intake_->stats().unmoved_jobs, 9u);
  ASSERT_TRUE(intake_->Append(Jobs("full", 1), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait)) << "max_move_jobs waiting: moved without the interval";
  EXPECT_EQ(Queued().size(), 11u);
}

// Pacing: an append that would take the backlog above pace_above_jobs waits, unwritten, until
// routing makes room; appends held are written in the order they came.
TEST_F(IntakeTest, PacingHoldsWebhooksAboveTheMarkUntilRoutingMakesRoom) {
  OpenStore();
  OpenIntake(Pacing(3, std::chrono::hours(1), 10));  // only routing lets them in
  ASSERT_TRUE(intake_->Append(Jobs("a", 3), kNow, 0).ok()) << "up to the mark: at once";
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  std::promise<Status> b_done, c_done;
  intake_->AppendAsync(Jobs("b", 1), kNow, 0, [&](Status st) { b_done.set_value(st); });
  intake_->AppendAsync(Jobs("c", 2), kNow, 0, [&](Status st) { c_done.set_value(st); });
  std::future<Status> b = b_done.get_future(), c = c_done.get_future();
  IntakeStats st = intake_->stats();
  EXPECT_EQ(st.paced, 2u);
  EXPECT_EQ(st.pacing_now, 2u);
  EXPECT_EQ(st.appended, 1u) << "held appends are not written";
  EXPECT_EQ(b.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  // Full is still refused at once, not held.
  ExpectUnavailable(intake_->Append(Jobs("full", 8), kNow, 0), "queue is full");
  EXPECT_EQ(intake_->stats().paced, 2u);

  // Routing the three queued jobs makes room for both (1 + 2 <= 3), oldest first.
  EXPECT_EQ(RouteNext(), (std::vector<std::string>{"a0", "a1", "a2"}));
  ASSERT_EQ(b.wait_for(kWait), std::future_status::ready);
  ASSERT_EQ(c.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(b.get().ok());
  EXPECT_TRUE(c.get().ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(RouteAll(), (std::vector<std::string>{"b0", "c0", "c1"}));
  st = intake_->stats();
  EXPECT_EQ(st.pacing_now, 0u);
  EXPECT_EQ(st.appended, 3u);
}

TEST_F(IntakeTest, APacedWebhookIsTakenAfterPaceMaxWaitIfTheQueueHasRoom) {
  OpenStore();
  const std::chrono::milliseconds max_wait(20);
  OpenIntake(Pacing(2, max_wait, 4));
  ASSERT_TRUE(intake_->Append(Jobs("a", 2), kNow, 0).ok());
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(intake_->Append(Jobs("b", 1), kNow, 0).ok()) << "nothing routes: taken anyway";
  EXPECT_GE(std::chrono::steady_clock::now() - start, max_wait);
  EXPECT_EQ(intake_->stats().paced, 1u);
  // Past the bound even after waiting: refused.
  ExpectUnavailable(intake_->Append(Jobs("c", 2), kNow, 0), "queue is full");
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"a0", "a1", "b0"}));
}

TEST_F(IntakeTest, HeldWebhooksAreRefusedAtCloseAndAtDestruction) {
  OpenStore();
  const IntakeOptions o = Pacing(1, std::chrono::hours(1));
  OpenIntake(o);
  ASSERT_TRUE(intake_->Append(Jobs("a", 1), kNow, 0).ok());
  std::promise<Status> b_done, c_done;
  intake_->AppendAsync(Jobs("b", 1), kNow, 0, [&](Status st) { b_done.set_value(st); });
  std::future<Status> b = b_done.get_future();
  intake_->Close();
  ASSERT_EQ(b.wait_for(kWait), std::future_status::ready);
  ExpectUnavailable(b.get(), "shutting down");

  intake_.reset();
  OpenIntake(o);  // the same log again: a0 is queued (or moved first thing)
  intake_->AppendAsync(Jobs("c", 1), kNow, 0, [&](Status st) { c_done.set_value(st); });
  std::future<Status> c = c_done.get_future();
  EXPECT_EQ(intake_->stats().pacing_now, 1u);
  intake_.reset();
  ASSERT_EQ(c.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  ExpectUnavailable(c.get(), "shutting down");
  OpenIntake(o);
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"a0"})) << "held ones were never written";
}

TEST_F(IntakeTest, AfterCloseAppendsAreRefusedAndPendingOnesStillWritten) {
  OpenStore();
  OpenIntake();
  ASSERT_TRUE(intake_->Append(Jobs("c", 1), kNow, 0).ok());
  intake_->Close();
  ExpectUnavailable(intake_->Append(Jobs("late", 1), kNow, 0), "shutting down");
  EXPECT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(Queued(), (std::multiset<std::string>{"c0"}));
}

TEST_F(IntakeTest, ConcurrentAppendsAreAllAcknowledgedAndMovedInOrder) {
  OpenStore();
  OpenIntake();
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string id = "c" + std::to_string(t) + "-" + std::to_string(i) + "-";
        if (intake_->Append(Jobs(id, 2), kNow, 0).ok()) acked.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(acked.load(), 200);
  ASSERT_TRUE(intake_->WaitMoved(kWait));
  EXPECT_EQ(*store_->IntakeApplied(), 200u);
  EXPECT_EQ(Queued().size(), 400u);
}

// ---- the segment format ----

TEST(IntakeSegment, RecordsReadBackAsWritten) {
  IntakeBatch b = Batch("rt", 2);
  b.jobs[1].payload = std::string("bin\0ary\xff", 8);
  std::string bytes = EncodeIntakeRecord(7, b) + EncodeIntakeRecord(9, Batch("s", 0));
  IntakeSegmentContents c = DecodeIntakeSegment(bytes);
  EXPECT_TRUE(c.clean_end);
  EXPECT_EQ(c.valid_bytes, bytes.size());
  ASSERT_EQ(c.records.size(), 2u);
  EXPECT_EQ(c.records[0].seq, 7u);
  EXPECT_EQ(c.records[0].batch.now_ns, kNow);
  EXPECT_EQ(c.records[0].batch.dedup_window_ns, kDedup);
  ASSERT_EQ(c.records[0].batch.jobs.size(), 2u);
  EXPECT_EQ(c.records[0].batch.jobs[0].identity, "rt0");
  EXPECT_EQ(c.records[0].batch.jobs[0].kind, "route");
  EXPECT_EQ(c.records[0].batch.jobs[0].storm_key, "checkout|errors");
  EXPECT_EQ(c.records[0].batch.jobs[0].dedup_key, "rt0|route");
  EXPECT_EQ(c.records[0].batch.jobs[0].payload, JobToJson(MakeJob("rt0")));
  EXPECT_EQ(c.records[0].batch.jobs[1].payload, std::string("bin\0ary\xff", 8));
  EXPECT_EQ(c.records[1].seq, 9u);
  EXPECT_TRUE(c.records[1].batch.jobs.empty());
}

TEST(IntakeSegment, ZerosAndOlderRecordsEndASegmentCleanly) {
  std::string two = EncodeIntakeRecord(5, Batch("a", 1)) + EncodeIntakeRecord(6, Batch("b", 1));
  IntakeSegmentContents zeros = DecodeIntakeSegment(two + std::string(4096, '\0'));
  EXPECT_TRUE(zeros.clean_end) << zeros.stop_reason;
  EXPECT_EQ(zeros.records.size(), 2u);
  EXPECT_EQ(zeros.valid_bytes, two.size());
  // A reused file: new records 5 and 6 over an old record 2 (and what followed it).
  IntakeSegmentContents reused =
      DecodeIntakeSegment(two + EncodeIntakeRecord(2, Batch("old", 3)) + "stale");
  EXPECT_TRUE(reused.clean_end) << reused.stop_reason;
  EXPECT_EQ(reused.records.size(), 2u);
  EXPECT_TRUE(DecodeIntakeSegment("").clean_end);
}

TEST(IntakeSegment, EveryTruncationAndEveryFlippedByteStopsAtTheLastGoodRecord) {
  std::string first = EncodeIntakeRecord(1, Batch("f", 1));
  std::string second = EncodeIntakeRecord(2, Batch("s", 2));
  std::string bytes = first + second;
  for (size_t cut = first.size() + 1; cut < bytes.size(); ++cut) {
    IntakeSegmentContents c = DecodeIntakeSegment(std::string_view(bytes).substr(0, cut));
    ASSERT_EQ(c.records.size(), 1u) << "cut at " << cut;
    EXPECT_EQ(c.valid_bytes, first.size());
    EXPECT_FALSE(c.clean_end) << "cut at " << cut;
    EXPECT_FALSE(c.stop_reason.empty());
  }
  for (size_t at = first.size(); at < bytes.size(); ++at) {
    for (unsigned char flip : {0x01, 0x80}) {
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(damaged[at] ^ flip);
      IntakeSegmentContents c = DecodeIntakeSegment(damaged);
      ASSERT_EQ(c.records.size(), 1u) << "byte " << at << " flipped";
      EXPECT_EQ(c.records[0].batch.jobs[0].identity, "f0");
    }
  }
}

// A record framed by hand, as the format says: [magic "TPI1"][body length][body CRC-32]
// [sequence][CRC-32 of the 20 header bytes before it][body], little-endian.
std::string Frame(uint64_t seq, const std::string& body) {
  auto crc = [](const std::string& bytes) {
    boost::crc_32_type c;
    c.process_bytes(bytes.data(), bytes.size());
    return c.checksum();
  };
  std::string h;
  auto put = [&](uint64_t v, int n) {
    for (int i = 0; i < n; ++i) h.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  h = "TPI1";
  put(body.size(), 4);
  put(crc(body), 4);
  put(seq, 8);
  put(crc(h), 4);
  return h + body;
}

std::string Le32(uint32_t v) {
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

TEST(IntakeSegment, TheEncoderWritesTheDocumentedFrame) {
  IntakeBatch b = Batch("doc", 1);
  std::string encoded = EncodeIntakeRecord(42, b);
  EXPECT_EQ(encoded, Frame(42, encoded.substr(24)));
}

TEST(IntakeSegment, HostileCountsAndLengthsInACheckedRecordAreRefused) {
  std::string times(16, '\0');
  std::string job =
      Le32(5) + "route" + Le32(1) + "i" + Le32(1) + "s" + Le32(1) + "d" + Le32(2) + "{}";
  // Sanity: the hand-made body is a valid record.
  ASSERT_EQ(DecodeIntakeSegment(Frame(1, times + Le32(1) + job)).records.size(), 1u);
  const std::vector<std::pair<std::string, std::string>> hostile = {
      {"a job count far beyond the body", times + Le32(0xffffffffu) + job},
      {"one job more than the body holds", times + Le32(2) + job},
      {"a string longer than the body", times + Le32(1) + Le32(0x7fffffffu) + "route"},
      {"bytes after the last job", times + Le32(1) + job + "x"},
      {"a body shorter than its times", std::string(7, '\0')},
  };
  for (const auto& [what, body] : hostile) {
    std::string bytes = Frame(1, times + Le32(1) + job) + Frame(2, body);
    IntakeSegmentContents c = DecodeIntakeSegment(bytes);
    EXPECT_EQ(c.records.size(), 1u) << what;
    EXPECT_FALSE(c.clean_end) << what;
    EXPECT_NE(c.stop_reason.find("malformed record"), std::string::npos)
        << what << ": " << c.stop_reason;
  }
  // A length field beyond the input, with a header that checks.
  std::string frame = Frame(1, std::string(100, 'x'));
  IntakeSegmentContents cut = DecodeIntakeSegment(frame.substr(0, 60));
  EXPECT_TRUE(cut.records.empty());
  EXPECT_NE(cut.stop_reason.find("incomplete record"), std::string::npos) << cut.stop_reason;
}

}  // namespace
}  // namespace tracepager::daemon
