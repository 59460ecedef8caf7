// The clock delivery reads: wall time in Unix nanoseconds, because outbox times (when a page was
// persisted, when its next attempt is due) must mean the same thing after a restart. Tests use
// ManualClock and never sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace tracepager::integrations::delivery {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix epoch nanoseconds. Thread-safe.
  virtual int64_t NowNs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowNs() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 1'700'000'000'000'000'000) : now_(start_ns) {}
  int64_t NowNs() const override { return now_.load(); }
  void Advance(std::chrono::nanoseconds d) { now_ += d.count(); }
  void Set(int64_t ns) { now_ = ns; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace tracepager::integrations::delivery
