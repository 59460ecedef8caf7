// HttpClient: asynchronous HTTP/1.1 and HTTPS client for talking to peers (trace backends,
// pagers). One client per configured peer: its concurrency limit, retry policy, TLS settings,
// auth and metrics label are that peer's.
//
// Threading: the client does not own threads. It runs on an io_context the caller provides
// and keeps running (the daemon's, or an IoThread from integrations/http/io_thread.h). All of
// a client's state lives on one strand, so the io_context may have any number of threads.
// Send() is thread-safe and returns at once; `done` runs exactly once, on an io_context
// thread, and must not block (hand heavy work elsewhere or keep it short).
//
// What a request gets:
//   - connection reuse: keep-alive connections are pooled per origin (scheme, host, port),
//     at most max_concurrency idle ones each, dropped after idle_timeout. A pooled connection
//     that turns out to be closed by the peer before any byte of the answer is replaced by a
//     fresh one once, for any method, and the lost attempt is not reported. Usually the peer
//     closed the idle connection before the request reached it (curl does the same). A peer
//     that read the request and then reset the connection without answering looks the same
//     from here, so a POST can arrive twice in that case: pager requests carry a dedup key
//     (PagerDuty, Opsgenie), a Slack message would be repeated;
//   - TLS with certificate verification on by default: the system CA store or ca_file; SNI;
//     the certificate must match the host name (or IP literal);
//   - a deadline for the whole request (queueing, retries and backoff included) and a
//     per-attempt timeout; a peer that accepts and never answers costs at most that;
//   - bounded concurrency: at most max_concurrency requests of this client are in progress at
//     once (a request holds its slot through its retries' backoff), the rest wait in a FIFO
//     queue of at most max_queue; beyond that Send fails at once (kUnavailable, queue full);
//   - retries, only for requests with retry=true (the default for GET, never for POST, whose
//     caller owns redelivery): on a reset, a timeout, a failed connect and the statuses of
//     IsRetryableStatus, with BackoffDelay (honouring a longer Retry-After), at most
//     retry.max_attempts attempts, and never past the deadline;
//   - a response size cap: an answer whose body passes max_response_bytes is cut off without
//     buffering it (kInvalidInput, "larger than N bytes"), and its connection is closed.
//
// Results: any complete HTTP answer is a Response, whatever its status (after retries, the
// last one). Errors are transport failures: kTimeout (deadline), kUnavailable (connect, TLS,
// reset, queue full, shut down), kInvalidInput (not HTTP, too large). Messages name the
// client, the method and the URL's origin and path (never the query, never headers; with
// redact_path only the origin), and never contain secrets.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "integrations/http/retry.h"
#include "integrations/metrics.h"
#include "integrations/secret.h"
#include "routing/result.h"

namespace boost::asio {
class io_context;
}

namespace tracepager::integrations::http {

using Clock = std::chrono::steady_clock;

enum class Method { kGet, kPost, kPut };

struct Request {
  Method method = Method::kGet;
  std::string url;                                           // absolute http(s) URL
  std::vector<std::pair<std::string, std::string>> headers;  // besides the client's auth
  std::string body;                                          // sent with Content-Length
  Clock::time_point deadline;  // the whole request; REQUIRES: set (not the epoch)
  // Retry on failures (see above). Unset: true for GET, false otherwise.
  std::optional<bool> retry;
  // Errors show only the URL's origin, not its path (set it when the path is a secret, as for
  // Slack webhook URLs).
  bool redact_path = false;
};

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;
  int attempts = 1;  // attempts made, including this one

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
};

// How the client authenticates every request it sends.
struct Auth {
  enum class Kind { kNone, kBearer, kBasic };
  Kind kind = Kind::kNone;
  Secret token;      // kBearer
  std::string user;  // kBasic
  Secret password;   // kBasic
  // Extra headers sent with every request (an API key header, a tenant); values are secret.
  std::vector<std::pair<std::string, Secret>> headers;
};

struct TlsOptions {
  bool verify = true;   // verify the peer's certificate chain and host name
  std::string ca_file;  // PEM bundle to trust; empty = the system CA store
};

struct ClientOptions {
  std::string name = "http";  // the peer's configured name: errors, logs, metrics label
  size_t max_concurrency = 4;
  size_t max_queue = 1024;
  std::chrono::milliseconds attempt_timeout{5000};  // per attempt, connect included
  std::chrono::milliseconds idle_timeout{30000};    // pooled connections older are dropped
  uint64_t max_response_bytes = 64ull << 20;        // body size cap
  uint32_t max_header_bytes = 64u << 10;            // response header size cap
  RetryPolicy retry;
  TlsOptions tls;
  Auth auth;
  std::string user_agent = "tracepager";
  // Jitter source returning [0, 1); unset = a per-client generator seeded from
  // std::random_device. Tests inject a fixed one.
  std::function<double()> random;
  // Optional; must outlive the client. Gets every attempt and every failure kind.
  BackendMetrics* metrics = nullptr;
};

class HttpClient {
 public:
  using Callback = std::function<void(Result<Response>)>;

  // Builds a client on `io`. Fails (kInvalidInput) when the TLS settings cannot be loaded
  // (ca_file unreadable or not PEM) or an option is out of range (max_concurrency 0).
  // REQUIRES: `io` outlives the client and keeps running until every `done` has run.
  static Result<std::unique_ptr<HttpClient>> Create(boost::asio::io_context& io,
                                                    ClientOptions options);

  // Shuts down: queued requests fail with kUnavailable ("client shut down"), requests in
  // progress are cancelled and fail the same way (their `done` still runs, later, on the
  // io_context), idle connections are closed.
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request`; runs `done` exactly once. Thread-safe.
  void Send(Request request, Callback done);

  const ClientOptions& options() const;

  // Requests currently holding a concurrency slot, and waiting for one (for tests and
  // metrics; a snapshot, thread-safe).
  size_t InFlight() const;
  size_t Queued() const;

  class Impl;

 private:
  explicit HttpClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

const char* MethodName(Method method);

}  // namespace tracepager::integrations::http
