#include "integrations/trace_collector.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>
#include <optional>
#include <set>

#include "integrations/trace_protocol.h"

namespace tracepager::integrations {

const char* TraceOutcomeStatusName(TraceOutcome::Status status) {
  switch (status) {
    case TraceOutcome::Status::kFetched:
      return "fetched";
    case TraceOutcome::Status::kNotFound:
      return "not_found";
    case TraceOutcome::Status::kFailed:
      return "failed";
    case TraceOutcome::Status::kInvalidId:
      return "invalid_id";
    case TraceOutcome::Status::kDeadline:
      return "deadline";
    case TraceOutcome::Status::kSkipped:
      return "skipped";
  }
  return "unknown";
}

const char* TraceOutcomeOriginName(TraceOutcome::Origin origin) {
  return origin == TraceOutcome::Origin::kCarried ? "carried" : "search";
}

namespace {

using Clock = TraceSource::Clock;
using Actions = std::vector<std::function<void()>>;

// One collection. Every state change happens under `mu`; calls into the source, the
// scheduler's Cancel and `done` happen outside it (a synchronous source answers inside
// FetchTrace, and would otherwise deadlock). They also never nest: a synchronous source may
// answer while holding its own lock (the file source does on a refresh error), so the next call
// into it must not start inside that answer. Run queues them and the outermost Run on the
// stack (or on another thread, if one is already running them) makes them one after another.
class Job : public std::enable_shared_from_this<Job> {
 public:
  Job(std::shared_ptr<TraceSource> source, CollectRequest request, CollectOptions options,
      Scheduler& scheduler, std::function<void(CollectResult)> done)
      : source_(std::move(source)),
        request_(std::move(request)),
        options_(options),
        scheduler_(scheduler),
        done_(std::move(done)) {
    deadline_ = request_.deadline == Clock::time_point{} ? scheduler_.Now() + options_.total_timeout
                                                         : request_.deadline;
    request_.query.limit = options_.max_traces;
    audit_.source = std::string(source_->kind());
  }

  void Start() {
    Actions actions;
    {
      std::lock_guard lock(mu_);
      deadline_timer_ =
          scheduler_.RunAt(deadline_, [self = shared_from_this()] { self->OnDeadline(); });
      std::set<std::string> seen;
      for (const auto& raw : request_.trace_ids) {
        TraceOutcome outcome;
        outcome.origin = TraceOutcome::Origin::kCarried;
        auto id = NormalizeTraceId(raw);
        if (!id) {
          outcome.trace_id = raw.substr(0, 64);
          outcome.status = TraceOutcome::Status::kInvalidId;
          outcome.reason = "not a trace id (1 to 32 hex digits)";
          Add(std::move(outcome));
          continue;
        }
        if (!seen.insert(*id).second) continue;  // the same id twice is asked once
        outcome.trace_id = *id;
        if (pending_ + fetched_ >= options_.max_traces) {
          outcome.status = TraceOutcome::Status::kSkipped;
          outcome.reason =
              fmt::format("the alert carries more than {} trace ids", options_.max_traces);
          Add(std::move(outcome));
          continue;
        }
        const size_t index = Add(std::move(outcome));
        ++pending_;
        waiting_[index] = true;
        actions.push_back([self = shared_from_this(), index] { self->Fetch(index); });
      }
      if (actions.empty()) NextPhaseLocked(actions);
    }
    Run(actions);
  }

 private:
  size_t Add(TraceOutcome outcome) {
    audit_.traces.push_back(std::move(outcome));
    traces_.emplace_back();
    waiting_.push_back(false);
    return audit_.traces.size() - 1;
  }

  void Fetch(size_t index) {
    std::string id;
    std::shared_ptr<TraceSource> source;
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      ++audit_.traces[index].attempts;
      id = audit_.traces[index].trace_id;
      source = source_;
    }
    source->FetchTrace(id, deadline_,
                       [self = shared_from_this(), index](Result<std::vector<routing::Trace>> r) {
                         self->OnFetched(index, std::move(r));
                       });
  }

  void OnFetched(size_t index, Result<std::vector<routing::Trace>> r) {
    Actions actions;
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      TraceOutcome& outcome = audit_.traces[index];
      if (r.ok() && !r->empty()) {
        traces_[index] = std::move(r->front());
        outcome.status = TraceOutcome::Status::kFetched;
        outcome.reason.clear();
        waiting_[index] = false;
        --pending_;
        ++fetched_;
      } else if (r.ok()) {
        outcome.status = TraceOutcome::Status::kFailed;
        outcome.reason = "the source answered without a trace";
        waiting_[index] = false;
        --pending_;
      } else if (r.error().code == ErrorCode::kNotFound &&
                 outcome.attempts <= options_.not_found_retries &&
                 scheduler_.Now() + options_.not_found_delay < deadline_) {
        // Traces arrive late: ask again after the delay.
        outcome.reason = r.error().message;
        timers_.push_back(
            scheduler_.RunAt(scheduler_.Now() + options_.not_found_delay,
                             [self = shared_from_this(), index] { self->Fetch(index); }));
        return;
      } else {
        const bool not_found = r.error().code == ErrorCode::kNotFound;
        outcome.status =
            not_found ? TraceOutcome::Status::kNotFound : TraceOutcome::Status::kFailed;
        outcome.reason = not_found && outcome.attempts > 1
                             ? fmt::format("still not found after {} attempts: {}",
                                           outcome.attempts, r.error().message)
                             : r.error().message;
        waiting_[index] = false;
        --pending_;
      }
      if (pending_ == 0) NextPhaseLocked(actions);
    }
    Run(actions);
  }

  // REQUIRES: mu_ held, nothing pending. Searches or finishes.
  void NextPhaseLocked(Actions& actions) {
    const bool had_carried = std::any_of(
        audit_.traces.begin(), audit_.traces.end(),
        [](const TraceOutcome& o) { return o.origin == TraceOutcome::Origin::kCarried; });
    const bool want_search = !audit_.searched && fetched_ == 0 && !request_.query.service.empty() &&
                             (!had_carried || options_.search_when_carried_fail);
    if (!want_search) return FinishLocked(actions);
    const auto& q = request_.query;
    audit_.searched = true;
    audit_.search = fmt::format("{} traces of service {} between {} and {}, up to {}",
                                q.order == TraceQuery::Order::kErrorsFirst ? "failing" : "slowest",
                                q.service, Rfc3339Nano(q.start_ns), Rfc3339Nano(q.end_ns), q.limit);
    if (had_carried) audit_.search += " (no carried trace came back)";
    search_pending_ = true;
    actions.push_back([self = shared_from_this(), source = source_] {
      source->SearchTraces(
          self->request_.query, self->deadline_,
          [self](Result<std::vector<SearchHit>> r) { self->OnSearched(std::move(r)); });
    });
  }

  void OnSearched(Result<std::vector<SearchHit>> r) {
    Actions actions;
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      search_pending_ = false;
      if (!r.ok()) {
        audit_.search_error = r.error().message;
        FinishLocked(actions);
      } else {
        audit_.search_hits = r->size();
        std::set<std::string> seen;
        for (const auto& o : audit_.traces) seen.insert(o.trace_id);
        for (auto& hit : *r) {
          if (!seen.insert(hit.trace_id).second) continue;
          TraceOutcome outcome;
          outcome.origin = TraceOutcome::Origin::kSearch;
          outcome.trace_id = hit.trace_id;
          if (pending_ + fetched_ >= options_.max_traces) {
            outcome.status = TraceOutcome::Status::kSkipped;
            outcome.reason = fmt::format("beyond the {} traces routed on", options_.max_traces);
            Add(std::move(outcome));
            continue;
          }
          if (hit.trace) {
            outcome.status = TraceOutcome::Status::kFetched;
            outcome.attempts = 1;  // the search itself
            const size_t index = Add(std::move(outcome));
            traces_[index] = std::move(*hit.trace);
            ++fetched_;
            continue;
          }
          const size_t index = Add(std::move(outcome));
          ++pending_;
          waiting_[index] = true;
          actions.push_back([self = shared_from_this(), index] { self->Fetch(index); });
        }
        if (pending_ == 0) FinishLocked(actions);
      }
    }
    Run(actions);
  }

  void OnDeadline() {
    Actions actions;
    {
      std::lock_guard lock(mu_);
      if (finished_) return;
      audit_.deadline_reached = true;
      for (size_t i = 0; i < audit_.traces.size(); ++i) {
        if (!waiting_[i]) continue;
        TraceOutcome& o = audit_.traces[i];
        o.status = TraceOutcome::Status::kDeadline;
        o.reason =
            o.reason.empty()
                ? fmt::format("the job's deadline passed before an answer ({} asked)", o.attempts)
                : fmt::format("the job's deadline passed; last answer: {}", o.reason);
      }
      if (search_pending_)
        audit_.search_error = "the job's deadline passed before the search answered";
      FinishLocked(actions);
    }
    Run(actions);
  }

  // REQUIRES: mu_ held.
  void FinishLocked(Actions& actions) {
    finished_ = true;
    // A source may keep the callbacks of answers that come after the deadline (each holds this
    // job); the job no longer holds the source, so that neither keeps the other alive.
    source_.reset();
    CollectResult result;
    for (size_t i = 0; i < traces_.size(); ++i) {
      if (traces_[i]) result.traces.push_back(std::move(*traces_[i]));
    }
    result.audit = std::move(audit_);
    auto timers = std::move(timers_);
    timers.push_back(deadline_timer_);
    actions.push_back([this, timers = std::move(timers), result = std::move(result),
                       self = shared_from_this()]() mutable {
      for (auto id : timers) scheduler_.Cancel(id);
      auto done = std::move(done_);
      try {
        done(std::move(result));
      } catch (const std::exception& e) {
        spdlog::error("trace_collector_callback_threw error=\"{}\"", e.what());
      }
    });
  }

  std::shared_ptr<TraceSource> source_;
  CollectRequest request_;
  CollectOptions options_;
  Scheduler& scheduler_;
  std::function<void(CollectResult)> done_;
  Clock::time_point deadline_;

  // Runs `actions` and whatever they queue, in order, unless a Run is already under way (on
  // this thread's stack or another thread), which then runs them when its current one returns.
  void Run(Actions& actions) {
    {
      std::lock_guard lock(mu_);
      for (auto& a : actions) queue_.push_back(std::move(a));
      if (running_) return;
      running_ = true;
    }
    for (;;) {
      std::function<void()> next;
      {
        std::lock_guard lock(mu_);
        if (queue_.empty()) {
          running_ = false;
          return;
        }
        next = std::move(queue_.front());
        queue_.pop_front();
      }
      next();
    }
  }

  std::mutex mu_;
  std::deque<std::function<void()>> queue_;  // actions waiting for Run
  bool running_ = false;                     // a Run is making the queued actions
  bool finished_ = false;
  bool search_pending_ = false;
  size_t pending_ = 0;
  size_t fetched_ = 0;
  CollectAudit audit_;
  std::vector<std::optional<routing::Trace>> traces_;  // by index into audit_.traces
  std::vector<bool> waiting_;                          // asked, no final answer yet
  Scheduler::TimerId deadline_timer_ = 0;
  std::vector<Scheduler::TimerId> timers_;
};

}  // namespace

void CollectTraces(std::shared_ptr<TraceSource> source, CollectRequest request,
                   const CollectOptions& options, Scheduler& scheduler,
                   std::function<void(CollectResult)> done) {
  std::make_shared<Job>(std::move(source), std::move(request), options, scheduler, std::move(done))
      ->Start();
}

}  // namespace tracepager::integrations
