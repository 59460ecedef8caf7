// See allocator.h.
#include "daemon/allocator.h"

#include <dlfcn.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>

namespace tracepager::daemon {

namespace {

// jemalloc exports mallctl() next to malloc(); looking it up by name keeps this file free of a
// build-time dependency, and answers for the allocator actually loaded. nullptr without jemalloc.
using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
Mallctl FindMallctl() {
  static const Mallctl mallctl = reinterpret_cast<Mallctl>(::dlsym(RTLD_DEFAULT, "mallctl"));
  return mallctl;
}

}  // namespace

std::string AllocatorInUse() {
  Mallctl mallctl = FindMallctl();
  if (mallctl == nullptr) return "system malloc";
  const char* version = nullptr;
  size_t size = sizeof(version);
  if (mallctl("version", &version, &size, nullptr, 0) != 0 || version == nullptr) {
    return "jemalloc";
  }
  std::string out = std::string("jemalloc ") + version;
  ssize_t decay = 0;
  size = sizeof(decay);
  if (mallctl("opt.dirty_decay_ms", &decay, &size, nullptr, 0) == 0) {
    out += ", dirty_decay_ms " + std::to_string(decay);
  }
  return out;
}

namespace {

// The acknowledgement arena's index; 0 (an arena jemalloc always has, never this one) until
// UseAcknowledgementArena made it.
std::atomic<unsigned> acknowledgement_arena{0};

// Makes the acknowledgement arena; 0 when it cannot be made.
unsigned MakeAcknowledgementArena(Mallctl mallctl) {
  unsigned index = 0;
  size_t size = sizeof(index);
  if (mallctl("arenas.create", &index, &size, nullptr, 0) != 0) return 0;
  ssize_t decay = kAcknowledgementArenaDecayMs;
  std::string name = "arena." + std::to_string(index) + ".dirty_decay_ms";
  if (mallctl(name.c_str(), nullptr, nullptr, &decay, sizeof(decay)) != 0) return 0;
  acknowledgement_arena.store(index);
  return index;
}

}  // namespace

bool UseAcknowledgementArena() {
  Mallctl mallctl = FindMallctl();
  if (mallctl == nullptr) return false;
  static const unsigned arena = MakeAcknowledgementArena(mallctl);
  if (arena == 0) return false;
  unsigned index = arena;
  return mallctl("thread.arena", nullptr, nullptr, &index, sizeof(index)) == 0;
}

void ReleaseFreedMemory(FreedMemory where) {
  Mallctl mallctl = FindMallctl();
  if (mallctl == nullptr) return;
  const unsigned kept = acknowledgement_arena.load();
  if (where == FreedMemory::kEverywhere || kept == 0) {
    // 4096 is MALLCTL_ARENAS_ALL (jemalloc's <jemalloc/jemalloc.h>): every arena at once.
    (void)mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
  unsigned arenas = 0;
  size_t size = sizeof(arenas);
  if (mallctl("arenas.narenas", &arenas, &size, nullptr, 0) != 0) return;
  for (unsigned i = 0; i < arenas; ++i) {
    if (i == kept) continue;
    // An arena no thread has used yet has nothing to give back (jemalloc skips it).
    std::string name = "arena." + std::to_string(i) + ".purge";
    (void)mallctl(name.c_str(), nullptr, nullptr, nullptr, 0);
  }
}

}  // namespace tracepager::daemon
