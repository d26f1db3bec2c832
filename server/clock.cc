#include "server/clock.h"

namespace recd::server {
namespace {

class RealClock : public Clock {
 public:
  int64_t NowMs() const override { return absl::ToUnixMillis(absl::Now()); }
};

}  // namespace

Clock* Clock::Real() {
  static RealClock* const kClock = new RealClock();
  return kClock;
}

}  // namespace recd::server
