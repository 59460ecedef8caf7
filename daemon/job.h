// RoutingJob: one unit of work for a daemon worker, derived from one alert of a webhook
// (daemon/alert.h) and kept in the durable store (daemon/store.h) until it is finished.
//
// A job is plain data and round-trips through JSON (JobToJson / JobFromJson), which is how the
// store keeps it. Pure: no I/O; safe to use from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "routing/result.h"
#include "routing/walk.h"

namespace tracepager::daemon {

using StringMap = std::map<std::string, std::string, std::less<>>;

enum class JobKind {
  kRoute,    // a firing alert: find the culprit and page its owner
  kResolve,  // a resolved alert: resolve whatever was paged for its identity
};
const char* JobKindName(JobKind kind);  // "route" | "resolve"

// "errors" | "latency" (the spelling config, storm keys and the generic form use).
const char* SymptomText(routing::Symptom symptom);

struct RoutingJob {
  JobKind kind = JobKind::kRoute;

  // The alert's identity across notifications: "am:<fingerprint>", "grafana:<fingerprint>",
  // "generic:<id>", or "labels:<16 hex>" (a stable hash of the sorted labels) when the payload
  // carries no identity of its own. A resolve job carries the identity of the alert it resolves.
  std::string identity;
  // Jobs with the same storm key within the storm window share one trace fetch and one decision:
  // "<service>|<symptom>", or "alert|<identity>" when no alerting service is known (such alerts
  // cannot be grouped safely). A resolve job has the storm key of the alert it resolves, so that
  // it is handled by the same worker after the route job.
  std::string storm_key;
  // Equal for HA duplicates of one notification (identity, status, startsAt, endsAt).
  std::string dedup_key;

  std::string source;            // "alertmanager" | "grafana" | "generic"
  std::string alertname;         // labels.alertname, may be empty
  std::string alerting_service;  // empty when no configured service label is present
  std::string service_label;     // which label (or "service" field) named the service
  routing::Symptom symptom = routing::Symptom::kErrors;
  std::string symptom_reason;          // why, for the audit: `label symptom="latency"`, ...
  std::vector<std::string> trace_ids;  // 32 lowercase hex digits each, distinct, in found order

  int64_t starts_at_ns = 0;     // the alert's startsAt; 0 when it carried none
  int64_t ends_at_ns = 0;       // the alert's endsAt when resolved; 0 otherwise
  int64_t window_start_ns = 0;  // traces are looked for in [window_start_ns, window_end_ns]
  int64_t window_end_ns = 0;
  int64_t received_ns = 0;  // when the webhook arrived

  std::string summary;   // annotations.summary (or the generic `summary`)
  std::string severity;  // labels.severity (or the generic `severity`)
  StringMap labels;
  StringMap annotations;
  std::string generator_url;

  // The webhook group the alert came in; truncated_alerts > 0 means the sender dropped that
  // many alerts of the group (Alertmanager max_alerts): they are unknown, not resolved.
  std::string group_key;
  std::string receiver;
  uint32_t group_truncated_alerts = 0;

  // Every member, so that a test can hold JobFromJson(JobToJson(job)) == job: a worker may be
  // given the job as derived (daemon/store.h, IntakeBatch::live) or as read back from the store,
  // and must see the same job either way.
  friend bool operator==(const RoutingJob&, const RoutingJob&) = default;
};

// Serializes a job as one JSON object (no newlines).
std::string JobToJson(const RoutingJob& job);

// What JobFromJson fills in. A job's details are what a decision reads of the one alert that
// pages or is audited as the decision's alert: labels, annotations, summary, severity,
// generator_url, symptom_reason, service_label, group_key, receiver, group_truncated_alerts.
// Without them a job holds what every alert of a claim is decided on with (kind, identity,
// keys, source, alertname, alerting service, symptom, trace ids, times): a storm's claim of a
// thousand jobs takes a fraction of the memory and of the parse (daemon/store.h, ClaimedJob).
enum class JobParts { kAll, kWithoutDetails };

// Parses JobToJson's output. kInvalidInput names the field on a malformed document. The
// details are checked either way: a document parses with both JobParts or with neither.
Result<RoutingJob> JobFromJson(std::string_view json, JobParts parts = JobParts::kAll);

// The job without its details: what JobFromJson(JobToJson(job), kWithoutDetails) gives, copied
// from the job (a claim's jobs as derived, daemon/store.h; copying their labels and annotations
// was a fifth of a routing worker's time).
RoutingJob WithoutDetails(const RoutingJob& job);

}  // namespace tracepager::daemon
