// A syntactic check for the http(s) URLs the registry holds (runbooks, dashboards, webhooks).
#pragma once

#include <string_view>

namespace tracepager::routing {

// True for "http://" or "https://" (scheme case-insensitive), a non-empty host of letters,
// digits, '-', '.', '_' (or a bracketed IPv6 literal), an optional port 1..65535, and an
// optional path/query/fragment with no whitespace or control characters. No I/O, no DNS.
bool IsHttpUrl(std::string_view url);

}  // namespace tracepager::routing
