#include "routing/backstage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace tracepager::routing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using tracepager::testing::FixturePath;
using tracepager::testing::ReadFile;

constexpr char kFixtureKey[] = "0123456789abcdef0123456789abcdef";  // placeholder key in fixtures

BackstageCatalog LoadFixture(const std::string& relative) {
  const std::string path = FixturePath("backstage/" + relative);
  const std::string text = ReadFile(path);
  Result<BackstageCatalog> c = relative.ends_with(".json") ? ParseBackstageJson(text, relative)
                                                           : ParseBackstageYaml(text, relative);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? std::move(*c) : BackstageCatalog{};
}

// Every fixture, YAML files first, then JSON, each in sorted order.
BackstageCatalog LoadAllFixtures() {
  std::vector<std::string> files;
  const std::filesystem::path root = FixturePath("backstage");
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files.push_back(std::filesystem::relative(e.path(), root).string());
  }
  std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) {
    return std::make_pair(a.ends_with(".json"), a) < std::make_pair(b.ends_with(".json"), b);
  });
  BackstageCatalog all;
  for (const std::string& f : files) {
    BackstageCatalog c = LoadFixture(f);
    for (auto& e : c.entities) all.entities.push_back(std::move(e));
    for (auto& p : c.problems) all.problems.push_back(std::move(p));
    all.skipped += c.skipped;
  }
  return all;
}

const BackstageEntity* Find(const BackstageCatalog& c, const std::string& ref) {
  for (const BackstageEntity& e : c.entities) {
    if (e.ref.ToString() == ref) return &e;
  }
  return nullptr;
}

TEST(EntityRefs, ParsesEveryOwnerForm) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"payments", "group:default/payments"},
      {"group:payments", "group:default/payments"},
      {"group:default/payments", "group:default/payments"},
      {"user:default/jane", "user:default/jane"},
      {"user:K-Phoen", "user:default/K-Phoen"},
      {"Group:Default/Team-A", "group:default/Team-A"},
      {"ops/payments", "group:ops/payments"},
  };
  for (const Case& c : cases) {
    auto ref = ParseEntityRef(c.in, "group");
    ASSERT_TRUE(ref.has_value()) << c.in;
    EXPECT_EQ(ref->ToString(), c.out) << c.in;
  }
  for (const char* bad : {"", "group:", ":x", "group:/x", "a/b/c", "group:default/", "a b"}) {
    EXPECT_FALSE(ParseEntityRef(bad, "group").has_value()) << bad;
  }
  EXPECT_EQ(ParseEntityRef("x", "group", "ops")->ToString(), "group:ops/x");
}

TEST(EntityRefs, TeamNames) {
  EXPECT_EQ(TeamNameFor(*ParseEntityRef("group:default/payments", "group")), "payments");
  EXPECT_EQ(TeamNameFor(*ParseEntityRef("group:ops/payments", "group")), "ops/payments");
  EXPECT_EQ(TeamNameFor(*ParseEntityRef("user:default/jane", "group")), "user:jane");
  EXPECT_EQ(TeamNameFor(*ParseEntityRef("user:dev/jane", "group")), "user:dev/jane");
}

TEST(BackstageFixtures, EveryFixtureLoads) {
  const BackstageCatalog all = LoadAllFixtures();
  EXPECT_GE(all.entities.size(), 20u);
  EXPECT_EQ(all.skipped, 3u);  // two Systems and a Location
  for (const auto& p : all.problems) ADD_FAILURE() << p.ToString();
}

TEST(BackstageFixtures, MultiDocumentGroupAndUsers) {
  const BackstageCatalog c = LoadFixture("acme_team-a-group.yaml");
  ASSERT_EQ(c.entities.size(), 6u);
  EXPECT_EQ(c.entities[0].ref.ToString(), "group:default/team-a");
  EXPECT_EQ(c.entities[0].line, 1);
  EXPECT_NE(Find(c, "user:default/guest"), nullptr);
  EXPECT_NE(Find(c, "user:development/guest"), nullptr);  // same name, other namespace
  EXPECT_GT(Find(c, "user:development/guest")->line, Find(c, "user:default/guest")->line);

  const BackstageCatalog org = LoadFixture("acme_org.yaml");
  EXPECT_EQ(org.entities.size(), 1u);
  EXPECT_EQ(org.skipped, 1u);  // the Location
}

TEST(BackstageFixtures, OwnerForms) {
  EXPECT_EQ(LoadFixture("artist-lookup-component.yaml").entities.at(0).owner->ToString(),
            "group:default/team-a");
  EXPECT_EQ(LoadFixture("opsgenie-plugin_catalog-info.yaml").entities.at(0).owner->ToString(),
            "user:default/K-Phoen");
  EXPECT_EQ(LoadFixture("playback-order-component.yaml").entities.at(0).owner->ToString(),
            "group:default/guest");
  const BackstageCatalog c = LoadFixture("artists-db-resource.yaml");
  ASSERT_EQ(c.entities.size(), 1u);
  const BackstageEntity& db = c.entities[0];
  EXPECT_EQ(db.kind, "Resource");
  EXPECT_EQ(db.type, "database");
  EXPECT_EQ(db.owner->ToString(), "group:default/team-a");
}

TEST(BackstageFixtures, OnCallAnnotationsBecomeTargetsAndTheKeyIsASecret) {
  const BackstageCatalog c =
      LoadFixture("from-docs/catalog-info_with_pagerduty_opsgenie_annotations.yaml");
  EXPECT_EQ(c.entities.size(), 6u);  // System skipped
  EXPECT_EQ(c.skipped, 1u);
  const BackstageEntity* checkout = Find(c, "component:default/checkout");
  ASSERT_NE(checkout, nullptr);
  EXPECT_EQ(checkout->owner->ToString(), "group:default/payments");
  ASSERT_TRUE(checkout->pagerduty_integration_key.has_value());
  EXPECT_EQ(checkout->pagerduty_integration_key->Reveal(), kFixtureKey);
  EXPECT_EQ(checkout->pagerduty_integration_key->ToString(), "[redacted]");
  EXPECT_EQ(checkout->pagerduty_integration_key->ref().Describe(),
            "annotation pagerduty.com/integration-key of component:default/checkout");
  EXPECT_EQ(checkout->pagerduty_service_id, "PABC123");
  EXPECT_EQ(checkout->opsgenie_team, "Payments Team");
  EXPECT_EQ(Find(c, "component:default/email")->opsgenie_team, "Messaging");
  EXPECT_EQ(Find(c, "resource:default/orders-db")->owner->ToString(), "group:default/payments");
  EXPECT_EQ(Find(c, "group:default/payments")->pagerduty_service_id, "PGRP001");
}

TEST(BackstageFixtures, CatalogApiJsonBothShapes) {
  const BackstageCatalog q = LoadFixture("from-docs/catalog_api_entities_by_query_response.json");
  ASSERT_EQ(q.entities.size(), 2u);
  const BackstageEntity* lookup = Find(q, "component:default/artist-lookup");
  ASSERT_NE(lookup, nullptr);
  EXPECT_EQ(lookup->owner->ToString(), "group:default/team-a");
  EXPECT_EQ(lookup->owner_written, "group:default/team-a");  // from the ownedBy relation
  EXPECT_TRUE(lookup->pagerduty_integration_key.has_value());
  EXPECT_EQ(Find(q, "group:default/team-a")->opsgenie_team, "Team A");

  const BackstageCatalog legacy =
      LoadFixture("from-docs/catalog_api_entities_list_response_legacy.json");
  ASSERT_EQ(legacy.entities.size(), 1u);
  EXPECT_EQ(legacy.entities[0].owner->ToString(), "group:default/guest");
}

TEST(BackstageJson, OwnedByRelationWinsOverSpecOwnerAndLegacyTargetIsRead) {
  auto c = ParseBackstageJson(R"([
    {"kind":"Component","metadata":{"name":"a"},"spec":{"owner":"x"},
     "relations":[{"type":"partOf","targetRef":"system:default/s"},
                  {"type":"ownedBy","targetRef":"group:default/y"}]},
    {"kind":"Component","metadata":{"name":"b"},"spec":{"owner":"x"},
     "relations":[{"type":"ownedBy","target":{"kind":"group","namespace":"ops","name":"z"}}]}
  ])",
                              "api.json");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->entities[0].owner->ToString(), "group:default/y");
  EXPECT_EQ(c->entities[1].owner->ToString(), "group:ops/z");
}

TEST(BackstageHostile, BadInputIsAnErrorOrASkippedEntity) {
  auto bad_yaml = ParseBackstageYaml("kind: Component\nmetadata: {name: [\n", "c.yaml");
  ASSERT_FALSE(bad_yaml.ok());
  EXPECT_THAT(bad_yaml.error().message, HasSubstr("c.yaml:"));

  auto mixed = ParseBackstageYaml(
      "- not an entity\n---\nkind: Component\nmetadata: {name: [x]}\n---\n"
      "metadata: {name: y}\n---\nkind: Component\nmetadata: {name: ok}\nspec: {owner: t}\n",
      "c.yaml");
  ASSERT_TRUE(mixed.ok()) << mixed.error().message;
  ASSERT_EQ(mixed->entities.size(), 1u);
  EXPECT_EQ(mixed->entities[0].ref.name, "ok");
  ASSERT_EQ(mixed->problems.size(), 3u);
  EXPECT_EQ(mixed->problems[0].ToString(),
            "c.yaml:1: document is a sequence, expected a mapping; entity skipped");
  EXPECT_EQ(mixed->problems[1].ToString(),
            "c.yaml:3: metadata.name is a sequence, expected a string; entity skipped");
  EXPECT_EQ(mixed->problems[2].ToString(),
            "c.yaml:6: no \"kind\": not a Backstage entity; skipped");

  auto deep = ParseBackstageJson(std::string(100000, '[') + std::string(100000, ']'), "d.json");
  EXPECT_TRUE(deep.ok());  // an array of one array: entity 0 is not an object
  EXPECT_EQ(deep->problems.size(), 1u);
  EXPECT_FALSE(ParseBackstageJson("{\"kind\":1}", "d.json").ok());
  EXPECT_FALSE(ParseBackstageJson("[1,", "d.json").ok());
  auto wrong = ParseBackstageJson(R"([{"kind":"Component","metadata":{"name":7}}])", "d.json");
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->problems.at(0).ToString(),
            "d.json: entity 0: metadata.name is a number, expected a string; entity skipped");

  // Anchors do not cross documents, so aliases cannot multiply a catalog walk; a document
  // that tries is an error, not a hang.
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 0; i < 2000; ++i) {
    bomb += "---\nkind: Component\nmetadata: {name: n" + std::to_string(i) + "}\nrelations: *a\n";
  }
  auto b = ParseBackstageYaml(bomb, "b.yaml");
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.error().message, HasSubstr("b.yaml:5: alias *a names no complete anchor"));
}

TEST(BackstageMergeTest, AllFixturesIntoAnEmptyRegistry) {
  const BackstageCatalog all = LoadAllFixtures();
  const BackstageMerge m = MergeBackstage(Registry(), all);
  const Registry& r = m.registry;
  ASSERT_NE(r.FindService("artist-lookup"), nullptr);
  EXPECT_EQ(r.FindService("artist-lookup")->team, "team-a");
  EXPECT_EQ(r.FindService("artist-lookup")->origin, Origin::kBackstage);
  ASSERT_NE(r.FindService("artists-db"), nullptr);
  EXPECT_EQ(r.FindService("artists-db")->kind, "resource");
  EXPECT_EQ(r.FindService("orders-db")->team, "payments");
  EXPECT_EQ(r.FindService("checkout")->team, "payments");
  EXPECT_EQ(r.FindService("email")->team, "messaging");
  EXPECT_EQ(r.FindService("checkout")->pager.pagerduty->service_id, "PABC123");
  EXPECT_EQ(r.FindTeam("payments")->pager.pagerduty->service_id, "PGRP001");
  EXPECT_EQ(r.FindTeam("team-a")->origin, Origin::kBackstage);
  EXPECT_TRUE(r.FindTeam("team-a")->declared);

  // Dangling owners: `guest` (a bare ref is a Group; only a User guest exists), `CNCF`, and
  // user:K-Phoen (no such User in the catalog).
  std::vector<std::string> dangling;
  for (const auto& p : m.dangling) dangling.push_back(p.ToString());
  ASSERT_EQ(dangling.size(), 3u) << ::testing::PrintToString(dangling);
  EXPECT_THAT(dangling, ::testing::Contains(HasSubstr(
                            "playback-order-component.yaml:1: component:default/playback-order "
                            "spec.owner: owner \"guest\" (group:default/guest) is not a Group or "
                            "User in the catalog nor a local team; a User guest exists")));
  EXPECT_THAT(dangling, ::testing::Contains(HasSubstr("owner \"CNCF\"")));
  EXPECT_THAT(dangling, ::testing::Contains(HasSubstr("owner \"user:K-Phoen\"")));
  EXPECT_FALSE(r.FindTeam("guest")->declared);
  EXPECT_EQ(r.FindService("backstage-plugin-opsgenie")->team, "user:K-Phoen");

  // The catalog API's copies of artist-lookup and playback-order are the same entities with the
  // same owners as the YAML files: nothing to report.
  EXPECT_TRUE(m.conflicts.empty());
  EXPECT_TRUE(m.catalog_conflicts.empty());
}

TEST(BackstageMergeTest, SameNameInTwoNamespacesOrTwoOwnersIsACatalogConflict) {
  auto c = ParseBackstageYaml(
      "kind: Component\nmetadata: {name: svc}\nspec: {owner: a}\n---\n"
      "kind: Component\nmetadata: {name: svc, namespace: ops}\nspec: {owner: b}\n---\n"
      "kind: Component\nmetadata: {name: svc}\nspec: {owner: c}\n---\n"
      "kind: Component\nmetadata: {name: svc}\nspec: {owner: group:default/a}\n",
      "cat.yaml");
  ASSERT_TRUE(c.ok());
  const BackstageMerge m = MergeBackstage(Registry(), *c);
  ASSERT_EQ(m.catalog_conflicts.size(), 2u);
  EXPECT_EQ(m.catalog_conflicts[0].ToString(),
            "cat.yaml:5: component:ops/svc: has the same name as component:default/svc "
            "(cat.yaml:1); traces carry no namespace, so the first is used");
  EXPECT_EQ(m.catalog_conflicts[1].ToString(),
            "cat.yaml:9: component:default/svc: owned by group:default/c here but by "
            "group:default/a in cat.yaml:1; the first is used");
  EXPECT_EQ(m.registry.FindService("svc")->team, "a");
}

constexpr char kLocal[] =
    "default_team: platform\n"
    "teams:\n"
    "  platform: {}\n"
    "  checkout-team: {}\n"
    "  payments:\n"
    "    pagerduty: {routing_key: {env: PD_PAYMENTS}, service_id: PLOCAL1}\n"
    "  data:\n"
    "    opsgenie: {team: Data}\n"
    "services:\n"
    "  checkout: {team: checkout-team}\n"
    "  orders: {team: data, aliases: [orders-db]}\n"
    "  email: {team: platform}\n";

TEST(BackstageMergeTest, LocalWinsAndEveryConflictIsRecorded) {
  auto local = Registry::FromYaml(kLocal, "reg.yaml");
  ASSERT_TRUE(local.ok()) << local.error().message;
  const BackstageCatalog c =
      LoadFixture("from-docs/catalog-info_with_pagerduty_opsgenie_annotations.yaml");
  const BackstageMerge m = MergeBackstage(*local, c);
  const Registry& r = m.registry;

  EXPECT_EQ(r.FindService("checkout")->team, "checkout-team");  // local wins
  EXPECT_EQ(r.FindService("checkout")->origin, Origin::kLocal);
  EXPECT_EQ(r.FindService("orders-db")->name, "orders");  // the alias still resolves locally
  EXPECT_EQ(r.FindService("payment")->team, "payments");  // Backstage-only: imported
  EXPECT_EQ(r.FindService("payment")->origin, Origin::kBackstage);
  EXPECT_EQ(r.FindTeam("payments")->pager.pagerduty->service_id, "PLOCAL1");
  EXPECT_EQ(r.FindTeam("messaging")->origin, Origin::kBackstage);
  EXPECT_TRUE(m.dangling.empty());

  std::vector<std::string> conflicts;
  for (const auto& x : m.conflicts) conflicts.push_back(x.ToString());
  EXPECT_THAT(conflicts,
              ::testing::Contains("service checkout: team: local checkout-team (reg.yaml:10) vs "
                                  "backstage payments (from-docs/catalog-info_with_pagerduty_"
                                  "opsgenie_annotations.yaml:5)"));
  EXPECT_THAT(conflicts, ::testing::Contains(HasSubstr(
                             "service checkout: pagerduty routing key: local (none) (reg.yaml:10) "
                             "vs backstage annotation pagerduty.com/integration-key of "
                             "component:default/checkout")));
  EXPECT_THAT(conflicts, ::testing::Contains(
                             HasSubstr("service orders: team (via alias orders-db): local data")));
  EXPECT_THAT(conflicts, ::testing::Contains(HasSubstr(
                             "team payments: pagerduty service id: local PLOCAL1 (reg.yaml:5) vs "
                             "backstage PGRP001")));
  EXPECT_THAT(conflicts, ::testing::Contains(HasSubstr("service email: team: local platform")));
  EXPECT_THAT(conflicts, ::testing::Contains(HasSubstr("service email: opsgenie team: local "
                                                       "(none)")));
  for (const std::string& s : conflicts) EXPECT_THAT(s, Not(HasSubstr(kFixtureKey)));
}

TEST(BackstageMergeTest, SameResolvedKeyIsNoConflict) {
  RegistryLoadOptions options;
  options.resolve_secret = [](const SecretRef&) -> Result<std::string> {
    return std::string(kFixtureKey);
  };
  auto local = Registry::FromYaml(
      "teams: {payments: {}}\nservices:\n  checkout:\n    team: payments\n"
      "    pagerduty: {routing_key: {env: K}, service_id: PABC123}\n"
      "    opsgenie: {team: Payments Team}\n",
      "reg.yaml", options);
  ASSERT_TRUE(local.ok()) << local.error().message;
  const BackstageMerge m = MergeBackstage(
      *local, LoadFixture("from-docs/catalog-info_with_pagerduty_opsgenie_annotations.yaml"));
  for (const auto& x : m.conflicts) {
    EXPECT_THAT(x.subject, Not("service checkout")) << x.ToString();
  }
}

}  // namespace
}  // namespace tracepager::routing
