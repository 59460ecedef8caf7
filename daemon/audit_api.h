// The audit log over HTTP: GET /api/v1/decisions, GET /api/v1/decisions/{id}, and a small
// read-only web page at / (static assets compiled into the binary; no CDN, works offline).
//
// HTTP-server independent: Handle() takes the method, the target (path and query) and the
// request headers and returns status, content type, body and extra headers. The daemon
// registers AuditApi::Routes() on its server with the same auth options as the webhooks; the
// page itself and its assets hold no data, and the page sends the bearer token a person types
// in (kept in the tab's sessionStorage) with its API calls.
//
// API (JSON forms as in daemon/audit_render.h):
//   GET /api/v1/decisions?limit=&since=&until=&service=&team=&alert=&decision=&disagreement=
//       limit defaults to 50, at most 1000; since/until take 2h, 1d, ... or RFC 3339;
//       decision is routed|fallback; disagreement is true|false. An absent log is an empty list.
//       400 {"error":"bad_request","reason":...} for a bad parameter.
//   GET /api/v1/decisions/{id}   the decision (id or a unique prefix) with its deliveries;
//       404 when unknown, 400 when the prefix is ambiguous.
// Static assets carry an ETag and answer 304 to a matching If-None-Match; every answer carries
// a Content-Security-Policy that allows only same-origin scripts, styles and fetches.
//
// Handle() reads the log file and so blocks on disk: call it off the server's io threads.
// Thread-safe (const, no shared mutable state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tracepager::daemon {

struct AuditHttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
};

struct AuditApiOptions {
  std::string log_path;
  size_t default_limit = 50;
  size_t max_limit = 1000;
  // Unix epoch nanoseconds, for relative since/until; null means the system clock.
  std::function<int64_t()> now;
};

class AuditApi {
 public:
  explicit AuditApi(AuditApiOptions options);

  // A path to register: exactly `path`, or (prefix) every path that starts with it.
  struct Route {
    std::string path;
    bool prefix = false;
  };
  // "/", "/ui/app.js", "/ui/app.css", "/api/v1/decisions" and the prefix "/api/v1/decisions/".
  // Each answers GET and HEAD; any other method gets 405 with Allow.
  static std::vector<Route> Routes();

  AuditHttpResponse Handle(std::string_view method, std::string_view target,
                           const std::vector<std::pair<std::string, std::string>>& headers) const;

 private:
  AuditHttpResponse List(std::string_view query) const;
  AuditHttpResponse Show(std::string_view id) const;

  AuditApiOptions options_;
};

// Percent-decodes a query component ('+' is a space). Invalid escapes are kept as they are.
std::string UrlDecode(std::string_view text);

// The query string split into decoded (name, value) pairs, in order.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

}  // namespace tracepager::daemon
