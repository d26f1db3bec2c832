#include "loadtest/freshness.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace recd::loadtest {
namespace {

std::vector<RankedItem> List(std::vector<std::pair<std::string, float>> entries) {
  std::vector<RankedItem> out;
  for (auto& [id, score] : entries) out.push_back({id, score});
  return out;
}

TEST(FreshnessTest, ModelRankedDropsExplorationSlots) {
  recd::v1::RecommendResponse response;
  auto add = [&](const std::string& id, float score, bool exploration) {
    recd::v1::ScoredItem* item = response.add_items();
    item->set_item_id(id);
    item->set_score(score);
    item->set_exploration(exploration);
  };
  add("a", 3, false);
  add("b", 2, false);
  add("new", 2, true);
  EXPECT_EQ(ModelRanked(response), List({{"a", 3}, {"b", 2}}));
}

TEST(FreshnessTest, OnlyExcludingTheItemIsNotAReflection) {
  // The server dropped the clicked item but scored with the old vector: the rest is unchanged.
  const auto before = List({{"a", 3}, {"b", 2}, {"c", 1}});
  const auto after = List({{"b", 2}, {"c", 1}, {"d", 0.5}});
  const Reflection r = JudgeReflection(before, after, "a");
  EXPECT_TRUE(r.item_gone);
  EXPECT_FALSE(r.vector_moved);
  EXPECT_FALSE(r.reflected());
}

TEST(FreshnessTest, UnchangedAnswerIsNotAReflection) {
  const auto before = List({{"a", 3}, {"b", 2}, {"c", 1}});
  const Reflection r = JudgeReflection(before, before, "a");
  EXPECT_FALSE(r.item_gone);
  EXPECT_FALSE(r.vector_moved);
}

TEST(FreshnessTest, MovedScoresAreAReflection) {
  const auto before = List({{"a", 3}, {"b", 2}, {"c", 1}});
  // Same order, but the scores moved: the query vector changed.
  EXPECT_TRUE(JudgeReflection(before, List({{"b", 2.5f}, {"c", 1}, {"d", 0.5f}}), "a").reflected());
  EXPECT_TRUE(JudgeReflection(before, List({{"b", 2}, {"c", 1.0001f}, {"d", 0.5f}}), "a").reflected());
  // A new item ranked among the survivors.
  EXPECT_TRUE(JudgeReflection(before, List({{"b", 2}, {"e", 1.5f}, {"c", 1}}), "a").reflected());
  // Moved, but the clicked item is still there: not reflected.
  const Reflection still_there = JudgeReflection(before, List({{"a", 3}, {"b", 2.5f}, {"c", 1}}), "a");
  EXPECT_TRUE(still_there.vector_moved);
  EXPECT_FALSE(still_there.item_gone);
  EXPECT_FALSE(still_there.reflected());
}

TEST(FreshnessTest, ShorterAnswerCountsAsMoved) {
  const auto before = List({{"a", 3}, {"b", 2}, {"c", 1}, {"d", 0.5f}});
  EXPECT_TRUE(JudgeReflection(before, List({{"b", 2}}), "a").vector_moved);
  // The before list minus the clicked item is what an unmoved ranking gives when the catalogue
  // runs out.
  EXPECT_FALSE(JudgeReflection(before, List({{"b", 2}, {"c", 1}, {"d", 0.5f}}), "a").vector_moved);
}

TEST(FreshnessTest, DistinctSampleIsDistinctInRangeAndSeeded) {
  const std::vector<uint64_t> a = DistinctSample(1000, 600, 7);
  ASSERT_EQ(a.size(), 600u);
  EXPECT_EQ(std::set<uint64_t>(a.begin(), a.end()).size(), 600u);
  EXPECT_LT(*std::max_element(a.begin(), a.end()), 1000u);
  EXPECT_EQ(a, DistinctSample(1000, 600, 7));
  EXPECT_NE(a, DistinctSample(1000, 600, 8));
  // Spread over the range, not a prefix.
  EXPECT_GT(*std::max_element(a.begin(), a.end()), 900u);
  // Capped at n, and then a permutation.
  const std::vector<uint64_t> all = DistinctSample(10, 50, 1);
  ASSERT_EQ(all.size(), 10u);
  EXPECT_EQ(std::set<uint64_t>(all.begin(), all.end()).size(), 10u);
  EXPECT_TRUE(DistinctSample(0, 5, 1).empty());
}

TEST(FreshnessTest, QuantilesCountUnreflectedProbesAsNever) {
  FreshnessResult r;
  EXPECT_EQ(r.FreshnessQuantileNs(0.99), 0);
  // 100 judged probes, 99 reflected in 1..99 ms, one never.
  r.judged = 100;
  for (int i = 1; i <= 99; ++i) {
    r.freshness.Record(static_cast<uint64_t>(i) * 1000000);
    ++r.reflected;
  }
  EXPECT_NEAR(r.FreshnessQuantileNs(0.5) / 1e6, 50, 0.5);
  EXPECT_NEAR(r.FreshnessQuantileNs(0.99) / 1e6, 99, 1);
  EXPECT_EQ(r.FreshnessQuantileNs(1.0), INT64_MAX);
  // Two never: the p99 is never.
  r.judged = 101;
  EXPECT_EQ(r.FreshnessQuantileNs(0.99), INT64_MAX);
}

}  // namespace
}  // namespace recd::loadtest
