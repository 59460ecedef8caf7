// See allocator.h.
#include "daemon/allocator.h"

#include <dlfcn.h>

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

void ReleaseFreedMemory() {
  Mallctl mallctl = FindMallctl();
  if (mallctl == nullptr) return;
  // 4096 is MALLCTL_ARENAS_ALL (jemalloc's <jemalloc/jemalloc.h>): every arena at once.
  (void)mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
}

}  // namespace tracepager::daemon
