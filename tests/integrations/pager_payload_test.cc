// Payload mapping of every pager against golden JSON and the recorded vendor bodies in the
// shared fixtures, and the classification of their answers.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <set>

#include "integrations/crypto.h"
#include "integrations/opsgenie/opsgenie_alert.h"
#include "integrations/opsgenie/opsgenie_pager.h"
#include "integrations/page_builder.h"
#include "integrations/pagerduty/pagerduty_event.h"
#include "integrations/pagerduty/pagerduty_pager.h"
#include "integrations/slack/slack_message.h"
#include "integrations/slack/slack_pager.h"
#include "integrations/webhook/webhook_body.h"
#include "integrations/webhook/webhook_pager.h"
#include "tests/integrations/golden.h"
#include "tests/integrations/sample_decision.h"
#include "tests/support/process.h"

namespace tracepager::integrations {
namespace {

using testing::FixturePath;
using testing::MatchesGolden;
using testing::ReadFile;
using testing::SampleAlert;
using testing::SampleDecision;
using testing::SampleOptions;

constexpr char kRoutingKey[] = "e93facc04764012d7bfb002500d5d1a6";

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

std::set<std::string> Keys(const rapidjson::Value& object) {
  std::set<std::string> out;
  if (!object.IsObject()) return out;
  for (const auto& m : object.GetObject()) out.insert(m.name.GetString());
  return out;
}

bool IsSubset(const std::set<std::string>& a, const std::set<std::string>& b) {
  for (const std::string& k : a) {
    if (!b.count(k)) return false;
  }
  return true;
}

size_t Chars(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::vector<Page> SamplePages() {
  return BuildPages(SampleDecision(), SampleAlert(), SampleOptions(), "d-20240501-0001",
                    testing::kSampleNowNs);
}

// ---- pages ----

TEST(PageBuilder, OnePagePerTeamLeadingWithThatTeamsCulprit) {
  std::vector<Page> pages = SamplePages();
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[0].team, "payments-data");
  EXPECT_EQ(pages[0].component, "orders-db");
  EXPECT_EQ(pages[0].group, "frontend");
  EXPECT_EQ(pages[0].source, "frontend");
  EXPECT_EQ(pages[0].severity, "critical");
  EXPECT_EQ(pages[0].summary.rfind("orders-db: errors behind frontend", 0), 0u) << pages[0].summary;
  EXPECT_EQ(pages[0].path,
            (std::vector<std::string>{"frontend", "checkout", "payment", "orders-db"}));
  EXPECT_EQ(pages[1].team, "payments");
  EXPECT_EQ(pages[1].component, "payment");
  EXPECT_EQ(pages[1].path, (std::vector<std::string>{"frontend", "checkout", "payment"}));
}

TEST(PageBuilder, LinksTheTracesThatBlameTheCulpritFirst) {
  std::vector<Page> pages = SamplePages();
  ASSERT_GE(pages[1].links.size(), 2u);
  EXPECT_EQ(pages[1].links[0].href,
            "https://jaeger.example/trace/b7ad6b7169203331b7ad6b7169203331");
  EXPECT_EQ(pages[0].links[0].href,
            "https://jaeger.example/trace/4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(pages[0].links.back().text, "Runbook");
}

TEST(PageBuilder, DedupKeyIsStablePerIdentityAndTeam) {
  EXPECT_EQ(DedupKey("am:1", "payments"), DedupKey("am:1", "payments"));
  EXPECT_NE(DedupKey("am:1", "payments"), DedupKey("am:1", "payments-data"));
  EXPECT_NE(DedupKey("am:1", "payments"), DedupKey("am:2", "payments"));
  EXPECT_NE(DedupKey("a", "bc"), DedupKey("ab", "c"));
  // Pinned: a dedup key must never change between versions, or a restart after an upgrade
  // would open a second incident and resolves would miss.
  // printf '19:am:8a3f0c2d9b1e4f57|13:payments-data' | sha256sum
  EXPECT_EQ(DedupKey("am:8a3f0c2d9b1e4f57", "payments-data"),
            "tracepager-a1ab2fed88826f9a082b7773d2808bb92356ba253adbc00e8db01cdfc1c39cb6");
  std::string key = DedupKey("am:1", "payments");
  EXPECT_EQ(key.size(), 75u);
  for (char c : key) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-');
  EXPECT_EQ(SamplePages()[0].dedup_key, DedupKey("am:8a3f0c2d9b1e4f57", "payments-data"));
}

TEST(PageBuilder, DetailsCarryPathCulpritsNaiveAnswerAndLabels) {
  rapidjson::Document d = Parse(SamplePages()[0].details_json);
  EXPECT_STREQ(d["path"].GetString(), "frontend > checkout > payment > orders-db");
  ASSERT_EQ(d["culprits"].Size(), 2u);
  EXPECT_STREQ(d["culprits"][0]["service"].GetString(), "orders-db");
  EXPECT_NEAR(d["culprits"][0]["share"].GetDouble(), 2.0 / 3.0, 1e-9);
  ASSERT_TRUE(d.HasMember("naive"));
  EXPECT_STREQ(d["naive"]["teams"][0].GetString(), "payments");
  EXPECT_STREQ(d["labels"]["alertname"].GetString(), "CheckoutErrors");
}

TEST(PageBuilder, NaiveAnswerOmittedWhenItPagesTheSameTeams) {
  routing::Decision decision = SampleDecision();
  decision.naive_teams = decision.teams;
  Page page = BuildPages(decision, SampleAlert(), SampleOptions(), "d", 0)[0];
  EXPECT_FALSE(Parse(page.details_json).HasMember("naive"));
}

TEST(PageBuilder, DecisionWithoutTeamsStillMakesOnePageForDelivery) {
  routing::Decision decision;
  decision.kind = routing::Decision::Kind::kFallback;
  decision.alerting_service = "frontend";
  decision.reason = "no traces";
  std::vector<Page> pages = BuildPages(decision, SampleAlert(), SampleOptions(), "d", 0);
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].team, "");
  EXPECT_EQ(pages[0].component, "frontend");
  EXPECT_NE(pages[0].summary.find("no failing dependency"), std::string::npos);
}

TEST(PageBuilder, FallbackPageIsReaddressedAndSaysWhy) {
  Page page = SamplePages()[0];
  Page fb = FallbackPage(page, "sre", "pagerduty answered 400: invalid routing key");
  EXPECT_EQ(fb.team, "sre");
  EXPECT_EQ(fb.dedup_key, DedupKey(page.alert_identity, "sre"));
  EXPECT_EQ(fb.summary.rfind("[fallback for payments-data] orders-db", 0), 0u);
  rapidjson::Document d = Parse(fb.details_json);
  EXPECT_STREQ(d["fallback"]["for_team"].GetString(), "payments-data");
  EXPECT_STREQ(d["team"].GetString(), "sre");
}

TEST(PageBuilder, PageRoundTripsThroughJson) {
  Page page = FallbackPage(SamplePages()[0], "sre", "why");
  page.action = Page::Action::kResolve;
  Result<Page> back = PageFromJson(PageToJson(page));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(PageToJson(*back), PageToJson(page));
  EXPECT_EQ(back->links.size(), page.links.size());
  EXPECT_EQ(back->action, Page::Action::kResolve);
}

TEST(PageBuilder, PageFromJsonNamesTheBadField) {
  Result<Page> r = PageFromJson(R"({"action":"trigger","team":7})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("\"team\""), std::string::npos) << r.error().message;
  EXPECT_FALSE(PageFromJson(R"({"action":"page"})").ok());
  EXPECT_FALSE(PageFromJson("[1]").ok());
  EXPECT_FALSE(PageFromJson(R"({"links":[{"href":1}]})").ok());
}

TEST(PageBuilder, TruncationKeepsUtf8Whole) {
  EXPECT_EQ(TruncateUtf8("abc", 3), "abc");
  std::string s = "ab\xC3\xA9\xC3\xA9";  // "abéé", 6 bytes
  std::string cut = TruncateUtf8(s, 5);
  EXPECT_LE(cut.size(), 5u);
  EXPECT_EQ(cut, "ab\xE2\x80\xA6");
  EXPECT_EQ(TruncateChars("\xC3\xA9\xC3\xA9\xC3\xA9", 3), "\xC3\xA9\xC3\xA9\xC3\xA9");
  EXPECT_EQ(TruncateChars("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 3), "\xC3\xA9\xC3\xA9\xE2\x80\xA6");
}

TEST(PageBuilder, SeverityMapping) {
  EXPECT_EQ(MapSeverity("critical"), "critical");
  EXPECT_EQ(MapSeverity("PAGE"), "critical");
  EXPECT_EQ(MapSeverity("high"), "error");
  EXPECT_EQ(MapSeverity("warning"), "warning");
  EXPECT_EQ(MapSeverity("Warn"), "warning");
  EXPECT_EQ(MapSeverity("info"), "info");
  EXPECT_EQ(MapSeverity("none"), "info");
  EXPECT_EQ(MapSeverity("whatever"), "error");
  EXPECT_EQ(MapSeverity("", "warning"), "warning");
}

// ---- PagerDuty ----

TEST(PagerDuty, TriggerEventMatchesGolden) {
  EXPECT_TRUE(MatchesGolden(pagerduty::EventJson(SamplePages()[0], kRoutingKey, {}),
                            "pagerduty_trigger.json"));
}

TEST(PagerDuty, ResolveEventMatchesGoldenAndTheDocumentedShape) {
  std::string event = pagerduty::EventJson(ResolvePage(SamplePages()[0]), kRoutingKey, {});
  EXPECT_TRUE(MatchesGolden(event, "pagerduty_resolve.json"));
  rapidjson::Document documented =
      Parse(ReadFile(FixturePath("pagerduty/from-docs/enqueue_resolve_request_devdocs.json")));
  EXPECT_EQ(Keys(Parse(event)), Keys(documented));
}

TEST(PagerDuty, TriggerUsesOnlyDocumentedFields) {
  rapidjson::Document ours = Parse(pagerduty::EventJson(SamplePages()[0], kRoutingKey, {}));
  for (const char* fixture : {"pagerduty/from-docs/enqueue_trigger_request_devdocs.json",
                              "pagerduty/from-docs/enqueue_trigger_request_openapi.json"}) {
    SCOPED_TRACE(fixture);
    rapidjson::Document documented = Parse(ReadFile(FixturePath(fixture)));
    EXPECT_TRUE(IsSubset(Keys(ours), Keys(documented)));
    EXPECT_TRUE(IsSubset(Keys(ours["payload"]), Keys(documented["payload"])));
    EXPECT_EQ(Keys(ours["links"][0]), Keys(documented["links"][0]));
  }
  EXPECT_STREQ(ours["payload"]["component"].GetString(), "orders-db");
  EXPECT_STREQ(ours["payload"]["group"].GetString(), "frontend");
  EXPECT_STREQ(ours["payload"]["timestamp"].GetString(), "2024-05-01T12:00:00.250Z");
}

TEST(PagerDuty, SummaryAndEventStayWithinLimits) {
  Page page = SamplePages()[0];
  page.summary = std::string(5000, 'x');
  for (int i = 0; i < 20000; ++i) page.labels["label_" + std::to_string(i)] = std::string(40, 'v');
  AlertInfo alert = SampleAlert();
  alert.labels = page.labels;
  page.details_json = BuildPages(SampleDecision(), alert, SampleOptions(), "d", 0)[0].details_json;
  ASSERT_GT(page.details_json.size(), pagerduty::kMaxEventBytes);
  std::string event = pagerduty::EventJson(page, kRoutingKey, {});
  EXPECT_LE(event.size(), pagerduty::kMaxEventBytes);
  rapidjson::Document d = Parse(event);
  EXPECT_LE(std::string(d["payload"]["summary"].GetString()).size(), pagerduty::kMaxSummaryBytes);
  EXPECT_STREQ(d["payload"]["custom_details"]["culprit"].GetString(), "orders-db");
  EXPECT_STREQ(d["payload"]["custom_details"]["path"].GetString(),
               "frontend > checkout > payment > orders-db");
  EXPECT_TRUE(d["payload"]["custom_details"].HasMember("note"));
}

TEST(PagerDuty, ReadsTheRecordedAnswers) {
  SendOutcome ok = ClassifyHttp(
      HttpReply{202, {}, ReadFile(FixturePath("pagerduty/from-docs/response_202_success.json"))},
      {});
  pagerduty::ReadReply(
      HttpReply{202, {}, ReadFile(FixturePath("pagerduty/from-docs/response_202_success.json"))},
      &ok);
  EXPECT_TRUE(ok.accepted);
  EXPECT_EQ(ok.request_id, "dedup_key srv01/HTTP");

  HttpReply bad{
      400,
      {},
      ReadFile(FixturePath("pagerduty/from-test-literals/response_400_invalid_event.json"))};
  SendOutcome invalid = ClassifyHttp(bad, {});
  pagerduty::ReadReply(bad, &invalid);
  EXPECT_FALSE(invalid.accepted);
  EXPECT_TRUE(invalid.permanent);
  EXPECT_NE(invalid.detail.find("invalid event"), std::string::npos) << invalid.detail;
  EXPECT_NE(invalid.detail.find("routing_key"), std::string::npos) << invalid.detail;

  HttpReply down{
      500, {}, ReadFile(FixturePath("pagerduty/from-docs/response_5xx_error_openapi.json"))};
  SendOutcome retry = ClassifyHttp(down, {});
  pagerduty::ReadReply(down, &retry);
  EXPECT_FALSE(retry.accepted);
  EXPECT_FALSE(retry.permanent);
  EXPECT_NE(retry.detail.find("JSON parse error"), std::string::npos);
}

// ---- Opsgenie ----

TEST(Opsgenie, CreateAlertMatchesGoldenAndTheDocumentedShape) {
  opsgenie::OpsgenieOptions options;
  std::string body = opsgenie::CreateAlertJson(SamplePages()[0], "payments-data", options);
  EXPECT_TRUE(MatchesGolden(body, "opsgenie_create.json"));
  rapidjson::Document ours = Parse(body);
  rapidjson::Document documented =
      Parse(ReadFile(FixturePath("opsgenie/from-docs/create_alert_request.json")));
  rapidjson::Document alertmanager = Parse(
      ReadFile(FixturePath("opsgenie/from-test-literals/alertmanager_create_alert_request.json")));
  std::set<std::string> known = Keys(documented);
  for (const std::string& k : Keys(alertmanager)) known.insert(k);
  EXPECT_TRUE(IsSubset(Keys(ours), known));
  // Responders as Alertmanager and the docs write them: {name, type: team}.
  EXPECT_EQ(Keys(ours["responders"][0]), Keys(alertmanager["responders"][0]));
  EXPECT_STREQ(ours["responders"][0]["type"].GetString(), "team");
  EXPECT_STREQ(ours["alias"].GetString(), SamplePages()[0].dedup_key.c_str());
  EXPECT_STREQ(ours["priority"].GetString(), "P1");
  EXPECT_STREQ(ours["entity"].GetString(), "orders-db");
}

TEST(Opsgenie, ResponderByIdWhenTheTargetNamesAUuid) {
  rapidjson::Document ours = Parse(
      opsgenie::CreateAlertJson(SamplePages()[0], "4513b7ea-3b91-438f-b7e4-e3e54af9147c", {}));
  EXPECT_STREQ(ours["responders"][0]["id"].GetString(), "4513b7ea-3b91-438f-b7e4-e3e54af9147c");
}

TEST(Opsgenie, CloseByAliasMatchesGoldenAndTheDocumentedShape) {
  opsgenie::OpsgenieOptions options;
  Page resolve = ResolvePage(SamplePages()[0]);
  std::string body = opsgenie::CloseAlertJson(resolve, options);
  EXPECT_TRUE(MatchesGolden(body, "opsgenie_close.json"));
  rapidjson::Document documented =
      Parse(ReadFile(FixturePath("opsgenie/from-docs/close_alert_request.json")));
  EXPECT_TRUE(IsSubset(Keys(Parse(body)), Keys(documented)));
  EXPECT_EQ(
      opsgenie::RequestUrl(resolve, options),
      "https://api.opsgenie.com/v2/alerts/" + resolve.dedup_key + "/close?identifierType=alias");
  EXPECT_EQ(opsgenie::RequestUrl(SamplePages()[0], options), "https://api.opsgenie.com/v2/alerts");
}

TEST(Opsgenie, FieldsStayWithinTheirLimits) {
  Page page = SamplePages()[0];
  page.summary.clear();
  for (int i = 0; i < 200; ++i) page.summary += "\xC3\xA9";  // 200 characters, 400 bytes
  for (int i = 0; i < 500; ++i) page.labels["label_" + std::to_string(i)] = std::string(60, 'v');
  page.alertname = std::string(80, 'A');
  rapidjson::Document d = Parse(opsgenie::CreateAlertJson(page, "payments-data", {}));
  EXPECT_LE(Chars(d["message"].GetString()), opsgenie::kMaxMessageChars);
  EXPECT_EQ(Chars(d["message"].GetString()), opsgenie::kMaxMessageChars);
  size_t details = 0;
  for (const auto& m : d["details"].GetObject()) {
    details += Chars(m.name.GetString()) + Chars(m.value.GetString());
  }
  EXPECT_LE(details, opsgenie::kMaxDetailsChars);
  EXPECT_TRUE(d["details"].HasMember("culprit"));
  EXPECT_LE(d["tags"].Size(), opsgenie::kMaxTags);
  for (const auto& t : d["tags"].GetArray())
    EXPECT_LE(Chars(t.GetString()), opsgenie::kMaxTagChars);
  EXPECT_LE(Chars(d["description"].GetString()), opsgenie::kMaxDescriptionChars);
}

TEST(Opsgenie, ApiHostByConfig) {
  EXPECT_EQ(*opsgenie::BaseUrl("us"), "https://api.opsgenie.com");
  EXPECT_EQ(*opsgenie::BaseUrl("eu"), "https://api.eu.opsgenie.com");
  EXPECT_EQ(*opsgenie::BaseUrl("jsm"), "https://api.atlassian.com/jsm/ops/integration");
  EXPECT_EQ(*opsgenie::BaseUrl("https://127.0.0.1:8443/"), "https://127.0.0.1:8443");
  EXPECT_FALSE(opsgenie::BaseUrl("mars").ok());
  opsgenie::OpsgenieOptions jsm;
  jsm.base_url = *opsgenie::BaseUrl("jsm");
  EXPECT_EQ(opsgenie::RequestUrl(SamplePages()[0], jsm),
            "https://api.atlassian.com/jsm/ops/integration/v2/alerts");
}

TEST(Opsgenie, ReadsTheRecordedAnswers) {
  HttpReply queued{
      202, {}, ReadFile(FixturePath("opsgenie/from-docs/create_alert_response_202.json"))};
  SendOutcome ok = ClassifyHttp(queued, {});
  opsgenie::ReadReply(queued, &ok);
  EXPECT_TRUE(ok.accepted);
  EXPECT_EQ(ok.request_id, "43a29c5c-3dbf-4fa4-9c26-f4f71023e120");

  HttpReply unprocessable{
      422, {}, ReadFile(FixturePath("opsgenie/from-docs/error_response_422_written.json"))};
  SendOutcome bad = ClassifyHttp(unprocessable, {});
  opsgenie::ReadReply(unprocessable, &bad);
  EXPECT_TRUE(bad.permanent);
  EXPECT_NE(bad.detail.find("Message can not be empty"), std::string::npos) << bad.detail;
  EXPECT_EQ(bad.request_id, "9c6a8f3e-2b51-4d7e-a0c4-5e1f7d2b9a10");

  HttpReply throttled{429,
                      {{"Retry-After", "30"}},
                      ReadFile(FixturePath("opsgenie/from-docs/error_response_429_written.json"))};
  SendOutcome later = ClassifyHttp(throttled, {});
  opsgenie::ReadReply(throttled, &later);
  EXPECT_FALSE(later.permanent);
  EXPECT_EQ(later.retry_after, std::chrono::milliseconds(30000));
}

// ---- Slack ----

TEST(Slack, TriggerAndResolveMessagesMatchGolden) {
  EXPECT_TRUE(MatchesGolden(slack::MessageJson(SamplePages()[0]), "slack_trigger.json"));
  EXPECT_TRUE(
      MatchesGolden(slack::MessageJson(ResolvePage(SamplePages()[0])), "slack_resolve.json"));
}

TEST(Slack, EscapesWhatTheAlertSupplied) {
  Page page = SamplePages()[0];
  page.summary = "<!channel> a & b";
  rapidjson::Document d = Parse(slack::MessageJson(page));
  std::string text = d["text"].GetString();
  EXPECT_EQ(text.find("<!channel>"), std::string::npos);
  EXPECT_NE(text.find("&lt;!channel&gt; a &amp; b"), std::string::npos);
}

TEST(Slack, OnlyOkIsDelivered) {
  SendOutcome ok = ClassifyHttp(HttpReply{200, {}, "ok"}, {});
  slack::ReadReply(HttpReply{200, {}, "ok"}, &ok);
  EXPECT_TRUE(ok.accepted);
  SendOutcome proxy = ClassifyHttp(HttpReply{200, {}, "<html>login</html>"}, {});
  slack::ReadReply(HttpReply{200, {}, "<html>login</html>"}, &proxy);
  EXPECT_FALSE(proxy.accepted);
  EXPECT_FALSE(proxy.permanent);
  SendOutcome archived = ClassifyHttp(HttpReply{410, {}, "channel_is_archived"}, {});
  slack::ReadReply(HttpReply{410, {}, "channel_is_archived"}, &archived);
  EXPECT_TRUE(archived.permanent);
  EXPECT_NE(archived.detail.find("channel_is_archived"), std::string::npos);
}

// ---- webhook ----

TEST(Webhook, BodyCarriesTheWholeDecision) {
  std::string body = webhook::BodyJson(SamplePages()[0]);
  EXPECT_TRUE(MatchesGolden(body, "webhook_trigger.json"));
  rapidjson::Document d = Parse(body);
  EXPECT_STREQ(d["decision"]["decision"].GetString(), "routed");
  EXPECT_EQ(d["decision"]["culprits"].Size(), 2u);
}

TEST(Webhook, SignatureIsHmacSha256OfTheBody) {
  // RFC 4231 test case 2.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  Headers h = webhook::SignatureHeaders("{}", "k", "X-Sig", "", 0);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].second, HmacSha256Hex("k", "{}"));
  Headers ts = webhook::SignatureHeaders("{}", "k", "X-Sig", "X-Ts", 1714564800);
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].second, HmacSha256Hex("k", "1714564800:{}"));
  EXPECT_EQ(ts[1], (std::pair<std::string, std::string>{"X-Ts", "1714564800"}));
}

// ---- answers ----

TEST(Classify, StatusCodes) {
  for (int status : {200, 201, 202, 204}) {
    EXPECT_TRUE(ClassifyHttp(HttpReply{status, {}, ""}, {}).accepted) << status;
  }
  for (int status : {400, 401, 402, 403, 404, 410, 413, 422}) {
    SendOutcome o = ClassifyHttp(HttpReply{status, {}, ""}, {});
    EXPECT_FALSE(o.accepted) << status;
    EXPECT_TRUE(o.permanent) << status;
  }
  for (int status : {408, 429, 500, 502, 503, 504}) {
    SendOutcome o = ClassifyHttp(HttpReply{status, {}, ""}, {});
    EXPECT_FALSE(o.accepted) << status;
    EXPECT_FALSE(o.permanent) << status;
    EXPECT_EQ(o.http_status, status);
  }
  EXPECT_FALSE(ClassifyHttp(Error::Timeout("no answer in 10s"), {}).permanent);
  EXPECT_FALSE(ClassifyHttp(Error::Unavailable("connection reset"), {}).permanent);
  EXPECT_TRUE(ClassifyHttp(Error::InvalidInput("bad URL"), {}).permanent);
}

TEST(Classify, RetryAfterInSecondsOrAsHttpDate) {
  auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  using std::chrono::milliseconds;
  EXPECT_EQ(ParseRetryAfter("120", now), milliseconds(120000));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:50:37 GMT", now), milliseconds(60000));
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:47 GMT", now), milliseconds(10000));
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:39 1994", now), milliseconds(2000));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now), milliseconds(0));
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("Sun, 32 Nov 1994 08:50:37 GMT", now), std::nullopt);
  SendOutcome o = ClassifyHttp(HttpReply{429, {{"retry-after", "7"}}, ""}, now);
  EXPECT_EQ(o.retry_after, milliseconds(7000));
}

// ---- the pagers over a recording poster ----

class RecordingPoster : public HttpPoster {
 public:
  void Post(HttpPost request, std::function<void(Result<HttpReply>)> done) override {
    requests.push_back(request);
    done(answer);
  }
  std::vector<HttpPost> requests;
  Result<HttpReply> answer = HttpReply{202, {}, "{}"};
};

PagerTarget Target(const char* kind, const char* credential, const char* name = "") {
  PagerTarget t;
  t.kind = kind;
  t.team = "payments-data";
  t.name = name;
  t.credential = Secret(credential, "env TEST_SECRET");
  return t;
}

SendOutcome SendOnce(Pager& pager, const Page& page, const PagerTarget& target) {
  std::optional<SendOutcome> out;
  pager.Send(page, target, [&](SendOutcome o) { out = std::move(o); });
  EXPECT_TRUE(out.has_value());
  return out.value_or(SendOutcome{});
}

TEST(Pagers, PagerDutyPostsTheEventToTheEventsUrl) {
  auto poster = std::make_shared<RecordingPoster>();
  pagerduty::PagerDutyPager pager({}, poster);
  SendOutcome o = SendOnce(pager, SamplePages()[0], Target("pagerduty", kRoutingKey));
  EXPECT_TRUE(o.accepted);
  ASSERT_EQ(poster->requests.size(), 1u);
  EXPECT_EQ(poster->requests[0].url, "https://events.pagerduty.com/v2/enqueue");
  EXPECT_STREQ(Parse(poster->requests[0].body)["routing_key"].GetString(), kRoutingKey);
  SendOutcome missing = SendOnce(pager, SamplePages()[0], Target("pagerduty", ""));
  EXPECT_TRUE(missing.permanent);
  EXPECT_EQ(poster->requests.size(), 1u);
}

TEST(Pagers, OpsgenieAuthenticatesWithGenieKey) {
  auto poster = std::make_shared<RecordingPoster>();
  poster->answer = HttpReply{202, {}, R"({"result":"Request will be processed","requestId":"r1"})"};
  opsgenie::OpsgeniePager pager({}, poster);
  SendOutcome o = SendOnce(pager, SamplePages()[0], Target("opsgenie", "genie-secret", "Data"));
  EXPECT_TRUE(o.accepted);
  EXPECT_EQ(o.request_id, "r1");
  ASSERT_EQ(poster->requests.size(), 1u);
  EXPECT_EQ(poster->requests[0].headers, (Headers{{"Authorization", "GenieKey genie-secret"}}));
  EXPECT_STREQ(Parse(poster->requests[0].body)["responders"][0]["name"].GetString(), "Data");
}

TEST(Pagers, OpsgenieFallsBackToItsConfiguredKeyAndRedactsIt) {
  auto poster = std::make_shared<RecordingPoster>();
  poster->answer = Error::Unavailable("server echoed GenieKey org-wide-key");
  opsgenie::OpsgenieOptions options;
  options.api_key = Secret("org-wide-key", "file /etc/tracepager/opsgenie.key");
  opsgenie::OpsgeniePager pager(options, poster);
  SendOutcome o = SendOnce(pager, SamplePages()[0], Target("opsgenie", "", "Data"));
  ASSERT_EQ(poster->requests.size(), 1u);
  EXPECT_EQ(poster->requests[0].headers, (Headers{{"Authorization", "GenieKey org-wide-key"}}));
  EXPECT_EQ(o.detail.find("org-wide-key"), std::string::npos) << o.detail;
  opsgenie::OpsgeniePager keyless({}, poster);
  EXPECT_TRUE(SendOnce(keyless, SamplePages()[0], Target("opsgenie", "", "Data")).permanent);
}

TEST(Pagers, SlackNeverRevealsItsWebhookUrl) {
  const char* url = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX";
  auto poster = std::make_shared<RecordingPoster>();
  poster->answer = Error::Unavailable(std::string("connect to ") + url + ": connection refused");
  slack::SlackPager pager({}, poster);
  SendOutcome o = SendOnce(pager, SamplePages()[0], Target("slack", url));
  EXPECT_FALSE(o.accepted);
  EXPECT_FALSE(o.permanent);
  EXPECT_EQ(o.detail.find("XXXXsecretXXXX"), std::string::npos) << o.detail;
  EXPECT_NE(o.detail.find("[redacted]"), std::string::npos) << o.detail;
  ASSERT_EQ(poster->requests.size(), 1u);
  EXPECT_EQ(poster->requests[0].url, url);
  SendOutcome bad = SendOnce(pager, SamplePages()[0], Target("slack", "not-a-url-secret"));
  EXPECT_TRUE(bad.permanent);
  EXPECT_EQ(bad.detail.find("not-a-url-secret"), std::string::npos) << bad.detail;
}

TEST(Pagers, WebhookSignsWithTheTargetsKey) {
  auto poster = std::make_shared<RecordingPoster>();
  poster->answer = HttpReply{204, {}, ""};
  webhook::WebhookPager pager({}, poster,
                              [] { return std::chrono::system_clock::from_time_t(1714564800); });
  PagerTarget target = Target("webhook", "https://hooks.example/tp?token=abc");
  target.signing_key = Secret("hmac-key", "file /etc/tp/hmac");
  SendOutcome o = SendOnce(pager, SamplePages()[0], target);
  EXPECT_TRUE(o.accepted);
  ASSERT_EQ(poster->requests.size(), 1u);
  ASSERT_EQ(poster->requests[0].headers.size(), 1u);
  EXPECT_EQ(poster->requests[0].headers[0].first, "X-Tracepager-Signature");
  EXPECT_EQ(poster->requests[0].headers[0].second,
            HmacSha256Hex("hmac-key", poster->requests[0].body));
}

TEST(Pagers, TargetKeyAndDescriptionNameNoSecret) {
  PagerTarget t = Target("pagerduty", kRoutingKey);
  EXPECT_EQ(t.Key().find(kRoutingKey), std::string::npos);
  EXPECT_EQ(t.Key().rfind("pagerduty:", 0), 0u);
  EXPECT_EQ(t.Key().size(), std::string("pagerduty:").size() + 16);
  EXPECT_EQ(t.Describe(), "pagerduty team=payments-data credential=[redacted] (env TEST_SECRET)");
  PagerTarget other = t;
  other.team = "someone-else";  // same integration: same key, same rate limit
  EXPECT_EQ(other.Key(), t.Key());
  other.credential = Secret("another", "");
  EXPECT_NE(other.Key(), t.Key());
  EXPECT_EQ(fmt::format("{}", t.credential), "[redacted]");
}

}  // namespace
}  // namespace tracepager::integrations
