// FakeBackend: an in-process HTTP(S) server on 127.0.0.1, port 0, for the integrations tests.
// Each request is answered by a handler the test supplies; the reply can also misbehave
// (stay silent, close, reset, send an endless body). The server counts connections, requests
// and the largest number of requests it held at once.
//
// Header-only on purpose: tests/support/*.cc is linked into every test binary, including the
// routing tests that do not link Asio, so Beast code cannot live there.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/process.h"

namespace tracepager::testing {

namespace fake_net = boost::asio;
namespace fake_beast = boost::beast;
namespace fake_http = boost::beast::http;

struct ReceivedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct FakeReply {
  enum class Action {
    kAnswer,          // status, headers, body (after `delay`)
    kSilence,         // read the request, never answer, keep the connection open
    kClose,           // close the connection without answering
    kReset,           // reset the connection (RST) without answering
    kHugeBody,        // declare Content-Length: declared_length, then stream bytes endlessly
    kEndlessChunked,  // chunked encoding, streaming chunks endlessly
    kGarbage          // answer bytes that are not HTTP, then close
  };
  Action action = Action::kAnswer;
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds delay{0};
  bool keep_alive = true;
  // Answer with keep-alive, then close the connection anyway (a peer that drops idle
  // connections): the client's next request on it finds it dead.
  bool close_after = false;
  uint64_t declared_length = 2ull << 30;  // kHugeBody: 2 GiB

  static FakeReply Json(std::string body, int status = 200) {
    FakeReply r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  static FakeReply Of(Action action) {
    FakeReply r;
    r.action = action;
    return r;
  }
};

struct TlsFiles {
  std::string cert_file;
  std::string key_file;
};

class FakeBackend {
 public:
  using Handler = std::function<FakeReply(const ReceivedRequest&)>;

  explicit FakeBackend(Handler handler, std::optional<TlsFiles> tls = std::nullopt)
      : handler_(std::move(handler)), acceptor_(io_) {
    if (tls) {
      tls_.emplace(fake_net::ssl::context::tls_server);
      tls_->use_certificate_chain_file(tls->cert_file);
      tls_->use_private_key_file(tls->key_file, fake_net::ssl::context::pem);
    }
    fake_net::ip::tcp::endpoint ep(fake_net::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(fake_net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~FakeBackend() {
    fake_net::post(io_, [this] {
      fake_beast::error_code ec;
      acceptor_.close(ec);
      for (auto& close : closers_) close();
      closers_.clear();
      held_.clear();
    });
    thread_.join();
  }

  FakeBackend(const FakeBackend&) = delete;
  FakeBackend& operator=(const FakeBackend&) = delete;

  uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT" (or https://HOST:PORT with `host` for TLS name checks).
  std::string Url(const std::string& host = "127.0.0.1") const {
    return std::string(tls_ ? "https://" : "http://") + host + ":" + std::to_string(port_);
  }

  size_t connections() const { return connections_; }
  size_t requests() const { return requests_; }
  size_t max_concurrent() const { return max_concurrent_; }
  std::vector<ReceivedRequest> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  // Blocks until the server has received `n` requests or `timeout` passed (a safety cap, not
  // a synchronisation delay: it returns as soon as the count is reached).
  bool WaitForRequests(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return received_.size() >= n; });
  }

 private:
  template <typename Stream>
  class Session : public std::enable_shared_from_this<Session<Stream>> {
   public:
    Session(FakeBackend* server, Stream stream)
        : server_(server), stream_(std::move(stream)), timer_(server->io_) {}

    void Run() {
      auto self = this->shared_from_this();
      server_->closers_.push_back([weak = std::weak_ptr<Session>(self)] {
        if (auto s = weak.lock()) s->Close();
      });
      if constexpr (kTls) {
        stream_.async_handshake(fake_net::ssl::stream_base::server,
                                [self](fake_beast::error_code ec) {
                                  if (!ec) self->Read();
                                });
      } else {
        Read();
      }
    }

    void Close() {
      fake_beast::error_code ec;
      timer_.cancel();
      fake_beast::get_lowest_layer(stream_).socket().close(ec);
    }

   private:
    static constexpr bool kTls = !std::is_same_v<Stream, fake_beast::tcp_stream>;

    void Read() {
      request_ = {};
      fake_http::async_read(stream_, buffer_, request_,
                            [self = this->shared_from_this()](fake_beast::error_code ec, size_t) {
                              if (!ec) self->OnRequest();
                            });
    }

    void OnRequest() {
      ReceivedRequest r;
      r.method = std::string(request_.method_string());
      r.target = std::string(request_.target());
      for (const auto& f : request_) {
        std::string name(f.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = std::string(f.value());
      }
      r.body = request_.body();
      const size_t now = ++server_->holding_;
      size_t prev = server_->max_concurrent_;
      while (now > prev && !server_->max_concurrent_.compare_exchange_weak(prev, now)) {
      }
      ++server_->requests_;
      reply_ = server_->handler_(r);
      {
        std::lock_guard lock(server_->mu_);
        server_->received_.push_back(std::move(r));
      }
      server_->cv_.notify_all();
      holding_ = true;
      using A = FakeReply::Action;
      switch (reply_.action) {
        case A::kSilence:
          server_->held_.push_back(this->shared_from_this());  // until the server stops
          return;
        case A::kGarbage:
          head_ = "NOT HTTP AT ALL\r\n\r\n";
          return fake_net::async_write(
              stream_, fake_net::buffer(head_),
              [self = this->shared_from_this()](fake_beast::error_code, size_t) {
                self->Release();
                self->Close();
              });
        case A::kClose:
          Release();
          return Close();
        case A::kReset: {
          Release();
          auto& sock = fake_beast::get_lowest_layer(stream_).socket();
          fake_beast::error_code ec;
          sock.set_option(fake_net::socket_base::linger(true, 0), ec);
          return Close();
        }
        case A::kHugeBody:
        case A::kEndlessChunked:
          return StartStream();
        case A::kAnswer:
          break;
      }
      if (reply_.delay.count() > 0) {
        timer_.expires_after(reply_.delay);
        timer_.async_wait([self = this->shared_from_this()](fake_beast::error_code ec) {
          if (!ec) self->Answer();
        });
      } else {
        Answer();
      }
    }

    void Release() {
      if (holding_) {
        holding_ = false;
        --server_->holding_;
      }
    }

    void Answer() {
      response_ = {};
      response_.result(static_cast<unsigned>(reply_.status));
      response_.version(11);
      response_.set(fake_http::field::content_type, reply_.content_type);
      for (const auto& [k, v] : reply_.headers) response_.set(k, v);
      response_.body() = reply_.body;
      response_.keep_alive(reply_.keep_alive);
      response_.prepare_payload();
      // Released before the write completes: the client may see the answer and send its
      // next request before this handler runs.
      Release();
      fake_http::async_write(stream_, response_,
                             [self = this->shared_from_this()](fake_beast::error_code ec, size_t) {
                               if (ec) return;
                               if (self->reply_.keep_alive && !self->reply_.close_after) {
                                 self->Read();
                               } else {
                                 self->Close();
                               }
                             });
    }

    void StartStream() {
      const bool chunked = reply_.action == FakeReply::Action::kEndlessChunked;
      head_ = "HTTP/1.1 200 OK\r\nContent-Type: " + reply_.content_type + "\r\n";
      head_ += chunked ? "Transfer-Encoding: chunked\r\n"
                       : "Content-Length: " + std::to_string(reply_.declared_length) + "\r\n";
      head_ += "\r\n";
      chunk_.assign(64 * 1024, ' ');
      if (chunked) chunk_ = "10000\r\n" + chunk_ + "\r\n";
      fake_net::async_write(stream_, fake_net::buffer(head_),
                            [self = this->shared_from_this()](fake_beast::error_code ec, size_t) {
                              if (!ec) self->StreamMore(0);
                            });
    }

    // Bounded: at most 16384 chunks (1 GiB), far past any cap the tests set; the client
    // closing the connection ends it much sooner.
    void StreamMore(size_t sent) {
      if (sent >= 16384) return Close();
      fake_net::async_write(
          stream_, fake_net::buffer(chunk_),
          [self = this->shared_from_this(), sent](fake_beast::error_code ec, size_t) {
            if (ec) {
              self->Release();
              return self->Close();
            }
            self->StreamMore(sent + 1);
          });
    }

    FakeBackend* server_;
    Stream stream_;
    fake_net::steady_timer timer_;
    fake_beast::flat_buffer buffer_;
    fake_http::request<fake_http::string_body> request_;
    fake_http::response<fake_http::string_body> response_;
    FakeReply reply_;
    bool holding_ = false;
    std::string head_;
    std::string chunk_;
  };

  void Accept() {
    acceptor_.async_accept([this](fake_beast::error_code ec, fake_net::ip::tcp::socket socket) {
      if (ec) return;
      ++connections_;
      fake_beast::tcp_stream tcp(std::move(socket));
      if (tls_) {
        using S = fake_beast::ssl_stream<fake_beast::tcp_stream>;
        std::make_shared<Session<S>>(this, S(std::move(tcp), *tls_))->Run();
      } else {
        std::make_shared<Session<fake_beast::tcp_stream>>(this, std::move(tcp))->Run();
      }
      Accept();
    });
  }

  Handler handler_;
  fake_net::io_context io_;
  std::optional<fake_net::ssl::context> tls_;
  fake_net::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::function<void()>> closers_;  // io thread only
  std::vector<std::shared_ptr<void>> held_;     // silent sessions; io thread only
  std::atomic<size_t> connections_{0};
  std::atomic<size_t> requests_{0};
  std::atomic<size_t> holding_{0};
  std::atomic<size_t> max_concurrent_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ReceivedRequest> received_;
};

// A test PKI made with the openssl command line in `dir`: a CA, a server certificate for
// DNS:localhost signed by it, and one for DNS:wrong.example. Throws when openssl fails.
struct TestPki {
  std::string ca_cert;
  TlsFiles localhost;
  TlsFiles wrong_name;
};

inline TestPki MakeTestPki(const std::string& dir) {
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    auto r = RunProcess(args, "", {}, std::chrono::seconds(60));
    if (r.exit_code != 0) throw std::runtime_error("openssl failed: " + r.err);
  };
  const std::string ec_key = "ec:" + dir + "/ecparam.pem";
  run({"ecparam", "-name", "prime256v1", "-out", dir + "/ecparam.pem"});
  run({"req", "-x509", "-newkey", ec_key, "-nodes", "-keyout", dir + "/ca.key", "-out",
       dir + "/ca.crt", "-subj", "/CN=tracepager test CA", "-days", "2", "-addext",
       "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  auto leaf = [&](const std::string& name, const std::string& san) {
    run({"req", "-newkey", ec_key, "-nodes", "-keyout", dir + "/" + name + ".key", "-out",
         dir + "/" + name + ".csr", "-subj", "/CN=" + name});
    const std::string ext = dir + "/" + name + ".ext";
    FILE* f = std::fopen(ext.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + ext);
    std::fprintf(f, "subjectAltName=%s\nextendedKeyUsage=serverAuth\n", san.c_str());
    std::fclose(f);
    run({"x509", "-req", "-in", dir + "/" + name + ".csr", "-CA", dir + "/ca.crt", "-CAkey",
         dir + "/ca.key", "-CAcreateserial", "-out", dir + "/" + name + ".crt", "-days", "2",
         "-extfile", ext});
    return TlsFiles{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  };
  TestPki pki;
  pki.ca_cert = dir + "/ca.crt";
  pki.localhost = leaf("localhost", "DNS:localhost");
  pki.wrong_name = leaf("wrong", "DNS:wrong.example");
  return pki;
}

}  // namespace tracepager::testing
