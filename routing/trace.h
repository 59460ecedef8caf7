// The normalized trace model every reader produces and the walk consumes.
//
// Readers (routing/trace_reader.h) turn Jaeger v1, OTLP (plain, Tempo, Jaeger v3) and Zipkin v2
// JSON into this one shape, so nothing downstream knows which backend a trace came from.
// Plain data: no I/O, no clocks; copy and compare freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tracepager::routing {

enum class SpanKind { kUnspecified, kInternal, kServer, kClient, kProducer, kConsumer };
enum class StatusCode { kUnset, kOk, kError };

// The field that made a span count as failed (routing/failure.h has the rules).
enum class FailureSource {
  kNone,
  kOtlpStatus,  // OTLP status.code ERROR (or otel.status_code=ERROR tag)
  kErrorTag,    // Jaeger/OpenTracing `error` tag true, or a Zipkin `error` tag
  kHttpStatus,  // HTTP response status >= 500
  kGrpcStatus,  // gRPC status that counts as a server failure
};

const char* SpanKindName(SpanKind kind);
const char* StatusCodeName(StatusCode code);
const char* FailureSourceName(FailureSource source);

// A reference other than the CHILD_OF parent: Jaeger FOLLOWS_FROM, extra CHILD_OF
// references, OTLP links. They never make a span part of the parent chain.
struct SpanRef {
  enum class Type { kChildOf, kFollowsFrom, kLink };
  Type type = Type::kFollowsFrom;
  std::string trace_id;  // normalized like Trace::trace_id; may name another trace
  uint64_t span_id = 0;
};

// An `exception` span event (OTLP) or an error log (Jaeger `event=error`).
struct ExceptionEvent {
  int64_t time_ns = 0;
  std::string type;
  std::string message;
};

struct Span {
  uint64_t span_id = 0;            // never 0 in a loaded trace
  uint64_t parent_id = 0;          // CHILD_OF parent; 0 for a root
  uint64_t missing_parent_id = 0;  // orphan: the parent the input named but the trace lacks
                                   // (parent_id is then 0; Trace::warnings says so)
  std::vector<SpanRef> refs;       // FOLLOWS_FROM, further CHILD_OF, links
  std::string service;             // service.name / process.serviceName / localEndpoint
  std::string operation;           // span name / operationName
  SpanKind kind = SpanKind::kUnspecified;
  int64_t start_ns = 0;     // Unix epoch nanoseconds
  int64_t duration_ns = 0;  // >= 0

  StatusCode status = StatusCode::kUnset;
  std::string status_message;

  // Attributes routing needs, under old and new semantic-convention names.
  std::optional<int> http_status;     // http.response.status_code | http.status_code
  std::optional<int> grpc_code;       // rpc.grpc.status_code | rpc.response.status_code
  std::optional<bool> error_tag;      // Jaeger/OpenTracing `error`; Zipkin `error` (any value)
  std::string error_tag_value;        // Zipkin's error tag text (often a message or a code)
  std::string peer_service;           // peer.service
  std::string db_system;              // db.system | db.system.name | db.type
  std::string db_name;                // db.name | db.namespace | db.instance
  std::string server_address;         // server.address | net.peer.name | peer.hostname |
                                      // Zipkin remoteEndpoint.serviceName
  std::string messaging_system;       // messaging.system
  std::string messaging_destination;  // messaging.destination.name | messaging.destination
  std::vector<ExceptionEvent> exceptions;

  // Set by ClassifyFailure (routing/failure.h), which every reader calls.
  bool failed = false;
  FailureSource failure_source = FailureSource::kNone;
  // True when the failure is the caller's own problem (a client span that got an HTTP 4xx):
  // the span is errored, but it does not make the callee a failed dependency.
  bool caller_fault = false;
  // One line for a person: "HTTP 503", "gRPC UNAVAILABLE", the status message or exception.
  std::string failure_reason;

  int64_t end_ns() const { return start_ns + duration_ns; }
};

struct Trace {
  std::string trace_id;     // lowercase hex, left-padded with zeros to 32 digits
  std::vector<Span> spans;  // in input order
  // Gaps found while loading that did not stop it: orphan spans (missing parent), duplicate
  // span ids that were dropped, parent cycles that were broken, spans without timing.
  std::vector<std::string> warnings;
};

// Lowercase 16-digit hex of a span id, for output.
std::string SpanIdHex(uint64_t span_id);

}  // namespace tracepager::routing
