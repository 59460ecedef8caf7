// Helpers shared by the error walk (walk.cc) and the latency walk (walk_latency.cc). Internal to
// tracepager_routing; not an API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "routing/span_tree.h"
#include "routing/walk.h"

namespace tracepager::routing::walk_internal {

// A path step describing span `index`.
PathStep MakeStep(const SpanTree& tree, int32_t index);
// "+12.5 ms": an absolute time as an offset from the trace's first span.
std::string Offset(const SpanTree& tree, int64_t t);
// The span's failure reason, "error" when it has none.
std::string Reason(const Span& s);
// Removes steps from the middle of `path` so that at most `max_steps` remain.
void BoundPath(std::vector<PathStep>& path, size_t max_steps);
// `alerting_service`, or the service of the trace's primary root span when it is empty.
std::string ResolveAlertingService(const SpanTree& tree, std::string_view alerting_service);
// Copies the tree's gaps (cycles, duplicates) into the verdict's notes, bounded.
void AddTreeNotes(const SpanTree& tree, TraceVerdict& v);
// The service's topmost spans (no ancestor of the same service), in tree order.
std::vector<int32_t> Topmost(const SpanTree& tree, std::string_view service);

}  // namespace tracepager::routing::walk_internal
