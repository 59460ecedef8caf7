#include "integrations/trace_source.h"

#include <gtest/gtest.h>

namespace tracepager::integrations {
namespace {

TEST(NormalizeTraceId, PadsLowercasesAndRefusesNonHex) {
  EXPECT_EQ(NormalizeTraceId("4BF92F3577B34DA6A3CE929D0E0E4736"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(NormalizeTraceId("a3ce929d0e0e4736"), "0000000000000000a3ce929d0e0e4736");
  EXPECT_EQ(NormalizeTraceId("1"), "00000000000000000000000000000001");
  EXPECT_EQ(NormalizeTraceId(""), std::nullopt);
  EXPECT_EQ(NormalizeTraceId("4bf92f3577b34da6a3ce929d0e0e47361"), std::nullopt);  // 33 digits
  EXPECT_EQ(NormalizeTraceId("4bf92f35-77b3"), std::nullopt);
  EXPECT_EQ(NormalizeTraceId("../../etc/passwd"), std::nullopt);
}

}  // namespace
}  // namespace tracepager::integrations
