// Slack incoming webhooks: a message a person can act on, and how to read Slack's answer.
// https://api.slack.com/messaging/webhooks
//
// Trigger: who is paged and why (the culprit, the symptom, the alert), the path from the
// alerting service to the culprit, every culprit with its share, and links (traces, runbook,
// the alert's source). `text` carries the same in one line for notifications and clients
// without Block Kit. Resolve: a short follow-up naming the same alert and team.
// Everything a peer or the alert supplied is escaped for mrkdwn (&, <, >).
// Success is HTTP 200 with the plain-text body "ok"; a 2xx with another body (a proxy's page)
// is not counted as delivered. Errors come as short plain-text reasons (invalid_payload,
// channel_not_found, ...). Pure; safe to call concurrently.
#pragma once

#include <string>
#include <string_view>

#include "integrations/pager.h"
#include "integrations/pager_http.h"

namespace tracepager::integrations::slack {

// Slack's limits: a section's text (3000) and a header's plain text (150) are hard; the top-level
// text is cut by Slack past 40000 characters, we stay well below.
inline constexpr size_t kMaxSectionChars = 3000;
inline constexpr size_t kMaxHeaderChars = 150;
inline constexpr size_t kMaxTextChars = 4000;

// "&" "<" ">" as "&amp;" "&lt;" "&gt;", as Slack requires in mrkdwn and plain text.
std::string Escape(std::string_view text);

// The webhook body for a trigger or resolve page.
std::string MessageJson(const Page& page);

// Slack's answer: 200 "ok" is delivered; any other body is quoted in the detail, and a 2xx whose
// body is not "ok" is made a retryable failure.
void ReadReply(const HttpReply& reply, SendOutcome* outcome);

}  // namespace tracepager::integrations::slack
