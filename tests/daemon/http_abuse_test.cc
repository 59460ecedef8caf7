// Hostile clients against `tracepager serve` as a real process over loopback: slowloris,
// oversized headers, pipelined garbage, idle connections up to and past max_connections, and
// wrong bearer tokens at a high rate. Each attack runs on its own thread while the test thread
// plays a legitimate client (GET /healthz, and a real generic alert POST with the right token)
// that must keep getting correct answers, each within kLegitBound. The daemon is synchronised
// with through its log and its answers; the only timer is the slowloris trickle pace, which is
// the attack itself.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/daemon_process.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using testing::DaemonProcess;
using testing::HttpAnswer;
using testing::HttpCall;
using testing::TempDir;

constexpr auto kWait = std::chrono::seconds(60);  // safety cap on every wait, never a delay
// The longest a legitimate request may take while an attack runs (ASan, 2 loaded cores).
constexpr auto kLegitBound = std::chrono::seconds(5);
constexpr const char* kToken = "abuse-test-token-1";
// Small limits so that the attacks reach them quickly: header_timeout cuts slow and idle
// connections, max_connections is reachable with a few dozen sockets.
constexpr int kMaxConnections = 48;
constexpr auto kHeaderTimeout = std::chrono::seconds(3);

// A client socket with send/receive timeouts (a safety cap: a silent server fails the test).
int Connect(uint16_t port) {
  int fd = testing::ConnectLoopback(port);
  if (fd < 0) return -1;
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

// Sends as much of `bytes` as the peer takes; false when it stopped taking them.
bool SendAll(int fd, std::string_view bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Reads HTTP/1.1 responses one after another from a connection (the daemon always sends
// Content-Length), for pipelining and for reading an answer without waiting for the close.
class ResponseReader {
 public:
  explicit ResponseReader(int fd) : fd_(fd) {}

  std::optional<HttpAnswer> Next() {
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    if (buffer_.rfind("HTTP/1.", 0) != 0 || buffer_.size() < 12) return std::nullopt;
    HttpAnswer answer;
    answer.status = std::atoi(buffer_.c_str() + 9);
    std::smatch m;
    std::string head = buffer_.substr(0, header_end);
    size_t length = 0;
    if (std::regex_search(head, m, std::regex("\r\n[Cc]ontent-[Ll]ength: *([0-9]+)"))) {
      length = std::stoul(m[1]);
    }
    while (buffer_.size() < header_end + 4 + length) {
      if (!Fill()) return std::nullopt;
    }
    answer.body = buffer_.substr(header_end + 4, length);
    buffer_.erase(0, header_end + 4 + length);
    return answer;
  }

  // True when the server closes the connection (EOF or reset) with no further bytes.
  bool ClosedByServer() {
    if (!buffer_.empty()) return false;
    char c;
    for (;;) {
      ssize_t n = ::recv(fd_, &c, 1, 0);
      if (n < 0 && errno == EINTR) continue;
      return n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE));
    }
  }

 private:
  bool Fill() {
    char chunk[16384];
    for (;;) {
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
      return true;
    }
  }

  int fd_;
  std::string buffer_;
};

// A one-shot flag with a bounded wait, for handing phases between the attacker and the test.
class Signal {
 public:
  void Set() {
    std::lock_guard<std::mutex> lk(mu_);
    set_ = true;
    cv_.notify_all();
  }
  bool IsSet() {
    std::lock_guard<std::mutex> lk(mu_);
    return set_;
  }
  bool Wait() {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, kWait, [&] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

class HttpAbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("token", std::string(kToken) + "\n");
    dir_.Write("registry.yaml",
               "default_team: platform\nteams:\n  platform: {}\n"
               "services:\n  checkout: {team: platform}\n");
    dir_.Write("traces/.keep", "");
    config_ = dir_.Write(
        "tracepager.yaml",
        "server:\n"
        "  listen: [\"127.0.0.1:0\"]\n"
        "  max_connections: " +
            std::to_string(kMaxConnections) +
            "\n"
            "  header_timeout: " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::milliseconds>(kHeaderTimeout).count()) +
            "ms\n"
            "  body_timeout: 2s\n"
            "  idle_timeout: 2s\n"
            "  auth:\n    bearer_tokens: [{file: token}]\n    open_health: true\n"
            "state_dir: state\n"
            "registry: {path: registry.yaml}\n"
            "trace_source: {type: file, dir: traces}\n"
            "pager: {type: log, path: pages.jsonl}\n");
    daemon_.emplace(config_);
    port_ = daemon_->Port();
    ASSERT_NE(port_, 0) << daemon_->log();
  }

  void TearDown() override {
    if (daemon_) {
      daemon_->Signal(SIGTERM);
      EXPECT_EQ(daemon_->Wait(), 0) << daemon_->log();
    }
  }

  // One legitimate round: /healthz answers 200, and a real alert with the right token
  // is accepted (2xx, "accepted"), each within kLegitBound. Returns false (with a failure
  // recorded) otherwise. `allow_connection_limit`: a 503 connection_limit answer is also correct
  // (the daemon is at max_connections on purpose).
  bool LegitRound(bool allow_connection_limit = false) {
    auto timed = [&](const std::function<HttpAnswer()>& call, const char* what) {
      auto start = Clock::now();
      HttpAnswer a = call();
      auto took = Clock::now() - start;
      EXPECT_LE(took, kLegitBound)
          << what << " took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
          << " ms";
      return a;
    };
    auto limited = [&](const HttpAnswer& a) {
      return allow_connection_limit && a.status == 503 &&
             a.body.find("connection_limit") != std::string::npos;
    };
    HttpAnswer health = timed([&] { return HttpCall(port_, "GET", "/healthz"); }, "/healthz");
    if (!limited(health)) {
      EXPECT_EQ(health.status, 200) << health.body;
      if (health.status != 200) return false;
    }
    std::string id = "legit-" + std::to_string(++legit_sequence_);
    HttpAnswer alert = timed(
        [&] {
          return HttpCall(port_, "POST", "/api/v1/alerts",
                          R"({"service":"checkout","id":")" + id + R"("})",
                          {std::string("Authorization: Bearer ") + kToken});
        },
        "alert POST");
    if (limited(alert)) return true;
    EXPECT_GE(alert.status, 200) << alert.body;
    EXPECT_LT(alert.status, 300) << alert.body;
    EXPECT_NE(alert.body.find("\"accepted\""), std::string::npos) << alert.body;
    if (alert.status / 100 != 2) return false;
    ++legit_accepted_;
    return true;
  }

  // Legitimate rounds while `attack` runs on another thread: at least `min_rounds`, then until
  // the attack has finished (bounded by max_rounds). The attack gets `started` to set once it is
  // in full swing, so the rounds overlap it.
  void LegitWhile(const std::function<void(Signal& started)>& attack, int min_rounds = 5,
                  int max_rounds = 2000, bool allow_connection_limit = false) {
    Signal started;
    std::atomic<bool> finished{false};
    std::thread attacker([&] {
      attack(started);
      started.Set();  // in case the attack ended before saying so
      finished = true;
    });
    EXPECT_TRUE(started.Wait());
    int rounds = 0;
    for (; rounds < max_rounds && (rounds < min_rounds || !finished); ++rounds) {
      if (!LegitRound(allow_connection_limit)) break;
    }
    attacker.join();
    EXPECT_GE(rounds, min_rounds);
  }

  // The daemon's count of rejections for `reason` (from /metrics, with the token).
  long Rejected(const std::string& reason) {
    HttpAnswer m =
        HttpCall(port_, "GET", "/metrics", "", {std::string("Authorization: Bearer ") + kToken});
    std::smatch match;
    std::regex re("tracepager_requests_rejected_total\\{reason=\"" + reason + "\"\\} ([0-9]+)");
    if (m.status != 200 || !std::regex_search(m.body, match, re)) return -1;
    return std::stol(match[1]);
  }

  TempDir dir_;
  std::string config_;
  std::optional<DaemonProcess> daemon_;
  uint16_t port_ = 0;
  int legit_sequence_ = 0;
  int legit_accepted_ = 0;
};

TEST_F(HttpAbuseTest, SlowlorisConnectionsAreCutAtTheHeaderTimeout) {
  // Fewer than max_connections, so the legitimate client always finds room: the point is that
  // trickling clients neither hold the daemon up nor stay connected past header_timeout.
  constexpr int kSlow = kMaxConnections - 8;
  constexpr auto kPace = std::chrono::milliseconds(100);
  std::vector<int> cut_after_ms;
  std::vector<int> statuses;
  LegitWhile([&](Signal& started) {
    std::vector<int> fds;
    for (int i = 0; i < kSlow; ++i) {
      int fd = Connect(port_);
      ASSERT_GE(fd, 0);
      ASSERT_TRUE(SendAll(fd, "POST /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
      ::fcntl(fd, F_SETFL, O_NONBLOCK);
      fds.push_back(fd);
    }
    const auto start = Clock::now();
    started.Set();
    std::vector<std::string> got(fds.size());
    std::vector<bool> open(fds.size(), true);
    size_t still_open = fds.size();
    // One header byte per connection per pace tick, never a line end, until the server has
    // answered or closed every connection (bounded: the server must do so by header_timeout).
    while (still_open > 0 && Clock::now() - start < kWait) {
      std::vector<pollfd> pfds;
      std::vector<size_t> index;
      for (size_t i = 0; i < fds.size(); ++i) {
        if (!open[i]) continue;
        pfds.push_back({fds[i], POLLIN, 0});
        index.push_back(i);
      }
      int ready = ::poll(pfds.data(), pfds.size(), static_cast<int>(kPace.count()));
      if (ready == 0) {
        for (size_t i = 0; i < fds.size(); ++i) {
          if (open[i]) (void)::send(fds[i], "a", 1, MSG_NOSIGNAL);
        }
        continue;
      }
      for (size_t k = 0; k < pfds.size(); ++k) {
        if (pfds[k].revents == 0) continue;
        size_t i = index[k];
        char buf[4096];
        ssize_t n = ::recv(fds[i], buf, sizeof buf, 0);
        if (n > 0) {
          got[i].append(buf, static_cast<size_t>(n));
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        open[i] = false;
        --still_open;
        cut_after_ms.push_back(static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
      }
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      statuses.push_back(got[i].rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(got[i].c_str() + 9) : 0);
      ::close(fds[i]);
    }
  });
  ASSERT_EQ(cut_after_ms.size(), static_cast<size_t>(kSlow)) << "some trickling connection stayed";
  for (int ms : cut_after_ms) {
    // Cut at header_timeout (measured from after the last connect, so possibly a little less),
    // not later than that plus a generous scheduling margin.
    EXPECT_LE(ms,
              std::chrono::duration_cast<std::chrono::milliseconds>(kHeaderTimeout).count() + 5000);
  }
  for (int status : statuses) EXPECT_EQ(status, 408);
  EXPECT_GE(Rejected("header_timeout"), kSlow);
  EXPECT_TRUE(LegitRound());
}

TEST_F(HttpAbuseTest, OversizedHeadersGet431AndTheConnectionCloses) {
  constexpr int kRounds = 30;
  std::vector<int> statuses;
  std::vector<bool> closed;
  LegitWhile([&](Signal& started) {
    started.Set();
    for (int i = 0; i < kRounds; ++i) {
      int fd = Connect(port_);
      ASSERT_GE(fd, 0);
      std::string req = "POST /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n";
      switch (i % 3) {
        case 0:  // one huge field
          req += "X-Big: " + std::string(64u << 10, 'a') + "\r\n\r\n";
          break;
        case 1:  // many small fields
          for (int f = 0; f < 2000; ++f) req += "X-F" + std::to_string(f) + ": vvvvvvvv\r\n";
          req += "\r\n";
          break;
        default:  // a line that never ends
          req += "X-Endless: " + std::string(256u << 10, 'b');
          break;
      }
      SendAll(fd, req);  // the server may stop reading early; its answer still comes
      ResponseReader reader(fd);
      std::optional<HttpAnswer> a = reader.Next();
      statuses.push_back(a ? a->status : 0);
      closed.push_back(a && reader.ClosedByServer());
      ::close(fd);
    }
  });
  ASSERT_EQ(statuses.size(), static_cast<size_t>(kRounds));
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_EQ(statuses[i], 431) << "round " << i;
    EXPECT_TRUE(closed[i]) << "round " << i;
  }
  EXPECT_GE(Rejected("header_too_large"), kRounds);
}

TEST_F(HttpAbuseTest, PipelinedGarbageIsHttpAnswered400AfterTheGoodRequestsAndClosed) {
  // Good requests pipelined ahead of the garbage are all answered, in order; then 400 and close.
  {
    int fd = Connect(port_);
    ASSERT_GE(fd, 0);
    std::string good = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    std::string req;
    for (int i = 0; i < 20; ++i) req += good;
    // A TLS ClientHello's first bytes (NULs included), then text: not HTTP.
    static constexpr char kGarbage[] =
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n";
    req += std::string(kGarbage, sizeof kGarbage - 1);
    ASSERT_TRUE(SendAll(fd, req));
    ResponseReader reader(fd);
    for (int i = 0; i < 20; ++i) {
      std::optional<HttpAnswer> a = reader.Next();
      ASSERT_TRUE(a.has_value()) << "response " << i;
      EXPECT_EQ(a->status, 200) << "response " << i;
    }
    std::optional<HttpAnswer> bad = reader.Next();
    ASSERT_TRUE(bad.has_value());
    EXPECT_EQ(bad->status, 400) << bad->body;
    EXPECT_NE(bad->body.find("\"malformed\""), std::string::npos) << bad->body;
    EXPECT_TRUE(reader.ClosedByServer());
    ::close(fd);
  }
  // Many garbage connections while the legitimate client works.
  const std::vector<std::string> garbage = {
      std::string("\x00\x01\x02\x03\xff\xfe\r\n\r\n", 10),
      "HELLO\r\n\r\n",
      "GET /healthz HTTP/9.9\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
      "POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
  };
  constexpr int kRounds = 140;
  std::vector<int> statuses;
  LegitWhile([&](Signal& started) {
    started.Set();
    for (int i = 0; i < kRounds; ++i) {
      int fd = Connect(port_);
      ASSERT_GE(fd, 0);
      SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + garbage[i % garbage.size()]);
      ResponseReader reader(fd);
      std::optional<HttpAnswer> first = reader.Next();
      std::optional<HttpAnswer> second = reader.Next();
      statuses.push_back(first ? first->status : 0);
      statuses.push_back(second ? second->status : 0);
      ::close(fd);
    }
  });
  ASSERT_EQ(statuses.size(), 2u * kRounds);
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_EQ(statuses[2 * i], 200) << "round " << i;
    EXPECT_EQ(statuses[2 * i + 1], 400) << "round " << i << ": " << garbage[i % garbage.size()];
  }
  EXPECT_GE(Rejected("malformed"), kRounds + 1);
}

TEST_F(HttpAbuseTest, IdleConnectionsUpToAndPastTheLimit) {
  // Up to the limit (leaving room for the legitimate client): nothing is refused, and the
  // legitimate client is served while they sit there.
  constexpr int kBelow = kMaxConnections - 4;
  std::vector<int> idle;
  for (int i = 0; i < kBelow; ++i) {
    int fd = Connect(port_);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(LegitRound());
  // Past the limit: every connection beyond it is answered 503 connection_limit at once.
  constexpr int kPast = 2 * kMaxConnections;
  int refused = 0;
  std::vector<int> extra;
  for (int i = 0; i < kPast; ++i) {
    int fd = Connect(port_);
    ASSERT_GE(fd, 0);
    extra.push_back(fd);
  }
  for (int fd : extra) {
    pollfd p{fd, POLLIN, 0};
    // The refusal is written at accept; a connection the daemon accepted stays silent until
    // header_timeout, so wait for it only as long as that.
    if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kHeaderTimeout).count() / 2)) <=
        0) {
      continue;
    }
    ResponseReader reader(fd);
    std::optional<HttpAnswer> a = reader.Next();
    if (a && a->status == 503) {
      EXPECT_NE(a->body.find("connection_limit"), std::string::npos) << a->body;
      ++refused;
    }
  }
  // At most the few free slots left were taken by the extra connections.
  EXPECT_GE(refused, kPast - (kMaxConnections - kBelow));
  // The idle connections that were accepted are cut at header_timeout with a 408 and closed, and
  // the legitimate client gets answers throughout: 200s, or 503 connection_limit while full.
  std::vector<int> statuses;
  LegitWhile(
      [&](Signal& started) {
        started.Set();
        for (int fd : idle) {
          ResponseReader reader(fd);
          std::optional<HttpAnswer> a = reader.Next();
          statuses.push_back(a ? a->status : 0);
          ::close(fd);
        }
      },
      3, 2000, /*allow_connection_limit=*/true);
  for (int status : statuses) EXPECT_EQ(status, 408);
  for (int fd : extra) ::close(fd);
  // With the idle ones gone, there is room again.
  EXPECT_TRUE(LegitRound());
  EXPECT_GE(Rejected("connection_limit"), refused);
}

TEST_F(HttpAbuseTest, WrongTokensAtAHighRateAreRefusedWhileTheRightOneWorks) {
  constexpr int kThreads = 2;
  constexpr int kPerThread = 300;
  std::atomic<int> unauthorized{0};
  std::atomic<int> other{0};
  LegitWhile([&](Signal& started) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::vector<std::string> headers;
          switch (i % 4) {
            case 0:
              headers = {"Authorization: Bearer wrong-" + std::to_string(t * kPerThread + i)};
              break;
            case 1:  // the right token with one byte changed
              headers = {"Authorization: Bearer abuse-test-token-2"};
              break;
            case 2:  // a prefix of the right token
              headers = {"Authorization: Bearer abuse-test-token-"};
              break;
            default:  // no token at all, or another scheme
              headers = {"Authorization: Basic YWJ1c2U6dGVzdA=="};
              break;
          }
          HttpAnswer a = HttpCall(
              port_, "POST", "/api/v1/alerts",
              R"({"service":"checkout","id":"forged-)" + std::to_string(i) + "\"}", headers);
          (a.status == 401 ? unauthorized : other)++;
        }
      });
    }
    started.Set();
    for (std::thread& th : threads) th.join();
  });
  EXPECT_EQ(unauthorized.load(), kThreads * kPerThread);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GE(Rejected("unauthorized"), kThreads * kPerThread);
  EXPECT_GT(legit_accepted_, 0);
}

}  // namespace
}  // namespace tracepager::daemon
