// The configuration of an HTTP trace backend (Jaeger, Tempo, Zipkin): a typed struct, its
// YAML form, its checks, and the factory that builds the TraceSource from it.
//
// YAML (the `trace_source:` section of the daemon's config; keys the daemon owns, such as
// `type` and `timeout`, are passed in `caller_keys` and skipped here):
//
//   type: tempo                        # jaeger | tempo | zipkin
//   name: tempo-eu                     # metrics/log label; default: the type
//   base_url: https://tempo.example:3200
//   api: auto                          # jaeger: v3 (default) | v1; tempo: auto | v2 | v1
//   tenant: team-a                     # tempo only: X-Scope-OrgID
//   auth:                              # at most one of bearer_token_file / basic
//     bearer_token_file: /etc/tracepager/tempo.token
//     basic: {user: tracepager, password_file: /etc/tracepager/tempo.password}
//     headers: {X-Api-Key: {file: /etc/tracepager/key}}   # value: string, {file:} or {env:}
//   tls: {verify: true, ca_file: /etc/tracepager/ca.pem}
//   request_timeout: 5s                # per attempt, connect included
//   max_concurrency: 4                 # requests in flight to this backend, at most
//   max_queue: 1024                    # requests waiting for a slot, at most
//   retries: {max_attempts: 3, initial_backoff: 200ms, max_backoff: 2s}
//   max_response_bytes: 64MiB
//   search_candidates: 100             # traces asked for when sorting/filtering client-side
//   cache: {ttl: 60s, max_entries: 256}  # ttl 0 disables the cache
//   not_found: {delay: 2s, retries: 3}   # a trace id answering 404 is asked again
//
// Secrets (token, password, secret header values) are read while parsing, through `env`,
// and held as Secret: they never appear in a message. Files (secrets, tls.ca_file) must be
// readable at load time; relative paths go through env.resolve_path.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "integrations/http/http_client.h"
#include "integrations/metrics.h"
#include "integrations/secret.h"
#include "integrations/trace_cache.h"
#include "integrations/trace_collector.h"
#include "integrations/trace_source.h"
#include "routing/result.h"

namespace boost::asio {
class io_context;
}

namespace tracepager::integrations {

struct TraceBackendConfig {
  std::string type;  // "jaeger" | "tempo" | "zipkin"
  std::string name;  // label for metrics and logs; empty = type
  std::string base_url;
  std::string api;     // jaeger: "v3" | "v1"; tempo: "auto" | "v2" | "v1"; empty = default
  std::string tenant;  // tempo: X-Scope-OrgID; empty = single-tenant

  http::Auth auth;  // resolved secrets
  http::TlsOptions tls;
  std::chrono::milliseconds request_timeout{5'000};
  size_t max_concurrency = 4;
  size_t max_queue = 1024;
  http::RetryPolicy retry{3, std::chrono::milliseconds(200), std::chrono::milliseconds(2'000), 2.0};
  uint64_t max_response_bytes = 64ull << 20;
  size_t search_candidates = 100;

  std::chrono::milliseconds cache_ttl{60'000};  // 0 = no cache
  size_t cache_max_entries = 256;

  std::chrono::milliseconds not_found_delay{2'000};
  int not_found_retries = 3;

  const std::string& label() const { return name.empty() ? type : name; }
};

// One problem in a backend's config. `path` is relative to the section ("auth.basic.user");
// the caller prefixes its own ("trace_source."). `line` is 1-based, 0 when unknown.
struct BackendConfigIssue {
  int line = 0;
  std::string path;
  std::string message;
};

// What parsing may read besides the YAML. The daemon passes its own (tests pass fakes).
struct BackendConfigEnv {
  std::function<Result<std::string>(const std::string& path)> read_file;
  std::function<std::optional<std::string>(const std::string& name)> get_env;
  // Turns a path as written (relative to the config file) into one to open; unset = as is.
  std::function<std::string(const std::string& path)> resolve_path;
};

// Checks a config (also one built in code): type known; base_url an http(s) URL without
// credentials; api valid for the type; tenant only for tempo and made of Tempo's allowed
// characters (at most 150); limits in range; auth complete. Returns every problem found.
std::vector<BackendConfigIssue> ValidateTraceBackendConfig(const TraceBackendConfig& config);

// Parses the section `node` into `config` (starting from its current values, the defaults),
// resolves secrets, then validates. Unknown keys are problems, except `caller_keys`.
// Returns every problem found; the config is usable only when the list is empty.
std::vector<BackendConfigIssue> ParseTraceBackendConfig(const YAML::Node& node,
                                                        const BackendConfigEnv& env,
                                                        const std::vector<std::string>& caller_keys,
                                                        TraceBackendConfig* config);

// True for the types this file builds ("jaeger", "tempo", "zipkin").
bool IsHttpTraceBackendType(std::string_view type);

// Builds the source: protocol + HTTP client on `io` (+ the cache decorator unless its ttl
// is 0). `metrics` may be null; otherwise it must outlive the source.
// REQUIRES: ValidateTraceBackendConfig(config) is empty. Fails (kInvalidInput) when the TLS
// settings cannot be loaded.
Result<std::shared_ptr<TraceSource>> MakeHttpTraceSource(const TraceBackendConfig& config,
                                                         boost::asio::io_context& io,
                                                         BackendMetrics* metrics);

// The collector's policy from the config (404 retries), with max_traces and the deadline
// left for the caller.
CollectOptions CollectOptionsFor(const TraceBackendConfig& config);

}  // namespace tracepager::integrations
