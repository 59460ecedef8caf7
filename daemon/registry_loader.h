// Loading the ownership registry the config names (registry section), for `check`, `serve`
// (at start and on reload) and `route --config`.
#pragma once

#include <memory>

#include "daemon/config.h"
#include "routing/registry.h"
#include "routing/result.h"

namespace tracepager::daemon {

// Reads and validates the registry at config.path. Fails with kInvalidInput carrying
// routing::Registry::FromYaml's messages (one problem per line, each naming file and line), or
// naming the file when it cannot be read. A backstage_path is refused until Backstage import
// exists, rather than silently ignored.
Result<std::shared_ptr<const routing::Registry>> LoadRegistry(const RegistryConfig& config);

}  // namespace tracepager::daemon
