// BackendMetrics: what the integrations report about the peers they talk to (trace backends,
// pagers), for the daemon to export (daemon/metrics.* feeds these into Prometheus).
//
// integrations/ does not depend on daemon/ or prometheus-cpp: the daemon implements this
// interface (or reads an InMemoryBackendMetrics) and owns the exposition. Backend names are
// the configured names ("jaeger", "tempo-eu", ...), low-cardinality by construction.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace tracepager::integrations {

// Why a request or an answer failed. Stable names (ErrorKindName) are metric label values.
enum class ErrorKind {
  kConnect,      // "connect": name resolution or TCP connect failed (refused, unreachable)
  kTls,          // "tls": handshake failed (certificate not trusted, wrong host name)
  kTimeout,      // "timeout": the attempt's or the request's deadline passed
  kReset,        // "reset": the peer closed or reset the connection mid-request
  kHttp4xx,      // "http_4xx": a 4xx other than 404
  kNotFound,     // "not_found": 404 (for traces: not indexed yet)
  kHttp5xx,      // "http_5xx"
  kTooLarge,     // "too_large": the answer passed the response size cap
  kBadResponse,  // "bad_response": not valid HTTP
  kBadBody,      // "bad_body": valid HTTP, but the body could not be read (HTML, truncated JSON)
  kContentType,  // "content_type": the answer's Content-Type is not what was asked for
  kQueueFull,    // "queue_full": too many requests waiting for a concurrency slot
  kCancelled,    // "cancelled": the client shut down with the request pending
};
inline constexpr size_t kErrorKindCount = 13;

const char* ErrorKindName(ErrorKind kind);

// Thread-safe: methods are called from I/O threads concurrently.
class BackendMetrics {
 public:
  virtual ~BackendMetrics() = default;

  // One HTTP attempt finished (retries are separate attempts). `status` is the HTTP status,
  // or 0 when there was no answer. `latency` runs from the attempt's start (connect included)
  // to the end of the answer or the failure.
  virtual void ObserveRequest(std::string_view backend, std::chrono::nanoseconds latency,
                              int status) = 0;

  // One failure of the given kind (a failed attempt, or an answer a source could not use).
  virtual void CountError(std::string_view backend, ErrorKind kind) = 0;
};

// A BackendMetrics that keeps everything in memory: a latency histogram and error counters
// per backend. Tests read it; the daemon can copy a Snapshot into its registry at scrape time.
class InMemoryBackendMetrics : public BackendMetrics {
 public:
  // Upper bounds in seconds, Prometheus style (the last bucket, +Inf, is implicit).
  static constexpr std::array<double, 12> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,   1,    2.5,   5,    10,  30};

  struct Backend {
    uint64_t requests = 0;
    double latency_sum_seconds = 0;
    // Non-cumulative counts per bucket; index kLatencyBuckets.size() is +Inf.
    std::array<uint64_t, kLatencyBuckets.size() + 1> latency_buckets{};
    std::map<int, uint64_t> by_status;  // 0 = no answer
    std::array<uint64_t, kErrorKindCount> errors{};
    uint64_t Errors(ErrorKind kind) const { return errors[static_cast<size_t>(kind)]; }
  };

  void ObserveRequest(std::string_view backend, std::chrono::nanoseconds latency,
                      int status) override;
  void CountError(std::string_view backend, ErrorKind kind) override;

  // A consistent copy of every backend's numbers.
  std::map<std::string, Backend> Snapshot() const;
  // One backend's numbers (zeros when it has none yet).
  Backend Get(std::string_view backend) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, Backend, std::less<>> backends_;
};

}  // namespace tracepager::integrations
