// MergeBackstage: local YAML first, Backstage fills in what the local registry does not know.
#include <map>
#include <set>
#include <string>
#include <utility>

#include "routing/backstage.h"

namespace tracepager::routing {
namespace {

std::string Where(const std::string& source, int line) {
  return line > 0 ? source + ":" + std::to_string(line) : source;
}

// The pager targets an entity's on-call annotations describe.
PagerTargets TargetsOf(const BackstageEntity& e) {
  PagerTargets t;
  if (e.pagerduty_integration_key || !e.pagerduty_service_id.empty()) {
    t.pagerduty = PagerDutyTarget{e.pagerduty_integration_key, e.pagerduty_service_id};
  }
  if (!e.opsgenie_team.empty()) t.opsgenie = OpsgenieTarget{e.opsgenie_team, "", std::nullopt};
  if (!e.slack_channel.empty()) t.slack = SlackTarget{std::nullopt, e.slack_channel};
  return t;
}

std::string DescribeSecret(const std::optional<Secret>& s) {
  return s ? s->ref().Describe() : "(none)";
}

}  // namespace

class BackstageMerger {
 public:
  BackstageMerger(const Registry& local, const BackstageCatalog& catalog)
      : local_(local), catalog_(catalog) {
    out_.registry = local;
  }

  BackstageMerge Run() {
    for (const BackstageEntity& e : catalog_.entities) {
      if (e.ref.kind == "group") groups_.emplace(e.ref, &e);
      if (e.ref.kind == "user") users_.emplace(e.ref, &e);
    }
    for (const BackstageEntity& e : catalog_.entities) {
      if (e.ref.kind == "group" && groups_.at(e.ref) == &e) MergeGroup(e);
    }
    for (const BackstageEntity& e : catalog_.entities) {
      if (e.ref.kind == "component" || e.ref.kind == "resource") MergeService(e);
    }
    return std::move(out_);
  }

 private:
  void Conflict(std::string subject, std::string field, std::string local, std::string backstage,
                std::string local_where, std::string backstage_where) {
    out_.conflicts.push_back(MergeConflict{std::move(subject), std::move(field), std::move(local),
                                           std::move(backstage), std::move(local_where),
                                           std::move(backstage_where)});
  }

  // Records where Backstage's targets differ from the local ones; local ones are kept.
  void CompareTargets(const std::string& subject, const PagerTargets& local,
                      const PagerTargets& backstage, const std::string& lw, const std::string& bw) {
    if (backstage.pagerduty) {
      const auto& b = *backstage.pagerduty;
      const PagerDutyTarget* l = local.pagerduty ? &*local.pagerduty : nullptr;
      if (b.routing_key) {
        const bool same =
            l != nullptr && l->routing_key && l->routing_key->SameValue(*b.routing_key);
        if (!same) {
          Conflict(subject, "pagerduty routing key",
                   l != nullptr ? DescribeSecret(l->routing_key) : "(none)",
                   DescribeSecret(b.routing_key), lw, bw);
        }
      }
      if (!b.service_id.empty() && (l == nullptr || l->service_id != b.service_id)) {
        Conflict(subject, "pagerduty service id",
                 l != nullptr && !l->service_id.empty() ? l->service_id : "(none)", b.service_id,
                 lw, bw);
      }
    }
    if (backstage.opsgenie) {
      const std::string b = backstage.opsgenie->team;
      const bool same = local.opsgenie && local.opsgenie->team == b;
      if (!same) {
        std::string l = "(none)";
        if (local.opsgenie) {
          l = local.opsgenie->team.empty() ? "team_id " + local.opsgenie->team_id
                                           : local.opsgenie->team;
        }
        Conflict(subject, "opsgenie team", l, b, lw, bw);
      }
    }
    if (backstage.slack) {
      const std::string& b = backstage.slack->channel;
      if (!local.slack || local.slack->channel != b) {
        Conflict(subject, "slack channel",
                 local.slack && !local.slack->channel.empty() ? local.slack->channel : "(none)", b,
                 lw, bw);
      }
    }
  }

  void MergeGroup(const BackstageEntity& g) {
    const std::string name = TeamNameFor(g.ref);
    const PagerTargets targets = TargetsOf(g);
    auto& teams = out_.registry.teams_;
    if (auto it = local_.teams_.find(name); it != local_.teams_.end()) {
      CompareTargets("team " + name, it->second.pager, targets,
                     Where(it->second.source, it->second.line), Where(g.source, g.line));
      return;
    }
    Team t;
    t.name = name;
    t.line = g.line;
    t.source = g.source;
    t.origin = Origin::kBackstage;
    t.pager = targets;
    teams.emplace(name, std::move(t));
  }

  // The team that owns `e`, adding a Backstage User or a dangling placeholder as needed.
  std::string OwnerTeam(const BackstageEntity& e) {
    if (!e.owner) return "";
    const EntityRef& owner = *e.owner;
    const std::string name = TeamNameFor(owner);
    auto& teams = out_.registry.teams_;
    if (owner.kind == "group" && groups_.count(owner) != 0) return name;
    if (local_.teams_.count(name) != 0) return name;  // a local team stands for the group
    if (owner.kind == "user" && users_.count(owner) != 0) {
      if (teams.count(name) == 0) {
        const BackstageEntity& u = *users_.at(owner);
        Team t;
        t.name = name;
        t.line = u.line;
        t.source = u.source;
        t.origin = Origin::kBackstage;
        t.pager = TargetsOf(u);
        teams.emplace(name, std::move(t));
      }
      return name;
    }
    // Nothing defines the owner. Keep the name (a page still says who was meant), mark the team
    // undeclared, and say what might have been meant.
    std::string hint;
    EntityRef as_user = owner;
    as_user.kind = "user";
    EntityRef as_group = owner;
    as_group.kind = "group";
    if (owner.kind == "group" && users_.count(as_user) != 0) {
      hint = "; a User " + owner.name + " exists: write the owner as user:" + owner.name;
    } else if (owner.kind == "user" && groups_.count(as_group) != 0) {
      hint = "; a Group " + owner.name + " exists: write the owner as group:" + owner.name;
    }
    out_.dangling.push_back(
        RegistryProblem{e.source, e.line, e.ref.ToString() + " spec.owner",
                        "owner \"" + e.owner_written + "\" (" + owner.ToString() +
                            ") is not a Group or User in the catalog nor a local team" + hint,
                        /*dangling_reference=*/true});
    if (teams.count(name) == 0) {
      Team t;
      t.name = name;
      t.line = e.line;
      t.source = e.source;
      t.origin = Origin::kBackstage;
      t.declared = false;
      teams.emplace(name, std::move(t));
    }
    return name;
  }

  void MergeService(const BackstageEntity& e) {
    const std::string& name = e.ref.name;
    const std::string bw = Where(e.source, e.line);
    if (auto seen = seen_services_.find(name); seen != seen_services_.end()) {
      // The same entity twice (a catalog-info file and a saved API answer) is one entity;
      // only a different owner, or another entity with the same name, is worth reporting.
      const BackstageEntity& first = *seen->second;
      if (first.ref == e.ref) {
        if (first.owner && e.owner && *first.owner != *e.owner) {
          out_.catalog_conflicts.push_back(RegistryProblem{
              e.source, e.line, e.ref.ToString(),
              "owned by " + e.owner->ToString() + " here but by " + first.owner->ToString() +
                  " in " + Where(first.source, first.line) + "; the first is used"});
        }
      } else {
        out_.catalog_conflicts.push_back(
            RegistryProblem{e.source, e.line, e.ref.ToString(),
                            "has the same name as " + first.ref.ToString() + " (" +
                                Where(first.source, first.line) +
                                "); traces carry no namespace, so the first is used"});
      }
      return;
    }
    seen_services_.emplace(name, &e);
    const std::string team = OwnerTeam(e);
    const PagerTargets targets = TargetsOf(e);
    if (const ServiceEntry* l = local_.FindService(name)) {
      const std::string subject = "service " + l->name;
      const std::string lw = Where(l->source, l->line);
      if (l->name != name) {
        // Backstage's entity is one of the local service's aliases: the same thing, locally
        // owned. Only a different owner is worth a word.
        if (!team.empty() && team != l->team) {
          Conflict(subject, "team (via alias " + name + ")", l->team, team, lw, bw);
        }
      } else if (!team.empty() && team != l->team) {
        Conflict(subject, "team", l->team, team, lw, bw);
      }
      // Where a page for the service goes locally: its own targets, else its team's.
      const PagerTargets* effective = &l->pager;
      if (l->pager.empty()) {
        if (auto t = local_.teams_.find(l->team); t != local_.teams_.end()) {
          effective = &t->second.pager;
        }
      }
      CompareTargets(subject, *effective, targets, lw, bw);
      return;
    }
    if (team.empty()) return;  // no owner: already reported by the reader, nothing to own
    ServiceEntry s;
    s.name = name;
    s.team = team;
    s.line = e.line;
    s.source = e.source;
    s.origin = Origin::kBackstage;
    s.kind = e.ref.kind == "resource" ? "resource" : "service";
    s.pager = targets;
    out_.registry.services_.emplace(name, std::move(s));
  }

  const Registry& local_;
  const BackstageCatalog& catalog_;
  BackstageMerge out_;
  std::map<EntityRef, const BackstageEntity*> groups_;
  std::map<EntityRef, const BackstageEntity*> users_;
  std::map<std::string, const BackstageEntity*, std::less<>> seen_services_;
};

std::string MergeConflict::ToString() const {
  std::string s = subject + ": " + field + ": local " + local;
  if (!local_where.empty()) s += " (" + local_where + ")";
  s += " vs backstage " + backstage;
  if (!backstage_where.empty()) s += " (" + backstage_where + ")";
  return s;
}

BackstageMerge MergeBackstage(const Registry& local, const BackstageCatalog& catalog) {
  return BackstageMerger(local, catalog).Run();
}

}  // namespace tracepager::routing
