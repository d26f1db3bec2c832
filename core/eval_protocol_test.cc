#include "core/eval_protocol.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

TEST(EvalProtocolTest, PermutationMatchesNumpyLegacyRandomState) {
  // numpy 1.24: np.random.RandomState(42).permutation(10), etc.
  EXPECT_THAT(NumpyLegacyPermutation(10, 42), ElementsAre(8, 1, 5, 0, 7, 2, 9, 4, 3, 6));
  const std::vector<uint32_t> p300 = NumpyLegacyPermutation(300, 42);
  EXPECT_THAT(std::vector<uint32_t>(p300.begin(), p300.begin() + 12),
              ElementsAre(203, 266, 152, 9, 233, 226, 196, 109, 5, 175, 237, 57));
  const std::vector<uint32_t> p70k = NumpyLegacyPermutation(70000, 7);
  EXPECT_THAT(std::vector<uint32_t>(p70k.begin(), p70k.begin() + 8),
              ElementsAre(7653, 66274, 9119, 10760, 43166, 24247, 3682, 37283));
  EXPECT_TRUE(NumpyLegacyPermutation(0, 1).empty());
  EXPECT_THAT(NumpyLegacyPermutation(1, 1), ElementsAre(0));
}

TrainingData UserWithItems(const std::vector<int>& counts) {
  TrainingData d;
  d.num_users = counts.size();
  d.num_items = 100;
  int t = 0;
  for (size_t u = 0; u < counts.size(); ++u) {
    for (int j = 0; j < counts[u]; ++j) {
      Interaction x;
      x.user = u;
      x.item = j;
      x.event = EventType::kRating;
      x.has_value = true;
      x.value = 3;
      x.timestamp_ms = ++t;
      d.interactions.push_back(x);
    }
  }
  return d;
}

TEST(EvalProtocolTest, StratifiedSplitMatchesRecommendersPerUser) {
  // 22 * 0.75 = 16.5 rounds to 16 (halves to even), 26 * 0.75 = 19.5 to 20, 4 -> 3.
  const TrainingData d = UserWithItems({22, 26, 4});
  auto split = StratifiedSplit(d, {});
  ASSERT_TRUE(split.ok()) << split.status();
  const auto train = ItemsByUser(split->train);
  const auto test = ItemsByUser(split->test);
  EXPECT_EQ(train[0].size(), 16u);
  EXPECT_EQ(train[1].size(), 20u);
  EXPECT_EQ(train[2].size(), 3u);
  // np.random.RandomState(42).choice(22, 22, replace=False) = [0, 13, 8, 1, 15, 5, 20, 11, 3,
  // 4, 17, 12, 18, 16, 2, 9 | 21, 7, 10, 14, 19, 6]: the last six positions are the test part.
  EXPECT_THAT(test[0], ElementsAre(6, 7, 10, 14, 19, 21));
  EXPECT_EQ(split->train.num_users, 3u);
  EXPECT_EQ(split->test.num_items, 100u);
  EXPECT_EQ(split->train.interactions.size() + split->test.interactions.size(),
            d.interactions.size());
}

TEST(EvalProtocolTest, StratifiedSplitPerItemAndBadRatio) {
  const TrainingData d = UserWithItems({8, 8, 8, 8});  // every item has 4 users
  StratifiedSplitOptions o;
  o.by = StratifiedSplitOptions::By::kItem;
  auto split = StratifiedSplit(d, o);
  ASSERT_TRUE(split.ok());
  std::vector<int> per_item(8, 0);
  for (const Interaction& x : split->train.interactions) ++per_item[x.item];
  for (int c : per_item) EXPECT_EQ(c, 3);
  o.ratio = 1.0;
  EXPECT_FALSE(StratifiedSplit(d, o).ok());
}

TEST(EvalProtocolTest, SortByTimestampIsStable) {
  TrainingData d;
  d.num_users = 1;
  d.num_items = 4;
  for (int k = 0; k < 4; ++k) {
    Interaction x;
    x.user = 0;
    x.item = k;
    x.timestamp_ms = (k == 2) ? 5 : 10;
    d.interactions.push_back(x);
  }
  const TrainingData s = SortByTimestamp(d);
  std::vector<ItemIndex> order;
  for (const Interaction& x : s.interactions) order.push_back(x.item);
  EXPECT_THAT(order, ElementsAre(2, 0, 1, 3));
  const auto h = HistoriesByUser(s);
  EXPECT_EQ(h[0][0].item, 2u);
  EXPECT_EQ(h[0][0].sequence, 1u);
}

TEST(EvalProtocolTest, EvaluateRankingHandExample) {
  auto data = std::make_shared<ModelData>();
  data->meta.algorithm = "pure_svd";
  data->meta.name = "handmade";
  data->item_factors.resize(4, 1);
  data->item_factors << 4, 3, 2, 1;
  data->user_factors.resize(2, 1);
  data->user_factors << 1, 0;  // user 1 has no row and no history: no vector
  data->meta.num_items = 4;
  data->meta.num_users = 2;
  auto model = CreateModel(data);
  ASSERT_TRUE(model.ok()) << model.status();
  // User 0: item 0 excluded, ranking [1, 2, 3]; relevant {2}: hit at rank 2 of k = 2.
  RankingEvalOptions o;
  o.k = 2;
  o.num_threads = 2;
  auto r = EvaluateRanking(**model, {{2}, {1}}, {{0}, {}}, {}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->num_users, 1);
  EXPECT_EQ(r->users_without_vector, 1);
  EXPECT_DOUBLE_EQ(r->mean.ndcg, 1.0 / std::log2(3.0));
  EXPECT_DOUBLE_EQ(r->mean.precision, 0.5);
  EXPECT_DOUBLE_EQ(r->mean.average_precision, 0.5);
}

}  // namespace
}  // namespace recd
