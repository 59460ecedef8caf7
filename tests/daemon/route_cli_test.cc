// `tracepager route` end to end: the binary, real files, its output and exit codes.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

#include "tests/support/process.h"

namespace tracepager::testing {
namespace {

const std::string kExample = SourcePath("etc/examples/traces/checkout-payment-db.otlp.json");
const std::string kRegistry = SourcePath("etc/registry.yaml");

TEST(RouteCli, JsonOutputCarriesTheDecisionContract) {
  ProcessResult r = RunTracepager({"route", "--registry", kRegistry, "--format", "json", kExample});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d;
  d.Parse(r.out.c_str());
  ASSERT_FALSE(d.HasParseError()) << r.out;
  ASSERT_TRUE(d.IsObject());
  EXPECT_STREQ(d["decision"].GetString(), "routed");
  for (const char* key : {"reason", "culprits", "teams", "naive", "traces"}) {
    EXPECT_TRUE(d.HasMember(key)) << key;
  }
  ASSERT_TRUE(d["culprits"].IsArray());
  ASSERT_GT(d["culprits"].Size(), 0u);
  const auto& first = d["culprits"][0];
  for (const char* key : {"service", "team", "share", "role", "why"}) {
    EXPECT_TRUE(first.HasMember(key)) << key;
  }
  ASSERT_TRUE(d["teams"].IsArray());
  ASSERT_GT(d["teams"].Size(), 0u);
  EXPECT_EQ(std::string(d["teams"][0].GetString()), first["team"].GetString());
  ASSERT_EQ(d["traces"].Size(), 1u);
  const auto& trace = d["traces"][0];
  EXPECT_STREQ(trace["trace_id"].GetString(), "5b8efff798038103d269b633813fc60c");
  ASSERT_TRUE(trace["path"].IsArray());
  ASSERT_GE(trace["path"].Size(), 2u);
  EXPECT_STREQ(trace["path"][0].GetString(), "frontend");
}

TEST(RouteCli, TextOutputLeadsWithTheTeam) {
  ProcessResult r = RunTracepager({"route", "--registry", kRegistry, kExample});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("PAGE ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("frontend"), std::string::npos) << r.out;
}

TEST(RouteCli, WithoutServiceTheRootSpanServiceIsTheAlertingService) {
  ProcessResult r = RunTracepager({"route", "--format", "json", kExample});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d;
  d.Parse(r.out.c_str());
  ASSERT_TRUE(d.IsObject()) << r.out;
  EXPECT_STREQ(d["alerting_service"].GetString(), "frontend");
}

TEST(RouteCli, BadInputExitsTwoWithAMessageNamingTheFile) {
  TempDir dir;
  std::string bad = dir.Write("bad.json", "{\"resourceSpans\": [ {\"scopeSpans\": ");
  ProcessResult r = RunTracepager({"route", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.json"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(RouteCli, UsageErrorsExitTwo) {
  EXPECT_EQ(RunTracepager({"route"}).exit_code, 2);
  EXPECT_EQ(RunTracepager({"route", "--symptom", "slowness", kExample}).exit_code, 2);
  EXPECT_EQ(RunTracepager({"route", "--disable", "magic", kExample}).exit_code, 2);
  EXPECT_EQ(RunTracepager({"route", "/nonexistent/trace.json"}).exit_code, 2);
}

TEST(RouteCli, RoutesEveryKindOfFixtureTraceWithoutCrashing) {
  for (const char* f : {"jaeger-v1/api_traces_response_otlp2jaeger-out.json",
                        "jaeger-v3/getTrace-response_hotrod.json", "tempo/kiali_responseTrace.json",
                        "otlp/trace.json", "zipkin-lens/smartthings-oauth-authorization.json"}) {
    ProcessResult r = RunTracepager({"route", "--format", "json", FixturePath(f)});
    EXPECT_EQ(r.exit_code, 0) << f << ": " << r.err;
    rapidjson::Document d;
    d.Parse(r.out.c_str());
    EXPECT_TRUE(d.IsObject()) << f;
  }
}

// --- route --alert: the daemon's derivation, grouping and trace collection, offline ---

const std::string kAlert = SourcePath("etc/examples/alerts/checkout-errors.alertmanager.json");
const std::string kConfig = SourcePath("etc/tracepager.yaml");

rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

TEST(RouteAlert, ReplaysTheExampleWebhookWithTheExampleConfig) {
  // The config names the registry and the file trace directory; the alert carries the trace id.
  ProcessResult r =
      RunTracepager({"route", "--alert", kAlert, "--config", kConfig, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d = ParseJson(r.out);
  ASSERT_TRUE(d.IsObject()) << r.out;
  ASSERT_EQ(d["decisions"].Size(), 1u) << r.out;
  const auto& one = d["decisions"][0];
  EXPECT_STREQ(one["alerts"][0]["identity"].GetString(), "am:891fd0d54ed75b69");
  EXPECT_STREQ(one["alerting_service"].GetString(), "checkout");
  EXPECT_STREQ(one["symptom"].GetString(), "errors");
  const auto& traces = one["collection"]["traces"];
  ASSERT_EQ(traces.Size(), 1u);
  EXPECT_STREQ(traces[0]["trace_id"].GetString(), "5b8efff798038103d269b633813fc60c");
  EXPECT_STREQ(traces[0]["origin"].GetString(), "carried");
  EXPECT_STREQ(traces[0]["status"].GetString(), "fetched");
  EXPECT_STREQ(one["decision"]["decision"].GetString(), "routed");
  ASSERT_GT(one["decision"]["teams"].Size(), 0u);
  EXPECT_STREQ(one["decision"]["teams"][0].GetString(), "platform");
  EXPECT_EQ(d["resolves"].Size(), 0u);
}

TEST(RouteAlert, TextNamesTheAlertTheTracesAndTheTeam) {
  ProcessResult r = RunTracepager({"route", "--alert", kAlert, "--registry", kRegistry, kExample});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("alert CheckoutErrorRateHigh (am:891fd0d54ed75b69)", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("trace 5b8efff798038103d269b633813fc60c (carried): fetched"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("PAGE platform"), std::string::npos) << r.out;
}

TEST(RouteAlert, CapturedWebhookWhoseTracesAreMissingFallsBackAndSaysWhy) {
  // The captured Alertmanager webhook carries trace ids that no given file holds: each alert is
  // still routed (to its alerting service's owner), and the output says which ids were missing
  // and what the search found.
  ProcessResult r =
      RunTracepager({"route", "--alert", FixturePath("alertmanager-captured/firing.json"),
                     "--registry", kRegistry, "--format", "json", kExample});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d = ParseJson(r.out);
  ASSERT_TRUE(d.IsObject()) << r.out;
  ASSERT_GE(d["decisions"].Size(), 2u) << r.out;
  for (const auto& one : d["decisions"].GetArray()) {
    EXPECT_STREQ(one["decision"]["decision"].GetString(), "fallback") << r.out;
    const auto& traces = one["collection"]["traces"];
    ASSERT_GT(traces.Size(), 0u);
    EXPECT_STREQ(traces[0]["status"].GetString(), "not_found");
    EXPECT_TRUE(one["collection"].HasMember("search")) << r.out;
  }
  // Different services or symptoms are different decisions.
  EXPECT_STRNE(d["decisions"][0]["storm_key"].GetString(),
               d["decisions"][1]["storm_key"].GetString());
}

TEST(RouteAlert, ResolvedAlertsAreListedAsResolves) {
  ProcessResult r =
      RunTracepager({"route", "--alert", FixturePath("alertmanager-captured/resolved.json"),
                     "--format", "json", kExample});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d = ParseJson(r.out);
  ASSERT_TRUE(d.IsObject()) << r.out;
  EXPECT_EQ(d["decisions"].Size(), 0u);
  ASSERT_GT(d["resolves"].Size(), 0u);
  EXPECT_EQ(std::string(d["resolves"][0].GetString()).rfind("am:", 0), 0u);
}

TEST(RouteAlert, GenericFormAndLatencySymptom) {
  TempDir dir;
  std::string alert = dir.Write("generic.json", R"({"service": "checkout", "symptom": "latency",
      "summary": "checkout is slow", "trace_ids": ["5b8efff798038103d269b633813fc60c"]})");
  ProcessResult r =
      RunTracepager({"route", "--alert", alert, "--registry", kRegistry, "--format", "json",
                     SourcePath("etc/examples/traces/checkout-payment-db.jaeger.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document d = ParseJson(r.out);
  ASSERT_TRUE(d.IsObject()) << r.out;
  ASSERT_EQ(d["decisions"].Size(), 1u) << r.out;
  EXPECT_STREQ(d["decisions"][0]["symptom"].GetString(), "latency");
  EXPECT_STREQ(d["decisions"][0]["decision"]["symptom"].GetString(), "latency");
  EXPECT_STREQ(d["decisions"][0]["collection"]["traces"][0]["status"].GetString(), "fetched");
}

TEST(RouteAlert, BadAlertsAndUsageErrorsExitTwo) {
  TempDir dir;
  std::string bad = dir.Write("bad-alert.json", "{\"receiver\": \"x\", \"alerts\": [");
  ProcessResult r = RunTracepager({"route", "--alert", bad, kExample});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad-alert.json"), std::string::npos) << r.err;
  // No traces and no config that names a trace directory.
  EXPECT_EQ(RunTracepager({"route", "--alert", kAlert}).exit_code, 2);
  // --service/--symptom come from the alert; --config needs --alert.
  EXPECT_NE(RunTracepager({"route", "--alert", kAlert, "--service", "x", kExample}).exit_code, 0);
  EXPECT_NE(RunTracepager({"route", "--config", kConfig, kExample}).exit_code, 0);
}

}  // namespace
}  // namespace tracepager::testing
