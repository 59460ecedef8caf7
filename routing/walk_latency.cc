// The latency walk: Jaeger's critical path below the alerting service's span, and the service
// with the largest self time on it.
//
// Reference: jaeger-ui packages/jaeger-ui/src/components/TracePage/CriticalPath/index.tsx
// (computeCriticalPath, findLastFinishingChildSpan) and utils/sanitizeOverFlowingChildren.tsx.
// Differences, on purpose:
//   - Iterative instead of recursive, so a 10,000-deep trace cannot overflow the stack.
//   - A child that ends exactly when the current point is reached counts as finishing before
//     it (Jaeger requires strictly before), so back-to-back sequential calls stay on the path
//     instead of being charged to the parent as self time.
#include <algorithm>
#include <map>
#include <utility>

#include "routing/span_tree.h"
#include "routing/walk.h"
#include "routing/walk_internal.h"

namespace tracepager::routing {
namespace {

using walk_internal::MakeStep;

struct Window {
  int64_t start = 0;
  int64_t end = 0;
};

}  // namespace

TraceVerdict WalkLatency(const Trace& trace, std::string_view alerting_service,
                         const WalkOptions& options) {
  const SpanTree tree(trace);
  TraceVerdict v;
  v.trace_id = trace.trace_id;
  v.symptom = Symptom::kLatency;
  v.alerting_service = walk_internal::ResolveAlertingService(tree, alerting_service);
  walk_internal::AddTreeNotes(tree, v);
  const std::vector<int32_t> tops = walk_internal::Topmost(tree, v.alerting_service);
  v.alerting_service_found = !tops.empty();
  if (tops.empty()) {
    v.notes.push_back(trace.spans.empty() ? "the trace has no spans"
                                          : "the alerting service " + v.alerting_service +
                                                " has no spans in this trace");
    return v;
  }
  int32_t top = tops.front();
  for (int32_t t : tops) {
    if (tree.span(t).duration_ns > tree.span(top).duration_ns) top = t;
  }
  v.alerting_duration_ns = tree.span(top).duration_ns;

  // Clip every synchronous descendant to its parent's window (Jaeger's sanitizing step) and
  // keep each span's children ordered by clipped end, latest first. Spans outside their
  // parent's window, and asynchronous children, are not on the critical path, nor is anything
  // below them.
  const size_t n = tree.size();
  std::vector<Window> win(n);
  std::vector<uint8_t> in(n, 0);
  // Included children, flat: span s's are kids[kid_begin[s] .. kid_end[s]), each span appears
  // at most once, so the whole thing is one allocation of at most n entries.
  std::vector<int32_t> kids;
  kids.reserve(n);
  std::vector<uint32_t> kid_begin(n, 0), kid_end(n, 0);
  std::vector<int32_t> stack{top};
  win[static_cast<size_t>(top)] = {tree.span(top).start_ns, tree.span(top).end_ns()};
  in[static_cast<size_t>(top)] = 1;
  while (!stack.empty()) {
    const int32_t s = stack.back();
    stack.pop_back();
    const auto si = static_cast<size_t>(s);
    const Window pw = win[si];
    kid_begin[si] = static_cast<uint32_t>(kids.size());
    for (int32_t c : tree.children(s)) {
      if (tree.async_edge(c)) continue;
      const Span& cs = tree.span(c);
      if (cs.start_ns > pw.end || cs.end_ns() < pw.start) continue;
      win[static_cast<size_t>(c)] = {std::max(cs.start_ns, pw.start),
                                     std::min(cs.end_ns(), pw.end)};
      in[static_cast<size_t>(c)] = 1;
      kids.push_back(c);
      stack.push_back(c);
    }
    kid_end[si] = static_cast<uint32_t>(kids.size());
    std::stable_sort(kids.begin() + kid_begin[si], kids.begin() + kid_end[si],
                     [&](int32_t a, int32_t b) {
                       return win[static_cast<size_t>(a)].end > win[static_cast<size_t>(b)].end;
                     });
  }

  // Walk back from the top span's end: step into the last child finishing at or before the
  // current point; when none is left, the rest of the span back to its start is self time and
  // the walk returns to the parent at this span's start.
  std::vector<int64_t> self(n, 0);
  std::vector<uint32_t> pos(kid_begin);
  std::vector<int32_t> up;  // the spans above `cur` on the critical path
  int32_t cur = top;
  int64_t cursor = win[static_cast<size_t>(top)].end;
  for (;;) {
    const auto ci = static_cast<size_t>(cur);
    int32_t next = -1;
    while (pos[ci] < kid_end[ci]) {
      const int32_t c = kids[pos[ci]++];
      if (win[static_cast<size_t>(c)].end <= cursor) {
        next = c;
        break;
      }
    }
    if (next >= 0) {
      self[ci] += cursor - win[static_cast<size_t>(next)].end;
      up.push_back(cur);
      cur = next;
      cursor = win[static_cast<size_t>(next)].end;
      continue;
    }
    self[ci] += cursor - win[ci].start;
    if (up.empty()) break;
    cursor = win[ci].start;
    cur = up.back();
    up.pop_back();
  }

  // Self time per service; a call span with nothing below it waited on its peer, so with
  // options.uninstrumented its time is the (virtual) peer's.
  struct Tally {
    int64_t self = 0;
    int32_t biggest = -1;  // the span contributing most, for the path
    bool is_virtual = false;
  };
  std::map<std::pair<std::string, bool>, Tally> tally;
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!in[i] || self[i] <= 0) continue;
    const Span& s = tree.span(static_cast<int32_t>(i));
    std::string name = s.service;
    bool is_virtual = false;
    if (options.uninstrumented && IsCallSpan(s) && tree.children(static_cast<int32_t>(i)).empty()) {
      PeerName peer = VirtualPeerName(s);
      if (!peer.name.empty()) {
        name = std::move(peer.name);
        is_virtual = true;
      }
    }
    Tally& t = tally[{std::move(name), is_virtual}];
    t.self += self[i];
    t.is_virtual = is_virtual;
    if (t.biggest < 0 || self[i] > self[static_cast<size_t>(t.biggest)]) {
      t.biggest = static_cast<int32_t>(i);
    }
    total += self[i];
  }
  if (tally.empty()) {
    v.notes.push_back("the critical path below " + v.alerting_service + " has no duration");
    return v;
  }

  std::vector<std::pair<std::pair<std::string, bool>, Tally>> ranked(tally.begin(), tally.end());
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.second.self > b.second.self; });
  const auto& [key, best] = ranked.front();
  const Span& top_span = tree.span(top);

  TraceCulprit c;
  c.service = key.first;
  c.is_virtual = key.second;
  c.self_time_ns = best.self;
  c.failure_start_ns = tree.span(best.biggest).start_ns;
  if (c.is_virtual) c.caller = tree.span(best.biggest).service;
  auto pct = [total](int64_t x) {
    return std::to_string(total > 0 ? (100 * x + total / 2) / total : 0) + "%";
  };
  c.why = "on the critical path of " + top_span.service + " " + top_span.operation + " (" +
          FormatDuration(top_span.duration_ns) + "), " + c.service +
          (c.is_virtual ? " (not instrumented, called by " + c.caller + ")" : "") +
          " has the largest self time: " + FormatDuration(best.self) + " (" + pct(best.self) + ")";
  for (size_t i = 1; i < ranked.size() && i < 3; ++i) {
    c.why += (i == 1 ? "; next " : ", ") + ranked[i].first.first + " " +
             FormatDuration(ranked[i].second.self);
  }

  for (int32_t s = best.biggest; s >= 0; s = s == top ? -1 : tree.parent(s)) {
    c.path.push_back(MakeStep(tree, s));
  }
  std::reverse(c.path.begin(), c.path.end());
  walk_internal::BoundPath(c.path, 512);

  v.culprits.push_back(c);
  v.naive.push_back(std::move(c));
  return v;
}

}  // namespace tracepager::routing
