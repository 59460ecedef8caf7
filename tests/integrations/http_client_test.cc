#include "integrations/http/http_client.h"

#include <gtest/gtest.h>

#include <future>

#include "integrations/http/io_thread.h"
#include "integrations/http/retry.h"
#include "integrations/http/url.h"
#include "tests/integrations/fake_backend.h"

namespace tracepager::integrations::http {
namespace {

using testing::FakeBackend;
using testing::FakeReply;
using testing::ReceivedRequest;
using namespace std::chrono_literals;

// ---- pure parts ----

TEST(Url, ParsesSchemeHostPortAndTarget) {
  auto u = ParseUrl("https://Tempo.Example:3200/tempo/api/search?q=x");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "tempo.example");
  EXPECT_EQ(u->port, 3200);
  EXPECT_EQ(u->target, "/tempo/api/search?q=x");
  EXPECT_EQ(u->Path(), "/tempo/api/search");
  EXPECT_EQ(u->HostHeader(), "tempo.example:3200");
  EXPECT_EQ(u->Origin(), "https://tempo.example:3200");

  auto v6 = ParseUrl("http://[::1]:9411");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->target, "/");
  EXPECT_EQ(v6->HostHeader(), "[::1]:9411");

  auto plain = ParseUrl("http://jaeger");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->port, 80);
  EXPECT_EQ(plain->HostHeader(), "jaeger");
}

TEST(Url, RefusesCredentialsOtherSchemesAndJunk) {
  EXPECT_FALSE(ParseUrl("ftp://host/").ok());
  EXPECT_FALSE(ParseUrl("host:80/path").ok());
  EXPECT_FALSE(ParseUrl("http://:80/").ok());
  EXPECT_FALSE(ParseUrl("http://host:0/").ok());
  EXPECT_FALSE(ParseUrl("http://host:65536/").ok());
  EXPECT_FALSE(ParseUrl("http://host:/").ok());
  EXPECT_FALSE(ParseUrl("http://host/a b").ok());
  EXPECT_FALSE(ParseUrl("http://host/#frag").ok());
  auto creds = ParseUrl("https://admin:hunter2@host/");
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.error().message.find("hunter2"), std::string::npos);
}

TEST(Url, EncodesQueriesAndJoinsPaths) {
  EXPECT_EQ(PercentEncode("{ resource.service.name = \"checkout\" && status = error }"),
            "%7B%20resource.service.name%20%3D%20%22checkout%22%20%26%26%20status%20%3D%20error"
            "%20%7D");
  EXPECT_EQ(BuildQuery({{"service", "a b"}, {"tags", "{\"error\":\"true\"}"}}),
            "service=a%20b&tags=%7B%22error%22%3A%22true%22%7D");
  EXPECT_EQ(JoinUrl("http://h:1/", "/api/traces"), "http://h:1/api/traces");
  EXPECT_EQ(JoinUrl("http://h:1/tempo", "api/search"), "http://h:1/tempo/api/search");
}

TEST(Retry, BackoffGrowsIsCappedAndJittersWithinHalfTheStep) {
  RetryPolicy p;
  p.initial_backoff = 100ms;
  p.max_backoff = 1000ms;
  EXPECT_EQ(BackoffDelay(p, 1, 0.0), 50ms);
  EXPECT_EQ(BackoffDelay(p, 1, 0.999999), 99ms);
  EXPECT_EQ(BackoffDelay(p, 2, 0.0), 100ms);
  EXPECT_EQ(BackoffDelay(p, 3, 0.5), 300ms);
  EXPECT_EQ(BackoffDelay(p, 10, 0.0), 500ms);  // capped at 1000, half fixed
  EXPECT_EQ(BackoffDelay(p, 10, 1.0), 1000ms);
}

TEST(Retry, RetryableStatuses) {
  for (int s : {408, 429, 500, 502, 503, 504}) EXPECT_TRUE(IsRetryableStatus(s)) << s;
  for (int s : {200, 301, 400, 401, 403, 404, 413, 501}) EXPECT_FALSE(IsRetryableStatus(s)) << s;
}

TEST(Retry, ParsesRetryAfterSecondsAndDates) {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);  // 2015-10-21 07:28:00
  EXPECT_EQ(ParseRetryAfter("120", now), 120000ms);
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), 0ms);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000ms);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), 0ms);
  EXPECT_EQ(ParseRetryAfter("99999999999", now), 86400000ms);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
}

// ---- against fake backends ----

class HttpClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<HttpClient> Make(ClientOptions options) {
    options.metrics = &metrics_;
    if (!options.random) options.random = [] { return 0.5; };
    auto c = HttpClient::Create(io_.context(), std::move(options));
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    return c.ok() ? std::move(c).value() : nullptr;
  }

  static ClientOptions Fast() {
    ClientOptions o;
    o.name = "fake";
    o.retry.initial_backoff = 1ms;
    o.retry.max_backoff = 4ms;
    o.attempt_timeout = 5s;
    return o;
  }

  static Request Get(const std::string& url, std::chrono::milliseconds deadline = 10s) {
    Request r;
    r.url = url;
    r.deadline = Clock::now() + deadline;
    return r;
  }

  // Waits for the callback; 60 s is a safety cap, the wait ends when the callback runs.
  static Result<Response> SendSync(HttpClient& client, Request request) {
    std::promise<Result<Response>> p;
    auto f = p.get_future();
    client.Send(std::move(request), [&p](Result<Response> r) { p.set_value(std::move(r)); });
    if (f.wait_for(60s) != std::future_status::ready) {
      return Error::Internal("test: no callback within 60 s");
    }
    return f.get();
  }

  InMemoryBackendMetrics metrics_;
  IoThread io_;
};

TEST_F(HttpClientTest, GetReturnsStatusHeadersBodyAndReusesTheConnection) {
  FakeBackend server([](const ReceivedRequest& r) {
    auto reply = FakeReply::Json("{\"path\":\"" + r.target + "\"}");
    reply.headers.push_back({"X-Answer", "42"});
    return reply;
  });
  auto client = Make(Fast());
  for (int i = 0; i < 3; ++i) {
    auto r = SendSync(*client, Get(server.Url() + "/api/traces/abc?x=1"));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "{\"path\":\"/api/traces/abc?x=1\"}");
    EXPECT_EQ(r->Header("x-answer"), "42");
    EXPECT_EQ(r->Header("content-type"), "application/json");
    EXPECT_EQ(r->attempts, 1);
  }
  EXPECT_EQ(server.connections(), 1u);  // keep-alive: one connection for three requests
  const auto got = server.received();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].method, "GET");
  EXPECT_EQ(got[0].Header("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(got[0].Header("authorization"), "");
  EXPECT_EQ(metrics_.Get("fake").requests, 3u);
  EXPECT_EQ(metrics_.Get("fake").by_status.at(200), 3u);
}

TEST_F(HttpClientTest, SendsBearerBasicAndCustomHeaders) {
  FakeBackend server([](const ReceivedRequest&) { return FakeReply::Json("{}"); });
  {
    auto o = Fast();
    o.auth.kind = Auth::Kind::kBearer;
    o.auth.token = Secret("s3cret-token", "test");
    o.auth.headers.push_back({"X-Scope-OrgID", Secret("tenant-a", "test")});
    auto client = Make(o);
    ASSERT_TRUE(SendSync(*client, Get(server.Url() + "/")).ok());
  }
  {
    auto o = Fast();
    o.auth.kind = Auth::Kind::kBasic;
    o.auth.user = "Aladdin";
    o.auth.password = Secret("open sesame", "test");
    auto client = Make(o);
    ASSERT_TRUE(SendSync(*client, Get(server.Url() + "/")).ok());
  }
  const auto got = server.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].Header("authorization"), "Bearer s3cret-token");
  EXPECT_EQ(got[0].Header("x-scope-orgid"), "tenant-a");
  EXPECT_EQ(got[1].Header("authorization"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");  // RFC 7617
}

TEST_F(HttpClientTest, PostSendsBodyAndIsNotRetriedOn5xx) {
  FakeBackend server([](const ReceivedRequest&) {
    auto reply = FakeReply::Json("{\"status\":\"throttled\"}", 503);
    reply.headers.push_back({"Retry-After", "7"});
    return reply;
  });
  auto client = Make(Fast());
  Request req = Get(server.Url() + "/v2/enqueue");
  req.method = Method::kPost;
  req.body = "{\"event_action\":\"trigger\"}";
  req.headers.push_back({"Content-Type", "application/json"});
  auto r = SendSync(*client, req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->Header("Retry-After"), "7");
  EXPECT_EQ(r->attempts, 1);
  const auto got = server.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].body, "{\"event_action\":\"trigger\"}");
  EXPECT_EQ(got[0].Header("content-type"), "application/json");
  EXPECT_EQ(got[0].Header("content-length"), std::to_string(req.body.size()));
}

TEST_F(HttpClientTest, GetRetries5xxThenSucceeds) {
  std::atomic<int> n{0};
  FakeBackend server([&](const ReceivedRequest&) {
    return ++n <= 2 ? FakeReply::Json("<html>oops</html>", 500) : FakeReply::Json("{\"ok\":1}");
  });
  auto client = Make(Fast());
  auto r = SendSync(*client, Get(server.Url() + "/x"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->attempts, 3);
  EXPECT_EQ(server.requests(), 3u);
  EXPECT_EQ(metrics_.Get("fake").Errors(ErrorKind::kHttp5xx), 2u);
}

TEST_F(HttpClientTest, GetGivesUpAfterMaxAttemptsWithTheLastAnswer) {
  FakeBackend server([](const ReceivedRequest&) { return FakeReply::Json("busy", 502); });
  auto o = Fast();
  o.retry.max_attempts = 2;
  auto client = Make(o);
  auto r = SendSync(*client, Get(server.Url() + "/x"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 502);
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(server.requests(), 2u);
}

TEST_F(HttpClientTest, RetryNeverRunsPastTheDeadline) {
  FakeBackend server([](const ReceivedRequest&) {
    auto reply = FakeReply::Json("busy", 503);
    reply.headers.push_back({"Retry-After", "3600"});  // longer than the deadline
    return reply;
  });
  auto client = Make(Fast());
  const auto start = Clock::now();
  auto r = SendSync(*client, Get(server.Url() + "/x", 5s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(server.requests(), 1u);
  EXPECT_LT(Clock::now() - start, 4s);  // answered at once, not after waiting
}

TEST_F(HttpClientTest, ResetThenSuccessIsRetried) {
  std::atomic<int> n{0};
  FakeBackend server([&](const ReceivedRequest&) {
    return ++n == 1 ? FakeReply::Of(FakeReply::Action::kReset) : FakeReply::Json("{}");
  });
  auto client = Make(Fast());
  auto r = SendSync(*client, Get(server.Url() + "/x"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(metrics_.Get("fake").Errors(ErrorKind::kReset), 1u);
}

TEST_F(HttpClientTest, AcceptThenSilenceTimesOutWithinTheDeadline) {
  FakeBackend server(
      [](const ReceivedRequest&) { return FakeReply::Of(FakeReply::Action::kSilence); });
  auto o = Fast();
  o.attempt_timeout = 150ms;
  o.retry.max_attempts = 2;
  auto client = Make(o);
  const auto start = Clock::now();
  auto r = SendSync(*client, Get(server.Url() + "/api/traces/1", 2s));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout) << r.error().message;
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("after 2 attempts"), std::string::npos) << r.error().message;
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_EQ(server.requests(), 2u);
  EXPECT_EQ(metrics_.Get("fake").Errors(ErrorKind::kTimeout), 2u);
}

TEST_F(HttpClientTest, SlowAnswerPastTheDeadlineIsATimeout) {
  FakeBackend server([](const ReceivedRequest&) {
    auto reply = FakeReply::Json("{}");
    reply.delay = 5s;  // the server is slow; the client must not wait for it
    return reply;
  });
  auto client = Make(Fast());
  const auto start = Clock::now();
  auto r = SendSync(*client, Get(server.Url() + "/slow", 200ms));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_NE(r.error().message.find("deadline"), std::string::npos) << r.error().message;
  EXPECT_LT(Clock::now() - start, 3s);
}

TEST_F(HttpClientTest, HugeDeclaredBodyIsCutOffWithoutBuffering) {
  FakeBackend server(
      [](const ReceivedRequest&) { return FakeReply::Of(FakeReply::Action::kHugeBody); });
  auto o = Fast();
  o.max_response_bytes = 1 << 20;
  auto client = Make(o);
  auto r = SendSync(*client, Get(server.Url() + "/api/traces/1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(r.error().message.find("larger than 1048576 bytes"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(server.requests(), 1u);  // not retried
  EXPECT_EQ(metrics_.Get("fake").Errors(ErrorKind::kTooLarge), 1u);
}

TEST_F(HttpClientTest, EndlessChunkedBodyIsCutOffAtTheCap) {
  FakeBackend server(
      [](const ReceivedRequest&) { return FakeReply::Of(FakeReply::Action::kEndlessChunked); });
  auto o = Fast();
  o.max_response_bytes = 1 << 20;
  auto client = Make(o);
  auto r = SendSync(*client, Get(server.Url() + "/api/traces/1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(r.error().message.find("larger than"), std::string::npos) << r.error().message;
}

TEST_F(HttpClientTest, GarbageIsNotHttp) {
  FakeBackend server(
      [](const ReceivedRequest&) { return FakeReply::Of(FakeReply::Action::kGarbage); });
  auto client = Make(Fast());
  auto r = SendSync(*client, Get(server.Url() + "/x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(r.error().message.find("not valid HTTP"), std::string::npos) << r.error().message;
}

TEST_F(HttpClientTest, ConnectionRefusedIsUnavailable) {
  uint16_t port;
  {
    FakeBackend gone([](const ReceivedRequest&) { return FakeReply::Json("{}"); });
    port = gone.port();
  }
  auto o = Fast();
  o.retry.max_attempts = 2;
  auto client = Make(o);
  auto r = SendSync(*client, Get("http://127.0.0.1:" + std::to_string(port) + "/x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().message;
  EXPECT_EQ(metrics_.Get("fake").Errors(ErrorKind::kConnect), 2u);
}

TEST_F(HttpClientTest, PooledConnectionClosedByThePeerIsReplacedOnceEvenForPost) {
  FakeBackend server([](const ReceivedRequest&) {
    auto reply = FakeReply::Json("{}");
    reply.close_after = true;  // says keep-alive, then drops the connection
    return reply;
  });
  auto client = Make(Fast());
  ASSERT_TRUE(SendSync(*client, Get(server.Url() + "/a")).ok());
  Request post = Get(server.Url() + "/b");
  post.method = Method::kPost;
  post.body = "{}";
  auto r = SendSync(*client, post);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(server.requests(), 2u);  // the dead connection never delivered the POST
  EXPECT_EQ(server.connections(), 2u);
}

TEST_F(HttpClientTest, AlertStormNeverExceedsTheConcurrencyLimit) {
  FakeBackend server([](const ReceivedRequest&) {
    auto reply = FakeReply::Json("{}");
    reply.delay = 10ms;  // hold each request a little so that requests pile up
    return reply;
  });
  auto o = Fast();
  o.max_concurrency = 4;
  auto client = Make(o);
  constexpr int kRequests = 60;
  std::vector<std::promise<Result<Response>>> promises(kRequests);
  // From several threads at once, as the daemon's workers would.
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int i = t; i < kRequests; i += 4) {
        client->Send(Get(server.Url() + "/api/traces/" + std::to_string(i)),
                     [&promises, i](Result<Response> r) { promises[i].set_value(std::move(r)); });
      }
    });
  }
  for (auto& s : senders) s.join();
  for (auto& p : promises) {
    auto f = p.get_future();
    ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(server.requests(), size_t{kRequests});
  EXPECT_LE(server.max_concurrent(), 4u);
  EXPECT_EQ(server.max_concurrent(), 4u);  // the limit was reached, so the check above bites
  EXPECT_LE(server.connections(), 4u);     // and connections were reused
}

TEST_F(HttpClientTest, FullQueueFailsFastAndQueuedRequestsTimeOut) {
  FakeBackend server(
      [](const ReceivedRequest&) { return FakeReply::Of(FakeReply::Action::kSilence); });
  auto o = Fast();
  o.max_concurrency = 1;
  o.max_queue = 2;
  o.attempt_timeout = 10s;
  auto client = Make(o);
  std::vector<std::promise<Result<Response>>> promises(4);
  // The queued ones have shorter deadlines than the one holding the slot, so they time out
  // in the queue rather than racing for the slot it frees.
  for (int i = 0; i < 4; ++i) {
    client->Send(Get(server.Url() + "/x", i == 0 ? 400ms : 150ms),
                 [&promises, i](Result<Response> r) { promises[i].set_value(std::move(r)); });
  }
  std::vector<Result<Response>> results;
  for (auto& p : promises) {
    auto f = p.get_future();
    ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
    results.push_back(f.get());
  }
  // The first holds the slot and times out; two wait and time out in the queue; the fourth
  // finds the queue full.
  for (auto& r : results) ASSERT_FALSE(r.ok());
  EXPECT_EQ(results[0].error().code, ErrorCode::kTimeout);
  EXPECT_NE(results[1].error().message.find("waiting for a free connection slot"),
            std::string::npos)
      << results[1].error().message;
  EXPECT_EQ(results[2].error().code, ErrorCode::kTimeout);
  EXPECT_EQ(results[3].error().code, ErrorCode::kUnavailable);
  EXPECT_NE(results[3].error().message.find("queue full"), std::string::npos);
  EXPECT_EQ(server.requests(), 1u);
  EXPECT_EQ(metrics_.Get("fake").Errors(ErrorKind::kQueueFull), 1u);
}

TEST_F(HttpClientTest, DestroyingTheClientFailsRequestsInProgress) {
  FakeBackend server(
      [](const ReceivedRequest&) { return FakeReply::Of(FakeReply::Action::kSilence); });
  auto client = Make(Fast());
  std::promise<Result<Response>> p;
  auto f = p.get_future();
  client->Send(Get(server.Url() + "/x", 30s),
               [&p](Result<Response> r) { p.set_value(std::move(r)); });
  ASSERT_TRUE(server.WaitForRequests(1, 30s));
  client.reset();
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("shut down"), std::string::npos);
}

TEST_F(HttpClientTest, ErrorsNeverShowSecretsOrRedactedPaths) {
  FakeBackend server(
      [](const ReceivedRequest&) { return FakeReply::Of(FakeReply::Action::kGarbage); });
  auto o = Fast();
  o.auth.kind = Auth::Kind::kBearer;
  o.auth.token = Secret("tok-SECRET", "test");
  auto client = Make(o);
  Request req = Get(server.Url() + "/services/T000/B000/XXXXSECRET?token=SECRET2");
  req.redact_path = true;
  auto r = SendSync(*client, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("SECRET"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(server.Url()), std::string::npos) << r.error().message;
  EXPECT_EQ(fmt::format("{}", o.auth.token), "[redacted]");
}

TEST_F(HttpClientTest, BadUrlFailsThroughTheCallback) {
  auto client = Make(Fast());
  auto r = SendSync(*client, Get("jaeger:16686/api/traces"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
}

// ---- TLS, with a CA made for the test ----

class HttpClientTlsTest : public HttpClientTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    pki_ = new testing::TestPki(testing::MakeTestPki(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }
  ClientOptions Trusting() {
    auto o = Fast();
    o.tls.ca_file = pki_->ca_cert;
    o.retry.max_attempts = 1;
    return o;
  }
  static testing::TempDir* dir_;
  static testing::TestPki* pki_;
};
testing::TempDir* HttpClientTlsTest::dir_ = nullptr;
testing::TestPki* HttpClientTlsTest::pki_ = nullptr;

TEST_F(HttpClientTlsTest, VerifiesTheChainAndTheHostName) {
  FakeBackend server([](const ReceivedRequest&) { return FakeReply::Json("{\"tls\":true}"); },
                     pki_->localhost);
  auto client = Make(Trusting());
  auto r = SendSync(*client, Get(server.Url("localhost") + "/api/traces/1"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "{\"tls\":true}");
  auto again = SendSync(*client, Get(server.Url("localhost") + "/api/traces/2"));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(server.connections(), 1u);  // TLS connections are pooled too
}

TEST_F(HttpClientTlsTest, RefusesACertificateForAnotherName) {
  FakeBackend server([](const ReceivedRequest&) { return FakeReply::Json("{}"); },
                     pki_->wrong_name);
  auto client = Make(Trusting());
  auto r = SendSync(*client, Get(server.Url("localhost") + "/api/traces/1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("hostname mismatch"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.requests(), 0u);  // nothing was sent to the impostor
  EXPECT_EQ(metrics_.Get("fake").Errors(ErrorKind::kTls), 1u);
}

TEST_F(HttpClientTlsTest, RefusesAnIpAddressTheCertificateDoesNotName) {
  FakeBackend server([](const ReceivedRequest&) { return FakeReply::Json("{}"); }, pki_->localhost);
  auto client = Make(Trusting());
  auto r = SendSync(*client, Get(server.Url("127.0.0.1") + "/"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("mismatch"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.requests(), 0u);
}

TEST_F(HttpClientTlsTest, RefusesAnUnknownCaWithTheSystemStore) {
  FakeBackend server([](const ReceivedRequest&) { return FakeReply::Json("{}"); }, pki_->localhost);
  auto o = Fast();
  o.retry.max_attempts = 3;  // a TLS refusal is not retried: it would fail the same way
  auto client = Make(o);
  auto r = SendSync(*client, Get(server.Url("localhost") + "/"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("TLS handshake failed"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.requests(), 0u);
  EXPECT_EQ(metrics_.Get("fake").Errors(ErrorKind::kTls), 1u);
}

TEST_F(HttpClientTlsTest, VerifyOffAcceptsAnyCertificate) {
  FakeBackend server([](const ReceivedRequest&) { return FakeReply::Json("{}"); },
                     pki_->wrong_name);
  auto o = Fast();
  o.tls.verify = false;
  auto client = Make(o);
  auto r = SendSync(*client, Get(server.Url("127.0.0.1") + "/"));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST_F(HttpClientTlsTest, UnreadableCaFileFailsCreate) {
  auto o = Fast();
  o.tls.ca_file = dir_->path() + "/missing.pem";
  auto c = HttpClient::Create(io_.context(), o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("ca_file"), std::string::npos);
}

}  // namespace
}  // namespace tracepager::integrations::http
