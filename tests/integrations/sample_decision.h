// A routing decision as the routing engine makes it for the repository's example trace
// (etc/examples/traces/checkout-payment-db.*): the frontend alerts, the payments database
// (an uninstrumented peer) is the culprit in two traces of three, payment itself in one. The
// plain rule would page the payments team. Shared by the pager tests.
#pragma once

#include "integrations/page_builder.h"
#include "routing/route.h"

namespace tracepager::testing {

inline routing::PathStep Step(uint64_t id, const char* service, const char* op, bool failed) {
  routing::PathStep s;
  s.span_id = id;
  s.service = service;
  s.operation = op;
  s.failed = failed;
  s.reason = failed ? "HTTP 500" : "";
  return s;
}

inline routing::Decision SampleDecision() {
  routing::Decision d;
  d.kind = routing::Decision::Kind::kRouted;
  d.reason = "2 of 3 traces blame orders-db";
  d.alerting_service = "frontend";
  d.symptom = routing::Symptom::kErrors;

  routing::Culprit db;
  db.service = "orders-db";
  db.is_virtual = true;
  db.team = "payments-data";
  db.owner_reason = "registry";
  db.share = 2.0 / 3.0;
  db.votes = 2;
  db.paged = true;
  db.why = "payment's call to orders-db timed out after 2.0s";
  routing::Culprit payment;
  payment.service = "payment";
  payment.team = "payments";
  payment.owner_reason = "registry";
  payment.share = 1.0 / 3.0;
  payment.votes = 1;
  payment.paged = true;
  payment.why = "payment failed with HTTP 500 and none of its calls failed";
  d.culprits = {db, payment};
  d.teams = {"payments-data", "payments"};
  routing::Culprit naive = payment;
  naive.share = 1.0;
  naive.votes = 3;
  d.naive = {naive};
  d.naive_teams = {"payments"};
  d.changed_by = {routing::Refinement::kUninstrumented};

  for (const char* id : {"4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"}) {
    routing::TraceVerdict v;
    v.trace_id = id;
    v.alerting_service = "frontend";
    v.alerting_service_found = true;
    routing::TraceCulprit c;
    c.service = "orders-db";
    c.is_virtual = true;
    c.caller = "payment";
    c.why = db.why;
    c.path = {Step(1, "frontend", "GET /checkout", true), Step(2, "checkout", "PlaceOrder", true),
              Step(3, "payment", "Charge", true), Step(4, "payment", "SELECT orders", true)};
    v.culprits = {c};
    d.traces.push_back(v);
  }
  routing::TraceVerdict v;
  v.trace_id = "b7ad6b7169203331b7ad6b7169203331";
  v.alerting_service = "frontend";
  v.alerting_service_found = true;
  routing::TraceCulprit c;
  c.service = "payment";
  c.why = payment.why;
  c.path = {Step(11, "frontend", "GET /checkout", true), Step(12, "checkout", "PlaceOrder", true),
            Step(13, "payment", "Charge", true)};
  v.culprits = {c};
  d.traces.push_back(v);
  return d;
}

inline integrations::AlertInfo SampleAlert() {
  integrations::AlertInfo a;
  a.identity = "am:8a3f0c2d9b1e4f57";
  a.alertname = "CheckoutErrors";
  a.summary = "checkout error rate above 5%";
  a.severity = "critical";
  a.labels = {{"alertname", "CheckoutErrors"}, {"service", "frontend"}, {"severity", "critical"}};
  a.runbook_url = "https://runbooks.example/checkout-errors";
  return a;
}

inline integrations::PageOptions SampleOptions() {
  integrations::PageOptions o;
  o.trace_url_template = "https://jaeger.example/trace/{trace_id}";
  return o;
}

// 2024-05-01T12:00:00.250Z
inline constexpr int64_t kSampleNowNs = 1714564800'250'000'000;

}  // namespace tracepager::testing
