#include "routing/route.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <utility>

namespace tracepager::routing {

const char* DecisionKindName(Decision::Kind kind) {
  return kind == Decision::Kind::kRouted ? "routed" : "fallback";
}

namespace {

struct Owner {
  std::string team;
  std::string reason;
};

const ServiceEntry* Owned(const Registry& registry, std::string_view service) {
  const ServiceEntry* e = registry.FindService(service);
  return e != nullptr && !e->team.empty() ? e : nullptr;
}

Owner ResolveOwner(const Registry& registry, const std::string& service, bool is_virtual,
                   const std::string& caller, const std::string& alerting_service) {
  if (const ServiceEntry* e = Owned(registry, service)) {
    return {e->team, "registry: " + service + " is owned by " + e->team};
  }
  const std::string& dflt = registry.default_team();
  std::string why = is_virtual ? service + " is not instrumented and not in the registry"
                               : service + " is not in the registry";
  if (is_virtual && !caller.empty()) {
    if (const ServiceEntry* e = Owned(registry, caller)) {
      return {e->team, why + "; paging its caller " + caller + "'s owner " + e->team};
    }
    why += ", nor is its caller " + caller;
  }
  if (!dflt.empty()) return {dflt, why + "; paging the default team " + dflt};
  if (service != alerting_service && !alerting_service.empty()) {
    if (const ServiceEntry* e = Owned(registry, alerting_service)) {
      return {e->team, why + " and there is no default team; paging the alerting service " +
                           alerting_service + "'s owner " + e->team};
    }
  }
  return {"", why + " and there is no default team: nobody to page"};
}

// "the trace", "any of the 3 traces", with an adjective and a tail.
std::string Traces(int n, const std::string& adjective = "", const std::string& tail = "") {
  if (n == 1) return "the " + adjective + "trace" + tail;
  return "any of the " + std::to_string(n) + " " + adjective + "traces" + tail;
}

std::string ShareText(int votes, int of) {
  return std::to_string(votes) + " of " + std::to_string(of) + " trace" + (of == 1 ? "" : "s");
}

struct Tallied {
  std::vector<Culprit> culprits;
  int routed = 0;  // voting traces with at least one culprit
};

// Votes over the verdicts' refined (`naive` false) or plain answers.
Tallied Tally(const std::vector<TraceVerdict>& verdicts, const std::vector<uint8_t>& voting,
              bool naive, const Registry& registry, const std::string& alerting_service,
              const WalkOptions& options) {
  struct Acc {
    Culprit c;
    int primary_votes = 0;
    int fallout_votes = 0;
    int64_t earliest_primary = 0;
    int64_t earliest_any = 0;
    std::string why_primary, why_any, caller_primary, caller_any;
  };
  std::map<std::pair<std::string, bool>, Acc> acc;
  std::vector<std::pair<std::string, bool>> order;
  Tallied out;
  for (size_t i = 0; i < verdicts.size(); ++i) {
    if (!voting[i]) continue;
    const auto& list = naive ? verdicts[i].naive : verdicts[i].culprits;
    if (list.empty()) continue;
    ++out.routed;
    for (const TraceCulprit& tc : list) {
      auto key = std::make_pair(tc.service, tc.is_virtual);
      auto [it, inserted] = acc.try_emplace(key);
      Acc& a = it->second;
      if (inserted) {
        order.push_back(key);
        a.c.service = tc.service;
        a.c.is_virtual = tc.is_virtual;
      }
      // Traces list a culprit once; the earliest failure of each role supplies the why.
      if (tc.role == CulpritRole::kPrimary) {
        if (a.primary_votes++ == 0 || tc.failure_start_ns < a.earliest_primary) {
          a.earliest_primary = tc.failure_start_ns;
          a.why_primary = tc.why;
          a.caller_primary = tc.caller;
        }
      } else {
        if (a.fallout_votes++ == 0 || tc.failure_start_ns < a.earliest_any) {
          a.earliest_any = tc.failure_start_ns;
          a.why_any = tc.why;
          a.caller_any = tc.caller;
        }
      }
    }
  }
  for (const auto& key : order) {
    Acc& a = acc[key];
    Culprit& c = a.c;
    const bool primary = a.primary_votes > 0;
    c.role = primary ? CulpritRole::kPrimary : CulpritRole::kFallout;
    c.votes = primary ? a.primary_votes : a.fallout_votes;
    c.share = out.routed > 0 ? static_cast<double>(c.votes) / out.routed : 0;
    c.earliest_failure_ns = primary ? a.earliest_primary : a.earliest_any;
    c.caller = primary ? a.caller_primary : a.caller_any;
    c.paged = primary || options.page_fallout;
    c.why = (primary ? "blamed by " : "fallout in ") + ShareText(c.votes, out.routed) + ": " +
            (primary ? a.why_primary : a.why_any);
    Owner o = ResolveOwner(registry, c.service, c.is_virtual, c.caller, alerting_service);
    c.team = std::move(o.team);
    c.owner_reason = std::move(o.reason);
    out.culprits.push_back(std::move(c));
  }
  std::stable_sort(out.culprits.begin(), out.culprits.end(),
                   [](const Culprit& a, const Culprit& b) {
                     return std::make_tuple(a.role, -a.votes, a.earliest_failure_ns,
                                            std::string_view(a.service), a.is_virtual) <
                            std::make_tuple(b.role, -b.votes, b.earliest_failure_ns,
                                            std::string_view(b.service), b.is_virtual);
                   });
  return out;
}

std::vector<std::string> PagedTeams(const std::vector<Culprit>& culprits) {
  std::vector<std::string> teams;
  for (const Culprit& c : culprits) {
    if (c.paged && !c.team.empty() &&
        std::find(teams.begin(), teams.end(), c.team) == teams.end()) {
      teams.push_back(c.team);
    }
  }
  return teams;
}

// The fallback answer: the alerting service's owner, else the default team.
std::vector<Culprit> FallbackCulprits(const Registry& registry, const std::string& alerting,
                                      const std::string& reason) {
  std::vector<Culprit> out;
  if (alerting.empty()) return out;
  Culprit c;
  c.service = alerting;
  c.paged = true;
  c.why = "fallback: " + reason;
  Owner o = ResolveOwner(registry, alerting, false, "", alerting);
  c.team = std::move(o.team);
  c.owner_reason = std::move(o.reason);
  out.push_back(std::move(c));
  return out;
}

std::vector<std::string> FallbackTeams(const std::vector<Culprit>& culprits,
                                       const Registry& registry) {
  std::vector<std::string> teams = PagedTeams(culprits);
  if (teams.empty() && !registry.default_team().empty()) teams.push_back(registry.default_team());
  return teams;
}

std::string JoinTeams(const std::vector<std::string>& teams) {
  if (teams.empty()) return "nobody (no owner and no default team)";
  std::string s;
  for (const std::string& t : teams) s += (s.empty() ? "" : ", ") + t;
  return s;
}

}  // namespace

Decision Route(const std::vector<Trace>& traces, const RouteRequest& request,
               const Registry& registry, const WalkOptions& options) {
  Decision d;
  d.symptom = request.symptom;
  d.traces.reserve(traces.size());
  for (const Trace& t : traces) {
    d.traces.push_back(request.symptom == Symptom::kLatency
                           ? WalkLatency(t, request.alerting_service, options)
                           : WalkErrors(t, request.alerting_service, options));
  }

  d.alerting_service = request.alerting_service;
  if (d.alerting_service.empty()) {
    // The most common root service; the first seen wins a tie.
    std::map<std::string, int> count;
    int best = 0;
    for (const TraceVerdict& v : d.traces) {
      if (v.alerting_service.empty()) continue;
      if (++count[v.alerting_service] > best) {
        best = count[v.alerting_service];
        d.alerting_service = v.alerting_service;
      }
    }
  }

  std::vector<uint8_t> voting(d.traces.size(), 0);
  int found = 0;
  for (size_t i = 0; i < d.traces.size(); ++i) {
    voting[i] = d.traces[i].alerting_service_found;
    found += voting[i];
  }
  int slowest = found;
  if (request.symptom == Symptom::kLatency && found > 0) {
    // Only the slowest traces show what the latency alert is about; a fast trace's largest
    // self time is just the normal shape of a request.
    const double frac = std::clamp(options.latency_slowest_fraction, 0.0, 1.0);
    slowest = std::max(1, static_cast<int>(std::ceil(frac * found)));
    std::vector<size_t> idx;
    for (size_t i = 0; i < d.traces.size(); ++i) {
      if (voting[i]) idx.push_back(i);
    }
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      return d.traces[a].alerting_duration_ns > d.traces[b].alerting_duration_ns;
    });
    for (size_t k = static_cast<size_t>(slowest); k < idx.size(); ++k) {
      voting[idx[k]] = 0;
      d.traces[idx[k]].notes.push_back("not among the " + std::to_string(slowest) + " slowest of " +
                                       std::to_string(found) + " traces; it does not vote");
    }
  }

  for (const TraceVerdict& v : d.traces) {
    for (Refinement r : v.changed_by) {
      if (std::find(d.changed_by.begin(), d.changed_by.end(), r) == d.changed_by.end()) {
        d.changed_by.push_back(r);
      }
    }
  }
  std::sort(d.changed_by.begin(), d.changed_by.end());

  const std::string& a = d.alerting_service;
  std::string fallback_reason;
  if (traces.empty()) {
    fallback_reason = "no traces to walk";
  } else if (found == 0) {
    fallback_reason = a.empty() ? std::string(traces.size() == 1 ? "the trace has no spans"
                                                                 : "the traces have no spans")
                                : "the alerting service " + a + " has no spans in " +
                                      Traces(static_cast<int>(traces.size()));
  } else if (request.symptom == Symptom::kLatency) {
    fallback_reason =
        "the critical path below " + a + " has no duration in " + Traces(slowest, "slowest ");
  } else {
    fallback_reason =
        "nothing failed below " + a + " in " +
        Traces(found, "", found < static_cast<int>(traces.size()) ? " where it appears" : "");
  }

  Tallied refined = Tally(d.traces, voting, false, registry, a, options);
  if (refined.routed == 0) {
    d.kind = Decision::Kind::kFallback;
    d.culprits = FallbackCulprits(registry, a, fallback_reason);
    d.teams = FallbackTeams(d.culprits, registry);
    d.reason = "fallback: " + fallback_reason + "; paging " +
               (a.empty() ? std::string("the default team ") + JoinTeams(d.teams)
                          : a + "'s owner: " + JoinTeams(d.teams));
    if (!d.culprits.empty()) d.reason += " (" + d.culprits.front().owner_reason + ")";
  } else {
    d.kind = Decision::Kind::kRouted;
    d.culprits = std::move(refined.culprits);
    d.teams = PagedTeams(d.culprits);
    const Culprit& top = d.culprits.front();
    const std::string where =
        request.symptom == Symptom::kLatency
            ? "has the largest self time on the critical path below " + a + " in "
            : "is the deepest failing service below " + a + " in ";
    d.reason = top.service +
               (top.is_virtual ? " (not instrumented, called by " + top.caller + ")" : "") + " " +
               where + ShareText(top.votes, refined.routed);
    if (request.symptom == Symptom::kLatency) {
      d.reason += " (the slowest " + std::to_string(slowest) + " of " +
                  std::to_string(d.traces.size()) + ")";
    } else if (static_cast<size_t>(refined.routed) < d.traces.size()) {
      d.reason += " (" + std::to_string(refined.routed) + " of " + std::to_string(d.traces.size()) +
                  " traces show failures below it)";
    }
    d.reason += "; paging " + JoinTeams(d.teams) + " (" + top.owner_reason + ")";
    if (d.teams.empty()) {
      // Nobody owns what was found: fall back to the alerting service's owner rather than
      // sending no page at all, the worst outcome for an alert.
      d.teams = FallbackTeams(FallbackCulprits(registry, a, ""), registry);
      if (!d.teams.empty()) d.reason += "; no owner found, paging " + JoinTeams(d.teams);
    }
  }

  Tallied naive = Tally(d.traces, voting, true, registry, a, options);
  if (naive.routed == 0) {
    d.naive = FallbackCulprits(registry, a, fallback_reason);
    d.naive_teams = FallbackTeams(d.naive, registry);
  } else {
    d.naive = std::move(naive.culprits);
    d.naive_teams = PagedTeams(d.naive);
  }
  return d;
}

}  // namespace tracepager::routing
