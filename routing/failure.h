// When a span counts as failed, and whose fault a failure is.
//
// ClassifyFailure reads only normalized Span fields; the readers (routing/trace_reader.h) map
// every wire format onto them first: OTLP `status`, Jaeger tag `otel.status_code` (and
// `otel.status_description` for the message) -> Span::status; Jaeger/OpenTracing tag `error`
// (bool true or string "true") and any Zipkin `error` tag -> Span::error_tag; HTTP and gRPC
// status attributes under old and new semantic-convention names -> http_status, grpc_code.
//
// The rules, first match decides `failed` (each with its reason):
//
//  1. Explicit OK wins. status == kOk (OTLP STATUS_CODE_OK, `otel.status_code=OK`) -> not
//     failed, whatever the tags say. OTel reserves OK for the application's own final verdict
//     ("the operation succeeded"); instrumentations never set it, so it overrides everything
//     derived from codes and tags.
//  2. Status ERROR. status == kError (OTLP STATUS_CODE_ERROR, `otel.status_code=ERROR`) ->
//     failed, source kOtlpStatus. This is what OTel instrumentations set on failure and what
//     Jaeger's own `get_trace_errors` counts.
//  3. Error tag. error_tag == true -> failed, source kErrorTag. OpenTracing's `error=true`
//     means "the application considers the operation failed"; Jaeger shows it as an error and
//     its OTLP translator maps it to status ERROR. Zipkin's `error` tag means failure with any
//     value, even the empty string (Zipkin v2 docs); the Zipkin reader sets error_tag = true for
//     it. A Jaeger `error=false` is not an explicit OK: rules 4-6 still apply.
//  4. HTTP 5xx. http_status >= 500 on any span kind -> failed, source kHttpStatus. A server
//     that answered 5xx failed; a client that received 5xx saw its callee fail (OTel HTTP
//     semantic conventions: ERROR for 5xx on both sides). Spans without a kind (old Jaeger
//     spans lack `span.kind`) are treated the same: 5xx is a failure from either side.
//  5. HTTP 4xx on a client span -> failed, source kHttpStatus, caller_fault. The OTel
//     conventions mark the client span ERROR, but a 4xx is the caller's own problem (bad
//     request, missing auth): the callee answered correctly and must not be blamed.
//     A server span (or a span of any other kind) that answered 4xx did not fail (OTel leaves
//     it UNSET): it did its job by refusing the request.
//  6. gRPC. grpc_code in {UNKNOWN 2, DEADLINE_EXCEEDED 4, UNIMPLEMENTED 12, INTERNAL 13,
//     UNAVAILABLE 14, DATA_LOSS 15} -> failed, source kGrpcStatus, on any kind: these are the
//     codes the OTel gRPC conventions count as server errors. Any other non-OK code on a
//     client span (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, ...) -> failed with
//     caller_fault, the gRPC analogue of rule 5 (OTel marks every non-OK client code ERROR). On
//     a server span those codes are not failures. Codes arrive as ints, numeric strings or
//     names ("UNAVAILABLE"); the readers convert them with GrpcCodeFromText.
//  7. Nothing else fails a span. In particular exception events and Jaeger error logs alone do
//     not: OTel records handled exceptions too, and instrumentations that fail a span also set
//     status or the error tag. They still supply failure_reason.
//
// caller_fault for rules 2 and 3: an explicitly errored span whose HTTP status is 4xx, or whose
// gRPC code is non-OK but not in rule 6's set, is also marked caller_fault (on any kind, so a
// server span that answered 4xx never becomes a failed dependency). The SmartThings Zipkin
// traces show why: Brave tags `error` with the HTTP code ("401", "404") on both the client and
// the server half of a call that was refused. When a span has an error tag whose value is an
// HTTP status (three digits, 400-599) and no HTTP status attribute, that value is read as the
// HTTP status. A span with a 5xx or a rule-6 gRPC code is never caller_fault.
//
// failure_reason is one line for a person: "HTTP 503", "gRPC UNAVAILABLE", the status
// message, the first exception ("type: message") or the error tag's text, combined as
// "HTTP 503: payment failed" when both a code and a message exist; at most ~200 characters,
// newlines folded to spaces. Empty when the span did not fail.
#pragma once

#include <optional>
#include <string_view>

#include "routing/trace.h"

namespace tracepager::routing {

// Sets span.failed, span.failure_source, span.failure_reason and span.caller_fault from the
// span's status and attributes, by the rules above. Idempotent. Pure.
void ClassifyFailure(Span& span);

// True for the gRPC codes that count as a server failure (rule 6).
bool IsGrpcServerFailure(int code);

// The canonical name of a gRPC status code ("UNAVAILABLE"), or "CODE_<n>" style text via the
// caller for unknown values: returns nullptr when `code` is not 0..16.
const char* GrpcCodeName(int code);

// Parses a gRPC status code given as a decimal string ("14") or a name, in any case, with an
// optional "StatusCode." prefix ("UNAVAILABLE", "StatusCode.UNAVAILABLE"). nullopt otherwise.
std::optional<int> GrpcCodeFromText(std::string_view text);

}  // namespace tracepager::routing
