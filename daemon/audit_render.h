// Renders audit query answers (daemon/audit_query.h) for people and for programs. The JSON forms
// are what `tracepager audit ... --format json` prints and what GET /api/v1/decisions answers,
// so a jq filter written against one works on the other:
//   listing: {"decisions":[summary...],"matched":N,"warnings":["FILE:LINE: ..."]}
//   detail:  {"decision":<the stored decision record>,"deliveries":[<stored delivery records>],
//             "source":{"file":F,"line":N},"warnings":[...]}
//   stats:   {"decisions":N,"routed":N,"fallbacks":N,"fallback_rate":R,"disagreements":N,
//             "disagreement_rate":R,"teams":[...],"page_latency_ms":{...},"top_culprits":[...],
//             "from":T,"to":T,"warnings":[...]}
// docs/audit-log.md shows a summary object key by key.
// Text is for a person reviewing the night's pages; times are UTC. The text forms leave the
// read warnings out (the CLI prints them on stderr). Pure; thread-safe.
#pragma once

#include <string>

#include "daemon/audit_query.h"

namespace tracepager::daemon {

std::string ListingToJson(const AuditListing& listing);
std::string ListingToText(const AuditListing& listing);

// The decision drawn like `tracepager route` (routing::DecisionToText), with the alert, the
// traces asked for, the timings and every delivery around it.
std::string DetailToJson(const AuditDecisionDetail& detail);
std::string DetailToText(const AuditDecisionDetail& detail);

std::string StatsToJson(const AuditStats& stats);
std::string StatsToText(const AuditStats& stats);

// "1.2ms", "3.40s", "2m05s": a duration for people.
std::string HumanDuration(int64_t ns);

}  // namespace tracepager::daemon
