#include "integrations/metrics.h"

namespace tracepager::integrations {

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kConnect:
      return "connect";
    case ErrorKind::kTls:
      return "tls";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kReset:
      return "reset";
    case ErrorKind::kHttp4xx:
      return "http_4xx";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kHttp5xx:
      return "http_5xx";
    case ErrorKind::kTooLarge:
      return "too_large";
    case ErrorKind::kBadResponse:
      return "bad_response";
    case ErrorKind::kBadBody:
      return "bad_body";
    case ErrorKind::kContentType:
      return "content_type";
    case ErrorKind::kQueueFull:
      return "queue_full";
    case ErrorKind::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

void InMemoryBackendMetrics::ObserveRequest(std::string_view backend,
                                            std::chrono::nanoseconds latency, int status) {
  const double seconds = std::chrono::duration<double>(latency).count();
  size_t bucket = 0;
  while (bucket < kLatencyBuckets.size() && seconds > kLatencyBuckets[bucket]) ++bucket;
  std::lock_guard lock(mu_);
  auto it = backends_.find(backend);
  if (it == backends_.end()) it = backends_.emplace(std::string(backend), Backend{}).first;
  Backend& b = it->second;
  ++b.requests;
  b.latency_sum_seconds += seconds;
  ++b.latency_buckets[bucket];
  ++b.by_status[status];
}

void InMemoryBackendMetrics::CountError(std::string_view backend, ErrorKind kind) {
  std::lock_guard lock(mu_);
  auto it = backends_.find(backend);
  if (it == backends_.end()) it = backends_.emplace(std::string(backend), Backend{}).first;
  ++it->second.errors[static_cast<size_t>(kind)];
}

std::map<std::string, InMemoryBackendMetrics::Backend> InMemoryBackendMetrics::Snapshot() const {
  std::lock_guard lock(mu_);
  return {backends_.begin(), backends_.end()};
}

InMemoryBackendMetrics::Backend InMemoryBackendMetrics::Get(std::string_view backend) const {
  std::lock_guard lock(mu_);
  auto it = backends_.find(backend);
  return it == backends_.end() ? Backend{} : it->second;
}

}  // namespace tracepager::integrations
