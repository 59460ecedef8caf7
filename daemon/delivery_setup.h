// How pages leave the daemon: the delivery directory (who is paged through which target) for
// the configured pager section and the loaded registry.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "integrations/delivery/target_directory.h"
#include "routing/registry.h"

namespace tracepager::daemon {

// pager.type "log" (the embedded default): every team of the registry is paged through one
// `log` target, whatever pager targets the registry gives it (the daemon is running without
// pager accounts), and keeps its fallback team; the default team is the registry's.
// `problems` (may be null) receives one line per target that cannot page.
integrations::delivery::TargetDirectory BuildTargetDirectory(const PagerConfig& pager,
                                                             const routing::Registry& registry,
                                                             std::vector<std::string>* problems);

// The daemon's directory: as above, and with pager.type "registry" every target whose kind has
// no section under `pagers:` is left out (it could not page; its team falls back instead), as
// is an Opsgenie target without an API key of its own when pagers.opsgenie has none. Each one
// left out is a line in `problems`, naming the team or service and the kind, never a secret.
// `serve` logs these lines as warnings and runs; `check --config` reports them and fails.
integrations::delivery::TargetDirectory BuildTargetDirectory(const Config& config,
                                                             const routing::Registry& registry,
                                                             std::vector<std::string>* problems);

}  // namespace tracepager::daemon
