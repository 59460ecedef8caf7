#include "integrations/http/retry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

namespace tracepager::integrations::http {

std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int retry, double random01) {
  const double initial = static_cast<double>(policy.initial_backoff.count());
  const double cap = static_cast<double>(policy.max_backoff.count());
  const double step =
      std::min(cap, initial * std::pow(std::max(1.0, policy.multiplier), std::max(0, retry - 1)));
  const double r = std::clamp(random01, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(step / 2 + r * step / 2));
}

bool IsRetryableStatus(int status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    // A peer asking for more than a day is treated as a day: the caller still bounds it by
    // its own deadline, and the multiplication below must not overflow.
    seconds = std::min<int64_t>(seconds, 86400);
    return std::chrono::milliseconds(seconds * 1000);
  }
  // IMF-fixdate (RFC 9110 section 5.6.7), the only date form senders may generate.
  std::tm tm{};
  const std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::time_t when = timegm(&tm);
  if (when == static_cast<std::time_t>(-1)) return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(when);
  if (at <= now) return std::chrono::milliseconds(0);
  return std::min<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(at - now), std::chrono::hours(24));
}

}  // namespace tracepager::integrations::http
