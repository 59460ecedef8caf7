// Config loading. See config.h for the contract.
//
// The loader walks the YAML tree once with a "map reader" per mapping that knows its legal keys,
// so unknown and duplicate keys are found in the same pass that reads values. Every reader
// reports into one problem list instead of returning early: an operator fixing a config wants
// all of its mistakes at once, not one per restart.
#include "daemon/config.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "daemon/pager_config.h"
#include "routing/yaml_doc.h"

namespace tracepager::daemon {
namespace {

namespace fs = std::filesystem;

// Where a node is, for messages. yaml-cpp marks are 0-based; undefined nodes have none.
int LineOf(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;
  int line = node.Mark().line;
  return line >= 0 ? line + 1 : 0;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 120)) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  if (s.size() > 120) out += "...";
  return out + "\"";
}

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

class Loader;

// Reads one YAML mapping, checking each key against the known list.
class MapReader {
 public:
  MapReader(Loader& loader, const YAML::Node& node, std::string path,
            std::vector<std::string> known);

  bool valid() const { return valid_; }
  // The value under `key`, or an undefined node when absent (or when the mapping is invalid).
  YAML::Node Get(const std::string& key) const;
  // True when the key is present with a non-null value.
  bool Has(const std::string& key) const;
  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }

 private:
  Loader& loader_;
  YAML::Node node_;
  std::string path_;
  bool valid_ = false;
};

class Loader {
 public:
  Loader(std::string file, const ConfigEnvironment& env) : file_(std::move(file)), env_(env) {
    fs::path dir = fs::path(file_).parent_path();
    base_dir_ = dir.empty() ? fs::path(".") : dir;
  }

  void Problem(const YAML::Node& at, const std::string& path, std::string message) {
    problems_.push_back({file_, LineOf(at), path, std::move(message)});
  }
  void ProblemAtLine(int line, const std::string& path, std::string message) {
    problems_.push_back({file_, line, path, std::move(message)});
  }
  std::vector<ConfigProblem> TakeProblems() { return std::move(problems_); }
  bool HasProblems() const { return !problems_.empty(); }
  const ConfigEnvironment& env() const { return env_; }
  const std::string& file() const { return file_; }

  std::string ResolvePath(const std::string& p) const {
    fs::path path(p);
    if (path.is_absolute()) return path.lexically_normal().string();
    return (base_dir_ / path).lexically_normal().string();
  }

  // ---- scalars. Each returns false (after reporting) when the value is present but bad; an
  // absent or null value leaves *out at its default and returns true.

  bool Scalar(const YAML::Node& n, const std::string& path, const char* expected) {
    if (n.IsScalar()) return true;
    const char* got = n.IsMap() ? "a mapping" : n.IsSequence() ? "a list" : "nothing";
    Problem(n, path, std::string("expected ") + expected + ", got " + got);
    return false;
  }

  bool String(const YAML::Node& n, const std::string& path, std::string* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!Scalar(n, path, "a string")) return false;
    *out = n.Scalar();
    return true;
  }

  bool NonEmptyString(const YAML::Node& n, const std::string& path, std::string* out) {
    if (!String(n, path, out)) return false;
    if (n.IsDefined() && !n.IsNull() && out->empty()) {
      Problem(n, path, "must not be empty");
      return false;
    }
    return true;
  }

  bool Bool(const YAML::Node& n, const std::string& path, bool* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!Scalar(n, path, "true or false")) return false;
    // Only true/false: YAML 1.1's yes/no/on/off are a classic source of surprises.
    if (n.Scalar() == "true") {
      *out = true;
    } else if (n.Scalar() == "false") {
      *out = false;
    } else {
      Problem(n, path, "expected true or false, got " + Quote(n.Scalar()));
      return false;
    }
    return true;
  }

  bool Unsigned(const YAML::Node& n, const std::string& path, uint64_t min, uint64_t max,
                uint64_t* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!Scalar(n, path, "a whole number")) return false;
    const std::string& s = n.Scalar();
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (s.empty() || s[0] == '-' || s[0] == '+' || *end != '\0' || errno == ERANGE) {
      Problem(n, path, "expected a whole number, got " + Quote(s));
      return false;
    }
    return InRange(n, path, v, min, max, out);
  }

  template <typename T>
  bool Unsigned32(const YAML::Node& n, const std::string& path, uint64_t min, uint64_t max,
                  T* out) {
    uint64_t v = *out;
    if (!Unsigned(n, path, min, max, &v)) return false;
    *out = static_cast<T>(v);
    return true;
  }

  bool Size(const YAML::Node& n, const std::string& path, uint64_t min, uint64_t max,
            uint64_t* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!Scalar(n, path, "a size such as 1MiB")) return false;
    Result<uint64_t> v = ParseSize(n.Scalar());
    if (!v.ok()) {
      Problem(n, path, v.error().message);
      return false;
    }
    return InRange(n, path, *v, min, max, out);
  }

  bool Duration(const YAML::Node& n, const std::string& path, Millis min, Millis max, Millis* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!Scalar(n, path, "a duration such as 10s")) return false;
    Result<Millis> v = ParseDuration(n.Scalar());
    if (!v.ok()) {
      Problem(n, path, v.error().message);
      return false;
    }
    if (*v < min || *v > max) {
      Problem(n, path,
              "must be between " + FormatMillis(min) + " and " + FormatMillis(max) + ", got " +
                  Quote(n.Scalar()));
      return false;
    }
    *out = *v;
    return true;
  }

  bool Fraction(const YAML::Node& n, const std::string& path, double* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!Scalar(n, path, "a number")) return false;
    const std::string& s = n.Scalar();
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !(v > 0.0 && v <= 1.0)) {
      Problem(n, path, "expected a number greater than 0 and at most 1, got " + Quote(s));
      return false;
    }
    *out = v;
    return true;
  }

  // A list of non-empty strings. `allow_empty` permits `[]`.
  bool StringList(const YAML::Node& n, const std::string& path, bool allow_empty,
                  std::vector<std::string>* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!n.IsSequence()) {
      Problem(n, path, "expected a list of strings");
      return false;
    }
    std::vector<std::string> values;
    bool ok = true;
    for (size_t i = 0; i < n.size(); ++i) {
      std::string item_path = path + "[" + std::to_string(i) + "]";
      std::string v;
      if (!NonEmptyString(n[i], item_path, &v)) {
        ok = false;
        continue;
      }
      if (std::find(values.begin(), values.end(), v) != values.end()) {
        Problem(n[i], item_path, Quote(v) + " is listed twice");
        ok = false;
        continue;
      }
      values.push_back(std::move(v));
    }
    if (ok && values.empty() && !allow_empty) {
      Problem(n, path, "must list at least one value");
      return false;
    }
    if (ok) *out = std::move(values);
    return ok;
  }

  // A file that must exist and be readable; stored resolved.
  bool ExistingFile(const YAML::Node& n, const std::string& path, std::string* out) {
    std::string p;
    if (!NonEmptyString(n, path, &p) || p.empty()) return false;
    std::string resolved = ResolvePath(p);
    Result<std::string> content = env_.read_file(resolved);
    if (!content.ok()) {
      Problem(n, path, content.error().message);
      return false;
    }
    *out = resolved;
    return true;
  }

  // {file: PATH} or {env: NAME}, resolved now. Values never appear in messages.
  bool SecretRef(const YAML::Node& n, const std::string& path, Secret* out) {
    if (n.IsScalar()) {
      Problem(n, path, "secrets are not accepted inline; give {file: PATH} or {env: NAME} instead");
      return false;
    }
    MapReader m(*this, n, path, {"file", "env"});
    if (!m.valid()) return false;
    if (m.Has("file") == m.Has("env")) {
      Problem(n, path, "give exactly one of file or env");
      return false;
    }
    const bool from_file = m.Has("file");
    const char* key = from_file ? "file" : "env";
    std::string name;
    if (!NonEmptyString(m.Get(key), m.Path(key), &name)) return false;
    Result<Secret> secret = ReadConfigSecret(env_, from_file, from_file ? ResolvePath(name) : name);
    if (!secret.ok()) {
      Problem(m.Get(key), m.Path(key), secret.error().message);
      return false;
    }
    if (secret->empty()) {
      Problem(n, path, "the secret from " + secret->origin() + " is empty");
      return false;
    }
    *out = std::move(secret).value();
    return true;
  }

  static std::string FormatMillis(Millis m) {
    auto ms = m.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
  }

 private:
  bool InRange(const YAML::Node& n, const std::string& path, uint64_t v, uint64_t min, uint64_t max,
               uint64_t* out) {
    if (v < min || v > max) {
      Problem(n, path,
              "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                  Quote(n.Scalar()));
      return false;
    }
    *out = v;
    return true;
  }

  std::string file_;
  fs::path base_dir_;
  const ConfigEnvironment& env_;
  std::vector<ConfigProblem> problems_;
};

MapReader::MapReader(Loader& loader, const YAML::Node& node, std::string path,
                     std::vector<std::string> known)
    : loader_(loader), node_(node), path_(std::move(path)) {
  if (!node.IsDefined() || node.IsNull()) {
    valid_ = true;  // an absent section: every key takes its default
    node_ = YAML::Node(YAML::NodeType::Map);
    return;
  }
  if (!node.IsMap()) {
    loader_.Problem(node, path_.empty() ? "" : path_, "expected a mapping");
    return;
  }
  valid_ = true;
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      loader_.Problem(it->first, path_, "keys must be plain strings");
      continue;
    }
    const std::string& key = it->first.Scalar();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      loader_.Problem(it->first, Path(key),
                      "unknown key " + Quote(key) + " (known: " + Joined(known) + ")");
    } else if (!seen.insert(key).second) {
      loader_.Problem(it->first, Path(key), "duplicate key " + Quote(key));
    }
  }
}

YAML::Node MapReader::Get(const std::string& key) const {
  if (!valid_) return YAML::Node(YAML::NodeType::Undefined);
  // Iterate rather than node_[key]: operator[] on a non-const node would insert the key.
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return it->second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

bool MapReader::Has(const std::string& key) const {
  YAML::Node n = Get(key);
  return n.IsDefined() && !n.IsNull();
}

bool IsLoopback(const ListenAddress& a) {
  if (a.ipv6) return a.host == "::1";
  return a.host.rfind("127.", 0) == 0;
}

// ---- sections ----

void LoadAuth(Loader& l, const YAML::Node& node, const std::string& path, AuthConfig* auth) {
  MapReader m(l, node, path,
              {"bearer_tokens", "open_health", "open_metrics", "allow_unauthenticated", "hmac"});
  if (!m.valid()) return;
  YAML::Node tokens = m.Get("bearer_tokens");
  if (tokens.IsDefined() && !tokens.IsNull()) {
    if (!tokens.IsSequence()) {
      l.Problem(tokens, m.Path("bearer_tokens"),
                "expected a list of secret references ({file: PATH} or {env: NAME})");
    } else {
      for (size_t i = 0; i < tokens.size(); ++i) {
        Secret s;
        if (l.SecretRef(tokens[i], m.Path("bearer_tokens") + "[" + std::to_string(i) + "]", &s)) {
          auth->bearer_tokens.push_back(std::move(s));
        }
      }
    }
  }
  l.Bool(m.Get("open_health"), m.Path("open_health"), &auth->open_health);
  l.Bool(m.Get("open_metrics"), m.Path("open_metrics"), &auth->open_metrics);
  l.Bool(m.Get("allow_unauthenticated"), m.Path("allow_unauthenticated"),
         &auth->allow_unauthenticated);
  if (m.Has("hmac")) {
    MapReader h(l, m.Get("hmac"), m.Path("hmac"),
                {"secret", "header", "timestamp_header", "max_skew", "endpoints"});
    if (!h.valid()) return;
    HmacConfig hmac;
    bool ok = true;
    if (!h.Has("secret")) {
      l.Problem(h.node(), h.Path("secret"), "required: {file: PATH} or {env: NAME}");
      ok = false;
    } else {
      ok &= l.SecretRef(h.Get("secret"), h.Path("secret"), &hmac.secret);
    }
    ok &= l.NonEmptyString(h.Get("header"), h.Path("header"), &hmac.header);
    ok &= l.String(h.Get("timestamp_header"), h.Path("timestamp_header"), &hmac.timestamp_header);
    ok &= l.Duration(h.Get("max_skew"), h.Path("max_skew"), Millis(1000), std::chrono::hours(24),
                     &hmac.max_skew);
    std::vector<std::string> endpoints = {"generic"};
    if (l.StringList(h.Get("endpoints"), h.Path("endpoints"), false, &endpoints)) {
      hmac.generic = hmac.grafana = false;
      for (const std::string& e : endpoints) {
        if (e == "generic") {
          hmac.generic = true;
        } else if (e == "grafana") {
          hmac.grafana = true;
        } else {
          l.Problem(h.Get("endpoints"), h.Path("endpoints"),
                    "unknown endpoint " + Quote(e) + " (known: generic, grafana)");
          ok = false;
        }
      }
    } else {
      ok = false;
    }
    if (ok) auth->hmac = std::move(hmac);
  }
}

void LoadServer(Loader& l, const YAML::Node& node, ServerConfig* server) {
  MapReader m(l, node, "server",
              {"listen", "tls", "body_limit", "header_timeout", "body_timeout", "idle_timeout",
               "max_connections", "json_max_depth", "auth"});
  if (!m.valid()) return;
  std::vector<std::string> listen;
  if (!m.Has("listen")) {
    l.Problem(m.node(), m.Path("listen"),
              "required: at least one address such as \"127.0.0.1:9700\" or \"[::1]:9700\"");
  } else if (l.StringList(m.Get("listen"), m.Path("listen"), false, &listen)) {
    for (size_t i = 0; i < listen.size(); ++i) {
      Result<ListenAddress> a = ParseListenAddress(listen[i]);
      if (!a.ok()) {
        l.Problem(m.Get("listen")[i], m.Path("listen") + "[" + std::to_string(i) + "]",
                  a.error().message);
      } else {
        server->listen.push_back(std::move(*a));
      }
    }
  }
  if (m.Has("tls")) {
    MapReader t(l, m.Get("tls"), m.Path("tls"), {"cert_file", "key_file"});
    if (t.valid()) {
      TlsConfig tls;
      bool ok = true;
      for (auto [key, out] :
           {std::pair{"cert_file", &tls.cert_file}, std::pair{"key_file", &tls.key_file}}) {
        if (!t.Has(key)) {
          l.Problem(t.node(), t.Path(key), "required when tls is set");
          ok = false;
        } else {
          ok &= l.ExistingFile(t.Get(key), t.Path(key), out);
        }
      }
      if (ok) server->tls = std::move(tls);
    }
  }
  l.Size(m.Get("body_limit"), m.Path("body_limit"), 1024, 64u << 20, &server->body_limit_bytes);
  l.Duration(m.Get("header_timeout"), m.Path("header_timeout"), Millis(100),
             std::chrono::minutes(10), &server->header_timeout);
  l.Duration(m.Get("body_timeout"), m.Path("body_timeout"), Millis(100), std::chrono::minutes(10),
             &server->body_timeout);
  l.Duration(m.Get("idle_timeout"), m.Path("idle_timeout"), Millis(100), std::chrono::hours(1),
             &server->idle_timeout);
  l.Unsigned32(m.Get("max_connections"), m.Path("max_connections"), 1, 1'000'000,
               &server->max_connections);
  l.Unsigned32(m.Get("json_max_depth"), m.Path("json_max_depth"), 2, 512, &server->json_max_depth);
  LoadAuth(l, m.Get("auth"), m.Path("auth"), &server->auth);

  // Refuse to expose unauthenticated webhooks beyond this host unless asked to in so many words.
  if (server->auth.bearer_tokens.empty() && !server->auth.allow_unauthenticated) {
    for (const ListenAddress& a : server->listen) {
      if (!IsLoopback(a)) {
        YAML::Node at = m.Has("auth") ? m.Get("auth") : m.node();
        l.Problem(at, m.Path("auth.bearer_tokens"),
                  "required when listening on " + a.text +
                      " (not loopback); or set allow_unauthenticated: true");
        break;
      }
    }
  }
}

void LoadStore(Loader& l, const YAML::Node& node, StoreConfig* store) {
  MapReader m(l, node, "store",
              {"max_queued_jobs", "pace_above_jobs", "pace_max_wait", "max_size",
               "commit_max_batch", "commit_max_delay", "busy_timeout", "decision_retention"});
  if (!m.valid()) return;
  l.Unsigned(m.Get("max_queued_jobs"), m.Path("max_queued_jobs"), 1, 1'000'000'000,
             &store->max_queued_jobs);
  if (m.Has("pace_above_jobs")) {
    uint64_t pace = 0;
    l.Unsigned(m.Get("pace_above_jobs"), m.Path("pace_above_jobs"), 0, 1'000'000'000, &pace);
    if (pace > store->max_queued_jobs) {
      l.Problem(m.Get("pace_above_jobs"), m.Path("pace_above_jobs"),
                "must be 0 (no pacing) or at most max_queued_jobs (" +
                    std::to_string(store->max_queued_jobs) + ")");
    }
    store->pace_above_jobs = pace;
  }
  l.Duration(m.Get("pace_max_wait"), m.Path("pace_max_wait"), Millis(0), std::chrono::minutes(1),
             &store->pace_max_wait);
  l.Size(m.Get("max_size"), m.Path("max_size"), 0, uint64_t{1} << 50, &store->max_bytes);
  if (store->max_bytes != 0 && store->max_bytes < (1u << 20)) {
    l.Problem(m.Get("max_size"), m.Path("max_size"), "must be 0 (no cap) or at least 1MiB");
  }
  l.Unsigned32(m.Get("commit_max_batch"), m.Path("commit_max_batch"), 1, 100'000,
               &store->commit_max_batch);
  l.Duration(m.Get("commit_max_delay"), m.Path("commit_max_delay"), Millis(0), Millis(1000),
             &store->commit_max_delay);
  l.Duration(m.Get("busy_timeout"), m.Path("busy_timeout"), Millis(1), std::chrono::minutes(5),
             &store->busy_timeout);
  l.Duration(m.Get("decision_retention"), m.Path("decision_retention"), std::chrono::hours(1),
             std::chrono::hours(24 * 3650), &store->decision_retention);
}

void LoadWorkers(Loader& l, const YAML::Node& node, WorkersConfig* w) {
  MapReader m(l, node, "workers",
              {"count", "drain_deadline", "max_group", "max_attempts", "retry_delay"});
  if (!m.valid()) return;
  l.Unsigned32(m.Get("count"), m.Path("count"), 1, 256, &w->count);
  l.Duration(m.Get("drain_deadline"), m.Path("drain_deadline"), Millis(0), std::chrono::hours(1),
             &w->drain_deadline);
  l.Unsigned32(m.Get("max_group"), m.Path("max_group"), 1, 1'000'000, &w->max_group);
  l.Unsigned32(m.Get("max_attempts"), m.Path("max_attempts"), 1, 100, &w->max_attempts);
  l.Duration(m.Get("retry_delay"), m.Path("retry_delay"), Millis(0), std::chrono::hours(1),
             &w->retry_delay);
}

void LoadLog(Loader& l, const YAML::Node& node, LogLevel* level) {
  MapReader m(l, node, "log", {"level"});
  if (!m.valid() || !m.Has("level")) return;
  std::string text;
  if (!l.String(m.Get("level"), m.Path("level"), &text)) return;
  for (LogLevel lv : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                      LogLevel::kError, LogLevel::kCritical, LogLevel::kOff}) {
    if (text == LogLevelName(lv)) {
      *level = lv;
      return;
    }
  }
  l.Problem(
      m.Get("level"), m.Path("level"),
      "unknown level " + Quote(text) + " (known: trace, debug, info, warn, error, critical, off)");
}

void LoadPatterns(Loader& l, const YAML::Node& node, const std::string& path,
                  std::vector<AlertNamePattern>* out) {
  std::vector<std::string> texts;
  if (!node.IsDefined() || node.IsNull()) return;
  if (!l.StringList(node, path, true, &texts)) return;
  std::vector<AlertNamePattern> patterns;
  for (size_t i = 0; i < texts.size(); ++i) {
    Result<AlertNamePattern> p = AlertNamePattern::Compile(texts[i]);
    if (!p.ok()) {
      l.Problem(node[i], path + "[" + std::to_string(i) + "]",
                Quote(texts[i]) + ": " + p.error().message);
      continue;
    }
    patterns.push_back(std::move(*p));
  }
  *out = std::move(patterns);
}

void LoadAlerts(Loader& l, const YAML::Node& node, AlertRules* rules) {
  MapReader m(
      l, node, "alerts",
      {"service_labels", "symptom", "trace_ids", "lookback", "storm_window", "dedup_window"});
  if (!m.valid()) return;
  l.StringList(m.Get("service_labels"), m.Path("service_labels"), false, &rules->service_labels);
  MapReader s(l, m.Get("symptom"), m.Path("symptom"),
              {"label", "latency_patterns", "error_patterns", "default"});
  if (s.valid()) {
    l.String(s.Get("label"), s.Path("label"), &rules->symptom_label);
    LoadPatterns(l, s.Get("latency_patterns"), s.Path("latency_patterns"),
                 &rules->latency_patterns);
    LoadPatterns(l, s.Get("error_patterns"), s.Path("error_patterns"), &rules->error_patterns);
    std::string def;
    if (l.String(s.Get("default"), s.Path("default"), &def) && !def.empty()) {
      if (def == "errors") {
        rules->default_symptom = routing::Symptom::kErrors;
      } else if (def == "latency") {
        rules->default_symptom = routing::Symptom::kLatency;
      } else {
        l.Problem(s.Get("default"), s.Path("default"),
                  "expected errors or latency, got " + Quote(def));
      }
    }
  }
  MapReader t(l, m.Get("trace_ids"), m.Path("trace_ids"),
              {"labels", "annotations", "scan_links", "max_per_alert"});
  if (t.valid()) {
    l.StringList(t.Get("labels"), t.Path("labels"), true, &rules->trace_id_labels);
    l.StringList(t.Get("annotations"), t.Path("annotations"), true, &rules->trace_id_annotations);
    l.Bool(t.Get("scan_links"), t.Path("scan_links"), &rules->scan_links);
    l.Unsigned32(t.Get("max_per_alert"), t.Path("max_per_alert"), 1, 1000, &rules->max_trace_ids);
  }
  l.Duration(m.Get("lookback"), m.Path("lookback"), Millis(0), std::chrono::hours(24 * 7),
             &rules->lookback);
  l.Duration(m.Get("storm_window"), m.Path("storm_window"), Millis(0), std::chrono::hours(24),
             &rules->storm_window);
  l.Duration(m.Get("dedup_window"), m.Path("dedup_window"), Millis(0), std::chrono::hours(24),
             &rules->dedup_window);
}

void LoadRouting(Loader& l, const YAML::Node& node, RoutingConfig* r) {
  MapReader m(l, node, "routing",
              {"timeout_masking", "timeout_fraction", "sibling_fallout", "page_fallout", "retries",
               "async", "uninstrumented", "max_traces"});
  if (!m.valid()) return;
  routing::WalkOptions& w = r->walk;
  l.Bool(m.Get("timeout_masking"), m.Path("timeout_masking"), &w.timeout_masking);
  l.Fraction(m.Get("timeout_fraction"), m.Path("timeout_fraction"), &w.timeout_fraction);
  l.Bool(m.Get("sibling_fallout"), m.Path("sibling_fallout"), &w.sibling_fallout);
  l.Bool(m.Get("page_fallout"), m.Path("page_fallout"), &w.page_fallout);
  l.Bool(m.Get("retries"), m.Path("retries"), &w.retries);
  l.Bool(m.Get("async"), m.Path("async"), &w.async);
  l.Bool(m.Get("uninstrumented"), m.Path("uninstrumented"), &w.uninstrumented);
  l.Unsigned32(m.Get("max_traces"), m.Path("max_traces"), 1, 1000, &r->max_traces);
}

void LoadRegistry(Loader& l, const YAML::Node& node, RegistryConfig* r) {
  if (!node.IsDefined() || node.IsNull()) {
    l.ProblemAtLine(0, "registry", "required: registry.path names the ownership registry");
    return;
  }
  MapReader m(l, node, "registry", {"path", "backstage_path"});
  if (!m.valid()) return;
  if (!m.Has("path")) {
    l.Problem(m.node(), m.Path("path"), "required: the ownership registry YAML file");
  } else {
    l.ExistingFile(m.Get("path"), m.Path("path"), &r->path);
  }
  if (m.Has("backstage_path")) {
    std::string p;
    if (l.NonEmptyString(m.Get("backstage_path"), m.Path("backstage_path"), &p)) {
      std::string resolved = l.ResolvePath(p);
      if (!l.env().is_directory(resolved) && !l.env().read_file(resolved).ok()) {
        l.Problem(m.Get("backstage_path"), m.Path("backstage_path"),
                  resolved + ": not a readable file or directory");
      } else {
        r->backstage_path = resolved;
      }
    }
  }
}

// A `type` plus keys that depend on it. The known types are listed here, one branch each, the
// way the factories are (STYLE.md: one explicit function rather than self-registration). The
// HTTP backends' keys belong to integrations/trace_backend_config.h, which parses them; this
// function only adds the section's path and the file's name to its problems.
void LoadTraceSource(Loader& l, const YAML::Node& node, TraceSourceConfig* ts) {
  static const std::vector<std::string> kTypes = {"file", "jaeger", "tempo", "zipkin"};
  if (!node.IsDefined() || node.IsNull()) {
    l.ProblemAtLine(0, "trace_source",
                    "required: a section with a type (known: " + Joined(kTypes) + ")");
    return;
  }
  if (!node.IsMap()) {
    l.Problem(node, "trace_source", "expected a mapping");
    return;
  }
  YAML::Node type_node(YAML::NodeType::Undefined);
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "type") type_node = it->second;
  }
  std::string type;
  if (!type_node.IsDefined() || !l.NonEmptyString(type_node, "trace_source.type", &type) ||
      type.empty()) {
    if (!type_node.IsDefined()) {
      l.Problem(node, "trace_source.type", "required (known: " + Joined(kTypes) + ")");
    }
    return;
  }
  ts->type = type;
  if (type == "file") {
    MapReader m(l, node, "trace_source", {"type", "timeout", "dir", "max_file_bytes"});
    if (!m.valid()) return;
    l.Duration(m.Get("timeout"), m.Path("timeout"), Millis(1), std::chrono::minutes(10),
               &ts->timeout);
    FileTraceSourceConfig f;
    if (!m.Has("dir")) {
      l.Problem(m.node(), m.Path("dir"), "required when type is \"file\"");
    } else if (std::string dir; l.NonEmptyString(m.Get("dir"), m.Path("dir"), &dir)) {
      f.dir = l.ResolvePath(dir);
      if (!l.env().is_directory(f.dir)) {
        l.Problem(m.Get("dir"), m.Path("dir"), f.dir + ": not a directory");
      }
    }
    l.Size(m.Get("max_file_bytes"), m.Path("max_file_bytes"), 1024, uint64_t{4} << 30,
           &f.max_file_bytes);
    ts->settings = std::move(f);
    return;
  }
  if (integrations::IsHttpTraceBackendType(type)) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "timeout") {
        l.Duration(it->second, "trace_source.timeout", Millis(1), std::chrono::minutes(10),
                   &ts->timeout);
      }
    }
    integrations::BackendConfigEnv env;
    env.read_file = l.env().read_file;
    env.get_env = l.env().get_env;
    env.resolve_path = [&l](const std::string& p) { return l.ResolvePath(p); };
    integrations::TraceBackendConfig backend;
    std::vector<integrations::BackendConfigIssue> issues =
        integrations::ParseTraceBackendConfig(node, env, {"timeout"}, &backend);
    for (const integrations::BackendConfigIssue& issue : issues) {
      // Checks made after parsing have no line: point at the key they name when it is written
      // in the section, else at the section (a required key missing).
      int line = issue.line;
      if (line <= 0) {
        YAML::Node key = node[issue.path.substr(0, issue.path.find('.'))];
        line = key.IsDefined() ? LineOf(key) : LineOf(node);
      }
      l.ProblemAtLine(line, issue.path.empty() ? "trace_source" : "trace_source." + issue.path,
                      issue.message);
    }
    ts->settings = std::move(backend);
    return;
  }
  l.Problem(type_node, "trace_source.type",
            "unknown type " + Quote(type) + " (known: " + Joined(kTypes) + ")");
}

void LoadPager(Loader& l, const YAML::Node& node, PagerConfig* pager) {
  static const std::vector<std::string> kTypes = {"log", "registry"};
  if (!node.IsDefined() || node.IsNull()) {
    l.ProblemAtLine(0, "pager", "required: a section with a type (known: log, registry)");
    return;
  }
  if (!node.IsMap()) {
    l.Problem(node, "pager", "expected a mapping");
    return;
  }
  YAML::Node type_node(YAML::NodeType::Undefined);
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "type") type_node = it->second;
  }
  std::string type;
  if (!type_node.IsDefined()) {
    l.Problem(node, "pager.type", "required (known: " + Joined(kTypes) + ")");
    return;
  }
  if (!l.NonEmptyString(type_node, "pager.type", &type) || type.empty()) return;
  pager->type = type;
  if (type == "log") {
    MapReader m(l, node, "pager", {"type", "path"});
    if (!m.valid()) return;
    LogPagerConfig c;
    if (std::string p; l.NonEmptyString(m.Get("path"), m.Path("path"), &p) && !p.empty()) {
      c.path = l.ResolvePath(p);
    }
    pager->settings = std::move(c);
    return;
  }
  if (type == "registry") {
    MapReader m(l, node, "pager", {"type"});
    if (!m.valid()) return;
    pager->settings = RegistryPagerConfig{};
    return;
  }
  l.Problem(type_node, "pager.type",
            "unknown type " + Quote(type) + " (known: " + Joined(kTypes) + ")");
}

// pagers: and delivery: have a parser of their own (daemon/pager_config.h); this ties them to
// pager.type, so that a config whose pagers would never be used, or a registry pager with
// nothing to page through, is refused at load instead of paging nobody at 3 am.
void LoadPaging(Loader& l, const YAML::Node& pagers, const YAML::Node& delivery,
                const PagerConfig& pager, PagingConfig* out) {
  for (ConfigProblem& p : ParsePagingConfig(pagers, delivery, l.file(), l.env(), out)) {
    l.ProblemAtLine(p.line, p.path, std::move(p.message));
  }
  const integrations::PagerConfigs& p = out->pagers;
  bool any = p.pagerduty || p.opsgenie || p.slack || p.webhook;
  if (pager.type == "log" && any) {
    l.Problem(pagers, "pagers",
              "pager.type is log, so these pagers would never be used; set pager.type: registry "
              "to page the registry's targets");
  }
  if (pager.type == "registry" && !any) {
    l.Problem(pagers, "pagers",
              "pager.type registry needs at least one of pagerduty, opsgenie, slack, webhook "
              "configured here");
  }
}

void LoadAudit(Loader& l, const YAML::Node& node, AuditConfig* a) {
  MapReader m(l, node, "audit",
              {"path", "sync", "sync_interval", "sync_every_records", "max_file_size", "max_files",
               "max_total_size"});
  if (!m.valid()) return;
  if (std::string p; l.NonEmptyString(m.Get("path"), m.Path("path"), &p) && !p.empty()) {
    a->path = l.ResolvePath(p);
  }
  std::string sync;
  if (l.String(m.Get("sync"), m.Path("sync"), &sync) && !sync.empty()) {
    if (sync == "every_record") {
      a->sync_every_record = true;
    } else if (sync == "batched") {
      a->sync_every_record = false;
    } else {
      l.Problem(m.Get("sync"), m.Path("sync"),
                "expected every_record or batched, got " + Quote(sync));
    }
  }
  l.Duration(m.Get("sync_interval"), m.Path("sync_interval"), Millis(1), std::chrono::minutes(10),
             &a->sync_interval);
  l.Unsigned32(m.Get("sync_every_records"), m.Path("sync_every_records"), 1, 1'000'000,
               &a->sync_every_records);
  l.Size(m.Get("max_file_size"), m.Path("max_file_size"), 0, uint64_t{1} << 40, &a->max_file_bytes);
  if (a->max_file_bytes != 0 && a->max_file_bytes < 4096) {
    l.Problem(m.Get("max_file_size"), m.Path("max_file_size"), "must be 0 or at least 4KiB");
  }
  l.Unsigned32(m.Get("max_files"), m.Path("max_files"), 0, 100'000, &a->max_files);
  l.Size(m.Get("max_total_size"), m.Path("max_total_size"), 0, uint64_t{1} << 50,
         &a->max_total_bytes);
  if (a->max_total_bytes != 0 &&
      (a->max_file_bytes == 0 || a->max_total_bytes < a->max_file_bytes)) {
    l.Problem(m.Get("max_total_size"), m.Path("max_total_size"),
              "must be 0, or at least max_file_size (which must then be set)");
  }
}

}  // namespace

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kCritical:
      return "critical";
    case LogLevel::kOff:
      return "off";
  }
  return "unknown";
}

std::string ConfigProblem::ToString() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": config error";
  if (!path.empty()) out += " at " + path;
  return out + ": " + message;
}

Result<Secret> ReadConfigSecret(const ConfigEnvironment& env, bool from_file,
                                const std::string& name) {
  std::string value;
  if (from_file) {
    Result<std::string> content = env.read_file(name);
    if (!content.ok()) return Error::InvalidInput(content.error().message);
    value = std::move(content).value();
  } else {
    std::optional<std::string> v = env.get_env(name);
    if (!v) return Error::InvalidInput("environment variable " + name + " is not set");
    value = std::move(*v);
  }
  // Files usually end in a newline that is not part of the secret.
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
    value.pop_back();
  }
  size_t first = 0;
  while (first < value.size() && std::isspace(static_cast<unsigned char>(value[first]))) {
    ++first;
  }
  value.erase(0, first);
  return Secret(std::move(value), (from_file ? "file " : "env ") + name);
}

ConfigEnvironment ConfigEnvironment::Process() {
  ConfigEnvironment env;
  env.get_env = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  env.read_file = [](const std::string& path) -> Result<std::string> {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      return Error::NotFound(path + ": " + std::strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) return Error::InvalidInput(path + ": is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error::NotFound(path + ": cannot be read");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Error::Unavailable(path + ": read error");
    return ss.str();
  };
  env.is_directory = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  };
  return env;
}

Result<Millis> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return Error::InvalidInput("expected a duration such as 250ms, 10s, 5m, 1h or 1h30m, got " +
                               Quote(text));
  };
  if (text.empty()) return bad();
  if (text == "0") return Millis(0);
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (n > 1'000'000'000) return bad();
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (i == start) return bad();
    std::string_view unit;
    size_t ustart = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    unit = text.substr(ustart, i - ustart);
    int64_t ms;
    if (unit == "ms") {
      ms = 1;
    } else if (unit == "s") {
      ms = 1000;
    } else if (unit == "m") {
      ms = 60'000;
    } else if (unit == "h") {
      ms = 3'600'000;
    } else if (unit == "d") {
      ms = 86'400'000;
    } else {
      return bad();
    }
    total += n * ms;
    if (total > int64_t{100} * 365 * 86'400'000) return bad();
  }
  return Millis(total);
}

Result<uint64_t> ParseSize(std::string_view text) {
  auto bad = [&] {
    return Error::InvalidInput("expected a size such as 1048576, 512KiB, 1MiB or 2GiB, got " +
                               Quote(text));
  };
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (n > (uint64_t{1} << 53)) return bad();
    n = n * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return bad();
  std::string_view unit = text.substr(i);
  uint64_t mult;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "KiB") {
    mult = uint64_t{1} << 10;
  } else if (unit == "MiB") {
    mult = uint64_t{1} << 20;
  } else if (unit == "GiB") {
    mult = uint64_t{1} << 30;
  } else if (unit == "KB" || unit == "kB") {
    mult = 1000;
  } else if (unit == "MB") {
    mult = 1'000'000;
  } else if (unit == "GB") {
    mult = 1'000'000'000;
  } else {
    return bad();
  }
  if (n > (uint64_t{1} << 60) / mult) return bad();
  return n * mult;
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Error::InvalidInput(
        "expected HOST:PORT with an IP address (\"127.0.0.1:9700\", "
        "\"[::1]:9700\"), got " +
        Quote(text) + ": " + why);
  };
  ListenAddress a;
  a.text = std::string(text);
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("an IPv6 address is written [ADDRESS]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    a.ipv6 = true;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("put IPv6 addresses in brackets");
  }
  a.host = std::string(host);
  unsigned char buf[16];
  if (::inet_pton(a.ipv6 ? AF_INET6 : AF_INET, a.host.c_str(), buf) != 1) {
    return bad("not an IP address (names are not resolved)");
  }
  if (port.empty() || port.size() > 5) return bad("bad port");
  unsigned p = 0;
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return bad("bad port");
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  if (p > 65535) return bad("port above 65535");
  a.port = static_cast<uint16_t>(p);
  return a;
}

ConfigLoad ParseConfig(std::string_view yaml, std::string_view source,
                       const ConfigEnvironment& env) {
  Loader l{std::string(source), env};
  ConfigLoad out;
  YAML::Node root;
  // yaml-cpp 0.7 does not bound its work on hostile text: YAML::LoadAll(",") never returns
  // (found by tests/fuzz/config_fuzz.cc) and deep nesting recurses without limit. libyaml
  // (routing/yaml_doc.h) parses with size, depth and node caps, so the text goes through it
  // first and yaml-cpp only ever sees YAML that libyaml accepted.
  if (Result<routing::YamlDoc> checked = routing::YamlDoc::Parse(yaml, ""); !checked.ok()) {
    // The message is ":LINE: what" (no source given).
    const std::string& m = checked.error().message;
    int line = 0;
    size_t at = 1;
    while (at < m.size() && std::isdigit(static_cast<unsigned char>(m[at]))) {
      line = std::min(line * 10 + (m[at++] - '0'), 1'000'000'000);
    }
    std::string what = at + 2 <= m.size() ? m.substr(at + 2) : m;
    if (what.rfind("invalid YAML: ", 0) != 0) what = "invalid YAML: " + what;
    l.ProblemAtLine(line, "", what);
    out.problems = l.TakeProblems();
    return out;
  }
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(yaml));
    if (docs.size() > 1) {
      l.Problem(docs[1], "", "more than one YAML document; put everything in one");
    }
    if (!docs.empty()) root = docs[0];
  } catch (const YAML::Exception& e) {
    l.ProblemAtLine(e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "invalid YAML: " + e.msg);
    out.problems = l.TakeProblems();
    return out;
  }

  Config c;
  c.source = std::string(source);
  c.alerts = DefaultAlertRules();
  MapReader top(l, root, "",
                {"server", "state_dir", "store", "workers", "log", "alerts", "routing", "registry",
                 "trace_source", "pager", "pagers", "delivery", "audit"});
  if (!root.IsDefined() || root.IsNull()) {
    l.ProblemAtLine(1, "", "the file is empty");
  } else if (top.valid()) {
    LoadServer(l, top.Get("server"), &c.server);
    if (!top.Has("server")) {
      // LoadServer reported the missing listen list; nothing else to say.
    }
    if (top.Has("state_dir")) {
      std::string dir;
      if (l.NonEmptyString(top.Get("state_dir"), "state_dir", &dir))
        c.state_dir = l.ResolvePath(dir);
    } else {
      // systemd's StateDirectory= sets $STATE_DIRECTORY (several dirs are colon-separated).
      std::optional<std::string> sd = env.get_env("STATE_DIRECTORY");
      if (sd && !sd->empty()) {
        c.state_dir = sd->substr(0, sd->find(':'));
      } else {
        c.state_dir = "./state";
      }
    }
    LoadStore(l, top.Get("store"), &c.store);
    LoadWorkers(l, top.Get("workers"), &c.workers);
    LoadLog(l, top.Get("log"), &c.log_level);
    LoadAlerts(l, top.Get("alerts"), &c.alerts);
    LoadRouting(l, top.Get("routing"), &c.routing);
    LoadRegistry(l, top.Get("registry"), &c.registry);
    LoadTraceSource(l, top.Get("trace_source"), &c.trace_source);
    LoadPager(l, top.Get("pager"), &c.pager);
    LoadPaging(l, top.Get("pagers"), top.Get("delivery"), c.pager, &c.paging);
    LoadAudit(l, top.Get("audit"), &c.audit);
    if (c.audit.path.empty()) {
      c.audit.path = (fs::path(c.state_dir) / "audit.jsonl").lexically_normal().string();
    }
    if (auto* log = std::get_if<LogPagerConfig>(&c.pager.settings);
        log != nullptr && log->path.empty() && c.pager.type == "log") {
      log->path = (fs::path(c.state_dir) / "pages.jsonl").lexically_normal().string();
    }
  }
  out.problems = l.TakeProblems();
  std::stable_sort(out.problems.begin(), out.problems.end(),
                   [](const ConfigProblem& a, const ConfigProblem& b) { return a.line < b.line; });
  if (out.problems.empty()) out.config = std::move(c);
  return out;
}

ConfigLoad LoadConfigFile(const std::string& path, const ConfigEnvironment& env) {
  Result<std::string> text = env.read_file(path);
  if (!text.ok()) {
    ConfigLoad out;
    out.problems.push_back({path, 0, "", text.error().message});
    return out;
  }
  return ParseConfig(*text, path, env);
}

Result<Config> LoadConfig(const std::string& path, const ConfigEnvironment& env) {
  ConfigLoad load = LoadConfigFile(path, env);
  if (load.config) return std::move(*load.config);
  std::string message;
  for (const ConfigProblem& p : load.problems) {
    if (!message.empty()) message += '\n';
    message += p.ToString();
  }
  return Error::InvalidInput(message);
}

}  // namespace tracepager::daemon
