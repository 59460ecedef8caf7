// Readers: JSON bytes in any supported trace format -> normalized Traces (routing/trace.h).
//
// Supported, auto-detected from the document's shape:
//   - Jaeger v1 query API: {"data":[trace...]}, a bare trace object {traceID,spans,processes},
//     or the anonymizer's array of spans with inline `process`.
//   - OTLP JSON: {"resourceSpans":[...]}, Tempo's {"batches":[...]}, Tempo v2's
//     {"trace":{"resourceSpans":[...]}}, Jaeger v3's {"result":{"resourceSpans":[...]}};
//     hex or base64 ids, 64-bit integers as strings or numbers, enums as numbers or names,
//     scopeSpans or the older instrumentationLibrarySpans.
//   - Zipkin v2: an array of spans or an array of traces (arrays of spans).
// A document may hold several traces; spans are grouped by trace id, one Trace per id, in order
// of first appearance.
//
// Contract: never crashes, hangs or allocates without bound on hostile input. Errors
// (ErrorCode::kInvalidInput) name the format, the element and the field, e.g.
// `zipkin span 7: "parentId" is a number, expected a 16-hex-digit string`. Partial traces
// (orphans, missing parents) load; their gaps are listed in Trace::warnings. Every span comes
// out classified by ClassifyFailure (routing/failure.h).
// Pure: no I/O, no clocks; safe to call concurrently.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "routing/result.h"
#include "routing/trace.h"

namespace tracepager::routing {

enum class TraceFormat { kAuto, kJaegerV1, kOtlp, kZipkinV2 };

const char* TraceFormatName(TraceFormat format);

struct ReadLimits {
  size_t max_bytes = 128u << 20;   // a document larger than this is refused up front
  size_t max_spans = 2'000'000;    // across all traces in the document
  unsigned max_depth = 64;         // JSON nesting; real trace documents need < 20
};

struct ReadResult {
  TraceFormat format = TraceFormat::kAuto;  // the format detected
  std::vector<Trace> traces;
};

// Reads `json`. With format kAuto the format is detected from the document's shape.
Result<ReadResult> ReadTraces(std::string_view json, const ReadLimits& limits = {},
                              TraceFormat format = TraceFormat::kAuto);

}  // namespace tracepager::routing
