// HttpServer over real loopback sockets: a server started in-process on port 0, driven by the
// raw-bytes client in http_test_client.h.
#include "daemon/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/http_auth.h"
#include "integrations/crypto.h"
#include "tests/daemon/http_test_client.h"

namespace tracepager::daemon {
namespace {

using tracepager::testing::MakeRequest;
using tracepager::testing::TestClient;
namespace http = boost::beast::http;

constexpr char kToken[] = "tok-0123456789abcdef";
constexpr char kOtherToken[] = "second-token";
constexpr char kSecret[] = "hmac-secret";
constexpr std::size_t kBigBody = 64u << 20;

std::string ReadFixture(const std::string& relative) {
  std::ifstream in(std::string(TRACEPAGER_FIXTURES_DIR) + "/" + relative, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Responders handed over by the /async route, for the test thread to answer.
class ResponderQueue {
 public:
  void Push(const HttpRequest& request, HttpResponder responder) {
    std::lock_guard lock(mu_);
    items_.push_back({&request, std::move(responder)});
    cv_.notify_all();
  }
  std::pair<const HttpRequest*, HttpResponder> Pop() {
    std::unique_lock lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(20), [&] { return !items_.empty(); }));
    auto item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<const HttpRequest*, HttpResponder>> items_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerOptions Options() {
    HttpServerOptions o;
    o.listeners = {{"127.0.0.1", 0, false}};
    o.bearer_tokens = {kToken, kOtherToken};
    o.io_threads = 2;
    o.on_reject = [this](HttpRejectReason r) {
      std::lock_guard lock(mu_);
      ++rejects_[r];
    };
    return o;
  }

  void AddRoutes(HttpServer& server) {
    HttpRouteOptions open;
    open.require_auth = false;
    server.Handle("GET", "/open", open, [](const HttpRequest&, HttpResponder r) {
      HttpResponse res;
      res.body = R"({"ok":true})";
      r.Send(res);
    });
    // Echoes the body and says which client port the request came from.
    server.Handle("POST", "/echo", open, [](const HttpRequest& req, HttpResponder r) {
      HttpResponse res;
      res.body = req.body;
      res.headers.emplace_back("X-Remote-Port", std::to_string(req.remote_port));
      res.headers.emplace_back("X-User-Agent", std::string(req.Header("user-agent")));
      res.headers.emplace_back("X-Query", req.query);
      r.Send(res);
    });
    server.Handle("POST", "/secure", HttpRouteOptions{}, [](const HttpRequest&, HttpResponder r) {
      HttpResponse res;
      res.status = 202;
      res.body = R"({"accepted":1})";
      r.Send(res);
    });
    HttpRouteOptions signed_route;
    signed_route.require_auth = false;
    signed_route.hmac = HttpHmacOptions{};
    signed_route.hmac->secret = kSecret;
    signed_route.hmac->header = "X-Signature";
    server.Handle("POST", "/signed", signed_route, [](const HttpRequest&, HttpResponder r) {
      r.Send(HttpResponse{200, "application/json", R"({"signed":true})", {}});
    });
    HttpRouteOptions stamped = signed_route;
    stamped.hmac->timestamp_header = "X-Timestamp";
    stamped.hmac->allow_sha256_prefix = false;
    server.Handle("POST", "/stamped", stamped, [](const HttpRequest&, HttpResponder r) {
      r.Send(HttpResponse{200, "application/json", "{}", {}});
    });
    server.Handle("POST", "/async", open, [this](const HttpRequest& req, HttpResponder r) {
      queue_.Push(req, std::move(r));
    });
    server.Handle("POST", "/drop", open, [](const HttpRequest&, HttpResponder) {});
    // More than loopback's socket buffers hold: a client that does not read stalls the write.
    server.Handle("GET", "/big", open, [](const HttpRequest&, HttpResponder r) {
      r.Send(HttpResponse{200, "text/plain", std::string(kBigBody, 'x'), {}});
    });
    server.Handle("POST", "/throw", open,
                  [](const HttpRequest&, HttpResponder) { throw std::runtime_error("boom"); });
    server.Handle("POST", "/twice", open, [this](const HttpRequest&, HttpResponder r) {
      first_send_ = r.Send(HttpResponse{200, "application/json", R"({"n":1})", {}});
      second_send_ = r.Send(HttpResponse{500, "application/json", R"({"n":2})", {}});
    });
  }

  void Start(HttpServerOptions o) {
    server_ = std::make_unique<HttpServer>(std::move(o));
    AddRoutes(*server_);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_EQ(server_->BoundListeners().size(), 1u);
    port_ = server_->BoundListeners()[0].port;
    ASSERT_NE(port_, 0);
  }

  int Rejects(HttpRejectReason r) {
    std::lock_guard lock(mu_);
    return rejects_[r];
  }
  int TotalRejects() {
    std::lock_guard lock(mu_);
    int n = 0;
    for (auto& [k, v] : rejects_) n += v;
    return n;
  }

  // The JSON error body every rejection carries.
  static void ExpectJsonError(const testing::Response& res, int status, const std::string& error) {
    EXPECT_EQ(res.result_int(), static_cast<unsigned>(status));
    EXPECT_EQ(res[http::field::content_type], "application/json");
    EXPECT_NE(res.body().find("\"error\":\"" + error + "\""), std::string::npos) << res.body();
    EXPECT_NE(res.body().find("\"reason\":\""), std::string::npos) << res.body();
  }

  std::mutex mu_;
  std::map<HttpRejectReason, int> rejects_;
  ResponderQueue queue_;
  std::atomic<bool> first_send_{false};
  std::atomic<bool> second_send_{true};
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, RoutesByMethodAndPath) {
  Start(Options());
  TestClient c("127.0.0.1", port_);
  ASSERT_TRUE(c.connected());
  auto res = c.Send(MakeRequest(http::verb::get, "/open"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), R"({"ok":true})");

  res = c.Send(MakeRequest(http::verb::get, "/nope"));
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 404, "not_found");

  res = c.Send(MakeRequest(http::verb::get, "/echo"));
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 405, "method_not_allowed");
  EXPECT_EQ((*res)[http::field::allow], "POST");
  EXPECT_EQ(Rejects(HttpRejectReason::kNotFound), 1);
  EXPECT_EQ(Rejects(HttpRejectReason::kMethodNotAllowed), 1);
}

// Set by on_io_thread_start on the thread it runs on.
thread_local bool io_thread_started = false;

// on_io_thread_start runs once on each io thread, before that thread runs any handler (the
// daemon moves the io threads' allocations to the acknowledgement arena with it).
TEST_F(HttpServerTest, EachIoThreadRunsTheStartHookBeforeAnyHandler) {
  auto o = Options();
  std::mutex mu;
  std::set<std::thread::id> started;
  int calls = 0;
  o.on_io_thread_start = [&] {
    std::lock_guard lock(mu);
    io_thread_started = true;
    started.insert(std::this_thread::get_id());
    ++calls;
  };
  server_ = std::make_unique<HttpServer>(std::move(o));
  std::atomic<int> handled{0}, on_started_thread{0};
  HttpRouteOptions open;
  open.require_auth = false;
  server_->Handle("GET", "/where", open, [&](const HttpRequest&, HttpResponder r) {
    ++handled;
    if (io_thread_started) ++on_started_thread;
    r.Send(HttpResponse{200, "text/plain", "here", {}});
  });
  ASSERT_TRUE(server_->Start().ok());
  port_ = server_->BoundListeners()[0].port;
  // Connections are spread over both io threads.
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<TestClient>("127.0.0.1", port_));
    auto res = clients.back()->Send(MakeRequest(http::verb::get, "/where"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u);
  }
  EXPECT_EQ(handled.load(), 4);
  EXPECT_EQ(on_started_thread.load(), 4);
  std::lock_guard lock(mu);
  EXPECT_EQ(calls, 2) << "once per io thread";
  EXPECT_EQ(started.size(), 2u);
  EXPECT_EQ(started.count(std::this_thread::get_id()), 0u);
}

TEST_F(HttpServerTest, PrefixRoutesServeLongerPathsAndExactRoutesWin) {
  auto o = Options();
  server_ = std::make_unique<HttpServer>(std::move(o));
  HttpRouteOptions open;
  open.require_auth = false;
  auto answer = [](std::string name) {
    return [name](const HttpRequest& req, HttpResponder r) {
      r.Send(HttpResponse{200, "text/plain", name + " " + req.path, {}});
    };
  };
  server_->Handle("GET", "/items", open, answer("list"));
  server_->HandlePrefix("GET", "/items/", open, answer("item"));
  server_->HandlePrefix("GET", "/items/special/", open, answer("special"));
  server_->Handle("GET", "/items/fixed", open, answer("fixed"));
  ASSERT_TRUE(server_->Start().ok());
  TestClient c("127.0.0.1", server_->BoundListeners()[0].port);
  ASSERT_TRUE(c.connected());
  auto body = [&](const char* target) {
    auto res = c.Send(MakeRequest(http::verb::get, target));
    return res ? std::to_string(res->result_int()) + " " + res->body() : std::string("none");
  };
  EXPECT_EQ(body("/items"), "200 list /items");
  EXPECT_EQ(body("/items/42?x=1"), "200 item /items/42");
  EXPECT_EQ(body("/items/fixed"), "200 fixed /items/fixed");
  EXPECT_EQ(body("/items/special/7"), "200 special /items/special/7");
  // The prefix itself is not covered (it has no id), nor is anything beside it.
  EXPECT_EQ(body("/items/").substr(0, 3), "404");
  EXPECT_EQ(body("/itemsx").substr(0, 3), "404");
  // Another method on a prefix path: 405 naming the prefix route's methods.
  auto res = c.Send(MakeRequest(http::verb::post, "/items/42"));
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 405, "method_not_allowed");
  EXPECT_EQ((*res)[http::field::allow], "GET");
}

TEST_F(HttpServerTest, PassesTheCapturedAlertmanagerRequestThroughByteForByte) {
  Start(Options());
  const std::string body = ReadFixture("alertmanager-captured/firing.raw.json");
  ASSERT_EQ(body.size(), 1475u);  // request-headers.json: Content-Length 1475
  // The request exactly as Alertmanager 0.25.0 sent it (request-headers.json).
  std::string raw =
      "POST /echo?receiver=tp HTTP/1.1\r\nHost: 127.0.0.1:45055\r\n"
      "User-Agent: Alertmanager/0.25.0\r\nContent-Length: 1475\r\n"
      "Content-Type: application/json\r\n\r\n" +
      body;
  TestClient c("127.0.0.1", port_);
  ASSERT_FALSE(c.Write(raw));
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), body);
  EXPECT_EQ((*res)["X-User-Agent"], "Alertmanager/0.25.0");
  EXPECT_EQ((*res)["X-Query"], "receiver=tp");
}

TEST_F(HttpServerTest, KeepsTheConnectionAliveAcrossRequests) {
  Start(Options());
  TestClient c("127.0.0.1", port_);
  for (int i = 0; i < 3; ++i) {
    auto res = c.Send(MakeRequest(http::verb::post, "/echo", "{\"i\":" + std::to_string(i) + "}"));
    ASSERT_TRUE(res) << "request " << i;
    EXPECT_EQ(res->result_int(), 200u);
    EXPECT_TRUE(res->keep_alive());
    EXPECT_EQ((*res)["X-Remote-Port"], std::to_string(c.local_port()));
    EXPECT_EQ(res->body(), "{\"i\":" + std::to_string(i) + "}");
  }
  EXPECT_EQ(server_->ActiveConnections(), 1u);
  // Two pipelined requests in one write are answered in order.
  ASSERT_FALSE(
      c.Write("GET /open HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto first = c.Read();
  auto second = c.Read();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->result_int(), 200u);
  EXPECT_EQ(second->result_int(), 404u);
  // Connection: close is honoured.
  auto req = MakeRequest(http::verb::get, "/open");
  req.keep_alive(false);
  auto last = c.Send(req);
  ASSERT_TRUE(last);
  EXPECT_FALSE(last->keep_alive());
  EXPECT_TRUE(c.ReadUntilClosed());
}

TEST_F(HttpServerTest, AnswersHttp10WithoutKeepAlive) {
  Start(Options());
  TestClient c("127.0.0.1", port_);
  ASSERT_FALSE(c.Write("GET /open HTTP/1.0\r\n\r\n"));
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->version(), 10u);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_TRUE(c.ReadUntilClosed());
}

TEST_F(HttpServerTest, BearerTokenIsRequiredAndCheckedOnProtectedRoutes) {
  Start(Options());
  TestClient c("127.0.0.1", port_);
  auto ok = c.Send(MakeRequest(http::verb::post, "/secure", "{}", kToken));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->result_int(), 202u);

  TestClient c2("127.0.0.1", port_);
  auto second = c2.Send(MakeRequest(http::verb::post, "/secure", "{}", kOtherToken));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->result_int(), 202u);

  struct Case {
    const char* name;
    std::optional<std::string> authorization;
    bool invalid_token;  // a token was presented (error="invalid_token")
  };
  const std::string wrong_same_length(std::string(kToken).size(), 'x');
  const Case cases[] = {
      {"missing", std::nullopt, false},
      {"wrong token of the same length", "Bearer " + wrong_same_length, true},
      {"prefix of the token", std::string("Bearer ") + std::string(kToken).substr(0, 5), true},
      {"token plus a byte", std::string("Bearer ") + kToken + "x", true},
      {"basic scheme", std::string("Basic ") + kToken, false},
      {"no token", "Bearer ", false},
  };
  int expected = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    TestClient k("127.0.0.1", port_);
    auto req = MakeRequest(http::verb::post, "/secure", "{}");
    if (tc.authorization) req.set(http::field::authorization, *tc.authorization);
    auto res = k.Send(req);
    ASSERT_TRUE(res);
    ExpectJsonError(*res, 401, "unauthorized");
    std::string challenge((*res)[http::field::www_authenticate]);
    EXPECT_EQ(challenge.rfind("Bearer realm=\"tracepager\"", 0), 0u) << challenge;
    EXPECT_EQ(challenge.find("invalid_token") != std::string::npos, tc.invalid_token) << challenge;
    EXPECT_FALSE(res->keep_alive());  // the body was not read, so the connection closes
    EXPECT_TRUE(k.ReadUntilClosed());
    EXPECT_EQ(Rejects(HttpRejectReason::kUnauthorized), ++expected);
  }
  // The scheme is case-insensitive; open routes need no token.
  auto lower = MakeRequest(http::verb::post, "/secure", "{}");
  lower.set(http::field::authorization, std::string("bearer ") + kToken);
  TestClient c3("127.0.0.1", port_);
  auto res = c3.Send(lower);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 202u);
  res = c3.Send(MakeRequest(http::verb::get, "/open"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
}

TEST_F(HttpServerTest, BearerTokensCanBeReplacedWhileRunning) {
  Start(Options());
  server_->SetBearerTokens({"rotated"});
  TestClient c("127.0.0.1", port_);
  auto res = c.Send(MakeRequest(http::verb::post, "/secure", "{}", "rotated"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 202u);
  TestClient c2("127.0.0.1", port_);
  res = c2.Send(MakeRequest(http::verb::post, "/secure", "{}", kToken));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 401u);
}

TEST_F(HttpServerTest, RouteRequiringAuthFailsClosedWithoutTokens) {
  auto o = Options();
  o.bearer_tokens.clear();
  Start(std::move(o));
  TestClient c("127.0.0.1", port_);
  auto req = MakeRequest(http::verb::post, "/secure", "{}");
  req.set(http::field::authorization, "Bearer ");
  auto res = c.Send(req);
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 401, "unauthorized");
}

TEST_F(HttpServerTest, VerifiesHmacSignaturesOfTheRawBody) {
  Start(Options());
  const std::string body = ReadFixture("alertmanager-captured/firing.raw.json");
  const std::string sig = integrations::HmacSha256Hex(kSecret, body);
  struct Case {
    const char* name;
    std::optional<std::string> signature;
    int status;
  };
  std::string upper = sig;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  std::string flipped = sig;
  flipped[10] = flipped[10] == '0' ? '1' : '0';
  const Case cases[] = {
      {"lowercase hex", sig, 200},
      {"uppercase hex", upper, 200},
      {"sha256= prefix", "sha256=" + sig, 200},
      {"one digit wrong", flipped, 401},
      {"truncated", sig.substr(0, 63), 401},
      {"missing", std::nullopt, 401},
      {"signature of another body", integrations::HmacSha256Hex(kSecret, body + " "), 401},
      {"signature under another key", integrations::HmacSha256Hex("other", body), 401},
  };
  TestClient c("127.0.0.1", port_);  // 401 here comes after the body: keep-alive continues
  int rejected = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto req = MakeRequest(http::verb::post, "/signed", body);
    if (tc.signature) req.set("X-Signature", *tc.signature);
    auto res = c.Send(req);
    ASSERT_TRUE(res);
    if (tc.status == 200) {
      EXPECT_EQ(res->result_int(), 200u);
    } else {
      ExpectJsonError(*res, 401, "bad_signature");
      ++rejected;
    }
    EXPECT_TRUE(res->keep_alive());
  }
  EXPECT_EQ(Rejects(HttpRejectReason::kBadSignature), rejected);
}

TEST_F(HttpServerTest, HmacWithTimestampSignsTimestampColonBodyWithinTheWindow) {
  auto o = Options();
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  o.clock = [now] { return now; };
  Start(std::move(o));
  const std::string body = R"({"alerts":[]})";
  auto send = [&](const std::string& stamp, const std::string& sig) {
    TestClient c("127.0.0.1", port_);
    auto req = MakeRequest(http::verb::post, "/stamped", body);
    req.set("X-Timestamp", stamp);
    req.set("X-Signature", sig);
    auto res = c.Send(req);
    return res ? static_cast<int>(res->result_int()) : -1;
  };
  const std::string fresh = "1800000000";
  EXPECT_EQ(send(fresh, integrations::HmacSha256Hex(kSecret, fresh + ":" + body)), 200);
  const std::string recent = "1799999760";  // 4 minutes old: inside the 5 minute window
  EXPECT_EQ(send(recent, integrations::HmacSha256Hex(kSecret, recent + ":" + body)), 200);
  const std::string old = "1799999000";  // replayed 1000 s later
  EXPECT_EQ(send(old, integrations::HmacSha256Hex(kSecret, old + ":" + body)), 401);
  EXPECT_EQ(send(fresh, integrations::HmacSha256Hex(kSecret, body)), 401);  // timestamp not signed
  EXPECT_EQ(send("12abc", integrations::HmacSha256Hex(kSecret, "12abc:" + body)), 401);
  // allow_sha256_prefix is off on this route.
  EXPECT_EQ(send(fresh, "sha256=" + integrations::HmacSha256Hex(kSecret, fresh + ":" + body)), 401);
  EXPECT_EQ(Rejects(HttpRejectReason::kBadSignature), 4);
}

TEST_F(HttpServerTest, RefusesOversizeBodiesWith413) {
  Start(Options());
  // Declared too large: refused from the header alone, before the body is sent.
  TestClient c("127.0.0.1", port_);
  ASSERT_FALSE(c.Write("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n"));
  auto res = c.Read();
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 413, "body_too_large");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c.ReadUntilClosed());

  // Exactly the limit is fine.
  TestClient c2("127.0.0.1", port_);
  auto ok = c2.Send(MakeRequest(http::verb::post, "/echo", std::string(1u << 20, 'a')));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->result_int(), 200u);
  EXPECT_EQ(ok->body().size(), 1u << 20);

  // Chunked: refused when the chunks pass the limit. The client keeps sending after the answer;
  // the server drains briefly so the answer is not lost to a reset.
  TestClient c3("127.0.0.1", port_);
  std::string chunked = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "80000\r\n" + std::string(0x80000, 'b') + "\r\n";
  ASSERT_FALSE(c3.Write(chunked));
  res = c3.Read();
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 413, "body_too_large");
  EXPECT_EQ(Rejects(HttpRejectReason::kBodyTooLarge), 2);
}

TEST_F(HttpServerTest, AnswersExpectContinueOnlyAfterTheHeaderPassed) {
  Start(Options());
  TestClient c("127.0.0.1", port_);
  ASSERT_FALSE(c.Write(std::string("POST /secure HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ") +
                       kToken + "\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"));
  auto cont = c.Read();
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->result_int(), 100u);
  ASSERT_FALSE(c.Write("{}"));
  auto res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 202u);

  TestClient bad("127.0.0.1", port_);
  ASSERT_FALSE(bad.Write(
      "POST /secure HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"));
  res = bad.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 401u);
}

TEST_F(HttpServerTest, RefusesMalformedRequestsWith400) {
  Start(Options());
  const char* cases[] = {
      "GARBAGE\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
      "POST /echo HTTP/9.9\r\nHost: a\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  int n = 0;
  for (const char* raw : cases) {
    SCOPED_TRACE(raw);
    TestClient c("127.0.0.1", port_);
    ASSERT_FALSE(c.Write(raw));
    auto res = c.Read();
    ASSERT_TRUE(res);
    ExpectJsonError(*res, 400, "malformed");
    EXPECT_TRUE(c.ReadUntilClosed());
    EXPECT_EQ(Rejects(HttpRejectReason::kMalformed), ++n);
  }
}

TEST_F(HttpServerTest, RefusesOversizeHeadersWith431) {
  Start(Options());
  TestClient c("127.0.0.1", port_);
  ASSERT_FALSE(
      c.Write("GET /open HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n"));
  auto res = c.Read();
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 431, "header_too_large");
}

TEST_F(HttpServerTest, CutsOffAClientTricklingHeaderBytes) {
  auto o = Options();
  o.header_timeout = std::chrono::milliseconds(400);
  Start(std::move(o));
  TestClient c("127.0.0.1", port_);
  // One byte every 20 ms never lets a per-read timeout fire; only a deadline on the whole
  // header stops it.
  auto result = c.Trickle("POST /echo HTTP/1.1\r\nHost: a\r\n", std::string(5000, 'x'),
                          std::chrono::milliseconds(20));
  ASSERT_TRUE(result.response) << "server closed without an answer";
  ExpectJsonError(*result.response, 408, "header_timeout");
  EXPECT_GE(result.elapsed, std::chrono::milliseconds(350));
  // Trickling all 5000 bytes would take 100 s: ending well before proves the cut-off, with room
  // for a loaded machine (the bound is not the timeout's precision).
  EXPECT_LT(result.elapsed, std::chrono::seconds(30));
  EXPECT_GT(result.bytes_trickled, 5u);  // it really was sending all along
  EXPECT_TRUE(c.ReadUntilClosed());
  EXPECT_EQ(Rejects(HttpRejectReason::kHeaderTimeout), 1);
}

TEST_F(HttpServerTest, CutsOffAClientTricklingBodyBytes) {
  auto o = Options();
  o.body_timeout = std::chrono::milliseconds(400);
  Start(std::move(o));
  TestClient c("127.0.0.1", port_);
  auto result = c.Trickle("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n",
                          std::string(5000, 'x'), std::chrono::milliseconds(20));
  ASSERT_TRUE(result.response);
  ExpectJsonError(*result.response, 408, "body_timeout");
  EXPECT_GE(result.elapsed, std::chrono::milliseconds(350));
  EXPECT_LT(result.elapsed, std::chrono::seconds(30));  // 100 s to trickle it all
  EXPECT_EQ(Rejects(HttpRejectReason::kBodyTimeout), 1);
}

TEST_F(HttpServerTest, CutsOffAClientStreamingBodyBytesWithoutPause) {
  // Bytes arrive all the time, so the server's reads keep completing: a deadline that fires
  // between two of them must still end the read (it once went unnoticed there).
  auto o = Options();
  o.body_timeout = std::chrono::milliseconds(300);
  o.body_limit = 64u << 20;
  Start(std::move(o));
  for (int round = 0; round < 3; ++round) {
    TestClient c("127.0.0.1", port_);
    auto result = c.Trickle("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 50000000\r\n\r\n",
                            std::string(50'000'000, 'x'), std::chrono::milliseconds(0));
    ASSERT_TRUE(result.response) << "round " << round;
    ExpectJsonError(*result.response, 408, "body_timeout");
    EXPECT_LT(result.bytes_trickled, 50'000'000u);
    EXPECT_LT(result.elapsed, std::chrono::seconds(20));
  }
  EXPECT_EQ(Rejects(HttpRejectReason::kBodyTimeout), 3);
}

TEST_F(HttpServerTest, ClosesSilentConnectionsAndIdleKeepAlives) {
  auto o = Options();
  o.header_timeout = std::chrono::milliseconds(300);
  o.idle_timeout = std::chrono::milliseconds(200);
  Start(std::move(o));
  // A fresh connection that never sends: 408, counted.
  TestClient silent("127.0.0.1", port_);
  auto res = silent.Read();
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 408, "header_timeout");
  EXPECT_EQ(Rejects(HttpRejectReason::kHeaderTimeout), 1);
  // A keep-alive connection idle after a request: closed quietly, not counted.
  TestClient idle("127.0.0.1", port_);
  ASSERT_TRUE(idle.Send(MakeRequest(http::verb::get, "/open")));
  std::string after;
  EXPECT_TRUE(idle.ReadUntilClosed(&after));
  EXPECT_EQ(after, "");
  EXPECT_EQ(Rejects(HttpRejectReason::kHeaderTimeout), 1);
}

TEST_F(HttpServerTest, ClosesAConnectionWhoseClientStopsReadingTheAnswer) {
  auto o = Options();
  o.write_timeout = std::chrono::milliseconds(300);
  Start(std::move(o));
  TestClient c("127.0.0.1", port_);
  auto first = c.Send(MakeRequest(http::verb::get, "/open"));  // the server has accepted it
  ASSERT_TRUE(first);
  EXPECT_EQ(server_->ActiveConnections(), 1u);
  ASSERT_FALSE(c.Write("GET /big HTTP/1.1\r\nHost: a\r\n\r\n"));
  // The client reads nothing, so the write stalls once the socket buffers are full; the
  // write deadline closes the connection (the cap is far beyond the 300 ms deadline).
  EXPECT_TRUE(server_->WaitDrained(std::chrono::seconds(20)));
  EXPECT_EQ(server_->ActiveConnections(), 0u);
  std::string got;
  EXPECT_TRUE(c.ReadUntilClosed(&got));
  EXPECT_LT(got.size(), kBigBody);  // cut off: the answer was never complete
  // The server still serves others.
  TestClient other("127.0.0.1", port_);
  auto res = other.Send(MakeRequest(http::verb::get, "/open"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
}

TEST_F(HttpServerTest, RefusesConnectionsBeyondTheLimit) {
  auto o = Options();
  o.max_connections = 2;
  Start(std::move(o));
  TestClient a("127.0.0.1", port_), b("127.0.0.1", port_);
  ASSERT_TRUE(a.Send(MakeRequest(http::verb::get, "/open")));  // both are served, so both
  ASSERT_TRUE(b.Send(MakeRequest(http::verb::get, "/open")));  // hold a slot now
  EXPECT_EQ(server_->ActiveConnections(), 2u);

  TestClient over("127.0.0.1", port_);
  auto res = over.Read();  // refused without reading anything from it
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 503, "connection_limit");
  EXPECT_TRUE(over.ReadUntilClosed());
  EXPECT_EQ(Rejects(HttpRejectReason::kConnectionLimit), 1);

  // Once a slot frees up, connections are served again. The server learns about the close
  // asynchronously, so try a bounded number of times.
  a.Close();
  bool served = false;
  for (int attempt = 0; attempt < 500 && !served; ++attempt) {
    TestClient again("127.0.0.1", port_);
    auto r = again.Send(MakeRequest(http::verb::get, "/open"));
    served = r && r->result_int() == 200;
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpServerTest, HandlerMayAnswerLaterFromAnotherThread) {
  Start(Options());
  TestClient c("127.0.0.1", port_);
  std::thread answerer([this] {
    auto [request, responder] = queue_.Pop();
    // The request stays valid while the responder exists, on this thread too.
    HttpResponse res;
    res.status = 201;
    res.body = "{\"got\":" + request->body + "}";
    EXPECT_TRUE(responder.Send(res));
    EXPECT_FALSE(responder.Send(HttpResponse{}));
    EXPECT_TRUE(responder.answered());
  });
  auto res = c.Send(MakeRequest(http::verb::post, "/async", "[1,2,3]"));
  answerer.join();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 201u);
  EXPECT_EQ(res->body(), "{\"got\":[1,2,3]}");
  // The connection is usable again afterwards.
  auto next = c.Send(MakeRequest(http::verb::get, "/open"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->result_int(), 200u);
}

TEST_F(HttpServerTest, UnansweredThrowingAndDoubleAnswersAreSafe) {
  Start(Options());
  TestClient c("127.0.0.1", port_);
  auto dropped = c.Send(MakeRequest(http::verb::post, "/drop", "{}"));
  ASSERT_TRUE(dropped);
  ExpectJsonError(*dropped, 500, "internal");
  auto thrown = c.Send(MakeRequest(http::verb::post, "/throw", "{}"));
  ASSERT_TRUE(thrown);
  ExpectJsonError(*thrown, 500, "internal");
  auto twice = c.Send(MakeRequest(http::verb::post, "/twice", "{}"));
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->result_int(), 200u);
  EXPECT_EQ(twice->body(), R"({"n":1})");
  EXPECT_TRUE(first_send_);
  EXPECT_FALSE(second_send_);
  auto next = c.Send(MakeRequest(http::verb::get, "/open"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->result_int(), 200u);
  EXPECT_EQ(TotalRejects(), 0);  // handler answers are not server rejections
}

TEST_F(HttpServerTest, AnswersForASlowHandlerAndDropsItsLateAnswer) {
  auto o = Options();
  o.handler_timeout = std::chrono::milliseconds(300);
  Start(std::move(o));
  TestClient c("127.0.0.1", port_);
  auto res = c.Send(MakeRequest(http::verb::post, "/async", "{\"n\":1}"));
  ASSERT_TRUE(res);
  ExpectJsonError(*res, 503, "handler_timeout");  // Alertmanager retries a 503
  EXPECT_TRUE(res->keep_alive());
  EXPECT_EQ(Rejects(HttpRejectReason::kHandlerTimeout), 1);
  auto [stale_request, stale] = queue_.Pop();

  // The next request on the same connection gets its own answer, never the stale one.
  ASSERT_FALSE(c.Write("POST /async HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\n{\"n\":2}"));
  auto [request, responder] = queue_.Pop();
  EXPECT_EQ(request->body, "{\"n\":2}");
  stale.Send(HttpResponse{200, "application/json", R"({"answer":"stale"})", {}});
  EXPECT_TRUE(responder.Send(HttpResponse{200, "application/json", R"({"answer":"fresh"})", {}}));
  res = c.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), R"({"answer":"fresh"})");
}

TEST_F(HttpServerTest, StopFinishesInFlightRequestsAndClosesIdleOnes) {
  Start(Options());
  TestClient idle("127.0.0.1", port_);
  ASSERT_TRUE(idle.Send(MakeRequest(http::verb::get, "/open")));
  TestClient busy("127.0.0.1", port_);
  ASSERT_FALSE(busy.Write("POST /async HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"));
  auto [request, responder] = queue_.Pop();  // the handler has it

  server_->Stop();
  EXPECT_TRUE(idle.ReadUntilClosed());  // idle keep-alive connection: closed, no answer
  TestClient late("127.0.0.1", port_);
  EXPECT_FALSE(late.connected() && late.Send(MakeRequest(http::verb::get, "/open")));
  EXPECT_FALSE(server_->WaitDrained(std::chrono::milliseconds(1)));  // `busy` is in flight

  ASSERT_TRUE(responder.Send(HttpResponse{200, "application/json", "{\"late\":1}", {}}));
  auto res = busy.Read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(busy.ReadUntilClosed());
  EXPECT_TRUE(server_->WaitDrained(std::chrono::seconds(20)));
  EXPECT_EQ(server_->ActiveConnections(), 0u);
}

TEST_F(HttpServerTest, AbortClosesConnectionsWaitingForAnAnswer) {
  Start(Options());
  TestClient busy("127.0.0.1", port_);
  ASSERT_FALSE(busy.Write("POST /async HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"));
  auto [request, responder] = queue_.Pop();
  server_->Abort();
  std::string data;
  EXPECT_TRUE(busy.ReadUntilClosed(&data));
  EXPECT_EQ(data, "");
  responder.Send(HttpResponse{});  // harmless after the connection is gone
  EXPECT_TRUE(server_->WaitDrained(std::chrono::seconds(20)));
}

TEST_F(HttpServerTest, ResponderOutlivingTheServerIsHarmless) {
  Start(Options());
  TestClient busy("127.0.0.1", port_);
  ASSERT_FALSE(busy.Write("POST /async HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"));
  auto [request, responder] = queue_.Pop();
  server_.reset();
  EXPECT_FALSE(responder.Send(HttpResponse{}));
  EXPECT_TRUE(busy.ReadUntilClosed());
}

TEST_F(HttpServerTest, ListensOnSeveralAddressesIncludingIpv6) {
  auto o = Options();
  o.listeners = {{"127.0.0.1", 0, false}, {"::1", 0, false}};
  server_ = std::make_unique<HttpServer>(std::move(o));
  AddRoutes(*server_);
  Status s = server_->Start();
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto bound = server_->BoundListeners();
  ASSERT_EQ(bound.size(), 2u);
  EXPECT_EQ(bound[1].host, "::1");
  for (const auto& b : bound) {
    SCOPED_TRACE(b.host);
    TestClient c(b.host, b.port);
    auto res = c.Send(MakeRequest(http::verb::get, "/open"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u);
  }
}

TEST_F(HttpServerTest, StartFailsWhenAnAddressCannotBeBound) {
  Start(Options());
  auto o = Options();
  o.listeners = {{"127.0.0.1", port_, false}};
  HttpServer second(std::move(o));
  Status s = second.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message.find("127.0.0.1:" + std::to_string(port_)), std::string::npos);

  auto bad = Options();
  bad.listeners = {{"localhost", 0, false}};
  HttpServer third(std::move(bad));
  s = third.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidInput);
}

TEST_F(HttpServerTest, RunsOnACallerProvidedIoContext) {
  boost::asio::io_context ioc;
  auto o = Options();
  o.listeners = {{"127.0.0.1", 0, false}};
  auto server = std::make_unique<HttpServer>(std::move(o), ioc);
  AddRoutes(*server);
  ASSERT_TRUE(server->Start().ok());
  auto work = boost::asio::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });
  {
    TestClient c("127.0.0.1", server->BoundListeners()[0].port);
    auto res = c.Send(MakeRequest(http::verb::get, "/open"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u);
    server->Stop();
    EXPECT_TRUE(c.ReadUntilClosed());
  }
  EXPECT_TRUE(server->WaitDrained(std::chrono::seconds(20)));
  server.reset();
  work.reset();
  io.join();
}

}  // namespace
}  // namespace tracepager::daemon
