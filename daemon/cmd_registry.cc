// `tracepager registry check` and `tracepager registry deps`: the registry's CI gate and the
// dependency graph the traces show. The rules are in routing/registry_check.h and
// routing/deps.h; this file reads files, resolves secrets and prints.
//
// Exit codes: 0 clean (check) or printed (deps); 1 check found problems; 2 bad usage or input
// that cannot be checked at all (unreadable files, a registry that is not YAML, bad traces).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/backstage_loader.h"
#include "daemon/commands.h"
#include "daemon/file_util.h"
#include "daemon/secrets.h"
#include "routing/backstage.h"
#include "routing/civil_date.h"
#include "routing/deps.h"
#include "routing/registry.h"
#include "routing/registry_check.h"
#include "routing/trace_reader.h"

namespace tracepager::daemon {
namespace {

struct RegistryArgs {
  std::string registry;
  std::vector<std::string> backstage;
  std::vector<std::string> traces;
  int max_age = -1;
  std::string format = "text";
  std::string today;
};

// Prints "tracepager registry CMD: message" to stderr and returns exit code 2.
int Fail(const char* cmd, const std::string& message) {
  std::fprintf(stderr, "tracepager registry %s: %s\n", cmd, message.c_str());
  return 2;
}

routing::CivilDate Today() {
  const auto days = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  return routing::CivilDate::FromDaysSinceEpoch(static_cast<long>(days.time_since_epoch().count()));
}

// Everything check and deps need, loaded; or the exit code 2 already reported.
struct Loaded {
  routing::RegistryLint lint;
  std::optional<routing::BackstageMerge> merge;
  routing::BackstageCatalog catalog;
  std::vector<routing::Trace> traces;
  const routing::Registry* registry = nullptr;  // merged when Backstage was given
};

int LoadInputs(const char* cmd, const RegistryArgs& args, const routing::RegistryLoadOptions& opts,
               bool require_clean_registry, Loaded* out) {
  if (!args.registry.empty()) {
    Result<std::string> text = ReadFileCapped(args.registry, routing::kMaxRegistryBytes);
    if (!text.ok()) return Fail(cmd, text.error().message);
    out->lint = routing::Registry::Lint(*text, args.registry, opts);
    if (!out->lint.parsed || (require_clean_registry && !out->lint.problems.empty())) {
      for (const auto& p : out->lint.problems) std::fprintf(stderr, "%s\n", p.ToString().c_str());
      return Fail(cmd, args.registry + ": the registry cannot be loaded");
    }
  }
  out->registry = &out->lint.registry;
  for (const std::string& path : args.backstage) {
    Result<routing::BackstageCatalog> c = LoadBackstageCatalog(path);
    if (!c.ok()) return Fail(cmd, c.error().message);
    for (auto& e : c->entities) out->catalog.entities.push_back(std::move(e));
    for (auto& p : c->problems) out->catalog.problems.push_back(std::move(p));
    out->catalog.skipped += c->skipped;
  }
  if (!args.backstage.empty()) {
    out->merge = routing::MergeBackstage(out->lint.registry, out->catalog);
    out->registry = &out->merge->registry;
  }
  const routing::ReadLimits limits;
  for (const std::string& path : args.traces) {
    Result<std::string> text = ReadFileCapped(path, limits.max_bytes);
    if (!text.ok()) return Fail(cmd, text.error().message);
    Result<routing::ReadResult> read = routing::ReadTraces(*text, limits);
    if (!read.ok()) return Fail(cmd, path + ": " + read.error().message);
    for (auto& t : read->traces) out->traces.push_back(std::move(t));
  }
  return 0;
}

std::string Summary(const std::vector<routing::Finding>& findings, const routing::Registry& reg,
                    const Loaded& in) {
  if (!findings.empty()) {
    std::map<std::string, int> counts;
    for (const auto& f : findings) ++counts[routing::FindingKindName(f.kind)];
    std::string s = "registry check: " + std::to_string(findings.size()) +
                    (findings.size() == 1 ? " finding (" : " findings (");
    bool first = true;
    for (const auto& [kind, n] : counts) {
      s += (first ? "" : ", ") + std::to_string(n) + " " + kind;
      first = false;
    }
    return s + ")";
  }
  size_t from_backstage = 0;
  for (const auto& [name, s] : reg.services()) {
    if (s.origin == routing::Origin::kBackstage) ++from_backstage;
  }
  std::string s = "registry check: ok: " + std::to_string(reg.services().size()) + " services";
  if (in.merge) s += " (" + std::to_string(from_backstage) + " from Backstage)";
  s += ", " + std::to_string(reg.teams().size()) + " teams, " +
       std::to_string(reg.aliases().size()) + " aliases";
  if (!in.traces.empty()) {
    s += "; every service in " + std::to_string(in.traces.size()) +
         (in.traces.size() == 1 ? " trace" : " traces") + " has an owner";
  }
  return s;
}

int RunCheck(const RegistryArgs& args) {
  const char* cmd = "check";
  if (args.registry.empty() && args.backstage.empty()) {
    return Fail(cmd, "nothing to check: give --registry FILE and/or --backstage PATH");
  }
  routing::CheckOptions check_options;
  if (!args.today.empty()) {
    auto d = routing::CivilDate::Parse(args.today);
    if (!d) return Fail(cmd, "--today \"" + args.today + "\" is not a date (YYYY-MM-DD)");
    check_options.today = *d;
  } else {
    check_options.today = Today();
  }
  if (args.max_age >= 0) check_options.max_age_days = args.max_age;

  routing::RegistryLoadOptions opts;
  opts.resolve_secret = SystemSecretResolver();
  opts.today = check_options.today;
  Loaded in;
  if (int rc = LoadInputs(cmd, args, opts, /*require_clean_registry=*/false, &in); rc != 0) {
    return rc;
  }

  routing::CheckInputs check;
  check.registry = in.registry;
  check.load_problems = in.lint.problems;
  if (in.lint.dropped_problems > 0) {
    check.load_problems.push_back(
        {args.registry, 0, "",
         "... and " + std::to_string(in.lint.dropped_problems) + " more problems"});
  }
  if (in.merge) {
    check.conflicts = in.merge->conflicts;
    check.dangling = in.merge->dangling;
  }
  check.catalog_problems = in.catalog.problems;
  if (in.merge) {
    for (const auto& p : in.merge->catalog_conflicts) check.catalog_problems.push_back(p);
  }
  if (!in.traces.empty()) {
    check.observed = routing::ObservedServices(routing::BuildDependencyGraph(in.traces));
  }
  const std::vector<routing::Finding> findings = routing::CheckRegistry(check, check_options);
  const std::string summary = Summary(findings, *in.registry, in);

  if (args.format == "json") {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("ok");
    w.Bool(findings.empty());
    w.Key("summary");
    w.String(summary);
    w.Key("findings");
    w.StartArray();
    for (const auto& f : findings) {
      w.StartObject();
      w.Key("kind");
      w.String(routing::FindingKindName(f.kind));
      w.Key("subject");
      w.String(f.subject);
      w.Key("where");
      w.String(f.where);
      w.Key("message");
      w.String(f.message);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::printf("%s\n", buf.GetString());
  } else {
    for (const auto& f : findings) std::printf("%s\n", f.ToString().c_str());
    std::printf("%s\n", summary.c_str());
  }
  return findings.empty() ? 0 : 1;
}

int RunDeps(const RegistryArgs& args) {
  const char* cmd = "deps";
  // Ownership only labels the graph: secrets are not needed, so they are not read.
  Loaded in;
  if (int rc = LoadInputs(cmd, args, {}, /*require_clean_registry=*/true, &in); rc != 0) return rc;
  const bool owners = !args.registry.empty() || !args.backstage.empty();
  const routing::DependencyGraph graph = routing::BuildDependencyGraph(in.traces);
  const std::string out = args.format == "dot"
                              ? routing::RenderDepsDot(graph, owners ? in.registry : nullptr)
                              : routing::RenderDepsJson(graph, owners ? in.registry : nullptr);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

void AddRegistryCommand(CLI::App& app, int* exit_code) {
  auto* reg = app.add_subcommand(
      "registry", "Check the ownership registry; show the dependencies the traces reveal");
  reg->require_subcommand(1);

  auto check_args = std::make_shared<RegistryArgs>();
  auto* check = reg->add_subcommand(
      "check",
      "Exit 1 listing every finding (unowned services in traces, teams nobody can page, stale "
      "reviews, dangling references, local vs Backstage conflicts, invalid entries); exit 0 "
      "with a one-line summary when clean; exit 2 on bad input");
  check->add_option("--registry", check_args->registry, "The local registry YAML");
  check->add_option("--backstage", check_args->backstage,
                    "A Backstage catalog: catalog-info YAML, a saved catalog API answer (.json), "
                    "or a directory tree of them (repeatable)");
  check->add_option("--traces", check_args->traces,
                    "Trace files (Jaeger, OTLP/Tempo, Zipkin JSON): every service in them needs "
                    "an owner");
  check
      ->add_option("--max-age", check_args->max_age,
                   "Days since an entry's `reviewed` date before it counts as stale")
      ->check(CLI::NonNegativeNumber);
  check->add_option("--format", check_args->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  check->add_option("--today", check_args->today,
                    "Use this date (YYYY-MM-DD) as today instead of the system clock's");
  check->callback([check_args, exit_code] { *exit_code = RunCheck(*check_args); });

  auto deps_args = std::make_shared<RegistryArgs>();
  deps_args->format = "json";
  auto* deps = reg->add_subcommand(
      "deps", "Print the service dependency graph found in traces (JSON, or DOT for Graphviz)");
  deps->add_option("--format", deps_args->format, "json or dot")
      ->check(CLI::IsMember({"json", "dot"}));
  deps->add_option("--registry", deps_args->registry,
                   "Label services with their owners and mark unowned ones");
  deps->add_option("--backstage", deps_args->backstage, "A Backstage catalog, as for check");
  deps->add_option("TRACE_FILE", deps_args->traces, "Trace files")->required();
  deps->callback([deps_args, exit_code] { *exit_code = RunDeps(*deps_args); });
}

}  // namespace tracepager::daemon
