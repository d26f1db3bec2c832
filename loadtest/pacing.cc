#include "loadtest/pacing.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace recd::loadtest {

OpenLoopSchedule::OpenLoopSchedule(int64_t start_ns, double rate_per_s)
    : start_ns_(start_ns), rate_(rate_per_s), period_ns_(1e9 / rate_per_s) {}

int64_t OpenLoopSchedule::IntendedNs(uint64_t i) const {
  return start_ns_ + static_cast<int64_t>(std::floor(static_cast<double>(i) * period_ns_));
}

uint64_t OpenLoopSchedule::DueAt(int64_t t_ns) const {
  if (t_ns < start_ns_) return 0;
  // Estimate, then correct by the exact definition (floating rounding near boundaries).
  uint64_t n = static_cast<uint64_t>(static_cast<double>(t_ns - start_ns_) / period_ns_) + 1;
  while (n > 0 && IntendedNs(n - 1) > t_ns) --n;
  while (IntendedNs(n) <= t_ns) ++n;
  return n;
}

uint64_t OpenLoopSchedule::CountWithin(int64_t span_ns) const {
  return span_ns <= 0 ? 0 : DueAt(start_ns_ + span_ns - 1);
}

StepSearch::StepSearch(const Options& options) : options_(options) {
  options_.factor = std::max(options_.factor, 1.01);
  options_.start_rate = std::max(options_.start_rate, 1e-3);
  next_ = std::min(options_.start_rate, options_.max_rate);
  refines_left_ = std::max(0, options_.refine_steps);
}

std::optional<double> StepSearch::NextRate() {
  if (done_ || steps_ >= options_.max_steps) return std::nullopt;
  return next_;
}

void StepSearch::Report(double rate, bool held) {
  ++steps_;
  if (held) {
    highest_held_ = std::max(highest_held_, rate);
  } else if (lowest_failed_ == 0 || rate < lowest_failed_) {
    lowest_failed_ = rate;
  }
  if (ramping_) {
    if (held) {
      if (rate >= options_.max_rate) {
        done_ = true;  // held up to the ceiling: never broken
        return;
      }
      next_ = std::min(rate * options_.factor, options_.max_rate);
      return;
    }
    ramping_ = false;
  } else {
    --refines_left_;
  }
  if (refines_left_ <= 0) {
    done_ = true;
    return;
  }
  // Bisect between the best rate that held and the lowest that failed: geometric midpoint when
  // both are known (rates are explored on a log scale), else halfway down from the failure.
  const double lo = highest_held_;
  const double hi = lowest_failed_;
  next_ = lo > 0 ? std::sqrt(lo * hi) : hi / 2;
  if (hi / std::max(next_, 1e-9) < 1.02 && lo > 0) done_ = true;  // already within 2 %
}

StepVerdict JudgeStep(const StepObservation& observed, const StepCriteria& criteria) {
  StepVerdict verdict;
  const uint64_t total = observed.ok + observed.errors;
  if (total == 0) {
    verdict.reason = "no request completed";
    return verdict;
  }
  const double error_ratio = static_cast<double>(observed.errors) / static_cast<double>(total);
  if (error_ratio > criteria.max_error_ratio) {
    verdict.reason = absl::StrFormat("error ratio %.4f > %.4f", error_ratio, criteria.max_error_ratio);
    return verdict;
  }
  if (observed.p99_ms > criteria.p99_target_ms) {
    verdict.reason = absl::StrFormat("p99 %.3f ms > %.3f ms", observed.p99_ms, criteria.p99_target_ms);
    return verdict;
  }
  if (observed.achieved_rate < criteria.min_achieved_ratio * observed.target_rate) {
    verdict.reason = absl::StrFormat("achieved %.1f/s < %.0f %% of %.1f/s", observed.achieved_rate,
                                     100 * criteria.min_achieved_ratio, observed.target_rate);
    return verdict;
  }
  verdict.held = true;
  return verdict;
}

}  // namespace recd::loadtest
