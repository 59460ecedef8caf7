// SystemdNotifier against a real AF_UNIX datagram socket set as $NOTIFY_SOCKET, the way systemd
// receives the messages.
#include "daemon/systemd_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

namespace tracepager::daemon {
namespace {

namespace fs = std::filesystem;

// Saves an environment variable and restores it when the scope ends.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class NotifySocket {
 public:
  // A path socket in a fresh temp dir, or an abstract one ("@name").
  explicit NotifySocket(bool abstract) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len;
    if (abstract) {
      name_ = "@tracepager-test-" + std::to_string(getpid());
      std::memcpy(addr.sun_path + 1, name_.data() + 1, name_.size() - 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    } else {
      std::string tmpl = (fs::temp_directory_path() / "tracepager-notify-XXXXXX").string();
      dir_ = mkdtemp(tmpl.data()) ? tmpl : "";
      name_ = dir_ + "/notify.sock";
      std::memcpy(addr.sun_path, name_.c_str(), name_.size() + 1);
      len = sizeof(addr);
    }
    ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }

  // The next datagram; nullopt if none arrives within the safety cap.
  std::optional<std::string> Receive() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) return std::nullopt;
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }
  bool Empty() {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::string dir_;
  std::string name_;
};

long long MonotonicUsec() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<long long>(now.tv_sec) * 1000000LL + now.tv_nsec / 1000;
}

TEST(SystemdNotifier, SendsEachStateToNotifySocket) {
  NotifySocket sock(false);
  ASSERT_TRUE(sock.ok());
  ScopedEnv env("NOTIFY_SOCKET", sock.name().c_str());
  SystemdNotifier n;
  EXPECT_TRUE(n.Enabled());

  ASSERT_TRUE(n.Ready("serving on 2 listeners").ok());
  EXPECT_EQ(sock.Receive(), "READY=1\nSTATUS=serving on 2 listeners");

  const long long before = MonotonicUsec();
  ASSERT_TRUE(n.Reloading().ok());
  const long long after = MonotonicUsec();
  auto reloading = sock.Receive();
  ASSERT_TRUE(reloading);
  const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
  ASSERT_EQ(reloading->rfind(prefix, 0), 0u) << *reloading;
  const long long usec = std::stoll(reloading->substr(prefix.size()));
  EXPECT_GE(usec, before);
  EXPECT_LE(usec, after);

  ASSERT_TRUE(n.Watchdog().ok());
  EXPECT_EQ(sock.Receive(), "WATCHDOG=1");
  ASSERT_TRUE(n.SetStatus("reload failed: config.yaml:3").ok());
  EXPECT_EQ(sock.Receive(), "STATUS=reload failed: config.yaml:3");
  ASSERT_TRUE(n.Stopping("draining 3 jobs").ok());
  EXPECT_EQ(sock.Receive(), "STOPPING=1\nSTATUS=draining 3 jobs");
  EXPECT_TRUE(sock.Empty());
}

TEST(SystemdNotifier, StatusCannotInjectAssignments) {
  NotifySocket sock(false);
  ASSERT_TRUE(sock.ok());
  ScopedEnv env("NOTIFY_SOCKET", sock.name().c_str());
  ASSERT_TRUE(SystemdNotifier().Ready("ok\nSTOPPING=1\r\nX").ok());
  EXPECT_EQ(sock.Receive(), "READY=1\nSTATUS=ok STOPPING=1  X");
}

TEST(SystemdNotifier, WorksWithAnAbstractSocket) {
  NotifySocket sock(true);
  ASSERT_TRUE(sock.ok());
  ScopedEnv env("NOTIFY_SOCKET", sock.name().c_str());
  ASSERT_TRUE(SystemdNotifier().Ready("up").ok());
  EXPECT_EQ(sock.Receive(), "READY=1\nSTATUS=up");
}

TEST(SystemdNotifier, DoesNothingWithoutNotifySocket) {
  ScopedEnv env("NOTIFY_SOCKET", nullptr);
  SystemdNotifier n;
  EXPECT_FALSE(n.Enabled());
  EXPECT_TRUE(n.Ready("x").ok());
  EXPECT_TRUE(n.Reloading().ok());
  EXPECT_TRUE(n.Watchdog().ok());
  EXPECT_TRUE(n.Stopping("x").ok());
  EXPECT_TRUE(n.SetStatus("x").ok());
}

TEST(SystemdNotifier, ReportsAnUnreachableSocket) {
  ScopedEnv env("NOTIFY_SOCKET", "/nonexistent/tracepager/notify.sock");
  Status s = SystemdNotifier().Ready("x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
}

TEST(SystemdNotifier, WatchdogIntervalFollowsTheEnvironment) {
  const std::string pid = std::to_string(getpid());
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv wpid("WATCHDOG_PID", pid.c_str());
    EXPECT_EQ(SystemdNotifier().WatchdogInterval(), std::chrono::microseconds(30000000));
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv wpid("WATCHDOG_PID", nullptr);  // no PID: meant for us
    EXPECT_EQ(SystemdNotifier().WatchdogInterval(), std::chrono::microseconds(30000000));
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", "30000000");
    ScopedEnv wpid("WATCHDOG_PID", std::to_string(getpid() + 1).c_str());  // another process's
    EXPECT_EQ(SystemdNotifier().WatchdogInterval(), std::nullopt);
  }
  {
    ScopedEnv usec("WATCHDOG_USEC", nullptr);
    EXPECT_EQ(SystemdNotifier().WatchdogInterval(), std::nullopt);
  }
}

}  // namespace
}  // namespace tracepager::daemon
