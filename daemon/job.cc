// RoutingJob <-> JSON. The store keeps jobs as JSON text rather than columns so that later
// fields do not need a schema migration; the few columns the store queries on (identity, storm
// key, dedup key) are copied out next to it.
#include "daemon/job.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "routing/json_fields.h"

namespace tracepager::daemon {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using rapidjson::Value;

using routing::json::WriteStringMember;
using routing::json::WriteStrings;

void Int(Writer& w, const char* key, int64_t value) {
  w.Key(key);
  w.Int64(value);
}

void Map(Writer& w, const char* key, const StringMap& map) {
  w.Key(key);
  w.StartObject();
  for (const auto& [k, v] : map) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
}

Error Bad(const char* field, const char* what) {
  return Error::InvalidInput(std::string("stored job: \"") + field + "\" " + what);
}

Status GetStr(const Value& o, const char* key, std::string* out) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd()) return OkStatus();  // fields added later are absent in older jobs
  if (!it->value.IsString()) return Bad(key, "is not a string");
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return OkStatus();
}

Status GetInt(const Value& o, const char* key, int64_t* out) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd()) return OkStatus();
  if (!it->value.IsInt64()) return Bad(key, "is not an integer");
  *out = it->value.GetInt64();
  return OkStatus();
}

Status GetMap(const Value& o, const char* key, StringMap* out) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd()) return OkStatus();
  if (!it->value.IsObject()) return Bad(key, "is not an object");
  for (auto m = it->value.MemberBegin(); m != it->value.MemberEnd(); ++m) {
    if (!m->value.IsString()) return Bad(key, "has a value that is not a string");
    (*out)[std::string(m->name.GetString(), m->name.GetStringLength())] =
        std::string(m->value.GetString(), m->value.GetStringLength());
  }
  return OkStatus();
}

}  // namespace

const char* JobKindName(JobKind kind) {
  switch (kind) {
    case JobKind::kRoute:
      return "route";
    case JobKind::kResolve:
      return "resolve";
  }
  return "unknown";
}

const char* SymptomText(routing::Symptom symptom) {
  switch (symptom) {
    case routing::Symptom::kErrors:
      return "errors";
    case routing::Symptom::kLatency:
      return "latency";
  }
  return "unknown";
}

std::string JobToJson(const RoutingJob& job) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("v");
  w.Int(1);
  w.Key("kind");
  w.String(JobKindName(job.kind));
  WriteStringMember(w, "identity", job.identity);
  WriteStringMember(w, "storm_key", job.storm_key);
  WriteStringMember(w, "dedup_key", job.dedup_key);
  WriteStringMember(w, "source", job.source);
  WriteStringMember(w, "alertname", job.alertname);
  WriteStringMember(w, "alerting_service", job.alerting_service);
  WriteStringMember(w, "service_label", job.service_label);
  w.Key("symptom");
  w.String(SymptomText(job.symptom));
  WriteStringMember(w, "symptom_reason", job.symptom_reason);
  w.Key("trace_ids");
  WriteStrings(w, job.trace_ids);
  Int(w, "starts_at_ns", job.starts_at_ns);
  Int(w, "ends_at_ns", job.ends_at_ns);
  Int(w, "window_start_ns", job.window_start_ns);
  Int(w, "window_end_ns", job.window_end_ns);
  Int(w, "received_ns", job.received_ns);
  WriteStringMember(w, "summary", job.summary);
  WriteStringMember(w, "severity", job.severity);
  Map(w, "labels", job.labels);
  Map(w, "annotations", job.annotations);
  WriteStringMember(w, "generator_url", job.generator_url);
  WriteStringMember(w, "group_key", job.group_key);
  WriteStringMember(w, "receiver", job.receiver);
  Int(w, "group_truncated_alerts", job.group_truncated_alerts);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<RoutingJob> JobFromJson(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Error::InvalidInput("stored job: not a JSON object");
  }
  RoutingJob job;
  std::string kind, symptom;
  int64_t truncated = 0;
  Status s = GetStr(doc, "kind", &kind);
  if (s.ok()) s = GetStr(doc, "identity", &job.identity);
  if (s.ok()) s = GetStr(doc, "storm_key", &job.storm_key);
  if (s.ok()) s = GetStr(doc, "dedup_key", &job.dedup_key);
  if (s.ok()) s = GetStr(doc, "source", &job.source);
  if (s.ok()) s = GetStr(doc, "alertname", &job.alertname);
  if (s.ok()) s = GetStr(doc, "alerting_service", &job.alerting_service);
  if (s.ok()) s = GetStr(doc, "service_label", &job.service_label);
  if (s.ok()) s = GetStr(doc, "symptom", &symptom);
  if (s.ok()) s = GetStr(doc, "symptom_reason", &job.symptom_reason);
  if (s.ok()) s = GetInt(doc, "starts_at_ns", &job.starts_at_ns);
  if (s.ok()) s = GetInt(doc, "ends_at_ns", &job.ends_at_ns);
  if (s.ok()) s = GetInt(doc, "window_start_ns", &job.window_start_ns);
  if (s.ok()) s = GetInt(doc, "window_end_ns", &job.window_end_ns);
  if (s.ok()) s = GetInt(doc, "received_ns", &job.received_ns);
  if (s.ok()) s = GetStr(doc, "summary", &job.summary);
  if (s.ok()) s = GetStr(doc, "severity", &job.severity);
  if (s.ok()) s = GetMap(doc, "labels", &job.labels);
  if (s.ok()) s = GetMap(doc, "annotations", &job.annotations);
  if (s.ok()) s = GetStr(doc, "generator_url", &job.generator_url);
  if (s.ok()) s = GetStr(doc, "group_key", &job.group_key);
  if (s.ok()) s = GetStr(doc, "receiver", &job.receiver);
  if (s.ok()) s = GetInt(doc, "group_truncated_alerts", &truncated);
  if (!s.ok()) return s.error();

  if (kind == "route") {
    job.kind = JobKind::kRoute;
  } else if (kind == "resolve") {
    job.kind = JobKind::kResolve;
  } else {
    return Bad("kind", "is neither \"route\" nor \"resolve\"");
  }
  if (symptom == "latency") {
    job.symptom = routing::Symptom::kLatency;
  } else if (symptom == "errors") {
    job.symptom = routing::Symptom::kErrors;
  } else {
    return Bad("symptom", "is neither \"errors\" nor \"latency\"");
  }
  if (truncated < 0 || truncated > UINT32_MAX) return Bad("group_truncated_alerts", "out of range");
  job.group_truncated_alerts = static_cast<uint32_t>(truncated);
  if (auto it = doc.FindMember("trace_ids"); it != doc.MemberEnd()) {
    if (!it->value.IsArray()) return Bad("trace_ids", "is not an array");
    for (const Value& v : it->value.GetArray()) {
      if (!v.IsString()) return Bad("trace_ids", "has an element that is not a string");
      job.trace_ids.emplace_back(v.GetString(), v.GetStringLength());
    }
  }
  return job;
}

}  // namespace tracepager::daemon
