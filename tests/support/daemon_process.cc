#include "tests/support/daemon_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <regex>

#include "tests/support/process.h"

extern char** environ;

namespace tracepager::testing {
namespace {
constexpr auto kWait = std::chrono::seconds(60);  // safety cap on every wait, never a delay
}  // namespace

int ConnectLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
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

std::string ExampleTraceWithId(const std::string& trace_id) {
  const std::string example_id = "5b8efff798038103d269b633813fc60c";
  std::string trace = ReadFile(SourcePath("etc/examples/traces/checkout-payment-db.otlp.json"));
  for (size_t at = trace.find(example_id); at != std::string::npos;
       at = trace.find(example_id, at + trace_id.size())) {
    trace.replace(at, example_id.size(), trace_id);
  }
  return trace;
}

HttpAnswer HttpCall(uint16_t port, const std::string& method, const std::string& path,
                    const std::string& body, const std::vector<std::string>& headers) {
  HttpAnswer out;
  int fd = ConnectLoopback(port);
  if (fd < 0) return out;
  timeval tv{60, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!body.empty() || method == "POST") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  for (const std::string& h : headers) req += h + "\r\n";
  req += "Connection: close\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (resp.rfind("HTTP/1.1 ", 0) != 0) return out;
  out.status = std::atoi(resp.c_str() + 9);
  size_t split = resp.find("\r\n\r\n");
  if (split != std::string::npos) out.body = resp.substr(split + 4);
  return out;
}

DaemonProcess::DaemonProcess(const std::string& config) {
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<std::string> args = {TRACEPAGER_BINARY, "serve", "--config", config};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(err[1]);
  if (rc != 0) {
    pid_ = -1;
    ::close(err[0]);
    eof_ = true;
    log_ = "posix_spawn failed";
    return;
  }
  reader_ = std::thread([this, fd = err[0]] {
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard<std::mutex> lk(mu_);
      if (n <= 0) {
        eof_ = true;
        cv_.notify_all();
        break;
      }
      log_.append(buf, static_cast<size_t>(n));
      cv_.notify_all();
    }
    ::close(fd);
  });
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    Wait();
  }
  if (reader_.joinable()) reader_.join();
}

bool DaemonProcess::WaitLog(const std::function<bool(const std::string&)>& pred) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, kWait, [&] { return pred(log_) || eof_; }) && pred(log_);
}

bool DaemonProcess::WaitFor(const std::string& needle, size_t count) {
  return WaitLog([&](const std::string& log) { return Count(log, needle) >= count; });
}

size_t DaemonProcess::Count(const std::string& log, const std::string& needle) {
  size_t n = 0;
  for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
  return n;
}

std::string DaemonProcess::log() {
  std::lock_guard<std::mutex> lk(mu_);
  return log_;
}

uint16_t DaemonProcess::Port() {
  if (!WaitFor("serve_ready listen=")) return 0;
  std::smatch m;
  std::string l = log();
  if (!std::regex_search(l, m, std::regex("serve_ready listen=127\\.0\\.0\\.1:([0-9]+)"))) {
    return 0;
  }
  return static_cast<uint16_t>(std::stoi(m[1]));
}

void DaemonProcess::Signal(int sig) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

int DaemonProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  if (reader_.joinable()) reader_.join();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace tracepager::testing
