#include "tests/support/trace_builder.h"

#include <cmath>
#include <utility>

namespace tracepager::testing {

using routing::Span;

TraceBuilder::TraceBuilder(std::string trace_id) { trace_.trace_id = std::move(trace_id); }

TraceBuilder::SpanHandle TraceBuilder::ChildOf(uint64_t parent_id, std::string service,
                                               std::string operation) {
  Span s;
  s.span_id = next_id_++;
  s.parent_id = parent_id;
  s.service = std::move(service);
  s.operation = std::move(operation);
  s.start_ns = kEpochNs;
  trace_.spans.push_back(std::move(s));
  return SpanHandle(this, trace_.spans.size() - 1);
}

TraceBuilder::SpanHandle TraceBuilder::Root(std::string service, std::string operation) {
  return ChildOf(0, std::move(service), std::move(operation));
}

TraceBuilder::SpanHandle TraceBuilder::Child(const SpanHandle& parent, std::string service,
                                             std::string operation) {
  return ChildOf(parent.id(), std::move(service), std::move(operation));
}

TraceBuilder::SpanHandle TraceBuilder::FollowerOf(const SpanHandle& trigger, std::string service,
                                                  std::string operation) {
  SpanHandle h = ChildOf(0, std::move(service), std::move(operation));
  h.FollowsFrom(trigger.id());
  return h;
}

uint64_t TraceBuilder::SpanHandle::id() const { return span().span_id; }
Span& TraceBuilder::SpanHandle::span() const { return b_->trace_.spans[i_]; }

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::Kind(routing::SpanKind kind) {
  span().kind = kind;
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::At(double start_ms, double duration_ms) {
  return AtNs(std::llround(start_ms * 1e6), std::llround(duration_ms * 1e6));
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::AtNs(int64_t start_ns, int64_t duration_ns) {
  span().start_ns = kEpochNs + start_ns;
  span().duration_ns = duration_ns;
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::Fail(std::string reason) {
  Span& s = span();
  s.failed = true;
  s.caller_fault = false;
  s.status = routing::StatusCode::kError;
  s.status_message = reason;
  s.failure_source = routing::FailureSource::kOtlpStatus;
  s.failure_reason = std::move(reason);
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::CallerFault(std::string reason) {
  Span& s = span();
  s.failed = true;
  s.caller_fault = true;
  s.failure_source = routing::FailureSource::kHttpStatus;
  s.failure_reason = std::move(reason);
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::Grpc(int code) {
  span().grpc_code = code;
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::Http(int status) {
  span().http_status = status;
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::Peer(std::string peer_service) {
  span().peer_service = std::move(peer_service);
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::Db(std::string system, std::string name) {
  span().db_system = std::move(system);
  span().db_name = std::move(name);
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::Address(std::string server_address) {
  span().server_address = std::move(server_address);
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::Messaging(std::string system,
                                                              std::string destination) {
  span().messaging_system = std::move(system);
  span().messaging_destination = std::move(destination);
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::FollowsFrom(uint64_t span_id) {
  routing::SpanRef r;
  r.type = routing::SpanRef::Type::kFollowsFrom;
  r.trace_id = b_->trace_.trace_id;
  r.span_id = span_id;
  span().refs.push_back(std::move(r));
  return *this;
}

TraceBuilder::SpanHandle& TraceBuilder::SpanHandle::ParentId(uint64_t parent_id) {
  span().parent_id = parent_id;
  return *this;
}

}  // namespace tracepager::testing
