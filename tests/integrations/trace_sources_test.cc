// The trace sources end to end over loopback: fake Jaeger, Tempo and Zipkin servers answer
// with the recorded real bodies (and with the bad answers real deployments produce), and the
// sources are built from config exactly as the daemon builds them.
#include <gtest/gtest.h>

#include <future>

#include "integrations/http/io_thread.h"
#include "integrations/http_trace_source.h"
#include "integrations/scheduler.h"
#include "integrations/trace_backend_config.h"
#include "integrations/trace_cache.h"
#include "integrations/trace_collector.h"
#include "tests/integrations/fake_backend.h"

namespace tracepager::integrations {
namespace {

using namespace std::chrono_literals;
using testing::FakeBackend;
using testing::FakeReply;
using testing::FixturePath;
using testing::ReadFile;
using testing::ReceivedRequest;
using Clock = TraceSource::Clock;

std::string Fixture(const std::string& name) { return ReadFile(FixturePath(name)); }
std::string Id(std::string_view raw) { return *NormalizeTraceId(raw); }

class TraceSourcesTest : public ::testing::Test {
 protected:
  TraceBackendConfig Config(const std::string& type, const FakeBackend& server) {
    TraceBackendConfig c;
    c.type = type;
    c.base_url = server.Url();
    c.retry.initial_backoff = 1ms;
    c.retry.max_backoff = 2ms;
    c.cache_ttl = 0ms;  // most tests look at every request; the cache has its own tests
    return c;
  }

  std::shared_ptr<TraceSource> Make(const TraceBackendConfig& c) {
    EXPECT_TRUE(ValidateTraceBackendConfig(c).empty());
    auto s = MakeHttpTraceSource(c, io_.context(), &metrics_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s).value() : nullptr;
  }

  static Result<std::vector<routing::Trace>> Fetch(TraceSource& source, const std::string& id,
                                                   std::chrono::milliseconds timeout = 10s) {
    std::promise<Result<std::vector<routing::Trace>>> p;
    auto f = p.get_future();
    source.FetchTrace(id, Clock::now() + timeout,
                      [&p](Result<std::vector<routing::Trace>> r) { p.set_value(std::move(r)); });
    if (f.wait_for(60s) != std::future_status::ready) return Error::Internal("no callback");
    return f.get();
  }

  static Result<std::vector<SearchHit>> Search(TraceSource& source, const TraceQuery& q) {
    std::promise<Result<std::vector<SearchHit>>> p;
    auto f = p.get_future();
    source.SearchTraces(q, Clock::now() + 10s,
                        [&p](Result<std::vector<SearchHit>> r) { p.set_value(std::move(r)); });
    if (f.wait_for(60s) != std::future_status::ready) return Error::Internal("no callback");
    return f.get();
  }

  static TraceQuery Query(TraceQuery::Order order = TraceQuery::Order::kErrorsFirst) {
    TraceQuery q;
    q.service = "frontend";
    q.start_ns = 1764190000'000000000;
    q.end_ns = 1764190600'000000000;
    q.order = order;
    return q;
  }

  CollectResult Collect(std::shared_ptr<TraceSource> source, CollectRequest request,
                        CollectOptions options) {
    std::promise<CollectResult> p;
    auto f = p.get_future();
    CollectTraces(std::move(source), std::move(request), options, scheduler_,
                  [&p](CollectResult r) { p.set_value(std::move(r)); });
    EXPECT_EQ(f.wait_for(60s), std::future_status::ready);
    return f.get();
  }

  InMemoryBackendMetrics metrics_;
  http::IoThread io_;
  AsioScheduler scheduler_{io_.context()};
};

// ---- each backend with its recorded answers ----

TEST_F(TraceSourcesTest, JaegerV3FetchesAndSearches) {
  FakeBackend server([](const ReceivedRequest& r) {
    if (r.target == "/api/v3/traces/2ea75461946a7dd10f2c15ab36a076cb") {
      return FakeReply::Json(Fixture("jaeger-v3/getTrace-response_hotrod.json"));
    }
    if (r.target.rfind("/api/v3/traces?", 0) == 0) {
      return FakeReply::Json(Fixture("jaeger-v3/apiv3_snapshot_FindTraces.json"));
    }
    return FakeReply::Json("{\"error\":{\"httpCode\":404,\"message\":\"trace not found\"}}", 404);
  });
  auto source = Make(Config("jaeger", server));
  auto t = Fetch(*source, "2EA75461946A7DD10F2C15AB36A076CB");
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->size(), 1u);
  EXPECT_EQ((*t)[0].spans.size(), 40u);
  auto missing = Fetch(*source, "abc");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto hits = Search(*source, Query());
  ASSERT_TRUE(hits.ok()) << hits.error().message;
  ASSERT_EQ(hits->size(), 1u);
  const auto got = server.received();
  EXPECT_EQ(got.back().target.rfind("/api/v3/traces?query.service_name=frontend&", 0), 0u);
  EXPECT_EQ(source->kind(), "jaeger");
}

TEST_F(TraceSourcesTest, JaegerV1FetchesAndSearchesWithTheErrorTag) {
  FakeBackend server([](const ReceivedRequest& r) {
    if (r.target == "/api/traces/4766f1209f70a5e2e55417fc296fd101") {
      return FakeReply::Json("{\"data\":[" + Fixture("jaeger-v1/ui_trace_petclinic_normal.json") +
                             "],\"total\":0,\"limit\":0,\"offset\":0,\"errors\":null}");
    }
    return FakeReply::Json(Fixture("jaeger-v1/api_traces_response_otlp2jaeger-out.json"));
  });
  auto c = Config("jaeger", server);
  c.api = "v1";
  auto source = Make(c);
  auto t = Fetch(*source, "4766f1209f70a5e2e55417fc296fd101");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ((*t)[0].spans.size(), 5u);
  auto hits = Search(*source, Query());
  ASSERT_TRUE(hits.ok()) << hits.error().message;
  const auto got = server.received();
  EXPECT_NE(got.back().target.find("tags=%7B%22error%22%3A%22true%22%7D"), std::string::npos);
}

TEST_F(TraceSourcesTest, TempoFetchesV2WithTenantAndAuthAndSearchesIds) {
  FakeBackend server([](const ReceivedRequest& r) {
    if (r.Header("x-scope-orgid") != "team-a" || r.Header("authorization") != "Bearer tok") {
      return FakeReply::Json("no org id", 401);
    }
    if (r.target == "/api/v2/traces/4bf92f3577b34da6a3ce929d0e0e4736") {
      return FakeReply::Json(Fixture("tempo/from-docs/v2_trace_by_id_written.json"));
    }
    if (r.target.rfind("/api/search?", 0) == 0) {
      return FakeReply::Json(Fixture("tempo/from-docs/search_traceql_status_error_written.json"));
    }
    return FakeReply::Json("trace not found", 404);
  });
  auto c = Config("tempo", server);
  c.tenant = "team-a";
  c.auth.kind = http::Auth::Kind::kBearer;
  c.auth.token = Secret("tok", "test");
  auto source = Make(c);
  auto t = Fetch(*source, "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(t.ok()) << t.error().message;

  // Through the collector: search, then each id fetched; the one Tempo lost is explained.
  CollectRequest request;
  request.query = Query();
  request.query.service = "checkout";
  request.deadline = Clock::now() + 10s;
  CollectOptions options;
  options.not_found_retries = 0;
  auto result = Collect(source, request, options);
  ASSERT_EQ(result.traces.size(), 1u);
  ASSERT_EQ(result.audit.traces.size(), 2u);
  EXPECT_EQ(result.audit.traces[0].status, TraceOutcome::Status::kFetched);
  EXPECT_EQ(result.audit.traces[1].trace_id, "7c4f1a90b3e84d2f9a6c5e8017b3d264");
  EXPECT_EQ(result.audit.traces[1].status, TraceOutcome::Status::kNotFound);
  bool saw_search = false;
  for (const auto& r : server.received()) {
    if (r.target.rfind("/api/search?q=%7B%20resource.service.name%20%3D%20%22checkout%22", 0) == 0)
      saw_search = true;
  }
  EXPECT_TRUE(saw_search);
}

TEST_F(TraceSourcesTest, TempoFallsBackToTheV1ApiOnOlderVersions) {
  std::atomic<int> v2_requests{0};
  FakeBackend server([&](const ReceivedRequest& r) {
    if (r.target.rfind("/api/v2/", 0) == 0) {
      ++v2_requests;
      FakeReply reply = FakeReply::Json("404 page not found\n", 404);
      reply.content_type = "text/plain; charset=utf-8";
      return reply;
    }
    if (r.target == "/api/traces/3ba55609c3cde49649cd77d1f9dcd936") {
      return FakeReply::Json(Fixture("tempo/kiali_responseTrace.json"));
    }
    return FakeReply::Json("trace not found", 404);
  });
  auto source = Make(Config("tempo", server));
  for (int i = 0; i < 2; ++i) {
    auto t = Fetch(*source, "3ba55609c3cde49649cd77d1f9dcd936");
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ((*t)[0].spans.size(), 8u);
  }
  EXPECT_EQ(v2_requests, 1);  // found out once, remembered
}

TEST_F(TraceSourcesTest, ZipkinFetchesAndSearches) {
  FakeBackend server([](const ReceivedRequest& r) {
    if (r.target == "/api/v2/trace/0562809467078eab") {
      return FakeReply::Json(Fixture("zipkin-lens/messaging-kafka.json"));
    }
    if (r.target.rfind("/api/v2/traces?", 0) == 0) {
      return FakeReply::Json("[" + Fixture("zipkin-lens/messaging-kafka.json") + "," +
                             Fixture("zipkin-lens/yelp.json") + "]");
    }
    return FakeReply::Json("", 404);
  });
  auto source = Make(Config("zipkin", server));
  auto t = Fetch(*source, "0562809467078eab");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ((*t)[0].trace_id, Id("0562809467078eab"));
  auto slow = Search(*source, Query(TraceQuery::Order::kSlowestFirst));
  ASSERT_TRUE(slow.ok()) << slow.error().message;
  EXPECT_EQ(slow->size(), 2u);
  auto errors = Search(*source, Query());
  ASSERT_TRUE(errors.ok());
  EXPECT_EQ(errors->size(), 1u);
}

// ---- bad answers become clear errors ----

struct BadAnswer {
  const char* name;
  std::function<FakeReply()> reply;
  ErrorCode code;
  const char* message_part;
  ErrorKind kind;
};

TEST_F(TraceSourcesTest, BadAnswersBecomeClearReasons) {
  const std::string hotrod = Fixture("jaeger-v3/getTrace-response_hotrod.json");
  const std::vector<BadAnswer> cases = {
      {"html error page",
       [] {
         FakeReply r = FakeReply::Json(
             "<html><head><title>Grafana - Sign in</title></head><body>...</body></html>");
         r.content_type = "text/html; charset=UTF-8";
         return r;
       },
       ErrorCode::kInvalidInput, "an HTML page", ErrorKind::kContentType},
      {"truncated json", [hotrod] { return FakeReply::Json(hotrod.substr(0, hotrod.size() / 3)); },
       ErrorCode::kInvalidInput, "not a readable trace", ErrorKind::kBadBody},
      {"wrong content type",
       [hotrod] {
         FakeReply r = FakeReply::Json(hotrod);
         r.content_type = "application/octet-stream";
         return r;
       },
       ErrorCode::kInvalidInput, "Content-Type application/octet-stream", ErrorKind::kContentType},
      {"oversized body", [] { return FakeReply::Of(FakeReply::Action::kHugeBody); },
       ErrorCode::kInvalidInput, "larger than 1048576 bytes", ErrorKind::kTooLarge},
      {"accept then silence", [] { return FakeReply::Of(FakeReply::Action::kSilence); },
       ErrorCode::kTimeout, "timed out", ErrorKind::kTimeout},
      {"proxy 502",
       [] {
         FakeReply r = FakeReply::Json("<html><title>502 Bad Gateway</title></html>", 502);
         r.content_type = "text/html";
         return r;
       },
       ErrorCode::kUnavailable, "HTTP 502 after 2 attempts: 502 Bad Gateway", ErrorKind::kHttp5xx},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeBackend server([&](const ReceivedRequest&) { return c.reply(); });
    auto config = Config("jaeger", server);
    config.name = std::string("jaeger-") + c.name;
    config.max_response_bytes = 1 << 20;
    config.request_timeout = 200ms;
    config.retry.max_attempts = 2;
    auto source = Make(config);
    const auto start = Clock::now();
    auto t = Fetch(*source, "2ea75461946a7dd10f2c15ab36a076cb", 5s);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, c.code) << t.error().message;
    EXPECT_NE(t.error().message.find(c.message_part), std::string::npos) << t.error().message;
    EXPECT_LT(Clock::now() - start, 5s);
    EXPECT_GE(metrics_.Get(config.name).Errors(c.kind), 1u);
  }
}

// ---- late traces, storms, cache ----

TEST_F(TraceSourcesTest, ALateTraceIsFoundOnRetry) {
  std::atomic<int> n{0};
  FakeBackend server([&](const ReceivedRequest&) {
    if (++n <= 2) {
      return FakeReply::Json("{\"error\":{\"httpCode\":404,\"message\":\"trace not found\"}}", 404);
    }
    return FakeReply::Json(Fixture("jaeger-v3/getTrace-response_hotrod.json"));
  });
  auto source = Make(Config("jaeger", server));
  CollectRequest request;
  request.trace_ids = {"2ea75461946a7dd10f2c15ab36a076cb"};
  request.deadline = Clock::now() + 20s;
  CollectOptions options;
  options.not_found_delay = 20ms;
  auto result = Collect(source, request, options);
  ASSERT_EQ(result.traces.size(), 1u);
  EXPECT_EQ(result.audit.traces[0].attempts, 3);
  EXPECT_EQ(server.requests(), 3u);
}

TEST_F(TraceSourcesTest, AnAlertStormNeverPutsMoreThanTheLimitInFlight) {
  FakeBackend server([](const ReceivedRequest& r) {
    FakeReply reply;
    if (r.target.rfind("/api/search", 0) == 0) {
      reply = FakeReply::Json(Fixture("tempo/from-docs/search_traceql_status_error_written.json"));
    } else {
      reply = FakeReply::Json(Fixture("tempo/from-docs/v2_trace_by_id_written.json"));
    }
    reply.delay = 5ms;
    return reply;
  });
  auto c = Config("tempo", server);
  c.max_concurrency = 4;
  auto source = Make(c);
  constexpr int kJobs = 40;
  std::vector<std::promise<CollectResult>> done(kJobs);
  for (int i = 0; i < kJobs; ++i) {
    CollectRequest request;
    request.trace_ids = {"4bf92f3577b34da6a3ce929d0e0e4736"};
    request.query = Query();
    request.deadline = Clock::now() + 30s;
    CollectTraces(source, request, CollectOptions{}, scheduler_,
                  [&done, i](CollectResult r) { done[i].set_value(std::move(r)); });
  }
  for (auto& p : done) {
    auto f = p.get_future();
    ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
    EXPECT_EQ(f.get().traces.size(), 1u);
  }
  EXPECT_EQ(server.requests(), size_t{kJobs});  // no cache here: every job asked
  EXPECT_EQ(server.max_concurrent(), 4u);
}

TEST_F(TraceSourcesTest, TheCacheSendsOneRequestForManyConcurrentFetches) {
  std::promise<void> release;
  auto gate = release.get_future().share();
  FakeBackend server([gate](const ReceivedRequest&) {
    // Holds the answer until every fetch has been issued (capped, never a sleep).
    gate.wait_for(30s);
    return FakeReply::Json(Fixture("jaeger-v3/getTrace-response_hotrod.json"));
  });
  auto c = Config("jaeger", server);
  c.cache_ttl = 60s;
  auto source = Make(c);
  constexpr int kFetches = 25;
  std::vector<std::promise<Result<std::vector<routing::Trace>>>> results(kFetches);
  for (int i = 0; i < kFetches; ++i) {
    source->FetchTrace("2ea75461946a7dd10f2c15ab36a076cb", Clock::now() + 30s,
                       [&results, i](Result<std::vector<routing::Trace>> r) {
                         results[i].set_value(std::move(r));
                       });
  }
  release.set_value();
  for (auto& p : results) {
    auto f = p.get_future();
    ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*r)[0].spans.size(), 40u);
  }
  EXPECT_EQ(server.requests(), 1u);
  auto again = Fetch(*source, "2ea75461946a7dd10f2c15ab36a076cb");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(server.requests(), 1u);  // a cache hit
  auto* cache = dynamic_cast<CachingTraceSource*>(source.get());
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->stats().coalesced, size_t{kFetches - 1});
  EXPECT_EQ(cache->stats().hits, 1u);
}

TEST_F(TraceSourcesTest, AnInvalidTraceIdIsRefusedWithoutARequest) {
  FakeBackend server([](const ReceivedRequest&) { return FakeReply::Json("{}"); });
  auto source = Make(Config("zipkin", server));
  auto t = Fetch(*source, "../../admin");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(server.requests(), 0u);
}

}  // namespace
}  // namespace tracepager::integrations
