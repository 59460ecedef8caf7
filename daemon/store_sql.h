// Internal to the store (daemon/store.cc): the schema, its migrations and the SQL of each
// operation, over a raw SQLite connection. Callers own transactions and threading; nothing here
// begins or commits. Not for use outside store.cc and its tests.
#pragma once

#include <sqlite3.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "daemon/store.h"

namespace tracepager::daemon::store_sql {

// The schema version this build creates and understands (PRAGMA user_version).
int SchemaVersion();

// Brings the database to SchemaVersion() (tests: to `target`, to make a database as an older
// build left it), one migration per version, each in its own transaction. kInvalidInput when the
// database is newer than this build.
Status Migrate(sqlite3* db, int target = SchemaVersion());

// Maps a SQLite result code to an Error: conditions that may pass (full disk, I/O errors,
// locks, a database that cannot be opened) are kUnavailable, the rest kInternal.
Error SqlError(sqlite3* db, int rc, const std::string& what);

// A prepared statement. Statements are kept per connection, by SQL text, for reuse: on
// destruction a Stmt is reset and goes back to the connection's cache instead of being
// finalized, so the hot paths (every enqueue, claim and completion) do not parse and plan their
// SQL again. A cached statement has one user at a time; a second Stmt with the same text while
// the first lives prepares its own. Thread-safe as the connection is (the cache has its own
// lock). REQUIRES: `sql` outlives the Stmt; it should be a literal or a static string (the cache
// finds statements by its address; other text at a reused address is detected, but not
// cached well). ForgetStatements(db) before `db` is closed.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  // The preparation error (or the last step's), described with `what`.
  Error error(const std::string& what) const { return SqlError(db_, rc_, what); }

  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, const std::string& value);
  // SQLITE_ROW, SQLITE_DONE or an error code (also remembered for error()).
  int Step();
  void Reset();
  int64_t Int(int column) const;
  std::string Text(int column) const;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3* db_;
  const char* sql_;  // the caller's text; outlives this Stmt
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// Finalizes the statements cached for `db`. Call before closing it.
void ForgetStatements(sqlite3* db);

// Alert identities given an id but not yet in `identity_index` (migration 4 -> 5): committed,
// looked up here by their text. `dedup` and `page_alerts` refer to an identity by its id, and
// finding the id of an identity's text needs an index; identities are hashes (Alertmanager's
// fingerprints), so every new identity's index entry landed on a random page of a large B-tree:
// a page written to the WAL, and again by the checkpoint, for every new alert. The index is
// brought up to date in bulk instead (IndexIdentities): the identities given an id since (at
// most a few thousand) are kept here, and enter the index together, in their text's order,
// writing each index page once (bench/README.md, "Identities indexed in bulk").
//
// Thread-safety: all methods may be called from any thread. The writer changes it only after
// the transaction that made the change committed (Store::Impl::Publish). A reader looks here
// before its statement takes its snapshot, so that an identity it does not find here was either
// indexed by a commit its snapshot sees, or is not committed yet (or is committed by a
// transaction whose Publish is still running; no claim is handed out behind such a
// transaction, so the processor's lookups for a claim never race it).
class RecentIdentities {
 public:
  // Reads `through` and the identities with a larger id (Store::Open).
  Status Load(sqlite3* db);
  // What memory knows of an identity's id: the id of a recent identity; kNoId when it certainly
  // has none (it is not recent, and the filter says identity_index does not hold it); kInIndex
  // when only identity_index can tell. The filter is a Bloom filter over the index, so that a
  // new identity (most of a storm's) costs no read of a random index page (bench/README.md,
  // "Identities indexed in bulk"). Sized at Load for 16 bits per indexed identity, at least 1
  // MiB: about 0.2% false positives (kInIndex for an identity the index does not hold), 2% once
  // the index has grown to twice what Load found (and at least a million). Identities pruned
  // from the index stay in it until the next start: false positives, never a wrong answer.
  static constexpr int64_t kNoId = 0;
  static constexpr int64_t kInIndex = -1;
  int64_t Lookup(const std::string& identity) const;
  size_t size() const;
  // Committed: identities given an id.
  void Add(const std::vector<std::pair<std::string, int64_t>>& added);
  // Committed: identity_index now holds every identity with an id up to `through`.
  void Indexed(int64_t through);

 private:
  void FilterAddLocked(const std::string& identity);
  bool FilterHasLocked(const std::string& identity) const;

  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> ids_;
  int64_t through_ = 0;           // identity_index holds every identity whose id is at most this
  std::vector<uint64_t> filter_;  // the Bloom filter's bits (a power of two of them); empty: off
};

// Alert identities' ids for one operation on the writer's connection: found in what the
// operation already looked up, what earlier operations of its transaction gave out (`earlier`),
// the recent identities (`recent`; null: none, and identity_index is read for every identity
// not found before it), and identity_index, in that order; given out on first use (Get). Every
// answer, an id or none, is remembered for the operation, so that the dedup check and the dedup
// mark of a new alert, or a storm's attach and resolve of one identity, look it up once.
class IdentityIds {
 public:
  IdentityIds(sqlite3* db, const RecentIdentities* recent,
              const std::unordered_map<std::string, int64_t>* earlier);

  // The identity's id, or 0 when it has none.
  Result<int64_t> Find(const std::string& identity);
  // The identity's id, given now if it has none. New ids are larger than every id given before,
  // so the rows keyed by them append to their tables.
  Result<int64_t> Get(const std::string& identity);
  // The ids this operation gave out, in order (taken: the next call returns none).
  std::vector<std::pair<std::string, int64_t>> TakeAdded() { return std::move(added_); }

 private:
  sqlite3* db_;
  const RecentIdentities* recent_;
  const std::unordered_map<std::string, int64_t>* earlier_;
  std::unordered_map<std::string, int64_t> known_;  // 0: has no id
  std::vector<std::pair<std::string, int64_t>> added_;
};

// Enters every identity not in identity_index yet into it, in the identities' order, and
// records how far the index goes; `*indexed_through` gets that (the largest id given).
Status IndexIdentities(sqlite3* db, int64_t* indexed_through);

// A claimed job as stored: its payload is parsed by the caller (JobFromJson), off the writer.
struct ClaimedRow {
  int64_t id = 0;
  std::string payload;                     // empty when `live` or `log` is set
  std::shared_ptr<const RoutingJob> live;  // the job itself, from a Handoff's live batch
  IntakeLogRef log;                        // where its payload is when not stored (ClaimJobs)
  uint32_t claims = 0;                     // this claim included
  int64_t enqueued_ns = 0;
};
struct ClaimedRows {
  std::string storm_key;
  std::vector<ClaimedRow> rows;  // oldest first
};

// Claims made while jobs are inserted (Store::ApplyIntakeAsync): a fresh job whose storm key has
// no queued or claimed job is inserted already claimed, as ClaimJobs would claim it next, and
// the jobs of one storm key that follow it join its claim, up to max_group; the rest are queued.
// The rows written are those an insert followed by ClaimJobs writes, minus the rewrite.
struct Handoff {
  size_t max_group = 0;  // 0: no claims, every job is queued
  int64_t claimed_ns = 0;
  // The batch being inserted, when its jobs are live (IntakeBatch::live): claims point at them.
  std::shared_ptr<const IntakeBatch> batch;
  // Whether a claimed job of a batch in the intake log (IntakeBatch::log_seq) is stored with
  // its place there instead of its payload (StoreOptions::intake_payload_reader).
  bool payload_in_log = false;
  std::vector<ClaimedRows> claims;  // out: in the order their storm keys first appeared
  std::vector<uint64_t> log_refs;   // out: per job stored so, its record's sequence number
  // Per storm key seen: its claim's index in `claims`, or kQueue once its jobs must queue.
  static constexpr size_t kQueue = static_cast<size_t>(-1);
  std::unordered_map<std::string, size_t> keys;
};

// Inserts the jobs not seen within the dedup window. kUnavailable ("queue is full") when the
// new jobs would take the queue past max_queued, or ("database is full") when the database
// already uses `page_limit` pages (0: no limit). With `handoff`, fresh jobs may be inserted
// claimed (see Handoff).
Status InsertJobs(sqlite3* db, IdentityIds& identity_ids, const std::vector<JobRow>& jobs,
                  int64_t now_ns, int64_t dedup_window_ns, int64_t queued_now, uint64_t max_queued,
                  int64_t page_limit, EnqueueOutcome* out, Handoff* handoff = nullptr);

// Whether any job is queued (ready or waiting for a retry): a backlog that claims made by a
// Handoff must not overtake.
Result<bool> AnyQueued(sqlite3* db);

// Returns jobs claimed by a Handoff that no worker took (a shutdown) to the queue as if never
// claimed.
Status UnclaimJobs(sqlite3* db, const std::vector<int64_t>& ids);

// The texts of the queue's lookups made per job or per claim, for a test that each uses an
// index (the partial indexes of schema version 7 serve only queries that name their state).
std::vector<std::string> QueueLookupsForTests();

// Whether ClaimJobs would find a job now (read only; for a connection outside the writer).
Result<bool> AnyClaimable(sqlite3* db, int64_t now_ns);

// Claims a group (see Store::ClaimNext): marks the rows claimed and returns them; nullopt when
// no job is ready. With `only_storm_key`, only if that group is of that storm key (nullopt when
// the next group is another's).
Result<std::optional<ClaimedRows>> ClaimJobs(sqlite3* db, int64_t now_ns, size_t max_group,
                                             const std::string* only_storm_key = nullptr);

// Sets claimed jobs aside as dead (they do not parse; see Store::ClaimNext). The intake records
// of those whose payload was in the log go to `log_refs_dropped`: they no longer refer to them
// (the row keeps where its payload was, which the log may reuse).
Status BuryJobs(sqlite3* db, const std::vector<int64_t>& ids,
                std::vector<uint64_t>* log_refs_dropped);

Status ReleaseJobs(sqlite3* db, const std::vector<int64_t>& ids, int64_t not_before_ns);

// A payload read from the intake log, to be stored with its job (Store::Release).
struct TakenInPayload {
  int64_t job_id = 0;
  uint64_t log_seq = 0;  // the record it was read from
  std::string payload;
};
// Stores each payload in job_payloads and clears its job's place in the log, for the jobs that
// still refer to that record; their records go to `log_refs_dropped`.
Status TakePayloadsIn(sqlite3* db, const std::vector<TakenInPayload>& payloads,
                      std::vector<uint64_t>* log_refs_dropped);

// The jobs' intake records, for those whose payload was in the log, go to `log_refs_dropped`.
Result<CompletionOutcome> CompleteJobs(sqlite3* db, IdentityIds& identity_ids, const Completion& c,
                                       std::vector<uint64_t>* log_refs_dropped);

Result<std::vector<PageRecord>> QueryPagesForStorm(sqlite3* db, const std::string& storm_key,
                                                   int64_t since_ns);
// Open pages each identity is attached to and firing on, newest first, by identity (identities
// without one are absent).
Result<std::map<std::string, std::vector<PageRecord>>> QueryPagesForIdentities(
    sqlite3* db, const RecentIdentities& recent, const std::vector<std::string>& identities);
Result<std::vector<std::string>> QueryFiringIdentities(sqlite3* db, int64_t page_id);
// A queued job's JobToJson text, or where it is in the intake log (then `text` is empty);
// kNotFound when no job has that id, or it has neither (a damaged database).
struct StoredPayload {
  std::string text;
  IntakeLogRef log;
};
Result<StoredPayload> ReadJobPayload(sqlite3* db, int64_t job_id);
// Per intake record that queued or claimed jobs keep their payload in, how many do.
Result<std::map<uint64_t, uint64_t>> ReadIntakeReferences(sqlite3* db);
// Firing alerts on the page; with `among` non-empty, only those of them (each counted once;
// `among` must not repeat an identity).
Result<uint64_t> QueryFiringCount(sqlite3* db, const RecentIdentities& recent, int64_t page_id,
                                  const std::vector<std::string>& among);

// Deletes dedup marks seen before dedup_before_ns, decisions and resolved pages from before
// retain_before_ns, and the identities nothing refers to any more. Indexes the recent
// identities first (IndexIdentities; `*indexed_through` as there), so that none it deletes is
// left in RecentIdentities.
Status Prune(sqlite3* db, int64_t dedup_before_ns, int64_t retain_before_ns,
             int64_t* indexed_through);

// The intake log's applied-sequence marker (Store::IntakeApplied).
Result<uint64_t> ReadIntakeApplied(sqlite3* db);
Status WriteIntakeApplied(sqlite3* db, uint64_t seq);

}  // namespace tracepager::daemon::store_sql
