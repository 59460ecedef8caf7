#include "routing/trace.h"

#include <cstdio>

namespace tracepager::routing {

const char* SpanKindName(SpanKind kind) {
  switch (kind) {
    case SpanKind::kUnspecified:
      return "unspecified";
    case SpanKind::kInternal:
      return "internal";
    case SpanKind::kServer:
      return "server";
    case SpanKind::kClient:
      return "client";
    case SpanKind::kProducer:
      return "producer";
    case SpanKind::kConsumer:
      return "consumer";
  }
  return "unspecified";
}

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kUnset:
      return "unset";
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kError:
      return "error";
  }
  return "unset";
}

const char* FailureSourceName(FailureSource source) {
  switch (source) {
    case FailureSource::kNone:
      return "none";
    case FailureSource::kOtlpStatus:
      return "status";
    case FailureSource::kErrorTag:
      return "error_tag";
    case FailureSource::kHttpStatus:
      return "http_status";
    case FailureSource::kGrpcStatus:
      return "grpc_status";
  }
  return "none";
}

std::string SpanIdHex(uint64_t span_id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(span_id));
  return buf;
}

}  // namespace tracepager::routing
