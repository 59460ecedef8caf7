// HTTPS fakes that behave like PagerDuty (Events API v2), Opsgenie (Alert API) and a Slack
// incoming webhook, on FakeBackend (127.0.0.1, port 0, a test CA). Each answers like the real
// service (bodies from the shared fixtures), can be scripted to fail (400 invalid key, 429 with
// Retry-After, 500, silence until the client times out, a reset connection), and records what
// it received. The PagerDuty fake also keeps incidents by dedup key, as PagerDuty does, so a
// test can tell "sent twice" from "paged twice".
// Header-only for the reason fake_backend.h gives.
#pragma once

#include <rapidjson/document.h>

#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "tests/integrations/fake_backend.h"
#include "tests/support/process.h"

namespace tracepager::testing {

inline std::string JsonMember(const std::string& body, const char* key) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember(key) || !d[key].IsString()) return {};
  return d[key].GetString();
}

// A FakeBackend whose answers come from a script (first) or a service-like default.
class FakePagerService {
 public:
  using Default = std::function<FakeReply(const ReceivedRequest&)>;

  FakePagerService(Default answer, const TlsFiles& tls)
      : default_(std::move(answer)),
        server_([this](const ReceivedRequest& r) { return Answer(r); }, tls) {}

  // The next answers, in order, before the default takes over again.
  void Script(std::vector<FakeReply> replies) {
    std::lock_guard lock(mu_);
    for (FakeReply& r : replies) script_.push_back(std::move(r));
  }
  std::string Url() const { return server_.Url("localhost"); }
  std::vector<ReceivedRequest> received() const { return server_.received(); }
  size_t requests() const { return server_.requests(); }
  bool WaitForRequests(size_t n) { return server_.WaitForRequests(n, std::chrono::seconds(20)); }

 private:
  FakeReply Answer(const ReceivedRequest& r) {
    std::lock_guard lock(mu_);
    if (!script_.empty()) {
      FakeReply reply = std::move(script_.front());
      script_.pop_front();
      return reply;
    }
    return default_(r);
  }

  Default default_;
  std::mutex mu_;
  std::deque<FakeReply> script_;
  FakeBackend server_;
};

inline FakeReply SilentReply() { return FakeReply::Of(FakeReply::Action::kSilence); }
inline FakeReply ResetReply() { return FakeReply::Of(FakeReply::Action::kReset); }
inline FakeReply StatusReply(int status, std::string body = "{}") {
  return FakeReply::Json(std::move(body), status);
}
inline FakeReply TooManyReply(const std::string& retry_after) {
  FakeReply r = FakeReply::Json(R"({"status":"throttled","message":"Too many requests"})", 429);
  r.headers.emplace_back("Retry-After", retry_after);
  return r;
}

// PagerDuty: 202 with the dedup key for a valid event; 400 "invalid event" (the recorded body)
// for a routing key listed as invalid.
class FakePagerDuty : public FakePagerService {
 public:
  explicit FakePagerDuty(const TlsFiles& tls)
      : FakePagerService([this](const ReceivedRequest& r) { return Default(r); }, tls) {}

  void RejectRoutingKey(const std::string& key) {
    std::lock_guard lock(mu_);
    invalid_keys_.insert(key);
  }
  // Accepted events: (action, dedup key) by routing key, in order.
  std::vector<std::pair<std::string, std::string>> Accepted(const std::string& routing_key) {
    std::lock_guard lock(mu_);
    return accepted_[routing_key];
  }
  // Distinct incidents opened (accepted triggers by routing key and dedup key).
  size_t Incidents() {
    std::lock_guard lock(mu_);
    return incidents_.size();
  }

 private:
  FakeReply Default(const ReceivedRequest& r) {
    std::string key = JsonMember(r.body, "routing_key");
    std::string dedup = JsonMember(r.body, "dedup_key");
    std::string action = JsonMember(r.body, "event_action");
    std::lock_guard lock(mu_);
    if (r.target != "/v2/enqueue" || invalid_keys_.count(key) || key.empty()) {
      return FakeReply::Json(
          ReadFile(FixturePath("pagerduty/from-test-literals/response_400_invalid_event.json")),
          400);
    }
    accepted_[key].emplace_back(action, dedup);
    if (action == "trigger") incidents_.emplace(key, dedup);
    return FakeReply::Json(
        R"({"status":"success","message":"Event processed","dedup_key":")" + dedup + "\"}", 202);
  }

  std::mutex mu_;
  std::set<std::string> invalid_keys_;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> accepted_;
  std::set<std::pair<std::string, std::string>> incidents_;
};

// Opsgenie: 202 "Request will be processed" with a request id; 422 (the written error body)
// for an alert without a message; 401 for a GenieKey it does not know.
class FakeOpsgenie : public FakePagerService {
 public:
  FakeOpsgenie(const TlsFiles& tls, std::string key)
      : FakePagerService([this](const ReceivedRequest& r) { return Default(r); }, tls),
        key_(std::move(key)) {}

 private:
  FakeReply Default(const ReceivedRequest& r) {
    if (r.Header("authorization") != "GenieKey " + key_) {
      return FakeReply::Json(R"({"message":"Could not authenticate","took":0.0,"requestId":"x"})",
                             401);
    }
    if (r.target == "/v2/alerts" && JsonMember(r.body, "message").empty()) {
      return FakeReply::Json(
          ReadFile(FixturePath("opsgenie/from-docs/error_response_422_written.json")), 422);
    }
    int n = ++count_;
    return FakeReply::Json(R"({"result":"Request will be processed","took":0.1,"requestId":"req-)" +
                               std::to_string(n) + "\"}",
                           202);
  }

  std::string key_;
  std::atomic<int> count_{0};
};

// A Slack incoming webhook: 200 "ok" (text/plain) at its path, 404 "no_service" elsewhere.
class FakeSlack : public FakePagerService {
 public:
  FakeSlack(const TlsFiles& tls, std::string path)
      : FakePagerService([this](const ReceivedRequest& r) { return Default(r); }, tls),
        path_(std::move(path)) {}
  std::string WebhookUrl() const { return Url() + path_; }

 private:
  FakeReply Default(const ReceivedRequest& r) {
    FakeReply reply;
    reply.content_type = "text/plain";
    if (r.target != path_) {
      reply.status = 404;
      reply.body = "no_service";
    } else {
      reply.status = 200;
      reply.body = "ok";
    }
    return reply;
  }
  std::string path_;
};

}  // namespace tracepager::testing
