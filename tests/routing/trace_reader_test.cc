// ReadTraces: what each format's reader maps, and what it does with hostile input. The real
// fixtures are covered by fixtures_test.cc.
#include "routing/trace_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string>

namespace tracepager::routing {
namespace {

using ::testing::HasSubstr;

std::string ReadData(const std::string& name) {
  std::ifstream in(std::string(TRACEPAGER_SOURCE_DIR) + "/tests/data/readers/" + name,
                   std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ReadResult MustRead(std::string_view json, const ReadLimits& limits = {}) {
  auto r = ReadTraces(json, limits);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : ReadResult{};
}

std::string MustFail(std::string_view json, const ReadLimits& limits = {},
                     TraceFormat format = TraceFormat::kAuto) {
  auto r = ReadTraces(json, limits, format);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return {};
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput) << r.error().message;
  return r.error().message;
}

const Span* Find(const Trace& t, uint64_t id) {
  for (const Span& s : t.spans) {
    if (s.span_id == id) return &s;
  }
  return nullptr;
}

const Span* FindOp(const Trace& t, std::string_view service, std::string_view op) {
  for (const Span& s : t.spans) {
    if (s.service != service || s.operation.size() != op.size()) continue;
    if (std::equal(op.begin(), op.end(), s.operation.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return &s;
    }
  }
  return nullptr;
}

bool AnyWarning(const Trace& t, std::string_view needle) {
  return std::any_of(t.warnings.begin(), t.warnings.end(),
                     [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

// ---- Jaeger v1 -----------------------------------------------------------------------------

std::string JaegerSpan(const std::string& id, const std::string& extra) {
  return R"({"traceID":"1f","spanID":")" + id + R"(","operationName":"op-)" + id +
         R"(","startTime":1700000000000000,"duration":10,)" + R"("processID":"p1")" +
         (extra.empty() ? "" : "," + extra) + "}";
}

std::string JaegerDoc(const std::string& spans) {
  return R"({"data":[{"traceID":"1f","spans":[)" + spans +
         R"(],"processes":{"p1":{"serviceName":"svc"}}}]})";
}

TEST(JaegerReader, MapsIdsTimesReferencesAndProcesses) {
  // processes after spans, a 31-digit trace id, an int64 given as a string.
  ReadResult r = MustRead(R"({"data":[
    {"traceID":"df84e36b9e2ee3815d07f0867a5be1f","spans":[
      {"traceID":"df84e36b9e2ee3815d07f0867a5be1f","spanID":"00000000000000aa","operationName":"GET /",
       "references":[],"startTime":1700000000000001,"duration":2500,"processID":"p2",
       "tags":[{"key":"span.kind","type":"string","value":"server"},
               {"key":"http.status_code","type":"int64","value":"503"},
               {"key":"temperature","type":"float64","value":72.5},
               {"key":"blob","type":"binary","value":"AAAwOQ=="}]},
      {"traceID":"df84e36b9e2ee3815d07f0867a5be1f","spanID":"bb","operationName":"SELECT",
       "references":[{"refType":"CHILD_OF","traceID":"00000000000000ff","spanID":"00000000000000ff"},
                     {"refType":"CHILD_OF","traceID":"df84e36b9e2ee3815d07f0867a5be1f","spanID":"00000000000000aa"},
                     {"refType":"FOLLOWS_FROM","traceID":"df84e36b9e2ee3815d07f0867a5be1f","spanID":"00000000000000aa"}],
       "startTime":1700000000000100,"duration":100,"processID":"p1",
       "tags":[{"key":"span.kind","type":"string","value":"client"},
               {"key":"db.type","type":"string","value":"postgresql"},
               {"key":"db.instance","type":"string","value":"orders"},
               {"key":"peer.hostname","type":"string","value":"pg-1"},
               {"key":"peer.service","type":"string","value":"postgres"}],
       "logs":[{"timestamp":1700000000000150,"fields":[
         {"key":"event","type":"string","value":"error"},
         {"key":"error.kind","type":"string","value":"SQLException"},
         {"key":"message","type":"string","value":"deadlock detected"}]},
         {"timestamp":1700000000000160,"fields":[{"key":"event","type":"string","value":"retry"}]}]}],
     "processes":{"p1":{"serviceName":"orders"},"p2":{"serviceName":"frontend"}}}]})");
  EXPECT_EQ(r.format, TraceFormat::kJaegerV1);
  ASSERT_EQ(r.traces.size(), 1u);
  const Trace& t = r.traces[0];
  EXPECT_EQ(t.trace_id, "0df84e36b9e2ee3815d07f0867a5be1f");
  ASSERT_EQ(t.spans.size(), 2u);

  const Span& root = t.spans[0];
  EXPECT_EQ(root.span_id, 0xaau);
  EXPECT_EQ(root.service, "frontend");
  EXPECT_EQ(root.kind, SpanKind::kServer);
  EXPECT_EQ(root.start_ns, 1700000000000001000);
  EXPECT_EQ(root.duration_ns, 2500000);
  EXPECT_EQ(root.http_status, 503);
  EXPECT_TRUE(root.failed);

  const Span& db = t.spans[1];
  EXPECT_EQ(db.span_id, 0xbbu);
  EXPECT_EQ(db.parent_id, 0xaau) << "first CHILD_OF into the same trace is the parent";
  ASSERT_EQ(db.refs.size(), 2u);
  EXPECT_EQ(db.refs[0].type, SpanRef::Type::kChildOf);
  EXPECT_EQ(db.refs[0].trace_id, "000000000000000000000000000000ff");
  EXPECT_EQ(db.refs[0].span_id, 0xffu);
  EXPECT_EQ(db.refs[1].type, SpanRef::Type::kFollowsFrom);
  EXPECT_EQ(db.service, "orders");
  EXPECT_EQ(db.db_system, "postgresql");
  EXPECT_EQ(db.db_name, "orders");
  EXPECT_EQ(db.server_address, "pg-1");
  EXPECT_EQ(db.peer_service, "postgres");
  ASSERT_EQ(db.exceptions.size(), 1u);
  EXPECT_EQ(db.exceptions[0].type, "SQLException");
  EXPECT_EQ(db.exceptions[0].message, "deadlock detected");
  EXPECT_EQ(db.exceptions[0].time_ns, 1700000000000150000);
  EXPECT_FALSE(db.failed) << "an error log alone does not fail a span";
  EXPECT_TRUE(t.warnings.empty());
}

TEST(JaegerReader, FollowsFromOnlyIsNotAParent) {
  ReadResult r = MustRead(JaegerDoc(
      JaegerSpan("01", "") + "," +
      JaegerSpan("02",
                 R"("references":[{"refType":"FOLLOWS_FROM","traceID":"1f","spanID":"01"}])")));
  const Span* consumer = Find(r.traces.at(0), 2);
  ASSERT_NE(consumer, nullptr);
  EXPECT_EQ(consumer->parent_id, 0u);
  ASSERT_EQ(consumer->refs.size(), 1u);
  EXPECT_EQ(consumer->refs[0].type, SpanRef::Type::kFollowsFrom);
  EXPECT_EQ(consumer->refs[0].span_id, 1u);
}

TEST(JaegerReader, LegacyParentSpanIdField) {
  ReadResult r = MustRead(JaegerDoc(JaegerSpan("01", "") + "," +
                                    JaegerSpan("02", R"("parentSpanID":"0000000000000001")")));
  EXPECT_EQ(Find(r.traces.at(0), 2)->parent_id, 1u);
}

TEST(JaegerReader, SeveralTracesInOrderOfAppearance) {
  ReadResult r = MustRead(R"({"data":[
    {"traceID":"2","spans":[{"traceID":"2","spanID":"1","startTime":1,"duration":1,"processID":"p"}],"processes":{"p":{"serviceName":"b"}}},
    {"traceID":"1","spans":[{"traceID":"1","spanID":"1","startTime":1,"duration":1,"processID":"p"}],"processes":{"p":{"serviceName":"a"}}}]})");
  ASSERT_EQ(r.traces.size(), 2u);
  EXPECT_EQ(r.traces[0].trace_id, "00000000000000000000000000000002");
  EXPECT_EQ(r.traces[0].spans[0].service, "b");
  EXPECT_EQ(r.traces[1].trace_id, "00000000000000000000000000000001");
}

TEST(JaegerReader, UnknownProcessIsWarnedAndUnnamed) {
  ReadResult r = MustRead(R"({"data":[{"traceID":"1","spans":[{"traceID":"1","spanID":"1",
      "startTime":1700000000000000,"duration":1,"processID":"p9"}],"processes":{}}]})");
  const Trace& t = r.traces.at(0);
  EXPECT_EQ(t.spans.at(0).service, "unknown_service");
  EXPECT_TRUE(AnyWarning(t, "processID \"p9\""));
}

TEST(JaegerReader, ErrorEnvelopeIsNotFound) {
  auto r = ReadTraces(R"({"data":null,"total":0,"errors":[{"code":404,"msg":"trace not found"}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message, HasSubstr("trace not found"));
}

TEST(JaegerReader, EmptyDataIsNoTraces) {
  EXPECT_TRUE(MustRead(R"({"data":[],"total":0})").traces.empty());
}

// ---- OTLP ----------------------------------------------------------------------------------

std::string OtlpDoc(const std::string& spans,
                    const std::string& wrapper_open = R"({"resourceSpans":)",
                    const std::string& wrapper_close = "}") {
  return wrapper_open +
         R"([{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},)"
         R"("scopeSpans":[{"scope":{"name":"s"},"spans":[)" +
         spans + "]}]}]" + wrapper_close;
}

std::string OtlpSpan(const std::string& id, const std::string& extra = "") {
  return R"({"traceId":"0AF7651916CD43DD8448EB211C80319C","spanId":")" + id +
         R"(","name":"op","startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000005000000")" +
         (extra.empty() ? "" : "," + extra) + "}";
}

TEST(OtlpReader, AllWrappersGiveTheSameTrace) {
  const std::string span = OtlpSpan("b7ad6b7169203331");
  const std::string docs[] = {
      OtlpDoc(span),
      OtlpDoc(span, R"({"batches":)"),
      OtlpDoc(span, R"({"status":"complete","trace":{"resourceSpans":)", "}}"),
      OtlpDoc(span, R"({"result":{"resourceSpans":)", "}}"),
  };
  for (const std::string& doc : docs) {
    SCOPED_TRACE(doc.substr(0, 40));
    ReadResult r = MustRead(doc);
    EXPECT_EQ(r.format, TraceFormat::kOtlp);
    ASSERT_EQ(r.traces.size(), 1u);
    EXPECT_EQ(r.traces[0].trace_id, "0af7651916cd43dd8448eb211c80319c");
    ASSERT_EQ(r.traces[0].spans.size(), 1u);
    EXPECT_EQ(r.traces[0].spans[0].span_id, 0xb7ad6b7169203331u);
    EXPECT_EQ(r.traces[0].spans[0].service, "api");
    EXPECT_EQ(r.traces[0].spans[0].duration_ns, 5000000);
  }
}

TEST(OtlpReader, InstrumentationLibrarySpansAndNumericTimes) {
  ReadResult r = MustRead(R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",
      "value":{"stringValue":"old"}}]},"instrumentationLibrarySpans":[{"instrumentationLibrary":{"name":"x"},
      "spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"n",
      "kind":"SPAN_KIND_CLIENT","startTimeUnixNano":1700000000000000000,"endTimeUnixNano":1700000000000000100,
      "status":{"code":"STATUS_CODE_ERROR","message":"bad"}}]}]}]})");
  const Span& s = r.traces.at(0).spans.at(0);
  EXPECT_EQ(s.service, "old");
  EXPECT_EQ(s.kind, SpanKind::kClient);
  EXPECT_EQ(s.duration_ns, 100);
  EXPECT_EQ(s.status, StatusCode::kError);
  EXPECT_EQ(s.failure_reason, "bad");
}

TEST(OtlpReader, Base64Ids) {
  // Tempo's /api/traces: protobuf-JSON base64 (the kiali fixture's ids).
  ReadResult r = MustRead(OtlpDoc(
      R"({"traceId":"O6VWCcPN5JZJzXfR+dzZNg==","spanId":"Sc130fnc2TY=","parentSpanId":"hHVrHasIVvo=",)"
      R"("name":"n","startTimeUnixNano":"1","endTimeUnixNano":"2"})"));
  const Trace& t = r.traces.at(0);
  EXPECT_EQ(t.trace_id, "3ba55609c3cde49649cd77d1f9dcd936");
  EXPECT_EQ(t.spans.at(0).span_id, 0x49cd77d1f9dcd936u);
  EXPECT_EQ(t.spans.at(0).missing_parent_id, 0x84756b1dab0856fau);
}

TEST(OtlpReader, NewSemconvNamesWinWhateverTheOrder) {
  const std::string old_first =
      R"("attributes":[{"key":"http.status_code","value":{"intValue":"200"}},)"
      R"({"key":"http.response.status_code","value":{"intValue":"503"}},)"
      R"({"key":"db.system","value":{"stringValue":"old"}},{"key":"db.system.name","value":{"stringValue":"new"}},)"
      R"({"key":"net.peer.name","value":{"stringValue":"old"}},{"key":"server.address","value":{"stringValue":"new"}},)"
      R"({"key":"messaging.destination","value":{"stringValue":"old"}},)"
      R"({"key":"messaging.destination.name","value":{"stringValue":"new"}}])";
  const std::string new_first =
      R"("attributes":[{"key":"http.response.status_code","value":{"intValue":503}},)"
      R"({"key":"http.status_code","value":{"intValue":"200"}},)"
      R"({"key":"db.system.name","value":{"stringValue":"new"}},{"key":"db.system","value":{"stringValue":"old"}},)"
      R"({"key":"server.address","value":{"stringValue":"new"}},{"key":"net.peer.name","value":{"stringValue":"old"}},)"
      R"({"key":"messaging.destination.name","value":{"stringValue":"new"}},)"
      R"({"key":"messaging.destination","value":{"stringValue":"old"}}])";
  for (const std::string& attrs : {old_first, new_first}) {
    ReadResult r = MustRead(OtlpDoc(OtlpSpan("b7ad6b7169203331", attrs)));
    const Span& s = r.traces.at(0).spans.at(0);
    EXPECT_EQ(s.http_status, 503);
    EXPECT_EQ(s.db_system, "new");
    EXPECT_EQ(s.server_address, "new");
    EXPECT_EQ(s.messaging_destination, "new");
  }
}

TEST(OtlpReader, ValueBeforeKeyAndResourceAfterSpans) {
  ReadResult r = MustRead(R"({"resourceSpans":[{"scopeSpans":[{"spans":[
      {"attributes":[{"value":{"stringValue":"payments"},"key":"peer.service"}],
       "spanId":"b7ad6b7169203331","traceId":"0af7651916cd43dd8448eb211c80319c","name":"n",
       "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000000000001"}]}],
      "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"late"}}]}}]})");
  const Span& s = r.traces.at(0).spans.at(0);
  EXPECT_EQ(s.peer_service, "payments");
  EXPECT_EQ(s.service, "late");
}

TEST(OtlpReader, ExceptionEventsLinksAndErrorAttribute) {
  ReadResult r = MustRead(OtlpDoc(OtlpSpan(
      "b7ad6b7169203331",
      R"("events":[{"attributes":[{"key":"exception.type","value":{"stringValue":"IOError"}},)"
      R"({"key":"exception.message","value":{"stringValue":"disk full"}}],"name":"exception",)"
      R"("timeUnixNano":"1700000000000000007"},{"name":"retry","timeUnixNano":"1"}],)"
      R"("links":[{"traceId":"fedcba9876543210fedcba9876543210","spanId":"fedcba9876543210"},)"
      R"({"spanId":"0000000000000001"}],)"
      R"("attributes":[{"key":"error","value":{"stringValue":"true"}},)"
      R"({"key":"nested","value":{"kvlistValue":{"values":[{"key":"error","value":{"boolValue":false}}]}}}])")));
  const Span& s = r.traces.at(0).spans.at(0);
  ASSERT_EQ(s.exceptions.size(), 1u);
  EXPECT_EQ(s.exceptions[0].type, "IOError");
  EXPECT_EQ(s.exceptions[0].message, "disk full");
  EXPECT_EQ(s.exceptions[0].time_ns, 1700000000000000007);
  ASSERT_EQ(s.refs.size(), 2u);
  EXPECT_EQ(s.refs[0].type, SpanRef::Type::kLink);
  EXPECT_EQ(s.refs[0].trace_id, "fedcba9876543210fedcba9876543210");
  EXPECT_EQ(s.refs[1].trace_id, "0af7651916cd43dd8448eb211c80319c") << "a link without traceId";
  EXPECT_TRUE(s.failed);
  EXPECT_EQ(s.failure_source, FailureSource::kErrorTag);
  EXPECT_EQ(s.failure_reason, "IOError: disk full");
}

TEST(OtlpReader, GroupsSpansByTraceId) {
  ReadResult r = MustRead(OtlpDoc(
      R"({"traceId":"00000000000000000000000000000002","spanId":"0000000000000001","startTimeUnixNano":"5"},)"
      R"({"traceId":"00000000000000000000000000000001","spanId":"0000000000000001","startTimeUnixNano":"5"},)"
      R"({"traceId":"00000000000000000000000000000002","spanId":"0000000000000002","parentSpanId":"0000000000000001","startTimeUnixNano":"5"})"));
  ASSERT_EQ(r.traces.size(), 2u);
  EXPECT_EQ(r.traces[0].trace_id, "00000000000000000000000000000002");
  EXPECT_EQ(r.traces[0].spans.size(), 2u);
  EXPECT_EQ(r.traces[1].spans.size(), 1u);
}

TEST(OtlpReader, EmptyResourceSpansIsNoTraces) {
  ReadResult r = MustRead(R"({"resourceSpans":[]})");
  EXPECT_EQ(r.format, TraceFormat::kOtlp);
  EXPECT_TRUE(r.traces.empty());
}

// ---- Zipkin v2 -----------------------------------------------------------------------------

TEST(ZipkinReader, SharedSpanIdBecomesClientServerEdge) {
  // skew.json's shape: serviceb's SERVER half reuses servicea's CLIENT id; serviceb's local
  // "async" span names that id as parent. Plus a client-side child that stays with the client.
  ReadResult r = MustRead(R"([
    {"traceId":"1e223ff1f80f1c69","parentId":"74280ae0c10d8062","id":"43210ae0c10d1234","name":"async",
     "timestamp":1470150004008762,"duration":65000,"localEndpoint":{"serviceName":"serviceb"}},
    {"traceId":"1e223ff1f80f1c69","parentId":"bf396325699c84bf","id":"74280ae0c10d8062","kind":"SERVER",
     "name":"post","timestamp":1470150004008761,"duration":93577,"localEndpoint":{"serviceName":"serviceb"},"shared":true},
    {"traceId":"1e223ff1f80f1c69","id":"bf396325699c84bf","kind":"SERVER","name":"get",
     "timestamp":1470150004071068,"duration":99411,"localEndpoint":{"serviceName":"servicea"}},
    {"traceId":"1e223ff1f80f1c69","parentId":"bf396325699c84bf","id":"74280ae0c10d8062","kind":"CLIENT",
     "name":"post","timestamp":1470150004074202,"duration":94539,"localEndpoint":{"serviceName":"servicea"}},
    {"traceId":"1e223ff1f80f1c69","parentId":"74280ae0c10d8062","id":"5555555555555555","name":"encode",
     "timestamp":1470150004074203,"duration":10,"localEndpoint":{"serviceName":"servicea"}}])");
  EXPECT_EQ(r.format, TraceFormat::kZipkinV2);
  const Trace& t = r.traces.at(0);
  EXPECT_EQ(t.trace_id, "00000000000000001e223ff1f80f1c69");
  ASSERT_EQ(t.spans.size(), 5u);
  const Span* client = FindOp(t, "servicea", "post");
  const Span* server = FindOp(t, "serviceb", "post");
  const Span* async = FindOp(t, "serviceb", "async");
  const Span* encode = FindOp(t, "servicea", "encode");
  ASSERT_TRUE(client && server && async && encode);
  EXPECT_EQ(client->span_id, 0x74280ae0c10d8062u);
  EXPECT_EQ(client->kind, SpanKind::kClient);
  EXPECT_NE(server->span_id, client->span_id);
  EXPECT_NE(server->span_id, 0u);
  EXPECT_EQ(server->parent_id, client->span_id);
  EXPECT_EQ(async->parent_id, server->span_id)
      << "serviceb's local work hangs under its server half";
  EXPECT_EQ(encode->parent_id, client->span_id) << "servicea's work stays under the client";
  EXPECT_TRUE(t.warnings.empty());
}

TEST(ZipkinReader, FragmentsMergeAndSeveralServerHalvesStaySeparate) {
  ReadResult r = MustRead(R"([[
    {"traceId":"14b60fd9ae504820","id":"0000000000000001","kind":"SERVER","name":"root","timestamp":1543549825600000,"duration":900000,"localEndpoint":{"serviceName":"gw"}},
    {"traceId":"14b60fd9ae504820","parentId":"0000000000000001","id":"a0dc23f22c4fee3f","name":"post","localEndpoint":{"serviceName":"platformapi","ipv4":"10.104.90.167","port":8140}},
    {"traceId":"14b60fd9ae504820","parentId":"0000000000000001","id":"a0dc23f22c4fee3f","kind":"SERVER","name":"post","timestamp":1543549825673008,"duration":558631,"localEndpoint":{"serviceName":"platformapi","ipv4":"10.104.90.167","port":8140},"tags":{"http.status_code":"502"},"shared":true},
    {"traceId":"14b60fd9ae504820","parentId":"0000000000000001","id":"a0dc23f22c4fee3f","kind":"CLIENT","name":"post /app-execute","timestamp":1543549825648375,"duration":583853,"localEndpoint":{"serviceName":"strongman"}},
    {"traceId":"14b60fd9ae504820","parentId":"0000000000000001","id":"cbab506b53f336fc","kind":"CLIENT","name":"send","timestamp":1543549826223236,"localEndpoint":{"serviceName":"bouncer"},"remoteEndpoint":{"serviceName":"pusher"}},
    {"traceId":"14b60fd9ae504820","parentId":"0000000000000001","id":"cbab506b53f336fc","kind":"SERVER","name":"receive","timestamp":1543549826258568,"localEndpoint":{"serviceName":"pusher","ipv4":"10.6.83.20"},"shared":true},
    {"traceId":"14b60fd9ae504820","parentId":"0000000000000001","id":"cbab506b53f336fc","kind":"SERVER","name":"receive","timestamp":1543549826257913,"localEndpoint":{"serviceName":"pusher","ipv4":"10.6.81.206"},"shared":true}
  ]])");
  const Trace& t = r.traces.at(0);
  ASSERT_EQ(t.spans.size(), 6u) << "the kind-less fragment merges into its SERVER piece";
  const Span* server = FindOp(t, "platformapi", "post");
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->kind, SpanKind::kServer);
  EXPECT_EQ(server->http_status, 502);
  EXPECT_EQ(server->parent_id, 0xa0dc23f22c4fee3fu);
  int receivers = 0;
  for (const Span& s : t.spans) {
    if (s.service != "pusher") continue;
    ++receivers;
    EXPECT_EQ(s.parent_id, 0xcbab506b53f336fcu);
    EXPECT_NE(s.span_id, 0xcbab506b53f336fcu);
  }
  EXPECT_EQ(receivers, 2);
  const Span* send = FindOp(t, "bouncer", "send");
  ASSERT_NE(send, nullptr);
  EXPECT_EQ(send->server_address, "pusher");
  EXPECT_EQ(send->duration_ns, 0) << "Zipkin allows a missing duration";
}

TEST(ZipkinReader, RemoteEndpointNamesTheUninstrumentedPeer) {
  ReadResult r = MustRead(R"([{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312",
      "kind":"CLIENT","name":"query","timestamp":1700000000000000,"duration":1000,
      "localEndpoint":{"serviceName":"orders"},"remoteEndpoint":{"serviceName":"mysql","port":3306},
      "tags":{"error":"timeout","peer.hostname":"db-7"}}])");
  const Span& s = r.traces.at(0).spans.at(0);
  EXPECT_EQ(r.traces[0].trace_id, "463ac35c9f6413ad48485a3953bb6124");
  EXPECT_EQ(s.server_address, "mysql");
  EXPECT_TRUE(s.failed);
  EXPECT_EQ(s.failure_reason, "timeout");
}

TEST(ZipkinReader, EmptyArrayIsNoTraces) { EXPECT_TRUE(MustRead("[]").traces.empty()); }

// ---- The same trace in three formats --------------------------------------------------------

std::string ReadSource(const std::string& rel) {
  std::ifstream in(std::string(TRACEPAGER_SOURCE_DIR) + "/" + rel, std::ios::binary);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The same trace written as Jaeger v1, OTLP and Zipkin v2 gives the same model: ours under
// tests/data/readers (Zipkin with B3 shared ids) and the example traces in etc/examples.
void ExpectSameModel(const std::string& stem, const std::string& trace_id, size_t spans) {
  SCOPED_TRACE(stem);
  ReadResult j = MustRead(ReadSource(stem + ".jaeger.json"));
  ReadResult o = MustRead(ReadSource(stem + ".otlp.json"));
  ReadResult z = MustRead(ReadSource(stem + ".zipkin.json"));
  EXPECT_EQ(j.format, TraceFormat::kJaegerV1);
  EXPECT_EQ(o.format, TraceFormat::kOtlp);
  EXPECT_EQ(z.format, TraceFormat::kZipkinV2);
  for (const ReadResult* r : {&j, &o, &z}) {
    ASSERT_EQ(r->traces.size(), 1u);
    EXPECT_EQ(r->traces[0].trace_id, trace_id);
    EXPECT_EQ(r->traces[0].spans.size(), spans);
    EXPECT_TRUE(r->traces[0].warnings.empty()) << r->traces[0].warnings.front();
  }
  // Compare by (service, operation): ids may differ in Zipkin, where server halves are joined.
  const Trace& ref = j.traces[0];
  for (const Trace* t : {&o.traces[0], &z.traces[0]}) {
    for (const Span& want : ref.spans) {
      SCOPED_TRACE(want.service + " " + want.operation);
      const Span* got = FindOp(*t, want.service, want.operation);
      ASSERT_NE(got, nullptr);
      EXPECT_EQ(got->kind, want.kind);
      EXPECT_EQ(got->start_ns, want.start_ns);
      EXPECT_EQ(got->duration_ns, want.duration_ns);
      EXPECT_EQ(got->failed, want.failed);
      EXPECT_EQ(got->caller_fault, want.caller_fault);
      EXPECT_EQ(got->http_status, want.http_status);
      EXPECT_EQ(got->grpc_code, want.grpc_code);
      EXPECT_EQ(got->db_system, want.db_system);
      EXPECT_EQ(got->db_name, want.db_name);
      const Span* want_parent = Find(ref, want.parent_id);
      const Span* got_parent = Find(*t, got->parent_id);
      ASSERT_EQ(want_parent == nullptr, got_parent == nullptr);
      if (want_parent != nullptr) {
        EXPECT_EQ(got_parent->service, want_parent->service);
        EXPECT_EQ(got_parent->kind, want_parent->kind);
      }
    }
  }
}

TEST(ThreeFormats, SameTraceSameModel) {
  ExpectSameModel("tests/data/readers/checkout_payment", "4bf92f3577b34da6a3ce929d0e0e4736", 6);
  ExpectSameModel("etc/examples/traces/checkout-payment-db", "5b8efff798038103d269b633813fc60c", 8);
  ReadResult j = MustRead(ReadData("checkout_payment.jaeger.json"));
  const Span* db = FindOp(j.traces.at(0), "payment", "INSERT payments");
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->failed);
  EXPECT_THAT(db->failure_reason, HasSubstr("connection refused"));
}

// ---- Hostile input -------------------------------------------------------------------------

TEST(HostileInput, InvalidJsonNamesTheByteOffset) {
  EXPECT_EQ(MustFail(R"({"resourceSpans":[{"resource":{]})"),
            "invalid JSON at byte 31: Missing a name for object member.");
  EXPECT_THAT(MustFail(R"([{"traceId":"1","id":"2",}])"), HasSubstr("invalid JSON at byte 25"));
  EXPECT_THAT(MustFail(""), HasSubstr("invalid JSON at byte 0"));
  EXPECT_THAT(MustFail("   "), HasSubstr("invalid JSON at byte 3"));
  EXPECT_THAT(MustFail(R"({"data":[{"traceID":"1","spans":[)"), HasSubstr("invalid JSON at byte"));
  EXPECT_THAT(MustFail("[] x"), HasSubstr("invalid JSON at byte 3"));
  EXPECT_THAT(MustFail(std::string("{\"resourceSpans\":[]}\0junk", 25)),
              HasSubstr("invalid JSON at byte 20: a NUL byte"));
}

TEST(HostileInput, NotATraceDocument) {
  EXPECT_THAT(MustFail("42"), HasSubstr("not a trace document: the document is a number"));
  EXPECT_THAT(MustFail(R"("text")"), HasSubstr("not a trace document"));
  EXPECT_THAT(MustFail("{}"), HasSubstr("not a trace document"));
  EXPECT_THAT(MustFail(R"({"foo":1,"bar":[]})"), HasSubstr(R"(keys: "foo", "bar")"));
  EXPECT_THAT(MustFail("[1,2]"), HasSubstr("not a trace document: an array of a numbers"));
  EXPECT_THAT(MustFail(R"([{"name":"x"}])"), HasSubstr("not a trace document"));
  EXPECT_THAT(MustFail(R"({"traces":[{"traceID":"1","rootServiceName":"a"}]})"),
              HasSubstr("Tempo search response"));
  auto v3_error = ReadTraces(R"({"error":{"httpCode":404,"message":"trace not found"}})");
  ASSERT_FALSE(v3_error.ok());
  EXPECT_EQ(v3_error.error().code, ErrorCode::kNotFound);
}

TEST(HostileInput, WrongShapesNameElementAndField) {
  EXPECT_EQ(MustFail(R"({"resourceSpans":{}})"),
            R"(otlp: "resourceSpans" is an object, expected an array)");
  EXPECT_EQ(MustFail(R"({"resourceSpans":[{"scopeSpans":[{"spans":{}}]}]})"),
            R"(otlp resourceSpans[0].scopeSpans[0]: "spans" is an object, expected an array)");
  EXPECT_EQ(MustFail(R"({"resourceSpans":[{"scopeSpans":[{"spans":[1]}]}]})"),
            "otlp resourceSpans[0].scopeSpans[0].spans[0] is a number, expected an object");
  EXPECT_EQ(
      MustFail(OtlpDoc(OtlpSpan("0000000000000001") + "," +
                       OtlpSpan("0000000000000002", R"("name":7)"))),
      R"(otlp resourceSpans[0].scopeSpans[0].spans[1]: "name" is a number, expected a string)");
  EXPECT_THAT(
      MustFail(OtlpDoc(R"({"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"01",)"
                       R"("startTimeUnixNano":"soon"})")),
      HasSubstr(R"(spans[0]: "startTimeUnixNano" is "soon", expected decimal nanoseconds)"));
  EXPECT_THAT(MustFail(OtlpDoc(OtlpSpan("0000000000000001", R"("status":"ERROR")"))),
              HasSubstr(R"("status" is a string, expected an object)"));
  EXPECT_EQ(MustFail(JaegerDoc(JaegerSpan("01", "") + R"(,{"traceID":"1f","spanID":7})")),
            R"(jaeger data[0].spans[1]: "spanID" is a number, expected a string)");
  EXPECT_EQ(MustFail(JaegerDoc(JaegerSpan("01", R"("tags":{"error":true})"))),
            R"(jaeger data[0].spans[0]: "tags" is an object, expected an array)");
  EXPECT_EQ(
      MustFail(
          JaegerDoc(JaegerSpan("01", R"("references":[{"refType":"CHILD_OF","spanID":"xyz"}])"))),
      R"(jaeger data[0].spans[0].references[0]: "spanID" is "xyz", expected 1 to 16 hex digits, not all zero)");
  EXPECT_EQ(MustFail(R"({"data":{}})"),
            R"(jaeger: "data" is an object, expected an array of traces)");
  EXPECT_EQ(MustFail(R"([{"traceId":"1","id":"2","parentId":7}])"),
            R"(zipkin span 0: "parentId" is a number, expected a 16-hex-digit string)");
  EXPECT_EQ(MustFail(R"([{"traceId":"1","id":"2"},"x"])"),
            "zipkin span 1 is a string, expected a span object");
  EXPECT_EQ(MustFail(R"([{"traceId":"1","id":"2","timestamp":{}}])"),
            R"(zipkin span 0: "timestamp" is an object, expected a number of microseconds)");
}

TEST(HostileInput, MissingIds) {
  EXPECT_EQ(MustFail(OtlpDoc(R"({"spanId":"0000000000000001"})")),
            R"(otlp resourceSpans[0].scopeSpans[0].spans[0]: "traceId" is missing)");
  EXPECT_EQ(MustFail(OtlpDoc(R"({"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":""})")),
            R"(otlp resourceSpans[0].scopeSpans[0].spans[0]: "spanId" is missing)");
  EXPECT_EQ(MustFail(OtlpDoc(
                R"({"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000000"})")),
            R"(otlp resourceSpans[0].scopeSpans[0].spans[0]: "spanId" is all zeros)");
  EXPECT_THAT(
      MustFail(OtlpDoc(R"({"traceId":"not-an-id!","spanId":"0000000000000001"})")),
      HasSubstr(R"("traceId" is "not-an-id!", expected 32 hex digits or base64 of 16 bytes)"));
  EXPECT_EQ(MustFail(R"({"data":[{"spans":[{"spanID":"1"}]}]})"),
            R"(jaeger data[0].spans[0]: "traceID" is missing)");
  EXPECT_EQ(MustFail(JaegerDoc(R"({"operationName":"x"})")),
            R"(jaeger data[0].spans[0]: "spanID" is missing)");
  EXPECT_EQ(MustFail(R"([{"traceId":"1","name":"x"}])"), R"(zipkin span 0: "id" is missing)");
  EXPECT_EQ(MustFail(R"([[{"id":"1"}]])"), R"(zipkin trace 0 span 0: "traceId" is missing)");
}

TEST(HostileInput, DuplicateSpanIdsKeepTheFirst) {
  for (const std::string& doc :
       {JaegerDoc(JaegerSpan("01", "") + "," + JaegerSpan("02", "") + "," + JaegerSpan("01", "")),
        OtlpDoc(OtlpSpan("0000000000000001", R"("name":"first")") + "," +
                OtlpSpan("0000000000000002") + "," +
                OtlpSpan("0000000000000001", R"("name":"second")"))}) {
    ReadResult r = MustRead(doc);
    const Trace& t = r.traces.at(0);
    ASSERT_EQ(t.spans.size(), 2u);
    EXPECT_EQ(t.spans[0].span_id, 1u);
    EXPECT_NE(t.spans[0].operation, "second");
    EXPECT_TRUE(AnyWarning(t, "duplicate span id")) << doc.substr(0, 20);
  }
}

TEST(HostileInput, ParentCyclesAreBrokenAtTheEarliestSpan) {
  // 1 -> 3 -> 2 -> 1 (each names the next as parent), plus a self-parent 4, plus a healthy 5.
  auto span = [](int id, int parent, int start) {
    return R"({"traceID":"1f","spanID":")" + std::to_string(id) + R"(","startTime":)" +
           std::to_string(1700000000000000 + start) +
           R"(,"duration":1,"processID":"p1","references":[)" +
           (parent ? R"({"refType":"CHILD_OF","traceID":"1f","spanID":")" + std::to_string(parent) +
                         R"("})"
                   : "") +
           "]}";
  };
  ReadResult r = MustRead(JaegerDoc(span(1, 3, 30) + "," + span(3, 2, 10) + "," + span(2, 1, 20) +
                                    "," + span(4, 4, 5) + "," + span(5, 1, 40)));
  const Trace& t = r.traces.at(0);
  ASSERT_EQ(t.spans.size(), 5u);
  EXPECT_EQ(Find(t, 3)->parent_id, 0u) << "the earliest span of the cycle becomes the root";
  EXPECT_EQ(Find(t, 2)->parent_id, 1u);
  EXPECT_EQ(Find(t, 1)->parent_id, 3u);
  EXPECT_EQ(Find(t, 4)->parent_id, 0u);
  EXPECT_EQ(Find(t, 5)->parent_id, 1u);
  int cycles = 0;
  for (const std::string& w : t.warnings) cycles += w.find("parent cycle") != std::string::npos;
  EXPECT_EQ(cycles, 2);
}

TEST(HostileInput, OrphansLoadAndNameTheMissingParent) {
  ReadResult r = MustRead(JaegerDoc(
      JaegerSpan("01", "") + "," +
      JaegerSpan(
          "02",
          R"("references":[{"refType":"CHILD_OF","traceID":"1f","spanID":"aaaaaaaaaaaaaaaa"}])")));
  const Trace& t = r.traces.at(0);
  const Span* orphan = Find(t, 2);
  ASSERT_NE(orphan, nullptr);
  EXPECT_EQ(orphan->parent_id, 0u);
  EXPECT_EQ(orphan->missing_parent_id, 0xaaaaaaaaaaaaaaaau);
  EXPECT_TRUE(AnyWarning(t, "parent aaaaaaaaaaaaaaaa is not in the trace"));
}

TEST(HostileInput, AbsurdTimesAreRepairedWithAWarning) {
  // Jaeger: a negative duration; a start in the year 3000 (beyond int64 nanoseconds).
  ReadResult j = MustRead(JaegerDoc(
      JaegerSpan("01", "") + "," +
      R"({"traceID":"1f","spanID":"02","startTime":1700000000000000,"duration":-5,"processID":"p1",)"
      R"("references":[{"refType":"CHILD_OF","traceID":"1f","spanID":"01"}]},)"
      R"({"traceID":"1f","spanID":"03","startTime":32503680000000000,"duration":10,"processID":"p1",)"
      R"("references":[{"refType":"CHILD_OF","traceID":"1f","spanID":"01"}]})"));
  const Trace& t = j.traces.at(0);
  EXPECT_EQ(Find(t, 2)->duration_ns, 0);
  EXPECT_TRUE(AnyWarning(t, "duration -5 us is negative or out of range; set to 0"));
  EXPECT_EQ(Find(t, 3)->start_ns, Find(t, 1)->start_ns) << "unknown start borrows the parent's";
  EXPECT_EQ(Find(t, 3)->duration_ns, 0);
  EXPECT_TRUE(AnyWarning(t, "start time 32503680000000000 us is out of range"));

  // Zipkin: a span without a timestamp keeps its duration and borrows its parent's start.
  ReadResult z = MustRead(R"([{"traceId":"1","id":"1","timestamp":1700000000000000,"duration":50},
      {"traceId":"1","id":"2","parentId":"1","duration":20}])");
  const Trace& zt = z.traces.at(0);
  EXPECT_EQ(Find(zt, 2)->start_ns, 1700000000000000000);
  EXPECT_EQ(Find(zt, 2)->duration_ns, 20000);
  EXPECT_TRUE(AnyWarning(zt, "no start time; timing unknown"));

  // OTLP: end before start; a year-3000 start in nanoseconds (overflows uint64 too).
  ReadResult o = MustRead(OtlpDoc(
      OtlpSpan("0000000000000001") + "," +
      R"({"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000002","parentSpanId":"0000000000000001",)"
      R"("startTimeUnixNano":"1700000000000000009","endTimeUnixNano":"1700000000000000001"},)"
      R"({"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000003","parentSpanId":"0000000000000001",)"
      R"("startTimeUnixNano":"32503680000000000000","endTimeUnixNano":"32503680000000000001"},)"
      R"({"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"0000000000000004","parentSpanId":"0000000000000001",)"
      R"("startTimeUnixNano":1e30})"));
  const Trace& ot = o.traces.at(0);
  EXPECT_EQ(Find(ot, 2)->start_ns, 1700000000000000009);
  EXPECT_EQ(Find(ot, 2)->duration_ns, 0);
  EXPECT_TRUE(AnyWarning(ot, "endTimeUnixNano is 8 ns before startTimeUnixNano"));
  EXPECT_EQ(Find(ot, 3)->start_ns, 1700000000000000000);
  EXPECT_TRUE(AnyWarning(ot, "startTimeUnixNano 32503680000000000000 is out of range"));
  EXPECT_EQ(Find(ot, 4)->start_ns, 1700000000000000000);
  for (const Span& s : ot.spans) {
    EXPECT_GE(s.duration_ns, 0);
    EXPECT_GE(s.end_ns(), s.start_ns);
  }
}

std::string Nested(size_t depth, char open, char close, const std::string& inner = "") {
  std::string s;
  s.reserve(depth * 6 + inner.size());
  for (size_t i = 0; i < depth; ++i)
    s += open == '{' ? std::string(R"({"a":)") : std::string(1, open);
  s += inner.empty() ? (open == '{' ? "1" : "") : inner;
  s.append(depth, close);
  return s;
}

TEST(HostileInput, DeepNestingIsRefusedWithoutRecursion) {
  EXPECT_THAT(MustFail(Nested(10000, '[', ']')), HasSubstr("JSON nesting deeper than 64 levels"));
  EXPECT_THAT(MustFail(Nested(10000, '{', '}')), HasSubstr("JSON nesting deeper than 64 levels"));
  // Deep inside an attribute value the streaming OTLP reader skips: still refused.
  std::string deep_attr =
      R"("attributes":[{"key":"x","value":{"kvlistValue":)" + Nested(10000, '{', '}') + "}}]";
  EXPECT_THAT(MustFail(OtlpDoc(OtlpSpan("0000000000000001", deep_attr))),
              HasSubstr("JSON nesting deeper than 64 levels at byte"));
  // A configured limit above the recursive parser's safe depth uses the iterative parser.
  ReadLimits deep;
  deep.max_depth = 100000;
  EXPECT_THAT(MustFail(Nested(10000, '[', ']'), deep),
              HasSubstr("zipkin trace 0 span 0 is an array"));
  EXPECT_THAT(MustFail(Nested(10000, '{', '}'), deep), HasSubstr("not a trace document"));
}

TEST(HostileInput, HugeDocumentIsRefusedWithoutTouchingIt) {
  // 200 MB of address space that is never backed by memory unless someone reads it.
  constexpr size_t kSize = 200u << 20;
  void* p = mmap(nullptr, kSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  std::string message = MustFail(std::string_view(static_cast<const char*>(p), kSize));
  getrusage(RUSAGE_SELF, &after);
  munmap(p, kSize);
  EXPECT_EQ(message,
            "the document is 209715200 bytes, more than the limit of 134217728 "
            "(ReadLimits::max_bytes)");
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 16 * 1024) << "KiB of peak RSS grew";
}

TEST(HostileInput, SpanCountLimit) {
  ReadLimits limits;
  limits.max_spans = 2;
  std::string three = OtlpSpan("0000000000000001") + "," + OtlpSpan("0000000000000002") + "," +
                      OtlpSpan("0000000000000003");
  EXPECT_THAT(MustFail(OtlpDoc(three), limits), HasSubstr("more than 2 spans"));
  EXPECT_THAT(MustFail(JaegerDoc(JaegerSpan("1", "") + "," + JaegerSpan("2", "") + "," +
                                 JaegerSpan("3", "")),
                       limits),
              HasSubstr("more than 2 spans"));
  EXPECT_THAT(
      MustFail(R"([{"traceId":"1","id":"1"},{"traceId":"1","id":"2"},{"traceId":"1","id":"3"}])",
               limits),
      HasSubstr("more than 2"));
}

TEST(HostileInput, ForcedFormatMustMatch) {
  const std::string jaeger = JaegerDoc(JaegerSpan("01", ""));
  EXPECT_TRUE(ReadTraces(jaeger, {}, TraceFormat::kJaegerV1).ok());
  EXPECT_THAT(MustFail(jaeger, {}, TraceFormat::kZipkinV2),
              HasSubstr("expected zipkin JSON, but the document looks like jaeger"));
  EXPECT_THAT(MustFail(jaeger, {}, TraceFormat::kOtlp), HasSubstr("expected otlp JSON"));
  EXPECT_TRUE(ReadTraces(OtlpDoc(OtlpSpan("0000000000000001")), {}, TraceFormat::kOtlp).ok());
}

TEST(HostileInput, EveryTruncationFailsCleanly) {
  // Cut a realistic document at every byte: each prefix is an error or (for a prefix that is
  // itself valid) a result, never a crash. ASan/UBSan builds make this a memory-safety check.
  for (const char* file : {"checkout_payment.jaeger.json", "checkout_payment.otlp.json",
                           "checkout_payment.zipkin.json"}) {
    const std::string doc = ReadData(file);
    for (size_t n = 0; n < doc.size(); n += 7) {
      auto r = ReadTraces(std::string_view(doc.data(), n));
      EXPECT_FALSE(r.ok()) << file << " cut at " << n;
    }
  }
}

}  // namespace
}  // namespace tracepager::routing
