// Job derivation: how an alert becomes a routing job (service, symptom, trace ids, window,
// identity, storm and dedup keys). See alert.h for the contract; parsing is in alert.cc.
#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <mutex>

#include "daemon/alert.h"

namespace tracepager::daemon {
namespace {

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// ASCII only, as the markers and hex digits it serves: std::tolower consults the locale on
// every character, which showed in the HTTP threads' profile (bench/README.md).
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Whether `text` holds "trace" in any case: every marker ScanTraceLinks looks for does, and most
// labels and annotations (summaries, descriptions, runbook links) do not.
bool MentionsTrace(std::string_view text) {
  static constexpr std::string_view kWord = "trace";
  return std::search(text.begin(), text.end(), kWord.begin(), kWord.end(),
                     [](char c, char w) { return Lower(c) == w; }) != text.end();
}

void AddTraceId(std::string id, std::vector<std::string>* out) {
  if (std::find(out->begin(), out->end(), id) == out->end()) out->push_back(std::move(id));
}

// FNV-1a 64: stable across builds and platforms (std::hash is neither), and enough to name an
// alert's label set; Alertmanager's own fingerprint is a 64-bit hash of the same data.
uint64_t Fnv1a(std::string_view data, uint64_t h = 14695981039346656037ull) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string Hex16(uint64_t v) {
  static const char* kDigits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kDigits[v & 0xf];
  return out;
}

const std::string* Find(const StringMap& m, std::string_view key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

bool SymptomFromText(std::string_view text, routing::Symptom* out) {
  std::string lower;
  for (char c : text) lower += Lower(c);
  if (lower == "errors" || lower == "error") {
    *out = routing::Symptom::kErrors;
    return true;
  }
  if (lower == "latency") {
    *out = routing::Symptom::kLatency;
    return true;
  }
  return false;
}

}  // namespace

struct AlertNamePattern::Memo {
  std::mutex mu;
  std::map<std::string, bool, std::less<>> answers;  // looked up by string_view, no copy
};

Result<AlertNamePattern> AlertNamePattern::Compile(std::string_view text) {
  AlertNamePattern p;
  p.text = std::string(text);
  p.memo = std::make_shared<Memo>();
  try {
    p.regex = std::make_shared<const std::regex>(
        p.text, std::regex::ECMAScript | std::regex::icase | std::regex::optimize);
  } catch (const std::regex_error& e) {
    return Error::InvalidInput(std::string("invalid regular expression: ") + e.what());
  }
  return p;
}

bool AlertNamePattern::Matches(std::string_view alertname) const {
  // libstdc++'s regex recurses per input character; alert names are short, and capping the
  // input keeps a pathological name from exhausting the stack.
  if (regex == nullptr || alertname.size() > 512) return false;
  if (memo != nullptr) {
    std::lock_guard<std::mutex> lk(memo->mu);
    auto it = memo->answers.find(alertname);
    if (it != memo->answers.end()) return it->second;
  }
  bool match = std::regex_search(alertname.begin(), alertname.end(), *regex);
  if (memo != nullptr) {
    std::lock_guard<std::mutex> lk(memo->mu);
    if (memo->answers.size() < kMemoLimit) memo->answers.emplace(std::string(alertname), match);
  }
  return match;
}

AlertRules DefaultAlertRules() {
  AlertRules rules;
  for (const char* text : {"latency", "p9[059]", "slow", "duration", "response.?time"}) {
    rules.latency_patterns.push_back(std::move(*AlertNamePattern::Compile(text)));
  }
  return rules;
}

std::optional<std::string> NormalizeTraceId(std::string_view text) {
  // W3C traceparent: version-traceid-parentid-flags.
  if (text.size() == 55 && text[2] == '-' && text[35] == '-' && text[52] == '-') {
    text = text.substr(3, 32);
  }
  if (text.size() != 16 && text.size() != 32) return std::nullopt;
  std::string id;
  id.reserve(32);
  if (text.size() == 16) id.assign(16, '0');
  bool nonzero = false;
  for (char c : text) {
    if (!IsHex(c)) return std::nullopt;
    if (c != '0') nonzero = true;
    id += Lower(c);
  }
  if (!nonzero) return std::nullopt;
  return id;
}

void ScanTraceLinks(std::string_view text, std::vector<std::string>* out) {
  static constexpr std::string_view kMarkers[] = {"/trace/",      "/traces/",   "%2ftrace%2f",
                                                  "%2ftraces%2f", "traceid=",   "trace_id=",
                                                  "traceid:",     "traceid%3d", "trace_id%3d"};
  if (!MentionsTrace(text)) return;
  std::string lower;
  lower.reserve(text.size());
  for (char c : text) lower += Lower(c);
  for (std::string_view marker : kMarkers) {
    size_t pos = 0;
    while ((pos = lower.find(marker, pos)) != std::string::npos) {
      size_t start = pos + marker.size();
      size_t end = start;
      while (end < lower.size() && IsHex(lower[end]) && end - start <= 32) ++end;
      size_t n = end - start;
      // Exactly 16 or 32 digits, not the prefix of a longer token.
      bool boundary = end == lower.size() || !std::isalnum(static_cast<unsigned char>(lower[end]));
      if ((n == 16 || n == 32) && boundary) {
        if (auto id = NormalizeTraceId(std::string_view(lower).substr(start, n))) {
          AddTraceId(std::move(*id), out);
        }
      }
      pos = start;
    }
  }
}

std::vector<RoutingJob> DeriveJobs(AlertBatch batch, const AlertRules& rules, int64_t now_ns) {
  std::vector<RoutingJob> jobs;
  jobs.reserve(batch.alerts.size());
  const int64_t lookback_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(rules.lookback).count();
  for (Alert& alert : batch.alerts) {
    RoutingJob job;
    job.kind = alert.status == AlertStatus::kFiring ? JobKind::kRoute : JobKind::kResolve;
    job.source = AlertFormatName(batch.format);
    // Moved, not copied (most of an alert's strings): read from the job from here on.
    job.labels = std::move(alert.labels);
    job.annotations = std::move(alert.annotations);
    job.generator_url = std::move(alert.generator_url);
    const StringMap& labels = job.labels;
    const StringMap& annotations = job.annotations;
    job.group_key = batch.group_key;
    job.receiver = batch.receiver;
    job.group_truncated_alerts = batch.truncated_alerts;
    job.received_ns = now_ns;
    job.starts_at_ns = alert.starts_at_ns;
    job.ends_at_ns = job.kind == JobKind::kResolve ? alert.ends_at_ns : 0;

    job.alertname = !alert.alertname.empty() ? alert.alertname : "";
    if (job.alertname.empty()) {
      if (const std::string* v = Find(labels, "alertname")) job.alertname = *v;
    }
    job.summary = alert.summary;
    if (job.summary.empty()) {
      if (const std::string* v = Find(annotations, "summary")) job.summary = *v;
    }
    job.severity = alert.severity;
    if (job.severity.empty()) {
      if (const std::string* v = Find(labels, "severity")) job.severity = *v;
    }

    // Alerting service: the generic `service` field, else the first configured label present.
    if (!alert.service.empty()) {
      job.alerting_service = alert.service;
      job.service_label = "service (field)";
    } else {
      for (const std::string& name : rules.service_labels) {
        const std::string* v = Find(labels, name);
        if (v != nullptr && !v->empty()) {
          job.alerting_service = *v;
          job.service_label = name;
          break;
        }
      }
    }

    // Symptom: explicit field or label, then alert-name patterns, then the default.
    routing::Symptom symptom = rules.default_symptom;
    std::string reason = std::string("default ") + SymptomText(symptom);
    bool decided = false;
    if (!alert.symptom.empty() && SymptomFromText(alert.symptom, &symptom)) {
      reason = "field symptom=\"" + alert.symptom + "\"";
      decided = true;
    }
    if (!decided && !rules.symptom_label.empty()) {
      const std::string* v = Find(labels, rules.symptom_label);
      if (v != nullptr && SymptomFromText(*v, &symptom)) {
        reason = "label " + rules.symptom_label + "=\"" + *v + "\"";
        decided = true;
      }
    }
    if (!decided) {
      for (auto [list, kind] : {std::pair{&rules.latency_patterns, routing::Symptom::kLatency},
                                std::pair{&rules.error_patterns, routing::Symptom::kErrors}}) {
        for (const AlertNamePattern& p : *list) {
          if (p.Matches(job.alertname)) {
            symptom = kind;
            reason = "alertname \"" + job.alertname + "\" matches /" + p.text + "/";
            decided = true;
            break;
          }
        }
        if (decided) break;
      }
    }
    job.symptom = symptom;
    job.symptom_reason = std::move(reason);

    // Trace ids: explicit ones, then configured labels and annotations, then links.
    std::vector<std::string> ids = std::move(alert.trace_ids);
    auto take = [&](const StringMap& map, const std::vector<std::string>& names) {
      for (const std::string& name : names) {
        const std::string* v = Find(map, name);
        if (v == nullptr) continue;
        if (auto id = NormalizeTraceId(*v)) {
          AddTraceId(std::move(*id), &ids);
        } else {
          ScanTraceLinks(*v, &ids);
        }
      }
    };
    take(labels, rules.trace_id_labels);
    take(annotations, rules.trace_id_annotations);
    if (rules.scan_links) {
      for (const auto& [name, value] : annotations) ScanTraceLinks(value, &ids);
      for (const std::string& link : alert.links) ScanTraceLinks(link, &ids);
      ScanTraceLinks(job.generator_url, &ids);
    }
    if (ids.size() > rules.max_trace_ids) ids.resize(rules.max_trace_ids);
    job.trace_ids = std::move(ids);

    // Window: from the alert's start minus the lookback (a start in the future is clock skew
    // and is clamped to now) to now.
    int64_t start = alert.starts_at_ns != 0 ? std::min(alert.starts_at_ns, now_ns) : now_ns;
    job.window_start_ns = start - lookback_ns;
    job.window_end_ns = now_ns;

    // Identity.
    if (!alert.fingerprint.empty()) {
      const char* prefix = batch.format == AlertFormat::kAlertmanager ? "am:"
                           : batch.format == AlertFormat::kGrafana    ? "grafana:"
                                                                      : "generic:";
      job.identity = prefix + alert.fingerprint;
    } else {
      // The map is sorted, so the hash is of the sorted label set. NUL separators cannot occur
      // in label names and keep "a=bc" apart from "ab=c".
      uint64_t h = Fnv1a(job.source);
      for (const auto& [name, value] : labels) {
        h = Fnv1a(std::string_view("\0", 1), h);
        h = Fnv1a(name, h);
        h = Fnv1a(std::string_view("\0", 1), h);
        h = Fnv1a(value, h);
      }
      if (!alert.service.empty()) {
        h = Fnv1a(std::string_view("\0service\0", 9), h);
        h = Fnv1a(alert.service, h);
      }
      job.identity = "labels:" + Hex16(h);
    }

    job.storm_key = job.alerting_service.empty()
                        ? "alert|" + job.identity
                        : job.alerting_service + "|" + SymptomText(job.symptom);
    job.dedup_key = job.identity + "|" + JobKindName(job.kind) + "|" +
                    std::to_string(job.starts_at_ns) + "|" + std::to_string(job.ends_at_ns);
    jobs.push_back(std::move(job));
  }
  return jobs;
}

Result<std::vector<RoutingJob>> JobsFromWebhook(std::string_view body, AlertFormat format,
                                                const AlertParseLimits& limits,
                                                const AlertRules& rules, int64_t now_ns) {
  Result<AlertBatch> batch = ParseAlertBatch(body, format, limits);
  if (!batch.ok()) return batch.error();
  return DeriveJobs(std::move(*batch), rules, now_ns);
}

}  // namespace tracepager::daemon
