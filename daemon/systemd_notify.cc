#include "daemon/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace tracepager::daemon {

namespace {

std::string OneLine(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

bool SystemdNotifier::Enabled() const {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && socket[0] != '\0';
}

Status SystemdNotifier::Send(const char* state) const {
  // unset_environment=0: children (none today) and later calls must still find the socket.
  int r = sd_notify(0, state);
  if (r < 0) {
    return Error::Unavailable(std::string("sd_notify: ") + std::strerror(-r));
  }
  return OkStatus();  // r == 0: NOTIFY_SOCKET unset, nothing to do
}

Status SystemdNotifier::Ready(std::string_view status) const {
  return Send(("READY=1\nSTATUS=" + OneLine(status)).c_str());
}

Status SystemdNotifier::Reloading() const {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1000000LL + now.tv_nsec / 1000;
  return Send(("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec)).c_str());
}

Status SystemdNotifier::Stopping(std::string_view status) const {
  return Send(("STOPPING=1\nSTATUS=" + OneLine(status)).c_str());
}

Status SystemdNotifier::Watchdog() const { return Send("WATCHDOG=1"); }

Status SystemdNotifier::SetStatus(std::string_view status) const {
  return Send(("STATUS=" + OneLine(status)).c_str());
}

std::optional<std::chrono::microseconds> SystemdNotifier::WatchdogInterval() const {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace tracepager::daemon
