// TraceBuilder: hand-made traces for tests, in a few readable lines.
//
//   TraceBuilder b;
//   auto root = b.Root("frontend", "GET /checkout").Server().At(0, 100).Fail("HTTP 500");
//   auto call = b.Child(root, "frontend", "POST /charge").Client().At(10, 80).Fail("HTTP 503");
//   b.Child(call, "payment", "POST /charge").Server().At(12, 75).Fail("HTTP 503");
//   routing::Trace t = b.Build();
//
// Times are in milliseconds from a fixed epoch (kEpochNs); AtNs() takes nanoseconds. Span ids
// are 1, 2, 3, ... in creation order. Failure fields are set directly (failed, caller_fault,
// failure_reason, failure_source), as ClassifyFailure would; nothing is derived. Handles stay
// valid while the builder lives (they hold an index, not a pointer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "routing/trace.h"

namespace tracepager::testing {

class TraceBuilder {
 public:
  static constexpr int64_t kEpochNs = 1'700'000'000'000'000'000;

  class SpanHandle {
   public:
    SpanHandle(TraceBuilder* builder, size_t index) : b_(builder), i_(index) {}

    SpanHandle& Kind(routing::SpanKind kind);
    SpanHandle& Server() { return Kind(routing::SpanKind::kServer); }
    SpanHandle& Client() { return Kind(routing::SpanKind::kClient); }
    SpanHandle& Producer() { return Kind(routing::SpanKind::kProducer); }
    SpanHandle& Consumer() { return Kind(routing::SpanKind::kConsumer); }
    SpanHandle& Internal() { return Kind(routing::SpanKind::kInternal); }
    // start and duration in milliseconds from kEpochNs.
    SpanHandle& At(double start_ms, double duration_ms);
    SpanHandle& AtNs(int64_t start_ns, int64_t duration_ns);
    // Marks the span failed with `reason` (status ERROR).
    SpanHandle& Fail(std::string reason = "error");
    // Marks the span failed as the caller's own problem (a client span that got a 4xx).
    SpanHandle& CallerFault(std::string reason = "HTTP 404");
    SpanHandle& Grpc(int code);
    SpanHandle& Http(int status);
    SpanHandle& Peer(std::string peer_service);
    SpanHandle& Db(std::string system, std::string name = "");
    SpanHandle& Address(std::string server_address);
    SpanHandle& Messaging(std::string system, std::string destination);
    SpanHandle& FollowsFrom(uint64_t span_id);  // adds a FOLLOWS_FROM reference
    SpanHandle& ParentId(uint64_t parent_id);   // overrides the parent (orphans, cycles)

    uint64_t id() const;
    routing::Span& span() const;

   private:
    TraceBuilder* b_;
    size_t i_;
  };

  explicit TraceBuilder(std::string trace_id = "00000000000000000000000000000001");

  SpanHandle Root(std::string service, std::string operation);
  SpanHandle Child(const SpanHandle& parent, std::string service, std::string operation);
  SpanHandle ChildOf(uint64_t parent_id, std::string service, std::string operation);
  // A span with no parent whose only tie to `trigger` is a FOLLOWS_FROM reference.
  SpanHandle FollowerOf(const SpanHandle& trigger, std::string service, std::string operation);

  routing::Trace Build() const { return trace_; }
  routing::Trace& trace() { return trace_; }

 private:
  routing::Trace trace_;
  uint64_t next_id_ = 1;
};

}  // namespace tracepager::testing
