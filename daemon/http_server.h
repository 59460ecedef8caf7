// HttpServer: the daemon's HTTP/1.1 front door (Boost.Beast on Boost.Asio, optional TLS).
//
// What it does for every connection, before any handler sees a request:
//   - reads the request with deadlines: `header_timeout` from the first byte to the end of the
//     header, `body_timeout` from the end of the header to the end of the body (a client that
//     trickles bytes is cut off with 408), `idle_timeout` between keep-alive requests;
//   - enforces `header_limit` (431) and `body_limit` (413, checked against Content-Length before
//     the body is read, and against the bytes of a chunked body as they come);
//   - answers 400 to bytes that are not HTTP/1.x, 404 to an unknown path, 405 (with Allow) to a
//     known path with another method;
//   - on routes that require it, checks `Authorization: Bearer <token>` against the configured
//     tokens in constant time (401 with WWW-Authenticate), then, on routes with an HmacOptions,
//     the HMAC-SHA256 signature of the raw body (401);
//   - refuses connections beyond `max_connections` at once with a 503 (plain listeners) or a
//     close (TLS listeners), without reading them.
// Every rejection answers `{"error":"<code>","reason":"<text>"}` (the code is
// HttpRejectReasonName) and is reported once through HttpServerOptions::on_reject, so metrics can
// count rejections by reason. After a rejection whose request body was not read, the connection
// is closed (after a bounded drain, so the client sees the answer instead of a reset).
//
// Handlers are asynchronous: a handler receives the request and an HttpResponder and may answer
// later from any thread (for example after a durable store commit), exactly once.
//
// Threads: the server runs either on `io_threads` io_contexts of its own, one thread each (the
// constructor without an io_context; connections are dealt to them in turn, and a connection's
// handlers run on its context's one thread), or on an io_context the caller runs, where each
// connection runs on its own strand, so any number of threads may run it. Handlers are invoked
// on an io thread and must not block.
//
// Thread-safety: Handle() must be called before Start(). Start() once. Every other public member
// is thread-safe and may be called from any thread, including handlers, except WaitDrained()
// (never on an io thread of this server: it would wait for itself).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/result.h"

namespace boost::asio {
class io_context;
}

namespace tracepager::daemon {

namespace http_detail {
class ServerState;
class ResponderState;
}  // namespace http_detail

// Why the server refused a request or connection. Names are stable: they are metric labels and
// the "error" field of the JSON body.
enum class HttpRejectReason {
  kMalformed,         // 400 "malformed": not an HTTP/1.x request
  kUnauthorized,      // 401 "unauthorized": bearer token missing or wrong
  kBadSignature,      // 401 "bad_signature": HMAC signature or its timestamp missing or wrong
  kNotFound,          // 404 "not_found"
  kMethodNotAllowed,  // 405 "method_not_allowed"
  kHeaderTimeout,     // 408 "header_timeout": header not complete within header_timeout
  kBodyTimeout,       // 408 "body_timeout": body not complete within body_timeout
  kBodyTooLarge,      // 413 "body_too_large"
  kHeaderTooLarge,    // 431 "header_too_large"
  kConnectionLimit,   // 503 "connection_limit": max_connections reached
  kHandlerTimeout,    // 503 "handler_timeout": the handler did not answer within handler_timeout
  kTlsHandshake,      // (no answer possible) "tls_handshake": handshake failed or timed out
};
const char* HttpRejectReasonName(HttpRejectReason reason);
// Every reason, in declaration order (to pre-create metric series).
const std::vector<HttpRejectReason>& AllHttpRejectReasons();

// One listening socket. `host` is an IP literal ("127.0.0.1", "0.0.0.0", "::1", "::"); no
// name resolution. Port 0 lets the kernel choose (see HttpServer::BoundListeners).
struct HttpListener {
  std::string host;
  uint16_t port = 0;
  bool tls = false;  // REQUIRES: HttpServerOptions::tls when true
};

// PEM files for TLS listeners, read by Start().
struct HttpTlsFiles {
  std::string certificate_chain_file;
  std::string private_key_file;
};

// HMAC-SHA256 signature check of a route's raw body (before any parsing).
struct HttpHmacOptions {
  std::string secret;  // raw key bytes
  std::string header = "X-Tracepager-Signature";
  bool allow_sha256_prefix = true;  // also accept "sha256=<hex>"
  // When set, the signed bytes are "<value of this header>:<body>" (Grafana's scheme), the
  // value must be decimal unix seconds, and it must be within max_skew of the server's clock.
  std::string timestamp_header;
  std::chrono::milliseconds max_skew{std::chrono::minutes(5)};
};

struct HttpRouteOptions {
  // When true, a request must carry a valid bearer token. With no token configured at all,
  // such a route refuses every request (fail closed): leave this false for open routes.
  bool require_auth = true;
  std::optional<HttpHmacOptions> hmac;
};

struct HttpServerOptions {
  std::vector<HttpListener> listeners;   // at least one
  std::optional<HttpTlsFiles> tls;       // required if any listener has tls
  bool keep_alive = true;                // false: close after every response
  std::size_t body_limit = 1u << 20;     // bytes; 413 beyond
  std::size_t header_limit = 16u << 10;  // bytes of request line + fields; 431 beyond
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds body_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};  // between keep-alive requests
  std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
  // A handler that has not answered by then gets 503 sent for it (Alertmanager retries 5xx);
  // its responder's later Send() is dropped. Zero: wait forever.
  std::chrono::milliseconds handler_timeout{std::chrono::seconds(30)};
  std::size_t max_connections = 512;
  int io_threads = 1;  // only for the server-owned io_contexts (one per thread)
  // Called first thing on each server-owned io thread (before it runs any handler); empty:
  // nothing. The daemon moves those threads' allocations to the acknowledgement arena with it
  // (daemon/allocator.h).
  std::function<void()> on_io_thread_start;
  // Accepted bearer tokens (any one). Replace at runtime with SetBearerTokens().
  std::vector<std::string> bearer_tokens;
  // Called once per rejection, on an io thread; must be thread-safe and must not block.
  std::function<void(HttpRejectReason)> on_reject;
  // Wall clock for HMAC timestamps; null means std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> clock;
};

struct HttpRequest {
  std::string method;                                        // as sent, e.g. "POST"
  std::string target;                                        // as sent, e.g. "/api/v1/alerts?x=1"
  std::string path;                                          // target up to '?'
  std::string query;                                         // after '?', without it; empty if none
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string body;
  std::string remote_address;  // IP literal of the peer
  uint16_t remote_port = 0;
  bool tls = false;

  // Value of the first header named `name` (case-insensitive), or empty if there is none.
  std::string_view Header(std::string_view name) const;
};

// {"error": ERROR, "reason": REASON}: the body of every refusal the daemon answers (the HTTP
// server's own and its handlers').
std::string JsonErrorBody(std::string_view error, std::string_view reason);

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra header fields

  // `{"error":"<error>","reason":"<reason>"}` with `status`; both strings are JSON-escaped.
  static HttpResponse JsonError(int status, std::string_view error, std::string_view reason);
};

// The one answer to one request. Copyable; all copies share one answer.
//
// Send() may be called from any thread, at any time; the first call wins and later ones do
// nothing. If the last copy is destroyed without any Send(), the client gets 500
// {"error":"internal","reason":"request was not answered"}, so a lost handler never leaves a
// connection hanging. The HttpRequest passed with a responder stays valid as long as any copy of
// that responder exists.
class HttpResponder {
 public:
  // Returns true if this call was the first and the connection was still there to take it.
  // True is best effort: the bytes are written asynchronously, the client may vanish first, and
  // a handler_timeout answer may have raced it. Returns false if the request was answered
  // already, or the connection or server is gone.
  bool Send(HttpResponse response) const;
  // True once Send() was called on any copy.
  bool answered() const;

 private:
  friend class http_detail::ResponderState;
  explicit HttpResponder(std::shared_ptr<http_detail::ResponderState> state);
  std::shared_ptr<http_detail::ResponderState> state_;
};

using HttpHandler = std::function<void(const HttpRequest& request, HttpResponder responder)>;

// A listener after Start(): the address actually bound (port filled in when 0 was asked for).
struct HttpBoundListener {
  std::string host;
  uint16_t port = 0;
  bool tls = false;
};

class HttpServer {
 public:
  // Runs on its own io_context with options.io_threads threads, started by Start().
  explicit HttpServer(HttpServerOptions options);
  // Runs on `io_context`, which the caller runs. REQUIRES: `io_context` outlives this server.
  HttpServer(HttpServerOptions options, boost::asio::io_context& io_context);
  // Closes listeners and connections. Requests still waiting for a handler's answer are dropped
  // (their responders' Send() returns false). With an own io_context, joins its threads.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers `handler` for exactly `method` and `path` (no query). A path may have several
  // methods. REQUIRES: before Start(); the same (method, path) at most once.
  void Handle(std::string method, std::string path, HttpRouteOptions options, HttpHandler handler);
  // Registers `handler` for `method` and every path that starts with `prefix` and is longer
  // ("/api/v1/decisions/" serves "/api/v1/decisions/{id}"); the handler reads the rest from
  // HttpRequest::path. An exact route wins over a prefix, a longer prefix over a shorter one.
  // REQUIRES: before Start().
  void HandlePrefix(std::string method, std::string prefix, HttpRouteOptions options,
                    HttpHandler handler);

  // Loads TLS files, binds and listens on every listener, starts accepting (and the own threads).
  // Fails with kInvalidInput (bad options, unreadable or invalid TLS files) or kUnavailable
  // (an address cannot be bound; the message names it); then nothing is left listening.
  // REQUIRES: called once.
  Status Start();

  // The listeners as bound, in options order. Empty before a successful Start().
  std::vector<HttpBoundListener> BoundListeners() const;

  // Replaces the accepted bearer tokens; requests whose header was already checked keep the
  // old result.
  void SetBearerTokens(const std::vector<std::string>& tokens);
  // Replaces the auth and HMAC options of a registered route. Returns false if there is no such
  // route.
  bool SetRouteOptions(std::string_view method, std::string_view path, HttpRouteOptions options);

  // Graceful stop: closes the listeners, closes connections waiting idle, and lets every request
  // already being read or handled finish; its response carries `Connection: close`. Idempotent.
  void Stop();
  // Blocks until no connection is open (true), or `timeout` passed (false).
  // REQUIRES: not called on an io thread of this server; somebody runs the io_context.
  bool WaitDrained(std::chrono::milliseconds timeout);
  // Closes every connection now, whatever it is doing (the end of a drain deadline). Implies
  // Stop().
  void Abort();

  // Connections currently open (accepted and not yet closed, including ones whose request waits
  // for a handler's answer).
  std::size_t ActiveConnections() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracepager::daemon
