// The Outbox contract, run against the in-memory outbox and the SQLite one; what only SQLite
// promises (surviving a reopen, owner-only permissions, refusing a newer schema); and Delivery
// resuming from a reopened SQLite outbox.
#include "daemon/sqlite_outbox.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "integrations/delivery/delivery.h"
#include "integrations/delivery/memory_outbox.h"
#include "integrations/page_builder.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using integrations::DedupKey;
using integrations::Page;
using integrations::PagerTarget;
using integrations::Secret;
using integrations::delivery::EntryState;
using integrations::delivery::MemoryOutbox;
using integrations::delivery::Outbox;
using integrations::delivery::OutboxEntry;

OutboxEntry Entry(const std::string& submission, const std::string& identity,
                  const std::string& team, Page::Action action = Page::Action::kTrigger) {
  OutboxEntry e;
  e.submission = submission;
  e.group = submission + "#0:" + team;
  e.tried_teams = {team};
  e.page.action = action;
  e.page.alert_identity = identity;
  e.page.team = team;
  e.page.dedup_key = DedupKey(identity, team);
  e.page.summary = "orders-db: errors";
  e.target.kind = "pagerduty";
  e.target.team = team;
  e.target.credential = Secret("routing-key-" + team, "env PD_" + team);
  e.target_key = e.target.Key();
  e.created_ns = 100;
  e.deadline_ns = 200;
  e.next_attempt_ns = 100;
  return e;
}

class OutboxContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      outbox_ = std::make_unique<MemoryOutbox>();
    } else {
      Result<std::unique_ptr<SqliteOutbox>> o = SqliteOutbox::Open(dir_.path() + "/outbox.db");
      ASSERT_TRUE(o.ok()) << o.error().message;
      outbox_ = std::move(o).value();
    }
  }
  testing::TempDir dir_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_P(OutboxContract, CommitAssignsIncreasingIdsAndLoadsPending) {
  Result<std::vector<int64_t>> ids =
      outbox_->Commit({}, {Entry("j1", "am:1", "a"), Entry("j1", "am:1", "b")});
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  ASSERT_EQ(ids->size(), 2u);
  EXPECT_LT((*ids)[0], (*ids)[1]);
  Result<std::vector<OutboxEntry>> pending = outbox_->LoadPending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].id, (*ids)[0]);
  EXPECT_EQ((*pending)[0].page.team, "a");
  EXPECT_EQ((*pending)[0].target.credential.Reveal(), "routing-key-a");
  EXPECT_EQ((*pending)[0].target.credential.origin(), "env PD_a");
}

TEST_P(OutboxContract, UpdatesChangeOnlyTheMutableFields) {
  Result<std::vector<int64_t>> ids = outbox_->Commit({}, {Entry("j1", "am:1", "a")});
  ASSERT_TRUE(ids.ok());
  OutboxEntry u = Entry("j1", "am:1", "a");
  u.id = (*ids)[0];
  u.page.summary = "changed";  // not a mutable field: must not be written
  u.state = EntryState::kSent;
  u.attempts = 2;
  u.finished_ns = 150;
  u.last_http_status = 202;
  u.request_id = "req-1";
  u.history = {{140, 503, "HTTP 503", ""}, {150, 202, "", "req-1"}};
  ASSERT_TRUE(outbox_->Commit({u}, {}).ok());
  EXPECT_TRUE(outbox_->LoadPending()->empty());
  Result<std::vector<OutboxEntry>> group = outbox_->LoadGroup("j1#0:a");
  ASSERT_TRUE(group.ok());
  ASSERT_EQ(group->size(), 1u);
  EXPECT_EQ((*group)[0].state, EntryState::kSent);
  EXPECT_EQ((*group)[0].attempts, 2);
  EXPECT_EQ((*group)[0].request_id, "req-1");
  ASSERT_EQ((*group)[0].history.size(), 2u);
  EXPECT_EQ((*group)[0].history[0].http_status, 503);
  EXPECT_EQ((*group)[0].page.summary, "orders-db: errors");
}

TEST_P(OutboxContract, ACommitIsAllOrNothing) {
  OutboxEntry missing = Entry("j1", "am:1", "a");
  missing.id = 999;
  EXPECT_FALSE(outbox_->Commit({missing}, {Entry("j2", "am:2", "b")}).ok());
  EXPECT_TRUE(outbox_->LoadPending()->empty());
  EXPECT_FALSE(*outbox_->HasSubmission("j2"));
}

TEST_P(OutboxContract, FindsSubmissionsAndUnresolvedTriggers) {
  ASSERT_TRUE(
      outbox_
          ->Commit({}, {Entry("j1", "am:1", "a"), Entry("j1", "am:1", "b"),
                        Entry("j2", "am:2", "a"), Entry("j3", "am:1", "a", Page::Action::kResolve)})
          .ok());
  EXPECT_TRUE(*outbox_->HasSubmission("j1"));
  EXPECT_FALSE(*outbox_->HasSubmission("j9"));
  Result<std::vector<OutboxEntry>> open = outbox_->LoadUnresolvedTriggers("am:1");
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 2u);
  OutboxEntry resolved = (*open)[0];
  resolved.resolved = true;
  ASSERT_TRUE(outbox_->Commit({resolved}, {}).ok());
  EXPECT_EQ(outbox_->LoadUnresolvedTriggers("am:1")->size(), 1u);
}

TEST_P(OutboxContract, PruneKeepsPendingAndOpenTriggers) {
  Result<std::vector<int64_t>> ids = outbox_->Commit(
      {}, {Entry("j1", "am:1", "a"), Entry("j1", "am:1", "b"), Entry("j1", "am:1", "c")});
  ASSERT_TRUE(ids.ok());
  OutboxEntry sent_open = Entry("j1", "am:1", "a");
  sent_open.id = (*ids)[0];
  sent_open.state = EntryState::kSent;
  sent_open.finished_ns = 10;
  OutboxEntry failed = Entry("j1", "am:1", "b");
  failed.id = (*ids)[1];
  failed.state = EntryState::kFailed;
  failed.finished_ns = 10;
  ASSERT_TRUE(outbox_->Commit({sent_open, failed}, {}).ok());
  Result<size_t> pruned = outbox_->Prune(/*cutoff_ns=*/50, /*open_cutoff_ns=*/5);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 1u);  // the failed one; the open trigger and the pending one stay
  EXPECT_EQ(outbox_->LoadUnresolvedTriggers("am:1")->size(), 2u);
  EXPECT_EQ(*outbox_->Prune(50, 50), 1u);  // the open trigger, past its own cutoff
  EXPECT_EQ(outbox_->LoadPending()->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Outboxes, OutboxContract, ::testing::Values("memory", "sqlite"),
                         [](const auto& p) { return p.param; });

TEST(SqliteOutbox, SurvivesReopenAndIsOwnerOnly) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/state/outbox.db";
  {
    Result<std::unique_ptr<SqliteOutbox>> o = SqliteOutbox::Open(path);
    ASSERT_TRUE(o.ok()) << o.error().message;
    ASSERT_TRUE((*o)->Commit({}, {Entry("j1", "am:1", "a")}).ok());
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir.path() + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  Result<std::unique_ptr<SqliteOutbox>> again = SqliteOutbox::Open(path);
  ASSERT_TRUE(again.ok());
  Result<std::vector<OutboxEntry>> pending = (*again)->LoadPending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].page.dedup_key, DedupKey("am:1", "a"));
}

TEST(SqliteOutbox, RefusesANewerSchema) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/outbox.db";
  ASSERT_TRUE(SqliteOutbox::Open(path).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  Result<std::unique_ptr<SqliteOutbox>> o = SqliteOutbox::Open(path);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().code, ErrorCode::kInvalidInput);
}

TEST(SqliteOutbox, UnopenablePathIsUnavailable) {
  Result<std::unique_ptr<SqliteOutbox>> o = SqliteOutbox::Open("/proc/no/such/outbox.db");
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace tracepager::daemon
