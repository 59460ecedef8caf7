// Pager: how a team is woken (PagerDuty, Opsgenie, Slack, a webhook, or the `log` pager of the
// embedded defaults). One small interface, one implementation per kind
// (integrations/<kind>/), built by a factory from its config and the team's pager target.
//
// Asynchronous: Send returns at once and runs `done` exactly once, from any thread.
// Implementations are thread-safe. Delivery guarantees (outbox, retries, fallback) live in the
// daemon, not here: a Pager makes one attempt per call and reports what happened.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tracepager::integrations {

// One page to one team, built from a routing decision. Plain data; the daemon persists it in
// its outbox before sending, so it must carry everything a send needs except secrets (which the
// pager resolves from its target).
struct Page {
  enum class Action { kTrigger, kResolve };
  Action action = Action::kTrigger;
  std::string dedup_key;     // stable for one alert identity and one team
  std::string team;          // the team paged
  std::string summary;       // leads with the culprit service and the symptom
  std::string severity;      // critical | error | warning | info
  std::string source;        // the alerting service (or the alert's source)
  std::string component;     // the culprit service
  std::string group;         // the alerting service
  std::string decision_id;   // links the page to its audit record
  std::string details_json;  // a JSON object: path, culprits with shares, naive answer, labels
  std::vector<std::pair<std::string, std::string>> links;  // (href, text): traces in the UI
  std::map<std::string, std::string> labels;               // the alert's labels
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

  virtual void Send(const Page& page, std::function<void(SendOutcome)> done) = 0;
};

}  // namespace tracepager::integrations
