// Internal to the HTTP server (http_server.cc, http_server_state.cc, tests): the state shared by
// the listeners, the connections and the responders, and the request policy (routing, auth,
// signatures, rejection bodies). No Asio or Beast types here: the I/O lives in http_server.cc,
// behind SessionBase.
//
// Lifetimes: every connection and every responder holds a shared_ptr<ServerState>, so the state
// outlives them all. Connections are held by their pending I/O and, while a handler owes an
// answer, by the pending table here; responders hold connections only weakly, so a responder
// kept by another thread never keeps a socket alive past its io_context (see ~HttpServer).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemon/http_auth.h"
#include "daemon/http_server.h"

namespace tracepager::daemon::http_detail {

// One connection, as the shared state sees it. All three are thread-safe (they post onto the
// connection's executor: its io_context's one thread, or its strand on a caller's io_context).
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  // Writes `response` as the answer to request number `request_seq` of this connection, if that
  // request is still waiting for one.
  virtual void Deliver(uint64_t request_seq, HttpResponse response) = 0;
  // Server stopping: close if idle, else finish the current request and close.
  virtual void OnServerStop() = 0;
  // Close now.
  virtual void OnServerAbort() = 0;
};

struct RouteEntry {
  std::string method;
  std::string path;
  bool prefix = false;  // matches every longer path starting with `path`
  HttpRouteOptions options;
  std::shared_ptr<const HttpHandler> handler;
};

// A refusal decided by the policy: the reason (already reported to on_reject) and the answer.
struct Rejection {
  HttpRejectReason reason;
  HttpResponse response;
};

class ServerState {
 public:
  explicit ServerState(HttpServerOptions options);

  const HttpServerOptions& options() const { return options_; }

  // ---- routes and credentials ----
  // REQUIRES: before the server starts.
  void AddRoute(std::string method, std::string path, HttpRouteOptions options, HttpHandler handler,
                bool prefix = false);
  bool SetRouteOptions(std::string_view method, std::string_view path, HttpRouteOptions options);
  void SetBearerTokens(const std::vector<std::string>& tokens);

  // After the header: finds the route (404/405) and checks the bearer token if the route wants
  // one (401). `authorization` is the Authorization header value, empty when absent.
  std::variant<std::shared_ptr<const RouteEntry>, Rejection> CheckHeader(
      std::string_view method, std::string_view path, std::string_view authorization) const;
  // After the body: the route's HMAC signature, if it has one. Returns a rejection or nullptr.
  std::unique_ptr<Rejection> CheckBody(const RouteEntry& route, const HttpRequest& request) const;

  // Reports `reason` to on_reject and builds its JSON answer.
  Rejection Reject(HttpRejectReason reason, std::string_view text) const;
  void CountReject(HttpRejectReason reason) const;

  // ---- connections ----
  // Reserves a connection slot; false when max_connections are open (or stopping).
  bool TryReserveConnection();
  // Registers a connection that holds a reserved slot; returns its id.
  uint64_t Register(const std::shared_ptr<SessionBase>& session);
  // From the connection's destructor: frees its slot.
  void Unregister(uint64_t id);
  // Keeps the connection alive while a handler owes an answer, and lets it go.
  void HoldPending(uint64_t id, std::shared_ptr<SessionBase> session);
  void ReleasePending(uint64_t id);
  std::size_t ActiveConnections() const;

  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void Stop();
  void Abort();
  bool WaitDrained(std::chrono::milliseconds timeout);
  // From ~HttpServer: no responder may reach a connection after this; drops pending holds.
  void Shutdown();

  // ---- responders ----
  // Hands `response` to the connection if the server is alive and the connection exists.
  bool DeliverTo(const std::weak_ptr<SessionBase>& session, uint64_t request_seq,
                 HttpResponse response);

 private:
  std::shared_ptr<const std::vector<std::shared_ptr<const RouteEntry>>> Routes() const;
  std::vector<std::shared_ptr<SessionBase>> LiveSessions();

  const HttpServerOptions options_;

  mutable std::mutex config_mu_;  // guards the two snapshots; readers copy the pointer
  std::shared_ptr<const std::vector<std::shared_ptr<const RouteEntry>>> routes_;
  std::shared_ptr<const BearerTokenSet> tokens_;

  mutable std::mutex sessions_mu_;
  std::condition_variable drained_cv_;
  struct SessionSlot {
    std::weak_ptr<SessionBase> session;
    std::shared_ptr<SessionBase> pending;  // set while a handler owes an answer
  };
  std::map<uint64_t, SessionSlot> sessions_;
  std::size_t active_ = 0;  // reserved slots (>= sessions_.size())
  uint64_t next_id_ = 1;
  std::atomic<bool> stopping_{false};

  std::mutex deliver_mu_;  // orders DeliverTo against Shutdown
  bool alive_ = true;
};

class ResponderState {
 public:
  ResponderState(std::shared_ptr<ServerState> server, std::weak_ptr<SessionBase> session,
                 uint64_t request_seq, HttpRequest request)
      : server_(std::move(server)),
        session_(std::move(session)),
        request_seq_(request_seq),
        request_(std::move(request)) {}
  // Answers 500 if nobody did.
  ~ResponderState();

  const HttpRequest& request() const { return request_; }
  bool Send(HttpResponse response);
  bool answered() const { return answered_.load(std::memory_order_acquire); }

  static HttpResponder MakeResponder(std::shared_ptr<ResponderState> state) {
    return HttpResponder(std::move(state));
  }

 private:
  std::shared_ptr<ServerState> server_;
  std::weak_ptr<SessionBase> session_;
  uint64_t request_seq_;
  HttpRequest request_;
  std::atomic<bool> answered_{false};
};

}  // namespace tracepager::daemon::http_detail
