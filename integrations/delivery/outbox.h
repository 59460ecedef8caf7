// The outbox: the durable record of every page to send, and of what was sent where.
//
// A page is in the outbox before it is sent and is marked sent only after its pager accepted
// it, so a crash anywhere in between sends it again after restart (the dedup key makes the
// second send harmless). Each entry holds the page *and* its target (routing key, Opsgenie team,
// webhook URL), which is what lets a resolve reach exactly the target its trigger reached after
// a registry change or a restart. That makes the outbox a store of secrets: implementations keep
// it in the daemon's private state directory and never print an entry's target credential.
//
// Implementations: MemoryOutbox (tests; integrations/delivery/memory_outbox.h) and the SQLite
// outbox in the daemon's state directory (daemon/sqlite_outbox.h). Both are used only by
// Delivery, which serialises every call under its own lock; implementations need not be
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "integrations/pager.h"
#include "routing/result.h"

namespace tracepager::integrations::delivery {

enum class EntryState {
  kPending,    // to be sent: waiting for its first attempt, in flight, or waiting to retry
  kSent,       // the pager accepted it (final)
  kFailed,     // a permanent refusal, or still failing at its maximum age (final)
  kCancelled,  // a trigger whose alert resolved before it was delivered (final)
};
const char* EntryStateName(EntryState state);  // "pending" | "sent" | "failed" | "cancelled"

// One attempt to send an entry, for the audit trail.
struct AttemptLog {
  int64_t time_ns = 0;     // when its outcome arrived
  int http_status = 0;     // 0 when there was no HTTP answer
  std::string error;       // redacted; empty when accepted
  std::string request_id;  // the pager's id for the request, when it gave one
};

// An entry keeps the outcomes of its last kMaxAttemptLog attempts (a target down for hours
// should not grow its row without bound).
inline constexpr size_t kMaxAttemptLog = 20;

struct OutboxEntry {
  int64_t id = 0;          // assigned by Commit, increasing in insertion order
  std::string submission;  // the caller's idempotency key (a routing job), shared by its entries
  // The entries that page one team for one alert: every target of that team at one hop of the
  // fallback chain. A group whose every entry ended without a kSent goes to the fallback.
  std::string group;
  int hop = 0;  // 0: the team the decision named; 1, 2, ...: fallback teams
  std::vector<std::string> tried_teams;  // teams already tried on this chain, this one last
  Page page;                             // page.action tells trigger from resolve
  PagerTarget target;
  std::string target_key;  // target.Key()

  EntryState state = EntryState::kPending;
  int attempts = 0;             // sends started (persisted before each send)
  bool permanent = false;       // kFailed because the pager refused for good (4xx)
  bool resolved = false;        // trigger: a resolve was queued for it (or it was cancelled)
  int64_t created_ns = 0;       // Unix ns when this entry was persisted
  int64_t deadline_ns = 0;      // give up (and fall back, for a trigger) after this
  int64_t next_attempt_ns = 0;  // not before this
  int64_t finished_ns = 0;      // when it reached a final state; 0 while pending
  int last_http_status = 0;
  std::string last_error;           // redacted
  std::string request_id;           // the pager's id for the accepted request
  std::vector<AttemptLog> history;  // the last kMaxAttemptLog attempts, oldest first

  bool final() const { return state != EntryState::kPending; }

  // Copies the fields a delivery attempt changes (the ones Outbox::Commit writes for an update)
  // from `u`; the identity and the page stay.
  void CopyProgressFrom(const OutboxEntry& u) {
    state = u.state;
    attempts = u.attempts;
    permanent = u.permanent;
    resolved = u.resolved;
    next_attempt_ns = u.next_attempt_ns;
    finished_ns = u.finished_ns;
    last_http_status = u.last_http_status;
    last_error = u.last_error;
    request_id = u.request_id;
    history = u.history;
  }
};

class Outbox {
 public:
  virtual ~Outbox() = default;

  // In one transaction: writes the mutable fields (OutboxEntry::CopyProgressFrom) of each entry
  // in `updates` (by id), then inserts `adds` and returns their new ids in order. All or nothing;
  // durable when it returns ok. kUnavailable when the store cannot write (disk full, I/O).
  virtual Result<std::vector<int64_t>> Commit(const std::vector<OutboxEntry>& updates,
                                              const std::vector<OutboxEntry>& adds) = 0;

  // Every kPending entry, by id.
  virtual Result<std::vector<OutboxEntry>> LoadPending() = 0;
  // Whether any entry carries `submission`.
  virtual Result<bool> HasSubmission(std::string_view submission) = 0;
  // Every entry of `group`, by id.
  virtual Result<std::vector<OutboxEntry>> LoadGroup(std::string_view group) = 0;
  // The trigger entries of `alert_identity` that are not yet `resolved`, by id.
  virtual Result<std::vector<OutboxEntry>> LoadUnresolvedTriggers(
      std::string_view alert_identity) = 0;
  // Deletes final entries that finished before `cutoff_ns`, except kSent triggers not yet
  // resolved (a resolve may still need their target); those go after `open_cutoff_ns`.
  // Returns how many were deleted.
  virtual Result<size_t> Prune(int64_t cutoff_ns, int64_t open_cutoff_ns) = 0;
};

// The entry as one JSON object, target credential included (the outbox is a secret store);
// EntryFromJson reads it back. For stores that keep entries as documents, and for tests.
std::string EntryToJson(const OutboxEntry& entry);
Result<OutboxEntry> EntryFromJson(std::string_view json);

}  // namespace tracepager::integrations::delivery
