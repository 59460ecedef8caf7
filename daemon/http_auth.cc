#include "daemon/http_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "integrations/crypto.h"

namespace tracepager::daemon {
namespace {

using Digest = std::array<unsigned char, 32>;

Digest Sha256(std::string_view data) {
  Digest out{};
  unsigned int len = 0;
  // EVP_Digest cannot fail for SHA-256 on in-memory data short of allocation failure; a zero
  // digest then simply matches nothing a client could send (its own digest is computed the same
  // way only when that succeeds).
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
    out.fill(0);
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

BearerTokenSet::BearerTokenSet(const std::vector<std::string>& tokens) {
  for (const auto& token : tokens) {
    if (!token.empty()) digests_.push_back(Sha256(token));
  }
}

bool BearerTokenSet::Contains(std::string_view token) const {
  // Hashing first makes both sides 32 bytes, so neither the length nor the content of the
  // configured tokens leaks through timing; the loop never exits early for the same reason.
  const Digest presented = Sha256(token);
  int matched = 0;
  for (const auto& digest : digests_) {
    matched |= CRYPTO_memcmp(presented.data(), digest.data(), digest.size()) == 0 ? 1 : 0;
  }
  return matched != 0;
}

std::optional<std::string_view> ParseBearerAuthorization(std::string_view header_value) {
  std::string_view v = Trim(header_value);
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || !EqualsIgnoreCase(v.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  std::string_view rest = v.substr(kScheme.size());
  if (rest.front() != ' ' && rest.front() != '\t') return std::nullopt;  // e.g. "BearerX"
  std::string_view token = Trim(rest);
  if (token.empty() || token.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
  return token;
}

bool VerifyHmacSha256Hex(std::string_view key, std::string_view signed_data,
                         std::string_view signature, bool allow_sha256_prefix) {
  std::string_view sig = Trim(signature);
  constexpr std::string_view kPrefix = "sha256=";
  if (allow_sha256_prefix && sig.size() > kPrefix.size() &&
      EqualsIgnoreCase(sig.substr(0, kPrefix.size()), kPrefix)) {
    sig.remove_prefix(kPrefix.size());
  }
  const std::string expected = integrations::HmacSha256Hex(key, signed_data);
  // The length of a valid signature is public (64), so a length mismatch may return early.
  if (expected.empty() || sig.size() != expected.size()) return false;
  std::string presented(sig);
  for (char& c : presented) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  return CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

}  // namespace tracepager::daemon
