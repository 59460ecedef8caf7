// Secret: a credential (routing key, API key, webhook URL, signing key) that must never reach a
// log line, an error message or an audit record.
//
// The value is reachable only through Reveal(), so every use is visible in review. Formatting
// with fmt/spdlog prints "[redacted]"; there is deliberately no operator<<. `origin` says where
// the value came from ("env TP_PD_PAYMENTS", "file /etc/tracepager/pd.key") and is safe to print.
// Text that may have picked up a secret on the way (an HTTP client error naming the URL, a peer's
// echo of the key) goes through Redact() before anyone sees it.
#pragma once

#include <fmt/format.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tracepager::integrations {

class Secret {
 public:
  Secret() = default;
  Secret(std::string value, std::string origin)
      : value_(std::move(value)), origin_(std::move(origin)) {}

  const std::string& Reveal() const { return value_; }
  const std::string& origin() const { return origin_; }
  bool empty() const { return value_.empty(); }

  friend bool operator==(const Secret& a, const Secret& b) { return a.value_ == b.value_; }

 private:
  std::string value_;
  std::string origin_;
};

inline constexpr std::string_view kRedacted = "[redacted]";

// `text` with every occurrence of each non-empty secret replaced by "[redacted]". Secrets shorter
// than 4 characters are also replaced (a short key is still a key), empty ones are skipped.
// Pure; safe from any thread.
std::string Redact(std::string_view text, const std::vector<const Secret*>& secrets);

}  // namespace tracepager::integrations

template <>
struct fmt::formatter<tracepager::integrations::Secret> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const tracepager::integrations::Secret&, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(tracepager::integrations::kRedacted, ctx);
  }
};
