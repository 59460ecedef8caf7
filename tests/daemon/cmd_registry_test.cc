// `tracepager registry check` and `registry deps`, run as the built binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <string>

#include "tests/support/process.h"

namespace tracepager {
namespace {

using testing::FixturePath;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ProcessResult;
using testing::RunProcess;
using testing::RunTracepager;
using testing::SourcePath;
using testing::TempDir;

constexpr char kFixtureKey[] = "0123456789abcdef0123456789abcdef";
const std::string kExampleTrace = "etc/examples/traces/checkout-payment-db.otlp.json";

std::string Lines(const ProcessResult& r) { return "stdout:\n" + r.out + "\nstderr:\n" + r.err; }

TEST(RegistryCheckCli, TheExampleRegistryIsClean) {
  ProcessResult r =
      RunTracepager({"registry", "check", "--registry", SourcePath("etc/registry.yaml"),
                     "--max-age", "3650", "--today", "2025-06-01"});
  EXPECT_EQ(r.exit_code, 0) << Lines(r);
  EXPECT_EQ(r.out, "registry check: ok: 21 services, 7 teams, 34 aliases\n");
  EXPECT_EQ(r.err, "");
}

TEST(RegistryCheckCli, TheExampleRegistryOwnsEveryServiceOfTheExampleTraces) {
  for (const char* format : {"otlp", "jaeger", "zipkin"}) {
    ProcessResult r = RunTracepager(
        {"registry", "check", "--registry", SourcePath("etc/registry.yaml"), "--traces",
         SourcePath(std::string("etc/examples/traces/checkout-payment-db.") + format + ".json")});
    EXPECT_EQ(r.exit_code, 0) << format << "\n" << Lines(r);
    EXPECT_THAT(r.out, HasSubstr("every service in 1 trace has an owner")) << format;
  }
}

TEST(RegistryCheckCli, FindingsExitOneWithEveryFinding) {
  TempDir dir;
  const std::string reg = dir.Write("reg.yaml",
                                    "teams:\n"
                                    "  web: {webhook: {url: \"http://127.0.0.1:1/x\"}}\n"
                                    "  lonely: {}\n"
                                    "services:\n"
                                    "  frontend: {team: web, reviewed: 2020-01-01}\n"
                                    "  checkout: {team: lonely, reviewed: 2025-05-01}\n");
  ProcessResult r =
      RunTracepager({"registry", "check", "--registry", reg, "--traces", SourcePath(kExampleTrace),
                     "--max-age", "90", "--today", "2025-06-01"});
  EXPECT_EQ(r.exit_code, 1) << Lines(r);
  EXPECT_THAT(r.out, HasSubstr("unowned-service: service payment: seen in traces but no service or "
                               "alias owns it; nobody would be paged"));
  EXPECT_THAT(r.out, HasSubstr("unowned-service: service cart:"));
  EXPECT_THAT(r.out, HasSubstr("unowned-service: peer postgresql/payments: seen in traces "
                               "(uninstrumented, called by payment)"));
  EXPECT_THAT(r.out, HasSubstr(reg + ":3: no-pager-target: team lonely: no pager target and no "
                                     "fallback"));
  EXPECT_THAT(r.out, HasSubstr(reg + ":5: not-reviewed: service frontend: last reviewed "
                                     "2020-01-01, 1978 days ago (the maximum is 90)"));
  EXPECT_THAT(r.out, Not(HasSubstr("service checkout: last reviewed")));
  EXPECT_THAT(r.out, HasSubstr("registry check: 5 findings (1 no-pager-target, 1 not-reviewed, "
                               "3 unowned-service)\n"));

  ProcessResult json = RunTracepager({"registry", "check", "--registry", reg, "--format", "json"});
  EXPECT_EQ(json.exit_code, 1);
  rapidjson::Document d;
  d.Parse(json.out.c_str());
  ASSERT_FALSE(d.HasParseError()) << json.out;
  EXPECT_FALSE(d["ok"].GetBool());
  ASSERT_EQ(d["findings"].Size(), 1u);
  EXPECT_STREQ(d["findings"][0]["kind"].GetString(), "no-pager-target");
  EXPECT_STREQ(d["findings"][0]["subject"].GetString(), "team lonely");
  EXPECT_EQ(std::string(d["findings"][0]["where"].GetString()), reg + ":3");
}

TEST(RegistryCheckCli, InvalidEntriesAndDanglingReferencesAreFindings) {
  TempDir dir;
  const std::string reg = dir.Write("reg.yaml",
                                    "teams:\n"
                                    "  a: {opsgenie: {team: A}}\n"
                                    "services:\n"
                                    "  s1: {team: a, aliases: [db], runbook: not-a-url}\n"
                                    "  s2: {team: b, aliases: [db], reviewed: 2030-01-01}\n");
  ProcessResult r =
      RunTracepager({"registry", "check", "--registry", reg, "--today", "2025-06-01"});
  EXPECT_EQ(r.exit_code, 1) << Lines(r);
  EXPECT_THAT(r.out, HasSubstr(reg + ":4: invalid-registry: services.s1.runbook: \"not-a-url\" is "
                                     "not an http(s) URL"));
  EXPECT_THAT(r.out, HasSubstr(reg + ":5: invalid-registry: services.s2.reviewed: date 2030-01-01 "
                                     "is in the future (today is 2025-06-01)"));
  EXPECT_THAT(r.out, HasSubstr(reg + ":5: invalid-registry: services.s2.aliases: alias \"db\" also "
                                     "names service \"s1\" (line 4)"));
  EXPECT_THAT(r.out, HasSubstr(reg + ":5: dangling-reference: services.s2.team: unknown team "
                                     "\"b\""));
}

TEST(RegistryCheckCli, SecretsResolveFromFilesAndEnvironmentAndAreNeverPrinted) {
  TempDir dir;
  const std::string slack_file =
      dir.Write("slack-url", "https://hooks.slack.com/services/T000/B000/file-secret-XYZ\n");
  const std::string reg = dir.Write("reg.yaml",
                                    "teams:\n"
                                    "  payments:\n"
                                    "    pagerduty: {routing_key: {env: TP_TEST_PD_KEY}}\n"
                                    "    slack: {webhook_url: {file: " +
                                        slack_file +
                                        "}, channel: \"#payments\"}\n"
                                        "services:\n"
                                        "  checkout: {team: payments}\n");
  const std::string pd_value = "env-secret-ABC123";
  ProcessResult ok =
      RunTracepager({"registry", "check", "--registry", reg}, {{"TP_TEST_PD_KEY", pd_value}});
  EXPECT_EQ(ok.exit_code, 0) << Lines(ok);

  // With Backstage's own integration key for checkout, the conflict names both sides by
  // reference only.
  for (const char* format : {"text", "json"}) {
    ProcessResult r = RunTracepager(
        {"registry", "check", "--registry", reg, "--format", format, "--backstage",
         FixturePath("backstage/from-docs/catalog-info_with_pagerduty_opsgenie_annotations.yaml")},
        {{"TP_TEST_PD_KEY", pd_value}});
    EXPECT_EQ(r.exit_code, 1) << Lines(r);
    EXPECT_THAT(r.out, HasSubstr("pagerduty routing key: local env TP_TEST_PD_KEY"));
    EXPECT_THAT(r.out, HasSubstr("annotation pagerduty.com/integration-key of "
                                 "component:default/checkout"));
    for (const std::string& secret :
         {pd_value, std::string("file-secret-XYZ"), std::string(kFixtureKey)}) {
      EXPECT_THAT(r.out, Not(HasSubstr(secret))) << format;
      EXPECT_THAT(r.err, Not(HasSubstr(secret))) << format;
    }
  }

  // A missing variable is a finding that names the reference.
  ProcessResult missing = RunTracepager({"registry", "check", "--registry", reg});
  EXPECT_EQ(missing.exit_code, 1) << Lines(missing);
  EXPECT_THAT(missing.out, HasSubstr(reg + ":3: invalid-registry: teams.payments.pagerduty."
                                           "routing_key: env TP_TEST_PD_KEY is not set"));
  EXPECT_THAT(missing.out, Not(HasSubstr("file-secret-XYZ")));
}

TEST(RegistryCheckCli, BackstageTreeFindings) {
  ProcessResult r = RunTracepager({"registry", "check", "--backstage", FixturePath("backstage")});
  EXPECT_EQ(r.exit_code, 1) << Lines(r);
  EXPECT_THAT(r.out, HasSubstr("dangling-reference: component:default/backstage spec.owner: owner "
                               "\"CNCF\" (group:default/CNCF) is not a Group or User"));
  EXPECT_THAT(r.out, HasSubstr("a User guest exists: write the owner as user:guest"));
  EXPECT_THAT(r.out, HasSubstr("no-pager-target: team team-a"));
  EXPECT_THAT(r.out, Not(HasSubstr("team acme-corp")));  // owns nothing: not checked
  EXPECT_THAT(r.out, Not(HasSubstr(kFixtureKey)));
}

TEST(RegistryCheckCli, BadInputExitsTwo) {
  TempDir dir;
  const std::string bad_yaml = dir.Write("bad.yaml", "teams: [unclosed\n");
  const std::string good = SourcePath("etc/registry.yaml");
  const std::string bad_trace = dir.Write("t.json", "{\"data\": [");
  struct Case {
    std::vector<std::string> args;
    const char* err;
  } cases[] = {
      {{"registry", "check"}, "nothing to check"},
      {{"registry", "check", "--registry", dir.path() + "/missing.yaml"}, "cannot open"},
      {{"registry", "check", "--registry", bad_yaml}, "invalid YAML"},
      {{"registry", "check", "--registry", good, "--today", "2025-13-01"}, "not a date"},
      {{"registry", "check", "--registry", good, "--format", "xml"}, "xml"},
      {{"registry", "check", "--registry", good, "--max-age", "-3"}, "max-age"},
      {{"registry", "check", "--registry", good, "--backstage", dir.path() + "/nope"},
       "cannot read the Backstage catalog"},
      {{"registry", "check", "--registry", good, "--traces", bad_trace}, "t.json"},
      {{"registry", "deps"}, "TRACE_FILE"},
      {{"registry"}, "subcommand"},
  };
  for (const Case& c : cases) {
    ProcessResult r = RunTracepager(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args.back() << "\n" << Lines(r);
    EXPECT_THAT(r.err, HasSubstr(c.err)) << c.args.back();
  }
}

TEST(RegistryDepsCli, JsonAndDot) {
  ProcessResult json = RunTracepager({"registry", "deps", SourcePath(kExampleTrace)});
  ASSERT_EQ(json.exit_code, 0) << Lines(json);
  rapidjson::Document d;
  d.Parse(json.out.c_str());
  ASSERT_FALSE(d.HasParseError()) << json.out;
  EXPECT_FALSE(d["owners_known"].GetBool());
  bool saw_failing_payment_edge = false;
  for (const auto& e : d["edges"].GetArray()) {
    if (std::string(e["from"].GetString()) == "checkout" &&
        std::string(e["to"].GetString()) == "payment") {
      saw_failing_payment_edge = e["errors"].GetUint64() == 1 && e["calls"].GetUint64() == 1;
    }
  }
  EXPECT_TRUE(saw_failing_payment_edge) << json.out;

  TempDir dir;
  const std::string reg =
      dir.Write("reg.yaml", "teams: {web: {}}\nservices: {frontend: {team: web}}\n");
  ProcessResult dot = RunTracepager(
      {"registry", "deps", "--format", "dot", "--registry", reg, SourcePath(kExampleTrace)});
  ASSERT_EQ(dot.exit_code, 0) << Lines(dot);
  EXPECT_THAT(dot.out, HasSubstr("\"checkout\" -> \"payment\" [label=\"1 call, 1 error"));
  EXPECT_THAT(dot.out, HasSubstr("color=red"));
  EXPECT_THAT(dot.out, HasSubstr("\"payment\" [label=\"payment\\n(no owner)\""));
  EXPECT_THAT(dot.out, HasSubstr("\"frontend\" [label=\"frontend\\nteam: web\""));
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/dot"))
      << "graphviz not installed (scripts/setup installs it)";
  ProcessResult svg = RunProcess({"/usr/bin/dot", "-Tsvg"}, dot.out);
  EXPECT_EQ(svg.exit_code, 0) << svg.err;
  EXPECT_THAT(svg.out, HasSubstr("<svg"));
}

}  // namespace
}  // namespace tracepager
