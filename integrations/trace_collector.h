// CollectTraces: which traces one routing job routes on, and the record of how they were
// obtained (for the decision's audit).
//
//   1. The trace ids the alert carries come first: each is fetched (the source bounds how
//      many requests run at once). An id answering "not found" is asked again after
//      `not_found_delay`, up to `not_found_retries` more times, because traces reach the
//      backend late (the alert can fire before the last spans are indexed).
//   2. With no carried ids, or when none of them came back, the source is searched for the
//      alerting service's traces in the alert's window: failing ones for an error alert, the
//      slowest for a latency alert; up to `max_traces`. Hits without a trace (Tempo) are
//      fetched like carried ids.
//   3. At the job's deadline (default 10 s from the start) collection stops and the job gets
//      what came back; everything still pending is recorded as cut off by the deadline.
// The result never fails: zero traces is a valid outcome (the router then falls back), and
// the audit says why.
//
// Thread-safe: several collections may run at once on one source. `done` runs exactly once,
// without locks held: on a source or scheduler thread, or inside CollectTraces itself when
// there is nothing to ask (no ids and no service) or the source answers synchronously. REQUIRES:
// `scheduler` outlives the collection (until `done` has run).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "integrations/scheduler.h"
#include "integrations/trace_source.h"
#include "routing/trace.h"

namespace tracepager::integrations {

struct CollectOptions {
  size_t max_traces = 20;                            // N: traces routed on, at most
  std::chrono::milliseconds total_timeout{10'000};   // used when the request has no deadline
  std::chrono::milliseconds not_found_delay{2'000};  // wait before asking a 404 id again
  int not_found_retries = 3;                         // further asks after the first 404
  bool search_when_carried_fail = true;              // step 2 also when no carried id came back
};

struct CollectRequest {
  std::vector<std::string> trace_ids;  // carried by the alert, as found (any case, any length)
  TraceQuery query;                    // service, window, order; limit is set from max_traces
  // The job's deadline; time_point{} = now + options.total_timeout.
  TraceSource::Clock::time_point deadline{};
};

// What happened to one trace that was asked for.
struct TraceOutcome {
  enum class Origin { kCarried, kSearch };
  enum class Status {
    kFetched,    // came back; it is in CollectResult::traces
    kNotFound,   // still not found after every retry
    kFailed,     // the source failed (reason says how: timeout, HTTP 503, HTML page, ...)
    kInvalidId,  // the alert's value is not a trace id; never sent
    kDeadline,   // the job's deadline passed while it was pending
    kSkipped,    // beyond max_traces; never sent
  };
  std::string trace_id;  // normalized (32 digits); the raw value (cut to 64) for kInvalidId
  Origin origin = Origin::kCarried;
  Status status = Status::kFetched;
  int attempts = 0;    // fetches sent for it
  std::string reason;  // empty for kFetched
};

const char* TraceOutcomeStatusName(TraceOutcome::Status status);  // "fetched", "not_found", ...
const char* TraceOutcomeOriginName(TraceOutcome::Origin origin);  // "carried" | "search"

struct CollectAudit {
  std::string source;        // the source's kind()
  bool searched = false;     // step 2 ran
  std::string search;        // what was searched, for a person ("failing traces of checkout...")
  std::string search_error;  // why the search failed; empty when it did not
  size_t search_hits = 0;    // hits the search returned
  bool deadline_reached = false;
  std::vector<TraceOutcome> traces;  // carried ids first (in the alert's order), then hits
};

struct CollectResult {
  std::vector<routing::Trace> traces;  // in the order of CollectAudit::traces
  CollectAudit audit;
};

void CollectTraces(std::shared_ptr<TraceSource> source, CollectRequest request,
                   const CollectOptions& options, Scheduler& scheduler,
                   std::function<void(CollectResult)> done);

}  // namespace tracepager::integrations
