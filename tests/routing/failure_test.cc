// One case per rule line in routing/failure.h, on hand-built spans; then the rules that depend
// on how a reader maps a wire field, through ReadTraces.
#include "routing/failure.h"

#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <string>

#include "routing/trace_reader.h"

namespace tracepager::routing {
namespace {

struct Case {
  const char* name;
  std::function<void(Span&)> build;
  bool failed;
  FailureSource source;
  bool caller_fault;
  const char* reason;  // expected failure_reason ("" when not failed)
};

// Keeps test listings readable: gtest would print the case as raw bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

Span Server() {
  Span s;
  s.span_id = 1;
  s.service = "api";
  s.kind = SpanKind::kServer;
  return s;
}

const Case kCases[] = {
    // Rule 1: explicit OK wins.
    {"OkStatusBeatsHttp500",
     [](Span& s) {
       s.status = StatusCode::kOk;
       s.http_status = 500;
     },
     false, FailureSource::kNone, false, ""},
    {"OkStatusBeatsErrorTag",
     [](Span& s) {
       s.status = StatusCode::kOk;
       s.error_tag = true;
     },
     false, FailureSource::kNone, false, ""},
    {"OkStatusBeatsGrpcUnavailable",
     [](Span& s) {
       s.status = StatusCode::kOk;
       s.grpc_code = 14;
     },
     false, FailureSource::kNone, false, ""},
    // Rule 2: status ERROR.
    {"ErrorStatusWithMessage",
     [](Span& s) {
       s.status = StatusCode::kError;
       s.status_message = "payment failed";
     },
     true, FailureSource::kOtlpStatus, false, "payment failed"},
    {"ErrorStatusWithoutMessage", [](Span& s) { s.status = StatusCode::kError; }, true,
     FailureSource::kOtlpStatus, false, "status ERROR"},
    {"ErrorStatusUsesException",
     [](Span& s) {
       s.status = StatusCode::kError;
       s.exceptions.push_back({0, "java.io.IOException", "connection reset"});
     },
     true, FailureSource::kOtlpStatus, false, "java.io.IOException: connection reset"},
    {"ErrorStatusWithHttpCodeAndMessage",
     [](Span& s) {
       s.status = StatusCode::kError;
       s.http_status = 503;
       s.status_message = "db down";
     },
     true, FailureSource::kOtlpStatus, false, "HTTP 503: db down"},
    {"ErrorStatusOnServer4xxIsCallerFault",
     [](Span& s) {
       s.status = StatusCode::kError;
       s.http_status = 404;
     },
     true, FailureSource::kOtlpStatus, true, "HTTP 404"},
    {"ErrorStatusOnClient4xxIsCallerFault",
     [](Span& s) {
       s.kind = SpanKind::kClient;
       s.status = StatusCode::kError;
       s.http_status = 400;
     },
     true, FailureSource::kOtlpStatus, true, "HTTP 400"},
    {"ErrorStatusWithGrpcInvalidArgumentIsCallerFault",
     [](Span& s) {
       s.status = StatusCode::kError;
       s.grpc_code = 3;
     },
     true, FailureSource::kOtlpStatus, true, "gRPC INVALID_ARGUMENT"},
    {"MessageIsFoldedToOneBoundedLine",
     [](Span& s) {
       s.status = StatusCode::kError;
       s.status_message = "line one\n\tat Foo.bar()\n" + std::string(500, 'x');
     },
     true, FailureSource::kOtlpStatus, false, nullptr},
    // Rule 3: error tag.
    {"ErrorTagTrue",
     [](Span& s) {
       s.error_tag = true;
       s.error_tag_value = "true";
     },
     true, FailureSource::kErrorTag, false, "error tag"},
    {"ErrorTagFalseIsNotAFailure",
     [](Span& s) {
       s.error_tag = false;
       s.error_tag_value = "false";
     },
     false, FailureSource::kNone, false, ""},
    {"ErrorTagFalseDoesNotHide5xx",
     [](Span& s) {
       s.error_tag = false;
       s.http_status = 502;
     },
     true, FailureSource::kHttpStatus, false, "HTTP 502"},
    {"ZipkinErrorTagTextIsTheReason",
     [](Span& s) {
       s.error_tag = true;
       s.error_tag_value = "Connection refused";
     },
     true, FailureSource::kErrorTag, false, "Connection refused"},
    {"ZipkinEmptyErrorTagStillFails",
     [](Span& s) {
       s.error_tag = true;
       s.error_tag_value = "";
     },
     true, FailureSource::kErrorTag, false, "error tag"},
    {"ErrorTagWith4xxCodeOnServerIsCallerFault",
     [](Span& s) {
       s.error_tag = true;
       s.error_tag_value = "401";
       s.http_status = 401;
     },
     true, FailureSource::kErrorTag, true, "HTTP 401"},
    {"ErrorTagWith4xxCodeOnClientIsCallerFault",
     [](Span& s) {
       s.kind = SpanKind::kClient;
       s.error_tag = true;
       s.error_tag_value = "404";
     },
     true, FailureSource::kErrorTag, true, "HTTP 404"},
    {"ErrorTagWith5xxCodeIsNotCallerFault",
     [](Span& s) {
       s.kind = SpanKind::kClient;
       s.error_tag = true;
       s.error_tag_value = "503";
     },
     true, FailureSource::kErrorTag, false, "HTTP 503"},
    // Rule 4: HTTP 5xx on any kind.
    {"Server500", [](Span& s) { s.http_status = 500; }, true, FailureSource::kHttpStatus, false,
     "HTTP 500"},
    {"Client503",
     [](Span& s) {
       s.kind = SpanKind::kClient;
       s.http_status = 503;
     },
     true, FailureSource::kHttpStatus, false, "HTTP 503"},
    {"KindlessSpan502",
     [](Span& s) {
       s.kind = SpanKind::kUnspecified;
       s.http_status = 502;
     },
     true, FailureSource::kHttpStatus, false, "HTTP 502"},
    {"Server200IsFine", [](Span& s) { s.http_status = 200; }, false, FailureSource::kNone, false,
     ""},
    // Rule 5: HTTP 4xx is the caller's problem.
    {"Client404IsErroredCallerFault",
     [](Span& s) {
       s.kind = SpanKind::kClient;
       s.http_status = 404;
     },
     true, FailureSource::kHttpStatus, true, "HTTP 404"},
    {"Server404DidNotFail", [](Span& s) { s.http_status = 404; }, false, FailureSource::kNone,
     false, ""},
    {"Server429DidNotFail", [](Span& s) { s.http_status = 429; }, false, FailureSource::kNone,
     false, ""},
    // Rule 6: gRPC.
    {"GrpcServerUnknown", [](Span& s) { s.grpc_code = 2; }, true, FailureSource::kGrpcStatus, false,
     "gRPC UNKNOWN"},
    {"GrpcServerDeadlineExceeded", [](Span& s) { s.grpc_code = 4; }, true,
     FailureSource::kGrpcStatus, false, "gRPC DEADLINE_EXCEEDED"},
    {"GrpcServerUnimplemented", [](Span& s) { s.grpc_code = 12; }, true, FailureSource::kGrpcStatus,
     false, "gRPC UNIMPLEMENTED"},
    {"GrpcServerInternal", [](Span& s) { s.grpc_code = 13; }, true, FailureSource::kGrpcStatus,
     false, "gRPC INTERNAL"},
    {"GrpcServerUnavailable", [](Span& s) { s.grpc_code = 14; }, true, FailureSource::kGrpcStatus,
     false, "gRPC UNAVAILABLE"},
    {"GrpcServerDataLoss", [](Span& s) { s.grpc_code = 15; }, true, FailureSource::kGrpcStatus,
     false, "gRPC DATA_LOSS"},
    {"GrpcServerNotFoundDidNotFail", [](Span& s) { s.grpc_code = 5; }, false, FailureSource::kNone,
     false, ""},
    {"GrpcServerPermissionDeniedDidNotFail", [](Span& s) { s.grpc_code = 7; }, false,
     FailureSource::kNone, false, ""},
    {"GrpcServerOk", [](Span& s) { s.grpc_code = 0; }, false, FailureSource::kNone, false, ""},
    {"GrpcClientUnavailableBlamesCallee",
     [](Span& s) {
       s.kind = SpanKind::kClient;
       s.grpc_code = 14;
     },
     true, FailureSource::kGrpcStatus, false, "gRPC UNAVAILABLE"},
    {"GrpcClientInvalidArgumentIsCallerFault",
     [](Span& s) {
       s.kind = SpanKind::kClient;
       s.grpc_code = 3;
     },
     true, FailureSource::kGrpcStatus, true, "gRPC INVALID_ARGUMENT"},
    // Rule 7: nothing else fails a span.
    {"ExceptionEventAloneDoesNotFail",
     [](Span& s) {
       s.exceptions.push_back({0, "KeyError", "handled"});
     },
     false, FailureSource::kNone, false, ""},
    {"PlainSpanIsFine", [](Span&) {}, false, FailureSource::kNone, false, ""},
};

class FailureRules : public testing::TestWithParam<Case> {};

TEST_P(FailureRules, Classifies) {
  const Case& c = GetParam();
  Span span = Server();
  c.build(span);
  ClassifyFailure(span);
  EXPECT_EQ(span.failed, c.failed);
  EXPECT_EQ(span.failure_source, c.source) << FailureSourceName(span.failure_source);
  EXPECT_EQ(span.caller_fault, c.caller_fault);
  if (c.reason != nullptr) {
    EXPECT_EQ(span.failure_reason, c.reason);
  }

  // Idempotent, and independent of what a previous classification left behind.
  Span again = span;
  again.failed = !again.failed;
  again.failure_reason = "stale";
  again.caller_fault = !again.caller_fault;
  ClassifyFailure(again);
  EXPECT_EQ(again.failed, span.failed);
  EXPECT_EQ(again.failure_reason, span.failure_reason);
  EXPECT_EQ(again.caller_fault, span.caller_fault);
}

INSTANTIATE_TEST_SUITE_P(Rules, FailureRules, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<Case>& param) {
                           return param.param.name;
                         });

TEST(FailureRules, LongReasonIsOneBoundedLine) {
  Span span = Server();
  span.status = StatusCode::kError;
  span.status_message = "line one\n\tat Foo.bar()\n" + std::string(500, 'x');
  ClassifyFailure(span);
  EXPECT_EQ(span.failure_reason.find('\n'), std::string::npos);
  EXPECT_EQ(span.failure_reason.rfind("line one at Foo.bar() xxx", 0), 0u) << span.failure_reason;
  EXPECT_LE(span.failure_reason.size(), 210u);
}

TEST(GrpcCodes, NamesAndNumbers) {
  EXPECT_EQ(GrpcCodeFromText("14"), 14);
  EXPECT_EQ(GrpcCodeFromText("UNAVAILABLE"), 14);
  EXPECT_EQ(GrpcCodeFromText("unavailable"), 14);
  EXPECT_EQ(GrpcCodeFromText("StatusCode.DEADLINE_EXCEEDED"), 4);
  EXPECT_EQ(GrpcCodeFromText("Canceled"), 1);
  EXPECT_EQ(GrpcCodeFromText("BOGUS"), std::nullopt);
  EXPECT_EQ(GrpcCodeFromText(""), std::nullopt);
  EXPECT_STREQ(GrpcCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(17), nullptr);
  EXPECT_EQ(GrpcCodeName(-1), nullptr);
}

// ---- Rules whose inputs come from a reader's mapping of a wire field ----

Span OnlySpan(const Result<ReadResult>& r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok() || r->traces.size() != 1 || r->traces[0].spans.size() != 1) {
    ADD_FAILURE() << "expected one trace with one span";
    return Span{};
  }
  return r->traces[0].spans[0];
}

std::string JaegerWithTags(const std::string& tags) {
  return R"({"data":[{"traceID":"0af7651916cd43dd8448eb211c80319c","spans":[{"traceID":)"
         R"("0af7651916cd43dd8448eb211c80319c","spanID":"b7ad6b7169203331","operationName":"op",)"
         R"("references":[],"startTime":1700000000000000,"duration":1000,"processID":"p1","tags":[)" +
         tags + R"(]}],"processes":{"p1":{"serviceName":"api"}}}]})";
}

TEST(FailureFromWire, JaegerOtelStatusCodeTagIsTheStatus) {
  auto r = ReadTraces(JaegerWithTags(
      R"({"key":"otel.status_code","type":"string","value":"ERROR"},)"
      R"({"key":"otel.status_description","type":"string","value":"upstream timeout"})"));
  const Span s = OnlySpan(r);
  EXPECT_TRUE(s.failed);
  EXPECT_EQ(s.failure_source, FailureSource::kOtlpStatus);
  EXPECT_EQ(s.failure_reason, "upstream timeout");
}

TEST(FailureFromWire, JaegerOtelStatusOkBeatsErrorTag) {
  auto r = ReadTraces(JaegerWithTags(R"({"key":"error","type":"bool","value":true},)"
                                     R"({"key":"otel.status_code","type":"string","value":"OK"})"));
  EXPECT_FALSE(OnlySpan(r).failed);
}

TEST(FailureFromWire, JaegerErrorTagAsBoolOrString) {
  EXPECT_TRUE(
      OnlySpan(ReadTraces(JaegerWithTags(R"({"key":"error","type":"bool","value":true})"))).failed);
  EXPECT_TRUE(
      OnlySpan(ReadTraces(JaegerWithTags(R"({"key":"error","type":"bool","value":"true"})")))
          .failed);
  EXPECT_TRUE(
      OnlySpan(ReadTraces(JaegerWithTags(R"({"key":"error","type":"string","value":"true"})")))
          .failed);
  EXPECT_FALSE(
      OnlySpan(ReadTraces(JaegerWithTags(R"({"key":"error","type":"bool","value":false})")))
          .failed);
}

TEST(FailureFromWire, JaegerHttpStatusAsInt64StringOnClient) {
  auto r = ReadTraces(JaegerWithTags(R"({"key":"span.kind","type":"string","value":"client"},)"
                                     R"({"key":"http.status_code","type":"int64","value":"404"})"));
  const Span s = OnlySpan(r);
  EXPECT_TRUE(s.failed);
  EXPECT_TRUE(s.caller_fault);
  EXPECT_EQ(s.failure_reason, "HTTP 404");
}

std::string ZipkinSpan(const std::string& kind, const std::string& tags) {
  return R"([{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","name":"get","kind":")" + kind +
         R"(","timestamp":1700000000000000,"duration":1000,"localEndpoint":{"serviceName":"web"},)"
         R"("tags":{)" +
         tags + "}}]";
}

TEST(FailureFromWire, ZipkinErrorTagAnyValueEvenEmpty) {
  const Span s = OnlySpan(ReadTraces(ZipkinSpan("SERVER", R"("error":"")")));
  EXPECT_TRUE(s.failed);
  EXPECT_EQ(s.failure_source, FailureSource::kErrorTag);
  EXPECT_TRUE(OnlySpan(ReadTraces(ZipkinSpan("SERVER", R"("error":"false")"))).failed);
}

TEST(FailureFromWire, ZipkinErrorTagWith4xxIsCallerFaultOnBothHalves) {
  // The SmartThings fixtures: Brave tags `error` with the HTTP code of a refused request.
  for (const char* kind : {"CLIENT", "SERVER"}) {
    SCOPED_TRACE(kind);
    const Span& s =
        OnlySpan(ReadTraces(ZipkinSpan(kind, R"("error":"401","http.status_code":"401")")));
    EXPECT_TRUE(s.failed);
    EXPECT_TRUE(s.caller_fault);
    EXPECT_EQ(s.failure_reason, "HTTP 401");
  }
}

TEST(FailureFromWire, OtlpGrpcCodeByNameAndNewHttpName) {
  auto r =
      ReadTraces(R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",)"
                 R"("value":{"stringValue":"api"}}]},"scopeSpans":[{"spans":[{"traceId":)"
                 R"("0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"rpc",)"
                 R"("kind":"SPAN_KIND_SERVER","startTimeUnixNano":"1700000000000000000",)"
                 R"("endTimeUnixNano":"1700000000001000000","attributes":[{"key":)"
                 R"("rpc.response.status_code","value":{"stringValue":"UNAVAILABLE"}}]}]}]}]})");
  const Span s = OnlySpan(r);
  EXPECT_TRUE(s.failed);
  EXPECT_EQ(s.failure_source, FailureSource::kGrpcStatus);
  EXPECT_EQ(s.failure_reason, "gRPC UNAVAILABLE");
}

}  // namespace
}  // namespace tracepager::routing
