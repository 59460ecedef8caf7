#include "routing/walk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "routing/span_tree.h"
#include "tests/support/trace_builder.h"

namespace tracepager::routing {
namespace {

using testing::TraceBuilder;
using Names = std::vector<std::string>;

// "payment", "postgresql/orders (virtual)", "inventory (fallout)".
Names Describe(const std::vector<TraceCulprit>& culprits) {
  Names out;
  for (const TraceCulprit& c : culprits) {
    std::string s = c.service;
    if (c.is_virtual) s += " (virtual)";
    if (c.role == CulpritRole::kFallout) s += " (fallout)";
    out.push_back(s);
  }
  return out;
}

Names PathServices(const TraceCulprit& c) {
  Names out;
  for (const PathStep& s : c.path) out.push_back(s.service);
  return out;
}

bool Has(const std::vector<Refinement>& v, Refinement r) {
  return std::find(v.begin(), v.end(), r) != v.end();
}

bool NotesMention(const TraceVerdict& v, const std::string& text) {
  return std::any_of(v.notes.begin(), v.notes.end(),
                     [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

// A server span of `service` called from `parent` through a client span of the parent's
// service; both get the same timing. Returns the server span.
TraceBuilder::SpanHandle Call(TraceBuilder& b, const TraceBuilder::SpanHandle& parent,
                              const std::string& service, const std::string& op, double start,
                              double dur, const char* fail = nullptr) {
  auto client = b.Child(parent, parent.span().service, op).Client().At(start, dur);
  auto server = b.Child(client, service, op).Server().At(start, dur);
  if (fail != nullptr) {
    client.Fail(fail);
    server.Fail(fail);
  }
  return server;
}

// ---------------------------------------------------------------------------------------------
// The plain rule, table-driven.

struct NaiveCase {
  const char* name;
  std::function<Trace()> make;
  std::string alerting;
  Names naive;
  Names culprit_path;  // services on the first naive culprit's path (empty: not checked)
};

void PrintTo(const NaiveCase& c, std::ostream* os) { *os << c.name; }

class NaiveRule : public ::testing::TestWithParam<NaiveCase> {};

TEST_P(NaiveRule, FindsTheDeepestFailingServices) {
  const NaiveCase& c = GetParam();
  const Trace t = c.make();
  const TraceVerdict v = WalkErrors(t, c.alerting, WalkOptions::Naive());
  EXPECT_EQ(Describe(v.naive), c.naive);
  // With every refinement off the refined answer is the plain one.
  EXPECT_EQ(Describe(v.culprits), c.naive);
  EXPECT_TRUE(v.changed_by.empty());
  if (!c.culprit_path.empty()) {
    ASSERT_FALSE(v.naive.empty());
    EXPECT_EQ(PathServices(v.naive.front()), c.culprit_path);
  }
}

const NaiveCase kNaiveCases[] = {
    {"SingleFailingDependency",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail("HTTP 500");
       auto bs = Call(b, a, "b", "GET /b", 10, 50, "HTTP 503");
       Call(b, bs, "c", "GET /c", 20, 10);  // healthy
       return b.Build();
     },
     "a",
     {"b"},
     {"a", "a", "b"}},
    {"ChainOfFailures",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       auto bs = Call(b, a, "b", "op", 10, 80, "HTTP 500");
       auto cs = Call(b, bs, "c", "op", 20, 60, "HTTP 500");
       Call(b, cs, "d", "op", 30, 10, "HTTP 500");
       return b.Build();
     },
     "a",
     {"d"},
     {"a", "a", "b", "b", "c", "c", "d"}},
    {"StopsAtAHealthyDependency",
     [] {
       // c's failure is not visible to a: b answered fine, so the rule stops at... nothing.
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       auto bs = Call(b, a, "b", "op", 10, 80);
       Call(b, bs, "c", "op", 20, 10, "HTTP 500");
       return b.Build();
     },
     "a",
     {},
     {}},
    {"NothingFailedBelow",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail("HTTP 500");
       Call(b, a, "b", "op", 10, 20);
       return b.Build();
     },
     "a",
     {},
     {}},
    {"CallerFaultIsNotADependencyFailure",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail("HTTP 500");
       auto cl = b.Child(a, "a", "GET /b").Client().At(10, 20).CallerFault("HTTP 404");
       b.Child(cl, "b", "GET /b").Server().At(11, 18);  // answered 404: did not fail
       b.Child(a, "a", "GET /c").Client().At(40, 5).CallerFault("HTTP 400").Peer("c");
       return b.Build();
     },
     "a",
     {},
     {}},
    {"DirectChildOfAnotherServiceWithoutClientSpan",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       b.Child(a, "b", "handle").Server().At(10, 20).Fail("HTTP 500");
       return b.Build();
     },
     "a",
     {"b"},
     {"a", "b"}},
    {"ServiceAtSeveralDepths",
     [] {
       // b is both a dependency of a and, deeper, of c; the deep one is the culprit.
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       auto b1 = Call(b, a, "b", "op", 10, 80, "HTTP 500");
       auto c = Call(b, b1, "c", "op", 20, 60, "HTTP 500");
       auto b2 = Call(b, c, "b", "op2", 30, 40, "HTTP 500");
       Call(b, b2, "d", "op", 35, 10);  // healthy
       return b.Build();
     },
     "a",
     {"b"},
     {"a", "a", "b", "b", "c", "c", "b"}},
    {"ServiceCycleEndsBelowTheCycle",
     [] {
       // a calls b, b calls back into a, and that a calls c, which fails.
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       auto bs = Call(b, a, "b", "op", 10, 80, "HTTP 500");
       auto a2 = Call(b, bs, "a", "callback", 20, 60, "HTTP 500");
       Call(b, a2, "c", "op", 30, 10, "HTTP 500");
       return b.Build();
     },
     "a",
     {"c"},
     {"a", "a", "b", "b", "a", "a", "c"}},
    {"ServiceCycleEndsInTheAlertingServiceItself",
     [] {
       // a -> b -> a, and the inner a is where it stops: a is the culprit, reached below.
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       auto bs = Call(b, a, "b", "op", 10, 80, "HTTP 500");
       auto a2 = Call(b, bs, "a", "callback", 20, 60, "HTTP 500");
       Call(b, a2, "c", "op", 30, 10);
       return b.Build();
     },
     "a",
     {"a"},
     {"a", "a", "b", "b", "a"}},
    {"TwoFailingBranches",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       Call(b, a, "b", "op", 10, 20, "HTTP 500");
       Call(b, a, "c", "op", 40, 20, "HTTP 500");
       return b.Build();
     },
     "a",
     {"b", "c"},
     {}},
    {"AlertingServiceBelowTheRoot",
     [] {
       TraceBuilder b;
       auto gw = b.Root("gateway", "GET /").Server().At(0, 100).Fail();
       auto a = Call(b, gw, "a", "op", 5, 90, "HTTP 500");
       Call(b, a, "b", "op", 10, 20, "HTTP 500");
       return b.Build();
     },
     "a",
     {"b"},
     {"a", "a", "b"}},
    {"UninstrumentedLeafStopsAtTheCaller",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       auto bs = Call(b, a, "b", "op", 10, 80, "HTTP 500");
       b.Child(bs, "b", "SELECT").Client().At(20, 5).Db("postgresql", "orders").Fail("refused");
       return b.Build();
     },
     "a",
     {"b"},
     {"a", "a", "b", "b"}},
    {"AlertingServiceNotInTrace",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       Call(b, a, "b", "op", 10, 20, "HTTP 500");
       return b.Build();
     },
     "zzz",
     {},
     {}},
    {"EmptyAlertingServiceMeansTheRootService",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       Call(b, a, "b", "op", 10, 20, "HTTP 500");
       return b.Build();
     },
     "",
     {"b"},
     {}},
};

INSTANTIATE_TEST_SUITE_P(Walk, NaiveRule, ::testing::ValuesIn(kNaiveCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Walk, NaiveCulpritCarriesTheFailingSpanAndWhy) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  auto bs = Call(b, a, "b", "POST /pay", 10, 80, "HTTP 503");
  auto inner = b.Child(bs, "b", "charge").Internal().At(30, 5).Fail("card store down");
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  ASSERT_EQ(v.culprits.size(), 1u);
  const TraceCulprit& c = v.culprits[0];
  EXPECT_EQ(c.service, "b");
  // The culprit's earliest failing span (b's server span at +10 ms) is where it failed.
  EXPECT_EQ(c.failure_start_ns, TraceBuilder::kEpochNs + 10'000'000);
  EXPECT_NE(c.why.find("none of its dependencies show errors"), std::string::npos) << c.why;
  EXPECT_NE(c.why.find("HTTP 503"), std::string::npos) << c.why;
  ASSERT_FALSE(c.path.empty());
  EXPECT_EQ(c.path.front().span_id, a.id());
  EXPECT_EQ(c.path.back().service, "b");
  EXPECT_EQ(c.path.back().start_offset_ns, 10'000'000);
  EXPECT_TRUE(c.path.back().failed);
  EXPECT_EQ(c.path.back().reason, "HTTP 503");
  (void)inner;
}

// ---------------------------------------------------------------------------------------------
// Refinements: for each, a trace where the naive and refined answers differ as intended, and
// where switching that refinement off (all others on) gives the naive answer back.

struct RefinementCase {
  const char* name;
  std::function<Trace()> make;
  Refinement refinement;
  Names naive;
  Names refined;
};

void PrintTo(const RefinementCase& c, std::ostream* os) { *os << c.name; }

class RefinementChangesTheAnswer : public ::testing::TestWithParam<RefinementCase> {};

TEST_P(RefinementChangesTheAnswer, AndSwitchingItOffGivesTheNaiveAnswer) {
  const RefinementCase& c = GetParam();
  const Trace t = c.make();
  const TraceVerdict v = WalkErrors(t, "a", WalkOptions{});
  EXPECT_EQ(Describe(v.naive), c.naive);
  EXPECT_EQ(Describe(v.culprits), c.refined);
  EXPECT_TRUE(Has(v.changed_by, c.refinement)) << RefinementName(c.refinement);
  EXPECT_TRUE(NotesMention(v, std::string(RefinementName(c.refinement)) + ":"));

  WalkOptions off;
  switch (c.refinement) {
    case Refinement::kTimeoutMasking:
      off.timeout_masking = false;
      break;
    case Refinement::kSiblingFallout:
      off.sibling_fallout = false;
      break;
    case Refinement::kRetries:
      off.retries = false;
      break;
    case Refinement::kAsync:
      off.async = false;
      break;
    case Refinement::kUninstrumented:
      off.uninstrumented = false;
      break;
  }
  const TraceVerdict w = WalkErrors(t, "a", off);
  EXPECT_EQ(Describe(w.culprits), c.naive);
  EXPECT_TRUE(w.changed_by.empty());
}

const RefinementCase kRefinementCases[] = {
    {"TimeoutMaskingDescendsIntoTheSlowHealthyChild",
     [] {
       // b's handler errors after 995 ms because it gave up on c, which ran 980 ms and never
       // failed. The plain rule blames b; c is where the time went.
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 1000).Fail("HTTP 504");
       auto bs = Call(b, a, "b", "GET /quote", 2, 995, "deadline exceeded");
       Call(b, bs, "c", "GET /rates", 10, 980);
       return b.Build();
     },
     Refinement::kTimeoutMasking,
     {"b"},
     {"c"}},
    {"TimeoutMaskingCarriesThroughSameServiceWaits",
     [] {
       // The slow child is below an internal span of b that itself waited 99% of b's time.
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 1000).Fail();
       auto bs = Call(b, a, "b", "GET /quote", 0, 1000, "context canceled");
       auto work = b.Child(bs, "b", "compute").Internal().At(5, 990);
       Call(b, work, "c", "GET /rates", 6, 985);
       return b.Build();
     },
     Refinement::kTimeoutMasking,
     {"b"},
     {"c"}},
    {"SiblingFalloutMakesTheLaterFailuresFallout",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       Call(b, a, "c", "op", 30, 10, "HTTP 500");  // input order does not matter
       Call(b, a, "b", "op", 10, 10, "HTTP 500");
       return b.Build();
     },
     Refinement::kSiblingFallout,
     {"b", "c"},
     {"b", "c (fallout)"}},
    {"RetriesIgnoreAFailureThatSucceededOnRetry",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       auto step1 = b.Child(a, "a", "load").Internal().At(1, 40);
       Call(b, step1, "b", "GET /item", 2, 5, "HTTP 503");
       Call(b, step1, "b", "GET /item", 10, 5);  // the retry worked
       auto step2 = b.Child(a, "a", "save").Internal().At(50, 40).Fail();
       Call(b, step2, "c", "PUT /item", 51, 5, "HTTP 500");
       return b.Build();
     },
     Refinement::kRetries,
     {"b", "c"},
     {"c"}},
    {"AsyncWorkFailingAfterItsTriggerIsNotTheCause",
     [] {
       // a publishes an event and fails on its own; the consumer fails later, after the
       // producer span finished. A second async consumer that fails before the trigger ended
       // (via FOLLOWS_FROM) stays a cause.
       TraceBuilder b;
       auto a = b.Root("a", "POST /order").Server().At(0, 100).Fail("HTTP 500");
       auto pub = b.Child(a, "a", "publish orders").Producer().At(10, 2);
       b.Child(pub, "mailer", "consume orders").Consumer().At(50, 30).Fail("SMTP down");
       auto job = b.Child(a, "a", "schedule").Internal().At(20, 60);
       b.FollowerOf(job, "audit", "record").At(25, 10).Fail("disk full");
       return b.Build();
     },
     Refinement::kAsync,
     {"audit", "mailer"},
     {"audit"}},
    {"UninstrumentedLeafBlamesThePeerItNames",
     [] {
       TraceBuilder b;
       auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
       auto bs = Call(b, a, "b", "op", 10, 80, "HTTP 500");
       b.Child(bs, "b", "SELECT orders")
           .Client()
           .At(20, 5)
           .Db("postgresql", "orders")
           .Fail("connection refused");
       return b.Build();
     },
     Refinement::kUninstrumented,
     {"b"},
     {"postgresql/orders (virtual)"}},
};

INSTANTIATE_TEST_SUITE_P(Walk, RefinementChangesTheAnswer, ::testing::ValuesIn(kRefinementCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Walk, TimeoutMaskingRequiresTheChildToUseMostOfTheTime) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 1000).Fail();
  auto bs = Call(b, a, "b", "GET /quote", 0, 1000, "deadline exceeded");
  Call(b, bs, "c", "GET /rates", 10, 800);  // 80%: b did not merely wait on c
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  EXPECT_EQ(Describe(v.culprits), Names{"b"});
  EXPECT_TRUE(v.changed_by.empty());

  WalkOptions loose;
  loose.timeout_fraction = 0.75;
  EXPECT_EQ(Describe(WalkErrors(b.Build(), "a", loose).culprits), Names{"c"});
}

TEST(Walk, TimeoutMaskingLeavesSpansWithAFailingChildAlone) {
  // a errored and one of its calls failed: that is its failure, even though another, healthy
  // call took 95% of its time.
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  Call(b, a, "slow", "GET /report", 1, 95);
  Call(b, a, "broken", "GET /x", 2, 3, "HTTP 500");
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  EXPECT_EQ(Describe(v.culprits), Names{"broken"});
  EXPECT_TRUE(v.changed_by.empty());
}

TEST(Walk, TimeoutMaskingWhyExplainsTheWait) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 1000).Fail();
  auto bs = Call(b, a, "b", "GET /quote", 2, 995, "deadline exceeded");
  Call(b, bs, "c", "GET /rates", 10, 980);
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  ASSERT_EQ(v.culprits.size(), 1u);
  EXPECT_NE(v.culprits[0].why.find("gave up waiting"), std::string::npos) << v.culprits[0].why;
  EXPECT_NE(v.culprits[0].why.find("did not fail"), std::string::npos) << v.culprits[0].why;
}

TEST(Walk, TimedOutLeafCallBlamesThePeerItWaitedOn) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  b.Child(a, "a", "Ledger/Post")
      .Client()
      .At(5, 90)
      .Peer("ledger")
      .Grpc(4)
      .Fail("gRPC DEADLINE_EXCEEDED");
  const Trace t = b.Build();

  // The alerting service is the caller: the plain rule stops at it.
  const TraceVerdict v = WalkErrors(t, "a", {});
  EXPECT_EQ(Describe(v.naive), Names{"a"});
  EXPECT_EQ(Describe(v.culprits), Names{"ledger (virtual)"});
  ASSERT_EQ(v.culprits.size(), 1u);
  EXPECT_EQ(v.culprits[0].caller, "a");
  EXPECT_NE(v.culprits[0].why.find("timed out"), std::string::npos) << v.culprits[0].why;
  // Either refinement alone blames the peer, so neither alone accounts for the change: both
  // are named.
  EXPECT_TRUE(Has(v.changed_by, Refinement::kTimeoutMasking));
  EXPECT_TRUE(Has(v.changed_by, Refinement::kUninstrumented));

  WalkOptions only_timeout;
  only_timeout.uninstrumented = false;
  const TraceVerdict w = WalkErrors(t, "a", only_timeout);
  EXPECT_EQ(Describe(w.culprits), Names{"ledger (virtual)"});
  EXPECT_EQ(w.changed_by, std::vector<Refinement>{Refinement::kTimeoutMasking});

  WalkOptions neither = only_timeout;
  neither.timeout_masking = false;
  EXPECT_EQ(Describe(WalkErrors(t, "a", neither).culprits), Names{"a"});
}

TEST(Walk, WhatReadsAsATimeout) {
  struct Case {
    const char* name;
    std::function<void(TraceBuilder::SpanHandle&)> tag;
    bool timeout;
  };
  const std::vector<Case> cases = {
      {"grpc deadline", [](auto& s) { s.Grpc(4).Fail("gRPC DEADLINE_EXCEEDED"); }, true},
      {"http 504", [](auto& s) { s.Http(504).Fail("HTTP 504"); }, true},
      {"http 408", [](auto& s) { s.Http(408).Fail("HTTP 408"); }, true},
      {"message", [](auto& s) { s.Fail("read timed out after 30s"); }, true},
      {"exception",
       [](auto& s) {
         s.Fail("error");
         s.span().exceptions.push_back({0, "java.net.SocketTimeoutException", "Read timed out"});
       },
       true},
      {"refused", [](auto& s) { s.Fail("connection refused"); }, false},
      {"http 503", [](auto& s) { s.Http(503).Fail("HTTP 503"); }, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TraceBuilder b;
    auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
    auto call = b.Child(a, "a", "call").Client().At(5, 90).Peer("ledger");
    c.tag(call);
    WalkOptions only_timeout;
    only_timeout.uninstrumented = false;
    const TraceVerdict v = WalkErrors(b.Build(), "a", only_timeout);
    EXPECT_EQ(Describe(v.culprits), c.timeout ? Names{"ledger (virtual)"} : Names{"a"});
  }
}

TEST(Walk, VirtualPeerNamesFollowTheDocumentedOrder) {
  struct Case {
    std::function<void(TraceBuilder::SpanHandle&)> tag;
    std::string name;
  };
  const std::vector<Case> cases = {
      {[](auto& s) { s.Peer("ledger").Db("postgresql", "orders").Address("db-1"); }, "ledger"},
      {[](auto& s) { s.Db("postgresql", "orders").Address("db-1"); }, "postgresql/orders"},
      {[](auto& s) { s.Db("redis"); }, "redis"},
      {[](auto& s) { s.Address("db-1.internal"); }, "db-1.internal"},
      {[](auto& s) { s.Producer().Messaging("kafka", "orders"); }, "kafka/orders"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TraceBuilder b;
    auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
    auto call = b.Child(a, "a", "call").Client().At(5, 10).Fail("refused");
    c.tag(call);
    const TraceVerdict v = WalkErrors(b.Build(), "a", {});
    ASSERT_EQ(v.culprits.size(), 1u);
    EXPECT_EQ(v.culprits[0].service, c.name);
    EXPECT_TRUE(v.culprits[0].is_virtual);
    EXPECT_EQ(v.culprits[0].caller, "a");
    ASSERT_FALSE(v.culprits[0].path.empty());
    EXPECT_EQ(v.culprits[0].path.back().span_id, call.id());  // the call that names it
    EXPECT_EQ(v.culprits[0].path.back().service, "a");
  }
}

TEST(Walk, LeafCallNamingNoPeerStaysWithTheCaller) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  auto bs = Call(b, a, "b", "op", 10, 80, "HTTP 500");
  b.Child(bs, "b", "call").Client().At(20, 5).Fail("refused");
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  EXPECT_EQ(Describe(v.culprits), Names{"b"});
  EXPECT_NE(v.culprits[0].why.find("names no peer"), std::string::npos) << v.culprits[0].why;
}

TEST(Walk, LeafCallWithOnlyLeafChildrenOfItsOwnServiceIsUninstrumented) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  auto call = b.Child(a, "a", "GET").Client().At(5, 50).Address("api.example").Fail("HTTP 502");
  b.Child(call, "a", "dns").Internal().At(5, 1);
  b.Child(call, "a", "connect").Internal().At(6, 1);
  EXPECT_EQ(Describe(WalkErrors(b.Build(), "a", {}).culprits), Names{"api.example (virtual)"});
}

TEST(Walk, RetryMustBeLaterSameOperationAndSameService) {
  auto make = [](const char* retry_service, const char* retry_op, double retry_start) {
    TraceBuilder b;
    auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
    Call(b, a, "b", "GET /item", 20, 5, "HTTP 503");
    Call(b, a, retry_service, retry_op, retry_start, 5);
    return b.Build();
  };
  EXPECT_EQ(Describe(WalkErrors(make("b", "GET /item", 30), "a", {}).culprits), Names{});
  EXPECT_EQ(Describe(WalkErrors(make("b", "GET /other", 30), "a", {}).culprits), Names{"b"});
  EXPECT_EQ(Describe(WalkErrors(make("c", "GET /item", 30), "a", {}).culprits), Names{"b"});
  // A success before the failure is not a retry of it.
  EXPECT_EQ(Describe(WalkErrors(make("b", "GET /item", 5), "a", {}).culprits), Names{"b"});
}

TEST(Walk, RetryOfAnUninstrumentedCall) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  b.Child(a, "a", "GET key").Client().At(5, 5).Db("redis").Fail("timeout");
  b.Child(a, "a", "GET key").Client().At(12, 5).Db("redis");
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  EXPECT_EQ(Describe(v.culprits), Names{});
  EXPECT_EQ(Describe(v.naive), Names{"a"});
  EXPECT_TRUE(Has(v.changed_by, Refinement::kRetries));
}

TEST(Walk, SiblingFalloutIsPerParentSpan) {
  // Failures under different parent spans are independent: both stay primary.
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  auto s1 = b.Child(a, "a", "step1").Internal().At(1, 40).Fail();
  auto s2 = b.Child(a, "a", "step2").Internal().At(50, 40).Fail();
  Call(b, s1, "b", "op", 2, 5, "HTTP 500");
  Call(b, s2, "c", "op", 51, 5, "HTTP 500");
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  EXPECT_EQ(Describe(v.culprits), (Names{"b", "c"}));
  EXPECT_TRUE(v.changed_by.empty());
}

TEST(Walk, FalloutRoleIsInheritedBelowAFalloutCall) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  Call(b, a, "b", "op", 10, 10, "HTTP 500");
  auto c = Call(b, a, "c", "op", 30, 30, "HTTP 500");
  Call(b, c, "d", "op", 35, 10, "HTTP 500");
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  EXPECT_EQ(Describe(v.culprits), (Names{"b", "d (fallout)"}));
  EXPECT_EQ(Describe(v.naive), (Names{"b", "d"}));
  ASSERT_EQ(v.culprits.size(), 2u);
  EXPECT_NE(v.culprits[1].why.find("fallout: b"), std::string::npos) << v.culprits[1].why;
}

TEST(Walk, ServicePrimaryAnywhereIsPrimaryOnce) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  auto s1 = b.Child(a, "a", "step1").Internal().At(1, 40).Fail();
  auto s2 = b.Child(a, "a", "step2").Internal().At(50, 40).Fail();
  Call(b, s1, "x", "op", 2, 5, "HTTP 500");
  Call(b, s1, "b", "op", 20, 5, "HTTP 500");  // fallout of x here
  Call(b, s2, "b", "op", 51, 5, "HTTP 500");  // primary here
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  EXPECT_EQ(Describe(v.culprits), (Names{"x", "b"}));
}

TEST(Walk, AsyncFollowsFromAdoptedIntoTheTree) {
  // A span with no parent but a FOLLOWS_FROM reference hangs below its trigger.
  TraceBuilder b;
  auto a = b.Root("a", "POST /").Server().At(0, 100).Fail();
  b.FollowerOf(a, "worker", "job").At(10, 20).Fail("boom");
  const Trace t = b.Build();
  const SpanTree tree(t);
  EXPECT_EQ(tree.roots().size(), 1u);
  EXPECT_EQ(tree.parent(1), 0);
  EXPECT_TRUE(tree.async_edge(1));
  // It failed while a was still running: it may be the cause.
  EXPECT_EQ(Describe(WalkErrors(t, "a", {}).culprits), Names{"worker"});
}

// ---------------------------------------------------------------------------------------------
// Tree structure and hostile shapes.

TEST(Walk, EmptyTrace) {
  Trace t;
  t.trace_id = "00000000000000000000000000000001";
  const TraceVerdict v = WalkErrors(t, "a", {});
  EXPECT_FALSE(v.alerting_service_found);
  EXPECT_TRUE(v.culprits.empty());
  EXPECT_TRUE(v.naive.empty());
  EXPECT_TRUE(NotesMention(v, "no spans"));
  const TraceVerdict l = WalkLatency(t, "", {});
  EXPECT_TRUE(l.culprits.empty());
  EXPECT_FALSE(l.alerting_service_found);
}

TEST(Walk, ParentCycleIsBrokenAndReported) {
  TraceBuilder b;
  auto x = b.Root("a", "GET /").Server().At(0, 100).Fail();
  auto y = b.Child(x, "b", "op").Server().At(10, 20).Fail("HTTP 500");
  x.ParentId(y.id());  // x <-> y: no root at all
  const Trace t = b.Build();
  const SpanTree tree(t);
  ASSERT_EQ(tree.roots().size(), 1u);
  EXPECT_EQ(tree.roots()[0], 0);
  const TraceVerdict v = WalkErrors(t, "a", {});
  EXPECT_TRUE(NotesMention(v, "cycle"));
  EXPECT_EQ(Describe(v.culprits), Names{"b"});
}

TEST(Walk, OrphansHangAsExtraRoots) {
  TraceBuilder b;
  auto root = b.Root("gateway", "GET /").Server().At(0, 100);
  auto orphan = b.ChildOf(999, "a", "handle").Server().At(10, 50).Fail();
  Call(b, orphan, "b", "op", 20, 10, "HTTP 500");
  (void)root;
  const Trace t = b.Build();
  EXPECT_EQ(SpanTree(t).roots().size(), 2u);
  EXPECT_EQ(Describe(WalkErrors(t, "a", {}).culprits), Names{"b"});
}

TEST(Walk, DuplicateSpanIdsResolveToTheFirst) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100).Fail();
  auto dup = b.Child(a, "b", "op").Server().At(10, 20).Fail("HTTP 500");
  dup.span().span_id = a.id();  // same id as the root, whose child it claims to be
  const Trace t = b.Build();
  const SpanTree tree(t);
  EXPECT_FALSE(tree.warnings().empty());
  const TraceVerdict v = WalkErrors(t, "a", {});
  EXPECT_EQ(Describe(v.culprits), Names{"b"});
}

Trace DeepChain(int depth, bool alternate) {
  TraceBuilder b;
  auto prev = b.Root("s0", "op").Server().AtNs(0, 2 * depth + 10).Fail();
  for (int i = 1; i < depth; ++i) {
    const std::string svc = alternate ? "s" + std::to_string(i % 7) : "s0";
    prev = b.Child(prev, svc, "op").Server().AtNs(i, 2 * (depth - i) + 10).Fail("HTTP 500");
  }
  return b.Build();
}

TEST(Walk, TenThousandDeepChainDoesNotRecurse) {
  const Trace t = DeepChain(10'000, true);
  const TraceVerdict v = WalkErrors(t, "s0", {});
  ASSERT_EQ(v.culprits.size(), 1u);
  EXPECT_EQ(v.culprits[0].service, "s" + std::to_string(9'999 % 7));
  EXPECT_EQ(v.culprits[0].path.front().service, "s0");
  EXPECT_EQ(v.culprits[0].path.back().span_id, 10'000u);
  EXPECT_LE(v.culprits[0].path.size(), 512u);  // bounded, both ends kept
  EXPECT_EQ(Describe(v.naive), Describe(v.culprits));

  // One service all the way down is one region: nothing failed below it.
  EXPECT_TRUE(WalkErrors(DeepChain(10'000, false), "s0", {}).culprits.empty());

  const TraceVerdict l = WalkLatency(t, "s0", {});
  ASSERT_EQ(l.culprits.size(), 1u);
}

TEST(Walk, WideFanOutOfFailuresIsLinearAndOrdered) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 1000).Fail();
  for (int i = 0; i < 5000; ++i) {
    b.Child(a, "svc" + std::to_string(i), "op").Server().AtNs(1000 * (5000 - i), 10).Fail();
  }
  const TraceVerdict v = WalkErrors(b.Build(), "a", {});
  ASSERT_EQ(v.culprits.size(), 5000u);
  EXPECT_EQ(v.culprits[0].service, "svc4999");  // started first
  EXPECT_EQ(v.culprits[0].role, CulpritRole::kPrimary);
  EXPECT_EQ(v.culprits[1].role, CulpritRole::kFallout);
  EXPECT_EQ(v.culprits.size(), v.naive.size());
}

// ---------------------------------------------------------------------------------------------
// Latency: Jaeger's critical path.

TEST(WalkLatency, BlamesTheLargestSelfTimeOnTheCriticalPath) {
  // a [0,100]: b [10,30], c [30,90] with d [40,50] inside c.
  // Critical path back from 100: a 90..100, c 50..90, d 40..50, c 30..40, b 10..30, a 0..10.
  // Self: c 50, a 20, b 20, d 10.
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100);
  b.Child(a, "b", "op").Server().At(10, 20);
  auto c = b.Child(a, "c", "op").Server().At(30, 60);
  b.Child(c, "d", "op").Server().At(40, 10);
  const TraceVerdict v = WalkLatency(b.Build(), "a", {});
  ASSERT_EQ(v.culprits.size(), 1u);
  EXPECT_EQ(v.culprits[0].service, "c");
  EXPECT_EQ(v.culprits[0].self_time_ns, 50'000'000);
  EXPECT_EQ(PathServices(v.culprits[0]), (Names{"a", "c"}));
  EXPECT_NE(v.culprits[0].why.find("largest self time"), std::string::npos);
  EXPECT_EQ(Describe(v.naive), Describe(v.culprits));
  EXPECT_EQ(v.symptom, Symptom::kLatency);
}

TEST(WalkLatency, OverlappingSiblingsOnlyTheLastFinishingCounts) {
  // b [10,80] and c [20,90] run in parallel; the path goes through c and back into a at 20,
  // skipping b, which finishes after that point. Self: c 70, a 30.
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100);
  b.Child(a, "b", "op").Server().At(10, 70);
  b.Child(a, "c", "op").Server().At(20, 70);
  const TraceVerdict v = WalkLatency(b.Build(), "a", {});
  ASSERT_EQ(v.culprits.size(), 1u);
  EXPECT_EQ(v.culprits[0].service, "c");
  EXPECT_EQ(v.culprits[0].self_time_ns, 70'000'000);
}

TEST(WalkLatency, SequentialCallsStayOnThePath) {
  // b [0,60] then c [60,100]: back-to-back, both on the path (Jaeger's strict rule would
  // charge b's 60 ms to a). Self: b 60, c 40, a 0.
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100);
  b.Child(a, "b", "op").Server().At(0, 60);
  b.Child(a, "c", "op").Server().At(60, 40);
  const TraceVerdict v = WalkLatency(b.Build(), "a", {});
  ASSERT_EQ(v.culprits.size(), 1u);
  EXPECT_EQ(v.culprits[0].service, "b");
  EXPECT_EQ(v.culprits[0].self_time_ns, 60'000'000);
}

TEST(WalkLatency, ClipsOverflowingChildrenAndSkipsAsyncOnes) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100);
  b.Child(a, "b", "op").Server().At(60, 500);  // clipped to [60,100]: 40
  auto pub = b.Child(a, "a", "publish").Producer().At(5, 1);
  b.Child(pub, "mailer", "consume").Consumer().At(10, 5000);  // async: not on the path
  const TraceVerdict v = WalkLatency(b.Build(), "a", {});
  ASSERT_EQ(v.culprits.size(), 1u);
  EXPECT_EQ(v.culprits[0].service, "a");  // a 59 (+1 for publish) vs b 40
  EXPECT_EQ(v.culprits[0].self_time_ns, 60'000'000);
}

TEST(WalkLatency, UninstrumentedLeafCallChargesThePeer) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 100);
  b.Child(a, "a", "GET key").Client().At(5, 90).Db("redis");
  const Trace t = b.Build();
  const TraceVerdict v = WalkLatency(t, "a", {});
  ASSERT_EQ(v.culprits.size(), 1u);
  EXPECT_EQ(v.culprits[0].service, "redis");
  EXPECT_TRUE(v.culprits[0].is_virtual);
  EXPECT_EQ(v.culprits[0].caller, "a");
  EXPECT_EQ(v.culprits[0].path.back().kind, SpanKind::kClient);

  WalkOptions off;
  off.uninstrumented = false;
  EXPECT_EQ(WalkLatency(t, "a", off).culprits.at(0).service, "a");
}

TEST(WalkLatency, StartsAtTheLongestTopmostSpanOfTheAlertingService) {
  TraceBuilder b;
  auto gw = b.Root("gw", "GET /").Server().At(0, 1000);
  auto a1 = b.Child(gw, "a", "fast").Server().At(0, 10);
  auto a2 = b.Child(gw, "a", "slow").Server().At(100, 800);
  b.Child(a1, "b", "op").Server().At(1, 9);
  b.Child(a2, "c", "op").Server().At(110, 700);
  const TraceVerdict v = WalkLatency(b.Build(), "a", {});
  EXPECT_EQ(v.alerting_duration_ns, 800'000'000);
  ASSERT_EQ(v.culprits.size(), 1u);
  EXPECT_EQ(v.culprits[0].service, "c");
}

TEST(WalkLatency, NoTimingGivesNoCulprit) {
  TraceBuilder b;
  auto a = b.Root("a", "GET /").Server().At(0, 0);
  b.Child(a, "b", "op").Server().At(0, 0);
  const TraceVerdict v = WalkLatency(b.Build(), "a", {});
  EXPECT_TRUE(v.culprits.empty());
  EXPECT_TRUE(v.alerting_service_found);
}

TEST(Names, AreStable) {
  EXPECT_STREQ(RefinementName(Refinement::kTimeoutMasking), "timeout_masking");
  EXPECT_STREQ(RefinementName(Refinement::kSiblingFallout), "sibling_fallout");
  EXPECT_STREQ(RefinementName(Refinement::kRetries), "retries");
  EXPECT_STREQ(RefinementName(Refinement::kAsync), "async");
  EXPECT_STREQ(RefinementName(Refinement::kUninstrumented), "uninstrumented");
  EXPECT_STREQ(CulpritRoleName(CulpritRole::kFallout), "fallout");
  EXPECT_STREQ(SymptomName(Symptom::kLatency), "latency");
  EXPECT_EQ(FormatDuration(1'500'000), "1.5 ms");
  EXPECT_EQ(FormatDuration(2'000'000'000), "2.00 s");
}

}  // namespace
}  // namespace tracepager::routing
