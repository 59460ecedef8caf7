#include "integrations/pagerduty/pagerduty_event.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "integrations/json_util.h"
#include "integrations/page_builder.h"

namespace tracepager::integrations::pagerduty {
namespace {

using json::WriteString;

// How much of the details survive, from everything down to a pointer at the audit record.
enum class DetailLevel { kFull, kReduced, kMinimal };

// Members of the page's details kept at kReduced: what a responder reads first. Labels, the
// naive answer and long lists are the bulk and stay in the audit record.
// ("culprit" and "decision_id" are written for every level below kFull.)
constexpr const char* kReducedMembers[] = {"team", "symptom",  "alerting_service", "alertname",
                                           "path", "decision", "reason",           "fallback"};

template <typename Writer>
void WriteDetails(Writer& w, const Page& page, DetailLevel level) {
  rapidjson::Document details;
  details.Parse(page.details_json.data(), page.details_json.size());
  const bool have = !details.HasParseError() && details.IsObject();
  w.StartObject();
  if (have && level == DetailLevel::kFull) {
    for (const auto& m : details.GetObject()) {
      m.name.Accept(w);
      m.value.Accept(w);
    }
  } else if (have && level == DetailLevel::kReduced) {
    for (const char* key : kReducedMembers) {
      auto it = details.FindMember(key);
      if (it == details.MemberEnd()) continue;
      w.Key(key);
      it->value.Accept(w);
    }
  }
  if (!page.why.empty() && level != DetailLevel::kMinimal) {
    w.Key("why");
    WriteString(w, TruncateUtf8(page.why, 4096));
  }
  if (!page.fallback_reason.empty()) {
    w.Key("fallback_reason");
    WriteString(w, TruncateUtf8(page.fallback_reason, 1024));
  }
  if (level != DetailLevel::kFull) {
    w.Key("note");
    w.String(
        "details cut to stay within PagerDuty's 512 KB event limit; the full decision is in "
        "tracepager's audit log");
    w.Key("decision_id");
    WriteString(w, TruncateUtf8(page.decision_id, 256));
    w.Key("culprit");
    WriteString(w, TruncateUtf8(page.component, 256));
  }
  w.EndObject();
}

std::string Trigger(const Page& page, std::string_view routing_key, const PagerDutyOptions& options,
                    DetailLevel level, size_t max_links) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("routing_key");
  WriteString(w, routing_key);
  w.Key("event_action");
  w.String("trigger");
  w.Key("dedup_key");
  WriteString(w, TruncateUtf8(page.dedup_key, kMaxDedupKeyBytes));
  w.Key("payload");
  w.StartObject();
  w.Key("summary");
  WriteString(w, TruncateUtf8(page.summary, kMaxSummaryBytes));
  w.Key("source");
  WriteString(w, TruncateUtf8(page.source.empty() ? "tracepager" : page.source, 1024));
  w.Key("severity");
  WriteString(w, page.severity.empty() ? "error" : page.severity);
  if (page.created_unix_ns != 0) {
    w.Key("timestamp");
    WriteString(w, Rfc3339Utc(page.created_unix_ns));
  }
  if (!page.component.empty()) {
    w.Key("component");
    WriteString(w, TruncateUtf8(page.component, 1024));
  }
  if (!page.group.empty()) {
    w.Key("group");
    WriteString(w, TruncateUtf8(page.group, 1024));
  }
  if (!page.symptom.empty()) {
    w.Key("class");
    WriteString(w, page.symptom);
  }
  w.Key("custom_details");
  WriteDetails(w, page, level);
  w.EndObject();
  if (!page.links.empty() && max_links > 0) {
    w.Key("links");
    w.StartArray();
    for (size_t i = 0; i < page.links.size() && i < max_links; ++i) {
      w.StartObject();
      w.Key("href");
      WriteString(w, TruncateUtf8(page.links[i].href, 4096));
      w.Key("text");
      WriteString(w, TruncateUtf8(page.links[i].text, 256));
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("client");
  WriteString(w, options.client);
  if (!options.client_url.empty()) {
    w.Key("client_url");
    WriteString(w, options.client_url);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

std::string EventJson(const Page& page, std::string_view routing_key,
                      const PagerDutyOptions& options) {
  if (page.action == Page::Action::kResolve) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("routing_key");
    WriteString(w, routing_key);
    w.Key("event_action");
    w.String("resolve");
    w.Key("dedup_key");
    WriteString(w, TruncateUtf8(page.dedup_key, kMaxDedupKeyBytes));
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }
  // Shrink in steps until the event fits; every field but custom_details and links is
  // already bounded, so the last step always fits.
  std::string event = Trigger(page, routing_key, options, DetailLevel::kFull, 20);
  if (event.size() <= kMaxEventBytes) return event;
  event = Trigger(page, routing_key, options, DetailLevel::kReduced, 20);
  if (event.size() <= kMaxEventBytes) return event;
  return Trigger(page, routing_key, options, DetailLevel::kMinimal, 5);
}

void ReadReply(const HttpReply& reply, SendOutcome* outcome) {
  rapidjson::Document doc;
  doc.Parse(reply.body.data(), reply.body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    if (!reply.body.empty()) {
      outcome->detail += fmt::format(": \"{}\"", BodyExcerpt(reply.body));
    }
    return;
  }
  auto text = [&](const char* key) -> std::string {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsString()) return {};
    return BodyExcerpt(std::string_view(it->value.GetString(), it->value.GetStringLength()));
  };
  std::string status = text("status");
  std::string message = text("message");
  if (!status.empty()) outcome->detail += ": " + status;
  if (!message.empty()) outcome->detail += ": " + message;
  auto errors = doc.FindMember("errors");
  if (errors != doc.MemberEnd() && errors->value.IsArray() && !errors->value.Empty()) {
    std::string list;
    for (const rapidjson::Value& e : errors->value.GetArray()) {
      if (!e.IsString()) continue;
      if (!list.empty()) list += "; ";
      list += std::string_view(e.GetString(), e.GetStringLength());
    }
    if (!list.empty()) outcome->detail += fmt::format(" ({})", BodyExcerpt(list));
  }
  // PagerDuty gives no request id; the dedup key it applied identifies the alert on its side.
  std::string dedup = text("dedup_key");
  if (!dedup.empty()) outcome->request_id = "dedup_key " + dedup;
}

}  // namespace tracepager::integrations::pagerduty
