// The audit web page in a real browser: headless Chromium (Debian's `chromium`) loads the page
// from AuditApi served on 127.0.0.1, from a log written by AuditLogWriter holding the decision
// Route makes from the example trace and registry, and the test checks the rendered DOM: the
// decision list and the selected decision's tree and timeline.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include "daemon/audit_api.h"
#include "daemon/audit_log.h"
#include "tests/support/audit_samples.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::ExampleRouteDecision;
using testing::kSampleBaseNs;
using testing::SampleDecisionAudit;
using testing::SampleDelivery;
using testing::SampleFallbackDecision;
using testing::TempDir;

// A minimal HTTP/1.1 server on 127.0.0.1:0 for AuditApi: one thread per connection, one
// request per connection (Connection: close). Enough for a browser loading one page.
class LoopbackServer {
 public:
  explicit LoopbackServer(const AuditApi& api) : api_(api) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 64) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~LoopbackServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(fd_);
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : connections_) t.join();
  }

  uint16_t port() const { return port_; }

  std::vector<std::string> targets() const {
    std::lock_guard<std::mutex> lock(mu_);
    return targets_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stop_ || errno == EINVAL) return;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      connections_.emplace_back([this, c] { Serve(c); });
    }
  }

  void Serve(int c) {
    std::string request;
    char buf[4096];
    // Browsers open spare connections they may never use: give up on a silent one after 5 s.
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) break;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    const size_t line_end = request.find("\r\n");
    if (line_end != std::string::npos) {
      std::string line = request.substr(0, line_end);
      size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
      if (sp1 != std::string::npos && sp2 > sp1) {
        const std::string method = line.substr(0, sp1);
        const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        std::vector<std::pair<std::string, std::string>> headers;
        size_t pos = line_end + 2;
        while (true) {
          size_t end = request.find("\r\n", pos);
          if (end == std::string::npos || end == pos) break;
          std::string h = request.substr(pos, end - pos);
          size_t colon = h.find(':');
          if (colon != std::string::npos) {
            size_t v = h.find_first_not_of(' ', colon + 1);
            headers.emplace_back(h.substr(0, colon), v == std::string::npos ? "" : h.substr(v));
          }
          pos = end + 2;
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          targets_.push_back(target);
        }
        AuditHttpResponse r = api_.Handle(method, target, headers);
        std::string out =
            "HTTP/1.1 " + std::to_string(r.status) + " X\r\nContent-Type: " + r.content_type +
            "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\nConnection: close\r\n";
        for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
        out += "\r\n" + r.body;
        std::string_view rest = out;
        while (!rest.empty()) {
          ssize_t n = ::write(c, rest.data(), rest.size());
          if (n <= 0) break;
          rest.remove_prefix(static_cast<size_t>(n));
        }
      }
    }
    ::close(c);
  }

  const AuditApi& api_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> connections_;
  std::vector<std::string> targets_;
};

std::string FindChromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

std::vector<std::string> ChromiumArgs(const std::string& chromium, const std::string& profile) {
  return {chromium, "--headless", "--no-sandbox", "--disable-gpu",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--no-first-run", "--user-data-dir=" + profile,
          // Lets the page's fetches finish before the DOM is dumped: virtual time stands still
          // while network requests are pending.
          "--virtual-time-budget=20000", "--window-size=1400,1000"};
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

TEST(AuditWebPage, ListAndDecisionTreeRenderInChromium) {
  const std::string chromium = FindChromium();
  ASSERT_FALSE(chromium.empty()) << "chromium is not installed (scripts/setup installs it)";
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  auto writer = AuditLogWriter::Open(options);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  DecisionAudit routed =
      SampleDecisionAudit("20241126T194000.000000Z-beef", kSampleBaseNs, ExampleRouteDecision());
  DecisionAudit fallback =
      SampleDecisionAudit("20241126T194500.000000Z-beef", kSampleBaseNs + 300'000'000'000,
                          SampleFallbackDecision("frontend", "web"));
  // Labels are untrusted: markup in them must be shown as text, never run or parsed.
  fallback.alert.name = "<img src=x onerror=alert(1)>Down";
  ASSERT_TRUE((*writer)->AppendDecision(routed).ok());
  ASSERT_TRUE((*writer)
                  ->AppendDelivery(
                      SampleDelivery(routed, "platform", routed.alert.received_ns + 1'500'000'000))
                  .ok());
  ASSERT_TRUE((*writer)->AppendDecision(fallback).ok());
  ASSERT_TRUE((*writer)->Close().ok());

  AuditApiOptions api_options;
  api_options.log_path = options.path;
  AuditApi api(api_options);
  LoopbackServer server(api);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/#" + routed.id;

  std::vector<std::string> args = ChromiumArgs(chromium, dir.path() + "/profile");
  args.push_back("--dump-dom");
  args.push_back(url);
  testing::ProcessResult r =
      testing::RunProcess(args, "", {{"HOME", dir.path()}}, std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& dom = r.out;

  EXPECT_NE(dom.find("<body data-state=\"ready\""), std::string::npos) << dom;
  // The list: both decisions, newest first.
  const size_t row_fallback = dom.find("data-decision-id=\"" + fallback.id + "\"");
  const size_t row_routed = dom.find("data-decision-id=\"" + routed.id + "\"");
  ASSERT_NE(row_fallback, std::string::npos) << dom;
  ASSERT_NE(row_routed, std::string::npos) << dom;
  EXPECT_LT(row_fallback, row_routed);
  EXPECT_NE(dom.find("&lt;img src=x onerror=alert(1)&gt;Down"), std::string::npos);
  EXPECT_EQ(dom.find("<img"), std::string::npos);
  // The selected decision: who was paged, the naive answer, the tree and the timeline.
  EXPECT_NE(dom.find("id=\"detail\" aria-label=\"decision\" data-decision-id=\"" + routed.id),
            std::string::npos)
      << dom;
  EXPECT_NE(dom.find("PAGE platform"), std::string::npos);
  EXPECT_NE(dom.find("the naive rule would have paged payments via payment; changed by "
                     "timeout_masking, uninstrumented"),
            std::string::npos);
  EXPECT_EQ(Count(dom, "class=\"tree-node failed\""), 6u) << dom;
  // Nesting: each step's <li> is inside the previous one's.
  std::regex nested(
      "data-service=\"frontend\".*<ul>.*data-service=\"checkout\".*<ul>.*"
      "data-service=\"payment\".*<ul>.*data-span-id=\"a1b2c3d4e5f60008\"");
  EXPECT_TRUE(std::regex_search(dom, nested)) << dom;
  EXPECT_NE(dom.find("FAILED: timeout acquiring connection"), std::string::npos);
  EXPECT_NE(dom.find("culprit postgresql/payments (primary)"), std::string::npos);
  EXPECT_EQ(Count(dom, "class=\"bar failed\""), 6u) << dom;
  EXPECT_NE(dom.find("class=\"delivery\""), std::string::npos);
  EXPECT_NE(dom.find("pd-platform"), std::string::npos);

  const std::vector<std::string> targets = server.targets();
  EXPECT_NE(std::find(targets.begin(), targets.end(), "/api/v1/decisions/" + routed.id),
            targets.end());

  // A screenshot for people (kept next to the test binary's working directory).
  std::vector<std::string> shot = ChromiumArgs(chromium, dir.path() + "/profile2");
  const std::string png = std::filesystem::absolute("audit_web_page.png").string();
  shot.push_back("--screenshot=" + png);
  shot.push_back(url);
  testing::ProcessResult s =
      testing::RunProcess(shot, "", {{"HOME", dir.path()}}, std::chrono::seconds(120));
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_TRUE(std::filesystem::exists(png)) << s.err;
  if (std::filesystem::exists(png)) {
    EXPECT_GT(std::filesystem::file_size(png), 10000u);
  }
}

}  // namespace
}  // namespace tracepager::daemon
