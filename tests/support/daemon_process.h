// `tracepager serve` as a child process for end-to-end tests, and a minimal loopback HTTP call.
//
// Tests synchronise with the daemon through its log lines (stderr, read as they are written)
// and its answers, never by sleeping: WaitLog blocks until a predicate over the log holds, the
// process ends, or a safety cap (60 s) passes.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tracepager::testing {

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection refused, reset or closed before a status line)
  std::string body;
};

// A blocking TCP connection to 127.0.0.1:`port`; -1 when it cannot be made. The caller closes it.
int ConnectLoopback(uint16_t port);

// etc/examples/traces/checkout-payment-db.otlp.json (frontend -> checkout -> payment -> its
// database) with its trace id replaced by `trace_id` (32 hex digits), e.g. the id the captured
// Alertmanager alerts carry.
std::string ExampleTraceWithId(const std::string& trace_id);

// One request to 127.0.0.1:`port` on a fresh connection (Connection: close), the answer read to
// EOF (at most 60 s). POST bodies are sent as application/json.
HttpAnswer HttpCall(uint16_t port, const std::string& method, const std::string& path,
                    const std::string& body = "", const std::vector<std::string>& headers = {});

class DaemonProcess {
 public:
  // Starts `tracepager serve --config CONFIG`.
  explicit DaemonProcess(const std::string& config);
  // SIGKILLs the process if it still runs, and reaps it.
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Waits until the log satisfies `pred` (re-evaluated on every new output), the process ended
  // or the cap passed; returns whether `pred` holds.
  bool WaitLog(const std::function<bool(const std::string&)>& pred);
  // Waits until `needle` occurs `count` times in the log.
  bool WaitFor(const std::string& needle, size_t count = 1);
  static size_t Count(const std::string& log, const std::string& needle);
  std::string log();

  // The port of the first IPv4 listener from the `serve_ready listen=...` line; 0 if it never
  // came.
  uint16_t Port();

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for the exit; the exit code, or 128 + signal.
  int Wait();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string log_;
  bool eof_ = false;
};

}  // namespace tracepager::testing
