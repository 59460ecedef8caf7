// PagerDuty Events API v2: the event body for a page, and how to read PagerDuty's answer.
// https://developer.pagerduty.com/docs/events-API-v2/trigger-events/
//
// Trigger: routing_key (the team's target), event_action, dedup_key (DedupKey of the alert and
// the team), payload {summary <= 1024 bytes, source, severity, timestamp, component = culprit,
// group = alerting service, class = symptom, custom_details = the page's details plus why},
// links (the traces in the tracing UI), client, client_url.
// Resolve: routing_key, event_action, dedup_key only; PagerDuty drops a resolve whose routing key
// differs from the trigger's, which is why the outbox keeps the target per dedup key.
// The whole event stays within PagerDuty's 512 KB: custom_details shrink first (labels and the
// long lists go, the audit record keeps them), then links.
// Pure; safe to call concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "integrations/pager.h"
#include "integrations/pager_http.h"

namespace tracepager::integrations::pagerduty {

inline constexpr size_t kMaxEventBytes = 512 * 1024;
inline constexpr size_t kMaxSummaryBytes = 1024;
inline constexpr size_t kMaxDedupKeyBytes = 255;

struct PagerDutyOptions {
  // https://events.pagerduty.com/v2/enqueue, or the EU region's
  // https://events.eu.pagerduty.com/v2/enqueue.
  std::string events_url = "https://events.pagerduty.com/v2/enqueue";
  std::string client = "tracepager";
  std::string client_url;  // optional: a link back to the tracepager deployment
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
};

// The JSON event for `page` (a trigger or a resolve) under `routing_key`.
std::string EventJson(const Page& page, std::string_view routing_key,
                      const PagerDutyOptions& options);

// Reads PagerDuty's answer body ({status, message, errors[], dedup_key}) into the outcome's
// detail, e.g. `HTTP 400: invalid event: Event object is invalid (Length of 'routing_key' is
// incorrect ...)`. Bodies that are not that JSON are quoted, cut to a few hundred bytes.
void ReadReply(const HttpReply& reply, SendOutcome* outcome);

}  // namespace tracepager::integrations::pagerduty
