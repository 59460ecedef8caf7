// Webhook parsing and job derivation. See alert.h for the contract.
//
// Parsing is lenient about what real senders leave out (the fixtures include 2017-2019
// Alertmanagers without per-alert status or fingerprint, a forwarder without version/groupKey,
// and a legacy sender with `"version": 0`), and strict about the types of the fields we use:
// a label that is an object is a malformed payload, and silently dropping it could drop the
// service label and page the wrong team.
#include "daemon/alert.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "routing/json_util.h"

namespace tracepager::daemon {
namespace {

using rapidjson::Value;

using routing::internal::JsonTypeName;

// Error messages carry the form and a JSON path: `grafana alerts[0].values.A: ...`.
class Parser {
 public:
  explicit Parser(const char* form) : form_(form) {}

  Error Fail(const std::string& path, const std::string& what) const {
    return Error::InvalidInput(std::string(form_) + " " + path + ": " + what);
  }
  Error WrongType(const std::string& path, const char* expected, const Value& v) const {
    return Fail(path, std::string("expected ") + expected + ", got " + JsonTypeName(v));
  }

  // Optional string member; absent or null leaves *out unchanged.
  Status OptString(const Value& obj, const char* key, const std::string& path,
                   std::string* out) const {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || it->value.IsNull()) return OkStatus();
    if (!it->value.IsString()) return WrongType(Join(path, key), "a string", it->value);
    out->assign(it->value.GetString(), it->value.GetStringLength());
    return OkStatus();
  }

  // A label/annotation value: strings as they are, numbers and booleans as their JSON text.
  // `path` names the value in the error; it is only called for when there is one.
  template <typename PathFn>
  Status ScalarText(const Value& v, const PathFn& path, std::string* out) const {
    if (v.IsString()) {
      out->assign(v.GetString(), v.GetStringLength());
    } else if (v.IsBool()) {
      *out = v.GetBool() ? "true" : "false";
    } else if (v.IsNumber()) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      v.Accept(w);
      out->assign(buf.GetString(), buf.GetSize());
    } else {
      return WrongType(path(), "a string", v);
    }
    return OkStatus();
  }

  // Optional map of string -> scalar; absent or null leaves *out empty. A repeated name keeps
  // its last value. Builds no strings but the map's: a webhook's labels and annotations are most
  // of what the HTTP thread parses, and error paths are only spelled out for an error.
  Status OptStringMap(const Value& obj, const char* key, const std::string& path,
                      StringMap* out) const {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || it->value.IsNull()) return OkStatus();
    if (!it->value.IsObject()) return WrongType(Join(path, key), "an object", it->value);
    for (auto m = it->value.MemberBegin(); m != it->value.MemberEnd(); ++m) {
      std::string_view name(m->name.GetString(), m->name.GetStringLength());
      std::string text;
      auto here = [&] { return Join(Join(path, key), name); };
      if (Status s = ScalarText(m->value, here, &text); !s.ok()) return s;
      // Senders write labels sorted (Go marshals maps so), which makes the end the right hint.
      out->insert_or_assign(out->end(), std::string(name), std::move(text));
    }
    return OkStatus();
  }

  // Optional RFC 3339 time (strings only, as Alertmanager sends).
  Status OptTime(const Value& obj, const char* key, const std::string& path, int64_t* out) const {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || it->value.IsNull()) return OkStatus();
    if (!it->value.IsString()) return WrongType(Join(path, key), "a string", it->value);
    Result<int64_t> t =
        ParseAlertTime(std::string_view(it->value.GetString(), it->value.GetStringLength()));
    if (!t.ok()) return Fail(Join(path, key), t.error().message);
    *out = *t;
    return OkStatus();
  }

  static std::string Join(const std::string& path, std::string_view key) {
    std::string out = path;
    if (!out.empty()) out += '.';
    out += key;
    return out;
  }
  static std::string Index(const std::string& path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

 private:
  const char* form_;
};

Status ParseStatus(const Parser& p, const std::string& text, const std::string& path,
                   AlertStatus* out) {
  if (text == "firing") {
    *out = AlertStatus::kFiring;
  } else if (text == "resolved") {
    *out = AlertStatus::kResolved;
  } else {
    return p.Fail(path, "expected \"firing\" or \"resolved\", got \"" + text + "\"");
  }
  return OkStatus();
}

// Alertmanager and Grafana share the group shape; Grafana adds fields we keep when present.
Result<AlertBatch> ParseGroup(const Value& root, AlertFormat format, const AlertParseLimits& lim) {
  const bool grafana = format == AlertFormat::kGrafana;
  Parser p(grafana ? "grafana" : "alertmanager");
  if (!root.IsObject()) return p.WrongType("body", "an object", root);
  AlertBatch batch;
  batch.format = format;
  const std::string top;
  if (Status s = p.OptString(root, "receiver", top, &batch.receiver); !s.ok()) return s.error();
  if (Status s = p.OptString(root, "status", top, &batch.status); !s.ok()) return s.error();
  if (Status s = p.OptString(root, "externalURL", top, &batch.external_url); !s.ok()) {
    return s.error();
  }
  // groupKey and version are strings in every current sender; a 2017 sender put numbers there.
  // They are informational, so a number is kept as text rather than refused.
  for (auto [key, out] :
       {std::pair{"groupKey", &batch.group_key}, std::pair{"version", &batch.version}}) {
    auto it = root.FindMember(key);
    if (it == root.MemberEnd() || it->value.IsNull()) continue;
    auto here = [key = key] { return std::string(key); };
    if (Status s = p.ScalarText(it->value, here, out); !s.ok()) return s.error();
  }
  if (auto it = root.FindMember("truncatedAlerts"); it != root.MemberEnd()) {
    if (!it->value.IsNull()) {
      if (!it->value.IsUint()) {
        return p.WrongType("truncatedAlerts", "a non-negative integer", it->value);
      }
      batch.truncated_alerts = it->value.GetUint();
    }
  }
  if (Status s = p.OptStringMap(root, "groupLabels", top, &batch.group_labels); !s.ok()) {
    return s.error();
  }
  if (Status s = p.OptStringMap(root, "commonLabels", top, &batch.common_labels); !s.ok()) {
    return s.error();
  }
  if (Status s = p.OptStringMap(root, "commonAnnotations", top, &batch.common_annotations);
      !s.ok()) {
    return s.error();
  }

  // The status an alert without its own takes. Grafana's `state` is "ok" when resolved.
  AlertStatus group_status = AlertStatus::kFiring;
  if (batch.status == "resolved") group_status = AlertStatus::kResolved;
  if (grafana) {
    std::string state;
    if (Status s = p.OptString(root, "state", top, &state); !s.ok()) return s.error();
    if (batch.status.empty() && state == "ok") group_status = AlertStatus::kResolved;
  }

  auto alerts_it = root.FindMember("alerts");
  if (alerts_it == root.MemberEnd()) return p.Fail("alerts", "missing");
  const Value& alerts = alerts_it->value;
  if (!alerts.IsArray()) return p.WrongType("alerts", "an array", alerts);
  if (alerts.Size() > lim.max_alerts) {
    return p.Fail("alerts", std::to_string(alerts.Size()) + " alerts, more than the limit of " +
                                std::to_string(lim.max_alerts));
  }
  for (rapidjson::SizeType i = 0; i < alerts.Size(); ++i) {
    const Value& a = alerts[i];
    std::string path = Parser::Index("alerts", i);
    if (!a.IsObject()) return p.WrongType(path, "an object", a);
    Alert alert;
    alert.status = group_status;
    std::string status;
    if (Status s = p.OptString(a, "status", path, &status); !s.ok()) return s.error();
    if (!status.empty()) {
      if (Status s = ParseStatus(p, status, Parser::Join(path, "status"), &alert.status); !s.ok()) {
        return s.error();
      }
    }
    if (Status s = p.OptStringMap(a, "labels", path, &alert.labels); !s.ok()) return s.error();
    if (Status s = p.OptStringMap(a, "annotations", path, &alert.annotations); !s.ok()) {
      return s.error();
    }
    if (Status s = p.OptTime(a, "startsAt", path, &alert.starts_at_ns); !s.ok()) return s.error();
    if (Status s = p.OptTime(a, "endsAt", path, &alert.ends_at_ns); !s.ok()) return s.error();
    if (Status s = p.OptString(a, "generatorURL", path, &alert.generator_url); !s.ok()) {
      return s.error();
    }
    if (Status s = p.OptString(a, "fingerprint", path, &alert.fingerprint); !s.ok()) {
      return s.error();
    }
    if (grafana) {
      for (const char* key : {"silenceURL", "dashboardURL", "panelURL", "imageURL"}) {
        std::string url;
        if (Status s = p.OptString(a, key, path, &url); !s.ok()) return s.error();
        if (!url.empty()) alert.links.push_back(std::move(url));
      }
      // `values` is informational (it goes to the audit through the annotations we keep); we
      // only check its shape so a broken sender is noticed.
      if (auto it = a.FindMember("values"); it != a.MemberEnd() && !it->value.IsNull()) {
        if (!it->value.IsObject()) {
          return p.WrongType(Parser::Join(path, "values"), "an object", it->value);
        }
      }
    }
    batch.alerts.push_back(std::move(alert));
  }
  return batch;
}

Result<int64_t> GenericTime(const Parser& p, const Value& v, const std::string& path) {
  if (v.IsString()) {
    Result<int64_t> t = ParseAlertTime(std::string_view(v.GetString(), v.GetStringLength()));
    if (!t.ok()) return p.Fail(path, t.error().message);
    return *t;
  }
  if (v.IsNumber()) {
    double seconds = v.GetDouble();
    // Unix seconds; the int64-nanosecond range ends in 2262.
    if (!std::isfinite(seconds) || seconds < 0 || seconds > 9.2e9) {
      return p.Fail(path, "Unix seconds out of range");
    }
    return static_cast<int64_t>(seconds * 1e9);
  }
  return p.WrongType(path, "an RFC 3339 string or Unix seconds", v);
}

Result<Alert> ParseGenericAlert(const Parser& p, const Value& a, const std::string& path) {
  if (!a.IsObject()) return p.WrongType(path.empty() ? "body" : path, "an object", a);
  Alert alert;
  std::string status;
  if (Status s = p.OptString(a, "status", path, &status); !s.ok()) return s.error();
  if (!status.empty()) {
    if (Status s = ParseStatus(p, status, Parser::Join(path, "status"), &alert.status); !s.ok()) {
      return s.error();
    }
  }
  for (auto [key, out] :
       {std::pair{"service", &alert.service}, std::pair{"summary", &alert.summary},
        std::pair{"severity", &alert.severity}, std::pair{"alertname", &alert.alertname},
        std::pair{"id", &alert.fingerprint}}) {
    if (Status s = p.OptString(a, key, path, out); !s.ok()) return s.error();
  }
  if (Status s = p.OptString(a, "symptom", path, &alert.symptom); !s.ok()) return s.error();
  if (!alert.symptom.empty() && alert.symptom != "errors" && alert.symptom != "latency") {
    return p.Fail(Parser::Join(path, "symptom"),
                  "expected \"errors\" or \"latency\", got \"" + alert.symptom + "\"");
  }
  if (Status s = p.OptStringMap(a, "labels", path, &alert.labels); !s.ok()) return s.error();
  if (Status s = p.OptStringMap(a, "annotations", path, &alert.annotations); !s.ok()) {
    return s.error();
  }
  if (auto it = a.FindMember("trace_ids"); it != a.MemberEnd() && !it->value.IsNull()) {
    std::string here = Parser::Join(path, "trace_ids");
    if (!it->value.IsArray()) return p.WrongType(here, "an array", it->value);
    for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
      const Value& v = it->value[i];
      if (!v.IsString()) return p.WrongType(Parser::Index(here, i), "a string", v);
      std::string_view text(v.GetString(), v.GetStringLength());
      std::optional<std::string> id = NormalizeTraceId(text);
      if (!id) {
        return p.Fail(Parser::Index(here, i),
                      "\"" + std::string(text.substr(0, 80)) +
                          "\" is not a trace id (16 or 32 hex digits, or a traceparent)");
      }
      if (std::find(alert.trace_ids.begin(), alert.trace_ids.end(), *id) == alert.trace_ids.end()) {
        alert.trace_ids.push_back(std::move(*id));
      }
    }
  }
  if (auto it = a.FindMember("links"); it != a.MemberEnd() && !it->value.IsNull()) {
    std::string here = Parser::Join(path, "links");
    if (!it->value.IsArray()) return p.WrongType(here, "an array", it->value);
    for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
      const Value& v = it->value[i];
      if (!v.IsString()) return p.WrongType(Parser::Index(here, i), "a string", v);
      alert.links.emplace_back(v.GetString(), v.GetStringLength());
    }
  }
  for (auto [key, out] :
       {std::pair{"starts_at", &alert.starts_at_ns}, std::pair{"ends_at", &alert.ends_at_ns}}) {
    auto it = a.FindMember(key);
    if (it == a.MemberEnd() || it->value.IsNull()) continue;
    Result<int64_t> t = GenericTime(p, it->value, Parser::Join(path, key));
    if (!t.ok()) return t.error();
    *out = *t;
  }
  return alert;
}

Result<AlertBatch> ParseGeneric(const Value& root, const AlertParseLimits& lim) {
  Parser p("generic");
  AlertBatch batch;
  batch.format = AlertFormat::kGeneric;
  const Value* list = nullptr;
  std::string base;
  if (root.IsArray()) {
    list = &root;
  } else if (root.IsObject() && root.HasMember("alerts")) {
    list = &root["alerts"];
    base = "alerts";
    if (!list->IsArray()) return p.WrongType(base, "an array", *list);
  }
  if (list == nullptr) {
    Result<Alert> alert = ParseGenericAlert(p, root, "");
    if (!alert.ok()) return alert.error();
    batch.alerts.push_back(std::move(*alert));
    return batch;
  }
  if (list->Size() > lim.max_alerts) {
    return p.Fail(base.empty() ? "body" : base, std::to_string(list->Size()) +
                                                    " alerts, more than the limit of " +
                                                    std::to_string(lim.max_alerts));
  }
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    Result<Alert> alert = ParseGenericAlert(p, (*list)[i], Parser::Index(base, i));
    if (!alert.ok()) return alert.error();
    batch.alerts.push_back(std::move(*alert));
  }
  return batch;
}

AlertFormat DetectFormat(const Value& root) {
  if (!root.IsObject()) return AlertFormat::kGeneric;
  bool group = false;
  for (const char* key :
       {"receiver", "groupKey", "version", "groupLabels", "commonLabels", "externalURL"}) {
    if (root.HasMember(key)) group = true;
  }
  if (!group) return AlertFormat::kGeneric;
  if (root.HasMember("orgId") || root.HasMember("state")) return AlertFormat::kGrafana;
  if (auto it = root.FindMember("version"); it != root.MemberEnd() && it->value.IsString() &&
                                            std::string_view(it->value.GetString()) == "1") {
    return AlertFormat::kGrafana;
  }
  return AlertFormat::kAlertmanager;
}

// ---- time ----

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-compatible low-level
// date algorithms").
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

const char* AlertFormatName(AlertFormat format) {
  switch (format) {
    case AlertFormat::kAuto:
      return "auto";
    case AlertFormat::kAlertmanager:
      return "alertmanager";
    case AlertFormat::kGrafana:
      return "grafana";
    case AlertFormat::kGeneric:
      return "generic";
  }
  return "unknown";
}

Result<AlertFormat> AlertFormatFromName(std::string_view name) {
  for (AlertFormat f : {AlertFormat::kAuto, AlertFormat::kAlertmanager, AlertFormat::kGrafana,
                        AlertFormat::kGeneric}) {
    if (name == AlertFormatName(f)) return f;
  }
  return Error::InvalidInput("unknown alert format \"" + std::string(name) +
                             "\" (known: auto, alertmanager, grafana, generic)");
}

Result<AlertBatch> ParseAlertBatch(std::string_view body, AlertFormat format,
                                   const AlertParseLimits& limits) {
  if (body.size() > limits.max_bytes) {
    return Error::InvalidInput("body: " + std::to_string(body.size()) +
                               " bytes, more than the limit of " +
                               std::to_string(limits.max_bytes));
  }
  // The readers' bounded parse: refuses deep nesting as it meets it (never recursing past the
  // limit), and names the byte of the first error. The DOM's memory comes from a buffer on the
  // stack, which holds a webhook of a few alerts (larger ones continue on the heap); the default
  // pool mallocs a 64 KiB chunk per document.
  char pool[32 << 10];
  rapidjson::MemoryPoolAllocator<> allocator(pool, sizeof pool);
  rapidjson::Document doc(&allocator);
  if (Status st = routing::internal::ParseDocument(body, limits.max_depth, &doc); !st.ok()) {
    return Error::InvalidInput("body: " + st.error().message);
  }
  if (format == AlertFormat::kAuto) format = DetectFormat(doc);
  if (format == AlertFormat::kGeneric) return ParseGeneric(doc, limits);
  return ParseGroup(doc, format, limits);
}

Result<int64_t> ParseAlertTime(std::string_view s) {
  if (s.empty() || s == "0001-01-01T00:00:00Z") return int64_t{0};
  auto bad = [&](const char* what) {
    return Error::InvalidInput("\"" + std::string(s.substr(0, 64)) +
                               "\" is not an RFC 3339 time (" + what + ")");
  };
  int year, month, day, hour, minute, second;
  if (!Digits(s, 0, 4, &year) || s.size() < 19 || s[4] != '-' || !Digits(s, 5, 2, &month) ||
      s[7] != '-' || !Digits(s, 8, 2, &day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !Digits(s, 11, 2, &hour) || s[13] != ':' || !Digits(s, 14, 2, &minute) || s[16] != ':' ||
      !Digits(s, 17, 2, &second)) {
    return bad("expected YYYY-MM-DDTHH:MM:SS");
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return bad("field out of range");
  }
  size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t digits = 0;
    int64_t scale = 100'000'000;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (digits < 9) frac_ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++digits;
      ++pos;
    }
    if (digits == 0) return bad("empty fraction");
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !Digits(s, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return bad("bad offset");
    }
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad("missing Z or offset");
  }
  if (pos != s.size()) return bad("trailing characters");
  if (year < 1678 || year > 2261) return bad("year outside 1678..2261");
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  return secs * 1'000'000'000 + frac_ns;
}

std::string FormatAlertTime(int64_t unix_ns) {
  int64_t secs = unix_ns / 1'000'000'000;
  int64_t frac = unix_ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld",
                        static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                        static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60));
  std::string out(buf, static_cast<size_t>(n));
  if (frac != 0) {
    std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(frac));
    std::string f(buf);
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  out += 'Z';
  return out;
}

}  // namespace tracepager::daemon
