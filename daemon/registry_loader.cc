#include "daemon/registry_loader.h"

#include "daemon/file_util.h"

namespace tracepager::daemon {

Result<std::shared_ptr<const routing::Registry>> LoadRegistry(const RegistryConfig& config) {
  if (!config.backstage_path.empty()) {
    // A config that names a catalog expects its owners to be used; ignoring it would page the
    // default team for every service the catalog knows.
    return Error::InvalidInput("registry.backstage_path: " + config.backstage_path +
                               ": Backstage import is not available in this build");
  }
  Result<std::string> text = ReadFileCapped(config.path, routing::kMaxRegistryBytes);
  if (!text.ok()) return Error::InvalidInput("registry: " + text.error().message);
  Result<routing::Registry> registry = routing::Registry::FromYaml(*text, config.path);
  if (!registry.ok()) return registry.error();
  return std::make_shared<const routing::Registry>(std::move(*registry));
}

}  // namespace tracepager::daemon
