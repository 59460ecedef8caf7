// Reading a Backstage catalog from disk: one catalog-info YAML file, one saved catalog API
// answer (*.json), or a directory tree of them. The parsing is routing/backstage.h; this is the
// I/O around it.
//
// A directory is walked recursively (symlinked directories are not followed; hidden entries,
// whose names start with '.', are skipped) for *.yaml, *.yml and *.json files, read in sorted
// path order so results do not depend on the file system. Bounds: kMaxCatalogFiles files, each
// at most routing::kMaxCatalogBytes, kMaxCatalogTotalBytes in all, kMaxCatalogDepth levels.
// A file that cannot be parsed is recorded in the catalog's `problems` and the rest still load
// (one broken catalog-info.yaml in a monorepo must not hide every other owner); a path that
// does not exist or cannot be read at the top level is an error.
#pragma once

#include <cstddef>
#include <string>

#include "routing/backstage.h"
#include "routing/result.h"

namespace tracepager::daemon {

inline constexpr size_t kMaxCatalogFiles = 20'000;
inline constexpr size_t kMaxCatalogTotalBytes = 256u << 20;
inline constexpr int kMaxCatalogDepth = 32;

Result<routing::BackstageCatalog> LoadBackstageCatalog(const std::string& path);

}  // namespace tracepager::daemon
