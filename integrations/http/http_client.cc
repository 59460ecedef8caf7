#include "integrations/http/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <variant>

#include "integrations/http/url.h"

namespace tracepager::integrations::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using Strand = net::strand<net::io_context::executor_type>;

const char* MethodName(Method method) {
  switch (method) {
    case Method::kGet:
      return "GET";
    case Method::kPost:
      return "POST";
    case Method::kPut:
      return "PUT";
  }
  return "GET";
}

std::optional<std::string_view> Response::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(beast::string_view(key.data(), key.size()),
                       beast::string_view(name.data(), name.size()))) {
      return std::string_view(value);
    }
  }
  return std::nullopt;
}

namespace {

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
            kAlphabet[v & 63]};
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

// One pooled connection: plain TCP or TLS over TCP, with its read buffer.
struct Connection {
  std::string origin;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  Clock::time_point idle_since;

  beast::tcp_stream& Lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  void Close() {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }
};

// What went wrong in one attempt, and whether another attempt may help.
struct Failure {
  ErrorKind kind;
  Error error;
  bool retryable;
};

}  // namespace

class Call;

class HttpClient::Impl : public std::enable_shared_from_this<HttpClient::Impl> {
 public:
  Impl(net::io_context& io, ClientOptions options, std::unique_ptr<ssl::context> tls)
      : io_(io),
        strand_(net::make_strand(io)),
        options_(std::move(options)),
        tls_(std::move(tls)),
        rng_(std::random_device{}()) {}

  void Send(Request request, Callback done);
  void Shutdown();

  // Strand-only below.
  void Enqueue(const std::shared_ptr<Call>& call);
  void OnCallDone(const std::shared_ptr<Call>& call, bool had_slot);
  std::shared_ptr<Connection> TakeIdle(const std::string& origin);
  void ReturnIdle(std::shared_ptr<Connection> conn);
  double Random() {
    return options_.random ? options_.random()
                           : std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  }
  void UpdateGauges() {
    in_flight_gauge_ = in_flight_;
    queued_gauge_ = queue_.size();
  }

  net::io_context& io_;
  Strand strand_;
  ClientOptions options_;
  std::unique_ptr<ssl::context> tls_;
  std::mt19937_64 rng_;
  size_t in_flight_ = 0;
  std::deque<std::shared_ptr<Call>> queue_;
  std::set<std::shared_ptr<Call>> active_;
  std::map<std::string, std::vector<std::shared_ptr<Connection>>> idle_;
  bool shut_down_ = false;
  std::atomic<size_t> in_flight_gauge_{0};
  std::atomic<size_t> queued_gauge_{0};
};

namespace {

// Maps an I/O error to what it means for the request. `phase` names the step for the message.
Failure Classify(const beast::error_code& ec, std::string_view what, std::string_view phase) {
  auto msg = [&](std::string_view text) { return fmt::format("{}: {} {}", what, phase, text); };
  if (ec == beast::error::timeout) {
    return {ErrorKind::kTimeout, Error::Timeout(msg("timed out")), true};
  }
  if (ec == net::error::connection_refused || ec == net::error::host_unreachable ||
      ec == net::error::network_unreachable || ec == net::error::host_not_found ||
      ec == net::error::host_not_found_try_again) {
    return {ErrorKind::kConnect, Error::Unavailable(msg(ec.message())), true};
  }
  if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == net::error::broken_pipe ||
      ec == net::error::connection_aborted || ec == ssl::error::stream_truncated ||
      ec == bhttp::error::partial_message) {
    return {
        ErrorKind::kReset,
        Error::Unavailable(msg("failed: the peer closed the connection (" + ec.message() + ")")),
        true};
  }
  if (ec == bhttp::error::body_limit) {
    return {ErrorKind::kTooLarge, Error::InvalidInput(msg("failed: answer too large")), false};
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
    return {ErrorKind::kBadResponse,
            Error::InvalidInput(msg("failed: the answer is not valid HTTP (" + ec.message() + ")")),
            false};
  }
  return {ErrorKind::kReset, Error::Unavailable(msg("failed: " + ec.message())), true};
}

bool LostBeforeAnswer(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

}  // namespace

// One request, from queueing to its callback. Lives on the client's strand; every handler
// holds it through shared_from_this().
class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(std::shared_ptr<HttpClient::Impl> client, Request request, Url url,
       HttpClient::Callback done)
      : client_(std::move(client)),
        request_(std::move(request)),
        url_(std::move(url)),
        done_(std::move(done)),
        timer_(client_->strand_),
        resolver_(client_->strand_) {
    retry_ = request_.retry.value_or(request_.method == Method::kGet);
    what_ = fmt::format("{}: {} {}{}", client_->options_.name, MethodName(request_.method),
                        url_.Origin(), request_.redact_path ? "" : std::string(url_.Path()));
  }

  const std::string& what() const { return what_; }
  bool finished() const { return finished_; }

  // Waits for a slot until the deadline.
  void WaitInQueue() {
    ArmTimer(request_.deadline, [](Call& self) {
      self.Finish(Error::Timeout(self.what_ + ": deadline passed while waiting for a free "
                                              "connection slot (concurrency limit)"),
                  ErrorKind::kTimeout);
    });
  }

  void Start() {
    has_slot_ = true;
    ++timer_generation_;  // disarm the queue wait
    timer_.cancel();
    StartAttempt(false);
  }

  void Fail(Error error, ErrorKind kind) { Finish(std::move(error), kind); }

  // Finishes at once; the handlers still pending (I/O, timer) find the call finished and
  // return without touching anything else.
  void Cancel() {
    cancelled_ = true;
    OnCancelled();
  }

 private:
  using Self = std::shared_ptr<Call>;

  template <typename F>
  void ArmTimer(Clock::time_point when, F on_fire) {
    const uint64_t generation = ++timer_generation_;
    timer_.expires_at(when);
    timer_.async_wait([self = shared_from_this(), generation, on_fire](beast::error_code) {
      if (self->finished_ || generation != self->timer_generation_) return;
      on_fire(*self);
    });
  }

  void StartAttempt(bool force_new) {
    if (finished_) return;
    if (cancelled_)
      return Finish(Error::Unavailable(what_ + ": client shut down"), ErrorKind::kCancelled);
    const auto now = Clock::now();
    if (now >= request_.deadline) {
      return Finish(Error::Timeout(what_ + ": deadline passed"), ErrorKind::kTimeout);
    }
    ++attempts_;
    attempt_start_ = now;
    attempt_deadline_ = std::min(request_.deadline, now + client_->options_.attempt_timeout);
    conn_ = force_new ? nullptr : client_->TakeIdle(url_.Origin());
    reused_ = conn_ != nullptr;
    // One watchdog bounds the whole attempt. Beast's stream timeouts alone do not: a peer
    // that keeps sending (an endless body) completes every read before the timer gets a
    // turn, and name resolution has no timeout at all.
    watchdog_fired_ = false;
    ArmTimer(attempt_deadline_, [](Call& self) {
      self.watchdog_fired_ = true;
      self.resolver_.cancel();
      if (self.conn_) self.conn_->Close();
    });
    if (reused_) return Write();
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            beast::bind_front_handler(&Call::OnResolve, shared_from_this()));
  }

  void OnResolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (finished_) return;
    if (cancelled_) return OnCancelled();
    if (watchdog_fired_) {
      return AttemptFailed({ErrorKind::kTimeout,
                            Error::Timeout(what_ + ": resolving the host name timed out"), true});
    }
    if (ec) return AttemptFailed(Classify(ec, what_, "resolving the host name"));
    conn_ = std::make_shared<Connection>();
    conn_->origin = url_.Origin();
    if (url_.tls) {
      conn_->secure.emplace(beast::tcp_stream(client_->strand_), *client_->tls_);
    } else {
      conn_->plain.emplace(client_->strand_);
    }
    conn_->Lowest().expires_at(attempt_deadline_);
    conn_->Lowest().async_connect(results,
                                  beast::bind_front_handler(&Call::OnConnect, shared_from_this()));
  }

  void OnConnect(beast::error_code ec, const tcp::endpoint&) {
    if (ec && watchdog_fired_) ec = beast::error::timeout;
    if (finished_) return;
    if (cancelled_) return OnCancelled();
    if (ec) return AttemptFailed(Classify(ec, what_, "connect"));
    if (!url_.tls) return Write();
    SSL* ssl_handle = conn_->secure->native_handle();
    beast::error_code ip_ec;
    net::ip::make_address(url_.host, ip_ec);
    const bool is_ip = !ip_ec;
    // SNI carries DNS names only (RFC 6066 section 3); the name check covers IP literals too.
    if (!is_ip) SSL_set_tlsext_host_name(ssl_handle, url_.host.c_str());
    if (client_->options_.tls.verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
      if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, url_.host.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, url_.host.c_str(), url_.host.size());
      }
    }
    conn_->Lowest().expires_at(attempt_deadline_);
    conn_->secure->async_handshake(
        ssl::stream_base::client,
        beast::bind_front_handler(&Call::OnHandshake, shared_from_this()));
  }

  void OnHandshake(beast::error_code ec) {
    if (ec && watchdog_fired_) ec = beast::error::timeout;
    if (finished_) return;
    if (cancelled_) return OnCancelled();
    if (ec == beast::error::timeout) return AttemptFailed(Classify(ec, what_, "TLS handshake"));
    if (ec) {
      // The verify result names the reason a person can act on ("hostname mismatch",
      // "unable to get local issuer certificate"); the error code alone says little.
      const long verify = SSL_get_verify_result(conn_->secure->native_handle());
      std::string reason =
          verify != X509_V_OK ? X509_verify_cert_error_string(verify) : ec.message();
      return AttemptFailed(
          {ErrorKind::kTls,
           Error::Unavailable(fmt::format("{}: TLS handshake failed: {}", what_, reason)), false});
    }
    Write();
  }

  void Write() {
    if (!req_) BuildRequest();
    conn_->Lowest().expires_at(attempt_deadline_);
    auto handler = beast::bind_front_handler(&Call::OnWrite, shared_from_this());
    if (conn_->secure) {
      bhttp::async_write(*conn_->secure, *req_, std::move(handler));
    } else {
      bhttp::async_write(*conn_->plain, *req_, std::move(handler));
    }
  }

  void BuildRequest() {
    const auto& opt = client_->options_;
    auto verb = request_.method == Method::kGet    ? bhttp::verb::get
                : request_.method == Method::kPost ? bhttp::verb::post
                                                   : bhttp::verb::put;
    req_ = std::make_unique<bhttp::request<bhttp::string_body>>(verb, url_.target, 11);
    req_->set(bhttp::field::host, url_.HostHeader());
    req_->set(bhttp::field::user_agent, opt.user_agent);
    if (opt.auth.kind == Auth::Kind::kBearer) {
      req_->set(bhttp::field::authorization, "Bearer " + opt.auth.token.Reveal());
    } else if (opt.auth.kind == Auth::Kind::kBasic) {
      req_->set(bhttp::field::authorization,
                "Basic " + Base64(opt.auth.user + ":" + opt.auth.password.Reveal()));
    }
    for (const auto& [name, value] : opt.auth.headers) req_->set(name, value.Reveal());
    for (const auto& [name, value] : request_.headers) req_->set(name, value);
    if (request_.method != Method::kGet || !request_.body.empty()) {
      req_->body() = request_.body;
      req_->prepare_payload();
    }
    req_->keep_alive(true);
  }

  void OnWrite(beast::error_code ec, size_t) {
    if (ec && watchdog_fired_) ec = beast::error::timeout;
    if (finished_) return;
    if (cancelled_) return OnCancelled();
    if (ec) return ReadOrWriteFailed(ec, "sending the request", false);
    parser_ = std::make_unique<bhttp::response_parser<bhttp::string_body>>();
    parser_->body_limit(client_->options_.max_response_bytes);
    parser_->header_limit(client_->options_.max_header_bytes);
    conn_->Lowest().expires_at(attempt_deadline_);
    auto handler = beast::bind_front_handler(&Call::OnHeader, shared_from_this());
    if (conn_->secure) {
      bhttp::async_read_header(*conn_->secure, conn_->buffer, *parser_, std::move(handler));
    } else {
      bhttp::async_read_header(*conn_->plain, conn_->buffer, *parser_, std::move(handler));
    }
  }

  // The header first, so that a declared Content-Length over the cap is refused before any
  // byte of the body is read (the parser's body_limit then guards chunked and
  // read-until-close bodies as they arrive).
  void OnHeader(beast::error_code ec, size_t) {
    if (ec && watchdog_fired_) ec = beast::error::timeout;
    if (finished_) return;
    if (cancelled_) return OnCancelled();
    if (ec) return ReadOrWriteFailed(ec, "reading the answer", parser_->got_some());
    const auto length = parser_->content_length();
    if (length && *length > client_->options_.max_response_bytes) {
      return ReadOrWriteFailed(bhttp::error::body_limit, "reading the answer", true);
    }
    if (parser_->is_done()) return OnRead({}, 0);
    conn_->Lowest().expires_at(attempt_deadline_);
    auto handler = beast::bind_front_handler(&Call::OnRead, shared_from_this());
    if (conn_->secure) {
      bhttp::async_read(*conn_->secure, conn_->buffer, *parser_, std::move(handler));
    } else {
      bhttp::async_read(*conn_->plain, conn_->buffer, *parser_, std::move(handler));
    }
  }

  void ReadOrWriteFailed(beast::error_code ec, std::string_view phase, bool got_some) {
    // A pooled connection the peer closed while it sat idle fails on first use, before any
    // byte of the answer; the request almost always never reached the application, so one
    // fresh attempt is made even for a POST (see the header for the rare case where it did).
    if (reused_ && !got_some && LostBeforeAnswer(ec) && !stale_retry_used_) {
      stale_retry_used_ = true;
      conn_->Close();
      conn_.reset();
      --attempts_;
      return StartAttempt(true);
    }
    if (ec == bhttp::error::body_limit) {
      return AttemptFailed(
          {ErrorKind::kTooLarge,
           Error::InvalidInput(fmt::format("{}: answer larger than {} bytes, cut off", what_,
                                           client_->options_.max_response_bytes)),
           false});
    }
    if (ec == bhttp::error::header_limit) {
      return AttemptFailed(
          {ErrorKind::kBadResponse,
           Error::InvalidInput(fmt::format("{}: answer headers larger than {} bytes", what_,
                                           client_->options_.max_header_bytes)),
           false});
    }
    Failure failure = Classify(ec, what_, phase);
    if (failure.kind == ErrorKind::kTimeout && attempt_deadline_ >= request_.deadline) {
      failure.error = Error::Timeout(what_ + ": deadline passed waiting for the answer");
    }
    AttemptFailed(std::move(failure));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec && watchdog_fired_) ec = beast::error::timeout;
    if (finished_) return;
    if (cancelled_) return OnCancelled();
    if (ec) return ReadOrWriteFailed(ec, "reading the answer", parser_->got_some());
    auto message = parser_->release();
    Response response;
    response.status = static_cast<int>(message.result_int());
    response.attempts = attempts_;
    for (const auto& field : message) {
      const auto name = field.name_string();
      const auto value = field.value();
      response.headers.emplace_back(std::string(name.data(), name.size()),
                                    std::string(value.data(), value.size()));
    }
    response.body = std::move(message.body());
    Observe(response.status);
    // Leftover bytes after a complete answer mean the peer does not speak plain HTTP/1.1
    // keep-alive; such a connection is not reused.
    if (message.keep_alive() && conn_->buffer.size() == 0) {
      client_->ReturnIdle(std::move(conn_));
    } else {
      conn_->Close();
    }
    conn_.reset();
    const int status = response.status;
    if (status == 404) {
      Count(ErrorKind::kNotFound);
    } else if (status >= 500) {
      Count(ErrorKind::kHttp5xx);
    } else if (status >= 400) {
      Count(ErrorKind::kHttp4xx);
    }
    if (retry_ && IsRetryableStatus(status) && attempts_ < client_->options_.retry.max_attempts) {
      std::optional<std::chrono::milliseconds> retry_after;
      if (auto value = response.Header("Retry-After")) {
        retry_after = ParseRetryAfter(*value, std::chrono::system_clock::now());
      }
      last_ = std::move(response);
      return ScheduleRetry(retry_after, fmt::format("HTTP {}", status));
    }
    Finish(std::move(response), std::nullopt);
  }

  void AttemptFailed(Failure failure) {
    Observe(0);
    Count(failure.kind);
    if (conn_) {
      conn_->Close();
      conn_.reset();
    }
    if (failure.retryable && retry_ && attempts_ < client_->options_.retry.max_attempts) {
      const std::string reason = failure.error.message;
      last_ = std::move(failure.error);
      last_kind_ = failure.kind;
      return ScheduleRetry(std::nullopt, reason);
    }
    std::string message = std::move(failure.error.message);
    if (attempts_ > 1) message += fmt::format(" (after {} attempts)", attempts_);
    Finish(Error{failure.error.code, std::move(message)}, failure.kind);
  }

  void ScheduleRetry(std::optional<std::chrono::milliseconds> retry_after,
                     const std::string& reason) {
    auto delay = BackoffDelay(client_->options_.retry, attempts_, client_->Random());
    if (retry_after && *retry_after > delay) delay = *retry_after;
    if (Clock::now() + delay >= request_.deadline) return FinishWithLast();
    spdlog::warn("http_retry client={} attempt={} delay_ms={} reason=\"{}\"",
                 client_->options_.name, attempts_ + 1, delay.count(), reason);
    ArmTimer(Clock::now() + delay, [](Call& self) { self.StartAttempt(false); });
  }

  // Retries ran out (count or time): the last answer stands, or the last error.
  void FinishWithLast() {
    if (auto* response = std::get_if<Response>(&last_)) {
      return Finish(std::move(*response), std::nullopt);
    }
    Error error = std::move(std::get<Error>(last_));
    if (attempts_ > 1) error.message += fmt::format(" (after {} attempts)", attempts_);
    Finish(std::move(error), last_kind_);
  }

  void OnCancelled() {
    Finish(Error::Unavailable(what_ + ": client shut down"), ErrorKind::kCancelled);
  }

  void Observe(int status) {
    if (auto* metrics = client_->options_.metrics) {
      metrics->ObserveRequest(client_->options_.name, Clock::now() - attempt_start_, status);
    }
  }
  void Count(ErrorKind kind) {
    if (auto* metrics = client_->options_.metrics) {
      metrics->CountError(client_->options_.name, kind);
    }
  }

  void Finish(Result<Response> result, std::optional<ErrorKind> kind) {
    if (finished_) return;
    finished_ = true;
    ++timer_generation_;
    timer_.cancel();
    resolver_.cancel();
    // Closed but kept: an operation may still be pending on it (a cancellation finishes the
    // call from outside its handlers), and that operation uses the stream and its buffer until
    // its handler has run. The handler holds this call, and this call holds the connection.
    if (conn_) conn_->Close();
    // Failures before any attempt (queue full, deadline in the queue, shutdown) have no
    // attempt to count them, so they are counted here.
    if (kind && attempts_ == 0) Count(*kind);
    auto self = shared_from_this();
    client_->OnCallDone(self, has_slot_);
    auto done = std::move(done_);
    try {
      done(std::move(result));
    } catch (const std::exception& e) {
      spdlog::error("http_callback_threw client={} error=\"{}\"", client_->options_.name, e.what());
    }
  }

  std::shared_ptr<HttpClient::Impl> client_;
  Request request_;
  Url url_;
  HttpClient::Callback done_;
  std::string what_;
  bool retry_ = false;
  net::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  tcp::resolver resolver_;
  bool watchdog_fired_ = false;
  std::shared_ptr<Connection> conn_;
  bool reused_ = false;
  bool stale_retry_used_ = false;
  std::unique_ptr<bhttp::request<bhttp::string_body>> req_;
  std::unique_ptr<bhttp::response_parser<bhttp::string_body>> parser_;
  int attempts_ = 0;
  Clock::time_point attempt_start_;
  Clock::time_point attempt_deadline_;
  std::variant<Response, Error> last_;
  ErrorKind last_kind_ = ErrorKind::kReset;
  bool has_slot_ = false;
  bool finished_ = false;
  bool cancelled_ = false;
};

void HttpClient::Impl::Send(Request request, Callback done) {
  auto url = ParseUrl(request.url);
  auto self = shared_from_this();
  if (!url.ok()) {
    // Posted, so `done` never runs inside Send (callers may hold a lock around Send).
    Error error{url.error().code, fmt::format("{}: {}", options_.name, url.error().message)};
    net::post(strand_, [done = std::move(done), error = std::move(error)]() { done(error); });
    return;
  }
  auto call =
      std::make_shared<Call>(self, std::move(request), std::move(url).value(), std::move(done));
  net::post(strand_, [self, call] { self->Enqueue(call); });
}

void HttpClient::Impl::Enqueue(const std::shared_ptr<Call>& call) {
  if (shut_down_) {
    return call->Fail(Error::Unavailable(call->what() + ": client shut down"),
                      ErrorKind::kCancelled);
  }
  active_.insert(call);
  if (in_flight_ < options_.max_concurrency) {
    ++in_flight_;
    UpdateGauges();
    return call->Start();
  }
  if (queue_.size() >= options_.max_queue) {
    return call->Fail(Error::Unavailable(fmt::format(
                          "{}: {} requests already waiting for this backend (queue full)",
                          call->what(), queue_.size())),
                      ErrorKind::kQueueFull);
  }
  queue_.push_back(call);
  UpdateGauges();
  call->WaitInQueue();
}

void HttpClient::Impl::OnCallDone(const std::shared_ptr<Call>& call, bool had_slot) {
  active_.erase(call);
  if (had_slot) {
    --in_flight_;
  } else {
    // Timed out or cancelled while queued.
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (*it == call) {
        queue_.erase(it);
        break;
      }
    }
  }
  while (!shut_down_ && in_flight_ < options_.max_concurrency && !queue_.empty()) {
    auto next = std::move(queue_.front());
    queue_.pop_front();
    if (next->finished()) continue;
    ++in_flight_;
    next->Start();
  }
  UpdateGauges();
}

std::shared_ptr<Connection> HttpClient::Impl::TakeIdle(const std::string& origin) {
  auto it = idle_.find(origin);
  if (it == idle_.end()) return nullptr;
  const auto now = Clock::now();
  while (!it->second.empty()) {
    auto conn = std::move(it->second.back());
    it->second.pop_back();
    if (now - conn->idle_since < options_.idle_timeout) return conn;
    conn->Close();
  }
  return nullptr;
}

void HttpClient::Impl::ReturnIdle(std::shared_ptr<Connection> conn) {
  auto& pool = idle_[conn->origin];
  if (shut_down_ || pool.size() >= options_.max_concurrency) {
    conn->Close();
    return;
  }
  conn->idle_since = Clock::now();
  pool.push_back(std::move(conn));
}

void HttpClient::Impl::Shutdown() {
  shut_down_ = true;
  auto queued = std::move(queue_);
  queue_.clear();
  for (auto& call : queued) {
    call->Fail(Error::Unavailable(call->what() + ": client shut down"), ErrorKind::kCancelled);
  }
  auto active = active_;
  for (const auto& call : active) call->Cancel();
  for (auto& [origin, pool] : idle_) {
    for (auto& conn : pool) conn->Close();
  }
  idle_.clear();
  UpdateGauges();
}

Result<std::unique_ptr<HttpClient>> HttpClient::Create(net::io_context& io, ClientOptions options) {
  if (options.max_concurrency == 0) {
    return Error::InvalidInput(options.name + ": max_concurrency must be at least 1");
  }
  if (options.retry.max_attempts < 1) {
    return Error::InvalidInput(options.name + ": retry max_attempts must be at least 1");
  }
  auto tls = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  if (options.tls.verify) {
    tls->set_verify_mode(ssl::verify_peer, ec);
    if (!options.tls.ca_file.empty()) {
      tls->load_verify_file(options.tls.ca_file, ec);
      if (ec) {
        return Error::InvalidInput(fmt::format("{}: cannot load ca_file {}: {}", options.name,
                                               options.tls.ca_file, ec.message()));
      }
    } else {
      tls->set_default_verify_paths(ec);
      if (ec) {
        return Error::InvalidInput(
            fmt::format("{}: cannot load the system CA store: {}", options.name, ec.message()));
      }
    }
  } else {
    tls->set_verify_mode(ssl::verify_none, ec);
  }
  auto impl = std::make_shared<Impl>(io, std::move(options), std::move(tls));
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

HttpClient::HttpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpClient::~HttpClient() {
  net::post(impl_->strand_, [impl = impl_] { impl->Shutdown(); });
}

void HttpClient::Send(Request request, Callback done) {
  impl_->Send(std::move(request), std::move(done));
}

const ClientOptions& HttpClient::options() const { return impl_->options_; }
size_t HttpClient::InFlight() const { return impl_->in_flight_gauge_; }
size_t HttpClient::Queued() const { return impl_->queued_gauge_; }

}  // namespace tracepager::integrations::http
