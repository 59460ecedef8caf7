// Parsing of the `pagers:` and `delivery:` config sections. See pager_config.h.
//
// A small reader of its own rather than config.cc's: those helpers are private to the config
// loader, and the pager sections should not need edits there beyond being called. Messages
// follow the loader's shape exactly (FILE:LINE: config error at PATH: MESSAGE).
#include "daemon/pager_config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "integrations/opsgenie/opsgenie_alert.h"

namespace tracepager::daemon {
namespace {

using integrations::Secret;
using Millis = std::chrono::milliseconds;

class Reader {
 public:
  Reader(std::string file, const ConfigEnvironment& env) : file_(std::move(file)), env_(env) {}

  std::vector<ConfigProblem> problems;

  void Problem(const YAML::Node& at, const std::string& path, std::string message) {
    int line = at.IsDefined() && at.Mark().line >= 0 ? at.Mark().line + 1 : 0;
    problems.push_back({file_, line, path, std::move(message)});
  }

  // Checks a mapping's keys against `known`, reporting each unknown one; the known ones are
  // still read, so one typo does not hide the other problems. False (reported) when the node
  // is not a mapping; absent or null is an empty mapping.
  bool Map(const YAML::Node& n, const std::string& path, const std::set<std::string>& known) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!n.IsMap()) {
      Problem(n, path, "expected a mapping");
      return false;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
      if (!known.count(key)) {
        std::string list;
        for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
        Problem(it->first, Join(path, key), "unknown key (known: " + list + ")");
      }
    }
    return true;
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  bool String(const YAML::Node& n, const std::string& path, std::string* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!n.IsScalar() || n.Scalar().empty()) {
      Problem(n, path, "expected a non-empty string");
      return false;
    }
    *out = n.Scalar();
    return true;
  }

  bool Url(const YAML::Node& n, const std::string& path, std::string* out) {
    std::string v;
    if (!String(n, path, &v) || v.empty()) return false;
    if (v.rfind("https://", 0) != 0 && v.rfind("http://", 0) != 0) {
      Problem(n, path, "expected an http(s) URL");
      return false;
    }
    *out = v;
    return true;
  }

  bool Duration(const YAML::Node& n, const std::string& path, Millis min, Millis max, Millis* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (!n.IsScalar()) {
      Problem(n, path, "expected a duration such as 10s");
      return false;
    }
    Result<Millis> v = ParseDuration(n.Scalar());
    if (!v.ok()) {
      Problem(n, path, v.error().message);
      return false;
    }
    if (*v < min || *v > max) {
      Problem(n, path, "out of range");
      return false;
    }
    *out = *v;
    return true;
  }

  bool Number(const YAML::Node& n, const std::string& path, double min, double max, double* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    char* end = nullptr;
    double v = n.IsScalar() ? std::strtod(n.Scalar().c_str(), &end) : 0;
    if (!n.IsScalar() || n.Scalar().empty() || *end != '\0' || !(v >= min && v <= max)) {
      Problem(n, path,
              "expected a number between " + std::to_string(min) + " and " + std::to_string(max));
      return false;
    }
    *out = v;
    return true;
  }

  bool Count(const YAML::Node& n, const std::string& path, size_t min, size_t max, size_t* out) {
    double v = static_cast<double>(*out);
    if (!Number(n, path, static_cast<double>(min), static_cast<double>(max), &v)) return false;
    if (v != static_cast<double>(static_cast<size_t>(v))) {
      Problem(n, path, "expected a whole number");
      return false;
    }
    *out = static_cast<size_t>(v);
    return true;
  }

  std::string ResolvePath(const std::string& p) const {
    std::filesystem::path path(p);
    if (path.is_absolute()) return path.lexically_normal().string();
    std::filesystem::path dir = std::filesystem::path(file_).parent_path();
    return ((dir.empty() ? std::filesystem::path(".") : dir) / path).lexically_normal().string();
  }

  // {file: PATH} or {env: NAME}, resolved now, trimmed; the value never appears in messages.
  bool SecretRef(const YAML::Node& n, const std::string& path, Secret* out) {
    if (!n.IsDefined() || n.IsNull()) return true;
    if (n.IsScalar()) {
      Problem(n, path, "secrets are not accepted inline; give {file: PATH} or {env: NAME} instead");
      return false;
    }
    if (!Map(n, path, {"file", "env"})) return false;
    if (n["file"].IsDefined() == n["env"].IsDefined()) {
      Problem(n, path, "give exactly one of file or env");
      return false;
    }
    const bool from_file = n["file"].IsDefined();
    const char* key = from_file ? "file" : "env";
    std::string name;
    if (!String(n[key], Join(path, key), &name)) return false;
    Result<Secret> secret = ReadConfigSecret(env_, from_file, from_file ? ResolvePath(name) : name);
    if (!secret.ok()) {
      Problem(n[key], Join(path, key), secret.error().message);
      return false;
    }
    if (secret->empty()) {
      Problem(n, path, "the secret from " + secret->origin() + " is empty");
      return false;
    }
    *out = std::move(secret).value();
    return true;
  }

  const ConfigEnvironment& env() const { return env_; }

 private:
  std::string file_;
  const ConfigEnvironment& env_;
};

const Millis kMinTimeout{100};
const Millis kMaxTimeout{std::chrono::minutes(5)};

void ParsePagers(Reader& r, const YAML::Node& n, PagingConfig* out) {
  if (!r.Map(n, "pagers",
             {"pagerduty", "opsgenie", "slack", "webhook", "tls", "trace_url_template",
              "max_concurrency"})) {
    return;
  }
  if (!n.IsDefined() || n.IsNull()) return;
  integrations::PagerConfigs& p = out->pagers;
  if (YAML::Node pd = n["pagerduty"]; pd.IsDefined()) {
    auto& o = p.pagerduty.emplace();
    if (r.Map(pd, "pagers.pagerduty", {"region", "events_url", "client_url", "timeout"})) {
      if (pd["region"].IsDefined() && pd["events_url"].IsDefined()) {
        r.Problem(pd, "pagers.pagerduty", "give region or events_url, not both");
      }
      std::string region;
      if (r.String(pd["region"], "pagers.pagerduty.region", &region) && !region.empty()) {
        if (region == "us") {
          o.events_url = "https://events.pagerduty.com/v2/enqueue";
        } else if (region == "eu") {
          o.events_url = "https://events.eu.pagerduty.com/v2/enqueue";
        } else {
          r.Problem(pd["region"], "pagers.pagerduty.region", "expected us or eu");
        }
      }
      r.Url(pd["events_url"], "pagers.pagerduty.events_url", &o.events_url);
      if (pd["client_url"].IsDefined()) {
        r.Url(pd["client_url"], "pagers.pagerduty.client_url", &o.client_url);
      }
      r.Duration(pd["timeout"], "pagers.pagerduty.timeout", kMinTimeout, kMaxTimeout, &o.timeout);
    }
  }
  if (YAML::Node og = n["opsgenie"]; og.IsDefined()) {
    auto& o = p.opsgenie.emplace();
    if (r.Map(og, "pagers.opsgenie", {"api", "api_key", "timeout"})) {
      std::string api = "us";
      if (r.String(og["api"], "pagers.opsgenie.api", &api)) {
        Result<std::string> base = integrations::opsgenie::BaseUrl(api);
        if (base.ok()) {
          o.base_url = *base;
        } else {
          r.Problem(og["api"], "pagers.opsgenie.api", base.error().message);
        }
      }
      r.SecretRef(og["api_key"], "pagers.opsgenie.api_key", &o.api_key);
      r.Duration(og["timeout"], "pagers.opsgenie.timeout", kMinTimeout, kMaxTimeout, &o.timeout);
    }
  }
  if (YAML::Node sl = n["slack"]; sl.IsDefined()) {
    auto& o = p.slack.emplace();
    if (r.Map(sl, "pagers.slack", {"timeout"})) {
      r.Duration(sl["timeout"], "pagers.slack.timeout", kMinTimeout, kMaxTimeout, &o.timeout);
    }
  }
  if (YAML::Node wh = n["webhook"]; wh.IsDefined()) {
    auto& o = p.webhook.emplace();
    if (r.Map(wh, "pagers.webhook",
              {"signing_key", "signature_header", "timestamp_header", "timeout"})) {
      r.SecretRef(wh["signing_key"], "pagers.webhook.signing_key", &o.signing_key);
      r.String(wh["signature_header"], "pagers.webhook.signature_header", &o.signature_header);
      r.String(wh["timestamp_header"], "pagers.webhook.timestamp_header", &o.timestamp_header);
      r.Duration(wh["timeout"], "pagers.webhook.timeout", kMinTimeout, kMaxTimeout, &o.timeout);
    }
  }
  if (YAML::Node tls = n["tls"]; tls.IsDefined()) {
    if (r.Map(tls, "pagers.tls", {"ca_file"})) {
      std::string ca;
      if (r.String(tls["ca_file"], "pagers.tls.ca_file", &ca) && !ca.empty()) {
        std::string resolved = r.ResolvePath(ca);
        Result<std::string> content = r.env().read_file(resolved);
        if (!content.ok()) {
          r.Problem(tls["ca_file"], "pagers.tls.ca_file", content.error().message);
        } else {
          p.tls.ca_file = resolved;
        }
      }
    }
  }
  std::string tmpl;
  if (r.Url(n["trace_url_template"], "pagers.trace_url_template", &tmpl)) {
    if (tmpl.find("{trace_id}") == std::string::npos) {
      r.Problem(n["trace_url_template"], "pagers.trace_url_template", "must contain {trace_id}");
    } else {
      out->trace_url_template = tmpl;
    }
  }
  r.Count(n["max_concurrency"], "pagers.max_concurrency", 1, 256, &p.max_concurrency);
}

void ParseDelivery(Reader& r, const YAML::Node& n, integrations::delivery::DeliveryOptions* o) {
  if (!r.Map(n, "delivery",
             {"max_age", "resolve_max_age", "initial_backoff", "max_backoff", "max_retry_after",
              "max_in_flight", "max_in_flight_per_target", "rate_limits", "retention",
              "open_retention"})) {
    return;
  }
  if (!n.IsDefined() || n.IsNull()) return;
  using std::chrono::hours;
  using std::chrono::seconds;
  r.Duration(n["max_age"], "delivery.max_age", seconds(10), hours(24), &o->max_age);
  r.Duration(n["resolve_max_age"], "delivery.resolve_max_age", seconds(10), hours(24 * 7),
             &o->resolve_max_age);
  r.Duration(n["initial_backoff"], "delivery.initial_backoff", Millis(10), seconds(60),
             &o->initial_backoff);
  r.Duration(n["max_backoff"], "delivery.max_backoff", Millis(10), hours(1), &o->max_backoff);
  r.Duration(n["max_retry_after"], "delivery.max_retry_after", seconds(1), hours(1),
             &o->max_retry_after);
  r.Count(n["max_in_flight"], "delivery.max_in_flight", 1, 4096, &o->max_in_flight);
  r.Count(n["max_in_flight_per_target"], "delivery.max_in_flight_per_target", 1, 256,
          &o->max_in_flight_per_target);
  r.Duration(n["retention"], "delivery.retention", hours(1), hours(24 * 365), &o->retention);
  r.Duration(n["open_retention"], "delivery.open_retention", hours(1), hours(24 * 365),
             &o->open_retention);
  if (o->initial_backoff > o->max_backoff) {
    r.Problem(n, "delivery.initial_backoff", "must not be longer than max_backoff");
  }
  YAML::Node limits = n["rate_limits"];
  if (limits.IsDefined() &&
      r.Map(limits, "delivery.rate_limits", {"pagerduty", "opsgenie", "slack", "webhook"})) {
    for (auto it = limits.begin(); it != limits.end(); ++it) {
      const std::string kind = it->first.IsScalar() ? it->first.Scalar() : "";
      if (kind != "pagerduty" && kind != "opsgenie" && kind != "slack" && kind != "webhook") {
        continue;  // reported by Map
      }
      const std::string path = "delivery.rate_limits." + kind;
      if (!r.Map(it->second, path, {"per_second", "burst"})) continue;
      integrations::delivery::RateLimit rl = o->rate_limits[kind];
      r.Number(it->second["per_second"], path + ".per_second", 0, 10000, &rl.per_second);
      r.Number(it->second["burst"], path + ".burst", 1, 10000, &rl.burst);
      o->rate_limits[kind] = rl;
    }
  }
}

}  // namespace

std::vector<ConfigProblem> ParsePagingConfig(const YAML::Node& pagers, const YAML::Node& delivery,
                                             const std::string& file, const ConfigEnvironment& env,
                                             PagingConfig* out) {
  Reader r(file, env);
  ParsePagers(r, pagers, out);
  ParseDelivery(r, delivery, &out->delivery);
  return std::move(r.problems);
}

}  // namespace tracepager::daemon
