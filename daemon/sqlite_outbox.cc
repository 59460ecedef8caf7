#include "daemon/sqlite_outbox.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>

namespace tracepager::daemon {
namespace {

using integrations::Page;
using integrations::delivery::EntryFromJson;
using integrations::delivery::EntryState;
using integrations::delivery::EntryStateName;
using integrations::delivery::EntryToJson;
using integrations::delivery::OutboxEntry;

constexpr int kSchemaVersion = 1;

// Columns beside `doc` exist only for the queries; `doc` (EntryToJson) is the entry.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  submission TEXT NOT NULL,
  grp TEXT NOT NULL,
  alert_identity TEXT NOT NULL,
  action TEXT NOT NULL,
  state TEXT NOT NULL,
  resolved INTEGER NOT NULL,
  finished_ns INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(state) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_submission ON outbox(submission);
CREATE INDEX IF NOT EXISTS outbox_group ON outbox(grp);
CREATE INDEX IF NOT EXISTS outbox_identity ON outbox(alert_identity, action, resolved);
CREATE INDEX IF NOT EXISTS outbox_finished ON outbox(finished_ns) WHERE state <> 'pending';
)sql";

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void Text(int i, std::string_view s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  int Step() { return sqlite3_step(stmt_); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

const char* ActionName(const OutboxEntry& e) {
  return e.page.action == Page::Action::kTrigger ? "trigger" : "resolve";
}

}  // namespace

Result<std::unique_ptr<SqliteOutbox>> SqliteOutbox::Open(const std::string& path) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return Error::Unavailable(
          fmt::format("outbox {}: cannot create directory: {}", path, ec.message()));
    }
    ::chmod(dir.c_str(), 0700);
  }
  // The file holds credentials: create it owner-only before SQLite opens it (SQLite creates
  // its -wal and -shm files with the database's permissions).
  mode_t old_mask = ::umask(0077);
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  ::umask(old_mask);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Error::Unavailable(fmt::format("outbox {}: cannot open: {}", path, msg));
  }
  ::chmod(path.c_str(), 0600);
  std::unique_ptr<SqliteOutbox> outbox(new SqliteOutbox(db, path));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    Status s = outbox->Exec(pragma);
    if (!s.ok()) return s.error();
  }
  Stmt version(db, "PRAGMA user_version");
  if (!version.ok() || version.Step() != SQLITE_ROW) return outbox->SqlError("read user_version");
  int64_t have = sqlite3_column_int64(version.get(), 0);
  if (have > kSchemaVersion) {
    return Error::InvalidInput(
        fmt::format("outbox {}: schema version {} is newer than this build's ({})", path, have,
                    kSchemaVersion));
  }
  if (have < kSchemaVersion) {
    Status s = outbox->Exec("BEGIN IMMEDIATE");
    if (s.ok()) s = outbox->Exec(kSchema);
    if (s.ok()) s = outbox->Exec("PRAGMA user_version = 1");
    if (s.ok()) s = outbox->Exec("COMMIT");
    if (!s.ok()) {
      (void)outbox->Exec("ROLLBACK");
      return s.error();
    }
  }
  return outbox;
}

SqliteOutbox::~SqliteOutbox() { sqlite3_close(db_); }

Error SqliteOutbox::SqlError(std::string_view what) const {
  int code = sqlite3_errcode(db_);
  std::string msg = fmt::format("outbox {}: {}: {}", path_, what, sqlite3_errmsg(db_));
  // A full disk, an I/O error or a lock held too long may pass; a malformed statement won't.
  if (code == SQLITE_FULL || code == SQLITE_IOERR || code == SQLITE_BUSY || code == SQLITE_LOCKED ||
      code == SQLITE_CANTOPEN || code == SQLITE_READONLY || code == SQLITE_NOMEM) {
    return Error::Unavailable(std::move(msg));
  }
  return Error::Internal(std::move(msg));
}

Status SqliteOutbox::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqlError(sql);
  return OkStatus();
}

Result<std::vector<int64_t>> SqliteOutbox::Commit(const std::vector<OutboxEntry>& updates,
                                                  const std::vector<OutboxEntry>& adds) {
  Status begin = Exec("BEGIN IMMEDIATE");
  if (!begin.ok()) return begin.error();
  auto fail = [&](Error e) -> Result<std::vector<int64_t>> {
    (void)Exec("ROLLBACK");
    return e;
  };
  for (const OutboxEntry& u : updates) {
    // Only the mutable fields change: read the stored entry and write it back merged.
    Stmt read(db_, "SELECT doc FROM outbox WHERE id = ?");
    if (!read.ok()) return fail(SqlError("prepare read"));
    read.Int(1, u.id);
    int rc = read.Step();
    if (rc == SQLITE_DONE) {
      return fail(Error::Internal(fmt::format("outbox {}: no entry {} to update", path_, u.id)));
    }
    if (rc != SQLITE_ROW) return fail(SqlError("read entry"));
    const char* doc = reinterpret_cast<const char*>(sqlite3_column_text(read.get(), 0));
    Result<OutboxEntry> stored =
        EntryFromJson(std::string_view(doc, sqlite3_column_bytes(read.get(), 0)));
    if (!stored.ok()) return fail(stored.error());
    OutboxEntry e = std::move(stored).value();
    e.id = u.id;
    e.CopyProgressFrom(u);
    Stmt write(db_,
               "UPDATE outbox SET state = ?, resolved = ?, finished_ns = ?, doc = ? WHERE id = ?");
    if (!write.ok()) return fail(SqlError("prepare update"));
    write.Text(1, EntryStateName(e.state));
    write.Int(2, e.resolved ? 1 : 0);
    write.Int(3, e.finished_ns);
    write.Text(4, EntryToJson(e));
    write.Int(5, e.id);
    if (write.Step() != SQLITE_DONE) return fail(SqlError("update entry"));
  }
  std::vector<int64_t> ids;
  for (const OutboxEntry& a : adds) {
    Stmt insert(db_,
                "INSERT INTO outbox (submission, grp, alert_identity, action, state, resolved, "
                "finished_ns, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (!insert.ok()) return fail(SqlError("prepare insert"));
    insert.Text(1, a.submission);
    insert.Text(2, a.group);
    insert.Text(3, a.page.alert_identity);
    insert.Text(4, ActionName(a));
    insert.Text(5, EntryStateName(a.state));
    insert.Int(6, a.resolved ? 1 : 0);
    insert.Int(7, a.finished_ns);
    insert.Text(8, EntryToJson(a));
    if (insert.Step() != SQLITE_DONE) return fail(SqlError("insert entry"));
    ids.push_back(sqlite3_last_insert_rowid(db_));
  }
  Status commit = Exec("COMMIT");
  if (!commit.ok()) return fail(commit.error());
  return ids;
}

Result<std::vector<OutboxEntry>> SqliteOutbox::Query(const char* sql, std::string_view arg) {
  Stmt q(db_, sql);
  if (!q.ok()) return SqlError("prepare query");
  if (sqlite3_bind_parameter_count(q.get()) > 0) q.Text(1, arg);
  std::vector<OutboxEntry> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(q.get(), 0);
    const char* doc = reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 1));
    Result<OutboxEntry> e = EntryFromJson(std::string_view(doc, sqlite3_column_bytes(q.get(), 1)));
    if (!e.ok()) {
      return Error::Internal(fmt::format("outbox {}: entry {}: {}", path_, id, e.error().message));
    }
    e->id = id;
    out.push_back(std::move(e).value());
  }
  if (rc != SQLITE_DONE) return SqlError("query");
  return out;
}

Result<std::vector<OutboxEntry>> SqliteOutbox::LoadPending() {
  return Query("SELECT id, doc FROM outbox WHERE state = 'pending' ORDER BY id", "");
}

Result<bool> SqliteOutbox::HasSubmission(std::string_view submission) {
  Stmt q(db_, "SELECT 1 FROM outbox WHERE submission = ? LIMIT 1");
  if (!q.ok()) return SqlError("prepare query");
  q.Text(1, submission);
  int rc = q.Step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqlError("query submission");
}

Result<std::vector<OutboxEntry>> SqliteOutbox::LoadGroup(std::string_view group) {
  return Query("SELECT id, doc FROM outbox WHERE grp = ? ORDER BY id", group);
}

Result<std::vector<OutboxEntry>> SqliteOutbox::LoadUnresolvedTriggers(
    std::string_view alert_identity) {
  return Query(
      "SELECT id, doc FROM outbox WHERE alert_identity = ? AND action = 'trigger' AND "
      "resolved = 0 ORDER BY id",
      alert_identity);
}

Result<size_t> SqliteOutbox::Prune(int64_t cutoff_ns, int64_t open_cutoff_ns) {
  Stmt del(db_,
           "DELETE FROM outbox WHERE state <> 'pending' AND ("
           "(NOT (state = 'sent' AND action = 'trigger' AND resolved = 0) AND finished_ns < ?) "
           "OR (state = 'sent' AND action = 'trigger' AND resolved = 0 AND finished_ns < ?))");
  if (!del.ok()) return SqlError("prepare prune");
  del.Int(1, cutoff_ns);
  del.Int(2, open_cutoff_ns);
  if (del.Step() != SQLITE_DONE) return SqlError("prune");
  return static_cast<size_t>(sqlite3_changes(db_));
}

}  // namespace tracepager::daemon
