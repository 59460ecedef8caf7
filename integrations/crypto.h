// SHA-256 and HMAC-SHA256 (OpenSSL), as lowercase hex. Pure; safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace tracepager::integrations {

std::string Sha256Hex(std::string_view data);

// Lowercase hex HMAC-SHA256 of `data` under `key` (the Grafana/GitHub webhook convention,
// without a "sha256=" prefix).
std::string HmacSha256Hex(std::string_view key, std::string_view data);

}  // namespace tracepager::integrations
