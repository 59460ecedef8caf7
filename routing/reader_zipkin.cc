// Zipkin v2 JSON: an array of spans (GET /api/v2/trace/{id}) or an array of traces, each an
// array of spans (GET /api/v2/traces).
//
// Zipkin needs more than field mapping, because a span id does not name one span:
//   - Fragments. A tracer may report one span in pieces with the same id (SmartThings: a
//     kind-less, time-less piece next to the SERVER half). Zipkin merges pieces whose local
//     endpoints agree; so do we (unless both pieces are timed differently, see Compatible),
//     filling each missing field from the later piece.
//   - B3 shared spans. The SERVER half of an RPC reuses its CLIENT's id (`shared: true`, but the
//     flag is not always set). The model needs unique ids and a client -> server edge, so the
//     SERVER half gets a fresh id (deterministic, unused in the trace) and the client's id as
//     its parent. Spans whose parentId is the shared id and whose service is the server's hang
//     under the server half (its local work); the rest stay under the client.
//   - Several SERVER halves may share one client id (SmartThings: five consumers of one send);
//     each becomes its own child of the client.
//   - Uninstrumented callees are named only by the CLIENT span's remoteEndpoint.serviceName,
//     which becomes Span::server_address (also for PRODUCER spans: the broker).
//   - An `error` tag fails the span whatever its value, even ""; an `error` annotation does not.
#include <unordered_map>
#include <unordered_set>

#include "routing/json_util.h"
#include "routing/reader_common.h"
#include "routing/reader_dom.h"

namespace tracepager::routing::internal {
namespace {

using rapidjson::Value;

struct RawSpan {
  TraceId trace_id;
  Span span;
  bool shared = false;
  std::string ipv4, ipv6;
  int port = 0;
  RawTime timestamp, duration;
  std::vector<std::string> problems;
  bool dropped = false;
  bool shared_half = false;  // a SERVER half given a fresh id under its client
  std::string path;
};

Status ReadEndpoint(const Value& span, const std::string& path, const char* field,
                    std::string* service, RawSpan* identity) {
  const Value* ep = Member(span, field);
  if (ep == nullptr) return OkStatus();
  if (!ep->IsObject()) return WrongType(path, field, *ep, "an object");
  std::string epath = path + "." + field;
  auto name = OptString(*ep, epath, "serviceName");
  if (!name.ok()) return name.error();
  *service = std::string(*name);
  if (identity != nullptr) {
    auto v4 = OptString(*ep, epath, "ipv4");
    auto v6 = OptString(*ep, epath, "ipv6");
    if (v4.ok()) identity->ipv4 = std::string(*v4);
    if (v6.ok()) identity->ipv6 = std::string(*v6);
    if (const Value* port = Member(*ep, "port"); port != nullptr && port->IsInt()) {
      identity->port = port->GetInt();
    }
  }
  return OkStatus();
}

Status ReadTags(const Value& tags, const std::string& path, Span& span) {
  if (!tags.IsObject()) return WrongType(path, "tags", tags, "an object of strings");
  SpanAttrs attrs;
  for (auto it = tags.MemberBegin(); it != tags.MemberEnd(); ++it) {
    std::string_view key(it->name.GetString(), it->name.GetStringLength());
    const Value& v = it->value;
    if (key == "error") {
      span.error_tag = true;  // any value, even "" or "false", is an error in Zipkin
      span.error_tag_value = v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : "";
      continue;
    }
    Attr attr = LookupAttr(key);
    if (attr == Attr::kNone) {
      if (key == "kafka.topic" && v.IsString()) {  // Brave's Kafka instrumentation
        if (span.messaging_destination.empty()) span.messaging_destination = v.GetString();
        if (span.messaging_system.empty()) span.messaging_system = "kafka";
      }
      continue;
    }
    attrs.Apply(span, attr, ToAttrValue(v));
  }
  attrs.Finish(span);
  return OkStatus();
}

Status ReadSpan(const Value& s, const std::string& path, RawSpan* out) {
  if (!s.IsObject())
    return Error::InvalidInput(path + " is " + JsonTypeName(s) + ", expected a span object");
  out->path = path;
  auto tid = OptString(s, path, "traceId");
  if (!tid.ok()) return tid.error();
  if (tid->empty()) return Missing(path, "traceId");
  if (!ParseHexTraceId(*tid, &out->trace_id) || out->trace_id.IsZero()) {
    return Error::InvalidInput(path + ": \"traceId\" is " + Quote(*tid) +
                               ", expected 16 or 32 hex digits, not all zero");
  }
  auto id = OptString(s, path, "id");
  if (!id.ok()) return id.error();
  if (id->empty()) return Missing(path, "id");
  Span& span = out->span;
  if (!ParseHexSpanId(*id, &span.span_id) || span.span_id == 0) {
    return Error::InvalidInput(path + ": \"id\" is " + Quote(*id) +
                               ", expected 16 hex digits, not all zero");
  }
  if (const Value* p = Member(s, "parentId")) {
    if (!p->IsString()) return WrongType(path, "parentId", *p, "a 16-hex-digit string");
    std::string_view text(p->GetString(), p->GetStringLength());
    if (!text.empty() && !ParseHexSpanId(text, &span.parent_id)) {
      return Error::InvalidInput(path + ": \"parentId\" is " + Quote(text) +
                                 ", expected 16 hex digits");
    }
  }
  auto name = OptString(s, path, "name");
  if (!name.ok()) return name.error();
  span.operation = std::string(*name);
  auto kind = OptString(s, path, "kind");
  if (!kind.ok()) return kind.error();
  span.kind = kind->empty() ? SpanKind::kUnspecified : SpanKindFromText(*kind);

  auto ts = TimeMember(s, path, "timestamp", "a number of microseconds");
  if (!ts.ok()) return ts.error();
  out->timestamp = *ts;
  auto dur = TimeMember(s, path, "duration", "a number of microseconds");
  if (!dur.ok()) return dur.error();
  out->duration = *dur;

  if (Status st = ReadEndpoint(s, path, "localEndpoint", &span.service, out); !st.ok()) return st;
  std::string remote;
  if (Status st = ReadEndpoint(s, path, "remoteEndpoint", &remote, nullptr); !st.ok()) return st;
  if (const Value* tags = Member(s, "tags")) {
    if (Status st = ReadTags(*tags, path, span); !st.ok()) return st;
  }
  if (!remote.empty() && (span.kind == SpanKind::kClient || span.kind == SpanKind::kProducer)) {
    span.server_address = remote;  // the peer's own name beats any host tag
  }
  if (const Value* shared = Member(s, "shared")) {
    if (!shared->IsBool()) return WrongType(path, "shared", *shared, "a bool");
    out->shared = shared->GetBool();
  }
  return OkStatus();
}

// Two reports with one id are pieces of one span when nothing tells them apart: local
// endpoints and kinds agree where both are given, and they do not both carry different start
// times. (Zipkin itself also merges complete reports from one endpoint; SmartThings has three
// `receive` SERVER halves from one host at different times, which are three deliveries.)
bool Compatible(const RawSpan& a, const RawSpan& b) {
  auto agree = [](const std::string& x, const std::string& y) {
    return x.empty() || y.empty() || x == y;
  };
  const bool both_timed = a.timestamp.state != RawTime::State::kMissing &&
                          b.timestamp.state != RawTime::State::kMissing;
  if (both_timed &&
      (a.timestamp.value != b.timestamp.value || a.timestamp.state != b.timestamp.state)) {
    return false;
  }
  return agree(a.span.service, b.span.service) && agree(a.ipv4, b.ipv4) && agree(a.ipv6, b.ipv6) &&
         (a.port == 0 || b.port == 0 || a.port == b.port) &&
         (a.span.kind == SpanKind::kUnspecified || b.span.kind == SpanKind::kUnspecified ||
          a.span.kind == b.span.kind);
}

// Fills what `keeper` lacks from another piece of the same span.
void MergeInto(RawSpan& keeper, RawSpan& piece) {
  Span& k = keeper.span;
  Span& p = piece.span;
  auto fill = [](std::string& dst, std::string& src) {
    if (dst.empty()) dst = std::move(src);
  };
  if (k.kind == SpanKind::kUnspecified) k.kind = p.kind;
  if (k.parent_id == 0) k.parent_id = p.parent_id;
  fill(k.service, p.service);
  fill(k.operation, p.operation);
  if (keeper.timestamp.state == RawTime::State::kMissing) keeper.timestamp = piece.timestamp;
  if (keeper.duration.state == RawTime::State::kMissing) keeper.duration = piece.duration;
  keeper.shared |= piece.shared;
  if (!k.http_status) k.http_status = p.http_status;
  if (!k.grpc_code) k.grpc_code = p.grpc_code;
  if (!k.error_tag) {
    k.error_tag = p.error_tag;
    k.error_tag_value = std::move(p.error_tag_value);
  }
  if (k.status == StatusCode::kUnset) {
    k.status = p.status;
    k.status_message = std::move(p.status_message);
  }
  fill(k.peer_service, p.peer_service);
  fill(k.db_system, p.db_system);
  fill(k.db_name, p.db_name);
  fill(k.server_address, p.server_address);
  fill(k.messaging_system, p.messaging_system);
  fill(k.messaging_destination, p.messaging_destination);
  if (keeper.ipv4.empty()) keeper.ipv4 = std::move(piece.ipv4);
  if (keeper.ipv6.empty()) keeper.ipv6 = std::move(piece.ipv6);
  if (keeper.port == 0) keeper.port = piece.port;
}

uint64_t FreshId(uint64_t shared_id, std::unordered_set<uint64_t>& used) {
  // An odd multiplier is a bijection on 64 bits, so distinct shared ids start from distinct
  // candidates; probing then skips ids already in the trace.
  uint64_t candidate = shared_id * 0x9E3779B97F4A7C15ull ^ 0x5EA7ED5EA7ED5EA7ull;
  while (candidate == 0 || used.count(candidate) != 0) ++candidate;
  used.insert(candidate);
  return candidate;
}

// Merges pieces and separates shared client/server halves of one trace, in place.
void JoinTrace(std::vector<RawSpan*>& spans, std::vector<std::string>& warnings) {
  std::unordered_map<uint64_t, std::vector<RawSpan*>> by_id;
  std::unordered_set<uint64_t> used;
  std::vector<uint64_t> order;  // ids in order of first appearance, for determinism
  for (RawSpan* s : spans) {
    auto& group = by_id[s->span.span_id];
    if (group.empty()) order.push_back(s->span.span_id);
    group.push_back(s);
    used.insert(s->span.span_id);
  }
  struct Half {
    std::string service;
    uint64_t id;
  };
  std::unordered_map<uint64_t, std::vector<Half>> server_halves;  // by the shared id
  for (uint64_t id : order) {
    std::vector<RawSpan*>& group = by_id[id];
    if (group.size() < 2) continue;
    for (size_t j = 1; j < group.size(); ++j) {
      for (size_t k = 0; k < j; ++k) {
        if (!group[k]->dropped && Compatible(*group[k], *group[j])) {
          MergeInto(*group[k], *group[j]);
          group[j]->dropped = true;
          break;
        }
      }
    }
    std::vector<RawSpan*> servers, others;
    for (RawSpan* s : group) {
      if (s->dropped) continue;
      (s->span.kind == SpanKind::kServer ? servers : others).push_back(s);
    }
    for (size_t j = 1; j < others.size(); ++j) {
      others[j]->dropped = true;
      warnings.push_back(others[j]->path + ": span " + SpanIdHex(id) +
                         " repeats the id of another non-server span; kept the first");
    }
    const bool have_client = !others.empty();
    for (size_t j = have_client ? 0 : 1; j < servers.size(); ++j) {
      RawSpan* s = servers[j];
      s->span.span_id = FreshId(id, used);
      if (have_client) {
        s->span.parent_id = id;
        s->shared_half = true;
        server_halves[id].push_back(Half{s->span.service, s->span.span_id});
      }
    }
  }
  if (server_halves.empty()) return;
  for (RawSpan* s : spans) {
    if (s->dropped || s->shared_half || s->span.parent_id == 0) continue;
    auto it = server_halves.find(s->span.parent_id);
    if (it == server_halves.end()) continue;
    for (const Half& h : it->second) {
      if (h.service == s->span.service) {
        s->span.parent_id = h.id;
        break;
      }
    }
  }
}

}  // namespace

Status ReadZipkin(const Value& root, TraceBuilder& builder) {
  if (!root.IsArray()) {
    return Error::InvalidInput(std::string("zipkin: the document is ") + JsonTypeName(root) +
                               ", expected an array of spans or of traces");
  }
  std::vector<RawSpan> raw;
  size_t count = 0;
  for (rapidjson::SizeType i = 0; i < root.Size(); ++i) {
    count += root[i].IsArray() ? root[i].Size() : 1;
  }
  if (count > builder.limits().max_spans) {
    return Error::InvalidInput("zipkin: the document holds " + std::to_string(count) +
                               " spans, more than " + std::to_string(builder.limits().max_spans) +
                               " (ReadLimits::max_spans)");
  }
  raw.reserve(count);
  for (rapidjson::SizeType i = 0; i < root.Size(); ++i) {
    const Value& e = root[i];
    if (e.IsArray()) {
      for (rapidjson::SizeType j = 0; j < e.Size(); ++j) {
        raw.emplace_back();
        std::string path = "zipkin trace " + std::to_string(i) + " span " + std::to_string(j);
        if (Status st = ReadSpan(e[j], path, &raw.back()); !st.ok()) return st;
      }
    } else {
      raw.emplace_back();
      if (Status st = ReadSpan(e, "zipkin span " + std::to_string(i), &raw.back()); !st.ok()) {
        return st;
      }
    }
  }

  // Group by trace id, in order of first appearance, then join each trace's halves.
  std::unordered_map<TraceId, size_t, TraceIdHash> index;
  std::vector<std::vector<RawSpan*>> traces;
  for (RawSpan& r : raw) {
    auto [it, inserted] = index.try_emplace(r.trace_id, traces.size());
    if (inserted) traces.emplace_back();
    traces[it->second].push_back(&r);
  }
  for (std::vector<RawSpan*>& spans : traces) {
    std::vector<std::string> warnings;
    JoinTrace(spans, warnings);
    const TraceId trace_id = spans.front()->trace_id;
    for (RawSpan* r : spans) {
      if (r->dropped) continue;
      bool timing_known = SetTimingFromMicros(r->span, r->timestamp, r->duration, &r->problems);
      std::string label = "span " + SpanIdHex(r->span.span_id) + " (" + r->span.service + " " +
                          r->span.operation + "): ";
      if (Status st = builder.Add(trace_id, std::move(r->span), timing_known); !st.ok()) return st;
      for (std::string& p : r->problems) builder.Warn(trace_id, label + p);
    }
    for (std::string& w : warnings) builder.Warn(trace_id, std::move(w));
  }
  return OkStatus();
}

}  // namespace tracepager::routing::internal
