// Opsgenie Alert API (and its successor under Jira Service Management Operations, which keeps
// the same alert API under another base path): the request for a page, and how to read the
// answer. https://docs.opsgenie.com/docs/alert-api
//
// Trigger: POST {base}/v2/alerts with message (<= 130 characters, leading with the culprit and
// the symptom), alias = the page's dedup key (<= 512), description (<= 15000), responders = the
// target's Opsgenie team (by id when it is a UUID, else by name), priority mapped from the
// severity, details (string map, <= 8000 characters in all: most useful first, labels last),
// tags (<= 20 of <= 50 characters), entity = culprit, source.
// Resolve: POST {base}/v2/alerts/{alias}/close?identifierType=alias.
// Auth: "Authorization: GenieKey <key>". A 202 means queued, not done: its requestId is kept
// so the outcome can be looked up (GET {base}/v2/alerts/requests/{id}).
// Pure; safe to call concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "integrations/pager.h"
#include "integrations/pager_http.h"
#include "integrations/secret.h"
#include "routing/result.h"

namespace tracepager::integrations::opsgenie {

inline constexpr size_t kMaxMessageChars = 130;
inline constexpr size_t kMaxAliasChars = 512;
inline constexpr size_t kMaxDescriptionChars = 15000;
inline constexpr size_t kMaxDetailsChars = 8000;
inline constexpr size_t kMaxTags = 20;
inline constexpr size_t kMaxTagChars = 50;
inline constexpr size_t kMaxEntityChars = 512;
inline constexpr size_t kMaxSourceChars = 100;

inline constexpr std::string_view kUsBaseUrl = "https://api.opsgenie.com";
inline constexpr std::string_view kEuBaseUrl = "https://api.eu.opsgenie.com";
inline constexpr std::string_view kJsmBaseUrl = "https://api.atlassian.com/jsm/ops/integration";

// The API base URL for a config value: "us", "eu", "jsm", or an explicit http(s) URL (a proxy,
// a test). kInvalidInput names the value otherwise.
Result<std::string> BaseUrl(std::string_view api);

struct OpsgenieOptions {
  std::string base_url = std::string(kUsBaseUrl);  // from BaseUrl()
  std::string source = "tracepager";
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  // The API integration's GenieKey, used for targets that carry no key of their own.
  Secret api_key;
};

// P1 critical, P2 error, P3 warning, P5 info (and anything unknown: P3, Opsgenie's default).
std::string Priority(std::string_view severity);

// The create-alert body for a trigger page; `responder` is the Opsgenie team name or id.
std::string CreateAlertJson(const Page& page, std::string_view responder,
                            const OpsgenieOptions& options);
// The close-alert body for a resolve page.
std::string CloseAlertJson(const Page& page, const OpsgenieOptions& options);
// "{base}/v2/alerts" for a trigger, "{base}/v2/alerts/{alias}/close?identifierType=alias" (alias
// percent-encoded) for a resolve.
std::string RequestUrl(const Page& page, const OpsgenieOptions& options);

// Reads Opsgenie's answer ({result|message, errors{}, took, requestId}): the requestId into
// outcome->request_id, the message and field errors into the detail.
void ReadReply(const HttpReply& reply, SendOutcome* outcome);

}  // namespace tracepager::integrations::opsgenie
