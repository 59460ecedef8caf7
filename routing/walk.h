// The walk: from the alerting service down the erroring dependencies of one trace.
//
// The plain rule (kept as the `naive` answer): start at the alerting service; look at its
// immediate dependencies in the trace; if any shows errors, repeat from each of them; stop at
// services none of whose immediate dependencies show errors. It runs on the span tree, so a
// service at several depths or a call cycle between services is walked correctly and always
// terminates.
//
// The refined answer applies the refinements in WalkOptions; each is named in the verdict
// whenever it changes the answer.
// Pure: no I/O; safe to call concurrently on shared traces.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "routing/trace.h"

namespace tracepager::routing {

enum class Symptom { kErrors, kLatency };
const char* SymptomName(Symptom symptom);

enum class Refinement {
  kTimeoutMasking,   // an erroring span whose healthy child used >= 90% of its time gave up
  kSiblingFallout,   // of several erroring children, the earliest is primary, later ones fallout
  kRetries,          // a failed call followed by a successful retry is not a cause
  kAsync,            // async work failing after its trigger finished is not the trigger's cause
  kUninstrumented,   // a failing leaf client span blames the peer it names
};
const char* RefinementName(Refinement refinement);  // "timeout_masking", "sibling_fallout", ...

// Every refinement on by default; each can be switched off in configuration.
struct WalkOptions {
  bool timeout_masking = true;
  double timeout_fraction = 0.9;  // child duration / parent duration that means "gave up"
  bool sibling_fallout = true;
  bool page_fallout = false;      // also page the owners of fallout culprits
  bool retries = true;
  bool async = true;
  bool uninstrumented = true;
};

// One span on the path from the alerting service to a culprit.
struct PathStep {
  uint64_t span_id = 0;
  std::string service;
  std::string operation;
  bool failed = false;
  std::string reason;            // Span::failure_reason, empty when not failed
  int64_t start_offset_ns = 0;   // from the trace's earliest span start
  int64_t duration_ns = 0;
};

enum class CulpritRole { kPrimary, kFallout };
const char* CulpritRoleName(CulpritRole role);  // "primary" | "fallout"

// A culprit found in one trace.
struct TraceCulprit {
  std::string service;           // an instrumented service, or a virtual (uninstrumented) peer
  bool is_virtual = false;       // named by a client span with nothing below it
  std::string caller;            // for virtual culprits: the calling service
  CulpritRole role = CulpritRole::kPrimary;
  std::string why;               // one sentence for a person
  std::vector<PathStep> path;    // alerting service's span first, culprit's span last
  int64_t failure_start_ns = 0;  // start of the culprit's failing span (absolute)
};

struct TraceVerdict {
  std::string trace_id;
  std::string alerting_service;
  bool alerting_service_found = false;     // the service has spans in this trace
  std::vector<TraceCulprit> culprits;      // refined answer; primaries first, by failure start
  std::vector<TraceCulprit> naive;         // the plain rule's answer
  std::vector<Refinement> changed_by;      // refinements that made refined differ from naive
  std::vector<std::string> notes;          // per-refinement explanations, trace gaps
};

// Walks `trace` for an error symptom raised by `alerting_service`.
TraceVerdict WalkErrors(const Trace& trace, std::string_view alerting_service,
                        const WalkOptions& options);

// Walks the critical path of `trace` below `alerting_service` (Jaeger's critical-path
// definition) and blames the service with the largest self time on it. `naive` holds the same
// answer: the plain rule has no latency form.
TraceVerdict WalkLatency(const Trace& trace, std::string_view alerting_service);

}  // namespace tracepager::routing
