#include "integrations/webhook/webhook_body.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "integrations/crypto.h"
#include "integrations/json_util.h"
#include "integrations/page_builder.h"

namespace tracepager::integrations::webhook {

using json::WriteStringMember;

std::string BodyJson(const Page& page) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("version");
  w.String("1");
  w.Key("action");
  w.String(page.action == Page::Action::kTrigger ? "trigger" : "resolve");
  WriteStringMember(w, "dedup_key", page.dedup_key);
  WriteStringMember(w, "alert_identity", page.alert_identity);
  WriteStringMember(w, "team", page.team);
  WriteStringMember(w, "summary", page.summary);
  WriteStringMember(w, "severity", page.severity);
  WriteStringMember(w, "culprit", page.component);
  WriteStringMember(w, "alerting_service", page.group);
  WriteStringMember(w, "symptom", page.symptom);
  WriteStringMember(w, "alertname", page.alertname);
  WriteStringMember(w, "why", page.why);
  w.Key("path");
  json::WriteStrings(w, page.path);
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
  WriteStringMember(w, "decision_id", page.decision_id);
  WriteStringMember(w, "created_at",
                    page.created_unix_ns == 0 ? "" : Rfc3339Utc(page.created_unix_ns));
  w.Key("decision");
  rapidjson::Document decision;
  decision.Parse(page.decision_json.data(), page.decision_json.size());
  if (!decision.HasParseError() && decision.IsObject()) {
    decision.Accept(w);
  } else {
    w.Null();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Headers SignatureHeaders(std::string_view body, std::string_view key,
                         std::string_view signature_header, std::string_view timestamp_header,
                         int64_t unix_seconds) {
  Headers out;
  if (timestamp_header.empty()) {
    out.emplace_back(std::string(signature_header), HmacSha256Hex(key, body));
    return out;
  }
  std::string ts = std::to_string(unix_seconds);
  out.emplace_back(std::string(signature_header), HmacSha256Hex(key, ts + ":" + std::string(body)));
  out.emplace_back(std::string(timestamp_header), ts);
  return out;
}

}  // namespace tracepager::integrations::webhook
