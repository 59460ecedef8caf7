// The ownership registry: who owns which service, how each team is paged, and which team is
// paged when nothing better is known.
//
// YAML shape (etc/registry.yaml is the commented example):
//   default_team: platform
//   teams:
//     payments:
//       pagerduty: {routing_key: {env: PD_PAYMENTS}}      # Events API v2 routing key
//       opsgenie: {team: Payments}                         # or {team_id: ID}; api_key: {env: X}
//       slack: {webhook_url: {file: /run/secrets/slack-payments}, channel: "#payments"}
//       webhook: {url: https://hooks.example.com/page}     # or {url: {env: NAME}};
//                                                          # signing_key: {file: PATH}
//       fallback: platform                                 # escalation fallback team
//       reviewed: 2025-01-31
//   services:
//     payment:
//       team: payments
//       tier: "1"
//       runbook: https://runbooks.example.com/payment
//       dashboard: https://grafana.example.com/d/payment
//       reviewed: 2025-01-31                               # YYYY-MM-DD
//       aliases: [paymentservice, postgres/payments]       # other names in traces
//       pagerduty: {...}                                   # service-level targets override the
//       team's
// Every field but a service's `team` is optional.
//
// Validation (each problem names source, line and path, e.g.
//   etc/registry.yaml:12: services.payment.team: unknown team "paymnts" (known: ads, cart, ...)):
// unknown team references (services, default_team, fallback), duplicate services/teams/keys,
// empty names, unknown keys, wrong node types, alias collisions (an alias naming two services,
// or equal to another service's name), malformed http(s) URLs, malformed dates and dates after
// `today`, secrets written as literals, and secret references that do not resolve. Every problem
// is reported (up to a cap), not just the first.
//
// Hostile input never crashes or hangs: the text is capped at kMaxRegistryBytes, YAML nesting is
// bounded (64 levels, routing/yaml_doc.h), entries have at most 32 fields and 1,000 aliases, and
// the number of nodes walked (which YAML aliases can multiply) is capped.
//
// Loading is atomic: it returns a new Registry or an Error and never modifies an existing one. A
// long-running process holds the current registry as std::shared_ptr<const Registry>, loads the
// new file into a fresh Registry, and swaps the pointer only on success; work in flight keeps the
// old snapshot. A loaded Registry is immutable and safe to share between threads.
// Pure: the caller reads files and passes text; secrets come through an injected resolver.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/civil_date.h"
#include "routing/result.h"
#include "routing/secret.h"

namespace tracepager::routing {

inline constexpr size_t kMaxRegistryBytes = 64u << 20;

// Where an entry came from.
enum class Origin { kLocal, kBackstage };
const char* OriginName(Origin origin);  // "local" | "backstage"

struct PagerDutyTarget {
  std::optional<Secret> routing_key;  // Events API v2 routing (integration) key
  std::string service_id;             // PagerDuty service id (REST API), informational
};
struct OpsgenieTarget {
  std::string team;               // team name, or
  std::string team_id;            // team id; exactly one is set
  std::optional<Secret> api_key;  // GenieKey for this team; unset: the pager's configured key
};
struct SlackTarget {
  std::optional<Secret> webhook_url;  // incoming-webhook URL (carries a token)
  std::string channel;                // e.g. "#payments-oncall"; informational
};
struct WebhookTarget {
  Secret url;                         // held as a secret: webhook URLs often carry tokens
  std::optional<Secret> signing_key;  // HMAC-SHA256 key for signing the body; optional
};

// Each target is optional.
struct PagerTargets {
  std::optional<PagerDutyTarget> pagerduty;
  std::optional<OpsgenieTarget> opsgenie;
  std::optional<SlackTarget> slack;
  std::optional<WebhookTarget> webhook;

  bool empty() const { return !pagerduty && !opsgenie && !slack && !webhook; }
  // True when at least one target can deliver a page: a PagerDuty routing key, an Opsgenie
  // team, a Slack webhook URL or a webhook URL. A PagerDuty service id or a Slack channel alone
  // cannot.
  bool CanPage() const;
};

struct Team {
  std::string name;
  int line = 0;        // 1-based line in `source`; 0 when not from a file
  std::string source;  // the file or catalog the entry came from
  Origin origin = Origin::kLocal;
  PagerTargets pager;
  std::string fallback;  // escalation fallback team; empty: none
  std::optional<CivilDate> reviewed;
  // False for a team that exists only because a Backstage owner reference names it and nothing
  // defines it (a dangling reference; `registry check` reports it).
  bool declared = true;
};

struct ServiceEntry {
  std::string name;
  std::string team;
  int line = 0;
  std::string source;
  Origin origin = Origin::kLocal;
  std::string kind = "service";  // "service", or "resource" (a Backstage Resource: a database...)
  std::string tier;
  std::string runbook_url;
  std::string dashboard_url;
  std::optional<CivilDate> reviewed;
  std::vector<std::string> aliases;
  PagerTargets pager;  // service-level targets; when non-empty they override the team's
};

// One problem found while loading, for people and for `registry check`.
struct RegistryProblem {
  std::string source;
  int line = 0;      // 0: the whole file
  std::string path;  // e.g. "services.payment.team"; may be empty
  std::string message;
  // True for a reference that names nothing (an unknown team); `registry check` reports these
  // as dangling references, everything else as an invalid registry.
  bool dangling_reference = false;
  std::string ToString() const;  // "source:line: path: message"
};

struct RegistryLoadOptions {
  // Resolves `{file:}` / `{env:}` references. Empty: references are checked for shape only and
  // stay unresolved (Secret::resolved() is false), which is enough for offline routing.
  SecretResolver resolve_secret;
  // When set, `reviewed` dates after it are errors.
  std::optional<CivilDate> today;
};

class Registry;

// The outcome of a lenient load, for `registry check`: every problem, and a registry built from
// the entries that were usable (unusable ones are left out or, for references, kept as given).
struct RegistryLint;

class Registry {
 public:
  Registry() = default;

  // Parses registry YAML. `source` names the input in error messages (usually the path).
  // Fails with kInvalidInput listing every problem, one per line of the message.
  static Result<Registry> FromYaml(std::string_view text, std::string_view source,
                                   const RegistryLoadOptions& options = {});
  // Like FromYaml but returns the problems instead of failing.
  static RegistryLint Lint(std::string_view text, std::string_view source,
                           const RegistryLoadOptions& options = {});

  // The team paged when nothing better is known; may be empty. When set, it is a known team.
  const std::string& default_team() const { return default_team_; }
  // The source the local entries came from (FromYaml's `source`).
  const std::string& source() const { return source_; }

  // The entry for `service_name`, found by name or by alias; nullptr when unknown.
  const ServiceEntry* FindService(std::string_view service_name) const;
  const Team* FindTeam(std::string_view team_name) const;
  // The team that actually receives a page for `team_name`: the team itself when its targets
  // can page, else the first team along its fallback chain that can (cycles end the search).
  // nullptr when no team on the chain can page.
  const Team* PageableTeam(std::string_view team_name) const;

  const std::map<std::string, Team, std::less<>>& teams() const { return teams_; }
  const std::map<std::string, ServiceEntry, std::less<>>& services() const { return services_; }
  // alias -> service name.
  const std::map<std::string, std::string, std::less<>>& aliases() const { return aliases_; }

 private:
  friend class RegistryParser;
  friend class BackstageMerger;

  std::string default_team_;
  std::string source_;
  std::map<std::string, Team, std::less<>> teams_;
  std::map<std::string, ServiceEntry, std::less<>> services_;
  std::map<std::string, std::string, std::less<>> aliases_;
};

struct RegistryLint {
  bool parsed = false;  // false: not YAML, too large or not a mapping; `registry` is empty
  Registry registry;
  std::vector<RegistryProblem> problems;
  size_t dropped_problems = 0;  // problems beyond the cap, counted but not kept
};

}  // namespace tracepager::routing
