#include "core/eval_metrics.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace recd {
namespace {

// ranked [5, 3, 9, 1, 7] against relevant {1, 3, 8}: hits at ranks 2 and 4.
TEST(EvalMetricsTest, HandComputedExampleAtFive) {
  const std::vector<ItemIndex> ranked = {5, 3, 9, 1, 7};
  const std::vector<ItemIndex> relevant = {1, 3, 8};
  const UserRankingMetrics m = ComputeUserRankingMetrics(ranked, relevant, 5);
  EXPECT_EQ(m.hits, 2);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  // DCG = 1/log2(3) + 1/log2(5); ideal over min(3, 5) = 3 ranks: 1 + 1/log2(3) + 1/2.
  const double dcg = 1.0 / std::log2(3.0) + 1.0 / std::log2(5.0);
  const double idcg = 1.0 + 1.0 / std::log2(3.0) + 0.5;
  EXPECT_DOUBLE_EQ(m.ndcg, dcg / idcg);
  EXPECT_NEAR(m.ndcg, 0.4981893, 1e-7);
  // AP: (1/2 + 2/4) / |relevant| = 1/3.
  EXPECT_DOUBLE_EQ(m.average_precision, 1.0 / 3.0);
  EXPECT_EQ(m.hit_rate, 1.0);
}

TEST(EvalMetricsTest, OnlyTheFirstKCountAndShortListsAreNotRewarded) {
  const std::vector<ItemIndex> ranked = {5, 3, 9, 1, 7};
  const std::vector<ItemIndex> relevant = {1, 3, 8};
  const UserRankingMetrics m = ComputeUserRankingMetrics(ranked, relevant, 2);
  EXPECT_EQ(m.hits, 1);
  EXPECT_DOUBLE_EQ(m.precision, 0.5);
  EXPECT_DOUBLE_EQ(m.recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.ndcg, (1.0 / std::log2(3.0)) / (1.0 + 1.0 / std::log2(3.0)));
  // MAP divides by all 3 relevant items, not min(k, 3).
  EXPECT_DOUBLE_EQ(m.average_precision, (1.0 / 2.0) / 3.0);

  // Two recommendations at k = 10: precision is hits / 10.
  const UserRankingMetrics s = ComputeUserRankingMetrics({3, 1}, relevant, 10);
  EXPECT_DOUBLE_EQ(s.precision, 0.2);
  EXPECT_DOUBLE_EQ(s.average_precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.ndcg, (1.0 + 1.0 / std::log2(3.0)) / (1.0 + 1.0 / std::log2(3.0) + 0.5));
}

TEST(EvalMetricsTest, PerfectMissAndLeaveOneOut) {
  const UserRankingMetrics perfect = ComputeUserRankingMetrics({2, 4}, {2, 4}, 10);
  EXPECT_DOUBLE_EQ(perfect.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(perfect.average_precision, 1.0);
  EXPECT_DOUBLE_EQ(perfect.recall, 1.0);
  const UserRankingMetrics miss = ComputeUserRankingMetrics({1, 3}, {2}, 10);
  EXPECT_EQ(miss.hits, 0);
  EXPECT_EQ(miss.ndcg, 0.0);
  EXPECT_EQ(miss.hit_rate, 0.0);
  // One held-out item at rank 3: HR 1, NDCG 1/log2(4) = 0.5.
  const UserRankingMetrics loo = ComputeUserRankingMetrics({7, 8, 9, 10}, {9}, 10);
  EXPECT_EQ(loo.hit_rate, 1.0);
  EXPECT_DOUBLE_EQ(loo.ndcg, 0.5);
  EXPECT_DOUBLE_EQ(loo.average_precision, 1.0 / 3.0);
}

TEST(EvalMetricsTest, AccumulatorAveragesOverUsersCountingMissesAsZero) {
  RankingMetricsAccumulator a, b;
  a.Add(ComputeUserRankingMetrics({2, 4}, {2, 4}, 2));  // perfect
  b.Add(ComputeUserRankingMetrics({1, 3}, {2}, 2));     // miss
  a.Merge(b);
  EXPECT_EQ(a.num_users(), 2);
  const UserRankingMetrics m = a.Mean();
  EXPECT_DOUBLE_EQ(m.ndcg, 0.5);
  EXPECT_DOUBLE_EQ(m.precision, 0.5);
  EXPECT_DOUBLE_EQ(m.hit_rate, 0.5);
  EXPECT_EQ(RankingMetricsAccumulator().Mean().ndcg, 0.0);
}

TEST(EvalMetricsTest, RatingErrors) {
  const std::vector<float> predicted = {3.5f, 4.0f, 1.0f};
  const std::vector<float> actual = {4.0f, 4.0f, 3.0f};
  const RatingErrors e = ComputeRatingErrors(predicted, actual);
  EXPECT_EQ(e.count, 3);
  EXPECT_DOUBLE_EQ(e.mae, (0.5 + 0.0 + 2.0) / 3.0);
  EXPECT_DOUBLE_EQ(e.rmse, std::sqrt((0.25 + 0.0 + 4.0) / 3.0));
  EXPECT_EQ(ComputeRatingErrors({}, {}).rmse, 0.0);
}

}  // namespace
}  // namespace recd
