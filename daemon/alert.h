// Alert webhooks: the three accepted payload forms, normalized into one AlertBatch, and the
// derivation of routing jobs (daemon/job.h) from it by configurable rules.
//
// Forms:
//   - Alertmanager webhook, version "4" (POST /api/v1/alerts/alertmanager). Lenient where real
//     senders differ: per-alert `status`, `fingerprint`, `endsAt`, `version`, `groupKey` and
//     `truncatedAlerts` may be missing (older Alertmanagers, forwarders); unknown fields are
//     ignored. A missing per-alert status takes the group status, else "firing".
//   - Grafana unified alerting webhook, version "1" (POST /api/v1/alerts/grafana): the same shape
//     plus `state` ("alerting" | "ok" | ...), per-alert `values`, and dashboard/panel/silence/image
//     URLs, which are scanned for trace links.
//   - Generic JSON (POST /api/v1/alerts), for anything else. The body is one alert object, an
//     array of them, or {"alerts": [...]} of them. An alert object:
//       {
//         "service":     "checkout",          // optional; else a configured service label
//         "summary":     "5xx ratio above 5%", // optional; else annotations.summary
//         "severity":    "critical",          // optional; else labels.severity
//         "status":      "firing",            // "firing" (default) | "resolved"
//         "symptom":     "errors",            // optional: "errors" | "latency"
//         "alertname":   "CheckoutErrors",    // optional; else labels.alertname
//         "id":          "checkout-5xx",      // optional identity; else a hash of the labels
//         "labels":      {"team": "shop"},    // optional, string values
//         "annotations": {"runbook": "..."},  // optional, string values
//         "trace_ids":   ["4bf92f35..."],     // optional, 16 or 32 hex digits each
//         "links":       ["https://jaeger/trace/4bf9..."],  // optional, scanned for trace ids
//         "starts_at":   "2026-08-20T14:02:11Z"  // optional, RFC 3339 or Unix seconds; else now
//         "ends_at":     "2026-08-20T14:19:00Z"  // optional, for resolved alerts
//       }
// Label and annotation values may be strings, numbers or booleans (kept as their JSON text).
//
// Errors are kInvalidInput (the HTTP layer answers 400) and name the form and the field:
//   `alertmanager alerts[2].labels.service: expected a string, got an object`.
// Pure: no I/O, no clock (`now` is an argument); safe to call concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/job.h"
#include "routing/result.h"
#include "routing/walk.h"

namespace tracepager::daemon {

enum class AlertFormat { kAuto, kAlertmanager, kGrafana, kGeneric };
const char* AlertFormatName(AlertFormat format);  // "auto" | "alertmanager" | "grafana" | ...
// Parses a name AlertFormatName returns. kInvalidInput lists the known names.
Result<AlertFormat> AlertFormatFromName(std::string_view name);

enum class AlertStatus { kFiring, kResolved };

struct Alert {
  AlertStatus status = AlertStatus::kFiring;
  StringMap labels;
  StringMap annotations;
  int64_t starts_at_ns = 0;  // 0 when absent, empty or Go's zero time
  int64_t ends_at_ns = 0;    // likewise
  std::string generator_url;
  std::string fingerprint;             // Alertmanager/Grafana fingerprint, or the generic `id`
  std::vector<std::string> links;      // other URLs the alert carries (Grafana, generic)
  std::vector<std::string> trace_ids;  // generic `trace_ids`, normalized to 32 hex
  // Generic form fields that have no label of their own; empty otherwise.
  std::string service;
  std::string summary;
  std::string severity;
  std::string symptom;  // "errors" | "latency" | ""
  std::string alertname;
};

struct AlertBatch {
  AlertFormat format = AlertFormat::kAlertmanager;  // never kAuto after parsing
  std::string receiver;
  std::string status;  // group status as sent ("firing" | "resolved"), may be empty
  std::string group_key;
  std::string external_url;
  std::string version;  // as sent, may be empty
  uint32_t truncated_alerts = 0;
  StringMap group_labels;
  StringMap common_labels;
  StringMap common_annotations;
  std::vector<Alert> alerts;
};

struct AlertParseLimits {
  size_t max_bytes = 1u << 20;  // larger bodies are refused (the HTTP layer enforces it first)
  unsigned max_depth = 32;      // JSON nesting
  size_t max_alerts = 10'000;   // per webhook
};

// Parses `body` in `format`; kAuto detects it: an array, or an object without the Alertmanager
// group fields (receiver, groupKey, version, groupLabels, commonLabels, externalURL), is
// generic; an object with them is Grafana when it has `orgId` or `state` or version "1", else
// Alertmanager.
Result<AlertBatch> ParseAlertBatch(std::string_view body, AlertFormat format,
                                   const AlertParseLimits& limits = {});

// A case-insensitive ECMAScript regular expression, searched anywhere in the alert name.
// Thread-safe. Answers are remembered per alert name (a fleet has a few hundred alert rules, and
// libstdc++'s regex search cost more than the rest of a job's derivation); the memory is bounded
// (kMemoLimit names; beyond it, new names are searched each time).
struct AlertNamePattern {
  static constexpr size_t kMemoLimit = 4096;
  struct Memo;

  std::string text;
  std::shared_ptr<const std::regex> regex;
  std::shared_ptr<Memo> memo;  // shared by copies of the pattern
  // kInvalidInput with the regex error when `text` does not compile.
  static Result<AlertNamePattern> Compile(std::string_view text);
  bool Matches(std::string_view alertname) const;
};

// The derivation rules (config section `alerts`).
struct AlertRules {
  // The alerting service: the first of these labels present and non-empty (the generic form's
  // `service` field comes before all of them).
  std::vector<std::string> service_labels = {"service", "service_name", "job", "app"};
  // The symptom: this label's value ("errors"/"error" or "latency"), else the first alert-name
  // pattern list that matches (latency first), else default_symptom.
  std::string symptom_label = "symptom";
  std::vector<AlertNamePattern> latency_patterns;  // config default: latency, p9[059], slow, ...
  std::vector<AlertNamePattern> error_patterns;
  routing::Symptom default_symptom = routing::Symptom::kErrors;
  // Trace ids: the values of these labels and annotations, each a bare trace id (16 or 32 hex
  // digits), a W3C traceparent, or text holding trace links.
  std::vector<std::string> trace_id_labels = {"trace_id", "traceid"};
  std::vector<std::string> trace_id_annotations = {"trace_id", "traceid", "traceparent", "exemplar",
                                                   "trace_url"};
  // Also look for trace links (".../trace/<hex>", "traceId=<hex>", ...) in every annotation
  // value and every URL the alert carries.
  bool scan_links = true;
  size_t max_trace_ids = 20;
  // The trace window is [startsAt - lookback, now].
  std::chrono::milliseconds lookback{std::chrono::minutes(15)};
  // Alerts of one storm key within this window share one decision and one page (the store and
  // workers apply it; the derivation only computes the key).
  std::chrono::milliseconds storm_window{std::chrono::minutes(5)};
  // Identical notifications (HA replicas, sender retries) within this window are enqueued once.
  std::chrono::milliseconds dedup_window{std::chrono::minutes(2)};
};

// The rules with their default pattern lists compiled (what an absent `alerts` section means).
AlertRules DefaultAlertRules();

// Each firing alert becomes one kRoute job, each resolved alert one kResolve job, in batch
// order. Never drops a firing alert: one without service or trace ids still becomes a job (the
// worker falls back to the default team). `now_ns` is Unix epoch nanoseconds. Takes the batch
// by value: its alerts' labels and annotations move into the jobs (pass an rvalue when the
// batch is not needed afterwards, as JobsFromWebhook does).
std::vector<RoutingJob> DeriveJobs(AlertBatch batch, const AlertRules& rules, int64_t now_ns);

// ParseAlertBatch then DeriveJobs: what the daemon's endpoints and `route --alert` call.
Result<std::vector<RoutingJob>> JobsFromWebhook(std::string_view body, AlertFormat format,
                                                const AlertParseLimits& limits,
                                                const AlertRules& rules, int64_t now_ns);

// Helpers exposed for tests and for other parsers.
// Normalizes a bare trace id (16 or 32 hex digits, any case) to 32 lowercase hex digits, or a
// W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>") to its trace id; nullopt otherwise. An
// all-zero id is invalid.
std::optional<std::string> NormalizeTraceId(std::string_view text);
// Trace ids found in links inside `text`: after "/trace/", "/traces/", "traceid=",
// "trace_id=", "traceid:" (any case, also URL-encoded "%2Ftrace%2F"); appended to *out if new.
void ScanTraceLinks(std::string_view text, std::vector<std::string>* out);
// An alert time: RFC 3339 with optional fraction (up to 9 digits) and Z or +hh:mm offset ->
// Unix ns. Go's zero time "0001-01-01T00:00:00Z" and "" give 0 ("not set", as Alertmanager
// means them). Years outside 1678..2261 (int64 ns) fail.
Result<int64_t> ParseAlertTime(std::string_view text);
// Unix ns -> "2026-11-26T21:22:58.885Z" (fraction trimmed of trailing zeros).
std::string FormatAlertTime(int64_t unix_ns);

}  // namespace tracepager::daemon
