// Pager: how a team is woken (PagerDuty, Opsgenie, Slack, a webhook, or the `log` pager of the
// embedded defaults). One small interface, one implementation per kind
// (integrations/<kind>/), built once per kind from its config section.
//
// A Pager is not bound to a team: each Send names the PagerTarget (the team's routing key,
// Opsgenie team, webhook URL, ...) it goes to. That is what lets the delivery outbox resolve an
// alert at exactly the target that was triggered, after a registry change or a restart: the
// outbox stores the target next to the page (integrations/delivery/).
//
// Asynchronous: Send returns at once and runs `done` exactly once, from any thread.
// Implementations are thread-safe. Delivery guarantees (outbox, retries, fallback, rate limits)
// live in integrations/delivery/, not here: a Pager makes one attempt per call and reports what
// happened.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "integrations/secret.h"

namespace tracepager::integrations {

// Where one team's pages go through one pager kind. Built from the registry's team entry; the
// credential was resolved from its file or environment reference at registry load.
struct PagerTarget {
  std::string kind;    // "pagerduty" | "opsgenie" | "slack" | "webhook" | "log"
  std::string team;    // the team this target belongs to
  std::string name;    // opsgenie: the responder team's name or id; otherwise empty
  Secret credential;   // pagerduty: routing key; opsgenie: GenieKey; slack, webhook: the URL
  Secret signing_key;  // webhook: optional HMAC-SHA256 key; otherwise empty

  // A stable identifier that names no secret: "<kind>:<16 hex of SHA-256 over kind, name and
  // credential>". Two teams sharing one Slack webhook share one key (and one rate limit).
  std::string Key() const;
  // For logs and audit records: `pagerduty team=payments credential=[redacted] (env PD_KEY)`.
  std::string Describe() const;
  // The secrets to pass to Redact() for text that concerns this target.
  std::vector<const Secret*> Secrets() const { return {&credential, &signing_key}; }
};

struct PageLink {
  std::string href;
  std::string text;
};

// One page to one team, built from a routing decision (integrations/page_builder.h). Plain
// data without secrets; the outbox persists it (PageToJson) before it is sent.
struct Page {
  enum class Action { kTrigger, kResolve };
  Action action = Action::kTrigger;
  std::string alert_identity;     // the alert's identity; resolves find their triggers by it
  std::string dedup_key;          // DedupKey(alert_identity, team): PagerDuty dedup_key, OG alias
  std::string team;               // the team paged
  std::string summary;            // <= 1024 bytes; leads with the culprit service and the symptom
  std::string severity;           // critical | error | warning | info
  std::string source;             // the alerting service
  std::string component;          // the culprit service
  std::string group;              // the alerting service
  std::string alertname;          // may be empty
  std::string symptom;            // "errors" | "latency"
  std::string why;                // one sentence: why this culprit
  std::vector<std::string> path;  // services from the alerting service down to the culprit
  std::string decision_id;        // links the page to its audit record
  std::string details_json;       // a JSON object: path, culprits with shares, naive answer, labels
  std::string decision_json;      // the whole decision (routing::DecisionToJson), for webhooks
  std::vector<PageLink> links;    // traces in the tracing UI, runbook, the alert's source
  std::map<std::string, std::string> labels;  // the alert's labels
  std::string fallback_reason;                // set when this page reached a fallback team: why
  int64_t created_unix_ns = 0;                // when the decision was made
};

// What one attempt to deliver a page came to.
struct SendOutcome {
  bool accepted = false;   // the pager took it (2xx / 202 queued)
  bool permanent = false;  // when not accepted: retrying cannot help (4xx other than 408/429)
  int http_status = 0;     // 0 when no HTTP answer (timeout, reset, local failure)
  std::optional<std::chrono::milliseconds> retry_after;  // from a 429's Retry-After
  std::string request_id;  // the pager's id for the request, when it gives one
  std::string detail;      // for a person; never contains a secret
};

class Pager {
 public:
  virtual ~Pager() = default;

  // "log", "pagerduty", "opsgenie", "slack", "webhook".
  virtual std::string_view kind() const = 0;

  // One attempt to deliver `page` to `target`. REQUIRES: target.kind == kind().
  virtual void Send(const Page& page, const PagerTarget& target,
                    std::function<void(SendOutcome)> done) = 0;
};

}  // namespace tracepager::integrations
