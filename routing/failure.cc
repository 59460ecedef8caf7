#include "routing/failure.h"

#include <array>
#include <cctype>
#include <string>

namespace tracepager::routing {
namespace {

// grpc/grpc doc/statuscodes.md, in code order.
constexpr std::array<const char*, 17> kGrpcNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

// Long messages (stack traces in exception.message, HTML error pages in status messages)
// would swamp a page; the reason is a summary, the trace has the rest.
constexpr size_t kMaxReason = 200;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::optional<int> ParseSmallInt(std::string_view s) {
  if (s.empty() || s.size() > 6) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// One line, bounded: newlines and tabs become spaces, runs of them collapse.
std::string OneLine(std::string_view s) {
  std::string out;
  out.reserve(std::min(s.size(), kMaxReason + 3));
  bool space = false;
  for (char c : s) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
    if (out.size() >= kMaxReason) {
      out += "...";
      break;
    }
  }
  return out;
}

// The message part of a reason: the status message, else the first exception, else the error
// tag's own text when it says more than "true" or than the HTTP code already shown.
std::string MessagePart(const Span& span, std::optional<int> http) {
  if (!span.status_message.empty()) return OneLine(span.status_message);
  for (const ExceptionEvent& e : span.exceptions) {
    if (e.type.empty() && e.message.empty()) continue;
    if (e.type.empty()) return OneLine(e.message);
    if (e.message.empty()) return OneLine(e.type);
    return OneLine(e.type + ": " + e.message);
  }
  if (span.error_tag.value_or(false) && !span.error_tag_value.empty() &&
      !EqualsIgnoreCase(span.error_tag_value, "true")) {
    if (http && ParseSmallInt(span.error_tag_value) == http) return {};
    return OneLine(span.error_tag_value);
  }
  return {};
}

std::string CodePart(std::optional<int> http, std::optional<int> grpc) {
  if (http && *http >= 400) return "HTTP " + std::to_string(*http);
  if (grpc && *grpc != 0) {
    const char* name = GrpcCodeName(*grpc);
    return name ? std::string("gRPC ") + name : "gRPC code " + std::to_string(*grpc);
  }
  return {};
}

}  // namespace

bool IsGrpcServerFailure(int code) {
  switch (code) {
    case 2:   // UNKNOWN
    case 4:   // DEADLINE_EXCEEDED
    case 12:  // UNIMPLEMENTED
    case 13:  // INTERNAL
    case 14:  // UNAVAILABLE
    case 15:  // DATA_LOSS
      return true;
    default:
      return false;
  }
}

const char* GrpcCodeName(int code) {
  if (code < 0 || code >= static_cast<int>(kGrpcNames.size())) return nullptr;
  return kGrpcNames[static_cast<size_t>(code)];
}

std::optional<int> GrpcCodeFromText(std::string_view text) {
  if (auto n = ParseSmallInt(text)) return n;
  constexpr std::string_view kPrefix = "StatusCode.";
  if (text.size() > kPrefix.size() && EqualsIgnoreCase(text.substr(0, kPrefix.size()), kPrefix)) {
    text.remove_prefix(kPrefix.size());
  }
  for (size_t i = 0; i < kGrpcNames.size(); ++i) {
    if (EqualsIgnoreCase(text, kGrpcNames[i])) return static_cast<int>(i);
  }
  // grpc-go's codes.Code.String() spells two names differently from the wire table.
  if (EqualsIgnoreCase(text, "Canceled")) return 1;
  return std::nullopt;
}

void ClassifyFailure(Span& span) {
  span.failed = false;
  span.failure_source = FailureSource::kNone;
  span.caller_fault = false;
  span.failure_reason.clear();

  // Brave and Finagle put the HTTP code in the error tag ("404") and sometimes nothing else.
  std::optional<int> http = span.http_status;
  if (!http && span.error_tag.value_or(false)) {
    auto n = ParseSmallInt(span.error_tag_value);
    if (n && *n >= 400 && *n <= 599 && span.error_tag_value.size() == 3) http = n;
  }
  const std::optional<int> grpc = span.grpc_code;
  const bool http_5xx = http && *http >= 500;
  const bool http_4xx = http && *http >= 400 && *http < 500;
  const bool grpc_server_failure = grpc && IsGrpcServerFailure(*grpc);
  const bool grpc_caller_code = grpc && *grpc != 0 && !grpc_server_failure;
  const bool client = span.kind == SpanKind::kClient;

  // Rule 1: explicit OK.
  if (span.status == StatusCode::kOk) return;

  bool caller_fault = false;
  std::string fallback;
  if (span.status == StatusCode::kError) {  // Rule 2.
    span.failure_source = FailureSource::kOtlpStatus;
    caller_fault = !http_5xx && !grpc_server_failure && (http_4xx || grpc_caller_code);
    fallback = "status ERROR";
  } else if (span.error_tag.value_or(false)) {  // Rule 3.
    span.failure_source = FailureSource::kErrorTag;
    caller_fault = !http_5xx && !grpc_server_failure && (http_4xx || grpc_caller_code);
    fallback = "error tag";
  } else if (http_5xx) {  // Rule 4.
    span.failure_source = FailureSource::kHttpStatus;
  } else if (http_4xx && client) {  // Rule 5.
    span.failure_source = FailureSource::kHttpStatus;
    caller_fault = true;
  } else if (grpc_server_failure) {  // Rule 6, server-failure codes.
    span.failure_source = FailureSource::kGrpcStatus;
  } else if (grpc_caller_code && client) {  // Rule 6, the caller's codes.
    span.failure_source = FailureSource::kGrpcStatus;
    caller_fault = true;
  } else {
    return;  // Rule 7.
  }

  span.failed = true;
  span.caller_fault = caller_fault;
  std::string code = CodePart(http, grpc);
  std::string message = MessagePart(span, http);
  if (!code.empty() && !message.empty()) {
    span.failure_reason = code + ": " + message;
  } else if (!code.empty()) {
    span.failure_reason = std::move(code);
  } else if (!message.empty()) {
    span.failure_reason = std::move(message);
  } else {
    span.failure_reason = std::move(fallback);
  }
}

}  // namespace tracepager::routing
