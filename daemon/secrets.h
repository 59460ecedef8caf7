// Resolving registry secret references (routing/secret.h) from files and environment variables:
// the I/O half that routing/ leaves to the daemon.
//
// `{file: PATH}`: the whole file, at most kMaxSecretFileBytes; surrounding whitespace (the
// trailing newline editors and `kubectl create secret` leave) is trimmed by the registry loader.
// `{env: NAME}`: the variable's value; set but empty counts as missing.
// Errors name the reference and the cause ("env PD_PAYMENTS is not set", `file "/run/x": cannot
// open: No such file or directory`), never a value.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "routing/result.h"
#include "routing/secret.h"

namespace tracepager::daemon {

inline constexpr size_t kMaxSecretFileBytes = 64 * 1024;

// Resolves one reference. Thread-safe (getenv is not called concurrently with setenv by us).
Result<std::string> ResolveSecret(const routing::SecretRef& ref);

// ResolveSecret as the registry loader's injected resolver.
routing::SecretResolver SystemSecretResolver();

}  // namespace tracepager::daemon

// Formatting a Secret with fmt or spdlog prints "[redacted]", never the value.
template <>
struct fmt::formatter<tracepager::routing::Secret> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const tracepager::routing::Secret&, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(tracepager::routing::Secret::kRedacted, ctx);
  }
};
