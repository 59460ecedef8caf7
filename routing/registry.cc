#include "routing/registry.h"

#include <set>

namespace tracepager::routing {

const char* OriginName(Origin origin) {
  return origin == Origin::kBackstage ? "backstage" : "local";
}

bool PagerTargets::CanPage() const {
  return (pagerduty && pagerduty->routing_key) ||
         (opsgenie && (!opsgenie->team.empty() || !opsgenie->team_id.empty())) ||
         (slack && slack->webhook_url) || webhook.has_value();
}

std::string RegistryProblem::ToString() const {
  std::string s = source;
  if (line > 0) s += ":" + std::to_string(line);
  s += ": ";
  if (!path.empty()) s += path + ": ";
  return s + message;
}

Result<Registry> Registry::FromYaml(std::string_view text, std::string_view source,
                                    const RegistryLoadOptions& options) {
  RegistryLint lint = Lint(text, source, options);
  if (lint.parsed && lint.problems.empty()) return std::move(lint.registry);
  std::string message;
  for (const RegistryProblem& p : lint.problems) {
    if (!message.empty()) message += '\n';
    message += p.ToString();
  }
  if (lint.dropped_problems > 0) {
    message += "\n" + std::string(source) + ": ... and " + std::to_string(lint.dropped_problems) +
               " more problems";
  }
  if (message.empty()) message = std::string(source) + ": registry did not load";
  return Error::InvalidInput(std::move(message));
}

const ServiceEntry* Registry::FindService(std::string_view service_name) const {
  if (auto it = services_.find(service_name); it != services_.end()) return &it->second;
  if (auto a = aliases_.find(service_name); a != aliases_.end()) {
    if (auto it = services_.find(a->second); it != services_.end()) return &it->second;
  }
  return nullptr;
}

const Team* Registry::FindTeam(std::string_view team_name) const {
  auto it = teams_.find(team_name);
  return it == teams_.end() ? nullptr : &it->second;
}

const Team* Registry::PageableTeam(std::string_view team_name) const {
  std::set<std::string_view> seen;
  const Team* team = FindTeam(team_name);
  while (team != nullptr && seen.insert(team->name).second) {
    if (team->pager.CanPage()) return team;
    if (team->fallback.empty()) return nullptr;
    team = FindTeam(team->fallback);
  }
  return nullptr;
}

}  // namespace tracepager::routing
