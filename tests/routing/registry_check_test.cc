#include "routing/registry_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tracepager::routing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Strings(const std::vector<Finding>& findings) {
  std::vector<std::string> out;
  for (const Finding& f : findings) out.push_back(f.ToString());
  return out;
}

std::vector<std::string> OfKind(const std::vector<Finding>& findings, Finding::Kind kind) {
  std::vector<std::string> out;
  for (const Finding& f : findings) {
    if (f.kind == kind) out.push_back(f.ToString());
  }
  return out;
}

Registry Load(const std::string& yaml) {
  auto r = Registry::FromYaml(yaml, "reg.yaml");
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(*r) : Registry();
}

TEST(RegistryCheck, CleanRegistryHasNoFindings) {
  const Registry reg =
      Load("teams:\n  a: {opsgenie: {team: A}}\nservices:\n  s: {team: a, reviewed: 2025-01-01}\n");
  CheckInputs in;
  in.registry = &reg;
  in.observed = {{"s", false, {}}};
  CheckOptions options{CivilDate{2025, 3, 1}, 90};
  EXPECT_THAT(CheckRegistry(in, options), IsEmpty());
}

TEST(RegistryCheck, LoadProblemsBecomeInvalidOrDanglingFindings) {
  RegistryLint lint = Registry::Lint(
      "teams:\n  a: {fallback: nope}\nservices:\n  s: {team: zz, runbook: x}\n", "reg.yaml");
  CheckInputs in;
  in.registry = &lint.registry;
  in.load_problems = lint.problems;
  EXPECT_THAT(
      Strings(CheckRegistry(in, {})),
      ElementsAre(
          "reg.yaml:4: invalid-registry: services.s.runbook: \"x\" is not an http(s) URL",
          "reg.yaml:2: dangling-reference: teams.a.fallback: unknown team \"nope\" (known: a)",
          "reg.yaml:4: dangling-reference: services.s.team: unknown team \"zz\" (known: a)",
          "reg.yaml:2: no-pager-target: team a: no pager target, and no team along its "
          "fallback chain (a -> nope) can page"));
}

TEST(RegistryCheck, TeamsWithoutPagerTargets) {
  const Registry reg = Load(
      "teams:\n"
      "  lonely: {}\n"
      "  channel-only: {slack: {channel: \"#x\"}}\n"
      "  backed-up: {fallback: pageable}\n"
      "  chain: {fallback: lonely}\n"
      "  pageable: {webhook: {url: \"https://h.example/x\"}}\n");
  CheckInputs in;
  in.registry = &reg;
  EXPECT_THAT(
      OfKind(CheckRegistry(in, {}), Finding::Kind::kNoPagerTarget),
      ElementsAre("reg.yaml:5: no-pager-target: team chain: no pager target, and no team along "
                  "its fallback chain (chain -> lonely) can page",
                  "reg.yaml:3: no-pager-target: team channel-only: its targets cannot page (a "
                  "PagerDuty service id or Slack channel alone is not enough) and it has no "
                  "fallback",
                  "reg.yaml:2: no-pager-target: team lonely: no pager target and no fallback: a "
                  "page for it reaches nobody"));
}

TEST(RegistryCheck, BackstageGroupsCountOnlyWhenTheyOwnSomething) {
  const Registry local = Load("teams: {a: {opsgenie: {team: A}}}\n");
  auto catalog = ParseBackstageYaml(
      "kind: Group\nmetadata: {name: org}\n---\nkind: Group\nmetadata: {name: owners}\n---\n"
      "kind: Component\nmetadata: {name: svc}\nspec: {owner: owners}\n",
      "cat.yaml");
  ASSERT_TRUE(catalog.ok());
  const BackstageMerge m = MergeBackstage(local, *catalog);
  CheckInputs in;
  in.registry = &m.registry;
  EXPECT_THAT(Strings(CheckRegistry(in, {})),
              ElementsAre("cat.yaml:4: no-pager-target: team owners: no pager target and no "
                          "fallback: a page for it reaches nobody"));
}

TEST(RegistryCheck, ReviewAge) {
  const Registry reg = Load(
      "teams:\n"
      "  a: {opsgenie: {team: A}, reviewed: 2024-01-01}\n"
      "  b: {opsgenie: {team: B}}\n"
      "services:\n"
      "  fresh: {team: a, reviewed: 2025-02-01}\n"
      "  edge: {team: a, reviewed: 2024-12-01}\n"
      "  old: {team: a, reviewed: 2024-11-30}\n"
      "  never: {team: b}\n");
  CheckInputs in;
  in.registry = &reg;
  EXPECT_THAT(CheckRegistry(in, CheckOptions{CivilDate{2025, 3, 1}, std::nullopt}), IsEmpty());
  EXPECT_THAT(
      Strings(CheckRegistry(in, CheckOptions{CivilDate{2025, 3, 1}, 90})),
      ElementsAre("reg.yaml:8: not-reviewed: service never: never reviewed (no `reviewed` date)",
                  "reg.yaml:7: not-reviewed: service old: last reviewed 2024-11-30, 91 days ago "
                  "(the maximum is 90)",
                  "reg.yaml:2: not-reviewed: team a: last reviewed 2024-01-01, 425 days ago (the "
                  "maximum is 90)"));
}

TEST(RegistryCheck, UnownedServicesAndPeers) {
  const Registry reg = Load(
      "default_team: a\nteams: {a: {opsgenie: {team: A}}}\n"
      "services:\n  s: {team: a, aliases: [s-v2]}\n");
  CheckInputs in;
  in.registry = &reg;
  in.observed = {{"s-v2", false, {}},
                 {"mystery", false, {}},
                 {"redis", true, {"s", "mystery"}},
                 {"s", false, {}}};
  EXPECT_THAT(Strings(CheckRegistry(in, {})),
              ElementsAre("unowned-service: service mystery: seen in traces but no service or "
                          "alias owns it; its pages go to the default team a",
                          "unowned-service: peer redis: seen in traces (uninstrumented, called by "
                          "s, mystery) but no service or alias owns it; its failures page the "
                          "caller's owner"));
}

TEST(RegistryCheck, BackstageConflictsDanglingOwnersAndInvalidEntities) {
  const Registry local = Load("teams: {a: {opsgenie: {team: A}}}\nservices:\n  svc: {team: a}\n");
  auto catalog = ParseBackstageYaml(
      "kind: Component\nmetadata: {name: svc}\nspec: {owner: b}\n---\n"
      "kind: Group\nmetadata: {name: b}\nannotations: {}\n---\n"
      "kind: Component\nmetadata: {name: orphan}\nspec: {owner: ghost}\n---\n"
      "kind: Component\n",
      "cat.yaml");
  ASSERT_TRUE(catalog.ok()) << catalog.error().message;
  const BackstageMerge m = MergeBackstage(local, *catalog);
  CheckInputs in;
  in.registry = &m.registry;
  in.conflicts = m.conflicts;
  in.dangling = m.dangling;
  in.catalog_problems = catalog->problems;
  EXPECT_THAT(
      Strings(CheckRegistry(in, {})),
      ElementsAre("cat.yaml:9: dangling-reference: component:default/orphan spec.owner: owner "
                  "\"ghost\" (group:default/ghost) is not a Group or User in the catalog nor a "
                  "local team",
                  "reg.yaml:3: backstage-conflict: service svc: team: local a vs backstage b "
                  "(cat.yaml:1); the local entry wins",
                  "cat.yaml:13: backstage-invalid: Component without metadata.name; skipped"));
}

}  // namespace
}  // namespace tracepager::routing
