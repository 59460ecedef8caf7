// The HTTP server's I/O: listeners, connections (plain and TLS) and the io_context. What to
// answer is decided in http_server_state.cc; this file only moves bytes and keeps deadlines.
//
// Deadlines for reads and writes use our own timer instead of beast::tcp_stream's: Beast closes
// the socket when its timer fires, and we want to answer a trickling client with a 408 before
// closing; and one lazily re-armed timer costs a request no timer operations in the common case
// (see ArmDeadline). The TLS handshake and the final TLS shutdown, once per connection, use
// tcp_stream's timer (closing is right there).
#include "daemon/http_server.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

#include "daemon/http_server_state.h"

namespace tracepager::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using beast::error_code;

namespace {

using http_detail::Rejection;
using http_detail::RouteEntry;
using http_detail::ServerState;
using http_detail::SessionBase;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Bytes read while waiting for the first byte of a request; the parser reads the rest.
constexpr std::size_t kFirstRead = 4096;
// After refusing a request whose body we did not read, we read and discard what the client still
// sends for a moment before closing: closing a socket with unread data makes the kernel send a
// reset, and the client would then see "connection reset" instead of our answer.
constexpr std::size_t kLingerBytes = 4u << 20;
constexpr auto kLingerTime = std::chrono::seconds(2);

std::string Str(beast::string_view v) { return std::string(v.data(), v.size()); }

bool IsQuietClose(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::operation_aborted ||
         ec == ssl::error::stream_truncated;
}

enum class Phase { kHandshake, kIdle, kHeader, kBody, kHandling, kWriting, kClosing, kClosed };
enum class Deadline { kNone, kIdle, kFirstIdle, kHeader, kBody, kHandler, kWrite, kLinger };
using Clock = asio::steady_timer::clock_type;

template <class Stream>
class Session final : public SessionBase {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Session(std::shared_ptr<ServerState> state, tcp::socket&& socket, ssl::context* tls)
      : state_(std::move(state)),
        executor_(socket.get_executor()),
        stream_(MakeStream(std::move(socket), tls)),
        timer_(executor_) {
    error_code ec;
    auto remote = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) {
      remote_address_ = remote.address().to_string();
      remote_port_ = remote.port();
    }
  }

  ~Session() override { state_->Unregister(id_); }

  void Start(uint64_t id) {
    id_ = id;
    asio::dispatch(executor_, beast::bind_front_handler(&Session::OnStart, Self()));
  }

  void Deliver(uint64_t request_seq, HttpResponse response) override {
    asio::post(executor_, beast::bind_front_handler(&Session::OnDeliver, Self(), request_seq,
                                                    std::move(response)));
  }
  void OnServerStop() override {
    asio::post(executor_, beast::bind_front_handler(&Session::OnStop, Self()));
  }
  void OnServerAbort() override {
    asio::post(executor_, beast::bind_front_handler(&Session::CloseNow, Self()));
  }

 private:
  static Stream MakeStream(tcp::socket&& socket, ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls);
    } else {
      (void)tls;
      return Stream(std::move(socket));
    }
  }

  std::shared_ptr<Session> Self() {
    return std::static_pointer_cast<Session>(this->shared_from_this());
  }
  auto& Socket() { return beast::get_lowest_layer(stream_).socket(); }

  void OnStart() {
    if constexpr (kTls) {
      phase_ = Phase::kHandshake;
      beast::get_lowest_layer(stream_).expires_after(state_->options().header_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              beast::bind_front_handler(&Session::OnHandshake, Self()));
    } else {
      WaitForRequest();
    }
  }

  void OnHandshake(error_code ec) {
    if (phase_ == Phase::kClosed) return;
    beast::get_lowest_layer(stream_).expires_never();
    if (ec) {
      state_->CountReject(HttpRejectReason::kTlsHandshake);
      return CloseNow();
    }
    WaitForRequest();
  }

  // ---- deadlines (see the top of the file) ----
  // A connection has one deadline at a time (a kind and a time) and one timer, re-armed only
  // when a new deadline is earlier than the wait in progress. When a wait ends it fires the
  // deadline if that is due, waits again if the deadline moved later, and stops if there is
  // none. Disarming only forgets the deadline. So on a keep-alive connection the wait in
  // progress (for an earlier request's header deadline) is usually earlier than every deadline
  // set since, and a request costs no timer operation; cancelling and re-arming in every phase
  // cost a wait completion each and often a timerfd update.
  void ArmDeadline(Deadline kind, std::chrono::milliseconds after) {
    deadline_ = kind;
    fired_ = Deadline::kNone;
    deadline_at_ = Clock::now() + after;
    if (!wait_pending_ || deadline_at_ < timer_.expiry()) StartWait();
  }
  void DisarmDeadline() { deadline_ = Deadline::kNone; }
  void StartWait() {
    wait_pending_ = true;
    timer_.expires_at(deadline_at_);  // a wait in progress ends with operation_aborted
    timer_.async_wait(beast::bind_front_handler(&Session::OnWaitEnded, Self(), ++wait_generation_));
  }
  void OnWaitEnded(uint64_t generation, error_code ec) {
    if (generation != wait_generation_) return;  // replaced by an earlier wait
    wait_pending_ = false;
    if (ec || phase_ == Phase::kClosed || deadline_ == Deadline::kNone) return;
    if (Clock::now() < deadline_at_) return StartWait();
    fired_ = deadline_;
    error_code ignored;
    switch (deadline_) {
      case Deadline::kHandler:
        return OnHandlerTimeout();
      case Deadline::kWrite:
        // A composed write runs several socket writes; closing (not cancelling) also fails
        // the next one, should the deadline fall between two of them.
        Socket().close(ignored);
        return;
      default:
        Socket().cancel(ignored);  // the pending read completes with operation_aborted
    }
  }
  // The deadline that cut a read short, if that is why it failed.
  Deadline TimedOut(const error_code& ec) const {
    return ec == asio::error::operation_aborted ? fired_ : Deadline::kNone;
  }

  // ---- reading ----
  void WaitForRequest() {
    if (state_->stopping() && !first_request_) return Close(false);
    phase_ = Phase::kIdle;
    if (buffer_.size() > 0) return ReadHeader();  // pipelined bytes already here
    const auto& o = state_->options();
    ArmDeadline(first_request_ ? Deadline::kFirstIdle : Deadline::kIdle,
                first_request_ ? o.header_timeout : o.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            beast::bind_front_handler(&Session::OnFirstBytes, Self()));
  }

  void OnFirstBytes(error_code ec, std::size_t n) {
    if (phase_ == Phase::kClosed) return;
    Deadline timed_out = TimedOut(ec);
    DisarmDeadline();
    if (ec) {
      if (timed_out == Deadline::kFirstIdle) {
        return Refuse(state_->Reject(HttpRejectReason::kHeaderTimeout,
                                     "no request within the header timeout"));
      }
      return CloseNow();  // keep-alive idle expiry, client close, Stop() or Abort()
    }
    buffer_.commit(n);
    ReadHeader();
  }

  void ReadHeader() {
    phase_ = Phase::kHeader;
    const auto& o = state_->options();
    parser_.emplace();
    parser_->header_limit(
        static_cast<std::uint32_t>(std::min<std::size_t>(o.header_limit, UINT32_MAX)));
    parser_->body_limit(o.body_limit);
    ArmDeadline(Deadline::kHeader, o.header_timeout);
    ReadSome();
  }

  // Reads for the header or body phase, one async_read_some at a time, until the parser has
  // what the phase needs. Not http::async_read_header/async_read: their loops start each next
  // socket read on their own, so a deadline whose cancel() landed between two reads (one read's
  // completion queued, none pending) was lost, and a client trickling bytes was never cut off.
  // Here every step sees whether the deadline fired.
  void ReadSome() {
    http::async_read_some(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&Session::OnReadSome, Self()));
  }

  void OnReadSome(error_code ec, std::size_t) {
    if (phase_ == Phase::kClosed) return;
    const bool header = phase_ == Phase::kHeader;
    const bool done = header ? parser_->is_header_done() : parser_->is_done();
    if (!ec && !done) {
      if (fired_ == Deadline::kNone) return ReadSome();
      ec = asio::error::operation_aborted;  // the deadline fired while no read was pending
    }
    if (header) return OnHeader(ec, 0);
    OnBody(ec, 0);
  }

  void OnHeader(error_code ec, std::size_t) {
    if (phase_ == Phase::kClosed) return;
    Deadline timed_out = TimedOut(ec);
    DisarmDeadline();
    if (ec) return OnReadError(ec, timed_out);
    const auto& req = parser_->get();
    if (req.version() != 10 && req.version() != 11) {
      return Refuse(state_->Reject(HttpRejectReason::kMalformed,
                                   "unsupported HTTP version; HTTP/1.1 expected"));
    }
    auto checked = state_->CheckHeader(
        std::string_view(req.method_string().data(), req.method_string().size()),
        PathOf(req.target()),
        std::string_view(req[http::field::authorization].data(),
                         req[http::field::authorization].size()));
    if (auto* rejection = std::get_if<Rejection>(&checked)) {
      if (!parser_->is_done()) return Refuse(std::move(*rejection));
      // No body follows (a GET to a wrong path): the connection can stay open.
      keep_alive_ = req.keep_alive();
      version_ = req.version();
      parser_.reset();
      return Respond(std::move(rejection->response), false);
    }
    route_ = std::get<std::shared_ptr<const RouteEntry>>(std::move(checked));
    if (parser_->is_done()) return OnBody({}, 0);
    auto expect = req[http::field::expect];
    if (req.version() >= 11 && beast::iequals(expect, "100-continue")) {
      // curl sends this for large bodies and waits up to a second for it before sending.
      static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      phase_ = Phase::kWriting;
      ArmDeadline(Deadline::kWrite, state_->options().write_timeout);
      return asio::async_write(stream_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                               beast::bind_front_handler(&Session::OnContinueSent, Self()));
    }
    ReadBody();
  }

  void OnContinueSent(error_code ec, std::size_t) {
    if (phase_ == Phase::kClosed) return;
    DisarmDeadline();
    if (ec) return CloseNow();
    ReadBody();
  }

  void ReadBody() {
    phase_ = Phase::kBody;
    ArmDeadline(Deadline::kBody, state_->options().body_timeout);
    parser_->eager(true);  // parse body bytes as they arrive, as http::async_read does
    ReadSome();
  }

  void OnBody(error_code ec, std::size_t) {
    if (phase_ == Phase::kClosed) return;
    Deadline timed_out = TimedOut(ec);
    DisarmDeadline();
    if (ec) return OnReadError(ec, timed_out);
    Dispatch();
  }

  void OnReadError(const error_code& ec, Deadline timed_out) {
    const auto& o = state_->options();
    if (timed_out == Deadline::kHeader) {
      return Refuse(state_->Reject(HttpRejectReason::kHeaderTimeout,
                                   "request header not complete within " +
                                       std::to_string(o.header_timeout.count()) + " ms"));
    }
    if (timed_out == Deadline::kBody) {
      return Refuse(state_->Reject(
          HttpRejectReason::kBodyTimeout,
          "request body not complete within " + std::to_string(o.body_timeout.count()) + " ms"));
    }
    if (ec == http::error::body_limit) {
      return Refuse(
          state_->Reject(HttpRejectReason::kBodyTooLarge,
                         "request body exceeds " + std::to_string(o.body_limit) + " bytes"));
    }
    if (ec == http::error::header_limit) {
      return Refuse(
          state_->Reject(HttpRejectReason::kHeaderTooLarge,
                         "request header exceeds " + std::to_string(o.header_limit) + " bytes"));
    }
    if (IsQuietClose(ec) ||
        ec.category() != http::make_error_code(http::error::end_of_stream).category()) {
      return CloseNow();  // the client went away or the socket failed: nobody to answer
    }
    Refuse(
        state_->Reject(HttpRejectReason::kMalformed, "not an HTTP/1.1 request: " + ec.message()));
  }

  static std::string_view PathOf(beast::string_view target) {
    std::string_view t(target.data(), target.size());
    return t.substr(0, t.find('?'));
  }

  // ---- handling ----
  void Dispatch() {
    phase_ = Phase::kHandling;
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    HttpRequest request;
    request.method = Str(req.method_string());
    request.target = Str(req.target());
    const auto q = request.target.find('?');
    request.path = request.target.substr(0, q);
    if (q != std::string::npos) request.query = request.target.substr(q + 1);
    for (const auto& field : req) {
      request.headers.emplace_back(Str(field.name_string()), Str(field.value()));
    }
    request.body = std::move(req.body());
    request.remote_address = remote_address_;
    request.remote_port = remote_port_;
    request.tls = kTls;
    parser_.reset();

    if (auto rejection = state_->CheckBody(*route_, request)) {
      return Respond(std::move(rejection->response), false);  // body read: keep-alive is fine
    }
    ++request_seq_;
    auto responder_state = std::make_shared<http_detail::ResponderState>(
        state_, this->weak_from_this(), request_seq_, std::move(request));
    state_->HoldPending(id_, Self());
    if (state_->options().handler_timeout.count() > 0) {
      ArmDeadline(Deadline::kHandler, state_->options().handler_timeout);
    }
    auto route = std::move(route_);
    try {
      (*route->handler)(responder_state->request(),
                        http_detail::ResponderState::MakeResponder(responder_state));
    } catch (const std::exception& e) {
      spdlog::error("http_handler_failed path={} error=\"{}\"", route->path, e.what());
      responder_state->Send(HttpResponse::JsonError(500, "internal", "handler failed"));
    } catch (...) {
      spdlog::error("http_handler_failed path={} error=unknown", route->path);
      responder_state->Send(HttpResponse::JsonError(500, "internal", "handler failed"));
    }
  }

  void OnDeliver(uint64_t request_seq, HttpResponse response) {
    // A stale sequence number is an answer that lost to handler_timeout: by now this
    // connection may be handling its next request, which must not get that answer.
    if (request_seq != request_seq_ || phase_ != Phase::kHandling) return;
    DisarmDeadline();
    state_->ReleasePending(id_);
    Respond(std::move(response), false);
  }

  void OnHandlerTimeout() {
    if (phase_ != Phase::kHandling) return;
    ++request_seq_;  // the handler's own answer, if it ever comes, is dropped
    state_->ReleasePending(id_);
    auto rejection = state_->Reject(HttpRejectReason::kHandlerTimeout,
                                    "not answered within " +
                                        std::to_string(state_->options().handler_timeout.count()) +
                                        " ms; retry later");
    Respond(std::move(rejection.response), false);
  }

  // ---- writing ----
  // Answers a request refused before its body was read: the connection must close afterwards.
  void Refuse(Rejection rejection) {
    keep_alive_ = false;
    version_ = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    Respond(std::move(rejection.response), true);
  }

  void Respond(HttpResponse response, bool linger) {
    phase_ = Phase::kWriting;
    linger_ = linger;
    const bool close =
        linger || !keep_alive_ || !state_->options().keep_alive || state_->stopping();
    res_.emplace();
    res_->version(version_ == 10 ? 10 : 11);
    res_->result(static_cast<unsigned>(response.status));
    res_->set(http::field::server, "tracepager");
    res_->set(http::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) res_->insert(name, value);
    res_->body() = std::move(response.body);
    res_->keep_alive(!close);
    res_->prepare_payload();
    close_after_write_ = close;
    ArmDeadline(Deadline::kWrite, state_->options().write_timeout);
    http::async_write(stream_, *res_, beast::bind_front_handler(&Session::OnWrite, Self()));
  }

  void OnWrite(error_code ec, std::size_t) {
    if (phase_ == Phase::kClosed) return;
    DisarmDeadline();
    res_.reset();
    if (ec) return CloseNow();
    if (close_after_write_) return Close(linger_);
    first_request_ = false;
    WaitForRequest();
  }

  // ---- closing ----
  void OnStop() {
    if (phase_ == Phase::kIdle) CloseNow();  // waiting for a request that may never come
    // Otherwise the current request finishes and Respond() sees stopping() and closes.
  }

  void Close(bool linger) {
    phase_ = Phase::kClosing;
    if constexpr (kTls) {
      (void)linger;
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(1));
      stream_.async_shutdown(beast::bind_front_handler(&Session::OnTlsShutdown, Self()));
    } else {
      error_code ignored;
      Socket().shutdown(tcp::socket::shutdown_send, ignored);
      if (!linger) return CloseNow();
      lingered_ = 0;
      ArmDeadline(Deadline::kLinger,
                  std::chrono::duration_cast<std::chrono::milliseconds>(kLingerTime));
      Discard();
    }
  }

  void OnTlsShutdown(error_code) { CloseNow(); }

  void Discard() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(64 << 10),
                            beast::bind_front_handler(&Session::OnDiscard, Self()));
  }
  void OnDiscard(error_code ec, std::size_t n) {
    if (phase_ == Phase::kClosed) return;
    lingered_ += n;
    if (ec || lingered_ > kLingerBytes) return CloseNow();
    Discard();
  }

  void CloseNow() {
    if (phase_ == Phase::kClosed) return;
    const bool was_handling = phase_ == Phase::kHandling;
    phase_ = Phase::kClosed;
    DisarmDeadline();
    timer_.cancel();  // its wait holds this session
    beast::get_lowest_layer(stream_).close();
    if (was_handling) state_->ReleasePending(id_);
  }

  std::shared_ptr<ServerState> state_;
  asio::any_io_executor executor_;
  Stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  std::shared_ptr<const RouteEntry> route_;
  std::string remote_address_;
  uint16_t remote_port_ = 0;
  uint64_t id_ = 0;
  uint64_t request_seq_ = 0;  // of the request being handled; see OnDeliver
  Phase phase_ = Phase::kIdle;
  Deadline deadline_ = Deadline::kNone;
  Deadline fired_ = Deadline::kNone;
  Clock::time_point deadline_at_;
  bool wait_pending_ = false;
  uint64_t wait_generation_ = 0;  // of the timer's current wait
  bool first_request_ = true;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool close_after_write_ = false;
  bool linger_ = false;
  std::size_t lingered_ = 0;
};

// Refuses a connection beyond max_connections without reading it. The socket is still blocking
// in the kernel's view, so it is switched to non-blocking and written once: a 503 is short
// enough to fit any socket buffer, and if it does not fit the client sees a close, which
// Alertmanager treats like a 5xx (it retries).
void RefuseConnection(tcp::socket& socket, bool tls) {
  error_code ec;
  if (!tls) {
    static const std::string kResponse = [] {
      std::string body =
          HttpResponse::JsonError(503, "connection_limit", "too many open connections; retry later")
              .body;
      return "HTTP/1.1 503 Service Unavailable\r\nServer: tracepager\r\n"
             "Content-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\n"
             "Content-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    socket.non_blocking(true, ec);
    if (!ec) socket.write_some(asio::buffer(kResponse), ec);
    socket.shutdown(tcp::socket::shutdown_send, ec);
  }
  socket.close(ec);
}

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Connections are spread over `contexts` in turn. A context run by one thread (`strands`
  // false) needs no strand per connection: its handlers never run concurrently.
  Listener(std::vector<asio::io_context*> contexts, bool strands,
           std::shared_ptr<ServerState> state, std::shared_ptr<ssl::context> tls)
      : contexts_(std::move(contexts)),
        strands_(strands),
        state_(std::move(state)),
        tls_(std::move(tls)),
        acceptor_(asio::make_strand(*contexts_.front())),
        retry_timer_(acceptor_.get_executor()) {}

  Status Bind(const HttpListener& where, HttpBoundListener* bound) {
    error_code ec;
    auto address = asio::ip::make_address(where.host, ec);
    const std::string name = where.host + ":" + std::to_string(where.port);
    if (ec) return Error::InvalidInput("listen address " + name + ": not an IP address");
    tcp::endpoint endpoint(address, where.port);
    auto failed = [&] { return Error::Unavailable("listen " + name + ": " + ec.message()); };
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) return failed();
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return failed();
    // "::" must not also claim the IPv4 port, so "0.0.0.0" and "::" can both be listed.
    if (address.is_v6()) {
      acceptor_.set_option(asio::ip::v6_only(true), ec);
      if (ec) return failed();
    }
    acceptor_.bind(endpoint, ec);
    if (ec) return failed();
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return failed();
    auto local = acceptor_.local_endpoint(ec);
    bound->host = where.host;
    bound->port = ec ? where.port : local.port();
    bound->tls = where.tls;
    return OkStatus();
  }

  void Run() {
    asio::dispatch(acceptor_.get_executor(),
                   beast::bind_front_handler(&Listener::Accept, shared_from_this()));
  }
  void Close() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      error_code ec;
      self->retry_timer_.cancel();
      self->acceptor_.close(ec);
    });
  }

 private:
  void Accept() {
    asio::io_context& ioc = *contexts_[next_context_++ % contexts_.size()];
    auto handler = beast::bind_front_handler(&Listener::OnAccept, shared_from_this());
    if (strands_) return acceptor_.async_accept(asio::make_strand(ioc), std::move(handler));
    acceptor_.async_accept(ioc.get_executor(), std::move(handler));
  }

  void OnAccept(error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Typically EMFILE: back off briefly instead of spinning on a full descriptor table.
      spdlog::warn("http_accept_failed error=\"{}\"", ec.message());
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([self = shared_from_this()](error_code e) {
        if (!e) self->Accept();
      });
      return;
    }
    if (state_->stopping()) {
      error_code ignored;
      socket.close(ignored);
    } else if (!state_->TryReserveConnection()) {
      state_->CountReject(HttpRejectReason::kConnectionLimit);
      RefuseConnection(socket, tls_ != nullptr);
    } else if (tls_ != nullptr) {
      auto s = std::make_shared<Session<TlsStream>>(state_, std::move(socket), tls_.get());
      s->Start(state_->Register(s));
    } else {
      auto s = std::make_shared<Session<PlainStream>>(state_, std::move(socket), nullptr);
      s->Start(state_->Register(s));
    }
    Accept();
  }

  std::vector<asio::io_context*> contexts_;
  bool strands_;
  std::size_t next_context_ = 0;
  std::shared_ptr<ServerState> state_;
  std::shared_ptr<ssl::context> tls_;  // shared: a late accept may outlive the server
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, asio::io_context* external)
      : state_(std::make_shared<ServerState>(std::move(options))) {
    if (external == nullptr) {
      for (int i = 0; i < std::max(1, state_->options().io_threads); ++i) {
        own_.push_back(std::make_unique<asio::io_context>(1));
        contexts_.push_back(own_.back().get());
      }
    } else {
      contexts_.push_back(external);
    }
  }

  ~Impl() {
    Abort();
    if (!own_.empty()) {
      // Everything is closed, so the io_contexts run out of work and the threads return.
      work_.clear();
      for (auto& t : threads_) t.join();
    }
    state_->Shutdown();
  }

  Status Start() {
    const auto& o = state_->options();
    if (o.listeners.empty()) return Error::InvalidInput("http server: no listen address");
    bool any_tls = false;
    for (const auto& l : o.listeners) any_tls = any_tls || l.tls;
    if (any_tls) {
      if (!o.tls) return Error::InvalidInput("http server: a TLS listener needs tls files");
      auto loaded = LoadTls(*o.tls);
      if (!loaded.ok()) return loaded.error();
    }
    std::vector<std::shared_ptr<Listener>> listeners;
    std::vector<HttpBoundListener> bound;
    for (const auto& where : o.listeners) {
      auto l = std::make_shared<Listener>(contexts_, /*strands=*/own_.empty(), state_,
                                          where.tls ? tls_ : nullptr);
      HttpBoundListener b;
      Status s = l->Bind(where, &b);
      if (!s.ok()) return s.error();  // the acceptors bound so far close with `listeners`
      listeners.push_back(std::move(l));
      bound.push_back(std::move(b));
    }
    {
      std::lock_guard lock(mu_);
      listeners_ = std::move(listeners);
      bound_ = std::move(bound);
      for (auto& l : listeners_) l->Run();
    }
    for (auto& ioc : own_) {
      work_.push_back(asio::make_work_guard(*ioc));
      threads_.emplace_back([this, ioc = ioc.get()] {
        pthread_setname_np(pthread_self(), "tp-http");
        if (state_->options().on_io_thread_start) state_->options().on_io_thread_start();
        RunLoop(*ioc);
      });
    }
    return OkStatus();
  }

  Status LoadTls(const HttpTlsFiles& files) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                     ec);
    ctx->use_certificate_chain_file(files.certificate_chain_file, ec);
    if (ec) {
      return Error::InvalidInput("tls certificate chain " + files.certificate_chain_file + ": " +
                                 ec.message());
    }
    ctx->use_private_key_file(files.private_key_file, ssl::context::pem, ec);
    if (ec) {
      return Error::InvalidInput("tls private key " + files.private_key_file + ": " + ec.message());
    }
    tls_ = std::move(ctx);
    return OkStatus();
  }

  void RunLoop(asio::io_context& ioc) {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {
        // Handlers catch their own exceptions; this is a last resort so one bug does not take
        // the whole server down.
        spdlog::error("http_io_thread_exception error=\"{}\"", e.what());
      }
    }
  }

  void Stop() {
    CloseListeners();
    state_->Stop();
  }
  void Abort() {
    CloseListeners();
    state_->Abort();
  }
  void CloseListeners() {
    std::lock_guard lock(mu_);
    for (auto& l : listeners_) l->Close();
  }

  std::vector<HttpBoundListener> Bound() const {
    std::lock_guard lock(mu_);
    return bound_;
  }

  // Declaration order matters for destruction: the io_context (and the connections its pending
  // handlers hold) goes before the TLS context and the shared state.
  std::shared_ptr<ServerState> state_;
  std::shared_ptr<ssl::context> tls_;
  // Own io_contexts, one per io thread (each run by its one thread: no locking inside Asio's
  // scheduler between threads, no strand per connection); or the caller's one.
  std::vector<std::unique_ptr<asio::io_context>> own_;
  std::vector<asio::io_context*> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::vector<HttpBoundListener> bound_;
};

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options), nullptr)) {}
HttpServer::HttpServer(HttpServerOptions options, asio::io_context& io_context)
    : impl_(std::make_unique<Impl>(std::move(options), &io_context)) {}
HttpServer::~HttpServer() = default;

void HttpServer::Handle(std::string method, std::string path, HttpRouteOptions options,
                        HttpHandler handler) {
  impl_->state_->AddRoute(std::move(method), std::move(path), std::move(options),
                          std::move(handler));
}

void HttpServer::HandlePrefix(std::string method, std::string prefix, HttpRouteOptions options,
                              HttpHandler handler) {
  impl_->state_->AddRoute(std::move(method), std::move(prefix), std::move(options),
                          std::move(handler), /*prefix=*/true);
}
Status HttpServer::Start() { return impl_->Start(); }
std::vector<HttpBoundListener> HttpServer::BoundListeners() const { return impl_->Bound(); }
void HttpServer::SetBearerTokens(const std::vector<std::string>& tokens) {
  impl_->state_->SetBearerTokens(tokens);
}
bool HttpServer::SetRouteOptions(std::string_view method, std::string_view path,
                                 HttpRouteOptions options) {
  return impl_->state_->SetRouteOptions(method, path, std::move(options));
}
void HttpServer::Stop() { impl_->Stop(); }
bool HttpServer::WaitDrained(std::chrono::milliseconds timeout) {
  return impl_->state_->WaitDrained(timeout);
}
void HttpServer::Abort() { impl_->Abort(); }
std::size_t HttpServer::ActiveConnections() const { return impl_->state_->ActiveConnections(); }

}  // namespace tracepager::daemon
