// The load generator: asynchronous gRPC calls on completion queues, open loop (a constant
// target rate, latency measured from each request's intended send time) or closed loop (N calls
// in flight, each completion sending the next).
//
// Threads: one pacer (the caller of RunPhase, open loop only) builds and starts the calls on
// schedule; `threads` workers each drain one completion queue and record results into their
// own recorder; a ticker collects one-second intervals and samples the server's /proc entry.
// Calls are spread round-robin over `channels` separate HTTP/2 connections.
#ifndef RECD_LOADTEST_DRIVER_H_
#define RECD_LOADTEST_DRIVER_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loadtest/histogram.h"
#include "loadtest/mix.h"
#include "loadtest/requests.h"

namespace recd::loadtest {

// Monotonic clock, nanoseconds.
int64_t NowNs();

struct ClientOptions {
  std::string target;           // must be loopback (CheckLoopbackTarget)
  int channels = 2;             // separate connections
  int threads = 0;              // completion-queue worker threads (0 = one per allowed CPU)
  absl::Duration deadline = absl::Seconds(2);  // per call
  int max_in_flight = 20000;    // open loop: a request due while this many are outstanding is
                                // not sent and counts as an error ("CLIENT_IN_FLIGHT_LIMIT")
  pid_t server_pid = 0;         // when > 0, its RSS and CPU are sampled every interval
  // Busy-wait instead of sleeping when the next send or completion is expected within this
  // many nanoseconds (0 = always sleep). Spinning trades client CPU for fewer wake-ups.
  int64_t spin_ns = 20000;
};

// One measured run at one load level.
struct PhaseSpec {
  std::string name = "run";
  bool closed_loop = false;
  double rate = 100;            // open loop: requests per second
  int concurrency = 16;         // closed loop: calls in flight
  absl::Duration warmup = absl::Seconds(2);
  absl::Duration duration = absl::Seconds(10);
  uint64_t max_requests = 10000000;  // hard bound on calls sent, warm-up included
  // Open loop only. Called once, on the pacer thread, as the measured window begins (keep it
  // short: e.g. notify another thread).
  std::function<void()> on_window_start;
  // Open loop only: when set, the measured window ends early, at the first request due after
  // *stop_early became true (at the latest after `duration`). E.g. "measure while training".
  const std::atomic<bool>* stop_early = nullptr;
};

// Pseudo status code for requests the client did not send (in-flight limit reached).
inline constexpr int kClientInFlightLimit = -1;
std::string StatusCodeName(int code);

struct MethodStats {
  Histogram latency;                 // OK calls: completion - intended send, ns
  uint64_t ok = 0;
  std::map<int, uint64_t> errors;    // gRPC status code -> count
  uint64_t units = 0;                // log: interactions acknowledged; batch: users answered
  uint64_t fallback = 0;             // answers from the popularity fallback (unknown ids?)
  uint64_t error_count() const;
  void Merge(const MethodStats& other);
};

struct IntervalStats {
  double t_s = 0;  // end of the interval, seconds since the measured window began (< 0: warm-up)
  std::array<uint64_t, kNumMethods> ok{};
  std::array<uint64_t, kNumMethods> errors{};
  std::array<uint64_t, kNumMethods> p50_ns{};
  std::array<uint64_t, kNumMethods> p99_ns{};
  std::array<uint64_t, kNumMethods> max_ns{};
  uint64_t server_rss_bytes = 0;
  double server_cpu_cores = 0;     // server CPU seconds per second during the interval
};

struct PhaseResult {
  PhaseSpec spec;
  std::string mix;                 // canonical mix spec
  double measured_s = 0;           // length of the measured window
  int64_t window_start_ns = 0;     // the window on NowNs()'s clock
  int64_t window_end_ns = 0;
  bool stopped_early = false;      // spec.stop_early ended the window before `duration`
  uint64_t sent = 0;               // calls started, warm-up included
  uint64_t measured_requests = 0;  // calls intended inside the measured window
  std::array<MethodStats, kNumMethods> methods;
  Histogram all;                   // every OK call of the window
  Histogram send_lag;              // open loop: actual start - intended start, ns
  std::vector<IntervalStats> series;
  double achieved_rate = 0;        // OK completions inside the window per second
  double client_cpu_cores = 0;     // recload CPU seconds per second of the phase
  int client_cpus = 1;             // CPUs recload may use
  double server_cpu_cores = 0;     // over the measured window (when sampled)
  uint64_t server_rss_start = 0;   // at the start / end of the measured window, max within
  uint64_t server_rss_end = 0;
  uint64_t server_rss_max = 0;
  bool hit_request_bound = false;
  std::vector<std::string> warnings;

  uint64_t ok() const;
  uint64_t errors() const;
};

class LoadDriver {
 public:
  // Checks the target is loopback and connects (waits up to 10 s for every channel).
  static absl::StatusOr<std::unique_ptr<LoadDriver>> Create(const ClientOptions& client,
                                                            const WorkloadOptions& workload);
  ~LoadDriver();

  // Runs warm-up then the measured window, waits for every call to finish (each is bounded by
  // the call deadline), and returns the results of the window. `mix` overrides the workload's
  // mix for this phase. Not reentrant.
  PhaseResult RunPhase(const PhaseSpec& spec, const Mix& mix);

  const ClientOptions& client_options() const;

 private:
  struct Impl;
  explicit LoadDriver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_DRIVER_H_
