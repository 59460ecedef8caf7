#include "integrations/delivery/target_directory.h"

#include <algorithm>

namespace tracepager::integrations::delivery {

std::vector<PagerTarget> TargetDirectory::TargetsFor(std::string_view team,
                                                     std::string_view service) const {
  if (!service.empty()) {
    auto s = services.find(service);
    if (s != services.end() && !s->second.empty()) return s->second;
  }
  auto t = teams.find(team);
  if (t == teams.end()) return {};
  return t->second.targets;
}

std::string TargetDirectory::NextTeam(const std::vector<std::string>& tried) const {
  auto seen = [&](const std::string& team) {
    return std::find(tried.begin(), tried.end(), team) != tried.end();
  };
  if (!tried.empty()) {
    auto t = teams.find(tried.back());
    if (t != teams.end() && !t->second.fallback.empty() && !seen(t->second.fallback)) {
      return t->second.fallback;
    }
  }
  if (!default_team.empty() && !seen(default_team)) return default_team;
  return {};
}

}  // namespace tracepager::integrations::delivery
