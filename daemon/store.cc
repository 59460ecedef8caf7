// The durable store. See store.h for the contract.
//
// Why one writer thread: SQLite allows one writer at a time, and with synchronous=FULL every
// commit is an fsync of the WAL (milliseconds on real disks). Letting each HTTP request commit
// on its own would serialize them behind each other's fsyncs; funnelling all writes through one
// thread that commits whatever accumulated while the previous fsync ran turns N fsyncs into
// about one per batch without adding latency when the load is light (commit_max_delay 0).
// Reads use a second connection: WAL lets them run beside the writer.
//
// Checkpoints stay SQLite's automatic ones, in the writer's commit every 1000 WAL pages. A
// checkpoint thread on its own connection was tried (bench/README.md): it did not lower the
// CPU per request, and under sustained load it fell behind, so the WAL grew until the writer
// had to copy thousands of pages at once, which raised the p99 latency.
#include "daemon/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "daemon/store_sql.h"

namespace tracepager::daemon {

using store_sql::SqlError;
using store_sql::Stmt;

namespace {

// Effects of one operation that apply only if its transaction commits.
struct Effects {
  int64_t queued = 0;
  int64_t claimed = 0;
  uint64_t enqueue_calls = 0;
  uint64_t jobs_enqueued = 0;
  uint64_t duplicates = 0;
  uint64_t dead_jobs = 0;
  bool work = false;  // may have made a job ready
  // Claims made by a move (store_sql::Handoff), for the workers once the move commits.
  std::vector<store_sql::ClaimedRows> handed;
  // Identities given an id (store_sql::IdentityIds::TakeAdded), and how far identity_index goes
  // once this commits (0: unchanged), for RecentIdentities.
  std::vector<std::pair<std::string, int64_t>> identities_added;
  int64_t indexed_through = 0;
  bool pruned = false;  // Prune ran: identities may be gone (ApplyPass)
  // Intake records jobs came to keep their payload in, and stopped keeping it in, one entry per
  // job (Store::RefersToIntakeRecords).
  std::vector<uint64_t> log_refs_added;
  std::vector<uint64_t> log_refs_dropped;

  void Add(Effects&& o) {
    queued += o.queued;
    claimed += o.claimed;
    enqueue_calls += o.enqueue_calls;
    jobs_enqueued += o.jobs_enqueued;
    duplicates += o.duplicates;
    dead_jobs += o.dead_jobs;
    work = work || o.work;
    for (store_sql::ClaimedRows& c : o.handed) handed.push_back(std::move(c));
    for (auto& added : o.identities_added) identities_added.push_back(std::move(added));
    indexed_through = std::max(indexed_through, o.indexed_through);
    log_refs_added.insert(log_refs_added.end(), o.log_refs_added.begin(), o.log_refs_added.end());
    log_refs_dropped.insert(log_refs_dropped.end(), o.log_refs_dropped.begin(),
                            o.log_refs_dropped.end());
  }
};

// What an operation sees while it runs on the writer thread.
struct OpContext {
  sqlite3* db = nullptr;
  int64_t queued_now = 0;  // committed count plus earlier operations of this transaction
  uint64_t max_queued = 0;
  int64_t enqueue_page_limit = 0;
  // Alert identities' ids as this operation sees them; what it gives out goes to fx once it
  // succeeded (ApplyPass).
  store_sql::IdentityIds identities{nullptr, nullptr, nullptr};
  Effects fx;  // this operation's effects
};

struct Op {
  std::function<Status(OpContext&)> apply;
  std::function<void(Status)> finish;  // runs after the commit (or the failure)
  bool counts_as_rejected_full = false;
  // Whether the caller relies on this operation surviving a crash once it returns. Claims and
  // releases do not (claims are reset at open anyway), so a batch of only those commits without
  // the fsync; the next durable commit syncs their WAL frames along with its own.
  bool durable = true;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
// A claim whose payload could not be read from the intake log now is tried again after this.
constexpr int64_t kUnreadableRetryNs = 1'000'000'000;

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqlError(db, rc, sql);
  return OkStatus();
}

// Exec through the statement cache, for the statements the writer runs for every batch and
// every operation (BEGIN, SAVEPOINT, RELEASE, COMMIT): sqlite3_exec would parse them each time.
Status ExecCached(sqlite3* db, const char* sql) {
  Stmt s(db, sql);
  if (!s.ok()) return s.error(sql);
  int rc = s.Step();
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return s.error(sql);
  return OkStatus();
}

}  // namespace

struct Store::Impl {
  StoreOptions options;
  std::string db_path;
  int lock_fd = -1;
  sqlite3* writer = nullptr;
  sqlite3* reader = nullptr;
  std::mutex reader_mu;

  std::mutex mu;  // guards pending and stop
  std::condition_variable cv;
  std::deque<Op> pending;
  bool stop = false;
  std::thread thread;

  std::mutex work_mu;
  std::condition_variable work_cv;
  std::atomic<uint64_t> work_epoch{0};
  std::atomic<bool> shutting_down{false};

  // Claims handed over by moves (ApplyIntakeAsync) and completions (Complete), taken by ClaimNext
  // before it looks at the queue. Their jobs are claimed in the database like any claim. Filled
  // only after the operation committed, and only while not shutting down (Shutdown returns what
  // is left to the queue).
  std::mutex handoff_mu;
  std::deque<store_sql::ClaimedRows> handed;
  std::atomic<uint64_t> handed_jobs{0};  // jobs in `handed`: claimed, but not by a worker yet
  // The group size workers ask ClaimNext for; 0 until one asks, and then moves claim nothing
  // (a store without workers queues everything).
  std::atomic<size_t> handoff_max_group{0};

  // Counters. queued/claimed are written by the writer thread only.
  std::atomic<uint64_t> queued{0}, claimed{0}, transactions{0}, operations{0}, enqueue_calls{0},
      jobs_enqueued{0}, duplicates{0}, rejected_full{0}, failures{0}, resumed_at_open{0},
      dead_jobs{0};
  std::atomic<bool> last_commit_ok{true};
  // With max_bytes, enqueues stop at this many pages, below SQLite's hard max_page_count, so
  // that claims and completions (which rewrite index pages) still fit: a full queue must be
  // able to drain.
  int64_t enqueue_page_limit = 0;
  bool synchronous_full = true;  // writer thread only

  // Identities with an id not yet in identity_index (store_sql.h); those given out by the
  // operations of the transaction being applied (writer thread only), which later operations of
  // the same transaction must find; and whether an IndexIdentities operation is queued.
  store_sql::RecentIdentities recent_identities;
  std::unordered_map<std::string, int64_t> transaction_identities;
  bool indexing_identities = false;  // writer thread only

  // Per intake record, the queued and claimed jobs whose payload is in it (RefersToIntakeRecords):
  // loaded at Open, changed as transactions commit.
  mutable std::mutex log_refs_mu;
  std::map<uint64_t, uint64_t> log_refs;

  void ChangeLogRefs(const std::vector<uint64_t>& added, const std::vector<uint64_t>& dropped) {
    if (added.empty() && dropped.empty()) return;
    std::lock_guard<std::mutex> lk(log_refs_mu);
    for (uint64_t seq : added) ++log_refs[seq];
    for (uint64_t seq : dropped) {
      auto it = log_refs.find(seq);
      if (it != log_refs.end() && --it->second == 0) log_refs.erase(it);
    }
  }

  // A job's payload: `text`, or read from the intake log.
  Result<std::string> PayloadOf(std::string text, const IntakeLogRef& log) const {
    if (log.seq == 0) return text;
    if (!options.intake_payload_reader) {
      return Error::Unavailable("store: job payload in intake record " + std::to_string(log.seq) +
                                ", and no intake log to read it from");
    }
    return options.intake_payload_reader(log);
  }

  ~Impl() {
    if (reader != nullptr) {
      store_sql::ForgetStatements(reader);
      sqlite3_close(reader);
    }
    if (writer != nullptr) {
      store_sql::ForgetStatements(writer);
      sqlite3_close(writer);
    }
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock
  }

  void Submit(Op op) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (!stop) {
        pending.push_back(std::move(op));
        cv.notify_one();
        return;
      }
    }
    op.finish(Error::Unavailable("store: closed"));
  }

  void WriterLoop() {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      cv.wait(lk, [&] { return !pending.empty() || stop; });
      if (pending.empty()) return;  // stopping and drained
      if (options.commit_max_delay.count() > 0 && !stop &&
          pending.size() < options.commit_max_batch) {
        cv.wait_for(lk, options.commit_max_delay,
                    [&] { return pending.size() >= options.commit_max_batch || stop; });
      }
      std::vector<Op> batch;
      size_t n = std::min<size_t>(pending.size(), options.commit_max_batch);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(pending.front()));
        pending.pop_front();
      }
      lk.unlock();
      RunBatch(batch);
      lk.lock();
    }
  }

  // How a pass over a batch ended (ApplyPass).
  enum class Pass {
    kApplied,    // every operation ran; the transaction is open, ready to commit
    kOneFailed,  // unguarded: an operation failed and the transaction was rolled back
    kAborted,    // the transaction could not begin or is gone; every result is set
  };

  // Runs the batch's operations in a new transaction. Guarded, each runs under its own
  // savepoint, so that a failure undoes only its operation; unguarded, the first failure rolls
  // the transaction back (its error is in its result). `total` gets the effects to publish.
  Pass ApplyPass(std::vector<Op>& batch, bool guarded, std::vector<Status>& results,
                 Effects& total) {
    std::fill(results.begin(), results.end(), OkStatus());
    total = Effects{};
    transaction_identities.clear();
    // After a Prune in this transaction, the identities it dropped may still be in
    // transaction_identities and in recent_identities (until Publish). The operations after it
    // look only at what was given out since (transaction_identities, emptied) and at
    // identity_index, which Prune brought up to date first.
    bool pruned = false;
    if (Status begin = ExecCached(writer, "BEGIN IMMEDIATE"); !begin.ok()) {
      std::fill(results.begin(), results.end(), begin);
      return Pass::kAborted;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      OpContext ctx;
      ctx.db = writer;
      ctx.queued_now = static_cast<int64_t>(queued.load()) + total.queued;
      ctx.max_queued = options.max_queued_jobs;
      ctx.enqueue_page_limit = enqueue_page_limit;
      ctx.identities = store_sql::IdentityIds(writer, pruned ? nullptr : &recent_identities,
                                              &transaction_identities);
      Status st = guarded ? ExecCached(writer, "SAVEPOINT op") : OkStatus();
      if (st.ok()) {
        try {
          st = batch[i].apply(ctx);
        } catch (const std::exception& e) {
          st = Error::Internal(std::string("store: operation threw: ") + e.what());
        }
      }
      // After SQLITE_FULL, I/O errors and the like SQLite may have rolled the whole
      // transaction back on its own; autocommit mode tells. Nothing of this batch survived.
      if (sqlite3_get_autocommit(writer) != 0) {
        Error e = st.ok() ? Error::Unavailable("store: transaction rolled back") : st.error();
        if (e.code != ErrorCode::kUnavailable) e = Error::Unavailable(e.message);
        for (size_t j = 0; j <= i; ++j) results[j] = e;  // their work was rolled back too
        for (size_t j = i + 1; j < batch.size(); ++j) {
          results[j] = Error::Unavailable("store: transaction rolled back");
        }
        return Pass::kAborted;
      }
      results[i] = st;
      if (!st.ok() && !guarded) {
        (void)ExecCached(writer, "ROLLBACK");
        return Pass::kOneFailed;
      }
      if (guarded) {
        if (!st.ok()) (void)ExecCached(writer, "ROLLBACK TO op");
        (void)ExecCached(writer, "RELEASE op");
      }
      if (st.ok()) {
        ctx.fx.identities_added = ctx.identities.TakeAdded();
        if (ctx.fx.pruned) {
          pruned = true;
          transaction_identities.clear();
        }
        for (const auto& [identity, id] : ctx.fx.identities_added) {
          transaction_identities.emplace(identity, id);
        }
        total.Add(std::move(ctx.fx));
      }
    }
    return Pass::kApplied;
  }

  // Makes a committed batch's effects visible: counters, and workers woken for new work.
  void Publish(size_t operations_in_batch, Effects& total) {
    transactions.fetch_add(1);
    operations.fetch_add(operations_in_batch);
    queued.store(static_cast<uint64_t>(static_cast<int64_t>(queued.load()) + total.queued));
    claimed.store(static_cast<uint64_t>(static_cast<int64_t>(claimed.load()) + total.claimed));
    enqueue_calls.fetch_add(total.enqueue_calls);
    jobs_enqueued.fetch_add(total.jobs_enqueued);
    duplicates.fetch_add(total.duplicates);
    dead_jobs.fetch_add(total.dead_jobs);
    last_commit_ok.store(true);
    // Before the claims are handed out: a worker's lookups for a claim must find the identities
    // its transaction, or an earlier one, gave out (RecentIdentities).
    if (!total.identities_added.empty()) recent_identities.Add(total.identities_added);
    if (total.indexed_through > 0) recent_identities.Indexed(total.indexed_through);
    size_t recent = recent_identities.size();
    if (!indexing_identities && recent > 0 && recent >= options.identity_index_batch) {
      SubmitIndexIdentities();
    }
    // Before the claims are handed out, like the identities (their completions, which drop
    // what their move added, can only come after).
    ChangeLogRefs(total.log_refs_added, total.log_refs_dropped);
    if (!total.handed.empty()) {
      std::unique_lock<std::mutex> hl(handoff_mu);
      if (!shutting_down.load()) {
        for (store_sql::ClaimedRows& c : total.handed) {
          handed_jobs.fetch_add(c.rows.size());
          handed.push_back(std::move(c));
        }
      } else {
        hl.unlock();
        ReturnHanded(std::move(total.handed));  // Shutdown already emptied the hand-off
      }
    }
    if (total.work) WakeOneWorker();
  }

  // Queues an operation that enters the recent identities into identity_index (writer thread).
  // Not durable: lost in a crash, the index is where it was and RecentIdentities::Load finds
  // the identities it would have entered.
  void SubmitIndexIdentities() {
    indexing_identities = true;
    Op op;
    op.durable = false;
    op.apply = [this](OpContext& ctx) -> Status {
      return store_sql::IndexIdentities(ctx.db, &ctx.fx.indexed_through);
    };
    // A failure is counted (Stats::failures); the next commit tries again.
    op.finish = [this](Status) { indexing_identities = false; };
    Submit(std::move(op));
  }

  // A claim's rows as a worker gets them; jobs that no longer parse are set aside (ClaimNext).
  Result<std::optional<Claim>> ToClaim(store_sql::ClaimedRows rows);

  bool HandoffEmpty() {
    std::lock_guard<std::mutex> hl(handoff_mu);
    return handed.empty();
  }

  // Returns claims a move made and no worker will take to the queue, unclaimed (an operation
  // queued behind the current batch; it runs before the writer stops).
  void ReturnHanded(std::vector<store_sql::ClaimedRows> claims) {
    std::vector<int64_t> ids;
    for (const store_sql::ClaimedRows& c : claims) {
      for (const store_sql::ClaimedRow& r : c.rows) ids.push_back(r.id);
    }
    if (ids.empty()) return;
    Op op;
    op.durable = false;
    op.apply = [ids](OpContext& ctx) -> Status {
      if (Status st = store_sql::UnclaimJobs(ctx.db, ids); !st.ok()) return st;
      ctx.fx.claimed = -static_cast<int64_t>(ids.size());
      return OkStatus();
    };
    // A failure is counted (Stats::failures); the jobs, left claimed, are queued again at the
    // next Open (counted as resumed).
    op.finish = [](Status) {};
    Submit(std::move(op));
  }

  // Wakes one idle worker (WaitForWork) and moves the epoch, so that a worker about to wait does
  // not. One, not all: most commits make one claim's worth of work, and during a storm one
  // worker holds the storm's key, so waking every idle worker made each of them look and find
  // nothing, on every commit. A worker that claims wakes the next one (ClaimNext), so several
  // claimable storms still get as many workers.
  void WakeOneWorker() {
    std::lock_guard<std::mutex> wl(work_mu);
    work_epoch.fetch_add(1);
    work_cv.notify_one();
  }

  void RunBatch(std::vector<Op>& batch) {
    bool durable = false;
    for (const Op& op : batch) durable = durable || op.durable;
    if (durable != synchronous_full) {
      // In WAL mode synchronous=NORMAL keeps commits atomic and ordered, only not yet synced.
      (void)Exec(writer, durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      synchronous_full = durable;
    }
    std::vector<Status> results(batch.size(), OkStatus());
    Effects total;
    // First without savepoints: each one costs a statement journal of every page its operation
    // touches, and operations almost always succeed. When one fails, the batch is applied again
    // with a savepoint per operation, so that the failed one leaves no trace and the others
    // commit; alone in its batch, the failed operation is simply answered (nothing to commit).
    // Operations can be applied again after a rollback: they start from their inputs, not from
    // a previous attempt's state.
    Pass pass = ApplyPass(batch, /*guarded=*/false, results, total);
    if (pass == Pass::kOneFailed && batch.size() > 1) {
      pass = ApplyPass(batch, /*guarded=*/true, results, total);
    }
    if (pass == Pass::kApplied) {
      if (Status commit = ExecCached(writer, "COMMIT"); commit.ok()) {
        Publish(batch.size(), total);
      } else {
        (void)Exec(writer, "ROLLBACK");
        for (Status& r : results) {
          if (r.ok()) r = commit;
        }
        pass = Pass::kAborted;
      }
    }
    if (pass == Pass::kAborted) last_commit_ok.store(false);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!results[i].ok()) {
        if (batch[i].counts_as_rejected_full &&
            results[i].error().code == ErrorCode::kUnavailable &&
            results[i].error().message.find("queue is full") != std::string::npos) {
          rejected_full.fetch_add(1);
        } else {
          failures.fetch_add(1);
        }
      }
      batch[i].finish(std::move(results[i]));
    }
  }

  // Submits an operation that queues jobs: `insert` fills the outcome (from scratch: a batch may
  // apply an operation twice, RunBatch), the effects follow from it, and `done` gets it after
  // the commit (or the failure). `calls` is what it adds to Stats::enqueue_calls.
  void SubmitEnqueue(std::function<Status(OpContext&, EnqueueOutcome&)> insert, uint64_t calls,
                     bool durable, Store::Callback<EnqueueOutcome> done) {
    auto outcome = std::make_shared<EnqueueOutcome>();
    Op op;
    op.durable = durable;
    op.counts_as_rejected_full = true;
    op.apply = [insert = std::move(insert), calls, outcome](OpContext& ctx) -> Status {
      *outcome = EnqueueOutcome{};
      if (Status st = insert(ctx, *outcome); !st.ok()) return st;
      ctx.fx.queued = static_cast<int64_t>(outcome->job_ids.size());
      ctx.fx.enqueue_calls = calls;
      ctx.fx.jobs_enqueued = outcome->job_ids.size();
      ctx.fx.duplicates = outcome->duplicates;
      ctx.fx.work = !outcome->job_ids.empty();
      return OkStatus();
    };
    op.finish = [outcome, done = std::move(done)](Status st) {
      if (st.ok()) {
        done(std::move(*outcome));
      } else {
        done(st.error());
      }
    };
    Submit(std::move(op));
  }

  // Runs `apply` on the writer and blocks for its result. REQUIRES: not on the writer thread.
  template <typename T>
  Result<T> RunBlocking(std::function<Result<T>(OpContext&)> apply, bool durable = true) {
    auto promise = std::make_shared<std::promise<Result<T>>>();
    std::future<Result<T>> future = promise->get_future();
    auto value = std::make_shared<std::optional<T>>();
    Op op;
    op.durable = durable;
    op.apply = [apply = std::move(apply), value](OpContext& ctx) -> Status {
      Result<T> r = apply(ctx);
      if (!r.ok()) return r.error();
      *value = std::move(*r);
      return OkStatus();
    };
    op.finish = [promise, value](Status st) {
      if (st.ok()) {
        promise->set_value(std::move(**value));
      } else {
        promise->set_value(st.error());
      }
    };
    Submit(std::move(op));
    return future.get();
  }
};

// ---- open ----

namespace {

Status OpenConnection(const std::string& path, const StoreOptions& o, sqlite3** out) {
  int rc = sqlite3_open_v2(
      path.c_str(), out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return SqlError(*out, rc, ("open " + path).c_str());
  sqlite3_extended_result_codes(*out, 1);
  sqlite3_busy_timeout(*out, static_cast<int>(o.busy_timeout.count()));
  {
    // journal_mode answers with the mode in effect; WAL can be refused (e.g. some network file
    // systems), and durability is then not what we promise.
    Stmt s(*out, "PRAGMA journal_mode=WAL");
    if (!s.ok()) return s.error("PRAGMA journal_mode");
    if (s.Step() != SQLITE_ROW || s.Text(0) != "wal") {
      return Error::Unavailable("store: " + path + ": cannot use WAL journal mode");
    }
  }
  if (Status st = Exec(*out, "PRAGMA synchronous=FULL"); !st.ok()) return st;
  if (Status st = Exec(*out, "PRAGMA foreign_keys=ON"); !st.ok()) return st;
  // Statement journals (one per operation's savepoint) in memory: they only matter until the
  // operation ends, and a temporary file costs write calls on every operation.
  if (Status st = Exec(*out, "PRAGMA temp_store=MEMORY"); !st.ok()) return st;
  // Debian builds SQLite with secure_delete on: every page freed (a routed job's payload, pruned
  // page memory) is overwritten with zeros, one more page write each. FAST zeroes deleted content
  // only where the page is written anyway; a free page keeps its old bytes until reused, in a
  // file only the daemon can read, holding no secrets. The load bench's storm was accepted a
  // quarter faster (bench/README.md, "Identities by number").
  if (Status st = Exec(*out, "PRAGMA secure_delete=FAST"); !st.ok()) return st;
  // The file's growth step (StoreOptions::grow_bytes). Set on every connection: the one that
  // runs a checkpoint (the writer, normally) is the one that grows the file. A VFS without
  // chunks answers SQLITE_NOTFOUND; the file then grows as before.
  uint64_t grow = o.grow_bytes;
  if (o.max_bytes > 0) grow = std::min<uint64_t>(grow, o.max_bytes / 8);
  int chunk = static_cast<int>(std::min<uint64_t>(grow, 1u << 30));
  if (chunk > 0) (void)sqlite3_file_control(*out, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk);
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  namespace fs = std::filesystem;
  // SQLite's memory statistics take a process-wide mutex on every allocation and free; on the
  // writer thread, which allocates for every statement step, that lock showed in profiles, and
  // nothing here reads the statistics. Only possible before SQLite initializes (the first
  // connection of the process); later calls fail harmlessly.
  static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)memstatus_off;
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.commit_max_batch == 0) impl->options.commit_max_batch = 1;
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) return Error::Unavailable("store: cannot create " + options.dir + ": " + ec.message());
  impl->db_path = (fs::path(options.dir) / "tracepager.db").string();

  std::string lock_path = (fs::path(options.dir) / "tracepager.lock").string();
  impl->lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (impl->lock_fd < 0) {
    return Error::Unavailable("store: cannot open " + lock_path + ": " + std::strerror(errno));
  }
  if (::flock(impl->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return Error::Unavailable("store: " + options.dir +
                              " is in use by another tracepager process (" + lock_path + ")");
  }

  if (Status st = OpenConnection(impl->db_path, options, &impl->writer); !st.ok()) {
    return st.error();
  }
  if (options.max_bytes > 0) {
    Stmt ps(impl->writer, "PRAGMA page_size");
    int64_t page_size = ps.ok() && ps.Step() == SQLITE_ROW ? ps.Int(0) : 4096;
    int64_t pages = std::max<int64_t>(32, static_cast<int64_t>(options.max_bytes) / page_size);
    std::string sql = "PRAGMA max_page_count=" + std::to_string(pages);
    if (Status st = Exec(impl->writer, sql.c_str()); !st.ok()) return st.error();
    impl->enqueue_page_limit = pages - std::max<int64_t>(16, pages / 5);
  }
  if (Status st = store_sql::Migrate(impl->writer); !st.ok()) return st.error();
  if (Status st = impl->recent_identities.Load(impl->writer); !st.ok()) return st.error();

  // Claims belong to the process that made them; that process is gone (we hold the lock).
  if (Status st = Exec(impl->writer, "UPDATE jobs SET state=0 WHERE state=1"); !st.ok()) {
    return st.error();
  }
  impl->resumed_at_open = static_cast<uint64_t>(sqlite3_changes(impl->writer));
  {
    Result<std::map<uint64_t, uint64_t>> refs = store_sql::ReadIntakeReferences(impl->writer);
    if (!refs.ok()) return refs.error();
    impl->log_refs = std::move(*refs);
  }
  {
    Stmt count(impl->writer,
               "SELECT (SELECT COUNT(*) FROM jobs WHERE state=0) + "
               "(SELECT COUNT(*) FROM jobs WHERE state=1)");
    if (!count.ok() || count.Step() != SQLITE_ROW) return count.error("count jobs");
    impl->queued = static_cast<uint64_t>(count.Int(0));
  }
  if (Status st = OpenConnection(impl->db_path, options, &impl->reader); !st.ok()) {
    return st.error();
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "tp-store");
    raw->WriterLoop();
  });
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() {
  Shutdown();
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
    impl_->cv.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

const std::string& Store::path() const { return impl_->db_path; }

StoreStats Store::stats() const {
  StoreStats s;
  s.transactions = impl_->transactions;
  s.operations = impl_->operations;
  s.enqueue_calls = impl_->enqueue_calls;
  s.jobs_enqueued = impl_->jobs_enqueued;
  s.duplicates = impl_->duplicates;
  s.rejected_full = impl_->rejected_full;
  s.failures = impl_->failures;
  s.queued = impl_->queued;
  // Claims a move made that no worker took yet are waiting, not being worked on. (The two
  // counters are read one after the other: the difference is kept from going below zero.)
  uint64_t claimed = impl_->claimed.load();
  s.handed = std::min(claimed, impl_->handed_jobs.load());
  s.claimed = claimed - s.handed;
  s.resumed_at_open = impl_->resumed_at_open;
  s.dead_jobs = impl_->dead_jobs;
  s.last_commit_ok = impl_->last_commit_ok;
  return s;
}

uint64_t Store::WorkEpoch() const { return impl_->work_epoch.load(); }

void Store::WaitForWork(uint64_t seen_epoch, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(impl_->work_mu);
  impl_->work_cv.wait_for(lk, timeout, [&] {
    return impl_->work_epoch.load() != seen_epoch || impl_->shutting_down.load();
  });
}

void Store::Shutdown() {
  {
    std::lock_guard<std::mutex> lk(impl_->work_mu);
    impl_->shutting_down = true;
    impl_->work_cv.notify_all();
  }
  // Claims handed over and not taken go back to the queue: no worker takes them now, and left
  // claimed they would count as an attempt at the next Open. A move committing after this
  // sees shutting_down under handoff_mu and returns its claims itself (Publish).
  std::vector<store_sql::ClaimedRows> left;
  {
    std::lock_guard<std::mutex> hl(impl_->handoff_mu);
    for (store_sql::ClaimedRows& c : impl_->handed) left.push_back(std::move(c));
    impl_->handed.clear();
    impl_->handed_jobs.store(0);
  }
  impl_->ReturnHanded(std::move(left));
}

// ---- enqueue ----

JobRow JobRowOf(const RoutingJob& job) {
  return JobRow{JobKindName(job.kind), job.identity, job.storm_key, job.dedup_key, JobToJson(job)};
}

void Store::EnqueueAsync(std::vector<RoutingJob> jobs, int64_t now_ns, int64_t dedup_window_ns,
                         Callback<EnqueueOutcome> done) {
  if (impl_->shutting_down) {
    done(Error::Unavailable("store: shutting down"));
    return;
  }
  if (jobs.empty()) {
    done(EnqueueOutcome{});
    return;
  }
  // Serialized here, on the caller's thread: the writer thread is the one every operation
  // waits behind.
  std::vector<JobRow> rows;
  rows.reserve(jobs.size());
  for (const RoutingJob& job : jobs) rows.push_back(JobRowOf(job));
  impl_->SubmitEnqueue(
      [rows = std::move(rows), now_ns, dedup_window_ns](OpContext& ctx, EnqueueOutcome& out) {
        return store_sql::InsertJobs(ctx.db, ctx.identities, rows, now_ns, dedup_window_ns,
                                     ctx.queued_now, ctx.max_queued, ctx.enqueue_page_limit, &out);
      },
      /*calls=*/1, /*durable=*/true, std::move(done));
}

void Store::ApplyIntakeAsync(std::vector<std::shared_ptr<const IntakeBatch>> batches,
                             uint64_t last_seq, Callback<EnqueueOutcome> done) {
  size_t calls = batches.size();
  Impl* impl = impl_.get();
  impl_->SubmitEnqueue(
      [impl, batches = std::move(batches), last_seq](OpContext& ctx,
                                                     EnqueueOutcome& out) -> Status {
        // Fresh jobs are claimed as they are inserted when a worker would claim them next
        // anyway: nothing is queued (no backlog to overtake, no retry waiting) and the last
        // move's claims were taken. A claim made by ClaimNext would rewrite each row and its
        // index entries right after this insert: about a quarter of the writer's work under
        // load (bench/README.md).
        store_sql::Handoff handoff;
        handoff.payload_in_log = static_cast<bool>(impl->options.intake_payload_reader);
        handoff.claimed_ns = NowNs();
        if (!impl->shutting_down.load() && impl->HandoffEmpty()) {
          Result<bool> backlog = store_sql::AnyQueued(ctx.db);
          if (!backlog.ok()) return backlog.error();
          if (!*backlog) handoff.max_group = impl->handoff_max_group.load();
        }
        // The database's size is checked once for the whole move: the page count query is not
        // free, and a move is many webhooks.
        int64_t page_limit = ctx.enqueue_page_limit;
        for (const std::shared_ptr<const IntakeBatch>& b : batches) {
          handoff.batch = b;
          Status st = store_sql::InsertJobs(
              ctx.db, ctx.identities, b->jobs, b->now_ns, b->dedup_window_ns, 0,
              std::numeric_limits<uint64_t>::max(), page_limit, &out, &handoff);
          if (!st.ok()) return st;
          page_limit = 0;
        }
        for (const store_sql::ClaimedRows& c : handoff.claims) {
          ctx.fx.claimed += static_cast<int64_t>(c.rows.size());
        }
        ctx.fx.handed = std::move(handoff.claims);
        ctx.fx.log_refs_added = std::move(handoff.log_refs);
        return store_sql::WriteIntakeApplied(ctx.db, last_seq);
      },
      calls, /*durable=*/false, std::move(done));
}

void Store::SyncIntakeAppliedAsync(std::function<void(Status)> done) {
  Op op;
  // A commit writes a WAL frame only for a changed page: the marker is rewritten (to itself) so
  // that there is one, and synchronous=FULL syncs the WAL up to it, earlier commits included.
  op.apply = [](OpContext& ctx) -> Status {
    Result<uint64_t> seq = store_sql::ReadIntakeApplied(ctx.db);
    if (!seq.ok()) return seq.error();
    return store_sql::WriteIntakeApplied(ctx.db, *seq);
  };
  op.finish = std::move(done);
  impl_->Submit(std::move(op));
}

Status Store::SyncIntakeApplied() {
  // Shared with the callback: the writer thread may still be inside set_value when get returns.
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> future = promise->get_future();
  SyncIntakeAppliedAsync([promise](Status st) { promise->set_value(std::move(st)); });
  return future.get();
}

bool Store::RefersToIntakeRecords(uint64_t first_seq, uint64_t last_seq) const {
  std::lock_guard<std::mutex> lk(impl_->log_refs_mu);
  auto it = impl_->log_refs.lower_bound(first_seq);
  return it != impl_->log_refs.end() && it->first <= last_seq;
}

Result<uint64_t> Store::IntakeApplied() {
  std::lock_guard<std::mutex> lk(impl_->reader_mu);
  return store_sql::ReadIntakeApplied(impl_->reader);
}

Result<EnqueueOutcome> Store::Enqueue(std::vector<RoutingJob> jobs, int64_t now_ns,
                                      int64_t dedup_window_ns) {
  auto promise = std::make_shared<std::promise<Result<EnqueueOutcome>>>();
  std::future<Result<EnqueueOutcome>> future = promise->get_future();
  EnqueueAsync(std::move(jobs), now_ns, dedup_window_ns,
               [promise](Result<EnqueueOutcome> r) { promise->set_value(std::move(r)); });
  return future.get();
}

// ---- workers ----

Result<std::optional<Claim>> Store::ClaimNext(int64_t now_ns, size_t max_group) {
  if (impl_->shutting_down) return std::optional<Claim>();
  max_group = std::max<size_t>(1, max_group);
  impl_->handoff_max_group.store(max_group);
  {
    // A claim a move or a completion made comes first: it holds the oldest ready jobs, since a
    // move claims only when nothing is queued, and a completion only the group this would claim.
    std::unique_lock<std::mutex> hl(impl_->handoff_mu);
    if (!impl_->handed.empty()) {
      store_sql::ClaimedRows rows = std::move(impl_->handed.front());
      impl_->handed.pop_front();
      impl_->handed_jobs.fetch_sub(rows.rows.size());
      hl.unlock();
      impl_->WakeOneWorker();  // there may be more
      return impl_->ToClaim(std::move(rows));
    }
  }
  {
    // Many attempts find nothing: during a storm one worker holds the storm's key, and a woken
    // worker may find that a busy one already took the work. Asking the reader connection first
    // keeps those attempts off the writer thread, which moves webhooks into the queue and
    // finishes every claim. A job that becomes ready after this read changes WorkEpoch(), which
    // the caller read before calling, so its wait returns at once. A failed read falls through
    // to the writer.
    std::lock_guard<std::mutex> lk(impl_->reader_mu);
    Result<bool> any = store_sql::AnyClaimable(impl_->reader, now_ns);
    if (any.ok() && !*any) return std::optional<Claim>();
  }
  Result<std::optional<store_sql::ClaimedRows>> rows =
      impl_->RunBlocking<std::optional<store_sql::ClaimedRows>>(
          [now_ns, max_group](OpContext& ctx) -> Result<std::optional<store_sql::ClaimedRows>> {
            Result<std::optional<store_sql::ClaimedRows>> claim =
                store_sql::ClaimJobs(ctx.db, now_ns, max_group);
            if (claim.ok() && claim->has_value()) {
              ctx.fx.claimed = static_cast<int64_t>((*claim)->rows.size());
            }
            return claim;
          },
          /*durable=*/false);
  if (!rows.ok()) return rows.error();
  if (!rows->has_value()) return std::optional<Claim>();
  // There may be more claimable work (another storm key): pass the wake-up on.
  impl_->WakeOneWorker();
  return impl_->ToClaim(std::move(**rows));
}

Result<std::optional<Claim>> Store::Impl::ToClaim(store_sql::ClaimedRows rows) {
  // Parsed here, on the worker's thread, not on the writer's; with its details only the first
  // job (ClaimedJob).
  Claim claim;
  claim.storm_key = std::move(rows.storm_key);
  claim.jobs.reserve(rows.rows.size());
  std::vector<int64_t> dead;
  for (store_sql::ClaimedRow& row : rows.rows) {
    const bool detailed = claim.jobs.empty();
    if (row.live != nullptr) {
      claim.jobs.push_back(ClaimedJob{row.id, detailed ? *row.live : WithoutDetails(*row.live),
                                      detailed, row.claims, row.enqueued_ns});
      continue;
    }
    Result<std::string> payload = PayloadOf(std::move(row.payload), row.log);
    if (!payload.ok() && payload.error().code == ErrorCode::kUnavailable) {
      // The log could not be read now (an I/O error, no descriptor left): the whole claim goes
      // back to the queue, in order, for a later try. Not dead: its record is there.
      std::vector<int64_t> ids;
      for (const store_sql::ClaimedRow& r : rows.rows) ids.push_back(r.id);
      Result<Ok> back = RunBlocking<Ok>(
          [ids](OpContext& ctx) -> Result<Ok> {
            Status st = store_sql::ReleaseJobs(ctx.db, ids, NowNs() + kUnreadableRetryNs);
            if (!st.ok()) return st.error();
            ctx.fx.claimed = -static_cast<int64_t>(ids.size());
            return Ok{};
          },
          /*durable=*/false);
      if (!back.ok()) return back.error();
      return payload.error();
    }
    Result<RoutingJob> job =
        payload.ok() ? JobFromJson(*payload, detailed ? JobParts::kAll : JobParts::kWithoutDetails)
                     : Result<RoutingJob>(payload.error());
    if (!job.ok()) {
      spdlog::error("job_set_aside job={} reason=\"{}\"", row.id, job.error().message);
      dead.push_back(row.id);
      continue;
    }
    ClaimedJob cj;
    cj.id = row.id;
    cj.job = std::move(*job);
    cj.detailed = detailed;
    cj.claims = row.claims;
    cj.enqueued_ns = row.enqueued_ns;
    claim.jobs.push_back(std::move(cj));
  }
  if (!dead.empty()) {
    // Claimed but unusable: set aside so that they cannot block the queue. Not durable: after a
    // crash they are claimable again and set aside again.
    Result<Ok> buried = RunBlocking<Ok>(
        [dead](OpContext& ctx) -> Result<Ok> {
          Status st = store_sql::BuryJobs(ctx.db, dead, &ctx.fx.log_refs_dropped);
          if (!st.ok()) return st.error();
          int64_t n = static_cast<int64_t>(dead.size());
          ctx.fx.queued = -n;
          ctx.fx.claimed = -n;
          ctx.fx.dead_jobs = dead.size();
          ctx.fx.work = true;  // the storm key is free again if nothing else of it was claimed
          return Ok{};
        },
        /*durable=*/false);
    if (!buried.ok()) return buried.error();
  }
  if (claim.jobs.empty()) return std::optional<Claim>();  // all of them were dead
  return std::optional<Claim>(std::move(claim));
}

Status Store::Release(const std::vector<int64_t>& job_ids, int64_t not_before_ns) {
  // A job whose payload is in the intake log takes it into the database as it goes back to the
  // queue: its retry may come much later (workers.retry_delay, up to max_attempts times), and
  // the log would keep its segment until then. Read here, on the caller's thread; one that
  // cannot be read now stays in the log (a claim reads it later, or sets the job aside).
  std::vector<store_sql::TakenInPayload> taken_in;
  if (impl_->options.intake_payload_reader) {
    for (int64_t id : job_ids) {
      Result<store_sql::StoredPayload> stored = [&] {
        std::lock_guard<std::mutex> lk(impl_->reader_mu);
        return store_sql::ReadJobPayload(impl_->reader, id);
      }();
      if (!stored.ok() || stored->log.seq == 0) continue;
      Result<std::string> payload = impl_->PayloadOf({}, stored->log);
      if (payload.ok()) taken_in.push_back({id, stored->log.seq, std::move(*payload)});
    }
  }
  // Durable when it takes payloads in: the intake may reuse their segments once it committed.
  const bool durable = !taken_in.empty();
  Result<Ok> r = impl_->RunBlocking<Ok>(
      [&job_ids, not_before_ns, &taken_in](OpContext& ctx) -> Result<Ok> {
        Status st = store_sql::ReleaseJobs(ctx.db, job_ids, not_before_ns);
        if (!st.ok()) return st;
        st = store_sql::TakePayloadsIn(ctx.db, taken_in, &ctx.fx.log_refs_dropped);
        if (!st.ok()) return st;
        ctx.fx.claimed = -static_cast<int64_t>(job_ids.size());
        ctx.fx.work = true;
        return Ok{};
      },
      durable);
  return r;
}

Result<CompletionOutcome> Store::Complete(const Completion& completion) {
  size_t next_group = impl_->handoff_max_group.load();
  Impl* impl = impl_.get();
  // By reference: RunBlocking returns after the writer's last use of the operation, and a
  // storm's completion (a thousand attachments, the decision record) is not copied.
  return impl_->RunBlocking<CompletionOutcome>(
      [&completion, next_group, impl](OpContext& ctx) -> Result<CompletionOutcome> {
        Result<CompletionOutcome> r =
            store_sql::CompleteJobs(ctx.db, ctx.identities, completion, &ctx.fx.log_refs_dropped);
        if (!r.ok()) return r;
        int64_t n = static_cast<int64_t>(completion.job_ids.size());
        ctx.fx.queued = -n;
        ctx.fx.claimed = -n;
        ctx.fx.work = true;  // the storm key is free again
        // A storm with a backlog: the claim the next ClaimNext would make, if it is this storm's
        // next group, is made here and handed over (ClaimNext takes it without a transaction of
        // its own). The storm's worker otherwise waited for the writer twice per group, behind
        // the moves, and a storm was routed at half the pace its worker could go (bench/README.md,
        // "Identities by number"). Only that claim: other storms keep their turn. Not while
        // shutting down: no worker would take it.
        if (next_group > 0 && !impl->shutting_down.load()) {
          Result<std::optional<store_sql::ClaimedRows>> next =
              store_sql::ClaimJobs(ctx.db, completion.now_ns, next_group, &completion.storm_key);
          if (!next.ok()) return next.error();
          if (next->has_value()) {
            ctx.fx.claimed += static_cast<int64_t>((*next)->rows.size());
            ctx.fx.handed.push_back(std::move(**next));
          }
        }
        return r;
      });
}

Status Store::Maintain(int64_t dedup_before_ns, int64_t retain_before_ns) {
  return impl_->RunBlocking<Ok>([=](OpContext& ctx) -> Result<Ok> {
    Status st =
        store_sql::Prune(ctx.db, dedup_before_ns, retain_before_ns, &ctx.fx.indexed_through);
    if (!st.ok()) return st.error();
    ctx.fx.pruned = true;
    return Ok{};
  });
}

// ---- lookups (reader connection) ----

Result<RoutingJob> Store::DetailedJob(const ClaimedJob& claimed) {
  if (claimed.detailed) return claimed.job;
  Result<store_sql::StoredPayload> stored = [&] {
    std::lock_guard<std::mutex> lk(impl_->reader_mu);
    return store_sql::ReadJobPayload(impl_->reader, claimed.id);
  }();
  if (!stored.ok()) return stored.error();
  Result<std::string> payload = impl_->PayloadOf(std::move(stored->text), stored->log);
  if (!payload.ok()) return payload.error();
  return JobFromJson(*payload);
}

Result<std::vector<PageRecord>> Store::OpenPagesForStorm(const std::string& storm_key,
                                                         int64_t since_ns) {
  std::lock_guard<std::mutex> lk(impl_->reader_mu);
  return store_sql::QueryPagesForStorm(impl_->reader, storm_key, since_ns);
}

Result<std::map<std::string, std::vector<PageRecord>>> Store::OpenPagesForIdentities(
    const std::vector<std::string>& identities) {
  std::lock_guard<std::mutex> lk(impl_->reader_mu);
  return store_sql::QueryPagesForIdentities(impl_->reader, impl_->recent_identities, identities);
}

Result<std::vector<std::string>> Store::FiringIdentities(int64_t page_id) {
  std::lock_guard<std::mutex> lk(impl_->reader_mu);
  return store_sql::QueryFiringIdentities(impl_->reader, page_id);
}

Result<uint64_t> Store::FiringCount(int64_t page_id, const std::vector<std::string>& among) {
  std::lock_guard<std::mutex> lk(impl_->reader_mu);
  return store_sql::QueryFiringCount(impl_->reader, impl_->recent_identities, page_id, among);
}

}  // namespace tracepager::daemon
