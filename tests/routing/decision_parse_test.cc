#include "routing/decision_parse.h"

#include <gtest/gtest.h>

#include "routing/decision_format.h"
#include "tests/support/sample_decisions.h"

namespace tracepager::routing {
namespace {

using testing::SampleRoutedDecision;

TEST(DecisionParse, RoundTripDrawsTheSameText) {
  const Decision original = SampleRoutedDecision();
  const std::string json = DecisionToJson(original);
  Result<Decision> back = DecisionFromJson(json);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(DecisionToText(*back), DecisionToText(original));
  EXPECT_EQ(DecisionToJson(*back), json);
  ASSERT_EQ(back->traces.size(), 1u);
  ASSERT_EQ(back->traces[0].culprits.size(), 1u);
  EXPECT_EQ(back->traces[0].culprits[0].path.size(), 4u);
  EXPECT_EQ(back->traces[0].culprits[0].path[3].span_id, 0xa1b2c3d4e5f60008u);
  EXPECT_EQ(back->traces[0].culprits[0].caller, "payment");
}

TEST(DecisionParse, WrongTypeNamesThePath) {
  std::string json = DecisionToJson(SampleRoutedDecision());
  const std::string from = "\"start_offset_ns\":30000000";
  ASSERT_NE(json.find(from), std::string::npos);
  json.replace(json.find(from), from.size(), "\"start_offset_ns\":\"soon\"");
  Result<Decision> back = DecisionFromJson(json);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.error().message,
            "traces[0].culprits[0].spans[3].start_offset_ns: expected an integer");
}

TEST(DecisionParse, UnknownKeysAndRefinementsAreIgnored) {
  std::string json = DecisionToJson(SampleRoutedDecision());
  json.insert(1, "\"added_later\":{\"x\":[1,2]},");
  const std::string from = "\"changed_by\":[\"uninstrumented\"]";
  json.replace(json.rfind(from), from.size(), "\"changed_by\":[\"uninstrumented\",\"future\"]");
  Result<Decision> back = DecisionFromJson(json);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->changed_by.size(), 1u);
}

TEST(DecisionParse, RefusesWhatIsNotADecision) {
  EXPECT_FALSE(DecisionFromJson("{\"decision\":\"maybe\"}").ok());
  EXPECT_FALSE(DecisionFromJson("[]").ok());
  EXPECT_FALSE(DecisionFromJson("{\"decision\":\"routed\"").ok());
  EXPECT_FALSE(DecisionFromJson(std::string(100000, '[')).ok());
  EXPECT_FALSE(DecisionFromJson("{\"decision\":\"routed\",\"traces\":{}}").ok());
}

}  // namespace
}  // namespace tracepager::routing
