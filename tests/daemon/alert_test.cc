#include "daemon/alert.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <sstream>

#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using routing::Symptom;
using testing::FixturePath;
using testing::ReadFile;

constexpr int64_t kSecond = 1'000'000'000;
// 2026-11-26T21:30:00Z, a little after the captured alerts started.
const int64_t kNow = *ParseAlertTime("2026-11-26T21:30:00Z");

std::vector<RoutingJob> Jobs(const std::string& body, AlertFormat format = AlertFormat::kAuto,
                             const AlertRules& rules = DefaultAlertRules()) {
  Result<std::vector<RoutingJob>> jobs = JobsFromWebhook(body, format, {}, rules, kNow);
  EXPECT_TRUE(jobs.ok()) << jobs.error().message;
  return jobs.ok() ? *jobs : std::vector<RoutingJob>{};
}

std::string ErrorOf(const std::string& body, AlertFormat format) {
  Result<AlertBatch> b = ParseAlertBatch(body, format);
  EXPECT_FALSE(b.ok()) << body;
  if (b.ok()) return "";
  EXPECT_EQ(b.error().code, ErrorCode::kInvalidInput);
  return b.error().message;
}

std::vector<std::string> FixtureFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(FixturePath(dir))) {
    std::string p = e.path().string();
    if (e.is_regular_file() && e.path().extension() == ".json" &&
        p.find("request-headers") == std::string::npos) {
      out.push_back(p);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(AlertParse, EveryAlertmanagerFixtureParsesExplicitlyAndDetected) {
  std::vector<std::string> files = FixtureFiles("alertmanager");
  for (const std::string& f : FixtureFiles("alertmanager-captured")) files.push_back(f);
  ASSERT_GE(files.size(), 17u);
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    std::string body = ReadFile(f);
    Result<AlertBatch> explicit_am = ParseAlertBatch(body, AlertFormat::kAlertmanager);
    ASSERT_TRUE(explicit_am.ok()) << explicit_am.error().message;
    EXPECT_FALSE(explicit_am->alerts.empty());
    Result<AlertBatch> detected = ParseAlertBatch(body, AlertFormat::kAuto);
    ASSERT_TRUE(detected.ok()) << detected.error().message;
    EXPECT_EQ(detected->format, AlertFormat::kAlertmanager);
    EXPECT_EQ(detected->alerts.size(), explicit_am->alerts.size());
    // Every firing alert becomes a route job, every resolved one a resolve job.
    std::vector<RoutingJob> jobs = DeriveJobs(*detected, DefaultAlertRules(), kNow);
    ASSERT_EQ(jobs.size(), detected->alerts.size());
    for (size_t i = 0; i < jobs.size(); ++i) {
      EXPECT_EQ(jobs[i].kind, detected->alerts[i].status == AlertStatus::kFiring
                                  ? JobKind::kRoute
                                  : JobKind::kResolve);
      EXPECT_FALSE(jobs[i].identity.empty());
      EXPECT_FALSE(jobs[i].storm_key.empty());
    }
  }
}

TEST(AlertParse, CapturedRawBodiesEqualTheirPrettyCopies) {
  for (const char* name :
       {"firing", "resolved", "firing-partially-resolved", "resolved-after-partial"}) {
    SCOPED_TRACE(name);
    std::string dir = "alertmanager-captured/";
    std::vector<RoutingJob> pretty = Jobs(ReadFile(FixturePath(dir + name + ".json")));
    std::vector<RoutingJob> raw = Jobs(ReadFile(FixturePath(dir + name + ".raw.json")));
    ASSERT_EQ(pretty.size(), raw.size());
    for (size_t i = 0; i < raw.size(); ++i) EXPECT_EQ(JobToJson(pretty[i]), JobToJson(raw[i]));
  }
}

TEST(AlertParse, EveryCapturedRequestBodyParses) {
  std::istringstream lines(ReadFile(FixturePath("alertmanager-captured/requests.ndjson")));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    rapidjson::Document d;
    d.Parse(line.data(), line.size());
    ASSERT_FALSE(d.HasParseError());
    ASSERT_TRUE(d.IsObject() && d.HasMember("body") && d["body"].IsString());
    std::string body(d["body"].GetString(), d["body"].GetStringLength());
    Result<AlertBatch> b = ParseAlertBatch(body, AlertFormat::kAlertmanager);
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_EQ(b->version, "4");
    ++n;
  }
  EXPECT_EQ(n, 5);
}

TEST(AlertDerive, CapturedFiringBecomesTwoRoutingJobs) {
  std::string body = ReadFile(FixturePath("alertmanager-captured/firing.json"));
  Result<AlertBatch> batch = ParseAlertBatch(body, AlertFormat::kAlertmanager);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->receiver, "tracepager");
  EXPECT_EQ(batch->group_key, "{}:{team=\"shop-frontend\"}");
  EXPECT_EQ(batch->truncated_alerts, 0u);
  EXPECT_EQ(batch->common_labels.at("team"), "shop-frontend");

  std::vector<RoutingJob> jobs = DeriveJobs(*batch, DefaultAlertRules(), kNow);
  ASSERT_EQ(jobs.size(), 2u);
  const RoutingJob& checkout = jobs[0];
  EXPECT_EQ(checkout.kind, JobKind::kRoute);
  EXPECT_EQ(checkout.identity, "am:891fd0d54ed75b69");
  EXPECT_EQ(checkout.source, "alertmanager");
  EXPECT_EQ(checkout.alertname, "CheckoutErrorRateHigh");
  EXPECT_EQ(checkout.alerting_service, "checkout");
  EXPECT_EQ(checkout.service_label, "service");
  EXPECT_EQ(checkout.symptom, Symptom::kErrors);
  EXPECT_EQ(checkout.symptom_reason, "default errors");
  EXPECT_EQ(checkout.trace_ids, std::vector<std::string>{"4bf92f3577b34da6a3ce929d0e0e4736"});
  EXPECT_EQ(checkout.summary, "Checkout error rate is high");
  EXPECT_EQ(checkout.severity, "page");
  EXPECT_EQ(checkout.starts_at_ns, *ParseAlertTime("2026-11-26T21:22:58.885Z"));
  EXPECT_EQ(checkout.window_start_ns, checkout.starts_at_ns - 15 * 60 * kSecond);
  EXPECT_EQ(checkout.window_end_ns, kNow);
  EXPECT_EQ(checkout.received_ns, kNow);
  EXPECT_EQ(checkout.storm_key, "checkout|errors");
  EXPECT_EQ(checkout.group_key, batch->group_key);

  const RoutingJob& frontend = jobs[1];
  EXPECT_EQ(frontend.identity, "am:296e4179fd3a5b54");
  EXPECT_EQ(frontend.alerting_service, "frontend");
  EXPECT_EQ(frontend.symptom, Symptom::kLatency);
  EXPECT_EQ(frontend.symptom_reason, "alertname \"LatencyP99High\" matches /latency/");
  // The trace id comes from a W3C traceparent annotation.
  EXPECT_EQ(frontend.trace_ids, std::vector<std::string>{"4bf92f3577b34da6a3ce929d0e0e4736"});
  EXPECT_EQ(frontend.storm_key, "frontend|latency");
}

TEST(AlertDerive, ResolvedAlertsResolveTheSameIdentityAndStormKey) {
  std::vector<RoutingJob> firing = Jobs(ReadFile(FixturePath("alertmanager-captured/firing.json")));
  std::vector<RoutingJob> resolved =
      Jobs(ReadFile(FixturePath("alertmanager-captured/resolved.json")));
  ASSERT_EQ(resolved.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(resolved[i].kind, JobKind::kResolve);
    EXPECT_EQ(resolved[i].identity, firing[i].identity);
    EXPECT_EQ(resolved[i].storm_key, firing[i].storm_key);
    EXPECT_NE(resolved[i].dedup_key, firing[i].dedup_key);
    EXPECT_GT(resolved[i].ends_at_ns, 0);
  }
  // A group still "firing" with one resolved alert: per-alert status wins.
  std::vector<RoutingJob> partial =
      Jobs(ReadFile(FixturePath("alertmanager-captured/firing-partially-resolved.json")));
  ASSERT_EQ(partial.size(), 2u);
  EXPECT_EQ(partial[0].kind, JobKind::kResolve);
  EXPECT_EQ(partial[0].identity, "am:891fd0d54ed75b69");
  EXPECT_EQ(partial[1].kind, JobKind::kRoute);
  EXPECT_EQ(partial[1].identity, "am:296e4179fd3a5b54");
}

TEST(AlertDerive, HaDuplicatesShareTheDedupKey) {
  std::string body = ReadFile(FixturePath("alertmanager-captured/firing.json"));
  Result<std::vector<RoutingJob>> a =
      JobsFromWebhook(body, AlertFormat::kAuto, {}, DefaultAlertRules(), kNow);
  Result<std::vector<RoutingJob>> b =
      JobsFromWebhook(body, AlertFormat::kAuto, {}, DefaultAlertRules(), kNow + 7 * kSecond);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0].dedup_key, (*b)[0].dedup_key);
  EXPECT_NE((*a)[0].dedup_key, (*a)[1].dedup_key);
}

TEST(AlertDerive, LegacyAlertmanagerWithoutStatusOrFingerprint) {
  std::string body =
      ReadFile(FixturePath("alertmanager/prometheus_bot_production_example_legacy.json"));
  Result<AlertBatch> batch = ParseAlertBatch(body, AlertFormat::kAuto);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  EXPECT_EQ(batch->version, "0");  // a number in this 2017 payload, kept as text
  EXPECT_EQ(batch->group_key, "0");
  std::vector<RoutingJob> jobs = DeriveJobs(*batch, DefaultAlertRules(), kNow);
  ASSERT_FALSE(jobs.empty());
  for (const RoutingJob& j : jobs) {
    EXPECT_EQ(j.kind, JobKind::kRoute);  // no per-alert status: the group's "firing"
    EXPECT_EQ(j.identity.rfind("labels:", 0), 0u) << j.identity;
    EXPECT_EQ(j.identity.size(), 7u + 16u);
    if (j.alertname == "CPU_Percentage_Worning") {
      EXPECT_EQ(j.alerting_service, "");  // the one alert of the payload without a `job` label
    } else {
      EXPECT_EQ(j.alerting_service, "statsd");  // no service label: `job` is next in the list
      EXPECT_EQ(j.service_label, "job");
    }
  }
  EXPECT_NE(jobs[0].identity, jobs[1].identity);
}

TEST(AlertDerive, LabelHashIdentityIgnoresLabelOrder) {
  const char* a = R"({"receiver":"r","alerts":[{"labels":{"alertname":"X","service":"s"}}]})";
  const char* b = R"({"receiver":"r","alerts":[{"labels":{"service":"s","alertname":"X"}}]})";
  const char* c = R"({"receiver":"r","alerts":[{"labels":{"service":"s","alertname":"Y"}}]})";
  EXPECT_EQ(Jobs(a)[0].identity, Jobs(b)[0].identity);
  EXPECT_NE(Jobs(a)[0].identity, Jobs(c)[0].identity);
  // "a=bc" and "ab=c" must not collide.
  const char* d = R"({"receiver":"r","alerts":[{"labels":{"a":"bc"}}]})";
  const char* e = R"({"receiver":"r","alerts":[{"labels":{"ab":"c"}}]})";
  EXPECT_NE(Jobs(d)[0].identity, Jobs(e)[0].identity);
}

TEST(AlertDerive, AlertWithoutServiceStillBecomesAJob) {
  std::vector<RoutingJob> jobs =
      Jobs(ReadFile(FixturePath("alertmanager/msteams_prom_post_request_2_alerts.json")));
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].alerting_service, "");
  EXPECT_EQ(jobs[0].storm_key, "alert|" + jobs[0].identity);
  // A -05:00 offset.
  EXPECT_EQ(jobs[0].starts_at_ns, *ParseAlertTime("2018-03-07T11:33:21.873077559Z"));
}

TEST(AlertDerive, TruncatedAlertsAreRecordedOnEveryJob) {
  const char* body = R"({"version":"4","groupKey":"g","status":"firing","truncatedAlerts":7,
    "alerts":[{"status":"firing","labels":{"service":"api"},"fingerprint":"0123456789abcdef"}]})";
  std::vector<RoutingJob> jobs = Jobs(body);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].group_truncated_alerts, 7u);
}

TEST(AlertDerive, GrafanaFiringAndResolved) {
  std::string firing =
      ReadFile(FixturePath("grafana/from-docs/webhook_unified_firing_written.json"));
  Result<AlertBatch> batch = ParseAlertBatch(firing, AlertFormat::kAuto);
  ASSERT_TRUE(batch.ok()) << batch.error().message;
  EXPECT_EQ(batch->format, AlertFormat::kGrafana);
  ASSERT_EQ(batch->alerts.size(), 1u);
  EXPECT_EQ(batch->alerts[0].links.size(), 3u);  // silence, dashboard, panel
  std::vector<RoutingJob> jobs = DeriveJobs(*batch, DefaultAlertRules(), kNow);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].kind, JobKind::kRoute);
  EXPECT_EQ(jobs[0].source, "grafana");
  EXPECT_EQ(jobs[0].identity, "grafana:3f9d27c1b6a0e482");
  EXPECT_EQ(jobs[0].alerting_service, "checkout");
  EXPECT_EQ(jobs[0].service_label, "service_name");
  EXPECT_EQ(jobs[0].trace_ids, std::vector<std::string>{"4bf92f3577b34da6a3ce929d0e0e4736"});
  EXPECT_EQ(jobs[0].severity, "critical");

  std::string resolved =
      ReadFile(FixturePath("grafana/from-docs/webhook_unified_resolved_written.json"));
  std::vector<RoutingJob> r = Jobs(resolved, AlertFormat::kGrafana);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].kind, JobKind::kResolve);
  EXPECT_EQ(r[0].identity, jobs[0].identity);
  EXPECT_EQ(r[0].storm_key, jobs[0].storm_key);
}

TEST(AlertDerive, GrafanaStateOkResolvesAlertsWithoutStatus) {
  const char* body = R"({"version":"1","state":"ok","orgId":1,
    "alerts":[{"labels":{"service":"api"},"fingerprint":"aa"}]})";
  std::vector<RoutingJob> jobs = Jobs(body);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].kind, JobKind::kResolve);
  EXPECT_EQ(jobs[0].identity, "grafana:aa");
}

TEST(AlertDerive, GenericForms) {
  const char* one = R"({"service":"checkout","summary":"5xx above 5%","severity":"critical",
    "symptom":"latency","alertname":"CheckoutSlow","labels":{"team":"shop","replicas":3},
    "annotations":{"note":true},"trace_ids":["4BF92F3577B34DA6A3CE929D0E0E4736","00f067aa0ba902b7"],
    "links":["https://jaeger.example/trace/0af7651916cd43dd8448eb211c80319c"],
    "starts_at":1795728000})";
  std::vector<RoutingJob> jobs = Jobs(one);
  ASSERT_EQ(jobs.size(), 1u);
  const RoutingJob& j = jobs[0];
  EXPECT_EQ(j.source, "generic");
  EXPECT_EQ(j.kind, JobKind::kRoute);
  EXPECT_EQ(j.alerting_service, "checkout");
  EXPECT_EQ(j.symptom, Symptom::kLatency);
  EXPECT_EQ(j.symptom_reason, "field symptom=\"latency\"");
  EXPECT_EQ(j.summary, "5xx above 5%");
  EXPECT_EQ(j.severity, "critical");
  EXPECT_EQ(j.alertname, "CheckoutSlow");
  EXPECT_EQ(j.labels.at("replicas"), "3");
  EXPECT_EQ(j.annotations.at("note"), "true");
  EXPECT_EQ(j.trace_ids, (std::vector<std::string>{"4bf92f3577b34da6a3ce929d0e0e4736",
                                                   "000000000000000000f067aa0ba902b7",
                                                   "0af7651916cd43dd8448eb211c80319c"}));
  EXPECT_EQ(j.starts_at_ns, 1795728000 * kSecond);
  EXPECT_EQ(j.identity.rfind("labels:", 0), 0u);

  const char* many = R"([{"service":"a","id":"x1"},{"service":"b","status":"resolved","id":"x2",
    "starts_at":"2026-11-26T21:00:00Z","ends_at":"2026-11-26T21:10:00Z"}])";
  std::vector<RoutingJob> m = Jobs(many, AlertFormat::kGeneric);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].identity, "generic:x1");
  EXPECT_EQ(m[0].window_start_ns, kNow - 15 * 60 * kSecond);  // no start: now - lookback
  EXPECT_EQ(m[1].kind, JobKind::kResolve);
  EXPECT_EQ(m[1].ends_at_ns, *ParseAlertTime("2026-11-26T21:10:00Z"));

  const char* wrapped = R"({"alerts":[{"service":"a"},{"service":"b"}]})";
  EXPECT_EQ(Jobs(wrapped, AlertFormat::kGeneric).size(), 2u);
  EXPECT_EQ(Jobs(wrapped, AlertFormat::kAuto).size(), 2u);
}

TEST(AlertDerive, SymptomLabelWinsOverPatterns) {
  AlertRules rules = DefaultAlertRules();
  rules.error_patterns.push_back(*AlertNamePattern::Compile("^Errors"));
  const char* labelled =
      R"({"receiver":"r","alerts":[{"labels":{"alertname":"LatencyHigh","symptom":"errors"}}]})";
  EXPECT_EQ(Jobs(labelled, AlertFormat::kAuto, rules)[0].symptom, Symptom::kErrors);
  const char* by_error_pattern =
      R"({"receiver":"r","alerts":[{"labels":{"alertname":"errorsBudget"}}]})";
  std::vector<RoutingJob> j = Jobs(by_error_pattern, AlertFormat::kAuto, rules);
  EXPECT_EQ(j[0].symptom, Symptom::kErrors);
  EXPECT_EQ(j[0].symptom_reason, "alertname \"errorsBudget\" matches /^Errors/");
  rules.default_symptom = Symptom::kLatency;
  const char* other = R"({"receiver":"r","alerts":[{"labels":{"alertname":"Saturation"}}]})";
  EXPECT_EQ(Jobs(other, AlertFormat::kAuto, rules)[0].symptom, Symptom::kLatency);
}

TEST(AlertDerive, RememberedPatternAnswersStayRightPastTheMemoLimit) {
  AlertNamePattern p = *AlertNamePattern::Compile("p9[059]");
  AlertNamePattern copy = p;  // copies share what was remembered
  for (int round = 0; round < 2; ++round) {
    EXPECT_TRUE(p.Matches("CheckoutP99High"));
    EXPECT_TRUE(copy.Matches("checkoutp99high"));
    EXPECT_FALSE(p.Matches("CheckoutErrors"));
  }
  // Past the limit new names are still answered, by searching.
  for (size_t i = 0; i < AlertNamePattern::kMemoLimit + 50; ++i) {
    std::string name = "Alert" + std::to_string(i) + (i % 2 == 0 ? "P95" : "");
    EXPECT_EQ(p.Matches(name), i % 2 == 0) << name;
  }
  EXPECT_TRUE(p.Matches("CheckoutP99High"));
  EXPECT_FALSE(p.Matches("CheckoutErrors"));
}

TEST(AlertDerive, ConfiguredServiceLabelsInOrder) {
  AlertRules rules = DefaultAlertRules();
  rules.service_labels = {"app", "service"};
  const char* body =
      R"({"receiver":"r","alerts":[{"labels":{"service":"svc","app":"application"}}]})";
  EXPECT_EQ(Jobs(body, AlertFormat::kAuto, rules)[0].alerting_service, "application");
  const char* empty_app = R"({"receiver":"r","alerts":[{"labels":{"service":"svc","app":""}}]})";
  EXPECT_EQ(Jobs(empty_app, AlertFormat::kAuto, rules)[0].alerting_service, "svc");
}

TEST(AlertDerive, TraceIdsFromLabelsAnnotationsAndLinks) {
  const char* body = R"({"receiver":"r","alerts":[{
    "labels":{"service":"api","trace_id":"00F067AA0BA902B7"},
    "annotations":{"exemplar":"see http://tempo:3200/api/traces/0af7651916cd43dd8448eb211c80319c",
                   "dashboard":"https://grafana/explore?traceId=1bf92f3577b34da6a3ce929d0e0e4736&x=1",
                   "unrelated":"abc 2bf92f3577b34da6a3ce929d0e0e4736"},
    "generatorURL":"http://prom/graph?g0.expr=up"}]})";
  std::vector<RoutingJob> jobs = Jobs(body);
  EXPECT_EQ(jobs[0].trace_ids, (std::vector<std::string>{"000000000000000000f067aa0ba902b7",
                                                         "0af7651916cd43dd8448eb211c80319c",
                                                         "1bf92f3577b34da6a3ce929d0e0e4736"}));
  AlertRules no_scan = DefaultAlertRules();
  no_scan.scan_links = false;
  EXPECT_EQ(Jobs(body, AlertFormat::kAuto, no_scan)[0].trace_ids,
            (std::vector<std::string>{"000000000000000000f067aa0ba902b7",
                                      "0af7651916cd43dd8448eb211c80319c"}));
  no_scan.max_trace_ids = 1;
  EXPECT_EQ(Jobs(body, AlertFormat::kAuto, no_scan)[0].trace_ids.size(), 1u);
}

TEST(AlertErrors, NameTheFormAndTheField) {
  EXPECT_EQ(ErrorOf(R"({"receiver":"r","alerts":[{"labels":{"service":{"x":1}}}]})",
                    AlertFormat::kAlertmanager),
            "alertmanager alerts[0].labels.service: expected a string, got an object");
  EXPECT_EQ(ErrorOf(R"({"receiver":"r"})", AlertFormat::kAlertmanager),
            "alertmanager alerts: missing");
  EXPECT_EQ(ErrorOf(R"({"receiver":"r","alerts":{}})", AlertFormat::kGrafana),
            "grafana alerts: expected an array, got an object");
  EXPECT_EQ(
      ErrorOf(R"({"receiver":"r","alerts":[{"status":"pending"}]})", AlertFormat::kAlertmanager),
      "alertmanager alerts[0].status: expected \"firing\" or \"resolved\", got \"pending\"");
  EXPECT_EQ(
      ErrorOf(R"({"receiver":"r","alerts":[{"startsAt":"yesterday"}]})", AlertFormat::kAlertmanager)
          .rfind("alertmanager alerts[0].startsAt: \"yesterday\" is not an RFC 3339 time", 0),
      0u);
  EXPECT_EQ(
      ErrorOf(R"({"receiver":"r","alerts":[{"fingerprint":12}]})", AlertFormat::kAlertmanager),
      "alertmanager alerts[0].fingerprint: expected a string, got a number");
  EXPECT_EQ(
      ErrorOf(R"({"receiver":"r","truncatedAlerts":-1,"alerts":[]})", AlertFormat::kAlertmanager),
      "alertmanager truncatedAlerts: expected a non-negative integer, got a number");
  EXPECT_EQ(ErrorOf(R"([{"service":"a"},{"trace_ids":["nothex"]}])", AlertFormat::kGeneric),
            "generic [1].trace_ids[0]: \"nothex\" is not a trace id (16 or 32 hex digits, or a "
            "traceparent)");
  EXPECT_EQ(ErrorOf(R"({"service":"a","symptom":"cpu"})", AlertFormat::kGeneric),
            "generic symptom: expected \"errors\" or \"latency\", got \"cpu\"");
  EXPECT_EQ(ErrorOf(R"("just a string")", AlertFormat::kGeneric),
            "generic body: expected an object, got a string");
  EXPECT_EQ(ErrorOf(R"([1])", AlertFormat::kAlertmanager),
            "alertmanager body: expected an object, got an array");
  EXPECT_EQ(ErrorOf(R"({"alerts":[)", AlertFormat::kAuto).rfind("body: invalid JSON at byte 11", 0),
            0u);
  EXPECT_EQ(ErrorOf("", AlertFormat::kAuto).rfind("body: invalid JSON", 0), 0u);
}

TEST(AlertErrors, LimitsAreEnforcedBeforeParsing) {
  std::string deep(40, '[');
  deep += std::string(40, ']');
  EXPECT_EQ(ErrorOf(deep, AlertFormat::kAuto),
            "body: JSON nesting deeper than 32 levels at byte 33");
  // Brackets inside strings do not count.
  std::string in_string = R"({"service":"a","summary":")" + std::string(100, '[') + R"("})";
  EXPECT_TRUE(ParseAlertBatch(in_string, AlertFormat::kAuto).ok());
  AlertParseLimits small;
  small.max_bytes = 10;
  EXPECT_FALSE(ParseAlertBatch(R"({"service":"abcdefgh"})", AlertFormat::kAuto, small).ok());
  AlertParseLimits few;
  few.max_alerts = 1;
  Result<AlertBatch> b =
      ParseAlertBatch(R"({"receiver":"r","alerts":[{},{}]})", AlertFormat::kAuto, few);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message, "alertmanager alerts: 2 alerts, more than the limit of 1");
}

TEST(AlertErrors, HostileInputNeverCrashes) {
  std::string body = ReadFile(FixturePath("alertmanager-captured/firing.raw.json"));
  // Every prefix of a real body either parses or fails cleanly.
  for (size_t n = 0; n < body.size(); n += 7) {
    Result<AlertBatch> b = ParseAlertBatch(body.substr(0, n), AlertFormat::kAuto);
    EXPECT_FALSE(b.ok()) << n;
  }
  // Every value replaced by every type.
  for (const char* v : {"null", "1", "true", "\"s\"", "[]", "{}"}) {
    for (const char* key : {"alerts", "labels", "annotations", "startsAt", "status", "values",
                            "groupLabels", "truncatedAlerts", "receiver"}) {
      std::string mutated = std::string(
          R"({"version":"1","state":"x","receiver":"r","alerts":[{"labels":{},"values":{}}]})");
      std::string needle = std::string("\"") + key + "\":";
      size_t pos = mutated.find(needle);
      if (pos == std::string::npos) {
        mutated.insert(1, needle + v + ",");
      }
      (void)ParseAlertBatch(mutated, AlertFormat::kAuto);
      (void)ParseAlertBatch(mutated, AlertFormat::kGeneric);
    }
  }
}

TEST(AlertHelpers, NormalizeTraceId) {
  EXPECT_EQ(NormalizeTraceId("4BF92F3577B34DA6A3CE929D0E0E4736"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(NormalizeTraceId("00f067aa0ba902b7"), "000000000000000000f067aa0ba902b7");
  EXPECT_EQ(NormalizeTraceId("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const char* bad : {"", "0000000000000000", "00000000000000000000000000000000",
                          "4bf92f3577b34da6a3ce929d0e0e473", "4bf92f3577b34da6a3ce929d0e0e4736a",
                          "zbf92f3577b34da6a3ce929d0e0e4736"}) {
    EXPECT_FALSE(NormalizeTraceId(bad).has_value()) << bad;
  }
}

TEST(AlertHelpers, ScanTraceLinks) {
  auto scan = [](std::string_view text) {
    std::vector<std::string> out;
    ScanTraceLinks(text, &out);
    return out;
  };
  EXPECT_EQ(scan("http://jaeger:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736?uiFind=x"),
            std::vector<std::string>{"4bf92f3577b34da6a3ce929d0e0e4736"});
  EXPECT_EQ(scan("https://zipkin/zipkin/traces/00f067aa0ba902b7"),
            std::vector<std::string>{"000000000000000000f067aa0ba902b7"});
  EXPECT_EQ(scan("https://g/explore?x=%2Ftrace%2F4BF92F3577B34DA6A3CE929D0E0E4736"),
            std::vector<std::string>{"4bf92f3577b34da6a3ce929d0e0e4736"});
  EXPECT_EQ(
      scan(
          "traceID=4bf92f3577b34da6a3ce929d0e0e4736 and trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
      std::vector<std::string>{"4bf92f3577b34da6a3ce929d0e0e4736"});
  EXPECT_EQ(scan("see TRACEID:4BF92F3577B34DA6A3CE929D0E0E4736"),
            std::vector<std::string>{"4bf92f3577b34da6a3ce929d0e0e4736"});
  EXPECT_TRUE(scan("tracTraceTRAC").empty());
  // Too long, too short or a longer token: not a trace id.
  EXPECT_TRUE(scan("/trace/4bf92f3577b34da6a3ce929d0e0e47361").empty());
  EXPECT_TRUE(scan("/trace/4bf92f35").empty());
  EXPECT_TRUE(scan("/trace/00f067aa0ba902b7x").empty());
  EXPECT_TRUE(scan("4bf92f3577b34da6a3ce929d0e0e4736").empty());  // no marker
}

TEST(AlertHelpers, Rfc3339) {
  EXPECT_EQ(*ParseAlertTime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseAlertTime("0001-01-01T00:00:00Z"), 0);  // Go's zero time: unset
  EXPECT_EQ(*ParseAlertTime(""), 0);
  EXPECT_EQ(*ParseAlertTime("2026-11-26T21:22:58.885Z"), 1795728178885000000);
  EXPECT_EQ(*ParseAlertTime("2018-11-04T22:43:58.283995108+01:00"), 1541367838283995108);
  EXPECT_EQ(*ParseAlertTime("2018-03-07T06:33:21.873077559-05:00"),
            *ParseAlertTime("2018-03-07T11:33:21.873077559Z"));
  EXPECT_EQ(*ParseAlertTime("2026-11-26T21:22:58.1234567891Z"), 1795728178123456789);
  EXPECT_EQ(FormatAlertTime(1795728178885000000), "2026-11-26T21:22:58.885Z");
  EXPECT_EQ(FormatAlertTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatAlertTime(-1), "1969-12-31T23:59:59.999999999Z");
  for (const char* bad :
       {"2026-11-26", "2026-11-26T21:22:58", "2026-13-01T00:00:00Z", "2026-11-26T21:22:58.Z",
        "2026-11-26T21:22:58+0100", "0001-01-01T00:00:01Z", "2026-11-26T21:22:58Zjunk"}) {
    EXPECT_FALSE(ParseAlertTime(bad).ok()) << bad;
  }
}

TEST(AlertHelpers, FormatNames) {
  for (AlertFormat f : {AlertFormat::kAuto, AlertFormat::kAlertmanager, AlertFormat::kGrafana,
                        AlertFormat::kGeneric}) {
    EXPECT_EQ(*AlertFormatFromName(AlertFormatName(f)), f);
  }
  EXPECT_FALSE(AlertFormatFromName("prometheus").ok());
}

// A job with every member set.
RoutingJob EveryMemberSet() {
  RoutingJob j;
  j.kind = JobKind::kResolve;
  j.identity = "am:f1";
  j.storm_key = "checkout|latency";
  j.dedup_key = "am:f1|resolve|1|2";
  j.source = "alertmanager";
  j.alertname = "CheckoutSlow";
  j.alerting_service = "checkout";
  j.service_label = "service_name";
  j.symptom = routing::Symptom::kLatency;
  j.symptom_reason = "label symptom=\"latency\"";
  j.trace_ids = {"4bf92f3577b34da6a3ce929d0e0e4736", "00000000000000000000000000000001"};
  j.starts_at_ns = 1;
  j.ends_at_ns = 2;
  j.window_start_ns = -3;
  j.window_end_ns = 4;
  j.received_ns = 5;
  j.summary = "p99 \u00e9 high\n";
  j.severity = "page";
  j.labels = {{"alertname", "CheckoutSlow"}, {"service_name", "checkout"}};
  j.annotations = {{"summary", "p99 high"}, {"", "empty name"}};
  j.generator_url = "http://prometheus:9090/graph?g0.expr=x";
  j.group_key = "{}:{alertname=\"CheckoutSlow\"}";
  j.receiver = "tracepager";
  j.group_truncated_alerts = 7;
  return j;
}

// Every member survives the store: a worker gets either the job as derived or the job read
// back from its JSON (IntakeBatch::live), and must see the same one.
TEST(Job, EveryMemberRoundTrips) {
  RoutingJob j = EveryMemberSet();
  Result<RoutingJob> back = JobFromJson(JobToJson(j));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back == j) << JobToJson(*back) << "\n" << JobToJson(j);
  RoutingJob defaults;
  back = JobFromJson(JobToJson(defaults));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back == defaults);
}

// Without its details a job keeps every member a claim's alerts are decided on, and only them.
TEST(Job, WithoutDetailsKeepsWhatEveryAlertIsDecidedOn) {
  RoutingJob j = EveryMemberSet();
  Result<RoutingJob> lean = JobFromJson(JobToJson(j), JobParts::kWithoutDetails);
  ASSERT_TRUE(lean.ok()) << lean.error().message;
  RoutingJob want = j;
  want.service_label.clear();
  want.symptom_reason.clear();
  want.summary.clear();
  want.severity.clear();
  want.labels.clear();
  want.annotations.clear();
  want.generator_url.clear();
  want.group_key.clear();
  want.receiver.clear();
  want.group_truncated_alerts = 0;
  EXPECT_TRUE(*lean == want) << JobToJson(*lean) << "\n" << JobToJson(want);
  // The same, copied from the job as derived.
  EXPECT_TRUE(WithoutDetails(j) == want) << JobToJson(WithoutDetails(j));
}

TEST(Job, JsonRoundTrip) {
  std::vector<RoutingJob> jobs = Jobs(ReadFile(FixturePath("alertmanager-captured/firing.json")));
  for (const RoutingJob& j : jobs) {
    std::string json = JobToJson(j);
    Result<RoutingJob> back = JobFromJson(json);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(JobToJson(*back), json);
    EXPECT_EQ(back->symptom, j.symptom);
    EXPECT_EQ(back->trace_ids, j.trace_ids);
    EXPECT_EQ(back->labels, j.labels);
  }
  EXPECT_FALSE(JobFromJson("{\"kind\":\"page\"}").ok());
  EXPECT_FALSE(JobFromJson("{\"kind\":\"route\",\"symptom\":\"errors\",\"labels\":[]}").ok());
  EXPECT_FALSE(JobFromJson("[]").ok());
}

TEST(Job, AWrongMemberIsNamedAndUnknownOrMissingMembersAreFine) {
  // The same with or without the details: they are checked either way.
  auto error = [](const std::string& json) {
    Result<RoutingJob> r = JobFromJson(json);
    Result<RoutingJob> lean = JobFromJson(json, JobParts::kWithoutDetails);
    EXPECT_EQ(r.ok(), lean.ok()) << json;
    if (!r.ok() && !lean.ok()) {
      EXPECT_EQ(r.error().message, lean.error().message);
    }
    return r.ok() ? std::string("ok") : r.error().message;
  };
  const std::string head = R"({"kind":"route","symptom":"latency",)";
  EXPECT_EQ(error(head + R"("identity":7})"), "stored job: \"identity\" is not a string");
  EXPECT_EQ(error(head + R"("received_ns":"7"})"), "stored job: \"received_ns\" is not an integer");
  EXPECT_EQ(error(head + R"("trace_ids":"ab"})"), "stored job: \"trace_ids\" is not an array");
  EXPECT_EQ(error(head + R"("trace_ids":[1]})"),
            "stored job: \"trace_ids\" has an element that is not a string");
  EXPECT_EQ(error(head + R"("annotations":{"a":1}})"),
            "stored job: \"annotations\" has a value that is not a string");
  EXPECT_EQ(error(head + R"("group_truncated_alerts":-1})"),
            "stored job: \"group_truncated_alerts\" out of range");
  EXPECT_EQ(error(head + R"("summary":["s"]})"), "stored job: \"summary\" is not a string");
  EXPECT_EQ(error(head + R"("labels":{"a":{}}})"),
            "stored job: \"labels\" has a value that is not a string");
  // Members written by a later build are ignored; members an earlier build did not write are
  // left at their defaults.
  Result<RoutingJob> r =
      JobFromJson(head + R"("added_later":[1,{}],"identity":"a","ends_at_ns":5})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->kind, JobKind::kRoute);
  EXPECT_EQ(r->symptom, routing::Symptom::kLatency);
  EXPECT_EQ(r->identity, "a");
  EXPECT_EQ(r->ends_at_ns, 5);
  EXPECT_EQ(r->received_ns, 0);
  EXPECT_TRUE(r->labels.empty());
}

}  // namespace
}  // namespace tracepager::daemon
