// The service dependency graph as the traces show it: who calls whom, how often, how often it
// fails and how long the calls take. The dynamic half of the documentation, next to the
// registry's static ownership.
//
// Edges (caller -> callee), found on each trace's span tree (routing/span_tree.h):
//   - a call span (client or producer, routing/span_tree.h IsCallSpan) of service A whose
//     children run in service B: one call A -> B per call span and callee service, timed by the
//     call span (the caller's view);
//   - a call span with no children that names a peer (VirtualPeerName: peer.service, db.system
//     and db.name, messaging system and destination, server.address): one call A -> peer, the
//     peer being a virtual (uninstrumented) service unless spans of that service exist;
//   - a span of service B directly under a non-call span of service A (uninstrumented client
//     side, consumers, FOLLOWS_FROM adoptions): one call A -> B timed by B's span.
// A call is an error when the call span failed or a callee span under it failed, in both cases
// unless the failure is the caller's own (Span::caller_fault: a 4xx answer). A call is
// asynchronous when the span tree says so (SpanTree::async_edge) or its call span is a producer.
// Percentiles are nearest-rank over the calls' durations.
//
// Pure: no I/O; safe to call concurrently. Linear in spans plus, for the transitive closure,
// O(services x edges).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "routing/registry.h"
#include "routing/registry_check.h"
#include "routing/trace.h"

namespace tracepager::routing {

struct DepEdge {
  std::string caller;
  std::string callee;
  uint64_t calls = 0;
  uint64_t errors = 0;
  uint64_t async_calls = 0;
  int64_t p50_ns = 0;
  int64_t p99_ns = 0;
};

struct DepNode {
  std::string name;
  bool is_virtual = false;              // never seen as a span's service: an uninstrumented peer
  std::vector<std::string> depends_on;  // direct callees, sorted
  std::vector<std::string> transitive;  // everything reachable through calls, sorted, not itself
  std::vector<std::string> callers;     // direct callers, sorted
};

struct DependencyGraph {
  size_t traces = 0;
  std::vector<DepNode> nodes;  // sorted by name
  std::vector<DepEdge> edges;  // sorted by (caller, callee)
};

DependencyGraph BuildDependencyGraph(const std::vector<Trace>& traces);

// The graph's services, for registry_check's unowned-service rule.
std::vector<ObservedService> ObservedServices(const DependencyGraph& graph);

// JSON: {"traces":N, "owners_known":bool, "services":[{"name","virtual","team","depends_on",
// "transitive","callers"}], "edges":[{"from","to","calls","errors","async_calls","p50_ns",
// "p99_ns","p50_ms","p99_ms"}]}. "team" is the owner from `registry` (null when unowned);
// without a registry (nullptr) "owners_known" is false and "team" is absent.
std::string RenderDepsJson(const DependencyGraph& graph, const Registry* registry);

// Graphviz DOT (renders with `dot -Tsvg`): services as boxes labelled with their team,
// uninstrumented peers as dashed ellipses, services without an owner drawn orange with
// "(no owner)" (only when a registry is given), edges labelled with calls, errors and p50/p99;
// edges with errors red, asynchronous edges dashed. Names are escaped.
std::string RenderDepsDot(const DependencyGraph& graph, const Registry* registry);

}  // namespace tracepager::routing
