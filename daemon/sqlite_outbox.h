// SqliteOutbox: the delivery outbox (integrations/delivery/outbox.h) in its own SQLite database
// in the daemon's state directory, <state_dir>/outbox.db.
//
// Why a file of its own rather than a table in tracepager.db (daemon/store.h): the store's one
// writer thread batches the webhook path's commits; page sends and their retries would queue
// behind (and in front of) alert ingestion for no gain, because no transaction needs both. The
// store's directory lock (one process per state directory) covers this file too.
//
// Durability: WAL mode with synchronous=FULL, so a Commit that returned ok survives kill -9 and
// power loss. The file holds pager credentials (a resolve must reach the routing key its trigger
// used): it is created 0600 in a 0700 directory, and nothing here ever prints an entry.
// Entries are stored as EntryToJson documents next to the columns the queries need.
//
// Not thread-safe (Delivery serialises its calls).
#pragma once

#include <memory>
#include <string>

#include "integrations/delivery/outbox.h"
#include "routing/result.h"

struct sqlite3;

namespace tracepager::daemon {

class SqliteOutbox final : public integrations::delivery::Outbox {
 public:
  // Opens (creating when needed) `path`. kUnavailable when the file cannot be opened or
  // created, kInvalidInput when its schema is newer than this build.
  static Result<std::unique_ptr<SqliteOutbox>> Open(const std::string& path);
  ~SqliteOutbox() override;
  SqliteOutbox(const SqliteOutbox&) = delete;
  SqliteOutbox& operator=(const SqliteOutbox&) = delete;

  Result<std::vector<int64_t>> Commit(
      const std::vector<integrations::delivery::OutboxEntry>& updates,
      const std::vector<integrations::delivery::OutboxEntry>& adds) override;
  Result<std::vector<integrations::delivery::OutboxEntry>> LoadPending() override;
  Result<bool> HasSubmission(std::string_view submission) override;
  Result<std::vector<integrations::delivery::OutboxEntry>> LoadGroup(
      std::string_view group) override;
  Result<std::vector<integrations::delivery::OutboxEntry>> LoadUnresolvedTriggers(
      std::string_view alert_identity) override;
  Result<size_t> Prune(int64_t cutoff_ns, int64_t open_cutoff_ns) override;

  const std::string& path() const { return path_; }

 private:
  SqliteOutbox(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Exec(const char* sql);
  Error SqlError(std::string_view what) const;
  Result<std::vector<integrations::delivery::OutboxEntry>> Query(const char* sql,
                                                                 std::string_view arg);

  sqlite3* db_;
  std::string path_;
};

}  // namespace tracepager::daemon
