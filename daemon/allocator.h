// Which malloc serves this process: the tracepager binary links jemalloc by default
// (TRACEPAGER_JEMALLOC in CMakeLists.txt says why); -DTRACEPAGER_JEMALLOC=OFF builds use glibc's,
// sanitizer builds the sanitizer's. Shown by `tracepager --version` and in the daemon's serve_ready
// log line, so that a benchmark or an operator can tell which one a binary actually runs with.
#pragma once

#include <string>

namespace tracepager::daemon {

// "jemalloc <version>" when jemalloc's malloc is the process's (found at run time, not taken
// from the build's options), else "system malloc" (glibc's, or a sanitizer's).
std::string AllocatorInUse();

}  // namespace tracepager::daemon
