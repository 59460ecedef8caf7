// JobProcessor: what a daemon worker does with one claim (daemon/store.h): from queued routing
// jobs to pages handed to delivery and a decision recorded, or back to the queue for later.
//
// A claim holds the ready jobs of one storm key (one alerting service and symptom), oldest
// first. They are handled in runs of consecutive jobs of one kind:
//   route runs
//     - repeat: a job whose alert identity already has an open page pages nobody again;
//     - storm: when the storm key has an open page younger than the storm window, the new
//       alerts join it (page memory) without a trace fetch or a new decision;
//     - otherwise one decision for the whole run: the traces the alerts carry (then a search of
//       the alerting service's failing or slowest traces in the alerts' window) are collected
//       by integrations::CollectTraces (404 retries, the job's deadline trace_source.timeout,
//       a note per trace asked for), routing::Route decides, integrations::BuildPages makes one
//       page per team, and delivery persists them in its outbox (Submit) before the jobs complete.
//       When traces were expected but none came back yet, the run goes back to the queue for
//       workers.retry_delay, up to workers.max_attempts claims; then it routes on what there is
//       (the decision is then a fallback to the alerting service's owner).
//   resolve runs: each alert is marked resolved on its open pages; a page whose alerts have all
//     resolved is resolved through delivery (SubmitResolve for the identity it was triggered by).
// A run completes (store Complete) only after delivery accepted its pages or resolves, so a
// crash in between re-runs it; delivery's submission keys ("route-<job id>") make that re-run
// page nobody twice.
//
// Thread-safe: several workers may call Process at once (the store never hands one storm key to
// two of them).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/store.h"
#include "integrations/delivery/delivery.h"
#include "integrations/page_builder.h"
#include "integrations/scheduler.h"
#include "integrations/trace_collector.h"
#include "integrations/trace_source.h"
#include "routing/registry.h"
#include "routing/route.h"

namespace tracepager::integrations::http {
class IoThread;
}

namespace tracepager::daemon {

// What one claim is routed with. A reload builds a new one; work in flight keeps the old.
struct RoutingSnapshot {
  std::shared_ptr<const Config> config;
  std::shared_ptr<const routing::Registry> registry;
  std::shared_ptr<integrations::TraceSource> trace_source;
  integrations::PageOptions page_options;
  // The source's 404 policy (integrations::CollectOptionsFor for an HTTP backend); max_traces
  // and the deadline are taken from config.routing.max_traces and config.trace_source.timeout.
  // Default: no retries inside a job (a file source does not change while the daemon runs).
  integrations::CollectOptions trace_collect = [] {
    integrations::CollectOptions o;
    o.not_found_retries = 0;
    return o;
  }();
};

// One trace asked for while deciding (integrations::TraceOutcome, for the audit).
struct TraceNote {
  std::string trace_id;
  std::string origin;  // "alert" (carried by an alert) | "search"
  bool used = false;   // routed on
  // Why it did not come back, "<status>: <reason>" with status a TraceOutcomeStatusName
  // (not_found, failed, invalid_id, deadline, skipped); empty when it did.
  std::string error;
};

// The search run when the alerts' own trace ids gave nothing.
struct SearchNote {
  std::string service;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  uint32_t limit = 0;
  uint32_t found = 0;
  std::string error;
};

struct PlannedPage {
  std::string team;
  std::string dedup_key;
};

// One decision, for the log, metrics and the audit trail.
struct DecisionEvent {
  std::string decision_id;  // "d-<first job id of the run>"
  std::string kind;         // routed | fallback | storm | repeat | resolve | unrouted
  std::string storm_key;
  std::string alerting_service;
  std::string symptom;
  std::vector<std::string> identities;          // the alerts decided on
  std::vector<std::string> teams;               // teams paged (or resolved, or joined)
  const routing::Decision* decision = nullptr;  // routed/fallback/unrouted only
  std::vector<std::string> traces_asked;        // carried ids, then searched ids
  std::vector<std::string> traces_used;
  std::vector<std::string> fetch_errors;  // "<id or search>: <reason>"
  double fetch_seconds = 0;
  double route_seconds = 0;
  int64_t queue_wait_ns = 0;  // oldest job's time in the queue
  // For the audit record (routed/fallback/unrouted):
  int64_t time_ns = 0;  // when the decision was made
  RoutingJob alert;     // the first alert decided on (with its details: JobParts)
  std::vector<TraceNote> traces;
  std::optional<SearchNote> search;
  std::string trace_source;  // the source's kind()
  std::vector<PlannedPage> pages;
};

struct ProcessorHooks {
  // Called once per decision, after its jobs completed. Must not block for long.
  std::function<void(const DecisionEvent&)> on_decision;
  // Called for routing decisions (routed, fallback, unrouted) after their pages were handed to
  // delivery and before the jobs complete: the audit log. A failure puts the jobs back for a
  // retry (at least once: a crash in between writes a second record for the re-run).
  std::function<Status(const DecisionEvent&)> record;
  // Makes decision ids (`now_ns` is the decision time). Default: "d-<first job id>".
  std::function<std::string(int64_t now_ns)> decision_id;
};

// What Process did with a claim.
struct ProcessOutcome {
  size_t completed = 0;  // jobs finished
  size_t released = 0;   // jobs put back for a later attempt
};

class JobProcessor {
 public:
  // `store` and `delivery` must outlive the processor. `now_ns` is the wall clock. `scheduler`
  // runs the trace collector's timers (404 retries, the job's deadline) and must outlive the
  // processor; null: the processor runs its own (an io thread).
  JobProcessor(Store* store, integrations::delivery::Delivery* delivery,
               std::function<int64_t()> now_ns, ProcessorHooks hooks = {},
               integrations::Scheduler* scheduler = nullptr);
  ~JobProcessor();
  JobProcessor(const JobProcessor&) = delete;
  JobProcessor& operator=(const JobProcessor&) = delete;

  // Handles every job of `claim` (see above). Errors (the store or delivery refusing) release
  // the affected jobs for a retry and are returned after being applied; the claim is never left
  // half-held unless the store itself cannot be written.
  Result<ProcessOutcome> Process(const Claim& claim, const RoutingSnapshot& snapshot);

 private:
  Result<ProcessOutcome> ProcessRoutes(const Claim& claim, std::vector<const ClaimedJob*> run,
                                       const RoutingSnapshot& snapshot);
  Result<ProcessOutcome> ProcessResolves(const Claim& claim,
                                         const std::vector<const ClaimedJob*>& run,
                                         const RoutingSnapshot& snapshot);
  Result<ProcessOutcome> Finish(Completion completion, DecisionEvent event);
  Result<ProcessOutcome> ReleaseRun(const std::vector<const ClaimedJob*>& run, int64_t not_before,
                                    const Error& why);

  Store* store_;
  integrations::delivery::Delivery* delivery_;
  std::function<int64_t()> now_ns_;
  ProcessorHooks hooks_;
  std::unique_ptr<integrations::http::IoThread> own_io_;
  std::unique_ptr<integrations::Scheduler> own_scheduler_;
  integrations::Scheduler* scheduler_ = nullptr;
};

}  // namespace tracepager::daemon
