// The generic webhook: the page and its whole routing decision as one JSON document, optionally
// signed with HMAC-SHA256 so the receiver can check it came from tracepager.
//
// Body (stable keys, version "1"):
//   {"version":"1", "action":"trigger"|"resolve", "dedup_key", "alert_identity", "team",
//    "summary", "severity", "culprit", "alerting_service", "symptom", "alertname", "why",
//    "path":[...], "links":[{href,text}], "labels":{...}, "fallback_reason", "decision_id",
//    "created_at" (RFC 3339), "decision": {routing::DecisionToJson}}
// Signature: lowercase hex HMAC-SHA256 of the body in the signature header (default
// X-Tracepager-Signature, no "sha256=" prefix: Grafana's convention, and the one tracepager's
// own inbound endpoint checks). With a timestamp header configured, the signed bytes are
// "<unix seconds>:<body>" and the seconds go in that header, so a receiver can refuse replays.
// Pure; safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "integrations/pager.h"
#include "integrations/pager_http.h"

namespace tracepager::integrations::webhook {

std::string BodyJson(const Page& page);

// The signature headers for `body` under `key` at `unix_seconds`: the signature header, and the
// timestamp header when `timestamp_header` is not empty.
Headers SignatureHeaders(std::string_view body, std::string_view key,
                         std::string_view signature_header, std::string_view timestamp_header,
                         int64_t unix_seconds);

}  // namespace tracepager::integrations::webhook
