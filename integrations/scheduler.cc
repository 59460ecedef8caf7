#include "integrations/scheduler.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <vector>

namespace tracepager::integrations {

namespace net = boost::asio;

struct AsioScheduler::State {
  explicit State(net::io_context& context) : io(context) {}
  net::io_context& io;
  std::mutex mu;
  TimerId next_id = 1;
  std::map<TimerId, std::shared_ptr<net::steady_timer>> timers;
};

AsioScheduler::AsioScheduler(net::io_context& io) : state_(std::make_shared<State>(io)) {}

AsioScheduler::~AsioScheduler() {
  std::lock_guard lock(state_->mu);
  for (auto& [id, timer] : state_->timers) timer->cancel();
  state_->timers.clear();
}

Scheduler::TimerId AsioScheduler::RunAt(Clock::time_point when, std::function<void()> fn) {
  auto timer = std::make_shared<net::steady_timer>(state_->io, when);
  TimerId id;
  {
    std::lock_guard lock(state_->mu);
    id = state_->next_id++;
    state_->timers[id] = timer;
  }
  std::weak_ptr<State> weak = state_;
  timer->async_wait([weak, id, timer, fn = std::move(fn)](const boost::system::error_code& ec) {
    auto state = weak.lock();
    if (!state) return;
    {
      std::lock_guard lock(state->mu);
      // Erased means cancelled, even when the timer had already fired.
      if (state->timers.erase(id) == 0) return;
    }
    if (!ec) fn();
  });
  return id;
}

void AsioScheduler::Cancel(TimerId id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->timers.find(id);
  if (it == state_->timers.end()) return;
  it->second->cancel();
  state_->timers.erase(it);
}

Scheduler::Clock::time_point ManualScheduler::Now() const {
  std::lock_guard lock(mu_);
  return now_;
}

Scheduler::TimerId ManualScheduler::RunAt(Clock::time_point when, std::function<void()> fn) {
  std::lock_guard lock(mu_);
  const TimerId id = next_id_++;
  due_.emplace(when, std::make_pair(id, std::move(fn)));
  return id;
}

void ManualScheduler::Cancel(TimerId id) {
  std::lock_guard lock(mu_);
  for (auto it = due_.begin(); it != due_.end(); ++it) {
    if (it->second.first == id) {
      due_.erase(it);
      return;
    }
  }
}

void ManualScheduler::Advance(Clock::duration d) {
  Clock::time_point target;
  {
    std::lock_guard lock(mu_);
    target = now_ + d;
  }
  while (true) {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      if (due_.empty() || due_.begin()->first > target) {
        now_ = target;
        return;
      }
      auto it = due_.begin();
      if (it->first > now_) now_ = it->first;
      fn = std::move(it->second.second);
      due_.erase(it);
    }
    fn();
  }
}

size_t ManualScheduler::pending() const {
  std::lock_guard lock(mu_);
  return due_.size();
}

Scheduler::Clock::time_point ManualScheduler::next_due() const {
  std::lock_guard lock(mu_);
  return due_.empty() ? Clock::time_point::max() : due_.begin()->first;
}

}  // namespace tracepager::integrations
