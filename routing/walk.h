// The walk: from the alerting service down the erroring dependencies of one trace.
//
// Terms. The span tree is routing/span_tree.h. A service's *region* is an entry span of that
// service (one whose tree parent belongs to another service, or a root) plus every descendant
// reached through spans of the same service. Regions partition the spans, so a service that
// appears at several depths (A -> B -> A) has several regions, and every walk below visits
// each region at most once: it is linear in spans and always terminates, call cycles between
// services included. Nothing recurses; a chain 10,000 spans deep is fine.
//
// The plain rule (kept as the `naive` answer): start at the alerting service's topmost spans
// (its spans with no ancestor of the same service). The immediate dependencies of a region are
// the spans of other services directly below one of its spans (a client span's server child,
// or any child span of another service). A dependency shows errors when its span failed and
// the failure is not the caller's fault (Span::caller_fault). A failing call span (client or
// producer, not caller_fault) with nothing below it is an uninstrumented dependency that shows
// errors; the plain rule cannot follow it and stops at the calling service. Repeat from every
// dependency that shows errors; a region none of whose dependencies show errors is a culprit.
// The alerting service's own starting regions are never culprits by themselves: when nothing
// below them shows errors the verdict has no culprits ("nothing failed below"), which Route
// turns into a fallback decision.
//
// The refined answer applies the refinements in WalkOptions (all on by default):
//   timeout_masking  An erroring span with a non-erroring child (any service) that ran for at
//                    least timeout_fraction of its duration did not fail, it gave up waiting:
//                    the walk continues into that child. It applies only to erroring spans none
//                    of whose children errored (one that has a failing child has a failure to
//                    point at), and carries through healthy spans of the same service that
//                    themselves spent >= timeout_fraction in one child, and into the child's
//                    service (a slow service waiting on a slow dependency passes it on). A
//                    failing call span with nothing below it whose failure reads as a timeout
//                    (gRPC DEADLINE_EXCEEDED, HTTP 504/408, "timeout", "timed out", "deadline")
//                    blames the peer it waited on, as a virtual culprit.
//   sibling_fallout  Erroring calls made by the same parent span: the earliest to start is the
//                    primary; the later ones are walked as fallout (CulpritRole::kFallout).
//   retries          A failed call followed (same parent span, later or equal start) by a
//                    successful call of the same operation to the same service is not a cause.
//                    A call is a call span plus the callee span below it, or a callee span
//                    directly below a span of the caller.
//   async            A dependency reached across an asynchronous edge (span_tree.h) whose
//                    failing span ended after the span that triggered it (the parent side of
//                    that edge) had ended is not a cause of that span's error.
//   uninstrumented   A failing call span with nothing below it (no children, or only leaf spans
//                    of its own service) blames the peer it names, as a virtual culprit
//                    (is_virtual, caller = the calling service). Virtual names are documented
//                    at VirtualPeerName in routing/span_tree.h, e.g. "postgresql/orders". A call
//                    span that names no peer leaves the calling service as the culprit.
// A refinement is listed in TraceVerdict::changed_by, with its notes, when it changes the
// answer: when the answer with it switched off (all else equal) differs; when the answer
// differs from the naive one but no single refinement accounts for it, every refinement that
// acted is listed.
// Pure: no I/O; safe to call concurrently on shared traces.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "routing/trace.h"

namespace tracepager::routing {

enum class Symptom { kErrors, kLatency };
const char* SymptomName(Symptom symptom);  // "errors" | "latency"

enum class Refinement {
  kTimeoutMasking,  // an erroring span whose healthy child used >= 90% of its time gave up
  kSiblingFallout,  // of several erroring children, the earliest is primary, later ones fallout
  kRetries,         // a failed call followed by a successful retry is not a cause
  kAsync,           // async work failing after its trigger finished is not the trigger's cause
  kUninstrumented,  // a failing leaf client span blames the peer it names
};
const char* RefinementName(Refinement refinement);  // "timeout_masking", "sibling_fallout", ...

// Every refinement on by default; each can be switched off in configuration.
struct WalkOptions {
  bool timeout_masking = true;
  double timeout_fraction = 0.9;  // child duration / parent duration that means "gave up"
  bool sibling_fallout = true;
  bool page_fallout = false;  // also page the owners of fallout culprits (used by Route)
  bool retries = true;
  bool async = true;
  bool uninstrumented = true;
  // Latency symptom (Route): only the slowest traces vote, this fraction of them (rounded up,
  // at least one), ranked by the duration of the alerting service's topmost span.
  double latency_slowest_fraction = 0.5;

  // All refinements off: the plain rule.
  static WalkOptions Naive();
};

// One span on the path from the alerting service to a culprit.
struct PathStep {
  uint64_t span_id = 0;
  std::string service;
  std::string operation;
  SpanKind kind = SpanKind::kUnspecified;
  bool failed = false;
  std::string reason;           // Span::failure_reason, empty when not failed
  int64_t start_offset_ns = 0;  // from the trace's earliest span start
  int64_t duration_ns = 0;
};

enum class CulpritRole { kPrimary, kFallout };
const char* CulpritRoleName(CulpritRole role);  // "primary" | "fallout"

// A culprit found in one trace.
struct TraceCulprit {
  std::string service;      // an instrumented service, or a virtual (uninstrumented) peer
  bool is_virtual = false;  // named by a client span with nothing below it
  std::string caller;       // for virtual culprits: the calling service
  CulpritRole role = CulpritRole::kPrimary;
  std::string why;  // one sentence for a person
  // Alerting service's span first, culprit's span last. Between services the path holds the
  // callee's entry span and, when it is a different span, the caller's span that made the call
  // (usually a client span), so consecutive steps may name the same service. When the culprit
  // region's first failing span is not its entry span, it is the last step. For a virtual
  // culprit the last step is the call span that names the peer (its service is the caller).
  std::vector<PathStep> path;
  int64_t failure_start_ns = 0;  // start of the culprit's failing span (absolute)
  // Latency symptom: the culprit's self time on the critical path.
  int64_t self_time_ns = 0;
};

struct TraceVerdict {
  std::string trace_id;
  std::string alerting_service;
  Symptom symptom = Symptom::kErrors;
  bool alerting_service_found = false;  // the service has spans in this trace
  int64_t alerting_duration_ns = 0;     // longest topmost span of the alerting service
  std::vector<TraceCulprit> culprits;   // refined answer; primaries first, by failure start
  std::vector<TraceCulprit> naive;      // the plain rule's answer
  std::vector<Refinement> changed_by;   // refinements that made refined differ from naive
  std::vector<std::string> notes;       // per-refinement explanations, trace gaps
};

// Walks `trace` for an error symptom raised by `alerting_service`. An alerting service with no
// spans in the trace gives no culprits and a note. Culprits are distinct by (service,
// is_virtual); a service that is primary anywhere in the trace is primary.
TraceVerdict WalkErrors(const Trace& trace, std::string_view alerting_service,
                        const WalkOptions& options);

// Walks the critical path of `trace` below `alerting_service`'s longest topmost span (Jaeger's
// critical-path definition: from the span's end, step into the last-finishing child that ends
// before the current point, recursively; time not covered that way is the span's self time;
// children are clipped to their parent and asynchronous children are left out) and blames the
// service with the largest self time, which may be the alerting service itself. With
// options.uninstrumented, the self time of a call span with nothing below it is charged to the
// virtual peer it names. `naive` holds the same answer: the plain rule has no latency form.
TraceVerdict WalkLatency(const Trace& trace, std::string_view alerting_service,
                         const WalkOptions& options = {});

}  // namespace tracepager::routing
