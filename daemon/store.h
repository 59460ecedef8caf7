// Store: the durable queue of routing jobs and the memory of what was paged, in SQLite under
// the state directory (<dir>/tracepager.db, WAL mode, synchronous=FULL).
//
// Guarantees:
//   - Enqueue reports success only after the jobs are committed and fsynced: an alert that was
//     answered 2xx survives kill -9 and power loss. All jobs of one call commit together or not
//     at all. (The daemon's webhooks do not come through Enqueue: they are acknowledged by the
//     intake log, daemon/intake.h, which moves them in with ApplyIntakeAsync.)
//   - Group commit: one writer thread owns the write connection. Every mutation (enqueue, claim,
//     release, complete, maintenance) is an operation queued to it; the writer takes everything
//     pending (up to commit_max_batch), applies the operations in one transaction, commits once,
//     and then completes each caller. N concurrent enqueues cost far fewer than N fsyncs. Each
//     operation is atomic on its own: one that fails leaves no trace while the others of its
//     batch commit (the batch is then applied again with a savepoint per operation).
//   - The queue is bounded (max_queued_jobs counts queued and claimed jobs). A full queue, a full
//     disk (SQLITE_FULL, or max_bytes reached) and I/O errors fail with kUnavailable: the HTTP
//     layer answers 503 so that Alertmanager retries.
//   - Claims are leases held by this process: a job claimed but not completed when the process
//     died is queued again when the store is next opened (Stats::resumed_at_open).
//   - A job is finished only by Complete, which deletes it in the same transaction that records
//     its decision and its pages.
//   - One process per state directory: Open takes an exclusive lock (<dir>/tracepager.lock) and
//     fails with kUnavailable while another process holds it.
//   - Schema versioned with PRAGMA user_version. Open applies the migrations this build knows, in
//     order (store.cc, kMigrations); later features add tables by appending a migration. A
//     database newer than the build is refused.
//
// Storms and repeats: alerts are grouped by RoutingJob::storm_key. ClaimNext hands out all ready
// jobs of one storm key together and never hands out a storm key that is already claimed, so
// one worker at a time owns a storm key: its read-decide-complete sequence cannot race another
// worker on the same key. The pages table remembers what was paged, per storm key and per alert
// identity (page_alerts), so a worker can tell a repeat (the identity already has an open page)
// and a storm (an open page for the storm key within the storm window) from a new incident, and
// can resolve a page once all of its alerts resolved.
//
// Thread-safety: every method may be called from any thread. Callbacks run on the writer thread
// (or on the caller's thread when an operation needs no transaction); they must not block and
// must not call blocking Store methods.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/job.h"
#include "routing/result.h"

namespace tracepager::daemon {

// Where a job's payload is in the intake log: job `index` of the record numbered `seq`, which
// starts `offset` bytes into its segment file.
struct IntakeLogRef {
  uint64_t seq = 0;  // 0: none
  uint64_t offset = 0;
  uint32_t index = 0;
};

struct StoreOptions {
  std::string dir;  // created (0700) when missing
  uint64_t max_queued_jobs = 100'000;
  uint64_t max_bytes = 0;  // 0: no cap beyond the disk
  uint32_t commit_max_batch = 1024;
  std::chrono::milliseconds commit_max_delay{0};
  std::chrono::milliseconds busy_timeout{5000};
  // Alert identities given an id are entered into the identity index (store_sql.h,
  // RecentIdentities) this many at a time, and looked up in memory until then.
  size_t identity_index_batch = 8192;
  // The database file grows by this many bytes at a time (SQLite's SQLITE_FCNTL_CHUNK_SIZE; at
  // most an eighth of max_bytes when that is set; 0: page by page). Every alert adds rows that
  // stay (its identity, dedup entry, page memory), so under a storm the file grew at nearly
  // every checkpoint, each growth a change of the file's size that the checkpoint's fsync then
  // had to write too, and blocks allocated a few at a time (bench/README.md, "Database grown
  // in chunks").
  size_t grow_bytes = 8u << 20;
  // Reads a job's payload back from the intake log (ReadIntakeJobPayload, daemon/intake.h).
  // When set, a job a move hands straight to a worker (ApplyIntakeAsync) is stored without its
  // payload, which stays in the intake log: most jobs are routed and deleted moments after
  // their move, and writing each payload into the database and deleting it again was a sixth
  // of the writer's work (bench/README.md, "Payloads left in the log"). The intake keeps a
  // segment while a job still refers to it (RefersToIntakeRecords). Unset: every payload is
  // stored.
  std::function<Result<std::string>(const IntakeLogRef&)> intake_payload_reader;
};

// A job as the queue stores it: the columns it is looked up by and its JobToJson text. Made off
// the writer thread (JobRowOf), which every operation of the daemon waits behind.
struct JobRow {
  std::string kind;  // JobKindName
  std::string identity;
  std::string storm_key;
  std::string dedup_key;
  std::string payload;  // JobToJson
};
JobRow JobRowOf(const RoutingJob& job);

// One acknowledged webhook's jobs, as the intake log (daemon/intake.h) hands them to the queue.
struct IntakeBatch {
  int64_t now_ns = 0;           // when it was received: the dedup window is measured from it
  int64_t dedup_window_ns = 0;  // the window in force when it was received
  std::vector<JobRow> jobs;
  // The same jobs as derived, when the batch was made by this process (empty when read back
  // from the log). A claim made by the move (ApplyIntakeAsync) gives a worker these instead of
  // parsing the payloads they were serialized to: half of a worker's CPU was that parse. (The
  // intake keeps them only where a move is likely to hand them over: not while jobs wait in the
  // queue, nor for records that wait for a store refusing moves: IntakeStats.)
  std::vector<RoutingJob> live;
  // Where the intake log holds this record (its sequence number and byte offset in its
  // segment); log_seq 0 when it is not in the log (Enqueue, tests).
  uint64_t log_seq = 0;
  uint64_t log_offset = 0;
};

struct EnqueueOutcome {
  std::vector<int64_t> job_ids;  // one per job queued now, in the order given
  size_t duplicates = 0;         // jobs dropped as duplicates within the dedup window
};

// What a worker holds between ClaimNext and Complete/Release.
struct ClaimedJob {
  int64_t id = 0;
  // The job, with its details (JobParts) when `detailed`. A claim carries the details of its
  // first job only, whether read back from the queue or made at the move (WithoutDetails): a
  // storm's claim is a thousand alerts, its
  // decision reads the details of one or two (Store::DetailedJob), and claims in flight held
  // parsed in full were most of the daemon's memory under a storm (bench/README.md).
  RoutingJob job;
  bool detailed = true;
  uint32_t claims = 0;  // times claimed, this claim included (resumes after a crash count)
  int64_t enqueued_ns = 0;
};
struct Claim {
  std::string storm_key;
  std::vector<ClaimedJob> jobs;  // oldest first; all share storm_key
};

// A page as the store remembers it.
struct PageRecord {
  int64_t id = 0;
  int64_t decision_id = 0;
  std::string storm_key;
  std::string team;
  std::string pager;  // pager kind, e.g. "log"
  std::string dedup_key;
  std::string payload_json;  // what was sent, so a resolve can address the same target
  int64_t created_ns = 0;
  bool open = true;  // false once resolved
};

// A page a Complete records.
struct NewPage {
  std::string team;
  std::string pager;
  std::string dedup_key;
  std::string payload_json;
  std::vector<std::string> identities;  // alerts this page is for
};

// Everything that finishes a claim, applied in one transaction.
struct Completion {
  std::vector<int64_t> job_ids;  // the jobs finished (deleted from the queue)
  std::string storm_key;
  int64_t now_ns = 0;
  std::string decision_kind;  // "routed" | "fallback" | "storm" | "repeat" | "resolve"
  std::string decision_json;  // the decision record (audit detail)
  std::vector<NewPage> new_pages;
  // Alerts joining an open page of the same storm (no new page): (page id, identity).
  std::vector<std::pair<int64_t, std::string>> attach;
  std::vector<std::string> resolved_identities;  // their page_alerts rows become resolved
  std::vector<int64_t> resolved_pages;           // these pages become resolved
};
struct CompletionOutcome {
  int64_t decision_id = 0;
  std::vector<int64_t> page_ids;  // one per NewPage, in order
};

struct StoreStats {
  uint64_t transactions = 0;   // committed write transactions
  uint64_t operations = 0;     // operations applied in them
  uint64_t enqueue_calls = 0;  // successful Enqueue/EnqueueAsync calls
  uint64_t jobs_enqueued = 0;
  uint64_t duplicates = 0;
  uint64_t rejected_full = 0;    // enqueues refused because the queue was full
  uint64_t failures = 0;         // operations failed by SQLite errors
  uint64_t queued = 0;           // jobs in the queue now (claimed ones included)
  uint64_t claimed = 0;          // jobs claimed by workers now (see ApplyIntakeAsync)
  uint64_t handed = 0;           // jobs in claims a move or completion made, no worker's yet
  uint64_t resumed_at_open = 0;  // claimed jobs found and re-queued by Open
  uint64_t dead_jobs = 0;        // stored jobs that no longer parse, set aside by ClaimNext
  bool last_commit_ok = true;
};

class Store {
 public:
  template <typename T>
  using Callback = std::function<void(Result<T>)>;

  // Opens (creating when needed) the store in options.dir. Fails with kUnavailable when the
  // directory cannot be created or locked or SQLite cannot open it, kInvalidInput when the
  // database's schema is newer than this build.
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);

  // Finishes every operation already queued, stops the writer and closes the database.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Queues `jobs` (one webhook's worth) atomically. A job whose dedup_key was enqueued within
  // `dedup_window_ns` before `now_ns` is dropped as a duplicate. kUnavailable when the queue
  // would exceed max_queued_jobs, the disk is full, or on I/O errors or shutdown.
  // `done` runs once, after the commit is durable (or failed).
  void EnqueueAsync(std::vector<RoutingJob> jobs, int64_t now_ns, int64_t dedup_window_ns,
                    Callback<EnqueueOutcome> done);
  Result<EnqueueOutcome> Enqueue(std::vector<RoutingJob> jobs, int64_t now_ns,
                                 int64_t dedup_window_ns);

  // Moves webhooks that the intake log acknowledged into the queue, in one transaction that
  // also records `last_seq` (IntakeApplied), so that each log record is applied exactly once
  // across crashes. Jobs are inserted as by Enqueue, each batch with its own time and dedup
  // window, but the queue bound is not checked: these jobs were promised when the intake
  // acknowledged them (it checks the bound then). Works after Shutdown (the intake moves its
  // backlog in while the daemon stops). kUnavailable on a full database (max_bytes) or I/O
  // errors: nothing is applied and the caller tries again later.
  // The move commits without its own fsync (the intake log still holds the records; a crash of
  // the process loses nothing committed): it survives power loss once a later durable commit
  // (any completion, or SyncIntakeApplied) has been made.
  // Hand-off: once a worker has called ClaimNext, a move that finds nothing queued (no backlog,
  // no retry waiting) and the previous move's claims taken inserts the fresh jobs of each storm
  // key that has no queued or claimed job already claimed (claims 1), up to the last max_group
  // asked for, and the next ClaimNext calls return those claims without a transaction. The rows
  // are those of an insert followed by a claim, so a crash resumes them as any claim (counted
  // in resumed_at_open, the claim counted as an attempt); Shutdown returns claims no worker
  // took to the queue as if never made. With intake_payload_reader, a job claimed so from a
  // batch in the log (IntakeBatch::log_seq) is stored with its place in the log instead of its
  // payload; its payload is read from there whenever it is needed again (DetailedJob, a claim
  // after a release or a restart).
  void ApplyIntakeAsync(std::vector<std::shared_ptr<const IntakeBatch>> batches, uint64_t last_seq,
                        Callback<EnqueueOutcome> done);
  // The last_seq of the last ApplyIntakeAsync that committed; 0 before any.
  Result<uint64_t> IntakeApplied();
  // Whether a queued or claimed job still reads its payload from an intake record numbered
  // first_seq to last_seq (StoreOptions::intake_payload_reader). Jobs come to refer to a record
  // only through its move (and a move's records are newer than any moved before), and stop
  // once the transaction that completed them (durably), took their payload in (Release) or set
  // them aside as dead committed. So the intake may reuse a segment none of whose records is
  // referred to, once their moves are durable.
  bool RefersToIntakeRecords(uint64_t first_seq, uint64_t last_seq) const;
  // Makes every move committed so far durable (a durable commit), so that the intake log's
  // segments holding them may be reused or deleted. `done` runs after the commit.
  void SyncIntakeAppliedAsync(std::function<void(Status)> done);
  Status SyncIntakeApplied();

  // Claims the oldest ready job (not_before <= now) whose storm key is not claimed, together
  // with up to max_group - 1 further ready jobs of the same storm key; or takes a claim a move
  // made (ApplyIntakeAsync) or a completion made (Complete), which holds the oldest ready jobs
  // of its storm key. nullopt when none is ready (or after Shutdown). A stored job that no
  // longer parses (a corrupt row, a downgrade) cannot be routed: it is set aside (state "dead",
  // kept for inspection, Stats::dead_jobs) rather than blocking the queue.
  Result<std::optional<Claim>> ClaimNext(int64_t now_ns, size_t max_group);

  // A claimed job with its details: `claimed.job` itself when it has them, else read back from
  // the queue. kNotFound when the job is no longer queued (completed or released).
  Result<RoutingJob> DetailedJob(const ClaimedJob& claimed);

  // Returns claimed jobs to the queue, ready again at `not_before_ns` (a retry later).
  Status Release(const std::vector<int64_t>& job_ids, int64_t not_before_ns);

  // Finishes claimed jobs with their decision and pages. kInternal when a job is not claimed.
  // When that frees the storm key and the group ClaimNext would claim next is of the same storm
  // key, the completion's transaction claims it and hands it over as a move's claims are (a
  // storm's backlog goes on without a claim transaction per group; the order of claims is
  // ClaimNext's).
  Result<CompletionOutcome> Complete(const Completion& completion);

  // Open pages of `storm_key` created at or after `since_ns`, newest first.
  Result<std::vector<PageRecord>> OpenPagesForStorm(const std::string& storm_key, int64_t since_ns);
  // Open pages each identity is attached to and not resolved on, newest first, in one lookup (a
  // claim's worth of identities): by identity, only those with an open page.
  Result<std::map<std::string, std::vector<PageRecord>>> OpenPagesForIdentities(
      const std::vector<std::string>& identities);
  // The lookups above do not read a page's alerts: a storm's page may hold a very large number
  // of them, and every repeat or resolve of one of them looks its pages up, so reading them all
  // there made a long storm quadratic. These read what a caller needs: the firing alerts of a
  // page (all of them, by identity) ...
  Result<std::vector<std::string>> FiringIdentities(int64_t page_id);
  // ... and how many are firing, all of them (`among` empty) or only those in `among` (distinct
  // identities).
  Result<uint64_t> FiringCount(int64_t page_id, const std::vector<std::string>& among = {});

  // Deletes dedup entries older than `dedup_before_ns` and decisions and resolved pages
  // older than `retain_before_ns`.
  Status Maintain(int64_t dedup_before_ns, int64_t retain_before_ns);

  // A counter that changes whenever an operation that may make a job ready commits (enqueue,
  // release, complete). A worker reads it before ClaimNext and, finding nothing, waits with
  // WaitForWork(epoch, ...): a commit in between is never missed.
  uint64_t WorkEpoch() const;
  // Returns at once when WorkEpoch() != seen_epoch; otherwise blocks until woken, Shutdown is
  // called, or `timeout` passes. Each change of WorkEpoch wakes one waiting worker, and a worker
  // whose ClaimNext claims wakes another (there may be more work), so idle workers are not all
  // woken by every commit.
  void WaitForWork(uint64_t seen_epoch, std::chrono::milliseconds timeout);
  // Begins shutdown: wakes every WaitForWork; further Enqueue calls fail with kUnavailable and
  // ClaimNext returns nullopt. Release, Complete and the lookups keep working so that jobs in
  // flight can finish; operations already queued still run.
  void Shutdown();

  StoreStats stats() const;
  const std::string& path() const;

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracepager::daemon
