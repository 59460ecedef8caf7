// Questions asked of the audit log (daemon/audit_log.h): which decisions, one decision with its
// deliveries, and statistics. Shared by `tracepager audit` and the HTTP API, so both answer
// alike. Every call reads the whole log (rotated files included) once; none writes.
//
// Decisions are joined with their delivery records by decision id. Unreadable lines never fail
// a query: they come back as warnings next to the answer.
// Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/audit_log.h"
#include "daemon/audit_record.h"
#include "routing/result.h"
#include "routing/route.h"

namespace tracepager::daemon {

// Which decisions. Empty fields do not filter.
struct AuditFilter {
  std::optional<int64_t> since_ns;  // decision time >= since
  std::optional<int64_t> until_ns;  // decision time <= until
  std::string service;              // the alerting service, or a culprit (primary or fallout)
  std::string team;   // a team the decision paged, or that one of its deliveries went to
  std::string alert;  // the alert's name or identity, or a grouped alert's identity
  std::optional<routing::Decision::Kind> kind;
  bool disagreement_only = false;  // naive and refined answers differ (NaiveDisagrees)
};

// Parses a --since/--until value: a duration before `now_ns` ("90s", "30m", "2h", "1d", "1w",
// "1h30m"), "now", or an RFC 3339 time. kInvalidInput says which forms are accepted.
Result<int64_t> ParseTimeArg(std::string_view text, int64_t now_ns);

struct DeliverySummary {
  int64_t time_ns = 0;
  std::string action;
  std::string team;
  std::string target_kind;
  std::string target_name;
  std::string dedup_key;
  DeliveryOutcome outcome = DeliveryOutcome::kAccepted;
  size_t attempts = 0;
  int last_http_status = 0;
  std::string last_error;
  int64_t accepted_ns = 0;
  std::string fallback_for;
  std::string rerouted_to;
};

struct CulpritSummary {
  std::string service;
  std::string team;
  double share = 0;
  bool primary = true;
  bool is_virtual = false;
};

// One decision as a line in a list.
struct DecisionSummary {
  std::string id;
  int64_t time_ns = 0;
  std::string alert_name;
  std::string alert_identity;
  std::string alert_source;
  int64_t received_ns = 0;
  size_t grouped_alerts = 0;  // other alerts sharing the decision
  std::string alerting_service;
  std::string symptom;
  routing::Decision::Kind kind = routing::Decision::Kind::kFallback;
  std::string reason;
  std::vector<std::string> teams;
  std::vector<std::string> naive_teams;
  std::vector<CulpritSummary> culprits;
  std::vector<std::string> changed_by;
  bool disagreement = false;
  size_t traces_asked = 0;
  size_t traces_used = 0;
  size_t fetch_errors = 0;
  AuditTimings timings;
  size_t pages_planned = 0;
  std::vector<DeliverySummary> deliveries;  // in log order
  int64_t first_accepted_ns = 0;            // earliest accepted trigger delivery; 0 if none
  bool nobody_paged = false;                // a delivery record says the chain ran out
};

DecisionSummary SummarizeDecision(const DecisionAudit& decision);

struct AuditListing {
  std::vector<DecisionSummary> decisions;  // newest first, at most `limit`
  size_t matched = 0;                      // before the limit
  std::vector<AuditReadWarning> warnings;
};

// Decisions matching `filter`, newest first (by decision time, then id). limit 0: all.
Result<AuditListing> ListDecisions(const std::string& log_path, const AuditFilter& filter,
                                   size_t limit);

struct AuditDecisionDetail {
  DecisionAudit decision;
  std::string decision_json;  // the record line as stored
  std::string file;
  uint64_t line = 0;
  std::vector<DeliveryAudit> deliveries;  // in log order
  std::vector<std::string> delivery_json;
  std::vector<AuditReadWarning> warnings;
};

// The decision whose id is `id`, or starts with `id` when exactly one does. kNotFound when none
// does (or the log does not exist); kInvalidInput when the prefix names several (the message
// lists some) or is empty.
Result<AuditDecisionDetail> FindDecision(const std::string& log_path, std::string_view id);

struct TeamStats {
  std::string team;
  size_t routed = 0;          // routed decisions that paged the team
  size_t fallbacks = 0;       // fallback decisions that paged the team
  size_t pages_accepted = 0;  // trigger deliveries to the team that were accepted
  size_t pages_failed = 0;    // trigger deliveries to the team that failed (DeliveryFailed)
};

struct AuditStats {
  size_t decisions = 0;
  size_t routed = 0;
  size_t fallbacks = 0;
  size_t disagreements = 0;
  size_t nobody_paged = 0;       // decisions whose pages reached nobody
  double fallback_rate = 0;      // fallbacks / decisions
  double disagreement_rate = 0;  // disagreements / decisions
  std::vector<TeamStats> teams;  // by pages_accepted + routed + fallbacks, descending
  // Alert received -> first page accepted, over decisions with both times.
  size_t page_latency_count = 0;
  int64_t page_latency_median_ns = 0;
  int64_t page_latency_p95_ns = 0;
  int64_t page_latency_max_ns = 0;
  std::vector<std::pair<std::string, size_t>> top_culprits;  // primary culprits, most first
  std::optional<int64_t> first_ns;                           // time of the oldest decision counted
  std::optional<int64_t> last_ns;
  std::vector<AuditReadWarning> warnings;
};

// Statistics over the decisions matching `filter`. top_culprits holds at most `top_n`.
Result<AuditStats> ComputeAuditStats(const std::string& log_path, const AuditFilter& filter,
                                     size_t top_n = 10);

}  // namespace tracepager::daemon
