#include "integrations/webhook/webhook_body.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "integrations/crypto.h"
#include "integrations/json_util.h"
#include "integrations/page_builder.h"

namespace tracepager::integrations::webhook {

using json::WriteString;

std::string BodyJson(const Page& page) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("version");
  w.String("1");
  w.Key("action");
  w.String(page.action == Page::Action::kTrigger ? "trigger" : "resolve");
  auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    WriteString(w, value);
  };
  str("dedup_key", page.dedup_key);
  str("alert_identity", page.alert_identity);
  str("team", page.team);
  str("summary", page.summary);
  str("severity", page.severity);
  str("culprit", page.component);
  str("alerting_service", page.group);
  str("symptom", page.symptom);
  str("alertname", page.alertname);
  str("why", page.why);
  w.Key("path");
  json::WriteStrings(w, page.path);
  w.Key("links");
  w.StartArray();
  for (const PageLink& link : page.links) {
    w.StartObject();
    str("href", link.href);
    str("text", link.text);
    w.EndObject();
  }
  w.EndArray();
  w.Key("labels");
  json::WriteStringMap(w, page.labels);
  str("fallback_reason", page.fallback_reason);
  str("decision_id", page.decision_id);
  str("created_at", page.created_unix_ns == 0 ? "" : Rfc3339Utc(page.created_unix_ns));
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
