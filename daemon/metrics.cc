#include "daemon/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <map>
#include <mutex>

namespace tracepager::daemon {

namespace {

// Family::Add takes the family's lock and hashes the label map. Series for known label values
// are created once and looked up here by a plain string compare under our own lock instead;
// unknown values (a new page result) fall through to Add once and are cached too.
template <typename T>
class LabelledSeries {
 public:
  LabelledSeries(prometheus::Family<T>& family, std::string label)
      : family_(family), label_(std::move(label)) {}
  T& Get(std::string_view value) {
    std::lock_guard lock(mu_);
    auto it = cache_.find(value);
    if (it != cache_.end()) return *it->second;
    T& series = family_.Add({{label_, std::string(value)}});
    cache_.emplace(std::string(value), &series);
    return series;
  }

 private:
  prometheus::Family<T>& family_;
  const std::string label_;
  std::mutex mu_;
  std::map<std::string, T*, std::less<>> cache_;
};

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// BackendMetrics into two prometheus families. Series are created on first use (backend names
// come from the config: few) and cached like LabelledSeries.
class PrometheusBackendMetrics : public integrations::BackendMetrics {
 public:
  explicit PrometheusBackendMetrics(prometheus::Registry& registry)
      : latency_(prometheus::BuildHistogram()
                     .Name("tracepager_trace_backend_request_duration_seconds")
                     .Help("HTTP attempts to a trace backend, by backend (retries count apart).")
                     .Register(registry)),
        errors_(prometheus::BuildCounter()
                    .Name("tracepager_trace_backend_errors_total")
                    .Help("Failed trace backend requests and unusable answers, by backend and "
                          "kind.")
                    .Register(registry)) {}

  void ObserveRequest(std::string_view backend, std::chrono::nanoseconds latency,
                      int /*status*/) override {
    Get(backend).latency->Observe(Seconds(latency));
  }
  void CountError(std::string_view backend, integrations::ErrorKind kind) override {
    Get(backend).errors[static_cast<size_t>(kind)]->Increment();
  }
  void Add(std::string_view backend) { (void)Get(backend); }

 private:
  struct Series {
    prometheus::Histogram* latency = nullptr;
    std::array<prometheus::Counter*, integrations::kErrorKindCount> errors{};
  };
  Series& Get(std::string_view backend) {
    std::lock_guard lock(mu_);
    auto it = series_.find(backend);
    if (it != series_.end()) return it->second;
    Series s;
    const std::string name(backend);
    // Same buckets as trace_fetch_duration_seconds: up to the 10 s job deadline and beyond.
    s.latency = &latency_.Add(
        {{"backend", name}}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1,
                                                                     0.25, 0.5, 1, 2.5, 5, 10, 30});
    for (size_t k = 0; k < integrations::kErrorKindCount; ++k) {
      s.errors[k] = &errors_.Add(
          {{"backend", name},
           {"kind", integrations::ErrorKindName(static_cast<integrations::ErrorKind>(k))}});
    }
    return series_.emplace(name, s).first->second;
  }

  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Counter>& errors_;
  std::mutex mu_;
  std::map<std::string, Series, std::less<>> series_;
};

}  // namespace

const char* DecisionOutcomeName(DecisionOutcome outcome) {
  switch (outcome) {
    case DecisionOutcome::kRouted:
      return "routed";
    case DecisionOutcome::kFallback:
      return "fallback";
    case DecisionOutcome::kError:
      return "error";
  }
  return "error";
}

struct Metrics::Impl {
  explicit Impl(std::string_view version)
      : received(prometheus::BuildCounter()
                     .Name("tracepager_alerts_received_total")
                     .Help("Alerts accepted, by webhook endpoint.")
                     .Register(registry),
                 "endpoint"),
        rejected(prometheus::BuildCounter()
                     .Name("tracepager_requests_rejected_total")
                     .Help("HTTP requests and connections refused, by reason.")
                     .Register(registry),
                 "reason"),
        decisions(prometheus::BuildCounter()
                      .Name("tracepager_decisions_total")
                      .Help("Routing decisions, by outcome (routed, fallback, error).")
                      .Register(registry),
                  "outcome"),
        pages(prometheus::BuildCounter()
                  .Name("tracepager_pages_total")
                  .Help("Pages, by result.")
                  .Register(registry),
              "result"),
        reloads(prometheus::BuildCounter()
                    .Name("tracepager_config_reloads_total")
                    .Help("Config reloads, by result (ok, failed).")
                    .Register(registry),
                "result"),
        jobs_queued(prometheus::BuildGauge()
                        .Name("tracepager_jobs_queued")
                        .Help("Routing jobs waiting in the durable store.")
                        .Register(registry)
                        .Add({})),
        jobs_in_flight(prometheus::BuildGauge()
                           .Name("tracepager_jobs_in_flight")
                           .Help("Routing jobs being worked on.")
                           .Register(registry)
                           .Add({})),
        paced(prometheus::BuildCounter()
                  .Name("tracepager_webhooks_paced_total")
                  .Help("Webhooks whose answer waited for the workers to make room in the queue.")
                  .Register(registry)
                  .Add({})),
        pacing(prometheus::BuildGauge()
                   .Name("tracepager_webhooks_pacing")
                   .Help("Webhooks waiting now for the workers to make room in the queue.")
                   .Register(registry)
                   .Add({})),
        dead(prometheus::BuildCounter()
                 .Name("tracepager_jobs_dead_total")
                 .Help("Routing jobs set aside because their alert can no longer be read "
                       "(a damaged database or intake log): alerts that will not be routed.")
                 .Register(registry)
                 .Add({})),
        // Trace fetches are network calls: milliseconds to the 10 s default timeout and beyond.
        trace_fetch(
            prometheus::BuildHistogram()
                .Name("tracepager_trace_fetch_duration_seconds")
                .Help("Time to fetch the traces behind one decision.")
                .Register(registry)
                .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1,
                                                                 0.25, 0.5, 1, 2.5, 5, 10, 30})),
        // Routing is in-memory work on a few traces: tens of microseconds to a few milliseconds.
        routing(prometheus::BuildHistogram()
                    .Name("tracepager_routing_duration_seconds")
                    .Help("Time to walk the traces and pick an owner for one decision.")
                    .Register(registry)
                    .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001,
                                                                     0.0025, 0.005, 0.01, 0.025,
                                                                     0.05, 0.1, 0.25, 0.5, 1})),
        last_reload_ok(prometheus::BuildGauge()
                           .Name("tracepager_config_last_reload_successful")
                           .Help("1 if the last config (re)load succeeded, else 0.")
                           .Register(registry)
                           .Add({})),
        last_reload_time(prometheus::BuildGauge()
                             .Name("tracepager_config_last_reload_success_timestamp_seconds")
                             .Help("Unix time of the last successful config (re)load.")
                             .Register(registry)
                             .Add({})) {
    prometheus::BuildGauge()
        .Name("tracepager_build_info")
        .Help("Build information; always 1.")
        .Register(registry)
        .Add({{"version", std::string(version)}})
        .Set(1);
    // The daemon runs only with a config that loaded.
    last_reload_ok.Set(1);
    for (const char* e : {"alertmanager", "grafana", "generic"}) received.Get(e);
    for (HttpRejectReason r : AllHttpRejectReasons()) rejected.Get(HttpRejectReasonName(r));
    for (DecisionOutcome o :
         {DecisionOutcome::kRouted, DecisionOutcome::kFallback, DecisionOutcome::kError}) {
      decisions.Get(DecisionOutcomeName(o));
    }
    // Delivery's record kinds (DeliveryRecordKindName); nobody_paged is the one to alert on.
    for (const char* r : {"sent", "retry", "failed", "expired", "no_target", "fallback",
                          "nobody_paged", "cancelled", "nothing_to_resolve"}) {
      pages.Get(r);
    }
    for (const char* r : {"ok", "failed"}) reloads.Get(r);
  }

  prometheus::Registry registry;
  LabelledSeries<prometheus::Counter> received;
  LabelledSeries<prometheus::Counter> rejected;
  LabelledSeries<prometheus::Counter> decisions;
  LabelledSeries<prometheus::Counter> pages;
  LabelledSeries<prometheus::Counter> reloads;
  prometheus::Gauge& jobs_queued;
  prometheus::Gauge& jobs_in_flight;
  prometheus::Counter& paced;
  prometheus::Gauge& pacing;
  prometheus::Counter& dead;
  std::mutex totals_mu;     // paced_seen and dead_seen
  uint64_t paced_seen = 0;  // the running total `paced` was last brought to
  uint64_t dead_seen = 0;   // the running total `dead` was last brought to
  prometheus::Histogram& trace_fetch;
  prometheus::Histogram& routing;
  prometheus::Gauge& last_reload_ok;
  prometheus::Gauge& last_reload_time;
  PrometheusBackendMetrics trace_backends{registry};
};

Metrics::Metrics(std::string_view version) : impl_(std::make_unique<Impl>(version)) {}
Metrics::~Metrics() = default;

void Metrics::AlertsReceived(std::string_view endpoint, uint64_t count) {
  impl_->received.Get(endpoint).Increment(static_cast<double>(count));
}
void Metrics::Rejected(std::string_view reason) { impl_->rejected.Get(reason).Increment(); }
void Metrics::SetJobsQueued(int64_t jobs) { impl_->jobs_queued.Set(static_cast<double>(jobs)); }
void Metrics::SetJobsInFlight(int64_t jobs) {
  impl_->jobs_in_flight.Set(static_cast<double>(jobs));
}
void Metrics::AddJobsInFlight(int64_t delta) {
  impl_->jobs_in_flight.Increment(static_cast<double>(delta));
}
void Metrics::SetPacing(uint64_t paced_total, int64_t waiting) {
  {
    std::lock_guard<std::mutex> lk(impl_->totals_mu);
    if (paced_total > impl_->paced_seen) {
      impl_->paced.Increment(static_cast<double>(paced_total - impl_->paced_seen));
      impl_->paced_seen = paced_total;
    }
  }
  impl_->pacing.Set(static_cast<double>(waiting));
}
void Metrics::SetJobsDead(uint64_t dead_total) {
  std::lock_guard<std::mutex> lk(impl_->totals_mu);
  if (dead_total > impl_->dead_seen) {
    impl_->dead.Increment(static_cast<double>(dead_total - impl_->dead_seen));
    impl_->dead_seen = dead_total;
  }
}
void Metrics::Decision(DecisionOutcome outcome) {
  impl_->decisions.Get(DecisionOutcomeName(outcome)).Increment();
}
void Metrics::Page(std::string_view result) { impl_->pages.Get(result).Increment(); }
void Metrics::ObserveTraceFetch(std::chrono::nanoseconds elapsed) {
  impl_->trace_fetch.Observe(Seconds(elapsed));
}
void Metrics::ObserveRouting(std::chrono::nanoseconds elapsed) {
  impl_->routing.Observe(Seconds(elapsed));
}

void Metrics::ConfigReload(bool ok, std::chrono::system_clock::time_point when) {
  impl_->reloads.Get(ok ? "ok" : "failed").Increment();
  impl_->last_reload_ok.Set(ok ? 1 : 0);
  if (ok) {
    impl_->last_reload_time.Set(std::chrono::duration<double>(when.time_since_epoch()).count());
  }
}

integrations::BackendMetrics& Metrics::trace_backends() { return impl_->trace_backends; }
void Metrics::AddTraceBackend(std::string_view backend) { impl_->trace_backends.Add(backend); }

std::string Metrics::Exposition() const {
  return prometheus::TextSerializer().Serialize(impl_->registry.Collect());
}

HttpHandler MetricsHttpHandler(std::shared_ptr<const Metrics> metrics) {
  return [metrics = std::move(metrics)](const HttpRequest&, HttpResponder responder) {
    HttpResponse response;
    response.content_type = Metrics::kContentType;
    response.body = metrics->Exposition();
    responder.Send(std::move(response));
  };
}

}  // namespace tracepager::daemon
