// Wall-clock access behind an interface so trainer schedules and timestamps are testable.
#ifndef RECD_SERVER_CLOCK_H_
#define RECD_SERVER_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace recd::server {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
  // The process-wide real clock.
  static Clock* Real();
};

// A clock tests set by hand. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now_ms) : now_ms_(now_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void AdvanceMs(int64_t delta) { now_ms_ += delta; }
  void SetMs(int64_t now) { now_ms_ = now; }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace recd::server

#endif  // RECD_SERVER_CLOCK_H_
