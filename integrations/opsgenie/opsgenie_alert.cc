#include "integrations/opsgenie/opsgenie_alert.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <set>
#include <utility>
#include <vector>

#include "integrations/json_util.h"
#include "integrations/page_builder.h"

namespace tracepager::integrations::opsgenie {
namespace {

using json::WriteString;

size_t Chars(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string PercentEncode(std::string_view s) {
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

std::string Percent(double share) { return fmt::format("{:.0f}%", share * 100.0); }

// "orders-db (payments-data, 67% of traces), payment (payments, 33%)"
std::string CulpritList(const rapidjson::Value& culprits) {
  std::string out;
  if (!culprits.IsArray()) return out;
  for (const rapidjson::Value& c : culprits.GetArray()) {
    if (!c.IsObject() || !c.HasMember("service") || !c["service"].IsString()) continue;
    std::string team = c.HasMember("team") && c["team"].IsString() ? c["team"].GetString() : "";
    double share = c.HasMember("share") && c["share"].IsNumber() ? c["share"].GetDouble() : 0;
    if (!out.empty()) out += ", ";
    out += fmt::format("{} ({}, {} of traces)", c["service"].GetString(),
                       team.empty() ? "no owner" : team, Percent(share));
  }
  return out;
}

std::string Member(const rapidjson::Document& doc, const char* key) {
  if (!doc.IsObject()) return {};
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsString()) return {};
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::string Description(const Page& page, const rapidjson::Document& details) {
  std::string out;
  if (!page.fallback_reason.empty()) out += fmt::format("FALLBACK: {}\n\n", page.fallback_reason);
  if (!page.why.empty()) out += page.why + "\n\n";
  if (!page.path.empty()) {
    std::string path;
    for (const std::string& s : page.path) path += (path.empty() ? "" : " > ") + s;
    out += fmt::format("Path: {}\n", path);
  }
  if (details.IsObject() && details.HasMember("culprits")) {
    std::string list = CulpritList(details["culprits"]);
    if (!list.empty()) out += fmt::format("Culprits: {}\n", list);
  }
  if (details.IsObject() && details.HasMember("naive") && details["naive"].IsObject() &&
      details["naive"].HasMember("culprits")) {
    std::string list = CulpritList(details["naive"]["culprits"]);
    if (!list.empty()) out += fmt::format("The plain rule would blame: {}\n", list);
  }
  std::string reason = Member(details, "reason");
  if (!reason.empty()) out += fmt::format("Decision: {}\n", reason);
  if (!page.links.empty()) {
    out += "\n";
    for (const PageLink& link : page.links) out += fmt::format("{}: {}\n", link.text, link.href);
  }
  if (!page.decision_id.empty()) out += fmt::format("\ntracepager decision {}\n", page.decision_id);
  return TruncateChars(out, kMaxDescriptionChars);
}

// Details in order of use to a responder; once the budget is spent the rest is dropped (the
// audit record has everything).
std::vector<std::pair<std::string, std::string>> Details(const Page& page,
                                                         const rapidjson::Document& details) {
  std::vector<std::pair<std::string, std::string>> candidates = {
      {"team", page.team},           {"culprit", page.component},
      {"symptom", page.symptom},     {"alerting_service", page.group},
      {"alertname", page.alertname},
  };
  std::string path;
  for (const std::string& s : page.path) path += (path.empty() ? "" : " > ") + s;
  candidates.emplace_back("path", path);
  if (details.IsObject() && details.HasMember("culprits")) {
    candidates.emplace_back("culprits", CulpritList(details["culprits"]));
  }
  if (details.IsObject() && details.HasMember("naive") && details["naive"].IsObject() &&
      details["naive"].HasMember("culprits")) {
    candidates.emplace_back("naive_culprits", CulpritList(details["naive"]["culprits"]));
  }
  candidates.emplace_back("fallback_reason", page.fallback_reason);
  candidates.emplace_back("decision_id", page.decision_id);
  if (details.IsObject() && details.HasMember("trace_ids") && details["trace_ids"].IsArray()) {
    std::string ids;
    for (const rapidjson::Value& id : details["trace_ids"].GetArray()) {
      if (id.IsString()) ids += (ids.empty() ? "" : ",") + std::string(id.GetString());
    }
    candidates.emplace_back("trace_ids", ids);
  }
  for (const auto& [k, v] : page.labels) candidates.emplace_back("label." + k, v);

  std::vector<std::pair<std::string, std::string>> out;
  size_t used = 0;
  for (auto& [k, v] : candidates) {
    if (v.empty()) continue;
    std::string value = TruncateChars(v, 1000);
    size_t cost = Chars(k) + Chars(value);
    if (used + cost > kMaxDetailsChars) continue;  // a smaller later entry may still fit
    used += cost;
    out.emplace_back(k, std::move(value));
  }
  return out;
}

std::vector<std::string> Tags(const Page& page) {
  std::vector<std::string> candidates = {"tracepager"};
  if (!page.team.empty()) candidates.push_back("team:" + page.team);
  if (!page.component.empty()) candidates.push_back("culprit:" + page.component);
  if (!page.symptom.empty()) candidates.push_back("symptom:" + page.symptom);
  if (!page.severity.empty()) candidates.push_back("severity:" + page.severity);
  if (!page.alertname.empty()) candidates.push_back(page.alertname);
  if (!page.fallback_reason.empty()) candidates.push_back("fallback");
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& t : candidates) {
    std::string tag = TruncateChars(t, kMaxTagChars);
    if (out.size() < kMaxTags && seen.insert(tag).second) out.push_back(std::move(tag));
  }
  return out;
}

}  // namespace

Result<std::string> BaseUrl(std::string_view api) {
  if (api == "us") return std::string(kUsBaseUrl);
  if (api == "eu") return std::string(kEuBaseUrl);
  if (api == "jsm") return std::string(kJsmBaseUrl);
  if (api.rfind("https://", 0) == 0 || api.rfind("http://", 0) == 0) {
    std::string url(api);
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
  }
  return Error::InvalidInput(
      fmt::format("opsgenie api \"{}\": expected us, eu, jsm or an http(s) URL", api));
}

std::string Priority(std::string_view severity) {
  if (severity == "critical") return "P1";
  if (severity == "error") return "P2";
  if (severity == "warning") return "P3";
  if (severity == "info") return "P5";
  return "P3";
}

std::string CreateAlertJson(const Page& page, std::string_view responder,
                            const OpsgenieOptions& options) {
  rapidjson::Document details;
  details.Parse(page.details_json.data(), page.details_json.size());
  if (details.HasParseError()) details.SetObject();

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("message");
  WriteString(w, TruncateChars(page.summary, kMaxMessageChars));
  w.Key("alias");
  WriteString(w, TruncateChars(page.dedup_key, kMaxAliasChars));
  w.Key("description");
  WriteString(w, Description(page, details));
  w.Key("responders");
  w.StartArray();
  w.StartObject();
  w.Key(IsUuid(responder) ? "id" : "name");
  WriteString(w, responder);
  w.Key("type");
  w.String("team");
  w.EndObject();
  w.EndArray();
  w.Key("tags");
  json::WriteStrings(w, Tags(page));
  w.Key("details");
  w.StartObject();
  for (const auto& [k, v] : Details(page, details)) {
    WriteString(w, k);
    WriteString(w, v);
  }
  w.EndObject();
  w.Key("entity");
  WriteString(w, TruncateChars(page.component, kMaxEntityChars));
  w.Key("source");
  WriteString(w, TruncateChars(options.source, kMaxSourceChars));
  w.Key("priority");
  WriteString(w, Priority(page.severity));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string CloseAlertJson(const Page& page, const OpsgenieOptions& options) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("source");
  WriteString(w, TruncateChars(options.source, kMaxSourceChars));
  w.Key("note");
  WriteString(w, TruncateChars(fmt::format("Resolved: the alert {}resolved.",
                                           page.alertname.empty() ? "" : page.alertname + " "),
                               25000));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string RequestUrl(const Page& page, const OpsgenieOptions& options) {
  if (page.action == Page::Action::kTrigger) return options.base_url + "/v2/alerts";
  return fmt::format("{}/v2/alerts/{}/close?identifierType=alias", options.base_url,
                     PercentEncode(TruncateChars(page.dedup_key, kMaxAliasChars)));
}

void ReadReply(const HttpReply& reply, SendOutcome* outcome) {
  rapidjson::Document doc;
  doc.Parse(reply.body.data(), reply.body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    if (!reply.body.empty()) outcome->detail += fmt::format(": \"{}\"", BodyExcerpt(reply.body));
    std::string header_id = reply.Header("X-Request-ID");
    if (!header_id.empty()) outcome->request_id = BodyExcerpt(header_id, 100);
    return;
  }
  std::string request_id = Member(doc, "requestId");
  if (request_id.empty()) request_id = reply.Header("X-Request-ID");
  outcome->request_id = BodyExcerpt(request_id, 100);
  std::string result = Member(doc, "result");
  std::string message = Member(doc, "message");
  if (!result.empty()) outcome->detail += ": " + BodyExcerpt(result);
  if (!message.empty()) outcome->detail += ": " + BodyExcerpt(message);
  auto errors = doc.FindMember("errors");
  if (errors != doc.MemberEnd() && errors->value.IsObject()) {
    std::string list;
    for (const auto& m : errors->value.GetObject()) {
      if (!m.value.IsString()) continue;
      if (!list.empty()) list += "; ";
      list += fmt::format("{}: {}", m.name.GetString(), m.value.GetString());
    }
    if (!list.empty()) outcome->detail += fmt::format(" ({})", BodyExcerpt(list));
  }
}

}  // namespace tracepager::integrations::opsgenie
