#include "routing/decision_format.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <string_view>
#include <vector>

#include "routing/json_fields.h"

namespace tracepager::routing {
namespace {

// The services along a path, consecutive spans of one service folded into one entry: the
// path a person reads is "frontend > checkout > payment", not one entry per span.
std::vector<std::string> ServicePath(const std::vector<PathStep>& steps) {
  std::vector<std::string> out;
  for (const PathStep& step : steps) {
    if (out.empty() || out.back() != step.service) out.push_back(step.service);
  }
  return out;
}

std::string Millis(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(ns) / 1e6);
  return buf;
}

using json::WriteString;
using json::WriteStrings;

template <typename Writer>
void WriteRefinements(Writer& w, const std::vector<Refinement>& refinements) {
  w.StartArray();
  for (Refinement r : refinements) w.String(RefinementName(r));
  w.EndArray();
}

template <typename Writer>
void WriteCulprit(Writer& w, const Culprit& c) {
  w.StartObject();
  w.Key("service");
  WriteString(w, c.service);
  w.Key("team");
  WriteString(w, c.team);
  w.Key("owner_reason");
  WriteString(w, c.owner_reason);
  w.Key("share");
  w.Double(c.share);
  w.Key("votes");
  w.Int(c.votes);
  w.Key("role");
  w.String(CulpritRoleName(c.role));
  w.Key("primary");
  w.Bool(c.role == CulpritRole::kPrimary);
  w.Key("paged");
  w.Bool(c.paged);
  w.Key("virtual");
  w.Bool(c.is_virtual);
  w.Key("why");
  WriteString(w, c.why);
  w.EndObject();
}

template <typename Writer>
void WriteSpanStep(Writer& w, const PathStep& step) {
  w.StartObject();
  w.Key("span_id");
  WriteString(w, SpanIdHex(step.span_id));
  w.Key("service");
  WriteString(w, step.service);
  w.Key("operation");
  WriteString(w, step.operation);
  w.Key("failed");
  w.Bool(step.failed);
  if (step.failed) {
    w.Key("reason");
    WriteString(w, step.reason);
  }
  w.Key("start_offset_ns");
  w.Int64(step.start_offset_ns);
  w.Key("duration_ns");
  w.Int64(step.duration_ns);
  w.EndObject();
}

template <typename Writer>
void WriteTraceCulprit(Writer& w, const TraceCulprit& c) {
  w.StartObject();
  w.Key("service");
  WriteString(w, c.service);
  w.Key("role");
  w.String(CulpritRoleName(c.role));
  w.Key("virtual");
  w.Bool(c.is_virtual);
  if (c.is_virtual) {
    w.Key("caller");
    WriteString(w, c.caller);
  }
  w.Key("why");
  WriteString(w, c.why);
  w.Key("path");
  WriteStrings(w, ServicePath(c.path));
  w.Key("spans");
  w.StartArray();
  for (const PathStep& step : c.path) WriteSpanStep(w, step);
  w.EndArray();
  w.EndObject();
}

template <typename Writer>
void WriteTrace(Writer& w, const TraceVerdict& t) {
  w.StartObject();
  w.Key("trace_id");
  WriteString(w, t.trace_id);
  w.Key("alerting_service");
  WriteString(w, t.alerting_service);
  w.Key("alerting_service_found");
  w.Bool(t.alerting_service_found);
  // `path`: the path to this trace's first primary culprit, the one a reader wants first.
  w.Key("path");
  std::vector<std::string> first_path;
  for (const TraceCulprit& c : t.culprits) {
    if (c.role == CulpritRole::kPrimary) {
      first_path = ServicePath(c.path);
      if (c.is_virtual) first_path.push_back(c.service);
      break;
    }
  }
  WriteStrings(w, first_path);
  w.Key("culprits");
  w.StartArray();
  for (const TraceCulprit& c : t.culprits) WriteTraceCulprit(w, c);
  w.EndArray();
  w.Key("naive");
  w.StartArray();
  for (const TraceCulprit& c : t.naive) WriteString(w, c.service);
  w.EndArray();
  w.Key("changed_by");
  WriteRefinements(w, t.changed_by);
  w.Key("notes");
  WriteStrings(w, t.notes);
  w.EndObject();
}

template <typename Writer>
void WriteDecision(Writer& w, const Decision& d) {
  w.StartObject();
  w.Key("decision");
  w.String(DecisionKindName(d.kind));
  w.Key("reason");
  WriteString(w, d.reason);
  w.Key("alerting_service");
  WriteString(w, d.alerting_service);
  w.Key("symptom");
  w.String(SymptomName(d.symptom));
  w.Key("teams");
  WriteStrings(w, d.teams);
  w.Key("culprits");
  w.StartArray();
  for (const Culprit& c : d.culprits) WriteCulprit(w, c);
  w.EndArray();
  w.Key("naive");
  w.StartObject();
  w.Key("teams");
  WriteStrings(w, d.naive_teams);
  w.Key("culprits");
  w.StartArray();
  for (const Culprit& c : d.naive) WriteCulprit(w, c);
  w.EndArray();
  w.EndObject();
  w.Key("changed_by");
  WriteRefinements(w, d.changed_by);
  w.Key("traces");
  w.StartArray();
  for (const TraceVerdict& t : d.traces) WriteTrace(w, t);
  w.EndArray();
  w.EndObject();
}

// Text rendering ---------------------------------------------------------------------------

void Line(std::string& out, int indent, std::string_view text) {
  out.append(static_cast<size_t>(indent) * 2, ' ');
  out.append(text);
  out.push_back('\n');
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.append(sep);
    out.append(items[i]);
  }
  return out;
}

std::string Percent(double share) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", share * 100.0);
  return buf;
}

std::string CulpritLine(const Culprit& c) {
  std::string s = c.service;
  if (c.is_virtual) s += " (uninstrumented peer)";
  s += " -> team " + (c.team.empty() ? std::string("(none)") : c.team);
  s += ", " + std::string(CulpritRoleName(c.role));
  s += ", blamed by " + std::to_string(c.votes) + " trace" + (c.votes == 1 ? "" : "s") + " (" +
       Percent(c.share) + ")";
  if (!c.paged) s += ", not paged";
  return s;
}

// One trace's culprit paths merged into a tree keyed by span id, so shared prefixes print once.
struct TreeNode {
  PathStep step;
  std::vector<size_t> children;
  std::vector<std::string> marks;  // "<- culprit payment (primary)"
};

void RenderTrace(std::string& out, const TraceVerdict& t) {
  Line(out, 0,
       "trace " + t.trace_id +
           (t.alerting_service_found ? std::string() : "  (alerting service not in this trace)"));
  std::vector<TreeNode> nodes;
  std::vector<size_t> roots;
  std::map<uint64_t, size_t> by_span;
  for (const TraceCulprit& c : t.culprits) {
    size_t parent = SIZE_MAX;
    for (const PathStep& step : c.path) {
      auto it = by_span.find(step.span_id);
      size_t idx;
      if (it == by_span.end()) {
        idx = nodes.size();
        nodes.push_back(TreeNode{step, {}, {}});
        by_span.emplace(step.span_id, idx);
        if (parent == SIZE_MAX) {
          roots.push_back(idx);
        } else {
          nodes[parent].children.push_back(idx);
        }
      } else {
        idx = it->second;
      }
      parent = idx;
    }
    if (parent != SIZE_MAX) {
      std::string mark = "<- culprit ";
      mark += c.service;
      mark += c.role == CulpritRole::kPrimary ? " (primary)" : " (fallout)";
      nodes[parent].marks.push_back(std::move(mark));
    }
  }
  // Iterative depth-first print: paths can be thousands of spans deep.
  std::vector<std::pair<size_t, int>> stack;
  for (auto it = roots.rbegin(); it != roots.rend(); ++it) stack.emplace_back(*it, 1);
  while (!stack.empty()) {
    auto [idx, depth] = stack.back();
    stack.pop_back();
    const TreeNode& n = nodes[idx];
    std::string s = n.step.service + "  " + n.step.operation;
    if (n.step.failed) s += "  FAILED: " + (n.step.reason.empty() ? "error" : n.step.reason);
    s += "  at +" + Millis(n.step.start_offset_ns) + " for " + Millis(n.step.duration_ns);
    for (const std::string& m : n.marks) s += "  " + m;
    Line(out, depth, s);
    for (auto it = n.children.rbegin(); it != n.children.rend(); ++it) {
      stack.emplace_back(*it, depth + 1);
    }
  }
  for (const TraceCulprit& c : t.culprits) {
    Line(out, 1,
         std::string(c.role == CulpritRole::kPrimary ? "why " : "fallout ") + c.service + ": " +
             c.why);
  }
  if (!t.changed_by.empty()) {
    std::vector<std::string> names;
    for (const TraceCulprit& c : t.naive) names.push_back(c.service);
    std::vector<std::string> refinements;
    for (Refinement r : t.changed_by) refinements.push_back(RefinementName(r));
    Line(out, 1,
         "naive rule: " + (names.empty() ? std::string("(none)") : Join(names, ", ")) +
             "; changed by " + Join(refinements, ", "));
  }
  for (const std::string& note : t.notes) Line(out, 1, "note: " + note);
}

}  // namespace

std::string DecisionToJson(const Decision& decision, bool pretty) {
  rapidjson::StringBuffer buf;
  if (pretty) {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
    w.SetIndent(' ', 2);
    WriteDecision(w, decision);
  } else {
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    WriteDecision(w, decision);
  }
  return std::string(buf.GetString(), buf.GetSize());
}

std::string DecisionToText(const Decision& d) {
  std::string out;
  const std::string teams = d.teams.empty() ? std::string("(nobody)") : Join(d.teams, ", ");
  if (d.kind == Decision::Kind::kRouted) {
    Line(out, 0, "PAGE " + teams);
  } else {
    Line(out, 0, "PAGE " + teams + "  (fallback)");
  }
  Line(out, 0, "why: " + d.reason);
  Line(out, 0,
       std::string(SymptomName(d.symptom)) + " alert on " + d.alerting_service + ", " +
           std::to_string(d.traces.size()) + " trace" + (d.traces.size() == 1 ? "" : "s"));
  for (const Culprit& c : d.culprits) Line(out, 1, "culprit " + CulpritLine(c));
  if (d.naive_teams != d.teams || !d.changed_by.empty()) {
    std::vector<std::string> naive;
    for (const Culprit& c : d.naive) naive.push_back(c.service + " (team " + c.team + ")");
    std::vector<std::string> refinements;
    for (Refinement r : d.changed_by) refinements.push_back(RefinementName(r));
    Line(out, 0,
         "naive rule would page: " +
             (d.naive_teams.empty() ? std::string("(nobody)") : Join(d.naive_teams, ", ")) +
             (naive.empty() ? std::string() : " via " + Join(naive, ", ")) +
             (refinements.empty() ? std::string() : "; changed by " + Join(refinements, ", ")));
  }
  for (const TraceVerdict& t : d.traces) {
    out.push_back('\n');
    RenderTrace(out, t);
  }
  return out;
}

}  // namespace tracepager::routing
