// Route: traces + registry -> the decision of whom to page, with its explanation.
//
// Each trace is walked (routing/walk.h) from the request's alerting service, or, when that is
// empty, from the service of the trace's root span. Errors: every trace walks. Latency: only the
// slowest traces vote (WalkOptions::latency_slowest_fraction); the others are in `traces` with a
// note. Each voting trace votes once for each of its primary culprits (and counts its fallout
// culprits separately). Culprits are ordered primaries first, then by share, ties by earliest
// failure, then by name. share = votes / routed traces, where a routed trace is a voting trace
// with at least one culprit.
//
// Owners come from the registry:
//   - the culprit's own registry entry ("registry: payment is owned by payments");
//   - a virtual (uninstrumented) peer the registry does not know: its caller's owner, and the
//     reason says so; with no owner for the caller either, the default team;
//   - an unknown service: the default team, and the reason says so;
//   - no default team: the alerting service's owner; else nobody (team empty, reason says so).
// Primary culprits are paged; fallout culprits only with WalkOptions::page_fallout.
//
// No traces, or no voting trace with a culprit (nothing failed below the alerting service, or
// the alerting service has no spans): decision kFallback, whose single culprit is the alerting
// service with its owner (else the default team) and the reason. With no alerting service at
// all (no traces and none requested) the fallback has no culprit and pages the default team.
// naive/naive_teams are computed the same way from the plain rule's answers (including the
// fallback when the plain rule finds nothing).
// Pure: no I/O; safe to call concurrently.
#pragma once

#include <string>
#include <vector>

#include "routing/registry.h"
#include "routing/trace.h"
#include "routing/walk.h"

namespace tracepager::routing {

struct RouteRequest {
  // The service that raised the alert. Empty: each trace's root span service.
  std::string alerting_service;
  Symptom symptom = Symptom::kErrors;
};

struct Culprit {
  std::string service;
  bool is_virtual = false;
  std::string caller;        // virtual culprits: the calling service (of the earliest vote)
  std::string team;          // owner, after fallbacks; empty only if nobody can be found
  std::string owner_reason;  // how the team was found ("registry: ...", "... caller's owner")
  double share = 0;          // votes / routed traces (0 for a fallback culprit)
  int votes = 0;             // traces that blame it in its role (primary or fallout)
  CulpritRole role = CulpritRole::kPrimary;
  bool paged = false;               // primaries are paged; fallout only with page_fallout
  std::string why;                  // "blamed by 2 of 3 traces: <the earliest trace's why>"
  int64_t earliest_failure_ns = 0;  // absolute; 0 for a fallback culprit
};

struct Decision {
  enum class Kind { kRouted, kFallback };
  Kind kind = Kind::kFallback;
  std::string reason;            // one or two sentences for a person
  std::string alerting_service;  // the request's; else the most common trace root service
  Symptom symptom = Symptom::kErrors;
  std::vector<Culprit> culprits;   // most likely first
  std::vector<std::string> teams;  // distinct teams to page, in culprit order
  std::vector<Culprit> naive;      // the plain rule's culprits, same ordering rules
  std::vector<std::string> naive_teams;
  std::vector<Refinement> changed_by;  // refinements that changed the answer in any trace
  std::vector<TraceVerdict> traces;    // one per input trace, in input order
};
const char* DecisionKindName(Decision::Kind kind);  // "routed" | "fallback"

Decision Route(const std::vector<Trace>& traces, const RouteRequest& request,
               const Registry& registry, const WalkOptions& options);

}  // namespace tracepager::routing
