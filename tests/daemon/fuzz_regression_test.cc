// Regression tests for what the libFuzzer targets (tests/fuzz) found: each input that crashed,
// hung or leaked, as a literal, with the behaviour it must have now.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <optional>
#include <string>

#include "daemon/config.h"

namespace tracepager::daemon {
namespace {

ConfigEnvironment NoEnvironment() {
  ConfigEnvironment env;
  env.get_env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  env.read_file = [](const std::string& path) -> Result<std::string> {
    return Error::NotFound(path + ": No such file or directory");
  };
  env.is_directory = [](const std::string&) { return false; };
  return env;
}

// ParseConfig on another thread, so that a regression fails the test instead of hanging it.
std::optional<ConfigLoad> ParseWithin(const std::string& yaml, std::chrono::seconds limit) {
  auto task = std::async(std::launch::async, [yaml] {
    return ParseConfig(yaml, "/etc/tracepager/tracepager.yaml", NoEnvironment());
  });
  if (task.wait_for(limit) != std::future_status::ready) {
    // The thread cannot be stopped; the process is ending with a failure anyway.
    ADD_FAILURE() << "ParseConfig did not return within " << limit.count() << " s";
    std::quick_exit(1);
  }
  return task.get();
}

// config_fuzz: yaml-cpp 0.7's YAML::LoadAll never returns on a document that starts with a
// flow indicator in block context (a daemon given such a file on reload would hang for good).
TEST(FuzzRegression, ConfigStartingWithACommaIsInvalidYamlNotAHang) {
  for (const char* text : {",", "\n,", "# tracepager\n#\n,", ", x", "server:\n  x: 1\n,"}) {
    std::optional<ConfigLoad> load = ParseWithin(text, std::chrono::seconds(20));
    ASSERT_TRUE(load.has_value());
    EXPECT_FALSE(load->config.has_value()) << text;
    ASSERT_EQ(load->problems.size(), 1u) << text;
    EXPECT_NE(load->problems[0].message.find("invalid YAML"), std::string::npos)
        << load->problems[0].ToString();
    EXPECT_GE(load->problems[0].line, 1) << load->problems[0].ToString();
  }
}

// Deep nesting is refused by the depth cap instead of recursing through yaml-cpp.
TEST(FuzzRegression, DeeplyNestedConfigIsRefusedWithALine) {
  std::string deep = "server: " + std::string(100'000, '[') + std::string(100'000, ']') + "\n";
  std::optional<ConfigLoad> load = ParseWithin(deep, std::chrono::seconds(20));
  ASSERT_TRUE(load.has_value());
  EXPECT_FALSE(load->config.has_value());
  ASSERT_EQ(load->problems.size(), 1u);
  EXPECT_EQ(load->problems[0].line, 1) << load->problems[0].ToString();
  EXPECT_NE(load->problems[0].ToString().find("deeper than"), std::string::npos)
      << load->problems[0].ToString();
}

}  // namespace
}  // namespace tracepager::daemon
