#include "routing/route.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "routing/trace_reader.h"
#include "tests/support/trace_builder.h"

namespace tracepager::routing {
namespace {

using testing::TraceBuilder;
using Names = std::vector<std::string>;

Registry MakeRegistry(bool with_default = true) {
  std::string yaml = std::string(with_default ? "default_team: platform\n" : "") + R"(teams:
  platform: {}
  web: {}
  payments: {}
  data: {}
services:
  frontend: {team: web}
  checkout: {team: web}
  payment: {team: payments}
  ledger: {team: payments}
  postgresql/orders: {team: data}
)";
  Result<Registry> r = Registry::FromYaml(yaml, "test.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : Registry();
}

Names Services(const std::vector<Culprit>& culprits) {
  Names out;
  for (const Culprit& c : culprits) out.push_back(c.service);
  return out;
}

// frontend -> checkout -> `leaf` (failing at `fail_ms`), all failing on the way up.
Trace Chain(const std::string& trace_id, const std::string& leaf, double fail_ms) {
  TraceBuilder b(trace_id);
  auto fe = b.Root("frontend", "GET /buy").Server().At(0, 100).Fail("HTTP 500");
  auto cl = b.Child(fe, "frontend", "POST /checkout").Client().At(1, 98).Fail("HTTP 500");
  auto co = b.Child(cl, "checkout", "POST /checkout").Server().At(2, 96).Fail("HTTP 500");
  auto cl2 = b.Child(co, "checkout", "call " + leaf).Client().At(fail_ms, 5).Fail("HTTP 503");
  b.Child(cl2, leaf, "handle").Server().At(fail_ms, 5).Fail("HTTP 503");
  return b.Build();
}

Trace Healthy(const std::string& trace_id) {
  TraceBuilder b(trace_id);
  auto fe = b.Root("frontend", "GET /buy").Server().At(0, 100).Fail("HTTP 500");
  b.Child(fe, "checkout", "POST /checkout").Server().At(2, 50);
  return b.Build();
}

TEST(Route, RoutesToTheCulpritsOwner) {
  const Registry reg = MakeRegistry();
  const Decision d = Route({Chain("t1", "payment", 10)}, {"frontend", Symptom::kErrors}, reg, {});
  EXPECT_EQ(d.kind, Decision::Kind::kRouted);
  EXPECT_STREQ(DecisionKindName(d.kind), "routed");
  ASSERT_EQ(d.culprits.size(), 1u);
  const Culprit& c = d.culprits[0];
  EXPECT_EQ(c.service, "payment");
  EXPECT_EQ(c.team, "payments");
  EXPECT_EQ(c.owner_reason, "registry: payment is owned by payments");
  EXPECT_DOUBLE_EQ(c.share, 1.0);
  EXPECT_EQ(c.votes, 1);
  EXPECT_TRUE(c.paged);
  EXPECT_EQ(c.earliest_failure_ns, TraceBuilder::kEpochNs + 10'000'000);
  EXPECT_NE(c.why.find("blamed by 1 of 1 trace"), std::string::npos) << c.why;
  EXPECT_EQ(d.teams, Names{"payments"});
  EXPECT_EQ(d.naive_teams, Names{"payments"});
  EXPECT_EQ(d.alerting_service, "frontend");
  EXPECT_NE(d.reason.find("payment"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("payments"), std::string::npos) << d.reason;
  ASSERT_EQ(d.traces.size(), 1u);
  EXPECT_EQ(d.traces[0].trace_id, "t1");
}

TEST(Route, EmptyAlertingServiceUsesEachTracesRootService) {
  const Decision d = Route({Chain("t1", "payment", 10)}, {}, MakeRegistry(), {});
  EXPECT_EQ(d.alerting_service, "frontend");
  EXPECT_EQ(d.traces[0].alerting_service, "frontend");
  EXPECT_EQ(Services(d.culprits), Names{"payment"});
}

TEST(Route, VotesOrderCulpritsByShare) {
  const Decision d =
      Route({Chain("t1", "ledger", 30), Chain("t2", "payment", 50), Chain("t3", "payment", 40)},
            {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, Decision::Kind::kRouted);
  ASSERT_EQ(Services(d.culprits), (Names{"payment", "ledger"}));
  EXPECT_EQ(d.culprits[0].votes, 2);
  EXPECT_NEAR(d.culprits[0].share, 2.0 / 3.0, 1e-9);
  EXPECT_EQ(d.culprits[0].earliest_failure_ns, TraceBuilder::kEpochNs + 40'000'000);
  EXPECT_EQ(d.culprits[1].votes, 1);
  EXPECT_NEAR(d.culprits[1].share, 1.0 / 3.0, 1e-9);
  // Both own team "payments": teams are distinct.
  EXPECT_EQ(d.teams, Names{"payments"});
  EXPECT_NE(d.culprits[0].why.find("blamed by 2 of 3 traces"), std::string::npos);
}

TEST(Route, TiesGoToTheEarliestFailure) {
  const Decision d = Route({Chain("t1", "payment", 60), Chain("t2", "search", 20)},
                           {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  ASSERT_EQ(Services(d.culprits), (Names{"search", "payment"}));
  EXPECT_DOUBLE_EQ(d.culprits[0].share, 0.5);
  EXPECT_DOUBLE_EQ(d.culprits[1].share, 0.5);
  // search is unknown to the registry: default team, first.
  EXPECT_EQ(d.teams, (Names{"platform", "payments"}));
}

TEST(Route, SharesCountOnlyTracesThatRouted) {
  const Decision d = Route({Chain("t1", "payment", 10), Healthy("t2")},
                           {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, Decision::Kind::kRouted);
  ASSERT_EQ(d.culprits.size(), 1u);
  EXPECT_DOUBLE_EQ(d.culprits[0].share, 1.0);
  EXPECT_NE(d.reason.find("1 of 2 traces show failures"), std::string::npos) << d.reason;
  EXPECT_EQ(d.traces.size(), 2u);
}

TEST(Route, NoTracesFallsBackToTheAlertingServicesOwner) {
  const Decision d = Route({}, {"checkout", Symptom::kErrors}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, Decision::Kind::kFallback);
  EXPECT_STREQ(DecisionKindName(d.kind), "fallback");
  EXPECT_EQ(d.teams, Names{"web"});
  ASSERT_EQ(d.culprits.size(), 1u);
  EXPECT_EQ(d.culprits[0].service, "checkout");
  EXPECT_TRUE(d.culprits[0].paged);
  EXPECT_NE(d.reason.find("no traces"), std::string::npos) << d.reason;
  EXPECT_EQ(d.naive_teams, Names{"web"});
}

TEST(Route, NoTracesAndNoServiceFallsBackToTheDefaultTeam) {
  const Decision d = Route({}, {}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, Decision::Kind::kFallback);
  EXPECT_TRUE(d.culprits.empty());
  EXPECT_EQ(d.teams, Names{"platform"});
}

TEST(Route, NothingFailedBelowFallsBack) {
  const Decision d =
      Route({Healthy("t1"), Healthy("t2")}, {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, Decision::Kind::kFallback);
  EXPECT_EQ(d.teams, Names{"web"});
  EXPECT_NE(d.reason.find("nothing failed below frontend"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("web"), std::string::npos) << d.reason;
}

TEST(Route, UnknownAlertingServiceFallsBackToTheDefaultTeam) {
  const Decision d = Route({Healthy("t1")}, {"mystery", Symptom::kErrors}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, Decision::Kind::kFallback);
  EXPECT_EQ(d.teams, Names{"platform"});
  EXPECT_NE(d.reason.find("mystery has no spans"), std::string::npos) << d.reason;
  ASSERT_EQ(d.culprits.size(), 1u);
  EXPECT_NE(d.culprits[0].owner_reason.find("default team"), std::string::npos);
}

TEST(Route, UnknownServiceGoesToTheDefaultTeamWithAReason) {
  const Decision d =
      Route({Chain("t1", "search", 10)}, {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  ASSERT_EQ(d.culprits.size(), 1u);
  EXPECT_EQ(d.culprits[0].team, "platform");
  EXPECT_EQ(d.culprits[0].owner_reason,
            "search is not in the registry; paging the default team platform");
}

TEST(Route, UnknownServiceWithoutDefaultTeamGoesToTheAlertingServicesOwner) {
  const Decision d =
      Route({Chain("t1", "search", 10)}, {"frontend", Symptom::kErrors}, MakeRegistry(false), {});
  ASSERT_EQ(d.culprits.size(), 1u);
  EXPECT_EQ(d.culprits[0].team, "web");
  EXPECT_NE(d.culprits[0].owner_reason.find("alerting service frontend's owner"), std::string::npos)
      << d.culprits[0].owner_reason;
  EXPECT_EQ(d.teams, Names{"web"});
}

Trace LeafCall(const std::string& trace_id,
               const std::function<void(TraceBuilder::SpanHandle&)>& tag,
               const std::string& caller) {
  TraceBuilder b(trace_id);
  auto fe = b.Root("frontend", "GET /buy").Server().At(0, 100).Fail("HTTP 500");
  auto cl = b.Child(fe, "frontend", "POST /x").Client().At(1, 98).Fail("HTTP 500");
  auto co = b.Child(cl, caller, "POST /x").Server().At(2, 96).Fail("HTTP 500");
  auto call = b.Child(co, caller, "query").Client().At(10, 5).Fail("connection refused");
  tag(call);
  return b.Build();
}

TEST(Route, VirtualPeerOwnedInTheRegistry) {
  const Decision d = Route({LeafCall(
                               "t1", [](auto& s) { s.Db("postgresql", "orders"); }, "checkout")},
                           {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  ASSERT_EQ(d.culprits.size(), 1u);
  EXPECT_EQ(d.culprits[0].service, "postgresql/orders");
  EXPECT_TRUE(d.culprits[0].is_virtual);
  EXPECT_EQ(d.culprits[0].caller, "checkout");
  EXPECT_EQ(d.culprits[0].team, "data");
  EXPECT_EQ(d.teams, Names{"data"});
  // The plain rule stops at the caller.
  EXPECT_EQ(Services(d.naive), Names{"checkout"});
  EXPECT_EQ(d.naive_teams, Names{"web"});
  EXPECT_EQ(d.changed_by, std::vector<Refinement>{Refinement::kUninstrumented});
}

TEST(Route, UnownedVirtualPeerPagesItsCallersOwner) {
  const Decision d = Route({LeafCall(
                               "t1", [](auto& s) { s.Db("redis"); }, "payment")},
                           {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  ASSERT_EQ(d.culprits.size(), 1u);
  EXPECT_EQ(d.culprits[0].service, "redis");
  EXPECT_EQ(d.culprits[0].team, "payments");
  EXPECT_EQ(d.culprits[0].owner_reason,
            "redis is not instrumented and not in the registry; paging its caller payment's "
            "owner payments");
  EXPECT_NE(d.reason.find("caller payment's owner"), std::string::npos) << d.reason;
}

TEST(Route, UnownedVirtualPeerWithUnownedCallerPagesTheDefaultTeam) {
  const Decision d = Route({LeafCall(
                               "t1", [](auto& s) { s.Address("10.0.0.7"); }, "search")},
                           {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  ASSERT_EQ(d.culprits.size(), 1u);
  EXPECT_EQ(d.culprits[0].team, "platform");
  EXPECT_NE(d.culprits[0].owner_reason.find("nor is its caller search"), std::string::npos)
      << d.culprits[0].owner_reason;
}

Trace FalloutTrace() {
  TraceBuilder b("t1");
  auto fe = b.Root("frontend", "GET /buy").Server().At(0, 100).Fail("HTTP 500");
  auto c1 = b.Child(fe, "frontend", "charge").Client().At(10, 5).Fail("HTTP 503");
  b.Child(c1, "payment", "charge").Server().At(10, 5).Fail("HTTP 503");
  auto c2 = b.Child(fe, "frontend", "reserve").Client().At(20, 5).Fail("HTTP 500");
  b.Child(c2, "checkout", "reserve").Server().At(20, 5).Fail("HTTP 500");
  return b.Build();
}

TEST(Route, FalloutIsListedButNotPagedByDefault) {
  const Decision d = Route({FalloutTrace()}, {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  ASSERT_EQ(Services(d.culprits), (Names{"payment", "checkout"}));
  EXPECT_EQ(d.culprits[1].role, CulpritRole::kFallout);
  EXPECT_FALSE(d.culprits[1].paged);
  EXPECT_EQ(d.teams, Names{"payments"});
  EXPECT_EQ(d.naive_teams, (Names{"payments", "web"}));
  EXPECT_EQ(d.changed_by, std::vector<Refinement>{Refinement::kSiblingFallout});

  WalkOptions page_all;
  page_all.page_fallout = true;
  const Decision e =
      Route({FalloutTrace()}, {"frontend", Symptom::kErrors}, MakeRegistry(), page_all);
  EXPECT_TRUE(e.culprits[1].paged);
  EXPECT_EQ(e.teams, (Names{"payments", "web"}));
}

TEST(Route, RefinementThatEmptiesTheAnswerFallsBackButKeepsTheNaiveAnswer) {
  // The only failure below frontend succeeded on retry: nothing to blame below it.
  TraceBuilder b("t1");
  auto fe = b.Root("frontend", "GET /buy").Server().At(0, 100).Fail("HTTP 500");
  auto c1 = b.Child(fe, "frontend", "charge").Client().At(10, 5).Fail("HTTP 503");
  b.Child(c1, "payment", "charge").Server().At(10, 5).Fail("HTTP 503");
  auto c2 = b.Child(fe, "frontend", "charge").Client().At(20, 5);
  b.Child(c2, "payment", "charge").Server().At(20, 5);
  const Decision d = Route({b.Build()}, {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, Decision::Kind::kFallback);
  EXPECT_EQ(d.teams, Names{"web"});
  EXPECT_EQ(Services(d.naive), Names{"payment"});
  EXPECT_EQ(d.naive_teams, Names{"payments"});
  EXPECT_EQ(d.changed_by, std::vector<Refinement>{Refinement::kRetries});
}

Trace Slow(const std::string& id, double total_ms, const std::string& slow_service) {
  TraceBuilder b(id);
  auto fe = b.Root("frontend", "GET /buy").Server().At(0, total_ms);
  b.Child(fe, slow_service, "op").Server().At(1, total_ms - 2);
  return b.Build();
}

TEST(Route, LatencyVotesWithTheSlowestTraces) {
  // Four traces; the two slowest blame payment, the two fast ones checkout.
  const Decision d = Route({Slow("t1", 50, "checkout"), Slow("t2", 900, "payment"),
                            Slow("t3", 40, "checkout"), Slow("t4", 800, "payment")},
                           {"frontend", Symptom::kLatency}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, Decision::Kind::kRouted);
  EXPECT_EQ(d.symptom, Symptom::kLatency);
  ASSERT_EQ(Services(d.culprits), Names{"payment"});
  EXPECT_EQ(d.culprits[0].votes, 2);
  EXPECT_DOUBLE_EQ(d.culprits[0].share, 1.0);
  EXPECT_EQ(d.teams, Names{"payments"});
  EXPECT_NE(d.reason.find("largest self time"), std::string::npos) << d.reason;
  // The fast traces are kept in the output, with a note, but do not vote.
  EXPECT_FALSE(d.traces[0].notes.empty());
  EXPECT_NE(d.traces[0].notes.back().find("does not vote"), std::string::npos);

  WalkOptions all;
  all.latency_slowest_fraction = 1.0;
  const Decision e =
      Route({Slow("t1", 50, "checkout"), Slow("t2", 900, "payment"), Slow("t3", 40, "checkout")},
            {"frontend", Symptom::kLatency}, MakeRegistry(), all);
  EXPECT_EQ(Services(e.culprits), (Names{"checkout", "payment"}));
}

TEST(Route, EmptyTraceFallsBack) {
  Trace t;
  t.trace_id = "t1";
  const Decision d = Route({t}, {"frontend", Symptom::kErrors}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, Decision::Kind::kFallback);
  EXPECT_EQ(d.teams, Names{"web"});
}

TEST(Route, NobodyToPageSaysSo) {
  const Decision d = Route({}, {"nobody-knows", Symptom::kErrors}, MakeRegistry(false), {});
  EXPECT_EQ(d.kind, Decision::Kind::kFallback);
  EXPECT_TRUE(d.teams.empty());
  ASSERT_EQ(d.culprits.size(), 1u);
  EXPECT_TRUE(d.culprits[0].team.empty());
  EXPECT_NE(d.reason.find("nobody"), std::string::npos) << d.reason;
}

// ---------------------------------------------------------------------------------------------
// Real traces from the shared fixtures.

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<Trace> LoadFixture(const std::string& rel) {
  Result<ReadResult> r = ReadTraces(ReadFile(std::string(TRACEPAGER_FIXTURES_DIR) + "/" + rel));
  EXPECT_TRUE(r.ok()) << rel << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value().traces) : std::vector<Trace>{};
}

struct FixtureCase {
  const char* path;
  const char* alerting;  // "" : the root span's service
  Symptom symptom;
  Decision::Kind kind;
  const char* top;    // first culprit (the alerting service for a fallback)
  const char* naive;  // first naive culprit
  std::vector<Refinement> changed_by;
};

void PrintTo(const FixtureCase& c, std::ostream* os) {
  *os << c.path << " " << c.alerting << " " << SymptomName(c.symptom);
}

class RouteFixtures : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(RouteFixtures, Decide) {
  const FixtureCase& c = GetParam();
  const std::vector<Trace> traces = LoadFixture(c.path);
  ASSERT_FALSE(traces.empty());
  const Decision d = Route(traces, {c.alerting, c.symptom}, MakeRegistry(), {});
  EXPECT_EQ(d.kind, c.kind) << d.reason;
  ASSERT_FALSE(d.culprits.empty()) << d.reason;
  EXPECT_EQ(d.culprits[0].service, c.top) << d.reason;
  ASSERT_FALSE(d.naive.empty());
  EXPECT_EQ(d.naive[0].service, c.naive);
  EXPECT_EQ(d.changed_by, c.changed_by);
  EXPECT_FALSE(d.teams.empty());
}

const FixtureCase kFixtureCases[] = {
    // A failed payment below checkout (Tempo's documented trace-by-id example).
    {"tempo/from-docs/v2_trace_by_id_written.json",
     "",
     Symptom::kErrors,
     Decision::Kind::kRouted,
     "payment",
     "payment",
     {}},
    // HotROD: redis errors below driver were retried and the request succeeded; from frontend
    // nothing below failed at all.
    {"jaeger-v3/getTrace-response_hotrod.json",
     "",
     Symptom::kErrors,
     Decision::Kind::kFallback,
     "frontend",
     "frontend",
     {}},
    {"jaeger-v3/getTrace-response_hotrod.json",
     "driver",
     Symptom::kErrors,
     Decision::Kind::kFallback,
     "driver",
     "redis-manual",
     {Refinement::kRetries}},
    {"jaeger-skills/n_plus_one_positive.json",
     "driver",
     Symptom::kErrors,
     Decision::Kind::kFallback,
     "driver",
     "redis-manual",
     {Refinement::kRetries}},
    // HotROD's well-known bottleneck is the customer lookup in mysql.
    {"jaeger-v3/getTrace-response_hotrod.json",
     "",
     Symptom::kLatency,
     Decision::Kind::kRouted,
     "mysql",
     "mysql",
     {}},
    // The failing client span names no peer: the walk stops at its service.
    {"jaeger-v1/anonymizer_spans_with_inline_process.json",
     "",
     Symptom::kErrors,
     Decision::Kind::kRouted,
     "3c220036602f839e",
     "3c220036602f839e",
     {}},
    // Only 4xx answers (the caller's fault): nothing to blame below.
    {"zipkin-lens/smartthings-oauth-authorization.json",
     "",
     Symptom::kErrors,
     Decision::Kind::kFallback,
     "datamgmt",
     "datamgmt",
     {}},
    {"zipkin-lens/smartthings-mobile-web-install.json",
     "",
     Symptom::kErrors,
     Decision::Kind::kFallback,
     "coreSrv",
     "coreSrv",
     {}},
    // serviceb's consumer fails inside serviceb itself.
    {"zipkin-lens/messaging-kafka.json",
     "serviceb",
     Symptom::kErrors,
     Decision::Kind::kFallback,
     "serviceb",
     "serviceb",
     {}},
    {"jaeger-v1/edge-cases/parent-cycle.legacy.json",
     "",
     Symptom::kErrors,
     Decision::Kind::kFallback,
     "serviceName",
     "serviceName",
     {}},
};

INSTANTIATE_TEST_SUITE_P(Route, RouteFixtures, ::testing::ValuesIn(kFixtureCases));

// Every trace document in the fixtures routes, for both symptoms, to a decision that pages
// someone, with culprits whose paths start at the alerting service; and routing is
// deterministic.
TEST(RouteFixturesAll, EveryTraceDocumentRoutes) {
  namespace fs = std::filesystem;
  const fs::path root(TRACEPAGER_FIXTURES_DIR);
  std::vector<std::string> files;
  for (const char* dir :
       {"jaeger-v1", "jaeger-v3", "jaeger-skills", "otlp", "tempo", "zipkin-lens"}) {
    if (!fs::exists(root / dir)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && e.path().extension() == ".json" &&
          name.find("manifest") == std::string::npos) {
        files.push_back(fs::relative(e.path(), root).string());
      }
    }
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 25u);
  const Registry reg = MakeRegistry();
  int routed_traces = 0;
  for (const std::string& rel : files) {
    Result<ReadResult> r = ReadTraces(ReadFile((root / rel).string()));
    if (!r.ok()) continue;  // search/summary responses; the reader tests cover which
    for (Symptom symptom : {Symptom::kErrors, Symptom::kLatency}) {
      SCOPED_TRACE(rel + " " + SymptomName(symptom));
      const Decision d = Route(r->traces, {"", symptom}, reg, {});
      EXPECT_EQ(d.traces.size(), r->traces.size());
      EXPECT_FALSE(d.teams.empty()) << d.reason;
      ASSERT_FALSE(d.culprits.empty()) << d.reason;
      EXPECT_EQ(d.culprits[0].role, CulpritRole::kPrimary);
      EXPECT_TRUE(d.culprits[0].paged);
      if (d.kind == Decision::Kind::kRouted) {
        EXPECT_GT(d.culprits[0].share, 0.0);
        EXPECT_LE(d.culprits[0].share, 1.0);
      } else {
        EXPECT_EQ(d.reason.rfind("fallback: ", 0), 0u) << d.reason;
      }
      for (const TraceVerdict& v : d.traces) {
        for (const TraceCulprit& c : v.culprits) {
          ASSERT_FALSE(c.path.empty());
          EXPECT_EQ(c.path.front().service, v.alerting_service);
          EXPECT_FALSE(c.why.empty());
        }
        routed_traces += !v.culprits.empty();
      }
      const Decision again = Route(r->traces, {"", symptom}, reg, {});
      EXPECT_EQ(again.teams, d.teams);
      EXPECT_EQ(Services(again.culprits), Services(d.culprits));
    }
  }
  EXPECT_GT(routed_traces, 0);
}

}  // namespace
}  // namespace tracepager::routing
