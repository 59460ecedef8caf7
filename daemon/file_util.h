// Reading whole files with a size cap, for the CLI and the daemon (routing/ never reads files).
#pragma once

#include <cstddef>
#include <string>

#include "routing/result.h"

namespace tracepager::daemon {

// Reads `path` whole. Fails with kInvalidInput naming the path when it cannot be opened, is not a
// regular file, or is larger than `max_bytes` (checked before reading, so a huge file is never
// loaded).
Result<std::string> ReadFileCapped(const std::string& path, size_t max_bytes);

// fsyncs the directory `dir`, which makes a file created in it or renamed into it durable.
// kUnavailable naming the directory when it cannot be opened or synced.
Status SyncDirectory(const std::string& dir);

}  // namespace tracepager::daemon
