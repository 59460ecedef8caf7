#include "routing/deps.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/trace_builder.h"

namespace tracepager::routing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using tracepager::testing::TraceBuilder;

const DepEdge* FindEdge(const DependencyGraph& g, const std::string& from, const std::string& to) {
  for (const DepEdge& e : g.edges) {
    if (e.caller == from && e.callee == to) return &e;
  }
  return nullptr;
}

const DepNode* FindNode(const DependencyGraph& g, const std::string& name) {
  for (const DepNode& n : g.nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

// frontend -> checkout -> payment (failing 503) and checkout -> postgresql/orders (uninstrumented,
// named by db.system/db.name), checkout -> cart (client got a 404: caller's fault).
Trace ShopTrace(const std::string& id, int64_t payment_ms, bool payment_fails) {
  TraceBuilder b(id);
  auto root = b.Root("frontend", "GET /checkout").Server().At(0, 200);
  auto call = b.Child(root, "frontend", "POST /order").Client().At(5, 190);
  auto co = b.Child(call, "checkout", "POST /order").Server().At(6, 185);
  auto pay_call =
      b.Child(co, "checkout", "Charge").Client().At(10, static_cast<double>(payment_ms));
  auto pay =
      b.Child(pay_call, "payment", "Charge").Server().At(11, static_cast<double>(payment_ms - 2));
  if (payment_fails) {
    pay_call.Fail("HTTP 503");
    pay.Fail("HTTP 503");
  }
  b.Child(co, "checkout", "SELECT orders").Client().At(120, 5).Db("postgresql", "orders");
  auto cart_call = b.Child(co, "checkout", "GET /cart").Client().At(130, 3).CallerFault("HTTP 404");
  b.Child(cart_call, "cart", "GET /cart").Server().At(131, 1).Http(404);
  return b.Build();
}

TEST(Deps, DirectEdgesWithCallsErrorsAndPercentiles) {
  std::vector<Trace> traces;
  for (int i = 0; i < 100; ++i) {
    char id[33];
    std::snprintf(id, sizeof id, "%032x", i + 1);
    traces.push_back(ShopTrace(id, 10 + i, i % 4 == 0));  // payment 10..109 ms, 25 failures
  }
  const DependencyGraph g = BuildDependencyGraph(traces);
  EXPECT_EQ(g.traces, 100u);

  const DepEdge* fc = FindEdge(g, "frontend", "checkout");
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->calls, 100u);
  EXPECT_EQ(fc->errors, 0u);
  EXPECT_EQ(fc->p50_ns, 190'000'000);

  const DepEdge* cp = FindEdge(g, "checkout", "payment");
  ASSERT_NE(cp, nullptr);
  EXPECT_EQ(cp->calls, 100u);
  EXPECT_EQ(cp->errors, 25u);
  EXPECT_EQ(cp->p50_ns, 59'000'000);   // nearest rank 50 of 10..109 ms
  EXPECT_EQ(cp->p99_ns, 108'000'000);  // nearest rank 99

  const DepEdge* db = FindEdge(g, "checkout", "postgresql/orders");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->calls, 100u);
  EXPECT_TRUE(FindNode(g, "postgresql/orders")->is_virtual);
  EXPECT_FALSE(FindNode(g, "payment")->is_virtual);

  const DepEdge* cart = FindEdge(g, "checkout", "cart");
  ASSERT_NE(cart, nullptr);
  EXPECT_EQ(cart->errors, 0u);  // a 4xx is the caller's problem, not a failing dependency

  EXPECT_EQ(g.edges.size(), 4u);  // no self edges (frontend server -> frontend client)
  EXPECT_THAT(FindNode(g, "frontend")->depends_on, ElementsAre("checkout"));
  EXPECT_THAT(FindNode(g, "frontend")->transitive,
              ElementsAre("cart", "checkout", "payment", "postgresql/orders"));
  EXPECT_THAT(FindNode(g, "payment")->callers, ElementsAre("checkout"));
  EXPECT_TRUE(FindNode(g, "payment")->transitive.empty());
}

TEST(Deps, CallCyclesTerminateAndTransitiveExcludesSelf) {
  // A calls B, B calls back into A, A calls C.
  TraceBuilder b;
  auto a = b.Root("A", "op").Server().At(0, 100);
  auto ab = b.Child(a, "A", "call B").Client().At(1, 50);
  auto bs = b.Child(ab, "B", "op").Server().At(2, 48);
  auto ba = b.Child(bs, "B", "call A").Client().At(3, 20);
  auto a2 = b.Child(ba, "A", "op2").Server().At(4, 18);
  auto ac = b.Child(a2, "A", "call C").Client().At(5, 10);
  b.Child(ac, "C", "op").Server().At(6, 8).Fail("boom");
  const DependencyGraph g = BuildDependencyGraph({b.Build()});
  EXPECT_THAT(FindNode(g, "A")->transitive, ElementsAre("B", "C"));
  EXPECT_THAT(FindNode(g, "B")->transitive, ElementsAre("A", "C"));
  EXPECT_EQ(FindEdge(g, "A", "C")->errors, 1u);
}

TEST(Deps, AsyncAndUninstrumentedClientSide) {
  TraceBuilder b;
  auto co = b.Root("checkout", "place").Server().At(0, 50);
  auto prod =
      b.Child(co, "checkout", "orders publish").Producer().At(10, 2).Messaging("kafka", "orders");
  b.Child(prod, "accounting", "orders process").Consumer().At(100, 30);
  b.Child(co, "shipping", "GetQuote").Server().At(20, 10);  // no client span recorded
  b.Child(co, "checkout", "publish audit").Producer().At(40, 1).Messaging("kafka", "audit");
  const DependencyGraph g = BuildDependencyGraph({b.Build()});
  const DepEdge* acc = FindEdge(g, "checkout", "accounting");
  ASSERT_NE(acc, nullptr);
  EXPECT_EQ(acc->async_calls, 1u);
  const DepEdge* ship = FindEdge(g, "checkout", "shipping");
  ASSERT_NE(ship, nullptr);
  EXPECT_EQ(ship->async_calls, 0u);
  EXPECT_EQ(ship->p50_ns, 10'000'000);
  ASSERT_NE(FindEdge(g, "checkout", "kafka/audit"), nullptr);   // a leaf producer names its topic
  EXPECT_EQ(FindEdge(g, "checkout", "kafka/orders"), nullptr);  // instrumented consumer instead
}

TEST(Deps, EmptyInput) {
  const DependencyGraph g = BuildDependencyGraph({});
  EXPECT_TRUE(g.nodes.empty());
  EXPECT_EQ(RenderDepsJson(g, nullptr),
            "{\"traces\":0,\"owners_known\":false,\"services\":[],\"edges\":[]}\n");
}

Registry ShopRegistry() {
  auto r = Registry::FromYaml(
      "teams: {web: {}, pay: {}}\nservices:\n  frontend: {team: web}\n  checkout: {team: web}\n"
      "  payment: {team: pay, aliases: [postgresql/orders]}\n",
      "reg.yaml");
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(*r) : Registry();
}

TEST(Deps, JsonHasEdgesOwnersAndTransitiveDependencies) {
  const DependencyGraph g = BuildDependencyGraph({ShopTrace("1", 30, true)});
  const Registry reg = ShopRegistry();
  const std::string json = RenderDepsJson(g, &reg);
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError()) << json;
  ASSERT_TRUE(d["services"].IsArray());
  bool saw_cart = false;
  for (const auto& s : d["services"].GetArray()) {
    const std::string name = s["name"].GetString();
    if (name == "cart") {
      saw_cart = true;
      EXPECT_TRUE(s["team"].IsNull());
    }
    if (name == "postgresql/orders") {
      EXPECT_TRUE(s["virtual"].GetBool());
      EXPECT_STREQ(s["team"].GetString(), "pay");  // owned through an alias
    }
    if (name == "frontend") {
      EXPECT_EQ(s["transitive"].Size(), 4u);
    }
  }
  EXPECT_TRUE(saw_cart);
  bool saw_payment_edge = false;
  for (const auto& e : d["edges"].GetArray()) {
    if (std::string(e["to"].GetString()) == "payment") {
      saw_payment_edge = true;
      EXPECT_EQ(e["calls"].GetUint64(), 1u);
      EXPECT_EQ(e["errors"].GetUint64(), 1u);
      EXPECT_EQ(e["p50_ns"].GetInt64(), 30'000'000);
      EXPECT_DOUBLE_EQ(e["p99_ms"].GetDouble(), 30.0);
    }
  }
  EXPECT_TRUE(saw_payment_edge);
}

TEST(Deps, DotMarksFailingEdgesAndUnownedServicesAndEscapesNames) {
  TraceBuilder b;
  auto root = b.Root("web \"edge\"\\", "GET").Server().At(0, 10);
  auto call = b.Child(root, "web \"edge\"\\", "call").Client().At(1, 5).Fail("HTTP 503");
  b.Child(call, "cart", "op").Server().At(2, 3).Fail("HTTP 503");
  std::vector<Trace> traces = {b.Build(), ShopTrace("2", 30, false)};
  const DependencyGraph g = BuildDependencyGraph(traces);
  const Registry reg = ShopRegistry();
  const std::string dot = RenderDepsDot(g, &reg);
  EXPECT_THAT(dot, HasSubstr("\"web \\\"edge\\\"\\\\\" -> \"cart\" [label=\"1 call, 1 error"));
  EXPECT_THAT(dot, HasSubstr("color=red"));
  EXPECT_THAT(dot, HasSubstr("\"cart\" [label=\"cart\\n(no owner)\", color=orange"));
  EXPECT_THAT(dot, HasSubstr("\"frontend\" [label=\"frontend\\nteam: web\""));
  EXPECT_THAT(dot, HasSubstr("\"postgresql/orders\" [label=\"postgresql/orders\\n(uninstrumented)"
                             "\\nteam: pay\", shape=ellipse"));
  EXPECT_THAT(dot, Not(HasSubstr("checkout\" -> \"payment\" [label=\"1 call, ")));

  const std::string no_registry = RenderDepsDot(g, nullptr);
  EXPECT_THAT(no_registry, Not(HasSubstr("(no owner)")));
  EXPECT_THAT(no_registry, HasSubstr("owners unknown"));

  // Graphviz must accept it (scripts/setup installs graphviz).
  std::string dot_path;
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    if (std::filesystem::exists(std::string(dir) + "/dot")) {
      dot_path = std::string(dir) + "/dot";
      break;
    }
  }
  ASSERT_FALSE(dot_path.empty()) << "graphviz `dot` not installed (scripts/setup installs it)";
  const auto r = tracepager::testing::RunProcess({dot_path, "-Tsvg"}, dot);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("<svg"));
  EXPECT_EQ(r.err, "");
  const auto r2 = tracepager::testing::RunProcess({dot_path, "-Tsvg"}, no_registry);
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
}

TEST(Deps, ObservedServicesFeedTheUnownedRule) {
  const DependencyGraph g = BuildDependencyGraph({ShopTrace("1", 30, true)});
  const std::vector<ObservedService> obs = ObservedServices(g);
  ASSERT_EQ(obs.size(), 5u);
  const Registry reg = ShopRegistry();
  CheckInputs in;
  in.registry = &reg;
  in.observed = obs;
  const std::vector<Finding> f = CheckRegistry(in, CheckOptions{});
  std::vector<std::string> s;
  for (const Finding& x : f) {
    if (x.kind == Finding::Kind::kUnownedService) s.push_back(x.ToString());
  }
  EXPECT_THAT(s, ElementsAre("unowned-service: service cart: seen in traces but no service or "
                             "alias owns it; nobody would be paged"));
}

}  // namespace
}  // namespace tracepager::routing
