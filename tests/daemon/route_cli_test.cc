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

}  // namespace
}  // namespace tracepager::testing
