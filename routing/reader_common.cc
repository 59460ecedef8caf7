#include "routing/reader_common.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "routing/failure.h"

namespace tracepager::routing::internal {
namespace {

// A trace with thousands of orphans should not carry thousands of lines; the first ones show
// the pattern.
constexpr size_t kMaxWarningsPerTrace = 100;
// How far up the parent chain Finish looks for a known start time for a span without one.
constexpr int kMaxTimingHops = 64;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool AllHex(std::string_view s) {
  for (char c : s) {
    if (HexValue(c) < 0) return false;
  }
  return !s.empty();
}

// Parses up to 16 hex digits.
bool ParseHex64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int h = HexValue(c);
    if (h < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(h);
  }
  *out = v;
  return true;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;  // standard and URL-safe alphabets
  if (c == '/' || c == '_') return 63;
  return -1;
}

// Decodes base64 (padding optional) into exactly `want` bytes.
bool DecodeBase64(std::string_view s, uint8_t* out, size_t want) {
  while (!s.empty() && s.back() == '=') s.remove_suffix(1);
  if ((s.size() * 6) / 8 != want) return false;
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (char c : s) {
    int v = Base64Value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n >= want) return false;
      out[n++] = static_cast<uint8_t>((acc >> bits) & 0xFF);
    }
  }
  return n == want;
}

uint64_t BigEndian64(const uint8_t* b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
  return v;
}

std::string ValueText(const AttrValue& v) {
  switch (v.type) {
    case AttrValue::Type::kString:
      return std::string(v.str);
    case AttrValue::Type::kInt:
      return std::to_string(v.i);
    case AttrValue::Type::kBool:
      return v.b ? "true" : "false";
    case AttrValue::Type::kDouble: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", v.d);
      return buf;
    }
    case AttrValue::Type::kOther:
      break;
  }
  return {};
}

// An integer from an int, a whole double or a decimal string.
std::optional<int64_t> ValueInt(const AttrValue& v) {
  switch (v.type) {
    case AttrValue::Type::kInt:
      return v.i;
    case AttrValue::Type::kString:
      return ParseInt64(v.str);
    case AttrValue::Type::kDouble:
      if (std::isfinite(v.d) && v.d == std::floor(v.d) && std::fabs(v.d) < 1e15) {
        return static_cast<int64_t>(v.d);
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::optional<StatusCode> StatusFromText(std::string_view s) {
  if (s.size() > 12 && EqualsIgnoreCase(s.substr(0, 12), "STATUS_CODE_")) s.remove_prefix(12);
  if (EqualsIgnoreCase(s, "ERROR")) return StatusCode::kError;
  if (EqualsIgnoreCase(s, "OK")) return StatusCode::kOk;
  if (EqualsIgnoreCase(s, "UNSET")) return StatusCode::kUnset;
  return std::nullopt;
}

}  // namespace

std::string TraceIdHex(const TraceId& id) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(id.hi),
                static_cast<unsigned long long>(id.lo));
  return buf;
}

bool ParseHexTraceId(std::string_view s, TraceId* out) {
  if (s.empty() || s.size() > 32 || !AllHex(s)) return false;
  TraceId id;
  if (s.size() > 16) {
    if (!ParseHex64(s.substr(0, s.size() - 16), &id.hi)) return false;
    s.remove_prefix(s.size() - 16);
  }
  if (!ParseHex64(s, &id.lo)) return false;
  *out = id;
  return true;
}

bool ParseHexSpanId(std::string_view s, uint64_t* out) { return ParseHex64(s, out); }

// The OTLP spec says hex, but plain protobuf-JSON marshallers (Tempo's /api/traces) write
// base64. Canonical-length hex is taken as hex; strings that cannot be hex are tried as base64
// of the right size; shorter hex (leading zeros dropped) comes last. A base64 id that happens
// to be all hex digits and of canonical hex length cannot be told apart; hex wins, as the
// spec requires.
bool ParseOtlpTraceId(std::string_view s, TraceId* out) {
  if ((s.size() == 32 || s.size() == 16) && AllHex(s)) return ParseHexTraceId(s, out);
  uint8_t b[16];
  if (DecodeBase64(s, b, 16)) {
    *out = TraceId{BigEndian64(b), BigEndian64(b + 8)};
    return true;
  }
  if (DecodeBase64(s, b, 8) && !AllHex(s)) {
    *out = TraceId{0, BigEndian64(b)};
    return true;
  }
  return ParseHexTraceId(s, out);
}

bool ParseOtlpSpanId(std::string_view s, uint64_t* out) {
  if (s.size() == 16 && AllHex(s)) return ParseHex64(s, out);
  uint8_t b[8];
  if (!AllHex(s) && DecodeBase64(s, b, 8)) {
    *out = BigEndian64(b);
    return true;
  }
  return ParseHex64(s, out);
}

std::optional<int64_t> ParseInt64(std::string_view s) {
  bool neg = false;
  if (!s.empty() && s[0] == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  auto u = ParseUint64(s);
  if (!u) return std::nullopt;
  if (neg) {
    if (*u > static_cast<uint64_t>(INT64_MAX) + 1) return std::nullopt;
    return static_cast<int64_t>(0 - *u);
  }
  if (*u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return static_cast<int64_t>(*u);
}

std::optional<uint64_t> ParseUint64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

Attr LookupAttr(std::string_view k) {
  // Dispatch on length first: nearly every attribute a span carries is one routing ignores,
  // and most of them are rejected by one size comparison.
  switch (k.size()) {
    case 5:
      if (k == "error") return Attr::kError;
      break;
    case 7:
      if (k == "db.name") return Attr::kDbName;
      if (k == "db.type") return Attr::kDbType;
      break;
    case 9:
      if (k == "span.kind") return Attr::kSpanKind;
      if (k == "db.system") return Attr::kDbSystem;
      break;
    case 11:
      if (k == "db.instance") return Attr::kDbInstance;
      break;
    case 12:
      if (k == "peer.service") return Attr::kPeerService;
      if (k == "service.name") return Attr::kServiceName;
      if (k == "db.namespace") return Attr::kDbNamespace;
      break;
    case 13:
      if (k == "peer.hostname") return Attr::kPeerHostname;
      if (k == "net.peer.name") return Attr::kNetPeerName;
      break;
    case 14:
      if (k == "db.system.name") return Attr::kDbSystemName;
      if (k == "server.address") return Attr::kServerAddress;
      if (k == "exception.type") return Attr::kExceptionType;
      break;
    case 16:
      if (k == "http.status_code") return Attr::kHttpStatusOld;
      if (k == "otel.status_code") return Attr::kOtelStatusCode;
      if (k == "grpc.status_code") return Attr::kGrpcStatusLegacy;
      if (k == "messaging.system") return Attr::kMessagingSystem;
      break;
    case 17:
      if (k == "exception.message") return Attr::kExceptionMessage;
      break;
    case 20:
      if (k == "rpc.grpc.status_code") return Attr::kRpcGrpcStatus;
      break;
    case 21:
      if (k == "messaging.destination") return Attr::kMessagingDest;
      break;
    case 23:
      if (k == "otel.status_description") return Attr::kOtelStatusDesc;
      if (k == "message_bus.destination") return Attr::kMessageBusDest;
      break;
    case 24:
      if (k == "rpc.response.status_code") return Attr::kRpcResponseStatus;
      break;
    case 25:
      if (k == "http.response.status_code") return Attr::kHttpStatusNew;
      break;
    case 26:
      if (k == "messaging.destination.name") return Attr::kMessagingDestName;
      break;
    default:
      break;
  }
  return Attr::kNone;
}

SpanKind SpanKindFromText(std::string_view s) {
  if (s.size() > 10 && EqualsIgnoreCase(s.substr(0, 10), "SPAN_KIND_")) s.remove_prefix(10);
  if (EqualsIgnoreCase(s, "server")) return SpanKind::kServer;
  if (EqualsIgnoreCase(s, "client")) return SpanKind::kClient;
  if (EqualsIgnoreCase(s, "producer")) return SpanKind::kProducer;
  if (EqualsIgnoreCase(s, "consumer")) return SpanKind::kConsumer;
  if (EqualsIgnoreCase(s, "internal")) return SpanKind::kInternal;
  return SpanKind::kUnspecified;
}

void SpanAttrs::Reset() {
  std::fill(std::begin(priority_), std::end(priority_), uint8_t{0});
  tag_status_.reset();
  tag_status_message_.clear();
  tag_kind_ = SpanKind::kUnspecified;
}

bool SpanAttrs::Claim(Field f, uint8_t priority) {
  if (priority_[f] > priority) return false;
  priority_[f] = priority;
  return true;
}

void SpanAttrs::Apply(Span& span, Attr attr, const AttrValue& v) {
  switch (attr) {
    case Attr::kHttpStatusNew:
    case Attr::kHttpStatusOld: {
      auto n = ValueInt(v);
      if (!n || *n < 0 || *n > 999) return;
      if (Claim(kHttp, attr == Attr::kHttpStatusNew ? 2 : 1))
        span.http_status = static_cast<int>(*n);
      return;
    }
    case Attr::kRpcResponseStatus:
    case Attr::kRpcGrpcStatus:
    case Attr::kGrpcStatusLegacy: {
      std::optional<int64_t> n;
      if (v.type == AttrValue::Type::kString) {
        if (auto c = GrpcCodeFromText(v.str)) n = *c;
      } else {
        n = ValueInt(v);
      }
      if (!n || *n < 0 || *n > 1000) return;
      uint8_t p = attr == Attr::kRpcResponseStatus ? 3 : attr == Attr::kRpcGrpcStatus ? 2 : 1;
      if (Claim(kGrpc, p)) span.grpc_code = static_cast<int>(*n);
      return;
    }
    case Attr::kError:
      // OpenTracing's `error` is a bool; Jaeger also sees the string "true" (the anonymizer
      // fixture, the v1->v3 converter) and its UI accepts exactly true and "true".
      if (v.type == AttrValue::Type::kBool) {
        span.error_tag = v.b;
        span.error_tag_value = v.b ? "true" : "false";
      } else if (v.type == AttrValue::Type::kString) {
        span.error_tag = EqualsIgnoreCase(v.str, "true");
        span.error_tag_value = std::string(v.str);
      }
      return;
    case Attr::kPeerService:
      span.peer_service = ValueText(v);
      return;
    case Attr::kDbSystemName:
    case Attr::kDbSystem:
    case Attr::kDbType:
      if (Claim(kDbSystemF, attr == Attr::kDbSystemName ? 3 : attr == Attr::kDbSystem ? 2 : 1)) {
        span.db_system = ValueText(v);
      }
      return;
    case Attr::kDbNamespace:
    case Attr::kDbName:
    case Attr::kDbInstance:
      if (Claim(kDbNameF, attr == Attr::kDbNamespace ? 3 : attr == Attr::kDbName ? 2 : 1)) {
        span.db_name = ValueText(v);
      }
      return;
    case Attr::kServerAddress:
    case Attr::kNetPeerName:
    case Attr::kPeerHostname:
      if (Claim(kServerAddressF, attr == Attr::kServerAddress ? 3
                                 : attr == Attr::kNetPeerName ? 2
                                                              : 1)) {
        span.server_address = ValueText(v);
      }
      return;
    case Attr::kMessagingSystem:
      span.messaging_system = ValueText(v);
      return;
    case Attr::kMessagingDestName:
    case Attr::kMessagingDest:
    case Attr::kMessageBusDest:
      if (Claim(kMessagingDestF, attr == Attr::kMessagingDestName ? 3
                                 : attr == Attr::kMessagingDest   ? 2
                                                                  : 1)) {
        span.messaging_destination = ValueText(v);
      }
      return;
    case Attr::kOtelStatusCode:
      if (v.type == AttrValue::Type::kString) {
        tag_status_ = StatusFromText(v.str);
      } else if (auto n = ValueInt(v); n && *n >= 0 && *n <= 2) {
        tag_status_ = static_cast<StatusCode>(*n);
      }
      return;
    case Attr::kOtelStatusDesc:
      tag_status_message_ = ValueText(v);
      return;
    case Attr::kSpanKind:
      if (v.type == AttrValue::Type::kString) tag_kind_ = SpanKindFromText(v.str);
      return;
    case Attr::kNone:
    case Attr::kServiceName:
    case Attr::kExceptionType:
    case Attr::kExceptionMessage:
      return;
  }
}

void SpanAttrs::Finish(Span& span) {
  if (span.status == StatusCode::kUnset && tag_status_) span.status = *tag_status_;
  if (span.status != StatusCode::kUnset && span.status_message.empty()) {
    span.status_message = std::move(tag_status_message_);
  }
  if (span.kind == SpanKind::kUnspecified) span.kind = tag_kind_;
}

// ---- Time ---------------------------------------------------------------------------------

namespace {

std::string RawText(const RawTime& t) { return t.text.empty() ? std::to_string(t.value) : t.text; }

}  // namespace

bool SetTimingFromEnd(Span& span, const RawTime& start, const RawTime& end,
                      std::vector<std::string>* problems) {
  span.start_ns = 0;
  span.duration_ns = 0;
  // proto3 JSON omits zero values, so a 0 start is the same as a missing one.
  if (start.state == RawTime::State::kMissing ||
      (start.state == RawTime::State::kOk && start.value == 0)) {
    problems->push_back("no startTimeUnixNano; timing unknown");
    return false;
  }
  if (start.state == RawTime::State::kOutOfRange || start.value < 0) {
    problems->push_back("startTimeUnixNano " + RawText(start) +
                        " is out of range (before 1970 or after 2262); timing ignored");
    return false;
  }
  span.start_ns = start.value;
  if (end.state == RawTime::State::kMissing ||
      (end.state == RawTime::State::kOk && end.value == 0)) {
    problems->push_back("no endTimeUnixNano; duration set to 0");
  } else if (end.state == RawTime::State::kOutOfRange || end.value < 0) {
    problems->push_back("endTimeUnixNano " + RawText(end) +
                        " is out of range (before 1970 or after 2262); duration set to 0");
  } else if (end.value < start.value) {
    problems->push_back("endTimeUnixNano is " + std::to_string(start.value - end.value) +
                        " ns before startTimeUnixNano; duration set to 0");
  } else {
    span.duration_ns = end.value - start.value;
  }
  return true;
}

bool SetTimingFromMicros(Span& span, const RawTime& start, const RawTime& duration,
                         std::vector<std::string>* problems) {
  constexpr int64_t kMaxMicros = kMaxTimeNs / 1000;
  span.start_ns = 0;
  span.duration_ns = 0;
  if (start.state == RawTime::State::kMissing ||
      (start.state == RawTime::State::kOk && start.value == 0)) {
    problems->push_back("no start time; timing unknown");
    // A Zipkin piece without a timestamp may still say how long it ran.
    if (duration.state == RawTime::State::kOk && duration.value >= 0 &&
        duration.value <= kMaxMicros) {
      span.duration_ns = duration.value * 1000;
    }
    return false;
  }
  if (start.state == RawTime::State::kOutOfRange || start.value < 0 || start.value > kMaxMicros) {
    problems->push_back("start time " + RawText(start) +
                        " us is out of range (before 1970 or after 2262); timing ignored");
    return false;
  }
  span.start_ns = start.value * 1000;
  if (duration.state == RawTime::State::kMissing) return true;  // Zipkin: in flight or one-way
  if (duration.state == RawTime::State::kOutOfRange || duration.value < 0) {
    problems->push_back("duration " + RawText(duration) +
                        " us is negative or out of range; set to 0");
    return true;
  }
  const int64_t room = kMaxTimeNs - span.start_ns;
  if (duration.value > room / 1000) {
    problems->push_back("duration " + RawText(duration) + " us ends after 2262; clamped");
    span.duration_ns = room;
  } else {
    span.duration_ns = duration.value * 1000;
  }
  return true;
}

// ---- TraceBuilder -------------------------------------------------------------------------

size_t TraceBuilder::IndexOf(const TraceId& id) {
  if (last_index_ != static_cast<size_t>(-1) && id == last_id_) return last_index_;
  auto [it, inserted] = index_.try_emplace(id, traces_.size());
  if (inserted) {
    traces_.emplace_back();
    traces_.back().trace.trace_id = TraceIdHex(id);
  }
  last_id_ = id;
  last_index_ = it->second;
  return last_index_;
}

Status TraceBuilder::Add(const TraceId& id, Span&& span, bool timing_known) {
  if (total_spans_ >= limits_.max_spans) {
    return Error::InvalidInput("the document holds more than " + std::to_string(limits_.max_spans) +
                               " spans (ReadLimits::max_spans)");
  }
  ++total_spans_;
  Pending& p = traces_[IndexOf(id)];
  p.trace.spans.push_back(std::move(span));
  p.timing_known.push_back(timing_known);
  return OkStatus();
}

void TraceBuilder::Warn(const TraceId& id, std::string warning) {
  AddWarning(traces_[IndexOf(id)], std::move(warning));
}

void TraceBuilder::AddWarning(Pending& p, std::string warning) {
  if (p.trace.warnings.size() >= kMaxWarningsPerTrace) {
    ++p.warning_overflow;
    return;
  }
  p.trace.warnings.push_back(std::move(warning));
}

std::vector<Trace> TraceBuilder::Finish() {
  std::vector<Trace> out;
  out.reserve(traces_.size());
  for (Pending& p : traces_) {
    FinishTrace(p);
    out.push_back(std::move(p.trace));
  }
  traces_.clear();
  index_.clear();
  last_index_ = static_cast<size_t>(-1);
  return out;
}

namespace {

std::string Describe(const Span& s) {
  return "span " + SpanIdHex(s.span_id) + " (" + (s.service.empty() ? "?" : s.service) + " " +
         s.operation + ")";
}

}  // namespace

void TraceBuilder::FinishTrace(Pending& p) {
  std::vector<Span>& spans = p.trace.spans;
  const size_t n = spans.size();
  constexpr uint32_t kNoParent = UINT32_MAX;

  // Duplicates: keep the first span with each id, compacting in place.
  std::unordered_map<uint64_t, uint32_t> pos;
  pos.reserve(n);
  size_t w = 0;
  for (size_t i = 0; i < n; ++i) {
    auto [it, inserted] = pos.try_emplace(spans[i].span_id, static_cast<uint32_t>(w));
    if (!inserted) {
      AddWarning(p, Describe(spans[i]) + ": duplicate span id; kept the first span with it");
      continue;
    }
    if (w != i) {
      spans[w] = std::move(spans[i]);
      p.timing_known[w] = p.timing_known[i];
    }
    ++w;
  }
  spans.resize(w);
  p.timing_known.resize(w);

  // Orphans: a parent the trace does not hold. The span becomes a root of its own subtree.
  std::vector<uint32_t> parent(w, kNoParent);
  for (size_t i = 0; i < w; ++i) {
    Span& s = spans[i];
    if (s.parent_id == 0) continue;
    auto it = pos.find(s.parent_id);
    if (it == pos.end()) {
      AddWarning(p, Describe(s) + ": parent " + SpanIdHex(s.parent_id) +
                        " is not in the trace (orphan); treated as a root");
      s.missing_parent_id = s.parent_id;
      s.parent_id = 0;
    } else {
      parent[i] = it->second;
    }
  }

  // Cycles: follow each chain once (0 = unvisited, 1 = on the current chain, 2 = done). A
  // chain that meets itself is a cycle; its earliest-starting span becomes a root.
  std::vector<uint8_t> state(w, 0);
  std::vector<uint32_t> chain;
  for (size_t i = 0; i < w; ++i) {
    uint32_t cur = static_cast<uint32_t>(i);
    while (cur != kNoParent && state[cur] == 0) {
      state[cur] = 1;
      chain.push_back(cur);
      cur = parent[cur];
    }
    if (cur != kNoParent && state[cur] == 1) {
      auto first = std::find(chain.begin(), chain.end(), cur);
      uint32_t breaker = *first;
      std::string text;
      size_t shown = 0;
      for (auto it = first; it != chain.end(); ++it) {
        const Span& s = spans[*it];
        const Span& b = spans[breaker];
        if (p.timing_known[*it] && (!p.timing_known[breaker] || s.start_ns < b.start_ns ||
                                    (s.start_ns == b.start_ns && *it < breaker))) {
          breaker = *it;
        }
        if (shown++ < 6) text += SpanIdHex(s.span_id) + " -> ";
      }
      text += shown > 6 ? "... -> " + SpanIdHex(spans[cur].span_id) : SpanIdHex(spans[cur].span_id);
      AddWarning(p, "parent cycle " + text + "; " + Describe(spans[breaker]) + " made a root");
      spans[breaker].parent_id = 0;
      parent[breaker] = kNoParent;
    }
    for (uint32_t c : chain) state[c] = 2;
    chain.clear();
  }

  // Unknown timing: borrow the nearest ancestor's start, else the trace's earliest start, so
  // offsets and orderings stay sane; the reader already warned.
  int64_t earliest = 0;
  for (size_t i = 0; i < w; ++i) {
    if (p.timing_known[i] && (earliest == 0 || spans[i].start_ns < earliest)) {
      earliest = spans[i].start_ns;
    }
  }
  for (size_t i = 0; i < w; ++i) {
    if (p.timing_known[i]) continue;
    int64_t start = earliest;
    uint32_t cur = parent[i];
    for (int hops = 0; cur != kNoParent && hops < kMaxTimingHops; ++hops, cur = parent[cur]) {
      if (p.timing_known[cur]) {
        start = spans[cur].start_ns;
        break;
      }
    }
    spans[i].start_ns = start;
    if (spans[i].duration_ns > kMaxTimeNs - start) spans[i].duration_ns = kMaxTimeNs - start;
  }

  size_t unnamed = 0;
  for (Span& s : spans) {
    if (s.service.empty()) {
      s.service = kUnknownService;
      ++unnamed;
    }
    ClassifyFailure(s);
  }
  if (unnamed > 0) {
    AddWarning(p, std::to_string(unnamed) + " span(s) name no service; called " +
                      std::string(kUnknownService));
  }
  if (p.warning_overflow > 0) {
    p.trace.warnings.push_back("... and " + std::to_string(p.warning_overflow) + " more warnings");
  }
}

}  // namespace tracepager::routing::internal
