#include "daemon/secrets.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "routing/registry.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using routing::SecretRef;
using ::testing::HasSubstr;
using ::testing::Not;
using tracepager::testing::TempDir;

// Sets an environment variable for the test's duration.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(Secrets, FromEnvironment) {
  ScopedEnv env("TRACEPAGER_TEST_SECRET_A", "env-secret-value-1");
  auto v = ResolveSecret({SecretRef::Kind::kEnv, "TRACEPAGER_TEST_SECRET_A"});
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, "env-secret-value-1");

  auto missing = ResolveSecret({SecretRef::Kind::kEnv, "TRACEPAGER_TEST_SECRET_UNSET"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "env TRACEPAGER_TEST_SECRET_UNSET is not set");

  ScopedEnv empty("TRACEPAGER_TEST_SECRET_EMPTY", "");
  auto e = ResolveSecret({SecretRef::Kind::kEnv, "TRACEPAGER_TEST_SECRET_EMPTY"});
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error().message, HasSubstr("is set but empty"));
}

TEST(Secrets, FromFiles) {
  TempDir dir;
  const std::string path = dir.Write("pd.key", "file-secret-value-2\n");
  auto v = ResolveSecret({SecretRef::Kind::kFile, path});
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, "file-secret-value-2\n");  // the registry loader trims

  auto missing = ResolveSecret({SecretRef::Kind::kFile, dir.path() + "/nope"});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr(dir.path() + "/nope: cannot open"));

  auto directory = ResolveSecret({SecretRef::Kind::kFile, dir.path()});
  ASSERT_FALSE(directory.ok());
  EXPECT_THAT(directory.error().message, HasSubstr("not a regular file"));

  const std::string big = dir.Write("big", std::string(kMaxSecretFileBytes + 1, 'k'));
  auto too_big = ResolveSecret({SecretRef::Kind::kFile, big});
  ASSERT_FALSE(too_big.ok());
  EXPECT_THAT(too_big.error().message, HasSubstr("larger than the limit"));
  EXPECT_THAT(too_big.error().message, Not(HasSubstr("kkkk")));

  if (::geteuid() != 0) {  // root reads anything; the check is meaningful for the daemon user
    const std::string locked = dir.Write("locked", "locked-secret");
    ::chmod(locked.c_str(), 0);
    auto unreadable = ResolveSecret({SecretRef::Kind::kFile, locked});
    ASSERT_FALSE(unreadable.ok());
    EXPECT_THAT(unreadable.error().message, HasSubstr("Permission denied"));
  }
}

TEST(Secrets, RegistryLoadResolvesFilesAndEnvironmentAndNeverPrintsValues) {
  TempDir dir;
  const std::string slack =
      dir.Write("slack", "https://hooks.slack.com/services/T/B/file-secret-3\n");
  ScopedEnv env("TRACEPAGER_TEST_PD", "env-secret-value-4");
  const std::string yaml =
      "teams:\n"
      "  a:\n"
      "    pagerduty: {routing_key: {env: TRACEPAGER_TEST_PD}}\n"
      "    slack: {webhook_url: {file: " +
      slack +
      "}}\n"
      "  b:\n"
      "    pagerduty: {routing_key: {file: " +
      dir.path() + "/missing}}\n";
  routing::RegistryLoadOptions options;
  options.resolve_secret = SystemSecretResolver();
  routing::RegistryLint lint = routing::Registry::Lint(yaml, "reg.yaml", options);
  ASSERT_EQ(lint.problems.size(), 1u);
  EXPECT_THAT(lint.problems[0].ToString(),
              HasSubstr("reg.yaml:6: teams.b.pagerduty.routing_key: secret file " + dir.path() +
                        "/missing: cannot open: No such file or directory"));
  const routing::Team* a = lint.registry.FindTeam("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->pager.pagerduty->routing_key->Reveal(), "env-secret-value-4");
  EXPECT_EQ(a->pager.slack->webhook_url->Reveal(),
            "https://hooks.slack.com/services/T/B/file-secret-3");
  EXPECT_EQ(fmt::format("{}", *a->pager.pagerduty->routing_key), "[redacted]");
  EXPECT_EQ(fmt::format("key={:>12}", *a->pager.slack->webhook_url), "key=  [redacted]");
}

}  // namespace
}  // namespace tracepager::daemon
