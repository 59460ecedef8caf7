// JSON Lines form of audit records. The schema is docs/audit-log.md; a change to a key here is a
// change there, and a change that old readers would misread needs kAuditSchemaVersion + 1.
#include "daemon/audit_record.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <set>

#include "routing/decision_format.h"
#include "routing/decision_parse.h"
#include "routing/json_fields.h"

namespace tracepager::daemon {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;
using rapidjson::Value;

using routing::json::GetBool;
using routing::json::GetString;
using routing::json::GetStrings;
using routing::json::Member;
using routing::json::TypeError;
using routing::json::WriteString;
using routing::json::WriteStringMember;
using routing::json::WriteStrings;

// Times of 0 are unknown and left out rather than written as 1970.
void KeyTime(JsonWriter& w, const char* key, int64_t ns) {
  if (ns <= 0) return;
  w.Key(key);
  WriteString(w, FormatAuditTime(ns));
}

void KeyMillis(JsonWriter& w, const char* key, std::chrono::microseconds us) {
  w.Key(key);
  w.Double(static_cast<double>(us.count()) / 1000.0);
}

void WriteAlert(JsonWriter& w, const AuditAlert& a) {
  w.StartObject();
  WriteStringMember(w, "identity", a.identity);
  WriteStringMember(w, "source", a.source);
  WriteStringMember(w, "name", a.name);
  WriteStringMember(w, "status", a.status);
  WriteStringMember(w, "severity", a.severity);
  WriteStringMember(w, "summary", ScrubText(a.summary));
  KeyTime(w, "received", a.received_ns);
  KeyTime(w, "starts_at", a.starts_at_ns);
  w.Key("labels");
  w.StartObject();
  for (const auto& [k, v] : a.labels) {
    WriteString(w, k);
    WriteString(w, ScrubText(v));
  }
  w.EndObject();
  w.Key("grouped_identities");
  WriteStrings(w, a.grouped_identities);
  w.EndObject();
}

void WriteFetch(JsonWriter& w, const AuditFetch& f) {
  w.StartObject();
  w.Key("traces");
  w.StartArray();
  for (const AuditTraceFetch& t : f.traces) {
    w.StartObject();
    WriteStringMember(w, "trace_id", t.trace_id);
    WriteStringMember(w, "origin", t.origin);
    WriteStringMember(w, "backend", t.backend);
    w.Key("used");
    w.Bool(t.used);
    WriteStringMember(w, "error", ScrubText(t.error));
    w.EndObject();
  }
  w.EndArray();
  if (f.search) {
    const AuditTraceSearch& s = *f.search;
    w.Key("search");
    w.StartObject();
    WriteStringMember(w, "backend", s.backend);
    WriteStringMember(w, "service", s.service);
    KeyTime(w, "start", s.start_ns);
    KeyTime(w, "end", s.end_ns);
    w.Key("limit");
    w.Uint(s.limit);
    w.Key("found");
    w.Uint(s.found);
    WriteStringMember(w, "error", ScrubText(s.error));
    w.EndObject();
  }
  w.EndObject();
}

std::string TargetRedacted(const AuditTarget& t) {
  std::string out = RedactUrl(t.endpoint);
  if (!t.secret.empty()) {
    if (!out.empty()) out.push_back(' ');
    out += "key " + SecretFingerprint(t.secret);
  }
  return out;
}

// Values a delivery record must never contain: the secret, the endpoint and the endpoint's path
// (a Slack webhook URL is a credential as a whole; its path alone is too).
std::vector<std::string> TargetSecrets(const AuditTarget& t) {
  std::vector<std::string> out = t.other_secrets;
  if (!t.secret.empty()) out.push_back(t.secret);
  if (!t.endpoint.empty()) {
    out.push_back(t.endpoint);
    size_t scheme = t.endpoint.find("://");
    size_t path = scheme == std::string::npos ? std::string::npos
                                              : t.endpoint.find_first_of("/?#", scheme + 3);
    if (path != std::string::npos && t.endpoint.size() - path > 1) {
      out.push_back(t.endpoint.substr(path));
    }
  }
  return out;
}

// Reading ---------------------------------------------------------------------------------

// The common getters (GetString, GetBool, GetStrings) are routing's (routing/json_fields.h);
// these read the audit log's own kinds of value.
template <typename Int>
Status GetInt(const Value& obj, const char* key, std::string_view path, Int* out) {
  const Value* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->IsInt64()) return TypeError(path, key, "an integer");
  *out = static_cast<Int>(v->GetInt64());
  return OkStatus();
}

Status GetTime(const Value& obj, const char* key, std::string_view path, int64_t* out) {
  std::string text;
  if (Status s = GetString(obj, key, path, &text); !s.ok()) return s;
  if (text.empty()) return OkStatus();
  Result<int64_t> t = ParseAuditTime(text);
  if (!t.ok()) return Error::InvalidInput(std::string(path) + "." + key + ": " + t.error().message);
  *out = *t;
  return OkStatus();
}

Status GetMillis(const Value& obj, const char* key, std::string_view path,
                 std::chrono::microseconds* out) {
  const Value* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->IsNumber()) return TypeError(path, key, "a number");
  *out = std::chrono::microseconds(std::llround(v->GetDouble() * 1000.0));
  return OkStatus();
}

// Runs each getter in turn and stops at the first failure.
template <typename... Fs>
Status All(Fs&&... steps) {
  Status s = OkStatus();
  ((s.ok() ? (void)(s = steps()) : (void)0), ...);
  return s;
}

Result<AuditAlert> ParseAlert(const Value& v) {
  if (!v.IsObject()) return Error::InvalidInput("alert: expected an object");
  AuditAlert a;
  const char* p = "alert";
  Status s = All([&] { return GetString(v, "identity", p, &a.identity); },
                 [&] { return GetString(v, "source", p, &a.source); },
                 [&] { return GetString(v, "name", p, &a.name); },
                 [&] { return GetString(v, "status", p, &a.status); },
                 [&] { return GetString(v, "severity", p, &a.severity); },
                 [&] { return GetString(v, "summary", p, &a.summary); },
                 [&] { return GetTime(v, "received", p, &a.received_ns); },
                 [&] { return GetTime(v, "starts_at", p, &a.starts_at_ns); },
                 [&] { return GetStrings(v, "grouped_identities", p, &a.grouped_identities); });
  if (!s.ok()) return s.error();
  if (const Value* labels = Member(v, "labels")) {
    if (!labels->IsObject()) return Error::InvalidInput("alert.labels: expected an object");
    for (const auto& m : labels->GetObject()) {
      if (!m.value.IsString()) return Error::InvalidInput("alert.labels: expected string values");
      a.labels.emplace(std::string(m.name.GetString(), m.name.GetStringLength()),
                       std::string(m.value.GetString(), m.value.GetStringLength()));
    }
  }
  return a;
}

Result<AuditFetch> ParseFetch(const Value& v) {
  if (!v.IsObject()) return Error::InvalidInput("fetch: expected an object");
  AuditFetch f;
  if (const Value* traces = Member(v, "traces")) {
    if (!traces->IsArray()) return Error::InvalidInput("fetch.traces: expected an array");
    size_t i = 0;
    for (const Value& item : traces->GetArray()) {
      std::string p = "fetch.traces[" + std::to_string(i++) + "]";
      if (!item.IsObject()) return Error::InvalidInput(p + ": expected an object");
      AuditTraceFetch t;
      Status s = All([&] { return GetString(item, "trace_id", p, &t.trace_id); },
                     [&] { return GetString(item, "origin", p, &t.origin); },
                     [&] { return GetString(item, "backend", p, &t.backend); },
                     [&] { return GetBool(item, "used", p, &t.used); },
                     [&] { return GetString(item, "error", p, &t.error); });
      if (!s.ok()) return s.error();
      f.traces.push_back(std::move(t));
    }
  }
  if (const Value* search = Member(v, "search")) {
    const char* p = "fetch.search";
    if (!search->IsObject()) return Error::InvalidInput("fetch.search: expected an object");
    AuditTraceSearch s;
    Status st = All([&] { return GetString(*search, "backend", p, &s.backend); },
                    [&] { return GetString(*search, "service", p, &s.service); },
                    [&] { return GetTime(*search, "start", p, &s.start_ns); },
                    [&] { return GetTime(*search, "end", p, &s.end_ns); },
                    [&] { return GetInt(*search, "limit", p, &s.limit); },
                    [&] { return GetInt(*search, "found", p, &s.found); },
                    [&] { return GetString(*search, "error", p, &s.error); });
    if (!st.ok()) return st.error();
    f.search = std::move(s);
  }
  return f;
}

Result<DecisionAudit> ParseDecision(const Value& v) {
  DecisionAudit d;
  Status s = All([&] { return GetString(v, "id", "record", &d.id); },
                 [&] { return GetTime(v, "time", "record", &d.time_ns); },
                 [&] { return GetString(v, "symptom_reason", "record", &d.symptom_reason); });
  if (!s.ok()) return s.error();
  if (d.id.empty()) return Error::InvalidInput("decision record without an id");
  if (const Value* alert = Member(v, "alert")) {
    Result<AuditAlert> a = ParseAlert(*alert);
    if (!a.ok()) return a.error();
    d.alert = std::move(*a);
  }
  if (const Value* fetch = Member(v, "fetch")) {
    Result<AuditFetch> f = ParseFetch(*fetch);
    if (!f.ok()) return f.error();
    d.fetch = std::move(*f);
  }
  const Value* route = Member(v, "route");
  if (!route) return Error::InvalidInput("decision record without \"route\"");
  Result<routing::Decision> decision = routing::DecisionFromJsonValue(*route);
  if (!decision.ok()) return Error::InvalidInput("route: " + decision.error().message);
  d.decision = std::move(*decision);
  if (const Value* pages = Member(v, "pages")) {
    if (!pages->IsArray()) return Error::InvalidInput("pages: expected an array");
    size_t i = 0;
    for (const Value& item : pages->GetArray()) {
      std::string p = "pages[" + std::to_string(i++) + "]";
      if (!item.IsObject()) return Error::InvalidInput(p + ": expected an object");
      AuditPlannedPage page;
      Status ps = All([&] { return GetString(item, "team", p, &page.team); },
                      [&] { return GetString(item, "action", p, &page.action); },
                      [&] { return GetString(item, "target_kind", p, &page.target_kind); },
                      [&] { return GetString(item, "target_name", p, &page.target_name); },
                      [&] { return GetString(item, "dedup_key", p, &page.dedup_key); },
                      [&] { return GetString(item, "fallback_for", p, &page.fallback_for); });
      if (!ps.ok()) return ps.error();
      d.pages.push_back(std::move(page));
    }
  }
  if (const Value* t = Member(v, "timings_ms")) {
    const char* p = "timings_ms";
    if (!t->IsObject()) return Error::InvalidInput("timings_ms: expected an object");
    Status ts = All([&] { return GetMillis(*t, "queue_wait", p, &d.timings.queue_wait); },
                    [&] { return GetMillis(*t, "fetch", p, &d.timings.fetch); },
                    [&] { return GetMillis(*t, "route", p, &d.timings.route); },
                    [&] { return GetMillis(*t, "total", p, &d.timings.total); });
    if (!ts.ok()) return ts.error();
  }
  return d;
}

Result<DeliveryAudit> ParseDelivery(const Value& v) {
  DeliveryAudit d;
  std::string outcome;
  const char* r = "record";
  Status s = All([&] { return GetString(v, "decision_id", r, &d.decision_id); },
                 [&] { return GetTime(v, "time", r, &d.time_ns); },
                 [&] { return GetString(v, "alert_identity", r, &d.alert_identity); },
                 [&] { return GetString(v, "action", r, &d.action); },
                 [&] { return GetString(v, "team", r, &d.team); },
                 [&] { return GetString(v, "dedup_key", r, &d.dedup_key); },
                 [&] { return GetString(v, "fallback_for", r, &d.fallback_for); },
                 [&] { return GetString(v, "outcome", r, &outcome); },
                 [&] { return GetTime(v, "accepted", r, &d.accepted_ns); },
                 [&] { return GetString(v, "rerouted_to", r, &d.rerouted_to); },
                 [&] { return GetString(v, "detail", r, &d.detail); });
  if (!s.ok()) return s.error();
  static constexpr DeliveryOutcome kAll[] = {
      DeliveryOutcome::kAccepted,  DeliveryOutcome::kRejected,        DeliveryOutcome::kExpired,
      DeliveryOutcome::kNoTarget,  DeliveryOutcome::kFallback,        DeliveryOutcome::kNobodyPaged,
      DeliveryOutcome::kCancelled, DeliveryOutcome::kNothingToResolve};
  bool known = false;
  for (DeliveryOutcome o : kAll) {
    if (outcome == DeliveryOutcomeName(o)) {
      d.outcome = o;
      known = true;
    }
  }
  if (!known) return Error::InvalidInput("outcome: unknown outcome \"" + outcome + "\"");
  if (const Value* target = Member(v, "target")) {
    const char* p = "target";
    if (!target->IsObject()) return Error::InvalidInput("target: expected an object");
    Status ts = All([&] { return GetString(*target, "kind", p, &d.target.kind); },
                    [&] { return GetString(*target, "name", p, &d.target.name); },
                    [&] { return GetString(*target, "redacted", p, &d.target.redacted); });
    if (!ts.ok()) return ts.error();
  }
  if (const Value* attempts = Member(v, "attempts")) {
    if (!attempts->IsArray()) return Error::InvalidInput("attempts: expected an array");
    size_t i = 0;
    for (const Value& item : attempts->GetArray()) {
      std::string p = "attempts[" + std::to_string(i++) + "]";
      if (!item.IsObject()) return Error::InvalidInput(p + ": expected an object");
      AuditAttempt a;
      Status as = All([&] { return GetTime(item, "time", p, &a.time_ns); },
                      [&] { return GetInt(item, "http_status", p, &a.http_status); },
                      [&] { return GetString(item, "error", p, &a.error); },
                      [&] { return GetString(item, "request_id", p, &a.request_id); });
      if (!as.ok()) return as.error();
      d.attempts.push_back(std::move(a));
    }
  }
  return d;
}

}  // namespace

const char* DeliveryOutcomeName(DeliveryOutcome outcome) {
  switch (outcome) {
    case DeliveryOutcome::kAccepted:
      return "accepted";
    case DeliveryOutcome::kRejected:
      return "rejected";
    case DeliveryOutcome::kExpired:
      return "expired";
    case DeliveryOutcome::kNoTarget:
      return "no_target";
    case DeliveryOutcome::kFallback:
      return "fallback";
    case DeliveryOutcome::kNobodyPaged:
      return "nobody_paged";
    case DeliveryOutcome::kCancelled:
      return "cancelled";
    case DeliveryOutcome::kNothingToResolve:
      return "nothing_to_resolve";
  }
  return "accepted";
}

bool DeliveryFailed(DeliveryOutcome outcome) {
  return outcome == DeliveryOutcome::kRejected || outcome == DeliveryOutcome::kExpired ||
         outcome == DeliveryOutcome::kNoTarget || outcome == DeliveryOutcome::kNobodyPaged;
}

bool NaiveDisagrees(const routing::Decision& d) {
  if (std::set<std::string>(d.teams.begin(), d.teams.end()) !=
      std::set<std::string>(d.naive_teams.begin(), d.naive_teams.end())) {
    return true;
  }
  auto primaries = [](const std::vector<routing::Culprit>& culprits) {
    std::set<std::string> out;
    for (const routing::Culprit& c : culprits) {
      if (c.role == routing::CulpritRole::kPrimary) out.insert(c.service);
    }
    return out;
  };
  return primaries(d.culprits) != primaries(d.naive);
}

std::string DecisionRecordJson(const DecisionAudit& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("schema");
  w.Int(kAuditSchemaVersion);
  WriteStringMember(w, "type", "decision");
  WriteStringMember(w, "id", r.id);
  KeyTime(w, "time", r.time_ns);
  w.Key("alert");
  WriteAlert(w, r.alert);
  WriteStringMember(w, "symptom_reason", ScrubText(r.symptom_reason));
  w.Key("fetch");
  WriteFetch(w, r.fetch);
  // The decision exactly as `tracepager route --format json` prints it. Span names and notes can
  // carry URLs (an HTTP client span named after its URL), so the text is scrubbed too; the
  // replacements never touch JSON structure because URLs end at a quote.
  const std::string route = ScrubText(routing::DecisionToJson(r.decision));
  w.Key("route");
  w.RawValue(route.data(), route.size(), rapidjson::kObjectType);
  w.Key("disagreement");
  w.Bool(NaiveDisagrees(r.decision));
  w.Key("pages");
  w.StartArray();
  for (const AuditPlannedPage& p : r.pages) {
    w.StartObject();
    WriteStringMember(w, "team", p.team);
    WriteStringMember(w, "action", p.action);
    WriteStringMember(w, "target_kind", p.target_kind);
    WriteStringMember(w, "target_name", p.target_name);
    WriteStringMember(w, "dedup_key", p.dedup_key);
    WriteStringMember(w, "fallback_for", p.fallback_for);
    w.EndObject();
  }
  w.EndArray();
  w.Key("timings_ms");
  w.StartObject();
  KeyMillis(w, "queue_wait", r.timings.queue_wait);
  KeyMillis(w, "fetch", r.timings.fetch);
  KeyMillis(w, "route", r.timings.route);
  KeyMillis(w, "total", r.timings.total);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string DeliveryRecordJson(const DeliveryAudit& r) {
  const std::vector<std::string> secrets = TargetSecrets(r.target);
  auto clean = [&](std::string_view s) { return ScrubText(s, secrets, /*whole_urls=*/true); };
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("schema");
  w.Int(kAuditSchemaVersion);
  WriteStringMember(w, "type", "delivery");
  WriteStringMember(w, "decision_id", r.decision_id);
  KeyTime(w, "time", r.time_ns);
  WriteStringMember(w, "alert_identity", clean(r.alert_identity));
  WriteStringMember(w, "action", r.action);
  WriteStringMember(w, "team", r.team);
  w.Key("target");
  w.StartObject();
  WriteStringMember(w, "kind", r.target.kind);
  WriteStringMember(w, "name", clean(r.target.name));
  WriteStringMember(w, "redacted", TargetRedacted(r.target));
  w.EndObject();
  WriteStringMember(w, "dedup_key", clean(r.dedup_key));
  WriteStringMember(w, "fallback_for", r.fallback_for);
  w.Key("attempts");
  w.StartArray();
  for (const AuditAttempt& a : r.attempts) {
    w.StartObject();
    KeyTime(w, "time", a.time_ns);
    w.Key("http_status");
    w.Int(a.http_status);
    WriteStringMember(w, "error", clean(a.error));
    WriteStringMember(w, "request_id", clean(a.request_id));
    w.EndObject();
  }
  w.EndArray();
  WriteStringMember(w, "outcome", DeliveryOutcomeName(r.outcome));
  KeyTime(w, "accepted", r.accepted_ns);
  WriteStringMember(w, "rerouted_to", r.rerouted_to);
  WriteStringMember(w, "detail", clean(r.detail));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<AuditRecord> ParseAuditRecord(std::string_view line) {
  rapidjson::Document doc;
  // Iterative: a corrupted line cannot overflow the stack with deep nesting.
  doc.Parse<rapidjson::kParseIterativeFlag>(line.data(), line.size());
  if (doc.HasParseError()) {
    return Error::InvalidInput(std::string("not JSON: ") +
                               rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                               std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return Error::InvalidInput("not a JSON object");
  const Value* schema = Member(doc, "schema");
  if (!schema || !schema->IsInt()) return Error::InvalidInput("no integer \"schema\"");
  if (schema->GetInt() > kAuditSchemaVersion) {
    return Error::InvalidInput("schema " + std::to_string(schema->GetInt()) +
                               " is newer than this tracepager reads (" +
                               std::to_string(kAuditSchemaVersion) + ")");
  }
  if (schema->GetInt() < 1) return Error::InvalidInput("schema must be at least 1");
  std::string type;
  if (Status s = GetString(doc, "type", "record", &type); !s.ok()) return s.error();
  if (type == "decision") {
    Result<DecisionAudit> d = ParseDecision(doc);
    if (!d.ok()) return d.error();
    return AuditRecord(std::move(*d));
  }
  if (type == "delivery") {
    Result<DeliveryAudit> d = ParseDelivery(doc);
    if (!d.ok()) return d.error();
    return AuditRecord(std::move(*d));
  }
  return Error::InvalidInput("unknown record type \"" + type + "\"");
}

}  // namespace tracepager::daemon
