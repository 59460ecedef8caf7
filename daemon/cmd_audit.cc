// `tracepager audit list|show|stats`: reviewing the audit log (daemon/audit_query.h) from a
// shell. Read-only: it never takes the writer's lock, so it runs next to a live daemon.
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "daemon/audit_query.h"
#include "daemon/audit_render.h"
#include "daemon/commands.h"

namespace tracepager::daemon {
namespace {

// Where systemd's StateDirectory=tracepager puts the daemon's state.
constexpr const char* kDefaultStateDir = "/var/lib/tracepager";

struct LogLocation {
  std::string log;
  std::string state_dir;
  std::string config;
  std::string format = "text";
};

struct FilterArgs {
  std::string since, until, service, team, alert, decision;
  bool disagreement = false;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return base_dir + "/" + path;
}

// Only `state_dir` and `audit.path` are read from the config, without validating the rest: a
// person reviewing pages may not be able to read the daemon's token files, and does not need to.
// Relative paths are relative to the config file's directory, as for the daemon.
Result<std::string> LogPathFromConfig(const std::string& config_path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(config_path);
  } catch (const std::exception& e) {
    return Error::InvalidInput(config_path + ": cannot read the config: " + e.what());
  }
  const std::string base = DirOf(config_path);
  try {
    if (root.IsMap() && root["audit"] && root["audit"].IsMap() && root["audit"]["path"] &&
        root["audit"]["path"].IsScalar()) {
      return Resolve(base, root["audit"]["path"].as<std::string>());
    }
    if (root.IsMap() && root["state_dir"] && root["state_dir"].IsScalar()) {
      return DefaultAuditLogPath(Resolve(base, root["state_dir"].as<std::string>()));
    }
  } catch (const std::exception& e) {
    return Error::InvalidInput(config_path + ": " + e.what());
  }
  return DefaultAuditLogPath(kDefaultStateDir);
}

// --log, else the config's, else --state-dir's, else $STATE_DIRECTORY's (set by systemd for the
// service, and so inside `systemd-run -p StateDirectory=...`), else the packaged default.
Result<std::string> LocateLog(const LogLocation& where) {
  if (!where.log.empty()) return where.log;
  if (!where.config.empty()) return LogPathFromConfig(where.config);
  if (!where.state_dir.empty()) return DefaultAuditLogPath(where.state_dir);
  if (const char* env = std::getenv("STATE_DIRECTORY"); env && *env) {
    std::string dir = env;
    if (size_t colon = dir.find(':'); colon != std::string::npos) dir.resize(colon);
    return DefaultAuditLogPath(dir);
  }
  return DefaultAuditLogPath(kDefaultStateDir);
}

// The log's path, or kInvalidInput when no file of it exists (a wrong --log is bad input).
Result<std::string> FindLog(const LogLocation& where) {
  Result<std::string> log = LocateLog(where);
  if (!log.ok()) return log;
  if (AuditLogFiles(*log).empty()) {
    return Error::InvalidInput("no audit log at " + *log +
                               " (use --log FILE, --state-dir DIR or --config FILE)");
  }
  return log;
}

Result<AuditFilter> MakeFilter(const FilterArgs& args) {
  AuditFilter f;
  const int64_t now = NowNs();
  if (!args.since.empty()) {
    Result<int64_t> t = ParseTimeArg(args.since, now);
    if (!t.ok()) return Error::InvalidInput("--since " + t.error().message);
    f.since_ns = *t;
  }
  if (!args.until.empty()) {
    Result<int64_t> t = ParseTimeArg(args.until, now);
    if (!t.ok()) return Error::InvalidInput("--until " + t.error().message);
    f.until_ns = *t;
  }
  f.service = args.service;
  f.team = args.team;
  f.alert = args.alert;
  if (args.decision == "routed") f.kind = routing::Decision::Kind::kRouted;
  if (args.decision == "fallback") f.kind = routing::Decision::Kind::kFallback;
  f.disagreement_only = args.disagreement;
  return f;
}

void AddLocationOptions(CLI::App* cmd, LogLocation* where) {
  cmd->add_option("--log", where->log, "The audit log file (rotated files beside it are read too)");
  cmd->add_option("--state-dir", where->state_dir,
                  "The daemon's state directory; the log is <dir>/audit.jsonl");
  cmd->add_option("--config", where->config,
                  "The daemon's config; its audit.path or state_dir locate the log");
  cmd->add_option("--format", where->format, "text (default) or json")
      ->check(CLI::IsMember({"text", "json"}));
}

void AddFilterOptions(CLI::App* cmd, FilterArgs* f) {
  cmd->add_option("--since", f->since, "Decisions at or after: 2h, 1d, 1h30m, or RFC 3339");
  cmd->add_option("--until", f->until, "Decisions at or before: 2h, 1d, or RFC 3339");
  cmd->add_option("--service", f->service, "Alerting service or culprit");
  cmd->add_option("--team", f->team, "A team that was paged (or a delivery went to)");
  cmd->add_option("--alert", f->alert, "Alert name or identity");
  cmd->add_option("--decision", f->decision, "routed or fallback")
      ->check(CLI::IsMember({"routed", "fallback"}));
  cmd->add_flag("--disagreement", f->disagreement,
                "Only decisions where the naive rule and the refined answer differ");
}

void PrintWarnings(const std::vector<AuditReadWarning>& warnings) {
  for (const AuditReadWarning& w : warnings) {
    std::fprintf(stderr, "tracepager audit: warning: %s\n", w.ToString().c_str());
  }
}

// Bad input (an unreadable config, a malformed time, no log) exits 2.
int Fail(const Error& e) {
  std::fprintf(stderr, "tracepager audit: %s\n", e.message.c_str());
  return 2;
}

void Print(const std::string& text, bool json) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (json) std::fputc('\n', stdout);
}

}  // namespace

void AddAuditCommand(CLI::App& app, int* exit_code) {
  auto* audit = app.add_subcommand("audit", "Review routing decisions and page deliveries");
  audit->require_subcommand(1);

  struct State {
    LogLocation where;
    FilterArgs filter;
    size_t limit = 50;
    std::string id;
  };
  auto state = std::make_shared<State>();

  auto* list = audit->add_subcommand("list", "Decisions, newest first");
  AddLocationOptions(list, &state->where);
  AddFilterOptions(list, &state->filter);
  list->add_option("--limit", state->limit, "At most this many (0: all; default 50)");
  list->callback([state, exit_code] {
    Result<std::string> log = FindLog(state->where);
    if (!log.ok()) return void(*exit_code = Fail(log.error()));
    Result<AuditFilter> filter = MakeFilter(state->filter);
    if (!filter.ok()) return void(*exit_code = Fail(filter.error()));
    Result<AuditListing> listing = ListDecisions(*log, *filter, state->limit);
    if (!listing.ok()) return void(*exit_code = Fail(listing.error()));
    const bool json = state->where.format == "json";
    if (!json) PrintWarnings(listing->warnings);
    Print(json ? ListingToJson(*listing) : ListingToText(*listing), json);
    *exit_code = 0;
  });

  auto* show = audit->add_subcommand("show", "One decision: who was paged and why, and delivery");
  AddLocationOptions(show, &state->where);
  show->add_option("id", state->id, "Decision id (or a prefix naming exactly one)")->required();
  show->callback([state, exit_code] {
    Result<std::string> log = FindLog(state->where);
    if (!log.ok()) return void(*exit_code = Fail(log.error()));
    Result<AuditDecisionDetail> detail = FindDecision(*log, state->id);
    if (!detail.ok()) {
      std::fprintf(stderr, "tracepager audit: %s\n", detail.error().message.c_str());
      // An id that is not there is an answer (exit 1); an ambiguous prefix is bad input (2).
      *exit_code = detail.error().code == ErrorCode::kNotFound ? 1 : 2;
      return;
    }
    const bool json = state->where.format == "json";
    if (!json) PrintWarnings(detail->warnings);
    Print(json ? DetailToJson(*detail) : DetailToText(*detail), json);
    *exit_code = 0;
  });

  auto* stats = audit->add_subcommand("stats", "Pages and fallbacks per team, rates, latency");
  AddLocationOptions(stats, &state->where);
  AddFilterOptions(stats, &state->filter);
  stats->callback([state, exit_code] {
    Result<std::string> log = FindLog(state->where);
    if (!log.ok()) return void(*exit_code = Fail(log.error()));
    Result<AuditFilter> filter = MakeFilter(state->filter);
    if (!filter.ok()) return void(*exit_code = Fail(filter.error()));
    Result<AuditStats> result = ComputeAuditStats(*log, *filter);
    if (!result.ok()) return void(*exit_code = Fail(result.error()));
    const bool json = state->where.format == "json";
    if (!json) PrintWarnings(result->warnings);
    Print(json ? StatsToJson(*result) : StatsToText(*result), json);
    *exit_code = 0;
  });
}

}  // namespace tracepager::daemon
