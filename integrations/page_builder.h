// Building pages from a routing decision, and keeping them (PageToJson) in the outbox.
//
// One page per team the decision pages, in the decision's team order. Each page leads with the
// team's most likely culprit and carries what a person needs to act: the symptom, the path from
// the alerting service to the culprit, every culprit with its share of the traces, the naive
// answer when it differs, the alert's labels and links to the traces in the tracing UI.
// Pure: no I/O, no clock (times come in as arguments); safe to call concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "integrations/pager.h"
#include "routing/result.h"
#include "routing/route.h"

namespace tracepager::integrations {

// What the pages need to know about the alert, beyond the decision. The daemon fills it from
// its routing job.
struct AlertInfo {
  std::string identity;   // stable across notifications of one alert (fingerprint, ...)
  std::string alertname;  // may be empty
  std::string summary;    // the alert's own summary annotation; may be empty
  std::string severity;   // the alert's severity label, any spelling; may be empty
  std::map<std::string, std::string> labels;
  std::vector<std::string> trace_ids;  // the traces routed on (or the alert's own)
  std::string generator_url;           // link to the rule that fired; may be empty
  std::string runbook_url;             // may be empty
};

struct PageOptions {
  // Link to one trace in the tracing UI; "{trace_id}" is replaced with the id. Empty: no links.
  // Example: "https://jaeger.example/trace/{trace_id}".
  std::string trace_url_template;
  size_t max_trace_links = 5;
  // Severity used when the alert's severity label is missing or not recognised.
  std::string default_severity = "error";
};

// The dedup key of one alert identity paged to one team: "tracepager-" + 64 lowercase hex
// digits of SHA-256(identity, team). Stable across restarts and versions; 75 characters, within
// PagerDuty's dedup_key (255) and Opsgenie's alias (512) limits; only [a-z0-9-], so it can go
// into a URL path as is.
std::string DedupKey(std::string_view alert_identity, std::string_view team);

// The PagerDuty severity for an alert's severity label: critical|error|warning|info.
// Recognises the usual spellings (critical, crit, page, p1, high, major, error, warning, warn,
// medium, minor, low, info, informational, none, p2..p5), case-insensitively; anything else maps
// to `fallback`.
std::string MapSeverity(std::string_view alert_severity, std::string_view fallback = "error");

// One trigger page per team in decision.teams (or, when the decision names no team, none).
// `decision_id` links each page to the audit record; `now_unix_ns` stamps the pages.
std::vector<Page> BuildPages(const routing::Decision& decision, const AlertInfo& alert,
                             const PageOptions& options, std::string_view decision_id,
                             int64_t now_unix_ns);

// A copy of `page` readdressed to `team` because its own team could not be reached: new dedup
// key, `fallback_reason` set, and the summary prefixed with "[fallback for <team>] ".
Page FallbackPage(const Page& page, std::string_view team, std::string_view reason);

// The resolve page for a trigger page: same identity, dedup key, team and content.
Page ResolvePage(const Page& trigger);

// `text` cut to at most `max_bytes` bytes on a UTF-8 character boundary, with "…" at the end
// when something was cut.
std::string TruncateUtf8(std::string_view text, size_t max_bytes);
// `text` cut to at most `max_chars` Unicode characters (Opsgenie counts characters), "…" last
// when something was cut.
std::string TruncateChars(std::string_view text, size_t max_chars);

// RFC 3339 UTC with milliseconds, "2024-05-01T12:00:00.123Z".
std::string Rfc3339Utc(int64_t unix_ns);

// One JSON object, every field of the page; PageFromJson reads it back (kInvalidInput naming
// the field when malformed).
std::string PageToJson(const Page& page);
Result<Page> PageFromJson(std::string_view json);

}  // namespace tracepager::integrations
