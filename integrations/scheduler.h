// Scheduler: "run this later", injectable so that code with delays and deadlines (the
// trace collector's 404 retries and job deadline) is tested without sleeping.
//
// AsioScheduler runs callbacks on an io_context; ManualScheduler runs them when a test
// advances its clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace boost::asio {
class io_context;
}

namespace tracepager::integrations {

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;
  using TimerId = uint64_t;

  virtual ~Scheduler() = default;

  virtual Clock::time_point Now() const = 0;

  // Runs `fn` once at or after `when`, on whatever thread the scheduler uses, unless
  // cancelled first. Never runs `fn` inside RunAt itself. Thread-safe.
  virtual TimerId RunAt(Clock::time_point when, std::function<void()> fn) = 0;

  // Best effort: `fn` will not start after Cancel returns, but may be running already.
  // Unknown or finished ids are ignored. Thread-safe.
  virtual void Cancel(TimerId id) = 0;
};

// Timers on an io_context. REQUIRES: `io` outlives the scheduler and runs; destroying the
// scheduler cancels what is pending.
class AsioScheduler : public Scheduler {
 public:
  explicit AsioScheduler(boost::asio::io_context& io);
  ~AsioScheduler() override;

  Clock::time_point Now() const override { return Clock::now(); }
  TimerId RunAt(Clock::time_point when, std::function<void()> fn) override;
  void Cancel(TimerId id) override;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// A clock that moves only when told. Starts at the real steady_clock time of construction, so
// deadlines computed from Clock::now() compare sensibly with it.
class ManualScheduler : public Scheduler {
 public:
  ManualScheduler() : now_(Clock::now()) {}

  Clock::time_point Now() const override;
  TimerId RunAt(Clock::time_point when, std::function<void()> fn) override;
  void Cancel(TimerId id) override;

  // Moves the clock forward by `d`, running every callback that falls due, in time order (on
  // the calling thread, without holding any lock, so callbacks may schedule more).
  void Advance(Clock::duration d);
  // Runs callbacks due now without moving the clock.
  void RunDue() { Advance(Clock::duration::zero()); }
  size_t pending() const;
  // The time of the earliest pending callback, or time_point::max() when none.
  Clock::time_point next_due() const;

 private:
  mutable std::mutex mu_;
  Clock::time_point now_;
  TimerId next_id_ = 1;
  std::multimap<Clock::time_point, std::pair<TimerId, std::function<void()>>> due_;
};

}  // namespace tracepager::integrations
