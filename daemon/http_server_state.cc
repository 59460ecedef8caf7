// The HTTP server's policy and bookkeeping: what to answer, and which connections exist. Kept
// apart from the Beast I/O in http_server.cc so that neither file is long and this half compiles
// without Asio.
#include "daemon/http_server_state.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <exception>

namespace tracepager::daemon {

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

struct ReasonInfo {
  HttpRejectReason reason;
  const char* name;
  int status;
};

constexpr ReasonInfo kReasons[] = {
    {HttpRejectReason::kMalformed, "malformed", 400},
    {HttpRejectReason::kUnauthorized, "unauthorized", 401},
    {HttpRejectReason::kBadSignature, "bad_signature", 401},
    {HttpRejectReason::kNotFound, "not_found", 404},
    {HttpRejectReason::kMethodNotAllowed, "method_not_allowed", 405},
    {HttpRejectReason::kHeaderTimeout, "header_timeout", 408},
    {HttpRejectReason::kBodyTimeout, "body_timeout", 408},
    {HttpRejectReason::kBodyTooLarge, "body_too_large", 413},
    {HttpRejectReason::kHeaderTooLarge, "header_too_large", 431},
    {HttpRejectReason::kConnectionLimit, "connection_limit", 503},
    {HttpRejectReason::kHandlerTimeout, "handler_timeout", 503},
    {HttpRejectReason::kTlsHandshake, "tls_handshake", 400},
};

const ReasonInfo& Info(HttpRejectReason reason) {
  for (const auto& info : kReasons) {
    if (info.reason == reason) return info;
  }
  return kReasons[0];  // unreachable: every enumerator is in the table
}

constexpr char kRealm[] = "Bearer realm=\"tracepager\"";

}  // namespace

const char* HttpRejectReasonName(HttpRejectReason reason) { return Info(reason).name; }

const std::vector<HttpRejectReason>& AllHttpRejectReasons() {
  static const std::vector<HttpRejectReason> all = [] {
    std::vector<HttpRejectReason> v;
    for (const auto& info : kReasons) v.push_back(info.reason);
    return v;
  }();
  return all;
}

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

std::string JsonErrorBody(std::string_view error, std::string_view reason) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("error");
  w.String(error.data(), static_cast<rapidjson::SizeType>(error.size()));
  w.Key("reason");
  w.String(reason.data(), static_cast<rapidjson::SizeType>(reason.size()));
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

HttpResponse HttpResponse::JsonError(int status, std::string_view error, std::string_view reason) {
  HttpResponse r;
  r.status = status;
  r.body = JsonErrorBody(error, reason);
  return r;
}

HttpResponder::HttpResponder(std::shared_ptr<http_detail::ResponderState> state)
    : state_(std::move(state)) {}

bool HttpResponder::Send(HttpResponse response) const {
  return state_ != nullptr && state_->Send(std::move(response));
}

bool HttpResponder::answered() const { return state_ == nullptr || state_->answered(); }

namespace http_detail {

ServerState::ServerState(HttpServerOptions options)
    : options_(std::move(options)),
      routes_(std::make_shared<const std::vector<std::shared_ptr<const RouteEntry>>>()),
      tokens_(std::make_shared<const BearerTokenSet>(options_.bearer_tokens)) {}

void ServerState::AddRoute(std::string method, std::string path, HttpRouteOptions options,
                           HttpHandler handler, bool prefix) {
  auto entry = std::make_shared<RouteEntry>();
  entry->method = std::move(method);
  entry->path = std::move(path);
  entry->prefix = prefix;
  entry->options = std::move(options);
  entry->handler = std::make_shared<const HttpHandler>(std::move(handler));
  std::lock_guard lock(config_mu_);
  auto next = std::make_shared<std::vector<std::shared_ptr<const RouteEntry>>>(*routes_);
  next->push_back(std::move(entry));
  routes_ = std::move(next);
}

bool ServerState::SetRouteOptions(std::string_view method, std::string_view path,
                                  HttpRouteOptions options) {
  std::lock_guard lock(config_mu_);
  auto next = std::make_shared<std::vector<std::shared_ptr<const RouteEntry>>>(*routes_);
  for (auto& route : *next) {
    if (!route->prefix && route->method == method && route->path == path) {
      auto replaced = std::make_shared<RouteEntry>(*route);
      replaced->options = std::move(options);
      route = std::move(replaced);
      routes_ = std::move(next);
      return true;
    }
  }
  return false;
}

void ServerState::SetBearerTokens(const std::vector<std::string>& tokens) {
  auto next = std::make_shared<const BearerTokenSet>(tokens);
  std::lock_guard lock(config_mu_);
  tokens_ = std::move(next);
}

std::shared_ptr<const std::vector<std::shared_ptr<const RouteEntry>>> ServerState::Routes() const {
  std::lock_guard lock(config_mu_);
  return routes_;
}

void ServerState::CountReject(HttpRejectReason reason) const {
  if (!options_.on_reject) return;
  try {
    options_.on_reject(reason);
  } catch (const std::exception& e) {
    spdlog::error("http_reject_hook_failed reason={} error=\"{}\"", HttpRejectReasonName(reason),
                  e.what());
  }
}

Rejection ServerState::Reject(HttpRejectReason reason, std::string_view text) const {
  CountReject(reason);
  const ReasonInfo& info = Info(reason);
  return {reason, HttpResponse::JsonError(info.status, info.name, text)};
}

std::variant<std::shared_ptr<const RouteEntry>, Rejection> ServerState::CheckHeader(
    std::string_view method, std::string_view path, std::string_view authorization) const {
  auto routes = Routes();
  std::shared_ptr<const RouteEntry> route;
  std::string allow;
  // Exact paths first; only a path no exact route knows falls to the longest matching prefix.
  auto covers = [&](const RouteEntry& r) {
    return r.prefix ? path.size() > r.path.size() && path.starts_with(r.path) : r.path == path;
  };
  size_t longest_prefix = 0;
  for (const auto& r : *routes) {
    if (r->prefix && covers(*r)) longest_prefix = std::max(longest_prefix, r->path.size());
  }
  for (bool prefixes : {false, true}) {
    for (const auto& r : *routes) {
      if (r->prefix != prefixes || !covers(*r)) continue;
      if (prefixes && r->path.size() != longest_prefix) continue;
      if (r->method == method) {
        route = r;
        break;
      }
      if (!allow.empty()) allow += ", ";
      allow += r->method;
    }
    if (route || !allow.empty()) break;
  }
  if (!route) {
    if (allow.empty()) return Reject(HttpRejectReason::kNotFound, "no such endpoint");
    Rejection rejection =
        Reject(HttpRejectReason::kMethodNotAllowed, "this endpoint accepts " + allow + " only");
    rejection.response.headers.emplace_back("Allow", allow);
    return rejection;
  }
  if (route->options.require_auth) {
    std::shared_ptr<const BearerTokenSet> tokens;
    {
      std::lock_guard lock(config_mu_);
      tokens = tokens_;
    }
    auto token = ParseBearerAuthorization(authorization);
    // Contains() runs even for an empty set, so a server without tokens is not faster to refuse.
    const bool ok = token.has_value() && tokens->Contains(*token);
    if (!ok) {
      const bool presented = token.has_value();
      Rejection rejection =
          Reject(HttpRejectReason::kUnauthorized,
                 presented ? "bearer token not accepted" : "missing bearer token");
      rejection.response.headers.emplace_back(
          "WWW-Authenticate",
          presented ? std::string(kRealm) + ", error=\"invalid_token\"" : std::string(kRealm));
      return rejection;
    }
  }
  return route;
}

std::unique_ptr<Rejection> ServerState::CheckBody(const RouteEntry& route,
                                                  const HttpRequest& request) const {
  if (!route.options.hmac) return nullptr;
  const HttpHmacOptions& hmac = *route.options.hmac;
  auto reject = [&](std::string text) {
    return std::make_unique<Rejection>(Reject(HttpRejectReason::kBadSignature, text));
  };
  std::string_view signature = request.Header(hmac.header);
  if (signature.empty()) return reject("missing signature header " + hmac.header);
  if (hmac.timestamp_header.empty()) {
    if (!VerifyHmacSha256Hex(hmac.secret, request.body, signature, hmac.allow_sha256_prefix)) {
      return reject("signature does not match the body");
    }
    return nullptr;
  }
  std::string_view stamp = request.Header(hmac.timestamp_header);
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), seconds);
  if (stamp.empty() || ec != std::errc() || end != stamp.data() + stamp.size()) {
    return reject("missing or non-numeric timestamp header " + hmac.timestamp_header);
  }
  const auto now = options_.clock ? options_.clock() : std::chrono::system_clock::now();
  const auto sent = std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
  const auto skew = now > sent ? now - sent : sent - now;
  if (skew > hmac.max_skew) return reject("signature timestamp is outside the accepted window");
  // Grafana signs "<timestamp>:<body>" (grafana/alerting http/hmac.go).
  std::string signed_data;
  signed_data.reserve(stamp.size() + 1 + request.body.size());
  signed_data.append(stamp).append(":").append(request.body);
  if (!VerifyHmacSha256Hex(hmac.secret, signed_data, signature, hmac.allow_sha256_prefix)) {
    return reject("signature does not match the body");
  }
  return nullptr;
}

bool ServerState::TryReserveConnection() {
  std::lock_guard lock(sessions_mu_);
  if (stopping() || active_ >= options_.max_connections) return false;
  ++active_;
  return true;
}

uint64_t ServerState::Register(const std::shared_ptr<SessionBase>& session) {
  std::lock_guard lock(sessions_mu_);
  const uint64_t id = next_id_++;
  sessions_[id].session = session;
  return id;
}

void ServerState::Unregister(uint64_t id) {
  std::lock_guard lock(sessions_mu_);
  sessions_.erase(id);
  if (active_ > 0) --active_;
  if (active_ == 0) drained_cv_.notify_all();
}

void ServerState::HoldPending(uint64_t id, std::shared_ptr<SessionBase> session) {
  std::lock_guard lock(sessions_mu_);
  auto it = sessions_.find(id);
  if (it != sessions_.end()) it->second.pending = std::move(session);
}

void ServerState::ReleasePending(uint64_t id) {
  std::shared_ptr<SessionBase> released;  // destroyed outside the lock: ~Session unregisters
  std::lock_guard lock(sessions_mu_);
  auto it = sessions_.find(id);
  if (it != sessions_.end()) released = std::move(it->second.pending);
}

std::size_t ServerState::ActiveConnections() const {
  std::lock_guard lock(sessions_mu_);
  return active_;
}

std::vector<std::shared_ptr<SessionBase>> ServerState::LiveSessions() {
  std::vector<std::shared_ptr<SessionBase>> live;
  std::lock_guard lock(sessions_mu_);
  for (auto& [id, slot] : sessions_) {
    if (auto s = slot.session.lock()) live.push_back(std::move(s));
  }
  return live;
}

void ServerState::Stop() {
  stopping_.store(true, std::memory_order_release);
  for (auto& s : LiveSessions()) s->OnServerStop();
}

void ServerState::Abort() {
  stopping_.store(true, std::memory_order_release);
  for (auto& s : LiveSessions()) s->OnServerAbort();
}

bool ServerState::WaitDrained(std::chrono::milliseconds timeout) {
  std::unique_lock lock(sessions_mu_);
  return drained_cv_.wait_for(lock, timeout, [this] { return active_ == 0; });
}

void ServerState::Shutdown() {
  {
    std::lock_guard lock(deliver_mu_);
    alive_ = false;
  }
  std::vector<std::shared_ptr<SessionBase>> released;
  {
    std::lock_guard lock(sessions_mu_);
    for (auto& [id, slot] : sessions_) {
      if (slot.pending) released.push_back(std::move(slot.pending));
    }
  }
  // `released` dies here, outside sessions_mu_: a session's destructor unregisters itself.
}

bool ServerState::DeliverTo(const std::weak_ptr<SessionBase>& session, uint64_t request_seq,
                            HttpResponse response) {
  // Holding deliver_mu_ across the post means Shutdown() cannot complete while a post into the
  // io_context is under way, so nothing is posted into an io_context that is being destroyed.
  std::lock_guard lock(deliver_mu_);
  if (!alive_) return false;
  auto s = session.lock();
  if (!s) return false;
  s->Deliver(request_seq, std::move(response));
  return true;
}

ResponderState::~ResponderState() {
  if (!answered()) {
    Send(HttpResponse::JsonError(500, "internal", "request was not answered"));
  }
}

bool ResponderState::Send(HttpResponse response) {
  if (answered_.exchange(true, std::memory_order_acq_rel)) return false;
  return server_->DeliverTo(session_, request_seq_, std::move(response));
}

}  // namespace http_detail
}  // namespace tracepager::daemon
