// Retry policy arithmetic for the HTTP client (and the pagers' outbox): exponential backoff
// with jitter, and Retry-After. Pure; time and randomness come in as arguments.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace tracepager::integrations::http {

struct RetryPolicy {
  int max_attempts = 3;  // attempts in total, first included; 1 = no retry
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
  double multiplier = 2.0;
};

// The wait before retry number `retry` (1 for the first retry): the exponential step
// initial * multiplier^(retry-1), capped at max_backoff, with "equal jitter": half of the step
// fixed, the other half scaled by `random01` (in [0, 1)). Half fixed keeps retries from
// hammering a struggling peer; half random spreads a storm's retries apart.
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int retry, double random01);

// Whether a GET answered with `status` is worth retrying: 408, 429, 500, 502, 503, 504.
bool IsRetryableStatus(int status);

// Parses a Retry-After value: delay-seconds ("120") or an HTTP-date
// ("Wed, 21 Oct 2015 07:28:00 GMT", relative to `now`). nullopt when unreadable; a date in
// the past is 0.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         std::chrono::system_clock::time_point now);

}  // namespace tracepager::integrations::http
