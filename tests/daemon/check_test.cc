// `tracepager check` run as a process, the way CI and ExecStartPre run it.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::RunTracepager;
using testing::SourcePath;
using testing::TempDir;

TEST(CheckCommand, ExampleConfigIsOk) {
  testing::ProcessResult r =
      RunTracepager({"check", "--config", SourcePath("etc/tracepager.yaml")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("tracepager check: OK: ", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line: " << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST(CheckCommand, ConfigProblemsArePrintedWithFileAndLine) {
  TempDir dir;
  dir.Write("registry.yaml", "default_team: platform\nteams:\n  platform: {}\n");
  std::string config = dir.Write("tp.yaml", R"(server:
  listen: ["127.0.0.1:9700"]
  body_limit: huge
registry: {path: registry.yaml}
trace_source: {type: zipkin}
pager: {type: log}
workers: {cuont: 2}
)");
  testing::ProcessResult r = RunTracepager({"check", "--config", config});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find(config + ":3: config error at server.body_limit: "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(config + ":5: config error at trace_source.base_url: required"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(config + ":7: config error at workers.cuont: unknown key"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("tracepager check: 3 problems in " + config), std::string::npos) << r.err;
}

TEST(CheckCommand, RegistryProblemsFailTheCheck) {
  TempDir dir;
  dir.Write("traces/.keep", "");
  std::string registry = dir.Write("registry.yaml", R"(default_team: platform
teams:
  platform: {}
services:
  payment: {team: paymnts}
)");
  std::string config = dir.Write("tp.yaml", R"(server: {listen: ["127.0.0.1:9700"]}
registry: {path: registry.yaml}
trace_source: {type: file, dir: traces}
pager: {type: log}
)");
  testing::ProcessResult r = RunTracepager({"check", "--config", config});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(registry + ":5"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("paymnts"), std::string::npos) << r.err;
}

TEST(CheckCommand, RegistryTargetsMustBeUsableByTheConfiguredPagers) {
  TempDir dir;
  dir.Write("traces/.keep", "");
  dir.Write("pd.key", "0123456789abcdef0123456789abcdef\n");
  dir.Write("slack.url", "https://hooks.slack.com/services/T000/B000/XXXX\n");
  std::string registry = dir.Write("registry.yaml",
                                   "default_team: platform\nteams:\n"
                                   "  platform:\n    pagerduty: {routing_key: {file: " +
                                       dir.path() +
                                       "/pd.key}}\n"
                                       "  web:\n    slack: {webhook_url: {file: " +
                                       dir.path() +
                                       "/slack.url}}\n"
                                       "    opsgenie: {team: Web}\n");
  auto config = [&](const std::string& pagers) {
    return dir.Write("tp.yaml",
                     "server: {listen: [\"127.0.0.1:9700\"]}\n"
                     "registry: {path: registry.yaml}\n"
                     "trace_source: {type: file, dir: traces}\n"
                     "pager: {type: registry}\npagers:\n" +
                         pagers);
  };
  // PagerDuty only: web's Slack and Opsgenie targets could never page.
  testing::ProcessResult r = RunTracepager({"check", "--config", config("  pagerduty: {}\n")});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find(registry + ": pager target problem: team web: slack target left out: no "
                                  "pagers.slack section"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("team web: opsgenie target left out: no pagers.opsgenie section"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("hooks.slack.com"), std::string::npos) << "a secret was printed";
  // Opsgenie without any API key is still unusable.
  r = RunTracepager(
      {"check", "--config", config("  pagerduty: {}\n  slack: {}\n  opsgenie: {}\n")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("team web: opsgenie target left out: no api_key on the target and none "
                       "under pagers.opsgenie"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("slack target"), std::string::npos) << r.err;
  // Every kind in use configured: OK.
  dir.Write("genie.key", "genie\n");
  r = RunTracepager({"check", "--config",
                     config("  pagerduty: {}\n  slack: {}\n  opsgenie: "
                            "{api_key: {file: genie.key}}\n")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // With the registry pager, target secrets must resolve.
  std::filesystem::remove(dir.path() + "/pd.key");
  r = RunTracepager({"check", "--config",
                     config("  pagerduty: {}\n  slack: {}\n  opsgenie: "
                            "{api_key: {file: genie.key}}\n")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("pd.key"), std::string::npos) << r.err;
}

TEST(CheckCommand, MissingConfigFileAndUsage) {
  testing::ProcessResult missing = RunTracepager({"check", "--config", "/nonexistent/tp.yaml"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/tp.yaml: config error: "), std::string::npos)
      << missing.err;
  testing::ProcessResult usage = RunTracepager({"check"});
  EXPECT_EQ(usage.exit_code, 2);
}

}  // namespace
}  // namespace tracepager::daemon
