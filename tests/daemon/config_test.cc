#include "daemon/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

// An in-memory file system and environment, so each case states exactly what exists.
struct FakeEnv {
  std::map<std::string, std::string> files;
  std::set<std::string> dirs;
  std::map<std::string, std::string> vars;

  ConfigEnvironment Get() const {
    ConfigEnvironment env;
    env.get_env = [this](const std::string& n) -> std::optional<std::string> {
      auto it = vars.find(n);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
    env.read_file = [this](const std::string& p) -> Result<std::string> {
      auto it = files.find(p);
      if (it == files.end()) return Error::NotFound(p + ": No such file or directory");
      return it->second;
    };
    env.is_directory = [this](const std::string& p) { return dirs.count(p) > 0; };
    return env;
  }
};

constexpr const char* kMinimal = R"(server:
  listen: ["127.0.0.1:0"]
registry:
  path: registry.yaml
trace_source:
  type: file
  dir: traces
pager:
  type: log
)";

FakeEnv MinimalEnv() {
  FakeEnv env;
  env.files["/cfg/registry.yaml"] = "default_team: platform\n";
  env.dirs.insert("/cfg/traces");
  return env;
}

std::vector<std::string> Messages(const ConfigLoad& load) {
  std::vector<std::string> out;
  for (const ConfigProblem& p : load.problems) out.push_back(p.ToString());
  return out;
}

std::string AllMessages(const ConfigLoad& load) {
  std::string out;
  for (const std::string& m : Messages(load)) out += m + "\n";
  return out;
}

TEST(Config, ExampleConfigLoads) {
  std::string path = testing::SourcePath("etc/tracepager.yaml");
  ConfigLoad load = LoadConfigFile(path, ConfigEnvironment::Process());
  ASSERT_TRUE(load.config.has_value()) << AllMessages(load);
  const Config& c = *load.config;
  // IPv4 loopback only, so that the demo starts on hosts without IPv6 (IPv6 listeners are
  // covered by ParseListenAddress below).
  ASSERT_EQ(c.server.listen.size(), 1u);
  EXPECT_EQ(c.server.listen[0].host, "127.0.0.1");
  EXPECT_EQ(c.server.listen[0].port, 9700);
  EXPECT_FALSE(c.server.listen[0].ipv6);
  EXPECT_EQ(c.server.body_limit_bytes, 1u << 20);
  EXPECT_EQ(c.server.header_timeout, std::chrono::seconds(10));
  EXPECT_TRUE(c.server.auth.bearer_tokens.empty());
  EXPECT_FALSE(c.server.auth.hmac.has_value());
  EXPECT_EQ(c.store.max_queued_jobs, 100000u);
  EXPECT_EQ(c.store.pace_above_jobs, std::optional<uint64_t>(50000));
  EXPECT_EQ(c.store.pace_max_wait, std::chrono::seconds(2));
  EXPECT_EQ(c.workers.count, 4u);
  EXPECT_EQ(c.workers.drain_deadline, std::chrono::seconds(20));
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
  EXPECT_EQ(c.alerts.service_labels,
            (std::vector<std::string>{"service", "service_name", "job", "app"}));
  EXPECT_EQ(c.alerts.latency_patterns.size(), 5u);
  EXPECT_EQ(c.alerts.lookback, std::chrono::minutes(15));
  EXPECT_EQ(c.alerts.storm_window, std::chrono::minutes(5));
  EXPECT_TRUE(c.routing.walk.timeout_masking);
  EXPECT_DOUBLE_EQ(c.routing.walk.timeout_fraction, 0.9);
  EXPECT_FALSE(c.routing.walk.page_fallout);
  EXPECT_EQ(c.registry.path, testing::SourcePath("etc/registry.yaml"));
  EXPECT_EQ(c.trace_source.type, "file");
  auto* file = std::get_if<FileTraceSourceConfig>(&c.trace_source.settings);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->dir, testing::SourcePath("etc/examples/traces"));
  EXPECT_EQ(file->max_file_bytes, 64u << 20);
  EXPECT_EQ(c.pager.type, "log");
  auto* log = std::get_if<LogPagerConfig>(&c.pager.settings);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->path, (std::filesystem::path(c.state_dir) / "pages.jsonl").lexically_normal());
  EXPECT_EQ(c.audit.path, (std::filesystem::path(c.state_dir) / "audit.jsonl").lexically_normal());
  EXPECT_TRUE(c.audit.sync_every_record);
  EXPECT_EQ(c.audit.max_files, 16u);
}

TEST(Config, MinimalConfigTakesDefaults) {
  FakeEnv env = MinimalEnv();
  ConfigLoad load = ParseConfig(kMinimal, "/cfg/tracepager.yaml", env.Get());
  ASSERT_TRUE(load.config.has_value()) << AllMessages(load);
  EXPECT_EQ(load.config->registry.path, "/cfg/registry.yaml");
  EXPECT_EQ(load.config->state_dir, "./state");
  EXPECT_EQ(load.config->server.max_connections, 512u);
  EXPECT_EQ(load.config->store.commit_max_batch, 1024u);
}

TEST(Config, StateDirectoryFromSystemd) {
  FakeEnv env = MinimalEnv();
  env.vars["STATE_DIRECTORY"] = "/var/lib/tracepager:/var/lib/other";
  ConfigLoad load = ParseConfig(kMinimal, "/cfg/tracepager.yaml", env.Get());
  ASSERT_TRUE(load.config.has_value()) << AllMessages(load);
  EXPECT_EQ(load.config->state_dir, "/var/lib/tracepager");
  EXPECT_EQ(std::get<LogPagerConfig>(load.config->pager.settings).path,
            "/var/lib/tracepager/pages.jsonl");
}

TEST(Config, UnknownKeyIsReportedWithFileLineAndPath) {
  FakeEnv env = MinimalEnv();
  std::string yaml = std::string(kMinimal) + "routing:\n  timeout_masking: true\n  routng: x\n";
  ConfigLoad load = ParseConfig(yaml, "/cfg/tracepager.yaml", env.Get());
  ASSERT_FALSE(load.config.has_value());
  ASSERT_EQ(load.problems.size(), 1u) << AllMessages(load);
  EXPECT_EQ(load.problems[0].line, 12);
  EXPECT_EQ(load.problems[0].path, "routing.routng");
  EXPECT_EQ(Messages(load)[0].rfind("/cfg/tracepager.yaml:12: config error at routing.routng: "
                                    "unknown key \"routng\" (known: timeout_masking,",
                                    0),
            0u)
      << Messages(load)[0];
}

TEST(Config, EveryProblemIsCollectedInLineOrder) {
  FakeEnv env = MinimalEnv();
  const char* yaml = R"(server:
  listen: ["127.0.0.1:9700", "localhost:80", "[::1]"]
  body_limit: 12 parsecs
  header_timeout: soon
workers:
  count: 0
log:
  level: loud
alerts:
  symptom:
    latency_patterns: ["(unclosed"]
registry:
  path: missing.yaml
trace_source:
  type: jaeger
pager:
  type: log
  dir: /tmp
)";
  ConfigLoad load = ParseConfig(yaml, "/cfg/tp.yaml", env.Get());
  ASSERT_FALSE(load.config.has_value());
  std::vector<std::string> m = Messages(load);
  ASSERT_EQ(m.size(), 10u) << AllMessages(load);
  EXPECT_EQ(m[0].rfind("/cfg/tp.yaml:2: config error at server.listen[1]: ", 0), 0u) << m[0];
  EXPECT_NE(m[0].find("not an IP address"), std::string::npos) << m[0];
  EXPECT_EQ(m[1].rfind("/cfg/tp.yaml:2: config error at server.listen[2]: ", 0), 0u) << m[1];
  EXPECT_EQ(m[2].rfind("/cfg/tp.yaml:3: config error at server.body_limit: ", 0), 0u) << m[2];
  EXPECT_EQ(m[3].rfind("/cfg/tp.yaml:4: config error at server.header_timeout: ", 0), 0u) << m[3];
  EXPECT_EQ(m[4].rfind("/cfg/tp.yaml:6: config error at workers.count: must be between 1 and", 0),
            0u)
      << m[4];
  EXPECT_EQ(m[5].rfind("/cfg/tp.yaml:8: config error at log.level: unknown level \"loud\"", 0), 0u)
      << m[5];
  EXPECT_EQ(m[6].rfind("/cfg/tp.yaml:11: config error at alerts.symptom.latency_patterns[0]: ", 0),
            0u)
      << m[6];
  EXPECT_EQ(m[7].rfind("/cfg/tp.yaml:13: config error at registry.path: /cfg/missing.yaml", 0), 0u)
      << m[7];
  EXPECT_EQ(m[8], "/cfg/tp.yaml:15: config error at trace_source.base_url: required");
  EXPECT_EQ(m[9].rfind("/cfg/tp.yaml:18: config error at pager.dir: unknown key \"dir\"", 0), 0u)
      << m[9];
}

TEST(Config, YamlSyntaxErrorHasALine) {
  FakeEnv env = MinimalEnv();
  ConfigLoad load =
      ParseConfig("server:\n  listen: [\"127.0.0.1:1\"\nregistry: {\n", "/cfg/bad.yaml", env.Get());
  ASSERT_EQ(load.problems.size(), 1u);
  EXPECT_GT(load.problems[0].line, 0);
  EXPECT_NE(load.problems[0].ToString().find("invalid YAML"), std::string::npos);
}

TEST(Config, EmptyAndMissingFiles) {
  FakeEnv env = MinimalEnv();
  ConfigLoad empty = ParseConfig("", "/cfg/empty.yaml", env.Get());
  ASSERT_EQ(empty.problems.size(), 1u);
  EXPECT_EQ(empty.problems[0].ToString(), "/cfg/empty.yaml:1: config error: the file is empty");
  ConfigLoad missing = LoadConfigFile("/cfg/none.yaml", env.Get());
  ASSERT_EQ(missing.problems.size(), 1u);
  EXPECT_EQ(missing.problems[0].ToString().rfind("/cfg/none.yaml: config error: ", 0), 0u);
}

TEST(Config, DuplicateKeyIsAnError) {
  FakeEnv env = MinimalEnv();
  std::string yaml = std::string(kMinimal) + "log:\n  level: info\n  level: debug\n";
  ConfigLoad load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  ASSERT_EQ(load.problems.size(), 1u) << AllMessages(load);
  EXPECT_EQ(load.problems[0].line, 12);
  EXPECT_NE(load.problems[0].message.find("duplicate key"), std::string::npos);
}

TEST(Config, RequiredSectionsAreNamed) {
  FakeEnv env;
  ConfigLoad load = ParseConfig("log: {level: info}\n", "/cfg/t.yaml", env.Get());
  std::string all = AllMessages(load);
  EXPECT_NE(all.find("at server.listen: required"), std::string::npos) << all;
  EXPECT_NE(all.find("at registry: required"), std::string::npos) << all;
  EXPECT_NE(all.find("at trace_source: required"), std::string::npos) << all;
  EXPECT_NE(all.find("at pager: required"), std::string::npos) << all;
}

TEST(Config, SecretsOnlyByReferenceAndNeverPrinted) {
  FakeEnv env = MinimalEnv();
  env.files["/cfg/token"] = "  t0ken-from-file\n";
  env.vars["TP_TOKEN"] = "t0ken-from-env";
  std::string yaml = R"(server:
  listen: ["0.0.0.0:9700"]
  auth:
    bearer_tokens:
      - {file: token}
      - {env: TP_TOKEN}
    hmac:
      secret: {env: TP_TOKEN}
      endpoints: [generic, grafana]
)" + std::string(kMinimal).substr(std::string(kMinimal).find("registry:"));
  ConfigLoad load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  ASSERT_TRUE(load.config.has_value()) << AllMessages(load);
  const AuthConfig& auth = load.config->server.auth;
  ASSERT_EQ(auth.bearer_tokens.size(), 2u);
  EXPECT_EQ(auth.bearer_tokens[0].Reveal(), "t0ken-from-file");
  EXPECT_EQ(auth.bearer_tokens[0].origin(), "file /cfg/token");
  EXPECT_EQ(auth.bearer_tokens[1].Reveal(), "t0ken-from-env");
  EXPECT_EQ(fmt::format("{}", auth.bearer_tokens[1]), "[redacted]");
  ASSERT_TRUE(auth.hmac.has_value());
  EXPECT_TRUE(auth.hmac->generic);
  EXPECT_TRUE(auth.hmac->grafana);
  EXPECT_EQ(auth.hmac->header, "X-Tracepager-Signature");

  // Inline secrets are refused, and the refused value is not echoed.
  std::string inline_yaml = R"(server:
  listen: ["127.0.0.1:9700"]
  auth:
    bearer_tokens: ["hunter2-inline"]
    hmac: {secret: {env: TP_MISSING}}
)" + std::string(kMinimal).substr(std::string(kMinimal).find("registry:"));
  ConfigLoad bad = ParseConfig(inline_yaml, "/cfg/t.yaml", env.Get());
  std::string all = AllMessages(bad);
  ASSERT_EQ(bad.problems.size(), 2u) << all;
  EXPECT_NE(all.find("t.yaml:4: config error at server.auth.bearer_tokens[0]: secrets are not "
                     "accepted inline"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("t.yaml:5: config error at server.auth.hmac.secret.env: environment "
                     "variable TP_MISSING is not set"),
            std::string::npos)
      << all;
  EXPECT_EQ(all.find("hunter2"), std::string::npos) << all;
}

TEST(Config, EmptySecretFileIsAnError) {
  FakeEnv env = MinimalEnv();
  env.files["/cfg/token"] = "\n";
  std::string yaml = R"(server:
  listen: ["127.0.0.1:9700"]
  auth: {bearer_tokens: [{file: token}]}
)" + std::string(kMinimal).substr(std::string(kMinimal).find("registry:"));
  ConfigLoad load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  ASSERT_EQ(load.problems.size(), 1u) << AllMessages(load);
  EXPECT_NE(load.problems[0].message.find("is empty"), std::string::npos);
}

TEST(Config, NonLoopbackWithoutTokensNeedsExplicitConsent) {
  FakeEnv env = MinimalEnv();
  std::string rest = std::string(kMinimal).substr(std::string(kMinimal).find("registry:"));
  ConfigLoad open =
      ParseConfig("server:\n  listen: [\"[::]:9700\"]\n" + rest, "/cfg/t.yaml", env.Get());
  ASSERT_EQ(open.problems.size(), 1u) << AllMessages(open);
  EXPECT_EQ(open.problems[0].path, "server.auth.bearer_tokens");
  ConfigLoad consented = ParseConfig(
      "server:\n  listen: [\"[::]:9700\"]\n  auth: {allow_unauthenticated: true}\n" + rest,
      "/cfg/t.yaml", env.Get());
  EXPECT_TRUE(consented.config.has_value()) << AllMessages(consented);
}

TEST(Config, TypedSectionsValidateByType) {
  FakeEnv env = MinimalEnv();
  const char* yaml = R"(server: {listen: ["127.0.0.1:0"]}
registry: {path: registry.yaml}
trace_source:
  type: file
  dir: nowhere
  url: http://jaeger:16686
pager: {path: /tmp/p.jsonl}
)";
  ConfigLoad load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  std::vector<std::string> m = Messages(load);
  ASSERT_EQ(m.size(), 3u) << AllMessages(load);
  EXPECT_EQ(m[0], "/cfg/t.yaml:5: config error at trace_source.dir: /cfg/nowhere: not a directory");
  EXPECT_EQ(m[1].rfind("/cfg/t.yaml:6: config error at trace_source.url: unknown key \"url\"", 0),
            0u);
  EXPECT_EQ(m[2], "/cfg/t.yaml:7: config error at pager.type: required (known: log, registry)");
}

TEST(Config, BooleansAreStrict) {
  FakeEnv env = MinimalEnv();
  std::string yaml = std::string(kMinimal) + "routing: {retries: yes, timeout_fraction: 1.5}\n";
  ConfigLoad load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  std::vector<std::string> m = Messages(load);
  ASSERT_EQ(m.size(), 2u) << AllMessages(load);
  // Same line: reported in the order the loader reads the keys.
  EXPECT_NE(m[0].find("routing.timeout_fraction"), std::string::npos) << m[0];
  EXPECT_NE(m[1].find("routing.retries: expected true or false, got \"yes\""), std::string::npos)
      << m[1];
}

TEST(Config, PacingIsOffOnlyWhenSaidAndNeverAboveTheQueueBound) {
  FakeEnv env = MinimalEnv();
  ConfigLoad load = ParseConfig(kMinimal, "/cfg/t.yaml", env.Get());
  ASSERT_TRUE(load.config.has_value()) << AllMessages(load);
  EXPECT_FALSE(load.config->store.pace_above_jobs.has_value()) << "the daemon takes half the bound";
  std::string yaml = std::string(kMinimal) + "store: {pace_above_jobs: 0, pace_max_wait: 500ms}\n";
  load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  ASSERT_TRUE(load.config.has_value()) << AllMessages(load);
  EXPECT_EQ(load.config->store.pace_above_jobs, std::optional<uint64_t>(0));
  EXPECT_EQ(load.config->store.pace_max_wait, std::chrono::milliseconds(500));
  yaml = std::string(kMinimal) +
         "store:\n  max_queued_jobs: 1000\n  pace_above_jobs: 1001\n  pace_max_wait: 2h\n";
  load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  std::vector<std::string> m = Messages(load);
  ASSERT_EQ(m.size(), 2u) << AllMessages(load);
  EXPECT_EQ(m[0],
            "/cfg/t.yaml:12: config error at store.pace_above_jobs: must be 0 (no pacing) or at "
            "most max_queued_jobs (1000)");
  EXPECT_EQ(m[1].rfind("/cfg/t.yaml:13: config error at store.pace_max_wait:", 0), 0u) << m[1];
}

TEST(Config, AuditSection) {
  FakeEnv env = MinimalEnv();
  std::string yaml = std::string(kMinimal) +
                     "audit: {path: audit/a.jsonl, sync: batched, max_file_size: 1MiB, "
                     "max_total_size: 512KiB}\n";
  ConfigLoad load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  ASSERT_EQ(load.problems.size(), 1u) << AllMessages(load);
  EXPECT_EQ(load.problems[0].path, "audit.max_total_size");
  yaml = std::string(kMinimal) + "audit: {path: audit/a.jsonl, sync: batched}\n";
  load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  ASSERT_TRUE(load.config.has_value()) << AllMessages(load);
  EXPECT_EQ(load.config->audit.path, "/cfg/audit/a.jsonl");
  EXPECT_FALSE(load.config->audit.sync_every_record);
}

TEST(Config, LoadConfigJoinsProblems) {
  FakeEnv env;
  env.files["/cfg/t.yaml"] = "server: {listen: [bad]}\nbogus: 1\n";
  Result<Config> c = LoadConfig("/cfg/t.yaml", env.Get());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(c.error().message.find("/cfg/t.yaml:1: config error at server.listen[0]"),
            std::string::npos)
      << c.error().message;
  EXPECT_NE(c.error().message.find("\n/cfg/t.yaml:2: config error at bogus: unknown key"),
            std::string::npos)
      << c.error().message;
}

TEST(ConfigValues, Durations) {
  EXPECT_EQ(*ParseDuration("250ms"), Millis(250));
  EXPECT_EQ(*ParseDuration("10s"), Millis(10'000));
  EXPECT_EQ(*ParseDuration("5m"), Millis(300'000));
  EXPECT_EQ(*ParseDuration("1h30m"), Millis(5'400'000));
  EXPECT_EQ(*ParseDuration("7d"), Millis(604'800'000));
  EXPECT_EQ(*ParseDuration("0"), Millis(0));
  for (const char* bad : {"", "10", "s", "1.5s", "-1s", "10 s", "1w", "99999999999999h"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(ConfigValues, Sizes) {
  EXPECT_EQ(*ParseSize("1048576"), 1048576u);
  EXPECT_EQ(*ParseSize("512KiB"), 524288u);
  EXPECT_EQ(*ParseSize("1MiB"), 1048576u);
  EXPECT_EQ(*ParseSize("2GiB"), 2147483648u);
  EXPECT_EQ(*ParseSize("1MB"), 1000000u);
  for (const char* bad : {"", "MiB", "1 MiB", "1mib", "-1", "1.5MiB", "99999999999999999GiB"}) {
    EXPECT_FALSE(ParseSize(bad).ok()) << bad;
  }
}

TEST(ConfigValues, ListenAddresses) {
  Result<ListenAddress> v4 = ParseListenAddress("127.0.0.1:9700");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9700);
  Result<ListenAddress> v6 = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->ipv6);
  EXPECT_EQ(v6->port, 0);
  for (const char* bad : {"localhost:9700", "::1:9700", "[::1]", "127.0.0.1", "127.0.0.1:65536",
                          "127.0.0.1:x", "[127.0.0.1]:80", "300.0.0.1:80", ""}) {
    EXPECT_FALSE(ParseListenAddress(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace tracepager::daemon

namespace tracepager::daemon {
namespace {

// trace_source of an HTTP backend: its keys are integrations::ParseTraceBackendConfig's, with
// our file name, path prefix and lines; secrets resolved through the config's environment.
TEST(Config, HttpTraceBackendSectionIsParsedByItsOwnParser) {
  FakeEnv env = MinimalEnv();
  env.files["/cfg/secrets/tempo.token"] = "s3cret-token\n";
  const char* yaml = R"(server: {listen: ["127.0.0.1:0"]}
registry: {path: registry.yaml}
trace_source:
  type: tempo
  name: tempo-eu
  base_url: https://tempo.example:3200
  tenant: team-a
  timeout: 4s
  auth: {bearer_token_file: secrets/tempo.token}
  not_found: {delay: 500ms, retries: 2}
pager: {type: log}
)";
  ConfigLoad load = ParseConfig(yaml, "/cfg/t.yaml", env.Get());
  ASSERT_TRUE(load.config.has_value()) << AllMessages(load);
  const TraceSourceConfig& ts = load.config->trace_source;
  EXPECT_EQ(ts.type, "tempo");
  EXPECT_EQ(ts.timeout, std::chrono::seconds(4));
  const auto* b = std::get_if<integrations::TraceBackendConfig>(&ts.settings);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->label(), "tempo-eu");
  EXPECT_EQ(b->base_url, "https://tempo.example:3200");
  EXPECT_EQ(b->tenant, "team-a");
  EXPECT_EQ(b->auth.token.Reveal(), "s3cret-token");
  EXPECT_EQ(b->not_found_delay, std::chrono::milliseconds(500));
  EXPECT_EQ(b->not_found_retries, 2);

  const char* bad = R"(server: {listen: ["127.0.0.1:0"]}
registry: {path: registry.yaml}
trace_source:
  type: jaeger
  base_url: http://jaeger:16686
  request_timeout: 5 seconds
  timeout: forever
  auth: {bearer_token_file: /nowhere/token}
  colour: blue
pager: {type: log}
)";
  ConfigLoad failed = ParseConfig(bad, "/cfg/t.yaml", env.Get());
  ASSERT_FALSE(failed.config.has_value());
  std::string all = AllMessages(failed);
  EXPECT_NE(all.find("/cfg/t.yaml:6: config error at trace_source.request_timeout: "),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("/cfg/t.yaml:7: config error at trace_source.timeout: "), std::string::npos)
      << all;
  EXPECT_NE(all.find("/cfg/t.yaml:8: config error at trace_source.auth.bearer_token_file: "),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("/cfg/t.yaml:9: config error at trace_source.colour: unknown key"),
            std::string::npos)
      << all;
}

}  // namespace
}  // namespace tracepager::daemon
