#include "integrations/trace_backend_config.h"

#include <gtest/gtest.h>

#include <map>

namespace tracepager::integrations {
namespace {

using namespace std::chrono_literals;

class BackendConfigTest : public ::testing::Test {
 protected:
  BackendConfigTest() {
    env_.read_file = [this](const std::string& path) -> Result<std::string> {
      auto it = files_.find(path);
      if (it == files_.end()) return Error::NotFound("no such file");
      return it->second;
    };
    env_.get_env = [this](const std::string& name) -> std::optional<std::string> {
      auto it = vars_.find(name);
      if (it == vars_.end()) return std::nullopt;
      return it->second;
    };
  }

  std::vector<BackendConfigIssue> Parse(const std::string& yaml, TraceBackendConfig* c) {
    return ParseTraceBackendConfig(YAML::Load(yaml), env_, {"timeout"}, c);
  }

  static std::string Messages(const std::vector<BackendConfigIssue>& issues) {
    std::string out;
    for (const auto& i : issues)
      out += std::to_string(i.line) + " " + i.path + ": " + i.message + "\n";
    return out;
  }

  BackendConfigEnv env_;
  // Relative paths resolve against /etc/tp, as the daemon resolves them against the config's
  // directory.
  void SetUp() override {
    env_.resolve_path = [](const std::string& p) { return p[0] == '/' ? p : "/etc/tp/" + p; };
  }
  std::map<std::string, std::string> files_;
  std::map<std::string, std::string> vars_;
};

TEST_F(BackendConfigTest, ParsesAFullTempoSectionAndResolvesSecrets) {
  files_["/etc/tp/tempo.token"] = "s3cret\n";
  files_["/etc/tp/ca.pem"] = "-----BEGIN CERTIFICATE-----";
  vars_["TP_KEY"] = "k3y";
  TraceBackendConfig c;
  auto issues = Parse(R"(
type: tempo
timeout: 10s
name: tempo-eu
base_url: https://tempo.example:3200/tempo
api: v2
tenant: team-a
auth:
  bearer_token_file: /etc/tp/tempo.token
  headers:
    X-Api-Key: {env: TP_KEY}
    X-Plain: visible
tls: {verify: true, ca_file: ca.pem}
request_timeout: 3s
max_concurrency: 2
max_queue: 50
retries: {max_attempts: 4, initial_backoff: 100ms, max_backoff: 1s}
max_response_bytes: 16MiB
search_candidates: 40
cache: {ttl: 30s, max_entries: 10}
not_found: {delay: 1s, retries: 2}
)",
                      &c);
  ASSERT_TRUE(issues.empty()) << Messages(issues);
  EXPECT_EQ(c.label(), "tempo-eu");
  EXPECT_EQ(c.api, "v2");
  EXPECT_EQ(c.auth.kind, http::Auth::Kind::kBearer);
  EXPECT_EQ(c.auth.token.Reveal(), "s3cret");
  ASSERT_EQ(c.auth.headers.size(), 2u);
  EXPECT_EQ(c.auth.headers[0].second.Reveal(), "k3y");
  EXPECT_EQ(c.tls.ca_file, "/etc/tp/ca.pem");  // resolved
  EXPECT_EQ(c.request_timeout, 3s);
  EXPECT_EQ(c.max_concurrency, 2u);
  EXPECT_EQ(c.retry.max_attempts, 4);
  EXPECT_EQ(c.retry.max_backoff, 1s);
  EXPECT_EQ(c.max_response_bytes, 16u << 20);
  EXPECT_EQ(c.cache_ttl, 30s);
  EXPECT_EQ(CollectOptionsFor(c).not_found_retries, 2);
  EXPECT_EQ(CollectOptionsFor(c).not_found_delay, 1s);
}

TEST_F(BackendConfigTest, DefaultsAreSafe) {
  TraceBackendConfig c;
  auto issues = Parse("type: zipkin\nbase_url: http://zipkin:9411\n", &c);
  ASSERT_TRUE(issues.empty()) << Messages(issues);
  EXPECT_TRUE(c.tls.verify);
  EXPECT_EQ(c.max_concurrency, 4u);
  EXPECT_EQ(c.retry.max_attempts, 3);
  EXPECT_EQ(c.auth.kind, http::Auth::Kind::kNone);
}

TEST_F(BackendConfigTest, ReportsEveryProblemWithItsLineAndPath) {
  TraceBackendConfig c;
  auto issues = Parse(R"(type: jaeger
base_url: http://jaeger:16686
max_concurency: 4
retries: {max_attempts: many}
request_timeout: soon
auth:
  basic: {user: tp}
)",
                      &c);
  const std::string all = Messages(issues);
  EXPECT_NE(all.find("3 max_concurency: unknown key"), std::string::npos) << all;
  EXPECT_NE(all.find("4 retries.max_attempts: expected a non-negative integer"), std::string::npos)
      << all;
  EXPECT_NE(all.find("5 request_timeout: expected a duration"), std::string::npos) << all;
  EXPECT_NE(all.find("auth.basic.password_file: required"), std::string::npos) << all;
}

TEST_F(BackendConfigTest, SecretsNeverAppearInMessages) {
  files_["/etc/tp/pw"] = "hunter2";
  TraceBackendConfig c;
  auto issues = Parse(R"(type: jaeger
base_url: https://user:hunter3@jaeger/
auth:
  bearer_token_file: /etc/tp/pw
  basic: {user: tp, password_file: /etc/tp/missing}
)",
                      &c);
  const std::string all = Messages(issues);
  EXPECT_NE(all.find("either bearer_token_file or basic"), std::string::npos) << all;
  EXPECT_NE(all.find("cannot read /etc/tp/missing"), std::string::npos) << all;
  EXPECT_EQ(all.find("hunter2"), std::string::npos) << all;
}

TEST_F(BackendConfigTest, ValidatesMeaning) {
  auto messages = [](TraceBackendConfig c) { return Messages(ValidateTraceBackendConfig(c)); };
  TraceBackendConfig ok;
  ok.type = "tempo";
  ok.base_url = "http://tempo:3200";
  EXPECT_EQ(messages(ok), "");

  auto c = ok;
  c.type = "elastic";
  EXPECT_NE(messages(c).find("unknown trace backend \"elastic\""), std::string::npos);
  c = ok;
  c.base_url = "https://admin:pw@tempo/";
  EXPECT_NE(messages(c).find("user:password@"), std::string::npos);
  EXPECT_EQ(messages(c).find("admin:pw"), std::string::npos);
  c = ok;
  c.base_url = "tempo:3200";
  EXPECT_NE(messages(c).find("base_url"), std::string::npos);
  c = ok;
  c.api = "v3";
  EXPECT_NE(messages(c).find("not a Tempo API"), std::string::npos);
  c = ok;
  c.type = "jaeger";
  c.tenant = "team-a";
  EXPECT_NE(messages(c).find("only tempo takes a tenant"), std::string::npos);
  c = ok;
  c.tenant = "team a";
  EXPECT_NE(messages(c).find("tenant"), std::string::npos);
  c = ok;
  c.max_concurrency = 0;
  EXPECT_NE(messages(c).find("max_concurrency"), std::string::npos);
  c = ok;
  c.max_response_bytes = 4ull << 30;
  EXPECT_NE(messages(c).find("max_response_bytes"), std::string::npos);
  c = ok;
  c.tls.verify = false;
  c.tls.ca_file = "/x";
  EXPECT_NE(messages(c).find("no effect"), std::string::npos);
}

}  // namespace
}  // namespace tracepager::integrations
