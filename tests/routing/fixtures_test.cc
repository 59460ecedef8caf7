// Every trace document under the shared fixtures loads, with the expected shape; the search
// and summary responses that sit beside them are refused as "not a trace document".
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "routing/trace_reader.h"

namespace tracepager::routing {
namespace {

using ::testing::HasSubstr;

std::string FixturePath(const std::string& rel) {
  return std::string(TRACEPAGER_FIXTURES_DIR) + "/" + rel;
}

std::string ReadFixture(const std::string& rel) {
  std::ifstream in(FixturePath(rel), std::ios::binary);
  EXPECT_TRUE(in.good()) << rel;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TraceCase {
  const char* path;
  TraceFormat format;
  const char* trace_id;  // of the first (only) trace
  size_t spans;
  size_t failed;
  size_t caller_fault;
  const char* warning;  // a substring some warning must contain; nullptr: no warnings at all
};

const TraceCase kTraces[] = {
    {"jaeger-v1/anonymizer_spans_with_inline_process.json", TraceFormat::kJaegerV1,
     "00000000000000002be38093ead7a083", 2, 1, 0, "parent 492770a15935810f is not in the trace"},
    {"jaeger-v1/api_traces_response_otlp2jaeger-out.json", TraceFormat::kJaegerV1,
     "83a9efd15c1c98a977e0711cc93ee28b", 1, 0, 0, "duplicate span id"},
    {"jaeger-v1/edge-cases/multiple-orphans.legacy.json", TraceFormat::kJaegerV1,
     "f77950feed55c1ce91dd8e87896623a6", 5, 0, 0, "parent bbbbbbbbbbbbbbbb is not in the trace"},
    {"jaeger-v1/edge-cases/multiple-roots.legacy.json", TraceFormat::kJaegerV1,
     "f77950feed55c1ce91dd8e87896623a6", 2, 0, 0, nullptr},
    {"jaeger-v1/edge-cases/parent-cycle.legacy.json", TraceFormat::kJaegerV1,
     "f77950feed55c1ce91dd8e878966230d", 2, 0, 0, "parent cycle"},
    {"jaeger-v1/otlp2jaeger-in.json", TraceFormat::kOtlp, "83a9efd15c1c98a977e0711cc93ee28b", 1, 0,
     0, "duplicate span id"},
    {"jaeger-v1/ui_trace_edgecases_ui_01.json", TraceFormat::kJaegerV1,
     "00000000000000000000000000000001", 4, 0, 0, "duplicate span id"},
    {"jaeger-v1/ui_trace_petclinic_31char_traceid.json", TraceFormat::kJaegerV1,
     "0df84e36b9e2ee3815d07f0867a5be1f", 17, 0, 0, nullptr},
    {"jaeger-v1/ui_trace_petclinic_normal.json", TraceFormat::kJaegerV1,
     "4766f1209f70a5e2e55417fc296fd101", 5, 0, 0, nullptr},
    {"jaeger-v3/apiv3_snapshot_FindTraces.json", TraceFormat::kOtlp,
     "00000000000000000000000000000001", 1, 1, 0, "no startTimeUnixNano"},
    {"jaeger-v3/apiv3_snapshot_GetTrace.json", TraceFormat::kOtlp,
     "00000000000000000000000000000001", 1, 1, 0, "called unknown_service"},
    {"jaeger-v3/getTrace-response_hotrod.json", TraceFormat::kOtlp,
     "2ea75461946a7dd10f2c15ab36a076cb", 40, 3, 0, nullptr},
    {"jaeger-v3/v3-trace-local-2.21.0_wire_probe.json", TraceFormat::kOtlp,
     "0123456789abcdef0123456789abcdef", 3, 1, 0, nullptr},
    {"jaeger-skills/n_plus_one_full_concurrent.json", TraceFormat::kOtlp,
     "1a4e4a7b270e9f2a0f716e3ee115218a", 40, 3, 0, nullptr},
    {"jaeger-skills/n_plus_one_full_serial.json", TraceFormat::kOtlp,
     "fe65c5beefbe4e96119efbba3da07e99", 40, 3, 0, nullptr},
    {"jaeger-skills/n_plus_one_near_miss.json", TraceFormat::kOtlp,
     "66371dd0eafc70e48e4234803fe94d41", 12, 0, 0, nullptr},
    {"jaeger-skills/n_plus_one_positive.json", TraceFormat::kOtlp,
     "ea6db5d7b317ca1a5e2c4e0e7cea53ce", 16, 3, 0, nullptr},
    {"otlp/trace.json", TraceFormat::kOtlp, "5b8efff798038103d269b633813fc60c", 1, 0, 0,
     "parent eee19b7ec3c1b173 is not in the trace"},
    {"tempo/from-docs/v2_trace_by_id_written.json", TraceFormat::kOtlp,
     "4bf92f3577b34da6a3ce929d0e0e4736", 3, 3, 0, nullptr},
    {"tempo/kiali_responseTrace.json", TraceFormat::kOtlp, "3ba55609c3cde49649cd77d1f9dcd936", 8, 0,
     0, nullptr},
    {"tempo/tempopb_trace_v1_batches.json", TraceFormat::kOtlp, "5b8efff798038103d269b633813fc60c",
     1, 0, 0, "parent eee19b7ec3c1b173 is not in the trace"},
    {"zipkin-lens/ascend.json", TraceFormat::kZipkinV2, "0000000000000000ef86c83c0a05a6d6", 8, 0, 0,
     nullptr},
    {"zipkin-lens/envoy.json", TraceFormat::kZipkinV2, "0000000000000000978883983d506fa5", 1, 0, 0,
     "called unknown_service"},
    {"zipkin-lens/messaging-kafka.json", TraceFormat::kZipkinV2, "00000000000000000562809467078eab",
     28, 3, 0, nullptr},
    {"zipkin-lens/messaging.json", TraceFormat::kZipkinV2, "5aab74dbb904746bb33447baae403ed6", 4, 0,
     0, nullptr},
    {"zipkin-lens/messaging2.json", TraceFormat::kZipkinV2, "00000000000000000d1a94ebc9256244", 11,
     0, 0, "parent 0153a596db406c83 is not in the trace"},
    {"zipkin-lens/simple-db-p6.json", TraceFormat::kZipkinV2, "000000000000000019f84f102048e047", 5,
     0, 0, nullptr},
    {"zipkin-lens/skew.json", TraceFormat::kZipkinV2, "00000000000000001e223ff1f80f1c69", 4, 0, 0,
     nullptr},
    // 1041 reports: 84 kind-less pieces merge into their SERVER halves.
    {"zipkin-lens/smartthings-mobile-web-install.json", TraceFormat::kZipkinV2,
     "000000000000000014b60fd9ae504820", 957, 2, 2, nullptr},
    {"zipkin-lens/smartthings-oauth-authorization.json", TraceFormat::kZipkinV2,
     "00000000000000008ce82b2e9ed820ba", 175, 2, 2, nullptr},
    {"zipkin-lens/yelp.json", TraceFormat::kZipkinV2, "0000000000000000a03ee8fff1dcd9b9", 16, 0, 0,
     nullptr},
};

// Search and summary responses: real answers of trace backends, but not traces.
const char* const kNotTraces[] = {
    "jaeger-v3/apiv3_snapshot_FindTraceSummaries.json",
    "tempo/kiali_response.json",
    "tempo/kiali_responseAmbient.json",
    "tempo/from-docs/search_traceql_status_error_written.json",
};

// The one file that wraps two documents; FixturesTest.ParityCapture reads its members.
const char* const kWrapped[] = {"jaeger-v3/parser-parity-capture_v1_and_v3_same_trace.json"};

// Model invariants every reader promises, whatever the input.
void CheckInvariants(const Trace& t) {
  ASSERT_EQ(t.trace_id.size(), 32u);
  EXPECT_EQ(t.trace_id.find_first_not_of("0123456789abcdef"), std::string::npos) << t.trace_id;
  std::unordered_map<uint64_t, const Span*> by_id;
  for (const Span& s : t.spans) {
    EXPECT_NE(s.span_id, 0u);
    EXPECT_TRUE(by_id.emplace(s.span_id, &s).second) << "duplicate " << SpanIdHex(s.span_id);
    EXPECT_FALSE(s.service.empty());
    EXPECT_GE(s.duration_ns, 0);
    EXPECT_GE(s.end_ns(), s.start_ns);
    EXPECT_EQ(s.failed, s.failure_source != FailureSource::kNone);
    EXPECT_EQ(s.failed, !s.failure_reason.empty());
    if (s.caller_fault) {
      EXPECT_TRUE(s.failed);
    }
  }
  for (const Span& s : t.spans) {
    // Every parent exists, and following parents reaches a root.
    const Span* cur = &s;
    for (size_t hops = 0; cur->parent_id != 0; ++hops) {
      ASSERT_LE(hops, t.spans.size()) << "parent cycle through " << SpanIdHex(s.span_id);
      auto it = by_id.find(cur->parent_id);
      ASSERT_NE(it, by_id.end()) << "dangling parent of " << SpanIdHex(cur->span_id);
      cur = it->second;
    }
  }
}

class TraceFixtures : public testing::TestWithParam<TraceCase> {};

TEST_P(TraceFixtures, Loads) {
  const TraceCase& c = GetParam();
  auto r = ReadTraces(ReadFixture(c.path));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->format, c.format);
  ASSERT_EQ(r->traces.size(), 1u);
  const Trace& t = r->traces[0];
  EXPECT_EQ(t.trace_id, c.trace_id);
  EXPECT_EQ(t.spans.size(), c.spans);
  size_t failed = 0, caller_fault = 0;
  for (const Span& s : t.spans) {
    failed += s.failed;
    caller_fault += s.caller_fault;
  }
  EXPECT_EQ(failed, c.failed);
  EXPECT_EQ(caller_fault, c.caller_fault);
  if (c.warning == nullptr) {
    EXPECT_TRUE(t.warnings.empty()) << t.warnings.front();
  } else {
    EXPECT_THAT(t.warnings, testing::Contains(HasSubstr(c.warning)));
  }
  CheckInvariants(t);
}

std::string CaseName(const testing::TestParamInfo<TraceCase>& info) {
  std::string name;
  for (const char* p = info.param.path; *p; ++p) {
    name += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TraceFixtures, testing::ValuesIn(kTraces), CaseName);

TEST(FixturesTest, SearchResponsesAreNotTraces) {
  for (const char* path : kNotTraces) {
    SCOPED_TRACE(path);
    auto r = ReadTraces(ReadFixture(path));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
    EXPECT_THAT(r.error().message, HasSubstr("not a trace document"));
  }
}

// No trace fixture goes untested: every JSON file in the trace directories is in a table.
TEST(FixturesTest, EveryTraceFixtureIsCovered) {
  std::set<std::string> known;
  for (const TraceCase& c : kTraces) known.insert(c.path);
  for (const char* p : kNotTraces) known.insert(p);
  for (const char* p : kWrapped) known.insert(p);
  std::vector<std::string> dirs = {"jaeger-v1", "jaeger-v3", "jaeger-skills",
                                   "otlp",      "tempo",     "zipkin-lens"};
  size_t seen = 0;
  while (!dirs.empty()) {
    std::string dir = dirs.back();
    dirs.pop_back();
    DIR* d = opendir(FixturePath(dir).c_str());
    ASSERT_NE(d, nullptr) << dir;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string rel = dir + "/" + name;
      struct stat st {};
      ASSERT_EQ(stat(FixturePath(rel).c_str(), &st), 0);
      if (S_ISDIR(st.st_mode)) {
        dirs.push_back(rel);
        continue;
      }
      if (name.size() < 5 || name.substr(name.size() - 5) != ".json") continue;
      if (name.find(".manifest.") != std::string::npos) continue;  // labels, not traces
      ++seen;
      EXPECT_TRUE(known.count(rel)) << rel << " is not in a fixture table";
    }
    closedir(d);
  }
  EXPECT_EQ(seen, known.size());
}

std::string MemberJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  v.Accept(writer);
  return std::string(buf.GetString(), buf.GetSize());
}

// The same trace from Jaeger's v1 API and its v3 API gives the same model.
TEST(FixturesTest, ParityCaptureV1AndV3Agree) {
  rapidjson::Document doc;
  doc.Parse(ReadFixture(kWrapped[0]).c_str());
  ASSERT_FALSE(doc.HasParseError());
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("legacy") && doc.HasMember("v3"));
  auto legacy = ReadTraces(MemberJson(doc["legacy"]));
  auto v3 = ReadTraces(MemberJson(doc["v3"]));
  ASSERT_TRUE(legacy.ok()) << legacy.error().message;
  ASSERT_TRUE(v3.ok()) << v3.error().message;
  EXPECT_EQ(legacy->format, TraceFormat::kJaegerV1);
  EXPECT_EQ(v3->format, TraceFormat::kOtlp);
  ASSERT_EQ(legacy->traces.size(), 1u);
  ASSERT_EQ(v3->traces.size(), 1u);
  const Trace& a = legacy->traces[0];
  const Trace& b = v3->traces[0];
  EXPECT_EQ(a.trace_id, "f77950feed55c1ce91dd8e8789000001");
  EXPECT_EQ(a.trace_id, b.trace_id);
  ASSERT_EQ(a.spans.size(), 2u);
  ASSERT_EQ(b.spans.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(a.spans[i].span_id, b.spans[i].span_id);
    EXPECT_EQ(a.spans[i].parent_id, b.spans[i].parent_id);
    EXPECT_EQ(a.spans[i].service, b.spans[i].service);
    EXPECT_EQ(a.spans[i].operation, b.spans[i].operation);
    EXPECT_EQ(a.spans[i].start_ns, b.spans[i].start_ns);
    EXPECT_EQ(a.spans[i].duration_ns, b.spans[i].duration_ns);
    EXPECT_EQ(a.spans[i].failed, b.spans[i].failed);
  }
  // The v1 `error` tag (string "true") survives as a plain v3 attribute, status {}.
  EXPECT_TRUE(a.spans[0].failed);
  EXPECT_EQ(a.spans[0].failure_source, FailureSource::kErrorTag);
  EXPECT_EQ(a.spans[0].kind, SpanKind::kServer);
  EXPECT_EQ(b.spans[0].kind, SpanKind::kServer);
}

// ---- Fixture details the tables above do not show ----

Trace LoadOne(const std::string& rel) {
  auto r = ReadTraces(ReadFixture(rel));
  EXPECT_TRUE(r.ok()) << rel;
  if (!r.ok() || r->traces.empty()) return {};
  return std::move(r->traces[0]);
}

TEST(FixturesTest, HotrodRedisErrors) {
  Trace t = LoadOne("jaeger-v3/getTrace-response_hotrod.json");
  std::set<std::string> services;
  for (const Span& s : t.spans) {
    services.insert(s.service);
    if (!s.failed) continue;
    EXPECT_EQ(s.service, "redis-manual");
    EXPECT_EQ(s.failure_source, FailureSource::kOtlpStatus);
    EXPECT_EQ(s.failure_reason, "An error occurred");
  }
  EXPECT_EQ(services, (std::set<std::string>{"customer", "driver", "frontend", "mysql",
                                             "redis-manual", "route"}));
}

TEST(FixturesTest, WireProbeStatusesAndLinks) {
  Trace t = LoadOne("jaeger-v3/v3-trace-local-2.21.0_wire_probe.json");
  ASSERT_EQ(t.spans.size(), 3u);
  EXPECT_TRUE(t.spans[0].failed);
  EXPECT_EQ(t.spans[0].failure_reason, "probe error status");
  ASSERT_EQ(t.spans[0].refs.size(), 1u);
  EXPECT_EQ(t.spans[0].refs[0].type, SpanRef::Type::kLink);
  EXPECT_EQ(t.spans[0].refs[0].trace_id, "fedcba9876543210fedcba9876543210");
  EXPECT_EQ(t.spans[1].kind, SpanKind::kUnspecified);
  EXPECT_EQ(t.spans[2].status, StatusCode::kOk);
  EXPECT_EQ(t.spans[0].service, "lfx-wire-probe");
}

TEST(FixturesTest, TempoBase64AndStringEnums) {
  Trace t = LoadOne("tempo/kiali_responseTrace.json");
  ASSERT_FALSE(t.spans.empty());
  EXPECT_EQ(t.spans[0].span_id, 0x49cd77d1f9dcd936u);
  EXPECT_EQ(t.spans[0].kind, SpanKind::kClient);
  EXPECT_EQ(t.spans[0].http_status, 200) << "http.status_code as a stringValue";
  Trace v2 = LoadOne("tempo/from-docs/v2_trace_by_id_written.json");
  ASSERT_EQ(v2.spans.size(), 3u);
  EXPECT_EQ(v2.spans[2].service, "payment");
  EXPECT_EQ(v2.spans[2].failure_reason, "gRPC INTERNAL: card processor unavailable");
}

TEST(FixturesTest, JaegerUiEdgeCases) {
  Trace t = LoadOne("jaeger-v1/ui_trace_edgecases_ui_01.json");
  ASSERT_EQ(t.spans.size(), 4u);
  EXPECT_EQ(t.spans[0].operation, "test-general-conversion") << "the first span with an id wins";
  const Span& ref_test = t.spans[2];
  EXPECT_EQ(ref_test.operation, "reference-test");
  EXPECT_EQ(ref_test.parent_id, 2u) << "the CHILD_OF into trace ff is not the parent";
  ASSERT_EQ(ref_test.refs.size(), 2u);
  EXPECT_EQ(ref_test.refs[0].trace_id, "000000000000000000000000000000ff");
}

TEST(FixturesTest, ParentCycleLeavesOneRoot) {
  Trace t = LoadOne("jaeger-v1/edge-cases/parent-cycle.legacy.json");
  size_t roots =
      std::count_if(t.spans.begin(), t.spans.end(), [](const Span& s) { return s.parent_id == 0; });
  EXPECT_EQ(roots, 1u);
}

TEST(FixturesTest, SmartThingsRefusedCallsAreCallerFault) {
  for (const char* path : {"zipkin-lens/smartthings-mobile-web-install.json",
                           "zipkin-lens/smartthings-oauth-authorization.json"}) {
    Trace t = LoadOne(path);
    for (const Span& s : t.spans) {
      if (!s.failed) continue;
      EXPECT_TRUE(s.caller_fault) << path;
      EXPECT_THAT(s.failure_reason, testing::AnyOf("HTTP 404", "HTTP 401"));
    }
  }
}

TEST(FixturesTest, KafkaEmptyErrorTagFails) {
  Trace t = LoadOne("zipkin-lens/messaging-kafka.json");
  size_t empty_tag = 0;
  for (const Span& s : t.spans) {
    if (s.failed && s.error_tag_value.empty()) ++empty_tag;
  }
  EXPECT_EQ(empty_tag, 1u);
}

}  // namespace
}  // namespace tracepager::routing
