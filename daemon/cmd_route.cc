// `tracepager route`: the routing engine offline. Traces in (files in any supported format),
// the decision out, exactly as the daemon would decide it.
//
// With --alert, a saved webhook body (Alertmanager, Grafana or generic) is replayed through the
// daemon's own steps: the same job derivation (daemon/alert.h, with the config's `alerts` rules),
// the same grouping (route jobs of one storm key share one decision), the same trace collection
// (integrations::CollectTraces: carried ids first, then a search of the alerting service's
// failing or slowest traces in the alert's window) over the named trace files, and the same
// routing options and registry as the config gives the daemon. What cannot be replayed offline:
// storms and repeats against pages already open (that memory lives in the daemon's store), and
// 404 retries (files do not fill in later).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "daemon/alert.h"
#include "daemon/commands.h"
#include "daemon/config.h"
#include "daemon/file_util.h"
#include "daemon/job.h"
#include "daemon/registry_loader.h"
#include "integrations/file/file_trace_source.h"
#include "integrations/scheduler.h"
#include "integrations/trace_collector.h"
#include "routing/decision_format.h"
#include "routing/registry.h"
#include "routing/route.h"
#include "routing/trace_reader.h"

namespace tracepager::daemon {
namespace {

struct RouteArgs {
  std::string service;
  std::string symptom = "errors";
  std::string registry_path;
  std::string format = "text";
  std::vector<std::string> disable;
  double timeout_fraction = 0.9;
  bool page_fallout = false;
  std::string alert_path;
  std::string config_path;
  std::vector<std::string> trace_files;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "tracepager route: %s\n", message.c_str());
  return 2;
}

Result<routing::Registry> LoadRegistryFile(const std::string& path) {
  auto text = ReadFileCapped(path, 64u << 20);
  if (!text) return text.error();
  return routing::Registry::FromYaml(*text, path);
}

// The command line's walk switches on top of `options` (the defaults, or the config's).
Status ApplyWalkFlags(const RouteArgs& args, const CLI::App& cmd, routing::WalkOptions* options) {
  if (cmd.count("--timeout-fraction") > 0) options->timeout_fraction = args.timeout_fraction;
  if (args.page_fallout) options->page_fallout = true;
  for (const std::string& name : args.disable) {
    if (name == "timeout_masking") {
      options->timeout_masking = false;
    } else if (name == "sibling_fallout") {
      options->sibling_fallout = false;
    } else if (name == "retries") {
      options->retries = false;
    } else if (name == "async") {
      options->async = false;
    } else if (name == "uninstrumented") {
      options->uninstrumented = false;
    } else {
      return Error::InvalidInput("--disable " + name +
                                 ": unknown refinement (known: timeout_masking, sibling_fallout, "
                                 "retries, async, uninstrumented)");
    }
  }
  return OkStatus();
}

int RunRoute(const RouteArgs& args, const CLI::App& cmd) {
  routing::ReadLimits limits;
  routing::Registry registry;
  if (!args.registry_path.empty()) {
    auto loaded = LoadRegistryFile(args.registry_path);
    if (!loaded) return Fail(loaded.error().message);
    registry = std::move(loaded).value();
  }

  routing::WalkOptions options;
  options.timeout_fraction = args.timeout_fraction;
  if (Status st = ApplyWalkFlags(args, cmd, &options); !st.ok()) return Fail(st.error().message);

  std::vector<routing::Trace> traces;
  for (const std::string& path : args.trace_files) {
    auto bytes = ReadFileCapped(path, limits.max_bytes);
    if (!bytes) return Fail(bytes.error().message);
    auto read = routing::ReadTraces(*bytes, limits);
    if (!read) return Fail(path + ": " + read.error().message);
    for (routing::Trace& t : read->traces) {
      for (const std::string& w : t.warnings) {
        std::fprintf(stderr, "tracepager route: %s: trace %s: %s\n", path.c_str(),
                     t.trace_id.c_str(), w.c_str());
      }
      traces.push_back(std::move(t));
    }
  }

  routing::RouteRequest request;
  request.alerting_service = args.service;
  request.symptom =
      args.symptom == "latency" ? routing::Symptom::kLatency : routing::Symptom::kErrors;
  routing::Decision decision = routing::Route(traces, request, registry, options);
  std::string out = args.format == "json" ? routing::DecisionToJson(decision, true) + "\n"
                                          : routing::DecisionToText(decision);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

// One decision of a replay: the route jobs of one storm key, as the daemon claims them together.
struct ReplayGroup {
  std::vector<const RoutingJob*> jobs;
};

std::string TraceNotesText(const integrations::CollectAudit& audit) {
  std::string out;
  for (const integrations::TraceOutcome& t : audit.traces) {
    out += "  trace " + t.trace_id + " (" + integrations::TraceOutcomeOriginName(t.origin) +
           "): " + integrations::TraceOutcomeStatusName(t.status);
    if (!t.reason.empty()) out += ": " + t.reason;
    out += "\n";
  }
  if (audit.searched) {
    out += "  search: " + audit.search + ": ";
    out += audit.search_error.empty() ? std::to_string(audit.search_hits) + " hit(s)"
                                      : "failed: " + audit.search_error;
    out += "\n";
  }
  return out;
}

void WriteAuditJson(const integrations::CollectAudit& audit,
                    rapidjson::Writer<rapidjson::StringBuffer>* w) {
  w->StartObject();
  w->Key("source");
  w->String(audit.source);
  w->Key("traces");
  w->StartArray();
  for (const integrations::TraceOutcome& t : audit.traces) {
    w->StartObject();
    w->Key("trace_id");
    w->String(t.trace_id);
    w->Key("origin");
    w->String(integrations::TraceOutcomeOriginName(t.origin));
    w->Key("status");
    w->String(integrations::TraceOutcomeStatusName(t.status));
    if (!t.reason.empty()) {
      w->Key("reason");
      w->String(t.reason);
    }
    w->EndObject();
  }
  w->EndArray();
  if (audit.searched) {
    w->Key("search");
    w->String(audit.search);
    w->Key("search_hits");
    w->Uint64(audit.search_hits);
    if (!audit.search_error.empty()) {
      w->Key("search_error");
      w->String(audit.search_error);
    }
  }
  w->EndObject();
}

int RunReplay(const RouteArgs& args, const CLI::App& cmd) {
  // What the daemon would be configured with: the config file's, else the embedded defaults.
  AlertRules rules = DefaultAlertRules();
  routing::WalkOptions options;
  size_t max_traces = 20;
  std::chrono::milliseconds timeout{10'000};
  std::shared_ptr<const routing::Registry> registry = std::make_shared<routing::Registry>();
  std::string trace_dir;
  if (!args.config_path.empty()) {
    Result<Config> config = LoadConfig(args.config_path);
    if (!config.ok()) return Fail(config.error().message);
    rules = config->alerts;
    options = config->routing.walk;
    max_traces = config->routing.max_traces;
    timeout = config->trace_source.timeout;
    if (args.registry_path.empty()) {
      Result<LoadedRegistry> loaded = LoadRegistry(config->registry, false);
      if (!loaded.ok()) return Fail(loaded.error().message);
      registry = loaded->registry;
    }
    if (const auto* file = std::get_if<FileTraceSourceConfig>(&config->trace_source.settings)) {
      trace_dir = file->dir;
    }
  }
  if (!args.registry_path.empty()) {
    auto loaded = LoadRegistryFile(args.registry_path);
    if (!loaded) return Fail(loaded.error().message);
    registry = std::make_shared<routing::Registry>(std::move(loaded).value());
  }
  if (Status st = ApplyWalkFlags(args, cmd, &options); !st.ok()) return Fail(st.error().message);
  if (args.trace_files.empty() && trace_dir.empty()) {
    return Fail(
        "--alert needs TRACE_FILE arguments, or a --config whose trace_source is a file "
        "directory");
  }

  auto body = ReadFileCapped(args.alert_path, AlertParseLimits{}.max_bytes);
  if (!body) return Fail(body.error().message);
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  Result<std::vector<RoutingJob>> jobs =
      JobsFromWebhook(*body, AlertFormat::kAuto, AlertParseLimits{}, rules, now_ns);
  if (!jobs.ok()) return Fail(args.alert_path + ": " + jobs.error().message);

  std::shared_ptr<integrations::FileTraceSource> source;
  if (!args.trace_files.empty()) {
    source = integrations::FileTraceSource::LoadFiles(args.trace_files);
  } else {
    Result<std::shared_ptr<integrations::FileTraceSource>> loaded =
        integrations::FileTraceSource::Load({trace_dir, 64u << 20});
    if (!loaded.ok()) return Fail(loaded.error().message);
    source = std::move(*loaded);
  }
  for (const std::string& w : source->warnings()) {
    std::fprintf(stderr, "tracepager route: %s\n", w.c_str());
  }

  std::vector<ReplayGroup> groups;
  std::map<std::string, size_t> group_of;
  std::vector<const RoutingJob*> resolves;
  for (const RoutingJob& job : *jobs) {
    if (job.kind == JobKind::kResolve) {
      resolves.push_back(&job);
      continue;
    }
    auto [it, fresh] = group_of.emplace(job.storm_key, groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].jobs.push_back(&job);
  }

  const bool json = args.format == "json";
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  std::string text;
  w.StartObject();
  w.Key("decisions");
  w.StartArray();
  integrations::ManualScheduler scheduler;  // the file source answers at once: nothing waits
  for (const ReplayGroup& group : groups) {
    const RoutingJob& first = *group.jobs.front();
    integrations::CollectRequest request;
    request.query.service = first.alerting_service;
    request.query.start_ns = first.window_start_ns;
    request.query.end_ns = first.window_end_ns;
    for (const RoutingJob* job : group.jobs) {
      for (const std::string& id : job->trace_ids) request.trace_ids.push_back(id);
      request.query.start_ns = std::min(request.query.start_ns, job->window_start_ns);
      request.query.end_ns = std::max(request.query.end_ns, job->window_end_ns);
    }
    request.query.order = first.symptom == routing::Symptom::kLatency
                              ? integrations::TraceQuery::Order::kSlowestFirst
                              : integrations::TraceQuery::Order::kErrorsFirst;
    integrations::CollectOptions collect;
    collect.max_traces = max_traces;
    collect.total_timeout = timeout;
    collect.not_found_retries = 0;
    std::optional<integrations::CollectResult> collected;
    integrations::CollectTraces(source, request, collect, scheduler,
                                [&](integrations::CollectResult r) { collected = std::move(r); });
    if (!collected) return Fail("internal: the file trace source did not answer at once");

    routing::RouteRequest route_request;
    route_request.alerting_service = first.alerting_service;
    route_request.symptom = first.symptom;
    routing::Decision decision =
        routing::Route(collected->traces, route_request, *registry, options);

    if (json) {
      w.StartObject();
      w.Key("alerts");
      w.StartArray();
      for (const RoutingJob* job : group.jobs) {
        w.StartObject();
        w.Key("identity");
        w.String(job->identity);
        w.Key("alertname");
        w.String(job->alertname);
        w.EndObject();
      }
      w.EndArray();
      w.Key("storm_key");
      w.String(first.storm_key);
      w.Key("alerting_service");
      w.String(first.alerting_service);
      w.Key("symptom");
      w.String(SymptomText(first.symptom));
      w.Key("symptom_reason");
      w.String(first.symptom_reason);
      w.Key("collection");
      WriteAuditJson(collected->audit, &w);
      w.Key("decision");
      std::string d = routing::DecisionToJson(decision);
      w.RawValue(d.data(), d.size(), rapidjson::kObjectType);
      w.EndObject();
    } else {
      text += "alert " + (first.alertname.empty() ? first.identity : first.alertname) + " (" +
              first.identity + ")";
      if (group.jobs.size() > 1) {
        text += " and " + std::to_string(group.jobs.size() - 1) +
                " more of the same service and symptom (one decision)";
      }
      text += "\n  alerting service: " +
              (first.alerting_service.empty() ? std::string("(none)") : first.alerting_service) +
              (first.service_label.empty() ? "" : " (label " + first.service_label + ")") +
              "; symptom: " + SymptomText(first.symptom) +
              (first.symptom_reason.empty() ? "" : " (" + first.symptom_reason + ")") + "\n";
      text += TraceNotesText(collected->audit);
      text += routing::DecisionToText(decision);
      text += "\n";
    }
  }
  w.EndArray();
  w.Key("resolves");
  w.StartArray();
  for (const RoutingJob* job : resolves) {
    w.String(job->identity);
    text += "resolve " + (job->alertname.empty() ? job->identity : job->alertname) + " (" +
            job->identity + "): the daemon resolves whatever it paged for this alert\n";
  }
  w.EndArray();
  w.EndObject();
  if (groups.empty() && resolves.empty()) text += "the webhook holds no alert\n";
  std::string out = json ? std::string(buffer.GetString(), buffer.GetSize()) + "\n" : text;
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

void AddRouteCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RouteArgs>();
  auto* cmd = app.add_subcommand(
      "route", "Route traces offline: print which team the alert would page, and why");
  cmd->add_option("--service", args->service,
                  "The alerting service (default: each trace's root span service)");
  cmd->add_option("--symptom", args->symptom, "errors or latency")
      ->check(CLI::IsMember({"errors", "latency"}));
  cmd->add_option("--registry", args->registry_path, "Ownership registry YAML")
      ->check(CLI::ExistingFile);
  cmd->add_option("--format", args->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--disable", args->disable,
                  "Switch off a refinement (timeout_masking, sibling_fallout, retries, async, "
                  "uninstrumented); repeatable");
  cmd->add_option("--timeout-fraction", args->timeout_fraction,
                  "Child/parent duration ratio that means the parent gave up waiting")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--page-fallout", args->page_fallout, "Also page the owners of fallout culprits");
  auto* alert = cmd->add_option("--alert", args->alert_path,
                                "Replay a saved webhook body (Alertmanager, Grafana or generic) "
                                "as the daemon would route it")
                    ->check(CLI::ExistingFile);
  cmd->add_option("--config", args->config_path,
                  "With --alert: the daemon config whose alert rules, routing options, registry "
                  "(and file trace directory) to use")
      ->check(CLI::ExistingFile)
      ->needs(alert);
  cmd->get_option("--service")->excludes(alert);
  cmd->get_option("--symptom")->excludes(alert);
  cmd->add_option("TRACE_FILE", args->trace_files, "Trace JSON files (Jaeger, OTLP/Tempo, Zipkin)")
      ->check(CLI::ExistingFile);
  cmd->callback([args, exit_code, cmd] {
    if (!args->alert_path.empty()) {
      *exit_code = RunReplay(*args, *cmd);
    } else if (args->trace_files.empty()) {
      *exit_code = Fail("TRACE_FILE is required (or --alert FILE with --config)");
    } else {
      *exit_code = RunRoute(*args, *cmd);
    }
  });
}

}  // namespace tracepager::daemon
