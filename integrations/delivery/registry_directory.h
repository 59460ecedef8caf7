// The delivery directory (target_directory.h) from a loaded ownership registry: each team's
// PagerDuty, Opsgenie, Slack and webhook targets, its fallback, the default team, and service-
// level targets under the service's name and each of its aliases (a culprit may be named by
// an alias in the traces).
// A target whose secret did not resolve (a registry loaded for offline use) cannot page and is
// left out; each such target is reported in `problems` by team and reference, never by value.
// Pure; safe to call concurrently.
#pragma once

#include <string>
#include <vector>

#include "integrations/delivery/target_directory.h"
#include "routing/registry.h"

namespace tracepager::integrations::delivery {

TargetDirectory DirectoryFromRegistry(const routing::Registry& registry,
                                      std::vector<std::string>* problems = nullptr);

}  // namespace tracepager::integrations::delivery
