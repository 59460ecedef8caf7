// Crash safety (issue 8): a bounded stream of distinct Alertmanager webhooks goes to the daemon
// on loopback while the daemon is killed with SIGKILL several times at random moments and
// restarted each time, as systemd would. The sender behaves like Alertmanager: a notification
// that got no 2xx is sent again to the restarted daemon. At the end every alert that received a
// 2xx has been routed and paged under exactly one dedup key (a pager such as PagerDuty
// collapses repeated deliveries of one dedup key; a second dedup key for one alert would be a
// second incident), and nothing acknowledged is lost. The counts are printed.
//
// The fake pager is the daemon's `log` pager: one JSON line per delivery attempt that the pager
// accepted, written before the outbox marks the page sent, so a kill in between shows up here
// as a repeated delivery of the same dedup key, exactly as a real pager would see it.
//
// Kill moments are drawn from a seeded generator (the seed is printed) over the number of
// acknowledged alerts, so the kills land while requests are in flight and workers are routing.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "tests/support/daemon_process.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::DaemonProcess;
using testing::HttpCall;
using testing::TempDir;

constexpr int kAlerts = 400;
constexpr int kKills = 6;

// One Alertmanager v4 notification carrying one firing alert of its own service, so that no
// two alerts share a storm key and each must be paged on its own.
std::string Webhook(int i) {
  std::string n = std::to_string(i);
  return R"({"receiver":"tracepager","status":"firing","alerts":[{"status":"firing","labels":{)"
         R"("alertname":"ErrorRateHigh","service":"svc-)" +
         n + R"(","severity":"page"},"annotations":{"summary":"errors on svc-)" + n +
         R"("},"startsAt":"2026-11-26T21:22:58.885Z","endsAt":"0001-01-01T00:00:00Z",)"
         R"("generatorURL":"http://prometheus.invalid/graph","fingerprint":"crash)" +
         n +
         R"("}],"groupLabels":{"alertname":"ErrorRateHigh"},"commonLabels":{},)"
         R"("commonAnnotations":{},"externalURL":"http://alertmanager.invalid",)"
         R"("version":"4","groupKey":"{}:{alertname=\"ErrorRateHigh\",n=\")" +
         n + R"(\"}","truncatedAlerts":0})";
}

class CrashGauntlet : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("registry.yaml", "default_team: platform\nteams:\n  platform: {}\nservices: {}\n");
    dir_.Write("traces/.keep", "");
    config_ = dir_.Write("tracepager.yaml",
                         "server:\n  listen: [\"127.0.0.1:0\"]\n"
                         "state_dir: state\n"
                         "workers: {count: 2, max_attempts: 1}\n"  // no traces: route at once
                         "registry: {path: registry.yaml}\n"
                         "trace_source: {type: file, dir: traces}\n"
                         "pager: {type: log, path: pages.jsonl}\n");
  }

  // alert identity -> dedup key -> deliveries. A torn last line (a kill mid-write) is skipped.
  std::map<std::string, std::map<std::string, int>> Deliveries() {
    std::map<std::string, std::map<std::string, int>> out;
    std::ifstream in(dir_.path() + "/pages.jsonl");
    std::regex identity("\"alert_identity\":\"([^\"]+)\"");
    std::regex dedup("\"dedup_key\":\"([^\"]+)\"");
    for (std::string line; std::getline(in, line);) {
      std::smatch a, d;
      if (line.empty() || line.back() != '}') continue;
      if (std::regex_search(line, a, identity) && std::regex_search(line, d, dedup)) {
        ++out[a[1]][d[1]];
      }
    }
    return out;
  }

  TempDir dir_;
  std::string config_;
};

TEST_F(CrashGauntlet, EveryAcknowledgedAlertIsPagedExactlyOnceAcrossRandomKills) {
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  std::printf("crash gauntlet: seed %u, %d alerts, %d kills\n", seed, kAlerts, kKills);
  // Kill after these many acknowledgements (distinct, increasing, spread over the stream).
  std::set<int> kill_at;
  std::uniform_int_distribution<int> pick(10, kAlerts - 20);
  while (static_cast<int>(kill_at.size()) < kKills) kill_at.insert(pick(rng));

  std::set<std::string> acknowledged;
  int sent = 0, refused = 0, restarts = 0;
  auto daemon = std::make_unique<DaemonProcess>(config_);
  uint16_t port = daemon->Port();
  ASSERT_NE(port, 0) << daemon->log();

  // The killer runs beside the sender so that a kill lands while a request is on the wire and
  // workers are busy; it is armed by the sender at each chosen acknowledgement count.
  std::atomic<bool> kill_now{false};
  for (int i = 0; i < kAlerts;) {
    ASSERT_LT(sent, kAlerts * 4) << "the sender keeps failing";
    std::thread killer;
    if (kill_now.exchange(false)) {
      pid_t pid = daemon->pid();
      killer = std::thread([pid] { ::kill(pid, SIGKILL); });
    }
    ++sent;
    testing::HttpAnswer a = HttpCall(port, "POST", "/api/v1/alerts/alertmanager", Webhook(i));
    if (killer.joinable()) killer.join();
    if (a.status >= 200 && a.status < 300) {
      acknowledged.insert("am:crash" + std::to_string(i));
      ++i;
      if (kill_at.count(static_cast<int>(acknowledged.size())) != 0) kill_now = true;
      continue;
    }
    // No 2xx: the daemon died under the request (or before it). Restart it, as systemd's
    // Restart= would, and send the same notification again, as Alertmanager would.
    ++refused;
    int status = daemon->Wait();
    ASSERT_EQ(status, 128 + SIGKILL) << "the daemon ended on its own: " << daemon->log();
    daemon = std::make_unique<DaemonProcess>(config_);
    port = daemon->Port();
    ASSERT_NE(port, 0) << daemon->log();
    ++restarts;
  }
  EXPECT_EQ(restarts, kKills);

  // Every acknowledged alert gets paged; each page logs a page_sent line, which wakes the wait.
  EXPECT_TRUE(daemon->WaitLog([&](const std::string&) {
    std::map<std::string, std::map<std::string, int>> d = Deliveries();
    for (const std::string& id : acknowledged) {
      if (d.count(id) == 0) return false;
    }
    return true;
  })) << daemon->log();
  daemon->Signal(SIGTERM);
  EXPECT_EQ(daemon->Wait(), 0) << daemon->log();

  std::map<std::string, std::map<std::string, int>> d = Deliveries();
  int paged = 0, lost = 0, duplicates = 0, redeliveries = 0;
  for (const std::string& id : acknowledged) {
    auto it = d.find(id);
    if (it == d.end()) {
      ++lost;
      ADD_FAILURE() << "acknowledged but never paged: " << id;
      continue;
    }
    ++paged;
    if (it->second.size() != 1) {
      ++duplicates;
      ADD_FAILURE() << id << " was paged under " << it->second.size() << " dedup keys";
    }
    for (const auto& [key, n] : it->second) redeliveries += n - 1;
  }
  int unexpected = 0;
  for (const auto& [id, keys] : d) unexpected += acknowledged.count(id) == 0 ? 1 : 0;
  std::printf(
      "crash gauntlet: sent %d, acknowledged %zu, refused %d, restarts %d, paged %d, "
      "duplicates %d, lost %d (repeated deliveries of one dedup key, collapsed by the pager: %d; "
      "paged without acknowledgement: %d)\n",
      sent, acknowledged.size(), refused, restarts, paged, duplicates, lost, redeliveries,
      unexpected);
  EXPECT_EQ(static_cast<int>(acknowledged.size()), kAlerts);
  EXPECT_EQ(paged, kAlerts);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicates, 0);
  // An alert the daemon stored but could not acknowledge before dying is paged too (it was sent
  // again and deduplicated): never a page for an alert nobody sent.
  for (const auto& [id, keys] : d) EXPECT_EQ(id.rfind("am:crash", 0), 0u) << id;
}

}  // namespace
}  // namespace tracepager::daemon
