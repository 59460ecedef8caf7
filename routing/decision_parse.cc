#include "routing/decision_parse.h"

#include <rapidjson/error/en.h>

#include <cstdint>
#include <string>
#include <vector>

#include "routing/json_fields.h"

namespace tracepager::routing {
namespace {

using rapidjson::Value;

using json::GetBool;
using json::GetString;
using json::GetStrings;
using json::Member;
using json::TypeError;

// Every getter leaves `out` alone when the key is absent or null: DecisionToJson omits some
// keys (a step's "reason" when it did not fail, "caller" for non-virtual culprits), and
// records from other versions may omit more. The common getters are in routing/json_fields.h.
Status GetInt64(const Value& obj, const char* key, const std::string& path, int64_t* out) {
  const Value* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->IsInt64()) return TypeError(path, key, "an integer");
  *out = v->GetInt64();
  return OkStatus();
}

Status GetInt(const Value& obj, const char* key, const std::string& path, int* out) {
  const Value* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->IsInt()) return TypeError(path, key, "an integer");
  *out = v->GetInt();
  return OkStatus();
}

Status GetDouble(const Value& obj, const char* key, const std::string& path, double* out) {
  const Value* v = Member(obj, key);
  if (!v) return OkStatus();
  if (!v->IsNumber()) return TypeError(path, key, "a number");
  *out = v->GetDouble();
  return OkStatus();
}

// The array under `key`, or nullptr when absent; an error when present and not an array.
Result<const Value*> GetArray(const Value& obj, const char* key, const std::string& path) {
  const Value* v = Member(obj, key);
  if (!v) return static_cast<const Value*>(nullptr);
  if (!v->IsArray()) return TypeError(path, key, "an array");
  return v;
}

std::string Index(const std::string& path, const char* key, size_t i) {
  return path + (path.empty() ? "" : ".") + key + "[" + std::to_string(i) + "]";
}

Status GetRole(const Value& obj, const std::string& path, CulpritRole* out) {
  std::string role;
  if (Status s = GetString(obj, "role", path, &role); !s.ok()) return s;
  if (role.empty() || role == CulpritRoleName(CulpritRole::kPrimary)) {
    *out = CulpritRole::kPrimary;
  } else if (role == CulpritRoleName(CulpritRole::kFallout)) {
    *out = CulpritRole::kFallout;
  } else {
    return Error::InvalidInput(path + ".role: unknown role \"" + role + "\"");
  }
  return OkStatus();
}

// Refinement names this build does not know come from a newer writer; they are dropped rather
// than failing the whole record.
Status GetRefinements(const Value& obj, const std::string& path, std::vector<Refinement>* out) {
  std::vector<std::string> names;
  if (Status s = GetStrings(obj, "changed_by", path, &names); !s.ok()) return s;
  static constexpr Refinement kAll[] = {Refinement::kTimeoutMasking, Refinement::kSiblingFallout,
                                        Refinement::kRetries, Refinement::kAsync,
                                        Refinement::kUninstrumented};
  for (const std::string& name : names) {
    for (Refinement r : kAll) {
      if (name == RefinementName(r)) {
        out->push_back(r);
        break;
      }
    }
  }
  return OkStatus();
}

Result<Culprit> ParseCulprit(const Value& v, const std::string& path) {
  if (!v.IsObject()) return Error::InvalidInput(path + ": expected an object");
  Culprit c;
  Status s = GetString(v, "service", path, &c.service);
  if (s.ok()) s = GetString(v, "team", path, &c.team);
  if (s.ok()) s = GetString(v, "owner_reason", path, &c.owner_reason);
  if (s.ok()) s = GetDouble(v, "share", path, &c.share);
  if (s.ok()) s = GetInt(v, "votes", path, &c.votes);
  if (s.ok()) s = GetRole(v, path, &c.role);
  if (s.ok()) s = GetBool(v, "paged", path, &c.paged);
  if (s.ok()) s = GetBool(v, "virtual", path, &c.is_virtual);
  if (s.ok()) s = GetString(v, "why", path, &c.why);
  if (!s.ok()) return s.error();
  return c;
}

Result<std::vector<Culprit>> ParseCulprits(const Value& obj, const std::string& path) {
  std::vector<Culprit> out;
  Result<const Value*> arr = GetArray(obj, "culprits", path);
  if (!arr.ok()) return arr.error();
  if (*arr == nullptr) return out;
  size_t i = 0;
  for (const Value& item : (*arr)->GetArray()) {
    Result<Culprit> c = ParseCulprit(item, Index(path, "culprits", i++));
    if (!c.ok()) return c.error();
    out.push_back(std::move(*c));
  }
  return out;
}

Status ParseSpanId(const Value& obj, const std::string& path, uint64_t* out) {
  std::string hex;
  if (Status s = GetString(obj, "span_id", path, &hex); !s.ok()) return s;
  if (hex.empty()) return OkStatus();
  if (hex.size() > 16) return Error::InvalidInput(path + ".span_id: more than 16 hex digits");
  uint64_t id = 0;
  for (char ch : hex) {
    int digit;
    if (ch >= '0' && ch <= '9') {
      digit = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      digit = ch - 'a' + 10;
    } else if (ch >= 'A' && ch <= 'F') {
      digit = ch - 'A' + 10;
    } else {
      return Error::InvalidInput(path + ".span_id: \"" + hex + "\" is not hex");
    }
    id = id * 16 + static_cast<uint64_t>(digit);
  }
  *out = id;
  return OkStatus();
}

Result<PathStep> ParseStep(const Value& v, const std::string& path) {
  if (!v.IsObject()) return Error::InvalidInput(path + ": expected an object");
  PathStep step;
  Status s = ParseSpanId(v, path, &step.span_id);
  if (s.ok()) s = GetString(v, "service", path, &step.service);
  if (s.ok()) s = GetString(v, "operation", path, &step.operation);
  if (s.ok()) s = GetBool(v, "failed", path, &step.failed);
  if (s.ok()) s = GetString(v, "reason", path, &step.reason);
  if (s.ok()) s = GetInt64(v, "start_offset_ns", path, &step.start_offset_ns);
  if (s.ok()) s = GetInt64(v, "duration_ns", path, &step.duration_ns);
  if (!s.ok()) return s.error();
  return step;
}

Result<TraceCulprit> ParseTraceCulprit(const Value& v, const std::string& path) {
  if (!v.IsObject()) return Error::InvalidInput(path + ": expected an object");
  TraceCulprit c;
  Status s = GetString(v, "service", path, &c.service);
  if (s.ok()) s = GetRole(v, path, &c.role);
  if (s.ok()) s = GetBool(v, "virtual", path, &c.is_virtual);
  if (s.ok()) s = GetString(v, "caller", path, &c.caller);
  if (s.ok()) s = GetString(v, "why", path, &c.why);
  if (!s.ok()) return s.error();
  // "spans" carries the full steps; "path" is only their service names, derived from them.
  Result<const Value*> spans = GetArray(v, "spans", path);
  if (!spans.ok()) return spans.error();
  if (*spans != nullptr) {
    size_t i = 0;
    for (const Value& item : (*spans)->GetArray()) {
      Result<PathStep> step = ParseStep(item, Index(path, "spans", i++));
      if (!step.ok()) return step.error();
      c.path.push_back(std::move(*step));
    }
  }
  return c;
}

Result<TraceVerdict> ParseTrace(const Value& v, const std::string& path) {
  if (!v.IsObject()) return Error::InvalidInput(path + ": expected an object");
  TraceVerdict t;
  Status s = GetString(v, "trace_id", path, &t.trace_id);
  if (s.ok()) s = GetString(v, "alerting_service", path, &t.alerting_service);
  if (s.ok()) s = GetBool(v, "alerting_service_found", path, &t.alerting_service_found);
  if (s.ok()) s = GetRefinements(v, path, &t.changed_by);
  if (s.ok()) s = GetStrings(v, "notes", path, &t.notes);
  if (!s.ok()) return s.error();
  Result<const Value*> culprits = GetArray(v, "culprits", path);
  if (!culprits.ok()) return culprits.error();
  if (*culprits != nullptr) {
    size_t i = 0;
    for (const Value& item : (*culprits)->GetArray()) {
      Result<TraceCulprit> c = ParseTraceCulprit(item, Index(path, "culprits", i++));
      if (!c.ok()) return c.error();
      t.culprits.push_back(std::move(*c));
    }
  }
  std::vector<std::string> naive;
  if (Status ns = GetStrings(v, "naive", path, &naive); !ns.ok()) return ns.error();
  for (std::string& service : naive) {
    TraceCulprit c;
    c.service = std::move(service);
    t.naive.push_back(std::move(c));
  }
  return t;
}

}  // namespace

Result<Decision> DecisionFromJsonValue(const Value& v) {
  if (!v.IsObject()) return Error::InvalidInput("decision: expected an object");
  Decision d;
  const std::string root;
  std::string kind, symptom;
  Status s = GetString(v, "decision", root, &kind);
  if (s.ok()) s = GetString(v, "reason", root, &d.reason);
  if (s.ok()) s = GetString(v, "alerting_service", root, &d.alerting_service);
  if (s.ok()) s = GetString(v, "symptom", root, &symptom);
  if (s.ok()) s = GetStrings(v, "teams", root, &d.teams);
  if (s.ok()) s = GetRefinements(v, root, &d.changed_by);
  if (!s.ok()) return s.error();

  if (kind == DecisionKindName(Decision::Kind::kRouted)) {
    d.kind = Decision::Kind::kRouted;
  } else if (kind == DecisionKindName(Decision::Kind::kFallback)) {
    d.kind = Decision::Kind::kFallback;
  } else {
    return Error::InvalidInput("decision: expected \"routed\" or \"fallback\", got \"" + kind +
                               "\"");
  }
  if (symptom.empty() || symptom == SymptomName(Symptom::kErrors)) {
    d.symptom = Symptom::kErrors;
  } else if (symptom == SymptomName(Symptom::kLatency)) {
    d.symptom = Symptom::kLatency;
  } else {
    return Error::InvalidInput("symptom: unknown symptom \"" + symptom + "\"");
  }

  Result<std::vector<Culprit>> culprits = ParseCulprits(v, root);
  if (!culprits.ok()) return culprits.error();
  d.culprits = std::move(*culprits);

  if (const Value* naive = Member(v, "naive")) {
    if (!naive->IsObject()) return Error::InvalidInput("naive: expected an object");
    if (Status ns = GetStrings(*naive, "teams", "naive", &d.naive_teams); !ns.ok()) {
      return ns.error();
    }
    Result<std::vector<Culprit>> naive_culprits = ParseCulprits(*naive, "naive");
    if (!naive_culprits.ok()) return naive_culprits.error();
    d.naive = std::move(*naive_culprits);
  }

  Result<const Value*> traces = GetArray(v, "traces", root);
  if (!traces.ok()) return traces.error();
  if (*traces != nullptr) {
    size_t i = 0;
    for (const Value& item : (*traces)->GetArray()) {
      Result<TraceVerdict> t = ParseTrace(item, Index(root, "traces", i++));
      if (!t.ok()) return t.error();
      d.traces.push_back(std::move(*t));
    }
  }
  return d;
}

Result<Decision> DecisionFromJson(std::string_view json) {
  rapidjson::Document doc;
  // Iterative: a corrupted or hostile record cannot overflow the stack with deep nesting.
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return Error::InvalidInput(std::string("decision JSON: ") +
                               rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                               std::to_string(doc.GetErrorOffset()));
  }
  return DecisionFromJsonValue(doc);
}

}  // namespace tracepager::routing
