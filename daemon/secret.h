// Secret: a string that must never reach a log line, an error message or an audit record.
//
// The value is reachable only through Reveal(), so every use is visible in review. Formatting
// with fmt/spdlog prints "[redacted]"; there is deliberately no operator<<. `origin` says where
// the value came from ("file /etc/tracepager/token", "env TP_TOKEN") and is safe to print.
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>

namespace tracepager::daemon {

class Secret {
 public:
  Secret() = default;
  Secret(std::string value, std::string origin)
      : value_(std::move(value)), origin_(std::move(origin)) {}

  const std::string& Reveal() const { return value_; }
  const std::string& origin() const { return origin_; }
  bool empty() const { return value_.empty(); }

 private:
  std::string value_;
  std::string origin_;
};

}  // namespace tracepager::daemon

template <>
struct fmt::formatter<tracepager::daemon::Secret> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const tracepager::daemon::Secret&, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format("[redacted]", ctx);
  }
};
