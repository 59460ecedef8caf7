#include "integrations/delivery/registry_directory.h"

#include <fmt/format.h>

namespace tracepager::integrations::delivery {
namespace {

// The delivery-side secret for a registry secret: its value, with the reference as origin.
Secret Convert(const routing::Secret& s) { return Secret(s.Reveal(), s.ref().Describe()); }

std::vector<PagerTarget> Targets(const routing::PagerTargets& pager, const std::string& team,
                                 const std::string& owner, std::vector<std::string>* problems) {
  std::vector<PagerTarget> out;
  auto unresolved = [&](const char* kind, const routing::Secret& s) {
    if (problems != nullptr) {
      problems->push_back(fmt::format("{}: {} target left out: secret {} is not resolved", owner,
                                      kind, s.ref().Describe()));
    }
  };
  if (pager.pagerduty && pager.pagerduty->routing_key) {
    if (pager.pagerduty->routing_key->resolved()) {
      PagerTarget t;
      t.kind = "pagerduty";
      t.team = team;
      t.credential = Convert(*pager.pagerduty->routing_key);
      out.push_back(std::move(t));
    } else {
      unresolved("pagerduty", *pager.pagerduty->routing_key);
    }
  }
  if (pager.opsgenie && (!pager.opsgenie->team.empty() || !pager.opsgenie->team_id.empty())) {
    PagerTarget t;
    t.kind = "opsgenie";
    t.team = team;
    t.name = pager.opsgenie->team_id.empty() ? pager.opsgenie->team : pager.opsgenie->team_id;
    bool ok = true;
    if (pager.opsgenie->api_key) {
      if (pager.opsgenie->api_key->resolved()) {
        t.credential = Convert(*pager.opsgenie->api_key);
      } else {
        unresolved("opsgenie", *pager.opsgenie->api_key);
        ok = false;
      }
    }
    if (ok) out.push_back(std::move(t));
  }
  if (pager.slack && pager.slack->webhook_url) {
    if (pager.slack->webhook_url->resolved()) {
      PagerTarget t;
      t.kind = "slack";
      t.team = team;
      t.credential = Convert(*pager.slack->webhook_url);
      out.push_back(std::move(t));
    } else {
      unresolved("slack", *pager.slack->webhook_url);
    }
  }
  if (pager.webhook) {
    bool ok = true;
    PagerTarget t;
    t.kind = "webhook";
    t.team = team;
    if (pager.webhook->url.resolved()) {
      t.credential = Convert(pager.webhook->url);
    } else {
      unresolved("webhook", pager.webhook->url);
      ok = false;
    }
    if (ok && pager.webhook->signing_key) {
      if (pager.webhook->signing_key->resolved()) {
        t.signing_key = Convert(*pager.webhook->signing_key);
      } else {
        unresolved("webhook", *pager.webhook->signing_key);
        ok = false;
      }
    }
    if (ok) out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

TargetDirectory DirectoryFromRegistry(const routing::Registry& registry,
                                      std::vector<std::string>* problems) {
  TargetDirectory d;
  d.default_team = registry.default_team();
  for (const auto& [name, team] : registry.teams()) {
    TeamPagers& tp = d.teams[name];
    tp.targets = Targets(team.pager, name, "team " + name, problems);
    tp.fallback = team.fallback;
  }
  for (const auto& [name, service] : registry.services()) {
    if (service.pager.empty()) continue;
    std::vector<PagerTarget> targets =
        Targets(service.pager, service.team, "service " + name, problems);
    if (targets.empty()) continue;
    d.services[name] = targets;
    for (const std::string& alias : service.aliases) d.services[alias] = targets;
  }
  return d;
}

}  // namespace tracepager::integrations::delivery
