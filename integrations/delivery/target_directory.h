// TargetDirectory: who is paged through what, as delivery needs it. A plain snapshot built from
// the ownership registry (routing/registry.h) when it loads; a registry reload builds a new one
// and swaps it into Delivery, while pages already in the outbox keep the targets they were
// persisted with.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "integrations/pager.h"

namespace tracepager::integrations::delivery {

struct TeamPagers {
  std::vector<PagerTarget> targets;  // every target that can deliver; may be empty
  std::string fallback;              // escalation fallback team; empty: none
};

struct TargetDirectory {
  std::map<std::string, TeamPagers, std::less<>> teams;
  // Service-level targets, which replace the owning team's for pages about that service
  // (the registry's per-service `pagerduty:` etc.).
  std::map<std::string, std::vector<PagerTarget>, std::less<>> services;
  std::string default_team;  // paged when a team cannot be reached and has no fallback

  // The targets for a page to `team` about `service`: the service's own when it has any, else
  // the team's. Empty when the team is unknown or has none.
  std::vector<PagerTarget> TargetsFor(std::string_view team, std::string_view service) const;
  // The next team to try after `tried` (the chain so far, the failing team last): that team's
  // fallback, else the default team, skipping teams already tried. "" when there is none.
  std::string NextTeam(const std::vector<std::string>& tried) const;
};

}  // namespace tracepager::integrations::delivery
