// ServerApp: see the header for the lifecycle; this file explains the choices.
//
// Threads: the main thread owns signals (blocked everywhere, taken with sigtimedwait, so no
// async-signal-safety puzzles) and housekeeping; the HTTP server has its own io threads; each
// worker is a thread that claims and routes; the intake log has syncer threads that write and
// sync it and a thread that moves acknowledged webhooks into the store; the store has its
// writer; delivery has its runner;
// reloads run on one control thread so that POST /-/reload can answer with the outcome without
// blocking an io thread, and SIGHUP reloads queue behind it.
#include "daemon/server_app.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "daemon/alert.h"
#include "daemon/allocator.h"
#include "daemon/audit_api.h"
#include "daemon/audit_delivery.h"
#include "daemon/audit_log.h"
#include "daemon/audit_record.h"
#include "daemon/build_info.h"
#include "daemon/delivery_setup.h"
#include "daemon/http_server.h"
#include "daemon/intake.h"
#include "daemon/job_processor.h"
#include "daemon/metrics.h"
#include "daemon/registry_loader.h"
#include "daemon/sqlite_outbox.h"
#include "daemon/store.h"
#include "daemon/systemd_notify.h"
#include "integrations/delivery/delivery.h"
#include "integrations/file/file_trace_source.h"
#include "integrations/http/io_thread.h"
#include "integrations/log/log_pager.h"
#include "integrations/pager_factory.h"
#include "integrations/scheduler.h"
#include "integrations/trace_backend_config.h"

namespace tracepager::daemon {
namespace {

using integrations::delivery::Delivery;
using integrations::delivery::DeliveryRunner;
using integrations::delivery::SystemClock;

// How often the alerts_ingested summary line is written while webhooks arrive.
constexpr std::chrono::seconds kIngestSummaryInterval{10};
// A worker that finished a group of at least this many jobs returns freed memory to the system
// (ReleaseFreedMemory). Smaller groups free too little to be worth the system calls.
constexpr size_t kReleaseMemoryAfterJobs = 100;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t Ns(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

spdlog::level::level_enum SpdLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kCritical:
      return spdlog::level::critical;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string Join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// Loads what a config names and can be swapped at runtime: registry and trace source.
struct Loaded {
  std::shared_ptr<const Config> config;
  LoadedRegistry registry;
  std::shared_ptr<integrations::TraceSource> source;
  integrations::CollectOptions collect = RoutingSnapshot().trace_collect;
};

// Builds the configured trace source. HTTP backends run on `io` (the app's HTTP io thread, shared
// with the pagers) and report into `metrics`; the source is the cache/coalescing decorator over the
// HTTP source (unless the config turns the cache off). A reload builds a new one: claims in flight
// keep the old one through their snapshot, and its client shuts down when the last of them lets go.
Result<std::shared_ptr<integrations::TraceSource>> MakeTraceSource(const TraceSourceConfig& ts,
                                                                   boost::asio::io_context& io,
                                                                   Metrics& metrics) {
  if (const auto* file = std::get_if<FileTraceSourceConfig>(&ts.settings);
      file != nullptr && ts.type == "file") {
    Result<std::shared_ptr<integrations::FileTraceSource>> s =
        integrations::FileTraceSource::Load({file->dir, file->max_file_bytes});
    if (!s.ok()) return s.error();
    for (const std::string& w : (*s)->warnings()) {
      spdlog::warn("trace_file_skipped dir={} reason=\"{}\"", file->dir, w);
    }
    spdlog::info("trace_source_loaded type=file dir={} traces={}", file->dir, (*s)->size());
    return std::shared_ptr<integrations::TraceSource>(std::move(*s));
  }
  if (const auto* backend = std::get_if<integrations::TraceBackendConfig>(&ts.settings);
      backend != nullptr && integrations::IsHttpTraceBackendType(ts.type)) {
    metrics.AddTraceBackend(backend->label());
    Result<std::shared_ptr<integrations::TraceSource>> s =
        integrations::MakeHttpTraceSource(*backend, io, &metrics.trace_backends());
    if (!s.ok()) return Error::InvalidInput("trace_source: " + s.error().message);
    spdlog::info(
        "trace_source_loaded type={} name={} base_url={} api={} max_concurrency={} "
        "cache_ttl_ms={} timeout_ms={}",
        backend->type, backend->label(), backend->base_url,
        backend->api.empty() ? "default" : backend->api, backend->max_concurrency,
        backend->cache_ttl.count(), ts.timeout.count());
    return s;
  }
  return Error::InvalidInput("trace_source.type \"" + ts.type + "\" is not available");
}

// What changed between two configs' pagers: and delivery: sections. The pagers (their HTTP
// clients) and Delivery are built once at start and hold no reload hook, so these take a
// restart; the registry's targets and their secrets, and pagers.trace_url_template, reload.
std::vector<std::string> PagingRestartKeys(const PagingConfig& was, const PagingConfig& now) {
  std::vector<std::string> keys;
  const integrations::PagerConfigs& a = was.pagers;
  const integrations::PagerConfigs& b = now.pagers;
  auto differ = [](const auto& x, const auto& y, auto same) {
    return x.has_value() != y.has_value() || (x && !same(*x, *y));
  };
  if (differ(a.pagerduty, b.pagerduty, [](const auto& x, const auto& y) {
        return x.events_url == y.events_url && x.client_url == y.client_url &&
               x.timeout == y.timeout;
      })) {
    keys.push_back("pagers.pagerduty");
  }
  if (differ(a.opsgenie, b.opsgenie, [](const auto& x, const auto& y) {
        return x.base_url == y.base_url && x.api_key == y.api_key && x.timeout == y.timeout;
      })) {
    keys.push_back("pagers.opsgenie");
  }
  if (differ(a.slack, b.slack,
             [](const auto& x, const auto& y) { return x.timeout == y.timeout; })) {
    keys.push_back("pagers.slack");
  }
  if (differ(a.webhook, b.webhook, [](const auto& x, const auto& y) {
        return x.signing_key == y.signing_key && x.signature_header == y.signature_header &&
               x.timestamp_header == y.timestamp_header && x.timeout == y.timeout;
      })) {
    keys.push_back("pagers.webhook");
  }
  if (a.tls.ca_file != b.tls.ca_file || a.tls.verify != b.tls.verify ||
      a.max_concurrency != b.max_concurrency) {
    keys.push_back("pagers.tls/max_concurrency");
  }
  const integrations::delivery::DeliveryOptions& x = was.delivery;
  const integrations::delivery::DeliveryOptions& y = now.delivery;
  bool limits_same = x.rate_limits.size() == y.rate_limits.size();
  for (const auto& [kind, rl] : x.rate_limits) {
    auto it = y.rate_limits.find(kind);
    limits_same = limits_same && it != y.rate_limits.end() &&
                  it->second.per_second == rl.per_second && it->second.burst == rl.burst;
  }
  if (x.max_age != y.max_age || x.resolve_max_age != y.resolve_max_age ||
      x.initial_backoff != y.initial_backoff || x.max_backoff != y.max_backoff ||
      x.max_retry_after != y.max_retry_after || x.max_in_flight != y.max_in_flight ||
      x.max_in_flight_per_target != y.max_in_flight_per_target || x.retention != y.retention ||
      x.open_retention != y.open_retention || !limits_same) {
    keys.push_back("delivery");
  }
  return keys;
}

std::string PagerKinds(const Config& c) {
  if (c.pager.type == "log") return "log";
  std::vector<std::string> kinds;
  const integrations::PagerConfigs& p = c.paging.pagers;
  if (p.pagerduty) kinds.push_back("pagerduty");
  if (p.opsgenie) kinds.push_back("opsgenie");
  if (p.slack) kinds.push_back("slack");
  if (p.webhook) kinds.push_back("webhook");
  return Join(kinds);
}

Result<Loaded> LoadAll(const std::string& path, boost::asio::io_context& io, Metrics& metrics) {
  ConfigLoad load = LoadConfigFile(path, ConfigEnvironment::Process());
  if (!load.config) {
    std::string message;
    for (const ConfigProblem& p : load.problems) {
      if (!message.empty()) message += '\n';
      message += p.ToString();
    }
    return Error::InvalidInput(message);
  }
  Loaded out;
  out.config = std::make_shared<const Config>(std::move(*load.config));
  Result<LoadedRegistry> reg =
      LoadRegistry(out.config->registry, PagerNeedsSecrets(out.config->pager));
  if (!reg.ok()) return reg.error();
  out.registry = std::move(*reg);
  Result<std::shared_ptr<integrations::TraceSource>> source =
      MakeTraceSource(out.config->trace_source, io, metrics);
  if (!source.ok()) return source.error();
  out.source = std::move(*source);
  if (const auto* backend =
          std::get_if<integrations::TraceBackendConfig>(&out.config->trace_source.settings)) {
    out.collect = integrations::CollectOptionsFor(*backend);
  }
  return out;
}

}  // namespace

struct ServerApp::Impl {
  std::string config_path;
  SystemdNotifier notifier;
  SystemClock clock;
  std::shared_ptr<Metrics> metrics;

  // The io_context of every outgoing HTTP client: the trace backends' clients, the trace
  // collector's timers and the HTTP pagers, on one thread the app owns. Declared before the
  // snapshot (which holds the source) so that it is destroyed after it; ~ServerApp also tears
  // them down explicitly, in order.
  std::unique_ptr<integrations::http::IoThread> http_io;
  std::unique_ptr<integrations::AsioScheduler> trace_scheduler;
  integrations::PagerSet http_pagers;  // pager.type "registry": one pager per configured kind

  std::mutex snap_mu;
  std::shared_ptr<const RoutingSnapshot> snapshot;

  std::unique_ptr<Store> store;
  std::unique_ptr<Intake> intake;  // after store: destroyed first (it moves jobs into store)
  std::unique_ptr<SqliteOutbox> outbox;
  std::unique_ptr<integrations::LogPager> log_pager;
  std::unique_ptr<Delivery> delivery;
  std::unique_ptr<DeliveryRunner> delivery_runner;
  std::unique_ptr<JobProcessor> processor;
  std::unique_ptr<HttpServer> http;

  std::atomic<bool> stopping{false};

  // Webhooks stored since the last alerts_ingested line. One info line per webhook would flood
  // journald during exactly the storms an operator reads the log for (and journald's rate limit
  // would then drop lines); each webhook is logged at debug, and Run() writes a summary every
  // kIngestSummaryInterval.
  // Jobs queued and duplicates dropped are known when the intake moves webhooks into the
  // store: the summary reports the intake's counters since the previous line.
  struct IngestCounts {
    std::atomic<uint64_t> webhooks{0}, alerts{0};
    // Intake counters at the last line (Run's thread).
    uint64_t moved_jobs = 0, duplicates = 0, paced = 0;
  };
  std::shared_ptr<IngestCounts> ingested = std::make_shared<IngestCounts>();
  // The queue bound the store and the intake were opened with (a reload does not change it).
  uint64_t max_queued_jobs = 0;

  void LogIngestSummary(std::chrono::seconds interval) {
    IntakeStats is = intake->stats();
    uint64_t queued = is.moved_jobs - ingested->moved_jobs;
    uint64_t duplicates = is.duplicates - ingested->duplicates;
    uint64_t paced = is.paced - ingested->paced;
    ingested->moved_jobs = is.moved_jobs;
    ingested->duplicates = is.duplicates;
    ingested->paced = is.paced;
    uint64_t webhooks = ingested->webhooks.exchange(0);
    if (webhooks == 0 && queued == 0 && duplicates == 0) return;
    spdlog::info(
        "alerts_ingested webhooks={} alerts={} queued={} duplicates={} paced={} interval_s={}",
        webhooks, ingested->alerts.exchange(0), queued, duplicates, paced, interval.count());
  }
  std::vector<std::thread> workers;
  std::mutex workers_mu;
  std::condition_variable workers_cv;
  size_t workers_running = 0;

  // Work that may block on disk, off the io threads: reloads (serialized) and audit reads.
  std::thread control;
  std::mutex control_mu;
  std::condition_variable control_cv;
  std::deque<std::function<void()>> control_tasks;
  bool control_stop = false;

  std::unique_ptr<AuditLogWriter> audit;
  std::unique_ptr<AuditApi> audit_api;
  DecisionIdGenerator decision_ids;

  void Post(std::function<void()> task) {
    std::lock_guard<std::mutex> lk(control_mu);
    control_tasks.push_back(std::move(task));
    control_cv.notify_one();
  }

  std::shared_ptr<const RoutingSnapshot> Snapshot() {
    std::lock_guard<std::mutex> lk(snap_mu);
    return snapshot;
  }

  // ---- HTTP ----

  HttpRouteOptions RouteOptions(const Config& c, bool open, bool hmac_applies) const {
    HttpRouteOptions o;
    // With no token configured the routes are open (the config refuses that on non-loopback
    // addresses unless allow_unauthenticated); HttpServer fails closed otherwise.
    o.require_auth = !c.server.auth.bearer_tokens.empty() && !open;
    if (hmac_applies && c.server.auth.hmac) {
      HttpHmacOptions h;
      h.secret = c.server.auth.hmac->secret.Reveal();
      h.header = c.server.auth.hmac->header;
      h.timestamp_header = c.server.auth.hmac->timestamp_header;
      h.max_skew = c.server.auth.hmac->max_skew;
      o.hmac = std::move(h);
    }
    return o;
  }

  struct Route {
    const char* method;
    const char* path;
    enum Kind { kAlerts, kHealth, kMetrics, kReload } kind;
    AlertFormat format = AlertFormat::kAuto;
  };
  static const std::vector<Route>& Routes() {
    static const std::vector<Route> routes = {
        {"POST", "/api/v1/alerts/alertmanager", Route::kAlerts, AlertFormat::kAlertmanager},
        {"POST", "/api/v1/alerts/grafana", Route::kAlerts, AlertFormat::kGrafana},
        {"POST", "/api/v1/alerts", Route::kAlerts, AlertFormat::kGeneric},
        {"GET", "/healthz", Route::kHealth},
        {"GET", "/readyz", Route::kHealth},
        {"GET", "/metrics", Route::kMetrics},
        {"POST", "/-/reload", Route::kReload},
    };
    return routes;
  }
  HttpRouteOptions OptionsFor(const Route& r, const Config& c) const {
    switch (r.kind) {
      case Route::kAlerts: {
        bool hmac = c.server.auth.hmac &&
                    ((r.format == AlertFormat::kGeneric && c.server.auth.hmac->generic) ||
                     (r.format == AlertFormat::kGrafana && c.server.auth.hmac->grafana));
        return RouteOptions(c, false, hmac);
      }
      case Route::kHealth:
        return RouteOptions(c, c.server.auth.open_health, false);
      case Route::kMetrics:
        return RouteOptions(c, c.server.auth.open_metrics, false);
      case Route::kReload:
        return RouteOptions(c, false, false);
    }
    return RouteOptions(c, false, false);
  }

  static std::vector<std::string> Tokens(const Config& c) {
    std::vector<std::string> tokens;
    for (const Secret& s : c.server.auth.bearer_tokens) tokens.push_back(s.Reveal());
    return tokens;
  }

  void HandleAlerts(AlertFormat format, const HttpRequest& req, HttpResponder responder) {
    std::shared_ptr<const RoutingSnapshot> snap = Snapshot();
    const Config& c = *snap->config;
    const char* endpoint = AlertFormatName(format);
    int64_t now = NowNs();
    AlertParseLimits limits;
    limits.max_bytes = c.server.body_limit_bytes;
    limits.max_depth = c.server.json_max_depth;
    Result<std::vector<RoutingJob>> jobs = JobsFromWebhook(req.body, format, limits, c.alerts, now);
    if (!jobs.ok()) {
      metrics->Rejected("invalid_payload");
      spdlog::warn("alert_rejected endpoint={} remote={} status=400 reason=\"{}\"", endpoint,
                   req.remote_address, jobs.error().message);
      responder.Send(HttpResponse::JsonError(400, "invalid_payload", jobs.error().message));
      return;
    }
    size_t alerts = jobs->size();  // one job per alert (a route or a resolve job)
    std::shared_ptr<Metrics> m = metrics;
    std::shared_ptr<IngestCounts> counts = ingested;
    // The answer is 2xx once the webhook is durable in the intake log; it is moved into the
    // queue (and duplicates within the dedup window dropped) right after.
    intake->AppendAsync(
        std::move(*jobs), now, Ns(c.alerts.dedup_window),
        [m, counts, responder, alerts, endpoint](Status st) {
          if (!st.ok()) {
            m->Rejected("store_unavailable");
            spdlog::error("alert_not_queued endpoint={} status=503 reason=\"{}\"", endpoint,
                          st.error().message);
            responder.Send(HttpResponse::JsonError(503, "store_unavailable", st.error().message));
            return;
          }
          m->AlertsReceived(endpoint, alerts);
          counts->webhooks.fetch_add(1, std::memory_order_relaxed);
          counts->alerts.fetch_add(alerts, std::memory_order_relaxed);
          spdlog::debug("alerts_accepted endpoint={} alerts={}", endpoint, alerts);
          HttpResponse ok;
          ok.body = "{\"status\":\"accepted\",\"alerts\":" + std::to_string(alerts) +
                    ",\"jobs\":" + std::to_string(alerts) + "}";
          responder.Send(std::move(ok));
        });
  }

  void HandleHealth(const HttpRequest& req, HttpResponder responder) {
    if (req.path == "/healthz") {
      responder.Send({200, "application/json", "{\"status\":\"ok\"}", {}});
      return;
    }
    StoreStats st = store->stats();
    IntakeStats is = intake->stats();
    std::string why;
    if (stopping) {
      why = "shutting down";
    } else if (!st.last_commit_ok) {
      why = "the store's last commit failed";
    } else if (!is.moving_ok) {
      why = "the store refuses the intake's webhooks";
    } else if (st.queued + is.unmoved_jobs >= max_queued_jobs) {
      why = "the queue is full";
    }
    if (!why.empty()) {
      responder.Send(HttpResponse::JsonError(503, "not_ready", why));
      return;
    }
    responder.Send({200,
                    "application/json",
                    "{\"status\":\"ready\",\"queued\":" + std::to_string(st.queued) + "}",
                    {}});
  }

  void HandleReload(HttpResponder responder) {
    Post([this, responder] {
      Status st = Reload();
      if (st.ok()) {
        responder.Send({200, "application/json", "{\"status\":\"reloaded\"}", {}});
      } else {
        responder.Send(HttpResponse::JsonError(400, "reload_failed", st.error().message));
      }
    });
  }

  void HandleAudit(const HttpRequest& req, HttpResponder responder) {
    // Copy what the task needs: it runs after this handler returned.
    std::string method = req.method, target = req.target;
    std::vector<std::pair<std::string, std::string>> headers = req.headers;
    Post([this, responder, method, target, headers] {
      AuditHttpResponse r = audit_api->Handle(method, target, headers);
      responder.Send({r.status, r.content_type, std::move(r.body), std::move(r.headers)});
    });
  }

  // ---- audit ----

  Status AppendDecisionAudit(const DecisionEvent& e) {
    DecisionAudit a;
    a.id = e.decision_id;
    a.time_ns = e.time_ns;
    a.alert.identity = e.alert.identity;
    a.alert.source = e.alert.source;
    a.alert.name = e.alert.alertname;
    a.alert.status = e.alert.kind == JobKind::kRoute ? "firing" : "resolved";
    a.alert.severity = e.alert.severity;
    a.alert.summary = e.alert.summary;
    a.alert.received_ns = e.alert.received_ns;
    a.alert.starts_at_ns = e.alert.starts_at_ns;
    a.alert.labels.insert(e.alert.labels.begin(), e.alert.labels.end());
    for (const std::string& id : e.identities) {
      if (id != e.alert.identity) a.alert.grouped_identities.push_back(id);
    }
    a.symptom_reason = e.alert.symptom_reason;
    for (const TraceNote& n : e.traces) {
      a.fetch.traces.push_back({n.trace_id, n.origin, e.trace_source, n.used, n.error});
    }
    if (e.search) {
      a.fetch.search =
          AuditTraceSearch{e.trace_source,  e.search->service, e.search->start_ns, e.search->end_ns,
                           e.search->limit, e.search->found,   e.search->error};
    }
    if (e.decision != nullptr) a.decision = *e.decision;
    std::shared_ptr<const RoutingSnapshot> snap = Snapshot();
    for (const PlannedPage& p : e.pages) {
      AuditPlannedPage pp;
      pp.team = p.team;
      pp.dedup_key = p.dedup_key;
      if (snap->config->pager.type == "log") pp.target_kind = "log";
      a.pages.push_back(std::move(pp));
    }
    auto us = [](double seconds) {
      return std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
    };
    a.timings.queue_wait = std::chrono::microseconds(e.queue_wait_ns / 1000);
    a.timings.fetch = us(e.fetch_seconds);
    a.timings.route = us(e.route_seconds);
    a.timings.total = std::chrono::microseconds((e.time_ns - e.alert.received_ns) / 1000);
    Status st = audit->AppendDecision(a);
    if (!st.ok()) {
      spdlog::error("audit_write_failed decision={} reason=\"{}\"", e.decision_id,
                    st.error().message);
    }
    return st;
  }

  // Called by Delivery under its lock (see daemon/audit_delivery.h): the mapping is pure and the
  // append only writes unless audit sync is every-record.
  void AppendDeliveryAudit(const integrations::delivery::DeliveryRecord& r,
                           const integrations::PagerTarget* target) {
    std::optional<DeliveryAudit> a = DeliveryAuditFromRecord(r, target);
    if (!a) return;  // retries: the attempt log is written once, with the final outcome
    if (Status st = audit->AppendDelivery(*a); !st.ok()) {
      spdlog::error("audit_write_failed delivery dedup_key={} reason=\"{}\"", r.dedup_key,
                    st.error().message);
    }
  }

  // ---- reload ----

  Status Reload() {
    (void)notifier.Reloading();
    Result<Loaded> loaded = LoadAll(config_path, http_io->context(), *metrics);
    if (!loaded.ok()) {
      metrics->ConfigReload(false, std::chrono::system_clock::now());
      spdlog::error("reload_failed config={} keeping=previous reason=\"{}\"", config_path,
                    loaded.error().message);
      (void)notifier.Ready("reload failed; running the previous config");
      return loaded.error();
    }
    std::shared_ptr<const RoutingSnapshot> old = Snapshot();
    const Config& was = *old->config;
    const Config& now = *loaded->config;
    std::vector<std::string> restart;
    auto listen_text = [](const Config& c) {
      std::vector<std::string> v;
      for (const ListenAddress& a : c.server.listen) v.push_back(a.text);
      return v;
    };
    if (listen_text(was) != listen_text(now)) restart.push_back("server.listen");
    if (was.server.tls.has_value() != now.server.tls.has_value()) restart.push_back("server.tls");
    if (was.state_dir != now.state_dir) restart.push_back("state_dir");
    // The store and the intake take these when they open.
    if (was.store.max_queued_jobs != now.store.max_queued_jobs) {
      restart.push_back("store.max_queued_jobs");
    }
    if (was.store.pace_above_jobs != now.store.pace_above_jobs ||
        was.store.pace_max_wait != now.store.pace_max_wait) {
      restart.push_back("store.pace_above_jobs/pace_max_wait");
    }
    if (was.workers.count != now.workers.count) restart.push_back("workers.count");
    if (was.pager.type != now.pager.type) restart.push_back("pager");
    for (std::string& k : PagingRestartKeys(was.paging, now.paging))
      restart.push_back(std::move(k));
    if (was.audit.path != now.audit.path) restart.push_back("audit");
    if (!restart.empty()) {
      spdlog::warn("reload_needs_restart keys={} (kept as they were)", Join(restart));
    }
    for (const std::string& note : loaded->registry.notes) {
      spdlog::warn("registry_note {}", note);
    }
    auto snap = std::make_shared<RoutingSnapshot>();
    snap->config = loaded->config;
    snap->registry = loaded->registry.registry;
    snap->trace_source = loaded->source;
    snap->trace_collect = loaded->collect;
    snap->page_options.trace_url_template = now.paging.trace_url_template;
    // Targets are judged against the pagers actually running (`was`'s, kept until a restart).
    Config effective = now;
    effective.pager = was.pager;
    effective.paging.pagers = was.paging.pagers;
    std::vector<std::string> problems;
    delivery->SetDirectory(std::make_shared<const integrations::delivery::TargetDirectory>(
        BuildTargetDirectory(effective, *snap->registry, &problems)));
    for (const std::string& p : problems) spdlog::warn("pager_target_unusable {}", p);
    http->SetBearerTokens(Tokens(now));
    for (const Route& r : Routes()) http->SetRouteOptions(r.method, r.path, OptionsFor(r, now));
    for (const AuditApi::Route& r : AuditApi::Routes()) {
      for (const char* method : {"GET", "HEAD"}) {
        if (!r.prefix) http->SetRouteOptions(method, r.path, RouteOptions(now, false, false));
      }
    }
    spdlog::set_level(SpdLevel(now.log_level));
    {
      std::lock_guard<std::mutex> lk(snap_mu);
      snapshot = std::move(snap);
    }
    metrics->ConfigReload(true, std::chrono::system_clock::now());
    spdlog::info("reloaded config={} registry={} teams={} services={}", config_path,
                 now.registry.path, loaded->registry.registry->teams().size(),
                 loaded->registry.registry->services().size());
    (void)notifier.Ready("reloaded");
    return OkStatus();
  }

  void ControlLoop() {
    std::unique_lock<std::mutex> lk(control_mu);
    for (;;) {
      control_cv.wait(lk, [&] { return control_stop || !control_tasks.empty(); });
      if (control_stop) return;
      std::function<void()> task = std::move(control_tasks.front());
      control_tasks.pop_front();
      lk.unlock();
      task();
      lk.lock();
    }
  }

  // ---- workers ----

  void WorkerLoop(int index) {
    for (;;) {
      uint64_t epoch = store->WorkEpoch();
      if (stopping) break;
      std::shared_ptr<const RoutingSnapshot> snap = Snapshot();
      Result<std::optional<Claim>> claim =
          store->ClaimNext(NowNs(), snap->config->workers.max_group);
      // Jobs are set aside only by a claim (ClaimNext): counted at once.
      metrics->SetJobsDead(store->stats().dead_jobs);
      if (!claim.ok()) {
        spdlog::error("claim_failed worker={} reason=\"{}\"", index, claim.error().message);
        store->WaitForWork(epoch, std::chrono::seconds(1));
        continue;
      }
      if (!claim->has_value()) {
        // Released jobs become ready at their not_before without a commit to wake us: poll.
        store->WaitForWork(epoch, std::chrono::seconds(1));
        continue;
      }
      const Claim& c = **claim;
      Result<ProcessOutcome> r = Error::Internal("not run");
      try {
        r = processor->Process(c, *snap);
      } catch (const std::exception& e) {
        r = Error::Internal(std::string("exception: ") + e.what());
        std::vector<int64_t> ids;
        for (const ClaimedJob& j : c.jobs) ids.push_back(j.id);
        (void)store->Release(ids, NowNs() + Ns(snap->config->workers.retry_delay));
      }
      if (!r.ok()) {
        metrics->Decision(DecisionOutcome::kError);
        spdlog::error("routing_failed worker={} storm_key=\"{}\" jobs={} reason=\"{}\"", index,
                      c.storm_key, c.jobs.size(), r.error().message);
      }
      // A storm's group is the daemon's largest allocation, freed all at once here: give its
      // pages back now rather than after the allocator's decay time (allocator.h). Not the
      // acknowledgement arena's: the next webhooks take those pages again, and a large group
      // comes from the queue, parsed on the store's and the workers' threads, not there.
      size_t jobs = c.jobs.size();
      claim = std::optional<Claim>();
      if (jobs >= kReleaseMemoryAfterJobs) {
        ReleaseFreedMemory(FreedMemory::kOutsideAcknowledgementArena);
      }
    }
    std::lock_guard<std::mutex> lk(workers_mu);
    --workers_running;
    workers_cv.notify_all();
  }

  void OnDecision(const DecisionEvent& e) {
    if (e.kind == "routed") metrics->Decision(DecisionOutcome::kRouted);
    if (e.kind == "fallback") metrics->Decision(DecisionOutcome::kFallback);
    if (e.kind == "unrouted") metrics->Decision(DecisionOutcome::kError);
    if (e.decision != nullptr) {
      metrics->ObserveTraceFetch(std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::duration<double>(e.fetch_seconds)));
      metrics->ObserveRouting(std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::duration<double>(e.route_seconds)));
    }
    if (e.kind == "unrouted") {
      spdlog::error(
          "nobody_paged decision={} service={} symptom={} alerts={} reason=\"no team found: "
          "the registry knows no owner and has no default_team\"",
          e.decision_id, e.alerting_service, e.symptom, e.identities.size());
      return;
    }
    spdlog::info(
        "decision id={} kind={} service={} symptom={} teams={} alerts={} traces_used={} "
        "traces_asked={} fetch_ms={:.1f} route_ms={:.1f} queue_wait_ms={:.1f}{}",
        e.decision_id, e.kind, e.alerting_service, e.symptom, Join(e.teams), e.identities.size(),
        e.traces_used.size(), e.traces_asked.size(), e.fetch_seconds * 1e3, e.route_seconds * 1e3,
        static_cast<double>(e.queue_wait_ns) / 1e6,
        e.fetch_errors.empty() ? std::string()
                               : " fetch_errors=\"" + Join(e.fetch_errors, "; ") + "\"");
  }
};

ServerApp::ServerApp(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ServerApp::~ServerApp() {
  Impl& a = *impl_;
  a.stopping = true;
  if (a.http) a.http->Abort();
  if (a.store) a.store->Shutdown();
  for (std::thread& t : a.workers) {
    if (t.joinable()) t.join();
  }
  {
    std::lock_guard<std::mutex> lk(a.control_mu);
    a.control_stop = true;
    a.control_cv.notify_all();
  }
  if (a.control.joinable()) a.control.join();
  a.http.reset();
  a.intake.reset();
  a.delivery_runner.reset();
  a.processor.reset();
  a.delivery.reset();
  // The pagers' clients shut down (sends in progress complete as failures into Delivery's
  // orphaned inbox). The trace source's client shuts down when the last snapshot holding it
  // goes. The io thread then runs what is left (the shutdowns, cancelled calls' callbacks) and
  // stops. Timers first.
  a.http_pagers = integrations::PagerSet{};
  {
    std::lock_guard<std::mutex> lk(a.snap_mu);
    a.snapshot.reset();
  }
  a.trace_scheduler.reset();
  a.http_io.reset();
}

void ServerApp::RequestStop() { ::kill(::getpid(), SIGTERM); }

Result<std::unique_ptr<ServerApp>> ServerApp::Start(const std::string& config_path) {
  // Every thread created from here on inherits the blocked set; Run takes them synchronously.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto impl = std::make_unique<Impl>();
  Impl& a = *impl;
  a.config_path = config_path;
  a.metrics = std::make_shared<Metrics>(TRACEPAGER_VERSION);
  a.http_io = std::make_unique<integrations::http::IoThread>(1);
  a.trace_scheduler = std::make_unique<integrations::AsioScheduler>(a.http_io->context());

  Result<Loaded> loaded = LoadAll(config_path, a.http_io->context(), *a.metrics);
  if (!loaded.ok()) return loaded.error();
  const Config& c = *loaded->config;
  spdlog::set_level(SpdLevel(c.log_level));
  for (const std::string& note : loaded->registry.notes) spdlog::warn("registry_note {}", note);

  StoreOptions so;
  so.dir = c.state_dir;
  so.max_queued_jobs = c.store.max_queued_jobs;
  so.max_bytes = c.store.max_bytes;
  so.commit_max_batch = c.store.commit_max_batch;
  so.commit_max_delay = c.store.commit_max_delay;
  so.busy_timeout = c.store.busy_timeout;
  // The jobs handed straight to a worker keep their payload in the intake log (store.h).
  so.intake_payload_reader = [dir = c.state_dir](const IntakeLogRef& ref) {
    return ReadIntakeJobPayload(dir, ref);
  };
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  if (!store.ok()) return store.error();
  a.store = std::move(*store);
  StoreStats st = a.store->stats();
  spdlog::info("store_opened path={} queued={} resumed={}", a.store->path(), st.queued,
               st.resumed_at_open);
  IntakeOptions io;
  io.dir = c.state_dir;
  io.max_queued_jobs = a.max_queued_jobs = c.store.max_queued_jobs;
  io.pace_above_jobs = c.store.pace_above_jobs.value_or(c.store.max_queued_jobs / 2);
  io.pace_max_wait = c.store.pace_max_wait;
  Result<std::unique_ptr<Intake>> intake = Intake::Open(io, a.store.get());
  if (!intake.ok()) return intake.error();
  a.intake = std::move(*intake);
  IntakeStats is = a.intake->stats();
  spdlog::info("intake_opened webhooks_to_queue={} jobs_to_queue={} torn_tails={}",
               is.replayed_at_open, is.replayed_jobs_at_open, is.torn_tails_at_open);

  AuditLogOptions ao;
  ao.path = c.audit.path;
  ao.sync = c.audit.sync_every_record ? AuditLogOptions::Sync::kEveryRecord
                                      : AuditLogOptions::Sync::kBatched;
  ao.sync_interval = c.audit.sync_interval;
  ao.sync_every_records = c.audit.sync_every_records;
  ao.max_file_bytes = c.audit.max_file_bytes;
  ao.max_files = c.audit.max_files;
  ao.max_total_bytes = c.audit.max_total_bytes;
  std::error_code mkdir_error;
  std::filesystem::create_directories(std::filesystem::path(ao.path).parent_path(), mkdir_error);
  Result<std::unique_ptr<AuditLogWriter>> audit = AuditLogWriter::Open(ao);
  if (!audit.ok()) return audit.error();
  a.audit = std::move(*audit);
  a.audit_api = std::make_unique<AuditApi>(AuditApiOptions{ao.path, 50, 1000, nullptr});

  Result<std::unique_ptr<SqliteOutbox>> outbox =
      SqliteOutbox::Open((std::filesystem::path(c.state_dir) / "outbox.db").string());
  if (!outbox.ok()) return outbox.error();
  a.outbox = std::move(*outbox);

  std::map<std::string, integrations::Pager*, std::less<>> pagers;
  if (const auto* log = std::get_if<LogPagerConfig>(&c.pager.settings); log != nullptr) {
    Result<std::unique_ptr<integrations::LogPager>> pager = integrations::LogPager::Open(log->path);
    if (!pager.ok()) return pager.error();
    a.log_pager = std::move(*pager);
    pagers["log"] = a.log_pager.get();
  }
  if (c.pager.type == "registry") {
    Result<integrations::PagerSet> made =
        integrations::MakeHttpPagers(a.http_io->context(), c.paging.pagers);
    if (!made.ok()) return made.error();
    a.http_pagers = std::move(*made);
    for (const auto& [kind, pager] : a.http_pagers.ByKind()) pagers[kind] = pager;
  }
  std::vector<std::string> problems;
  auto directory = std::make_shared<const integrations::delivery::TargetDirectory>(
      BuildTargetDirectory(c, *loaded->registry.registry, &problems));
  for (const std::string& p : problems) spdlog::warn("pager_target_unusable {}", p);
  integrations::delivery::DeliveryHooks hooks;
  std::shared_ptr<Metrics> metrics = a.metrics;
  hooks.count = [metrics](std::string_view result, std::string_view) { metrics->Page(result); };
  Impl* self = impl.get();
  hooks.record = [self](const integrations::delivery::DeliveryRecord& r,
                        const integrations::PagerTarget* target) {
    self->AppendDeliveryAudit(r, target);
  };
  a.delivery = std::make_unique<Delivery>(a.outbox.get(), pagers, directory, c.paging.delivery,
                                          &a.clock, std::move(hooks));
  if (Status rs = a.delivery->Recover(); !rs.ok()) return rs.error();
  a.delivery_runner = std::make_unique<DeliveryRunner>(a.delivery.get(), &a.clock);

  auto snap = std::make_shared<RoutingSnapshot>();
  snap->config = loaded->config;
  snap->registry = loaded->registry.registry;
  snap->trace_source = loaded->source;
  snap->trace_collect = loaded->collect;
  snap->page_options.trace_url_template = c.paging.trace_url_template;
  a.snapshot = snap;
  Impl* raw = impl.get();
  ProcessorHooks processor_hooks;
  processor_hooks.on_decision = [raw](const DecisionEvent& e) { raw->OnDecision(e); };
  processor_hooks.record = [raw](const DecisionEvent& e) { return raw->AppendDecisionAudit(e); };
  processor_hooks.decision_id = [raw](int64_t now) { return raw->decision_ids.Next(now); };
  a.processor = std::make_unique<JobProcessor>(a.store.get(), a.delivery.get(), NowNs,
                                               std::move(processor_hooks), a.trace_scheduler.get());

  a.workers_running = c.workers.count;
  for (uint32_t i = 0; i < c.workers.count; ++i) {
    a.workers.emplace_back([raw, i] {
      pthread_setname_np(pthread_self(), "tp-worker");
      raw->WorkerLoop(static_cast<int>(i));
    });
  }
  a.control = std::thread([raw] {
    pthread_setname_np(pthread_self(), "tp-control");
    raw->ControlLoop();
  });

  HttpServerOptions ho;
  for (const ListenAddress& l : c.server.listen) {
    ho.listeners.push_back({l.host, l.port, c.server.tls.has_value()});
  }
  if (c.server.tls) ho.tls = HttpTlsFiles{c.server.tls->cert_file, c.server.tls->key_file};
  ho.body_limit = c.server.body_limit_bytes;
  ho.header_timeout = c.server.header_timeout;
  ho.body_timeout = c.server.body_timeout;
  ho.idle_timeout = c.server.idle_timeout;
  ho.max_connections = c.server.max_connections;
  ho.io_threads = 2;
  ho.on_io_thread_start = [] { (void)UseAcknowledgementArena(); };
  ho.bearer_tokens = Impl::Tokens(c);
  ho.on_reject = [metrics](HttpRejectReason reason) { metrics->Rejected(reason); };
  a.http = std::make_unique<HttpServer>(std::move(ho));
  for (const Impl::Route& r : Impl::Routes()) {
    HttpHandler handler;
    switch (r.kind) {
      case Impl::Route::kAlerts: {
        AlertFormat format = r.format;
        handler = [raw, format](const HttpRequest& req, HttpResponder resp) {
          raw->HandleAlerts(format, req, std::move(resp));
        };
        break;
      }
      case Impl::Route::kHealth:
        handler = [raw](const HttpRequest& req, HttpResponder resp) {
          raw->HandleHealth(req, std::move(resp));
        };
        break;
      case Impl::Route::kMetrics:
        handler = MetricsHttpHandler(a.metrics);
        break;
      case Impl::Route::kReload:
        handler = [raw](const HttpRequest&, HttpResponder resp) {
          raw->HandleReload(std::move(resp));
        };
        break;
    }
    a.http->Handle(r.method, r.path, a.OptionsFor(r, c), std::move(handler));
  }
  // The audit log's API and page, with the webhooks' auth; GET /api/v1/decisions/{id} is a
  // prefix route.
  for (const AuditApi::Route& r : AuditApi::Routes()) {
    for (const char* method : {"GET", "HEAD"}) {
      auto handler = [raw](const HttpRequest& req, HttpResponder resp) {
        raw->HandleAudit(req, std::move(resp));
      };
      if (r.prefix) {
        a.http->HandlePrefix(method, r.path, a.RouteOptions(c, false, false), std::move(handler));
      } else {
        a.http->Handle(method, r.path, a.RouteOptions(c, false, false), std::move(handler));
      }
    }
  }
  if (Status hs = a.http->Start(); !hs.ok()) return hs.error();
  std::vector<std::string> bound;
  for (const HttpBoundListener& l : a.http->BoundListeners()) {
    bool v6 = l.host.find(':') != std::string::npos;
    bound.push_back((v6 ? "[" + l.host + "]" : l.host) + ":" + std::to_string(l.port));
  }
  a.metrics->ConfigReload(true, std::chrono::system_clock::now());
  spdlog::info(
      "serve_ready listen={} config={} state_dir={} workers={} trace_source={} pager={} "
      "pagers={} malloc=\"{}\"",
      Join(bound), config_path, c.state_dir, c.workers.count, c.trace_source.type, c.pager.type,
      PagerKinds(c), AllocatorInUse());
  (void)a.notifier.Ready("serving on " + Join(bound, " "));
  return std::unique_ptr<ServerApp>(new ServerApp(std::move(impl)));
}

int ServerApp::Run() {
  Impl& a = *impl_;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  std::optional<std::chrono::microseconds> watchdog = a.notifier.WatchdogInterval();
  std::chrono::milliseconds tick(1000);
  if (watchdog) {
    tick = std::min(tick, std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog / 2));
  }
  auto last_maintenance = std::chrono::steady_clock::now();
  auto last_ingest_summary = last_maintenance;
  auto last_release = last_maintenance;
  for (;;) {
    timespec ts{static_cast<time_t>(tick.count() / 1000),
                static_cast<long>((tick.count() % 1000) * 1'000'000)};
    int sig = ::sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("stopping signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (sig == SIGHUP) {
      spdlog::info("reload_requested by=SIGHUP");
      Impl* raw = &a;
      a.Post([raw] { (void)raw->Reload(); });
    }
    // Housekeeping on every wake-up: gauges, the watchdog, and now and then the store.
    StoreStats st = a.store->stats();
    IntakeStats is = a.intake->stats();
    a.metrics->SetJobsQueued(static_cast<int64_t>(st.queued - st.claimed + is.unmoved_jobs));
    a.metrics->SetJobsInFlight(static_cast<int64_t>(st.claimed));
    a.metrics->SetPacing(is.paced, static_cast<int64_t>(is.pacing_now));
    if (watchdog) (void)a.notifier.Watchdog();
    // The rest of the daemon's freed memory (the acknowledgement arena's, the store writer's),
    // given back once a second; a worker gives back a large group's at once (WorkerLoop).
    if (std::chrono::steady_clock::now() - last_release >= std::chrono::seconds(1)) {
      last_release = std::chrono::steady_clock::now();
      ReleaseFreedMemory(FreedMemory::kEverywhere);
    }
    if (std::chrono::steady_clock::now() - last_ingest_summary >= kIngestSummaryInterval) {
      last_ingest_summary = std::chrono::steady_clock::now();
      a.LogIngestSummary(kIngestSummaryInterval);
    }
    if (std::chrono::steady_clock::now() - last_maintenance > std::chrono::minutes(1)) {
      last_maintenance = std::chrono::steady_clock::now();
      std::shared_ptr<const RoutingSnapshot> snap = a.Snapshot();
      int64_t now = NowNs();
      Status m = a.store->Maintain(now - Ns(snap->config->alerts.dedup_window),
                                   now - Ns(snap->config->store.decision_retention));
      if (!m.ok()) spdlog::warn("store_maintenance_failed reason=\"{}\"", m.error().message);
    }
  }

  // Drain: stop intake, let the workers finish what they hold, up to the deadline.
  a.stopping = true;
  std::shared_ptr<const RoutingSnapshot> snap = a.Snapshot();
  auto deadline = std::chrono::steady_clock::now() + snap->config->workers.drain_deadline;
  (void)a.notifier.Stopping("draining");
  a.http->Stop();
  a.store->Shutdown();
  // Webhooks acknowledged and not in the queue yet go in now (the store takes them after
  // Shutdown), so that the queue the next start finds is complete; whatever does not make it by
  // the deadline stays in the intake log and is queued at the next start.
  a.intake->Close();
  if (!a.intake->WaitMoved(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()))) {
    spdlog::warn("intake_not_emptied jobs_left_in_log={} (queued at next start)",
                 a.intake->stats().unmoved_jobs);
  }
  bool drained;
  {
    std::unique_lock<std::mutex> lk(a.workers_mu);
    drained = a.workers_cv.wait_until(lk, deadline, [&] { return a.workers_running == 0; });
  }
  // Pages already handed to delivery get the rest of the deadline to go out; what does not is
  // in the outbox and is sent at the next start.
  // (The runner thread polls; this only watches, so a short fixed interval is fine.)
  while (drained && a.delivery->pending() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto left = deadline - std::chrono::steady_clock::now();
  (void)a.http->WaitDrained(std::max(std::chrono::milliseconds(0),
                                     std::chrono::duration_cast<std::chrono::milliseconds>(left)));
  StoreStats st = a.store->stats();
  if (!drained) {
    // Workers still inside a claim (a slow trace backend): their jobs stay claimed in the
    // store and are resumed at the next start. Nothing durable is pending in this process.
    spdlog::warn("drain_deadline_reached jobs_left={} claimed={} (resumed at next start)",
                 st.queued, st.claimed);
    spdlog::default_logger()->flush();
    std::_Exit(0);
  }
  a.LogIngestSummary(std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::steady_clock::now() - last_ingest_summary));
  spdlog::info("stopped jobs_left={} pages_pending={}", st.queued, a.delivery->pending());
  return 0;
}

}  // namespace tracepager::daemon
