// CachingTraceSource: a TraceSource decorator that remembers fetched traces for a short time
// and coalesces identical requests in flight, in front of any source.
//
// Why: an alert storm asks for the same traces and the same searches many times within
// seconds, and a tracing backend under incident load is the last thing to hammer.
//   - FetchTrace: a successful fetch is kept for `ttl` (at most `max_entries` traces, the
//     oldest evicted first). Failures are never kept: a 404 may be a trace not indexed yet.
//     While a fetch of an id is in flight, further fetches of that id wait for its answer
//     instead of asking again; all of them get the same outcome. The shared request runs
//     with the first caller's deadline (each caller enforces its own deadline above this).
//   - SearchTraces: identical queries in flight are coalesced the same way; answers are not
//     kept (a search is about "now").
// Thread-safe; `done` runs on the thread that completed the underlying call (or the caller's,
// for a cache hit), never while a lock is held.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "integrations/trace_source.h"

namespace tracepager::integrations {

struct TraceCacheOptions {
  std::chrono::milliseconds ttl{60'000};
  size_t max_entries = 256;
  // The clock; unset = steady_clock::now. Tests inject one.
  std::function<TraceSource::Clock::time_point()> now;
};

class CachingTraceSource : public TraceSource {
 public:
  struct Stats {
    uint64_t hits = 0;       // answered from the cache
    uint64_t misses = 0;     // sent to the source
    uint64_t coalesced = 0;  // joined a request already in flight
  };

  // REQUIRES: inner != nullptr.
  CachingTraceSource(std::shared_ptr<TraceSource> inner, TraceCacheOptions options = {});
  ~CachingTraceSource() override;

  std::string_view kind() const override { return inner_->kind(); }
  void FetchTrace(const std::string& trace_id, Clock::time_point deadline,
                  TracesCallback done) override;
  void SearchTraces(const TraceQuery& query, Clock::time_point deadline,
                    SearchCallback done) override;

  Stats stats() const;
  size_t size() const;  // traces cached (fresh or not yet evicted)

 private:
  struct State;
  std::shared_ptr<TraceSource> inner_;
  std::shared_ptr<State> state_;
};

}  // namespace tracepager::integrations
