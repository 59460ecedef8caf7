#include "integrations/trace_backend_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "integrations/http/url.h"
#include "integrations/http_trace_source.h"
#include "integrations/jaeger/jaeger_protocol.h"
#include "integrations/tempo/tempo_protocol.h"
#include "integrations/zipkin/zipkin_protocol.h"

namespace tracepager::integrations {
namespace {

using std::chrono::milliseconds;

// Durations and sizes in the daemon's notation ("250ms", "1h30m"; "64MiB"). daemon/config has
// the same parsers, but integrations/ cannot depend on daemon/.
std::optional<milliseconds> ParseDurationText(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), n);
    if (ec != std::errc() || n < 0) return std::nullopt;
    i = end - text.data();
    std::string_view rest = text.substr(i);
    int64_t unit = 0;
    if (rest.starts_with("ms")) {
      unit = 1, i += 2;
    } else if (rest.starts_with("s")) {
      unit = 1000, i += 1;
    } else if (rest.starts_with("m")) {
      unit = 60'000, i += 1;
    } else if (rest.starts_with("h")) {
      unit = 3'600'000, i += 1;
    } else if (rest.starts_with("d")) {
      unit = 86'400'000, i += 1;
    } else {
      return std::nullopt;
    }
    if (n > (int64_t{1} << 40) / unit) return std::nullopt;
    total += n * unit;
  }
  return milliseconds(total);
}

std::optional<uint64_t> ParseSizeText(std::string_view text) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc()) return std::nullopt;
  std::string_view unit = text.substr(end - text.data());
  static const std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1},      {"B", 1},         {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
      {"KB", 1000}, {"MB", 1000'000}, {"GB", 1000'000'000}};
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      if (n > (uint64_t{1} << 50) / factor) return std::nullopt;
      return n * factor;
    }
  }
  return std::nullopt;
}

class Parser {
 public:
  Parser(const BackendConfigEnv& env, std::vector<BackendConfigIssue>* issues)
      : env_(env), issues_(issues) {}

  void Problem(const YAML::Node& node, const std::string& path, std::string message) {
    issues_->push_back(
        {node.Mark().line >= 0 ? node.Mark().line + 1 : 0, path, std::move(message)});
  }

  // Checks that `node` is a map with only `known` keys (plus `extra`).
  bool Map(const YAML::Node& node, const std::string& path, std::set<std::string> known,
           const std::vector<std::string>& extra = {}) {
    if (!node.IsMap()) {
      Problem(node, path, "expected a mapping");
      return false;
    }
    for (const auto& e : extra) known.insert(e);
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (!known.count(key)) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        Problem(kv.first, Join(path, key), fmt::format("unknown key (known: {})", list));
      }
    }
    return true;
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  std::optional<std::string> String(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
      Problem(node, path, "expected a string");
      return std::nullopt;
    }
    return node.Scalar();
  }

  void Str(const YAML::Node& parent, const std::string& path, const char* key, std::string* out) {
    if (auto n = parent[key]) {
      if (auto s = String(n, Join(path, key))) *out = *s;
    }
  }

  template <typename T>
  void Uint(const YAML::Node& parent, const std::string& path, const char* key, T* out) {
    auto n = parent[key];
    if (!n) return;
    uint64_t v = 0;
    const std::string text = n.IsScalar() ? n.Scalar() : "";
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (!n.IsScalar() || text.empty() || ec != std::errc() || end != text.data() + text.size() ||
        v > std::numeric_limits<T>::max()) {
      return Problem(n, Join(path, key), "expected a non-negative integer");
    }
    *out = static_cast<T>(v);
  }

  void Duration(const YAML::Node& parent, const std::string& path, const char* key,
                milliseconds* out) {
    auto n = parent[key];
    if (!n) return;
    auto d = n.IsScalar() ? ParseDurationText(n.Scalar()) : std::nullopt;
    if (!d) return Problem(n, Join(path, key), "expected a duration such as 500ms, 5s or 1m");
    *out = *d;
  }

  void Bool(const YAML::Node& parent, const std::string& path, const char* key, bool* out) {
    auto n = parent[key];
    if (!n) return;
    const std::string t = n.IsScalar() ? n.Scalar() : "";
    if (t == "true") {
      *out = true;
    } else if (t == "false") {
      *out = false;
    } else {
      Problem(n, Join(path, key), "expected true or false");
    }
  }

  std::string Resolve(const std::string& file) const {
    return env_.resolve_path ? env_.resolve_path(file) : file;
  }

  std::optional<Secret> ReadSecretFile(const YAML::Node& node, const std::string& path,
                                       const std::string& written) {
    const std::string file = Resolve(written);
    if (!env_.read_file) {
      Problem(node, path, "cannot read files here");
      return std::nullopt;
    }
    auto content = env_.read_file(file);
    if (!content.ok()) {
      // The file's name is not secret; its content is, and is never quoted.
      Problem(node, path, fmt::format("cannot read {}: {}", file, content.error().message));
      return std::nullopt;
    }
    std::string value = std::move(content).value();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    if (value.empty()) {
      Problem(node, path, fmt::format("{} is empty", file));
      return std::nullopt;
    }
    return Secret(std::move(value), "file " + file);
  }

  // A header value: a plain string, {file: PATH} or {env: NAME}.
  std::optional<Secret> SecretValue(const YAML::Node& node, const std::string& path) {
    if (node.IsScalar()) return Secret(node.Scalar(), "config " + path);
    if (!Map(node, path, {"file", "env"})) return std::nullopt;
    if (node["file"] && node["env"]) {
      Problem(node, path, "give either file or env, not both");
      return std::nullopt;
    }
    if (auto f = node["file"]) {
      auto file = String(f, Join(path, "file"));
      return file ? ReadSecretFile(f, path, *file) : std::nullopt;
    }
    if (auto e = node["env"]) {
      auto name = String(e, Join(path, "env"));
      if (!name) return std::nullopt;
      auto value = env_.get_env ? env_.get_env(*name) : std::nullopt;
      if (!value || value->empty()) {
        Problem(e, path, fmt::format("environment variable {} is not set", *name));
        return std::nullopt;
      }
      return Secret(*value, "env " + *name);
    }
    Problem(node, path, "expected a string, {file: PATH} or {env: NAME}");
    return std::nullopt;
  }

  void Auth(const YAML::Node& node, const std::string& path, http::Auth* auth) {
    if (!Map(node, path, {"bearer_token_file", "basic", "headers"})) return;
    if (node["bearer_token_file"] && node["basic"]) {
      Problem(node, path, "give either bearer_token_file or basic, not both");
    }
    if (auto t = node["bearer_token_file"]) {
      if (auto file = String(t, Join(path, "bearer_token_file"))) {
        if (auto secret = ReadSecretFile(t, Join(path, "bearer_token_file"), *file)) {
          auth->kind = http::Auth::Kind::kBearer;
          auth->token = std::move(*secret);
        }
      }
    }
    if (auto b = node["basic"]) {
      const std::string bp = Join(path, "basic");
      if (Map(b, bp, {"user", "password_file"})) {
        auth->kind = http::Auth::Kind::kBasic;
        Str(b, bp, "user", &auth->user);
        if (auto p = b["password_file"]) {
          if (auto file = String(p, Join(bp, "password_file"))) {
            if (auto secret = ReadSecretFile(p, Join(bp, "password_file"), *file)) {
              auth->password = std::move(*secret);
            }
          }
        } else {
          Problem(b, Join(bp, "password_file"), "required for basic auth");
        }
      }
    }
    if (auto h = node["headers"]) {
      const std::string hp = Join(path, "headers");
      if (!h.IsMap()) return Problem(h, hp, "expected a mapping of header name to value");
      for (const auto& kv : h) {
        const std::string name = kv.first.Scalar();
        if (auto v = SecretValue(kv.second, Join(hp, name))) auth->headers.push_back({name, *v});
      }
    }
  }

 private:
  const BackendConfigEnv& env_;
  std::vector<BackendConfigIssue>* issues_;
};

bool TenantCharsOk(std::string_view tenant) {
  return std::all_of(tenant.begin(), tenant.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!-_.*'()|").find(c) != std::string_view::npos;
  });
}

}  // namespace

bool IsHttpTraceBackendType(std::string_view type) {
  return type == "jaeger" || type == "tempo" || type == "zipkin";
}

std::vector<BackendConfigIssue> ValidateTraceBackendConfig(const TraceBackendConfig& c) {
  std::vector<BackendConfigIssue> issues;
  auto bad = [&](std::string path, std::string message) {
    issues.push_back({0, std::move(path), std::move(message)});
  };
  if (!IsHttpTraceBackendType(c.type)) {
    bad("type", fmt::format("unknown trace backend \"{}\" (known: jaeger, tempo, zipkin)", c.type));
  }
  if (c.base_url.empty()) {
    bad("base_url", "required");
  } else if (auto url = http::ParseUrl(c.base_url); !url.ok()) {
    bad("base_url", url.error().message);
  } else if (url->target.find('?') != std::string::npos) {
    bad("base_url", "must not contain a query (?...)");
  }
  if (c.type == "jaeger" && !c.api.empty() && c.api != "v1" && c.api != "v3") {
    bad("api", fmt::format("\"{}\" is not a Jaeger API (v3 or v1)", c.api));
  }
  if (c.type == "tempo" && !c.api.empty() && c.api != "auto" && c.api != "v2" && c.api != "v1") {
    bad("api", fmt::format("\"{}\" is not a Tempo API (auto, v2 or v1)", c.api));
  }
  if (c.type == "zipkin" && !c.api.empty() && c.api != "v2") {
    bad("api", "zipkin has only the v2 API");
  }
  if (!c.tenant.empty()) {
    if (c.type != "tempo") bad("tenant", "only tempo takes a tenant (X-Scope-OrgID)");
    if (c.tenant.size() > 150 || !TenantCharsOk(c.tenant)) {
      bad("tenant",
          "at most 150 of the characters Tempo allows (letters, digits, ! - _ . * ' ( ))");
    }
  }
  if (c.auth.kind == http::Auth::Kind::kBasic && (c.auth.user.empty() || c.auth.password.empty())) {
    bad("auth.basic", "needs both user and password_file");
  }
  if (c.auth.kind == http::Auth::Kind::kBearer && c.auth.token.empty()) {
    bad("auth.bearer_token_file", "the token is empty");
  }
  for (const auto& [name, value] : c.auth.headers) {
    if (name.empty() || name.find_first_of(" :\r\n") != std::string::npos) {
      bad("auth.headers", fmt::format("\"{}\" is not a header name", name));
    }
    if (value.Reveal().find_first_of("\r\n") != std::string::npos) {
      bad("auth.headers." + name, "the value contains a line break");
    }
  }
  if (!c.tls.verify && !c.tls.ca_file.empty()) {
    bad("tls.ca_file", "has no effect with verify: false");
  }
  if (c.request_timeout <= milliseconds(0)) bad("request_timeout", "must be more than 0");
  if (c.max_concurrency < 1 || c.max_concurrency > 256) {
    bad("max_concurrency", "must be between 1 and 256");
  }
  if (c.max_queue < 1) bad("max_queue", "must be at least 1");
  if (c.retry.max_attempts < 1 || c.retry.max_attempts > 10) {
    bad("retries.max_attempts", "must be between 1 and 10");
  }
  if (c.retry.initial_backoff <= milliseconds(0) || c.retry.max_backoff < c.retry.initial_backoff) {
    bad("retries", "initial_backoff must be more than 0 and at most max_backoff");
  }
  if (c.max_response_bytes < 1024 || c.max_response_bytes > (1ull << 30)) {
    bad("max_response_bytes", "must be between 1KiB and 1GiB");
  }
  if (c.search_candidates < 1 || c.search_candidates > 1000) {
    bad("search_candidates", "must be between 1 and 1000");
  }
  if (c.cache_ttl < milliseconds(0)) bad("cache.ttl", "must not be negative");
  if (c.not_found_retries < 0 || c.not_found_retries > 20) {
    bad("not_found.retries", "must be between 0 and 20");
  }
  if (c.not_found_delay < milliseconds(0)) bad("not_found.delay", "must not be negative");
  return issues;
}

std::vector<BackendConfigIssue> ParseTraceBackendConfig(const YAML::Node& node,
                                                        const BackendConfigEnv& env,
                                                        const std::vector<std::string>& caller_keys,
                                                        TraceBackendConfig* c) {
  std::vector<BackendConfigIssue> issues;
  Parser p(env, &issues);
  if (!p.Map(node, "",
             {"type", "name", "base_url", "api", "tenant", "auth", "tls", "request_timeout",
              "max_concurrency", "max_queue", "retries", "max_response_bytes", "search_candidates",
              "cache", "not_found"},
             caller_keys)) {
    return issues;
  }
  p.Str(node, "", "type", &c->type);
  p.Str(node, "", "name", &c->name);
  p.Str(node, "", "base_url", &c->base_url);
  p.Str(node, "", "api", &c->api);
  p.Str(node, "", "tenant", &c->tenant);
  if (auto a = node["auth"]) p.Auth(a, "auth", &c->auth);
  if (auto t = node["tls"]; t && p.Map(t, "tls", {"verify", "ca_file"})) {
    p.Bool(t, "tls", "verify", &c->tls.verify);
    std::string ca;
    p.Str(t, "tls", "ca_file", &ca);
    if (!ca.empty()) {
      c->tls.ca_file = p.Resolve(ca);
      if (env.read_file) {
        if (auto content = env.read_file(c->tls.ca_file); !content.ok()) {
          p.Problem(t["ca_file"], "tls.ca_file",
                    fmt::format("cannot read {}: {}", c->tls.ca_file, content.error().message));
        }
      }
    }
  }
  p.Duration(node, "", "request_timeout", &c->request_timeout);
  p.Uint(node, "", "max_concurrency", &c->max_concurrency);
  p.Uint(node, "", "max_queue", &c->max_queue);
  if (auto r = node["retries"];
      r && p.Map(r, "retries", {"max_attempts", "initial_backoff", "max_backoff"})) {
    unsigned attempts = static_cast<unsigned>(c->retry.max_attempts);
    p.Uint(r, "retries", "max_attempts", &attempts);
    c->retry.max_attempts = static_cast<int>(std::min(attempts, 1000u));
    p.Duration(r, "retries", "initial_backoff", &c->retry.initial_backoff);
    p.Duration(r, "retries", "max_backoff", &c->retry.max_backoff);
  }
  if (auto m = node["max_response_bytes"]) {
    auto size = m.IsScalar() ? ParseSizeText(m.Scalar()) : std::nullopt;
    if (size) {
      c->max_response_bytes = *size;
    } else {
      p.Problem(m, "max_response_bytes", "expected a size such as 64MiB or 1048576");
    }
  }
  p.Uint(node, "", "search_candidates", &c->search_candidates);
  if (auto k = node["cache"]; k && p.Map(k, "cache", {"ttl", "max_entries"})) {
    p.Duration(k, "cache", "ttl", &c->cache_ttl);
    p.Uint(k, "cache", "max_entries", &c->cache_max_entries);
  }
  if (auto n = node["not_found"]; n && p.Map(n, "not_found", {"delay", "retries"})) {
    p.Duration(n, "not_found", "delay", &c->not_found_delay);
    unsigned retries = static_cast<unsigned>(c->not_found_retries);
    p.Uint(n, "not_found", "retries", &retries);
    c->not_found_retries = static_cast<int>(std::min(retries, 1000u));
  }
  if (!issues.empty()) return issues;
  // Problems of meaning point at the section's key when the YAML has it.
  for (auto& issue : ValidateTraceBackendConfig(*c)) {
    const std::string top = issue.path.substr(0, issue.path.find('.'));
    auto at = node[top];
    issue.line = at ? at.Mark().line + 1 : node.Mark().line + 1;
    issues.push_back(std::move(issue));
  }
  return issues;
}

Result<std::shared_ptr<TraceSource>> MakeHttpTraceSource(const TraceBackendConfig& c,
                                                         boost::asio::io_context& io,
                                                         BackendMetrics* metrics) {
  std::shared_ptr<const TraceProtocol> protocol;
  if (c.type == "jaeger") {
    protocol = std::make_shared<JaegerProtocol>(
        c.base_url, c.api == "v1" ? JaegerProtocol::Api::kV1 : JaegerProtocol::Api::kV3,
        c.search_candidates);
  } else if (c.type == "tempo") {
    const auto api = c.api == "v1"   ? TempoProtocol::Api::kV1
                     : c.api == "v2" ? TempoProtocol::Api::kV2
                                     : TempoProtocol::Api::kAuto;
    protocol = std::make_shared<TempoProtocol>(c.base_url, c.tenant, api, c.search_candidates);
  } else if (c.type == "zipkin") {
    protocol = std::make_shared<ZipkinProtocol>(c.base_url, c.search_candidates);
  } else {
    return Error::InvalidInput(fmt::format("unknown trace backend \"{}\"", c.type));
  }
  http::ClientOptions options;
  options.name = c.label();
  options.max_concurrency = c.max_concurrency;
  options.max_queue = c.max_queue;
  options.attempt_timeout = c.request_timeout;
  options.max_response_bytes = c.max_response_bytes;
  options.retry = c.retry;
  options.tls = c.tls;
  options.auth = c.auth;
  options.metrics = metrics;
  auto client = http::HttpClient::Create(io, std::move(options));
  if (!client.ok()) return client.error();
  std::shared_ptr<TraceSource> source =
      std::make_shared<HttpTraceSource>(protocol, std::move(client).value(), metrics);
  if (c.cache_ttl > milliseconds(0) && c.cache_max_entries > 0) {
    TraceCacheOptions cache;
    cache.ttl = c.cache_ttl;
    cache.max_entries = c.cache_max_entries;
    source = std::make_shared<CachingTraceSource>(std::move(source), cache);
  }
  return source;
}

CollectOptions CollectOptionsFor(const TraceBackendConfig& c) {
  CollectOptions options;
  options.not_found_delay = c.not_found_delay;
  options.not_found_retries = c.not_found_retries;
  return options;
}

}  // namespace tracepager::integrations
