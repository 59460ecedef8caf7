// Audit records for tests around the decisions of tests/support/sample_decisions.h.
#pragma once

#include <cstdint>
#include <string>

#include "daemon/audit_record.h"
#include "routing/registry.h"
#include "routing/route.h"
#include "routing/trace_reader.h"
#include "tests/support/process.h"
#include "tests/support/sample_decisions.h"

namespace tracepager::testing {

inline daemon::DecisionAudit SampleDecisionAudit(const std::string& id, int64_t time_ns,
                                                 routing::Decision decision) {
  daemon::DecisionAudit a;
  a.id = id;
  a.time_ns = time_ns;
  a.alert.identity = "am:5e6f7a8b9c0d1e2f";
  a.alert.source = "alertmanager";
  a.alert.name = "CheckoutErrors";
  a.alert.status = "firing";
  a.alert.severity = "critical";
  a.alert.summary = "checkout error rate above 5%";
  a.alert.received_ns = time_ns - 40'000'000;
  a.alert.starts_at_ns = time_ns - 60'000'000'000;
  a.alert.labels = {{"alertname", "CheckoutErrors"},
                    {"service", decision.alerting_service},
                    {"severity", "critical"}};
  a.symptom_reason = "default: errors";
  daemon::AuditTraceFetch f;
  f.trace_id = kExampleTraceId;
  f.origin = "alert";
  f.backend = "file";
  f.used = decision.kind == routing::Decision::Kind::kRouted;
  if (!f.used) f.error = "trace not found in any file under /var/lib/traces";
  a.fetch.traces.push_back(f);
  for (const std::string& team : decision.teams) {
    daemon::AuditPlannedPage p;
    p.team = team;
    p.target_kind = "pagerduty";
    p.target_name = "pd-" + team;
    p.dedup_key = "tp-" + a.alert.identity + "-" + team;
    a.pages.push_back(p);
  }
  a.timings.queue_wait = std::chrono::microseconds(1200);
  a.timings.fetch = std::chrono::microseconds(30500);
  a.timings.route = std::chrono::microseconds(420);
  a.timings.total = std::chrono::microseconds(33000);
  a.decision = std::move(decision);
  return a;
}

inline daemon::DeliveryAudit SampleDelivery(const daemon::DecisionAudit& d, const std::string& team,
                                            int64_t accepted_ns) {
  daemon::DeliveryAudit p;
  p.decision_id = d.id;
  p.time_ns = accepted_ns;
  p.alert_identity = d.alert.identity;
  p.team = team;
  p.target.kind = "pagerduty";
  p.target.name = "pd-" + team;
  p.target.endpoint = "https://events.pagerduty.com/v2/enqueue";
  p.target.secret = "R0UT1NGK3Y0123456789abcdefABCDEF";
  p.dedup_key = "tp-" + d.alert.identity + "-" + team;
  daemon::AuditAttempt first;
  first.time_ns = accepted_ns - 500'000'000;
  first.http_status = 500;
  first.error = "internal server error";
  daemon::AuditAttempt second;
  second.time_ns = accepted_ns;
  second.http_status = 202;
  second.request_id = "5fc1a2b3";
  p.attempts = {first, second};
  p.outcome = daemon::DeliveryOutcome::kAccepted;
  p.accepted_ns = accepted_ns;
  return p;
}

// The decision Route makes for an errors alert on frontend from the example trace
// etc/examples/traces/checkout-payment-db.otlp.json and the example registry etc/registry.yaml:
// real readers, the real walk and the real registry. Throws std::runtime_error if either file
// does not load (a broken example, which other tests name precisely).
inline routing::Decision ExampleRouteDecision() {
  Result<routing::ReadResult> read = routing::ReadTraces(
      ReadFile(SourcePath("etc/examples/traces/checkout-payment-db.otlp.json")));
  if (!read.ok()) throw std::runtime_error("example trace: " + read.error().message);
  Result<routing::Registry> registry =
      routing::Registry::FromYaml(ReadFile(SourcePath("etc/registry.yaml")), "etc/registry.yaml");
  if (!registry.ok()) throw std::runtime_error("example registry: " + registry.error().message);
  routing::RouteRequest request;
  request.alerting_service = "frontend";
  return routing::Route(read->traces, request, *registry, routing::WalkOptions{});
}

}  // namespace tracepager::testing
