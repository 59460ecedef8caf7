#include "integrations/http/url.h"

#include <fmt/format.h>

#include <charconv>

namespace tracepager::integrations::http {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

std::string Url::Origin() const {
  const bool v6 = host.find(':') != std::string::npos;
  return fmt::format("{}://{}{}{}:{}", tls ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "",
                     port);
}

std::string Url::HostHeader() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += fmt::format(":{}", port);
  return h;
}

std::string_view Url::Path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

Result<Url> ParseUrl(std::string_view text) {
  // Messages quote only the scheme and host part: a URL may carry a secret in its path
  // (Slack webhook URLs do), and errors must never show one.
  for (unsigned char c : text) {
    if (c <= 0x20 || c == 0x7f) {
      return Error::InvalidInput("URL contains a space or a control character");
    }
  }
  Url url;
  std::string_view rest;
  const std::string scheme_end = "://";
  auto pos = text.find(scheme_end);
  if (pos == std::string_view::npos) {
    return Error::InvalidInput("URL must start with http:// or https://");
  }
  const std::string scheme = Lower(text.substr(0, pos));
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return Error::InvalidInput(fmt::format("URL scheme \"{}\" is not http or https", scheme));
  }
  rest = text.substr(pos + scheme_end.size());
  auto authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return Error::InvalidInput(
        "URL must not contain user:password@; configure credentials under auth instead");
  }
  if (tail.find('#') != std::string_view::npos) {
    return Error::InvalidInput("URL must not contain a fragment (#...)");
  }
  std::string_view host;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return Error::InvalidInput("URL has an unterminated IPv6 literal");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error::InvalidInput("URL has junk after the IPv6 literal");
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (host.empty()) return Error::InvalidInput("URL has no host");
  url.host = Lower(host);
  url.port = url.tls ? 443 : 80;
  if (!port_text.empty() || authority.back() == ':') {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port == 0 || port > 65535) {
      return Error::InvalidInput(fmt::format("URL for host {} has a bad port", url.host));
    }
    url.port = static_cast<uint16_t>(port);
  }
  if (tail.empty()) {
    url.target = "/";
  } else if (tail.front() == '?') {
    url.target = "/" + std::string(tail);
  } else {
    url.target = std::string(tail);
  }
  return url;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string BuildQuery(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (!out.empty()) out.push_back('&');
    out += PercentEncode(key);
    out.push_back('=');
    out += PercentEncode(value);
  }
  return out;
}

std::string JoinUrl(std::string_view base, std::string_view path) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::string out(base);
  out.push_back('/');
  out += path;
  return out;
}

}  // namespace tracepager::integrations::http
