#include "daemon/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "daemon/store_sql.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kNow = 1'795'728'000 * kSecond;
constexpr int64_t kDedup = 120 * kSecond;

RoutingJob MakeJob(const std::string& identity, const std::string& storm_key,
                   JobKind kind = JobKind::kRoute) {
  RoutingJob j;
  j.kind = kind;
  j.identity = identity;
  j.storm_key = storm_key;
  j.dedup_key = identity + "|" + JobKindName(kind);
  j.source = "alertmanager";
  j.alerting_service = storm_key.substr(0, storm_key.find('|'));
  j.labels["alertname"] = "A-" + identity;
  j.trace_ids = {"4bf92f3577b34da6a3ce929d0e0e4736"};
  j.received_ns = kNow;
  return j;
}

StoreOptions Options(const std::string& dir) {
  StoreOptions o;
  o.dir = dir;
  return o;
}

std::unique_ptr<Store> OpenOrDie(const StoreOptions& o) {
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? std::move(*s) : nullptr;
}

Claim ClaimOrDie(Store& s, int64_t now = kNow, size_t max_group = 1000) {
  Result<std::optional<Claim>> c = s.ClaimNext(now, max_group);
  EXPECT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c.ok() && c->has_value());
  return c.ok() && c->has_value() ? std::move(**c) : Claim{};
}

bool NothingReady(Store& s, int64_t now = kNow) {
  Result<std::optional<Claim>> c = s.ClaimNext(now, 1000);
  return c.ok() && !c->has_value();
}

Completion Finish(const Claim& c, const std::string& kind = "routed") {
  Completion done;
  for (const ClaimedJob& j : c.jobs) done.job_ids.push_back(j.id);
  done.storm_key = c.storm_key;
  done.now_ns = kNow;
  done.decision_kind = kind;
  done.decision_json = "{}";
  return done;
}

// Open pages of one identity (empty when none, or when the lookup failed, which fails the test).
std::vector<PageRecord> PagesOf(Store& s, const std::string& identity) {
  Result<std::map<std::string, std::vector<PageRecord>>> pages =
      s.OpenPagesForIdentities({identity});
  EXPECT_TRUE(pages.ok()) << pages.error().message;
  if (!pages.ok() || pages->count(identity) == 0) return {};
  return pages->at(identity);
}

std::vector<std::string> Identities(const Claim& c) {
  std::vector<std::string> out;
  for (const ClaimedJob& j : c.jobs) out.push_back(j.job.identity);
  return out;
}

// All ids in the queue, claiming and completing everything.
std::set<int64_t> DrainIds(Store& s) {
  std::set<int64_t> ids;
  for (int guard = 0; guard < 100000; ++guard) {
    Result<std::optional<Claim>> c = s.ClaimNext(kNow, 1000);
    if (!c.ok() || !c->has_value()) break;
    for (const ClaimedJob& j : (*c)->jobs) ids.insert(j.id);
    EXPECT_TRUE(s.Complete(Finish(**c)).ok());
  }
  return ids;
}

// A claim read back from the queue carries the details of its first job; the others' are read
// back when asked for, while the job is claimed.
TEST(Store, AClaimCarriesTheDetailsOfItsFirstJobAndReadsTheOthersOnRequest) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  std::vector<RoutingJob> jobs = {MakeJob("am:1", "checkout|errors"),
                                  MakeJob("am:2", "checkout|errors"),
                                  MakeJob("am:3", "checkout|errors")};
  jobs[1].summary = "second";
  jobs[1].annotations["runbook_url"] = "https://runbooks/2";
  ASSERT_TRUE(s->Enqueue(jobs, kNow, kDedup).ok());
  Claim c = ClaimOrDie(*s);
  ASSERT_EQ(c.jobs.size(), 3u);
  EXPECT_TRUE(c.jobs[0].detailed);
  EXPECT_EQ(c.jobs[0].job, jobs[0]);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_FALSE(c.jobs[i].detailed);
    EXPECT_TRUE(c.jobs[i].job.labels.empty());
    EXPECT_EQ(c.jobs[i].job.identity, jobs[i].identity);
    EXPECT_EQ(c.jobs[i].job.trace_ids, jobs[i].trace_ids);
  }
  for (size_t i = 0; i < 3; ++i) {
    Result<RoutingJob> full = s->DetailedJob(c.jobs[i]);
    ASSERT_TRUE(full.ok()) << full.error().message;
    EXPECT_EQ(*full, jobs[i]) << i;
  }
  ASSERT_TRUE(s->Complete(Finish(c)).ok());
  Result<RoutingJob> gone = s->DetailedJob(c.jobs[1]);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(s->DetailedJob(c.jobs[0]).ok()) << "a job that has its details needs no read";
}

TEST(Store, EnqueuedJobsSurviveCloseAndReopen) {
  testing::TempDir dir;
  std::vector<int64_t> ids;
  {
    auto s = OpenOrDie(Options(dir.path()));
    Result<EnqueueOutcome> a = s->Enqueue(
        {MakeJob("am:1", "checkout|errors"), MakeJob("am:2", "payment|errors")}, kNow, kDedup);
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_EQ(a->job_ids.size(), 2u);
    Result<EnqueueOutcome> b = s->Enqueue({MakeJob("am:3", "checkout|errors")}, kNow, kDedup);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(s->stats().queued, 3u);
  }
  auto s = OpenOrDie(Options(dir.path()));
  EXPECT_EQ(s->stats().queued, 3u);
  EXPECT_EQ(s->stats().resumed_at_open, 0u);
  Claim c = ClaimOrDie(*s);
  EXPECT_EQ(c.storm_key, "checkout|errors");
  EXPECT_EQ(Identities(c), (std::vector<std::string>{"am:1", "am:3"}));
  EXPECT_EQ(c.jobs[0].job.labels.at("alertname"), "A-am:1");
  EXPECT_EQ(c.jobs[0].job.trace_ids, MakeJob("x", "y").trace_ids);
  EXPECT_EQ(c.jobs[0].claims, 1u);
  EXPECT_EQ(c.jobs[0].enqueued_ns, kNow);
  EXPECT_EQ(Identities(ClaimOrDie(*s)), std::vector<std::string>{"am:2"});
}

TEST(Store, ClaimsGroupAStormKeyAndNeverHandOutAClaimedKey) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|errors"), MakeJob("b1", "B|errors"),
                          MakeJob("a2", "A|errors"), MakeJob("a3", "A|errors")},
                         kNow, kDedup)
                  .ok());
  Claim a = ClaimOrDie(*s, kNow, 2);  // max_group 2
  EXPECT_EQ(Identities(a), (std::vector<std::string>{"a1", "a2"}));
  // a3 is ready but its storm key is held: B comes next, then nothing.
  Claim b = ClaimOrDie(*s);
  EXPECT_EQ(Identities(b), std::vector<std::string>{"b1"});
  EXPECT_TRUE(NothingReady(*s));
  ASSERT_TRUE(s->Enqueue({MakeJob("a4", "A|errors")}, kNow, kDedup).ok());
  EXPECT_TRUE(NothingReady(*s));
  EXPECT_EQ(s->stats().claimed, 3u);
  ASSERT_TRUE(s->Complete(Finish(a)).ok());
  EXPECT_EQ(Identities(ClaimOrDie(*s)), (std::vector<std::string>{"a3", "a4"}));
  EXPECT_EQ(s->stats().queued, 3u);  // b1, a3, a4
}

TEST(Store, ReleaseRequeuesForLater) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|errors")}, kNow, kDedup).ok());
  Claim c = ClaimOrDie(*s);
  ASSERT_TRUE(s->Release({c.jobs[0].id}, kNow + 10 * kSecond).ok());
  EXPECT_TRUE(NothingReady(*s, kNow + 9 * kSecond));
  Claim again = ClaimOrDie(*s, kNow + 10 * kSecond);
  EXPECT_EQ(again.jobs[0].id, c.jobs[0].id);
  EXPECT_EQ(again.jobs[0].claims, 2u);
  // Releasing what is not claimed is a bug.
  ASSERT_TRUE(s->Release({again.jobs[0].id}, 0).ok());
  Status twice = s->Release({again.jobs[0].id}, 0);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, ErrorCode::kInternal);
}

TEST(Store, CompleteIsAllOrNothing) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_TRUE(
      s->Enqueue({MakeJob("a1", "A|errors"), MakeJob("b1", "B|errors")}, kNow, kDedup).ok());
  Claim a = ClaimOrDie(*s);
  Completion bad = Finish(a);
  bad.job_ids.push_back(a.jobs[0].id + 1);  // b1: queued, not claimed
  bad.new_pages.push_back({"payments", "log", "dk", "{}", {"a1"}});
  Result<CompletionOutcome> r = s->Complete(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  // Nothing of it happened: a1 still claimed, no page recorded.
  EXPECT_TRUE(PagesOf(*s, "a1").empty());
  EXPECT_EQ(s->stats().queued, 2u);
  Result<CompletionOutcome> good = s->Complete(Finish(a));
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_GT(good->decision_id, 0);
  EXPECT_EQ(s->stats().queued, 1u);
  EXPECT_EQ(s->stats().claimed, 0u);
}

TEST(Store, DuplicatesWithinTheDedupWindowAreQueuedOnce) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  Result<EnqueueOutcome> first =
      s->Enqueue({MakeJob("a1", "A|errors"), MakeJob("a1", "A|errors"), MakeJob("b1", "B|errors")},
                 kNow, kDedup);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->job_ids.size(), 2u);
  EXPECT_EQ(first->duplicates, 1u);
  Result<EnqueueOutcome> replica =
      s->Enqueue({MakeJob("a1", "A|errors")}, kNow + 30 * kSecond, kDedup);
  ASSERT_TRUE(replica.ok());
  EXPECT_TRUE(replica->job_ids.empty());
  EXPECT_EQ(replica->duplicates, 1u);
  // The resolve of the same alert is a different notification.
  Result<EnqueueOutcome> resolve =
      s->Enqueue({MakeJob("a1", "A|errors", JobKind::kResolve)}, kNow + 30 * kSecond, kDedup);
  EXPECT_EQ(resolve->job_ids.size(), 1u);
  // After the window the same notification is new again (a repeat_interval re-send).
  Result<EnqueueOutcome> later =
      s->Enqueue({MakeJob("a1", "A|errors")}, kNow + 200 * kSecond, kDedup);
  EXPECT_EQ(later->job_ids.size(), 1u);
  // Window 0 turns dedup off.
  Result<EnqueueOutcome> off = s->Enqueue({MakeJob("a1", "A|errors")}, kNow + 201 * kSecond, 0);
  EXPECT_EQ(off->job_ids.size(), 1u);
  EXPECT_EQ(s->stats().duplicates, 2u);
  EXPECT_EQ(s->stats().queued, 5u);
}

TEST(Store, FullQueueIsUnavailable) {
  testing::TempDir dir;
  StoreOptions o = Options(dir.path());
  o.max_queued_jobs = 5;
  auto s = OpenOrDie(o);
  ASSERT_TRUE(
      s->Enqueue({MakeJob("1", "A|e"), MakeJob("2", "A|e"), MakeJob("3", "B|e")}, kNow, kDedup)
          .ok());
  Result<EnqueueOutcome> over =
      s->Enqueue({MakeJob("4", "A|e"), MakeJob("5", "A|e"), MakeJob("6", "A|e")}, kNow, kDedup);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(over.error().message.find("queue is full"), std::string::npos);
  EXPECT_EQ(s->stats().rejected_full, 1u);
  EXPECT_EQ(s->stats().queued, 3u);  // none of the refused webhook's jobs
  // Duplicates do not count against the limit.
  EXPECT_TRUE(
      s->Enqueue({MakeJob("1", "A|e"), MakeJob("4", "A|e"), MakeJob("5", "A|e")}, kNow, kDedup)
          .ok());
  EXPECT_FALSE(s->Enqueue({MakeJob("7", "C|e")}, kNow, kDedup).ok());
  // Finishing work makes room.
  Claim c = ClaimOrDie(*s);
  ASSERT_TRUE(s->Complete(Finish(c)).ok());
  EXPECT_TRUE(s->Enqueue({MakeJob("7", "C|e")}, kNow, kDedup).ok());
}

// Holds the store's writer thread: the completion of an enqueue (job "first", storm key "A|e")
// runs on the writer and blocks there until Release(), so that operations submitted meanwhile
// are all pending when the writer takes its next batch. Deterministic, no sleeps.
class WriterHold {
 public:
  explicit WriterHold(Store& s) {
    s.EnqueueAsync({MakeJob("first", "A|e")}, kNow, kDedup, [this](Result<EnqueueOutcome> r) {
      EXPECT_TRUE(r.ok());
      std::unique_lock<std::mutex> lk(mu_);
      holding_ = true;
      cv_.notify_all();
      cv_.wait(lk, [&] { return released_; });
      finished_ = true;
      cv_.notify_all();
    });
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return holding_; });  // its commit is done; the writer is held
  }
  ~WriterHold() {
    std::unique_lock<std::mutex> lk(mu_);
    released_ = true;
    cv_.notify_all();
    cv_.wait(lk, [&] { return finished_; });  // the writer left the callback
  }
  WriterHold(const WriterHold&) = delete;
  WriterHold& operator=(const WriterHold&) = delete;

  void Release() {
    std::lock_guard<std::mutex> lk(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool holding_ = false, released_ = false, finished_ = false;
};

// Enqueues each list of jobs as an operation of its own while a WriterHold holds the writer,
// then lets it go and returns once every one was answered (each must succeed).
void EnqueueWhileHeld(Store& s, const std::vector<std::vector<RoutingJob>>& calls) {
  WriterHold hold(s);
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  for (const std::vector<RoutingJob>& jobs : calls) {
    s.EnqueueAsync(jobs, kNow, kDedup, [&](Result<EnqueueOutcome> r) {
      EXPECT_TRUE(r.ok());
      std::lock_guard<std::mutex> lk(mu);
      ++done;
      cv.notify_all();
    });
  }
  hold.Release();
  std::unique_lock<std::mutex> lk(mu);
  cv.wait(lk, [&] { return done == calls.size(); });
}

TEST(Store, ConcurrentEnqueuesShareTransactions) {
  // The writer is held until 50 more enqueues are pending; it must then commit all 50 in a
  // single transaction.
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  std::vector<std::vector<RoutingJob>> calls;
  for (int i = 0; i < 50; ++i) calls.push_back({MakeJob("j" + std::to_string(i), "B|e")});
  EnqueueWhileHeld(*s, calls);
  StoreStats st = s->stats();
  EXPECT_EQ(st.transactions, 2u);
  EXPECT_EQ(st.enqueue_calls, 51u);
  EXPECT_EQ(st.queued, 51u);
}

TEST(Store, AFailingOperationLeavesNoTraceAndTheRestOfItsBatchCommits) {
  // The writer applies a batch without savepoints first; when one operation fails it rolls the
  // batch back and applies it again, one savepoint per operation. The writer is held so that
  // three enqueues form one batch: the middle one does not fit the queue.
  testing::TempDir dir;
  StoreOptions o = Options(dir.path());
  o.max_queued_jobs = 4;
  auto s = OpenOrDie(o);
  auto hold = std::make_unique<WriterHold>(*s);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::optional<Result<EnqueueOutcome>>> results(3);
  auto keep = [&](size_t i) {
    return [&, i](Result<EnqueueOutcome> r) {
      std::lock_guard<std::mutex> lk(mu);
      results[i] = std::move(r);
      cv.notify_all();
    };
  };
  s->EnqueueAsync({MakeJob("a1", "B|e"), MakeJob("a2", "B|e")}, kNow, kDedup, keep(0));
  s->EnqueueAsync({MakeJob("b1", "C|e"), MakeJob("b2", "C|e")}, kNow, kDedup, keep(1));
  s->EnqueueAsync({MakeJob("c1", "D|e")}, kNow, kDedup, keep(2));
  hold.reset();
  {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return results[0] && results[1] && results[2]; });
  }
  ASSERT_TRUE(results[0]->ok());
  EXPECT_EQ((*results[0])->job_ids.size(), 2u);  // not counted twice by the second pass
  ASSERT_FALSE(results[1]->ok());
  EXPECT_NE(results[1]->error().message.find("queue is full"), std::string::npos);
  ASSERT_TRUE(results[2]->ok());
  EXPECT_EQ((*results[2])->job_ids.size(), 1u);
  StoreStats st = s->stats();
  EXPECT_EQ(st.transactions, 2u);
  EXPECT_EQ(st.queued, 4u);
  EXPECT_EQ(st.rejected_full, 1u);
  EXPECT_TRUE(st.last_commit_ok);
  // What the store holds: exactly the accepted webhooks' jobs.
  std::set<std::string> stored;
  for (int guard = 0; guard < 10; ++guard) {
    Result<std::optional<Claim>> c = s->ClaimNext(kNow, 1000);
    ASSERT_TRUE(c.ok());
    if (!c->has_value()) break;
    for (const std::string& id : Identities(**c)) stored.insert(id);
    ASSERT_TRUE(s->Complete(Finish(**c)).ok());
  }
  EXPECT_EQ(stored, (std::set<std::string>{"first", "a1", "a2", "c1"}));
  // A batch of one failing operation commits nothing and the store stays healthy.
  uint64_t transactions = s->stats().transactions;
  Result<EnqueueOutcome> over =
      s->Enqueue({MakeJob("e1", "E|e"), MakeJob("e2", "E|e"), MakeJob("e3", "E|e"),
                  MakeJob("e4", "E|e"), MakeJob("e5", "E|e")},
                 kNow, kDedup);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s->stats().transactions, transactions);
  EXPECT_TRUE(s->stats().last_commit_ok);
  EXPECT_TRUE(s->Enqueue({MakeJob("e1", "E|e")}, kNow, kDedup).ok());
  EXPECT_EQ(s->stats().queued, 1u);
}

TEST(Store, ManyThreadsBlockingEnqueueAllDurableInFewerTransactions) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  constexpr int kThreads = 8, kPerThread = 60;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<int64_t> ids;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = std::to_string(t) + "-" + std::to_string(i);
        Result<EnqueueOutcome> r =
            s->Enqueue({MakeJob(id, "S" + std::to_string(t) + "|e")}, kNow, kDedup);
        if (!r.ok() || r->job_ids.size() != 1) {
          ++failures;
          continue;
        }
        std::lock_guard<std::mutex> lk(mu);
        ids.insert(r->job_ids[0]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ids.size(), size_t{kThreads * kPerThread});
  StoreStats st = s->stats();
  EXPECT_EQ(st.enqueue_calls, uint64_t{kThreads * kPerThread});
  EXPECT_LT(st.transactions, uint64_t{kThreads * kPerThread});
  std::printf("%d enqueues in %llu transactions\n", kThreads * kPerThread,
              static_cast<unsigned long long>(st.transactions));
  s.reset();
  auto reopened = OpenOrDie(Options(dir.path()));
  EXPECT_EQ(DrainIds(*reopened), ids);
}

// Runs `child` in a forked process that reports through `fd`; the parent gets the read end.
pid_t ForkChild(int* read_fd, const std::function<void(int write_fd)>& child) {
  int p[2];
  EXPECT_EQ(::pipe(p), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    child(p[1]);
    ::_exit(0);
  }
  ::close(p[1]);
  *read_fd = p[0];
  return pid;
}

bool ReadExactly(int fd, void* buf, size_t n) {
  char* b = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::read(fd, b, n);
    if (r <= 0) return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void KillAndReap(pid_t pid) {
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

// The child side of "kill me here": reports that it reached the point, then waits to be killed.
[[noreturn]] void ReadyToBeKilled(int out) {
  char ready = 'R';
  if (::write(out, &ready, 1) != 1) ::_exit(99);
  for (;;) ::pause();
}

// The parent side: waits for the child to report (ReadyToBeKilled), then kills it.
void KillWhenReady(pid_t pid, int fd, const std::string& what) {
  char ready = 0;
  ASSERT_TRUE(ReadExactly(fd, &ready, 1)) << "child failed before " << what;
  ASSERT_EQ(ready, 'R');
  KillAndReap(pid);
  ::close(fd);
}

TEST(Store, JobsInFlightWhenKilledAreResumedAtOpen) {
  testing::TempDir dir;
  int fd;
  pid_t pid = ForkChild(&fd, [&](int out) {
    Result<std::unique_ptr<Store>> s = Store::Open(Options(dir.path()));
    if (!s.ok()) ::_exit(3);
    if (!(*s)->Enqueue({MakeJob("a1", "A|e"), MakeJob("a2", "A|e"), MakeJob("b1", "B|e"),
                        MakeJob("c1", "C|e")},
                       kNow, kDedup)
             .ok()) {
      ::_exit(4);
    }
    Result<std::optional<Claim>> a = (*s)->ClaimNext(kNow, 10);  // a1, a2 in flight
    Result<std::optional<Claim>> b = (*s)->ClaimNext(kNow, 10);  // b1 in flight...
    if (!a.ok() || !b.ok() || !a->has_value() || !b->has_value()) ::_exit(5);
    Completion done;  // ...and finished
    done.job_ids = {(*b)->jobs[0].id};
    done.storm_key = "B|e";
    done.now_ns = kNow;
    done.decision_kind = "routed";
    done.decision_json = "{}";
    if (!(*s)->Complete(done).ok()) ::_exit(6);
    ReadyToBeKilled(out);  // with a1 and a2 claimed
  });
  ASSERT_NO_FATAL_FAILURE(KillWhenReady(pid, fd, "claiming"));

  auto s = OpenOrDie(Options(dir.path()));
  EXPECT_EQ(s->stats().resumed_at_open, 2u);
  EXPECT_EQ(s->stats().queued, 3u);  // a1, a2, c1; b1 was completed
  Claim a = ClaimOrDie(*s);
  EXPECT_EQ(Identities(a), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(a.jobs[0].claims, 2u);  // claimed once before the crash
  EXPECT_EQ(Identities(ClaimOrDie(*s)), std::vector<std::string>{"c1"});
  EXPECT_TRUE(NothingReady(*s));
}

TEST(Store, EveryAcknowledgedEnqueueSurvivesKill9) {
  testing::TempDir dir;
  int fd;
  pid_t pid = ForkChild(&fd, [&](int out) {
    Result<std::unique_ptr<Store>> s = Store::Open(Options(dir.path()));
    if (!s.ok()) ::_exit(3);
    // Four threads enqueue and report each acknowledged id, until killed.
    std::mutex write_mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          std::string id = std::to_string(t) + "-" + std::to_string(i);
          Result<EnqueueOutcome> r = (*s)->Enqueue({MakeJob(id, id + "|e")}, kNow, kDedup);
          if (!r.ok()) ::_exit(4);
          std::lock_guard<std::mutex> lk(write_mu);
          if (::write(out, &r->job_ids[0], sizeof(int64_t)) != sizeof(int64_t)) ::_exit(5);
        }
      });
    }
    for (std::thread& t : threads) t.join();
  });
  std::set<int64_t> acked;
  while (acked.size() < 200) {
    int64_t id;
    ASSERT_TRUE(ReadExactly(fd, &id, sizeof id));
    acked.insert(id);
  }
  KillAndReap(pid);  // mid-stream: other enqueues are in flight right now
  ::close(fd);
  auto s = OpenOrDie(Options(dir.path()));
  std::set<int64_t> stored = DrainIds(*s);
  for (int64_t id : acked) EXPECT_TRUE(stored.count(id)) << "acknowledged job " << id << " lost";
}

TEST(Store, FullDatabaseIsUnavailableAndRecovers) {
  testing::TempDir dir;
  StoreOptions o = Options(dir.path());
  o.max_bytes = 256 * 1024;  // SQLite answers SQLITE_FULL past this size
  auto s = OpenOrDie(o);
  RoutingJob big = MakeJob("x", "A|e");
  big.annotations["description"] = std::string(8000, 'd');
  int accepted = 0;
  Result<EnqueueOutcome> r = EnqueueOutcome{};
  for (int i = 0; i < 1000; ++i) {
    RoutingJob j = big;
    j.identity = j.dedup_key = "big" + std::to_string(i);
    r = s->Enqueue({j}, kNow, kDedup);
    if (!r.ok()) break;
    ++accepted;
  }
  ASSERT_FALSE(r.ok()) << "never filled up";
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("database is full"), std::string::npos) << r.error().message;
  EXPECT_GT(accepted, 5);
  EXPECT_EQ(s->stats().queued, static_cast<uint64_t>(accepted));
  // Work already queued can still be finished, which frees room.
  Claim c = ClaimOrDie(*s);
  ASSERT_TRUE(s->Complete(Finish(c)).ok());
  RoutingJob small = MakeJob("small", "B|e");
  EXPECT_TRUE(s->Enqueue({small}, kNow, kDedup).ok());
}

TEST(Store, SqliteFullIsUnavailable) {
  // Past the enqueue headroom SQLite itself answers SQLITE_FULL (max_page_count): one webhook
  // bigger than the headroom gets there.
  testing::TempDir dir;
  StoreOptions o = Options(dir.path());
  o.max_bytes = 256 * 1024;
  auto s = OpenOrDie(o);
  std::vector<RoutingJob> jobs;
  for (int i = 0; i < 100; ++i) {
    RoutingJob j = MakeJob("big" + std::to_string(i), "A|e");
    j.annotations["description"] = std::string(8000, 'd');
    jobs.push_back(std::move(j));
  }
  Result<EnqueueOutcome> r = s->Enqueue(jobs, kNow, kDedup);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("database or disk is full"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(s->stats().last_commit_ok);
  EXPECT_EQ(s->stats().queued, 0u);
  EXPECT_TRUE(s->Enqueue({MakeJob("small", "B|e")}, kNow, kDedup).ok());
  EXPECT_TRUE(s->stats().last_commit_ok);
}

TEST(Store, FileSizeLimitActsLikeAFullDisk) {
  // RLIMIT_FSIZE makes write(2) fail past a size (EFBIG), the unprivileged way to get a real
  // file system write failure under SQLite. Run in a child: the limit is per process.
  testing::TempDir dir;
  int fd;
  pid_t pid = ForkChild(&fd, [&](int out) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {512 * 1024, 512 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(3);
    Result<std::unique_ptr<Store>> s = Store::Open(Options(dir.path()));
    if (!s.ok()) ::_exit(4);
    RoutingJob big = MakeJob("x", "A|e");
    big.annotations["description"] = std::string(16000, 'd');
    int64_t acked = 0;
    for (int i = 0; i < 10000; ++i) {
      RoutingJob j = big;
      j.identity = j.dedup_key = "big" + std::to_string(i);
      Result<EnqueueOutcome> r = (*s)->Enqueue({j}, kNow, kDedup);
      if (!r.ok()) {
        char code = r.error().code == ErrorCode::kUnavailable ? 'U' : 'X';
        if (::write(out, &code, 1) != 1 || ::write(out, &acked, sizeof acked) != sizeof acked) {
          ::_exit(5);
        }
        ::_exit(0);
      }
      ++acked;
    }
    ::_exit(6);  // never failed
  });
  char code = 0;
  int64_t acked = 0;
  ASSERT_TRUE(ReadExactly(fd, &code, 1));
  ASSERT_TRUE(ReadExactly(fd, &acked, sizeof acked));
  ::close(fd);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(code, 'U');
  EXPECT_GT(acked, 0);
  // Without the limit, everything acknowledged before the failure is there.
  auto s = OpenOrDie(Options(dir.path()));
  EXPECT_EQ(s->stats().queued, static_cast<uint64_t>(acked));
}

// The database file grows grow_bytes at a time (at most an eighth of max_bytes), not page by
// page: closing the store checkpoints everything into it.
TEST(Store, TheDatabaseFileGrowsInChunks) {
  auto file_size_after_a_few_jobs = [](uint64_t grow_bytes, uint64_t max_bytes) -> uintmax_t {
    testing::TempDir dir;
    StoreOptions o = Options(dir.path());
    o.grow_bytes = grow_bytes;
    o.max_bytes = max_bytes;
    {
      auto s = OpenOrDie(o);
      if (s == nullptr) return 0;
      for (int i = 0; i < 20; ++i) {
        EXPECT_TRUE(s->Enqueue({MakeJob("g" + std::to_string(i), "A|e")}, kNow, kDedup).ok());
      }
    }
    std::error_code ec;
    uintmax_t size = std::filesystem::file_size(dir.path() + "/tracepager.db", ec);
    EXPECT_FALSE(ec) << ec.message();
    return size;
  };
  EXPECT_EQ(file_size_after_a_few_jobs(1u << 20, 0), 1u << 20);
  EXPECT_EQ(file_size_after_a_few_jobs(3u << 20, 0), 3u << 20);
  // Capped by max_bytes: an eighth of 2 MiB.
  EXPECT_EQ(file_size_after_a_few_jobs(8u << 20, 2u << 20), 256u << 10);
  // Page by page: the few pages the schema and the jobs take.
  uintmax_t unchunked = file_size_after_a_few_jobs(0, 0);
  EXPECT_GT(unchunked, 0u);
  EXPECT_LT(unchunked, 256u << 10);
}

TEST(Store, OneProcessPerDirectory) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  Result<std::unique_ptr<Store>> second = Store::Open(Options(dir.path()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos);
  s.reset();
  EXPECT_TRUE(Store::Open(Options(dir.path())).ok());
}

TEST(Store, RefusesANewerSchema) {
  testing::TempDir dir;
  { auto s = OpenOrDie(Options(dir.path())); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() + "/tracepager.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  Result<std::unique_ptr<Store>> s = Store::Open(Options(dir.path()));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(s.error().message.find("schema version 99"), std::string::npos);
}

TEST(Store, UnparseableJobIsSetAsideNotBlocking) {
  testing::TempDir dir;
  {
    auto s = OpenOrDie(Options(dir.path()));
    ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|e"), MakeJob("a2", "A|e")}, kNow, kDedup).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() + "/tracepager.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE job_payloads SET payload='{broken' WHERE job_id=(SELECT id FROM "
                         "jobs WHERE identity='a1')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = OpenOrDie(Options(dir.path()));
  Claim c = ClaimOrDie(*s);
  EXPECT_EQ(Identities(c), std::vector<std::string>{"a2"});
  EXPECT_EQ(s->stats().dead_jobs, 1u);
  EXPECT_EQ(s->stats().queued, 1u);
}

TEST(Store, CheckpointsKeepTheWalBoundedWhileTheWriterCommits) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  namespace fs = std::filesystem;
  const std::string wal = dir.path() + "/tracepager.db-wal";
  // One enqueue after another, each its own commit, writing 48 MB of jobs: the automatic
  // checkpoints keep the WAL far smaller than that; without them it would hold all of it.
  constexpr uint64_t kWritten = 48u << 20;
  constexpr size_t kPadding = 4000;
  int64_t seq = 0;
  uintmax_t largest_wal = 0;
  while (static_cast<uint64_t>(seq) * kPadding < kWritten) {
    std::vector<RoutingJob> jobs;
    for (int i = 0; i < 10; ++i, ++seq) {
      RoutingJob j = MakeJob("id" + std::to_string(seq), "svc" + std::to_string(seq % 50) + "|e");
      j.labels["padding"] = std::string(kPadding, 'x');
      jobs.push_back(std::move(j));
    }
    ASSERT_TRUE(s->Enqueue(std::move(jobs), kNow, kDedup).ok());
    std::error_code ec;
    largest_wal = std::max(largest_wal, fs::file_size(wal, ec));
  }
  EXPECT_LT(largest_wal, kWritten / 2) << "jobs " << seq;
  EXPECT_EQ(s->stats().queued, static_cast<uint64_t>(seq));
}

TEST(Store, PageMemoryForStormsRepeatsAndResolves) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_TRUE(s->Enqueue({MakeJob("a1", "checkout|errors")}, kNow, kDedup).ok());
  Claim first = ClaimOrDie(*s);
  Completion done = Finish(first);
  done.new_pages.push_back({"payments", "log", "tp-dk-1", R"({"team":"payments"})", {"a1"}});
  Result<CompletionOutcome> out = s->Complete(done);
  ASSERT_TRUE(out.ok()) << out.error().message;
  ASSERT_EQ(out->page_ids.size(), 1u);
  int64_t page_id = out->page_ids[0];

  // A storm: the open page is found by storm key within the window, not outside it.
  Result<std::vector<PageRecord>> storm = s->OpenPagesForStorm("checkout|errors", kNow - 1);
  ASSERT_TRUE(storm.ok());
  ASSERT_EQ(storm->size(), 1u);
  EXPECT_EQ((*storm)[0].id, page_id);
  EXPECT_EQ((*storm)[0].team, "payments");
  EXPECT_EQ((*storm)[0].dedup_key, "tp-dk-1");
  EXPECT_EQ((*storm)[0].decision_id, out->decision_id);
  EXPECT_EQ(PagesOf(*s, "a1").at(0).id, page_id);
  EXPECT_EQ(*s->FiringIdentities(page_id), std::vector<std::string>{"a1"});
  EXPECT_TRUE(s->OpenPagesForStorm("checkout|errors", kNow + 1)->empty());
  EXPECT_TRUE(s->OpenPagesForStorm("checkout|latency", 0)->empty());

  // Two more alerts of the storm join the page; a repeat of a1 is recognised.
  ASSERT_TRUE(
      s->Enqueue({MakeJob("a2", "checkout|errors"), MakeJob("a3", "checkout|errors")}, kNow, kDedup)
          .ok());
  Claim storm_claim = ClaimOrDie(*s);
  Completion join = Finish(storm_claim, "storm");
  join.attach = {{page_id, "a2"}, {page_id, "a3"}};
  ASSERT_TRUE(s->Complete(join).ok());
  EXPECT_EQ(PagesOf(*s, "a1").size(), 1u);
  EXPECT_EQ(PagesOf(*s, "a3").at(0).id, page_id);
  EXPECT_EQ(*s->FiringIdentities(page_id), (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(*s->FiringCount(page_id), 3u);
  EXPECT_EQ(*s->FiringCount(page_id, {"a1", "a3", "a9"}), 2u);  // a9 is not on the page
  EXPECT_TRUE(PagesOf(*s, "a4").empty());
  // Many identities in one lookup: only those on an open page come back; identities that need
  // escaping in the JSON list they travel in are found too.
  ASSERT_TRUE(s->Enqueue({MakeJob("q\"\\\u00e9", "checkout|errors")}, kNow, kDedup).ok());
  Completion odd = Finish(ClaimOrDie(*s), "storm");
  odd.attach = {{page_id, "q\"\\\u00e9"}};
  ASSERT_TRUE(s->Complete(odd).ok());
  Result<std::map<std::string, std::vector<PageRecord>>> many =
      s->OpenPagesForIdentities({"a1", "a4", "a3", "q\"\\\u00e9"});
  ASSERT_TRUE(many.ok()) << many.error().message;
  EXPECT_EQ(many->size(), 3u);
  EXPECT_EQ(many->count("a4"), 0u);
  for (const char* id : {"a1", "a3", "q\"\\\u00e9"}) {
    ASSERT_EQ(many->count(id), 1u) << id;
    ASSERT_EQ(many->at(id).size(), 1u) << id;
    EXPECT_EQ(many->at(id)[0].id, page_id) << id;
  }
  EXPECT_TRUE(s->OpenPagesForIdentities({})->empty());

  // a1 and a2 resolve: the page stays open for a3. Then a3 resolves and the page with it.
  ASSERT_TRUE(s->Enqueue({MakeJob("a1", "checkout|errors", JobKind::kResolve),
                          MakeJob("a2", "checkout|errors", JobKind::kResolve)},
                         kNow, kDedup)
                  .ok());
  Completion r1 = Finish(ClaimOrDie(*s), "resolve");
  r1.resolved_identities = {"a1", "a2", "q\"\\\u00e9"};
  ASSERT_TRUE(s->Complete(r1).ok());
  EXPECT_TRUE(PagesOf(*s, "a1").empty());
  ASSERT_EQ(PagesOf(*s, "a3").size(), 1u);
  EXPECT_EQ(*s->FiringIdentities(page_id), std::vector<std::string>{"a3"});
  EXPECT_EQ(*s->FiringCount(page_id), 1u);
  EXPECT_EQ(*s->FiringCount(page_id, {"a1", "a2"}), 0u);  // resolved ones no longer count
  ASSERT_TRUE(s->Enqueue({MakeJob("a3", "checkout|errors", JobKind::kResolve)}, kNow, kDedup).ok());
  Completion r2 = Finish(ClaimOrDie(*s), "resolve");
  r2.resolved_identities = {"a3"};
  r2.resolved_pages = {page_id};
  ASSERT_TRUE(s->Complete(r2).ok());
  EXPECT_TRUE(s->OpenPagesForStorm("checkout|errors", 0)->empty());
  EXPECT_TRUE(PagesOf(*s, "a3").empty());

  // Page memory is durable.
  s.reset();
  s = OpenOrDie(Options(dir.path()));
  EXPECT_TRUE(s->OpenPagesForStorm("checkout|errors", 0)->empty());
}

// Runs `sql` on the database file in `dir` outside the store; returns the first column of each
// row, as text.
std::vector<std::string> QueryDb(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  std::vector<std::string> out;
  EXPECT_EQ(sqlite3_open((dir + "/tracepager.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(s, 0);
    out.emplace_back(t == nullptr ? "" : reinterpret_cast<const char*>(t));
  }
  EXPECT_EQ(rc, SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

TEST(Store, NewIdentitiesAreNumberedInTheOrderFirstSeen) {
  // What keeps a storm's writes at the ends of the dedup and page_alerts B-trees: identities
  // (hashes, in any order) get increasing numbers as they arrive.
  testing::TempDir dir;
  {
    auto s = OpenOrDie(Options(dir.path()));
    ASSERT_TRUE(s->Enqueue({MakeJob("f3", "A|e"), MakeJob("0b", "A|e")}, kNow, kDedup).ok());
    ASSERT_TRUE(
        s->Enqueue({MakeJob("9a", "A|e"), MakeJob("0b", "A|e", JobKind::kResolve)}, kNow, kDedup)
            .ok());
    Completion done = Finish(ClaimOrDie(*s));
    done.new_pages.push_back({"t", "log", "dk", "{}", {"f3", "0b", "9a", "55"}});
    ASSERT_TRUE(s->Complete(done).ok());
  }
  EXPECT_EQ(QueryDb(dir.path(), "SELECT identity FROM identities ORDER BY id"),
            (std::vector<std::string>{"f3", "0b", "9a", "55"}));
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM dedup"), std::vector<std::string>{"4"});
}

// The identities in identity_index, in its order.
std::vector<std::string> IndexedIdentities(const std::string& dir) {
  return QueryDb(dir, "SELECT identity FROM identity_index ORDER BY identity");
}

TEST(Store, IdentitiesAreFoundWhetherRecentOrIndexedInBulk) {
  // New identities are looked up in memory until identity_index_batch of them enter the index
  // together; every lookup (dedup, pages, firing counts, attach, resolve) must find them either
  // way, and so must the next start.
  testing::TempDir dir;
  StoreOptions o = Options(dir.path());
  o.identity_index_batch = 3;
  auto s = OpenOrDie(o);
  ASSERT_TRUE(s->Enqueue({MakeJob("b2", "A|e"), MakeJob("a1", "A|e")}, kNow, kDedup).ok());
  EXPECT_TRUE(IndexedIdentities(dir.path()).empty());
  auto expect_known = [&](const char* when) {
    SCOPED_TRACE(when);
    // Repeats of a1 and b2 are duplicates.
    Result<EnqueueOutcome> again =
        s->Enqueue({MakeJob("a1", "A|e"), MakeJob("b2", "A|e")}, kNow + kSecond, kDedup);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again->duplicates, 2u);
  };
  expect_known("recent");
  Completion done = Finish(ClaimOrDie(*s));
  done.new_pages.push_back({"t", "log", "dk", "{}", {"a1", "b2"}});
  Result<CompletionOutcome> paged = s->Complete(done);
  ASSERT_TRUE(paged.ok()) << paged.error().message;
  int64_t page = paged->page_ids.at(0);
  auto expect_paged = [&](const char* when) {
    SCOPED_TRACE(when);
    EXPECT_EQ(PagesOf(*s, "a1").size(), 1u);
    EXPECT_EQ(PagesOf(*s, "b2").size(), 1u);
    Result<std::map<std::string, std::vector<PageRecord>>> both =
        s->OpenPagesForIdentities({"a1", "b2", "c3"});
    ASSERT_TRUE(both.ok()) << both.error().message;
    EXPECT_EQ(both->size(), 2u);
    EXPECT_EQ(*s->FiringCount(page, {"a1", "b2", "c3"}), 2u);
  };
  expect_paged("recent");
  // A third identity fills the batch; the next operation runs behind the one that indexes.
  ASSERT_TRUE(s->Enqueue({MakeJob("c3", "A|e")}, kNow, kDedup).ok());
  expect_known("indexed");
  EXPECT_EQ(IndexedIdentities(dir.path()), (std::vector<std::string>{"a1", "b2", "c3"}));
  EXPECT_EQ(QueryDb(dir.path(), "SELECT through FROM identity_index_through"),
            std::vector<std::string>{"3"});
  expect_paged("indexed");
  // Resolving an indexed identity finds it.
  Completion c3 = Finish(ClaimOrDie(*s));
  c3.resolved_identities = {"a1"};
  ASSERT_TRUE(s->Complete(c3).ok());
  EXPECT_EQ(*s->FiringCount(page, {"a1", "b2"}), 1u);
  // One more, recent when the store stops, is found after a restart and keeps its id.
  ASSERT_TRUE(s->Enqueue({MakeJob("d4", "A|e")}, kNow, kDedup).ok());
  s.reset();
  s = OpenOrDie(o);
  Result<EnqueueOutcome> d4 = s->Enqueue({MakeJob("d4", "A|e")}, kNow + kSecond, kDedup);
  ASSERT_TRUE(d4.ok()) << d4.error().message;
  EXPECT_EQ(d4->duplicates, 1u);
  s.reset();
  EXPECT_EQ(QueryDb(dir.path(), "SELECT identity FROM identities ORDER BY id"),
            (std::vector<std::string>{"b2", "a1", "c3", "d4"}));
  EXPECT_EQ(IndexedIdentities(dir.path()), (std::vector<std::string>{"a1", "b2", "c3"}));
}

TEST(Store, OperationsOfOneTransactionGiveAnIdentityOneId) {
  // An identity given an id by one operation is neither in memory nor indexed until its
  // transaction commits; a later operation of the same transaction must still find it.
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  std::vector<std::vector<RoutingJob>> calls;
  for (const char* key : {"first", "second"}) {
    RoutingJob j = MakeJob("a1", "A|e");
    j.dedup_key = std::string("a1|") + key;  // not duplicates of each other
    calls.push_back({j});
  }
  EnqueueWhileHeld(*s, calls);
  EXPECT_EQ(s->stats().transactions, 2u);  // the hold's, and both enqueues'
  s.reset();
  EXPECT_EQ(QueryDb(dir.path(), "SELECT identity FROM identities ORDER BY id"),
            (std::vector<std::string>{"first", "a1"}));
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM dedup WHERE identity_id=2"),
            std::vector<std::string>{"2"});
}

TEST(Store, MaintainPrunesOldEntriesAndIdentitiesNothingRefersTo) {
  testing::TempDir dir;
  {
    auto s = OpenOrDie(Options(dir.path()));
    // a1 is paged and resolved (its page is pruned with its dedup entry); a2 is on a page that
    // is still open; a3 was only seen (a dedup entry, pruned).
    ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|e")}, kNow, kDedup).ok());
    Completion done = Finish(ClaimOrDie(*s));
    done.new_pages.push_back({"t", "log", "dk1", "{}", {"a1"}});
    int64_t resolved_page = s->Complete(done)->page_ids[0];
    ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|e", JobKind::kResolve), MakeJob("a2", "B|e"),
                            MakeJob("a3", "C|e")},
                           kNow, kDedup)
                    .ok());
    Completion resolve = Finish(ClaimOrDie(*s), "resolve");
    resolve.resolved_identities = {"a1", "never-seen"};
    resolve.resolved_pages = {resolved_page};
    ASSERT_TRUE(s->Complete(resolve).ok());
    Completion b = Finish(ClaimOrDie(*s));
    b.new_pages.push_back({"t", "log", "dk2", "{}", {"a2"}});
    ASSERT_TRUE(s->Complete(b).ok());
    ASSERT_TRUE(s->Complete(Finish(ClaimOrDie(*s))).ok());
    ASSERT_TRUE(s->Maintain(kNow + 1, kNow + 1).ok());
    EXPECT_EQ(PagesOf(*s, "a2").size(), 1u);
    // The dedup entry for a1 is pruned: the same notification is accepted again.
    EXPECT_EQ(s->Enqueue({MakeJob("a1", "A|e")}, kNow + 1, kDedup)->job_ids.size(), 1u);
  }
  // a1 is back (just enqueued again: recent, not indexed yet); a3 is gone, from the index too;
  // a2 stays, with its page.
  EXPECT_EQ(QueryDb(dir.path(), "SELECT identity FROM identities ORDER BY identity"),
            (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(IndexedIdentities(dir.path()), (std::vector<std::string>{"a2"}));
}

// Makes the database in `dir` as a build of schema `version` left it: migrated that far, then
// `rows` executed.
void MakeOldDatabase(const std::string& dir, int version, const std::string& rows) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/tracepager.db").c_str(), &db), SQLITE_OK);
  ASSERT_TRUE(store_sql::Migrate(db, version).ok());
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, rows.c_str(), nullptr, nullptr, &err), SQLITE_OK) << err;
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(Store, MigratesDedupAndPageMemoryFromSchemaVersionTwo) {
  testing::TempDir dir;
  // A database as the build before identity numbers left it: a dedup entry whose identity holds
  // '|' (a generic alert's fingerprint), one of another shape, and a page with a firing and a
  // resolved alert.
  const std::string now = std::to_string(kNow);
  MakeOldDatabase(dir.path(), 2,
                  "INSERT INTO dedup(key, seen_ns) VALUES('generic:x|y|route|5|0', " + now +
                      "), ('odd', " + now +
                      ");"
                      "INSERT INTO pages(id, decision_id, storm_key, team, pager, dedup_key, "
                      "payload, created_ns) VALUES(7, 1, 'A|e', 't', 'log', 'dk', '{}', " +
                      now +
                      ");"
                      "INSERT INTO page_alerts(page_id, identity, resolved_ns) VALUES(7, "
                      "'generic:x|y', 0), (7, 'am:gone', 5);");
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(*s->FiringIdentities(7), std::vector<std::string>{"generic:x|y"});
  EXPECT_EQ(PagesOf(*s, "generic:x|y").at(0).id, 7);
  EXPECT_TRUE(PagesOf(*s, "am:gone").empty());
  EXPECT_EQ(*s->FiringCount(7, {"generic:x|y", "am:gone"}), 1u);
  // The dedup entries still recognise the same notifications.
  RoutingJob again = MakeJob("generic:x|y", "A|e");
  again.dedup_key = "generic:x|y|route|5|0";
  RoutingJob odd = MakeJob("odd", "A|e");
  odd.dedup_key = "odd";
  Result<EnqueueOutcome> r = s->Enqueue({again, odd}, kNow + kSecond, kDedup);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->duplicates, 2u);
  EXPECT_TRUE(r->job_ids.empty());
}

TEST(Store, ACompletionClaimsItsStormsNextGroupWhenItIsNextInLine) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|e"), MakeJob("a2", "A|e"), MakeJob("a3", "A|e"),
                          MakeJob("a4", "A|e"), MakeJob("a5", "A|e")},
                         kNow, kDedup)
                  .ok());
  Claim first = ClaimOrDie(*s, kNow, 2);
  EXPECT_EQ(Identities(first), (std::vector<std::string>{"a1", "a2"}));
  // Completing only part of a claim leaves the storm held: nothing is claimed for it.
  Completion part = Finish(first);
  part.job_ids = {first.jobs[0].id};
  ASSERT_TRUE(s->Complete(part).ok());
  EXPECT_EQ(s->stats().claimed, 1u);
  Result<std::optional<Claim>> none = s->ClaimNext(kNow, 2);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // The rest frees the storm, and its transaction claims the next group (a3, a4: the size the
  // workers last asked for) for whichever worker asks next, which gets it without a transaction.
  Completion rest = Finish(first);
  rest.job_ids = {first.jobs[1].id};
  ASSERT_TRUE(s->Complete(rest).ok());
  uint64_t transactions = s->stats().transactions;
  Claim second = ClaimOrDie(*s, kNow, 2);
  EXPECT_EQ(Identities(second), (std::vector<std::string>{"a3", "a4"}));
  EXPECT_EQ(s->stats().transactions, transactions);
  EXPECT_EQ(second.jobs[0].claims, 1u);
  EXPECT_EQ(s->stats().claimed, 2u);
  EXPECT_EQ(s->stats().queued, 3u);
  // Claimed in the database like any claim: a restart resumes them.
  s.reset();
  s = OpenOrDie(Options(dir.path()));
  EXPECT_EQ(s->stats().resumed_at_open, 2u);
  EXPECT_EQ(Identities(ClaimOrDie(*s, kNow, 10)), (std::vector<std::string>{"a3", "a4", "a5"}));
}

TEST(Store, ACompletionDoesNotClaimItsStormAheadOfAnOlderOne) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_TRUE(
      s->Enqueue({MakeJob("a1", "A|e"), MakeJob("b1", "B|e"), MakeJob("a2", "A|e")}, kNow, kDedup)
          .ok());
  Claim a = ClaimOrDie(*s, kNow, 1);
  EXPECT_EQ(Identities(a), std::vector<std::string>{"a1"});
  ASSERT_TRUE(s->Complete(Finish(a)).ok());
  // b1 waited longer than a2: it is claimed next, through the queue, and a2 after it.
  uint64_t transactions = s->stats().transactions;
  EXPECT_EQ(Identities(ClaimOrDie(*s, kNow, 1)), std::vector<std::string>{"b1"});
  EXPECT_GT(s->stats().transactions, transactions);
  EXPECT_EQ(Identities(ClaimOrDie(*s, kNow, 1)), std::vector<std::string>{"a2"});
}

TEST(Store, MigratesQueuedJobsFromSchemaVersionThree) {
  testing::TempDir dir;
  // Jobs queued by the build that kept the payload in the job's row, one of them claimed when
  // that build stopped.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path() + "/tracepager.db").c_str(), &db), SQLITE_OK);
    ASSERT_TRUE(store_sql::Migrate(db, 3).ok());
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "INSERT INTO jobs(kind, identity, storm_key, dedup_key, payload, "
                                 "enqueued_ns, state) VALUES('route', ?1, 'A|e', ?1, ?2, 1, ?3)",
                                 -1, &s, nullptr),
              SQLITE_OK);
    for (int i = 0; i < 2; ++i) {
      std::string identity = "a" + std::to_string(i + 1);
      std::string payload = JobToJson(MakeJob(identity, "A|e"));
      sqlite3_bind_text(s, 1, identity.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(s, 2, payload.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(s, 3, i == 0 ? 1 : 0);
      ASSERT_EQ(sqlite3_step(s), SQLITE_DONE) << sqlite3_errmsg(db);
      sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
  }
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->stats().queued, 2u);
  EXPECT_EQ(s->stats().resumed_at_open, 1u);
  Claim c = ClaimOrDie(*s);
  EXPECT_EQ(Identities(c), (std::vector<std::string>{"a1", "a2"}));
  Result<RoutingJob> second = s->DetailedJob(c.jobs[1]);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->labels.at("alertname"), "A-a2");
  ASSERT_TRUE(s->Complete(Finish(c)).ok());
  s.reset();
  // Completed jobs take their payloads with them.
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM job_payloads"),
            std::vector<std::string>{"0"});
}

TEST(Store, MigratesIdentitiesFromSchemaVersionFour) {
  testing::TempDir dir;
  // Identities as the build with a UNIQUE index on their text left them: a1 seen (a dedup
  // entry), b2 on an open page.
  const std::string now = std::to_string(kNow);
  MakeOldDatabase(
      dir.path(), 4,
      "PRAGMA foreign_keys=ON;"
      "INSERT INTO identities(id, identity) VALUES(1, 'a1'), (2, 'b2');"
      "INSERT INTO dedup(identity_id, key, seen_ns) VALUES(1, 'a1|route', " +
          now +
          ");"
          "INSERT INTO pages(id, decision_id, storm_key, team, pager, dedup_key, "
          "payload, created_ns) VALUES(7, 1, 'A|e', 't', 'log', 'dk', '{}', " +
          now +
          ");"
          "INSERT INTO page_alerts(page_id, identity_id, resolved_ns) VALUES(7, 2, 0);");
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_NE(s, nullptr);
  Result<EnqueueOutcome> again = s->Enqueue({MakeJob("a1", "A|e")}, kNow + kSecond, kDedup);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->duplicates, 1u);
  EXPECT_EQ(PagesOf(*s, "b2").at(0).id, 7);
  EXPECT_EQ(*s->FiringCount(7, {"a1", "b2"}), 1u);
  // A new identity gets the next id; its dedup entry refers to the rebuilt table.
  ASSERT_EQ(s->Enqueue({MakeJob("c3", "A|e")}, kNow, kDedup)->job_ids.size(), 1u);
  s.reset();
  EXPECT_EQ(QueryDb(dir.path(), "SELECT id || ' ' || identity FROM identities ORDER BY id"),
            (std::vector<std::string>{"1 a1", "2 b2", "3 c3"}));
  EXPECT_EQ(IndexedIdentities(dir.path()), (std::vector<std::string>{"a1", "b2"}));
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM pragma_index_list('identities')"),
            std::vector<std::string>{"0"});
  EXPECT_TRUE(QueryDb(dir.path(), "PRAGMA foreign_key_check").empty());
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM dedup"), std::vector<std::string>{"2"});
}

TEST(Store, ShutdownStopsIntakeButLetsWorkFinish) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|e"), MakeJob("b1", "B|e")}, kNow, kDedup).ok());
  Claim c = ClaimOrDie(*s);
  uint64_t epoch = s->WorkEpoch();
  s->Shutdown();
  s->WaitForWork(epoch, std::chrono::hours(1));  // returns at once
  Result<EnqueueOutcome> late = s->Enqueue({MakeJob("c1", "C|e")}, kNow, kDedup);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(NothingReady(*s));             // b1 stays queued for the next start
  EXPECT_TRUE(s->Complete(Finish(c)).ok());  // the job in flight finishes
  s.reset();
  auto again = OpenOrDie(Options(dir.path()));
  EXPECT_EQ(Identities(ClaimOrDie(*again)), std::vector<std::string>{"b1"});
}

TEST(Store, WaitForWorkWakesOnEnqueue) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  uint64_t epoch = s->WorkEpoch();
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    s->WaitForWork(epoch, std::chrono::hours(1));
    woke = true;
  });
  ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|e")}, kNow, kDedup).ok());
  waiter.join();  // would hang (test timeout) if the enqueue did not wake it
  EXPECT_TRUE(woke.load());
  EXPECT_NE(s->WorkEpoch(), epoch);
}

// A commit wakes one idle worker; one that claims wakes the next. Two storms queued in one
// commit must reach two idle workers (the second would otherwise wait an hour).
TEST(Store, AWorkerThatClaimsWakesTheNextOne) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  std::mutex mu;
  std::set<std::string> storms;
  std::atomic<int> waiting{0};
  auto worker = [&] {
    for (;;) {
      uint64_t epoch = s->WorkEpoch();
      Result<std::optional<Claim>> c = s->ClaimNext(kNow, 1000);
      ASSERT_TRUE(c.ok());
      if (c->has_value()) {
        std::lock_guard<std::mutex> lk(mu);
        storms.insert((*c)->storm_key);
        return;  // holds its claim: the other storm needs the other worker
      }
      waiting.fetch_add(1);
      s->WaitForWork(epoch, std::chrono::hours(1));
    }
  };
  std::thread a(worker), b(worker);
  while (waiting.load() < 2) std::this_thread::yield();  // both looked and found nothing
  ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|e"), MakeJob("b1", "B|e")}, kNow, kDedup).ok());
  a.join();
  b.join();
  EXPECT_EQ(storms, (std::set<std::string>{"A|e", "B|e"}));
}

// One acknowledged webhook's jobs as the intake log holds them (serialized only, as when read
// back from the log).
std::shared_ptr<IntakeBatch> Batch(const std::vector<RoutingJob>& jobs) {
  auto batch = std::make_shared<IntakeBatch>();
  batch->now_ns = kNow;
  batch->dedup_window_ns = kDedup;
  for (const RoutingJob& j : jobs) batch->jobs.push_back(JobRowOf(j));
  return batch;
}

// Moves `batch` in as the intake does, recording `seq`.
Result<EnqueueOutcome> Move(Store& s, std::shared_ptr<const IntakeBatch> batch, uint64_t seq) {
  std::promise<Result<EnqueueOutcome>> moved;
  s.ApplyIntakeAsync({std::move(batch)}, seq,
                     [&](Result<EnqueueOutcome> r) { moved.set_value(std::move(r)); });
  return moved.get_future().get();
}
Result<EnqueueOutcome> Move(Store& s, const std::vector<RoutingJob>& jobs, uint64_t seq) {
  return Move(s, Batch(jobs), seq);
}

TEST(Store, IntakeMovesIgnoreTheQueueBoundRecordTheMarkerAndWorkAfterShutdown) {
  testing::TempDir dir;
  StoreOptions o = Options(dir.path());
  o.max_queued_jobs = 1;
  auto s = OpenOrDie(o);
  EXPECT_EQ(*s->IntakeApplied(), 0u);
  s->Shutdown();  // the intake moves its backlog in while the daemon stops
  Result<EnqueueOutcome> r =
      Move(*s, {MakeJob("i1", "A|e"), MakeJob("i2", "A|e"), MakeJob("i1", "A|e")}, 7);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->job_ids.size(), 2u) << "past max_queued_jobs: the intake promised them";
  EXPECT_EQ(r->duplicates, 1u);
  EXPECT_EQ(*s->IntakeApplied(), 7u);
  ASSERT_TRUE(s->SyncIntakeApplied().ok());
  EXPECT_EQ(*s->IntakeApplied(), 7u);
  s.reset();
  auto again = OpenOrDie(Options(dir.path()));
  EXPECT_EQ(*again->IntakeApplied(), 7u);
  EXPECT_EQ(again->stats().queued, 2u);
}

TEST(Store, AMoveHandsFreshJobsToTheNextClaimsAlreadyClaimed) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  // Without a worker asking for work, a move only queues.
  ASSERT_TRUE(Move(*s, {MakeJob("q1", "Q|e")}, 1).ok());
  EXPECT_EQ(s->stats().claimed, 0u);
  Claim q = ClaimOrDie(*s, kNow, 2);  // a worker asks, for groups of 2
  ASSERT_TRUE(s->Complete(Finish(q)).ok());

  ASSERT_TRUE(
      Move(*s,
           {MakeJob("a1", "A|e"), MakeJob("b1", "B|e"), MakeJob("a2", "A|e"), MakeJob("a3", "A|e")},
           2)
          .ok());
  StoreStats before = s->stats();
  EXPECT_EQ(before.queued, 4u);
  EXPECT_EQ(before.claimed, 0u) << "claims no worker took are not in flight";
  Claim a = ClaimOrDie(*s, kNow, 2);
  Claim b = ClaimOrDie(*s, kNow, 2);
  EXPECT_EQ(s->stats().transactions, before.transactions) << "taken without a transaction";
  EXPECT_EQ(a.storm_key, "A|e");
  EXPECT_EQ(Identities(a), (std::vector<std::string>{"a1", "a2"}));  // max_group
  EXPECT_EQ(a.jobs[0].claims, 1u);
  EXPECT_EQ(a.jobs[0].job.labels.at("alertname"), "A-a1");
  EXPECT_EQ(Identities(b), std::vector<std::string>{"b1"});
  EXPECT_EQ(s->stats().claimed, 3u);
  // a3 queued behind its storm's claim, as a claim would have left it.
  EXPECT_TRUE(NothingReady(*s));
  ASSERT_TRUE(s->Complete(Finish(a)).ok());
  ASSERT_TRUE(s->Complete(Finish(b)).ok());
  Claim rest = ClaimOrDie(*s);
  EXPECT_EQ(Identities(rest), std::vector<std::string>{"a3"});
  EXPECT_EQ(rest.jobs[0].claims, 1u);
  ASSERT_TRUE(s->Complete(Finish(rest)).ok());
  EXPECT_EQ(s->stats().queued, 0u);
  EXPECT_EQ(s->stats().claimed, 0u);
}

// A batch made by this process carries its jobs as derived; a claim made at the move hands
// those over and never parses the stored payload (here one that would not parse).
TEST(Store, AClaimMadeAtTheMoveGivesTheJobsAsDerived) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  EXPECT_TRUE(NothingReady(*s));  // a worker has asked
  std::shared_ptr<IntakeBatch> batch = Batch({MakeJob("a1", "A|e"), MakeJob("a2", "A|e")});
  for (JobRow& row : batch->jobs) {
    Result<RoutingJob> job = JobFromJson(row.payload);
    ASSERT_TRUE(job.ok()) << job.error().message;
    batch->live.push_back(std::move(*job));
    row.payload = "{";
  }
  ASSERT_TRUE(Move(*s, batch, 1).ok());
  Claim a = ClaimOrDie(*s);
  ASSERT_EQ(Identities(a), (std::vector<std::string>{"a1", "a2"}));
  // The first with its details, the others without (as a claim read back from the queue).
  EXPECT_TRUE(a.jobs[0].detailed);
  EXPECT_TRUE(a.jobs[0].job == batch->live[0]);
  EXPECT_FALSE(a.jobs[1].detailed);
  EXPECT_TRUE(a.jobs[1].job == WithoutDetails(batch->live[1]));
  EXPECT_EQ(a.jobs[1].job.trace_ids, batch->live[1].trace_ids);
  EXPECT_EQ(a.jobs[1].claims, 1u);
  EXPECT_EQ(s->stats().dead_jobs, 0u);
}

TEST(Store, AMoveDoesNotOvertakeABacklogOrAClaimedStorm) {
  testing::TempDir dir;
  auto s = OpenOrDie(Options(dir.path()));
  EXPECT_TRUE(NothingReady(*s));  // a worker has asked
  // A claimed storm: its new job queues behind the claim; another storm's is handed over.
  ASSERT_TRUE(s->Enqueue({MakeJob("a1", "A|e")}, kNow, kDedup).ok());
  Claim a = ClaimOrDie(*s);
  ASSERT_TRUE(Move(*s, {MakeJob("a2", "A|e"), MakeJob("c1", "C|e")}, 1).ok());
  EXPECT_EQ(Identities(ClaimOrDie(*s)), std::vector<std::string>{"c1"});
  EXPECT_TRUE(NothingReady(*s));
  ASSERT_TRUE(s->Complete(Finish(a)).ok());
  // a2 is queued now: the next move must not overtake it.
  ASSERT_TRUE(Move(*s, {MakeJob("d1", "D|e")}, 2).ok());
  EXPECT_EQ(Identities(ClaimOrDie(*s)), std::vector<std::string>{"a2"});
  EXPECT_EQ(Identities(ClaimOrDie(*s)), std::vector<std::string>{"d1"});
  // A retry waiting (released for later) is a backlog too.
  ASSERT_TRUE(s->Enqueue({MakeJob("r1", "R|e")}, kNow, kDedup).ok());
  Claim r = ClaimOrDie(*s);
  ASSERT_TRUE(s->Release({r.jobs[0].id}, kNow + 60 * kSecond).ok());
  ASSERT_TRUE(Move(*s, {MakeJob("e1", "E|e")}, 3).ok());
  StoreStats st = s->stats();
  EXPECT_EQ(st.claimed, 3u);  // c1, a2 and d1, held above; e1 is queued
  EXPECT_EQ(Identities(ClaimOrDie(*s)), std::vector<std::string>{"e1"});
  EXPECT_GT(s->stats().transactions, st.transactions) << "claimed by ClaimNext";
}

TEST(Store, ClaimsAMoveHandedOverAreResumedAfterAKillAndReturnedAtShutdown) {
  testing::TempDir dir;
  int fd;
  pid_t pid = ForkChild(&fd, [&](int out) {
    Result<std::unique_ptr<Store>> s = Store::Open(Options(dir.path()));
    if (!s.ok()) ::_exit(3);
    Result<std::optional<Claim>> none = (*s)->ClaimNext(kNow, 10);  // a worker has asked
    if (!none.ok() || none->has_value()) ::_exit(4);
    if (!Move(**s, {MakeJob("a1", "A|e"), MakeJob("b1", "B|e")}, 5).ok()) ::_exit(5);
    ReadyToBeKilled(out);  // with both claims handed over and not taken
  });
  ASSERT_NO_FATAL_FAILURE(KillWhenReady(pid, fd, "moving"));

  auto s = OpenOrDie(Options(dir.path()));
  EXPECT_EQ(*s->IntakeApplied(), 5u);
  EXPECT_EQ(s->stats().resumed_at_open, 2u);
  Claim a = ClaimOrDie(*s);
  EXPECT_EQ(Identities(a), std::vector<std::string>{"a1"});
  EXPECT_EQ(a.jobs[0].claims, 2u);  // the claim made by the move counts, as any claim
  ASSERT_TRUE(s->Complete(Finish(a)).ok());

  // Shutdown returns the claims no worker took, unclaimed: the next start finds them queued,
  // not resumed, and their first claim is their first attempt.
  ASSERT_TRUE(Move(*s, {MakeJob("c1", "C|e")}, 6).ok());
  s->Shutdown();
  EXPECT_TRUE(NothingReady(*s));
  s.reset();
  s = OpenOrDie(Options(dir.path()));
  EXPECT_EQ(s->stats().resumed_at_open, 0u);
  EXPECT_EQ(s->stats().queued, 2u);  // b1 (resumed before) and c1
  Claim b = ClaimOrDie(*s);
  Claim c = ClaimOrDie(*s);
  EXPECT_EQ(Identities(b), std::vector<std::string>{"b1"});
  EXPECT_EQ(b.jobs[0].claims, 2u);
  EXPECT_EQ(Identities(c), std::vector<std::string>{"c1"});
  EXPECT_EQ(c.jobs[0].claims, 1u);
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

// A stand-in for the intake log, for the jobs the store leaves their payload in: per record, its
// jobs' payloads; the reads made; `failure` fails every read.
struct FakeLog {
  std::mutex mu;
  std::map<uint64_t, std::vector<std::string>> records;
  std::vector<IntakeLogRef> reads;
  std::optional<Error> failure;

  StoreOptions Options(const std::string& dir) {
    StoreOptions o = ::tracepager::daemon::Options(dir);
    o.intake_payload_reader = [this](const IntakeLogRef& ref) -> Result<std::string> {
      std::lock_guard<std::mutex> lk(mu);
      reads.push_back(ref);
      if (failure) return *failure;
      auto it = records.find(ref.seq);
      if (it == records.end() || ref.index >= it->second.size()) {
        return Error::NotFound("no record " + std::to_string(ref.seq));
      }
      return it->second[ref.index];
    };
    return o;
  }
  // A batch of `jobs` as the intake moves it: in the log as record `seq`, at byte `offset`.
  std::shared_ptr<IntakeBatch> Record(uint64_t seq, uint64_t offset,
                                      const std::vector<RoutingJob>& jobs) {
    std::shared_ptr<IntakeBatch> batch = Batch(jobs);
    batch->log_seq = seq;
    batch->log_offset = offset;
    std::lock_guard<std::mutex> lk(mu);
    for (const JobRow& row : batch->jobs) records[seq].push_back(row.payload);
    return batch;
  }
  size_t ReadCount() {
    std::lock_guard<std::mutex> lk(mu);
    return reads.size();
  }
};

int64_t WallNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Jobs a move hands to a worker are stored with their place in the intake log instead of their
// payload, which is read from there when needed again; the store tells the intake which record
// is the oldest still needed.
TEST(Store, AJobHandedAtTheMoveLeavesItsPayloadInTheLog) {
  testing::TempDir dir;
  FakeLog log;
  auto s = OpenOrDie(log.Options(dir.path()));
  EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{});
  EXPECT_TRUE(NothingReady(*s));  // a worker has asked
  ASSERT_TRUE(Move(*s, log.Record(7, 4096, {MakeJob("a1", "A|e"), MakeJob("a2", "A|e")}), 7).ok());
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM job_payloads"),
            std::vector<std::string>{"0"});
  EXPECT_EQ(
      QueryDb(dir.path(),
              "SELECT log_seq || ' ' || log_offset || ' ' || log_index FROM jobs ORDER BY id"),
      (std::vector<std::string>{"7 4096 0", "7 4096 1"}));
  EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{7});

  Claim a = ClaimOrDie(*s);
  EXPECT_EQ(log.ReadCount(), 0u) << "handed over with the jobs the move had";
  EXPECT_TRUE(a.jobs[0].job == MakeJob("a1", "A|e"));
  Result<RoutingJob> a2 = s->DetailedJob(a.jobs[1]);
  ASSERT_TRUE(a2.ok()) << a2.error().message;
  EXPECT_TRUE(*a2 == MakeJob("a2", "A|e")) << "the details read from the log";
  ASSERT_EQ(log.ReadCount(), 1u);
  EXPECT_EQ(log.reads[0].seq, 7u);
  EXPECT_EQ(log.reads[0].offset, 4096u);
  EXPECT_EQ(log.reads[0].index, 1u);

  // A later record's job, handed over too; the store needs both records until their jobs are
  // done.
  ASSERT_TRUE(Move(*s, log.Record(9, 0, {MakeJob("b1", "B|e")}), 9).ok());
  Claim b = ClaimOrDie(*s);
  EXPECT_TRUE(s->RefersToIntakeRecords(1, 7));
  EXPECT_FALSE(s->RefersToIntakeRecords(8, 8));
  EXPECT_TRUE(s->RefersToIntakeRecords(8, 9));
  EXPECT_FALSE(s->RefersToIntakeRecords(10, 100));
  ASSERT_TRUE(s->Complete(Finish(b)).ok());
  EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{7});
  EXPECT_FALSE(s->RefersToIntakeRecords(8, 9));

  // Released for a retry (which may come much later): the payloads are taken into the
  // database, and the record is no longer needed.
  ASSERT_TRUE(s->Release({a.jobs[0].id, a.jobs[1].id}, kNow).ok());
  EXPECT_EQ(log.ReadCount(), 3u);
  EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{});
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM job_payloads"),
            std::vector<std::string>{"2"});
  EXPECT_EQ(QueryDb(dir.path(), "SELECT log_seq FROM jobs ORDER BY id"),
            (std::vector<std::string>{"0", "0"}));
  Claim again = ClaimOrDie(*s);
  EXPECT_EQ(log.ReadCount(), 3u) << "claimed from the database";
  ASSERT_EQ(Identities(again), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_TRUE(again.jobs[0].job == MakeJob("a1", "A|e"));
  Result<RoutingJob> again2 = s->DetailedJob(again.jobs[1]);
  ASSERT_TRUE(again2.ok()) << again2.error().message;
  EXPECT_TRUE(*again2 == MakeJob("a2", "A|e"));
  EXPECT_EQ(again.jobs[0].claims, 2u);
  ASSERT_TRUE(s->Complete(Finish(again)).ok());
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM jobs"), std::vector<std::string>{"0"});
}

// Only with a reader: without one, a job of a record in the log is stored with its payload; and
// jobs a move queues (not handed over) always are.
TEST(Store, PayloadsStayInTheDatabaseWithoutALogReaderOrWhenQueued) {
  testing::TempDir dir;
  FakeLog log;
  {
    auto s = OpenOrDie(Options(dir.path()));
    EXPECT_TRUE(NothingReady(*s));
    ASSERT_TRUE(Move(*s, log.Record(3, 0, {MakeJob("a1", "A|e")}), 3).ok());
    EXPECT_EQ(Identities(ClaimOrDie(*s)), std::vector<std::string>{"a1"});
    EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{});
    EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM job_payloads"),
              std::vector<std::string>{"1"});
  }
  auto s = OpenOrDie(log.Options(dir.path()));
  // a1 resumed and queued: b1 queues behind it, with its payload.
  ASSERT_TRUE(Move(*s, log.Record(4, 0, {MakeJob("b1", "B|e")}), 4).ok());
  EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{});
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM job_payloads"),
            std::vector<std::string>{"2"});
  EXPECT_EQ(DrainIds(*s).size(), 2u);
  EXPECT_EQ(log.ReadCount(), 0u);
}

// A crash with handed-over jobs in flight: they are resumed at the next start, their payloads
// read from the log, and the store names their record as needed from Open on.
TEST(Store, JobsWithTheirPayloadInTheLogAreResumedFromItAfterAKill) {
  testing::TempDir dir;
  int fd;
  pid_t pid = ForkChild(&fd, [&](int out) {
    FakeLog child_log;
    Result<std::unique_ptr<Store>> s = Store::Open(child_log.Options(dir.path()));
    if (!s.ok()) ::_exit(3);
    Result<std::optional<Claim>> none = (*s)->ClaimNext(kNow, 10);  // a worker has asked
    if (!none.ok() || none->has_value()) ::_exit(4);
    auto batch = child_log.Record(5, 128, {MakeJob("a1", "A|e"), MakeJob("a2", "A|e")});
    if (!Move(**s, batch, 5).ok()) ::_exit(5);
    Result<std::optional<Claim>> a = (*s)->ClaimNext(kNow, 10);  // taken by a worker
    if (!a.ok() || !a->has_value()) ::_exit(6);
    ReadyToBeKilled(out);
  });
  ASSERT_NO_FATAL_FAILURE(KillWhenReady(pid, fd, "routing"));

  FakeLog log;
  (void)log.Record(5, 128, {MakeJob("a1", "A|e"), MakeJob("a2", "A|e")});
  auto s = OpenOrDie(log.Options(dir.path()));
  EXPECT_EQ(s->stats().resumed_at_open, 2u);
  EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{5});
  Claim a = ClaimOrDie(*s);
  ASSERT_EQ(Identities(a), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_TRUE(a.jobs[0].job == MakeJob("a1", "A|e"));
  EXPECT_EQ(a.jobs[0].claims, 2u);
  EXPECT_EQ(log.ReadCount(), 2u);
  ASSERT_TRUE(s->Complete(Finish(a)).ok());
  EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{});
}

// A log that cannot be read now (an I/O error) puts the claim back for a later try; a record that
// is not in the log (a log removed or damaged) makes its jobs dead, as a payload that does not
// parse does, and they no longer hold on to it.
TEST(Store, APayloadTheLogCannotGiveNowIsRetriedAndOneItDoesNotHaveIsSetAside) {
  testing::TempDir dir;
  FakeLog log;
  auto s = OpenOrDie(log.Options(dir.path()));
  EXPECT_TRUE(NothingReady(*s));
  ASSERT_TRUE(Move(*s, log.Record(3, 0, {MakeJob("a1", "A|e"), MakeJob("a2", "A|e")}), 3).ok());
  (void)ClaimOrDie(*s);
  // A restart: the claim is resumed, queued, its payloads in the log.
  s.reset();
  s = OpenOrDie(log.Options(dir.path()));
  ASSERT_EQ(s->stats().resumed_at_open, 2u);

  log.failure = Error::Unavailable("intake: read: Input/output error");
  Result<std::optional<Claim>> failed = s->ClaimNext(kNow, 10);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(failed.error().message.find("Input/output error"), std::string::npos);
  EXPECT_EQ(s->stats().claimed, 0u) << "back in the queue";
  EXPECT_EQ(s->stats().queued, 2u);
  const int64_t later = WallNowNs() + 2 * kSecond;  // past the retry's delay
  EXPECT_TRUE(NothingReady(*s, WallNowNs() - kSecond)) << "not before the retry's delay";

  log.failure = Error::NotFound("intake: record 3: no segment holds it");
  EXPECT_TRUE(NothingReady(*s, later)) << "both set aside";
  EXPECT_EQ(s->stats().dead_jobs, 2u);
  EXPECT_EQ(s->stats().queued, 0u);
  EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{});
  EXPECT_EQ(QueryDb(dir.path(), "SELECT COUNT(*) FROM jobs WHERE state=2"),
            std::vector<std::string>{"2"});
}

// Version 5 to 6 adds where a job's payload is in the intake log: jobs queued before keep theirs
// in job_payloads. (And 6 to 7 replaces the queue's indexes.)
TEST(Store, MigratesQueuedJobsFromSchemaVersionFive) {
  testing::TempDir dir;
  std::string payload = JobToJson(MakeJob("q1", "Q|e"));
  ASSERT_EQ(payload.find('\''), std::string::npos);
  MakeOldDatabase(dir.path(), 5,
                  "INSERT INTO jobs(id, kind, identity, storm_key, dedup_key, enqueued_ns) "
                  "VALUES(1, 'route', 'q1', 'Q|e', 'q1|route', " +
                      std::to_string(kNow) +
                      ");"
                      "INSERT INTO job_payloads(job_id, payload) VALUES(1, '" +
                      payload + "');");
  FakeLog log;
  auto s = OpenOrDie(log.Options(dir.path()));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(ReferredRecords(*s), std::vector<uint64_t>{});
  Claim q = ClaimOrDie(*s);
  ASSERT_EQ(Identities(q), std::vector<std::string>{"q1"});
  EXPECT_TRUE(q.jobs[0].job == MakeJob("q1", "Q|e"));
  EXPECT_EQ(log.ReadCount(), 0u);
  s.reset();
  EXPECT_EQ(QueryDb(dir.path(), "PRAGMA user_version"),
            std::vector<std::string>{std::to_string(store_sql::SchemaVersion())});
  EXPECT_EQ(QueryDb(dir.path(), "SELECT log_seq FROM jobs"), std::vector<std::string>{"0"});
  // Version 6 to 7: the queue's indexes, partial.
  EXPECT_EQ(QueryDb(dir.path(),
                    "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='jobs' "
                    "ORDER BY name"),
            (std::vector<std::string>{"jobs_claimed_storm", "jobs_queued", "jobs_queued_storm"}));
}

// The statement cache finds statements by the address of their SQL text; a buffer that held
// other SQL at the same address must still get a statement for its own text.
// A migration is checked for rows that refer to missing ones (foreign keys are off while it
// runs); one that finds such a row is rolled back, and the connection's foreign keys are on
// again either way.
TEST(StoreSqlTest, AMigrationThatLeavesADanglingRowFailsAndForeignKeysComeBackOn) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_TRUE(store_sql::Migrate(db, 4).ok());
  // Written with enforcement off (SQLite's default): a dedup mark of an identity that is gone.
  ASSERT_EQ(sqlite3_exec(db,
                         "INSERT INTO dedup(identity_id, key, seen_ns) VALUES(999, 'k', 1);"
                         "PRAGMA foreign_keys=ON;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  Status st = store_sql::Migrate(db);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("migration to schema version 5 failed: a row of dedup refers "
                                    "to a missing identities row"),
            std::string::npos)
      << st.error().message;
  auto pragma = [&](const char* sql) {
    store_sql::Stmt s(db, sql);
    return s.ok() && s.Step() == SQLITE_ROW ? s.Int(0) : -1;
  };
  EXPECT_EQ(pragma("PRAGMA user_version"), 4);
  EXPECT_EQ(pragma("PRAGMA foreign_keys"), 1);
  store_sql::ForgetStatements(db);
  sqlite3_close(db);
}

TEST(StoreSqlTest, StatementCacheTellsApartTextsAtOneAddress) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  char sql[32];
  for (int i = 1; i <= 3; ++i) {
    std::snprintf(sql, sizeof sql, "SELECT %d", i);
    for (int again = 0; again < 2; ++again) {  // the second time from the cache
      store_sql::Stmt s(db, sql);
      ASSERT_TRUE(s.ok());
      ASSERT_EQ(s.Step(), SQLITE_ROW);
      EXPECT_EQ(s.Int(0), i);
    }
  }
  store_sql::ForgetStatements(db);
  sqlite3_close(db);
}

// The filter over identity_index: never "no" for an indexed identity (one loaded at open, or
// indexed since), and "no" for almost every other, so that new identities skip the index read.
// Every lookup the queue makes per job or per claim finds its rows through an index, never by
// reading the whole jobs table (which holds the dead jobs too, and up to max_queued_jobs).
TEST(StoreSqlTest, TheQueuesLookupsUseItsIndexes) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_TRUE(store_sql::Migrate(db).ok());
  for (const std::string& sql : store_sql::QueueLookupsForTests()) {
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &s, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    std::string plan;
    while (sqlite3_step(s) == SQLITE_ROW) {
      plan += reinterpret_cast<const char*>(sqlite3_column_text(s, 3));
      plan += "; ";
    }
    sqlite3_finalize(s);
    for (const char* full_scan : {"SCAN jobs; ", "SCAN j; "}) {
      EXPECT_EQ(plan.find(full_scan), std::string::npos) << sql << "\n" << plan;
    }
    EXPECT_TRUE(plan.find("USING INDEX") != std::string::npos ||
                plan.find("USING INTEGER PRIMARY KEY") != std::string::npos)
        << sql << "\n"
        << plan;
  }
  sqlite3_close(db);
}

TEST(StoreSqlTest, RecentIdentitiesFilterTheIndex) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_TRUE(store_sql::Migrate(db).ok());
  ASSERT_EQ(
      sqlite3_exec(db,
                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<1000)"
                   " INSERT INTO identities(id, identity) SELECT i, 'in' || i FROM n;"
                   "INSERT INTO identity_index(identity, id) SELECT identity, id FROM identities;"
                   "UPDATE identity_index_through SET through=1000;"
                   "INSERT INTO identities(id, identity) VALUES(1001, 'recent');",
                   nullptr, nullptr, nullptr),
      SQLITE_OK)
      << sqlite3_errmsg(db);
  store_sql::RecentIdentities recent;
  ASSERT_TRUE(recent.Load(db).ok());
  using store_sql::RecentIdentities;
  EXPECT_EQ(recent.Lookup("recent"), 1001);
  for (int i = 1; i <= 1000; ++i) {
    ASSERT_EQ(recent.Lookup("in" + std::to_string(i)), RecentIdentities::kInIndex) << i;
  }
  auto false_positives = [&] {
    int n = 0;
    for (int i = 0; i < 10000; ++i) {
      int64_t id = recent.Lookup("out" + std::to_string(i));
      EXPECT_TRUE(id == RecentIdentities::kNoId || id == RecentIdentities::kInIndex) << id;
      n += id == RecentIdentities::kInIndex ? 1 : 0;
    }
    return n;
  };
  EXPECT_LT(false_positives(), 100);
  // Indexed later: in the filter from then on.
  recent.Add({{"later", 1002}});
  EXPECT_EQ(recent.Lookup("later"), 1002);
  recent.Indexed(1002);
  EXPECT_EQ(recent.Lookup("later"), RecentIdentities::kInIndex);
  EXPECT_EQ(recent.Lookup("recent"), RecentIdentities::kInIndex);
  EXPECT_LT(false_positives(), 100);
  store_sql::ForgetStatements(db);
  sqlite3_close(db);
}

}  // namespace
}  // namespace tracepager::daemon
