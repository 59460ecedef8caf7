// A small HTTP/1.1 client for the daemon tests: raw bytes in, parsed responses out, over plain
// TCP or TLS on loopback. Every operation runs on the client's own io_context until it
// completes; the stream deadline (kCap) is only a safety cap so a broken server fails the test
// instead of hanging it.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace tracepager::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

using Response = http::response<http::string_body>;

inline constexpr std::chrono::seconds kCap{20};

// Stream is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class BasicTestClient {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  // Plain: connects to host:port. Check connected() / connect_error().
  BasicTestClient(const std::string& host, uint16_t port) requires(!kTls) : stream_(ioc_) {
    Connect(host, port);
  }
  // TLS: connects and handshakes, verifying the server against `ctx`, with SNI/host `host`.
  BasicTestClient(const std::string& host, uint16_t port, asio::ssl::context& ctx) requires(kTls)
      : stream_(ioc_, ctx) {
    Connect(host, port);
    if (connect_error_) return;
    stream_.set_verify_callback(asio::ssl::host_name_verification(host));
    beast::get_lowest_layer(stream_).expires_after(kCap);
    stream_.async_handshake(asio::ssl::stream_base::client,
                            [this](beast::error_code ec) { connect_error_ = ec; });
    Run();
  }

  bool connected() const { return !connect_error_; }
  beast::error_code connect_error() const { return connect_error_; }
  uint16_t local_port() {
    beast::error_code ec;
    return beast::get_lowest_layer(stream_).socket().local_endpoint(ec).port();
  }

  // Writes `bytes`; returns the error (none on success).
  beast::error_code Write(std::string_view bytes) {
    beast::error_code result;
    beast::get_lowest_layer(stream_).expires_after(kCap);
    asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()),
                      [&](beast::error_code ec, std::size_t) { result = ec; });
    Run();
    return result;
  }

  // Reads one response; nullopt if the connection closed (or failed) first.
  std::optional<Response> Read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    beast::error_code result;
    beast::get_lowest_layer(stream_).expires_after(kCap);
    http::async_read(stream_, buffer_, parser,
                     [&](beast::error_code ec, std::size_t) { result = ec; });
    Run();
    last_read_error_ = result;
    if (result) return std::nullopt;
    return parser.release();
  }

  // Reads until the server closes; true if it did (EOF, reset or TLS truncation), false if data
  // arrived instead or the cap passed. Bytes read are appended to *data if given.
  bool ReadUntilClosed(std::string* data = nullptr) {
    for (int i = 0; i < 1 << 16; ++i) {
      char chunk[4096];
      beast::error_code result;
      std::size_t n = 0;
      beast::get_lowest_layer(stream_).expires_after(kCap);
      if (buffer_.size() > 0) {
        if (data) data->append(beast::buffers_to_string(buffer_.data()));
        buffer_.consume(buffer_.size());
      }
      stream_.async_read_some(asio::buffer(chunk), [&](beast::error_code ec, std::size_t len) {
        result = ec;
        n = len;
      });
      Run();
      if (data) data->append(chunk, n);
      if (result == beast::error::timeout) return false;
      if (result) return true;
    }
    return false;
  }

  // Sends `request` (Content-Length filled in) and reads the response.
  std::optional<Response> Send(http::request<http::string_body> request) {
    request.prepare_payload();
    beast::error_code result;
    beast::get_lowest_layer(stream_).expires_after(kCap);
    http::async_write(stream_, request, [&](beast::error_code ec, std::size_t) { result = ec; });
    Run();
    if (result) return std::nullopt;
    return Read();
  }

  // Writes `prefix`, then one byte of `trickle` every `interval`, reading concurrently, until the
  // server answers or closes. Returns what was read (possibly nothing) and how many trickled
  // bytes went out before that.
  struct TrickleResult {
    std::optional<Response> response;
    std::size_t bytes_trickled = 0;
    std::chrono::steady_clock::duration elapsed{};
  };
  TrickleResult Trickle(std::string_view prefix, std::string trickle,
                        std::chrono::milliseconds interval) {
    TrickleResult out;
    if (Write(prefix)) return out;
    const auto start = std::chrono::steady_clock::now();
    http::response_parser<http::string_body> parser;
    bool done = false;
    beast::error_code read_error;
    beast::get_lowest_layer(stream_).expires_after(kCap);
    http::async_read(stream_, buffer_, parser, [&](beast::error_code ec, std::size_t) {
      read_error = ec;
      done = true;
    });
    asio::steady_timer timer(ioc_);
    std::size_t next = 0;
    std::function<void()> tick = [&] {
      timer.expires_after(interval);
      timer.async_wait([&](beast::error_code ec) {
        if (ec || done || next >= trickle.size()) return;
        beast::error_code wec;
        beast::get_lowest_layer(stream_).socket().write_some(asio::buffer(&trickle[next], 1), wec);
        if (wec) return;
        ++next;
        tick();
      });
    };
    tick();
    ioc_.restart();
    while (!done && ioc_.run_one() > 0) {
    }
    timer.cancel();
    ioc_.restart();
    ioc_.poll();
    out.elapsed = std::chrono::steady_clock::now() - start;
    out.bytes_trickled = next;
    if (!read_error) out.response = parser.release();
    return out;
  }

  void Close() {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).close();
  }

  beast::error_code last_read_error() const { return last_read_error_; }
  Stream& stream() { return stream_; }

 private:
  void Connect(const std::string& host, uint16_t port) {
    tcp::endpoint ep(asio::ip::make_address(host), port);
    beast::get_lowest_layer(stream_).expires_after(kCap);
    beast::get_lowest_layer(stream_).async_connect(
        ep, [this](beast::error_code ec) { connect_error_ = ec; });
    Run();
  }
  void Run() {
    ioc_.restart();
    ioc_.run();
  }

  asio::io_context ioc_;
  Stream stream_;
  beast::flat_buffer buffer_;
  beast::error_code connect_error_;
  beast::error_code last_read_error_;
};

using TestClient = BasicTestClient<beast::tcp_stream>;
using TlsTestClient = BasicTestClient<beast::ssl_stream<beast::tcp_stream>>;

inline http::request<http::string_body> MakeRequest(http::verb method, std::string target,
                                                    std::string body = {},
                                                    std::string bearer = {}) {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
  req.body() = std::move(body);
  return req;
}

}  // namespace tracepager::testing
