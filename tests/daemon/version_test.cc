// `tracepager --version`: the version and the malloc the binary runs with.
#include <gtest/gtest.h>

#include "daemon/build_info.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

// The build's TRACEPAGER_JEMALLOC, as applied to the binary (off under sanitizers); see
// tests/CMakeLists.txt.
#ifndef TRACEPAGER_EXPECT_JEMALLOC
#error "tests/CMakeLists.txt defines TRACEPAGER_EXPECT_JEMALLOC for this test"
#endif

TEST(Version, NamesTheVersionAndTheMallocInUse) {
  testing::ProcessResult r = testing::RunTracepager({"--version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(std::string(TRACEPAGER_VERSION) + " (malloc: ", 0), 0u) << r.out;
  // Found at run time: a binary that was meant to link jemalloc but runs glibc's malloc (the
  // library dropped at link time, say) fails here.
  if (TRACEPAGER_EXPECT_JEMALLOC) {
    EXPECT_NE(r.out.find("(malloc: jemalloc 5."), std::string::npos) << r.out;
    // The binary's own setting (daemon/main.cc) is the one in force.
    EXPECT_NE(r.out.find(", dirty_decay_ms 0)"), std::string::npos) << r.out;
  } else {
    EXPECT_NE(r.out.find("(malloc: system malloc)"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace tracepager::daemon
