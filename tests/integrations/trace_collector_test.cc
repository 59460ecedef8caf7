// CollectTraces and CachingTraceSource against a scripted source and a manual clock: no I/O,
// no sleeps.
#include "integrations/trace_collector.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <mutex>
#include <optional>

#include "integrations/scheduler.h"
#include "integrations/trace_cache.h"

namespace tracepager::integrations {
namespace {

using namespace std::chrono_literals;
using Status = TraceOutcome::Status;

routing::Trace MakeTrace(const std::string& id, int64_t duration_ns = 1000) {
  routing::Trace t;
  t.trace_id = *NormalizeTraceId(id);
  routing::Span s;
  s.span_id = 1;
  s.service = "checkout";
  s.start_ns = 1;
  s.duration_ns = duration_ns;
  t.spans.push_back(s);
  return t;
}

// A source whose answers the test scripts per id. Unscripted calls are held until the test
// answers them (Release*), which is how "a backend that never answers" looks.
class ScriptedSource : public TraceSource {
 public:
  std::string_view kind() const override { return "scripted"; }

  void FetchTrace(const std::string& trace_id, Clock::time_point, TracesCallback done) override {
    auto id = *NormalizeTraceId(trace_id);
    ++fetches[id];
    auto& script = answers[id];
    if (script.empty()) {
      held_fetches.push_back({id, std::move(done)});
      return;
    }
    auto answer = std::move(script.front());
    if (script.size() > 1) script.pop_front();  // the last answer repeats
    done(std::move(answer));
  }

  void SearchTraces(const TraceQuery& query, Clock::time_point, SearchCallback done) override {
    ++searches;
    last_query = query;
    if (!search_answer) {
      held_searches.push_back(std::move(done));
      return;
    }
    done(*search_answer);
  }

  void Script(const std::string& id, std::vector<Result<std::vector<routing::Trace>>> a) {
    auto& q = answers[*NormalizeTraceId(id)];
    for (auto& x : a) q.push_back(std::move(x));
  }

  std::map<std::string, std::deque<Result<std::vector<routing::Trace>>>> answers;
  std::map<std::string, int> fetches;
  std::vector<std::pair<std::string, TracesCallback>> held_fetches;
  std::optional<Result<std::vector<SearchHit>>> search_answer;
  std::vector<SearchCallback> held_searches;
  int searches = 0;
  TraceQuery last_query;
};

Result<std::vector<routing::Trace>> Found(const std::string& id) {
  return std::vector<routing::Trace>{MakeTrace(id)};
}
Result<std::vector<routing::Trace>> NotFound() { return Error::NotFound("HTTP 404"); }

class CollectorTest : public ::testing::Test {
 protected:
  CollectorTest() : source_(std::make_shared<ScriptedSource>()) {
    options_.not_found_delay = 2s;
    options_.not_found_retries = 3;
  }

  CollectRequest Request(std::vector<std::string> ids) {
    CollectRequest r;
    r.trace_ids = std::move(ids);
    r.query.service = "checkout";
    r.query.start_ns = 1764190000'000000000;
    r.query.end_ns = 1764190600'000000000;
    r.deadline = scheduler_.Now() + 10s;
    return r;
  }

  void Collect(CollectRequest request) {
    CollectTraces(source_, std::move(request), options_, scheduler_, [this](CollectResult r) {
      ++done_count_;
      result_ = std::move(r);
    });
  }

  std::shared_ptr<ScriptedSource> source_;
  ManualScheduler scheduler_;
  CollectOptions options_;
  int done_count_ = 0;
  std::optional<CollectResult> result_;
};

TEST_F(CollectorTest, CarriedIdsAreFetchedAndNoSearchRuns) {
  source_->Script("aa", {Found("aa")});
  source_->Script("bb", {Found("bb")});
  Collect(Request({"AA", "bb", "aa"}));  // the same id twice, in another case
  ASSERT_EQ(done_count_, 1);
  ASSERT_EQ(result_->traces.size(), 2u);
  EXPECT_EQ(result_->traces[0].trace_id, *NormalizeTraceId("aa"));
  EXPECT_EQ(source_->fetches[*NormalizeTraceId("aa")], 1);
  EXPECT_EQ(source_->searches, 0);
  const auto& audit = result_->audit;
  EXPECT_EQ(audit.source, "scripted");
  EXPECT_FALSE(audit.searched);
  ASSERT_EQ(audit.traces.size(), 2u);
  EXPECT_EQ(audit.traces[0].status, Status::kFetched);
  EXPECT_EQ(audit.traces[0].origin, TraceOutcome::Origin::kCarried);
  EXPECT_EQ(audit.traces[0].attempts, 1);
  EXPECT_EQ(scheduler_.pending(), 0u);  // the deadline timer was cancelled
}

// A synchronous source that answers while holding its own lock (the file source does on a
// refresh error): the collector's next call into it (the search) must not start inside that
// answer, or it would deadlock on the source's lock.
class LockedSyncSource : public TraceSource {
 public:
  std::string_view kind() const override { return "locked"; }
  void FetchTrace(const std::string&, Clock::time_point, TracesCallback done) override {
    std::lock_guard<std::mutex> lk(mu);
    ++fetches;
    done(Error::Unavailable("refresh failed"));
  }
  void SearchTraces(const TraceQuery&, Clock::time_point, SearchCallback done) override {
    std::unique_lock<std::mutex> lk(mu, std::try_to_lock);
    nested = !lk.owns_lock();  // a nested call finds the lock taken (try_lock: no deadlock)
    ++searches;
    done(std::vector<SearchHit>{});
  }
  std::mutex mu;
  int fetches = 0, searches = 0;
  bool nested = false;
};

TEST_F(CollectorTest, CallsIntoASynchronousSourceNeverNest) {
  auto source = std::make_shared<LockedSyncSource>();
  CollectTraces(source, Request({"aa", "bb"}), options_, scheduler_, [this](CollectResult r) {
    ++done_count_;
    result_ = std::move(r);
  });
  ASSERT_EQ(done_count_, 1);
  EXPECT_EQ(source->fetches, 2);
  EXPECT_EQ(source->searches, 1);
  EXPECT_FALSE(source->nested);
  EXPECT_TRUE(result_->audit.searched);
  ASSERT_EQ(result_->audit.traces.size(), 2u);
  EXPECT_EQ(result_->audit.traces[0].status, Status::kFailed);
}

TEST_F(CollectorTest, ALateTraceIsAskedAgainAfterTheDelay) {
  source_->Script("aa", {NotFound(), NotFound(), Found("aa")});
  Collect(Request({"aa"}));
  EXPECT_EQ(done_count_, 0);
  EXPECT_EQ(source_->fetches[*NormalizeTraceId("aa")], 1);
  scheduler_.Advance(1999ms);
  EXPECT_EQ(source_->fetches[*NormalizeTraceId("aa")], 1);  // not before the delay
  scheduler_.Advance(1ms);
  EXPECT_EQ(source_->fetches[*NormalizeTraceId("aa")], 2);
  scheduler_.Advance(2s);
  ASSERT_EQ(done_count_, 1);
  ASSERT_EQ(result_->traces.size(), 1u);
  EXPECT_EQ(result_->audit.traces[0].status, Status::kFetched);
  EXPECT_EQ(result_->audit.traces[0].attempts, 3);
  EXPECT_EQ(source_->searches, 0);
}

TEST_F(CollectorTest, NotFoundRetriesAreBoundedThenTheSearchTakesOver) {
  source_->Script("aa", {NotFound()});
  source_->search_answer = std::vector<SearchHit>{};
  options_.not_found_delay = 1s;
  Collect(Request({"aa"}));
  for (int i = 0; i < 10 && done_count_ == 0; ++i) scheduler_.Advance(1s);
  ASSERT_EQ(done_count_, 1);
  EXPECT_EQ(source_->fetches[*NormalizeTraceId("aa")], 4);  // the first and 3 retries
  const auto& o = result_->audit.traces[0];
  EXPECT_EQ(o.status, Status::kNotFound);
  EXPECT_NE(o.reason.find("still not found after 4 attempts"), std::string::npos) << o.reason;
  EXPECT_TRUE(result_->audit.searched);
  EXPECT_NE(result_->audit.search.find("no carried trace came back"), std::string::npos);
  EXPECT_TRUE(result_->traces.empty());
}

TEST_F(CollectorTest, NoRetryIsScheduledPastTheDeadline) {
  source_->Script("aa", {NotFound()});
  source_->search_answer = std::vector<SearchHit>{};
  auto request = Request({"aa"});
  request.deadline = scheduler_.Now() + 3s;  // room for one retry at 2 s, not a second at 4 s
  Collect(request);
  scheduler_.Advance(2s);
  ASSERT_EQ(done_count_, 1);
  EXPECT_EQ(source_->fetches[*NormalizeTraceId("aa")], 2);
  EXPECT_FALSE(result_->audit.deadline_reached);
}

TEST_F(CollectorTest, FailuresAndInvalidIdsAreRecordedWithTheirReason) {
  source_->Script("aa", {Error::Unavailable("jaeger trace aa: HTTP 503 after 3 attempts")});
  source_->Script("bb", {Found("bb")});
  Collect(Request({"not-a-trace-id", "aa", "bb"}));
  ASSERT_EQ(done_count_, 1);
  ASSERT_EQ(result_->traces.size(), 1u);
  const auto& t = result_->audit.traces;
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].status, Status::kInvalidId);
  EXPECT_EQ(t[0].trace_id, "not-a-trace-id");
  EXPECT_EQ(t[0].attempts, 0);
  EXPECT_EQ(t[1].status, Status::kFailed);
  EXPECT_EQ(t[1].reason, "jaeger trace aa: HTTP 503 after 3 attempts");
  EXPECT_EQ(t[2].status, Status::kFetched);
  EXPECT_EQ(source_->fetches.count("not-a-trace-id"), 0u);
}

TEST_F(CollectorTest, WithoutIdsTheSearchFindsTracesAndIdsToFetch) {
  SearchHit whole;
  whole.trace_id = *NormalizeTraceId("aa");
  whole.trace = MakeTrace("aa");
  SearchHit id_only;
  id_only.trace_id = *NormalizeTraceId("bb");
  source_->search_answer = std::vector<SearchHit>{whole, id_only};
  source_->Script("bb", {Found("bb")});
  auto request = Request({});
  request.query.order = TraceQuery::Order::kSlowestFirst;
  Collect(request);
  ASSERT_EQ(done_count_, 1);
  EXPECT_EQ(source_->last_query.order, TraceQuery::Order::kSlowestFirst);
  EXPECT_EQ(source_->last_query.limit, 20u);
  ASSERT_EQ(result_->traces.size(), 2u);
  EXPECT_TRUE(result_->audit.searched);
  EXPECT_EQ(result_->audit.search_hits, 2u);
  EXPECT_NE(result_->audit.search.find("slowest traces of service checkout"), std::string::npos);
  EXPECT_EQ(result_->audit.traces[1].origin, TraceOutcome::Origin::kSearch);
  EXPECT_EQ(source_->fetches[*NormalizeTraceId("aa")], 0);  // it came with the search
  EXPECT_EQ(source_->fetches[*NormalizeTraceId("bb")], 1);
}

TEST_F(CollectorTest, AFailedSearchIsRecorded) {
  source_->search_answer = Result<std::vector<SearchHit>>(Error::Timeout("tempo search: deadline"));
  Collect(Request({}));
  ASSERT_EQ(done_count_, 1);
  EXPECT_TRUE(result_->traces.empty());
  EXPECT_EQ(result_->audit.search_error, "tempo search: deadline");
}

TEST_F(CollectorTest, AtTheDeadlineTheJobGetsWhatCameBackAndLateAnswersAreIgnored) {
  source_->Script("aa", {Found("aa")});
  // "bb" is held: the backend never answers.
  Collect(Request({"aa", "bb"}));
  EXPECT_EQ(done_count_, 0);
  scheduler_.Advance(10s);
  ASSERT_EQ(done_count_, 1);
  ASSERT_EQ(result_->traces.size(), 1u);
  EXPECT_TRUE(result_->audit.deadline_reached);
  EXPECT_EQ(result_->audit.traces[1].status, Status::kDeadline);
  EXPECT_NE(result_->audit.traces[1].reason.find("deadline"), std::string::npos);
  ASSERT_EQ(source_->held_fetches.size(), 1u);
  source_->held_fetches[0].second(Found("bb"));  // too late
  EXPECT_EQ(done_count_, 1);
}

TEST_F(CollectorTest, APendingSearchAtTheDeadlineIsRecorded) {
  Collect(Request({}));  // the search is held
  scheduler_.Advance(10s);
  ASSERT_EQ(done_count_, 1);
  EXPECT_NE(result_->audit.search_error.find("deadline"), std::string::npos);
  ASSERT_EQ(source_->held_searches.size(), 1u);
  source_->held_searches[0](std::vector<SearchHit>{});
  EXPECT_EQ(done_count_, 1);
}

TEST_F(CollectorTest, AtMostNTracesAreAskedFor) {
  options_.max_traces = 3;
  std::vector<std::string> ids;
  for (int i = 1; i <= 5; ++i) {
    ids.push_back(std::to_string(i));
    source_->Script(std::to_string(i), {Found(std::to_string(i))});
  }
  Collect(Request(ids));
  ASSERT_EQ(done_count_, 1);
  EXPECT_EQ(result_->traces.size(), 3u);
  EXPECT_EQ(result_->audit.traces[3].status, Status::kSkipped);
  EXPECT_EQ(result_->audit.traces[4].status, Status::kSkipped);
  EXPECT_EQ(source_->fetches.size(), 3u);
}

TEST_F(CollectorTest, NothingToAskFinishesAtOnce) {
  auto request = Request({});
  request.query.service.clear();
  Collect(request);
  ASSERT_EQ(done_count_, 1);
  EXPECT_TRUE(result_->traces.empty());
  EXPECT_FALSE(result_->audit.searched);
}

// ---- cache ----

class CacheTest : public ::testing::Test {
 protected:
  CacheTest() : inner_(std::make_shared<ScriptedSource>()) {
    TraceCacheOptions o;
    o.ttl = 60s;
    o.max_entries = 2;
    o.now = [this] { return now_; };
    cache_ = std::make_unique<CachingTraceSource>(inner_, o);
  }
  Result<std::vector<routing::Trace>> Fetch(const std::string& id) {
    std::optional<Result<std::vector<routing::Trace>>> out;
    cache_->FetchTrace(id, now_ + 10s, [&](Result<std::vector<routing::Trace>> r) { out = r; });
    EXPECT_TRUE(out.has_value());
    return out ? *out : Result<std::vector<routing::Trace>>(Error::Internal("no answer"));
  }
  std::shared_ptr<ScriptedSource> inner_;
  std::unique_ptr<CachingTraceSource> cache_;
  TraceSource::Clock::time_point now_ = TraceSource::Clock::now();
};

TEST_F(CacheTest, AFetchedTraceIsServedFromTheCacheUntilItExpires) {
  inner_->Script("aa", {Found("aa")});
  ASSERT_TRUE(Fetch("aa").ok());
  ASSERT_TRUE(Fetch("AA").ok());
  EXPECT_EQ(inner_->fetches[*NormalizeTraceId("aa")], 1);
  EXPECT_EQ(cache_->stats().hits, 1u);
  now_ += 61s;
  ASSERT_TRUE(Fetch("aa").ok());
  EXPECT_EQ(inner_->fetches[*NormalizeTraceId("aa")], 2);
}

TEST_F(CacheTest, NotFoundIsNeverCached) {
  inner_->Script("aa", {NotFound(), Found("aa")});
  EXPECT_FALSE(Fetch("aa").ok());
  EXPECT_TRUE(Fetch("aa").ok());
  EXPECT_EQ(inner_->fetches[*NormalizeTraceId("aa")], 2);
}

TEST_F(CacheTest, TheOldestEntryIsEvictedBeyondTheLimit) {
  for (std::string id : {"a1", "a2", "a3"}) {
    inner_->Script(id, {Found(id)});
    ASSERT_TRUE(Fetch(id).ok());
    now_ += 1s;
  }
  EXPECT_EQ(cache_->size(), 2u);
  ASSERT_TRUE(Fetch("a1").ok());
  EXPECT_EQ(inner_->fetches[*NormalizeTraceId("a1")], 2);
  ASSERT_TRUE(Fetch("a3").ok());
  EXPECT_EQ(inner_->fetches[*NormalizeTraceId("a3")], 1);
}

TEST_F(CacheTest, ConcurrentIdenticalFetchesShareOneRequest) {
  // Nothing scripted: the inner source holds the request until we answer it.
  int answered = 0;
  for (int i = 0; i < 10; ++i) {
    cache_->FetchTrace("aa", now_ + 10s, [&](Result<std::vector<routing::Trace>> r) {
      EXPECT_TRUE(r.ok());
      ++answered;
    });
  }
  ASSERT_EQ(inner_->held_fetches.size(), 1u);
  EXPECT_EQ(cache_->stats().coalesced, 9u);
  inner_->held_fetches[0].second(Found("aa"));
  EXPECT_EQ(answered, 10);
}

TEST_F(CacheTest, ConcurrentIdenticalSearchesShareOneRequest) {
  TraceQuery q;
  q.service = "checkout";
  int answered = 0;
  for (int i = 0; i < 5; ++i) {
    cache_->SearchTraces(q, now_ + 10s, [&](Result<std::vector<SearchHit>> r) {
      EXPECT_TRUE(r.ok());
      ++answered;
    });
  }
  TraceQuery other = q;
  other.order = TraceQuery::Order::kSlowestFirst;
  cache_->SearchTraces(other, now_ + 10s, [&](Result<std::vector<SearchHit>>) { ++answered; });
  ASSERT_EQ(inner_->held_searches.size(), 2u);
  for (auto& cb : inner_->held_searches) cb(std::vector<SearchHit>{});
  EXPECT_EQ(answered, 6);
}

}  // namespace
}  // namespace tracepager::integrations
