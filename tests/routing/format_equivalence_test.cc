// The same trace written as OTLP JSON, Jaeger v1 JSON and Zipkin v2 JSON must lead to the same
// decision: the normalized model hides the backend.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "routing/registry.h"
#include "routing/route.h"
#include "routing/trace_reader.h"
#include "tests/support/process.h"

namespace tracepager::routing {
namespace {

using tracepager::testing::ReadFile;
using tracepager::testing::SourcePath;

// What must not depend on the format: the decision, the teams, the culprits and the service
// paths. (Operation names legitimately differ: Zipkin lower-cases span names.)
struct Summary {
  std::string decision;
  std::vector<std::string> teams;
  std::vector<std::string> culprits;  // service/team/role
  std::vector<std::string> culprit_services;
  std::vector<std::string> naive;  // services
  std::vector<std::string> paths;
  std::vector<std::string> changed_by;

  bool operator==(const Summary&) const = default;
};

Summary Summarize(const Decision& d) {
  Summary s;
  s.decision = DecisionKindName(d.kind);
  s.teams = d.teams;
  for (const Culprit& c : d.culprits) {
    s.culprits.push_back(c.service + "/" + c.team + "/" + CulpritRoleName(c.role));
    s.culprit_services.push_back(c.service);
  }
  for (const Culprit& c : d.naive) s.naive.push_back(c.service);
  for (const TraceVerdict& t : d.traces) {
    for (const TraceCulprit& c : t.culprits) {
      std::string path = t.trace_id + ":";
      for (const PathStep& step : c.path) path += " " + step.service;
      s.paths.push_back(path + " -> " + c.service);
    }
  }
  for (Refinement r : d.changed_by) s.changed_by.push_back(RefinementName(r));
  return s;
}

Decision RouteFile(const std::string& relative, TraceFormat expected_format,
                   const Registry& registry) {
  auto read = ReadTraces(ReadFile(SourcePath(relative)));
  EXPECT_TRUE(read.ok()) << relative << ": " << (read.ok() ? "" : read.error().message);
  if (!read.ok()) return {};
  EXPECT_EQ(read->format, expected_format) << relative;
  RouteRequest request;
  request.alerting_service = "frontend";
  return Route(read->traces, request, registry, WalkOptions{});
}

TEST(FormatEquivalence, SameTraceInThreeFormatsGivesTheSameDecision) {
  auto registry = Registry::FromYaml(ReadFile(SourcePath("etc/registry.yaml")), "registry.yaml");
  ASSERT_TRUE(registry.ok()) << registry.error().message;

  Decision otlp =
      RouteFile("etc/examples/traces/checkout-payment-db.otlp.json", TraceFormat::kOtlp, *registry);
  Decision jaeger = RouteFile("etc/examples/traces/checkout-payment-db.jaeger.json",
                              TraceFormat::kJaegerV1, *registry);
  Decision zipkin = RouteFile("etc/examples/traces/checkout-payment-db.zipkin.json",
                              TraceFormat::kZipkinV2, *registry);

  Summary expected = Summarize(otlp);
  // The example is a routed decision that the refinements change: a check that compares two
  // empty answers would prove nothing.
  EXPECT_EQ(expected.decision, "routed");
  ASSERT_FALSE(expected.culprits.empty());
  EXPECT_NE(expected.culprit_services, expected.naive);
  EXPECT_EQ(Summarize(jaeger), expected);
  EXPECT_EQ(Summarize(zipkin), expected);
}

}  // namespace
}  // namespace tracepager::routing
