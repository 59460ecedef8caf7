#include "integrations/trace_cache.h"

#include <fmt/format.h>

namespace tracepager::integrations {

// Shared with the inner source's callbacks, which may run after the decorator is gone.
struct CachingTraceSource::State {
  TraceCacheOptions options;
  mutable std::mutex mu;
  struct Entry {
    std::shared_ptr<const routing::Trace> trace;
    Clock::time_point expires;
  };
  std::map<std::string, Entry> cache;
  std::map<std::string, std::vector<TracesCallback>> fetching;
  std::map<std::string, std::vector<SearchCallback>> searching;
  Stats stats;

  Clock::time_point Now() const { return options.now ? options.now() : Clock::now(); }

  // REQUIRES: mu held.
  void Insert(const std::string& id, std::shared_ptr<const routing::Trace> trace) {
    const auto now = Now();
    std::erase_if(cache, [&](const auto& kv) { return kv.second.expires <= now; });
    while (!cache.empty() && cache.size() >= options.max_entries) {
      auto oldest = cache.begin();
      for (auto it = cache.begin(); it != cache.end(); ++it) {
        if (it->second.expires < oldest->second.expires) oldest = it;
      }
      cache.erase(oldest);
    }
    if (options.max_entries > 0) cache[id] = {std::move(trace), now + options.ttl};
  }
};

namespace {

std::string SearchKey(const TraceQuery& q) {
  return fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}", q.service, q.start_ns, q.end_ns,
                     q.order == TraceQuery::Order::kErrorsFirst ? "errors" : "slowest", q.limit,
                     q.min_duration_ns);
}

}  // namespace

CachingTraceSource::CachingTraceSource(std::shared_ptr<TraceSource> inner,
                                       TraceCacheOptions options)
    : inner_(std::move(inner)), state_(std::make_shared<State>()) {
  state_->options = std::move(options);
}

CachingTraceSource::~CachingTraceSource() = default;

void CachingTraceSource::FetchTrace(const std::string& trace_id, Clock::time_point deadline,
                                    TracesCallback done) {
  auto id = NormalizeTraceId(trace_id);
  if (!id) return inner_->FetchTrace(trace_id, deadline, std::move(done));  // it explains
  std::shared_ptr<const routing::Trace> hit;
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->cache.find(*id);
    if (it != state_->cache.end() && it->second.expires > state_->Now()) {
      ++state_->stats.hits;
      hit = it->second.trace;
    } else if (auto f = state_->fetching.find(*id); f != state_->fetching.end()) {
      ++state_->stats.coalesced;
      f->second.push_back(std::move(done));
      return;
    } else {
      ++state_->stats.misses;
      state_->fetching[*id].push_back(std::move(done));
    }
  }
  if (hit) {
    std::vector<routing::Trace> one{*hit};
    return done(std::move(one));
  }
  // Outside the lock: a synchronous source answers inside this call.
  // The callback holds the state (not the decorator): it may complete after the decorator is
  // gone, and its waiters must still get their answer.
  inner_->FetchTrace(*id, deadline,
                     [state = state_, id = *id](Result<std::vector<routing::Trace>> r) {
                       std::vector<TracesCallback> waiters;
                       {
                         std::lock_guard lock(state->mu);
                         auto it = state->fetching.find(id);
                         if (it != state->fetching.end()) {
                           waiters = std::move(it->second);
                           state->fetching.erase(it);
                         }
                         if (r.ok() && r->size() == 1) {
                           state->Insert(id, std::make_shared<const routing::Trace>(r->front()));
                         }
                       }
                       for (size_t i = 0; i < waiters.size(); ++i) {
                         // The last waiter takes the result itself; the others get copies.
                         if (i + 1 == waiters.size()) {
                           waiters[i](std::move(r));
                         } else {
                           waiters[i](r);
                         }
                       }
                     });
}

void CachingTraceSource::SearchTraces(const TraceQuery& query, Clock::time_point deadline,
                                      SearchCallback done) {
  const std::string key = SearchKey(query);
  {
    std::lock_guard lock(state_->mu);
    auto [it, inserted] = state_->searching.try_emplace(key);
    it->second.push_back(std::move(done));
    if (!inserted) {
      ++state_->stats.coalesced;
      return;
    }
  }
  inner_->SearchTraces(query, deadline, [state = state_, key](Result<std::vector<SearchHit>> r) {
    std::vector<SearchCallback> waiters;
    {
      std::lock_guard lock(state->mu);
      auto it = state->searching.find(key);
      if (it != state->searching.end()) {
        waiters = std::move(it->second);
        state->searching.erase(it);
      }
    }
    for (size_t i = 0; i < waiters.size(); ++i) {
      if (i + 1 == waiters.size()) {
        waiters[i](std::move(r));
      } else {
        waiters[i](r);
      }
    }
  });
}

CachingTraceSource::Stats CachingTraceSource::stats() const {
  std::lock_guard lock(state_->mu);
  return state_->stats;
}

size_t CachingTraceSource::size() const {
  std::lock_guard lock(state_->mu);
  return state_->cache.size();
}

}  // namespace tracepager::integrations
