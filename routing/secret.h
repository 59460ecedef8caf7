// Secrets in the registry: pager routing keys and webhook URLs that carry tokens.
//
// A secret is never written in the registry itself. The registry holds a reference, `{file: PATH}`
// or `{env: NAME}`, and the loader resolves it through an injected SecretResolver (routing/ does
// no I/O; the real file/environment resolver is daemon/secrets.h). A value that arrives with
// catalog data (a Backstage `pagerduty.com/integration-key` annotation) is kept as an inline
// secret that names where it was found.
//
// Secret never shows its value when formatted: operator<< and ToString() print "[redacted]".
// The value is reachable only through Reveal(), which the pager integrations call when they
// build a request. Plain data; copy freely; safe to share between threads.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "routing/result.h"

namespace tracepager::routing {

struct SecretRef {
  enum class Kind { kFile, kEnv, kInline };
  Kind kind = Kind::kEnv;
  // kFile: the path; kEnv: the variable name; kInline: where the value was found, for people
  // (e.g. `backstage component:default/checkout annotation pagerduty.com/integration-key`).
  std::string name;

  // `file "/run/secrets/pd"`, `env PD_KEY`, or the inline origin. Never the value.
  std::string Describe() const;
  friend bool operator==(const SecretRef&, const SecretRef&) = default;
};

class Secret {
 public:
  Secret() = default;
  // An unresolved reference: the loader checked its shape but did not read it.
  explicit Secret(SecretRef ref) : ref_(std::move(ref)) {}
  Secret(SecretRef ref, std::string value) : ref_(std::move(ref)), value_(std::move(value)) {}

  const SecretRef& ref() const { return ref_; }
  bool resolved() const { return value_.has_value(); }
  // The secret value. REQUIRES: resolved(). Do not log or print what it returns.
  const std::string& Reveal() const { return *value_; }
  // True when both are resolved to the same value. Compares without printing.
  bool SameValue(const Secret& other) const {
    return resolved() && other.resolved() && *value_ == *other.value_;
  }

  static constexpr const char* kRedacted = "[redacted]";
  std::string ToString() const { return kRedacted; }
  friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << kRedacted; }

 private:
  SecretRef ref_;
  std::optional<std::string> value_;
};

// Resolves a reference to its value. Errors name the reference (Describe()) and what went wrong
// (missing, unreadable, empty), never a value. Must not be called for Kind::kInline.
using SecretResolver = std::function<Result<std::string>(const SecretRef&)>;

}  // namespace tracepager::routing
