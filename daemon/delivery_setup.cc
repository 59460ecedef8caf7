#include "daemon/delivery_setup.h"

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

}  // namespace tracepager::daemon
