#include "routing/registry.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace tracepager::routing {
namespace {

// Every node the schema walk touches costs one unit. YAML aliases let a small file reference
// one big node many times (a "billion laughs" document); yaml-cpp shares aliased nodes instead
// of copying them, so loading is cheap, but a walk that follows every reference is not. The
// budget bounds the walk: a real registry of 10,000 services with 50,000 aliases needs about
// 200,000 visits.
constexpr long kVisitBudget = 4'000'000;
// More problems than this and the rest are summarized; a person reads the first ones anyway.
constexpr size_t kMaxProblems = 50;
// No registry entry has anywhere near this many fields.
constexpr size_t kMaxFields = 32;

const char* NodeTypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      return "undefined";
  }
  return "unknown";
}

}  // namespace

// Walks the YAML tree along the registry schema and fills a Registry, collecting problems.
class RegistryParser {
 public:
  explicit RegistryParser(std::string_view source) : source_(source) {}

  Result<Registry> Parse(std::string_view text) {
    if (text.size() > kMaxRegistryBytes) {
      return Error::InvalidInput(std::string(source_) + ": registry is " +
                                 std::to_string(text.size()) + " bytes, more than the limit of " +
                                 std::to_string(kMaxRegistryBytes));
    }
    YAML::Node root;
    try {
      // yaml-cpp's parser guards its own recursion (DepthGuard, 2000 levels) and throws.
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      return Error::InvalidInput(std::string(source_) + ":" + std::to_string(e.mark.line + 1) +
                                 ": invalid YAML: " + e.msg);
    } catch (const std::exception& e) {
      return Error::InvalidInput(std::string(source_) + ": invalid YAML: " + e.what());
    }
    // Accessing a yaml-cpp node can throw (InvalidNode, BadConversion); our checks come first,
    // so a throw here is a bug, but a bug in one registry file must not take down the daemon.
    try {
      ParseRoot(root);
    } catch (const std::exception& e) {
      return Error::Internal(std::string(source_) + ": registry walk failed: " + e.what());
    }
    if (!problems_.empty()) {
      std::string message;
      for (size_t i = 0; i < problems_.size(); ++i) {
        if (i > 0) message += '\n';
        message += problems_[i];
      }
      if (dropped_problems_ > 0) {
        message += "\n" + std::string(source_) + ": ... and " + std::to_string(dropped_problems_) +
                   " more problems";
      }
      return Error::InvalidInput(std::move(message));
    }
    return std::move(registry_);
  }

 private:
  static int Line(const YAML::Node& node) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? 0 : mark.line + 1;
  }

  void Problem(int line, const std::string& path, const std::string& what) {
    if (problems_.size() >= kMaxProblems) {
      ++dropped_problems_;
      return;
    }
    std::string p(source_);
    if (line > 0) p += ":" + std::to_string(line);
    p += ": ";
    if (!path.empty()) p += path + ": ";
    p += what;
    problems_.push_back(std::move(p));
  }

  // Charges one visit; false (with one problem recorded) once the budget is spent.
  bool Visit(const YAML::Node& node) {
    if (--budget_ >= 0) return true;
    if (!budget_reported_) {
      // First in the list and never dropped by the cap: it explains why checking stopped.
      budget_reported_ = true;
      problems_.insert(problems_.begin(),
                       std::string(source_) + ":" + std::to_string(Line(node)) +
                           ": registry expands to more than " + std::to_string(kVisitBudget) +
                           " nodes (YAML aliases referencing large nodes?); refusing it");
    }
    return false;
  }

  bool ExpectMap(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) return true;
    Problem(Line(node), path, std::string("is ") + NodeTypeName(node) + ", expected a mapping");
    return false;
  }

  // A mapping of an entry's fields. One with more keys than any entry can have is refused
  // without walking it: that keeps an aliased huge mapping from costing a walk per reference.
  bool ExpectFieldMap(const YAML::Node& node, const std::string& path) {
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

  // A scalar string; `what` names it in the message ("team name").
  bool ScalarString(const YAML::Node& node, const std::string& path, std::string* out) {
    if (!node.IsScalar()) {
      Problem(Line(node), path, std::string("is ") + NodeTypeName(node) + ", expected a string");
      return false;
    }
    *out = node.Scalar();
    return true;
  }

  // A mapping key as a non-empty name.
  bool Name(const YAML::Node& key, const std::string& path, std::string* out) {
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

  static bool IsBlank(const std::string& s) {
    return s.find_first_not_of(" \t\r\n") == std::string::npos;
  }

  void ParseRoot(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) {
      Problem(0, "", "registry is empty");
      return;
    }
    if (!ExpectMap(root, "top level")) return;
    std::set<std::string, std::less<>> seen;
    // Held by optional + emplace: assigning to a bound YAML::Node writes through to the node
    // it refers to instead of rebinding it.
    std::optional<YAML::Node> default_team_node;
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (!Visit(it->first)) return;
      std::string key;
      if (!Name(it->first, "top level", &key)) continue;
      if (!seen.insert(key).second) {
        Problem(Line(it->first), key, "duplicate key");
        continue;
      }
      if (key == "default_team") {
        default_team_node.emplace(it->second);
      } else if (key == "teams") {
        ParseTeams(it->second);
      } else if (key == "services") {
        ParseServices(it->second);
      } else {
        Problem(Line(it->first), key, "unknown key (known: default_team, teams, services)");
      }
    }
    if (default_team_node.has_value()) {
      const YAML::Node& node = *default_team_node;
      if (node.IsNull()) return;  // `default_team:` with no value: none
      std::string team;
      if (ScalarString(node, "default_team", &team) && !team.empty()) {
        if (registry_.teams_.count(team) == 0) {
          Problem(Line(node), "default_team", "unknown team \"" + team + "\"" + KnownTeams());
        } else {
          registry_.default_team_ = team;
        }
      }
    }
    for (const auto& [name, entry] : registry_.services_) {
      if (!entry.team.empty() && registry_.teams_.count(entry.team) == 0) {
        Problem(team_lines_[name], "services." + name + ".team",
                "unknown team \"" + entry.team + "\"" + KnownTeams());
      }
    }
  }

  std::string KnownTeams() const {
    if (registry_.teams_.empty()) return " (no teams are defined)";
    std::string s = " (known: ";
    size_t n = 0;
    for (const auto& [name, team] : registry_.teams_) {
      if (n > 0) s += ", ";
      if (++n > 10) {
        s += "...";
        break;
      }
      s += name;
    }
    return s + ")";
  }

  void ParseTeams(const YAML::Node& teams) {
    if (teams.IsNull()) return;
    if (!ExpectMap(teams, "teams")) return;
    for (auto it = teams.begin(); it != teams.end(); ++it) {
      if (!Visit(it->first)) return;
      std::string name;
      if (!Name(it->first, "teams", &name)) continue;
      const std::string path = "teams." + name;
      if (registry_.teams_.count(name) != 0) {
        Problem(
            Line(it->first), path,
            "duplicate team (first at line " + std::to_string(registry_.teams_[name].line) + ")");
        continue;
      }
      const YAML::Node body = it->second;  // a copy: it-> yields a temporary
      if (!body.IsNull()) {
        if (!ExpectFieldMap(body, path)) continue;
        for (auto f = body.begin(); f != body.end(); ++f) {
          if (!Visit(f->first)) return;
          std::string key = f->first.IsScalar() ? f->first.Scalar() : std::string("?");
          Problem(Line(f->first), path + "." + key, "unknown key (a team has no fields yet)");
        }
      }
      registry_.teams_.emplace(name, Team{name, Line(it->first)});
    }
  }

  void ParseServices(const YAML::Node& services) {
    if (services.IsNull()) return;
    if (!ExpectMap(services, "services")) return;
    for (auto it = services.begin(); it != services.end(); ++it) {
      if (!Visit(it->first)) return;
      std::string name;
      if (!Name(it->first, "services", &name)) continue;
      const std::string path = "services." + name;
      if (auto found = registry_.services_.find(name); found != registry_.services_.end()) {
        Problem(Line(it->first), path,
                "duplicate service (first at line " + std::to_string(found->second.line) + ")");
        continue;
      }
      const YAML::Node body = it->second;  // a copy: it-> yields a temporary
      if (!ExpectFieldMap(body, path)) continue;
      ServiceEntry entry;
      entry.name = name;
      entry.line = Line(it->first);
      bool has_team = false;
      bool ok = true;
      std::set<std::string, std::less<>> seen;
      for (auto f = body.begin(); f != body.end(); ++f) {
        if (!Visit(f->first)) return;
        std::string key;
        if (!Name(f->first, path, &key)) {
          ok = false;
          continue;
        }
        if (!seen.insert(key).second) {
          Problem(Line(f->first), path + "." + key, "duplicate key");
          ok = false;
          continue;
        }
        if (key == "team") {
          if (!ScalarString(f->second, path + ".team", &entry.team)) {
            ok = false;
          } else if (IsBlank(entry.team)) {
            Problem(Line(f->second), path + ".team", "empty team name");
            ok = false;
          } else {
            has_team = true;
            team_lines_[name] = Line(f->second);
          }
        } else {
          Problem(Line(f->first), path + "." + key, "unknown key (known: team)");
          ok = false;
        }
      }
      if (!has_team && ok) {
        Problem(Line(it->first), path, "missing \"team\"");
        ok = false;
      }
      if (!ok) {
        // Keep the name so a later duplicate is still reported, but with no team it owns
        // nothing; the load fails anyway.
        entry.team.clear();
      }
      registry_.services_.emplace(name, std::move(entry));
    }
  }

  std::string_view source_;
  Registry registry_;
  std::map<std::string, int, std::less<>> team_lines_;  // service -> line of its `team:`
  std::vector<std::string> problems_;
  size_t dropped_problems_ = 0;
  long budget_ = kVisitBudget;
  bool budget_reported_ = false;
};

Result<Registry> Registry::FromYaml(std::string_view text, std::string_view source) {
  return RegistryParser(source).Parse(text);
}

const ServiceEntry* Registry::FindService(std::string_view service_name) const {
  auto it = services_.find(service_name);
  return it == services_.end() ? nullptr : &it->second;
}

const Team* Registry::FindTeam(std::string_view team_name) const {
  auto it = teams_.find(team_name);
  return it == teams_.end() ? nullptr : &it->second;
}

}  // namespace tracepager::routing
