// `tracepager serve` with an HTTP trace backend, end to end: a fake Jaeger (v1 and v3), Tempo
// or Zipkin on 127.0.0.1 answering with the recorded bodies from the shared fixtures, the real
// daemon process, the captured Alertmanager webhook posted to it, and the page it caused found
// in the log pager's file with the trace ids in the audit record. Then the backend misbehaving
// (down, answering garbage, slower than the job's deadline): the job still completes with a
// fallback page and the reason in the audit record.
//
// The daemon is synchronised with through its log lines, its files and its answers; no test
// sleeps. Every wait has a cap (DaemonProcess: 60 s), which only a failure reaches.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <fstream>
#include <functional>

#include "tests/integrations/fake_backend.h"
#include "tests/support/daemon_process.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::FakeBackend;
using testing::FakeReply;
using testing::FixturePath;
using testing::ReadFile;
using testing::ReceivedRequest;
using testing::TempDir;
using Daemon = testing::DaemonProcess;
using testing::HttpAnswer;

HttpAnswer Request(uint16_t port, const std::string& method, const std::string& path,
                   const std::string& body = "") {
  return testing::HttpCall(port, method, path, body);
}

// The trace id the captured alerts carry (annotations trace_id and traceparent).
const char* kCapturedTrace = "4bf92f3577b34da6a3ce929d0e0e4736";

std::string Fixture(const std::string& name) { return ReadFile(FixturePath(name)); }

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// One trace fetch as the audit record shows it.
struct AuditTrace {
  std::string trace_id, origin, backend, error;
  bool used = false;
};
struct AuditDecision {
  std::string identity;
  std::string kind;  // route.decision: routed | fallback
  std::vector<AuditTrace> traces;
  bool searched = false;
  std::string search_error;
  std::string raw;
};

std::string Str(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) return "";
  return v[key].GetString();
}

// A backend's recorded answers, and how to configure the daemon for it.
struct BackendCase {
  const char* name;
  std::string trace_source;  // the trace_source: section's keys besides base_url
  std::string trace_id;      // the id of the recorded trace
  std::function<FakeReply(const ReceivedRequest&)> handler;
};

std::string TextReply404() { return "404 page not found\n"; }

BackendCase JaegerV1() {
  const std::string id = "83a9efd15c1c98a977e0711cc93ee28b";
  return {"jaeger_v1", "type: jaeger\n  api: v1\n", id, [id](const ReceivedRequest& r) {
            // Jaeger's own golden output of /api/traces (the {"data":[...]} envelope).
            if (r.target == "/api/traces/" + id) {
              return FakeReply::Json(Fixture("jaeger-v1/api_traces_response_otlp2jaeger-out.json"));
            }
            return FakeReply::Json(
                R"({"data":null,"errors":[{"code":404,"msg":"trace not found"}]})", 404);
          }};
}

BackendCase JaegerV3() {
  const std::string id = "2ea75461946a7dd10f2c15ab36a076cb";
  return {"jaeger_v3", "type: jaeger\n  api: v3\n", id, [id](const ReceivedRequest& r) {
            if (r.target == "/api/v3/traces/" + id) {
              return FakeReply::Json(Fixture("jaeger-v3/getTrace-response_hotrod.json"));
            }
            return FakeReply::Json(R"({"error":{"code":5,"message":"trace not found"}})", 404);
          }};
}

BackendCase Tempo() {
  // The kiali capture is a Tempo /api/traces/{id} (v1) answer: this backend is an older Tempo
  // whose /api/v2 paths answer 404, so the source (api: auto) falls back to v1.
  const std::string id = "3ba55609c3cde49649cd77d1f9dcd936";
  return {"tempo", "type: tempo\n  tenant: team-a\n", id, [id](const ReceivedRequest& r) {
            if (r.target.rfind("/api/v2/", 0) == 0) {
              FakeReply reply = FakeReply::Json(TextReply404(), 404);
              reply.content_type = "text/plain; charset=utf-8";
              return reply;
            }
            if (r.target == "/api/traces/" + id && r.Header("x-scope-orgid") == "team-a") {
              return FakeReply::Json(Fixture("tempo/kiali_responseTrace.json"));
            }
            return FakeReply::Json("trace not found", 404);
          }};
}

BackendCase Zipkin() {
  const std::string id = "5aab74dbb904746bb33447baae403ed6";
  return {"zipkin", "type: zipkin\n", id, [id](const ReceivedRequest& r) {
            if (r.target == "/api/v2/trace/" + id) {
              return FakeReply::Json(Fixture("zipkin-lens/messaging.json"));
            }
            return FakeReply::Json("Trace not found", 404);
          }};
}

class ServeBackendsTest : public ::testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    dir_.Write("registry.yaml", R"(default_team: platform
teams:
  platform: {}
  web: {}
  checkout: {}
services:
  frontend: {team: web}
  checkout: {team: checkout}
)");
  }

  // `source` is the trace_source section's body (indented by two), without base_url.
  std::string Config(const std::string& base_url, const std::string& source,
                     const std::string& extra = "") {
    return dir_.Write("tracepager.yaml",
                      "server:\n  listen: [\"127.0.0.1:0\"]\n"
                      "state_dir: state\n"
                      "registry: {path: registry.yaml}\n"
                      "trace_source:\n  " +
                          source + "  base_url: " + base_url + "\n" + extra +
                          "pager: {type: log, path: pages.jsonl}\n");
  }

  // The captured firing webhook (two alerts: CheckoutErrorRateHigh, LatencyP99High), carrying
  // `trace_id` instead of the captured id so that it names the recorded trace.
  static std::string Webhook(const std::string& trace_id) {
    return ReplaceAll(Fixture("alertmanager-captured/firing.raw.json"), kCapturedTrace, trace_id);
  }

  std::vector<std::string> Lines(const std::string& name) {
    std::ifstream in(dir_.path() + "/" + name);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  // Page lines naming the alert `alertname` (the log pager writes one JSON line per page).
  std::vector<std::string> PagesFor(const std::string& alertname) {
    std::vector<std::string> out;
    for (const std::string& line : Lines("pages.jsonl")) {
      if (line.find("\"" + alertname + "\"") != std::string::npos) out.push_back(line);
    }
    return out;
  }

  std::vector<AuditDecision> Decisions() {
    std::vector<AuditDecision> out;
    for (const std::string& line : Lines("state/audit.jsonl")) {
      rapidjson::Document d;
      d.Parse(line.c_str());
      if (d.HasParseError() || !d.IsObject() || Str(d, "type") != "decision") continue;
      AuditDecision a;
      a.raw = line;
      if (d.HasMember("alert")) a.identity = Str(d["alert"], "identity");
      if (d.HasMember("route")) a.kind = Str(d["route"], "decision");
      if (d.HasMember("fetch") && d["fetch"].IsObject()) {
        const rapidjson::Value& f = d["fetch"];
        if (f.HasMember("traces") && f["traces"].IsArray()) {
          for (const rapidjson::Value& t : f["traces"].GetArray()) {
            AuditTrace at;
            at.trace_id = Str(t, "trace_id");
            at.origin = Str(t, "origin");
            at.backend = Str(t, "backend");
            at.error = Str(t, "error");
            at.used = t.HasMember("used") && t["used"].IsBool() && t["used"].GetBool();
            a.traces.push_back(std::move(at));
          }
        }
        if (f.HasMember("search") && f["search"].IsObject()) {
          a.searched = true;
          a.search_error = Str(f["search"], "error");
        }
      }
      out.push_back(std::move(a));
    }
    return out;
  }

  // Waits until both captured alerts have a page and both decisions are in the audit log.
  bool WaitForBothPages(Daemon& d) {
    return d.WaitLog([&](const std::string&) {
      return !PagesFor("CheckoutErrorRateHigh").empty() && !PagesFor("LatencyP99High").empty() &&
             Decisions().size() >= 2;
    });
  }

  TempDir dir_;
};

TEST_P(ServeBackendsTest, CapturedWebhookIsRoutedOnTheBackendsTrace) {
  const BackendCase& c = GetParam();
  FakeBackend backend(c.handler);
  Daemon d(Config(backend.Url(), c.trace_source));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  HttpAnswer a = Request(port, "POST", "/api/v1/alerts/alertmanager", Webhook(c.trace_id));
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_TRUE(WaitForBothPages(d)) << d.log();

  // One page per alert, in the log pager's file.
  EXPECT_EQ(PagesFor("CheckoutErrorRateHigh").size(), 1u);
  EXPECT_EQ(PagesFor("LatencyP99High").size(), 1u);
  // Both decisions routed on the recorded trace, fetched from this backend.
  std::vector<AuditDecision> decisions = Decisions();
  ASSERT_EQ(decisions.size(), 2u);
  const std::string kind = std::string(c.name).rfind("jaeger", 0) == 0 ? "jaeger" : c.name;
  for (const AuditDecision& dec : decisions) {
    SCOPED_TRACE(dec.raw);
    ASSERT_EQ(dec.traces.size(), 1u);
    EXPECT_EQ(dec.traces[0].trace_id, c.trace_id);
    EXPECT_EQ(dec.traces[0].origin, "alert");
    EXPECT_EQ(dec.traces[0].backend, kind);
    EXPECT_TRUE(dec.traces[0].used);
    EXPECT_EQ(dec.traces[0].error, "");
    EXPECT_FALSE(dec.searched);  // the carried id came back: no search
  }
  // The backend was asked for that trace (the cache answers the second decision).
  bool asked = false;
  for (const ReceivedRequest& r : backend.received()) {
    asked = asked || r.target.find(c.trace_id) != std::string::npos;
  }
  EXPECT_TRUE(asked);

  // Per-backend metrics are in the daemon's registry.
  HttpAnswer m = Request(port, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("tracepager_trace_backend_request_duration_seconds_count{backend=\"" +
                        kind + "\"}"),
            std::string::npos)
      << m.body.substr(0, 4000);
  EXPECT_NE(m.body.find("tracepager_trace_backend_errors_total{backend=\"" + kind +
                        "\",kind=\"timeout\"} 0"),
            std::string::npos);

  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
}

// A reload builds a new source: alerts after it are fetched from the newly configured backend.
TEST_P(ServeBackendsTest, ReloadSwitchesToTheNewBackend) {
  const BackendCase& c = GetParam();
  BackendCase other = std::string(c.name) == "zipkin" ? JaegerV3() : Zipkin();
  FakeBackend before(other.handler);
  FakeBackend after(c.handler);
  Daemon d(Config(before.Url(), other.trace_source));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  Config(after.Url(), c.trace_source);
  HttpAnswer r = Request(port, "POST", "/-/reload");
  ASSERT_EQ(r.status, 200) << r.body << d.log();
  HttpAnswer a = Request(port, "POST", "/api/v1/alerts/alertmanager", Webhook(c.trace_id));
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_TRUE(WaitForBothPages(d)) << d.log();
  for (const AuditDecision& dec : Decisions()) {
    SCOPED_TRACE(dec.raw);
    ASSERT_EQ(dec.traces.size(), 1u);
    EXPECT_TRUE(dec.traces[0].used);
  }
  EXPECT_EQ(before.requests(), 0u);
  EXPECT_GE(after.requests(), 1u);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
}

INSTANTIATE_TEST_SUITE_P(Backends, ServeBackendsTest,
                         ::testing::Values(JaegerV1(), JaegerV3(), Tempo(), Zipkin()),
                         [](const ::testing::TestParamInfo<BackendCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

// ---- a backend that misbehaves: the job completes with a fallback page, the reason recorded.

class ServeBackendFailureTest : public ServeBackendsTest {
 protected:
  // Posts the webhook, waits for both fallback pages, and returns the decisions.
  std::vector<AuditDecision> PostAndWaitForFallbacks(Daemon& d, uint16_t port) {
    HttpAnswer a =
        Request(port, "POST", "/api/v1/alerts/alertmanager", Webhook(JaegerV3().trace_id));
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_TRUE(WaitForBothPages(d)) << d.log();
    // Fallback pages go to the alerting services' owners.
    EXPECT_NE(PagesFor("CheckoutErrorRateHigh").at(0).find("\"team\":\"checkout\""),
              std::string::npos);
    EXPECT_NE(PagesFor("LatencyP99High").at(0).find("\"team\":\"web\""), std::string::npos);
    std::vector<AuditDecision> decisions = Decisions();
    EXPECT_EQ(decisions.size(), 2u);
    for (const AuditDecision& dec : decisions) {
      SCOPED_TRACE(dec.raw);
      EXPECT_EQ(dec.kind, "fallback");
      EXPECT_EQ(dec.traces.size(), 1u);
      for (const AuditTrace& t : dec.traces) EXPECT_FALSE(t.used);
    }
    return decisions;
  }
};

TEST_P(ServeBackendFailureTest, BackendDownFallsBackWithTheReason) {
  std::string url;
  {
    FakeBackend gone([](const ReceivedRequest&) { return FakeReply::Json("{}"); });
    url = gone.Url();
  }  // closed: connections to its port are refused
  Daemon d(Config(url,
                  "type: jaeger\n  retries: {max_attempts: 2, initial_backoff: 10ms, "
                  "max_backoff: 20ms}\n"));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  for (const AuditDecision& dec : PostAndWaitForFallbacks(d, port)) {
    SCOPED_TRACE(dec.raw);
    ASSERT_EQ(dec.traces.size(), 1u);
    EXPECT_EQ(dec.traces[0].error.rfind("failed: ", 0), 0u);
    EXPECT_TRUE(dec.searched);  // the carried id did not come back: the window was searched
    EXPECT_FALSE(dec.search_error.empty());
  }
  HttpAnswer m = Request(port, "GET", "/metrics");
  EXPECT_NE(
      m.body.find("tracepager_trace_backend_errors_total{backend=\"jaeger\",kind=\"connect\"}"),
      std::string::npos);
  EXPECT_EQ(
      m.body.find("tracepager_trace_backend_errors_total{backend=\"jaeger\",kind=\"connect\"} "
                  "0\n"),
      std::string::npos);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
}

TEST_P(ServeBackendFailureTest, GarbageAnswersFallBackWithTheReason) {
  FakeBackend backend([](const ReceivedRequest&) {
    FakeReply r = FakeReply::Json("<html><body><h1>502 Bad Gateway</h1></body></html>");
    r.content_type = "text/html";
    return r;
  });
  Daemon d(Config(backend.Url(), "type: jaeger\n"));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  for (const AuditDecision& dec : PostAndWaitForFallbacks(d, port)) {
    SCOPED_TRACE(dec.raw);
    ASSERT_EQ(dec.traces.size(), 1u);
    EXPECT_EQ(dec.traces[0].error.rfind("failed: ", 0), 0u);
    EXPECT_TRUE(dec.searched);
    EXPECT_FALSE(dec.search_error.empty());
  }
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
}

TEST_P(ServeBackendFailureTest, BackendSlowerThanTheDeadlineFallsBackAtTheDeadline) {
  // Accepts, reads the request, never answers.
  FakeBackend backend(
      [](const ReceivedRequest&) { return FakeReply::Of(FakeReply::Action::kSilence); });
  // The job's deadline (1 s) is shorter than the per-request timeout (30 s): only the deadline
  // can end the wait.
  Daemon d(Config(backend.Url(), "type: jaeger\n  timeout: 1s\n  request_timeout: 30s\n"));
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();
  auto start = std::chrono::steady_clock::now();
  for (const AuditDecision& dec : PostAndWaitForFallbacks(d, port)) {
    SCOPED_TRACE(dec.raw);
    ASSERT_EQ(dec.traces.size(), 1u);
    // "deadline: ..." from the collector, or "failed: ... deadline passed ..." when the fetch
    // had joined the other alert's request in flight (the cache coalesces them), whose deadline
    // the HTTP client enforced first.
    EXPECT_NE(dec.traces[0].error.find("deadline"), std::string::npos);
  }
  // Both decisions were made at the deadline, not after the 30 s request timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(25));
  // Shutting down with requests still hanging on the backend is clean.
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
}

INSTANTIATE_TEST_SUITE_P(Jaeger, ServeBackendFailureTest, ::testing::Values(JaegerV3()),
                         [](const ::testing::TestParamInfo<BackendCase>&) {
                           return std::string("jaeger");
                         });

// ---- config

TEST(ServeBackendsConfig, CheckReportsBackendProblemsWithFileAndLine) {
  TempDir dir;
  dir.Write("registry.yaml", "default_team: platform\nteams:\n  platform: {}\n");
  std::string config = dir.Write("tp.yaml", R"(server:
  listen: ["127.0.0.1:9700"]
registry: {path: registry.yaml}
trace_source:
  type: tempo
  base_url: "tempo:3200"
  tenant: "a b"
pager: {type: log}
)");
  testing::ProcessResult r = testing::RunTracepager({"check", "--config", config});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(config + ":6: config error at trace_source.base_url: "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(config + ":7: config error at trace_source.tenant: "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("tracepager check: 2 problems in " + config), std::string::npos) << r.err;

  std::string good = dir.Write("ok.yaml", R"(server:
  listen: ["127.0.0.1:9700"]
registry: {path: registry.yaml}
trace_source:
  type: zipkin
  base_url: http://127.0.0.1:9411
  timeout: 5s
pager: {type: log}
)");
  testing::ProcessResult ok = testing::RunTracepager({"check", "--config", good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

}  // namespace
}  // namespace tracepager::daemon
