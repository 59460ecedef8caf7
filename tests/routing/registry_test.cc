#include "routing/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace tracepager::routing {
namespace {

using ::testing::HasSubstr;

std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(std::string(TRACEPAGER_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Loads `yaml` and returns the error message, or "" when it loaded.
std::string LoadError(const std::string& yaml) {
  auto r = Registry::FromYaml(yaml, "reg.yaml");
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput) << r.error().message;
  return r.error().message;
}

TEST(Registry, LoadsMinimalRegistry) {
  auto r = Registry::FromYaml(
      "default_team: platform\n"
      "teams:\n"
      "  platform: {}\n"
      "  payments: {}\n"
      "services:\n"
      "  payment: {team: payments}\n"
      "  checkout:\n"
      "    team: platform\n",
      "reg.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->default_team(), "platform");
  ASSERT_NE(r->FindService("payment"), nullptr);
  EXPECT_EQ(r->FindService("payment")->team, "payments");
  EXPECT_EQ(r->FindService("payment")->line, 6);
  EXPECT_EQ(r->FindService("checkout")->team, "platform");
  EXPECT_EQ(r->FindService("checkout")->line, 7);
  EXPECT_EQ(r->FindService("nope"), nullptr);
  ASSERT_NE(r->FindTeam("payments"), nullptr);
  EXPECT_EQ(r->FindTeam("payments")->line, 4);
  EXPECT_EQ(r->FindTeam("nope"), nullptr);
  EXPECT_EQ(r->teams().size(), 2u);
  EXPECT_EQ(r->services().size(), 2u);
}

TEST(Registry, DefaultTeamIsOptional) {
  auto r = Registry::FromYaml("teams: {a: {}}\nservices: {s: {team: a}}\n", "reg.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->default_team(), "");
}

TEST(Registry, LoadsTheExampleRegistryInEtc) {
  const std::string text = ReadSourceFile("etc/registry.yaml");
  ASSERT_FALSE(text.empty());
  auto r = Registry::FromYaml(text, "etc/registry.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->default_team(), "platform");
  for (const char* s :
       {"frontend", "checkout", "cart", "payment", "currency", "shipping", "email",
        "product-catalog", "recommendation", "ad", "fraud-detection", "accounting", "kafka"}) {
    const ServiceEntry* e = r->FindService(s);
    ASSERT_NE(e, nullptr) << s;
    EXPECT_NE(r->FindTeam(e->team), nullptr) << s;
  }
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* expected;  // a substring of the error, including the line
};

class RegistryBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(RegistryBadInput, IsRefusedWithSourceAndLine) {
  const BadCase& c = GetParam();
  EXPECT_THAT(LoadError(c.yaml), HasSubstr(c.expected));
}

INSTANTIATE_TEST_SUITE_P(
    Rules, RegistryBadInput,
    ::testing::Values(
        BadCase{"UnknownTeam", "teams: {a: {}}\nservices:\n  s:\n    team: b\n",
                "reg.yaml:4: services.s.team: unknown team \"b\" (known: a)"},
        BadCase{"UnknownDefaultTeam", "default_team: x\nteams: {a: {}}\n",
                "reg.yaml:1: default_team: unknown team \"x\""},
        BadCase{"DuplicateService",
                "teams: {a: {}, b: {}}\nservices:\n  s: {team: a}\n  s: {team: b}\n",
                "reg.yaml:4: services.s: duplicate service (first at line 3)"},
        BadCase{"DuplicateTeam", "teams:\n  a: {}\n  a: {}\n",
                "reg.yaml:3: teams.a: duplicate team (first at line 2)"},
        BadCase{"DuplicateTopLevelKey", "teams: {a: {}}\nteams: {b: {}}\n",
                "reg.yaml:2: teams: duplicate key"},
        BadCase{"DuplicateFieldInService",
                "teams: {a: {}, b: {}}\nservices:\n  s:\n    team: a\n    team: b\n",
                "reg.yaml:5: services.s.team: duplicate key"},
        BadCase{"EmptyServiceName", "teams: {a: {}}\nservices:\n  \"\": {team: a}\n",
                "reg.yaml:3: services: empty name"},
        BadCase{"BlankTeamName", "teams:\n  \" \": {}\n", "reg.yaml:2: teams: empty name"},
        BadCase{"EmptyTeamReference", "teams: {a: {}}\nservices:\n  s: {team: \"\"}\n",
                "reg.yaml:3: services.s.team: empty team name"},
        BadCase{"MissingTeam", "teams: {a: {}}\nservices:\n  s: {}\n",
                "reg.yaml:3: services.s: missing \"team\""},
        BadCase{"ServicesIsASequence", "teams: {a: {}}\nservices:\n  - s\n",
                "reg.yaml:3: services: is a sequence, expected a mapping"},
        BadCase{"ServiceIsAScalar", "teams: {a: {}}\nservices:\n  s: a\n",
                "reg.yaml:3: services.s: is a scalar, expected a mapping"},
        BadCase{"TeamIsAMapping", "teams: {a: {}}\nservices:\n  s: {team: {x: 1}}\n",
                "reg.yaml:3: services.s.team: is a mapping, expected a string"},
        BadCase{"TopLevelIsASequence", "- a\n- b\n", "reg.yaml:1: top level: is a sequence"},
        BadCase{"KeyIsASequence", "teams: {a: {}}\nservices:\n  [x]: {team: a}\n",
                "reg.yaml:3: services: a key is a sequence, expected a name"},
        BadCase{"UnknownTopLevelKey", "teams: {a: {}}\nservice: {}\n",
                "reg.yaml:2: service: unknown key"},
        BadCase{"TypoInServiceField", "teams: {a: {}}\nservices:\n  s: {taem: a}\n",
                "reg.yaml:3: services.s.taem: unknown key"},
        BadCase{"EmptyDocument", "", "reg.yaml: registry is empty"},
        BadCase{"InvalidYaml", "teams: {a: {}}\nservices: [unclosed\n", "reg.yaml:"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.name); });

TEST(Registry, ReportsEveryProblemNotJustTheFirst) {
  const std::string error = LoadError(
      "teams: {a: {}}\n"
      "services:\n"
      "  s1: {team: x}\n"
      "  s2: {team: y}\n"
      "  s1: {team: a}\n");
  EXPECT_THAT(error, HasSubstr("reg.yaml:3: services.s1.team: unknown team \"x\""));
  EXPECT_THAT(error, HasSubstr("reg.yaml:4: services.s2.team: unknown team \"y\""));
  EXPECT_THAT(error, HasSubstr("reg.yaml:5: services.s1: duplicate service"));
}

TEST(Registry, RefusesOversizedInputUpFront) {
  std::string huge(kMaxRegistryBytes + 1, '#');
  EXPECT_THAT(LoadError(huge), HasSubstr("more than the limit"));
}

TEST(Registry, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = "teams: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
  EXPECT_THAT(LoadError(deep), HasSubstr("reg.yaml"));
  std::string block = "teams:\n";
  for (int i = 0; i < 20000; ++i) block += "- ";
  block += "x\n";
  EXPECT_THAT(LoadError(block), HasSubstr("reg.yaml"));
}

TEST(Registry, AliasBombIsRefusedWithinTheVisitBudget) {
  // A mapping of 3,000 keys referenced by 3,000 services is refused entry by entry without
  // walking it; 50 references to a 3000-service mapping would be 150,000 walks.
  std::string yaml = "teams:\n  a: {}\nx: &big {";
  for (int i = 0; i < 3000; ++i) yaml += (i ? ", k" : "k") + std::to_string(i) + ": 1";
  yaml += "}\nservices:\n";
  for (int i = 0; i < 3000; ++i) yaml += "  s" + std::to_string(i) + ": *big\n";
  std::string error = LoadError(yaml);
  EXPECT_THAT(error, HasSubstr("reg.yaml:3: services.s0: has 3000 keys; an entry has at most"));
  EXPECT_THAT(error, HasSubstr("more problems"));
}

TEST(Registry, AliasesOfSmallNodesAreFine) {
  auto r = Registry::FromYaml(
      "teams: {a: {}}\n"
      "services:\n"
      "  s1: &owned {team: a}\n"
      "  s2: *owned\n",
      "reg.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->FindService("s2")->team, "a");
}

}  // namespace
}  // namespace tracepager::routing
