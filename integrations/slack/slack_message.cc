#include "integrations/slack/slack_message.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "integrations/json_util.h"
#include "integrations/page_builder.h"

namespace tracepager::integrations::slack {
namespace {

using json::WriteString;

std::string Percent(double share) { return fmt::format("{:.0f}%", share * 100.0); }

std::string Path(const Page& page) {
  std::string out;
  for (const std::string& s : page.path) {
    if (!out.empty()) out += " \xE2\x86\x92 ";  // →
    out += "`" + Escape(s) + "`";
  }
  return out;
}

// "• `orders-db` (payments-data) 67% of traces" per culprit, from the page's details.
std::string Culprits(const Page& page, const char* member) {
  rapidjson::Document d;
  d.Parse(page.details_json.data(), page.details_json.size());
  if (d.HasParseError() || !d.IsObject()) return {};
  const rapidjson::Value* list = nullptr;
  if (std::string_view(member) == "culprits") {
    if (d.HasMember("culprits")) list = &d["culprits"];
  } else if (d.HasMember("naive") && d["naive"].IsObject() && d["naive"].HasMember("culprits")) {
    list = &d["naive"]["culprits"];
  }
  if (list == nullptr || !list->IsArray()) return {};
  std::string out;
  for (const rapidjson::Value& c : list->GetArray()) {
    if (!c.IsObject() || !c.HasMember("service") || !c["service"].IsString()) continue;
    std::string team = c.HasMember("team") && c["team"].IsString() ? c["team"].GetString() : "";
    double share = c.HasMember("share") && c["share"].IsNumber() ? c["share"].GetDouble() : 0;
    out += fmt::format("\xE2\x80\xA2 `{}` ({}) {} of traces\n", Escape(c["service"].GetString()),
                       team.empty() ? "no owner" : Escape(team), Percent(share));
  }
  return out;
}

std::string Links(const Page& page) {
  std::string out;
  for (const PageLink& link : page.links) {
    if (!out.empty()) out += "  \xE2\x80\xA2  ";
    // Inside <url|text> only the three escapes apply; a "|" in the text would end it early.
    std::string text = Escape(link.text);
    for (char& c : text) {
      if (c == '|') c = '/';
    }
    out += fmt::format("<{}|{}>", Escape(link.href), text);
  }
  return out;
}

template <typename Writer>
void Section(Writer& w, const std::string& mrkdwn) {
  w.StartObject();
  w.Key("type");
  w.String("section");
  w.Key("text");
  w.StartObject();
  w.Key("type");
  w.String("mrkdwn");
  w.Key("text");
  WriteString(w, TruncateChars(mrkdwn, kMaxSectionChars));
  w.EndObject();
  w.EndObject();
}

std::string Team(const Page& page) { return page.team.empty() ? "(no team)" : page.team; }

}  // namespace

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string MessageJson(const Page& page) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  if (page.action == Page::Action::kResolve) {
    std::string text = fmt::format(":white_check_mark: Resolved for *{}*: {}", Escape(Team(page)),
                                   Escape(page.summary));
    w.Key("text");
    WriteString(w, TruncateChars(text, kMaxTextChars));
    w.Key("blocks");
    w.StartArray();
    Section(w,
            text + fmt::format("\nThe alert {}resolved; no action needed for this page.",
                               page.alertname.empty() ? "" : "`" + Escape(page.alertname) + "` "));
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }

  std::string headline =
      fmt::format(":rotating_light: Paging *{}*: {}", Escape(Team(page)), Escape(page.summary));
  w.Key("text");
  WriteString(w, TruncateChars(headline, kMaxTextChars));
  w.Key("blocks");
  w.StartArray();
  w.StartObject();
  w.Key("type");
  w.String("header");
  w.Key("text");
  w.StartObject();
  w.Key("type");
  w.String("plain_text");
  w.Key("text");
  WriteString(
      w, TruncateChars(fmt::format("Paging {}: {} ({})", Team(page), page.component, page.symptom),
                       kMaxHeaderChars));
  w.EndObject();
  w.EndObject();

  std::string body = headline + "\n";
  if (!page.fallback_reason.empty()) {
    body += fmt::format(":warning: *Fallback:* {}\n", Escape(page.fallback_reason));
  }
  if (!page.why.empty()) body += fmt::format("*Why:* {}\n", Escape(page.why));
  if (!page.path.empty()) body += fmt::format("*Path:* {}\n", Path(page));
  if (!page.alertname.empty()) {
    body += fmt::format("*Alert:* `{}` severity {} on `{}`\n", Escape(page.alertname),
                        Escape(page.severity), Escape(page.group));
  }
  Section(w, body);
  std::string culprits = Culprits(page, "culprits");
  if (!culprits.empty()) Section(w, "*Culprits:*\n" + culprits);
  std::string naive = Culprits(page, "naive");
  if (!naive.empty()) Section(w, "*The plain rule would have blamed:*\n" + naive);
  std::string links = Links(page);
  if (!links.empty()) Section(w, links);
  w.StartObject();
  w.Key("type");
  w.String("context");
  w.Key("elements");
  w.StartArray();
  w.StartObject();
  w.Key("type");
  w.String("mrkdwn");
  w.Key("text");
  WriteString(w, TruncateChars(fmt::format("tracepager decision {} \xC2\xB7 {}",
                                           Escape(page.decision_id), Escape(page.dedup_key)),
                               kMaxSectionChars));
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void ReadReply(const HttpReply& reply, SendOutcome* outcome) {
  std::string_view body = reply.body;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
  if (outcome->accepted && body != "ok") {
    // Not Slack's answer: a proxy or a captive page said 2xx. Sending again is better than
    // believing a page went out.
    outcome->accepted = false;
    outcome->permanent = false;
    outcome->detail += fmt::format(": expected body \"ok\", got \"{}\"", BodyExcerpt(body));
    return;
  }
  if (!body.empty()) outcome->detail += fmt::format(": {}", BodyExcerpt(body));
}

}  // namespace tracepager::integrations::slack
