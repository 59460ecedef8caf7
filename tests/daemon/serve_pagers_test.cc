// `tracepager serve` paging real (fake) pagers end to end: the daemon process with the file
// trace source, a registry whose teams page HTTPS fakes of PagerDuty and Opsgenie on 127.0.0.1
// (a test CA the daemon trusts through pagers.tls.ca_file), and the captured Alertmanager
// webhooks. What the fakes receive is the proof: the right target, dedup key and details; the
// resolve at the same target; a fallback after a permanent refusal; one page through a 429;
// exactly one page by dedup key across a kill -9.
// The daemon runs under tests/support/daemon_process.h. Synchronised through its log lines and
// the fakes' request counts (condition waits), and the audit log and the fakes' records (a
// bounded poll, Eventually); every wait has a deadline and returns as soon as it holds.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>

#include <fstream>
#include <functional>
#include <thread>

#include "daemon/audit_record.h"
#include "integrations/page_builder.h"
#include "tests/integrations/fake_pagers.h"
#include "tests/support/daemon_process.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::FixturePath;
using testing::ReadFile;
using testing::TempDir;

constexpr auto kWait = std::chrono::seconds(25);  // safety cap on every wait, never a delay
const char* kCapturedTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
const char* kCheckoutAlert = "am:891fd0d54ed75b69";  // CheckoutErrorRateHigh's identity

// Routing keys (32 characters, as PagerDuty's are) and the Opsgenie GenieKey.
const char* kPlatformKey = "platformplatformplatformplatform";
const char* kBackupKey = "backupbackupbackupbackupbackup00";
const char* kOtherKey = "otherotherotherotherotherother00";
const char* kGenieKey = "0b5e6a7f-genie-key-for-tests-only";

int Post(uint16_t port, const std::string& path, const std::string& body) {
  return testing::HttpCall(port, "POST", path, body).status;
}

// The captured firing webhook with only its first alert (CheckoutErrorRateHigh): one page.
std::string CheckoutAlertOnly() {
  rapidjson::Document d;
  std::string raw = ReadFile(FixturePath("alertmanager-captured/firing.raw.json"));
  d.Parse(raw.c_str());
  EXPECT_TRUE(d.IsObject() && d.HasMember("alerts") && d["alerts"].IsArray() &&
              d["alerts"].Size() == 2);
  d["alerts"].Erase(d["alerts"].Begin() + 1);
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  d.Accept(w);
  return out.GetString();
}

using Daemon = testing::DaemonProcess;

// Waits until `done` holds, up to kWait: a bounded poll of state nobody can notify us about
// (a file another process appends, a fake's records). Returns as soon as it holds.
template <typename Condition>
bool Eventually(Condition done) {
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!static_cast<bool>(done())) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // re-check interval
  }
  return true;
}

class ServePagersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_dir_ = new TempDir();
    pki_ = new testing::TestPki(testing::MakeTestPki(pki_dir_->path()));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete pki_dir_;
  }

  void SetUp() override {
    dir_.Write("pd-platform.key", std::string(kPlatformKey) + "\n");
    dir_.Write("pd-backup.key", std::string(kBackupKey) + "\n");
    dir_.Write("pd-other.key", std::string(kOtherKey) + "\n");
    dir_.Write("genie.key", std::string(kGenieKey) + "\n");
    // The example trace (frontend -> checkout -> payment -> its database), under the trace id
    // the captured alerts carry: the checkout alert pages the database's owner, platform.
    std::string trace =
        ReadFile(testing::SourcePath("etc/examples/traces/checkout-payment-db.otlp.json"));
    for (size_t at = trace.find("5b8efff798038103d269b633813fc60c"); at != std::string::npos;
         at = trace.find("5b8efff798038103d269b633813fc60c", at)) {
      trace.replace(at, 32, kCapturedTrace);
    }
    dir_.Write("traces/checkout.json", trace);
  }

  // `platform` is the team the checkout alert pages; `others` is every other team's target.
  void Registry(const std::string& platform) {
    const std::string other = "pagerduty: {routing_key: {file: " + dir_.path() + "/pd-other.key}}";
    dir_.Write("registry.yaml", "default_team: platform\nteams:\n  platform:\n    " + platform +
                                    "\n    fallback: backup\n"
                                    "  backup:\n    pagerduty: {routing_key: {file: " +
                                    dir_.path() + "/pd-backup.key}}\n  web: {" + other +
                                    "}\n  checkout: {" + other + "}\n  payments: {" + other +
                                    "}\n"
                                    "services:\n"
                                    "  frontend: {team: web}\n"
                                    "  checkout: {team: checkout}\n"
                                    "  payment: {team: payments}\n"
                                    "  postgresql/payments: {team: platform}\n");
  }

  std::string Config(const std::string& pagers) {
    return dir_.Write("tracepager.yaml",
                      "server:\n  listen: [\"127.0.0.1:0\"]\n"
                      "state_dir: state\n"
                      "registry: {path: registry.yaml}\n"
                      "trace_source: {type: file, dir: traces}\n"
                      "pager: {type: registry}\n"
                      "pagers:\n" +
                          pagers + "  tls: {ca_file: " + pki_->ca_cert +
                          "}\n"
                          "  trace_url_template: https://jaeger.example/trace/{trace_id}\n"
                          "delivery: {initial_backoff: 50ms, max_backoff: 200ms}\n");
  }
  std::string PagerDutyConfig() {
    return "  pagerduty: {events_url: " + pd_.Url() + "/v2/enqueue, timeout: 5s}\n";
  }

  std::vector<DeliveryAudit> Deliveries() {
    std::vector<DeliveryAudit> out;
    std::ifstream in(dir_.path() + "/state/audit.jsonl");
    for (std::string line; std::getline(in, line);) {
      Result<AuditRecord> r = ParseAuditRecord(line);
      if (r.ok() && std::holds_alternative<DeliveryAudit>(*r)) {
        out.push_back(std::get<DeliveryAudit>(*r));
      }
    }
    return out;
  }
  std::optional<DeliveryAudit> FindDelivery(const std::function<bool(const DeliveryAudit&)>& f) {
    for (const DeliveryAudit& d : Deliveries()) {
      if (f(d)) return d;
    }
    return std::nullopt;
  }

  static TempDir* pki_dir_;
  static testing::TestPki* pki_;
  TempDir dir_;
  testing::FakePagerDuty pd_{pki_->localhost};
};

TempDir* ServePagersTest::pki_dir_ = nullptr;
testing::TestPki* ServePagersTest::pki_ = nullptr;

// The body PagerDuty received for `action` of `dedup` under `key`.
std::optional<testing::ReceivedRequest> PdRequest(testing::FakePagerDuty& pd,
                                                  const std::string& key, const std::string& action,
                                                  const std::string& dedup) {
  for (const testing::ReceivedRequest& r : pd.received()) {
    if (testing::JsonMember(r.body, "routing_key") == key &&
        testing::JsonMember(r.body, "event_action") == action &&
        testing::JsonMember(r.body, "dedup_key") == dedup) {
      return r;
    }
  }
  return std::nullopt;
}

TEST_F(ServePagersTest, AlertmanagerWebhookPagesPagerDutyAndItsResolveReachesTheSameTarget) {
  Registry("pagerduty: {routing_key: {file: " + dir_.path() + "/pd-platform.key}}");
  Daemon d(Config(PagerDutyConfig()));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  EXPECT_TRUE(d.WaitFor("pager=registry pagers=pagerduty")) << d.log();
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager",
                 ReadFile(FixturePath("alertmanager-captured/firing.raw.json"))),
            200);

  const std::string dedup = integrations::DedupKey(kCheckoutAlert, "platform");
  ASSERT_TRUE(Eventually([&] { return PdRequest(pd_, kPlatformKey, "trigger", dedup); }))
      << d.log();
  testing::ReceivedRequest trigger = *PdRequest(pd_, kPlatformKey, "trigger", dedup);
  EXPECT_EQ(trigger.target, "/v2/enqueue");
  rapidjson::Document body;
  body.Parse(trigger.body.c_str());
  ASSERT_TRUE(body.IsObject() && body.HasMember("payload") && body["payload"].IsObject());
  const auto& payload = body["payload"];
  // Culprit first: the database the trace blames, for the checkout error alert.
  ASSERT_TRUE(payload.HasMember("component") && payload["component"].IsString());
  EXPECT_STREQ(payload["component"].GetString(), "postgresql/payments");
  ASSERT_TRUE(payload.HasMember("summary") && payload["summary"].IsString());
  EXPECT_EQ(std::string(payload["summary"].GetString())
                .rfind("postgresql/payments: errors behind checkout - CheckoutErrorRateHigh", 0),
            0u)
      << trigger.body;
  ASSERT_TRUE(payload.HasMember("severity") && payload["severity"].IsString());
  EXPECT_STREQ(payload["severity"].GetString(), "critical");  // severity: page
  ASSERT_TRUE(payload.HasMember("group") && payload["group"].IsString());
  EXPECT_STREQ(payload["group"].GetString(), "checkout");
  ASSERT_TRUE(payload.HasMember("custom_details") && payload["custom_details"].IsObject());
  const std::string details = trigger.body.substr(trigger.body.find("\"custom_details\""));
  for (const char* s : {"\"path\"", "\"checkout\"", "\"payment\"", "CheckoutErrorRateHigh"}) {
    EXPECT_NE(details.find(s), std::string::npos) << s << " in " << trigger.body;
  }
  // The trace link from pagers.trace_url_template.
  EXPECT_NE(trigger.body.find("https://jaeger.example/trace/" + std::string(kCapturedTrace)),
            std::string::npos)
      << trigger.body;
  // The delivery is in the audit log, target redacted.
  ASSERT_TRUE(Eventually([&] {
    return FindDelivery([&](const DeliveryAudit& a) {
      return a.dedup_key == dedup && a.outcome == DeliveryOutcome::kAccepted;
    });
  }));
  EXPECT_EQ(ReadFile(dir_.path() + "/state/audit.jsonl").find(kPlatformKey), std::string::npos);

  // The resolved webhook resolves at the same routing key and dedup key.
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager",
                 ReadFile(FixturePath("alertmanager-captured/resolved.raw.json"))),
            200);
  ASSERT_TRUE(Eventually([&] { return PdRequest(pd_, kPlatformKey, "resolve", dedup); }))
      << d.log();
  size_t triggers = 0;
  for (const auto& [action, key] : pd_.Accepted(kPlatformKey)) {
    if (key == dedup && action == "trigger") ++triggers;
  }
  EXPECT_EQ(triggers, 1u);
  EXPECT_TRUE(pd_.Accepted(kBackupKey).empty());  // nothing fell back
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
  EXPECT_EQ(d.log().find(kPlatformKey), std::string::npos) << "a secret reached the log";
}

TEST_F(ServePagersTest, PermanentlyRefusedTargetFallsBackToTheFallbackTeam) {
  Registry("pagerduty: {routing_key: {file: " + dir_.path() + "/pd-platform.key}}");
  pd_.RejectRoutingKey(kPlatformKey);  // 400 "Invalid routing key"
  Daemon d(Config(PagerDutyConfig()));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager",
                 ReadFile(FixturePath("alertmanager-captured/firing.raw.json"))),
            200);
  // The fallback page has a dedup key of its own (alert identity and the backup team).
  const std::string fallback_dedup = integrations::DedupKey(kCheckoutAlert, "backup");
  ASSERT_TRUE(Eventually([&] { return PdRequest(pd_, kBackupKey, "trigger", fallback_dedup); }))
      << d.log();
  testing::ReceivedRequest page = *PdRequest(pd_, kBackupKey, "trigger", fallback_dedup);
  EXPECT_NE(page.body.find("[fallback for platform]"), std::string::npos) << page.body;
  EXPECT_TRUE(pd_.Accepted(kPlatformKey).empty());
  // The audit log shows both: platform's refusal, rerouted to backup, and backup's page.
  const std::string dedup = integrations::DedupKey(kCheckoutAlert, "platform");
  ASSERT_TRUE(Eventually([&] {
    return FindDelivery([&](const DeliveryAudit& a) {
             return a.dedup_key == dedup && a.outcome == DeliveryOutcome::kRejected;
           }) &&
           FindDelivery([&](const DeliveryAudit& a) {
             return a.dedup_key == fallback_dedup && a.outcome == DeliveryOutcome::kAccepted;
           });
  })) << ReadFile(dir_.path() + "/state/audit.jsonl");
  DeliveryAudit refused = *FindDelivery([&](const DeliveryAudit& a) {
    return a.dedup_key == dedup && a.outcome == DeliveryOutcome::kRejected;
  });
  EXPECT_EQ(refused.team, "platform");
  EXPECT_EQ(refused.rerouted_to, "backup");
  EXPECT_EQ(refused.target.kind, "pagerduty");
  ASSERT_EQ(refused.attempts.size(), 1u);  // permanent: not retried
  DeliveryAudit sent = *FindDelivery([&](const DeliveryAudit& a) {
    return a.dedup_key == fallback_dedup && a.outcome == DeliveryOutcome::kAccepted;
  });
  EXPECT_EQ(sent.team, "backup");
  EXPECT_EQ(sent.fallback_for, "platform");
  EXPECT_TRUE(d.WaitFor("page_fallback from=platform to=backup")) << d.log();
}

TEST_F(ServePagersTest, OpsgenieAnswering429WithRetryAfterGetsThePageOnce) {
  Registry("opsgenie: {team: Platform}");
  testing::FakeOpsgenie og(pki_->localhost, kGenieKey);
  og.Script({testing::TooManyReply("1")});
  Daemon d(Config("  opsgenie: {api: " + og.Url() + ", api_key: {file: " + dir_.path() +
                  "/genie.key}, timeout: 5s}\n" + PagerDutyConfig()));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  // The checkout alert alone: the scripted 429 is its first answer.
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager", CheckoutAlertOnly()), 200);
  const std::string dedup = integrations::DedupKey(kCheckoutAlert, "platform");
  ASSERT_TRUE(Eventually([&] {
    return FindDelivery([&](const DeliveryAudit& a) {
      return a.dedup_key == dedup && a.outcome == DeliveryOutcome::kAccepted;
    });
  })) << d.log();
  std::vector<testing::ReceivedRequest> creates;
  for (const testing::ReceivedRequest& r : og.received()) {
    if (r.method == "POST" && r.target == "/v2/alerts" &&
        testing::JsonMember(r.body, "alias") == dedup) {
      creates.push_back(r);
    }
  }
  // Refused once with 429, then accepted once: two requests for one alert, one alert created.
  ASSERT_EQ(creates.size(), 2u);
  for (const testing::ReceivedRequest& r : creates) {
    EXPECT_EQ(r.Header("authorization"), std::string("GenieKey ") + kGenieKey);
  }
  EXPECT_NE(creates[1].body.find("\"Platform\""), std::string::npos) << creates[1].body;
  DeliveryAudit sent = *FindDelivery([&](const DeliveryAudit& a) {
    return a.dedup_key == dedup && a.outcome == DeliveryOutcome::kAccepted;
  });
  ASSERT_EQ(sent.attempts.size(), 2u);
  EXPECT_EQ(sent.attempts[0].http_status, 429);
  EXPECT_EQ(sent.attempts[1].http_status, 202);
  EXPECT_TRUE(pd_.Accepted(kBackupKey).empty());  // a 429 is not a reason to fall back
}

TEST_F(ServePagersTest, KillMinus9BeforeThePagerAnsweredThenRestartPagesExactlyOnce) {
  Registry("pagerduty: {routing_key: {file: " + dir_.path() + "/pd-platform.key}}");
  // The first request is held unanswered: the page is persisted and on the wire, not
  // accepted, when the daemon dies.
  pd_.Script({testing::SilentReply()});
  const std::string config = Config(PagerDutyConfig());
  const std::string dedup = integrations::DedupKey(kCheckoutAlert, "platform");
  auto platform_requests = [&] {
    size_t n = 0;
    for (const testing::ReceivedRequest& r : pd_.received()) {
      n += testing::JsonMember(r.body, "routing_key") == kPlatformKey &&
           testing::JsonMember(r.body, "dedup_key") == dedup;
    }
    return n;
  };
  {
    Daemon d(config);
    uint16_t port = d.Port();
    ASSERT_NE(port, 0) << d.log();
    ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager", CheckoutAlertOnly()), 200);
    ASSERT_TRUE(pd_.WaitForRequests(1)) << d.log();
    ASSERT_EQ(platform_requests(), 1u);
    d.Signal(SIGKILL);
    EXPECT_EQ(d.Wait(), 128 + SIGKILL);
  }
  EXPECT_TRUE(pd_.Accepted(kPlatformKey).empty());
  // Nothing scripted is left for the restart: the fake answers like PagerDuty again.
  Daemon d(config);
  ASSERT_NE(d.Port(), 0) << d.log();
  ASSERT_TRUE(Eventually([&] { return !pd_.Accepted(kPlatformKey).empty(); })) << d.log();
  ASSERT_TRUE(Eventually([&] {
    return FindDelivery([&](const DeliveryAudit& a) {
      return a.dedup_key == dedup && a.outcome == DeliveryOutcome::kAccepted;
    });
  })) << d.log();
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
  auto accepted = pd_.Accepted(kPlatformKey);
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0], std::make_pair(std::string("trigger"), dedup));
  EXPECT_EQ(platform_requests(), 2u);  // the held one, and the one resent after the restart
}

TEST_F(ServePagersTest, ReloadSwapsTargetsAndSecretsWhileResolvesKeepTheTriggeredTarget) {
  testing::FakeSlack before(pki_->localhost, "/services/T0/B0/before");
  testing::FakeSlack after(pki_->localhost, "/services/T0/B0/after");
  dir_.Write("slack.url", before.WebhookUrl() + "\n");
  Registry("slack: {webhook_url: {file: " + dir_.path() + "/slack.url}}");
  const std::string pagers = "  slack: {timeout: 5s}\n" + PagerDutyConfig();
  Daemon d(Config(pagers));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager", CheckoutAlertOnly()), 200);
  ASSERT_TRUE(before.WaitForRequests(1)) << d.log();
  EXPECT_NE(before.received()[0].body.find("postgresql/payments"), std::string::npos)
      << before.received()[0].body;

  // The secret now names another webhook; the delivery section changed too (restart-only).
  dir_.Write("slack.url", after.WebhookUrl() + "\n");
  std::string config = ReadFile(dir_.path() + "/tracepager.yaml");
  config.replace(config.find("initial_backoff: 50ms"), 21, "initial_backoff: 60ms");
  dir_.Write("tracepager.yaml", config);
  testing::HttpAnswer reload = testing::HttpCall(port, "POST", "/-/reload");
  ASSERT_EQ(reload.status, 200) << reload.body << d.log();
  EXPECT_TRUE(d.WaitFor("reload_needs_restart keys=delivery")) << d.log();

  // A new incident (another service, so not a storm of the first) pages the new webhook...
  ASSERT_EQ(Post(port, "/api/v1/alerts",
                 R"({"service":"frontend","id":"after-reload","trace_ids":[")" +
                     std::string(kCapturedTrace) + R"("]})"),
            200);
  ASSERT_TRUE(after.WaitForRequests(1)) << d.log();
  // ...while the first alert's resolve goes where its trigger went.
  std::string resolved = ReadFile(FixturePath("alertmanager-captured/resolved.raw.json"));
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager", resolved), 200);
  ASSERT_TRUE(before.WaitForRequests(2)) << d.log();
  EXPECT_EQ(before.requests(), 2u);
  EXPECT_EQ(after.requests(), 1u);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
  EXPECT_EQ(d.log().find("/services/T0/B0/"), std::string::npos) << "a webhook URL was logged";
}

}  // namespace
}  // namespace tracepager::daemon
