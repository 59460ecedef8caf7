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

// Readers of one member's value; `key` names it in the error. A null `out` checks the value
// without keeping it (a detail JobParts::kWithoutDetails leaves out).
Status AsStr(const Value& v, const char* key, std::string* out) {
  if (!v.IsString()) return Bad(key, "is not a string");
  if (out != nullptr) out->assign(v.GetString(), v.GetStringLength());
  return OkStatus();
}

Status AsInt(const Value& v, const char* key, int64_t* out) {
  if (!v.IsInt64()) return Bad(key, "is not an integer");
  *out = v.GetInt64();
  return OkStatus();
}

Status AsMap(const Value& v, const char* key, StringMap* out) {
  if (!v.IsObject()) return Bad(key, "is not an object");
  for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
    if (!m->value.IsString()) return Bad(key, "has a value that is not a string");
    if (out == nullptr) continue;
    out->insert_or_assign(std::string(m->name.GetString(), m->name.GetStringLength()),
                          std::string(m->value.GetString(), m->value.GetStringLength()));
  }
  return OkStatus();
}

Status AsStrings(const Value& v, const char* key, std::vector<std::string>* out) {
  if (!v.IsArray()) return Bad(key, "is not an array");
  for (const Value& e : v.GetArray()) {
    if (!e.IsString()) return Bad(key, "has an element that is not a string");
    out->emplace_back(e.GetString(), e.GetStringLength());
  }
  return OkStatus();
}

// The job's plain members, as JobToJson writes them and JobFromJson reads them back.
// `detail`: one of the job's details (JobParts).
template <class T>
struct Field {
  const char* name;
  T RoutingJob::*member;
  bool detail = false;
};
constexpr Field<std::string> kStringFields[] = {
    {"identity", &RoutingJob::identity},
    {"storm_key", &RoutingJob::storm_key},
    {"dedup_key", &RoutingJob::dedup_key},
    {"source", &RoutingJob::source},
    {"alertname", &RoutingJob::alertname},
    {"alerting_service", &RoutingJob::alerting_service},
    {"service_label", &RoutingJob::service_label, true},
    {"symptom_reason", &RoutingJob::symptom_reason, true},
    {"summary", &RoutingJob::summary, true},
    {"severity", &RoutingJob::severity, true},
    {"generator_url", &RoutingJob::generator_url, true},
    {"group_key", &RoutingJob::group_key, true},
    {"receiver", &RoutingJob::receiver, true},
};
constexpr Field<int64_t> kIntFields[] = {
    {"starts_at_ns", &RoutingJob::starts_at_ns},
    {"ends_at_ns", &RoutingJob::ends_at_ns},
    {"window_start_ns", &RoutingJob::window_start_ns},
    {"window_end_ns", &RoutingJob::window_end_ns},
    {"received_ns", &RoutingJob::received_ns},
};

template <class T, std::size_t N>
const Field<T>* FindField(const Field<T> (&fields)[N], std::string_view name) {
  for (const Field<T>& f : fields) {
    if (name == f.name) return &f;
  }
  return nullptr;
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
  w.Key("symptom");
  w.String(SymptomText(job.symptom));
  for (const auto& f : kStringFields) WriteStringMember(w, f.name, job.*(f.member));
  for (const auto& f : kIntFields) Int(w, f.name, job.*(f.member));
  w.Key("trace_ids");
  WriteStrings(w, job.trace_ids);
  Map(w, "labels", job.labels);
  Map(w, "annotations", job.annotations);
  Int(w, "group_truncated_alerts", job.group_truncated_alerts);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

RoutingJob WithoutDetails(const RoutingJob& job) {
  RoutingJob lean;
  lean.kind = job.kind;
  lean.symptom = job.symptom;
  for (const auto& f : kStringFields) {
    if (!f.detail) lean.*(f.member) = job.*(f.member);
  }
  for (const auto& f : kIntFields) lean.*(f.member) = job.*(f.member);
  lean.trace_ids = job.trace_ids;
  return lean;
}

Result<RoutingJob> JobFromJson(std::string_view json, JobParts parts) {
  // The DOM's memory comes from a buffer on the stack, which holds a stored job of a few
  // kilobytes (larger ones continue on the heap). The default pool mallocs a 64 KiB chunk per
  // document, and a routing worker reads a thousand jobs per claim during a storm.
  char pool[16 << 10];
  rapidjson::MemoryPoolAllocator<> allocator(pool, sizeof pool);
  rapidjson::Document doc(&allocator);
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Error::InvalidInput("stored job: not a JSON object");
  }
  RoutingJob job;
  std::string kind, symptom;
  int64_t truncated = 0;
  const bool details = parts == JobParts::kAll;
  // One pass over the members, each dispatched by its name. (A FindMember per field compared
  // every field's name with the members before it: most of the parse in a worker's profile.)
  // Fields added later are absent in older jobs; members this build does not know are ignored.
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    const std::string_view name(m->name.GetString(), m->name.GetStringLength());
    const Value& v = m->value;
    Status s = OkStatus();
    if (const auto* f = FindField(kStringFields, name)) {
      s = AsStr(v, f->name, details || !f->detail ? &(job.*(f->member)) : nullptr);
    } else if (const auto* i = FindField(kIntFields, name)) {
      s = AsInt(v, i->name, &(job.*(i->member)));
    } else if (name == "kind") {
      s = AsStr(v, "kind", &kind);
    } else if (name == "symptom") {
      s = AsStr(v, "symptom", &symptom);
    } else if (name == "labels") {
      s = AsMap(v, "labels", details ? &job.labels : nullptr);
    } else if (name == "annotations") {
      s = AsMap(v, "annotations", details ? &job.annotations : nullptr);
    } else if (name == "trace_ids") {
      s = AsStrings(v, "trace_ids", &job.trace_ids);
    } else if (name == "group_truncated_alerts") {
      s = AsInt(v, "group_truncated_alerts", &truncated);
    }
    if (!s.ok()) return s.error();
  }

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
  if (details) job.group_truncated_alerts = static_cast<uint32_t>(truncated);
  return job;
}

}  // namespace tracepager::daemon
