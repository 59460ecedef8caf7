// Time formats, redaction and decision ids for audit records (daemon/audit_record.h).
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <random>

#include "daemon/audit_record.h"

namespace tracepager::daemon {
namespace {

constexpr std::string_view kRedacted = "[redacted]";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at text[*pos].
bool ReadDigits(std::string_view text, size_t* pos, size_t n, int* out) {
  if (*pos + n > text.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = text[*pos + i];
    if (!IsDigit(c)) return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view text, size_t* pos, char c) {
  if (*pos >= text.size() || text[*pos] != c) return false;
  ++*pos;
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Query parameter names whose values are credentials. Matched as substrings of the lowercased
// name, so "routing_key", "api_key", "apikey" and "X-Amz-Signature" are all caught; over-redacting
// a harmless "monkey=1" is the better mistake.
bool IsCredentialName(std::string_view name) {
  static constexpr std::string_view kWords[] = {"token", "key", "secret", "password",   "passwd",
                                                "pwd",   "sig", "auth",   "credential", "session"};
  const std::string lower = Lower(name);
  for (std::string_view w : kWords) {
    if (lower.find(w) != std::string::npos) return true;
  }
  return false;
}

// Where a URL embedded in free text ends: at whitespace, a quote or a closing bracket.
bool EndsUrl(char c) {
  return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\'' || c == '<' ||
         c == '>' || c == '`' || c == '\\';
}

// Redacts user-info and credential query values of the URL text[begin, end) into `out`.
void ScrubUrl(std::string_view url, std::string& out) {
  size_t scheme_end = url.find("://");
  size_t auth_begin = scheme_end + 3;
  size_t auth_end = url.find_first_of("/?#", auth_begin);
  if (auth_end == std::string_view::npos) auth_end = url.size();
  std::string_view authority = url.substr(auth_begin, auth_end - auth_begin);
  out.append(url.substr(0, auth_begin));
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    out.append(kRedacted);
    out.append(authority.substr(at));
  } else {
    out.append(authority);
  }
  std::string_view rest = url.substr(auth_end);
  size_t q = rest.find('?');
  if (q == std::string_view::npos) {
    out.append(rest);
    return;
  }
  out.append(rest.substr(0, q + 1));
  std::string_view query = rest.substr(q + 1);
  std::string_view fragment;
  if (size_t hash = query.find('#'); hash != std::string_view::npos) {
    fragment = query.substr(hash);
    query = query.substr(0, hash);
  }
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view param = query.substr(start, amp - start);
    size_t eq = param.find('=');
    if (eq != std::string_view::npos && IsCredentialName(param.substr(0, eq))) {
      out.append(param.substr(0, eq + 1));
      out.append(kRedacted);
    } else {
      out.append(param);
    }
    if (amp < query.size()) out.push_back('&');
    start = amp + 1;
  }
  out.append(fragment);
}

// "Bearer <token>" and Opsgenie's "GenieKey <key>" in error texts (a peer echoing a header).
void ScrubAuthSchemes(std::string& text) {
  static constexpr std::string_view kSchemes[] = {"bearer ", "geniekey "};
  std::string lower = Lower(text);
  for (std::string_view scheme : kSchemes) {
    size_t pos = 0;
    while ((pos = lower.find(scheme, pos)) != std::string::npos) {
      size_t begin = pos + scheme.size();
      size_t end = begin;
      while (end < text.size() && !EndsUrl(text[end]) && text[end] != ',' && text[end] != ';') {
        ++end;
      }
      if (end > begin && text.compare(begin, end - begin, kRedacted) != 0) {
        text.replace(begin, end - begin, kRedacted);
        lower.replace(begin, end - begin, kRedacted);
      }
      pos = begin + 1;
    }
  }
}

}  // namespace

std::string FormatAuditTime(int64_t unix_ns) {
  const int64_t secs = unix_ns / 1'000'000'000;
  const int64_t micros = (unix_ns % 1'000'000'000) / 1000;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buf;
}

Result<int64_t> ParseAuditTime(std::string_view text) {
  auto bad = [&] {
    return Error::InvalidInput("\"" + std::string(text) +
                               "\" is not an RFC 3339 time (like 2025-06-11T03:15:22Z)");
  };
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(text, &pos, 4, &year) || !Expect(text, &pos, '-') ||
      !ReadDigits(text, &pos, 2, &month) || !Expect(text, &pos, '-') ||
      !ReadDigits(text, &pos, 2, &day)) {
    return bad();
  }
  int64_t frac_ns = 0;
  int64_t offset_s = 0;
  if (pos < text.size()) {
    char sep = text[pos];
    if (sep != 'T' && sep != 't' && sep != ' ') return bad();
    ++pos;
    if (!ReadDigits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') ||
        !ReadDigits(text, &pos, 2, &minute) || !Expect(text, &pos, ':') ||
        !ReadDigits(text, &pos, 2, &second)) {
      return bad();
    }
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      int64_t scale = 100'000'000;
      size_t digits = 0;
      while (pos < text.size() && IsDigit(text[pos])) {
        frac_ns += (text[pos] - '0') * scale;
        scale /= 10;
        ++pos;
        ++digits;
      }
      if (digits == 0) return bad();
    }
    if (pos >= text.size()) return bad();  // a time needs its zone
    char zone = text[pos];
    if (zone == 'Z' || zone == 'z') {
      ++pos;
    } else if (zone == '+' || zone == '-') {
      ++pos;
      int oh, om;
      if (!ReadDigits(text, &pos, 2, &oh) || !Expect(text, &pos, ':') ||
          !ReadDigits(text, &pos, 2, &om) || oh > 23 || om > 59) {
        return bad();
      }
      offset_s = (oh * 3600 + om * 60) * (zone == '+' ? 1 : -1);
    } else {
      return bad();
    }
  }
  if (pos != text.size() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
      minute > 59 || second > 60 || year < 1970) {
    return bad();
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::time_t t = timegm(&tm);
  if (tm.tm_mday != day && second != 60) return bad();  // 2025-02-30 normalises to March
  return (static_cast<int64_t>(t) - offset_s) * 1'000'000'000 + frac_ns;
}

std::string RedactUrl(std::string_view url) {
  if (url.empty()) return "";
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return std::string(kRedacted);
  size_t auth_begin = scheme_end + 3;
  size_t auth_end = url.find_first_of("/?#", auth_begin);
  if (auth_end == std::string_view::npos) auth_end = url.size();
  std::string_view authority = url.substr(auth_begin, auth_end - auth_begin);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  std::string out(url.substr(0, auth_begin));
  out.append(authority);
  std::string_view rest = url.substr(auth_end);
  if (!rest.empty() && rest != "/") {
    out.push_back('/');
    out.append(kRedacted);
  }
  return out;
}

std::string SecretFingerprint(std::string_view secret) {
  if (secret.empty()) return "";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), digest);
  char hex[9];
  std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", digest[0], digest[1], digest[2], digest[3]);
  return std::string("sha256:") + hex;
}

std::string ScrubText(std::string_view text, const std::vector<std::string>& secrets,
                      bool whole_urls) {
  std::string s(text);
  // Longest first, so that a URL is redacted whole before its path (also a secret) is.
  std::vector<std::string_view> ordered(secrets.begin(), secrets.end());
  std::sort(ordered.begin(), ordered.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  for (std::string_view secret : ordered) {
    if (secret.empty()) continue;
    size_t pos = 0;
    while ((pos = s.find(secret, pos)) != std::string::npos) {
      s.replace(pos, secret.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    size_t sep = s.find("://", pos);
    if (sep == std::string::npos) break;
    size_t begin = sep;
    while (begin > pos && (std::isalnum(static_cast<unsigned char>(s[begin - 1])) ||
                           s[begin - 1] == '+' || s[begin - 1] == '.' || s[begin - 1] == '-')) {
      --begin;
    }
    size_t end = sep + 3;
    while (end < s.size() && !EndsUrl(s[end])) ++end;
    out.append(s, pos, begin - pos);
    if (begin == sep) {  // "://" with no scheme before it: not a URL
      out.append(s, sep, end - sep);
    } else if (whole_urls) {
      out.append(RedactUrl(std::string_view(s).substr(begin, end - begin)));
    } else {
      ScrubUrl(std::string_view(s).substr(begin, end - begin), out);
    }
    pos = end;
  }
  out.append(s, pos, std::string::npos);
  ScrubAuthSchemes(out);
  return out;
}

DecisionIdGenerator::DecisionIdGenerator() {
  std::random_device rd;
  suffix_ = static_cast<uint16_t>(rd());
}

DecisionIdGenerator::DecisionIdGenerator(uint16_t suffix) : suffix_(suffix) {}

std::string DecisionIdGenerator::Next(int64_t now_ns) {
  int64_t us = now_ns / 1000;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (us <= last_us_) us = last_us_ + 1;
    last_us_ = us;
  }
  std::time_t t = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d.%06lldZ-%04x", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1'000'000), static_cast<unsigned>(suffix_));
  return buf;
}

}  // namespace tracepager::daemon
