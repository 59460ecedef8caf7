#include "integrations/page_builder.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>

#include "integrations/crypto.h"
#include "integrations/json_util.h"
#include "routing/decision_format.h"
#include "routing/walk.h"

namespace tracepager::integrations {
namespace {

using json::WriteString;
using json::WriteStringMember;

constexpr size_t kMaxSummaryBytes = 1024;  // PagerDuty's payload.summary limit

// Consecutive spans of one service fold into one entry ("frontend > checkout"), the way
// routing/decision_format.cc prints paths.
std::vector<std::string> ServicePath(const routing::TraceCulprit& culprit) {
  std::vector<std::string> out;
  for (const routing::PathStep& step : culprit.path) {
    if (out.empty() || out.back() != step.service) out.push_back(step.service);
  }
  // A virtual culprit has no span of its own: its caller's client span ends the path.
  if (out.empty() || out.back() != culprit.service) out.push_back(culprit.service);
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The culprits this team is paged for, most likely first. A fallback decision has none: the
// alerting service's owner is paged for the alerting service itself.
std::vector<const routing::Culprit*> TeamCulprits(const routing::Decision& decision,
                                                  const std::string& team) {
  std::vector<const routing::Culprit*> out;
  for (const routing::Culprit& c : decision.culprits) {
    if (c.team == team && c.paged) out.push_back(&c);
  }
  return out;
}

// The path to `service` in the first trace that blames it as a primary culprit.
std::vector<std::string> PathTo(const routing::Decision& decision, const std::string& service) {
  for (const routing::TraceVerdict& verdict : decision.traces) {
    for (const routing::TraceCulprit& c : verdict.culprits) {
      if (c.service == service && c.role == routing::CulpritRole::kPrimary) {
        return ServicePath(c);
      }
    }
  }
  return {service};
}

// Trace ids for links: the traces that blame `service` first, then the others routed on, then
// the alert's own ids (a decision with no traces still links what the alert named).
std::vector<std::string> LinkTraceIds(const routing::Decision& decision, const AlertInfo& alert,
                                      const std::string& service) {
  std::vector<std::string> ids;
  std::set<std::string> seen;
  auto add = [&](const std::string& id) {
    if (!id.empty() && seen.insert(id).second) ids.push_back(id);
  };
  for (const routing::TraceVerdict& verdict : decision.traces) {
    for (const routing::TraceCulprit& c : verdict.culprits) {
      if (c.service == service) add(verdict.trace_id);
    }
  }
  for (const routing::TraceVerdict& verdict : decision.traces) add(verdict.trace_id);
  for (const std::string& id : alert.trace_ids) add(id);
  return ids;
}

std::string TraceUrl(const std::string& url_template, const std::string& trace_id) {
  std::string out = url_template;
  static constexpr std::string_view kPlaceholder = "{trace_id}";
  size_t pos = 0;
  while ((pos = out.find(kPlaceholder, pos)) != std::string::npos) {
    out.replace(pos, kPlaceholder.size(), trace_id);
    pos += trace_id.size();
  }
  return out;
}

bool SameTeams(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

std::string Summary(const routing::Decision& decision, const AlertInfo& alert,
                    const std::string& culprit) {
  const char* symptom = routing::SymptomName(decision.symptom);
  std::string head;
  if (decision.kind == routing::Decision::Kind::kRouted && culprit != decision.alerting_service) {
    head = fmt::format(
        "{}: {} behind {}", culprit, symptom,
        decision.alerting_service.empty() ? "the alerting service" : decision.alerting_service);
  } else {
    head = fmt::format("{}: {}", culprit.empty() ? "unknown service" : culprit, symptom);
    if (decision.kind == routing::Decision::Kind::kFallback)
      head += " (no failing dependency found)";
  }
  std::string tail;
  if (!alert.alertname.empty() && !alert.summary.empty()) {
    tail = fmt::format("{}: {}", alert.alertname, alert.summary);
  } else {
    tail = alert.alertname.empty() ? alert.summary : alert.alertname;
  }
  if (!tail.empty()) head += fmt::format(" - {}", tail);
  return TruncateUtf8(head, kMaxSummaryBytes);
}

template <typename Writer>
void WriteCulprit(Writer& w, const routing::Culprit& c) {
  w.StartObject();
  w.Key("service");
  WriteString(w, c.service);
  w.Key("team");
  WriteString(w, c.team);
  w.Key("share");
  w.Double(c.share);
  w.Key("votes");
  w.Int(c.votes);
  w.Key("role");
  w.String(routing::CulpritRoleName(c.role));
  w.Key("virtual");
  w.Bool(c.is_virtual);
  w.Key("why");
  WriteString(w, c.why);
  w.EndObject();
}

std::string Details(const routing::Decision& decision, const AlertInfo& alert,
                    const std::string& team, const std::string& culprit,
                    const std::vector<std::string>& path, std::string_view decision_id) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("team");
  WriteString(w, team);
  w.Key("culprit");
  WriteString(w, culprit);
  w.Key("symptom");
  w.String(routing::SymptomName(decision.symptom));
  w.Key("alerting_service");
  WriteString(w, decision.alerting_service);
  if (!alert.alertname.empty()) {
    w.Key("alertname");
    WriteString(w, alert.alertname);
  }
  w.Key("path");
  WriteString(w, fmt::format("{}", fmt::join(path, " > ")));
  w.Key("decision");
  w.String(routing::DecisionKindName(decision.kind));
  w.Key("reason");
  WriteString(w, decision.reason);
  w.Key("culprits");
  w.StartArray();
  for (const routing::Culprit& c : decision.culprits) WriteCulprit(w, c);
  w.EndArray();
  // The plain rule's answer only when it would have paged someone else: that difference is
  // what a responder needs to know ("the naive rule blames payment, we blame orders-db").
  if (!SameTeams(decision.naive_teams, decision.teams)) {
    w.Key("naive");
    w.StartObject();
    w.Key("teams");
    json::WriteStrings(w, decision.naive_teams);
    w.Key("culprits");
    w.StartArray();
    for (const routing::Culprit& c : decision.naive) WriteCulprit(w, c);
    w.EndArray();
    w.EndObject();
  }
  if (!decision.changed_by.empty()) {
    w.Key("changed_by");
    w.StartArray();
    for (routing::Refinement r : decision.changed_by) w.String(routing::RefinementName(r));
    w.EndArray();
  }
  w.Key("trace_ids");
  w.StartArray();
  for (const routing::TraceVerdict& v : decision.traces) WriteString(w, v.trace_id);
  w.EndArray();
  w.Key("labels");
  json::WriteStringMap(w, alert.labels);
  w.Key("alert_identity");
  WriteString(w, alert.identity);
  w.Key("decision_id");
  WriteString(w, decision_id);
  w.EndObject();
  return buf.GetString();
}

}  // namespace

std::string DedupKey(std::string_view alert_identity, std::string_view team) {
  // Length-prefixed so that no (identity, team) pair can collide with another by moving
  // characters across the boundary.
  std::string material =
      fmt::format("{}:{}|{}:{}", alert_identity.size(), alert_identity, team.size(), team);
  return "tracepager-" + Sha256Hex(material);
}

std::string MapSeverity(std::string_view alert_severity, std::string_view fallback) {
  const std::string s = Lower(alert_severity);
  if (s == "critical" || s == "crit" || s == "page" || s == "p1" || s == "fatal" ||
      s == "emergency") {
    return "critical";
  }
  if (s == "error" || s == "err" || s == "high" || s == "major" || s == "p2") return "error";
  if (s == "warning" || s == "warn" || s == "medium" || s == "minor" || s == "p3") {
    return "warning";
  }
  if (s == "info" || s == "informational" || s == "low" || s == "none" || s == "p4" || s == "p5") {
    return "info";
  }
  return std::string(fallback);
}

std::vector<Page> BuildPages(const routing::Decision& decision, const AlertInfo& alert,
                             const PageOptions& options, std::string_view decision_id,
                             int64_t now_unix_ns) {
  std::vector<std::string> teams = decision.teams;
  // Nobody found to page is still a page: team "" has no targets, so delivery readdresses it
  // to the default team and records why (integrations/delivery/delivery.h).
  if (teams.empty()) teams.push_back("");

  const std::string decision_json = routing::DecisionToJson(decision);
  std::vector<Page> pages;
  for (const std::string& team : teams) {
    std::vector<const routing::Culprit*> culprits = TeamCulprits(decision, team);
    const std::string culprit =
        culprits.empty() ? decision.alerting_service : culprits.front()->service;

    Page page;
    page.action = Page::Action::kTrigger;
    page.alert_identity = alert.identity;
    page.dedup_key = DedupKey(alert.identity, team);
    page.team = team;
    page.summary = Summary(decision, alert, culprit);
    page.severity = MapSeverity(alert.severity, options.default_severity);
    page.source = decision.alerting_service.empty() ? "tracepager" : decision.alerting_service;
    page.component = culprit;
    page.group = decision.alerting_service;
    page.alertname = alert.alertname;
    page.symptom = routing::SymptomName(decision.symptom);
    page.why = culprits.empty() ? decision.reason : culprits.front()->why;
    page.path = culprits.empty() ? std::vector<std::string>{decision.alerting_service}
                                 : PathTo(decision, culprit);
    page.decision_id = std::string(decision_id);
    page.details_json = Details(decision, alert, team, culprit, page.path, decision_id);
    page.decision_json = decision_json;
    if (!options.trace_url_template.empty()) {
      std::vector<std::string> ids = LinkTraceIds(decision, alert, culprit);
      for (size_t i = 0; i < ids.size() && i < options.max_trace_links; ++i) {
        page.links.push_back(
            {TraceUrl(options.trace_url_template, ids[i]), fmt::format("Trace {}", ids[i])});
      }
    }
    if (!alert.runbook_url.empty()) page.links.push_back({alert.runbook_url, "Runbook"});
    if (!alert.generator_url.empty()) page.links.push_back({alert.generator_url, "Alert source"});
    page.labels = alert.labels;
    page.created_unix_ns = now_unix_ns;
    pages.push_back(std::move(page));
  }
  return pages;
}

Page FallbackPage(const Page& page, std::string_view team, std::string_view reason) {
  Page out = page;
  out.team = std::string(team);
  out.dedup_key = DedupKey(page.alert_identity, team);
  out.fallback_reason = std::string(reason);
  std::string prefix = page.team.empty() ? std::string("[no owner found] ")
                                         : fmt::format("[fallback for {}] ", page.team);
  out.summary = TruncateUtf8(prefix + page.summary, kMaxSummaryBytes);
  // Keep the details honest about who was meant to be paged and why this team got it.
  rapidjson::Document doc;
  doc.Parse(page.details_json.data(), page.details_json.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    auto& alloc = doc.GetAllocator();
    rapidjson::Value fallback(rapidjson::kObjectType);
    fallback.AddMember("for_team", rapidjson::Value(page.team.c_str(), alloc), alloc);
    fallback.AddMember(
        "reason",
        rapidjson::Value(reason.data(), static_cast<rapidjson::SizeType>(reason.size()), alloc),
        alloc);
    doc.RemoveMember("fallback");
    doc.AddMember("fallback", fallback, alloc);
    if (doc.HasMember("team"))
      doc["team"].SetString(team.data(), static_cast<rapidjson::SizeType>(team.size()), alloc);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    doc.Accept(w);
    out.details_json = buf.GetString();
  }
  return out;
}

Page ResolvePage(const Page& trigger) {
  Page out = trigger;
  out.action = Page::Action::kResolve;
  return out;
}

std::string TruncateUtf8(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  static constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026
  if (max_bytes < kEllipsis.size()) return std::string(text.substr(0, 0));
  size_t cut = max_bytes - kEllipsis.size();
  // Back off continuation bytes (10xxxxxx) so a multi-byte character is never split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + std::string(kEllipsis);
}

std::string TruncateChars(std::string_view text, size_t max_chars) {
  size_t chars = 0;
  size_t cut_at = std::string_view::npos;  // byte offset after max_chars - 1 characters
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;  // continuation
    if (chars + 1 == max_chars) cut_at = i;
    ++chars;
  }
  if (chars <= max_chars) return std::string(text);
  if (max_chars == 0) return {};
  return std::string(text.substr(0, cut_at)) + "\xE2\x80\xA6";
}

std::string PageToJson(const Page& page) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("action");
  w.String(page.action == Page::Action::kTrigger ? "trigger" : "resolve");
  WriteStringMember(w, "alert_identity", page.alert_identity);
  WriteStringMember(w, "dedup_key", page.dedup_key);
  WriteStringMember(w, "team", page.team);
  WriteStringMember(w, "summary", page.summary);
  WriteStringMember(w, "severity", page.severity);
  WriteStringMember(w, "source", page.source);
  WriteStringMember(w, "component", page.component);
  WriteStringMember(w, "group", page.group);
  WriteStringMember(w, "alertname", page.alertname);
  WriteStringMember(w, "symptom", page.symptom);
  WriteStringMember(w, "why", page.why);
  w.Key("path");
  json::WriteStrings(w, page.path);
  WriteStringMember(w, "decision_id", page.decision_id);
  WriteStringMember(w, "details_json", page.details_json);
  WriteStringMember(w, "decision_json", page.decision_json);
  w.Key("links");
  w.StartArray();
  for (const PageLink& link : page.links) {
    w.StartObject();
    WriteStringMember(w, "href", link.href);
    WriteStringMember(w, "text", link.text);
    w.EndObject();
  }
  w.EndArray();
  w.Key("labels");
  json::WriteStringMap(w, page.labels);
  WriteStringMember(w, "fallback_reason", page.fallback_reason);
  w.Key("created_unix_ns");
  w.Int64(page.created_unix_ns);
  w.EndObject();
  return buf.GetString();
}

Result<Page> PageFromJson(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Error::InvalidInput("page: not a JSON object");
  }
  json::Reader r(doc, "page");
  Page page;
  std::string action;
  r.String("action", &action);
  if (action == "trigger") {
    page.action = Page::Action::kTrigger;
  } else if (action == "resolve") {
    page.action = Page::Action::kResolve;
  } else if (r.ok()) {
    return Error::InvalidInput(
        fmt::format("page: \"action\" is \"{}\", expected trigger|resolve", action));
  }
  r.String("alert_identity", &page.alert_identity);
  r.String("dedup_key", &page.dedup_key);
  r.String("team", &page.team);
  r.String("summary", &page.summary);
  r.String("severity", &page.severity);
  r.String("source", &page.source);
  r.String("component", &page.component);
  r.String("group", &page.group);
  r.String("alertname", &page.alertname);
  r.String("symptom", &page.symptom);
  r.String("why", &page.why);
  r.Strings("path", &page.path);
  r.String("decision_id", &page.decision_id);
  r.String("details_json", &page.details_json);
  r.String("decision_json", &page.decision_json);
  r.StringMap("labels", &page.labels);
  r.String("fallback_reason", &page.fallback_reason);
  r.Int64("created_unix_ns", &page.created_unix_ns);
  if (r.ok()) {
    const rapidjson::Value* links = r.Array("links");
    if (links != nullptr) {
      for (rapidjson::SizeType i = 0; i < links->Size(); ++i) {
        const rapidjson::Value& l = (*links)[i];
        if (!l.IsObject() || !l.HasMember("href") || !l["href"].IsString() ||
            !l.HasMember("text") || !l["text"].IsString()) {
          return Error::InvalidInput(fmt::format("page: links[{}] is not {{href, text}}", i));
        }
        page.links.push_back({l["href"].GetString(), l["text"].GetString()});
      }
    }
  }
  if (!r.ok()) return r.error();
  return page;
}

}  // namespace tracepager::integrations

namespace tracepager::integrations {

std::string Rfc3339Utc(int64_t unix_ns) {
  int64_t seconds = unix_ns / 1'000'000'000;
  int64_t millis = (unix_ns % 1'000'000'000) / 1'000'000;
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

}  // namespace tracepager::integrations
