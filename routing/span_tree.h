// SpanTree: the parent/child structure of one Trace, built once and shared by the walks.
//
// Edges come from Span::parent_id. A span whose parent is 0, itself or missing from the trace
// is adopted through its first reference into the same trace (FOLLOWS_FROM first, then a link,
// then an extra CHILD_OF); with none it is a root, so orphans hang as extra roots. Parent
// cycles (which readers already break) are broken again here: the first span of a cycle, in
// input order, becomes a root and a warning says so. Duplicate span ids: the first span wins.
//
// An edge is asynchronous (the parent does not wait for the child) when it was made from a
// FOLLOWS_FROM reference or a link, when the child names its parent_id also as a FOLLOWS_FROM
// reference, when the child is a consumer span, or when the parent is a producer span.
//
// Building is linear in spans and iterative (a chain 10,000 deep is fine). The tree holds a
// pointer to the trace: REQUIRES the trace outlives the tree and is not modified meanwhile.
// Immutable after building; safe to share between threads.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "routing/trace.h"

namespace tracepager::routing {

class SpanTree {
 public:
  explicit SpanTree(const Trace& trace);

  const Trace& trace() const { return *trace_; }
  size_t size() const { return parent_.size(); }
  const Span& span(int32_t index) const { return trace_->spans[static_cast<size_t>(index)]; }

  // Tree parent of span `index`, or -1 for a root.
  int32_t parent(int32_t index) const { return parent_[static_cast<size_t>(index)]; }
  // True when the edge parent(index) -> index is asynchronous (see above).
  bool async_edge(int32_t index) const { return async_[static_cast<size_t>(index)] != 0; }
  // Children of span `index`, in input order.
  std::span<const int32_t> children(int32_t index) const {
    const auto i = static_cast<size_t>(index);
    return {children_.data() + child_begin_[i],
            static_cast<size_t>(child_begin_[i + 1] - child_begin_[i])};
  }
  // Roots in input order: real roots, orphans and spans where a cycle was broken.
  const std::vector<int32_t>& roots() const { return roots_; }
  // The earliest span start in the trace (0 for an empty trace); offsets in output are from it.
  int64_t min_start_ns() const { return min_start_ns_; }
  // Gaps found while building (cycles broken, duplicate span ids).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Index of the span with `span_id`, or -1.
  int32_t Find(uint64_t span_id) const;

 private:
  const Trace* trace_;
  std::vector<int32_t> parent_;
  std::vector<uint8_t> async_;
  std::vector<int32_t> child_begin_;  // size()+1 offsets into children_
  std::vector<int32_t> children_;
  std::vector<int32_t> roots_;
  std::vector<std::pair<uint64_t, int32_t>> by_id_;  // sorted by span id
  int64_t min_start_ns_ = 0;
  std::vector<std::string> warnings_;
};

// The root span that stands for the whole trace: the earliest-starting span with parent_id 0,
// else the earliest-starting root of the tree. -1 for an empty trace.
int32_t PrimaryRoot(const SpanTree& tree);

// "12.5 ms", "3.20 s", "800 us", "15 ns": durations for people.
std::string FormatDuration(int64_t ns);

// True for a span that calls out of its service: client and producer spans, and spans of
// unspecified kind that name a peer (peer.service, db.system or server.address).
bool IsCallSpan(const Span& span);

// The name of the uninstrumented peer a call span names, and which attribute named it.
// Virtual peer names, in order of preference:
//   peer.service                        "payments-db"     (as given)
//   db.system and db.name               "postgresql/orders"
//   db.system alone                     "postgresql"
//   messaging.system and destination    "kafka/orders"    (producer spans)
//   server.address                      "db-7.internal"   (as given)
// Empty `name` when the span names no peer.
struct PeerName {
  std::string name;
  const char* source = "";  // "peer.service", "db.system/db.name", ...
};
PeerName VirtualPeerName(const Span& span);

}  // namespace tracepager::routing
