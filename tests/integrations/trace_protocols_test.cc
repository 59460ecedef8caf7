// The pure halves of the trace sources: request URLs and the reading of recorded answers
// (the real bodies under the shared fixtures), good and bad.
#include <gtest/gtest.h>

#include "integrations/jaeger/jaeger_protocol.h"
#include "integrations/tempo/tempo_protocol.h"
#include "integrations/trace_protocol.h"
#include "integrations/zipkin/zipkin_protocol.h"
#include "tests/support/process.h"

namespace tracepager::integrations {
namespace {

using testing::FixturePath;
using testing::ReadFile;

std::string Fixture(const std::string& name) { return ReadFile(FixturePath(name)); }

http::Response Answer(std::string body, int status = 200,
                      std::string content_type = "application/json") {
  http::Response r;
  r.status = status;
  if (!content_type.empty()) r.headers.push_back({"Content-Type", content_type});
  r.body = std::move(body);
  return r;
}

TraceQuery Query(TraceQuery::Order order) {
  TraceQuery q;
  q.service = "checkout";
  q.start_ns = 1764190000'000000000;  // 2025-11-26T20:46:40Z
  q.end_ns = 1764190600'500000000;
  q.order = order;
  q.limit = 20;
  return q;
}

std::string Id(std::string_view raw) { return *NormalizeTraceId(raw); }

// ---- shared helpers ----

TEST(TraceProtocol, FormatsTimesAndDurationsForTheApis) {
  EXPECT_EQ(Rfc3339Nano(1764190000'000000000), "2025-11-26T20:46:40.000000000Z");
  EXPECT_EQ(Rfc3339Nano(1764190600'500000001), "2025-11-26T20:56:40.500000001Z");
  EXPECT_EQ(GoDuration(2'000'000'000), "2s");
  EXPECT_EQ(GoDuration(250'000'000), "250ms");
  EXPECT_EQ(GoDuration(1'500'000), "1500us");
  EXPECT_EQ(GoDuration(7), "7ns");
}

TEST(TraceProtocol, SplitsAJsonStreamIntoValues) {
  auto parts = SplitJsonStream("{\"result\":{\"a\":\"}{\"}}\n{\"result\":[1,{}]}\n");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], "{\"result\":{\"a\":\"}{\"}}");
  EXPECT_EQ(parts[1], "{\"result\":[1,{}]}");
  auto cut = SplitJsonStream("{\"a\":1}{\"b\":");
  ASSERT_EQ(cut.size(), 2u);
  EXPECT_EQ(cut[1], "{\"b\":");
  EXPECT_EQ(SplitJsonStream("  ").size(), 0u);
}

TEST(TraceProtocol, AnswersThatAreNotJsonTracesBecomeClearErrors) {
  ErrorKind kind{};
  // A proxy's HTML error page on a 502.
  auto bad_gateway =
      JsonBody("jaeger trace 1",
               Answer("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
                      502, "text/html"),
               &kind);
  ASSERT_FALSE(bad_gateway.ok());
  EXPECT_EQ(bad_gateway.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(bad_gateway.error().message, "jaeger trace 1: HTTP 502: 502 Bad Gateway");
  EXPECT_EQ(kind, ErrorKind::kHttp5xx);

  // A login page served with 200 (an SSO proxy in front of the backend).
  auto login = JsonBody(
      "tempo trace 1",
      Answer("<!DOCTYPE html><html><title>Sign in</title></html>", 200, "text/html; charset=utf-8"),
      &kind);
  ASSERT_FALSE(login.ok());
  EXPECT_EQ(login.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(login.error().message.find("an HTML page"), std::string::npos);
  EXPECT_NE(login.error().message.find("Sign in"), std::string::npos);
  EXPECT_EQ(kind, ErrorKind::kContentType);

  // JSON under a wrong content type is refused too: the peer is not what we think it is.
  auto text = JsonBody("zipkin trace 1", Answer("[]", 200, "text/plain"), &kind);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(kind, ErrorKind::kContentType);

  auto empty = JsonBody("zipkin trace 1", Answer(""), &kind);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(kind, ErrorKind::kBadBody);

  auto refused = JsonBody("tempo trace 1", Answer("unauthorized", 401, "text/plain"), &kind);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(refused.error().message.find("credentials"), std::string::npos);

  auto ok = JsonBody("x", Answer("{}", 200, "application/json; charset=utf-8"), &kind);
  ASSERT_TRUE(ok.ok());
  auto no_type = JsonBody("x", Answer("{}", 200, ""), &kind);
  EXPECT_TRUE(no_type.ok());  // some proxies drop it; the reader still checks the body
}

TEST(TraceProtocol, TruncatedJsonIsABadBody) {
  const std::string full = Fixture("jaeger-v1/ui_trace_petclinic_normal.json");
  ErrorKind kind{};
  auto r = ReadTraceDocument("jaeger trace x", full.substr(0, full.size() / 2), &kind);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(kind, ErrorKind::kBadBody);
  EXPECT_EQ(r.error().message.rfind("jaeger trace x: the answer is not a readable trace: ", 0), 0u)
      << r.error().message;
}

// ---- Jaeger ----

TEST(JaegerProtocol, BuildsV1Requests) {
  JaegerProtocol v1("http://jaeger:16686/", JaegerProtocol::Api::kV1);
  EXPECT_EQ(v1.FetchRequest(Id("4bf92f3577b34da6a3ce929d0e0e4736"), false).url,
            "http://jaeger:16686/api/traces/4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(v1.SearchRequest(Query(TraceQuery::Order::kErrorsFirst)).url,
            "http://jaeger:16686/api/traces?service=checkout&start=1764190000000000"
            "&end=1764190600500000&limit=20&tags=%7B%22error%22%3A%22true%22%7D");
  auto slow = Query(TraceQuery::Order::kSlowestFirst);
  slow.min_duration_ns = 1'500'000'000;
  EXPECT_EQ(v1.SearchRequest(slow).url,
            "http://jaeger:16686/api/traces?service=checkout&start=1764190000000000"
            "&end=1764190600500000&limit=100&minDuration=1500ms");
}

TEST(JaegerProtocol, BuildsV3Requests) {
  JaegerProtocol v3("https://jaeger.example/jaeger", JaegerProtocol::Api::kV3, 50);
  EXPECT_EQ(v3.FetchRequest(Id("1"), false).url,
            "https://jaeger.example/jaeger/api/v3/traces/00000000000000000000000000000001");
  EXPECT_EQ(v3.SearchRequest(Query(TraceQuery::Order::kErrorsFirst)).url,
            "https://jaeger.example/jaeger/api/v3/traces?query.service_name=checkout"
            "&query.start_time_min=2025-11-26T20%3A46%3A40.000000000Z"
            "&query.start_time_max=2025-11-26T20%3A56%3A40.500000000Z&query.search_depth=50");
}

TEST(JaegerProtocol, ReadsV1TracesIncludingTheShortIdForm) {
  JaegerProtocol v1("http://j", JaegerProtocol::Api::kV1);
  ErrorKind kind{};
  auto t =
      v1.ParseFetch(Id("83a9efd15c1c98a977e0711cc93ee28b"),
                    Answer(Fixture("jaeger-v1/api_traces_response_otlp2jaeger-out.json")), &kind);
  ASSERT_TRUE(t.ok()) << t.error().message;
  // The recorded answer lists the same span id twice; the reader keeps the first and warns.
  EXPECT_EQ(t->spans.size(), 1u);
  EXPECT_FALSE(t->warnings.empty());
  EXPECT_EQ(t->spans[0].service, "telemetrygen");

  // Jaeger v1 drops the leading zero: asked as 32 digits, answered as 31.
  auto petclinic =
      v1.ParseFetch(Id("0df84e36b9e2ee3815d07f0867a5be1f"),
                    Answer(Fixture("jaeger-v1/ui_trace_petclinic_31char_traceid.json")), &kind);
  ASSERT_TRUE(petclinic.ok()) << petclinic.error().message;
  EXPECT_EQ(petclinic->spans.size(), 17u);

  auto other =
      v1.ParseFetch(Id("abc"), Answer(Fixture("jaeger-v1/ui_trace_petclinic_normal.json")), &kind);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("not the one asked for"), std::string::npos);
}

TEST(JaegerProtocol, V1NotFoundIsNotFound) {
  JaegerProtocol v1("http://j", JaegerProtocol::Api::kV1);
  ErrorKind kind{};
  auto t = v1.ParseFetch(
      Id("1"),
      Answer("{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{\"code\":404,"
             "\"msg\":\"trace not found\"}]}",
             404),
      &kind);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(kind, ErrorKind::kNotFound);
}

TEST(JaegerProtocol, ReadsV3TracesAndJoinsStreamedChunks) {
  JaegerProtocol v3("http://j", JaegerProtocol::Api::kV3);
  ErrorKind kind{};
  auto hotrod = v3.ParseFetch(Id("2ea75461946a7dd10f2c15ab36a076cb"),
                              Answer(Fixture("jaeger-v3/getTrace-response_hotrod.json")), &kind);
  ASSERT_TRUE(hotrod.ok()) << hotrod.error().message;
  EXPECT_EQ(hotrod->spans.size(), 40u);
  EXPECT_TRUE(HasFailedSpan(*hotrod));

  const std::string chunk = Fixture("jaeger-v3/apiv3_snapshot_GetTrace.json");
  std::string second = chunk;
  second.replace(second.find("0000000000000002"), 16, "0000000000000003");
  auto joined = v3.ParseFetch(Id("1"), Answer(chunk + "\n" + second + "\n"), &kind);
  ASSERT_TRUE(joined.ok()) << joined.error().message;
  EXPECT_EQ(joined->spans.size(), 2u);

  auto missing = v3.ParseFetch(
      Id("1"), Answer("{\"error\":{\"httpCode\":404,\"message\":\"trace not found\"}}", 404),
      &kind);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(JaegerProtocol, V3SearchKeepsFailingTracesAndTreatsNoTracesFoundAsEmpty) {
  JaegerProtocol v3("http://j", JaegerProtocol::Api::kV3);
  ErrorKind kind{};
  auto hits = v3.ParseSearch(Query(TraceQuery::Order::kErrorsFirst),
                             Answer(Fixture("jaeger-v3/apiv3_snapshot_FindTraces.json")), &kind);
  ASSERT_TRUE(hits.ok()) << hits.error().message;
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].trace_id, Id("1"));
  ASSERT_TRUE((*hits)[0].trace.has_value());

  // v3 answers an empty search with 404 "No traces found": nothing matched, not a failure.
  auto none = v3.ParseSearch(
      Query(TraceQuery::Order::kErrorsFirst),
      Answer("{\"error\":{\"httpCode\":404,\"message\":\"No traces found\"}}", 404), &kind);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
}

TEST(JaegerProtocol, SlowestSearchSortsByDurationAndKeepsTheLimit) {
  JaegerProtocol v1("http://j", JaegerProtocol::Api::kV1);
  // Three recorded traces in one search answer.
  auto body = [](const std::string& name) { return Fixture(name); };
  const std::string answer = "{\"data\":[" + body("jaeger-v1/ui_trace_petclinic_normal.json") +
                             "," + body("jaeger-v1/ui_trace_petclinic_31char_traceid.json") + "," +
                             body("jaeger-v1/ui_trace_edgecases_ui_01.json") + "]}";
  auto q = Query(TraceQuery::Order::kSlowestFirst);
  q.limit = 2;
  ErrorKind kind{};
  auto hits = v1.ParseSearch(q, Answer(answer), &kind);
  ASSERT_TRUE(hits.ok()) << hits.error().message;
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_GE((*hits)[0].duration_ns, (*hits)[1].duration_ns);
  EXPECT_GT((*hits)[1].duration_ns, 0);
}

// ---- Tempo ----

TEST(TempoProtocol, BuildsRequestsWithTraceQlAndTenant) {
  TempoProtocol tempo("http://tempo:3200", "team-a");
  auto fetch = tempo.FetchRequest(Id("4bf92f3577b34da6a3ce929d0e0e4736"), false);
  EXPECT_EQ(fetch.url, "http://tempo:3200/api/v2/traces/4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tempo.FetchRequest(Id("1"), true).url,
            "http://tempo:3200/api/traces/00000000000000000000000000000001");
  auto has = [](const http::Request& r, const std::string& k, const std::string& v) {
    for (const auto& h : r.headers) {
      if (h.first == k && h.second == v) return true;
    }
    return false;
  };
  EXPECT_TRUE(has(fetch, "X-Scope-OrgID", "team-a"));
  EXPECT_TRUE(has(fetch, "Accept", "application/json"));

  EXPECT_EQ(TempoProtocol::TraceQl(Query(TraceQuery::Order::kErrorsFirst)),
            "{ resource.service.name = \"checkout\" && status = error }");
  auto weird = Query(TraceQuery::Order::kSlowestFirst);
  weird.service = "a\"b\\c";
  weird.min_duration_ns = 2'000'000'000;
  EXPECT_EQ(TempoProtocol::TraceQl(weird),
            "{ resource.service.name = \"a\\\"b\\\\c\" && duration >= 2s }");
  auto search = tempo.SearchRequest(Query(TraceQuery::Order::kErrorsFirst));
  EXPECT_EQ(search.url,
            "http://tempo:3200/api/search?q=%7B%20resource.service.name%20%3D%20%22checkout%22"
            "%20%26%26%20status%20%3D%20error%20%7D&start=1764190000&end=1764190601&limit=20");
  EXPECT_TRUE(has(search, "X-Scope-OrgID", "team-a"));
  TempoProtocol single("http://tempo:3200", "");
  for (const auto& h : single.FetchRequest(Id("1"), false).headers) {
    EXPECT_NE(h.first, "X-Scope-OrgID");
  }
}

TEST(TempoProtocol, ReadsV2AndV1TraceAnswers) {
  TempoProtocol tempo("http://t", "");
  ErrorKind kind{};
  auto v2 = tempo.ParseFetch(Id("4bf92f3577b34da6a3ce929d0e0e4736"),
                             Answer(Fixture("tempo/from-docs/v2_trace_by_id_written.json")), &kind);
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_TRUE(HasFailedSpan(*v2));
  auto v1 = tempo.ParseFetch(Id("3ba55609c3cde49649cd77d1f9dcd936"),
                             Answer(Fixture("tempo/kiali_responseTrace.json")), &kind);
  ASSERT_TRUE(v1.ok()) << v1.error().message;
  EXPECT_EQ(v1->spans.size(), 8u);
}

TEST(TempoProtocol, FallsBackOnlyWhenTheRouteIsMissing) {
  TempoProtocol tempo("http://t", "");
  EXPECT_TRUE(tempo.WantsFallback(Answer("404 page not found\n", 404, "text/plain")));
  EXPECT_FALSE(tempo.WantsFallback(Answer("trace not found", 404, "text/plain")));
  EXPECT_FALSE(tempo.WantsFallback(Answer("{}", 200)));
  TempoProtocol pinned("http://t", "", TempoProtocol::Api::kV2);
  EXPECT_FALSE(pinned.WantsFallback(Answer("404 page not found\n", 404, "text/plain")));
}

TEST(TempoProtocol, SearchAnswersIdsLeftPaddedWithoutTraces) {
  TempoProtocol tempo("http://t", "");
  ErrorKind kind{};
  auto hits = tempo.ParseSearch(Query(TraceQuery::Order::kErrorsFirst),
                                Answer(Fixture("tempo/kiali_responseAmbient.json")), &kind);
  ASSERT_TRUE(hits.ok()) << hits.error().message;
  ASSERT_FALSE(hits->empty());
  EXPECT_EQ((*hits)[0].trace_id, "02e299711ce47710289dc6640727404f");  // 31 digits in the answer
  EXPECT_FALSE((*hits)[0].trace.has_value());

  auto slow = tempo.ParseSearch(
      Query(TraceQuery::Order::kSlowestFirst),
      Answer(Fixture("tempo/from-docs/search_traceql_status_error_written.json")), &kind);
  ASSERT_TRUE(slow.ok()) << slow.error().message;
  ASSERT_EQ(slow->size(), 2u);
  EXPECT_EQ((*slow)[0].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");  // 180 ms before 95 ms
  EXPECT_EQ((*slow)[0].duration_ns, 180'000'000);

  auto q = Query(TraceQuery::Order::kErrorsFirst);
  q.limit = 1;
  auto one = tempo.ParseSearch(
      q, Answer(Fixture("tempo/from-docs/search_traceql_status_error_written.json")), &kind);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);

  auto empty = tempo.ParseSearch(q, Answer("{\"traces\":[],\"metrics\":{}}"), &kind);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  auto bad_ql =
      tempo.ParseSearch(q, Answer("invalid TraceQL query: parse error", 400, "text/plain"), &kind);
  ASSERT_FALSE(bad_ql.ok());
  EXPECT_NE(bad_ql.error().message.find("invalid TraceQL"), std::string::npos);

  auto truncated = tempo.ParseSearch(q, Answer("{\"traces\":[{\"traceID\":\"4b"), &kind);
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(kind, ErrorKind::kBadBody);

  auto deep = tempo.ParseSearch(q, Answer(std::string(100000, '[')), &kind);
  ASSERT_FALSE(deep.ok());  // and no stack overflow
}

// ---- Zipkin ----

TEST(ZipkinProtocol, BuildsRequestsInMillisecondsWithLowercaseService) {
  ZipkinProtocol zipkin("http://zipkin:9411");
  EXPECT_EQ(zipkin.FetchRequest(Id("ef86c83c0a05a6d6"), false).url,
            "http://zipkin:9411/api/v2/trace/ef86c83c0a05a6d6");
  EXPECT_EQ(zipkin.FetchRequest(Id("5aab74dbb904746bb33447baae403ed6"), false).url,
            "http://zipkin:9411/api/v2/trace/5aab74dbb904746bb33447baae403ed6");
  auto q = Query(TraceQuery::Order::kErrorsFirst);
  q.service = "Checkout";
  EXPECT_EQ(zipkin.SearchRequest(q).url,
            "http://zipkin:9411/api/v2/traces?serviceName=checkout&endTs=1764190600500"
            "&lookback=600500&limit=20&annotationQuery=error");
  auto slow = Query(TraceQuery::Order::kSlowestFirst);
  slow.min_duration_ns = 2'000'000'000;
  EXPECT_EQ(zipkin.SearchRequest(slow).url,
            "http://zipkin:9411/api/v2/traces?serviceName=checkout&endTs=1764190600500"
            "&lookback=600500&limit=100&minDuration=2000000");
}

TEST(ZipkinProtocol, ReadsTracesAndSearches) {
  ZipkinProtocol zipkin("http://z");
  ErrorKind kind{};
  auto t =
      zipkin.ParseFetch(Id("ef86c83c0a05a6d6"), Answer(Fixture("zipkin-lens/ascend.json")), &kind);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->trace_id, "0000000000000000ef86c83c0a05a6d6");

  const std::string answer = "[" + Fixture("zipkin-lens/yelp.json") + "," +
                             Fixture("zipkin-lens/messaging-kafka.json") + "," +
                             Fixture("zipkin-lens/ascend.json") + "]";
  auto errors = zipkin.ParseSearch(Query(TraceQuery::Order::kErrorsFirst), Answer(answer), &kind);
  ASSERT_TRUE(errors.ok()) << errors.error().message;
  ASSERT_EQ(errors->size(), 1u);  // only the kafka trace has error tags
  EXPECT_EQ((*errors)[0].trace_id, Id("0562809467078eab"));

  auto slow = zipkin.ParseSearch(Query(TraceQuery::Order::kSlowestFirst), Answer(answer), &kind);
  ASSERT_TRUE(slow.ok());
  ASSERT_EQ(slow->size(), 3u);
  EXPECT_GE((*slow)[0].duration_ns, (*slow)[1].duration_ns);
  EXPECT_GE((*slow)[1].duration_ns, (*slow)[2].duration_ns);

  auto none = zipkin.ParseSearch(Query(TraceQuery::Order::kErrorsFirst), Answer("[]\n"), &kind);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto missing = zipkin.ParseFetch(Id("1"), Answer("", 404, ""), &kind);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace tracepager::integrations
