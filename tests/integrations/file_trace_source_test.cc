#include "integrations/file/file_trace_source.h"

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace tracepager::integrations {
namespace {

using testing::FixturePath;
using testing::ReadFile;
using testing::TempDir;

constexpr const char* kHotrod = "2ea75461946a7dd10f2c15ab36a076cb";  // 40 spans, 3 redis errors
constexpr int64_t kHotrodStart = 1782036644630407050;
constexpr int64_t kHotrodEnd = 1782036645333015327;
constexpr const char* kYelp = "0000000000000000a03ee8fff1dcd9b9";  // no errors

Result<std::vector<routing::Trace>> Fetch(TraceSource& s, const std::string& id) {
  std::optional<Result<std::vector<routing::Trace>>> out;
  s.FetchTrace(id, TraceSource::Clock::now() + std::chrono::seconds(5),
               [&](Result<std::vector<routing::Trace>> r) { out.emplace(std::move(r)); });
  EXPECT_TRUE(out.has_value()) << "the file source answers synchronously";
  return std::move(*out);
}

std::vector<SearchHit> Search(TraceSource& s, const TraceQuery& q) {
  std::optional<Result<std::vector<SearchHit>>> out;
  s.SearchTraces(q, TraceSource::Clock::now() + std::chrono::seconds(5),
                 [&](Result<std::vector<SearchHit>> r) { out.emplace(std::move(r)); });
  EXPECT_TRUE(out.has_value() && out->ok());
  return out.has_value() && out->ok() ? std::move(**out) : std::vector<SearchHit>{};
}

std::shared_ptr<FileTraceSource> LoadOrDie(const std::string& dir) {
  Result<std::shared_ptr<FileTraceSource>> s = FileTraceSource::Load({dir, 64u << 20});
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? *s : nullptr;
}

TEST(FileTraceSource, IndexesEveryFormatAndFetchesById) {
  TempDir dir;
  dir.Write("hotrod.json", ReadFile(FixturePath("jaeger-v3/getTrace-response_hotrod.json")));
  dir.Write("yelp.json", ReadFile(FixturePath("zipkin-lens/yelp.json")));
  dir.Write("petclinic.json", ReadFile(FixturePath("jaeger-v1/ui_trace_petclinic_normal.json")));
  dir.Write("notes.txt", "not a trace");
  auto s = LoadOrDie(dir.path());
  EXPECT_EQ(s->size(), 3u);
  EXPECT_TRUE(s->warnings().empty());
  EXPECT_EQ(s->kind(), "file");

  Result<std::vector<routing::Trace>> t = Fetch(*s, "2EA75461946A7DD10F2C15AB36A076CB");
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->size(), 1u);
  EXPECT_EQ((*t)[0].trace_id, kHotrod);
  EXPECT_EQ((*t)[0].spans.size(), 40u);
  // A 16-digit id is padded like every backend's.
  EXPECT_TRUE(Fetch(*s, "a03ee8fff1dcd9b9").ok());

  Result<std::vector<routing::Trace>> missing = Fetch(*s, "00000000000000000000000000000001");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  Result<std::vector<routing::Trace>> bad = Fetch(*s, "not-a-trace-id");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidInput);
}

TEST(FileTraceSource, TheSameTraceInThreeFormatsIsIndexedOnce) {
  auto s = LoadOrDie(testing::SourcePath("etc/examples/traces"));
  EXPECT_EQ(s->size(), 1u);
  EXPECT_EQ(s->warnings().size(), 2u);  // the later files' copies, named
  EXPECT_TRUE(Fetch(*s, "5b8efff798038103d269b633813fc60c").ok());
}

TEST(FileTraceSource, BadFilesAreSkippedNotFatal) {
  TempDir dir;
  dir.Write("a-broken.json", "{\"resourceSpans\": [");
  dir.Write("b-hotrod.json", ReadFile(FixturePath("jaeger-v3/getTrace-response_hotrod.json")));
  auto s = LoadOrDie(dir.path());
  EXPECT_EQ(s->size(), 1u);
  ASSERT_EQ(s->warnings().size(), 1u);
  EXPECT_EQ(s->warnings()[0].rfind("a-broken.json: ", 0), 0u) << s->warnings()[0];
  std::shared_ptr<FileTraceSource> small;
  {
    Result<std::shared_ptr<FileTraceSource>> r = FileTraceSource::Load({dir.path(), 1024});
    ASSERT_TRUE(r.ok());
    small = *r;
  }
  EXPECT_EQ(small->size(), 0u);  // both files exceed 1 KiB
  EXPECT_NE(small->warnings()[1].find("max_file_bytes"), std::string::npos);
}

TEST(FileTraceSource, MissingDirectoryIsUnavailable) {
  Result<std::shared_ptr<FileTraceSource>> s = FileTraceSource::Load({"/nonexistent/traces", 1});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
}

TEST(FileTraceSource, ALateTraceIsFoundAfterItsFileAppears) {
  TempDir dir;
  auto s = LoadOrDie(dir.path());
  EXPECT_EQ(Fetch(*s, kHotrod).error().code, ErrorCode::kNotFound);
  dir.Write("late.json", ReadFile(FixturePath("jaeger-v3/getTrace-response_hotrod.json")));
  EXPECT_TRUE(Fetch(*s, kHotrod).ok());
  EXPECT_EQ(s->size(), 1u);
}

TEST(FileTraceSource, SearchFindsFailingTracesOfAServiceInTheWindow) {
  TempDir dir;
  dir.Write("hotrod.json", ReadFile(FixturePath("jaeger-v3/getTrace-response_hotrod.json")));
  dir.Write("yelp.json", ReadFile(FixturePath("zipkin-lens/yelp.json")));
  auto s = LoadOrDie(dir.path());
  TraceQuery q;
  q.service = "frontend";
  q.start_ns = kHotrodStart - 1'000'000'000;
  q.end_ns = kHotrodEnd + 1'000'000'000;
  std::vector<SearchHit> hits = Search(*s, q);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].trace_id, kHotrod);
  ASSERT_TRUE(hits[0].trace.has_value());
  EXPECT_EQ(hits[0].duration_ns, kHotrodEnd - kHotrodStart);

  // Outside the window, or another service: nothing.
  TraceQuery before = q;
  before.end_ns = kHotrodStart - 1;
  EXPECT_TRUE(Search(*s, before).empty());
  TraceQuery other = q;
  other.service = "payment";
  EXPECT_TRUE(Search(*s, other).empty());

  // yelp has no failed span: an error search skips it, a latency search finds it.
  TraceQuery yelp;
  yelp.service = "mobile_api";
  yelp.start_ns = 0;
  yelp.end_ns = 0;
  EXPECT_TRUE(Search(*s, yelp).empty());
  yelp.order = TraceQuery::Order::kSlowestFirst;
  std::vector<SearchHit> slow = Search(*s, yelp);
  ASSERT_EQ(slow.size(), 1u);
  EXPECT_EQ(slow[0].trace_id, kYelp);
  yelp.min_duration_ns = slow[0].duration_ns + 1;
  EXPECT_TRUE(Search(*s, yelp).empty());
}

TEST(FileTraceSource, SlowestFirstAndLimit) {
  TempDir dir;
  dir.Write("hotrod.json", ReadFile(FixturePath("jaeger-v3/getTrace-response_hotrod.json")));
  dir.Write("serial.json", ReadFile(FixturePath("jaeger-skills/n_plus_one_full_serial.json")));
  dir.Write("concurrent.json",
            ReadFile(FixturePath("jaeger-skills/n_plus_one_full_concurrent.json")));
  auto s = LoadOrDie(dir.path());
  TraceQuery q;
  q.service = "frontend";
  q.order = TraceQuery::Order::kSlowestFirst;
  std::vector<SearchHit> all = Search(*s, q);
  ASSERT_GE(all.size(), 2u);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GE(all[i - 1].duration_ns, all[i].duration_ns);
  q.limit = 1;
  std::vector<SearchHit> one = Search(*s, q);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].trace_id, all[0].trace_id);
}

TEST(FileTraceSource, LoadFilesIndexesExactlyTheNamedFilesOfAnyName) {
  // `route --alert` names its trace files; their names need not end in .json, a file that
  // cannot be read is a warning, and a file in the same directory that was not named is ignored.
  TempDir dir;
  std::string hotrod =
      dir.Write("hotrod.trace", ReadFile(FixturePath("jaeger-v3/getTrace-response_hotrod.json")));
  dir.Write("yelp.json", ReadFile(FixturePath("zipkin-lens/yelp.json")));
  std::shared_ptr<FileTraceSource> s =
      FileTraceSource::LoadFiles({hotrod, dir.path() + "/missing.json"});
  EXPECT_EQ(s->size(), 1u);
  ASSERT_EQ(s->warnings().size(), 1u);
  EXPECT_NE(s->warnings()[0].find("missing.json"), std::string::npos) << s->warnings()[0];
  EXPECT_TRUE(Fetch(*s, kHotrod).ok());
  Result<std::vector<routing::Trace>> yelp = Fetch(*s, kYelp);
  ASSERT_FALSE(yelp.ok());
  EXPECT_EQ(yelp.error().code, ErrorCode::kNotFound);
  EXPECT_NE(yelp.error().message.find("none of the 2 trace files"), std::string::npos)
      << yelp.error().message;
}

}  // namespace
}  // namespace tracepager::integrations
