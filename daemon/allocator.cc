// See allocator.h.
#include "daemon/allocator.h"

#include <dlfcn.h>

#include <cstddef>

namespace tracepager::daemon {

std::string AllocatorInUse() {
  // jemalloc exports mallctl() next to malloc(); looking it up by name keeps this file free of
  // a build-time dependency, and answers for the allocator actually loaded.
  using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
  void* symbol = ::dlsym(RTLD_DEFAULT, "mallctl");
  if (symbol == nullptr) return "system malloc";
  const char* version = nullptr;
  size_t size = sizeof(version);
  if (reinterpret_cast<Mallctl>(symbol)("version", &version, &size, nullptr, 0) != 0 ||
      version == nullptr) {
    return "jemalloc";
  }
  return std::string("jemalloc ") + version;
}

}  // namespace tracepager::daemon
