// Metrics: the daemon's Prometheus metrics (prometheus-cpp core), exposed in the text format
// through our own HTTP server (GET /metrics; not prometheus-cpp's civetweb exposer).
//
// Families (all prefixed tracepager_):
//   alerts_received_total{endpoint}         alerts accepted per webhook endpoint
//   requests_rejected_total{reason}         HTTP rejections (HttpRejectReasonName, or a
//                                           handler's own reason such as "invalid_payload",
//                                           "store_unavailable")
//   jobs_queued, jobs_in_flight             gauges
//   webhooks_paced_total                    webhooks whose answer waited for room (pacing,
//                                           IntakeOptions::pace_above_jobs)
//   webhooks_pacing                         gauge: webhooks waiting for room now
//   jobs_dead_total                         jobs set aside because their alert can no longer
//                                           be read (a damaged database or intake log): alerts
//                                           that will not be routed; worth an alert of its own
//   decisions_total{outcome}                routed | fallback | error
//   pages_total{result}                     e.g. sent | failed | deduplicated
//   trace_fetch_duration_seconds            histogram
//   routing_duration_seconds                histogram
//   config_reloads_total{result}            ok | failed
//   config_last_reload_successful           1 if the last (re)load succeeded, else 0
//   config_last_reload_success_timestamp_seconds
//   build_info{version}                     always 1
//   trace_backend_request_duration_seconds{backend}   histogram of HTTP attempts to a trace
//                                           backend (Jaeger, Tempo, Zipkin), retries included
//   trace_backend_errors_total{backend,kind} failures by integrations::ErrorKindName
// Known label values (every HttpRejectReason, the three outcomes, the alert endpoints, ...) exist
// from the start with value 0, so rate() and absent() work before the first event.
//
// Thread-safety: every member is safe to call from any thread concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/http_server.h"
#include "integrations/metrics.h"

namespace tracepager::daemon {

enum class DecisionOutcome { kRouted, kFallback, kError };
const char* DecisionOutcomeName(DecisionOutcome outcome);

class Metrics {
 public:
  // The Content-Type of Exposition().
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

  explicit Metrics(std::string_view version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // `endpoint` is a short stable name: "alertmanager", "grafana", "generic".
  void AlertsReceived(std::string_view endpoint, uint64_t count = 1);
  void Rejected(std::string_view reason);
  void Rejected(HttpRejectReason reason) { Rejected(HttpRejectReasonName(reason)); }

  void SetJobsQueued(int64_t jobs);
  void SetJobsInFlight(int64_t jobs);
  void AddJobsInFlight(int64_t delta);  // +1 when a worker takes a job, -1 when it is done
  // The intake's pacing counters (IntakeStats::paced, a running total, and pacing_now).
  void SetPacing(uint64_t paced_total, int64_t waiting);
  // The store's running total of jobs set aside as dead (StoreStats::dead_jobs).
  void SetJobsDead(uint64_t dead_total);

  void Decision(DecisionOutcome outcome);
  void Page(std::string_view result);

  void ObserveTraceFetch(std::chrono::nanoseconds elapsed);
  void ObserveRouting(std::chrono::nanoseconds elapsed);

  // Records a config reload. `when` is used only when `ok`.
  void ConfigReload(bool ok, std::chrono::system_clock::time_point when);

  // What the trace backends' HTTP clients report into (the two trace_backend_ families). Lives
  // as long as this object.
  integrations::BackendMetrics& trace_backends();
  // Creates `backend`'s series, every error kind at 0, so that rate() works before the first
  // failure. Idempotent.
  void AddTraceBackend(std::string_view backend);

  // Every family in the Prometheus text format, version 0.0.4.
  std::string Exposition() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A handler for GET /metrics that answers Exposition(). It holds `metrics` alive.
HttpHandler MetricsHttpHandler(std::shared_ptr<const Metrics> metrics);

}  // namespace tracepager::daemon
