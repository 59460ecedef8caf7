// What the HTTP pagers (PagerDuty, Opsgenie, Slack, webhook) share: one POST per attempt through
// an HttpPoster, and one way to turn the answer into a SendOutcome.
//
// HttpPoster is the narrow seam between the pagers and the project's HTTP client
// (integrations/http/); tests substitute a fake. The classification follows what every one of
// these services documents:
//   2xx                          accepted (PagerDuty and Opsgenie answer 202: queued)
//   408, 429, 5xx                retry; a 429's Retry-After (seconds or HTTP date) is honoured
//   other 4xx                    permanent: a bad routing key, a malformed body, a 422
//   no answer: timeout, reset, refused, TLS failure          retry
//   a request that cannot be made (a malformed URL)          permanent
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "integrations/pager.h"
#include "routing/result.h"

namespace tracepager::integrations {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpPost {
  std::string url;  // http(s)://host[:port]/path[?query]; may itself be a secret (Slack)
  Headers headers;  // besides Host, Content-Type: application/json and Content-Length
  std::string body;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // the whole exchange
};

struct HttpReply {
  int status = 0;
  Headers headers;
  std::string body;
  // The first header named `name` (case-insensitive), or "".
  std::string Header(std::string_view name) const;
};

// Errors: kTimeout (no complete answer in time), kUnavailable (refused, reset, TLS handshake or
// verification failure, DNS), kInvalidInput (the request cannot be made: malformed URL).
class HttpPoster {
 public:
  virtual ~HttpPoster() = default;
  // Runs `done` exactly once, from any thread. Thread-safe.
  virtual void Post(HttpPost request, std::function<void(Result<HttpReply>)> done) = 0;
};

// The delay a Retry-After value asks for: delta-seconds ("120") or an HTTP date (IMF-fixdate,
// RFC 850 or asctime form) relative to `now`; a date in the past is zero. nullopt when the value
// is empty or unreadable.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         std::chrono::system_clock::time_point now);

// The generic outcome for one HTTP attempt, before any service-specific reading of the body.
// `detail` names the status or the transport error; it may still contain a secret (the URL)
// and must go through Redact() before it leaves the pager.
SendOutcome ClassifyHttp(const Result<HttpReply>& reply, std::chrono::system_clock::time_point now);

// A peer's answer body for a person: control characters replaced, cut to `max_bytes` on a
// character boundary. Bodies are peer data: never trusted to be short or printable.
std::string BodyExcerpt(std::string_view body, size_t max_bytes = 300);

// The base of the HTTP pagers: builds the request (service-specific), posts it, classifies the
// answer, lets the service read its body, and redacts the target's secrets from the detail.
class HttpPager : public Pager {
 public:
  using WallClock = std::function<std::chrono::system_clock::time_point()>;
  // Reads a service's answer into the outcome (request ids, error messages, Slack's "ok").
  using ReplyReader = void (*)(const HttpReply& reply, SendOutcome* outcome);

  HttpPager(std::shared_ptr<HttpPoster> poster, WallClock wall_clock, ReplyReader reader)
      : poster_(std::move(poster)), wall_clock_(std::move(wall_clock)), reader_(reader) {}

  void Send(const Page& page, const PagerTarget& target,
            std::function<void(SendOutcome)> done) final;

 protected:
  std::chrono::system_clock::time_point WallNow() const { return wall_clock_(); }

  // The request for one attempt; kInvalidInput (recorded as permanent) when the page or the
  // target cannot make one (no routing key, a malformed URL).
  virtual Result<HttpPost> BuildRequest(const Page& page, const PagerTarget& target) const = 0;

  // Secrets of the pager's own configuration (a default API key), redacted like the target's.
  std::vector<Secret> own_secrets_;

 private:
  std::shared_ptr<HttpPoster> poster_;
  WallClock wall_clock_;
  ReplyReader reader_;
};

}  // namespace tracepager::integrations
