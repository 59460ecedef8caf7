// Route: traces + registry -> the decision of whom to page, with its explanation.
//
// Each trace is walked (routing/walk.h); each trace votes for its primary culprits; culprits are
// ordered by the share of traces that blame them, ties by earliest failure. Owners come from the
// registry: an unowned virtual peer falls back to its caller's owner, an unowned service to the
// default team, and the reason says so. No traces, or nothing failed below the alerting service:
// decision "fallback", paging the alerting service's owner (else the default team).
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
  std::string team;              // owner, after fallbacks; empty only if nobody can be found
  std::string owner_reason;      // how the team was found ("registry", "caller's owner: ...")
  double share = 0;              // fraction of routed traces whose primary culprit this is
  int votes = 0;
  CulpritRole role = CulpritRole::kPrimary;
  bool paged = false;            // primaries are paged; fallout only with page_fallout
  std::string why;
  int64_t earliest_failure_ns = 0;
};

struct Decision {
  enum class Kind { kRouted, kFallback };
  Kind kind = Kind::kFallback;
  std::string reason;
  std::string alerting_service;
  Symptom symptom = Symptom::kErrors;
  std::vector<Culprit> culprits;       // most likely first
  std::vector<std::string> teams;      // distinct teams to page, in culprit order
  std::vector<Culprit> naive;          // the plain rule's culprits, same ordering rules
  std::vector<std::string> naive_teams;
  std::vector<Refinement> changed_by;  // refinements that changed the answer in any trace
  std::vector<TraceVerdict> traces;
};
const char* DecisionKindName(Decision::Kind kind);  // "routed" | "fallback"

Decision Route(const std::vector<Trace>& traces, const RouteRequest& request,
               const Registry& registry, const WalkOptions& options);

}  // namespace tracepager::routing
