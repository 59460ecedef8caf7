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
//
// Errors, with what each means:
//   - invalid JSON: "invalid JSON at byte N: <RapidJSON's reason>" (also a NUL byte or data
//     after the document).
//   - shapes: a wrong JSON type or an unreadable value in a field routing reads, e.g.
//     `otlp resourceSpans[0].scopeSpans[1].spans[7]: "spanId" is missing`. Fields routing does
//     not read are ignored whatever they hold.
//   - ids: a span without a trace id or span id, or with one that is not hex (any case, up to
//     32/16 digits, left-padded: Jaeger and Tempo drop leading zeros) or, for OTLP, base64 of
//     16/8 bytes, or is all zeros.
//   - "not a trace document: ..." for JSON that is no trace: Tempo search responses
//     ({"traces":[...]}), Jaeger trace summaries, objects or arrays of unknown shape.
//     A Jaeger error body ({"data":null,"errors":[{"code":404}]}, v3 {"error":{"httpCode":404}})
//     is ErrorCode::kNotFound for 404, kInvalidInput otherwise.
//   - limits: more than max_bytes (checked before the first byte is read), more than
//     max_spans, nesting deeper than max_depth ("JSON nesting deeper than 64 levels at byte N";
//     parsing never recurses deeper than that, so a 10,000-deep document cannot overflow the
//     stack).
//   - a forced `format` the document does not have.
//
// Repairs, each with a line in Trace::warnings (at most 100 per trace, then a count):
//   - duplicate span id within a trace: the first span keeps it, later ones are dropped.
//   - orphan: a parent that is not in the trace. The span loads as a root (parent_id = 0) and
//     keeps the missing id in Span::missing_parent_id.
//   - parent cycle: broken by making the cycle's earliest-starting span a root.
//   - times: a start that is missing, zero, negative or beyond int64 nanoseconds (after
//     2262, e.g. a year-3000 clock) makes the span's timing unknown: it gets its nearest timed
//     ancestor's start (else the trace's earliest) and duration 0 (a Jaeger/Zipkin span
//     whose start alone is missing keeps its duration). A negative duration or an end before
//     the start becomes duration 0; a duration running past 2262 is clamped. No span is
//     dropped or refused for its times: routing works on structure first, and a bad clock in
//     one service must not hide the trace.
//   - a span that names no service gets "unknown_service" (OpenTelemetry's default).
// Not warned: a missing Zipkin/Jaeger duration (0; Zipkin allows it), unknown reference types.
//
// Format notes:
//   - Jaeger: the first CHILD_OF reference into the same trace is the parent; other
//     references (CHILD_OF into other traces, further CHILD_OFs, FOLLOWS_FROM) go to
//     Span::refs and never make a parent. Times are microseconds. Error logs (event=error,
//     error.kind/error.object, OTel's event=exception) become exception events.
//   - OTLP: links become Span::refs of type kLink. A `service.name`-less resource gives
//     "unknown_service". The tag forms of status (otel.status_code, otel.status_description)
//     and the `error` attribute are honoured, since Jaeger's v3 API converts v1 data that way.
//   - Zipkin: pieces of one span reported separately are merged; the SERVER half of a shared
//     (B3) span id gets a fresh id, deterministic and unused in the trace, and the client span
//     as parent; spans under the shared id that belong to the server's service move under the
//     server half. A CLIENT or PRODUCER span's remoteEndpoint.serviceName becomes
//     Span::server_address. Any `error` tag fails a span.
//   - Trace ids come out as 32 lowercase hex digits; traces in order of first appearance,
//     spans in input order (Zipkin: after merging).
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
  size_t max_bytes = 128u << 20;  // a document larger than this is refused up front
  size_t max_spans = 2'000'000;   // across all traces in the document
  unsigned max_depth = 64;        // JSON nesting; real trace documents need < 20. Up to 256
                                  // parses recursively (faster), deeper limits iteratively.
};

struct ReadResult {
  TraceFormat format = TraceFormat::kAuto;  // the format detected
  std::vector<Trace> traces;
};

// Reads `json`. With format kAuto the format is detected from the document's shape.
Result<ReadResult> ReadTraces(std::string_view json, const ReadLimits& limits = {},
                              TraceFormat format = TraceFormat::kAuto);

}  // namespace tracepager::routing
