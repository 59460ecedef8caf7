// Internals shared by the trace readers (routing/trace_reader.h is the public interface).
// Not for use outside routing/reader_*.cc and routing/trace_reader.cc.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "routing/result.h"
#include "routing/trace.h"
#include "routing/trace_reader.h"

namespace tracepager::routing::internal {

// ---- Ids ----------------------------------------------------------------------------------

struct TraceId {
  uint64_t hi = 0;
  uint64_t lo = 0;
  bool IsZero() const { return hi == 0 && lo == 0; }
  bool operator==(const TraceId& o) const { return hi == o.hi && lo == o.lo; }
};
struct TraceIdHash {
  size_t operator()(const TraceId& id) const { return id.lo * 0x9E3779B97F4A7C15ull ^ id.hi; }
};

// 32 lowercase hex digits.
std::string TraceIdHex(const TraceId& id);

// Hex of 1..32 (trace) / 1..16 (span) digits in any case, left-padded with zeros: Jaeger and
// Tempo drop leading zeros, so 31- and 15-digit ids occur.
bool ParseHexTraceId(std::string_view s, TraceId* out);
bool ParseHexSpanId(std::string_view s, uint64_t* out);

// OTLP ids: canonical-length hex first, else standard or URL-safe base64 (padded or not) of
// 16/8 bytes (a 64-bit trace id as 8 bytes is accepted too), else shorter hex. See the .cc.
bool ParseOtlpTraceId(std::string_view s, TraceId* out);
bool ParseOtlpSpanId(std::string_view s, uint64_t* out);

// ---- Numbers and times --------------------------------------------------------------------

// Decimal digits only (an optional leading '-'), no overflow. nullopt otherwise.
std::optional<int64_t> ParseInt64(std::string_view s);
std::optional<uint64_t> ParseUint64(std::string_view s);

// ---- Attributes ---------------------------------------------------------------------------

// The attributes routing keeps, under every name a reader may see. Jaeger tags, OTLP span
// attributes and Zipkin tags share one table.
enum class Attr : uint8_t {
  kNone,
  kHttpStatusNew,      // http.response.status_code
  kHttpStatusOld,      // http.status_code
  kRpcResponseStatus,  // rpc.response.status_code (string, newest conventions)
  kRpcGrpcStatus,      // rpc.grpc.status_code
  kGrpcStatusLegacy,   // grpc.status_code (Brave, OpenCensus)
  kError,              // error
  kPeerService,        // peer.service
  kDbSystemName,       // db.system.name
  kDbSystem,           // db.system
  kDbType,             // db.type (OpenTracing)
  kDbNamespace,        // db.namespace
  kDbName,             // db.name
  kDbInstance,         // db.instance (OpenTracing)
  kServerAddress,      // server.address
  kNetPeerName,        // net.peer.name
  kPeerHostname,       // peer.hostname (OpenTracing)
  kMessagingSystem,    // messaging.system
  kMessagingDestName,  // messaging.destination.name
  kMessagingDest,      // messaging.destination
  kMessageBusDest,     // message_bus.destination (OpenTracing)
  kOtelStatusCode,     // otel.status_code (OTLP status carried in Jaeger tags)
  kOtelStatusDesc,     // otel.status_description
  kSpanKind,           // span.kind (OpenTracing)
  kServiceName,        // service.name (resource)
  kExceptionType,      // exception.type (event attribute)
  kExceptionMessage,   // exception.message (event attribute)
};
Attr LookupAttr(std::string_view key);

// One attribute value as the reader saw it. `str` is only valid during the Apply call.
struct AttrValue {
  enum class Type { kString, kInt, kDouble, kBool, kOther };
  Type type = Type::kOther;
  std::string_view str;
  int64_t i = 0;
  double d = 0;
  bool b = false;
};

// Applies attributes to one span, letting newer semantic-convention names win over older ones
// whatever their order, and deferring tag-borne status and kind until Finish.
class SpanAttrs {
 public:
  void Reset();
  void Apply(Span& span, Attr attr, const AttrValue& value);
  // Applies otel.status_code/otel.status_description when the span has no status of its own,
  // and span.kind when the span has no kind of its own.
  void Finish(Span& span);

 private:
  enum Field { kHttp, kGrpc, kDbSystemF, kDbNameF, kServerAddressF, kMessagingDestF, kNumFields };
  bool Claim(Field f, uint8_t priority);

  uint8_t priority_[kNumFields] = {};
  std::optional<StatusCode> tag_status_;
  std::string tag_status_message_;
  SpanKind tag_kind_ = SpanKind::kUnspecified;
};

SpanKind SpanKindFromText(std::string_view s);  // "client", "SPAN_KIND_CLIENT", "CLIENT", ...

// ---- Building traces ----------------------------------------------------------------------

// Collects spans into traces (one per trace id, in order of first appearance) and finishes
// them: drops duplicate span ids (keeping the first), detaches orphans, breaks parent cycles,
// fills unknown timing, names unnamed services, classifies failures.
class TraceBuilder {
 public:
  explicit TraceBuilder(const ReadLimits& limits) : limits_(limits) {}

  // Adds `span` to the trace `id`. `timing_known` false: the span's start was missing or
  // unusable (its start_ns is replaced by Finish). Fails when the document holds more than
  // limits.max_spans spans.
  Status Add(const TraceId& id, Span&& span, bool timing_known = true);

  // Records a loading problem for the trace `id` (creates the trace if needed).
  void Warn(const TraceId& id, std::string warning);

  // Where the last Add put its span, so a reader can fix it up later (OTLP service names that
  // follow their spans).
  size_t last_trace_index() const { return last_index_; }
  Span& span_at(size_t trace_index, size_t span_index) {
    return traces_[trace_index].trace.spans[span_index];
  }
  size_t span_count_in(size_t trace_index) const { return traces_[trace_index].trace.spans.size(); }
  size_t span_count() const { return total_spans_; }
  const ReadLimits& limits() const { return limits_; }

  std::vector<Trace> Finish();

 private:
  struct Pending {
    Trace trace;
    std::vector<bool> timing_known;
    size_t warning_overflow = 0;
    size_t unnamed_services = 0;
  };
  size_t IndexOf(const TraceId& id);
  void AddWarning(Pending& p, std::string warning);
  void FinishTrace(Pending& p);

  const ReadLimits& limits_;
  std::vector<Pending> traces_;
  std::unordered_map<TraceId, size_t, TraceIdHash> index_;
  TraceId last_id_;
  size_t last_index_ = static_cast<size_t>(-1);
  size_t total_spans_ = 0;
};

// The service name a span gets when its input names none (OpenTelemetry's default).
inline constexpr std::string_view kUnknownService = "unknown_service";

// ---- Time ---------------------------------------------------------------------------------

// Largest Unix time in nanoseconds a span may have (int64: 2262-04-11).
inline constexpr int64_t kMaxTimeNs = INT64_MAX;

// A time value as read: missing, out of range (negative where that is impossible, beyond
// int64 nanoseconds, not a number), or a value in the reader's unit.
struct RawTime {
  enum class State { kMissing, kOk, kOutOfRange };
  State state = State::kMissing;
  int64_t value = 0;
  std::string text;  // the input as written, for kOutOfRange messages
};

// Sets span.start_ns and span.duration_ns. Returns whether the start is known. Problems that
// were repaired (negative duration, end before start, out-of-range values, overflow) are
// appended to *problems as one-line notes.
// From OTLP start/end nanoseconds:
bool SetTimingFromEnd(Span& span, const RawTime& start_ns, const RawTime& end_ns,
                      std::vector<std::string>* problems);
// From Jaeger/Zipkin start/duration microseconds:
bool SetTimingFromMicros(Span& span, const RawTime& start_us, const RawTime& duration_us,
                         std::vector<std::string>* problems);

// ---- The format readers -------------------------------------------------------------------

enum class OtlpOutcome { kDone, kNotOtlp, kError };
// Streams the document through a SAX handler (no DOM: the OTLP path is the big one). kNotOtlp
// when the root is not an object or its first telling key belongs to another format; the
// caller then tries the others. On kError *error is set.
OtlpOutcome ReadOtlp(std::string_view json, const ReadLimits& limits, TraceBuilder& builder,
                     Error* error);

// The DOM readers; `root` is the parsed document. Errors name the element and field.
Status ReadJaeger(const rapidjson::Value& root, TraceBuilder& builder);
Status ReadZipkin(const rapidjson::Value& root, TraceBuilder& builder);

}  // namespace tracepager::routing::internal
