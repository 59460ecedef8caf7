#include "routing/registry_check.h"

#include <algorithm>
#include <set>

namespace tracepager::routing {
namespace {

std::string Where(const std::string& source, int line) {
  if (source.empty()) return "";
  return line > 0 ? source + ":" + std::to_string(line) : source;
}

std::string JoinCallers(const std::vector<std::string>& callers) {
  std::string s;
  for (size_t i = 0; i < callers.size() && i < 5; ++i) s += (i ? ", " : "") + callers[i];
  if (callers.size() > 5) s += ", ...";
  return s;
}

}  // namespace

const char* FindingKindName(Finding::Kind kind) {
  switch (kind) {
    case Finding::Kind::kInvalidRegistry:
      return "invalid-registry";
    case Finding::Kind::kDanglingReference:
      return "dangling-reference";
    case Finding::Kind::kUnownedService:
      return "unowned-service";
    case Finding::Kind::kNoPagerTarget:
      return "no-pager-target";
    case Finding::Kind::kNotReviewed:
      return "not-reviewed";
    case Finding::Kind::kBackstageConflict:
      return "backstage-conflict";
    case Finding::Kind::kBackstageInvalid:
      return "backstage-invalid";
  }
  return "unknown";
}

std::string Finding::ToString() const {
  std::string s;
  if (!where.empty()) s += where + ": ";
  s += FindingKindName(kind);
  s += ": ";
  if (!subject.empty()) s += subject + ": ";
  return s + message;
}

std::vector<Finding> CheckRegistry(const CheckInputs& in, const CheckOptions& options) {
  const Registry& reg = *in.registry;
  std::vector<Finding> out;
  auto add = [&out](Finding::Kind kind, std::string subject, std::string where,
                    std::string message) {
    out.push_back(Finding{kind, std::move(subject), std::move(where), std::move(message)});
  };

  for (const RegistryProblem& p : in.load_problems) {
    if (p.dangling_reference) continue;  // reported with the other dangling references below
    add(Finding::Kind::kInvalidRegistry, p.path, Where(p.source, p.line), p.message);
  }
  for (const RegistryProblem& p : in.load_problems) {
    if (p.dangling_reference) {
      add(Finding::Kind::kDanglingReference, p.path, Where(p.source, p.line), p.message);
    }
  }
  for (const RegistryProblem& p : in.dangling) {
    add(Finding::Kind::kDanglingReference, p.path, Where(p.source, p.line), p.message);
  }

  std::vector<ObservedService> observed = in.observed;
  std::sort(observed.begin(), observed.end(),
            [](const ObservedService& a, const ObservedService& b) { return a.name < b.name; });
  for (const ObservedService& o : observed) {
    const ServiceEntry* e = reg.FindService(o.name);
    if (e != nullptr && !e->team.empty()) continue;
    if (o.is_virtual) {
      add(Finding::Kind::kUnownedService, "peer " + o.name, "",
          "seen in traces (uninstrumented, called by " + JoinCallers(o.callers) +
              ") but no service or alias owns it; its failures page the caller's owner");
    } else {
      add(Finding::Kind::kUnownedService, "service " + o.name, "",
          "seen in traces but no service or alias owns it" +
              (reg.default_team().empty()
                   ? std::string("; nobody would be paged")
                   : "; its pages go to the default team " + reg.default_team()));
    }
  }

  // Teams that matter: every local team; a Backstage team when something points at it.
  std::set<std::string, std::less<>> referenced;
  for (const auto& [name, s] : reg.services()) referenced.insert(s.team);
  for (const auto& [name, t] : reg.teams()) {
    if (!t.fallback.empty()) referenced.insert(t.fallback);
  }
  if (!reg.default_team().empty()) referenced.insert(reg.default_team());
  for (const auto& [name, t] : reg.teams()) {
    if (!t.declared) continue;  // already a dangling reference
    if (t.origin == Origin::kBackstage && referenced.count(name) == 0) continue;
    if (t.pager.CanPage()) continue;
    const std::string where = Where(t.source, t.line);
    if (t.fallback.empty()) {
      add(Finding::Kind::kNoPagerTarget, "team " + name, where,
          t.pager.empty() ? "no pager target and no fallback: a page for it reaches nobody"
                          : "its targets cannot page (a PagerDuty service id or Slack channel "
                            "alone is not enough) and it has no fallback");
    } else if (reg.PageableTeam(name) == nullptr) {
      std::string chain = name;
      std::set<std::string> seen{name};
      const Team* cur = &t;
      while (cur != nullptr && !cur->fallback.empty() && seen.insert(cur->fallback).second) {
        chain += " -> " + cur->fallback;
        cur = reg.FindTeam(cur->fallback);
      }
      add(Finding::Kind::kNoPagerTarget, "team " + name, where,
          "no pager target, and no team along its fallback chain (" + chain + ") can page");
    }
  }

  if (options.max_age_days) {
    const int max_age = *options.max_age_days;
    auto stale = [&](const std::optional<CivilDate>& reviewed, std::string* why) {
      if (!reviewed) {
        *why = "never reviewed (no `reviewed` date)";
        return true;
      }
      const long age = DaysBetween(*reviewed, options.today);
      if (age <= max_age) return false;
      *why = "last reviewed " + reviewed->ToString() + ", " + std::to_string(age) +
             " days ago (the maximum is " + std::to_string(max_age) + ")";
      return true;
    };
    for (const auto& [name, s] : reg.services()) {
      std::string why;
      if (s.origin == Origin::kLocal && stale(s.reviewed, &why)) {
        add(Finding::Kind::kNotReviewed, "service " + name, Where(s.source, s.line), why);
      }
    }
    for (const auto& [name, t] : reg.teams()) {
      std::string why;
      if (t.origin == Origin::kLocal && t.reviewed && stale(t.reviewed, &why)) {
        add(Finding::Kind::kNotReviewed, "team " + name, Where(t.source, t.line), why);
      }
    }
  }

  for (const MergeConflict& c : in.conflicts) {
    add(Finding::Kind::kBackstageConflict, c.subject, c.local_where,
        c.field + ": local " + c.local + " vs backstage " + c.backstage +
            (c.backstage_where.empty() ? "" : " (" + c.backstage_where + ")") +
            "; the local entry wins");
  }
  for (const RegistryProblem& p : in.catalog_problems) {
    add(Finding::Kind::kBackstageInvalid, p.path, Where(p.source, p.line), p.message);
  }
  return out;
}

}  // namespace tracepager::routing
