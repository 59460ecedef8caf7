// `tracepager serve` as a real process over real loopback HTTP: the webhook endpoints with the
// captured payloads, auth, bad input, reload with a bad config, SIGTERM with work in flight,
// and kill -9 with work queued. The daemon is synchronised with through its log lines (each
// read as it is written) and its answers; no test sleeps.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/store.h"
#include "tests/support/daemon_process.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::FixturePath;
using testing::ReadFile;
using testing::TempDir;

const char* kCapturedTrace = "4bf92f3577b34da6a3ce929d0e0e4736";

using testing::HttpAnswer;
using Daemon = testing::DaemonProcess;

HttpAnswer Request(uint16_t port, const std::string& method, const std::string& path,
                   const std::string& body = "", const std::vector<std::string>& headers = {}) {
  return testing::HttpCall(port, method, path, body, headers);
}

// The value of an unlabelled metric once it reaches `want`, asking /metrics again (at most
// 10,000 times: a bounded number of requests, no sleep) while it is lower or absent; the last
// value read (0 when absent) otherwise.
double MetricReaching(uint16_t port, const std::string& name, double want) {
  const std::string line_start = "\n" + name + " ";
  double value = 0;
  for (int i = 0; i < 10'000 && value < want; ++i) {
    std::string body = Request(port, "GET", "/metrics").body;
    size_t at = body.find(line_start);
    if (at != std::string::npos) value = std::stod(body.substr(at + line_start.size()));
  }
  return value;
}

// A daemon's files in a temp dir: registry, traces, config.
class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("registry.yaml", R"(default_team: platform
teams:
  platform: {}
  web: {}
  checkout: {}
  payments: {}
services:
  frontend: {team: web}
  checkout: {team: checkout}
  payment: {team: payments}
  postgresql/payments: {team: platform}
)");
    // The example trace (frontend -> checkout -> payment -> its database), under the trace id
    // the captured alerts carry.
    dir_.Write("traces/checkout.json", testing::ExampleTraceWithId(kCapturedTrace));
  }

  std::string Config(const std::string& extra_server = "", const std::string& extra = "") {
    return dir_.Write("tracepager.yaml", "server:\n  listen: [\"127.0.0.1:0\"]\n" + extra_server +
                                             "state_dir: state\n"
                                             "registry: {path: registry.yaml}\n"
                                             "trace_source: {type: file, dir: traces}\n"
                                             "pager: {type: log, path: pages.jsonl}\n" +
                                             extra);
  }

  std::vector<std::string> PageLines() {
    std::ifstream in(dir_.path() + "/pages.jsonl");
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  std::set<std::string> PagedIdentities() {
    std::set<std::string> out;
    std::regex re("\"alert_identity\":\"([^\"]+)\"");
    for (const std::string& line : PageLines()) {
      std::smatch m;
      if (std::regex_search(line, m, re)) out.insert(m[1]);
    }
    return out;
  }

  TempDir dir_;
};

TEST_F(ServeTest, EveryEndpointAcceptsItsCapturedPayloadAndPages) {
  Daemon d(Config());
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  HttpAnswer am = Request(port, "POST", "/api/v1/alerts/alertmanager",
                          ReadFile(FixturePath("alertmanager-captured/firing.raw.json")));
  EXPECT_EQ(am.status, 200) << am.body;
  EXPECT_EQ(am.body, R"({"status":"accepted","alerts":2,"jobs":2})");
  HttpAnswer grafana =
      Request(port, "POST", "/api/v1/alerts/grafana",
              ReadFile(FixturePath("grafana/from-docs/webhook_unified_firing_written.json")));
  EXPECT_EQ(grafana.status, 200) << grafana.body;
  HttpAnswer generic = Request(port, "POST", "/api/v1/alerts",
                               R"({"service":"frontend","id":"generic-1","trace_ids":[")" +
                                   std::string(kCapturedTrace) + R"("]})");
  EXPECT_EQ(generic.status, 200) << generic.body;
  // Every legacy Alertmanager fixture is accepted too.
  for (const char* f : {"alertmanager/alertmanager-bot_firing.json",
                        "alertmanager/prometheus_bot_production_example_legacy.json",
                        "alertmanager/notification-manager_alert.json"}) {
    EXPECT_EQ(Request(port, "POST", "/api/v1/alerts/alertmanager", ReadFile(FixturePath(f))).status,
              200)
        << f;
  }
  // The captured checkout alert is paged to the database's owner (platform), from the trace;
  // Grafana's alert for the same service and symptom shares that decision: it joins the open
  // page (a storm) when a worker already decided, or is decided together with it when both
  // were queued before a worker claimed them. The generic one (frontend, errors) is an
  // incident of its own.
  ASSERT_TRUE(d.WaitLog([&](const std::string& log) {
    std::set<std::string> paged = PagedIdentities();
    bool shared = log.find("kind=storm service=checkout symptom=errors") != std::string::npos ||
                  log.find("kind=routed service=checkout symptom=errors teams=platform alerts=2") !=
                      std::string::npos;
    return shared && paged.count("am:891fd0d54ed75b69") && paged.count("am:296e4179fd3a5b54") &&
           paged.count("generic:generic-1");
  })) << d.log();
  // The decision is in the audit log, and served by the decisions API.
  ASSERT_TRUE(d.WaitFor("kind=routed service=checkout symptom=errors")) << d.log();
  HttpAnswer decisions = Request(port, "GET", "/api/v1/decisions?service=checkout");
  EXPECT_EQ(decisions.status, 200) << decisions.body;
  EXPECT_NE(decisions.body.find("am:891fd0d54ed75b69"), std::string::npos) << decisions.body;
  EXPECT_NE(
      ReadFile(dir_.path() + "/state/audit.jsonl").find("\"identity\":\"am:891fd0d54ed75b69\""),
      std::string::npos);
  std::string pages;
  for (const std::string& l : PageLines()) pages += l + "\n";
  EXPECT_NE(pages.find(R"("team":"platform","dedup_key")"), std::string::npos) << pages;
  EXPECT_NE(pages.find("am:891fd0d54ed75b69"), std::string::npos) << pages;
  EXPECT_EQ(Request(port, "GET", "/healthz").status, 200);
  HttpAnswer ready = Request(port, "GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  HttpAnswer metrics = Request(port, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);  // open_metrics is false, but no token is configured at all
  EXPECT_NE(metrics.body.find("tracepager_alerts_received_total{endpoint=\"alertmanager\"}"),
            std::string::npos);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
}

TEST_F(ServeTest, MalformedAndOversizeBodiesAreRefusedWithTheReason) {
  Daemon d(Config("  body_limit: 4KiB\n"));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  HttpAnswer bad = Request(port, "POST", "/api/v1/alerts/alertmanager", R"({"receiver":"x"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body, R"({"error":"invalid_payload","reason":"alertmanager alerts: missing"})");
  HttpAnswer not_json = Request(port, "POST", "/api/v1/alerts", "{nope");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_NE(not_json.body.find("invalid JSON"), std::string::npos);
  HttpAnswer typed = Request(port, "POST", "/api/v1/alerts/grafana",
                             R"({"version":"1","alerts":[{"labels":{"a":["x"]}}]})");
  EXPECT_EQ(typed.status, 400);
  EXPECT_NE(typed.body.find("grafana alerts[0].labels.a: expected a string"), std::string::npos);
  HttpAnswer big = Request(port, "POST", "/api/v1/alerts", std::string(8192, ' ') + "{}");
  EXPECT_EQ(big.status, 413);
  HttpAnswer metrics = Request(port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("tracepager_requests_rejected_total{reason=\"invalid_payload\"} 3"),
            std::string::npos)
      << metrics.body;
}

TEST_F(ServeTest, BearerTokensGuardTheEndpoints) {
  dir_.Write("token", "s3cret-token\n");
  Daemon d(Config("  auth:\n    bearer_tokens: [{file: token}]\n    open_health: true\n"));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  std::string body = R"({"service":"checkout","id":"x"})";
  EXPECT_EQ(Request(port, "POST", "/api/v1/alerts", body).status, 401);
  EXPECT_EQ(Request(port, "POST", "/api/v1/alerts", body, {"Authorization: Bearer wrong"}).status,
            401);
  EXPECT_EQ(
      Request(port, "POST", "/api/v1/alerts", body, {"Authorization: Bearer s3cret-token"}).status,
      200);
  EXPECT_EQ(Request(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(Request(port, "GET", "/metrics").status, 401);
  EXPECT_EQ(Request(port, "POST", "/-/reload").status, 401);
  EXPECT_EQ(d.log().find("s3cret-token"), std::string::npos);  // never logged
}

TEST_F(ServeTest, ABadReloadKeepsTheRunningConfig) {
  std::string config = Config();
  Daemon d(config);
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  std::string good = ReadFile(config);
  dir_.Write("tracepager.yaml", good + "routng: {}\n");
  HttpAnswer reload = Request(port, "POST", "/-/reload");
  EXPECT_EQ(reload.status, 400);
  EXPECT_NE(reload.body.find("config error at routng: unknown key"), std::string::npos)
      << reload.body;
  EXPECT_TRUE(d.WaitFor("reload_failed")) << d.log();
  // Still serving with the old config.
  EXPECT_EQ(Request(port, "POST", "/api/v1/alerts", R"({"service":"checkout","id":"a"})").status,
            200);
  HttpAnswer metrics = Request(port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("tracepager_config_reloads_total{result=\"failed\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("tracepager_config_last_reload_successful 0"), std::string::npos);
  // A fixed file reloads on SIGHUP.
  dir_.Write("tracepager.yaml", good);
  d.Signal(SIGHUP);
  EXPECT_TRUE(d.WaitFor("reloaded config=")) << d.log();
  metrics = Request(port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("tracepager_config_last_reload_successful 1"), std::string::npos);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0);
}

// Posts one generic alert per identity (distinct services, so each is its own decision and
// page), each carrying `trace`; returns the identities acknowledged with 200.
std::vector<std::string> PostMany(uint16_t port, const std::string& prefix, int n,
                                  const std::string& trace,
                                  const std::function<void(int)>& after_each = nullptr) {
  std::vector<std::string> acked;
  for (int i = 0; i < n; ++i) {
    std::string id = prefix + std::to_string(i);
    HttpAnswer a = Request(
        port, "POST", "/api/v1/alerts",
        R"({"service":"svc-)" + id + R"(","id":")" + id + R"(","trace_ids":[")" + trace + R"("]})");
    if (a.status == 200) acked.push_back("generic:" + id);
    if (after_each) after_each(i);
  }
  return acked;
}

// The alerts below carry a trace that is not in the trace directory yet: workers put them back
// for workers.retry_delay (the traces-arrive-late path), so they are certainly still queued when
// the daemon is stopped. The restarted daemon finds the trace and must route every one of them.
constexpr const char* kLateTrace = "0af7651916cd43dd8448eb211c80319c";
constexpr const char* kLateWorkers = "workers: {count: 1, max_attempts: 5, retry_delay: 3s}\n";

void AddLateTrace(TempDir& dir) {
  std::string trace = ReadFile(dir.path() + "/traces/checkout.json");
  for (size_t at = trace.find(kCapturedTrace); at != std::string::npos;
       at = trace.find(kCapturedTrace, at)) {
    trace.replace(at, 32, kLateTrace);
  }
  dir.Write("traces/late.json", trace);
}

TEST_F(ServeTest, EveryAcknowledgedAlertIsRoutedAfterKill9) {
  std::string config = Config("", kLateWorkers);
  std::vector<std::string> acked;
  {
    Daemon d(config);
    uint16_t port = d.Port();
    ASSERT_NE(port, 0) << d.log();
    acked = PostMany(port, "k", 40, kLateTrace, [&](int i) {
      if (i == 29) d.Signal(SIGKILL);  // mid-stream, with every acknowledged alert queued
    });
    EXPECT_EQ(d.Wait(), 128 + SIGKILL);
  }
  ASSERT_GE(acked.size(), 30u);
  EXPECT_TRUE(PageLines().empty());
  AddLateTrace(dir_);
  Daemon again(config);
  ASSERT_NE(again.Port(), 0) << again.log();
  EXPECT_NE(again.log().find("resumed="), std::string::npos);
  EXPECT_TRUE(again.WaitLog([&](const std::string&) {
    std::set<std::string> paged = PagedIdentities();
    for (const std::string& id : acked) {
      if (!paged.count(id)) return false;
    }
    return true;
  })) << again.log();
  again.Signal(SIGTERM);
  EXPECT_EQ(again.Wait(), 0);
  EXPECT_EQ(PageLines().size(), acked.size());
}

TEST_F(ServeTest, SigtermDrainsAndLeavesTheRestQueued) {
  std::string config = Config("", kLateWorkers);
  std::vector<std::string> acked;
  {
    Daemon d(config);
    uint16_t port = d.Port();
    ASSERT_NE(port, 0) << d.log();
    acked = PostMany(port, "t", 30, kLateTrace);
    d.Signal(SIGTERM);
    EXPECT_EQ(d.Wait(), 0) << d.log();
    EXPECT_NE(d.log().find("stopped jobs_left=30 "), std::string::npos) << d.log();
  }
  EXPECT_EQ(acked.size(), 30u);
  AddLateTrace(dir_);
  Daemon again(config);
  ASSERT_NE(again.Port(), 0) << again.log();
  EXPECT_NE(again.log().find("queued=30 "), std::string::npos) << again.log();
  EXPECT_TRUE(again.WaitLog([&](const std::string&) {
    std::set<std::string> paged = PagedIdentities();
    for (const std::string& id : acked) {
      if (!paged.count(id)) return false;
    }
    return true;
  })) << again.log();
  again.Signal(SIGTERM);
  EXPECT_EQ(again.Wait(), 0);
  // Every alert paged exactly once across the restart, on the late trace.
  EXPECT_EQ(PageLines().size(), acked.size());
  EXPECT_NE(PageLines()[0].find(kLateTrace), std::string::npos) << PageLines()[0];
}

// Pacing over HTTP: the late trace keeps every job queued (waiting for its retry), so the
// backlog only grows. Above pace_above_jobs an answer waits pace_max_wait and is then taken
// while the queue has room; past max_queued_jobs it is 503 at once. (While a move into the
// store finishes, its jobs count twice for a moment, by design: the bounds act early, never
// late. So the checks below hold whichever count a webhook meets.)
TEST_F(ServeTest, AFastSenderIsSlowedDownAboveTheMarkAndRefusedWhenFull) {
  Daemon d(
      Config("", std::string(kLateWorkers) +
                     "store: {max_queued_jobs: 10, pace_above_jobs: 2, pace_max_wait: 300ms}\n"));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  auto alert = [](const std::string& id) {
    return R"({"service":"svc-)" + id + R"(","id":")" + id + R"(","trace_ids":[")" +
           std::string(kLateTrace) + R"("]})";
  };
  auto post = [&](const std::string& id) {
    return Request(port, "POST", "/api/v1/alerts", alert(id));
  };
  EXPECT_EQ(post("p0").status, 200);
  EXPECT_EQ(post("p1").status, 200);
  for (const char* id : {"p2", "p3"}) {
    auto start = std::chrono::steady_clock::now();
    HttpAnswer paced = post(id);
    EXPECT_EQ(paced.status, 200) << paced.body;
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300)) << id;
  }
  // Four queued: seven more do not fit, with or without waiting.
  std::string seven = "[";
  for (int i = 0; i < 7; ++i) seven += (i > 0 ? "," : "") + alert("q" + std::to_string(i));
  HttpAnswer full = Request(port, "POST", "/api/v1/alerts", seven + "]");
  EXPECT_EQ(full.status, 503);
  EXPECT_NE(full.body.find("queue is full ("), std::string::npos) << full.body;
  EXPECT_NE(full.body.find(" of 10 jobs queued)"), std::string::npos) << full.body;
  // The gauges and counters are brought up to date once a second.
  EXPECT_GE(MetricReaching(port, "tracepager_webhooks_paced_total", 2), 2)
      << "p2 and p3 at least (p1 too if it met a move's double count)";
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
  EXPECT_NE(d.log().find("stopped jobs_left=4 "), std::string::npos) << d.log();
}

// A job whose alert can no longer be read (here: its payload was left in an intake log that is
// gone) is set aside rather than blocking the queue: logged with the reason, and counted in
// tracepager_jobs_dead_total, which an operator alerts on (an alert that will not be routed).
TEST_F(ServeTest, AJobWhoseAlertCannotBeReadIsSetAsideLoggedAndCounted) {
  std::string config = Config();
  {
    // A state directory as a crash leaves it when the intake log is then removed: a job handed
    // to a worker with its payload in intake record 5, and no log.
    StoreOptions o;
    o.dir = dir_.path() + "/state";
    o.intake_payload_reader = [](const IntakeLogRef&) -> Result<std::string> {
      return Error::NotFound("not read here");
    };
    Result<std::unique_ptr<Store>> store = Store::Open(o);
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_TRUE((*store)->ClaimNext(0, 10).ok());  // a worker asks: the move hands its job over
    RoutingJob job;
    job.kind = JobKind::kRoute;
    job.identity = "gone";
    job.storm_key = "checkout|errors";
    job.dedup_key = "gone|route";
    job.alerting_service = "checkout";
    auto batch = std::make_shared<IntakeBatch>();
    batch->jobs.push_back(JobRowOf(job));
    batch->log_seq = 5;
    std::promise<Result<EnqueueOutcome>> moved;
    (*store)->ApplyIntakeAsync({batch}, 5,
                               [&](Result<EnqueueOutcome> r) { moved.set_value(std::move(r)); });
    Result<EnqueueOutcome> r = moved.get_future().get();
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->job_ids.size(), 1u);
    ASSERT_TRUE((*store)->SyncIntakeApplied().ok());
  }
  Daemon d(config);
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  ASSERT_TRUE(d.WaitFor("job_set_aside")) << d.log();
  EXPECT_NE(d.log().find("record 5 at byte 0"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("no segment holds it"), std::string::npos) << d.log();
  // Counted by the worker once its claim returns, just after the log line.
  EXPECT_EQ(MetricReaching(port, "tracepager_jobs_dead_total", 1), 1);
  EXPECT_TRUE(PageLines().empty());
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
}

TEST_F(ServeTest, DecisionsItWroteAreReadBackByTheApiAndTheCli) {
  Daemon d(Config());
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  HttpAnswer am = Request(port, "POST", "/api/v1/alerts/alertmanager",
                          ReadFile(FixturePath("alertmanager-captured/firing.raw.json")));
  ASSERT_EQ(am.status, 200) << am.body;
  // Both captured alerts (checkout errors, frontend latency) are decided and paged; a decision's
  // record is appended before its pages are handed to delivery.
  ASSERT_TRUE(d.WaitFor("page_sent action=trigger", 2)) << d.log();

  // The running daemon serves the decisions it wrote: the list, filtered, and one by id.
  HttpAnswer list = Request(port, "GET", "/api/v1/decisions?service=checkout");
  ASSERT_EQ(list.status, 200) << list.body;
  rapidjson::Document doc;
  doc.Parse(list.body.c_str());
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("decisions") && doc["decisions"].IsArray())
      << list.body;
  ASSERT_EQ(doc["decisions"].Size(), 1u) << list.body;
  const std::string id = doc["decisions"][0]["id"].GetString();
  EXPECT_STREQ(doc["decisions"][0]["alerting_service"].GetString(), "checkout");
  HttpAnswer one = Request(port, "GET", "/api/v1/decisions/" + id);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_NE(one.body.find("\"id\":\"" + id + "\""), std::string::npos) << one.body;
  EXPECT_NE(one.body.find("am:891fd0d54ed75b69"), std::string::npos) << one.body;
  EXPECT_NE(one.body.find("postgresql/payments"), std::string::npos) << one.body;
  EXPECT_EQ(Request(port, "GET", "/api/v1/decisions/no-such-decision").status, 404);
  EXPECT_EQ(Request(port, "POST", "/api/v1/decisions/" + id, "{}").status, 405);
  HttpAnswer page = Request(port, "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<html"), std::string::npos);

  // After a clean stop, every record (decisions and deliveries) is read back by the CLI.
  d.Signal(SIGTERM);
  ASSERT_EQ(d.Wait(), 0) << d.log();
  const std::string state = dir_.path() + "/state";
  testing::ProcessResult listed =
      testing::RunTracepager({"audit", "list", "--state-dir", state, "--format", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("\"id\":\"" + id + "\""), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("\"alerting_service\":\"frontend\""), std::string::npos) << listed.out;
  testing::ProcessResult shown =
      testing::RunTracepager({"audit", "show", "--state-dir", state, id});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("decision " + id), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("PAGE platform"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("trigger platform via log"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("accepted"), std::string::npos) << shown.out;
  testing::ProcessResult stats =
      testing::RunTracepager({"audit", "stats", "--state-dir", state, "--format", "json"});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_NE(stats.out.find("platform"), std::string::npos) << stats.out;
}

TEST_F(ServeTest, StartupFailsClearlyOnABadConfig) {
  std::string config = dir_.Write("bad.yaml", "server: {listen: [\"localhost:1\"]}\n");
  testing::ProcessResult r = testing::RunTracepager({"serve", "--config", config});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(config + ":1: config error at server.listen[0]"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace tracepager::daemon
