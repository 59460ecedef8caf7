// ReleaseFreedMemory: jemalloc's freed pages go back to the system at once. This test program
// links jemalloc as the tracepager binary does (tests/CMakeLists.txt); without it (sanitizer
// builds, -DTRACEPAGER_JEMALLOC=OFF) the build checks instead that there is nothing to call.
#include "daemon/allocator.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace tracepager::daemon {
namespace {

#ifndef TRACEPAGER_EXPECT_JEMALLOC
#error "tests/CMakeLists.txt defines TRACEPAGER_EXPECT_JEMALLOC for this test"
#endif

using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);

#if TRACEPAGER_EXPECT_JEMALLOC

// Dirty pages in every arena: freed, still resident, not yet returned.
size_t DirtyPages(Mallctl mallctl) {
  uint64_t epoch = 1;
  size_t size = sizeof(epoch);
  EXPECT_EQ(mallctl("epoch", &epoch, &size, &epoch, size), 0);  // refreshes the statistics
  size_t pages = 0;
  size = sizeof(pages);
  EXPECT_EQ(mallctl("stats.arenas.4096.pdirty", &pages, &size, nullptr, 0), 0);
  return pages;
}

TEST(Allocator, ReleaseFreedMemoryReturnsEveryDirtyPage) {
  EXPECT_EQ(AllocatorInUse().rfind("jemalloc ", 0), 0u) << AllocatorInUse();
  auto mallctl = reinterpret_cast<Mallctl>(::dlsym(RTLD_DEFAULT, "mallctl"));
  ASSERT_NE(mallctl, nullptr) << "this test program links jemalloc (tests/CMakeLists.txt)";
  ReleaseFreedMemory();
  // A claim's worth of memory, touched and freed: 32 MiB in 1 MiB blocks.
  {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < 32; ++i) {
      blocks.push_back(std::make_unique<char[]>(1 << 20));
      std::memset(blocks.back().get(), 1, 1 << 20);
    }
  }
  size_t before = DirtyPages(mallctl);
  EXPECT_GT(before, 0u) << "jemalloc keeps freed pages for its decay time";
  ReleaseFreedMemory();
  EXPECT_EQ(DirtyPages(mallctl), 0u) << "of " << before;
  ReleaseFreedMemory();  // with nothing to give back
  EXPECT_EQ(DirtyPages(mallctl), 0u);
}

#else

// Sanitizer builds and -DTRACEPAGER_JEMALLOC=OFF: no mallctl to call, and calling
// ReleaseFreedMemory is harmless (the allocator in use keeps working).
TEST(Allocator, ReleaseFreedMemoryIsANoOpWithoutJemalloc) {
  EXPECT_EQ(AllocatorInUse(), "system malloc");
  EXPECT_EQ(::dlsym(RTLD_DEFAULT, "mallctl"), nullptr);
  ReleaseFreedMemory();
  auto block = std::make_unique<char[]>(1 << 20);
  std::memset(block.get(), 1, 1 << 20);
  EXPECT_EQ(block[(1 << 20) - 1], 1);
}

#endif

}  // namespace
}  // namespace tracepager::daemon
