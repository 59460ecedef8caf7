#include "daemon/audit_render.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>

#include "routing/decision_format.h"
#include "routing/json_fields.h"

namespace tracepager::daemon {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

using routing::json::WriteString;
using routing::json::WriteStringMember;
using routing::json::WriteStrings;

void KeyTimeOrNull(JsonWriter& w, const char* key, int64_t ns) {
  w.Key(key);
  if (ns > 0) {
    WriteString(w, FormatAuditTime(ns));
  } else {
    w.Null();
  }
}
void KeyStrings(JsonWriter& w, const char* key, const std::vector<std::string>& v) {
  w.Key(key);
  WriteStrings(w, v);
}
void KeyWarnings(JsonWriter& w, const std::vector<AuditReadWarning>& warnings) {
  w.Key("warnings");
  w.StartArray();
  for (const AuditReadWarning& x : warnings) WriteString(w, x.ToString());
  w.EndArray();
}
double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }
double Ms(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1e3; }

void WriteSummary(JsonWriter& w, const DecisionSummary& d) {
  w.StartObject();
  WriteStringMember(w, "id", d.id);
  KeyTimeOrNull(w, "time", d.time_ns);
  WriteStringMember(w, "decision", routing::DecisionKindName(d.kind));
  w.Key("alert");
  w.StartObject();
  WriteStringMember(w, "name", d.alert_name);
  WriteStringMember(w, "identity", d.alert_identity);
  WriteStringMember(w, "source", d.alert_source);
  KeyTimeOrNull(w, "received", d.received_ns);
  w.Key("grouped");
  w.Uint64(d.grouped_alerts);
  w.EndObject();
  WriteStringMember(w, "alerting_service", d.alerting_service);
  WriteStringMember(w, "symptom", d.symptom);
  WriteStringMember(w, "reason", d.reason);
  KeyStrings(w, "teams", d.teams);
  KeyStrings(w, "naive_teams", d.naive_teams);
  w.Key("disagreement");
  w.Bool(d.disagreement);
  KeyStrings(w, "changed_by", d.changed_by);
  w.Key("culprits");
  w.StartArray();
  for (const CulpritSummary& c : d.culprits) {
    w.StartObject();
    WriteStringMember(w, "service", c.service);
    WriteStringMember(w, "team", c.team);
    w.Key("share");
    w.Double(c.share);
    w.Key("primary");
    w.Bool(c.primary);
    w.Key("virtual");
    w.Bool(c.is_virtual);
    w.EndObject();
  }
  w.EndArray();
  w.Key("traces");
  w.StartObject();
  w.Key("asked");
  w.Uint64(d.traces_asked);
  w.Key("used");
  w.Uint64(d.traces_used);
  w.Key("fetch_errors");
  w.Uint64(d.fetch_errors);
  w.EndObject();
  w.Key("timings_ms");
  w.StartObject();
  w.Key("queue_wait");
  w.Double(Ms(d.timings.queue_wait));
  w.Key("fetch");
  w.Double(Ms(d.timings.fetch));
  w.Key("route");
  w.Double(Ms(d.timings.route));
  w.Key("total");
  w.Double(Ms(d.timings.total));
  w.EndObject();
  w.Key("pages_planned");
  w.Uint64(d.pages_planned);
  w.Key("deliveries");
  w.StartArray();
  for (const DeliverySummary& p : d.deliveries) {
    w.StartObject();
    KeyTimeOrNull(w, "time", p.time_ns);
    WriteStringMember(w, "action", p.action);
    WriteStringMember(w, "team", p.team);
    WriteStringMember(w, "target_kind", p.target_kind);
    WriteStringMember(w, "target_name", p.target_name);
    WriteStringMember(w, "dedup_key", p.dedup_key);
    WriteStringMember(w, "outcome", DeliveryOutcomeName(p.outcome));
    w.Key("attempts");
    w.Uint64(p.attempts);
    w.Key("last_http_status");
    w.Int(p.last_http_status);
    WriteStringMember(w, "last_error", p.last_error);
    KeyTimeOrNull(w, "accepted", p.accepted_ns);
    WriteStringMember(w, "fallback_for", p.fallback_for);
    WriteStringMember(w, "rerouted_to", p.rerouted_to);
    w.EndObject();
  }
  w.EndArray();
  w.Key("nobody_paged");
  w.Bool(d.nobody_paged);
  w.Key("page_accepted_after_ms");
  if (d.first_accepted_ns > 0 && d.received_ns > 0) {
    w.Double(Ms(d.first_accepted_ns - d.received_ns));
  } else {
    w.Null();
  }
  w.EndObject();
}

std::string Percent(double share) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", share * 100.0);
  return buf;
}

std::string Rate(double rate) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", rate * 100.0);
  return buf;
}

// "2025-06-11 03:15:22": a list column; the full RFC 3339 time is in show and JSON.
std::string ShortTime(int64_t ns) {
  if (ns <= 0) return "-";
  std::string t = FormatAuditTime(ns);
  return t.substr(0, 10) + " " + t.substr(11, 8);
}

// Columns padded to their widest cell; the last column is not padded.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string PagesCell(const DecisionSummary& d) {
  if (d.nobody_paged) return "NOBODY PAGED";
  size_t ok = 0, failed = 0;
  for (const DeliverySummary& p : d.deliveries) {
    if (p.action != "trigger") continue;
    if (p.outcome == DeliveryOutcome::kAccepted) {
      ++ok;
    } else if (DeliveryFailed(p.outcome)) {
      ++failed;
    }
  }
  if (ok == 0 && failed == 0) {
    return d.pages_planned > 0 ? std::to_string(d.pages_planned) + " pending" : "-";
  }
  std::string out;
  if (ok) out += std::to_string(ok) + " accepted";
  if (failed) out += std::string(ok ? ", " : "") + std::to_string(failed) + " failed";
  return out;
}

std::string CulpritCell(const DecisionSummary& d) {
  for (const CulpritSummary& c : d.culprits) {
    if (!c.primary) continue;
    std::string s = c.service;
    if (d.kind == routing::Decision::Kind::kRouted) s += " " + Percent(c.share);
    return s;
  }
  return "-";
}

std::string AttemptText(const AuditAttempt& a) {
  std::string s = a.time_ns > 0 ? "at " + FormatAuditTime(a.time_ns) + ": " : "";
  // No status and no error: a pager that speaks no HTTP (the log pager) took it.
  if (a.http_status > 0) {
    s += "HTTP " + std::to_string(a.http_status);
  } else {
    s += a.error.empty() ? "accepted" : "no HTTP answer";
  }
  if (!a.error.empty()) s += ": " + a.error;
  if (!a.request_id.empty()) s += " (request " + a.request_id + ")";
  return s;
}

}  // namespace

std::string HumanDuration(int64_t ns) {
  char buf[32];
  const double ms = static_cast<double>(ns) / 1e6;
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%.1fms", ms);
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.2fs", ms / 1000);
  } else {
    const int64_t s = ns / 1'000'000'000;
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

std::string ListingToJson(const AuditListing& listing) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("decisions");
  w.StartArray();
  for (const DecisionSummary& d : listing.decisions) WriteSummary(w, d);
  w.EndArray();
  w.Key("matched");
  w.Uint64(listing.matched);
  KeyWarnings(w, listing.warnings);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string ListingToText(const AuditListing& listing) {
  std::string out;
  if (listing.decisions.empty()) return out + "no decisions match\n";
  std::vector<std::vector<std::string>> rows = {
      {"TIME (UTC)", "DECISION", "TEAMS", "CULPRIT", "SERVICE", "ALERT", "PAGES", "ID"}};
  bool any_disagreement = false;
  for (const DecisionSummary& d : listing.decisions) {
    std::string decision = routing::DecisionKindName(d.kind);
    if (d.disagreement) {
      decision += "*";
      any_disagreement = true;
    }
    std::string alert = d.alert_name.empty() ? d.alert_identity : d.alert_name;
    if (d.grouped_alerts > 0) alert += " (+" + std::to_string(d.grouped_alerts) + ")";
    rows.push_back({ShortTime(d.time_ns), decision,
                    d.teams.empty() ? "-" : fmt::format("{}", fmt::join(d.teams, ",")),
                    CulpritCell(d), d.alerting_service.empty() ? "-" : d.alerting_service,
                    alert.empty() ? "-" : alert, PagesCell(d), d.id});
  }
  out += Table(rows);
  if (any_disagreement) out += "* the naive rule would have paged differently\n";
  if (listing.matched > listing.decisions.size()) {
    out += "(" + std::to_string(listing.decisions.size()) + " of " +
           std::to_string(listing.matched) + " matching decisions shown; see --limit)\n";
  }
  return out;
}

std::string DetailToJson(const AuditDecisionDetail& detail) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  // The stored lines parsed once already (ParseAuditRecord), so they are valid JSON objects.
  w.Key("decision");
  w.RawValue(detail.decision_json.data(), detail.decision_json.size(), rapidjson::kObjectType);
  w.Key("deliveries");
  w.StartArray();
  for (const std::string& d : detail.delivery_json) {
    w.RawValue(d.data(), d.size(), rapidjson::kObjectType);
  }
  w.EndArray();
  w.Key("source");
  w.StartObject();
  WriteStringMember(w, "file", detail.file);
  w.Key("line");
  w.Uint64(detail.line);
  w.EndObject();
  KeyWarnings(w, detail.warnings);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string DetailToText(const AuditDecisionDetail& detail) {
  const DecisionAudit& r = detail.decision;
  const AuditAlert& a = r.alert;
  std::string out;
  out += "decision " + r.id + "  at " + (r.time_ns > 0 ? FormatAuditTime(r.time_ns) : "?") + "\n";
  out += routing::DecisionToText(r.decision);
  out += "\n";
  std::string alert = "alert    " + (a.name.empty() ? std::string("(no name)") : a.name);
  if (!a.status.empty()) alert += " [" + a.status + "]";
  if (!a.source.empty()) alert += " from " + a.source;
  if (!a.identity.empty()) alert += ", identity " + a.identity;
  out += alert + "\n";
  if (a.received_ns > 0) {
    out += "         received " + FormatAuditTime(a.received_ns);
    if (a.starts_at_ns > 0) out += ", started " + FormatAuditTime(a.starts_at_ns);
    out += "\n";
  }
  if (!a.summary.empty()) out += "         summary: " + a.summary + "\n";
  if (!a.labels.empty()) {
    std::vector<std::string> labels;
    for (const auto& [k, v] : a.labels) labels.push_back(k + "=" + v);
    out += "         labels: " + fmt::format("{}", fmt::join(labels, " ")) + "\n";
  }
  if (!a.grouped_identities.empty()) {
    out += "         +" + std::to_string(a.grouped_identities.size()) +
           " more alert(s) shared this decision\n";
  }
  if (!r.symptom_reason.empty()) {
    out += "symptom  " + std::string(routing::SymptomName(r.decision.symptom)) + " (" +
           r.symptom_reason + ")\n";
  }
  size_t used = 0;
  for (const AuditTraceFetch& t : r.fetch.traces) used += t.used ? 1 : 0;
  out += "traces   asked " + std::to_string(r.fetch.traces.size()) + ", used " +
         std::to_string(used) + "\n";
  if (r.fetch.search) {
    const AuditTraceSearch& s = *r.fetch.search;
    out += "         search " + s.backend + " for " + s.service + ": found " +
           std::to_string(s.found) + " (limit " + std::to_string(s.limit) + ")" +
           (s.error.empty() ? "" : ", error: " + s.error) + "\n";
  }
  for (const AuditTraceFetch& t : r.fetch.traces) {
    std::string line = "         " + t.trace_id + " from " + t.origin + " via " + t.backend;
    line += t.error.empty() ? (t.used ? ": used" : ": not used") : ": " + t.error;
    out += line + "\n";
  }
  const AuditTimings& tm = r.timings;
  out += "timings  queue " + HumanDuration(tm.queue_wait.count() * 1000) + ", fetch " +
         HumanDuration(tm.fetch.count() * 1000) + ", route " +
         HumanDuration(tm.route.count() * 1000) + ", total " +
         HumanDuration(tm.total.count() * 1000) + "\n";

  out += "\ndeliveries\n";
  std::vector<bool> planned_done(r.pages.size(), false);
  for (const DeliveryAudit& p : detail.deliveries) {
    for (size_t i = 0; i < r.pages.size(); ++i) {
      if (r.pages[i].team == p.team && r.pages[i].action == p.action) planned_done[i] = true;
    }
    std::string line = "  " + p.action + " " + p.team + " via " + p.target.kind;
    if (!p.target.name.empty()) line += " \"" + p.target.name + "\"";
    if (!p.target.redacted.empty()) line += " (" + p.target.redacted + ")";
    line += ": " + std::string(DeliveryOutcomeName(p.outcome));
    if (p.outcome == DeliveryOutcome::kAccepted && p.accepted_ns > 0) {
      line += " at " + FormatAuditTime(p.accepted_ns);
      if (a.received_ns > 0 && p.accepted_ns >= a.received_ns) {
        line += ", " + HumanDuration(p.accepted_ns - a.received_ns) + " after the alert arrived";
      }
    }
    line +=
        ", " + std::to_string(p.attempts.size()) + " attempt" + (p.attempts.size() == 1 ? "" : "s");
    out += line + "\n";
    if (!p.fallback_for.empty()) out += "    stands in for team " + p.fallback_for + "\n";
    if (!p.rerouted_to.empty()) out += "    rerouted to team " + p.rerouted_to + "\n";
    if (!p.dedup_key.empty()) out += "    dedup key " + p.dedup_key + "\n";
    for (size_t i = 0; i < p.attempts.size(); ++i) {
      out += "    attempt " + std::to_string(i + 1) + " " + AttemptText(p.attempts[i]) + "\n";
    }
    if (!p.detail.empty()) out += "    " + p.detail + "\n";
  }
  for (size_t i = 0; i < r.pages.size(); ++i) {
    if (planned_done[i]) continue;
    const AuditPlannedPage& p = r.pages[i];
    out += "  " + p.action + " " + p.team + " via " + p.target_kind +
           (p.target_name.empty() ? "" : " \"" + p.target_name + "\"") +
           ": no outcome recorded yet\n";
  }
  if (r.pages.empty() && detail.deliveries.empty()) out += "  (none planned)\n";
  return out;
}

std::string StatsToJson(const AuditStats& s) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("decisions");
  w.Uint64(s.decisions);
  w.Key("routed");
  w.Uint64(s.routed);
  w.Key("fallbacks");
  w.Uint64(s.fallbacks);
  w.Key("fallback_rate");
  w.Double(s.fallback_rate);
  w.Key("disagreements");
  w.Uint64(s.disagreements);
  w.Key("disagreement_rate");
  w.Double(s.disagreement_rate);
  w.Key("nobody_paged");
  w.Uint64(s.nobody_paged);
  w.Key("teams");
  w.StartArray();
  for (const TeamStats& t : s.teams) {
    w.StartObject();
    WriteStringMember(w, "team", t.team);
    w.Key("routed");
    w.Uint64(t.routed);
    w.Key("fallbacks");
    w.Uint64(t.fallbacks);
    w.Key("pages_accepted");
    w.Uint64(t.pages_accepted);
    w.Key("pages_failed");
    w.Uint64(t.pages_failed);
    w.EndObject();
  }
  w.EndArray();
  w.Key("page_latency_ms");
  w.StartObject();
  w.Key("count");
  w.Uint64(s.page_latency_count);
  w.Key("median");
  w.Double(Ms(s.page_latency_median_ns));
  w.Key("p95");
  w.Double(Ms(s.page_latency_p95_ns));
  w.Key("max");
  w.Double(Ms(s.page_latency_max_ns));
  w.EndObject();
  w.Key("top_culprits");
  w.StartArray();
  for (const auto& [service, n] : s.top_culprits) {
    w.StartObject();
    WriteStringMember(w, "service", service);
    w.Key("decisions");
    w.Uint64(n);
    w.EndObject();
  }
  w.EndArray();
  KeyTimeOrNull(w, "from", s.first_ns.value_or(0));
  KeyTimeOrNull(w, "to", s.last_ns.value_or(0));
  KeyWarnings(w, s.warnings);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string StatsToText(const AuditStats& s) {
  std::string out;
  if (s.decisions == 0) return out + "no decisions match\n";
  out += std::to_string(s.decisions) + " decision" + (s.decisions == 1 ? "" : "s") + " from " +
         ShortTime(s.first_ns.value_or(0)) + " to " + ShortTime(s.last_ns.value_or(0)) + " (UTC)\n";
  out += "  routed " + std::to_string(s.routed) + ", fallback " + std::to_string(s.fallbacks) +
         " (fallback rate " + Rate(s.fallback_rate) + ")\n";
  out += "  naive rule and refined answer disagree: " + std::to_string(s.disagreements) + " (" +
         Rate(s.disagreement_rate) + ")\n";
  if (s.nobody_paged > 0) {
    out += "  NOBODY PAGED for " + std::to_string(s.nobody_paged) + " decision" +
           (s.nobody_paged == 1 ? "" : "s") + "\n";
  }
  if (s.page_latency_count > 0) {
    out += "  alert received to page accepted (" + std::to_string(s.page_latency_count) +
           "): median " + HumanDuration(s.page_latency_median_ns) + ", p95 " +
           HumanDuration(s.page_latency_p95_ns) + ", max " + HumanDuration(s.page_latency_max_ns) +
           "\n";
  } else {
    out += "  alert received to page accepted: no accepted page recorded\n";
  }
  out += "\n";
  std::vector<std::vector<std::string>> rows = {
      {"TEAM", "ROUTED", "FALLBACKS", "PAGES ACCEPTED", "PAGES FAILED"}};
  for (const TeamStats& t : s.teams) {
    rows.push_back({t.team.empty() ? "(none)" : t.team, std::to_string(t.routed),
                    std::to_string(t.fallbacks), std::to_string(t.pages_accepted),
                    std::to_string(t.pages_failed)});
  }
  out += Table(rows);
  if (!s.top_culprits.empty()) {
    out += "\nmost frequent culprits (routed decisions)\n";
    std::vector<std::vector<std::string>> crows;
    for (const auto& [service, n] : s.top_culprits) {
      crows.push_back({"  " + service, std::to_string(n)});
    }
    out += Table(crows);
  }
  return out;
}

}  // namespace tracepager::daemon
