#include "daemon/audit_delivery.h"

namespace tracepager::daemon {

std::optional<DeliveryAudit> DeliveryAuditFromRecord(
    const integrations::delivery::DeliveryRecord& r, const integrations::PagerTarget* target) {
  using Kind = integrations::delivery::DeliveryRecord::Kind;
  DeliveryAudit a;
  switch (r.kind) {
    case Kind::kRetry:
      return std::nullopt;
    case Kind::kSent:
      a.outcome = DeliveryOutcome::kAccepted;
      break;
    case Kind::kFailed:
      a.outcome = DeliveryOutcome::kRejected;
      break;
    case Kind::kExpired:
      a.outcome = DeliveryOutcome::kExpired;
      break;
    case Kind::kNoTarget:
      a.outcome = DeliveryOutcome::kNoTarget;
      break;
    case Kind::kFallback:
      a.outcome = DeliveryOutcome::kFallback;
      break;
    case Kind::kNobodyPaged:
      a.outcome = DeliveryOutcome::kNobodyPaged;
      break;
    case Kind::kCancelled:
      a.outcome = DeliveryOutcome::kCancelled;
      break;
    case Kind::kNothingToResolve:
      a.outcome = DeliveryOutcome::kNothingToResolve;
      break;
  }
  a.decision_id = r.decision_id;
  a.time_ns = r.at_ns;
  a.alert_identity = r.alert_identity;
  a.action = r.action == integrations::Page::Action::kResolve ? "resolve" : "trigger";
  a.team = r.team;
  a.dedup_key = r.dedup_key;
  a.fallback_for = r.fallback_for;
  a.rerouted_to = r.kind == Kind::kFallback ? r.fallback_team : r.rerouted_to;
  a.detail = r.detail;
  if (a.outcome == DeliveryOutcome::kAccepted) a.accepted_ns = r.at_ns;

  a.target.kind = target ? target->kind : r.pager_kind;
  // The target key ("<kind>:<16 hex>") names no secret and is stable across restarts; an
  // Opsgenie target's responder name says more to a person.
  a.target.name = target && !target->name.empty() ? target->name : r.target_key;
  if (target) {
    const std::string& credential = target->credential.Reveal();
    if (target->kind == "slack" || target->kind == "webhook") {
      a.target.endpoint = credential;
    } else {
      a.target.secret = credential;
    }
    if (!target->signing_key.empty()) {
      a.target.other_secrets.push_back(target->signing_key.Reveal());
    }
  }

  for (const integrations::delivery::AttemptLog& log : r.attempt_log) {
    a.attempts.push_back({log.time_ns, log.http_status, log.error, log.request_id});
  }
  // Records without an attempt log (older outbox rows) still say how the last attempt went.
  if (a.attempts.empty() && r.attempts > 0) {
    a.attempts.push_back({r.at_ns, r.http_status,
                          a.outcome == DeliveryOutcome::kAccepted ? "" : r.detail, r.request_id});
  }
  return a;
}

}  // namespace tracepager::daemon
