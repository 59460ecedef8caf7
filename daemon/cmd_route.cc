// `tracepager route`: the routing engine offline. Traces in (files in any supported format),
// the decision out, exactly as the daemon would decide it.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "daemon/commands.h"
#include "daemon/file_util.h"
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
  std::vector<std::string> trace_files;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "tracepager route: %s\n", message.c_str());
  return 2;
}

int RunRoute(const RouteArgs& args) {
  routing::ReadLimits limits;
  routing::Registry registry;
  if (!args.registry_path.empty()) {
    auto text = ReadFileCapped(args.registry_path, 64u << 20);
    if (!text) return Fail(text.error().message);
    auto loaded = routing::Registry::FromYaml(*text, args.registry_path);
    if (!loaded) return Fail(loaded.error().message);
    registry = std::move(loaded).value();
  }

  routing::WalkOptions options;
  options.timeout_fraction = args.timeout_fraction;
  options.page_fallout = args.page_fallout;
  for (const std::string& name : args.disable) {
    if (name == "timeout_masking") {
      options.timeout_masking = false;
    } else if (name == "sibling_fallout") {
      options.sibling_fallout = false;
    } else if (name == "retries") {
      options.retries = false;
    } else if (name == "async") {
      options.async = false;
    } else if (name == "uninstrumented") {
      options.uninstrumented = false;
    } else {
      return Fail("--disable " + name +
                  ": unknown refinement (known: timeout_masking, sibling_fallout, retries, "
                  "async, uninstrumented)");
    }
  }

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
  cmd->add_option("TRACE_FILE", args->trace_files, "Trace JSON files (Jaeger, OTLP/Tempo, Zipkin)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->callback([args, exit_code] { *exit_code = RunRoute(*args); });
}

}  // namespace tracepager::daemon
