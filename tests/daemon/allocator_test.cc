// ReleaseFreedMemory: jemalloc's freed pages go back to the system at once; the acknowledgement
// arena keeps its own until everything is released. This test program links jemalloc as the
// tracepager binary does (tests/CMakeLists.txt); without it (sanitizer builds,
// -DTRACEPAGER_JEMALLOC=OFF) the build checks instead that there is nothing to call.
#include "daemon/allocator.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tracepager::daemon {
namespace {

#ifndef TRACEPAGER_EXPECT_JEMALLOC
#error "tests/CMakeLists.txt defines TRACEPAGER_EXPECT_JEMALLOC for this test"
#endif

using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);

#if TRACEPAGER_EXPECT_JEMALLOC

// Dirty pages in arena `arena` (4096: every arena): freed, still resident, not yet returned.
size_t DirtyPages(Mallctl mallctl, unsigned arena = 4096) {
  uint64_t epoch = 1;
  size_t size = sizeof(epoch);
  EXPECT_EQ(mallctl("epoch", &epoch, &size, &epoch, size), 0);  // refreshes the statistics
  size_t pages = 0;
  size = sizeof(pages);
  std::string name = "stats.arenas." + std::to_string(arena) + ".pdirty";
  EXPECT_EQ(mallctl(name.c_str(), &pages, &size, nullptr, 0), 0) << name;
  return pages;
}

Mallctl FindMallctl() { return reinterpret_cast<Mallctl>(::dlsym(RTLD_DEFAULT, "mallctl")); }

// The arena the calling thread allocates from.
unsigned ThreadArena(Mallctl mallctl) {
  unsigned arena = 0;
  size_t size = sizeof(arena);
  EXPECT_EQ(mallctl("thread.arena", &arena, &size, nullptr, 0), 0);
  return arena;
}

// Allocates and touches `mib` MiB in 64 KiB blocks, and frees them.
void Churn(int mib) {
  std::vector<std::unique_ptr<char[]>> blocks;
  for (int i = 0; i < mib * 16; ++i) {
    blocks.push_back(std::make_unique<char[]>(64 << 10));
    std::memset(blocks.back().get(), 1, 64 << 10);
  }
}

TEST(Allocator, ReleaseFreedMemoryReturnsEveryDirtyPage) {
  EXPECT_EQ(AllocatorInUse().rfind("jemalloc ", 0), 0u) << AllocatorInUse();
  Mallctl mallctl = FindMallctl();
  ASSERT_NE(mallctl, nullptr) << "this test program links jemalloc (tests/CMakeLists.txt)";
  ReleaseFreedMemory(FreedMemory::kEverywhere);
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
  ReleaseFreedMemory(FreedMemory::kEverywhere);
  EXPECT_EQ(DirtyPages(mallctl), 0u) << "of " << before;
  ReleaseFreedMemory(FreedMemory::kEverywhere);  // with nothing to give back
  EXPECT_EQ(DirtyPages(mallctl), 0u);
}

// The acknowledgement arena: one arena for every thread that asks, with its own decay time;
// what is freed there (on any thread) stays for reuse through a worker's release and goes back
// with the main thread's. (jemalloc gives an arena's freed pages back when its last thread
// exits: a thread stays in it throughout, as the daemon's io threads do.)
TEST(Allocator, TheAcknowledgementArenaKeepsFreedPagesUntilEverythingIsReleased) {
  Mallctl mallctl = FindMallctl();
  ASSERT_NE(mallctl, nullptr);
  const unsigned before = ThreadArena(mallctl);
  unsigned first = 0, second = 0;
  std::unique_ptr<char[]> made_there;
  std::promise<void> churned, checked;
  std::thread io([&] {
    EXPECT_TRUE(UseAcknowledgementArena());
    first = ThreadArena(mallctl);
    made_there = std::make_unique<char[]>(4 << 20);  // freed on the test's thread, below
    std::memset(made_there.get(), 1, 4 << 20);
    ReleaseFreedMemory(FreedMemory::kEverywhere);
    Churn(8);
    churned.set_value();
    checked.get_future().wait();
  });
  churned.get_future().wait();
  std::thread([&] {
    EXPECT_TRUE(UseAcknowledgementArena());
    second = ThreadArena(mallctl);
  }).join();
  EXPECT_EQ(first, second) << "one arena, shared";
  EXPECT_NE(first, before);
  EXPECT_EQ(ThreadArena(mallctl), before) << "other threads stay where they were";
  ssize_t decay = 0;
  size_t size = sizeof(decay);
  std::string name = "arena." + std::to_string(first) + ".dirty_decay_ms";
  EXPECT_EQ(mallctl(name.c_str(), &decay, &size, nullptr, 0), 0);
  EXPECT_EQ(decay, kAcknowledgementArenaDecayMs);

  size_t churn = DirtyPages(mallctl, first);
  EXPECT_GT(churn, 0u) << "freed pages kept for reuse";
  made_there.reset();  // freed here, it goes back to the arena it came from
  Churn(8);            // and this thread's own arena keeps some too (a 10 s decay here)
  EXPECT_GT(DirtyPages(mallctl, first), churn);
  EXPECT_GT(DirtyPages(mallctl) - DirtyPages(mallctl, first), 0u);

  ReleaseFreedMemory(FreedMemory::kOutsideAcknowledgementArena);
  EXPECT_GT(DirtyPages(mallctl, first), churn) << "a worker's release leaves them";
  EXPECT_EQ(DirtyPages(mallctl) - DirtyPages(mallctl, first), 0u) << "and returns the others";

  ReleaseFreedMemory(FreedMemory::kEverywhere);
  EXPECT_EQ(DirtyPages(mallctl), 0u) << "the main thread's returns them too";
  checked.set_value();
  io.join();
}

#else

// Sanitizer builds and -DTRACEPAGER_JEMALLOC=OFF: no mallctl to call, and calling
// ReleaseFreedMemory or UseAcknowledgementArena is harmless (the allocator in use keeps
// working, no arena is made).
TEST(Allocator, ReleaseFreedMemoryIsANoOpWithoutJemalloc) {
  EXPECT_EQ(AllocatorInUse(), "system malloc");
  EXPECT_EQ(::dlsym(RTLD_DEFAULT, "mallctl"), nullptr);
  ReleaseFreedMemory(FreedMemory::kEverywhere);
  ReleaseFreedMemory(FreedMemory::kOutsideAcknowledgementArena);
  EXPECT_FALSE(UseAcknowledgementArena());
  auto block = std::make_unique<char[]>(1 << 20);
  std::memset(block.get(), 1, 1 << 20);
  EXPECT_EQ(block[(1 << 20) - 1], 1);
}

#endif

}  // namespace
}  // namespace tracepager::daemon
