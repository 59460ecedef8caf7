// Webhook-to-page latency of a running daemon (issue 8, "Benchmark report"), against a bare
// loopback POST round trip measured in the same run. Driven by bench/page_latency_bench.sh,
// which starts `tracepager serve` with the durable store on, the file trace source and the log
// pager (the local fake pager: a page is accepted once its line is written and fsynced).
//
//   page_latency_bench --port PORT --pages FILE --body TEMPLATE [--count N] [--warmup N]
//
// TEMPLATE is an Alertmanager webhook with one alert whose fingerprint is the placeholder @FP@.
// Each probe sends it with a fresh fingerprint on a fresh loopback connection to
// POST /api/v1/alerts/alertmanager and waits (inotify on FILE, bounded) for the page line that
// names the alert (`am:<fingerprint>`). Probes run one at a time, so each is a new incident on
// an idle daemon. The baseline is the same POST (same body, fresh connection) to a minimal
// HTTP server in this process that answers 200 as soon as the body arrived. Baseline and probe
// alternate, so machine noise hits both alike.
//
// Prints p50/p99 of: the baseline round trip, the daemon's 2xx answer (durable enqueue), and
// webhook-to-page; then the ratios to the baseline. Exit 1 if a probe failed or timed out.
//
// This is a plain program rather than a Google Benchmark one: what is measured is a
// distribution of end-to-end times across processes, not a loop of one function.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads one HTTP message (headers, then Content-Length bytes of body) from fd. Returns the
// status code of a response (or 1 for a request), 0 on error. Enough HTTP for this program's
// own peers: both sides always send Content-Length.
int ReadMessage(int fd) {
  std::string buf;
  char chunk[8192];
  size_t header_end = std::string::npos;
  size_t need = 0;
  while (true) {
    if (header_end == std::string::npos) {
      header_end = buf.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string head = buf.substr(0, header_end);
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        size_t at = head.find("content-length:");
        size_t length =
            at == std::string::npos ? 0 : std::strtoul(head.c_str() + at + 15, nullptr, 10);
        need = header_end + 4 + length;
      }
    }
    if (header_end != std::string::npos && buf.size() >= need) break;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return 0;
    buf.append(chunk, static_cast<size_t>(n));
  }
  if (buf.compare(0, 5, "HTTP/") == 0) {
    size_t sp = buf.find(' ');
    return sp == std::string::npos ? 0 : std::atoi(buf.c_str() + sp + 1);
  }
  return 1;
}

std::string Post(uint16_t port, const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nUser-Agent: Alertmanager/0.25.0\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// One POST on a fresh connection; returns the status (0 on a transport error).
int RoundTrip(uint16_t port, const std::string& request) {
  int fd = Connect(port);
  if (fd < 0) return 0;
  int status = WriteAll(fd, request) ? ReadMessage(fd) : 0;
  ::close(fd);
  return status;
}

// The baseline peer: accepts, reads one request, answers 200 with an empty body, closes.
class BarePeer {
 public:
  BarePeer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~BarePeer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }

 private:
  void Serve() {
    while (!stop_) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (ReadMessage(fd) == 1) WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      ::close(fd);
    }
  }
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Follows the pages file: new bytes since the last look, woken by inotify.
class PagesWatch {
 public:
  explicit PagesWatch(const std::string& path) : path_(path) {
    inotify_fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    // The log pager creates the file at startup; watch it for appends.
    if (inotify_fd_ >= 0) ::inotify_add_watch(inotify_fd_, path.c_str(), IN_MODIFY);
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    offset_ = in ? static_cast<size_t>(in.tellg()) : 0;
  }
  ~PagesWatch() {
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
  }
  bool ok() const { return inotify_fd_ >= 0; }

  // Waits until the file holds `needle` past the bytes already consumed; false after `limit`.
  bool WaitFor(const std::string& needle, Clock::time_point deadline) {
    while (true) {
      Refill();
      size_t at = seen_.find(needle);
      if (at != std::string::npos) {
        size_t line_end = seen_.find('\n', at);
        seen_.erase(0, line_end == std::string::npos ? seen_.size() : line_end + 1);
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{inotify_fd_, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
      char drain[4096];
      while (::read(inotify_fd_, drain, sizeof drain) > 0) {
      }
    }
  }

 private:
  void Refill() {
    std::ifstream in(path_, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset_));
    std::ostringstream more;
    more << in.rdbuf();
    offset_ += more.str().size();
    seen_ += more.str();
  }
  std::string path_;
  int inotify_fd_ = -1;
  size_t offset_ = 0;
  std::string seen_;
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  uint16_t port = 0;
  std::string pages, body_path;
  int count = 300, warmup = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--port") port = static_cast<uint16_t>(std::atoi(argv[i + 1]));
    if (flag == "--pages") pages = argv[i + 1];
    if (flag == "--body") body_path = argv[i + 1];
    if (flag == "--count") count = std::atoi(argv[i + 1]);
    if (flag == "--warmup") warmup = std::atoi(argv[i + 1]);
  }
  std::string body_template = ReadFile(body_path);
  if (port == 0 || pages.empty() || body_template.find("@FP@") == std::string::npos || count < 2) {
    std::fprintf(stderr,
                 "usage: page_latency_bench --port PORT --pages FILE --body TEMPLATE "
                 "[--count N>=2] [--warmup N]\n(TEMPLATE must contain @FP@)\n");
    return 2;
  }
  PagesWatch watch(pages);
  BarePeer bare;
  if (!watch.ok() || bare.port() == 0) {
    std::fprintf(stderr, "page_latency_bench: cannot watch %s or listen on loopback\n",
                 pages.c_str());
    return 2;
  }

  std::vector<double> bare_ms, ack_ms, page_ms;
  int failures = 0;
  for (int i = 0; i < warmup + count; ++i) {
    char fp[17];
    std::snprintf(fp, sizeof fp, "fe%014x", static_cast<unsigned>(i));
    std::string body = Replace(body_template, "@FP@", fp);

    Clock::time_point t0 = Clock::now();
    int bare_status = RoundTrip(bare.port(), Post(bare.port(), "/", body));
    Clock::time_point t1 = Clock::now();

    Clock::time_point t2 = Clock::now();
    int status = RoundTrip(port, Post(port, "/api/v1/alerts/alertmanager", body));
    Clock::time_point t3 = Clock::now();
    bool paged = status >= 200 && status < 300 &&
                 watch.WaitFor(std::string("am:") + fp, t2 + std::chrono::seconds(30));
    Clock::time_point t4 = Clock::now();
    if (bare_status != 200 || !paged) {
      std::fprintf(stderr, "probe %d: baseline status %d, daemon status %d, paged %d\n", i,
                   bare_status, status, paged ? 1 : 0);
      ++failures;
      continue;
    }
    if (i < warmup) continue;
    bare_ms.push_back(Millis(t1 - t0));
    ack_ms.push_back(Millis(t3 - t2));
    page_ms.push_back(Millis(t4 - t2));
  }
  if (failures != 0 || page_ms.size() < 2) {
    std::printf("page latency: %d of %d probes failed\n", failures, warmup + count);
    return 1;
  }
  double b50 = Percentile(bare_ms, 50), b99 = Percentile(bare_ms, 99);
  double a50 = Percentile(ack_ms, 50), a99 = Percentile(ack_ms, 99);
  double p50 = Percentile(page_ms, 50), p99 = Percentile(page_ms, 99);
  std::printf("probes: %zu (after %d warm-up), one at a time\n", page_ms.size(), warmup);
  std::printf("bare loopback POST round trip: p50 %.3f ms  p99 %.3f ms\n", b50, b99);
  std::printf("webhook answered 2xx (stored): p50 %.3f ms  p99 %.3f ms\n", a50, a99);
  std::printf("webhook to page accepted:      p50 %.3f ms  p99 %.3f ms\n", p50, p99);
  std::printf("ack ratio to bare round trip: p50 %.1f  p99 %.1f\n", a50 / b50, a99 / b99);
  std::printf("webhook-to-page ratio to bare round trip: p50 %.1f  p99 %.1f\n", p50 / b50,
              p99 / b99);
  return 0;
}
