#include "routing/span_tree.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace tracepager::routing {
namespace {

// A reference counts only when it stays inside this trace: links and FOLLOWS_FROM often name
// spans of other traces (a batch consumer linking to each producer), which cannot be walked.
bool RefInTrace(const SpanRef& ref, const Trace& trace) {
  return ref.span_id != 0 && (ref.trace_id.empty() || ref.trace_id == trace.trace_id);
}

}  // namespace

SpanTree::SpanTree(const Trace& trace) : trace_(&trace) {
  const size_t n = trace.spans.size();
  // Span indices are int32_t to halve the memory of the per-span arrays; readers cap span
  // counts far below 2^31 (ReadLimits::max_spans), so this only guards hand-made input.
  const size_t limit = std::min(n, static_cast<size_t>(std::numeric_limits<int32_t>::max() - 1));
  if (limit < n) warnings_.push_back("trace has more than 2^31 spans; the rest are ignored");

  by_id_.reserve(limit);
  for (size_t i = 0; i < limit; ++i) {
    by_id_.emplace_back(trace.spans[i].span_id, static_cast<int32_t>(i));
  }
  // Stable sort keeps the first of duplicate ids first, so Find() returns it.
  std::stable_sort(by_id_.begin(), by_id_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < by_id_.size(); ++i) {
    if (by_id_[i].first == by_id_[i - 1].first) {
      warnings_.push_back("duplicate span id " + SpanIdHex(by_id_[i].first) +
                          "; references resolve to its first occurrence");
    }
  }

  parent_.assign(limit, -1);
  async_.assign(limit, 0);
  min_start_ns_ = limit == 0 ? 0 : std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < limit; ++i) {
    const Span& s = trace.spans[i];
    min_start_ns_ = std::min(min_start_ns_, s.start_ns);
    int32_t p = -1;
    bool async = false;
    if (s.parent_id != 0) p = Find(s.parent_id);
    if (p == static_cast<int32_t>(i)) p = -1;  // names itself as parent
    if (p >= 0) {
      for (const SpanRef& r : s.refs) {
        if (r.type == SpanRef::Type::kFollowsFrom && r.span_id == s.parent_id) async = true;
      }
    } else {
      // Adopt through a reference, preferring FOLLOWS_FROM (Jaeger's "parent does not wait"),
      // then a link (OTLP's way of saying the same for messaging), then a stray CHILD_OF.
      for (SpanRef::Type type :
           {SpanRef::Type::kFollowsFrom, SpanRef::Type::kLink, SpanRef::Type::kChildOf}) {
        for (const SpanRef& r : s.refs) {
          if (p < 0 && r.type == type && RefInTrace(r, trace)) {
            p = Find(r.span_id);
            if (p == static_cast<int32_t>(i)) p = -1;
            async = p >= 0 && type != SpanRef::Type::kChildOf;
          }
        }
      }
    }
    parent_[i] = p;
    if (p >= 0) {
      const Span& ps = trace.spans[static_cast<size_t>(p)];
      async_[i] = async || s.kind == SpanKind::kConsumer || ps.kind == SpanKind::kProducer;
    }
  }

  // Children in CSR form: two passes, no per-span vectors.
  auto build_children = [&] {
    child_begin_.assign(limit + 1, 0);
    for (size_t i = 0; i < limit; ++i) {
      if (parent_[i] >= 0) ++child_begin_[static_cast<size_t>(parent_[i]) + 1];
    }
    for (size_t i = 0; i < limit; ++i) child_begin_[i + 1] += child_begin_[i];
    children_.assign(static_cast<size_t>(child_begin_[limit]), 0);
    std::vector<int32_t> fill(child_begin_.begin(), child_begin_.end() - 1);
    for (size_t i = 0; i < limit; ++i) {
      if (parent_[i] >= 0) {
        children_[static_cast<size_t>(fill[static_cast<size_t>(parent_[i])]++)] =
            static_cast<int32_t>(i);
      }
    }
  };
  build_children();

  // Every span has at most one parent, so a span not reachable from a root sits on (or below)
  // a parent cycle. Cut each cycle at its first span in input order and walk on from there.
  std::vector<uint8_t> seen(limit, 0);
  std::vector<int32_t> stack;
  auto mark_from = [&](int32_t root) {
    stack.push_back(root);
    seen[static_cast<size_t>(root)] = 1;
    while (!stack.empty()) {
      const int32_t v = stack.back();
      stack.pop_back();
      for (int32_t c : children(v)) {
        if (!seen[static_cast<size_t>(c)]) {
          seen[static_cast<size_t>(c)] = 1;
          stack.push_back(c);
        }
      }
    }
  };
  for (size_t i = 0; i < limit; ++i) {
    if (parent_[i] < 0) mark_from(static_cast<int32_t>(i));
  }
  bool cut = false;
  for (size_t i = 0; i < limit; ++i) {
    if (seen[i]) continue;
    warnings_.push_back("parent cycle through span " + SpanIdHex(trace.spans[i].span_id) +
                        "; it is treated as a root");
    parent_[i] = -1;
    async_[i] = 0;
    cut = true;
    mark_from(static_cast<int32_t>(i));
  }
  if (cut) build_children();

  for (size_t i = 0; i < limit; ++i) {
    if (parent_[i] < 0) roots_.push_back(static_cast<int32_t>(i));
  }
}

int32_t SpanTree::Find(uint64_t span_id) const {
  auto it = std::lower_bound(by_id_.begin(), by_id_.end(), span_id,
                             [](const auto& e, uint64_t id) { return e.first < id; });
  if (it == by_id_.end() || it->first != span_id) return -1;
  return it->second;
}

int32_t PrimaryRoot(const SpanTree& tree) {
  int32_t best = -1;
  bool best_real = false;
  for (int32_t r : tree.roots()) {
    const bool real = tree.span(r).parent_id == 0;
    if (best < 0 || (real && !best_real) ||
        (real == best_real && tree.span(r).start_ns < tree.span(best).start_ns)) {
      best = r;
      best_real = real;
    }
  }
  return best;
}

std::string FormatDuration(int64_t ns) {
  char buf[48];
  const double v = static_cast<double>(ns);
  const int64_t mag = ns < 0 ? -ns : ns;
  if (mag < 1'000) {
    std::snprintf(buf, sizeof buf, "%lld ns", static_cast<long long>(ns));
  } else if (mag < 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.0f us", v / 1e3);
  } else if (mag < 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.1f ms", v / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", v / 1e9);
  }
  return buf;
}

bool IsCallSpan(const Span& span) {
  switch (span.kind) {
    case SpanKind::kClient:
    case SpanKind::kProducer:
      return true;
    case SpanKind::kUnspecified:
      return !span.peer_service.empty() || !span.db_system.empty() || !span.server_address.empty();
    default:
      return false;
  }
}

PeerName VirtualPeerName(const Span& span) {
  if (!span.peer_service.empty()) return {span.peer_service, "peer.service"};
  if (!span.db_system.empty()) {
    if (!span.db_name.empty()) return {span.db_system + "/" + span.db_name, "db.system/db.name"};
    return {span.db_system, "db.system"};
  }
  if (!span.messaging_system.empty()) {
    if (!span.messaging_destination.empty()) {
      return {span.messaging_system + "/" + span.messaging_destination,
              "messaging.system/messaging.destination"};
    }
    return {span.messaging_system, "messaging.system"};
  }
  if (!span.server_address.empty()) return {span.server_address, "server.address"};
  return {};
}

}  // namespace tracepager::routing
