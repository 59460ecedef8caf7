// TraceSource: where the traces behind an alert come from (a directory of files, Jaeger,
// Grafana Tempo, Zipkin). One small interface, one implementation per backend
// (integrations/<backend>/), built by a factory from its config section.
//
// Asynchronous: each call returns at once and runs `done` exactly once, from any thread (an
// implementation's own I/O thread, or the caller's thread for synchronous sources such as
// `file`). `done` must not block: it may run on an I/O thread.
// Implementations are thread-safe: calls may come from several workers at once.
//
// Which traces an alert routes on (carried ids first, else a search, 404 retries, the job's
// total deadline, the audit of what was asked for) is decided by integrations/trace_collector.h,
// not here; a source answers one question per call.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/result.h"
#include "routing/trace.h"

namespace tracepager::integrations {

// Which traces a search asks for.
struct TraceQuery {
  enum class Order { kErrorsFirst, kSlowestFirst };
  std::string service;   // the alerting service (root or any span of it)
  int64_t start_ns = 0;  // the alert's window, Unix epoch nanoseconds
  int64_t end_ns = 0;
  Order order = Order::kErrorsFirst;  // errors: only failing traces; latency: slowest first
  size_t limit = 20;
  // Latency alerts: only traces at least this long, when the alert knows its threshold;
  // 0 = no lower bound (the source then fetches more candidates and sorts by duration).
  int64_t min_duration_ns = 0;
};

// One trace a search found, in the order the source ranks them (slowest first for
// kSlowestFirst). Backends whose search answers whole traces (Jaeger, Zipkin, file) fill
// `trace`; a backend whose search answers ids only (Tempo) leaves it empty and the caller
// fetches it with FetchTrace, so that each id gets its own outcome in the audit.
struct SearchHit {
  std::string trace_id;     // lowercase hex, left-padded to 32 digits
  int64_t duration_ns = 0;  // the trace's duration when the source knows it, else 0
  std::optional<routing::Trace> trace;
};

// Errors, by what the caller should do:
//   kNotFound     the trace is not (yet) in the backend: traces arrive late, retry after a delay
//   kUnavailable  the backend failed or refused (5xx, reset, TLS failure): retried inside
//   kTimeout      the per-request or the job's deadline passed
//   kInvalidInput the answer could not be read as traces (HTML error page, truncated JSON,
//                 wrong content type, too large): a clear reason for the decision's audit
// Messages never contain secrets (tokens, passwords, auth headers).
class TraceSource {
 public:
  using Clock = std::chrono::steady_clock;
  using TracesCallback = std::function<void(Result<std::vector<routing::Trace>>)>;
  using SearchCallback = std::function<void(Result<std::vector<SearchHit>>)>;

  virtual ~TraceSource() = default;

  // The configured name of this source ("file", "jaeger", ...), for logs and audit records.
  virtual std::string_view kind() const = 0;

  // Fetches the trace `trace_id` (hex, any case, 1 to 32 digits; shorter ids are left-padded
  // with zeros). On success the vector holds exactly one trace. `deadline` bounds the whole
  // call including retries.
  virtual void FetchTrace(const std::string& trace_id, Clock::time_point deadline,
                          TracesCallback done) = 0;

  // Searches the traces of query.service in the window: failing traces for kErrorsFirst, the
  // slowest first for kSlowestFirst; at most query.limit hits. An empty result is success
  // (nothing matched), not kNotFound.
  virtual void SearchTraces(const TraceQuery& query, Clock::time_point deadline,
                            SearchCallback done) = 0;
};

// Normalizes a trace id to 32 lowercase hex digits (left-padded with zeros), or nullopt when
// `id` is empty, longer than 32 digits or not hex. Pure.
std::optional<std::string> NormalizeTraceId(std::string_view id);

}  // namespace tracepager::integrations
