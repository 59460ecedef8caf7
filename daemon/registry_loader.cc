#include "daemon/registry_loader.h"

#include "daemon/backstage_loader.h"
#include "daemon/file_util.h"
#include "daemon/secrets.h"
#include "routing/backstage.h"

namespace tracepager::daemon {

bool PagerNeedsSecrets(const PagerConfig& pager) { return pager.type != "log"; }

Result<LoadedRegistry> LoadRegistry(const RegistryConfig& config, bool resolve_secrets) {
  Result<std::string> text = ReadFileCapped(config.path, routing::kMaxRegistryBytes);
  if (!text.ok()) return Error::InvalidInput("registry: " + text.error().message);
  routing::RegistryLoadOptions options;
  if (resolve_secrets) options.resolve_secret = SystemSecretResolver();
  Result<routing::Registry> registry = routing::Registry::FromYaml(*text, config.path, options);
  if (!registry.ok()) return registry.error();
  LoadedRegistry out;
  if (config.backstage_path.empty()) {
    out.registry = std::make_shared<const routing::Registry>(std::move(*registry));
    return out;
  }
  Result<routing::BackstageCatalog> catalog = LoadBackstageCatalog(config.backstage_path);
  if (!catalog.ok()) {
    return Error::InvalidInput("registry.backstage_path: " + catalog.error().message);
  }
  routing::BackstageMerge merged = routing::MergeBackstage(*registry, *catalog);
  for (const routing::RegistryProblem& p : catalog->problems) out.notes.push_back(p.ToString());
  for (const routing::MergeConflict& c : merged.conflicts) out.notes.push_back(c.ToString());
  for (const routing::RegistryProblem& p : merged.dangling) out.notes.push_back(p.ToString());
  for (const routing::RegistryProblem& p : merged.catalog_conflicts) {
    out.notes.push_back(p.ToString());
  }
  out.registry = std::make_shared<const routing::Registry>(std::move(merged.registry));
  return out;
}

}  // namespace tracepager::daemon
