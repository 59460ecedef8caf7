// Delivery: pages reach a person at least once, and "nobody was paged" is never silent.
//
// Contract, from a routing job's pages to a pager's 2xx:
//   * Submit persists one outbox entry per (page, target) before it returns; only then is the
//     job's decision recorded and the webhook's job finished (the daemon's order of work). A
//     submission key makes a re-run of the same job (a crash after Submit) a no-op, and a
//     trigger already open for the same dedup key and target is not paged again.
//   * An entry is marked sent only after its pager accepted it. After a crash, Recover() loads
//     every pending entry and sends it again; the dedup key makes the second send harmless.
//   * Retries: 5xx, 408, timeouts, resets and refused connections back off exponentially with
//     jitter (initial_backoff doubling up to max_backoff, each delay drawn from [d/2, d]); a 429
//     (or 503) with Retry-After waits exactly that long and holds the whole target back; other
//     4xx are permanent and recorded with the pager's reason.
//   * A trigger group (every target of one team for one alert) that ends with no target having
//     accepted (permanent refusals, or still failing at max_age) goes to the team's fallback,
//     else the default team, through their own targets; a team without targets is skipped the
//     same way. When the chain runs out, that is "nobody was paged": an error log line, a
//     DeliveryRecord of kind kNobodyPaged and the metric hook, never silence.
//   * SubmitResolve resolves exactly the targets whose triggers may have reached someone, using
//     the targets stored with those triggers (a registry change or a restart does not matter).
//     A trigger still waiting for its first attempt is cancelled instead; one in flight is
//     resolved after it completes (sends for one dedup key and target are strictly ordered).
//   * A per-target rate limit (token bucket; Slack about one message a second) delays sends,
//     it never drops them.
//   * Secrets never reach a log line, a record or an error: targets are described by
//     PagerTarget::Describe() and every pager detail is redacted (integrations/secret.h).
//
// Threads: Submit/SubmitResolve from any thread (the daemon's workers); Poll from one driver
// thread (DeliveryRunner, or a test); pagers complete on their own threads and only queue the
// outcome, which the next Poll applies. All methods are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "integrations/delivery/clock.h"
#include "integrations/delivery/outbox.h"
#include "integrations/delivery/target_directory.h"
#include "integrations/pager.h"
#include "routing/result.h"

namespace spdlog {
class logger;
}

namespace tracepager::integrations::delivery {

struct RateLimit {
  double per_second = 0;  // 0: unlimited
  double burst = 1;       // sends allowed back to back
};

struct DeliveryOptions {
  // A trigger group still not accepted this long after it was persisted goes to the fallback.
  std::chrono::milliseconds max_age{std::chrono::minutes(10)};
  // A resolve still failing this long after it was persisted is given up (and recorded).
  std::chrono::milliseconds resolve_max_age{std::chrono::hours(24)};
  std::chrono::milliseconds initial_backoff{std::chrono::seconds(1)};
  std::chrono::milliseconds max_backoff{std::chrono::minutes(2)};
  // Longer Retry-After values are cut to this; a 429 may not park a page for a day.
  std::chrono::milliseconds max_retry_after{std::chrono::minutes(10)};
  // Per pager kind. Slack documents about one message per second per webhook; PagerDuty about
  // 120 events per minute per routing key.
  std::map<std::string, RateLimit, std::less<>> rate_limits = {
      {"slack", {1.0, 1.0}}, {"pagerduty", {2.0, 10.0}}, {"opsgenie", {5.0, 10.0}}};
  size_t max_in_flight = 64;            // sends at once, all targets
  size_t max_in_flight_per_target = 4;  // sends at once to one target
  // Final entries are pruned after `retention`; sent triggers never resolved after
  // `open_retention` (their resolve can no longer be expected).
  std::chrono::milliseconds retention{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds open_retention{std::chrono::hours(24 * 30)};
  uint64_t jitter_seed = 0;  // 0: seeded from std::random_device
};

// One thing that happened to a page, for the audit log and metrics. Never holds a secret.
struct DeliveryRecord {
  enum class Kind {
    kSent,              // a pager accepted the page
    kRetry,             // an attempt failed and will be retried
    kFailed,            // a target refused the page for good (a 4xx other than 408/429)
    kExpired,           // a target was still failing at the maximum age
    kNoTarget,          // the team has no pager target; the chain moves on
    kFallback,          // the page went to a fallback team (fallback_team)
    kNobodyPaged,       // the chain ran out: nobody was paged for this alert
    kCancelled,         // a trigger not yet delivered was cancelled by its resolve
    kNothingToResolve,  // a resolve found no trigger to resolve
  };
  Kind kind = Kind::kSent;
  Page::Action action = Page::Action::kTrigger;
  std::string alert_identity;
  std::string decision_id;
  std::string dedup_key;
  std::string team;
  std::string target;      // PagerTarget::Describe(); empty when no target is involved
  std::string target_key;  // PagerTarget::Key()
  std::string pager_kind;  // "pagerduty", ...; empty when no target is involved
  int attempts = 0;
  int http_status = 0;
  std::string request_id;
  std::string detail;         // why: the pager's answer, "max age 10m0s reached", ...
  std::string fallback_team;  // kFallback: the team paged instead
  // kFailed/kExpired: the team paged instead because this failure left the team unreached.
  std::string rerouted_to;
  // The page stands in for this team's (it was paged as a fallback); empty otherwise.
  std::string fallback_for;
  std::vector<AttemptLog> attempt_log;  // kSent/kFailed/kExpired: the attempts, oldest first
  int64_t at_ns = 0;
};
const char* DeliveryRecordKindName(DeliveryRecord::Kind kind);  // "sent", "retry", ...

struct DeliveryHooks {
  // Every record (the audit log). `target` is the target involved (null when none) for a
  // writer that fingerprints and scrubs with it (daemon/audit_record.h); it holds secrets and
  // must not be stored or printed. Called from the thread that caused it, under Delivery's
  // lock: it must not block for long and must not call back into Delivery.
  std::function<void(const DeliveryRecord&, const PagerTarget* target)> record;
  // Counts by result for metrics: (DeliveryRecordKindName(kind), pager kind or "").
  std::function<void(std::string_view result, std::string_view pager_kind)> count;
  // Test seam: named points in a page's life ("persisted" after Submit's commit,
  // "attempt_persisted" after an attempt was recorded and before its Send, "accepted" when an
  // accepted outcome is about to be committed). A crash test kills the process here.
  std::function<void(std::string_view point)> test_point;
};

// What one Submit or SubmitResolve did.
struct SubmitReport {
  bool duplicate_submission = false;  // the submission key was seen before: nothing was done
  size_t entries = 0;                 // outbox entries created
  size_t already_open = 0;            // triggers skipped: the same page is already open there
  std::vector<std::string> teams;     // teams with entries (fallback teams included)
  bool nobody_paged = false;          // a page found no team with a target on its whole chain
};

class Delivery {
 public:
  // `pagers` by kind ("pagerduty", ...); entries whose kind has no pager fail permanently and
  // fall back. `outbox`, the pagers and `clock` must outlive Delivery. `logger` may be null
  // (spdlog's default logger is used).
  Delivery(Outbox* outbox, std::map<std::string, Pager*, std::less<>> pagers,
           std::shared_ptr<const TargetDirectory> directory, DeliveryOptions options,
           const Clock* clock, DeliveryHooks hooks = {},
           std::shared_ptr<spdlog::logger> logger = nullptr);
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  // A registry reload: later submissions and fallbacks use `directory`; persisted entries keep
  // their targets.
  void SetDirectory(std::shared_ptr<const TargetDirectory> directory);

  // Loads the pending entries of an earlier run. Call once, before the first Poll.
  Status Recover();

  // Persists trigger pages (BuildPages' output) under `submission`. Returns once durable.
  // kUnavailable when the outbox cannot write: nothing was persisted and the caller must retry
  // (the daemon keeps the job).
  Result<SubmitReport> Submit(std::string_view submission, const std::vector<Page>& pages);

  // Persists the resolves for every unresolved trigger of `alert_identity`.
  Result<SubmitReport> SubmitResolve(std::string_view submission, std::string_view alert_identity);

  // Applies queued send outcomes, expires what is overdue and starts every send that is due
  // and allowed. Returns when it next has something to do (Unix ns), or nullopt when nothing is
  // pending. Persistence failures are logged and retried on the next Poll.
  std::optional<int64_t> Poll();

  // Blocks until a send outcome or a submission arrives, or `max_wait` passes (real time).
  // Returns true when something arrived. For DeliveryRunner and tests; never a sleep.
  bool WaitForWork(std::chrono::milliseconds max_wait);
  // Wakes WaitForWork (DeliveryRunner's Stop).
  void Wake();

  size_t pending() const;    // entries not yet final
  size_t in_flight() const;  // sends started and not yet applied

 private:
  struct TargetState {
    double tokens = -1;  // < 0: not yet initialised (starts full)
    int64_t refilled_ns = 0;
    int64_t blocked_until_ns = 0;
    size_t in_flight = 0;
  };
  struct Completion {
    int64_t id;
    SendOutcome outcome;
  };

  void Apply(const Completion& completion, int64_t now);
  // Entry `e` reached a final failure: persists it with what follows (a fallback group, or
  // nothing) in one transaction and emits the records.
  void FinishFailed(OutboxEntry e, const std::string& why, bool expired, int64_t now);
  // Builds the entries that page `page` to the next team(s) on the chain after `tried`,
  // emitting kNoTarget/kFallback/kNobodyPaged records. Empty when nobody is left.
  std::vector<OutboxEntry> ChainEntries(const Page& page, std::string_view submission,
                                        std::vector<std::string> tried, int hop, std::string why,
                                        int64_t now, std::vector<DeliveryRecord>* records,
                                        bool* nobody);
  std::vector<OutboxEntry> EntriesForTeam(const Page& page, std::string_view submission,
                                          const std::vector<std::string>& tried, int hop,
                                          int64_t now) const;
  // Drops from `adds` the triggers already open (same dedup key and target) in the outbox or
  // earlier in `adds`; returns how many were dropped.
  Result<size_t> DropOpen(std::vector<OutboxEntry>* adds);
  // Takes the entries just committed (`ids`: Commit's answer, one per entry) into pending_; with
  // `report`, counts them and lists their teams there.
  void KeepCommitted(std::vector<OutboxEntry> adds, const std::vector<int64_t>& ids,
                     SubmitReport* report);
  OutboxEntry Latest(const OutboxEntry& stored) const;  // the in-memory version when pending
  bool TakeToken(const std::string& kind, TargetState& t, int64_t now, int64_t* ready_at);
  std::chrono::milliseconds Backoff(int attempts);
  void Emit(DeliveryRecord record, const PagerTarget* target = nullptr);
  DeliveryRecord RecordFor(const OutboxEntry& e, DeliveryRecord::Kind kind, int64_t now) const;

  Outbox* outbox_;
  std::map<std::string, Pager*, std::less<>> pagers_;
  DeliveryOptions options_;
  const Clock* clock_;
  DeliveryHooks hooks_;
  std::shared_ptr<spdlog::logger> log_;

  mutable std::mutex mu_;  // everything below, and every outbox call
  std::shared_ptr<const TargetDirectory> directory_;
  std::map<int64_t, OutboxEntry> pending_;  // by id: the order sends must respect
  std::set<int64_t> in_flight_;
  std::map<std::string, TargetState, std::less<>> targets_;
  std::mt19937_64 rng_;
  int64_t last_prune_ns_ = 0;

  // Where pagers leave their outcomes. Shared with every send's completion, so a pager that
  // finishes after Delivery is gone writes into a live queue nobody reads, never freed memory.
  struct Inbox {
    std::mutex mu;  // never held while taking mu_
    std::condition_variable cv;
    std::vector<Completion> completions;
    bool work = false;
  };
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
};

// Drives a Delivery on its own thread with the real clock: Poll, then wait for the next due
// time or new work. Stop() (also the destructor) ends the loop; sends in flight complete into
// the outbox on the next start if not applied now.
class DeliveryRunner {
 public:
  explicit DeliveryRunner(Delivery* delivery, const Clock* clock);
  ~DeliveryRunner();
  void Stop();

 private:
  Delivery* delivery_;
  const Clock* clock_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tracepager::integrations::delivery
