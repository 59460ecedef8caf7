// The `pagers:` and `delivery:` config sections: every field, regions and hosts, secrets by
// reference only (and never in a message), strict keys with lines.
#include "daemon/pager_config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <map>

namespace tracepager::daemon {
namespace {

ConfigEnvironment Env() {
  ConfigEnvironment env;
  env.get_env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "OG_KEY") return std::string("genie-secret-value\n");
    if (name == "EMPTY") return std::string("  ");
    return std::nullopt;
  };
  env.read_file = [](const std::string& path) -> Result<std::string> {
    if (path == "/etc/tp/hook.key") return std::string("hook-secret-value");
    if (path == "/etc/tp/ca.pem") return std::string("-----BEGIN CERTIFICATE-----");
    return Error::NotFound("cannot read " + path);
  };
  env.is_directory = [](const std::string&) { return false; };
  return env;
}

std::vector<ConfigProblem> Parse(const std::string& yaml, PagingConfig* out) {
  YAML::Node root = YAML::Load(yaml);
  return ParsePagingConfig(root["pagers"], root["delivery"], "/etc/tp/tracepager.yaml", Env(), out);
}

std::string All(const std::vector<ConfigProblem>& problems) {
  std::string out;
  for (const ConfigProblem& p : problems) out += p.ToString() + "\n";
  return out;
}

TEST(PagerConfig, AbsentSectionsConfigureNoHttpPagerAndDefaultDelivery) {
  PagingConfig c;
  EXPECT_TRUE(Parse("state_dir: /tmp\n", &c).empty());
  EXPECT_FALSE(c.pagers.pagerduty);
  EXPECT_FALSE(c.pagers.opsgenie);
  EXPECT_EQ(c.delivery.max_age, std::chrono::minutes(10));
}

TEST(PagerConfig, EveryField) {
  PagingConfig c;
  std::vector<ConfigProblem> problems = Parse(R"yaml(
pagers:
  pagerduty: {region: eu, client_url: "https://tracepager.example", timeout: 5s}
  opsgenie: {api: jsm, api_key: {env: OG_KEY}, timeout: 3s}
  slack: {timeout: 2s}
  webhook:
    signing_key: {file: hook.key}
    signature_header: X-Sig
    timestamp_header: X-Ts
  tls: {ca_file: ca.pem}
  trace_url_template: "https://jaeger.example/trace/{trace_id}"
  max_concurrency: 16
delivery:
  max_age: 5m
  resolve_max_age: 12h
  initial_backoff: 500ms
  max_backoff: 10s
  max_retry_after: 5m
  max_in_flight: 32
  max_in_flight_per_target: 2
  rate_limits: {slack: {per_second: 0.5, burst: 2}, webhook: {per_second: 10}}
  retention: 3d
)yaml",
                                              &c);
  ASSERT_TRUE(problems.empty()) << All(problems);
  ASSERT_TRUE(c.pagers.pagerduty);
  EXPECT_EQ(c.pagers.pagerduty->events_url, "https://events.eu.pagerduty.com/v2/enqueue");
  EXPECT_EQ(c.pagers.pagerduty->client_url, "https://tracepager.example");
  EXPECT_EQ(c.pagers.pagerduty->timeout, std::chrono::seconds(5));
  ASSERT_TRUE(c.pagers.opsgenie);
  EXPECT_EQ(c.pagers.opsgenie->base_url, "https://api.atlassian.com/jsm/ops/integration");
  EXPECT_EQ(c.pagers.opsgenie->api_key.Reveal(), "genie-secret-value");
  EXPECT_EQ(c.pagers.opsgenie->api_key.origin(), "env OG_KEY");
  ASSERT_TRUE(c.pagers.slack);
  EXPECT_EQ(c.pagers.slack->timeout, std::chrono::seconds(2));
  ASSERT_TRUE(c.pagers.webhook);
  EXPECT_EQ(c.pagers.webhook->signing_key.Reveal(), "hook-secret-value");
  EXPECT_EQ(c.pagers.webhook->signature_header, "X-Sig");
  EXPECT_EQ(c.pagers.webhook->timestamp_header, "X-Ts");
  EXPECT_EQ(c.pagers.tls.ca_file, "/etc/tp/ca.pem");
  EXPECT_EQ(c.pagers.max_concurrency, 16u);
  EXPECT_EQ(c.trace_url_template, "https://jaeger.example/trace/{trace_id}");
  EXPECT_EQ(c.delivery.max_age, std::chrono::minutes(5));
  EXPECT_EQ(c.delivery.initial_backoff, std::chrono::milliseconds(500));
  EXPECT_EQ(c.delivery.max_in_flight_per_target, 2u);
  EXPECT_EQ(c.delivery.rate_limits["slack"].per_second, 0.5);
  EXPECT_EQ(c.delivery.rate_limits["slack"].burst, 2.0);
  EXPECT_EQ(c.delivery.rate_limits["webhook"].per_second, 10.0);
  EXPECT_EQ(c.delivery.rate_limits["pagerduty"].per_second, 2.0);  // default kept
  EXPECT_EQ(c.delivery.retention, std::chrono::hours(72));
}

TEST(PagerConfig, ProblemsNameFileLineAndPathButNoSecret) {
  PagingConfig c;
  std::vector<ConfigProblem> problems = Parse(R"yaml(
pagers:
  pagerduty: {region: mars, routng_key: x}
  opsgenie: {api: us, api_key: genie-inline-secret}
  webhook: {signing_key: {env: EMPTY}}
  trace_url_template: "https://jaeger.example/trace/"
delivery:
  max_age: soon
  initial_backoff: 30s
  max_backoff: 10s
  rate_limits: {pagerdutty: {per_second: 1}}
)yaml",
                                              &c);
  std::string text = All(problems);
  EXPECT_NE(text.find("/etc/tp/tracepager.yaml:3: config error at pagers.pagerduty.routng_key: "
                      "unknown key"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pagers.pagerduty.region: expected us or eu"), std::string::npos) << text;
  EXPECT_NE(text.find("pagers.opsgenie.api_key: secrets are not accepted inline"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pagers.webhook.signing_key: the secret from env EMPTY is empty"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pagers.trace_url_template: must contain {trace_id}"), std::string::npos)
      << text;
  EXPECT_NE(text.find("delivery.max_age"), std::string::npos) << text;
  EXPECT_NE(text.find("delivery.initial_backoff: must not be longer than max_backoff"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("delivery.rate_limits.pagerdutty: unknown key"), std::string::npos) << text;
  EXPECT_EQ(text.find("genie-inline-secret"), std::string::npos) << text;
}

// Through the daemon's config loader: the sections tied to pager.type, problems as FILE:LINE.
ConfigLoad LoadWhole(const std::string& tail) {
  ConfigEnvironment env = Env();
  env.is_directory = [](const std::string& p) { return p == "/etc/tp/traces"; };
  env.read_file = [base = env.read_file](const std::string& path) -> Result<std::string> {
    if (path == "/etc/tp/registry.yaml") return std::string("default_team: a\nteams: {a: {}}\n");
    return base(path);
  };
  return ParseConfig(
      "server: {listen: [\"127.0.0.1:0\"]}\n"
      "registry: {path: registry.yaml}\n"
      "trace_source: {type: file, dir: traces}\n" +
          tail,
      "/etc/tp/tracepager.yaml", env);
}

std::string All(const ConfigLoad& load) { return All(load.problems); }

TEST(PagerConfig, TheDaemonConfigHoldsThePagingSections) {
  ConfigLoad load = LoadWhole(
      "pager: {type: registry}\n"
      "pagers:\n"
      "  pagerduty: {region: eu}\n"
      "  trace_url_template: https://jaeger.example/trace/{trace_id}\n"
      "delivery: {max_age: 2m, rate_limits: {slack: {per_second: 3}}}\n");
  ASSERT_TRUE(load.config) << All(load);
  const Config& c = *load.config;
  EXPECT_EQ(c.pager.type, "registry");
  EXPECT_TRUE(std::holds_alternative<RegistryPagerConfig>(c.pager.settings));
  ASSERT_TRUE(c.paging.pagers.pagerduty);
  EXPECT_EQ(c.paging.pagers.pagerduty->events_url, "https://events.eu.pagerduty.com/v2/enqueue");
  EXPECT_EQ(c.paging.trace_url_template, "https://jaeger.example/trace/{trace_id}");
  EXPECT_EQ(c.paging.delivery.max_age, std::chrono::minutes(2));
  EXPECT_EQ(c.paging.delivery.rate_limits.at("slack").per_second, 3.0);
}

TEST(PagerConfig, DaemonConfigProblemsCarryFileAndLine) {
  ConfigLoad load = LoadWhole(
      "pager: {type: registry}\n"
      "pagers:\n"
      "  pagerduty: {region: mars}\n"
      "delivery: {max_age: soon}\n");
  ASSERT_FALSE(load.config);
  ASSERT_EQ(load.problems.size(), 2u) << All(load);
  EXPECT_EQ(load.problems[0].ToString().rfind(
                "/etc/tp/tracepager.yaml:6: config error at pagers.pagerduty.region: ", 0),
            0u)
      << All(load);
  EXPECT_EQ(load.problems[1].ToString().rfind(
                "/etc/tp/tracepager.yaml:7: config error at delivery.max_age: ", 0),
            0u)
      << All(load);
}

TEST(PagerConfig, PagerTypeAndPagersMustAgree) {
  // Pagers that the log pager would never use: a mistake that pages nobody, refused.
  ConfigLoad unused = LoadWhole("pager: {type: log}\npagers: {slack: {}}\n");
  ASSERT_FALSE(unused.config);
  ASSERT_EQ(unused.problems.size(), 1u) << All(unused);
  EXPECT_EQ(unused.problems[0].ToString().rfind(
                "/etc/tp/tracepager.yaml:5: config error at pagers: pager.type is log", 0),
            0u)
      << All(unused);
  // A registry pager with nothing to page through.
  ConfigLoad none = LoadWhole("pager: {type: registry}\n");
  ASSERT_FALSE(none.config);
  ASSERT_EQ(none.problems.size(), 1u) << All(none);
  EXPECT_NE(none.problems[0].ToString().find("config error at pagers: pager.type registry needs"),
            std::string::npos)
      << All(none);
  // delivery: alone is fine with the log pager.
  ConfigLoad log = LoadWhole("pager: {type: log}\ndelivery: {max_age: 1m}\n");
  ASSERT_TRUE(log.config) << All(log);
  EXPECT_EQ(log.config->paging.delivery.max_age, std::chrono::minutes(1));
}

}  // namespace
}  // namespace tracepager::daemon
