#include "daemon/delivery_setup.h"

#include <fmt/format.h>

#include "integrations/delivery/registry_directory.h"

namespace tracepager::daemon {

integrations::delivery::TargetDirectory BuildTargetDirectory(const PagerConfig& pager,
                                                             const routing::Registry& registry,
                                                             std::vector<std::string>* problems) {
  if (pager.type != "log") {
    return integrations::delivery::DirectoryFromRegistry(registry, problems);
  }
  integrations::delivery::TargetDirectory dir;
  dir.default_team = registry.default_team();
  for (const auto& [name, team] : registry.teams()) {
    integrations::delivery::TeamPagers pagers;
    integrations::PagerTarget target;
    target.kind = "log";
    target.team = name;
    target.name = name;  // one target (and one key, one rate limit) per team
    pagers.targets.push_back(std::move(target));
    pagers.fallback = team.fallback;
    dir.teams.emplace(name, std::move(pagers));
  }
  return dir;
}

namespace {

// Why `t` cannot page with these pagers, or "" when it can.
std::string Unusable(const integrations::PagerTarget& t, const integrations::PagerConfigs& p) {
  if (t.kind == "pagerduty" && !p.pagerduty) return "no pagers.pagerduty section";
  if (t.kind == "slack" && !p.slack) return "no pagers.slack section";
  if (t.kind == "webhook" && !p.webhook) return "no pagers.webhook section";
  if (t.kind == "opsgenie") {
    if (!p.opsgenie) return "no pagers.opsgenie section";
    if (t.credential.empty() && p.opsgenie->api_key.empty()) {
      return "no api_key on the target and none under pagers.opsgenie";
    }
  }
  return "";
}

std::vector<integrations::PagerTarget> Usable(std::vector<integrations::PagerTarget> targets,
                                              const integrations::PagerConfigs& pagers,
                                              const std::string& owner,
                                              std::vector<std::string>* problems) {
  std::vector<integrations::PagerTarget> out;
  for (integrations::PagerTarget& t : targets) {
    std::string why = Unusable(t, pagers);
    if (why.empty()) {
      out.push_back(std::move(t));
    } else if (problems != nullptr) {
      problems->push_back(fmt::format("{}: {} target left out: {}", owner, t.kind, why));
    }
  }
  return out;
}

}  // namespace

integrations::delivery::TargetDirectory BuildTargetDirectory(const Config& config,
                                                             const routing::Registry& registry,
                                                             std::vector<std::string>* problems) {
  integrations::delivery::TargetDirectory dir =
      BuildTargetDirectory(config.pager, registry, problems);
  if (config.pager.type == "log") return dir;
  const integrations::PagerConfigs& pagers = config.paging.pagers;
  for (auto& [name, team] : dir.teams) {
    team.targets = Usable(std::move(team.targets), pagers, "team " + name, problems);
  }
  // Service targets are stored under the service's name and each alias: report each service
  // once, under its own name.
  for (auto it = dir.services.begin(); it != dir.services.end();) {
    bool own_name = registry.services().count(it->first) > 0;
    it->second = Usable(std::move(it->second), pagers, "service " + it->first,
                        own_name ? problems : nullptr);
    if (it->second.empty()) {
      it = dir.services.erase(it);
    } else {
      ++it;
    }
  }
  return dir;
}

}  // namespace tracepager::daemon
