// Jaeger v1 query-API JSON (Jaeger's model/json): {"data":[trace...]}, a bare trace object,
// or jaeger-anonymizer's array of spans with an inline `process`.
//
// Quirks handled (section 3.1 of the wire-format notes, and the fixtures):
//   - ids are hex; v1 drops the leading zero of a trace id's high half (31-digit ids);
//   - times are microseconds; int64 tag values may be JSON strings (JavaScript's 2^53
//     limit), and `bool` tags may hold the string "true" (the anonymizer);
//   - the first CHILD_OF reference into the same trace is the parent. CHILD_OF into another
//     trace, further CHILD_OFs and FOLLOWS_FROM go to Span::refs; a FOLLOWS_FROM never becomes
//     the parent, so async edges stay visible as such to the walk;
//   - the deprecated `parentSpanID` field is honoured when no reference names a parent;
//   - error logs (`event=error`, `error.kind`/`error.object`, OTel's `event=exception`) become
//     exception events.
#include "routing/json_util.h"
#include "routing/reader_common.h"
#include "routing/reader_dom.h"

namespace tracepager::routing::internal {
namespace {

using rapidjson::Value;

struct TraceContext {
  const Value* processes = nullptr;  // the trace's `processes` object, if any
  std::string_view trace_id;         // the trace object's traceID, a fallback for spans
};

Status ReadReferences(const Value& refs, const std::string& path, const TraceId& trace_id,
                      Span& span, std::vector<std::string>& problems) {
  if (!refs.IsArray()) return WrongType(path, "references", refs, "an array");
  bool have_parent = false;
  for (rapidjson::SizeType i = 0; i < refs.Size(); ++i) {
    const Value& r = refs[i];
    std::string rpath = path + ".references[" + std::to_string(i) + "]";
    if (!r.IsObject())
      return Error::InvalidInput(rpath + " is " + JsonTypeName(r) + ", expected an object");
    auto type = OptString(r, rpath, "refType");
    if (!type.ok()) return type.error();
    auto sid = OptString(r, rpath, "spanID");
    if (!sid.ok()) return sid.error();
    auto tid = OptString(r, rpath, "traceID");
    if (!tid.ok()) return tid.error();
    uint64_t span_id = 0;
    if (sid->empty()) return Missing(rpath, "spanID");
    if (!ParseHexSpanId(*sid, &span_id) || span_id == 0) {
      return Error::InvalidInput(rpath + ": \"spanID\" is " + Quote(*sid) +
                                 ", expected 1 to 16 hex digits, not all zero");
    }
    TraceId ref_trace = trace_id;
    if (!tid->empty() && !ParseHexTraceId(*tid, &ref_trace)) {
      return Error::InvalidInput(rpath + ": \"traceID\" is " + Quote(*tid) +
                                 ", expected 1 to 32 hex digits");
    }
    SpanRef ref;
    ref.span_id = span_id;
    ref.trace_id = TraceIdHex(ref_trace);
    if (*type == "CHILD_OF" || *type == "child_of") {
      if (!have_parent && ref_trace == trace_id) {
        span.parent_id = span_id;
        have_parent = true;
        continue;
      }
      ref.type = SpanRef::Type::kChildOf;
    } else if (*type == "FOLLOWS_FROM" || *type == "follows_from") {
      ref.type = SpanRef::Type::kFollowsFrom;
    } else {
      problems.push_back("reference " + std::to_string(i) + " has unknown refType " + Quote(*type) +
                         "; ignored");
      continue;
    }
    span.refs.push_back(std::move(ref));
  }
  return OkStatus();
}

// A KeyValue list ({key, type, value}) applied to a span.
Status ReadTags(const Value& tags, const std::string& path, Span& span, SpanAttrs& attrs) {
  if (!tags.IsArray()) return WrongType(path, "tags", tags, "an array");
  for (rapidjson::SizeType i = 0; i < tags.Size(); ++i) {
    const Value& t = tags[i];
    std::string tpath = path + ".tags[" + std::to_string(i) + "]";
    if (!t.IsObject())
      return Error::InvalidInput(tpath + " is " + JsonTypeName(t) + ", expected an object");
    auto key = OptString(t, tpath, "key");
    if (!key.ok()) return key.error();
    Attr attr = LookupAttr(*key);
    if (attr == Attr::kNone) continue;
    const Value* v = Member(t, "value");
    if (v == nullptr) continue;
    auto type = OptString(t, tpath, "type");
    if (!type.ok()) return type.error();
    if (*type == "binary") continue;  // base64 bytes: nothing routing reads
    attrs.Apply(span, attr, ToAttrValue(*v));
  }
  return OkStatus();
}

Status ReadLogs(const Value& logs, const std::string& path, Span& span) {
  if (!logs.IsArray()) return WrongType(path, "logs", logs, "an array");
  for (rapidjson::SizeType i = 0; i < logs.Size(); ++i) {
    const Value& l = logs[i];
    std::string lpath = path + ".logs[" + std::to_string(i) + "]";
    if (!l.IsObject())
      return Error::InvalidInput(lpath + " is " + JsonTypeName(l) + ", expected an object");
    const Value* fields = Member(l, "fields");
    if (fields == nullptr) continue;
    if (!fields->IsArray()) return WrongType(lpath, "fields", *fields, "an array");
    bool is_error = false;
    std::string_view type, message, object, exc_message;
    for (const Value& f : fields->GetArray()) {
      if (!f.IsObject()) continue;
      const Value* k = Member(f, "key");
      const Value* v = Member(f, "value");
      if (k == nullptr || !k->IsString() || v == nullptr) continue;
      std::string_view key(k->GetString(), k->GetStringLength());
      std::string_view text = v->IsString() ? std::string_view(v->GetString(), v->GetStringLength())
                                            : std::string_view();
      if (key == "event") {
        is_error |= text == "error" || text == "exception";
      } else if (key == "error.kind" || key == "exception.type") {
        is_error = true;
        type = text;
      } else if (key == "error.object") {
        is_error = true;
        object = text;
      } else if (key == "exception.message") {
        is_error = true;
        exc_message = text;
      } else if (key == "message") {
        message = text;
      }
    }
    if (!is_error) continue;
    ExceptionEvent e;
    auto ts = TimeMember(l, lpath, "timestamp", "a number of microseconds");
    if (!ts.ok()) return ts.error();
    if (ts->state == RawTime::State::kOk && ts->value > 0 && ts->value < kMaxTimeNs / 1000) {
      e.time_ns = ts->value * 1000;
    }
    e.type = std::string(type);
    e.message = std::string(!exc_message.empty() ? exc_message
                            : !message.empty()   ? message
                                                 : object);
    span.exceptions.push_back(std::move(e));
  }
  return OkStatus();
}

std::string_view ServiceOf(const Value& process) {
  if (!process.IsObject()) return {};
  const Value* name = Member(process, "serviceName");
  if (name == nullptr || !name->IsString()) return {};
  return std::string_view(name->GetString(), name->GetStringLength());
}

Status ReadSpan(const Value& s, const std::string& path, const TraceContext& ctx,
                TraceBuilder& builder) {
  if (!s.IsObject())
    return Error::InvalidInput(path + " is " + JsonTypeName(s) + ", expected a span object");
  auto tid_text = OptString(s, path, "traceID");
  if (!tid_text.ok()) return tid_text.error();
  std::string_view tid = tid_text->empty() ? ctx.trace_id : *tid_text;
  if (tid.empty()) return Missing(path, "traceID");
  TraceId trace_id;
  if (!ParseHexTraceId(tid, &trace_id) || trace_id.IsZero()) {
    return Error::InvalidInput(path + ": \"traceID\" is " + Quote(tid) +
                               ", expected 1 to 32 hex digits, not all zero");
  }
  auto sid = OptString(s, path, "spanID");
  if (!sid.ok()) return sid.error();
  if (sid->empty()) return Missing(path, "spanID");
  Span span;
  if (!ParseHexSpanId(*sid, &span.span_id) || span.span_id == 0) {
    return Error::InvalidInput(path + ": \"spanID\" is " + Quote(*sid) +
                               ", expected 1 to 16 hex digits, not all zero");
  }
  auto op = OptString(s, path, "operationName");
  if (!op.ok()) return op.error();
  span.operation = std::string(*op);

  std::vector<std::string> problems;
  if (const Value* refs = Member(s, "references")) {
    if (Status st = ReadReferences(*refs, path, trace_id, span, problems); !st.ok()) return st;
  }
  if (span.parent_id == 0) {
    auto legacy = OptString(s, path, "parentSpanID");
    if (!legacy.ok()) return legacy.error();
    uint64_t p = 0;
    if (!legacy->empty() && ParseHexSpanId(*legacy, &p)) span.parent_id = p;
  }

  auto start = TimeMember(s, path, "startTime", "a number of microseconds");
  if (!start.ok()) return start.error();
  auto duration = TimeMember(s, path, "duration", "a number of microseconds");
  if (!duration.ok()) return duration.error();

  SpanAttrs attrs;
  if (const Value* tags = Member(s, "tags")) {
    if (Status st = ReadTags(*tags, path, span, attrs); !st.ok()) return st;
  }
  attrs.Finish(span);
  if (const Value* logs = Member(s, "logs")) {
    if (Status st = ReadLogs(*logs, path, span); !st.ok()) return st;
  }

  if (const Value* process = Member(s, "process")) {
    span.service = std::string(ServiceOf(*process));
  } else {
    auto pid = OptString(s, path, "processID");
    if (!pid.ok()) return pid.error();
    if (!pid->empty()) {
      const Value* found = nullptr;
      if (ctx.processes != nullptr) {
        auto it = ctx.processes->FindMember(Value(
            rapidjson::StringRef(pid->data(), static_cast<rapidjson::SizeType>(pid->size()))));
        if (it != ctx.processes->MemberEnd()) found = &it->value;
      }
      if (found == nullptr) {
        problems.push_back("processID " + Quote(*pid) + " is not in \"processes\"");
      } else {
        span.service = std::string(ServiceOf(*found));
      }
    }
  }

  bool timing_known = SetTimingFromMicros(span, *start, *duration, &problems);
  std::string label = "span " + SpanIdHex(span.span_id) + " (" + span.operation + "): ";
  if (Status st = builder.Add(trace_id, std::move(span), timing_known); !st.ok()) return st;
  for (std::string& p : problems) builder.Warn(trace_id, label + p);
  return OkStatus();
}

Status ReadTrace(const Value& t, const std::string& path, TraceBuilder& builder) {
  if (!t.IsObject())
    return Error::InvalidInput(path + " is " + JsonTypeName(t) + ", expected a trace object");
  TraceContext ctx;
  auto tid = OptString(t, path, "traceID");
  if (!tid.ok()) return tid.error();
  ctx.trace_id = *tid;
  if (const Value* p = Member(t, "processes")) {
    if (!p->IsObject()) return WrongType(path, "processes", *p, "an object");
    ctx.processes = p;
  }
  const Value* spans = Member(t, "spans");
  if (spans == nullptr) return Missing(path, "spans");
  if (!spans->IsArray()) return WrongType(path, "spans", *spans, "an array");
  for (rapidjson::SizeType i = 0; i < spans->Size(); ++i) {
    Status st = ReadSpan((*spans)[i], path + ".spans[" + std::to_string(i) + "]", ctx, builder);
    if (!st.ok()) return st;
  }
  return OkStatus();
}

}  // namespace

Status ReadJaeger(const Value& root, TraceBuilder& builder) {
  if (root.IsArray()) {  // jaeger-anonymizer: spans with an inline process
    TraceContext ctx;
    for (rapidjson::SizeType i = 0; i < root.Size(); ++i) {
      Status st = ReadSpan(root[i], "jaeger span " + std::to_string(i), ctx, builder);
      if (!st.ok()) return st;
    }
    return OkStatus();
  }
  if (!root.IsObject())
    return Error::InvalidInput("jaeger: the document is " + std::string(JsonTypeName(root)) +
                               ", expected an object");
  if (root.HasMember("data")) {
    const Value& data = root["data"];
    if (data.IsNull()) {
      // {"data":null,"errors":[{"code":404,"msg":"trace not found"}]}
      const Value* errors = Member(root, "errors");
      if (errors != nullptr && errors->IsArray() && !errors->Empty() && (*errors)[0].IsObject()) {
        const Value& e = (*errors)[0];
        const Value* msg = Member(e, "msg");
        const Value* code = Member(e, "code");
        std::string text = "jaeger error response";
        if (code != nullptr && code->IsInt()) text += " " + std::to_string(code->GetInt());
        if (msg != nullptr && msg->IsString()) text += std::string(": ") + msg->GetString();
        if (code != nullptr && code->IsInt() && code->GetInt() == 404) return Error::NotFound(text);
        return Error::InvalidInput(text);
      }
      return OkStatus();  // no traces
    }
    if (!data.IsArray()) return WrongType("jaeger", "data", data, "an array of traces");
    for (rapidjson::SizeType i = 0; i < data.Size(); ++i) {
      Status st = ReadTrace(data[i], "jaeger data[" + std::to_string(i) + "]", builder);
      if (!st.ok()) return st;
    }
    return OkStatus();
  }
  return ReadTrace(root, "jaeger trace", builder);
}

}  // namespace tracepager::routing::internal
