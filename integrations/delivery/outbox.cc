#include "integrations/delivery/outbox.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "integrations/json_util.h"
#include "integrations/page_builder.h"

namespace tracepager::integrations::delivery {

using json::WriteString;

const char* EntryStateName(EntryState state) {
  switch (state) {
    case EntryState::kPending:
      return "pending";
    case EntryState::kSent:
      return "sent";
    case EntryState::kFailed:
      return "failed";
    case EntryState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::string EntryToJson(const OutboxEntry& e) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("id");
  w.Int64(e.id);
  w.Key("submission");
  WriteString(w, e.submission);
  w.Key("group");
  WriteString(w, e.group);
  w.Key("hop");
  w.Int64(e.hop);
  w.Key("tried_teams");
  json::WriteStrings(w, e.tried_teams);
  w.Key("page");
  // The page nests as a document of its own (PageToJson), so its format has one definition.
  std::string page = PageToJson(e.page);
  rapidjson::Document page_doc;
  page_doc.Parse(page.data(), page.size());
  page_doc.Accept(w);
  w.Key("target");
  w.StartObject();
  w.Key("kind");
  WriteString(w, e.target.kind);
  w.Key("team");
  WriteString(w, e.target.team);
  w.Key("name");
  WriteString(w, e.target.name);
  w.Key("credential");
  WriteString(w, e.target.credential.Reveal());
  w.Key("credential_origin");
  WriteString(w, e.target.credential.origin());
  w.Key("signing_key");
  WriteString(w, e.target.signing_key.Reveal());
  w.Key("signing_key_origin");
  WriteString(w, e.target.signing_key.origin());
  w.EndObject();
  w.Key("target_key");
  WriteString(w, e.target_key);
  w.Key("state");
  w.String(EntryStateName(e.state));
  w.Key("attempts");
  w.Int64(e.attempts);
  w.Key("permanent");
  w.Bool(e.permanent);
  w.Key("resolved");
  w.Bool(e.resolved);
  w.Key("created_ns");
  w.Int64(e.created_ns);
  w.Key("deadline_ns");
  w.Int64(e.deadline_ns);
  w.Key("next_attempt_ns");
  w.Int64(e.next_attempt_ns);
  w.Key("finished_ns");
  w.Int64(e.finished_ns);
  w.Key("last_http_status");
  w.Int64(e.last_http_status);
  w.Key("last_error");
  WriteString(w, e.last_error);
  w.Key("request_id");
  WriteString(w, e.request_id);
  w.Key("history");
  w.StartArray();
  for (const AttemptLog& a : e.history) {
    w.StartObject();
    w.Key("time_ns");
    w.Int64(a.time_ns);
    w.Key("http_status");
    w.Int64(a.http_status);
    w.Key("error");
    WriteString(w, a.error);
    w.Key("request_id");
    WriteString(w, a.request_id);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<OutboxEntry> EntryFromJson(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Error::InvalidInput("outbox entry: not a JSON object");
  }
  OutboxEntry e;
  json::Reader r(doc, "outbox entry");
  int64_t hop = 0, attempts = 0, status = 0;
  std::string state;
  r.Int64("id", &e.id);
  r.String("submission", &e.submission);
  r.String("group", &e.group);
  r.Int64("hop", &hop);
  r.Strings("tried_teams", &e.tried_teams);
  r.String("target_key", &e.target_key);
  r.String("state", &state);
  r.Int64("attempts", &attempts);
  r.Bool("permanent", &e.permanent);
  r.Bool("resolved", &e.resolved);
  r.Int64("created_ns", &e.created_ns);
  r.Int64("deadline_ns", &e.deadline_ns);
  r.Int64("next_attempt_ns", &e.next_attempt_ns);
  r.Int64("finished_ns", &e.finished_ns);
  r.Int64("last_http_status", &status);
  r.String("last_error", &e.last_error);
  r.String("request_id", &e.request_id);
  if (!r.ok()) return r.error();
  e.hop = static_cast<int>(hop);
  e.attempts = static_cast<int>(attempts);
  e.last_http_status = static_cast<int>(status);
  if (state == "pending") {
    e.state = EntryState::kPending;
  } else if (state == "sent") {
    e.state = EntryState::kSent;
  } else if (state == "failed") {
    e.state = EntryState::kFailed;
  } else if (state == "cancelled") {
    e.state = EntryState::kCancelled;
  } else {
    return Error::InvalidInput(fmt::format("outbox entry {}: unknown state \"{}\"", e.id, state));
  }

  if (const rapidjson::Value* history = r.Array("history"); history != nullptr) {
    for (const rapidjson::Value& item : history->GetArray()) {
      json::Reader a(item, fmt::format("outbox entry {} history", e.id));
      AttemptLog log;
      int64_t http_status = 0;
      a.Int64("time_ns", &log.time_ns);
      a.Int64("http_status", &http_status);
      a.String("error", &log.error);
      a.String("request_id", &log.request_id);
      if (!item.IsObject() || !a.ok()) {
        return Error::InvalidInput(fmt::format("outbox entry {}: bad \"history\"", e.id));
      }
      log.http_status = static_cast<int>(http_status);
      e.history.push_back(std::move(log));
    }
  }
  if (!r.ok()) return r.error();

  auto page = doc.FindMember("page");
  if (page == doc.MemberEnd() || !page->value.IsObject()) {
    return Error::InvalidInput(fmt::format("outbox entry {}: \"page\" is not an object", e.id));
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  page->value.Accept(w);
  Result<Page> parsed = PageFromJson(std::string_view(buf.GetString(), buf.GetSize()));
  if (!parsed.ok()) return parsed.error();
  e.page = std::move(parsed).value();

  auto target = doc.FindMember("target");
  if (target == doc.MemberEnd() || !target->value.IsObject()) {
    return Error::InvalidInput(fmt::format("outbox entry {}: \"target\" is not an object", e.id));
  }
  json::Reader t(target->value, fmt::format("outbox entry {} target", e.id));
  std::string credential, credential_origin, signing_key, signing_key_origin;
  t.String("kind", &e.target.kind);
  t.String("team", &e.target.team);
  t.String("name", &e.target.name);
  t.String("credential", &credential);
  t.String("credential_origin", &credential_origin);
  t.String("signing_key", &signing_key);
  t.String("signing_key_origin", &signing_key_origin);
  if (!t.ok()) return t.error();
  e.target.credential = Secret(std::move(credential), std::move(credential_origin));
  e.target.signing_key = Secret(std::move(signing_key), std::move(signing_key_origin));
  return e;
}

}  // namespace tracepager::integrations::delivery
