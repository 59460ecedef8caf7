// Credential checks for the HTTP server: bearer tokens and HMAC-SHA256 body signatures.
//
// Every comparison of a secret against a value sent by a client runs in time that does not
// depend on where the two differ: tokens are compared as SHA-256 digests (equal length by
// construction) with CRYPTO_memcmp, and signatures as fixed-length hex strings the same way.
// Pure apart from OpenSSL; every function and const method is safe to call from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tracepager::daemon {

// A set of accepted bearer tokens, held only as SHA-256 digests.
class BearerTokenSet {
 public:
  BearerTokenSet() = default;
  // Empty strings in `tokens` are skipped: an empty token can never be presented (see
  // ParseBearerAuthorization) and must not make the set look configured.
  explicit BearerTokenSet(const std::vector<std::string>& tokens);

  bool empty() const { return digests_.empty(); }
  std::size_t size() const { return digests_.size(); }

  // True if `token` is one of the set. Every digest is compared (no early exit), so the time
  // depends on the number of tokens only, not on the bytes of `token`.
  bool Contains(std::string_view token) const;

 private:
  std::vector<std::array<unsigned char, 32>> digests_;
};

// Returns the token of an `Authorization` header value of the form `Bearer <token>` (scheme
// case-insensitive, RFC 7235; surrounding spaces ignored), or nullopt for another scheme, an
// empty token or a token containing spaces.
std::optional<std::string_view> ParseBearerAuthorization(std::string_view header_value);

// True if `signature` is the hex HMAC-SHA256 of `signed_data` under `key` (computed with
// integrations::HmacSha256Hex). Hex digits may be
// upper or lower case; with `allow_sha256_prefix`, a leading "sha256=" (GitHub's form) is
// accepted too. Constant time in the content of `signature`.
bool VerifyHmacSha256Hex(std::string_view key, std::string_view signed_data,
                         std::string_view signature, bool allow_sha256_prefix);

}  // namespace tracepager::daemon
