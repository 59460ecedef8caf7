// ServerApp: `tracepager serve`, assembled. It owns every long-lived part of the daemon and the
// order in which they start and stop:
//
//   start:  config -> registry -> store (state_dir/tracepager.db) -> delivery outbox
//           (state_dir/outbox.db) and pager -> trace source -> workers -> HTTP listeners ->
//           READY=1 and a `serve_ready listen=HOST:PORT,...` log line (the bound ports, which
//           tests read when they asked for port 0).
//   run:    the webhook endpoints parse the body (400 with the reason when malformed), derive
//           routing jobs and queue them in the store; the answer is 200 only after the store
//           committed them durably, 503 when it cannot (full queue, full disk, I/O error,
//           shutting down). Workers claim jobs and route them (daemon/job_processor.h);
//           delivery sends the pages. SIGHUP and POST /-/reload reload the config and the
//           registry atomically; a bad new config keeps the old one (logged, counted in
//           metrics, and the reload answers 400 with the problems).
//   stop:   SIGTERM/SIGINT (or RequestStop) -> STOPPING=1, listeners close, requests being
//           read finish, workers finish their current claim; whatever is not finished by
//           workers.drain_deadline stays in the store (queued, or claimed and resumed at the
//           next start) and the process exits anyway.
//
// What a reload cannot change (listen addresses, TLS, state_dir, store and worker settings, the
// pager type, the `pagers:` and `delivery:` sections) is kept and a warning names it: those take
// a restart. The registry reloads, and with it every team's pager targets and their secrets
// (re-read from their files and variables); so does pagers.trace_url_template.
//
// Paging: pager.type "log" pages every team through the log pager; "registry" builds one HTTP
// pager per kind configured under `pagers:` (integrations/pager_factory.h) on an HTTP io thread
// the app owns (shared with any other outgoing HTTP client) and pages each team through its
// registry targets (daemon/delivery_setup.h).
#pragma once

#include <memory>
#include <string>

#include "daemon/config.h"
#include "routing/result.h"

namespace tracepager::daemon {

class ServerApp {
 public:
  // Loads everything and starts serving. Errors name what failed (config problems one per
  // line, a store that cannot be opened, an address that cannot be bound).
  static Result<std::unique_ptr<ServerApp>> Start(const std::string& config_path);
  ~ServerApp();
  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;

  // Waits for SIGTERM/SIGINT (reloading on SIGHUP) or RequestStop, then stops as described
  // above. Returns the process exit code. REQUIRES: called from the thread that called Start,
  // which must be the process's main thread (signals are blocked in every other thread).
  int Run();

  // Makes Run stop as if SIGTERM had arrived. Thread-safe.
  void RequestStop();

  struct Impl;

 private:
  explicit ServerApp(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracepager::daemon
