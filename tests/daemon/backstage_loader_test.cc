#include "daemon/backstage_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using ::testing::HasSubstr;
using tracepager::testing::FixturePath;
using tracepager::testing::TempDir;

TEST(BackstageLoader, LoadsTheFixtureTree) {
  auto c = LoadBackstageCatalog(FixturePath("backstage"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  // 11 YAML entities in the top-level files (team-a file: 6), 6 in the from-docs YAML, 3 in
  // the two API answers; two Systems and a Location skipped.
  EXPECT_EQ(c->entities.size(), 1u + 1u + 1u + 6u + 1u + 1u + 1u + 1u + 1u + 6u + 2u + 1u);
  EXPECT_EQ(c->skipped, 3u);
  for (const auto& p : c->problems) ADD_FAILURE() << p.ToString();
  // Sorted by path: from-docs/ sorts before the top-level files that follow it.
  EXPECT_THAT(c->entities.front().source, HasSubstr("acme_backstage-group.yaml"));
}

TEST(BackstageLoader, SingleFiles) {
  auto yaml = LoadBackstageCatalog(FixturePath("backstage/acme_team-a-group.yaml"));
  ASSERT_TRUE(yaml.ok()) << yaml.error().message;
  EXPECT_EQ(yaml->entities.size(), 6u);
  auto json = LoadBackstageCatalog(
      FixturePath("backstage/from-docs/catalog_api_entities_by_query_response.json"));
  ASSERT_TRUE(json.ok()) << json.error().message;
  EXPECT_EQ(json->entities.size(), 2u);
}

TEST(BackstageLoader, ABrokenFileDoesNotHideTheOthers) {
  TempDir dir;
  dir.Write("a/catalog-info.yaml", "kind: Component\nmetadata: {name: a}\nspec: {owner: t}\n");
  dir.Write("b/deep/catalog-info.yml", "kind: Group\nmetadata: {name: t}\n");
  dir.Write("c/catalog-info.yaml", "kind: Component\nmetadata:\n  name: [unclosed\n");
  dir.Write("d/api.json",
            "[{\"kind\":\"Component\",\"metadata\":{\"name\":\"d\"},"
            "\"spec\":{\"owner\":\"t\"}}]");
  dir.Write("e/README.md", "kind: Component\n");
  dir.Write(".git/catalog-info.yaml", "kind: Component\nmetadata: {name: hidden}\n");
  auto c = LoadBackstageCatalog(dir.path());
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->entities.size(), 3u);
  EXPECT_EQ(c->entities[0].ref.name, "a");
  EXPECT_EQ(c->entities[1].ref.name, "t");
  EXPECT_EQ(c->entities[2].ref.name, "d");
  ASSERT_EQ(c->problems.size(), 1u);
  EXPECT_EQ(c->problems[0].source, dir.path() + "/c/catalog-info.yaml");
  EXPECT_GT(c->problems[0].line, 0);
  EXPECT_THAT(c->problems[0].message, HasSubstr("invalid YAML"));
}

TEST(BackstageLoader, MissingPathIsAnError) {
  auto c = LoadBackstageCatalog("/nonexistent/tracepager/catalog");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("/nonexistent/tracepager/catalog: cannot read"));
  TempDir dir;
  const std::string bad = dir.Write("bad.yaml", "kind: [");
  auto single = LoadBackstageCatalog(bad);
  ASSERT_FALSE(single.ok());  // a single file that is not YAML cannot be checked at all
}

}  // namespace
}  // namespace tracepager::daemon
