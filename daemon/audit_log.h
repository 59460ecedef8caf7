// The audit log on disk: an append-only JSON Lines file, one record per line
// (daemon/audit_record.h, docs/audit-log.md), with size-based rotation and retention.
//
// Files: `path` is the current file. Rotation renames it to `path.NNNNNN` (a sequence number,
// zero-padded to six digits, one higher than any existing one: higher is newer) and starts a new
// current file. Retention then deletes the oldest rotated files while there are more than
// `max_files` of them or all files together hold more than `max_total_bytes`. Rotated files are
// never written again. Retention counts the current file as max_file_bytes (it grows that far
// before the next rotation), so the files never hold more than max_total_bytes. `path.lock` holds
// an flock while a writer is open, so a second writer (another daemon on the same state directory)
// fails to open instead of interleaving.
//
// Durability (AuditLogOptions::sync):
//   kEveryRecord  Append returns once the record is written and fdatasync'ed. Concurrent
//                 appends share one write and one sync (group commit).
//   kBatched      Append returns once the record is written (it survives a crash of the
//                 process); fdatasync runs once `sync_every_records` records are unsynced, or
//                 `sync_interval` after the oldest unsynced record, whichever comes first (a
//                 power loss loses at most that much).
// A crash can leave the last line torn (no newline). The writer, when it opens such a file,
// ends the torn line with a newline before appending, so the next record stays intact; the
// reader reports the torn line and skips it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/audit_record.h"
#include "routing/result.h"

namespace tracepager::daemon {

struct AuditLogOptions {
  std::string path;  // the current file, e.g. <state_dir>/audit.jsonl; its directory must exist
  enum class Sync { kEveryRecord, kBatched };
  Sync sync = Sync::kEveryRecord;
  std::chrono::milliseconds sync_interval{1000};  // kBatched
  uint32_t sync_every_records = 256;              // kBatched
  uint64_t max_file_bytes = 64u << 20;  // rotate before a record would grow the file past this;
                                        // 0: never rotate
  uint32_t max_files = 16;              // rotated files kept; 0: no count limit
  uint64_t max_total_bytes = 0;         // current + rotated; 0: no byte limit. REQUIRES:
                                        // >= max_file_bytes > 0 when set
};

// The default log path under a state directory: <state_dir>/audit.jsonl.
std::string DefaultAuditLogPath(const std::string& state_dir);

// Appends records. Thread-safe: any number of threads may Append at once.
class AuditLogWriter {
 public:
  // Opens (creating if needed) the current file for appending, takes the lock, ends a torn last
  // line, and applies retention to the files already there. Fails with kInvalidInput for bad
  // options, kUnavailable when the directory or file cannot be opened or another writer holds
  // the lock (the message names the path).
  static Result<std::unique_ptr<AuditLogWriter>> Open(const AuditLogOptions& options);

  // Syncs and closes (see Close).
  ~AuditLogWriter();
  AuditLogWriter(const AuditLogWriter&) = delete;
  AuditLogWriter& operator=(const AuditLogWriter&) = delete;

  // Serializes and appends one record; returns when it is as durable as `sync` says. Fails with
  // kUnavailable when the write or sync failed (disk full, I/O error): the record is then not in
  // the log (a partial write is cut back) and the caller should keep its job and retry later.
  // After Close(), fails with kUnavailable.
  Status AppendDecision(const DecisionAudit& record);
  Status AppendDelivery(const DeliveryAudit& record);
  // Appends one line as is. REQUIRES: `json_object` is one JSON object without newlines.
  Status AppendLine(std::string json_object);

  // Syncs everything written so far (kBatched callers that want a barrier, e.g. at drain).
  Status Flush();
  // Waits for appends in progress, syncs, closes the file and releases the lock. Idempotent.
  Status Close();

  struct Counters {
    uint64_t records = 0;  // appended successfully since Open
    uint64_t bytes = 0;    // bytes of those records, newlines included
    uint64_t syncs = 0;    // fdatasync calls on the current file
    uint64_t rotations = 0;
    uint64_t deleted_files = 0;  // by retention
    uint64_t errors = 0;         // failed appends and syncs
  };
  Counters counters() const;

  const AuditLogOptions& options() const;

 private:
  class Impl;
  explicit AuditLogWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A problem met while reading: the file, the 1-based line (0 when not about a line) and what
// was wrong. ToString(): "FILE:LINE: MESSAGE".
struct AuditReadWarning {
  std::string file;
  uint64_t line = 0;
  std::string message;
  std::string ToString() const;
};

// One record as read, with where it came from.
struct AuditLogEntry {
  std::string file;
  uint64_t line = 0;
  std::string_view text;  // the raw line, valid only during the callback
  AuditRecord record;
};

struct AuditReadOptions {
  size_t max_line_bytes = 16u << 20;  // longer lines are skipped with a warning
};

// The files of the log at `path`, oldest first: rotated files by sequence number, then the
// current file (when it exists).
std::vector<std::string> AuditLogFiles(const std::string& path);

// Reads every record of the log at `path` (rotated files, then the current one), oldest first,
// calling `visit` for each; `visit` returns false to stop early. Lines that are not records
// (malformed, a newer schema, too long) and a torn last line (no newline: an interrupted write,
// or a write in progress) are skipped, each with a warning appended to `warnings`; they never
// fail the read. Fails (kNotFound) only when no file of the log exists. A file that rotation
// renames or retention deletes while it is read is read from the already open descriptor; a
// file rotated in between listing and opening is picked up, so no record present at the start
// of the read is missed.
Status ReadAuditLog(const std::string& path, const AuditReadOptions& options,
                    const std::function<bool(const AuditLogEntry&)>& visit,
                    std::vector<AuditReadWarning>* warnings);

}  // namespace tracepager::daemon
