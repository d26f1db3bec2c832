// Open-loop pacing and the step search: pure arithmetic, no clocks or threads, so it is tested
// exactly.
#ifndef RECD_LOADTEST_PACING_H_
#define RECD_LOADTEST_PACING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace recd::loadtest {

// Request i (0-based) of an open-loop run at `rate_per_s` is intended at
// start_ns + floor(i * 1e9 / rate). Latency is measured from that intended time, so a sender
// (or server) that falls behind shows up as latency instead of silently lowering the rate
// ("coordinated omission").
class OpenLoopSchedule {
 public:
  // rate_per_s > 0.
  OpenLoopSchedule(int64_t start_ns, double rate_per_s);

  int64_t IntendedNs(uint64_t i) const;
  // How many requests are due at `t_ns`: the number of i with IntendedNs(i) <= t_ns.
  uint64_t DueAt(int64_t t_ns) const;
  // Requests intended in [start_ns, start_ns + span_ns).
  uint64_t CountWithin(int64_t span_ns) const;

  double rate() const { return rate_; }
  int64_t start_ns() const { return start_ns_; }

 private:
  int64_t start_ns_;
  double rate_;
  double period_ns_;
};

// Raises the rate geometrically (start, start*factor, ...) until a step fails to hold the
// target, then bisects between the last rate that held and the first that failed
// `refine_steps` times. The answer is the highest rate that held.
//
// Usage: while (auto rate = search.NextRate()) { run at *rate; search.Report(*rate, held); }
class StepSearch {
 public:
  struct Options {
    double start_rate = 100;
    double factor = 1.5;        // > 1
    double max_rate = 100000;   // never try above this
    int refine_steps = 2;       // bisections after the first failure
    int max_steps = 40;         // hard bound on steps in total
  };
  explicit StepSearch(const Options& options);

  // The next rate to run, or nullopt when the search is over.
  std::optional<double> NextRate();
  // The outcome of the step at `rate` (the value NextRate returned last).
  void Report(double rate, bool held);

  // Highest rate that held (0 when none did).
  double highest_held() const { return highest_held_; }
  // Lowest rate that failed (0 when none did: the target held up to max_rate).
  double lowest_failed() const { return lowest_failed_; }
  int steps() const { return steps_; }

 private:
  Options options_;
  double next_ = 0;
  bool ramping_ = true;
  bool done_ = false;
  int refines_left_ = 0;
  int steps_ = 0;
  double highest_held_ = 0;
  double lowest_failed_ = 0;
};

// Whether a step held its targets.
struct StepCriteria {
  double p99_target_ms = 5.0;
  double max_error_ratio = 0.001;   // errors / (ok + errors)
  double min_achieved_ratio = 0.95; // completed per second / target rate
};
struct StepObservation {
  double target_rate = 0;
  double achieved_rate = 0;
  double p99_ms = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
};
struct StepVerdict {
  bool held = false;
  std::string reason;  // why it failed, empty when it held
};
StepVerdict JudgeStep(const StepObservation& observed, const StepCriteria& criteria);

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_PACING_H_
