#include "daemon/audit_api.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "daemon/audit_query.h"
#include "daemon/audit_render.h"
#include "daemon/audit_web_assets.h"
#include "daemon/http_server.h"

namespace tracepager::daemon {
namespace {

constexpr std::string_view kListPath = "/api/v1/decisions";
constexpr std::string_view kItemPrefix = "/api/v1/decisions/";

// The page loads only its own script and style and fetches only this origin; nothing inline, so
// alert labels shown on it can never run as script even if the rendering had a bug.
constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void CommonHeaders(AuditHttpResponse& r) {
  r.headers.emplace_back("Content-Security-Policy", kCsp);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
}

AuditHttpResponse JsonError(int status, std::string_view error, std::string_view reason) {
  AuditHttpResponse r;
  r.status = status;
  r.body = JsonErrorBody(error, reason);
  r.headers.emplace_back("Cache-Control", "no-store");
  CommonHeaders(r);
  return r;
}

AuditHttpResponse Json(std::string body) {
  AuditHttpResponse r;
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  CommonHeaders(r);
  return r;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view HeaderValue(const std::vector<std::pair<std::string, std::string>>& headers,
                             std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < k.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(k[i])) ==
             std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (same) return v;
  }
  return {};
}

// A strong ETag from the asset bytes (FNV-1a 64): assets only change with the binary.
std::string ETagOf(std::string_view body) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::string UrlDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view param = query.substr(start, amp - start);
    if (!param.empty()) {
      size_t eq = param.find('=');
      if (eq == std::string_view::npos) {
        out.emplace_back(UrlDecode(param), "");
      } else {
        out.emplace_back(UrlDecode(param.substr(0, eq)), UrlDecode(param.substr(eq + 1)));
      }
    }
    start = amp + 1;
  }
  return out;
}

AuditApi::AuditApi(AuditApiOptions options) : options_(std::move(options)) {
  if (!options_.now) {
    options_.now = [] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

std::vector<AuditApi::Route> AuditApi::Routes() {
  std::vector<Route> routes;
  for (const StaticAsset& a : AuditWebAssets()) routes.push_back({std::string(a.path), false});
  routes.push_back({std::string(kListPath), false});
  routes.push_back({std::string(kItemPrefix), true});
  return routes;
}

AuditHttpResponse AuditApi::Handle(
    std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers) const {
  std::string_view path = target;
  std::string_view query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    AuditHttpResponse r = JsonError(405, "method_not_allowed", "only GET and HEAD");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  AuditHttpResponse r;
  bool found = false;
  for (const StaticAsset& a : AuditWebAssets()) {
    if (path != a.path) continue;
    found = true;
    const std::string etag = ETagOf(a.body);
    r.content_type = std::string(a.content_type);
    r.headers.emplace_back("ETag", etag);
    r.headers.emplace_back("Cache-Control", "no-cache");
    CommonHeaders(r);
    if (HeaderValue(headers, "If-None-Match") == etag) {
      r.status = 304;
    } else {
      r.body = std::string(a.body);
    }
  }
  if (!found) {
    if (path == kListPath) {
      r = List(query);
    } else if (path.size() > kItemPrefix.size() &&
               path.substr(0, kItemPrefix.size()) == kItemPrefix) {
      r = Show(UrlDecode(path.substr(kItemPrefix.size())));
    } else {
      r = JsonError(404, "not_found", "no such page");
    }
  }
  if (head) r.body.clear();
  return r;
}

AuditHttpResponse AuditApi::List(std::string_view query) const {
  AuditFilter filter;
  size_t limit = options_.default_limit;
  const int64_t now = options_.now();
  for (const auto& [name, value] : ParseQuery(query)) {
    if (name == "limit") {
      char* end = nullptr;
      unsigned long long n = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n == 0) {
        return JsonError(400, "bad_request", "limit: expected a positive integer");
      }
      limit = static_cast<size_t>(std::min<unsigned long long>(n, options_.max_limit));
    } else if (name == "since" || name == "until") {
      if (value.empty()) continue;
      Result<int64_t> t = ParseTimeArg(value, now);
      if (!t.ok()) return JsonError(400, "bad_request", name + ": " + t.error().message);
      (name == "since" ? filter.since_ns : filter.until_ns) = *t;
    } else if (name == "service") {
      filter.service = value;
    } else if (name == "team") {
      filter.team = value;
    } else if (name == "alert") {
      filter.alert = value;
    } else if (name == "decision") {
      if (value == "routed") {
        filter.kind = routing::Decision::Kind::kRouted;
      } else if (value == "fallback") {
        filter.kind = routing::Decision::Kind::kFallback;
      } else if (!value.empty()) {
        return JsonError(400, "bad_request", "decision: expected routed or fallback");
      }
    } else if (name == "disagreement") {
      if (value == "true" || value == "1") {
        filter.disagreement_only = true;
      } else if (value != "false" && value != "0" && !value.empty()) {
        return JsonError(400, "bad_request", "disagreement: expected true or false");
      }
    } else {
      return JsonError(400, "bad_request", "unknown parameter \"" + name + "\"");
    }
  }
  if (AuditLogFiles(options_.log_path).empty()) return Json(ListingToJson(AuditListing{}));
  Result<AuditListing> listing = ListDecisions(options_.log_path, filter, limit);
  if (!listing.ok()) return JsonError(500, "internal", listing.error().message);
  return Json(ListingToJson(*listing));
}

AuditHttpResponse AuditApi::Show(std::string_view id) const {
  if (AuditLogFiles(options_.log_path).empty()) {
    return JsonError(404, "not_found", "no decision " + std::string(id));
  }
  Result<AuditDecisionDetail> detail = FindDecision(options_.log_path, id);
  if (!detail.ok()) {
    if (detail.error().code == ErrorCode::kNotFound) {
      // Not the library's message: it names the log's path, which is no business of a client.
      return JsonError(404, "not_found", "no decision " + std::string(id));
    }
    return JsonError(400, "bad_request", detail.error().message);
  }
  return Json(DetailToJson(*detail));
}

}  // namespace tracepager::daemon
