// The pagers over real HTTPS (the project's HTTP client, a test CA made with the openssl CLI)
// against fakes that behave like PagerDuty, Opsgenie and Slack, driven by Delivery with a
// manual clock: the page reaches the right fake with the right dedup key and details, the
// resolve reaches the same targets, a pager down for a while gets everything once it recovers,
// and a permanently refusing target makes a fallback page.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "integrations/delivery/delivery.h"
#include "integrations/delivery/memory_outbox.h"
#include "integrations/http/io_thread.h"
#include "integrations/page_builder.h"
#include "integrations/pager_factory.h"
#include "tests/integrations/fake_pagers.h"
#include "tests/integrations/sample_decision.h"

namespace tracepager::integrations {
namespace {

using delivery::Delivery;
using delivery::DeliveryOptions;
using delivery::EntryState;
using delivery::ManualClock;
using delivery::MemoryOutbox;
using delivery::TargetDirectory;
using testing::FakeOpsgenie;
using testing::FakePagerDuty;
using testing::FakeReply;
using testing::FakeSlack;
using testing::JsonMember;

constexpr char kDataKey[] = "0123456789abcdef0123456789abcdef";
constexpr char kBadKey[] = "ffffffffffffffffffffffffffffffff";
constexpr char kSreKey[] = "5555555555555555aaaaaaaaaaaaaaaa";
constexpr char kGenieKey[] = "genie-0000-1111";

class PagerHttpsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    pki_ = new testing::TestPki(testing::MakeTestPki(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }

  PagerHttpsTest()
      : pd_(pki_->localhost),
        og_(pki_->localhost, kGenieKey),
        slack_(pki_->localhost, "/services/T0001/B0001/slacksecret") {}

  void SetUp() override {
    PagerConfigs configs;
    configs.tls.ca_file = pki_->ca_cert;
    configs.pagerduty.emplace();
    configs.pagerduty->events_url = pd_.Url() + "/v2/enqueue";
    configs.pagerduty->timeout = std::chrono::milliseconds(1500);
    configs.opsgenie.emplace();
    configs.opsgenie->base_url = og_.Url();
    configs.opsgenie->api_key = Secret(kGenieKey, "env OPSGENIE_KEY");
    configs.slack.emplace();
    Result<PagerSet> set = MakeHttpPagers(io_.context(), configs);
    ASSERT_TRUE(set.ok()) << set.error().message;
    pagers_ = std::make_unique<PagerSet>(std::move(set).value());

    directory_ = std::make_shared<TargetDirectory>();
    directory_->teams["payments-data"] = {
        {Target("pagerduty", "payments-data", kDataKey),
         Target("slack", "payments-data", slack_.WebhookUrl().c_str())},
        "sre"};
    directory_->teams["payments"] = {{Target("opsgenie", "payments", "")}, ""};
    directory_->teams["payments"].targets[0].name = "Payments";
    directory_->teams["sre"] = {{Target("pagerduty", "sre", kSreKey)}, ""};
    directory_->default_team = "sre";
    DeliveryOptions options;
    options.jitter_seed = 7;
    delivery_ =
        std::make_unique<Delivery>(&outbox_, pagers_->ByKind(), directory_, options, &clock_);
  }

  void TearDown() override {
    delivery_.reset();
    pagers_.reset();  // clients cancel what is left; their completions run on io_
  }

  static PagerTarget Target(const char* kind, const char* team, const char* credential) {
    PagerTarget t;
    t.kind = kind;
    t.team = team;
    t.credential = Secret(credential, "test");
    return t;
  }

  // Polls until nothing is in flight and nothing is due now. Waiting is for real answers from
  // the fakes (WaitForWork returns as soon as one arrives); time never advances by itself.
  void Settle() {
    for (int i = 0; i < 500; ++i) {
      std::optional<int64_t> next = delivery_->Poll();
      if (delivery_->in_flight() > 0) {
        ASSERT_TRUE(delivery_->WaitForWork(std::chrono::seconds(20))) << "no answer";
        continue;
      }
      if (!next || *next > clock_.NowNs()) return;
    }
    FAIL() << "delivery did not settle";
  }
  void Advance(std::chrono::milliseconds d) {
    clock_.Advance(d);
    Settle();
  }

  std::vector<Page> Pages(const std::string& identity) {
    AlertInfo alert = testing::SampleAlert();
    alert.identity = identity;
    return BuildPages(testing::SampleDecision(), alert, testing::SampleOptions(), "d-" + identity,
                      testing::kSampleNowNs);
  }

  static testing::TempDir* dir_;
  static testing::TestPki* pki_;
  FakePagerDuty pd_;
  FakeOpsgenie og_;
  FakeSlack slack_;
  http::IoThread io_;
  std::unique_ptr<PagerSet> pagers_;
  std::shared_ptr<TargetDirectory> directory_;
  ManualClock clock_;
  MemoryOutbox outbox_;
  std::unique_ptr<Delivery> delivery_;
};

testing::TempDir* PagerHttpsTest::dir_ = nullptr;
testing::TestPki* PagerHttpsTest::pki_ = nullptr;

rapidjson::Document Parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  return d;
}

TEST_F(PagerHttpsTest, PageReachesEachTeamsServiceWithItsDedupKeyAndDetails) {
  ASSERT_TRUE(delivery_->Submit("job-1", Pages("am:1")).ok());
  Settle();

  ASSERT_EQ(pd_.received().size(), 1u);
  rapidjson::Document event = Parse(pd_.received()[0].body);
  EXPECT_EQ(pd_.received()[0].target, "/v2/enqueue");
  EXPECT_STREQ(event["routing_key"].GetString(), kDataKey);
  EXPECT_STREQ(event["event_action"].GetString(), "trigger");
  EXPECT_EQ(event["dedup_key"].GetString(), DedupKey("am:1", "payments-data"));
  EXPECT_STREQ(event["payload"]["component"].GetString(), "orders-db");
  EXPECT_STREQ(event["payload"]["custom_details"]["path"].GetString(),
               "frontend > checkout > payment > orders-db");
  EXPECT_STREQ(event["payload"]["custom_details"]["naive"]["teams"][0].GetString(), "payments");

  ASSERT_EQ(slack_.received().size(), 1u);
  EXPECT_EQ(slack_.received()[0].target, "/services/T0001/B0001/slacksecret");
  EXPECT_NE(JsonMember(slack_.received()[0].body, "text").find("Paging *payments-data*"),
            std::string::npos);

  ASSERT_EQ(og_.received().size(), 1u);
  EXPECT_EQ(og_.received()[0].target, "/v2/alerts");
  EXPECT_EQ(og_.received()[0].Header("authorization"), std::string("GenieKey ") + kGenieKey);
  rapidjson::Document alert = Parse(og_.received()[0].body);
  EXPECT_EQ(alert["alias"].GetString(), DedupKey("am:1", "payments"));
  EXPECT_STREQ(alert["responders"][0]["name"].GetString(), "Payments");

  size_t sent = 0;
  for (const auto& [id, e] : outbox_.entries()) {
    EXPECT_EQ(e.state, EntryState::kSent) << e.target.kind << ": " << e.last_error;
    sent += e.state == EntryState::kSent;
    if (e.target.kind == "opsgenie") {
      EXPECT_EQ(e.request_id, "req-1");  // 202 = queued: the request id is kept
    }
  }
  EXPECT_EQ(sent, 3u);
}

TEST_F(PagerHttpsTest, ResolveReachesTheSameTargets) {
  ASSERT_TRUE(delivery_->Submit("job-1", Pages("am:1")).ok());
  Settle();
  ASSERT_TRUE(delivery_->SubmitResolve("job-2", "am:1").ok());
  Settle();
  Advance(std::chrono::seconds(1));  // Slack: one message a second

  auto pd = pd_.Accepted(kDataKey);
  ASSERT_EQ(pd.size(), 2u);
  EXPECT_EQ(pd[1],
            (std::pair<std::string, std::string>{"resolve", DedupKey("am:1", "payments-data")}));
  ASSERT_EQ(og_.received().size(), 2u);
  EXPECT_EQ(og_.received()[1].target,
            "/v2/alerts/" + DedupKey("am:1", "payments") + "/close?identifierType=alias");
  ASSERT_EQ(slack_.received().size(), 2u);
  EXPECT_NE(JsonMember(slack_.received()[1].body, "text").find("Resolved"), std::string::npos);
}

TEST_F(PagerHttpsTest, APagerDownForAWhileGetsEverythingWhenItRecovers) {
  pd_.Script({testing::StatusReply(500), testing::ResetReply(), testing::SilentReply(),
              testing::TooManyReply("2"), testing::StatusReply(503), testing::ResetReply()});
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        delivery_->Submit("job-" + std::to_string(i), Pages("am:" + std::to_string(i))).ok());
  }
  Settle();
  for (int step = 0; step < 120 && pd_.Incidents() < 3; ++step) Advance(std::chrono::seconds(1));
  EXPECT_EQ(pd_.Incidents(), 3u);
  EXPECT_GE(pd_.requests(), 9u);  // 6 failures, 3 acceptances
  for (const auto& [id, e] : outbox_.entries()) {
    if (e.target.kind == "pagerduty") {
      EXPECT_EQ(e.state, EntryState::kSent) << e.last_error;
    }
  }
  EXPECT_EQ(pd_.Accepted(kSreKey).size(), 0u);  // recovered within max age: no fallback
}

TEST_F(PagerHttpsTest, APermanentlyRefusingTargetCausesAFallbackPage) {
  directory_->teams["payments-data"].targets = {Target("pagerduty", "payments-data", kBadKey)};
  delivery_->SetDirectory(directory_);
  pd_.RejectRoutingKey(kBadKey);
  ASSERT_TRUE(delivery_->Submit("job-1", Pages("am:1")).ok());
  Settle();
  Settle();
  auto sre = pd_.Accepted(kSreKey);
  ASSERT_EQ(sre.size(), 1u);
  EXPECT_EQ(sre[0].second, DedupKey("am:1", "sre"));
  std::string fallback_body;
  for (const auto& r : pd_.received()) {
    if (JsonMember(r.body, "routing_key") == kSreKey) fallback_body = r.body;
  }
  rapidjson::Document d = Parse(fallback_body);
  EXPECT_EQ(
      std::string(d["payload"]["summary"].GetString()).rfind("[fallback for payments-data]", 0),
      0u);
  EXPECT_NE(std::string(d["payload"]["custom_details"]["fallback_reason"].GetString())
                .find("invalid event"),
            std::string::npos);
  // The refusal is recorded as permanent, with PagerDuty's reason and without the key.
  bool recorded = false;
  for (const auto& [id, e] : outbox_.entries()) {
    if (e.target.credential.Reveal() == kBadKey) {
      EXPECT_EQ(e.state, EntryState::kFailed);
      EXPECT_TRUE(e.permanent);
      EXPECT_EQ(e.last_http_status, 400);
      EXPECT_NE(e.last_error.find("Event object is invalid"), std::string::npos) << e.last_error;
      recorded = true;
    }
  }
  EXPECT_TRUE(recorded);
}

TEST_F(PagerHttpsTest, SlackErrorsNeverShowTheWebhookUrl) {
  slack_.Script({testing::ResetReply(), FakeReply::Json("channel_is_archived", 410)});
  std::vector<Page> pages = Pages("am:1");
  pages.resize(1);  // payments-data only
  ASSERT_TRUE(delivery_->Submit("job-1", pages).ok());
  Settle();
  Advance(std::chrono::seconds(2));
  for (const auto& [id, e] : outbox_.entries()) {
    EXPECT_EQ(e.last_error.find("slacksecret"), std::string::npos) << e.last_error;
    EXPECT_EQ(e.page.fallback_reason.find("slacksecret"), std::string::npos);
  }
}

}  // namespace
}  // namespace tracepager::integrations
