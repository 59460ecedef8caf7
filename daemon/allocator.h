// Which malloc serves this process: the tracepager binary links jemalloc by default
// (TRACEPAGER_JEMALLOC in CMakeLists.txt says why); -DTRACEPAGER_JEMALLOC=OFF builds use glibc's,
// sanitizer builds the sanitizer's. Shown by `tracepager --version` and in the daemon's serve_ready
// log line, so that a benchmark or an operator can tell which one a binary actually runs with.
#pragma once

#include <string>

namespace tracepager::daemon {

// "jemalloc <version>, dirty_decay_ms <ms>" when jemalloc's malloc is the process's (found at
// run time, not taken from the build's options; the binary sets the decay to 0: daemon/main.cc),
// else "system malloc" (glibc's, or a sanitizer's).
std::string AllocatorInUse();

// Gives the memory the allocator holds freed but not yet returned (jemalloc's dirty and muzzy
// pages, in every arena) back to the system now; nothing with another allocator. A worker calls
// it after routing a large group, and the daemon's main thread once a second. Why: a storm's
// group holds up to workers.max_group jobs, a few MB, and is freed all at once; jemalloc keeps
// such pages for reuse and returns them only after its decay time (10 s) of allocator activity,
// and with threads in several arenas a sustained storm kept the sum of their peaks resident:
// 1.8-2.5 times the daemon's memory after its first thousand alerts, 1.4-1.6 with both calls,
// and neither call alone was enough (bench/README.md, "Pacing, and memory under a sustained
// storm"). The tracepager binary now has jemalloc return pages as they are freed
// (dirty_decay_ms 0, daemon/main.cc), which leaves these calls little to do; they stay for a
// process run with other settings (MALLOC_CONF).
void ReleaseFreedMemory();

}  // namespace tracepager::daemon
