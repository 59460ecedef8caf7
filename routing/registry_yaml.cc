// The registry YAML reader: walks the document along the schema in routing/registry.h.
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "routing/http_url.h"
#include "routing/registry.h"
#include "routing/yaml_doc.h"
#include "routing/yaml_util.h"

namespace tracepager::routing {
namespace {

using yaml_util::IsBlank;
using yaml_util::Line;
using yaml_util::NodeTypeName;

// Every node the schema walk touches costs one unit. YAML aliases let a small file reference
// one big node many times (a "billion laughs" document); YamlDoc shares aliased nodes instead
// of copying them, so loading is cheap, but a walk that follows every reference is not. A real
// registry of 10,000 services with 50,000 aliases needs about 200,000 visits.
constexpr long kVisitBudget = 4'000'000;
// More problems than this and the rest are counted; a person reads the first ones anyway.
constexpr size_t kMaxProblems = 50;
// No registry entry has anywhere near this many fields, or a service this many aliases.
constexpr size_t kMaxFields = 32;
constexpr size_t kMaxAliases = 1000;
// Five times the largest registry we design for (50,000 aliases); bounds memory when aliases
// are multiplied by YAML references.
constexpr size_t kMaxTotalAliases = 250'000;

bool IsEnvName(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::string Trim(std::string s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

class RegistryParser {
 public:
  RegistryParser(std::string_view source, const RegistryLoadOptions& options)
      : source_(source), options_(options) {}

  RegistryLint Run(std::string_view text) {
    lint_.registry.source_ = source_;
    if (text.size() > kMaxRegistryBytes) {
      Problem(0, "",
              "registry is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                  std::to_string(kMaxRegistryBytes));
      return std::move(lint_);
    }
    Result<YamlDoc> doc = YamlDoc::Parse(text, source_, YamlDoc::Limits{kMaxRegistryBytes});
    if (!doc.ok()) {
      // The message already starts with "source:line: "; keep the line as a number.
      lint_.problems.push_back(SplitProblem(doc.error().message));
      return std::move(lint_);
    }
    if (doc->document_count() == 0 || doc->document(0).IsNull()) {
      Problem(0, "", "registry is empty");
      return std::move(lint_);
    }
    if (doc->document_count() > 1) {
      Problem(doc->document(1).line(), "", "more than one YAML document; a registry is one");
      return std::move(lint_);
    }
    const YamlNode root = doc->document(0);
    if (!root.IsMap()) {
      Problem(Line(root), "top level",
              std::string("is ") + NodeTypeName(root) + ", expected a mapping");
      return std::move(lint_);
    }
    lint_.parsed = true;
    // Nothing below throws by design; a throw (bad_alloc) must still not take down the daemon
    // over one registry file.
    try {
      ParseRoot(root);
      if (!out_of_budget_) CheckReferences();
    } catch (const std::exception& e) {
      Problem(0, "", std::string("internal error while reading the registry: ") + e.what());
    }
    return std::move(lint_);
  }

 private:
  Registry& reg() { return lint_.registry; }

  // "source:12: what" (YamlDoc's error format) as a problem of line 12.
  RegistryProblem SplitProblem(const std::string& message) const {
    RegistryProblem p{source_, 0, "", message};
    if (message.rfind(source_ + ":", 0) == 0) {
      const std::string rest = message.substr(source_.size() + 1);
      size_t digits = 0;
      while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
      if (digits > 0 && digits < 9 && rest.compare(digits, 2, ": ") == 0) {
        p.line = std::stoi(rest.substr(0, digits));
        p.message = rest.substr(digits + 2);
      } else if (rest.rfind(" ", 0) == 0) {
        p.message = rest.substr(1);
      }
    }
    return p;
  }

  void Problem(int line, const std::string& path, std::string what, bool dangling = false) {
    if (lint_.problems.size() >= kMaxProblems) {
      ++lint_.dropped_problems;
      return;
    }
    lint_.problems.push_back(RegistryProblem{source_, line, path, std::move(what), dangling});
  }

  // Charges one visit; false once the budget is spent (reported once, first in the list, so
  // the cap on problems never hides why checking stopped).
  bool Visit(const YamlNode& node) {
    if (--budget_ >= 0) return true;
    if (!out_of_budget_) {
      out_of_budget_ = true;
      lint_.problems.insert(
          lint_.problems.begin(),
          RegistryProblem{source_, Line(node), "",
                          "registry expands to more than " + std::to_string(kVisitBudget) +
                              " nodes (YAML aliases referencing large nodes?); refusing it"});
    }
    return false;
  }

  bool ExpectMap(const YamlNode& node, const std::string& path) {
    if (node.IsMap()) return true;
    Problem(Line(node), path, std::string("is ") + NodeTypeName(node) + ", expected a mapping");
    return false;
  }

  // A mapping of an entry's fields. One with more keys than any entry can have is refused
  // without walking it: that keeps an aliased huge mapping from costing a walk per reference.
  bool ExpectFieldMap(const YamlNode& node, const std::string& path) {
    if (!ExpectMap(node, path)) return false;
    const size_t n = node.size();
    budget_ -= static_cast<long>(n / 64);  // size() walks the entries, cheaply
    if (n > kMaxFields) {
      Problem(
          Line(node), path,
          "has " + std::to_string(n) + " keys; an entry has at most " + std::to_string(kMaxFields));
      return false;
    }
    return true;
  }

  bool ScalarString(const YamlNode& node, const std::string& path, std::string* out) {
    if (!node.IsScalar()) {
      Problem(Line(node), path, std::string("is ") + NodeTypeName(node) + ", expected a string");
      return false;
    }
    *out = node.Scalar();
    return true;
  }

  bool NonEmptyString(const YamlNode& node, const std::string& path, std::string* out) {
    if (!ScalarString(node, path, out)) return false;
    if (IsBlank(*out)) {
      Problem(Line(node), path, "is empty");
      return false;
    }
    return true;
  }

  // A mapping key as a non-empty name.
  bool Name(const YamlNode& key, const std::string& path, std::string* out) {
    if (!key.IsScalar()) {
      Problem(Line(key), path, std::string("a key is ") + NodeTypeName(key) + ", expected a name");
      return false;
    }
    if (IsBlank(key.Scalar())) {
      Problem(Line(key), path, "empty name");
      return false;
    }
    *out = key.Scalar();
    return true;
  }

  // Iterates the fields of an entry mapping, rejecting non-name and duplicate keys, and calls
  // `field(key, value, path_of_field)` for each. False when the budget ran out.
  template <typename F>
  bool ForEachField(const YamlNode& map, const std::string& path, F&& field) {
    std::set<std::string, std::less<>> seen;
    for (size_t i = 0; i < map.size(); ++i) {
      const YamlNode kv_key = map.key(i);
      const YamlNode kv_value = map.value(i);
      if (!Visit(kv_key)) return false;
      std::string key;
      if (!Name(kv_key, path, &key)) continue;
      const std::string field_path = path.empty() ? key : path + "." + key;
      if (!seen.insert(key).second) {
        Problem(Line(kv_key), field_path, "duplicate key");
        continue;
      }
      const YamlNode value = kv_value;
      field(key, kv_key, value, field_path);
    }
    return true;
  }

  std::optional<CivilDate> Date(const YamlNode& node, const std::string& path) {
    std::string text;
    if (!ScalarString(node, path, &text)) return std::nullopt;
    std::optional<CivilDate> d = CivilDate::Parse(text);
    if (!d) {
      Problem(Line(node), path, "\"" + text + "\" is not a date (YYYY-MM-DD)");
      return std::nullopt;
    }
    if (options_.today && *d > *options_.today) {
      Problem(Line(node), path,
              "date " + d->ToString() + " is in the future (today is " +
                  options_.today->ToString() + ")");
      return std::nullopt;
    }
    return d;
  }

  bool Url(const YamlNode& node, const std::string& path, std::string* out) {
    if (!NonEmptyString(node, path, out)) return false;
    if (!IsHttpUrl(*out)) {
      Problem(Line(node), path, "\"" + *out + "\" is not an http(s) URL");
      return false;
    }
    return true;
  }

  // A secret reference `{file: PATH}` or `{env: NAME}`, resolved when a resolver was given.
  // `literal_ok`: a plain string is accepted as the value itself (a webhook URL without a
  // token). Values are never put into messages. `url`: the value must be an http(s) URL.
  std::optional<Secret> SecretField(const YamlNode& node, const std::string& path, bool literal_ok,
                                    bool url) {
    if (node.IsScalar()) {
      if (!literal_ok) {
        Problem(Line(node), path,
                "is written as a literal; secrets are never written in the registry: use "
                "{file: PATH} or {env: NAME}");
        return std::nullopt;
      }
      std::string value;
      if (!Url(node, path, &value)) return std::nullopt;
      return Secret(SecretRef{SecretRef::Kind::kInline, source_ + " " + path}, value);
    }
    if (!ExpectMap(node, path)) return std::nullopt;
    if (node.size() != 1) {
      Problem(Line(node), path, "a secret reference has exactly one key: file or env");
      return std::nullopt;
    }
    const YamlNode kv_key = node.key(0);
    const YamlNode kv_value = node.value(0);
    if (!Visit(kv_key)) return std::nullopt;
    std::string key;
    if (!Name(kv_key, path, &key)) return std::nullopt;
    std::string target;
    if (!NonEmptyString(kv_value, path + "." + key, &target)) return std::nullopt;
    SecretRef ref;
    if (key == "file") {
      ref = {SecretRef::Kind::kFile, target};
    } else if (key == "env") {
      if (!IsEnvName(target)) {
        Problem(Line(kv_value), path + ".env",
                "\"" + target + "\" is not an environment variable name");
        return std::nullopt;
      }
      ref = {SecretRef::Kind::kEnv, target};
    } else {
      Problem(Line(kv_key), path + "." + key,
              "unknown key (a secret is {file: PATH} or {env: NAME})");
      return std::nullopt;
    }
    if (!options_.resolve_secret) return Secret(std::move(ref));
    Result<std::string> value = options_.resolve_secret(ref);
    if (!value.ok()) {
      Problem(Line(node), path, value.error().message);
      return std::nullopt;
    }
    std::string v = Trim(std::move(*value));
    if (v.empty()) {
      Problem(Line(node), path, ref.Describe() + " is empty");
      return std::nullopt;
    }
    if (url && !IsHttpUrl(v)) {
      Problem(Line(node), path, "the value of " + ref.Describe() + " is not an http(s) URL");
      return std::nullopt;
    }
    return Secret(std::move(ref), std::move(v));
  }

  // Parses `key` into `pager` when it names a pager target; false when it is not a pager key.
  bool PagerField(const std::string& key, const YamlNode& value, const std::string& path,
                  PagerTargets* pager) {
    if (key == "pagerduty") {
      if (!ExpectFieldMap(value, path)) return true;
      PagerDutyTarget t;
      ForEachField(
          value, path,
          [&](const std::string& k, const YamlNode& kn, const YamlNode& v, const std::string& p) {
            if (k == "routing_key") {
              t.routing_key = SecretField(v, p, /*literal_ok=*/false, /*url=*/false);
            } else if (k == "service_id") {
              NonEmptyString(v, p, &t.service_id);
            } else {
              Problem(Line(kn), p, "unknown key (known: routing_key, service_id)");
            }
          });
      if (!t.routing_key && t.service_id.empty() && !Has(value, "routing_key")) {
        Problem(Line(value), path, "needs a routing_key (or at least a service_id)");
      }
      pager->pagerduty = std::move(t);
    } else if (key == "opsgenie") {
      if (!ExpectFieldMap(value, path)) return true;
      OpsgenieTarget t;
      ForEachField(
          value, path,
          [&](const std::string& k, const YamlNode& kn, const YamlNode& v, const std::string& p) {
            if (k == "team") {
              NonEmptyString(v, p, &t.team);
            } else if (k == "team_id") {
              NonEmptyString(v, p, &t.team_id);
            } else if (k == "api_key") {
              t.api_key = SecretField(v, p, /*literal_ok=*/false, /*url=*/false);
            } else {
              Problem(Line(kn), p, "unknown key (known: team, team_id, api_key)");
            }
          });
      if (Has(value, "team") == Has(value, "team_id")) {
        Problem(Line(value), path, "needs exactly one of team (a name) or team_id");
      }
      pager->opsgenie = std::move(t);
    } else if (key == "slack") {
      if (!ExpectFieldMap(value, path)) return true;
      SlackTarget t;
      ForEachField(
          value, path,
          [&](const std::string& k, const YamlNode& kn, const YamlNode& v, const std::string& p) {
            if (k == "webhook_url") {
              // Slack incoming-webhook URLs carry their token in the path: always a
              // reference.
              t.webhook_url = SecretField(v, p, /*literal_ok=*/false, /*url=*/true);
            } else if (k == "channel") {
              NonEmptyString(v, p, &t.channel);
            } else {
              Problem(Line(kn), p, "unknown key (known: webhook_url, channel)");
            }
          });
      if (!Has(value, "webhook_url") && !Has(value, "channel")) {
        Problem(Line(value), path, "needs a webhook_url");
      }
      pager->slack = std::move(t);
    } else if (key == "webhook") {
      if (!ExpectFieldMap(value, path)) return true;
      std::optional<Secret> url;
      std::optional<Secret> signing_key;
      ForEachField(
          value, path,
          [&](const std::string& k, const YamlNode& kn, const YamlNode& v, const std::string& p) {
            if (k == "url") {
              url = SecretField(v, p, /*literal_ok=*/true, /*url=*/true);
            } else if (k == "signing_key") {
              signing_key = SecretField(v, p, /*literal_ok=*/false, /*url=*/false);
            } else {
              Problem(Line(kn), p, "unknown key (known: url, signing_key)");
            }
          });
      if (!Has(value, "url")) Problem(Line(value), path, "needs a url");
      if (url) pager->webhook = WebhookTarget{std::move(*url), std::move(signing_key)};
    } else {
      return false;
    }
    return true;
  }

  static bool Has(const YamlNode& map, const char* key) {
    bool found = false;
    map.Get(key, &found);
    return found;
  }

  void ParseRoot(const YamlNode& root) {
    ForEachField(
        root, "",
        [&](const std::string& key, const YamlNode& kn, const YamlNode& v, const std::string&) {
          if (out_of_budget_) return;
          if (key == "default_team") {
            if (v.IsNull()) return;  // `default_team:` with no value: none
            std::string team;
            if (NonEmptyString(v, "default_team", &team)) {
              reg().default_team_ = team;
              default_team_line_ = Line(v);
            }
          } else if (key == "teams") {
            ParseTeams(v);
          } else if (key == "services") {
            ParseServices(v);
          } else {
            Problem(Line(kn), key, "unknown key (known: default_team, teams, services)");
          }
        });
  }

  void ParseTeams(const YamlNode& teams) {
    if (teams.IsNull()) return;
    if (!ExpectMap(teams, "teams")) return;
    for (size_t i = 0; i < teams.size(); ++i) {
      const YamlNode kv_key = teams.key(i);
      const YamlNode kv_value = teams.value(i);
      if (!Visit(kv_key)) return;
      std::string name;
      if (!Name(kv_key, "teams", &name)) continue;
      const std::string path = "teams." + name;
      if (auto found = reg().teams_.find(name); found != reg().teams_.end()) {
        Problem(Line(kv_key), path,
                "duplicate team (first at line " + std::to_string(found->second.line) + ")");
        continue;
      }
      Team team;
      team.name = name;
      team.line = Line(kv_key);
      team.source = source_;
      const YamlNode body = kv_value;
      if (!body.IsNull() && ExpectFieldMap(body, path)) {
        ForEachField(body, path,
                     [&](const std::string& key, const YamlNode& kn, const YamlNode& v,
                         const std::string& p) {
                       if (PagerField(key, v, p, &team.pager)) return;
                       if (key == "fallback") {
                         if (NonEmptyString(v, p, &team.fallback)) fallback_lines_[name] = Line(v);
                       } else if (key == "reviewed") {
                         team.reviewed = Date(v, p);
                       } else {
                         Problem(
                             Line(kn), p,
                             "unknown key (known: pagerduty, opsgenie, slack, webhook, fallback, "
                             "reviewed)");
                       }
                     });
      }
      reg().teams_.emplace(name, std::move(team));
    }
  }

  void ParseServices(const YamlNode& services) {
    if (services.IsNull()) return;
    if (!ExpectMap(services, "services")) return;
    for (size_t i = 0; i < services.size(); ++i) {
      const YamlNode kv_key = services.key(i);
      const YamlNode kv_value = services.value(i);
      if (!Visit(kv_key)) return;
      std::string name;
      if (!Name(kv_key, "services", &name)) continue;
      const std::string path = "services." + name;
      if (auto found = reg().services_.find(name); found != reg().services_.end()) {
        Problem(Line(kv_key), path,
                "duplicate service (first at line " + std::to_string(found->second.line) + ")");
        continue;
      }
      const YamlNode body = kv_value;
      ServiceEntry entry;
      entry.name = name;
      entry.line = Line(kv_key);
      entry.source = source_;
      bool has_team = false;
      if (!ExpectFieldMap(body, path)) {
        reg().services_.emplace(name, std::move(entry));  // still catches later duplicates
        continue;
      }
      const bool complete = ForEachField(
          body, path,
          [&](const std::string& key, const YamlNode& kn, const YamlNode& v, const std::string& p) {
            if (PagerField(key, v, p, &entry.pager)) return;
            if (key == "team") {
              has_team = true;
              if (NonEmptyString(v, p, &entry.team)) team_lines_[name] = Line(v);
            } else if (key == "tier") {
              NonEmptyString(v, p, &entry.tier);
            } else if (key == "runbook") {
              Url(v, p, &entry.runbook_url);
            } else if (key == "dashboard") {
              Url(v, p, &entry.dashboard_url);
            } else if (key == "reviewed") {
              entry.reviewed = Date(v, p);
            } else if (key == "aliases") {
              ParseAliases(v, p, name, &entry.aliases);
            } else {
              Problem(Line(kn), p,
                      "unknown key (known: team, tier, runbook, dashboard, reviewed, aliases, "
                      "pagerduty, opsgenie, slack, webhook)");
            }
          });
      if (!complete) return;
      if (!has_team) Problem(entry.line, path, "missing \"team\"");
      reg().services_.emplace(name, std::move(entry));
    }
  }

  void ParseAliases(const YamlNode& node, const std::string& path, const std::string& service,
                    std::vector<std::string>* out) {
    if (node.IsNull()) return;
    if (!node.IsSequence()) {
      Problem(Line(node), path, std::string("is ") + NodeTypeName(node) + ", expected a list");
      return;
    }
    if (node.size() > kMaxAliases) {
      Problem(Line(node), path,
              "has " + std::to_string(node.size()) + " aliases; the limit is " +
                  std::to_string(kMaxAliases));
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) {
      const YamlNode item = node.item(i);
      if (!Visit(item)) return;
      if (alias_decls_.size() >= kMaxTotalAliases) {
        if (!too_many_aliases_) {
          too_many_aliases_ = true;
          Problem(Line(item), path,
                  "more than " + std::to_string(kMaxTotalAliases) + " aliases in the registry");
        }
        return;
      }
      std::string alias;
      if (!NonEmptyString(item, path + "[]", &alias)) continue;
      alias_decls_.push_back({alias, service, Line(item)});
      out->push_back(std::move(alias));
    }
  }

  std::string KnownTeams() const {
    const auto& teams = lint_.registry.teams_;
    if (teams.empty()) return " (no teams are defined)";
    std::string s = " (known: ";
    size_t n = 0;
    for (const auto& entry : teams) {
      if (n > 0) s += ", ";
      if (++n > 10) {
        s += "...";
        break;
      }
      s += entry.first;
    }
    return s + ")";
  }

  void CheckReferences() {
    Registry& r = reg();
    if (!r.default_team_.empty() && r.teams_.count(r.default_team_) == 0) {
      Problem(default_team_line_, "default_team",
              "unknown team \"" + r.default_team_ + "\"" + KnownTeams(), /*dangling=*/true);
    }
    for (const auto& [name, team] : r.teams_) {
      if (team.fallback.empty()) continue;
      if (team.fallback == name) {
        Problem(fallback_lines_[name], "teams." + name + ".fallback",
                "a team cannot be its own fallback");
      } else if (r.teams_.count(team.fallback) == 0) {
        Problem(fallback_lines_[name], "teams." + name + ".fallback",
                "unknown team \"" + team.fallback + "\"" + KnownTeams(), /*dangling=*/true);
      }
    }
    for (const auto& [name, entry] : r.services_) {
      if (!entry.team.empty() && r.teams_.count(entry.team) == 0) {
        Problem(team_lines_[name], "services." + name + ".team",
                "unknown team \"" + entry.team + "\"" + KnownTeams(), /*dangling=*/true);
      }
    }
    // Aliases: each names exactly one service and is nobody's service name.
    std::map<std::string, const AliasDecl*, std::less<>> first;
    for (const AliasDecl& a : alias_decls_) {
      const std::string path = "services." + a.service + ".aliases";
      if (a.alias == a.service) {
        Problem(a.line, path, "alias \"" + a.alias + "\" is the service's own name");
        continue;
      }
      if (auto s = r.services_.find(a.alias); s != r.services_.end()) {
        Problem(a.line, path,
                "alias \"" + a.alias + "\" is also the name of service \"" + a.alias + "\" (line " +
                    std::to_string(s->second.line) + ")");
        continue;
      }
      auto [it, inserted] = first.emplace(a.alias, &a);
      if (!inserted) {
        const AliasDecl& prev = *it->second;
        Problem(a.line, path,
                prev.service == a.service
                    ? "duplicate alias \"" + a.alias + "\""
                    : "alias \"" + a.alias + "\" also names service \"" + prev.service +
                          "\" (line " + std::to_string(prev.line) + ")");
        continue;
      }
      r.aliases_.emplace(a.alias, a.service);
    }
  }

  struct AliasDecl {
    std::string alias;
    std::string service;
    int line = 0;
  };

  std::string source_;
  const RegistryLoadOptions& options_;
  RegistryLint lint_;
  long budget_ = kVisitBudget;
  bool out_of_budget_ = false;
  bool too_many_aliases_ = false;
  int default_team_line_ = 0;
  std::map<std::string, int, std::less<>> team_lines_;      // service -> line of its `team:`
  std::map<std::string, int, std::less<>> fallback_lines_;  // team -> line of its `fallback:`
  std::vector<AliasDecl> alias_decls_;
};

RegistryLint Registry::Lint(std::string_view text, std::string_view source,
                            const RegistryLoadOptions& options) {
  return RegistryParser(source, options).Run(text);
}

}  // namespace tracepager::routing
