// `tracepager serve` paging real (fake) pagers end to end: the daemon process with the file
// trace source, a registry whose teams page HTTPS fakes of PagerDuty and Opsgenie on 127.0.0.1
// (a test CA the daemon trusts through pagers.tls.ca_file), and the captured Alertmanager
// webhooks. What the fakes receive is the proof: the right target, dedup key and details; the
// resolve at the same target; a fallback after a permanent refusal; one page through a 429;
// exactly one page by dedup key across a kill -9; every page exactly once after a pager outage
// (500s, resets, hangs); a signed generic webhook carrying the decision; "nobody was paged" as
// an error line, a metric and an audit record.
// The daemon runs under tests/support/daemon_process.h. Synchronised through its log lines and
// the fakes' request counts (condition waits), and the audit log and the fakes' records (a
// bounded poll, Eventually); every wait has a deadline and returns as soon as it holds.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
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

// The captured firing webhook with its first alert copied once per (service, alertname,
// fingerprint): distinct alerts of distinct alerting services (so distinct storm keys and
// decisions), all carrying the captured trace id.
struct AlertSpec {
  std::string service;
  std::string alertname;
  std::string fingerprint;
};
std::string AlertmanagerWebhook(const std::vector<AlertSpec>& specs) {
  rapidjson::Document d;
  std::string raw = ReadFile(FixturePath("alertmanager-captured/firing.raw.json"));
  d.Parse(raw.c_str());
  EXPECT_TRUE(d.IsObject() && d.HasMember("alerts") && d["alerts"].IsArray() &&
              d["alerts"].Size() == 2 && d["alerts"][0].IsObject());
  auto& a = d.GetAllocator();
  rapidjson::Value alerts(rapidjson::kArrayType);
  for (const AlertSpec& spec : specs) {
    rapidjson::Value alert(d["alerts"][0], a);
    EXPECT_TRUE(alert.HasMember("labels") && alert["labels"].IsObject() &&
                alert["labels"].HasMember("service") && alert["labels"].HasMember("alertname") &&
                alert.HasMember("fingerprint"));
    alert["labels"]["service"].SetString(spec.service.c_str(), a);
    alert["labels"]["alertname"].SetString(spec.alertname.c_str(), a);
    alert["fingerprint"].SetString(spec.fingerprint.c_str(), a);
    alerts.PushBack(alert, a);
  }
  d["alerts"] = alerts;
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  d.Accept(w);
  return out.GetString();
}

// Lowercase hex HMAC-SHA256, computed here with OpenSSL directly rather than with the daemon's
// own helper, so a receiver's check is independent of the code under test.
std::string HmacSha256(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0xf];
  }
  return out;
}

// The value of one series in a Prometheus text exposition (`series` with its labels, e.g.
// `tracepager_pages_total{result="nobody_paged"}`); nullopt when it is absent.
std::optional<double> MetricValue(const std::string& text, const std::string& series) {
  for (size_t at = text.find(series + " "); at != std::string::npos;
       at = text.find(series + " ", at + 1)) {
    if (at != 0 && text[at - 1] != '\n') continue;
    return std::strtod(text.c_str() + at + series.size() + 1, nullptr);
  }
  return std::nullopt;
}

// PagerDuty down for a while, then back. While down it answers 500 to the first `per_phase`
// requests, resets the connection on the next `per_phase`, then holds requests unanswered past
// the daemon's request deadline. It comes back once it has refused at least 3 * per_phase
// requests and every one of `keys` distinct dedup keys at least once (so every page was sent
// into the outage), and then answers 202 as PagerDuty does, counting what it accepted.
class OutagePagerDuty {
 public:
  enum class Failure { k500, kReset, kHang };

  OutagePagerDuty(const testing::TlsFiles& tls, size_t keys, size_t per_phase)
      : keys_(keys),
        per_phase_(per_phase),
        service_([this](const testing::ReceivedRequest& r) { return Answer(r); }, tls) {}

  std::string Url() const { return service_.Url(); }
  bool up() {
    std::lock_guard lock(mu_);
    return up_;
  }
  // The failures it answered, in order.
  std::vector<Failure> failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }
  // Accepted events by dedup key: their actions, in order.
  std::map<std::string, std::vector<std::string>> accepted() {
    std::lock_guard lock(mu_);
    return accepted_;
  }

 private:
  testing::FakeReply Answer(const testing::ReceivedRequest& r) {
    const std::string dedup = testing::JsonMember(r.body, "dedup_key");
    std::lock_guard lock(mu_);
    if (!up_) {
      refused_keys_.insert(dedup);
      Failure f = failures_.size() < per_phase_       ? Failure::k500
                  : failures_.size() < 2 * per_phase_ ? Failure::kReset
                                                      : Failure::kHang;
      failures_.push_back(f);
      up_ = failures_.size() >= 3 * per_phase_ && refused_keys_.size() >= keys_;
      switch (f) {
        case Failure::k500: {
          // Connection: close. The client replaces a pooled connection that dies before any
          // byte of the answer once, at once (a peer's idle close); the resets must come on
          // fresh connections to count as attempts of their own.
          testing::FakeReply reply =
              testing::StatusReply(500, R"({"status":"error","message":"Internal error"})");
          reply.keep_alive = false;
          return reply;
        }
        case Failure::kReset:
          return testing::ResetReply();
        case Failure::kHang:
          return testing::SilentReply();
      }
    }
    accepted_[dedup].push_back(testing::JsonMember(r.body, "event_action"));
    return testing::FakeReply::Json(
        R"({"status":"success","message":"Event processed","dedup_key":")" + dedup + "\"}", 202);
  }

  const size_t keys_;
  const size_t per_phase_;
  std::mutex mu_;
  bool up_ = false;
  std::vector<Failure> failures_;
  std::set<std::string> refused_keys_;
  std::map<std::string, std::vector<std::string>> accepted_;
  testing::FakePagerService service_;  // last: stopped first, before what Answer uses
};

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
    dir_.Write("traces/checkout.json", testing::ExampleTraceWithId(kCapturedTrace));
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

  std::string Config(const std::string& pagers,
                     const std::string& delivery = "{initial_backoff: 50ms, max_backoff: 200ms}") {
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
                          "delivery: " +
                          delivery + "\n");
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

// Issue 6 "a pager down for a while receives everything once it recovers" and issue 8's pager
// fault (500, resets, hanging past the deadline, then recovering), through the daemon: three
// alerts page PagerDuty while it is down; each reaches it exactly once after it recovers, and
// each accepted delivery record lists the failed attempts before the success.
TEST_F(ServePagersTest, PagerDownForAWhileGetsEveryPageExactlyOnceAfterItRecovers) {
  const std::vector<AlertSpec> alerts = {{"checkout", "CheckoutErrorRateHigh", "a1a1a1a1a1a1a1a1"},
                                         {"frontend", "FrontendErrorRateHigh", "b2b2b2b2b2b2b2b2"},
                                         {"payment", "PaymentErrorRateHigh", "c3c3c3c3c3c3c3c3"}};
  OutagePagerDuty pd(pki_->localhost, alerts.size(), alerts.size());
  Registry("pagerduty: {routing_key: {file: " + dir_.path() + "/pd-platform.key}}");
  // A hung request costs the 3 s timeout; retries back off 50..200 ms; no rate limit slows them.
  Daemon d(Config("  pagerduty: {events_url: " + pd.Url() + "/v2/enqueue, timeout: 3s}\n",
                  "{initial_backoff: 50ms, max_backoff: 200ms, "
                  "rate_limits: {pagerduty: {per_second: 1000, burst: 1000}}}"));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager", AlertmanagerWebhook(alerts)), 200);

  // Every alert routes to the database's owner, platform: one dedup key each.
  std::vector<std::string> dedups;
  for (const AlertSpec& a : alerts) {
    dedups.push_back(integrations::DedupKey("am:" + a.fingerprint, "platform"));
  }
  auto accepted_record = [&](const std::string& dedup) {
    return FindDelivery([&](const DeliveryAudit& a) {
      return a.dedup_key == dedup && a.outcome == DeliveryOutcome::kAccepted;
    });
  };
  ASSERT_TRUE(Eventually([&] {
    for (const std::string& dedup : dedups) {
      if (!accepted_record(dedup)) return false;
    }
    return true;
  })) << d.log();
  ASSERT_TRUE(pd.up());
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();

  // The fake went through all three kinds of failure.
  std::vector<OutagePagerDuty::Failure> failures = pd.failures();
  auto count = [&](OutagePagerDuty::Failure f) {
    return static_cast<size_t>(std::count(failures.begin(), failures.end(), f));
  };
  EXPECT_EQ(count(OutagePagerDuty::Failure::k500), alerts.size());
  EXPECT_EQ(count(OutagePagerDuty::Failure::kReset), alerts.size());
  EXPECT_GE(count(OutagePagerDuty::Failure::kHang), alerts.size());

  // Exactly once by dedup key at the pager, and nothing else.
  std::map<std::string, std::vector<std::string>> accepted = pd.accepted();
  EXPECT_EQ(accepted.size(), alerts.size());
  for (const std::string& dedup : dedups) {
    EXPECT_EQ(accepted[dedup], std::vector<std::string>{"trigger"}) << dedup;
  }

  // The records: per page, the failed attempts (each with its status or error) and the success
  // last; together, every failure the fake answered.
  size_t http500 = 0, no_answer = 0;
  for (const std::string& dedup : dedups) {
    DeliveryAudit sent = *accepted_record(dedup);
    EXPECT_EQ(sent.team, "platform");
    EXPECT_EQ(sent.target.kind, "pagerduty");
    ASSERT_GE(sent.attempts.size(), 2u) << dedup << " was never refused";
    EXPECT_EQ(sent.attempts.back().http_status, 202);
    EXPECT_TRUE(sent.attempts.back().error.empty()) << sent.attempts.back().error;
    for (size_t i = 0; i + 1 < sent.attempts.size(); ++i) {
      const AuditAttempt& a = sent.attempts[i];
      EXPECT_FALSE(a.error.empty()) << dedup << " attempt " << i;
      if (a.http_status == 500) {
        ++http500;
        EXPECT_NE(a.error.find("500"), std::string::npos) << a.error;
      } else {
        EXPECT_EQ(a.http_status, 0) << dedup << " attempt " << i << ": " << a.error;
        ++no_answer;
      }
      if (i > 0) {
        EXPECT_GE(a.time_ns, sent.attempts[i - 1].time_ns);
      }
    }
  }
  EXPECT_EQ(http500, count(OutagePagerDuty::Failure::k500));
  // A reset or a hang is an attempt without an answer (a failed TLS handshake would add more).
  EXPECT_GE(no_answer,
            count(OutagePagerDuty::Failure::kReset) + count(OutagePagerDuty::Failure::kHang));
  // Nothing gave up on the team while it was down.
  EXPECT_FALSE(FindDelivery([](const DeliveryAudit& a) { return DeliveryFailed(a.outcome); }));
  EXPECT_FALSE(
      FindDelivery([](const DeliveryAudit& a) { return a.outcome == DeliveryOutcome::kFallback; }));
  EXPECT_GE(Daemon::Count(d.log(), "page_retry "), failures.size()) << d.log();
  EXPECT_EQ(d.log().find(kPlatformKey), std::string::npos) << "a secret reached the log";
}

// Issue 6's generic webhook through the daemon: the decision as JSON, signed with HMAC-SHA256
// under a key read from a file; the receiver checks the signature against the body. Neither the
// key nor the webhook URL's token reaches the daemon's log or the audit log.
TEST_F(ServePagersTest, SignedWebhookCarriesTheDecisionAndKeepsItsSecrets) {
  const std::string signing_key = "hmac-signing-key-for-tests-5f3e9a";
  const std::string token_path = "/hooks/tracepager/T0KEN4b7d21";
  testing::FakePagerService hook(
      [&](const testing::ReceivedRequest& r) {
        // A receiver's check: the signature over the exact body, under the shared key.
        if (r.target != token_path) return testing::StatusReply(404);
        if (r.Header("x-tracepager-signature") != HmacSha256(signing_key, r.body)) {
          return testing::StatusReply(401, R"({"error":"bad signature"})");
        }
        return testing::StatusReply(200, R"({"ok":true})");
      },
      pki_->localhost);
  dir_.Write("hmac.key", signing_key + "\n");
  dir_.Write("webhook.url", hook.Url() + token_path + "\n");
  Registry("webhook: {url: {file: " + dir_.path() + "/webhook.url}}");
  Daemon d(Config("  webhook: {signing_key: {file: " + dir_.path() + "/hmac.key}, timeout: 5s}\n" +
                  PagerDutyConfig()));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager", CheckoutAlertOnly()), 200);
  const std::string dedup = integrations::DedupKey(kCheckoutAlert, "platform");
  ASSERT_TRUE(Eventually([&] {
    return FindDelivery([&](const DeliveryAudit& a) {
      return a.dedup_key == dedup && a.action == "trigger" &&
             a.outcome == DeliveryOutcome::kAccepted;
    });
  })) << d.log();
  ASSERT_EQ(hook.requests(), 1u);
  testing::ReceivedRequest trigger = hook.received()[0];
  EXPECT_EQ(trigger.method, "POST");
  EXPECT_EQ(trigger.target, token_path);
  EXPECT_EQ(trigger.Header("x-tracepager-signature"), HmacSha256(signing_key, trigger.body));
  EXPECT_NE(trigger.Header("content-type").find("application/json"), std::string::npos);

  rapidjson::Document body;
  body.Parse(trigger.body.c_str());
  ASSERT_TRUE(body.IsObject()) << trigger.body;
  auto str = [&](const char* key) {
    return body.HasMember(key) && body[key].IsString() ? std::string(body[key].GetString())
                                                       : std::string("<missing>");
  };
  EXPECT_EQ(str("version"), "1");
  EXPECT_EQ(str("action"), "trigger");
  EXPECT_EQ(str("dedup_key"), dedup);
  EXPECT_EQ(str("alert_identity"), kCheckoutAlert);
  EXPECT_EQ(str("team"), "platform");
  EXPECT_EQ(str("culprit"), "postgresql/payments");
  EXPECT_EQ(str("alerting_service"), "checkout");
  EXPECT_EQ(str("alertname"), "CheckoutErrorRateHigh");
  ASSERT_TRUE(body.HasMember("path") && body["path"].IsArray()) << trigger.body;
  std::vector<std::string> path;
  for (const auto& hop : body["path"].GetArray()) {
    if (hop.IsString()) path.emplace_back(hop.GetString());
  }
  EXPECT_NE(std::find(path.begin(), path.end(), "payment"), path.end()) << trigger.body;
  EXPECT_NE(trigger.body.find("https://jaeger.example/trace/" + std::string(kCapturedTrace)),
            std::string::npos);
  // "decision" is the routing decision the audit log recorded for this alert, as it is there.
  ASSERT_TRUE(body.HasMember("decision") && body["decision"].IsObject()) << trigger.body;
  bool found_decision = false;
  std::ifstream audit(dir_.path() + "/state/audit.jsonl");
  for (std::string line; std::getline(audit, line);) {
    rapidjson::Document rec;
    rec.Parse(line.c_str());
    if (!rec.IsObject() || !rec.HasMember("id") || !rec["id"].IsString() ||
        str("decision_id") != rec["id"].GetString()) {
      continue;
    }
    found_decision = true;
    ASSERT_TRUE(rec.HasMember("route") && rec["route"].IsObject()) << line;
    EXPECT_TRUE(rec["route"] == body["decision"]) << line << "\n" << trigger.body;
  }
  EXPECT_TRUE(found_decision) << "no decision record " << str("decision_id");

  // The resolve is signed the same way and reaches the same URL.
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager",
                 ReadFile(FixturePath("alertmanager-captured/resolved.raw.json"))),
            200);
  ASSERT_TRUE(hook.WaitForRequests(2)) << d.log();
  testing::ReceivedRequest resolve = hook.received()[1];
  EXPECT_EQ(resolve.target, token_path);
  EXPECT_EQ(testing::JsonMember(resolve.body, "action"), "resolve");
  EXPECT_EQ(testing::JsonMember(resolve.body, "dedup_key"), dedup);
  EXPECT_EQ(resolve.Header("x-tracepager-signature"), HmacSha256(signing_key, resolve.body));
  ASSERT_TRUE(Eventually([&] {
    return FindDelivery([&](const DeliveryAudit& a) {
      return a.dedup_key == dedup && a.action == "resolve" &&
             a.outcome == DeliveryOutcome::kAccepted;
    });
  })) << d.log();
  DeliveryAudit sent = *FindDelivery([&](const DeliveryAudit& a) {
    return a.dedup_key == dedup && a.action == "trigger" && a.outcome == DeliveryOutcome::kAccepted;
  });
  EXPECT_EQ(sent.target.kind, "webhook");
  EXPECT_EQ(sent.target.redacted.find("T0KEN"), std::string::npos) << sent.target.redacted;
  ASSERT_EQ(sent.attempts.size(), 1u);
  EXPECT_EQ(sent.attempts[0].http_status, 200);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();

  const std::string log = d.log();
  const std::string audit_text = ReadFile(dir_.path() + "/state/audit.jsonl");
  for (const std::string& secret : {signing_key, std::string("T0KEN4b7d21")}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " reached the log";
    EXPECT_EQ(audit_text.find(secret), std::string::npos) << secret << " reached the audit log";
  }
}

// Issue 6 "nobody was paged never happens silently", through the daemon: the only team that can
// take the page (the owner, which is also the default team, with no fallback) refuses it for
// good. The daemon says so three ways: an error log line, the metric, and an audit record.
TEST_F(ServePagersTest, NobodyPagedIsAnErrorLineAMetricAndAnAuditRecord) {
  const std::string other = "pagerduty: {routing_key: {file: " + dir_.path() + "/pd-other.key}}";
  dir_.Write("registry.yaml",
             "default_team: platform\nteams:\n"
             "  platform:\n    pagerduty: {routing_key: {file: " +
                 dir_.path() + "/pd-platform.key}}\n" + "  web: {" + other + "}\n  checkout: {" +
                 other + "}\n  payments: {" + other +
                 "}\n"
                 "services:\n"
                 "  frontend: {team: web}\n"
                 "  checkout: {team: checkout}\n"
                 "  payment: {team: payments}\n"
                 "  postgresql/payments: {team: platform}\n");
  pd_.RejectRoutingKey(kPlatformKey);  // 400 "Invalid routing key": permanent
  Daemon d(Config(PagerDutyConfig()));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  testing::HttpAnswer before = testing::HttpCall(port, "GET", "/metrics");
  ASSERT_EQ(before.status, 200);
  EXPECT_EQ(MetricValue(before.body, R"(tracepager_pages_total{result="nobody_paged"})"), 0.0)
      << before.body;
  ASSERT_EQ(Post(port, "/api/v1/alerts/alertmanager", CheckoutAlertOnly()), 200);
  const std::string dedup = integrations::DedupKey(kCheckoutAlert, "platform");

  // 1. The error log line.
  EXPECT_TRUE(d.WaitFor("nobody_paged alert=" + std::string(kCheckoutAlert) + " team=platform"))
      << d.log();
  const std::string log = d.log();
  const size_t line_at = log.find("nobody_paged alert=");
  ASSERT_NE(line_at, std::string::npos);
  const std::string line = log.substr(line_at, log.find('\n', line_at) - line_at);
  EXPECT_NE(line.find("tried platform"), std::string::npos) << line;
  // "<time> error nobody_paged ...": at error level.
  const size_t line_start = log.rfind('\n', line_at) + 1;  // npos + 1 == 0 for the first line
  const std::string prefix = log.substr(line_start, line_at - line_start);
  EXPECT_TRUE(prefix.size() >= 6 && prefix.compare(prefix.size() - 6, 6, "error ") == 0)
      << "not at error level: " << prefix << line;

  // 2. The metric.
  std::optional<double> nobody;
  ASSERT_TRUE(Eventually([&] {
    testing::HttpAnswer m = testing::HttpCall(port, "GET", "/metrics");
    nobody = MetricValue(m.body, R"(tracepager_pages_total{result="nobody_paged"})");
    return m.status == 200 && nobody == 1.0;
  })) << (nobody ? *nobody : -1);

  // 3. The audit records: the refusal, not retried and rerouted nowhere, and nobody paged.
  ASSERT_TRUE(Eventually([&] {
    return FindDelivery([&](const DeliveryAudit& a) {
      return a.alert_identity == kCheckoutAlert && a.outcome == DeliveryOutcome::kNobodyPaged;
    });
  })) << ReadFile(dir_.path() + "/state/audit.jsonl");
  DeliveryAudit none = *FindDelivery([&](const DeliveryAudit& a) {
    return a.alert_identity == kCheckoutAlert && a.outcome == DeliveryOutcome::kNobodyPaged;
  });
  EXPECT_EQ(none.team, "platform");
  EXPECT_EQ(none.dedup_key, dedup);
  EXPECT_EQ(none.action, "trigger");
  EXPECT_FALSE(none.decision_id.empty());
  EXPECT_NE(none.detail.find("platform"), std::string::npos) << none.detail;
  std::optional<DeliveryAudit> refused = FindDelivery([&](const DeliveryAudit& a) {
    return a.dedup_key == dedup && a.outcome == DeliveryOutcome::kRejected;
  });
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->team, "platform");
  EXPECT_TRUE(refused->rerouted_to.empty()) << refused->rerouted_to;
  ASSERT_EQ(refused->attempts.size(), 1u);
  EXPECT_EQ(refused->attempts[0].http_status, 400);
  EXPECT_EQ(refused->decision_id, none.decision_id);
  EXPECT_EQ(DeliveryFailed(none.outcome), true);

  // Nobody else was paged in its place, and the refused target was asked once.
  EXPECT_FALSE(FindDelivery([](const DeliveryAudit& a) {
    return a.outcome == DeliveryOutcome::kAccepted || a.outcome == DeliveryOutcome::kFallback;
  }));
  EXPECT_TRUE(pd_.Accepted(kPlatformKey).empty());
  EXPECT_TRUE(pd_.Accepted(kOtherKey).empty());
  EXPECT_EQ(pd_.requests(), 1u);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
  EXPECT_EQ(d.log().find(kPlatformKey), std::string::npos) << "a secret reached the log";
}

}  // namespace
}  // namespace tracepager::daemon
