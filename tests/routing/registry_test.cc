#include "routing/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "routing/civil_date.h"
#include "routing/http_url.h"
#include "routing/secret.h"

namespace tracepager::routing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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
                "reg.yaml:3: services.s.team: is empty"},
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

TEST(Registry, AliasListBombIsRefusedWithinBounds) {
  // One 1,000-item alias list referenced by 5,000 services: 5 million items if walked fully.
  std::string yaml = "teams: {a: {}}\nx: &list [";
  for (int i = 0; i < 1000; ++i) yaml += (i ? ", a" : "a") + std::to_string(i);
  yaml += "]\nservices:\n";
  for (int i = 0; i < 5000; ++i)
    yaml += "  s" + std::to_string(i) + ": {team: a, aliases: *list}\n";
  RegistryLint lint = Registry::Lint(yaml, "reg.yaml");
  std::string all;
  for (const RegistryProblem& p : lint.problems) all += p.ToString() + "\n";
  EXPECT_THAT(all, HasSubstr("more than 250000 aliases in the registry"));
  EXPECT_GT(lint.dropped_problems, 0u);
}

// ---- Phase 2: pager targets, secrets, service fields, aliases, dates, URLs ----

// A resolver over a fixed table; records what it was asked for.
struct FakeResolver {
  std::map<std::string, std::string> values;  // "env:NAME" / "file:PATH" -> value
  std::vector<std::string> asked;
  SecretResolver Fn() {
    return [this](const SecretRef& ref) -> Result<std::string> {
      const std::string key = (ref.kind == SecretRef::Kind::kFile ? "file:" : "env:") + ref.name;
      asked.push_back(key);
      auto it = values.find(key);
      if (it == values.end()) return Error::NotFound(ref.Describe() + " is not set");
      return it->second;
    };
  }
};

constexpr char kFullRegistry[] =
    "default_team: platform\n"
    "teams:\n"
    "  platform:\n"
    "    pagerduty: {routing_key: {env: PD_PLATFORM}}\n"
    "  payments:\n"
    "    pagerduty: {routing_key: {file: /run/secrets/pd-payments}, service_id: PABC123}\n"
    "    opsgenie: {team: Payments Team, api_key: {env: OG_KEY}}\n"
    "    slack: {webhook_url: {env: SLACK_PAYMENTS}, channel: \"#payments\"}\n"
    "    webhook: {url: https://hooks.example.com/page/payments, signing_key: {env: HMAC}}\n"
    "    fallback: platform\n"
    "    reviewed: 2025-03-01\n"
    "  ads:\n"
    "    fallback: payments\n"
    "services:\n"
    "  payment:\n"
    "    team: payments\n"
    "    tier: \"1\"\n"
    "    runbook: https://runbooks.example.com/payment\n"
    "    dashboard: http://grafana.internal:3000/d/abc?var-service=payment\n"
    "    reviewed: 2025-02-01\n"
    "    aliases: [paymentservice, postgres/payments, payment-7d9f8-x2x]\n"
    "  ad:\n"
    "    team: ads\n"
    "    opsgenie: {team_id: 4513b7ea-3b91-438f-b7e4-e3e54af9147c}\n";

TEST(RegistryTargets, LoadsEveryFieldAndResolvesSecrets) {
  FakeResolver fake;
  fake.values = {{"env:PD_PLATFORM", "pd-platform-key-0001"},
                 {"file:/run/secrets/pd-payments", "pd-payments-key-0002\n"},
                 {"env:SLACK_PAYMENTS", "https://hooks.slack.com/services/T0/B0/secret0003"},
                 {"env:OG_KEY", "og-key-0004"},
                 {"env:HMAC", "hmac-0005"}};
  RegistryLoadOptions options;
  options.resolve_secret = fake.Fn();
  options.today = CivilDate{2025, 6, 1};
  auto r = Registry::FromYaml(kFullRegistry, "reg.yaml", options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(fake.asked.size(), 5u);

  const Team* payments = r->FindTeam("payments");
  ASSERT_NE(payments, nullptr);
  ASSERT_TRUE(payments->pager.pagerduty.has_value());
  ASSERT_TRUE(payments->pager.pagerduty->routing_key.has_value());
  EXPECT_EQ(payments->pager.pagerduty->routing_key->Reveal(), "pd-payments-key-0002");  // trimmed
  EXPECT_EQ(payments->pager.pagerduty->routing_key->ref().kind, SecretRef::Kind::kFile);
  EXPECT_EQ(payments->pager.pagerduty->service_id, "PABC123");
  ASSERT_TRUE(payments->pager.opsgenie.has_value());
  EXPECT_EQ(payments->pager.opsgenie->team, "Payments Team");
  ASSERT_TRUE(payments->pager.slack.has_value());
  EXPECT_EQ(payments->pager.slack->channel, "#payments");
  EXPECT_EQ(payments->pager.slack->webhook_url->Reveal(),
            "https://hooks.slack.com/services/T0/B0/secret0003");
  ASSERT_TRUE(payments->pager.webhook.has_value());
  EXPECT_EQ(payments->pager.webhook->url.Reveal(), "https://hooks.example.com/page/payments");
  EXPECT_EQ(payments->pager.webhook->signing_key->Reveal(), "hmac-0005");
  EXPECT_EQ(payments->pager.opsgenie->api_key->Reveal(), "og-key-0004");
  EXPECT_EQ(payments->fallback, "platform");
  EXPECT_EQ(payments->reviewed, (CivilDate{2025, 3, 1}));
  EXPECT_TRUE(payments->pager.CanPage());

  const ServiceEntry* payment = r->FindService("payment");
  ASSERT_NE(payment, nullptr);
  EXPECT_EQ(payment->tier, "1");
  EXPECT_EQ(payment->runbook_url, "https://runbooks.example.com/payment");
  EXPECT_EQ(payment->dashboard_url, "http://grafana.internal:3000/d/abc?var-service=payment");
  EXPECT_EQ(payment->reviewed, (CivilDate{2025, 2, 1}));
  EXPECT_EQ(payment->aliases.size(), 3u);
  EXPECT_EQ(payment->origin, Origin::kLocal);
  EXPECT_EQ(payment->source, "reg.yaml");

  const ServiceEntry* ad = r->FindService("ad");
  ASSERT_NE(ad, nullptr);
  EXPECT_EQ(ad->pager.opsgenie->team_id, "4513b7ea-3b91-438f-b7e4-e3e54af9147c");
}

TEST(RegistryTargets, WithoutAResolverReferencesStayUnresolved) {
  auto r = Registry::FromYaml(kFullRegistry, "reg.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& key = r->FindTeam("platform")->pager.pagerduty->routing_key;
  ASSERT_TRUE(key.has_value());
  EXPECT_FALSE(key->resolved());
  EXPECT_EQ(key->ref().kind, SecretRef::Kind::kEnv);
  EXPECT_EQ(key->ref().name, "PD_PLATFORM");
  EXPECT_TRUE(r->FindTeam("platform")->pager.CanPage());
}

TEST(RegistryTargets, PageableTeamFollowsTheFallbackChain) {
  auto r = Registry::FromYaml(kFullRegistry, "reg.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->PageableTeam("payments")->name, "payments");
  EXPECT_FALSE(r->FindTeam("ads")->pager.CanPage());
  EXPECT_EQ(r->PageableTeam("ads")->name, "payments");
  EXPECT_EQ(r->PageableTeam("nope"), nullptr);

  auto cycle = Registry::FromYaml(
      "teams:\n  a: {fallback: b}\n  b: {fallback: a}\n  c: {slack: {channel: \"#c\"}}\n",
      "reg.yaml");
  ASSERT_TRUE(cycle.ok()) << cycle.error().message;
  EXPECT_EQ(cycle->PageableTeam("a"), nullptr);  // terminates
  EXPECT_EQ(cycle->PageableTeam("c"), nullptr);  // a channel alone cannot page
}

TEST(RegistryTargets, MissingSecretIsAnErrorNamingTheReferenceNotAValue) {
  FakeResolver fake;
  fake.values = {{"env:PD_PLATFORM", "pd-platform-key-0001"},
                 {"env:SLACK_PAYMENTS", "https://hooks.slack.com/services/T0/B0/secret0003"},
                 {"env:OG_KEY", "og"},
                 {"env:HMAC", "h"}};
  RegistryLoadOptions options;
  options.resolve_secret = fake.Fn();
  auto r = Registry::FromYaml(kFullRegistry, "reg.yaml", options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("reg.yaml:6: teams.payments.pagerduty.routing_key: file "
                                           "\"/run/secrets/pd-payments\" is not set"));
  EXPECT_THAT(r.error().message, Not(HasSubstr("pd-platform-key-0001")));
  EXPECT_THAT(r.error().message, Not(HasSubstr("secret0003")));
}

TEST(RegistryTargets, ResolvedValuesAreCheckedButNeverEchoed) {
  FakeResolver fake;
  fake.values = {{"env:PD_PLATFORM", "  \n"},
                 {"file:/run/secrets/pd-payments", "k"},
                 {"env:SLACK_PAYMENTS", "not-a-url-secret0003"},
                 {"env:OG_KEY", "og"},
                 {"env:HMAC", "h"}};
  RegistryLoadOptions options;
  options.resolve_secret = fake.Fn();
  const std::string error = Registry::FromYaml(kFullRegistry, "reg.yaml", options).error().message;
  EXPECT_THAT(error, HasSubstr("reg.yaml:4: teams.platform.pagerduty.routing_key: env "
                               "PD_PLATFORM is empty"));
  EXPECT_THAT(error, HasSubstr("reg.yaml:8: teams.payments.slack.webhook_url: the value of env "
                               "SLACK_PAYMENTS is not an http(s) URL"));
  EXPECT_THAT(error, Not(HasSubstr("secret0003")));
}

TEST(RegistryTargets, SecretFormattingIsRedacted) {
  Secret s(SecretRef{SecretRef::Kind::kEnv, "X"}, "hunter2-value");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "[redacted]");
  EXPECT_EQ(s.ToString(), "[redacted]");
  EXPECT_EQ(s.ref().Describe(), "env X");
  EXPECT_EQ((SecretRef{SecretRef::Kind::kFile, "/a b"}.Describe()), "file \"/a b\"");
}

INSTANTIATE_TEST_SUITE_P(
    Phase2Rules, RegistryBadInput,
    ::testing::Values(
        BadCase{"LiteralRoutingKey",
                "teams:\n  a:\n    pagerduty: {routing_key: 0123456789abcdef}\n",
                "reg.yaml:3: teams.a.pagerduty.routing_key: is written as a literal; secrets are "
                "never written in the registry"},
        BadCase{"LiteralSlackWebhook",
                "teams:\n  a:\n    slack: {webhook_url: \"https://hooks.slack.com/x\"}\n",
                "reg.yaml:3: teams.a.slack.webhook_url: is written as a literal"},
        BadCase{"SecretRefWithTwoKeys",
                "teams:\n  a:\n    pagerduty: {routing_key: {env: A, file: /b}}\n",
                "reg.yaml:3: teams.a.pagerduty.routing_key: a secret reference has exactly one"},
        BadCase{"SecretRefUnknownKind", "teams:\n  a:\n    pagerduty: {routing_key: {vault: x}}\n",
                "teams.a.pagerduty.routing_key.vault: unknown key"},
        BadCase{"BadEnvName", "teams:\n  a:\n    pagerduty: {routing_key: {env: 9-x}}\n",
                "reg.yaml:3: teams.a.pagerduty.routing_key.env: \"9-x\" is not an environment"},
        BadCase{"PagerDutyWithoutKey", "teams:\n  a:\n    pagerduty: {}\n",
                "reg.yaml:3: teams.a.pagerduty: needs a routing_key"},
        BadCase{"OpsgenieNeedsOne", "teams:\n  a:\n    opsgenie: {team: x, team_id: y}\n",
                "reg.yaml:3: teams.a.opsgenie: needs exactly one of team"},
        BadCase{"WebhookBadUrl", "teams:\n  a:\n    webhook: {url: \"ftp://x\"}\n",
                "reg.yaml:3: teams.a.webhook.url: \"ftp://x\" is not an http(s) URL"},
        BadCase{"UnknownTeamField", "teams:\n  a:\n    pager_duty: {}\n",
                "reg.yaml:3: teams.a.pager_duty: unknown key"},
        BadCase{"UnknownFallback", "teams:\n  a:\n    fallback: b\n",
                "reg.yaml:3: teams.a.fallback: unknown team \"b\" (known: a)"},
        BadCase{"SelfFallback", "teams:\n  a:\n    fallback: a\n",
                "reg.yaml:3: teams.a.fallback: a team cannot be its own fallback"},
        BadCase{"MalformedRunbook",
                "teams: {a: {}}\nservices:\n  s:\n    team: a\n    runbook: runbooks/s.md\n",
                "reg.yaml:5: services.s.runbook: \"runbooks/s.md\" is not an http(s) URL"},
        BadCase{"UrlWithSpace",
                "teams: {a: {}}\nservices:\n  s: {team: a, dashboard: \"https://g/d x\"}\n",
                "reg.yaml:3: services.s.dashboard: \"https://g/d x\" is not an http(s) URL"},
        BadCase{"MalformedDate", "teams: {a: {}}\nservices:\n  s: {team: a, reviewed: 2025-2-1}\n",
                "reg.yaml:3: services.s.reviewed: \"2025-2-1\" is not a date (YYYY-MM-DD)"},
        BadCase{"ImpossibleDate",
                "teams: {a: {}}\nservices:\n  s: {team: a, reviewed: 2023-02-29}\n",
                "is not a date (YYYY-MM-DD)"},
        BadCase{"EmptyTier", "teams: {a: {}}\nservices:\n  s: {team: a, tier: \"\"}\n",
                "reg.yaml:3: services.s.tier: is empty"},
        BadCase{"AliasesNotAList", "teams: {a: {}}\nservices:\n  s: {team: a, aliases: x}\n",
                "reg.yaml:3: services.s.aliases: is a scalar, expected a list"},
        BadCase{"EmptyAlias", "teams: {a: {}}\nservices:\n  s: {team: a, aliases: [\"\"]}\n",
                "reg.yaml:3: services.s.aliases[]: is empty"},
        BadCase{"AliasNamesTwoServices",
                "teams: {a: {}}\nservices:\n  s1: {team: a, aliases: [db]}\n"
                "  s2:\n    team: a\n    aliases:\n      - db\n",
                "reg.yaml:7: services.s2.aliases: alias \"db\" also names service \"s1\" (line 3)"},
        BadCase{"AliasIsAnotherServiceName",
                "teams: {a: {}}\nservices:\n  s1: {team: a}\n  s2: {team: a, aliases: [s1]}\n",
                "reg.yaml:4: services.s2.aliases: alias \"s1\" is also the name of service \"s1\" "
                "(line 3)"},
        BadCase{"AliasIsOwnName", "teams: {a: {}}\nservices:\n  s1: {team: a, aliases: [s1]}\n",
                "reg.yaml:3: services.s1.aliases: alias \"s1\" is the service's own name"},
        BadCase{"DuplicateAlias", "teams: {a: {}}\nservices:\n  s1: {team: a, aliases: [x, x]}\n",
                "reg.yaml:3: services.s1.aliases: duplicate alias \"x\""}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.name); });

TEST(RegistryDates, FutureReviewDateIsAnErrorOnlyWhenTodayIsKnown) {
  const std::string yaml = "teams: {a: {}}\nservices:\n  s: {team: a, reviewed: 2025-06-02}\n";
  EXPECT_TRUE(Registry::FromYaml(yaml, "reg.yaml").ok());
  RegistryLoadOptions options;
  options.today = CivilDate{2025, 6, 2};
  EXPECT_TRUE(Registry::FromYaml(yaml, "reg.yaml", options).ok());
  options.today = CivilDate{2025, 6, 1};
  auto r = Registry::FromYaml(yaml, "reg.yaml", options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("reg.yaml:3: services.s.reviewed: date 2025-06-02 is "
                                           "in the future (today is 2025-06-01)"));
}

TEST(RegistryDates, CivilDateArithmetic) {
  EXPECT_EQ(CivilDate::Parse("2024-02-29"), (CivilDate{2024, 2, 29}));
  EXPECT_FALSE(CivilDate::Parse("2100-02-29").has_value());
  EXPECT_FALSE(CivilDate::Parse("2025-13-01").has_value());
  EXPECT_FALSE(CivilDate::Parse("2025-01-01T00:00").has_value());
  EXPECT_FALSE(CivilDate::Parse("20250101").has_value());
  EXPECT_EQ((CivilDate{1970, 1, 1}).DaysSinceEpoch(), 0);
  EXPECT_EQ((CivilDate{2000, 3, 1}).DaysSinceEpoch(), 11017);
  EXPECT_EQ(DaysBetween(CivilDate{2024, 2, 28}, CivilDate{2024, 3, 1}), 2);
  for (long d : {-1000L, 0L, 11016L, 19000L, 30000L}) {
    EXPECT_EQ(CivilDate::FromDaysSinceEpoch(d).DaysSinceEpoch(), d);
  }
  EXPECT_EQ((CivilDate{2025, 1, 9}).ToString(), "2025-01-09");
}

TEST(RegistryUrls, HttpUrlSyntax) {
  for (const char* good : {"https://a.example.com", "http://a:8080/x?y=1#z", "HTTPS://A.B/",
                           "https://[::1]:443/p", "https://user:pw@host/x", "http://h_1/"}) {
    EXPECT_TRUE(IsHttpUrl(good)) << good;
  }
  for (const char* bad :
       {"", "https://", "ftp://a", "https//a", "https://a b", "https://a:0/", "https://a:99999",
        "https://a:/x", "https://.a", "https://[]/", "mailto:x@y", "https://a/\x01"}) {
    EXPECT_FALSE(IsHttpUrl(bad)) << bad;
  }
}

TEST(RegistryAliases, FindServiceResolvesAliases) {
  auto r = Registry::FromYaml(kFullRegistry, "reg.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (const char* name : {"payment", "paymentservice", "postgres/payments", "payment-7d9f8-x2x"}) {
    const ServiceEntry* e = r->FindService(name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->name, "payment");
    EXPECT_EQ(e->team, "payments");
  }
  EXPECT_EQ(r->aliases().size(), 3u);
  EXPECT_EQ(r->FindService("payments"), nullptr);  // a team name is not a service
}

TEST(RegistryLintTest, ReportsProblemsAndKeepsTheUsableEntries) {
  RegistryLint lint = Registry::Lint(
      "teams: {a: {}}\nservices:\n  good: {team: a}\n  bad: {team: b}\n", "reg.yaml");
  EXPECT_TRUE(lint.parsed);
  ASSERT_EQ(lint.problems.size(), 1u);
  EXPECT_EQ(lint.problems[0].line, 4);
  EXPECT_EQ(lint.problems[0].path, "services.bad.team");
  EXPECT_NE(lint.registry.FindService("good"), nullptr);

  RegistryLint broken = Registry::Lint("teams: [", "reg.yaml");
  EXPECT_FALSE(broken.parsed);
  ASSERT_EQ(broken.problems.size(), 1u);
  EXPECT_THAT(broken.problems[0].message, HasSubstr("invalid YAML"));
}

TEST(RegistryLintTest, ABadFileNeverReplacesAGoodRegistry) {
  // The documented reload pattern: load into a fresh Registry, swap only on success.
  auto good = Registry::FromYaml(kFullRegistry, "reg.yaml");
  ASSERT_TRUE(good.ok());
  std::shared_ptr<const Registry> current = std::make_shared<const Registry>(std::move(*good));
  auto reloaded = Registry::FromYaml("teams: {a: {}}\nservices: {s: {team: zz}}\n", "reg.yaml");
  if (reloaded.ok()) current = std::make_shared<const Registry>(std::move(*reloaded));
  EXPECT_FALSE(reloaded.ok());
  EXPECT_NE(current->FindService("payment"), nullptr);
}

}  // namespace
}  // namespace tracepager::routing
