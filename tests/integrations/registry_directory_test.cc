// The delivery directory built from a real registry file: targets with resolved secrets,
// fallbacks, service-level targets under aliases, unresolved secrets left out and reported.
#include "integrations/delivery/registry_directory.h"

#include <gtest/gtest.h>

#include <map>

namespace tracepager::integrations::delivery {
namespace {

constexpr char kRegistry[] = R"yaml(
default_team: platform
teams:
  platform:
    pagerduty: {routing_key: {env: PD_PLATFORM}}
  payments:
    pagerduty: {routing_key: {env: PD_PAYMENTS}}
    opsgenie: {team: Payments}
    slack: {webhook_url: {file: /run/secrets/slack-payments}}
    webhook: {url: {env: HOOK_URL}, signing_key: {env: HOOK_KEY}}
    fallback: platform
  data:
    pagerduty: {routing_key: {env: PD_MISSING}}
    fallback: payments
services:
  payment: {team: payments}
  orders-db:
    team: data
    aliases: [postgres/orders]
    slack: {webhook_url: {env: SLACK_DB}}
)yaml";

Result<routing::Registry> Load(bool resolve_all) {
  std::map<std::string, std::string> values = {
      {"PD_PLATFORM", "pd-platform"},
      {"PD_PAYMENTS", "pd-payments"},
      {"/run/secrets/slack-payments", "https://hooks.slack.example/pay"},
      {"HOOK_URL", "https://hooks.example/tp?token=t"},
      {"HOOK_KEY", "hmac"},
      {"SLACK_DB", "https://hooks.slack.example/db"}};
  if (resolve_all) values["PD_MISSING"] = "pd-data";
  routing::RegistryLoadOptions options;
  options.resolve_secret = [values](const routing::SecretRef& ref) -> Result<std::string> {
    auto it = values.find(ref.name);
    if (it == values.end()) return Error::NotFound(ref.Describe() + " is not set");
    return it->second;
  };
  return routing::Registry::FromYaml(kRegistry, "test.yaml", options);
}

TEST(RegistryDirectory, EveryTeamTargetWithItsSecretAndFallback) {
  Result<routing::Registry> registry = Load(true);
  ASSERT_TRUE(registry.ok()) << registry.error().message;
  std::vector<std::string> problems;
  TargetDirectory d = DirectoryFromRegistry(*registry, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(d.default_team, "platform");
  const TeamPagers& payments = d.teams.at("payments");
  EXPECT_EQ(payments.fallback, "platform");
  ASSERT_EQ(payments.targets.size(), 4u);
  EXPECT_EQ(payments.targets[0].kind, "pagerduty");
  EXPECT_EQ(payments.targets[0].credential.Reveal(), "pd-payments");
  EXPECT_EQ(payments.targets[0].credential.origin(), "env PD_PAYMENTS");
  EXPECT_EQ(payments.targets[1].kind, "opsgenie");
  EXPECT_EQ(payments.targets[1].name, "Payments");
  EXPECT_TRUE(payments.targets[1].credential.empty());  // the pager's configured key
  EXPECT_EQ(payments.targets[2].kind, "slack");
  EXPECT_EQ(payments.targets[2].credential.Reveal(), "https://hooks.slack.example/pay");
  EXPECT_EQ(payments.targets[3].kind, "webhook");
  EXPECT_EQ(payments.targets[3].signing_key.Reveal(), "hmac");
  for (const PagerTarget& t : payments.targets) EXPECT_EQ(t.team, "payments");
  // Service-level targets, also under the alias a trace may use.
  ASSERT_EQ(d.TargetsFor("data", "postgres/orders").size(), 1u);
  EXPECT_EQ(d.TargetsFor("data", "postgres/orders")[0].credential.Reveal(),
            "https://hooks.slack.example/db");
  EXPECT_EQ(d.TargetsFor("data", "orders-db").size(), 1u);
  EXPECT_EQ(d.TargetsFor("data", "other")[0].kind, "pagerduty");
  EXPECT_EQ(d.NextTeam({"data"}), "payments");
}

TEST(RegistryDirectory, UnresolvedSecretsAreLeftOutAndReportedWithoutValues) {
  // A registry loaded without a resolver (offline routing) keeps references unresolved.
  Result<routing::Registry> offline = routing::Registry::FromYaml(kRegistry, "test.yaml");
  ASSERT_TRUE(offline.ok()) << offline.error().message;
  std::vector<std::string> problems;
  TargetDirectory d = DirectoryFromRegistry(*offline, &problems);
  EXPECT_EQ(d.teams.at("payments").targets.size(), 1u);  // opsgenie needs no secret here
  EXPECT_FALSE(problems.empty());
  bool named = false;
  for (const std::string& p : problems) named |= p.find("env PD_PAYMENTS") != std::string::npos;
  EXPECT_TRUE(named);
}

}  // namespace
}  // namespace tracepager::integrations::delivery
