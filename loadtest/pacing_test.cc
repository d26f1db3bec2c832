#include "loadtest/pacing.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace recd::loadtest {
namespace {

TEST(OpenLoopScheduleTest, IntendedTimesAreEvenlySpaced) {
  const OpenLoopSchedule s(1000, 1000.0);  // 1 ms apart
  EXPECT_EQ(s.IntendedNs(0), 1000);
  EXPECT_EQ(s.IntendedNs(1), 1000 + 1000000);
  EXPECT_EQ(s.IntendedNs(1000), 1000 + 1000000000);
  // Large indices stay exact (no drift from accumulated rounding).
  EXPECT_EQ(s.IntendedNs(3600 * 1000), 1000 + int64_t{3600} * 1000000000);
}

TEST(OpenLoopScheduleTest, DueAtCountsRequestsNotLater) {
  const OpenLoopSchedule s(0, 3.0);  // 0, 333333333, 666666666, 1000000000, ...
  EXPECT_EQ(s.DueAt(-1), 0u);
  EXPECT_EQ(s.DueAt(0), 1u);
  EXPECT_EQ(s.DueAt(333333332), 1u);
  EXPECT_EQ(s.DueAt(333333333), 2u);
  EXPECT_EQ(s.DueAt(999999999), 3u);
  EXPECT_EQ(s.DueAt(1000000000), 4u);
  EXPECT_EQ(s.CountWithin(1000000000), 3u);  // requests in [0, 1 s)
  EXPECT_EQ(s.CountWithin(0), 0u);
}

TEST(OpenLoopScheduleTest, FractionalRates) {
  const OpenLoopSchedule s(0, 0.5);  // one every 2 s
  EXPECT_EQ(s.IntendedNs(1), 2000000000);
  EXPECT_EQ(s.CountWithin(int64_t{10} * 1000000000), 5u);
  const OpenLoopSchedule fast(0, 33333.3);
  EXPECT_EQ(fast.CountWithin(int64_t{60} * 1000000000), 1999999u);  // 60 s / 30000.03 ns = 1999998.00006
}

std::vector<double> RunSearch(StepSearch& search, double capacity) {
  std::vector<double> tried;
  while (auto rate = search.NextRate()) {
    tried.push_back(*rate);
    search.Report(*rate, *rate <= capacity);
  }
  return tried;
}

TEST(StepSearchTest, RampsThenBisects) {
  StepSearch search({.start_rate = 100, .factor = 2, .max_rate = 1e6, .refine_steps = 2});
  const std::vector<double> tried = RunSearch(search, 500);
  // 100, 200, 400 held; 800 failed; then sqrt(400*800)=565.7 failed; sqrt(400*565.7)=475.7 held.
  ASSERT_EQ(tried.size(), 6u);
  EXPECT_DOUBLE_EQ(tried[3], 800);
  EXPECT_NEAR(tried[4], 565.685, 1e-3);
  EXPECT_NEAR(tried[5], 475.683, 1e-3);
  EXPECT_NEAR(search.highest_held(), 475.683, 1e-3);
  EXPECT_NEAR(search.lowest_failed(), 565.685, 1e-3);
}

TEST(StepSearchTest, NeverBrokenStopsAtTheCeiling) {
  StepSearch search({.start_rate = 100, .factor = 3, .max_rate = 1000, .refine_steps = 2});
  const std::vector<double> tried = RunSearch(search, 1e9);
  EXPECT_EQ(tried, (std::vector<double>{100, 300, 900, 1000}));
  EXPECT_EQ(search.highest_held(), 1000);
  EXPECT_EQ(search.lowest_failed(), 0);
}

TEST(StepSearchTest, FirstStepFailsThenSearchesBelow) {
  StepSearch search({.start_rate = 100, .factor = 2, .max_rate = 1e6, .refine_steps = 2});
  const std::vector<double> tried = RunSearch(search, 60);
  EXPECT_EQ(tried, (std::vector<double>{100, 50, std::sqrt(50.0 * 100.0)}));
  EXPECT_EQ(search.highest_held(), 50);
}

TEST(StepSearchTest, NoRefinement) {
  StepSearch search({.start_rate = 10, .factor = 10, .max_rate = 1e6, .refine_steps = 0});
  EXPECT_EQ(RunSearch(search, 500), (std::vector<double>{10, 100, 1000}));
  EXPECT_EQ(search.highest_held(), 100);
}

TEST(StepSearchTest, BoundedNumberOfSteps) {
  StepSearch search({.start_rate = 1, .factor = 1.01, .max_rate = 1e12, .refine_steps = 2, .max_steps = 7});
  EXPECT_EQ(RunSearch(search, 1e12).size(), 7u);
}

TEST(JudgeStepTest, Criteria) {
  const StepCriteria c{.p99_target_ms = 5, .max_error_ratio = 0.001, .min_achieved_ratio = 0.95};
  EXPECT_TRUE(JudgeStep({.target_rate = 100, .achieved_rate = 99, .p99_ms = 4.9, .ok = 1000, .errors = 1}, c).held);
  StepVerdict slow = JudgeStep({.target_rate = 100, .achieved_rate = 99, .p99_ms = 5.1, .ok = 1000}, c);
  EXPECT_FALSE(slow.held);
  EXPECT_NE(slow.reason.find("p99"), std::string::npos);
  StepVerdict errors = JudgeStep({.target_rate = 100, .achieved_rate = 99, .p99_ms = 1, .ok = 100, .errors = 1}, c);
  EXPECT_FALSE(errors.held);
  EXPECT_NE(errors.reason.find("error"), std::string::npos);
  StepVerdict behind = JudgeStep({.target_rate = 100, .achieved_rate = 90, .p99_ms = 1, .ok = 900}, c);
  EXPECT_FALSE(behind.held);
  EXPECT_NE(behind.reason.find("achieved"), std::string::npos);
  EXPECT_FALSE(JudgeStep({.target_rate = 100}, c).held);
}

}  // namespace
}  // namespace recd::loadtest
