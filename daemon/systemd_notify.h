// SystemdNotifier: the daemon's side of systemd's Type=notify protocol (sd_notify(3)), a thin
// wrapper over libsystemd.
//
// Each call sends one datagram to $NOTIFY_SOCKET. When NOTIFY_SOCKET is unset (not started by
// systemd, or a test), every call does nothing and succeeds. STATUS texts are made single-line
// (newlines become spaces) so they cannot smuggle extra KEY=value assignments.
//
// The sequence the unit expects (systemd/tracepager.service, Type=notify):
//   Ready("...")                    once config is valid, listeners bound and the store open
//   Reloading() ... Ready("...")    around every reload (SIGHUP or POST /-/reload), also when the
//                                   new config is refused (then Ready's status says so)
//   Watchdog()                      every WatchdogInterval()/2, from the main loop only
//   Stopping("...")                 when graceful shutdown begins
//
// Thread-safety: stateless apart from the environment; every member may be called from any
// thread.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "routing/result.h"

namespace tracepager::daemon {

class SystemdNotifier {
 public:
  // True when $NOTIFY_SOCKET is set, i.e. messages go somewhere.
  bool Enabled() const;

  // READY=1 and STATUS=<status>.
  Status Ready(std::string_view status) const;
  // RELOADING=1 and MONOTONIC_USEC=<CLOCK_MONOTONIC now>; without the timestamp newer systemd
  // versions ignore the message (see the reference, section 13).
  Status Reloading() const;
  // STOPPING=1 and STATUS=<status>.
  Status Stopping(std::string_view status) const;
  // WATCHDOG=1.
  Status Watchdog() const;
  // STATUS=<status> alone.
  Status SetStatus(std::string_view status) const;

  // The watchdog timeout systemd expects pings within ($WATCHDOG_USEC, honouring $WATCHDOG_PID),
  // or nullopt when the watchdog is off for this process. Ping at half of it.
  std::optional<std::chrono::microseconds> WatchdogInterval() const;

 private:
  Status Send(const char* state) const;
};

}  // namespace tracepager::daemon
