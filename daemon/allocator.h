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

// Where ReleaseFreedMemory gives freed memory back from.
enum class FreedMemory {
  kEverywhere,                  // every arena, the acknowledgement arena's included
  kOutsideAcknowledgementArena  // every arena but the acknowledgement arena
};

// Gives the memory the allocator holds freed but not yet returned (jemalloc's dirty and muzzy
// pages) back to the system now; nothing with another allocator. A worker calls it after
// routing a large group (kOutsideAcknowledgementArena), and the daemon's main thread once a
// second (kEverywhere, which bounds what the acknowledgement arena keeps to a second's worth).
// Why: a storm's group holds up to workers.max_group jobs, a few MB, and is freed all at once;
// jemalloc keeps such pages for reuse and returns them only after its decay time (10 s) of
// allocator activity, and with threads in several arenas a sustained storm kept the sum of
// their peaks resident: 1.8-2.5 times the daemon's memory after its first thousand alerts,
// 1.4-1.6 with both calls, and neither call alone was enough (bench/README.md, "Pacing, and
// memory under a sustained storm"). The tracepager binary now has jemalloc return pages as they
// are freed (dirty_decay_ms 0, daemon/main.cc) outside the acknowledgement arena, which leaves
// these calls little to do there; they stay for a process run with other settings (MALLOC_CONF).
void ReleaseFreedMemory(FreedMemory where);

// How long the acknowledgement arena keeps a freed page for reuse, at most (jemalloc's
// dirty_decay_ms for that arena; ReleaseFreedMemory(kEverywhere) returns them sooner).
inline constexpr int kAcknowledgementArenaDecayMs = 1000;

// Has the calling thread allocate from the acknowledgement arena from now on: one jemalloc
// arena, made at the first call and shared by every thread that calls this, whose freed pages
// are kept for reuse (kAcknowledgementArenaDecayMs) instead of being returned at once like the
// rest of the process's. For the threads that take webhooks in (the HTTP io threads): each
// webhook's request, parsed jobs, record and batch are allocated there, and when they are freed
// (by the syncers, the intake, the store writer or a worker) their pages go back to that arena,
// where the next webhooks' allocations take them again. Returned at once, every such page
// cost a madvise (with a TLB shootdown on the other CPUs) and, at its next use, a page fault
// that cleared it again: about a tenth of the daemon's CPU per webhook (bench/README.md, "The
// acknowledgement arena"). What a storm's claims and groups allocate (the workers' and the
// store writer's arenas) is still returned at once. False (and nothing changes) without
// jemalloc, or when jemalloc cannot make the arena.
bool UseAcknowledgementArena();

}  // namespace tracepager::daemon
