// Routing decisions for tests, modelled on the example trace etc/examples/traces/
// checkout-payment-db.*.json: frontend -> checkout -> payment -> PostgreSQL "payments", where the
// database timed out. Span ids, names, offsets and errors are those of the example trace.
#pragma once

#include <cstdint>
#include <string>

#include "routing/route.h"

namespace tracepager::testing {

inline constexpr char kExampleTraceId[] = "5b8efff798038103d269b633813fc60c";
inline constexpr int64_t kSampleBaseNs = 1'732'650'000'000'000'000;  // 2024-11-26T19:40:00Z

inline routing::PathStep SampleStep(uint64_t span_id, const char* service, const char* operation,
                                    bool failed, const char* reason, int64_t offset_us,
                                    int64_t duration_us) {
  routing::PathStep s;
  s.span_id = span_id;
  s.service = service;
  s.operation = operation;
  s.failed = failed;
  s.reason = failed ? reason : "";
  s.start_offset_ns = offset_us * 1000;
  s.duration_ns = duration_us * 1000;
  return s;
}

// The routed decision: the refined answer blames the uninstrumented database (team
// payments-data); the naive rule stops at payment (team payments).
inline routing::Decision SampleRoutedDecision() {
  using routing::CulpritRole;
  routing::Decision d;
  d.kind = routing::Decision::Kind::kRouted;
  d.reason = "1 of 1 traces blame postgresql/payments (uninstrumented peer called by payment)";
  d.alerting_service = "frontend";
  d.symptom = routing::Symptom::kErrors;
  routing::Culprit c;
  c.service = "postgresql/payments";
  c.is_virtual = true;
  c.team = "payments-data";
  c.owner_reason = "registry: postgresql/payments is owned by payments-data";
  c.share = 1.0;
  c.votes = 1;
  c.role = CulpritRole::kPrimary;
  c.paged = true;
  c.why = "payment's call INSERT payments.transactions failed with nothing below it";
  d.culprits.push_back(c);
  d.teams = {"payments-data"};
  routing::Culprit n;
  n.service = "payment";
  n.team = "payments";
  n.owner_reason = "registry: payment is owned by payments";
  n.share = 1.0;
  n.votes = 1;
  n.paged = true;
  n.why = "deepest failing instrumented service";
  d.naive.push_back(n);
  d.naive_teams = {"payments"};
  d.changed_by = {routing::Refinement::kUninstrumented};

  routing::TraceVerdict t;
  t.trace_id = kExampleTraceId;
  t.alerting_service = "frontend";
  t.alerting_service_found = true;
  routing::TraceCulprit tc;
  tc.service = "postgresql/payments";
  tc.is_virtual = true;
  tc.caller = "payment";
  tc.role = CulpritRole::kPrimary;
  tc.why = c.why;
  tc.path = {
      SampleStep(0xa1b2c3d4e5f60001, "frontend", "POST /api/checkout", true, "error tag", 0,
                 250000),
      SampleStep(0xa1b2c3d4e5f60003, "checkout", "oteldemo.CheckoutService/PlaceOrder", true,
                 "failed to charge card: payment unavailable", 6000, 238000),
      SampleStep(0xa1b2c3d4e5f60007, "payment", "oteldemo.PaymentService/Charge", true,
                 "connection to payments database timed out", 26000, 213000),
      SampleStep(0xa1b2c3d4e5f60008, "payment", "INSERT payments.transactions", true,
                 "timeout acquiring connection", 30000, 205000),
  };
  t.culprits.push_back(tc);
  routing::TraceCulprit naive;
  naive.service = "payment";
  t.naive.push_back(naive);
  t.changed_by = {routing::Refinement::kUninstrumented};
  t.notes = {"uninstrumented: payment's client span names postgresql/payments"};
  d.traces.push_back(t);
  return d;
}

// A fallback decision: no trace could be fetched, the alerting service's owner is paged.
inline routing::Decision SampleFallbackDecision(const std::string& service,
                                                const std::string& team) {
  routing::Decision d;
  d.kind = routing::Decision::Kind::kFallback;
  d.reason = "no traces: paging the alerting service's owner";
  d.alerting_service = service;
  routing::Culprit c;
  c.service = service;
  c.team = team;
  c.owner_reason = "registry";
  c.paged = true;
  c.why = "fallback";
  d.culprits.push_back(c);
  d.teams = {team};
  d.naive = d.culprits;
  d.naive_teams = d.teams;
  return d;
}

}  // namespace tracepager::testing
