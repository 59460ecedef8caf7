// `tracepager audit` run as a process against logs written by AuditLogWriter.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "daemon/audit_log.h"
#include "tests/support/audit_samples.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::ExampleRouteDecision;
using testing::kSampleBaseNs;
using testing::RunTracepager;
using testing::SampleDecisionAudit;
using testing::SampleDelivery;
using testing::SampleFallbackDecision;
using testing::TempDir;

constexpr int64_t kSecond = 1'000'000'000;

// Three decisions an hour apart (the newest at kSampleBaseNs + 2h):
//   r1 routed by Route from the example trace and registry: the uninstrumented
//      postgresql/payments, team platform (naive: payment, team payments); page accepted 1.5 s
//      after the alert;
//   f1 fallback to team web (no trace), page rejected then rerouted to web's fallback platform;
//   r2 routed like r1, page accepted 0.5 s after the alert, rotated into a second file.
class AuditCli : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = dir_.path() + "/state/audit.jsonl";
    std::filesystem::create_directories(dir_.path() + "/state");
    AuditLogOptions options;
    options.path = log_;
    options.max_file_bytes = 9000;  // r2 lands after a rotation
    Result<std::unique_ptr<AuditLogWriter>> w = AuditLogWriter::Open(options);
    ASSERT_TRUE(w.ok()) << w.error().message;
    auto& writer = *w;

    r1_ =
        SampleDecisionAudit("20241126T194000.000000Z-aaaa", kSampleBaseNs, ExampleRouteDecision());
    ASSERT_TRUE(writer->AppendDecision(r1_).ok());
    ASSERT_TRUE(writer
                    ->AppendDelivery(
                        SampleDelivery(r1_, "platform", r1_.alert.received_ns + 3 * kSecond / 2))
                    .ok());

    f1_ = SampleDecisionAudit("20241126T204000.000000Z-aaaa", kSampleBaseNs + 3600 * kSecond,
                              SampleFallbackDecision("frontend", "web"));
    f1_.alert.name = "FrontendDown";
    f1_.alert.identity = "am:ffff000011112222";
    f1_.alert.grouped_identities = {"am:9999"};
    ASSERT_TRUE(writer->AppendDecision(f1_).ok());
    DeliveryAudit rejected = SampleDelivery(f1_, "web", f1_.time_ns + kSecond);
    rejected.outcome = DeliveryOutcome::kRejected;
    rejected.accepted_ns = 0;
    rejected.attempts.resize(1);
    rejected.attempts[0].http_status = 400;
    rejected.attempts[0].error = "invalid routing key";
    rejected.rerouted_to = "platform";
    ASSERT_TRUE(writer->AppendDelivery(rejected).ok());
    DeliveryAudit fallback = SampleDelivery(f1_, "platform", f1_.time_ns + 2 * kSecond);
    fallback.fallback_for = "web";
    ASSERT_TRUE(writer->AppendDelivery(fallback).ok());

    r2_ = SampleDecisionAudit("20241126T214000.000000Z-aaaa", kSampleBaseNs + 7200 * kSecond,
                              ExampleRouteDecision());
    ASSERT_TRUE(writer->AppendDecision(r2_).ok());
    ASSERT_TRUE(
        writer->AppendDelivery(SampleDelivery(r2_, "platform", r2_.alert.received_ns + kSecond / 2))
            .ok());
    ASSERT_TRUE(writer->Close().ok());
    ASSERT_GE(AuditLogFiles(log_).size(), 2u) << "the fixture should span a rotation";
  }

  testing::ProcessResult Audit(std::vector<std::string> args) {
    args.insert(args.begin(), "audit");
    args.push_back("--log");
    args.push_back(log_);
    return RunTracepager(args);
  }

  static rapidjson::Document Json(const std::string& text) {
    rapidjson::Document doc;
    doc.Parse(text.c_str());
    EXPECT_FALSE(doc.HasParseError()) << text;
    return doc;
  }

  static std::vector<std::string> Ids(const rapidjson::Document& doc) {
    std::vector<std::string> ids;
    if (!doc.IsObject() || !doc.HasMember("decisions") || !doc["decisions"].IsArray()) return ids;
    for (const auto& d : doc["decisions"].GetArray()) ids.push_back(d["id"].GetString());
    return ids;
  }

  TempDir dir_;
  std::string log_;
  DecisionAudit r1_, f1_, r2_;
};

TEST_F(AuditCli, ListIsNewestFirstAcrossRotatedFiles) {
  testing::ProcessResult r = Audit({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const size_t p2 = r.out.find(r2_.id), pf = r.out.find(f1_.id), p1 = r.out.find(r1_.id);
  ASSERT_NE(p1, std::string::npos) << r.out;
  EXPECT_LT(p2, pf);
  EXPECT_LT(pf, p1);
  EXPECT_NE(r.out.find("routed*"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("postgresql/payments 100%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FrontendDown (+1)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 accepted, 1 failed"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(" pending "), std::string::npos) << r.out;

  r = Audit({"list", "--format", "json", "--limit", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document doc = Json(r.out);
  EXPECT_EQ(Ids(doc), (std::vector<std::string>{r2_.id, f1_.id}));
  EXPECT_EQ(doc["matched"].GetInt(), 3);
  const auto& first = doc["decisions"][0];
  EXPECT_STREQ(first["decision"].GetString(), "routed");
  EXPECT_TRUE(first["disagreement"].GetBool());
  EXPECT_STREQ(first["teams"][0].GetString(), "platform");
  EXPECT_STREQ(first["naive_teams"][0].GetString(), "payments");
  EXPECT_DOUBLE_EQ(first["page_accepted_after_ms"].GetDouble(), 500.0);
}

TEST_F(AuditCli, ListFilters) {
  auto ids = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "list");
    args.push_back("--format");
    args.push_back("json");
    testing::ProcessResult r = Audit(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Ids(Json(r.out));
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({"--decision", "fallback"}), V{f1_.id});
  EXPECT_EQ(ids({"--decision", "routed"}), (V{r2_.id, r1_.id}));
  EXPECT_EQ(ids({"--disagreement"}), (V{r2_.id, r1_.id}));
  EXPECT_EQ(ids({"--team", "platform"}), (V{r2_.id, f1_.id, r1_.id}));  // f1: a delivery
  EXPECT_EQ(ids({"--team", "web"}), V{f1_.id});
  EXPECT_EQ(ids({"--service", "postgresql/payments"}), (V{r2_.id, r1_.id}));
  EXPECT_EQ(ids({"--service", "frontend"}), (V{r2_.id, f1_.id, r1_.id}));
  EXPECT_EQ(ids({"--alert", "FrontendDown"}), V{f1_.id});
  EXPECT_EQ(ids({"--alert", "am:9999"}), V{f1_.id});  // a grouped alert
  EXPECT_EQ(ids({"--since", "2024-11-26T20:00:00Z"}), (V{r2_.id, f1_.id}));
  EXPECT_EQ(ids({"--since", "2024-11-26T20:00:00Z", "--until", "2024-11-26T21:00:00+00:00"}),
            V{f1_.id});
  EXPECT_EQ(ids({"--since", "1h"}), V{});  // the fixture is from 2024
  EXPECT_EQ(ids({"--since", "5000d"}).size(), 3u);

  testing::ProcessResult bad = Audit({"list", "--since", "yesterday"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--since \"yesterday\": expected a duration"), std::string::npos)
      << bad.err;
  bad = Audit({"list", "--decision", "maybe"});
  EXPECT_EQ(bad.exit_code, 2);
}

TEST_F(AuditCli, ShowDrawsTheDecisionLikeRoute) {
  testing::ProcessResult r = Audit({"show", r1_.id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& out = r.out;
  EXPECT_NE(out.find("decision " + r1_.id), std::string::npos) << out;
  EXPECT_NE(out.find("alert    CheckoutErrors [firing] from alertmanager"), std::string::npos);
  EXPECT_NE(out.find("PAGE platform\n"), std::string::npos) << out;
  EXPECT_NE(out.find("naive rule would page: payments via payment (team payments); changed by "
                     "timeout_masking, uninstrumented"),
            std::string::npos)
      << out;
  // The path as a tree, each failing span with its error and timing.
  EXPECT_NE(out.find("\n  frontend  POST /api/checkout  FAILED: HTTP 500  at +0.0ms for "
                     "250.0ms\n"),
            std::string::npos)
      << out;
  EXPECT_NE(
      out.find("\n            payment  INSERT payments.transactions  FAILED: timeout acquiring "
               "connection  at +30.0ms for 205.0ms  <- culprit postgresql/payments "
               "(primary)\n"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("deliveries\n  trigger platform via pagerduty \"pd-platform\" "
                     "(https://events.pagerduty.com/[redacted] key sha256:"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("accepted at 2024-11-26T19:40:01.46"), std::string::npos) << out;
  EXPECT_NE(out.find("1.50s after the alert arrived, 2 attempts"), std::string::npos) << out;
  EXPECT_NE(out.find("attempt 1 at 2024-11-26T19:40:00.960000Z: HTTP 500: internal server error"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("timings  queue 1.2ms, fetch 30.5ms, route 0.4ms, total 33.0ms"),
            std::string::npos)
      << out;

  // A unique prefix is enough; JSON carries the stored records.
  r = Audit({"show", "20241126T2040", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document doc = Json(r.out);
  EXPECT_STREQ(doc["decision"]["id"].GetString(), f1_.id.c_str());
  EXPECT_STREQ(doc["decision"]["route"]["decision"].GetString(), "fallback");
  ASSERT_EQ(doc["deliveries"].Size(), 2u);
  EXPECT_STREQ(doc["deliveries"][0]["outcome"].GetString(), "rejected");
  EXPECT_STREQ(doc["deliveries"][1]["fallback_for"].GetString(), "web");

  r = Audit({"show", f1_.id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("PAGE web  (fallback)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("trigger web via pagerduty \"pd-web\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": rejected, 1 attempt\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rerouted to team platform"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stands in for team web"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": trace not found in any file"), std::string::npos) << r.out;

  r = Audit({"show", "20241126T"});  // ambiguous
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("names 3 decisions"), std::string::npos) << r.err;
  r = Audit({"show", "20991231T000000.000000Z-0000"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no decision 20991231T000000.000000Z-0000"), std::string::npos);
}

TEST_F(AuditCli, Stats) {
  testing::ProcessResult r = Audit({"stats", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document doc = Json(r.out);
  EXPECT_EQ(doc["decisions"].GetInt(), 3);
  EXPECT_EQ(doc["routed"].GetInt(), 2);
  EXPECT_EQ(doc["fallbacks"].GetInt(), 1);
  EXPECT_NEAR(doc["fallback_rate"].GetDouble(), 1.0 / 3, 1e-9);
  EXPECT_EQ(doc["disagreements"].GetInt(), 2);
  // Alert received -> page accepted: r1 1.5 s, f1 (platform's fallback page) 2 s + 40 ms, r2 0.5 s.
  EXPECT_EQ(doc["page_latency_ms"]["count"].GetInt(), 3);
  EXPECT_DOUBLE_EQ(doc["page_latency_ms"]["median"].GetDouble(), 1500.0);
  EXPECT_DOUBLE_EQ(doc["page_latency_ms"]["p95"].GetDouble(), 2040.0);
  EXPECT_STREQ(doc["top_culprits"][0]["service"].GetString(), "postgresql/payments");
  EXPECT_EQ(doc["top_culprits"][0]["decisions"].GetInt(), 2);
  std::map<std::string, std::vector<int>> teams;
  for (const auto& t : doc["teams"].GetArray()) {
    teams[t["team"].GetString()] = {t["routed"].GetInt(), t["fallbacks"].GetInt(),
                                    t["pages_accepted"].GetInt(), t["pages_failed"].GetInt()};
  }
  EXPECT_EQ(teams["platform"], (std::vector<int>{2, 0, 3, 0}));
  EXPECT_EQ(teams["web"], (std::vector<int>{0, 1, 0, 1}));

  r = Audit({"stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("3 decisions from 2024-11-26 19:40:00 to 2024-11-26 21:40:00 (UTC)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("fallback rate 33.3%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("disagree: 2 (66.7%)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("median 1.50s, p95 2.04s"), std::string::npos) << r.out;

  r = Audit({"stats", "--team", "web", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r.out)["decisions"].GetInt(), 1);
}

TEST_F(AuditCli, FindsTheLogFromStateDirOrConfig) {
  testing::ProcessResult r =
      RunTracepager({"audit", "list", "--state-dir", dir_.path() + "/state", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Ids(Json(r.out)).size(), 3u);

  // state_dir relative to the config file; audit.path wins over it.
  const std::string config = dir_.Write("etc/tracepager.yaml", "state_dir: ../state\n");
  r = RunTracepager({"audit", "stats", "--config", config, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r.out)["decisions"].GetInt(), 3);
  const std::string config2 = dir_.Write(
      "etc/other.yaml", "state_dir: /nonexistent\naudit:\n  path: ../state/audit.jsonl\n");
  r = RunTracepager({"audit", "show", r2_.id, "--config", config2});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = RunTracepager({"audit", "list", "--log", dir_.path() + "/none.jsonl"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no audit log at " + dir_.path() + "/none.jsonl"), std::string::npos);
}

TEST_F(AuditCli, UnreadableLinesAreWarningsNotFailures) {
  {
    std::ofstream out(log_, std::ios::app | std::ios::binary);
    out << "garbage line\n{\"schema\":1,\"type\":\"decision\",\"id\":\"torn";
  }
  testing::ProcessResult r = Audit({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: " + log_ + ":"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("record skipped: not JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("torn last line skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find(r2_.id), std::string::npos);

  r = Audit({"list", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rapidjson::Document doc = Json(r.out);
  EXPECT_EQ(doc["warnings"].Size(), 2u);
  EXPECT_EQ(Ids(doc).size(), 3u);
}

}  // namespace
}  // namespace tracepager::daemon
