// Backstage software catalog: ownership and on-call data read from catalog-info YAML or from the
// catalog API's JSON, and merged into a Registry.
//
// Input forms:
//   - catalog-info YAML, multi-document (`---`): ParseBackstageYaml. Reading a directory tree of
//     catalog-info.yaml files is I/O and lives in daemon/backstage_loader.h.
//   - the catalog API's JSON: `GET /api/catalog/entities` (a bare array) or
//     `GET /api/catalog/entities/by-query` (`{"items":[...], ...}`): ParseBackstageJson.
// Kinds Component, Resource, Group and User are used; System, API, Location, Domain, Template
// and other kinds are legal and skipped. Documents that are not Backstage entities (no `kind`,
// no `metadata.name`, wrong types) are reported in `problems` and skipped: one bad entity in a
// large catalog does not hide the rest. Only unparseable text or oversized input fails the call.
//
// What is read from an entity:
//   - owner: the `ownedBy` relation's targetRef when present (what the catalog resolved), else
//     `spec.owner` in any reference form: `payments`, `group:payments`,
//     `group:default/payments`, `user:default/jane` (a bare name means kind Group, namespace
//     default, as Backstage defines).
//   - on-call annotations: `pagerduty.com/integration-key` (an Events API v2 routing key: a
//     secret, held as an inline Secret and never printed), `pagerduty.com/service-id`,
//     `opsgenie.com/team`, and the Slack channel annotations `slack.com/channel` and
//     `slack.com/bot-notify`.
// Pure: text in, data out; safe to call concurrently.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "routing/registry.h"
#include "routing/result.h"
#include "routing/secret.h"

namespace tracepager::routing {

inline constexpr size_t kMaxCatalogBytes = 64u << 20;

// A Backstage entity reference `[kind:][namespace/]name`. Kind and namespace are lowercased
// (Backstage compares them case-insensitively); the name is kept as written.
struct EntityRef {
  std::string kind;
  std::string ns = "default";
  std::string name;

  std::string ToString() const;  // "group:default/payments"
  friend auto operator<=>(const EntityRef&, const EntityRef&) = default;
};

// Parses `ref`; a missing kind or namespace takes the default. nullopt when malformed (empty
// parts, more than one ':' before the name...).
std::optional<EntityRef> ParseEntityRef(std::string_view ref, std::string_view default_kind,
                                        std::string_view default_ns = "default");

struct BackstageEntity {
  std::string kind;  // as written: "Component", "Resource", "Group", "User"
  EntityRef ref;     // kind lowercased
  std::string type;  // spec.type ("service", "database", "team"...), may be empty
  std::optional<EntityRef> owner;
  std::string owner_written;  // the owner as the entity wrote it, for messages
  std::optional<Secret> pagerduty_integration_key;
  std::string pagerduty_service_id;
  std::string opsgenie_team;
  std::string slack_channel;
  std::string source;  // the file or catalog it came from
  int line = 0;        // 1-based; 0 for JSON
};

struct BackstageCatalog {
  std::vector<BackstageEntity> entities;  // Components, Resources, Groups and Users, in order
  size_t skipped = 0;                     // entities of other kinds
  std::vector<RegistryProblem> problems;  // entities that were not usable, skipped
};

Result<BackstageCatalog> ParseBackstageYaml(std::string_view text, std::string_view source);
Result<BackstageCatalog> ParseBackstageJson(std::string_view text, std::string_view source);

// The team name an owner reference becomes: a Group's name (`payments`, or `ns/payments` outside
// the default namespace); a User's `user:jane` (`user:ns/jane`), so people and groups never
// collide. Other kinds: `kind:ns/name`.
std::string TeamNameFor(const EntityRef& owner);

// Where local YAML and Backstage disagree. Values are descriptions, never secret values.
struct MergeConflict {
  std::string subject;  // "service checkout", "team payments"
  std::string field;    // "team", "pagerduty", "opsgenie", "slack", "alias"
  std::string local;    // e.g. "payments", "env PD_CHECKOUT", "(none)"
  std::string backstage;
  std::string local_where;      // "etc/registry.yaml:12"
  std::string backstage_where;  // "catalog/checkout.yaml:3"
  std::string ToString() const;
};

struct BackstageMerge {
  Registry registry;
  std::vector<MergeConflict> conflicts;
  // Owner references that name no Group or User in the catalog and no local team. The owning
  // service keeps the name as its team; the team is added with declared=false.
  std::vector<RegistryProblem> dangling;
  // Disagreements inside the catalog: two entities with one name in different namespaces, or
  // one entity given twice with different owners. The first wins.
  std::vector<RegistryProblem> catalog_conflicts;
};

// Merges `catalog` into a copy of `local`. Local entries win: a service or team defined locally
// (a service also when Backstage's name is one of its aliases) keeps every local field, and
// each field on which Backstage says something different is recorded as a conflict. Backstage
// Components and Resources that the local registry does not know become services (origin
// kBackstage, kind "service" or "resource"), owned by TeamNameFor(owner); Groups (and Users
// that own something) become teams with the pager targets of their annotations; a Component's
// own annotations become service-level targets. Entities with the same name in several
// namespaces: the first wins, the others are recorded in catalog_conflicts.
BackstageMerge MergeBackstage(const Registry& local, const BackstageCatalog& catalog);

}  // namespace tracepager::routing
