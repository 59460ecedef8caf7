// URLs as the HTTP client needs them: parsing an absolute http(s) URL, and building paths and
// query strings with correct percent-encoding. Pure; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/result.h"

namespace tracepager::integrations::http {

struct Url {
  bool tls = false;    // https
  std::string host;    // a DNS name or an IP literal, without brackets, lowercase
  uint16_t port = 0;   // explicit or the scheme's default
  std::string target;  // path and query, always starting with "/"

  // "https://host:port" (brackets around IPv6 literals); safe to show in errors.
  std::string Origin() const;
  // The Host header: the host, plus ":port" when it is not the scheme's default.
  std::string HostHeader() const;
  // The target without its query.
  std::string_view Path() const;
};

// Parses "http[s]://host[:port][/path][?query]". Refused (kInvalidInput): other schemes,
// user:password@ (credentials belong in the auth config, where they are kept secret), a
// fragment, an empty host, a bad port, spaces or control characters.
Result<Url> ParseUrl(std::string_view url);

// Percent-encodes everything but RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~), so the
// result is safe as a query value or a path segment.
std::string PercentEncode(std::string_view text);

// "a=1&b=x%20y" from the pairs, in order, both sides percent-encoded.
std::string BuildQuery(const std::vector<std::pair<std::string, std::string>>& params);

// `base` (a configured base URL, possibly with a path prefix such as "/tempo") joined with
// `path` (starting with "/"): exactly one slash between them.
std::string JoinUrl(std::string_view base, std::string_view path);

}  // namespace tracepager::integrations::http
