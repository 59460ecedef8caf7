#include "integrations/pager_http.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

namespace tracepager::integrations {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseInt(std::string_view s, int* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

int Month(std::string_view name) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (IEquals(name, kMonths[i])) return i;
  }
  return -1;
}

// "08:49:37"
bool ParseClock(std::string_view s, std::tm* tm) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  return ParseInt(s.substr(0, 2), &tm->tm_hour) && ParseInt(s.substr(3, 2), &tm->tm_min) &&
         ParseInt(s.substr(6, 2), &tm->tm_sec) && tm->tm_hour < 24 && tm->tm_min < 60 &&
         tm->tm_sec < 61;
}

std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// The three date forms RFC 9110 section 5.6.7 requires a recipient to accept.
std::optional<std::time_t> ParseHttpDate(std::string_view s) {
  std::tm tm{};
  std::vector<std::string_view> f = Fields(s);
  if (f.size() == 6 && f[0].size() == 4 && f[0].back() == ',' && f[5] == "GMT") {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    tm.tm_mon = Month(f[2]);
    if (!ParseInt(f[1], &tm.tm_mday) || tm.tm_mon < 0 || !ParseInt(f[3], &tm.tm_year) ||
        !ParseClock(f[4], &tm)) {
      return std::nullopt;
    }
    tm.tm_year -= 1900;
  } else if (f.size() == 4 && f[0].back() == ',' && f[3] == "GMT" && f[1].size() == 9 &&
             f[1][2] == '-' && f[1][6] == '-') {
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years below 70 are 20xx.
    int year = 0;
    tm.tm_mon = Month(f[1].substr(3, 3));
    if (!ParseInt(f[1].substr(0, 2), &tm.tm_mday) || tm.tm_mon < 0 ||
        !ParseInt(f[1].substr(7, 2), &year) || !ParseClock(f[2], &tm)) {
      return std::nullopt;
    }
    tm.tm_year = year < 70 ? year + 100 : year;
  } else if (f.size() == 5) {
    // asctime: "Sun Nov  6 08:49:37 1994"
    tm.tm_mon = Month(f[1]);
    if (tm.tm_mon < 0 || !ParseInt(f[2], &tm.tm_mday) || !ParseClock(f[3], &tm) ||
        !ParseInt(f[4], &tm.tm_year)) {
      return std::nullopt;
    }
    tm.tm_year -= 1900;
  } else {
    return std::nullopt;
  }
  if (tm.tm_mday < 1 || tm.tm_mday > 31) return std::nullopt;
  return timegm(&tm);
}

}  // namespace

std::string HttpReply::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return {};
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now) {
  value = Trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    // Clamp absurd values rather than overflow; delivery applies its own ceiling.
    if (value.size() > 9) return std::chrono::milliseconds(std::chrono::seconds(999'999'999));
    int seconds = 0;
    if (!ParseInt(value, &seconds)) return std::nullopt;
    return std::chrono::milliseconds(std::chrono::seconds(seconds));
  }
  std::optional<std::time_t> when = ParseHttpDate(value);
  if (!when) return std::nullopt;
  auto delta = std::chrono::system_clock::from_time_t(*when) - now;
  if (delta <= std::chrono::system_clock::duration::zero()) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(delta);
}

SendOutcome ClassifyHttp(const Result<HttpReply>& reply,
                         std::chrono::system_clock::time_point now) {
  SendOutcome out;
  if (!reply.ok()) {
    // No answer. Only a request that can never be made is permanent; everything on the wire
    // (timeouts, resets, refused connections, TLS failures) may heal.
    out.permanent = reply.error().code == ErrorCode::kInvalidInput;
    out.detail = fmt::format("{}: {}", ErrorCodeName(reply.error().code), reply.error().message);
    return out;
  }
  out.http_status = reply->status;
  if (reply->status >= 200 && reply->status < 300) {
    out.accepted = true;
    out.detail = fmt::format("HTTP {}", reply->status);
    return out;
  }
  const bool retryable =
      reply->status == 408 || reply->status == 429 || reply->status >= 500 || reply->status < 200;
  out.permanent = !retryable;
  if (reply->status == 429 || reply->status == 503) {
    // 503 may carry Retry-After too (RFC 9110 section 10.2.3); honour it the same way.
    out.retry_after = ParseRetryAfter(reply->Header("Retry-After"), now);
  }
  out.detail = fmt::format("HTTP {}", reply->status);
  return out;
}

void HttpPager::Send(const Page& page, const PagerTarget& target,
                     std::function<void(SendOutcome)> done) {
  // The target's secrets and the pager's own (a configured API key) are what any text about
  // this attempt could leak.
  std::vector<Secret> secrets = own_secrets_;
  secrets.push_back(target.credential);
  secrets.push_back(target.signing_key);
  auto redact = [](std::string_view text, const std::vector<Secret>& all) {
    std::vector<const Secret*> ptrs;
    for (const Secret& s : all) ptrs.push_back(&s);
    return Redact(text, ptrs);
  };
  Result<HttpPost> request = BuildRequest(page, target);
  if (!request.ok()) {
    SendOutcome out;
    out.permanent = true;
    out.detail = redact(request.error().message, secrets);
    done(std::move(out));
    return;
  }
  // The completion captures copies, never `this`: the poster may finish after the caller has
  // moved on, and the secrets are needed to redact whatever the client reports.
  poster_->Post(std::move(request).value(),
                [secrets = std::move(secrets), redact, wall_clock = wall_clock_, reader = reader_,
                 done = std::move(done)](Result<HttpReply> reply) {
                  SendOutcome out = ClassifyHttp(reply, wall_clock());
                  if (reply.ok() && reader != nullptr) reader(*reply, &out);
                  out.detail = redact(out.detail, secrets);
                  out.request_id = redact(out.request_id, secrets);
                  done(std::move(out));
                });
}

}  // namespace tracepager::integrations

namespace tracepager::integrations {

std::string BodyExcerpt(std::string_view body, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(body.size(), max_bytes));
  for (char c : body) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() <= max_bytes) return out;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
  out.resize(cut);
  return out + "...";
}

}  // namespace tracepager::integrations
