// OTLP JSON reader: a SAX state machine over RapidJSON's Reader, with no DOM.
//
// Why SAX: a 100,000-span trace is tens of megabytes; a DOM of it costs about twice the input
// again (every attribute is two small objects) and a second pass to walk. Streaming keeps
// peak memory near input + model and lets attributes routing ignores go by without a copy:
// an attribute's "key" normally precedes its "value", so the value of an uninteresting key
// is never copied. Keys may come in any order, though, so everything that depends on a later
// key is deferred to the end of its object (a value before its key is buffered; a span's
// trace id, a resource's service name may come after what they qualify).
//
// Shapes accepted (section 6 of the wire-format notes): {"resourceSpans":[...]}, Tempo's
// {"batches":[...]}, Tempo v2's {"trace":{"resourceSpans":[...]}} and Jaeger v3's
// {"result":{"resourceSpans":[...]}}; scopeSpans or instrumentationLibrarySpans.
#include <cmath>
#include <cstring>

#include "routing/json_util.h"
#include "routing/reader_common.h"

namespace tracepager::routing::internal {
namespace {

using rapidjson::SizeType;

enum class Ctx : uint8_t {
  kRoot,
  kWrapper,
  kRsArray,
  kRs,
  kResource,
  kResAttrs,
  kKv,
  kAnyValue,
  kSsArray,
  kSs,
  kSpans,
  kSpan,
  kSpanAttrs,
  kStatus,
  kEvents,
  kEvent,
  kEventAttrs,
  kLinks,
  kLink,
  kSkip,
};

bool IsArrayCtx(Ctx c) {
  switch (c) {
    case Ctx::kRsArray:
    case Ctx::kResAttrs:
    case Ctx::kSsArray:
    case Ctx::kSpans:
    case Ctx::kSpanAttrs:
    case Ctx::kEvents:
    case Ctx::kEventAttrs:
    case Ctx::kLinks:
      return true;
    default:
      return false;
  }
}

enum class Key : uint8_t {
  kUnknown,
  kResourceSpans,
  kBatches,
  kWrapper,
  kResultWrapper,
  kResource,
  kScopeSpans,
  kAttributes,
  kSpansKey,
  kTraceId,
  kSpanId,
  kParentSpanId,
  kName,
  kKind,
  kStart,
  kEnd,
  kStatusKey,
  kEventsKey,
  kLinksKey,
  kCode,
  kMessage,
  kTime,
  kKvKey,
  kKvValue,
  kStringValue,
  kIntValue,
  kBoolValue,
  kDoubleValue,
};

enum class Owner : uint8_t { kResource, kSpan, kEvent };

struct Frame {
  Ctx ctx;
  Key key = Key::kUnknown;  // objects: the key whose value comes next
  uint32_t count = 0;       // arrays: elements started so far
  const char* label;        // the key this container is the value of (nullptr: array element)
};

// A scalar as RapidJSON reported it.
struct Scalar {
  enum class Type { kNull, kBool, kInt, kBigUint, kDouble, kString };
  explicit Scalar(Type t) : type(t) {}
  Type type;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;
};

const char* ScalarTypeName(const Scalar& v) {
  switch (v.type) {
    case Scalar::Type::kNull:
      return "null";
    case Scalar::Type::kBool:
      return "a bool";
    case Scalar::Type::kInt:
    case Scalar::Type::kBigUint:
    case Scalar::Type::kDouble:
      return "a number";
    case Scalar::Type::kString:
      return "a string";
  }
  return "a value";
}

bool Eq(const char* s, SizeType n, std::string_view lit) {
  return n == lit.size() && std::memcmp(s, lit.data(), n) == 0;
}

class OtlpHandler {
 public:
  OtlpHandler(const ReadLimits& limits, TraceBuilder& builder)
      : limits_(limits), builder_(builder) {
    stack_.reserve(16);
  }

  // ---- RapidJSON handler interface ----
  bool Null() { return OnScalar(Scalar(Scalar::Type::kNull)); }
  bool Bool(bool b) {
    Scalar v(Scalar::Type::kBool);
    v.b = b;
    return OnScalar(v);
  }
  bool Int(int i) { return Int64(i); }
  bool Uint(unsigned u) { return Int64(u); }
  bool Int64(int64_t i) {
    Scalar v(Scalar::Type::kInt);
    v.i = i;
    return OnScalar(v);
  }
  bool Uint64(uint64_t u) {
    if (u <= static_cast<uint64_t>(INT64_MAX)) return Int64(static_cast<int64_t>(u));
    Scalar v(Scalar::Type::kBigUint);
    v.d = static_cast<double>(u);
    return OnScalar(v);
  }
  bool Double(double d) {
    Scalar v(Scalar::Type::kDouble);
    v.d = d;
    return OnScalar(v);
  }
  bool RawNumber(const char*, SizeType, bool) { return true; }  // not enabled
  bool String(const char* s, SizeType n, bool) {
    Scalar v(Scalar::Type::kString);
    v.s = std::string_view(s, n);
    return OnScalar(v);
  }
  bool Key(const char* s, SizeType n, bool);
  bool StartObject() { return OnStart(false); }
  bool StartArray() { return OnStart(true); }
  bool EndObject(SizeType) { return OnEnd(); }
  bool EndArray(SizeType) { return OnEnd(); }

  // ---- Results ----
  bool not_otlp() const { return not_otlp_; }
  bool saw_otlp() const { return saw_otlp_; }
  bool failed() const { return failed_; }
  const Error& error() const { return error_; }

 private:
  bool OnScalar(const Scalar& v);
  bool OnStart(bool is_array);
  bool OnEnd();
  bool SpanScalar(enum Key k, const Scalar& v);
  bool AnyValueScalar(enum Key k, const Scalar& v);
  bool FinishSpan();
  void FinishKv();
  void FinishEvent();
  void FinishLink();
  void FinishRs();

  bool Fail(std::string message) {
    failed_ = true;
    error_ = Error::InvalidInput(std::move(message));
    return false;
  }
  bool NotOtlp() {
    not_otlp_ = true;
    return false;
  }
  // "otlp resourceSpans[0].scopeSpans[1].spans[7]"
  std::string Path() const;
  static const char* KeyName(enum Key k);
  bool WrongType(enum Key k, const char* got, const char* expected) {
    return Fail(Path() + ": \"" + KeyName(k) + "\" is " + got + ", expected " + expected);
  }
  bool ReadTime(const Scalar& v, enum Key k, RawTime* out);

  const ReadLimits& limits_;
  TraceBuilder& builder_;
  std::vector<Frame> stack_;
  unsigned skip_depth_ = 0;  // nesting inside an ignored value (not on stack_)
  bool not_otlp_ = false;
  bool saw_otlp_ = false;
  bool failed_ = false;
  Error error_;

  // The resourceSpans being read.
  std::string rs_service_;
  bool rs_resource_done_ = false;
  std::vector<std::pair<size_t, size_t>> rs_pending_;  // spans read before their resource

  // The span being read.
  Span span_;
  SpanAttrs attrs_;
  TraceId trace_id_;
  bool have_trace_id_ = false;
  bool have_span_id_ = false;
  RawTime start_, end_;
  std::vector<std::string> problems_;

  // The attribute (key/value pair) being read.
  Owner kv_owner_ = Owner::kSpan;
  Attr kv_attr_ = Attr::kNone;
  bool kv_have_key_ = false;
  bool kv_have_value_ = false;
  AttrValue kv_value_;
  std::string kv_str_;

  // The event or link being read.
  bool event_is_exception_ = false;
  ExceptionEvent event_;
  RawTime event_time_;
  TraceId link_trace_;
  uint64_t link_span_ = 0;
  bool link_have_trace_ = false;
  bool link_bad_ = false;
};

const char* OtlpHandler::KeyName(enum Key k) {
  switch (k) {
    case Key::kResourceSpans:
      return "resourceSpans";
    case Key::kBatches:
      return "batches";
    case Key::kResultWrapper:
      return "result";
    case Key::kResource:
      return "resource";
    case Key::kScopeSpans:
      return "scopeSpans";
    case Key::kAttributes:
      return "attributes";
    case Key::kSpansKey:
      return "spans";
    case Key::kTraceId:
      return "traceId";
    case Key::kSpanId:
      return "spanId";
    case Key::kParentSpanId:
      return "parentSpanId";
    case Key::kName:
      return "name";
    case Key::kKind:
      return "kind";
    case Key::kStart:
      return "startTimeUnixNano";
    case Key::kEnd:
      return "endTimeUnixNano";
    case Key::kStatusKey:
      return "status";
    case Key::kEventsKey:
      return "events";
    case Key::kLinksKey:
      return "links";
    case Key::kCode:
      return "code";
    case Key::kMessage:
      return "message";
    case Key::kTime:
      return "timeUnixNano";
    case Key::kKvKey:
      return "key";
    case Key::kKvValue:
      return "value";
    case Key::kWrapper:
      return "trace";
    default:
      return "?";
  }
}

std::string OtlpHandler::Path() const {
  std::string p = "otlp";
  bool first = true;
  for (size_t i = 1; i < stack_.size(); ++i) {
    const Frame& f = stack_[i];
    if (f.label) {
      p += first ? " " : ".";
      p += f.label;
      first = false;
    }
    if (IsArrayCtx(f.ctx) && i + 1 < stack_.size()) p += "[" + std::to_string(f.count - 1) + "]";
  }
  return p;
}

bool OtlpHandler::Key(const char* s, SizeType n, bool) {
  if (skip_depth_ > 0 || stack_.empty()) return true;
  Frame& f = stack_.back();
  enum Key k = Key::kUnknown;
  switch (f.ctx) {
    case Ctx::kRoot:
      if (Eq(s, n, "resourceSpans")) {
        k = Key::kResourceSpans;
      } else if (Eq(s, n, "batches")) {
        k = Key::kBatches;
      } else if (Eq(s, n, "trace")) {
        k = Key::kWrapper;
      } else if (Eq(s, n, "result")) {
        k = Key::kResultWrapper;
      } else if (!saw_otlp_ && (Eq(s, n, "data") || Eq(s, n, "spans") || Eq(s, n, "traceID") ||
                                Eq(s, n, "processes") || Eq(s, n, "traces") ||
                                Eq(s, n, "summaries") || Eq(s, n, "error"))) {
        return NotOtlp();  // another format, a search result or an error body
      }
      break;
    case Ctx::kWrapper:
      if (Eq(s, n, "resourceSpans")) k = Key::kResourceSpans;
      if (Eq(s, n, "batches")) k = Key::kBatches;
      break;
    case Ctx::kRs:
      if (Eq(s, n, "resource")) {
        k = Key::kResource;
      } else if (Eq(s, n, "scopeSpans") || Eq(s, n, "instrumentationLibrarySpans")) {
        k = Key::kScopeSpans;
      }
      break;
    case Ctx::kResource:
    case Ctx::kEvent:
      if (Eq(s, n, "attributes")) {
        k = Key::kAttributes;
      } else if (f.ctx == Ctx::kEvent && Eq(s, n, "name")) {
        k = Key::kName;
      } else if (f.ctx == Ctx::kEvent && Eq(s, n, "timeUnixNano")) {
        k = Key::kTime;
      }
      break;
    case Ctx::kSs:
      if (Eq(s, n, "spans")) k = Key::kSpansKey;
      break;
    case Ctx::kSpan:
      switch (n) {
        case 4:
          if (Eq(s, n, "name")) k = Key::kName;
          if (Eq(s, n, "kind")) k = Key::kKind;
          break;
        case 5:
          if (Eq(s, n, "links")) k = Key::kLinksKey;
          break;
        case 6:
          if (Eq(s, n, "spanId")) k = Key::kSpanId;
          if (Eq(s, n, "status")) k = Key::kStatusKey;
          if (Eq(s, n, "events")) k = Key::kEventsKey;
          break;
        case 7:
          if (Eq(s, n, "traceId")) k = Key::kTraceId;
          break;
        case 10:
          if (Eq(s, n, "attributes")) k = Key::kAttributes;
          break;
        case 12:
          if (Eq(s, n, "parentSpanId")) k = Key::kParentSpanId;
          break;
        case 15:
          if (Eq(s, n, "endTimeUnixNano")) k = Key::kEnd;
          break;
        case 17:
          if (Eq(s, n, "startTimeUnixNano")) k = Key::kStart;
          break;
        default:
          break;
      }
      break;
    case Ctx::kStatus:
      if (Eq(s, n, "code")) k = Key::kCode;
      if (Eq(s, n, "message")) k = Key::kMessage;
      break;
    case Ctx::kKv:
      if (Eq(s, n, "key")) k = Key::kKvKey;
      if (Eq(s, n, "value")) k = Key::kKvValue;
      break;
    case Ctx::kAnyValue:
      if (Eq(s, n, "stringValue")) k = Key::kStringValue;
      if (Eq(s, n, "intValue")) k = Key::kIntValue;
      if (Eq(s, n, "boolValue")) k = Key::kBoolValue;
      if (Eq(s, n, "doubleValue")) k = Key::kDoubleValue;
      break;
    case Ctx::kLink:
      if (Eq(s, n, "traceId")) k = Key::kTraceId;
      if (Eq(s, n, "spanId")) k = Key::kSpanId;
      break;
    default:
      break;
  }
  f.key = k;
  return true;
}

bool OtlpHandler::OnStart(bool is_array) {
  if (stack_.size() + skip_depth_ >= limits_.max_depth) {
    return Fail("JSON nesting deeper than " + std::to_string(limits_.max_depth) + " levels");
  }
  if (skip_depth_ > 0) {
    ++skip_depth_;
    return true;
  }
  if (stack_.empty()) {
    if (is_array) return NotOtlp();  // Zipkin, or Jaeger's anonymizer span list
    stack_.push_back(Frame{Ctx::kRoot, Key::kUnknown, 0, nullptr});
    return true;
  }
  Frame& f = stack_.back();
  if (IsArrayCtx(f.ctx)) {
    ++f.count;
    if (is_array) {
      return Fail(Path() + "[" + std::to_string(f.count - 1) + "] is an array, expected an object");
    }
    Ctx child = Ctx::kSkip;
    switch (f.ctx) {
      case Ctx::kRsArray:
        child = Ctx::kRs;
        rs_service_.clear();
        rs_resource_done_ = false;
        rs_pending_.clear();
        break;
      case Ctx::kSsArray:
        child = Ctx::kSs;
        break;
      case Ctx::kSpans:
        child = Ctx::kSpan;
        span_ = Span{};
        attrs_.Reset();
        have_trace_id_ = have_span_id_ = false;
        start_ = end_ = RawTime{};
        problems_.clear();
        break;
      case Ctx::kResAttrs:
      case Ctx::kSpanAttrs:
      case Ctx::kEventAttrs:
        child = Ctx::kKv;
        kv_owner_ = f.ctx == Ctx::kResAttrs    ? Owner::kResource
                    : f.ctx == Ctx::kSpanAttrs ? Owner::kSpan
                                               : Owner::kEvent;
        kv_attr_ = Attr::kNone;
        kv_have_key_ = kv_have_value_ = false;
        kv_value_ = AttrValue{};
        break;
      case Ctx::kEvents:
        child = Ctx::kEvent;
        event_is_exception_ = false;
        event_ = ExceptionEvent{};
        event_time_ = RawTime{};
        break;
      case Ctx::kLinks:
        child = Ctx::kLink;
        link_have_trace_ = link_bad_ = false;
        link_span_ = 0;
        break;
      default:
        break;
    }
    stack_.push_back(Frame{child, Key::kUnknown, 0, nullptr});
    return true;
  }

  // A container as the value of a key.
  enum Key k = f.key;
  f.key = Key::kUnknown;
  Ctx child = Ctx::kSkip;
  bool want_array = true;
  switch (f.ctx) {
    case Ctx::kRoot:
      if (k == Key::kResourceSpans || k == Key::kBatches) child = Ctx::kRsArray;
      if (k == Key::kWrapper || k == Key::kResultWrapper) child = Ctx::kWrapper, want_array = false;
      break;
    case Ctx::kWrapper:
      if (k == Key::kResourceSpans || k == Key::kBatches) child = Ctx::kRsArray;
      break;
    case Ctx::kRs:
      if (k == Key::kResource) child = Ctx::kResource, want_array = false;
      if (k == Key::kScopeSpans) child = Ctx::kSsArray;
      break;
    case Ctx::kResource:
      if (k == Key::kAttributes) child = Ctx::kResAttrs;
      break;
    case Ctx::kSs:
      if (k == Key::kSpansKey) child = Ctx::kSpans;
      break;
    case Ctx::kSpan:
      if (k == Key::kAttributes) child = Ctx::kSpanAttrs;
      if (k == Key::kStatusKey) child = Ctx::kStatus, want_array = false;
      if (k == Key::kEventsKey) child = Ctx::kEvents;
      if (k == Key::kLinksKey) child = Ctx::kLinks;
      if (child == Ctx::kSkip && k != Key::kUnknown) {
        return WrongType(k, is_array ? "an array" : "an object", "a string or a number");
      }
      break;
    case Ctx::kEvent:
      if (k == Key::kAttributes) child = Ctx::kEventAttrs;
      break;
    case Ctx::kKv:
      if (k == Key::kKvValue) child = Ctx::kAnyValue, want_array = false;
      break;
    default:
      break;  // arrayValue, kvlistValue, scope, anything unknown: skipped
  }
  if (child == Ctx::kSkip) {
    ++skip_depth_;
    return true;
  }
  if (is_array != want_array) {
    return WrongType(k, is_array ? "an array" : "an object", want_array ? "an array" : "an object");
  }
  if (child == Ctx::kRsArray || child == Ctx::kWrapper) saw_otlp_ = true;
  stack_.push_back(Frame{child, Key::kUnknown, 0, KeyName(k)});
  return true;
}

bool OtlpHandler::OnEnd() {
  if (skip_depth_ > 0) {
    --skip_depth_;
    return true;
  }
  if (stack_.empty()) return true;
  switch (stack_.back().ctx) {
    case Ctx::kSpan:
      if (!FinishSpan()) return false;
      break;
    case Ctx::kKv:
      FinishKv();
      break;
    case Ctx::kEvent:
      FinishEvent();
      break;
    case Ctx::kLink:
      FinishLink();
      break;
    case Ctx::kResource:
      rs_resource_done_ = true;
      break;
    case Ctx::kRs:
      FinishRs();
      break;
    default:
      break;
  }
  stack_.pop_back();
  return true;
}

bool OtlpHandler::OnScalar(const Scalar& v) {
  if (skip_depth_ > 0) return true;
  if (stack_.empty()) return NotOtlp();  // a bare scalar: the DOM path names it
  Frame& f = stack_.back();
  if (IsArrayCtx(f.ctx)) {
    ++f.count;
    return Fail(Path() + "[" + std::to_string(f.count - 1) + "] is " + ScalarTypeName(v) +
                ", expected an object");
  }
  enum Key k = f.key;
  f.key = Key::kUnknown;
  if (k == Key::kUnknown || v.type == Scalar::Type::kNull) return true;  // ignored or absent
  switch (f.ctx) {
    case Ctx::kRoot:
    case Ctx::kWrapper:
    case Ctx::kRs:
    case Ctx::kResource:
    case Ctx::kSs: {
      // Only container-valued keys are known here.
      bool object = k == Key::kWrapper || k == Key::kResultWrapper || k == Key::kResource;
      return WrongType(k, ScalarTypeName(v), object ? "an object" : "an array");
    }
    case Ctx::kSpan:
      return SpanScalar(k, v);
    case Ctx::kStatus:
      if (k == Key::kCode) {
        if (v.type == Scalar::Type::kInt) {
          if (v.i >= 0 && v.i <= 2) span_.status = static_cast<StatusCode>(v.i);
        } else if (v.type == Scalar::Type::kString) {
          std::string_view s = v.s;
          if (s.size() > 12 && s.substr(0, 12) == "STATUS_CODE_") s.remove_prefix(12);
          if (s == "ERROR") span_.status = StatusCode::kError;
          if (s == "OK") span_.status = StatusCode::kOk;
          if (s == "UNSET") span_.status = StatusCode::kUnset;
        } else {
          return WrongType(k, ScalarTypeName(v), "a number or a STATUS_CODE_ name");
        }
      } else if (k == Key::kMessage && v.type == Scalar::Type::kString) {
        span_.status_message.assign(v.s);
      }
      return true;
    case Ctx::kKv:
      if (k == Key::kKvKey) {
        if (v.type != Scalar::Type::kString) return WrongType(k, ScalarTypeName(v), "a string");
        kv_have_key_ = true;
        switch (kv_owner_) {
          case Owner::kSpan:
            kv_attr_ = LookupAttr(v.s);
            break;
          case Owner::kResource:
            kv_attr_ = Eq(v.s.data(), static_cast<SizeType>(v.s.size()), "service.name")
                           ? Attr::kServiceName
                           : Attr::kNone;
            break;
          case Owner::kEvent: {
            Attr a = LookupAttr(v.s);
            kv_attr_ =
                (a == Attr::kExceptionType || a == Attr::kExceptionMessage) ? a : Attr::kNone;
            break;
          }
        }
      }
      return true;
    case Ctx::kAnyValue:
      return AnyValueScalar(k, v);
    case Ctx::kEvent:
      if (k == Key::kName && v.type == Scalar::Type::kString)
        event_is_exception_ = v.s == "exception";
      if (k == Key::kTime) return ReadTime(v, k, &event_time_);
      return true;
    case Ctx::kLink:
      if (v.type != Scalar::Type::kString) {
        link_bad_ = true;
      } else if (k == Key::kTraceId) {
        link_have_trace_ = ParseOtlpTraceId(v.s, &link_trace_);
        link_bad_ |= !link_have_trace_ && !v.s.empty();
      } else if (k == Key::kSpanId) {
        link_bad_ |= !ParseOtlpSpanId(v.s, &link_span_);
      }
      return true;
    default:
      return true;
  }
}

bool OtlpHandler::ReadTime(const Scalar& v, enum Key k, RawTime* out) {
  switch (v.type) {
    case Scalar::Type::kInt:
      out->state = v.i < 0 ? RawTime::State::kOutOfRange : RawTime::State::kOk;
      out->value = v.i;
      return true;
    case Scalar::Type::kBigUint:
    case Scalar::Type::kDouble:
      if (std::isfinite(v.d) && v.d >= 0 && v.d < 9.2e18) {
        out->state = RawTime::State::kOk;
        out->value = static_cast<int64_t>(v.d);
      } else {
        out->state = RawTime::State::kOutOfRange;
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", v.d);
        out->text = buf;
      }
      return true;
    case Scalar::Type::kString: {
      if (v.s.empty()) return true;  // missing
      auto n = ParseUint64(v.s);
      if (!n) {
        // Digits that overflow even uint64 (a year-3000 clock) are out of range; anything else
        // is not a time at all.
        bool digits =
            v.s.size() <= 40 && v.s.find_first_not_of("0123456789") == std::string_view::npos;
        if (!digits)
          return WrongType(k, ("\"" + std::string(v.s.substr(0, 40)) + "\"").c_str(),
                           "decimal nanoseconds");
        out->state = RawTime::State::kOutOfRange;
        out->text = std::string(v.s);
        return true;
      }
      if (*n > static_cast<uint64_t>(INT64_MAX)) {
        out->state = RawTime::State::kOutOfRange;
        out->text = std::string(v.s);
        return true;
      }
      out->state = RawTime::State::kOk;
      out->value = static_cast<int64_t>(*n);
      return true;
    }
    default:
      return WrongType(k, ScalarTypeName(v), "decimal nanoseconds");
  }
}

bool OtlpHandler::SpanScalar(enum Key k, const Scalar& v) {
  switch (k) {
    case Key::kTraceId:
    case Key::kSpanId:
    case Key::kParentSpanId: {
      if (v.type != Scalar::Type::kString) {
        return WrongType(k, ScalarTypeName(v), "a hex or base64 string");
      }
      if (v.s.empty()) return true;  // proto3 JSON: empty means absent (a root's parent)
      bool ok;
      if (k == Key::kTraceId) {
        ok = ParseOtlpTraceId(v.s, &trace_id_);
        have_trace_id_ = ok && !trace_id_.IsZero();
        if (ok && !have_trace_id_) return Fail(Path() + ": \"traceId\" is all zeros");
      } else if (k == Key::kSpanId) {
        ok = ParseOtlpSpanId(v.s, &span_.span_id);
        have_span_id_ = ok && span_.span_id != 0;
        if (ok && !have_span_id_) return Fail(Path() + ": \"spanId\" is all zeros");
      } else {
        ok = ParseOtlpSpanId(v.s, &span_.parent_id);
      }
      if (!ok) {
        return Fail(Path() + ": \"" + KeyName(k) + "\" is " + Quote(v.s) + ", expected " +
                    (k == Key::kTraceId ? "32 hex digits or base64 of 16 bytes"
                                        : "16 hex digits or base64 of 8 bytes"));
      }
      return true;
    }
    case Key::kName:
      if (v.type != Scalar::Type::kString) return WrongType(k, ScalarTypeName(v), "a string");
      span_.operation.assign(v.s);
      return true;
    case Key::kKind:
      if (v.type == Scalar::Type::kInt) {
        if (v.i >= 0 && v.i <= 5) span_.kind = static_cast<SpanKind>(v.i);
      } else if (v.type == Scalar::Type::kString) {
        span_.kind = SpanKindFromText(v.s);
      } else {
        return WrongType(k, ScalarTypeName(v), "a number or a SPAN_KIND_ name");
      }
      return true;
    case Key::kStart:
      return ReadTime(v, k, &start_);
    case Key::kEnd:
      return ReadTime(v, k, &end_);
    default:
      // status, attributes, events, links given as scalars.
      return WrongType(k, ScalarTypeName(v), k == Key::kStatusKey ? "an object" : "an array");
  }
}

bool OtlpHandler::AnyValueScalar(enum Key k, const Scalar& v) {
  // The key came first (the usual order) and routing ignores it: nothing to copy.
  if (kv_have_key_ && kv_attr_ == Attr::kNone) return true;
  switch (k) {
    case Key::kStringValue:
      if (v.type != Scalar::Type::kString) return true;
      kv_str_.assign(v.s);
      kv_value_.type = AttrValue::Type::kString;
      break;
    case Key::kIntValue:
      if (v.type == Scalar::Type::kInt) {
        kv_value_.type = AttrValue::Type::kInt;
        kv_value_.i = v.i;
      } else if (v.type == Scalar::Type::kString) {
        auto n = ParseInt64(v.s);
        if (!n) return true;
        kv_value_.type = AttrValue::Type::kInt;
        kv_value_.i = *n;
      } else {
        return true;
      }
      break;
    case Key::kBoolValue:
      if (v.type != Scalar::Type::kBool) return true;
      kv_value_.type = AttrValue::Type::kBool;
      kv_value_.b = v.b;
      break;
    case Key::kDoubleValue:
      if (v.type == Scalar::Type::kDouble || v.type == Scalar::Type::kBigUint) {
        kv_value_.d = v.d;
      } else if (v.type == Scalar::Type::kInt) {
        kv_value_.d = static_cast<double>(v.i);
      } else {
        return true;
      }
      kv_value_.type = AttrValue::Type::kDouble;
      break;
    default:
      return true;  // bytesValue and anything unknown
  }
  kv_have_value_ = true;
  return true;
}

void OtlpHandler::FinishKv() {
  if (!kv_have_key_ || !kv_have_value_ || kv_attr_ == Attr::kNone) return;
  kv_value_.str = kv_str_;
  switch (kv_owner_) {
    case Owner::kResource:
      if (kv_value_.type == AttrValue::Type::kString) rs_service_ = kv_str_;
      break;
    case Owner::kSpan:
      attrs_.Apply(span_, kv_attr_, kv_value_);
      break;
    case Owner::kEvent:
      if (kv_value_.type != AttrValue::Type::kString) break;
      (kv_attr_ == Attr::kExceptionType ? event_.type : event_.message) = kv_str_;
      break;
  }
}

void OtlpHandler::FinishEvent() {
  if (!event_is_exception_) return;
  event_.time_ns = event_time_.state == RawTime::State::kOk ? event_time_.value : 0;
  span_.exceptions.push_back(std::move(event_));
  event_ = ExceptionEvent{};
}

void OtlpHandler::FinishLink() {
  if (link_bad_ || link_span_ == 0) {
    problems_.push_back("a link with a missing or unreadable trace or span id was ignored");
    return;
  }
  SpanRef ref;
  ref.type = SpanRef::Type::kLink;
  if (link_have_trace_) ref.trace_id = TraceIdHex(link_trace_);  // else: this span's trace
  ref.span_id = link_span_;
  span_.refs.push_back(std::move(ref));
}

bool OtlpHandler::FinishSpan() {
  if (!have_trace_id_) return Fail(Path() + ": \"traceId\" is missing");
  if (!have_span_id_) return Fail(Path() + ": \"spanId\" is missing");
  attrs_.Finish(span_);
  const std::string trace_hex_if_needed = [&] {
    for (const SpanRef& r : span_.refs) {
      if (r.trace_id.empty()) return TraceIdHex(trace_id_);
    }
    return std::string();
  }();
  for (SpanRef& r : span_.refs) {
    if (r.trace_id.empty()) r.trace_id = trace_hex_if_needed;
  }
  bool timing_known = SetTimingFromEnd(span_, start_, end_, &problems_);
  bool service_known = rs_resource_done_;
  if (service_known) span_.service = rs_service_;
  const uint64_t span_id = span_.span_id;
  std::string operation = problems_.empty() ? std::string() : span_.operation;
  Status added = builder_.Add(trace_id_, std::move(span_), timing_known);
  if (!added.ok()) return Fail(added.error().message);
  if (!service_known) {
    size_t t = builder_.last_trace_index();
    rs_pending_.emplace_back(t, builder_.span_count_in(t) - 1);
  }
  for (std::string& p : problems_) {
    builder_.Warn(trace_id_, "span " + SpanIdHex(span_id) + " (" + operation + "): " + p);
  }
  return true;
}

void OtlpHandler::FinishRs() {
  // Spans read before their resource get its service now.
  for (auto [t, i] : rs_pending_) builder_.span_at(t, i).service = rs_service_;
  rs_pending_.clear();
}

}  // namespace

OtlpOutcome ReadOtlp(std::string_view json, const ReadLimits& limits, TraceBuilder& builder,
                     Error* error) {
  ViewStream stream(json);
  OtlpHandler handler(limits, builder);
  rapidjson::ParseResult result = ParseBounded(stream, handler, limits.max_depth);
  if (handler.not_otlp()) return OtlpOutcome::kNotOtlp;
  if (handler.failed()) {
    *error = handler.error();
    if (error->message.rfind("JSON nesting", 0) == 0) {
      error->message += " at byte " + std::to_string(result.Offset());
    }
    return OtlpOutcome::kError;
  }
  if (result.IsError()) {
    *error = Error::InvalidInput(ParseErrorMessage(result.Code(), result.Offset()));
    return OtlpOutcome::kError;
  }
  if (Status trailing = CheckTrailing(json, stream.Tell()); !trailing.ok()) {
    *error = trailing.error();
    return OtlpOutcome::kError;
  }
  // A root object with none of the OTLP keys: let the caller name what it is.
  if (!handler.saw_otlp()) return OtlpOutcome::kNotOtlp;
  return OtlpOutcome::kDone;
}

}  // namespace tracepager::routing::internal
