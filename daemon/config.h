// The daemon's configuration: one YAML file (etc/tracepager.yaml is the commented example)
// parsed into typed structs. Nothing YAML-shaped leaves the loader.
//
// Loading is strict and complete:
//   - unknown keys, duplicate keys, wrong types and bad values are all errors;
//   - every problem is collected (loading does not stop at the first) and each is reported as
//       FILE:LINE: config error at server.listen[1]: expected HOST:PORT, got "localhost"
//   - secrets (bearer tokens, HMAC keys) are accepted only by reference, {file: PATH} or
//     {env: NAME}, and are resolved during the load; their values never appear in a message;
//   - relative paths are resolved against the directory of the config file, so an example config
//     can point at files next to it wherever it is installed;
//   - files the config names (registry, TLS cert/key, token files) must exist and be readable at
//     load time; a config that loads is one the daemon can start with.
// A loaded Config is immutable; the daemon shares it as shared_ptr<const Config> and a reload
// swaps the pointer.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemon/alert.h"
#include "daemon/paging_config.h"
#include "integrations/secret.h"
#include "integrations/trace_backend_config.h"
#include "routing/result.h"
#include "routing/walk.h"

namespace tracepager::daemon {

using Millis = std::chrono::milliseconds;
using integrations::Secret;

// One address to listen on. `host` is an IP literal without brackets ("127.0.0.1", "::1");
// port 0 asks the kernel for a free port (tests).
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
  bool ipv6 = false;
  std::string text;  // as written in the config, for messages
};

struct TlsConfig {
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
};

// Optional HMAC-SHA256 body signature (hex, lowercase, no "sha256=" prefix, Grafana's scheme).
// With `timestamp_header` set, the signed bytes are "<unix seconds>:<body>" and a timestamp
// older than max_skew is refused.
struct HmacConfig {
  Secret secret;
  std::string header = "X-Tracepager-Signature";
  std::string timestamp_header;  // empty: sign the body only
  Millis max_skew{std::chrono::minutes(5)};
  bool generic = true;   // required on POST /api/v1/alerts
  bool grafana = false;  // required on POST /api/v1/alerts/grafana
};

struct AuthConfig {
  std::vector<Secret> bearer_tokens;   // any one of them is accepted; empty: no token required
  bool open_health = true;             // /healthz and /readyz answer without a token
  bool open_metrics = false;           // /metrics answers without a token
  bool allow_unauthenticated = false;  // permits no tokens on a non-loopback listen address
  std::optional<HmacConfig> hmac;
};

struct ServerConfig {
  std::vector<ListenAddress> listen;  // at least one
  std::optional<TlsConfig> tls;       // absent: plain HTTP
  uint64_t body_limit_bytes = 1u << 20;
  Millis header_timeout{std::chrono::seconds(10)};
  Millis body_timeout{std::chrono::seconds(30)};
  Millis idle_timeout{std::chrono::seconds(60)};
  uint32_t max_connections = 512;
  uint32_t json_max_depth = 32;
  AuthConfig auth;
};

struct StoreConfig {
  uint64_t max_queued_jobs = 100'000;  // beyond it enqueue answers kUnavailable (HTTP 503)
  // Above this backlog webhooks are answered only as the workers make room (IntakeOptions::
  // pace_above_jobs), for at most pace_max_wait each. Absent: half of max_queued_jobs; 0: off.
  std::optional<uint64_t> pace_above_jobs;
  Millis pace_max_wait{std::chrono::seconds(2)};
  uint64_t max_bytes = 0;            // database size cap; 0 = only the disk limits it
  uint32_t commit_max_batch = 1024;  // operations per group-commit transaction
  Millis commit_max_delay{0};        // extra time the writer waits to gather a batch
  Millis busy_timeout{std::chrono::seconds(5)};
  Millis decision_retention{std::chrono::hours(24 * 30)};
};

struct WorkersConfig {
  uint32_t count = 4;
  Millis drain_deadline{std::chrono::seconds(20)};
  uint32_t max_group = 1000;  // jobs of one storm handled together
  uint32_t max_attempts = 3;  // trace fetches that find nothing (yet) before routing anyway
  Millis retry_delay{std::chrono::seconds(10)};
};

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };
const char* LogLevelName(LogLevel level);

struct RoutingConfig {
  routing::WalkOptions walk;
  uint32_t max_traces = 20;  // traces fetched per decision
};

struct RegistryConfig {
  std::string path;            // routing::Registry YAML; required
  std::string backstage_path;  // optional Backstage catalog file or directory
};

// trace_source: `type` selects one of these; each type's keys are validated by type.
struct FileTraceSourceConfig {
  std::string dir;  // trace JSON files, any format routing::ReadTraces reads
  uint64_t max_file_bytes = 64u << 20;
};
// jaeger | tempo | zipkin: the section is integrations::TraceBackendConfig's YAML (parsed and
// checked by integrations/trace_backend_config.h; `type` and `timeout` are ours), secrets
// resolved at load.
struct TraceSourceConfig {
  std::string type = "file";                 // "file" | "jaeger" | "tempo" | "zipkin"
  Millis timeout{std::chrono::seconds(10)};  // the job's deadline: total fetch time per decision
  std::variant<FileTraceSourceConfig, integrations::TraceBackendConfig> settings;
};

// pager: `type` selects one of these.
//   log       every team is paged through one `log` target (a JSON Lines file), whatever
//             targets the registry gives it: the embedded default, no pager account needed;
//   registry  each team is paged through its registry targets (PagerDuty, Opsgenie / JSM,
//             Slack, webhook) with the pagers configured under `pagers:` (Config::paging).
struct LogPagerConfig {
  std::string path;  // JSON Lines file; default <state_dir>/pages.jsonl
};
struct RegistryPagerConfig {};
struct PagerConfig {
  std::string type;  // "log" | "registry"
  std::variant<LogPagerConfig, RegistryPagerConfig> settings;
};

// The audit log (daemon/audit_log.h): one JSON line per routing decision and per page delivery.
struct AuditConfig {
  std::string path;               // default <state_dir>/audit.jsonl
  bool sync_every_record = true;  // false: batched (sync_interval / sync_every_records)
  Millis sync_interval{1000};
  uint32_t sync_every_records = 256;
  uint64_t max_file_bytes = 64u << 20;  // rotate past this; 0: never rotate
  uint32_t max_files = 16;              // rotated files kept; 0: no count limit
  uint64_t max_total_bytes = 0;         // all files together; 0: no byte limit
};

struct Config {
  std::string source;  // the file it was loaded from
  ServerConfig server;
  std::string state_dir;
  StoreConfig store;
  WorkersConfig workers;
  LogLevel log_level = LogLevel::kInfo;
  AlertRules alerts;
  RoutingConfig routing;
  RegistryConfig registry;
  TraceSourceConfig trace_source;
  PagerConfig pager;
  // The `pagers:` and `delivery:` sections (daemon/pager_config.h). With pager.type "log",
  // `pagers:` must be empty (a pager section that would page nobody is a mistake); with
  // "registry", at least one pager kind must be configured. `delivery:` applies to both.
  PagingConfig paging;
  AuditConfig audit;
};

// One problem found while loading. ToString() gives `FILE:LINE: config error at PATH: MESSAGE`.
struct ConfigProblem {
  std::string file;
  int line = 0;      // 1-based; 0 when the problem has no position (an unreadable file)
  std::string path;  // "server.listen[1]"; empty for the document itself
  std::string message;
  std::string ToString() const;
};

// What the loader may look at besides the text. Tests replace these to stay hermetic.
struct ConfigEnvironment {
  // Returns the variable's value, or nullopt when unset.
  std::function<std::optional<std::string>(const std::string&)> get_env;
  // Reads a whole file (secrets, existence checks).
  std::function<Result<std::string>(const std::string&)> read_file;
  // True when `path` is an existing directory.
  std::function<bool(const std::string&)> is_directory;

  // The process environment and file system.
  static ConfigEnvironment Process();
};

// The secret a config names with {file: PATH} or {env: NAME}, read the one way both config
// readers (this file's and pager_config.h's) accept it. `from_file`: `name` is PATH, already
// resolved against the config's directory; else `name` is the variable. Returns the value with
// surrounding whitespace trimmed and origin "file PATH" or "env NAME". The value may come back
// empty: the caller reports that against the whole reference. Errors, never quoting a value:
// read_file's error for the file, "environment variable NAME is not set".
Result<Secret> ReadConfigSecret(const ConfigEnvironment& env, bool from_file,
                                const std::string& name);

// The outcome of a load: a config when there were no problems, else every problem found.
struct ConfigLoad {
  std::optional<Config> config;
  std::vector<ConfigProblem> problems;
};

// Parses `yaml`. `source` names the file in messages and is the base for relative paths.
ConfigLoad ParseConfig(std::string_view yaml, std::string_view source,
                       const ConfigEnvironment& env);

// Reads and parses the file at `path`.
ConfigLoad LoadConfigFile(const std::string& path, const ConfigEnvironment& env);

// Convenience: the config, or kInvalidInput whose message is every problem, one per line.
Result<Config> LoadConfig(const std::string& path,
                          const ConfigEnvironment& env = ConfigEnvironment::Process());

// Parses a duration such as "250ms", "10s", "5m", "1h", "7d", "1h30m". Exposed for tests.
Result<Millis> ParseDuration(std::string_view text);
// Parses a size such as "1048576", "512KiB", "1MiB", "2GiB", "1MB". Exposed for tests.
Result<uint64_t> ParseSize(std::string_view text);
// Parses "127.0.0.1:9700" or "[::1]:9700" (IP literals only: no name resolution at load).
Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace tracepager::daemon
