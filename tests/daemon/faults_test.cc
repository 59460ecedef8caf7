// Faults the daemon must survive with an asserted outcome (issue 8): the state directory's file
// system filling up, and a broken config reloaded while traffic flows. (Trace backend and pager
// faults are exercised against their fakes in serve_backends_test and serve_pagers_test.)
//
// The full file system is a small tmpfs the test mounts over the state directory (the tests
// run as root, as scripts/test does in CI).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "tests/support/daemon_process.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::DaemonProcess;
using testing::HttpAnswer;
using testing::HttpCall;
using testing::TempDir;

// A generic-form alert of its own service, with `pad` bytes of annotation so that a few hundred
// of them need megabytes.
std::string Alert(const std::string& id, size_t pad = 0) {
  return R"({"service":"svc-)" + id + R"(","id":")" + id +
         R"(","summary":"errors","annotations":{"pad":")" + std::string(pad, 'x') + R"("}})";
}

class FaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("registry.yaml", "default_team: platform\nteams:\n  platform: {}\nservices: {}\n");
    dir_.Write("traces/.keep", "");
  }

  std::string WriteConfig(const std::string& extra = "") {
    return dir_.Write("tracepager.yaml",
                      "server:\n  listen: [\"127.0.0.1:0\"]\n"
                      "state_dir: state\n"
                      // No traces exist here: route on the first attempt instead of waiting
                      // for late ones.
                      "workers: {max_attempts: 1}\n"
                      "registry: {path: registry.yaml}\n"
                      "trace_source: {type: file, dir: traces}\n"
                      "pager: {type: log, path: pages.jsonl}\n" +
                          extra);
  }

  std::set<std::string> Paged() {
    std::set<std::string> out;
    std::ifstream in(dir_.path() + "/pages.jsonl");
    std::regex re("\"alert_identity\":\"([^\"]+)\"");
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (std::regex_search(line, m, re)) out.insert(m[1]);
    }
    return out;
  }

  bool AllPaged(DaemonProcess& d, const std::set<std::string>& ids) {
    return d.WaitLog([&](const std::string&) {
      std::set<std::string> paged = Paged();
      for (const std::string& id : ids) {
        if (paged.count(id) == 0) return false;
      }
      return true;
    });
  }

  TempDir dir_;
};

class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, const char* size) : path_(path) {
    std::string opts = std::string("size=") + size + ",mode=0700";
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

// Writes zeros to `path` until the file system says no; returns the bytes written.
size_t FillUp(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::string chunk(4096, '\0');
  size_t total = 0;
  while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) {
    total += chunk.size();
    if (std::fflush(f) != 0) break;
  }
  std::fclose(f);
  return total;
}

std::string IntegrityCheck(const std::string& db_path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string e = db ? sqlite3_errmsg(db) : "open failed";
    sqlite3_close(db);
    return e;
  }
  std::string out;
  sqlite3_exec(
      db, "PRAGMA integrity_check",
      [](void* o, int n, char** v, char**) {
        for (int i = 0; i < n; ++i) *static_cast<std::string*>(o) += v[i] ? v[i] : "";
        return 0;
      },
      &out, nullptr);
  sqlite3_close(db);
  return out;
}

TEST_F(FaultsTest, AFullStateFileSystemAnswers503KeepsWhatWasStoredAndRecovers) {
  const std::string state = dir_.path() + "/state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  TmpfsMount fs(state, "6m");
  ASSERT_TRUE(fs.mounted()) << "cannot mount a tmpfs (the tests run as root): " << fs.error();
  std::string config = WriteConfig();
  DaemonProcess d(config);
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();

  // Before: stored, acknowledged, paged.
  std::set<std::string> before;
  for (int i = 0; i < 10; ++i) {
    std::string id = "before-" + std::to_string(i);
    ASSERT_EQ(HttpCall(port, "POST", "/api/v1/alerts", Alert(id)).status, 200) << id;
    before.insert("generic:" + id);
  }
  ASSERT_TRUE(AllPaged(d, before)) << d.log();

  // Full: every answer is 2xx (it still fit) or 503 (so senders retry), never anything else,
  // and the full disk is reached within a bounded number of alerts.
  ASSERT_GT(FillUp(state + "/filler"), 0u);
  std::set<std::string> stored_while_full;
  int refused = 0;
  for (int i = 0; i < 400 && refused < 5; ++i) {
    std::string id = "full-" + std::to_string(i);
    HttpAnswer a = HttpCall(port, "POST", "/api/v1/alerts", Alert(id, 16 * 1024));
    if (a.status == 200) {
      stored_while_full.insert("generic:" + id);
    } else {
      EXPECT_EQ(a.status, 503) << a.body;
      EXPECT_NE(a.body.find("\"error\""), std::string::npos) << a.body;
      ++refused;
    }
  }
  EXPECT_GE(refused, 5) << "the full file system never refused an alert";
  EXPECT_EQ(HttpCall(port, "GET", "/healthz").status, 200) << "the process stays alive";

  // Space returns: new alerts are accepted again, and everything acknowledged is paged.
  ASSERT_EQ(std::remove((state + "/filler").c_str()), 0);
  std::set<std::string> after;
  for (int i = 0; i < 10; ++i) {
    std::string id = "after-" + std::to_string(i);
    HttpAnswer a = HttpCall(port, "POST", "/api/v1/alerts", Alert(id));
    ASSERT_EQ(a.status, 200) << id << ": " << a.body << "\n" << d.log();
    after.insert("generic:" + id);
  }
  std::set<std::string> all = before;
  all.insert(stored_while_full.begin(), stored_while_full.end());
  all.insert(after.begin(), after.end());
  EXPECT_TRUE(AllPaged(d, all)) << d.log();
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
  // Nothing stored was corrupted.
  EXPECT_EQ(IntegrityCheck(state + "/tracepager.db"), "ok");
  EXPECT_EQ(IntegrityCheck(state + "/outbox.db"), "ok");
  std::printf(
      "disk full: %zu stored before, %zu stored while filling, %d refused with 503, %zu "
      "after space returned; all paged\n",
      before.size(), stored_while_full.size(), refused, after.size());
}

TEST_F(FaultsTest, ABrokenConfigReloadedWhileTrafficFlowsLosesNothing) {
  std::string config = WriteConfig();
  const std::string good = testing::ReadFile(config);
  DaemonProcess d(config);
  uint16_t port = d.Port();
  ASSERT_NE(port, 0) << d.log();

  constexpr int kAlerts = 120;
  std::atomic<int> acknowledged{0};
  std::atomic<int> refused{0};
  std::thread sender([&] {
    for (int i = 0; i < kAlerts; ++i) {
      HttpAnswer a = HttpCall(port, "POST", "/api/v1/alerts", Alert("r" + std::to_string(i)));
      (a.status == 200 ? acknowledged : refused).fetch_add(1);
    }
  });
  // While the sender runs: a file that is not YAML, one with an unknown key, one whose
  // registry is missing; each reload fails and the old config keeps serving. Then a good one.
  const char* broken[] = {"server: [unclosed\n", "routng: {}\n", nullptr};
  int failed = 0;
  for (const char* b : broken) {
    if (b != nullptr) {
      dir_.Write("tracepager.yaml", good + b);
    } else {
      dir_.Write("tracepager.yaml",
                 "server:\n  listen: [\"127.0.0.1:0\"]\nstate_dir: state\n"
                 "registry: {path: missing-registry.yaml}\n"
                 "trace_source: {type: file, dir: traces}\n"
                 "pager: {type: log, path: pages.jsonl}\n");
    }
    HttpAnswer r = HttpCall(port, "POST", "/-/reload");
    EXPECT_EQ(r.status, 400) << r.body;
    ++failed;
    EXPECT_TRUE(d.WaitFor("reload_failed", static_cast<size_t>(failed))) << d.log();
  }
  dir_.Write("tracepager.yaml", good);
  d.Signal(SIGHUP);
  EXPECT_TRUE(d.WaitFor("reloaded config=")) << d.log();
  sender.join();
  EXPECT_EQ(acknowledged.load(), kAlerts);
  EXPECT_EQ(refused.load(), 0);
  std::set<std::string> all;
  for (int i = 0; i < kAlerts; ++i) all.insert("generic:r" + std::to_string(i));
  EXPECT_TRUE(AllPaged(d, all)) << d.log();
  HttpAnswer metrics = HttpCall(port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("tracepager_config_reloads_total{result=\"failed\"} 3"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("tracepager_config_last_reload_successful 1"), std::string::npos);
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.log();
}

}  // namespace
}  // namespace tracepager::daemon
