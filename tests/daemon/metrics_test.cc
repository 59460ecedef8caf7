// Metrics (daemon/metrics.h): the exposition parses as Prometheus text format 0.0.4, holds every
// family with the right type, counts what was recorded, and is served by the HTTP server.
#include "daemon/metrics.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "daemon/http_server.h"
#include "tests/daemon/http_test_client.h"

namespace tracepager::daemon {
namespace {

namespace http = boost::beast::http;
using tracepager::testing::MakeRequest;
using tracepager::testing::TestClient;

struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram|...
  std::set<std::string> helps;
  std::map<std::string, double> samples;  // "name{labels}" exactly as written -> value
  std::vector<std::string> errors;
};

bool IsNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

// Reads a metric name at `pos`; empty if there is none.
std::string ReadName(const std::string& line, std::size_t& pos) {
  const std::size_t start = pos;
  if (pos < line.size() && IsNameStart(line[pos])) {
    while (pos < line.size() && IsNameChar(line[pos])) ++pos;
  }
  return line.substr(start, pos - start);
}

// Reads `{name="value",...}` at `pos` (escapes \\, \" and \n); false if malformed.
bool ReadLabels(const std::string& line, std::size_t& pos) {
  if (pos >= line.size() || line[pos] != '{') return true;  // no labels
  ++pos;
  while (pos < line.size() && line[pos] != '}') {
    if (ReadName(line, pos).empty() || line.compare(pos, 2, "=\"") != 0) return false;
    pos += 2;
    while (pos < line.size() && line[pos] != '"') pos += line[pos] == '\\' ? 2 : 1;
    if (pos >= line.size()) return false;
    ++pos;
    if (pos < line.size() && line[pos] == ',') ++pos;
  }
  if (pos >= line.size()) return false;
  ++pos;
  return true;
}

// A strict reader of the text format: every line is HELP, TYPE or a sample, every sample
// belongs to a family with a TYPE, and every value parses as a number.
Exposition Parse(const std::string& text) {
  Exposition out;
  static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                               "untyped"};
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      std::size_t pos = 7;
      std::string name = ReadName(line, pos);
      if (name.empty() || pos >= line.size() || line[pos] != ' ') {
        out.errors.push_back("bad comment: " + line);
      } else if (line[2] == 'H') {
        out.helps.insert(name);
      } else if (!kTypes.count(line.substr(pos + 1))) {
        out.errors.push_back("bad type: " + line);
      } else {
        out.types[name] = line.substr(pos + 1);
      }
      continue;
    }
    std::size_t pos = 0;
    std::string name = ReadName(line, pos);
    const std::size_t labels_start = pos;
    if (name.empty() || !ReadLabels(line, pos) || pos >= line.size() || line[pos] != ' ') {
      out.errors.push_back("unparsable line: " + line);
      continue;
    }
    const std::string labels = line.substr(labels_start, pos - labels_start);
    std::string family = name;
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (!out.types.count(family) && family.size() > suffix.size() &&
          family.compare(family.size() - suffix.size(), suffix.size(), suffix) == 0) {
        family = family.substr(0, family.size() - suffix.size());
      }
    }
    if (!out.types.count(family)) out.errors.push_back("sample without TYPE: " + line);
    std::string value = line.substr(pos + 1);
    value = value.substr(0, value.find(' '));  // an optional timestamp follows
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0') out.errors.push_back("bad value: " + line);
    out.samples[name + labels] = v;
  }
  return out;
}

TEST(Metrics, ExpositionHasEveryFamilyBeforeAnyEvent) {
  Metrics metrics("1.2.3");
  Exposition e = Parse(metrics.Exposition());
  EXPECT_TRUE(e.errors.empty()) << e.errors.front();
  const std::map<std::string, std::string> expected = {
      {"tracepager_alerts_received_total", "counter"},
      {"tracepager_requests_rejected_total", "counter"},
      {"tracepager_jobs_queued", "gauge"},
      {"tracepager_jobs_in_flight", "gauge"},
      {"tracepager_webhooks_paced_total", "counter"},
      {"tracepager_webhooks_pacing", "gauge"},
      {"tracepager_jobs_dead_total", "counter"},
      {"tracepager_decisions_total", "counter"},
      {"tracepager_pages_total", "counter"},
      {"tracepager_trace_fetch_duration_seconds", "histogram"},
      {"tracepager_routing_duration_seconds", "histogram"},
      {"tracepager_config_reloads_total", "counter"},
      {"tracepager_config_last_reload_successful", "gauge"},
      {"tracepager_config_last_reload_success_timestamp_seconds", "gauge"},
      {"tracepager_build_info", "gauge"},
  };
  for (const auto& [family, type] : expected) {
    SCOPED_TRACE(family);
    EXPECT_EQ(e.types[family], type);
    EXPECT_TRUE(e.helps.count(family));
  }
  EXPECT_EQ(e.samples.at(R"(tracepager_build_info{version="1.2.3"})"), 1);
  EXPECT_EQ(e.samples.at(R"(tracepager_requests_rejected_total{reason="body_too_large"})"), 0);
  EXPECT_EQ(e.samples.at(R"(tracepager_decisions_total{outcome="fallback"})"), 0);
  EXPECT_EQ(e.samples.at(R"(tracepager_alerts_received_total{endpoint="grafana"})"), 0);
  EXPECT_EQ(e.samples.at("tracepager_config_last_reload_successful"), 1);
  EXPECT_EQ(e.samples.at("tracepager_routing_duration_seconds_count"), 0);
}

TEST(Metrics, CountsWhatIsRecorded) {
  Metrics metrics("1.2.3");
  metrics.AlertsReceived("alertmanager", 2);
  metrics.AlertsReceived("alertmanager");
  metrics.Rejected(HttpRejectReason::kUnauthorized);
  metrics.Rejected("store_unavailable");
  metrics.SetJobsQueued(7);
  metrics.SetJobsInFlight(1);
  metrics.AddJobsInFlight(2);
  metrics.AddJobsInFlight(-1);
  metrics.SetPacing(5, 3);
  metrics.SetPacing(9, 1);  // a running total: counted once
  metrics.SetPacing(9, 0);
  metrics.SetJobsDead(2);
  metrics.SetJobsDead(2);  // a running total: counted once
  metrics.Decision(DecisionOutcome::kRouted);
  metrics.Decision(DecisionOutcome::kRouted);
  metrics.Decision(DecisionOutcome::kError);
  metrics.Page("sent");
  metrics.Page("deduplicated");
  metrics.ObserveTraceFetch(std::chrono::milliseconds(30));
  metrics.ObserveRouting(std::chrono::microseconds(300));
  metrics.ObserveRouting(std::chrono::seconds(2));
  metrics.ConfigReload(true, std::chrono::system_clock::time_point(std::chrono::seconds(1000)));
  metrics.ConfigReload(false, std::chrono::system_clock::time_point(std::chrono::seconds(2000)));

  Exposition e = Parse(metrics.Exposition());
  ASSERT_TRUE(e.errors.empty()) << e.errors.front();
  EXPECT_EQ(e.samples.at(R"(tracepager_alerts_received_total{endpoint="alertmanager"})"), 3);
  EXPECT_EQ(e.samples.at(R"(tracepager_requests_rejected_total{reason="unauthorized"})"), 1);
  EXPECT_EQ(e.samples.at(R"(tracepager_requests_rejected_total{reason="store_unavailable"})"), 1);
  EXPECT_EQ(e.samples.at("tracepager_jobs_queued"), 7);
  EXPECT_EQ(e.samples.at("tracepager_jobs_in_flight"), 2);
  EXPECT_EQ(e.samples.at("tracepager_webhooks_paced_total"), 9);
  EXPECT_EQ(e.samples.at("tracepager_webhooks_pacing"), 0);
  EXPECT_EQ(e.samples.at("tracepager_jobs_dead_total"), 2);
  EXPECT_EQ(e.samples.at(R"(tracepager_decisions_total{outcome="routed"})"), 2);
  EXPECT_EQ(e.samples.at(R"(tracepager_decisions_total{outcome="error"})"), 1);
  EXPECT_EQ(e.samples.at(R"(tracepager_pages_total{result="sent"})"), 1);
  EXPECT_EQ(e.samples.at(R"(tracepager_pages_total{result="deduplicated"})"), 1);
  EXPECT_EQ(e.samples.at("tracepager_trace_fetch_duration_seconds_count"), 1);
  EXPECT_DOUBLE_EQ(e.samples.at("tracepager_trace_fetch_duration_seconds_sum"), 0.03);
  EXPECT_EQ(e.samples.at(R"(tracepager_trace_fetch_duration_seconds_bucket{le="0.025"})"), 0);
  EXPECT_EQ(e.samples.at(R"(tracepager_trace_fetch_duration_seconds_bucket{le="0.05"})"), 1);
  EXPECT_EQ(e.samples.at("tracepager_routing_duration_seconds_count"), 2);
  EXPECT_EQ(e.samples.at(R"(tracepager_routing_duration_seconds_bucket{le="0.0005"})"), 1);
  EXPECT_EQ(e.samples.at(R"(tracepager_routing_duration_seconds_bucket{le="+Inf"})"), 2);
  EXPECT_EQ(e.samples.at(R"(tracepager_config_reloads_total{result="ok"})"), 1);
  EXPECT_EQ(e.samples.at(R"(tracepager_config_reloads_total{result="failed"})"), 1);
  EXPECT_EQ(e.samples.at("tracepager_config_last_reload_successful"), 0);
  EXPECT_EQ(e.samples.at("tracepager_config_last_reload_success_timestamp_seconds"), 1000);
}

TEST(Metrics, ServedOverHttpAndCountingServerRejections) {
  auto metrics = std::make_shared<Metrics>("9.9.9");
  HttpServerOptions o;
  o.listeners = {{"127.0.0.1", 0, false}};
  o.on_reject = [metrics](HttpRejectReason r) { metrics->Rejected(r); };
  HttpServer server(o);
  HttpRouteOptions open;
  open.require_auth = false;
  server.Handle("GET", "/metrics", open, MetricsHttpHandler(metrics));
  server.Handle("POST", "/api/v1/alerts", HttpRouteOptions{},
                [](const HttpRequest&, HttpResponder r) { r.Send(HttpResponse{}); });
  ASSERT_TRUE(server.Start().ok());
  const uint16_t port = server.BoundListeners()[0].port;

  TestClient c("127.0.0.1", port);
  ASSERT_TRUE(c.Send(MakeRequest(http::verb::get, "/missing")));
  TestClient c2("127.0.0.1", port);
  ASSERT_TRUE(c2.Send(MakeRequest(http::verb::post, "/api/v1/alerts", "{}", "no-such-token")));
  TestClient c3("127.0.0.1", port);
  auto res = c3.Send(MakeRequest(http::verb::get, "/metrics"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ((*res)[http::field::content_type], Metrics::kContentType);
  Exposition e = Parse(res->body());
  ASSERT_TRUE(e.errors.empty()) << e.errors.front();
  EXPECT_EQ(e.samples.at(R"(tracepager_requests_rejected_total{reason="not_found"})"), 1);
  EXPECT_EQ(e.samples.at(R"(tracepager_requests_rejected_total{reason="unauthorized"})"), 1);
  EXPECT_EQ(e.samples.at(R"(tracepager_build_info{version="9.9.9"})"), 1);
}

}  // namespace
}  // namespace tracepager::daemon
