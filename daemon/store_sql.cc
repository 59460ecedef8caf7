// The store's schema and SQL. See store_sql.h.
//
// Jobs keep their full RoutingJob as JSON (`job_payloads`, beside the row) and copy out only the
// columns queries need.
// Page memory is two tables: `pages` (one row per page sent to a team) and `page_alerts` (which
// alert identities a page stands for, and whether each has resolved). A storm is many identities
// on one page; a repeat is an identity already attached to an open page. `dedup` and
// `page_alerts` refer to an identity by its number in `identities` (see migration 2 -> 3), which
// is kept while any row refers to it and dropped by Prune afterwards. An identity's number is
// found from its text in `identity_index`, or, for the identities numbered since the index was
// last brought up to date, in memory (RecentIdentities, migration 4 -> 5).
#include "daemon/store_sql.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "routing/json_fields.h"

namespace tracepager::daemon::store_sql {
namespace {

// Migration N brings the schema from version N to N + 1. Append new ones; never edit old ones:
// databases in the field have already applied them.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the job queue, HA/retry dedup, decisions, page memory.
    R"sql(
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  identity TEXT NOT NULL,
  storm_key TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  payload TEXT NOT NULL,
  enqueued_ns INTEGER NOT NULL,
  not_before_ns INTEGER NOT NULL DEFAULT 0,
  state INTEGER NOT NULL DEFAULT 0,      -- 0 queued, 1 claimed, 2 dead (does not parse)
  claims INTEGER NOT NULL DEFAULT 0,
  claimed_ns INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_state ON jobs(state, id);
CREATE INDEX jobs_storm ON jobs(storm_key, state, id);
CREATE TABLE dedup (
  key TEXT PRIMARY KEY,
  seen_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX dedup_seen ON dedup(seen_ns);
CREATE TABLE decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_ns INTEGER NOT NULL,
  storm_key TEXT NOT NULL,
  kind TEXT NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX decisions_created ON decisions(created_ns);
CREATE TABLE pages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  decision_id INTEGER NOT NULL,
  storm_key TEXT NOT NULL,
  team TEXT NOT NULL,
  pager TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_ns INTEGER NOT NULL,
  resolved_ns INTEGER NOT NULL DEFAULT 0  -- 0 while open
);
CREATE INDEX pages_storm ON pages(storm_key, resolved_ns, created_ns);
CREATE TABLE page_alerts (
  page_id INTEGER NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
  identity TEXT NOT NULL,
  resolved_ns INTEGER NOT NULL DEFAULT 0,  -- 0 while the alert fires
  PRIMARY KEY (page_id, identity)
) WITHOUT ROWID;
CREATE INDEX page_alerts_identity ON page_alerts(identity, resolved_ns);
)sql",
    // 1 -> 2: the last intake log record moved into the queue (daemon/intake.h), written in the
    // transaction that moves it, so that a record is applied once across crashes.
    R"sql(
CREATE TABLE intake_applied (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL
);
INSERT INTO intake_applied(id, seq) VALUES(1, 0);
)sql",
    // 2 -> 3: alert identities get a small integer id, given in the order they are first seen,
    // and the dedup and page_alerts keys start with it instead of the identity's text. Identities
    // are hashes (Alertmanager's fingerprints), so keyed by their text every new alert wrote a
    // random leaf of three large B-trees; keyed by a new, largest id it appends (bench/README.md,
    // "Identities by number"). The identity's text is looked up once, in `identities`.
    // tracepager_dedup_identity(key) is registered by Migrate: the identity of a v2 dedup key.
    R"sql(
CREATE TABLE identities (
  id INTEGER PRIMARY KEY,
  identity TEXT NOT NULL UNIQUE
);
INSERT OR IGNORE INTO identities(identity) SELECT identity FROM page_alerts;
INSERT OR IGNORE INTO identities(identity) SELECT tracepager_dedup_identity(key) FROM dedup;
CREATE TABLE page_alerts_v3 (
  page_id INTEGER NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
  identity_id INTEGER NOT NULL REFERENCES identities(id),
  resolved_ns INTEGER NOT NULL DEFAULT 0,  -- 0 while the alert fires
  PRIMARY KEY (page_id, identity_id)
) WITHOUT ROWID;
INSERT INTO page_alerts_v3(page_id, identity_id, resolved_ns)
  SELECT a.page_id, i.id, a.resolved_ns FROM page_alerts a JOIN identities i ON i.identity=a.identity;
DROP TABLE page_alerts;
ALTER TABLE page_alerts_v3 RENAME TO page_alerts;
CREATE INDEX page_alerts_identity ON page_alerts(identity_id, resolved_ns);
CREATE TABLE dedup_v3 (
  identity_id INTEGER NOT NULL REFERENCES identities(id),
  key TEXT NOT NULL,
  seen_ns INTEGER NOT NULL,
  PRIMARY KEY (identity_id, key)
) WITHOUT ROWID;
INSERT INTO dedup_v3(identity_id, key, seen_ns)
  SELECT i.id, d.key, d.seen_ns FROM dedup d
  JOIN identities i ON i.identity=tracepager_dedup_identity(d.key);
DROP TABLE dedup;
ALTER TABLE dedup_v3 RENAME TO dedup;
CREATE INDEX dedup_seen ON dedup(seen_ns);
)sql",
    // 3 -> 4: a job's payload in a table of its own. A claim rewrites the job's row (its state)
    // and a row was mostly its payload, about 1.2 KB: a claim of 1000 jobs rewrote some 330
    // pages instead of about 30 (bench/README.md, "Identities by number").
    R"sql(
CREATE TABLE job_payloads (
  job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
  payload TEXT NOT NULL
);
INSERT INTO job_payloads(job_id, payload) SELECT id, payload FROM jobs;
ALTER TABLE jobs DROP COLUMN payload;
)sql",
    // 4 -> 5: identities are looked up by their text in `identity_index`, which is brought up to
    // date in bulk (store_sql.h, RecentIdentities): `identities` loses its UNIQUE index, which
    // every new identity wrote on a random page. `identity_index_through` says how far the index
    // goes. (Migrate runs this with foreign keys off: dedup and page_alerts refer to the table
    // that is rebuilt.)
    R"sql(
CREATE TABLE identities_v5 (
  id INTEGER PRIMARY KEY,
  identity TEXT NOT NULL
);
INSERT INTO identities_v5(id, identity) SELECT id, identity FROM identities;
CREATE TABLE identity_index (
  identity TEXT PRIMARY KEY,
  id INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO identity_index(identity, id) SELECT identity, id FROM identities ORDER BY identity;
DROP TABLE identities;
ALTER TABLE identities_v5 RENAME TO identities;
CREATE TABLE identity_index_through (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  through INTEGER NOT NULL
);
INSERT INTO identity_index_through(id, through) SELECT 1, COALESCE(MAX(id), 0) FROM identities;
)sql",
    // 5 -> 6: a job may leave its payload in the intake log (StoreOptions::
    // intake_payload_reader): then log_seq is its record's sequence number (0: the payload is in
    // job_payloads), log_offset where the record starts in its segment, log_index the job's
    // place in the record. Adding columns with a constant default rewrites no row.
    R"sql(
ALTER TABLE jobs ADD COLUMN log_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN log_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN log_index INTEGER NOT NULL DEFAULT 0;
)sql",
    // 6 -> 7: the queue's indexes hold only the jobs each lookup looks for: queued jobs in
    // order and by storm key, claimed jobs by storm key. Most jobs are claimed as they are
    // inserted (Store::ApplyIntakeAsync) and deleted moments later; with an index entry in
    // (state, id) and one in (storm_key, state, id) each, they cost two entries inserted and
    // deleted, one now (bench/README.md, "Payloads left in the log"). Dead jobs are in none.
    R"sql(
DROP INDEX jobs_state;
DROP INDEX jobs_storm;
CREATE INDEX jobs_queued ON jobs(id) WHERE state=0;
CREATE INDEX jobs_queued_storm ON jobs(storm_key, id) WHERE state=0;
CREATE INDEX jobs_claimed_storm ON jobs(storm_key) WHERE state=1;
)sql",
};

// tracepager_dedup_identity(key): the alert identity a dedup key of schema version 2 starts
// with. Keys are identity|kind|starts|ends (alert_derive.cc) and an identity may itself hold a
// '|' (a generic alert's fingerprint), so the identity is everything before the third '|' from
// the end; a key of another shape is its own identity.
void DedupIdentityFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const unsigned char* text = sqlite3_value_text(argv[0]);
  if (text == nullptr) {
    sqlite3_result_null(ctx);
    return;
  }
  std::string_view key(reinterpret_cast<const char*>(text),
                       static_cast<size_t>(sqlite3_value_bytes(argv[0])));
  size_t end = key.size();
  for (int i = 0; i < 3 && end != std::string_view::npos; ++i) {
    end = end == 0 ? std::string_view::npos : key.rfind('|', end - 1);
  }
  std::string_view identity = end == std::string_view::npos ? key : key.substr(0, end);
  sqlite3_result_text(ctx, identity.data(), static_cast<int>(identity.size()), SQLITE_TRANSIENT);
}

Status Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqlError(db, rc, sql.substr(0, 60));
  return OkStatus();
}

Status Expect(Stmt& s, int want, const char* what) {
  int rc = s.Step();
  if (rc != want) return s.error(what);
  return OkStatus();
}

// Runs `sql` (a statement whose ?1 is a job id) once for each of `ids`; `what` names the step
// in errors.
Status UpdateEachJob(sqlite3* db, const char* sql, const std::vector<int64_t>& ids,
                     const std::string& what) {
  Stmt s(db, sql);
  if (!s.ok()) return s.error("prepare " + what);
  for (int64_t id : ids) {
    s.Reset();
    s.Bind(1, id);
    if (Status st = Expect(s, SQLITE_DONE, what.c_str()); !st.ok()) return st;
  }
  return OkStatus();
}

// The queue's lookups. Each names the state it looks for with `state=` and a constant: SQLite
// uses a partial index (migration 6 -> 7) only for a query that implies its WHERE clause.
// Whether a storm key has a queued or claimed job:
constexpr const char* kStormBusySql =
    "SELECT EXISTS(SELECT 1 FROM jobs WHERE storm_key=?1 AND state=0) OR "
    "EXISTS(SELECT 1 FROM jobs WHERE storm_key=?1 AND state=1)";
// The storm key of the oldest ready job whose storm key nobody holds. Claimed storm keys are few
// (at most one per worker), so the NOT IN list stays tiny.
constexpr const char* kClaimableSql =
    "SELECT storm_key FROM jobs WHERE state=0 AND not_before_ns<=?1 AND storm_key NOT IN "
    "(SELECT storm_key FROM jobs WHERE state=1) ORDER BY id LIMIT 1";
// The oldest ready jobs of a storm key, up to a number.
constexpr const char* kClaimGroupSql =
    "SELECT j.id, p.payload, j.claims, j.enqueued_ns, j.log_seq, j.log_offset, j.log_index"
    " FROM jobs j LEFT JOIN job_payloads p ON p.job_id=j.id"
    " WHERE j.storm_key=?1 AND j.state=0 AND j.not_before_ns<=?2 ORDER BY j.id LIMIT ?3";
constexpr const char* kAnyQueuedSql = "SELECT 1 FROM jobs WHERE state=0 LIMIT 1";

// Appends the intake record job `id`'s payload is in to `log_refs` when it is in one; `lookup`
// is kLogSeqOfClaimedSql. (Not RETURNING on the statement that changes the job: SQLite gathers
// returned rows in a temporary table, opened and closed at every execution, which cost more
// than the delete it was on.)
constexpr const char* kLogSeqOfClaimedSql = "SELECT log_seq FROM jobs WHERE id=?1 AND state=1";
Status CollectLogSeq(Stmt& lookup, int64_t id, std::vector<uint64_t>* log_refs) {
  lookup.Reset();
  lookup.Bind(1, id);
  int rc = lookup.Step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return lookup.error("read job's intake record");
  if (rc == SQLITE_ROW && lookup.Int(0) > 0) {
    log_refs->push_back(static_cast<uint64_t>(lookup.Int(0)));
  }
  lookup.Reset();  // no read left open on the table the caller changes next
  return OkStatus();
}

// The log_seq, log_offset, log_index columns of a result row, from column `first`.
IntakeLogRef LogRefAt(const Stmt& s, int first) {
  return IntakeLogRef{static_cast<uint64_t>(s.Int(first)), static_cast<uint64_t>(s.Int(first + 1)),
                      static_cast<uint32_t>(s.Int(first + 2))};
}

const char* kPageColumns =
    "p.id, p.decision_id, p.storm_key, p.team, p.pager, p.dedup_key, p.payload, p.created_ns";

// An open page from the kPageColumns of a result row, starting at column `first`.
PageRecord ReadPage(const Stmt& s, int first) {
  PageRecord p;
  p.id = s.Int(first);
  p.decision_id = s.Int(first + 1);
  p.storm_key = s.Text(first + 2);
  p.team = s.Text(first + 3);
  p.pager = s.Text(first + 4);
  p.dedup_key = s.Text(first + 5);
  p.payload_json = s.Text(first + 6);
  p.created_ns = s.Int(first + 7);
  p.open = true;
  return p;
}

Result<std::vector<PageRecord>> ReadPages(Stmt& s) {
  std::vector<PageRecord> pages;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) pages.push_back(ReadPage(s, 0));
  if (rc != SQLITE_DONE) return s.error("read pages");
  return pages;
}

}  // namespace

int SchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

Error SqlError(sqlite3* db, int rc, const std::string& what) {
  std::string msg = "store: " + what + ": " + sqlite3_errstr(rc);
  if (db != nullptr) {
    const char* detail = sqlite3_errmsg(db);
    if (detail != nullptr && std::string_view(detail) != sqlite3_errstr(rc)) {
      msg += std::string(" (") + detail + ")";
    }
  }
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
    case SQLITE_PERM:
      // Not the caller's fault and possibly transient: the sender should retry (HTTP 503).
      return Error::Unavailable(std::move(msg));
    default:
      return Error::Internal(std::move(msg));
  }
}

namespace {

// Idle prepared statements by connection and SQL text (see Stmt). Keyed by the address of the
// text: the SQL is string literals (or static strings), so a lookup is a hash of two pointers,
// not a copy and comparison of the text, which on the writer thread ran for every statement of
// every operation. A hit is still checked against the statement's own copy of its text, so a
// caller passing a buffer whose address once held other SQL gets a correct statement anyway.
struct StatementKey {
  sqlite3* db;
  const char* sql;
  bool operator==(const StatementKey& o) const { return db == o.db && sql == o.sql; }
};
struct StatementKeyHash {
  size_t operator()(const StatementKey& k) const {
    return std::hash<const void*>()(k.db) * 31 + std::hash<const void*>()(k.sql);
  }
};
struct StatementCache {
  std::mutex mu;
  std::unordered_map<StatementKey, sqlite3_stmt*, StatementKeyHash> idle;
};

StatementCache& Statements() {
  static StatementCache* cache = new StatementCache;  // never destroyed: used until exit
  return *cache;
}

}  // namespace

Stmt::Stmt(sqlite3* db, const char* sql) : db_(db), sql_(sql) {
  {
    StatementCache& cache = Statements();
    std::lock_guard<std::mutex> lk(cache.mu);
    auto it = cache.idle.find({db, sql});
    if (it != cache.idle.end()) {
      sqlite3_stmt* idle = it->second;
      cache.idle.erase(it);
      if (std::strcmp(sqlite3_sql(idle), sql) == 0) {
        stmt_ = idle;
        rc_ = SQLITE_OK;
        return;
      }
      sqlite3_finalize(idle);  // the address now holds other SQL
    }
  }
  rc_ = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
}

Stmt::~Stmt() {
  if (stmt_ == nullptr) return;
  // Reset errors repeat the last step's error, already reported through rc_.
  (void)sqlite3_reset(stmt_);
  (void)sqlite3_clear_bindings(stmt_);
  StatementCache& cache = Statements();
  std::lock_guard<std::mutex> lk(cache.mu);
  if (!cache.idle.emplace(StatementKey{db_, sql_}, stmt_).second) {
    sqlite3_finalize(stmt_);  // another Stmt of the same text came back first
  }
}

void ForgetStatements(sqlite3* db) {
  StatementCache& cache = Statements();
  std::lock_guard<std::mutex> lk(cache.mu);
  for (auto it = cache.idle.begin(); it != cache.idle.end();) {
    if (it->first.db == db) {
      sqlite3_finalize(it->second);
      it = cache.idle.erase(it);
    } else {
      ++it;
    }
  }
}

Stmt& Stmt::Bind(int index, int64_t value) {
  if (ok()) rc_ = sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& Stmt::Bind(int index, const std::string& value) {
  if (ok()) {
    rc_ = sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                            SQLITE_TRANSIENT);
  }
  return *this;
}

int Stmt::Step() {
  if (!ok()) return rc_;
  int rc = sqlite3_step(stmt_);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) rc_ = rc;
  return rc;
}

void Stmt::Reset() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW && rc_ != SQLITE_DONE) return;  // keep the error
  rc_ = SQLITE_OK;
}

int64_t Stmt::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Stmt::Text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
}

namespace {

// Migrations version .. target - 1, each in its transaction, each checked for rows that refer
// to missing ones (Migrate turns foreign key enforcement off around them).
Status ApplyMigrations(sqlite3* db, int version, int target) {
  for (int v = version; v < target; ++v) {
    if (Status st = Exec(db, "BEGIN IMMEDIATE"); !st.ok()) return st;
    Status st = Exec(db, kMigrations[v]);
    if (st.ok()) {
      Stmt check(db, "PRAGMA foreign_key_check");
      int rc = check.Step();
      if (rc == SQLITE_ROW) {
        st = Error::Internal("a row of " + check.Text(0) + " refers to a missing " + check.Text(2) +
                             " row");
      } else if (rc != SQLITE_DONE) {
        st = check.error("PRAGMA foreign_key_check");
      }
    }
    if (st.ok()) st = Exec(db, "PRAGMA user_version=" + std::to_string(v + 1));
    if (st.ok()) st = Exec(db, "COMMIT");
    if (!st.ok()) {
      (void)Exec(db, "ROLLBACK");
      return Error{st.error().code, "store: migration to schema version " + std::to_string(v + 1) +
                                        " failed: " + st.error().message};
    }
  }
  return OkStatus();
}

}  // namespace

Status Migrate(sqlite3* db, int target) {
  int version;
  {
    Stmt s(db, "PRAGMA user_version");
    if (!s.ok() || s.Step() != SQLITE_ROW) return s.error("PRAGMA user_version");
    version = static_cast<int>(s.Int(0));
  }
  if (version > SchemaVersion()) {
    return Error::InvalidInput("store: the database has schema version " + std::to_string(version) +
                               ", newer than this tracepager (" + std::to_string(SchemaVersion()) +
                               "); use a newer build");
  }
  target = std::min(target, SchemaVersion());
  if (version >= target) return OkStatus();
  int rc = sqlite3_create_function(db, "tracepager_dedup_identity", 1,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                   DedupIdentityFunction, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(db, rc, "register migration function");
  // Foreign keys are off while migrating (the setting cannot change inside a transaction): a
  // migration that rebuilds a table others refer to (4 -> 5) drops the old one before it
  // renames the new one in its place. Each migration's result is checked instead.
  bool foreign_keys = false;
  {
    Stmt fk(db, "PRAGMA foreign_keys");
    if (!fk.ok() || fk.Step() != SQLITE_ROW) return fk.error("PRAGMA foreign_keys");
    foreign_keys = fk.Int(0) != 0;
  }
  if (foreign_keys) {
    if (Status st = Exec(db, "PRAGMA foreign_keys=OFF"); !st.ok()) return st;
  }
  Status migrated = ApplyMigrations(db, version, target);
  // Back on whether the migrations succeeded or not: the connection may be used again.
  if (foreign_keys) {
    if (Status st = Exec(db, "PRAGMA foreign_keys=ON"); !st.ok() && migrated.ok()) return st;
  }
  return migrated;
}

namespace {

constexpr int kFilterProbes = 4;

// The filter's bit positions for an identity: double hashing from one 64-bit hash.
template <typename F>
void ForEachFilterBit(const std::string& identity, size_t bits, F&& f) {
  uint64_t h1 = std::hash<std::string>()(identity);
  uint64_t h2 = ((h1 >> 32) | (h1 << 32)) * 0x9E3779B97F4A7C15ULL | 1;
  for (int i = 0; i < kFilterProbes; ++i) f((h1 + static_cast<uint64_t>(i) * h2) & (bits - 1));
}

}  // namespace

void RecentIdentities::FilterAddLocked(const std::string& identity) {
  if (filter_.empty()) return;
  ForEachFilterBit(identity, filter_.size() * 64,
                   [&](uint64_t bit) { filter_[bit / 64] |= uint64_t{1} << (bit % 64); });
}

bool RecentIdentities::FilterHasLocked(const std::string& identity) const {
  if (filter_.empty()) return true;
  bool all = true;
  ForEachFilterBit(identity, filter_.size() * 64,
                   [&](uint64_t bit) { all = all && (filter_[bit / 64] >> (bit % 64) & 1) != 0; });
  return all;
}

Status RecentIdentities::Load(sqlite3* db) {
  Stmt t(db, "SELECT through FROM identity_index_through WHERE id=1");
  if (!t.ok() || t.Step() != SQLITE_ROW) return t.error("read identity index marker");
  Stmt count(db, "SELECT COUNT(*) FROM identity_index");
  if (!count.ok() || count.Step() != SQLITE_ROW) return count.error("count indexed identities");
  Stmt indexed(db, "SELECT identity FROM identity_index");
  if (!indexed.ok()) return indexed.error("prepare indexed identities");
  size_t words =
      std::bit_ceil(std::max<size_t>(size_t{1} << 17, static_cast<size_t>(count.Int(0)) * 16 / 64));
  Stmt s(db, "SELECT id, identity FROM identities WHERE id>?1");
  if (!s.ok()) return s.error("prepare recent identities");
  s.Bind(1, t.Int(0));
  std::unordered_map<std::string, int64_t> ids;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) ids.emplace(s.Text(1), s.Int(0));
  if (rc != SQLITE_DONE) return s.error("read recent identities");
  std::lock_guard<std::mutex> lk(mu_);
  through_ = t.Int(0);
  ids_ = std::move(ids);
  filter_.assign(words, 0);
  while ((rc = indexed.Step()) == SQLITE_ROW) FilterAddLocked(indexed.Text(0));
  if (rc != SQLITE_DONE) {
    filter_.clear();
    return indexed.error("read indexed identities");
  }
  return OkStatus();
}

int64_t RecentIdentities::Lookup(const std::string& identity) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (auto it = ids_.find(identity); it != ids_.end()) return it->second;
  return FilterHasLocked(identity) ? kInIndex : kNoId;
}

size_t RecentIdentities::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ids_.size();
}

void RecentIdentities::Add(const std::vector<std::pair<std::string, int64_t>>& added) {
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& [identity, id] : added) ids_.emplace(identity, id);
}

void RecentIdentities::Indexed(int64_t through) {
  std::lock_guard<std::mutex> lk(mu_);
  through_ = std::max(through_, through);
  for (auto it = ids_.begin(); it != ids_.end();) {
    if (it->second <= through_) {
      FilterAddLocked(it->first);
      it = ids_.erase(it);
    } else {
      ++it;
    }
  }
}

IdentityIds::IdentityIds(sqlite3* db, const RecentIdentities* recent,
                         const std::unordered_map<std::string, int64_t>* earlier)
    : db_(db), recent_(recent), earlier_(earlier) {}

Result<int64_t> IdentityIds::Find(const std::string& identity) {
  if (auto it = known_.find(identity); it != known_.end()) return it->second;
  int64_t id = 0;
  if (earlier_ != nullptr) {
    if (auto it = earlier_->find(identity); it != earlier_->end()) id = it->second;
  }
  if (id == 0) id = recent_ != nullptr ? recent_->Lookup(identity) : RecentIdentities::kInIndex;
  if (id == RecentIdentities::kInIndex) {
    id = 0;
    Stmt find(db_, "SELECT id FROM identity_index WHERE identity=?1");
    if (!find.ok()) return find.error("prepare identity lookup");
    find.Bind(1, identity);
    int rc = find.Step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return find.error("identity lookup");
    if (rc == SQLITE_ROW) id = find.Int(0);
  }
  known_.emplace(identity, id);
  return id;
}

Result<int64_t> IdentityIds::Get(const std::string& identity) {
  Result<int64_t> id = Find(identity);
  if (!id.ok() || *id != 0) return id;
  Stmt add(db_, "INSERT INTO identities(identity) VALUES(?1)");
  if (!add.ok()) return add.error("prepare identity insert");
  add.Bind(1, identity);
  if (add.Step() != SQLITE_DONE) return add.error("insert identity");
  int64_t added = sqlite3_last_insert_rowid(db_);
  known_[identity] = added;
  added_.emplace_back(identity, added);
  return added;
}

Status IndexIdentities(sqlite3* db, int64_t* indexed_through) {
  // Read here, not taken from RecentIdentities: an earlier operation of this transaction may
  // have moved it already.
  Stmt marker(db, "SELECT through FROM identity_index_through WHERE id=1");
  if (!marker.ok() || marker.Step() != SQLITE_ROW) {
    return marker.error("read identity index marker");
  }
  int64_t through = marker.Int(0);
  Stmt last(db, "SELECT COALESCE(MAX(id), 0) FROM identities");
  if (!last.ok() || last.Step() != SQLITE_ROW) return last.error("read last identity");
  int64_t upto = std::max(through, last.Int(0));
  Stmt recent(db, "SELECT identity, id FROM identities WHERE id>?1");
  if (!recent.ok()) return recent.error("prepare recent identities");
  recent.Bind(1, through);
  std::vector<std::pair<std::string, int64_t>> entries;
  int rc;
  while ((rc = recent.Step()) == SQLITE_ROW) entries.emplace_back(recent.Text(0), recent.Int(1));
  if (rc != SQLITE_DONE) return recent.error("read recent identities");
  // In the index's order (BINARY: bytewise, as std::string compares), so that the new entries
  // fill its pages one after the other; one row per statement, because a statement that writes
  // many rows keeps a journal of every page it changes, in memory (temp_store), until it ends:
  // some 20 MB for one such INSERT ... SELECT into the index of a million identities.
  std::sort(entries.begin(), entries.end());
  Stmt index(db, "INSERT INTO identity_index(identity, id) VALUES(?1, ?2)");
  if (!index.ok()) return index.error("prepare identity index");
  for (const auto& [identity, id] : entries) {
    index.Reset();
    index.Bind(1, identity).Bind(2, id);
    if (Status st = Expect(index, SQLITE_DONE, "index identity"); !st.ok()) return st;
  }
  Stmt mark(db, "UPDATE identity_index_through SET through=?1 WHERE id=1");
  if (!mark.ok()) return mark.error("prepare identity index marker");
  mark.Bind(1, upto);
  if (Status st = Expect(mark, SQLITE_DONE, "write identity index marker"); !st.ok()) return st;
  *indexed_through = upto;
  return OkStatus();
}

Status InsertJobs(sqlite3* db, IdentityIds& identity_ids, const std::vector<JobRow>& jobs,
                  int64_t now_ns, int64_t dedup_window_ns, int64_t queued_now, uint64_t max_queued,
                  int64_t page_limit, EnqueueOutcome* out, Handoff* handoff) {
  if (page_limit > 0) {
    Stmt used(db,
              "SELECT (SELECT page_count FROM pragma_page_count()) - "
              "(SELECT freelist_count FROM pragma_freelist_count())");
    if (!used.ok() || used.Step() != SQLITE_ROW) return used.error("database size");
    if (used.Int(0) >= page_limit) {
      return Error::Unavailable("store: database is full (at its max_size; " +
                                std::to_string(used.Int(0)) + " pages in use)");
    }
  }
  Stmt seen(db, "SELECT seen_ns FROM dedup WHERE identity_id=?1 AND key=?2");
  Stmt mark(db,
            "INSERT INTO dedup(identity_id, key, seen_ns) VALUES(?1, ?2, ?3) "
            "ON CONFLICT(identity_id, key) DO UPDATE SET seen_ns=excluded.seen_ns");
  Stmt insert(db,
              "INSERT INTO jobs(kind, identity, storm_key, dedup_key, enqueued_ns) "
              "VALUES(?1, ?2, ?3, ?4, ?5)");
  Stmt insert_claimed(db,
                      "INSERT INTO jobs(kind, identity, storm_key, dedup_key, enqueued_ns, "
                      "state, claims, claimed_ns) VALUES(?1, ?2, ?3, ?4, ?5, 1, 1, ?6)");
  Stmt insert_logged(db,
                     "INSERT INTO jobs(kind, identity, storm_key, dedup_key, enqueued_ns, "
                     "state, claims, claimed_ns, log_seq, log_offset, log_index) "
                     "VALUES(?1, ?2, ?3, ?4, ?5, 1, 1, ?6, ?7, ?8, ?9)");
  Stmt insert_payload(db, "INSERT INTO job_payloads(job_id, payload) VALUES(?1, ?2)");
  if (!insert_logged.ok()) return insert_logged.error("prepare logged job insert");
  if (!insert_payload.ok()) return insert_payload.error("prepare job payload insert");
  Stmt storm_busy(db, kStormBusySql);
  if (!seen.ok()) return seen.error("prepare dedup lookup");
  if (!insert_claimed.ok()) return insert_claimed.error("prepare claimed job insert");
  if (!storm_busy.ok()) return storm_busy.error("prepare storm lookup");
  if (!mark.ok()) return mark.error("prepare dedup insert");
  if (!insert.ok()) return insert.error("prepare job insert");
  // Decide duplicates first, so that a full queue is judged on what would really be added.
  std::vector<const JobRow*> fresh;
  for (const JobRow& job : jobs) {
    bool duplicate = false;
    if (dedup_window_ns > 0 && !job.dedup_key.empty()) {
      // An identity without an id has no dedup entry either.
      Result<int64_t> identity_id = identity_ids.Find(job.identity);
      if (!identity_id.ok()) return identity_id.error();
      if (*identity_id != 0) {
        seen.Reset();
        seen.Bind(1, *identity_id).Bind(2, job.dedup_key);
        int rc = seen.Step();
        if (rc == SQLITE_ROW) {
          duplicate = now_ns - seen.Int(0) < dedup_window_ns;
        } else if (rc != SQLITE_DONE) {
          return seen.error("dedup lookup");
        }
      }
      // Two alerts of one webhook with the same key are duplicates of each other too.
      for (const JobRow* f : fresh) duplicate = duplicate || f->dedup_key == job.dedup_key;
    }
    if (duplicate) {
      ++out->duplicates;
    } else {
      fresh.push_back(&job);
    }
  }
  if (static_cast<uint64_t>(queued_now) + fresh.size() > max_queued) {
    return Error::Unavailable("store: queue is full (" + std::to_string(queued_now) + " of " +
                              std::to_string(max_queued) + " jobs queued)");
  }
  for (const JobRow* row : fresh) {
    const JobRow& job = *row;
    // The claim this job joins, if any (Handoff). A storm key is looked up once per Handoff:
    // its own inserts keep it busy afterwards, which `keys` remembers.
    ClaimedRows* claim = nullptr;
    if (handoff != nullptr && handoff->max_group > 0) {
      auto [it, first] = handoff->keys.try_emplace(job.storm_key, Handoff::kQueue);
      if (first) {
        storm_busy.Reset();
        storm_busy.Bind(1, job.storm_key);
        if (storm_busy.Step() != SQLITE_ROW) return storm_busy.error("storm lookup");
        if (storm_busy.Int(0) == 0) {
          it->second = handoff->claims.size();
          handoff->claims.push_back(ClaimedRows{job.storm_key, {}});
        }
      }
      if (it->second != Handoff::kQueue) {
        claim = &handoff->claims[it->second];
        if (claim->rows.size() >= handoff->max_group) {
          it->second = Handoff::kQueue;  // full: the rest of this storm queues behind it
          claim = nullptr;
        }
      }
    }
    size_t index = static_cast<size_t>(row - jobs.data());
    // A claimed job of a record in the intake log leaves its payload there (Handoff).
    const bool logged = claim != nullptr && handoff->payload_in_log && handoff->batch != nullptr &&
                        handoff->batch->log_seq > 0;
    Stmt& add = logged ? insert_logged : claim != nullptr ? insert_claimed : insert;
    add.Reset();
    add.Bind(1, job.kind).Bind(2, job.identity).Bind(3, job.storm_key).Bind(4, job.dedup_key);
    add.Bind(5, now_ns);
    if (claim != nullptr) add.Bind(6, handoff->claimed_ns);
    if (logged) {
      add.Bind(7, static_cast<int64_t>(handoff->batch->log_seq))
          .Bind(8, static_cast<int64_t>(handoff->batch->log_offset))
          .Bind(9, static_cast<int64_t>(index));
    }
    if (Status st = Expect(add, SQLITE_DONE, "insert job"); !st.ok()) return st;
    int64_t id = sqlite3_last_insert_rowid(db);
    if (logged) {
      handoff->log_refs.push_back(handoff->batch->log_seq);
    } else {
      insert_payload.Reset();
      insert_payload.Bind(1, id).Bind(2, job.payload);
      if (Status st = Expect(insert_payload, SQLITE_DONE, "insert job payload"); !st.ok()) {
        return st;
      }
    }
    out->job_ids.push_back(id);
    if (claim != nullptr) {
      ClaimedRow taken{id, {}, nullptr, {}, 1, now_ns};
      if (handoff->batch != nullptr && handoff->batch->live.size() == jobs.size()) {
        taken.live =
            std::shared_ptr<const RoutingJob>(handoff->batch, &handoff->batch->live[index]);
      } else {
        taken.payload = job.payload;
      }
      claim->rows.push_back(std::move(taken));
    }
    if (dedup_window_ns > 0 && !job.dedup_key.empty()) {
      Result<int64_t> identity_id = identity_ids.Get(job.identity);
      if (!identity_id.ok()) return identity_id.error();
      mark.Reset();
      mark.Bind(1, *identity_id).Bind(2, job.dedup_key).Bind(3, now_ns);
      if (Status st = Expect(mark, SQLITE_DONE, "insert dedup"); !st.ok()) return st;
    }
  }
  return OkStatus();
}

std::vector<std::string> QueueLookupsForTests() {
  return {kLogSeqOfClaimedSql, kStormBusySql, kClaimableSql, kClaimGroupSql, kAnyQueuedSql};
}

Result<bool> AnyClaimable(sqlite3* db, int64_t now_ns) {
  Stmt first(db, kClaimableSql);
  if (!first.ok()) return first.error("prepare claimable lookup");
  first.Bind(1, now_ns);
  int rc = first.Step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return first.error("claimable lookup");
  return rc == SQLITE_ROW;
}

Result<std::optional<ClaimedRows>> ClaimJobs(sqlite3* db, int64_t now_ns, size_t max_group,
                                             const std::string* only_storm_key) {
  Stmt first(db, kClaimableSql);
  if (!first.ok()) return first.error("prepare claim");
  first.Bind(1, now_ns);
  int rc = first.Step();
  if (rc == SQLITE_DONE) return std::optional<ClaimedRows>();
  if (rc != SQLITE_ROW) return first.error("claim");
  ClaimedRows claim;
  claim.storm_key = first.Text(0);
  if (only_storm_key != nullptr && claim.storm_key != *only_storm_key) {
    return std::optional<ClaimedRows>();
  }

  Stmt group(db, kClaimGroupSql);
  Stmt take(db, "UPDATE jobs SET state=1, claims=claims+1, claimed_ns=?2 WHERE id=?1");
  if (!group.ok()) return group.error("prepare claim group");
  if (!take.ok()) return take.error("prepare claim update");
  group.Bind(1, claim.storm_key).Bind(2, now_ns).Bind(3, static_cast<int64_t>(max_group));
  while ((rc = group.Step()) == SQLITE_ROW) {
    ClaimedRow row;
    row.id = group.Int(0);
    row.payload = group.Text(1);
    row.claims = static_cast<uint32_t>(group.Int(2)) + 1;
    row.enqueued_ns = group.Int(3);
    row.log = LogRefAt(group, 4);
    claim.rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return group.error("claim group");
  for (const ClaimedRow& row : claim.rows) {
    take.Reset();
    take.Bind(1, row.id).Bind(2, now_ns);
    if (Status st = Expect(take, SQLITE_DONE, "claim job"); !st.ok()) return st.error();
  }
  if (claim.rows.empty()) return std::optional<ClaimedRows>();
  return std::optional<ClaimedRows>(std::move(claim));
}

Result<bool> AnyQueued(sqlite3* db) {
  Stmt any(db, kAnyQueuedSql);
  if (!any.ok()) return any.error("prepare queue lookup");
  int rc = any.Step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return any.error("queue lookup");
  return rc == SQLITE_ROW;
}

Status UnclaimJobs(sqlite3* db, const std::vector<int64_t>& ids) {
  return UpdateEachJob(
      db, "UPDATE jobs SET state=0, claims=claims-1, claimed_ns=0 WHERE id=?1 AND state=1", ids,
      "unclaim job");
}

Status BuryJobs(sqlite3* db, const std::vector<int64_t>& ids,
                std::vector<uint64_t>* log_refs_dropped) {
  Stmt lookup(db, kLogSeqOfClaimedSql);
  if (!lookup.ok()) return lookup.error("prepare job's intake record");
  for (int64_t id : ids) {
    if (Status st = CollectLogSeq(lookup, id, log_refs_dropped); !st.ok()) return st;
  }
  return UpdateEachJob(db, "UPDATE jobs SET state=2 WHERE id=?1 AND state=1", ids, "set aside job");
}

Status ReleaseJobs(sqlite3* db, const std::vector<int64_t>& ids, int64_t not_before_ns) {
  Stmt s(db, "UPDATE jobs SET state=0, not_before_ns=?2 WHERE id=?1 AND state=1");
  if (!s.ok()) return s.error("prepare release");
  for (int64_t id : ids) {
    s.Reset();
    s.Bind(1, id).Bind(2, not_before_ns);
    if (Status st = Expect(s, SQLITE_DONE, "release job"); !st.ok()) return st;
    if (sqlite3_changes(db) != 1) {
      return Error::Internal("store: release of job " + std::to_string(id) + ": not claimed");
    }
  }
  return OkStatus();
}

Status TakePayloadsIn(sqlite3* db, const std::vector<TakenInPayload>& payloads,
                      std::vector<uint64_t>* log_refs_dropped) {
  if (payloads.empty()) return OkStatus();
  Stmt clear(db, "UPDATE jobs SET log_seq=0, log_offset=0, log_index=0 WHERE id=?1 AND log_seq=?2");
  Stmt insert(db, "INSERT INTO job_payloads(job_id, payload) VALUES(?1, ?2)");
  if (!clear.ok()) return clear.error("prepare payload taken in");
  if (!insert.ok()) return insert.error("prepare job payload insert");
  for (const TakenInPayload& p : payloads) {
    clear.Reset();
    clear.Bind(1, p.job_id).Bind(2, static_cast<int64_t>(p.log_seq));
    if (Status st = Expect(clear, SQLITE_DONE, "payload taken in"); !st.ok()) return st;
    if (sqlite3_changes(db) != 1) continue;  // no longer that record's (not expected)
    insert.Reset();
    insert.Bind(1, p.job_id).Bind(2, p.payload);
    if (Status st = Expect(insert, SQLITE_DONE, "insert job payload"); !st.ok()) return st;
    log_refs_dropped->push_back(p.log_seq);
  }
  return OkStatus();
}

Result<CompletionOutcome> CompleteJobs(sqlite3* db, IdentityIds& identity_ids, const Completion& c,
                                       std::vector<uint64_t>* log_refs_dropped) {
  CompletionOutcome out;
  Stmt lookup(db, kLogSeqOfClaimedSql);
  Stmt del(db, "DELETE FROM jobs WHERE id=?1 AND state=1");
  if (!lookup.ok()) return lookup.error("prepare job's intake record");
  if (!del.ok()) return del.error("prepare complete");
  for (int64_t id : c.job_ids) {
    if (Status st = CollectLogSeq(lookup, id, log_refs_dropped); !st.ok()) return st.error();
    del.Reset();
    del.Bind(1, id);
    if (Status st = Expect(del, SQLITE_DONE, "complete job"); !st.ok()) return st.error();
    if (sqlite3_changes(db) != 1) {
      return Error::Internal("store: completion of job " + std::to_string(id) + ": not claimed");
    }
  }
  Stmt dec(db, "INSERT INTO decisions(created_ns, storm_key, kind, record) VALUES(?1,?2,?3,?4)");
  if (!dec.ok()) return dec.error("prepare decision");
  dec.Bind(1, c.now_ns).Bind(2, c.storm_key).Bind(3, c.decision_kind).Bind(4, c.decision_json);
  if (Status st = Expect(dec, SQLITE_DONE, "insert decision"); !st.ok()) return st.error();
  out.decision_id = sqlite3_last_insert_rowid(db);

  Stmt page(db,
            "INSERT INTO pages(decision_id, storm_key, team, pager, dedup_key, payload, created_ns)"
            " VALUES(?1,?2,?3,?4,?5,?6,?7)");
  // Attaching an identity that is already on the page (a repeat that fired again after
  // resolving) makes it firing again.
  Stmt attach(db,
              "INSERT INTO page_alerts(page_id, identity_id) VALUES(?1,?2) "
              "ON CONFLICT(page_id, identity_id) DO UPDATE SET resolved_ns=0");
  if (!page.ok()) return page.error("prepare page");
  if (!attach.ok()) return attach.error("prepare page alert");
  auto attach_one = [&](int64_t page_id, const std::string& identity) -> Status {
    Result<int64_t> identity_id = identity_ids.Get(identity);
    if (!identity_id.ok()) return identity_id.error();
    attach.Reset();
    attach.Bind(1, page_id).Bind(2, *identity_id);
    return Expect(attach, SQLITE_DONE, "attach alert to page");
  };
  for (const NewPage& p : c.new_pages) {
    page.Reset();
    page.Bind(1, out.decision_id)
        .Bind(2, c.storm_key)
        .Bind(3, p.team)
        .Bind(4, p.pager)
        .Bind(5, p.dedup_key)
        .Bind(6, p.payload_json)
        .Bind(7, c.now_ns);
    if (Status st = Expect(page, SQLITE_DONE, "insert page"); !st.ok()) return st.error();
    int64_t page_id = sqlite3_last_insert_rowid(db);
    out.page_ids.push_back(page_id);
    for (const std::string& identity : p.identities) {
      if (Status st = attach_one(page_id, identity); !st.ok()) return st.error();
    }
  }
  for (const auto& [page_id, identity] : c.attach) {
    if (Status st = attach_one(page_id, identity); !st.ok()) return st.error();
  }
  Stmt resolve_alert(
      db, "UPDATE page_alerts SET resolved_ns=?2 WHERE identity_id=?1 AND resolved_ns=0");
  Stmt resolve_page(db, "UPDATE pages SET resolved_ns=?2 WHERE id=?1 AND resolved_ns=0");
  if (!resolve_alert.ok()) return resolve_alert.error("prepare resolve alert");
  if (!resolve_page.ok()) return resolve_page.error("prepare resolve page");
  for (const std::string& identity : c.resolved_identities) {
    Result<int64_t> identity_id = identity_ids.Find(identity);
    if (!identity_id.ok()) return identity_id.error();
    if (*identity_id == 0) continue;  // never on a page
    resolve_alert.Reset();
    resolve_alert.Bind(1, *identity_id).Bind(2, c.now_ns);
    if (Status st = Expect(resolve_alert, SQLITE_DONE, "resolve alert"); !st.ok()) {
      return st.error();
    }
  }
  for (int64_t id : c.resolved_pages) {
    resolve_page.Reset();
    resolve_page.Bind(1, id).Bind(2, c.now_ns);
    if (Status st = Expect(resolve_page, SQLITE_DONE, "resolve page"); !st.ok()) {
      return st.error();
    }
  }
  return out;
}

Result<std::vector<PageRecord>> QueryPagesForStorm(sqlite3* db, const std::string& storm_key,
                                                   int64_t since_ns) {
  static const std::string sql =
      std::string("SELECT ") + kPageColumns +
      " FROM pages p WHERE p.storm_key=?1 AND p.resolved_ns=0 AND p.created_ns>=?2"
      " ORDER BY p.created_ns DESC, p.id DESC";
  Stmt s(db, sql.c_str());
  if (!s.ok()) return s.error("prepare storm lookup");
  s.Bind(1, storm_key).Bind(2, since_ns);
  // Without the identities: during a storm every claim asks this again while the page collects
  // up to hundreds of thousands of alerts, and reading them all each time made a long storm
  // quadratic in time and grew the daemon's memory with it (bench/load_bench.sh).
  return ReadPages(s);
}

Result<std::map<std::string, std::vector<PageRecord>>> QueryPagesForIdentities(
    sqlite3* db, const RecentIdentities& recent, const std::vector<std::string>& identities) {
  std::map<std::string, std::vector<PageRecord>> out;
  if (identities.empty()) return out;
  // One statement for any number of identities (a storm's claim holds up to max_group of
  // them): they go in as JSON arrays, read back by json_each; the ids of recent identities in
  // one (looked up before the statement runs: RecentIdentities), the other identities' text in
  // the other, for identity_index.
  static const std::string sql =
      std::string("SELECT i.identity, ") + kPageColumns +
      " FROM identities i JOIN page_alerts a ON a.identity_id=i.id JOIN pages p ON p.id=a.page_id"
      " WHERE i.id IN (SELECT value FROM json_each(?1) UNION ALL SELECT x.id FROM"
      " identity_index x WHERE x.identity IN (SELECT value FROM json_each(?2)))"
      " AND a.resolved_ns=0 AND p.resolved_ns=0"
      " ORDER BY p.created_ns DESC, p.id DESC";
  rapidjson::StringBuffer ids;
  rapidjson::StringBuffer texts;
  rapidjson::Writer<rapidjson::StringBuffer> wi(ids);
  rapidjson::Writer<rapidjson::StringBuffer> wt(texts);
  wi.StartArray();
  wt.StartArray();
  for (const std::string& identity : identities) {
    int64_t id = recent.Lookup(identity);
    if (id == RecentIdentities::kInIndex) {
      wt.String(identity.data(), static_cast<rapidjson::SizeType>(identity.size()));
    } else if (id != RecentIdentities::kNoId) {  // kNoId: no id, and so no page
      wi.Int64(id);
    }
  }
  wi.EndArray();
  wt.EndArray();
  Stmt s(db, sql.c_str());
  if (!s.ok()) return s.error("prepare identity lookup");
  s.Bind(1, std::string(ids.GetString(), ids.GetSize()));
  s.Bind(2, std::string(texts.GetString(), texts.GetSize()));
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out[s.Text(0)].push_back(ReadPage(s, 1));
  }
  if (rc != SQLITE_DONE) return s.error("identity lookup");
  return out;
}

Result<std::vector<std::string>> QueryFiringIdentities(sqlite3* db, int64_t page_id) {
  Stmt a(db,
         "SELECT i.identity FROM page_alerts a JOIN identities i ON i.id=a.identity_id"
         " WHERE a.page_id=?1 AND a.resolved_ns=0 ORDER BY i.identity");
  if (!a.ok()) return a.error("prepare page_alerts");
  a.Bind(1, page_id);
  std::vector<std::string> out;
  int rc;
  while ((rc = a.Step()) == SQLITE_ROW) out.push_back(a.Text(0));
  if (rc != SQLITE_DONE) return a.error("read page_alerts");
  return out;
}

Result<StoredPayload> ReadJobPayload(sqlite3* db, int64_t job_id) {
  Stmt p(db,
         "SELECT p.payload, j.log_seq, j.log_offset, j.log_index FROM jobs j"
         " LEFT JOIN job_payloads p ON p.job_id=j.id WHERE j.id=?1");
  if (!p.ok()) return p.error("prepare job payload");
  p.Bind(1, job_id);
  int rc = p.Step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return p.error("read job payload");
  if (rc == SQLITE_ROW) {
    StoredPayload out{p.Text(0), LogRefAt(p, 1)};
    if (out.log.seq == 0 && sqlite3_column_type(p.get(), 0) == SQLITE_NULL) {
      return Error::NotFound("store: job " + std::to_string(job_id) + " has no stored payload");
    }
    return out;
  }
  return Error::NotFound("store: job " + std::to_string(job_id) + " is not queued");
}

Result<std::map<uint64_t, uint64_t>> ReadIntakeReferences(sqlite3* db) {
  Stmt refs(db,
            "SELECT log_seq, COUNT(*) FROM jobs WHERE log_seq>0 AND state IN (0,1)"
            " GROUP BY log_seq");
  if (!refs.ok()) return refs.error("prepare intake references");
  std::map<uint64_t, uint64_t> out;
  int rc;
  while ((rc = refs.Step()) == SQLITE_ROW) {
    out[static_cast<uint64_t>(refs.Int(0))] = static_cast<uint64_t>(refs.Int(1));
  }
  if (rc != SQLITE_DONE) return refs.error("read intake references");
  return out;
}

Result<uint64_t> QueryFiringCount(sqlite3* db, const RecentIdentities& recent, int64_t page_id,
                                  const std::vector<std::string>& among) {
  if (among.empty()) {
    Stmt c(db, "SELECT COUNT(*) FROM page_alerts WHERE page_id=?1 AND resolved_ns=0");
    if (!c.ok()) return c.error("prepare page_alerts count");
    c.Bind(1, page_id);
    if (c.Step() != SQLITE_ROW) return c.error("count page_alerts");
    return static_cast<uint64_t>(c.Int(0));
  }
  // ?2: a recent identity's id (looked up before the statement runs: RecentIdentities), else 0
  // and ?3 is found in identity_index.
  Stmt one(db,
           "SELECT 1 FROM page_alerts a WHERE a.page_id=?1 AND a.resolved_ns=0 AND a.identity_id="
           "(CASE WHEN ?2<>0 THEN ?2 ELSE (SELECT x.id FROM identity_index x"
           " WHERE x.identity=?3) END)");
  if (!one.ok()) return one.error("prepare page_alerts lookup");
  uint64_t n = 0;
  for (const std::string& identity : among) {
    int64_t id = recent.Lookup(identity);
    if (id == RecentIdentities::kNoId) continue;  // no id: on no page
    one.Reset();
    one.Bind(1, page_id).Bind(2, id == RecentIdentities::kInIndex ? 0 : id).Bind(3, identity);
    int rc = one.Step();
    if (rc == SQLITE_ROW) {
      ++n;
    } else if (rc != SQLITE_DONE) {
      return one.error("page_alerts lookup");
    }
  }
  return n;
}

Status Prune(sqlite3* db, int64_t dedup_before_ns, int64_t retain_before_ns,
             int64_t* indexed_through) {
  if (Status st = IndexIdentities(db, indexed_through); !st.ok()) return st;
  // Identities whose rows are pruned are remembered first, and dropped afterwards if nothing
  // refers to them any more: the work is that of what is pruned, not of every identity known.
  if (Status st = Exec(db,
                       "CREATE TEMP TABLE IF NOT EXISTS prune_identities"
                       "(id INTEGER PRIMARY KEY)");
      !st.ok()) {
    return st;
  }
  Stmt a(
      db,
      "INSERT OR IGNORE INTO prune_identities(id) SELECT identity_id FROM dedup WHERE seen_ns<?1");
  Stmt b(db, "DELETE FROM dedup WHERE seen_ns<?1");
  Stmt c(db, "DELETE FROM decisions WHERE created_ns<?1");
  // CROSS JOIN keeps pages (few) the outer loop; the planner would scan all of page_alerts.
  Stmt d(db,
         "INSERT OR IGNORE INTO prune_identities(id) SELECT a.identity_id FROM pages p"
         " CROSS JOIN page_alerts a ON a.page_id=p.id WHERE p.resolved_ns<>0 AND p.resolved_ns<?1");
  Stmt e(db, "DELETE FROM pages WHERE resolved_ns<>0 AND resolved_ns<?1");  // and page_alerts
  for (auto [stmt, t, what] : {std::tuple{&a, dedup_before_ns, "collect dedup identities"},
                               std::tuple{&b, dedup_before_ns, "prune dedup"},
                               std::tuple{&c, retain_before_ns, "prune decisions"},
                               std::tuple{&d, retain_before_ns, "collect page identities"},
                               std::tuple{&e, retain_before_ns, "prune pages"}}) {
    if (!stmt->ok()) return stmt->error(what);
    stmt->Bind(1, t);
    if (Status st = Expect(*stmt, SQLITE_DONE, what); !st.ok()) return st;
  }
  Stmt used(db,
            "DELETE FROM prune_identities WHERE"
            " EXISTS (SELECT 1 FROM dedup WHERE identity_id=prune_identities.id)"
            " OR EXISTS (SELECT 1 FROM page_alerts WHERE identity_id=prune_identities.id)");
  Stmt unindex(db,
               "DELETE FROM identity_index WHERE identity IN (SELECT identity FROM identities"
               " WHERE id IN (SELECT id FROM prune_identities))");
  Stmt unused(db, "DELETE FROM identities WHERE id IN (SELECT id FROM prune_identities)");
  Stmt forget(db, "DELETE FROM prune_identities");
  for (auto [stmt, what] :
       {std::pair{&used, "keep identities in use"}, std::pair{&unindex, "unindex identities"},
        std::pair{&unused, "prune identities"}, std::pair{&forget, "forget pruned identities"}}) {
    if (!stmt->ok()) return stmt->error(what);
    if (Status st = Expect(*stmt, SQLITE_DONE, what); !st.ok()) return st;
  }
  return OkStatus();
}

Result<uint64_t> ReadIntakeApplied(sqlite3* db) {
  Stmt s(db, "SELECT seq FROM intake_applied WHERE id=1");
  if (!s.ok()) return s.error("prepare intake marker read");
  int rc = s.Step();
  if (rc == SQLITE_DONE) return uint64_t{0};
  if (rc != SQLITE_ROW) return s.error("read intake marker");
  return static_cast<uint64_t>(s.Int(0));
}

Status WriteIntakeApplied(sqlite3* db, uint64_t seq) {
  Stmt s(db, "UPDATE intake_applied SET seq=?1 WHERE id=1");
  if (!s.ok()) return s.error("prepare intake marker write");
  s.Bind(1, static_cast<int64_t>(seq));
  return Expect(s, SQLITE_DONE, "write intake marker");
}

}  // namespace tracepager::daemon::store_sql
