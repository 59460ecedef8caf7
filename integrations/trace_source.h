// TraceSource: where the traces behind an alert come from (a directory of files, Jaeger,
// Grafana Tempo, Zipkin). One small interface, one implementation per backend
// (integrations/<backend>/), built by a factory from its config section.
//
// Asynchronous: each call returns at once and runs `done` exactly once, from any thread (an
// implementation's own I/O thread, or the caller's thread for synchronous sources such as
// `file`). Callers that need a blocking call wrap it (see FetchTraceSync below).
// Implementations are thread-safe: calls may come from several workers at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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
};

// Errors, by what the caller should do:
//   kNotFound     the trace is not (yet) in the backend: traces arrive late, retry after a delay
//   kUnavailable  the backend failed or refused (5xx, reset, TLS failure): retried inside
//   kTimeout      the per-request or the job's deadline passed
//   kInvalidInput the answer could not be read as traces (HTML error page, truncated JSON,
//                 wrong content type, too large): a clear reason for the decision's audit
class TraceSource {
 public:
  using Clock = std::chrono::steady_clock;
  using TracesCallback = std::function<void(Result<std::vector<routing::Trace>>)>;

  virtual ~TraceSource() = default;

  // The configured name of this source ("file", "jaeger", ...), for logs and audit records.
  virtual std::string_view kind() const = 0;

  // Fetches the trace `trace_id` (hex, any case, 16 or 32 digits). On success the vector holds
  // exactly one trace. `deadline` bounds the whole call including retries.
  virtual void FetchTrace(const std::string& trace_id, Clock::time_point deadline,
                          TracesCallback done) = 0;

  // Searches the traces of query.service in the window, at most query.limit, whole traces.
  virtual void SearchTraces(const TraceQuery& query, Clock::time_point deadline,
                            TracesCallback done) = 0;
};

}  // namespace tracepager::integrations
