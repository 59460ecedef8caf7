// Loading the ownership registry the config names (registry section), for `check`, `serve`
// (at start and on reload) and `route --config`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "routing/registry.h"
#include "routing/result.h"

namespace tracepager::daemon {

struct LoadedRegistry {
  std::shared_ptr<const routing::Registry> registry;
  // Backstage merge findings (conflicts with local entries, dangling owners), one line each.
  // Not errors: local entries win and the daemon runs; `check` and the log show them.
  std::vector<std::string> notes;
};

// Reads and validates the registry at config.path, then merges the Backstage catalog at
// config.backstage_path when set (local entries win). With `resolve_secrets`, pager target
// secrets ({file:}/{env:}) are read now and one that does not resolve is an error; without, they
// are checked for shape only (the `log` pager pages no real target). Fails with kInvalidInput
// carrying every problem, one per line, each naming file and line.
Result<LoadedRegistry> LoadRegistry(const RegistryConfig& config, bool resolve_secrets);

// Whether the configured pager sends to the registry's real targets (so their secrets must
// resolve): every pager type but "log".
bool PagerNeedsSecrets(const PagerConfig& pager);

}  // namespace tracepager::daemon
