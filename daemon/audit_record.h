// Audit records: what the daemon writes down about every routing decision and every page
// delivery, as plain data, and their JSON Lines form (schema 1, docs/audit-log.md).
//
// The daemon fills a DecisionAudit (it has the routing::Decision, the alert, the trace-fetch
// audit and the timings) or a DeliveryAudit and hands it to the AuditLogWriter
// (daemon/audit_log.h); nothing here knows the daemon's internals. The same structs come back
// from ParseAuditRecord, so what is written is what is read, apart from redaction:
//
// Secrets never reach a record. DeliveryAudit::target carries the endpoint URL and the secret
// (routing key, API key) only so that they can be recognised: the record holds the target kind,
// name and team, the endpoint reduced to scheme://host[:port], and an 8-hex-digit SHA-256
// fingerprint of the secret; every occurrence of the secret, the endpoint or the endpoint's path
// in any other string (errors, details) is replaced by "[redacted]", and any other URL there is
// reduced to scheme://host[:port]/[redacted]. In every string of every
// record, URL user-info (user:password@) and the values of credential-like query parameters
// (token, key, secret, password, signature, ...) are replaced by "[redacted]" as well.
//
// Times are Unix epoch nanoseconds in the structs and RFC 3339 UTC with microseconds in the
// records ("2025-06-11T03:15:22.123456Z"); a time of 0 means "unknown" and is not written.
// The functions are pure and thread-safe; DecisionIdGenerator keeps state and is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "routing/result.h"
#include "routing/route.h"

namespace tracepager::daemon {

// The schema version written in every record ("schema": 1). Readers skip records with a higher
// version, with a warning.
inline constexpr int kAuditSchemaVersion = 1;

// The alert (or, in a storm, the first of the alerts) behind a decision.
struct AuditAlert {
  std::string identity;  // "am:<fingerprint>", "labels:<hash>", ...
  std::string source;    // "alertmanager" | "grafana" | "generic"
  std::string name;      // alertname; may be empty
  std::string status;    // "firing" | "resolved"
  std::string severity;
  std::string summary;
  int64_t received_ns = 0;   // when the daemon received the webhook
  int64_t starts_at_ns = 0;  // the alert's own start time
  std::map<std::string, std::string> labels;
  // Other alerts whose routing shared this decision (storm grouping), by identity.
  std::vector<std::string> grouped_identities;
};

// One trace asked for.
struct AuditTraceFetch {
  std::string trace_id;
  std::string origin;   // "alert" (carried by the alert) | "search" (found by a search)
  std::string backend;  // the trace source ("file", "jaeger", ...)
  bool used = false;    // routed with
  std::string error;    // why it could not be fetched or read; empty when fetched
};

// The trace search run when the alert carried too few trace ids.
struct AuditTraceSearch {
  std::string backend;
  std::string service;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  uint32_t limit = 0;
  uint32_t found = 0;
  std::string error;  // empty when the search answered
};

struct AuditFetch {
  std::vector<AuditTraceFetch> traces;
  std::optional<AuditTraceSearch> search;
};

// A page the decision planned (one per team and action). Its outcome is a DeliveryAudit.
struct AuditPlannedPage {
  std::string team;
  std::string action = "trigger";  // "trigger" | "resolve"
  std::string target_kind;         // "pagerduty", "opsgenie", "slack", "webhook", "log"
  std::string target_name;         // the configured pager target's name
  std::string dedup_key;
  std::string fallback_for;  // the team this page stands in for; empty for a normal page
};

struct AuditTimings {
  std::chrono::microseconds queue_wait{0};  // alert received -> worker picked the job
  std::chrono::microseconds fetch{0};       // trace fetches and searches
  std::chrono::microseconds route{0};       // routing::Route
  std::chrono::microseconds total{0};       // alert received -> decision recorded
};

// Everything recorded about one routing decision.
struct DecisionAudit {
  std::string id;       // DecisionIdGenerator::Next; unique, sorts by time
  int64_t time_ns = 0;  // when the decision was made
  AuditAlert alert;
  std::string symptom_reason;  // why the symptom is what it is (`label symptom="latency"`)
  AuditFetch fetch;
  routing::Decision decision;  // written with routing::DecisionToJson under "route"
  std::vector<AuditPlannedPage> pages;
  AuditTimings timings;
};

enum class DeliveryOutcome {
  kAccepted,          // the pager took the page (2xx, 202 queued)
  kRejected,          // permanent failure (4xx other than 408/429): retrying cannot help
  kExpired,           // still failing after the maximum age
  kNoTarget,          // the team has no pager target
  kFallback,          // the page went on to a fallback team (rerouted_to)
  kNobodyPaged,       // the fallback chain ran out: nobody was paged
  kCancelled,         // a trigger not yet delivered was cancelled by its resolve
  kNothingToResolve,  // a resolve found no trigger to resolve
};
// "accepted", "rejected", "expired", "no_target", "fallback", "nobody_paged", "cancelled",
// "nothing_to_resolve".
const char* DeliveryOutcomeName(DeliveryOutcome outcome);
// True for the outcomes that left the team unreached: rejected, expired, no_target,
// nobody_paged.
bool DeliveryFailed(DeliveryOutcome outcome);

struct AuditAttempt {
  int64_t time_ns = 0;
  int http_status = 0;     // 0 when there was no HTTP answer (timeout, reset)
  std::string error;       // empty on success
  std::string request_id;  // the pager's id for the request, when it gave one
};

// The pager target a page went to. `endpoint` and `secret` are input only (see the top of this
// file); `redacted` is output only: written from them, and what a parsed record carries.
struct AuditTarget {
  std::string kind;      // "pagerduty", "opsgenie", "slack", "webhook", "log"
  std::string name;      // configured target name
  std::string endpoint;  // input only: the URL pages go to (a Slack webhook URL is a secret)
  std::string secret;    // input only: routing key / API key; never written
  std::string redacted;  // output only: "https://events.pagerduty.com key sha256:1a2b3c4d"
  // Input only: more secrets of the target (a webhook signing key): scrubbed, never written.
  std::vector<std::string> other_secrets;
};

// One outcome of delivering a planned page (see DeliveryOutcome).
struct DeliveryAudit {
  std::string decision_id;
  int64_t time_ns = 0;  // when the outcome became final
  std::string alert_identity;
  std::string action = "trigger";  // "trigger" | "resolve"
  std::string team;
  AuditTarget target;
  std::string dedup_key;
  std::string fallback_for;  // this page stands in for that team's failed page
  std::vector<AuditAttempt> attempts;
  DeliveryOutcome outcome = DeliveryOutcome::kAccepted;
  int64_t accepted_ns = 0;  // when the pager accepted it; 0 unless kAccepted
  std::string rerouted_to;  // the fallback team paged instead, when this one failed
  std::string detail;       // for a person
};

using AuditRecord = std::variant<DecisionAudit, DeliveryAudit>;

// One JSON object, no newline. Secrets redacted as described above.
std::string DecisionRecordJson(const DecisionAudit& record);
std::string DeliveryRecordJson(const DeliveryAudit& record);

// Parses one record line. kInvalidInput with a reason for a line that is not a record (not JSON,
// a field of the wrong type), a record of a newer schema or an unknown type.
Result<AuditRecord> ParseAuditRecord(std::string_view line);

// Whether the refined answer differs from the plain rule's: different teams, or different
// primary culprit services. Stored in every decision record as "disagreement".
bool NaiveDisagrees(const routing::Decision& decision);

// RFC 3339 UTC with microseconds, "2025-06-11T03:15:22.123456Z". REQUIRES: unix_ns >= 0.
std::string FormatAuditTime(int64_t unix_ns);
// Parses RFC 3339 ("2025-06-11T03:15:22Z", any fraction, "Z" or "+02:00"; a space instead of
// "T"; a bare date "2025-06-11" means its midnight UTC). Returns Unix epoch nanoseconds.
Result<int64_t> ParseAuditTime(std::string_view text);

// "scheme://host[:port]" of `url`, with "/[redacted]" appended when the URL had a path or query.
// Text that is not a URL becomes "[redacted]".
std::string RedactUrl(std::string_view url);
// "sha256:" + the first 8 hex digits of SHA-256(secret): lets a person tell two keys apart
// without revealing either. Empty for an empty secret.
std::string SecretFingerprint(std::string_view secret);
// `text` with every occurrence of each non-empty `secrets` entry, every URL user-info and every
// credential-like query parameter value replaced by "[redacted]". With `whole_urls`, every URL
// is reduced as by RedactUrl (delivery records: any URL there is a pager endpoint).
std::string ScrubText(std::string_view text, const std::vector<std::string>& secrets = {},
                      bool whole_urls = false);

// Makes decision ids: "<UTC time to the microsecond>-<4 hex digits>", e.g.
// "20250611T031522.123456Z-3fa9". The hex digits are fixed per generator (random by default), so
// two daemons, or one before and after a restart, do not collide. Ids from one generator are
// strictly increasing even when the clock stands still or steps back, so they sort in the order
// they were made. Thread-safe.
class DecisionIdGenerator {
 public:
  DecisionIdGenerator();  // random suffix
  explicit DecisionIdGenerator(uint16_t suffix);
  std::string Next(int64_t now_ns);

 private:
  std::mutex mu_;
  int64_t last_us_ = 0;
  uint16_t suffix_;
};

}  // namespace tracepager::daemon
