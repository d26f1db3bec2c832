#include "core/holdout.h"

#include <memory>

#include "core/demo_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::ElementsAre;

Interaction Click(UserIndex u, ItemIndex i) {
  Interaction x;
  x.user = u;
  x.item = i;
  x.event = EventType::kClick;
  return x;
}

TEST(SplitHoldoutTest, TakesLatestPositiveNewerThanCutAndRemovesThePair) {
  TrainingData data;
  data.num_users = 3;
  data.num_items = 5;
  // user 0: items 0,1,0(again),2 — latest is item 2 at seq 14.
  // user 1: items 3, impression of 4 (not positive) — latest positive item 3, seq 11 (too old).
  // user 2: item 4 only — no history would be left.
  data.interactions = {Click(0, 0), Click(1, 3), Click(0, 1), Click(0, 0), Click(2, 4), Click(0, 2)};
  Interaction impression = Click(1, 4);
  impression.event = EventType::kImpression;
  data.interactions.push_back(impression);
  data.sequences = {10, 11, 12, 13, 14, 15, 16};
  data.last_sequence = 16;

  HoldoutOptions options;
  options.after_sequence = 11;
  HoldoutSplit split = SplitHoldout(data, options);
  ASSERT_EQ(split.holdout.size(), 1u);
  EXPECT_EQ(split.holdout[0].user, 0u);
  EXPECT_EQ(split.holdout[0].item, 2u);
  EXPECT_EQ(split.holdout[0].sequence, 15u);
  EXPECT_EQ(split.train.interactions.size(), 6u);
  EXPECT_THAT(split.train.sequences, ElementsAre(10, 11, 12, 13, 14, 16));

  // A user's earlier interactions with the held-out item go too (else it would be "seen").
  data.interactions[2] = Click(0, 2);
  split = SplitHoldout(data, options);
  ASSERT_EQ(split.holdout.size(), 1u);
  for (const Interaction& x : split.train.interactions) {
    EXPECT_FALSE(x.user == 0 && x.item == 2);
  }

  options.after_sequence = 15;
  EXPECT_TRUE(SplitHoldout(data, options).holdout.empty());
}

TEST(SplitHoldoutTest, KeepsTheMostRecentUsersUpToTheCap) {
  TrainingData data;
  data.num_users = 10;
  data.num_items = 3;
  for (UserIndex u = 0; u < 10; ++u) {
    data.interactions.push_back(Click(u, 0));
    data.interactions.push_back(Click(u, 1 + u % 2));
  }
  HoldoutOptions options;
  options.max_users = 3;
  HoldoutSplit split = SplitHoldout(data, options);
  ASSERT_EQ(split.holdout.size(), 3u);
  EXPECT_EQ(split.holdout[0].user, 7u);
  EXPECT_EQ(split.holdout[2].user, 9u);
}

class EvaluateHoldoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DemoDataOptions demo;
    demo.num_users = 400;
    demo.num_items = 300;
    demo.num_interactions = 12000;
    absl::StatusOr<DemoDataset> ds = GenerateDemoData(demo);
    ASSERT_TRUE(ds.ok());
    data_ = DemoTrainingData(*ds);
    split_ = SplitHoldout(data_, HoldoutOptions());
    ASSERT_GT(split_.holdout.size(), 300u);
  }

  std::shared_ptr<const Model> Train(const std::string& algorithm, std::map<std::string, std::string> params) {
    absl::StatusOr<ModelData> data = TrainModel({algorithm, algorithm, params}, split_.train, TrainOptions());
    EXPECT_TRUE(data.ok()) << data.status();
    absl::StatusOr<std::shared_ptr<const Model>> model = CreateModel(std::make_shared<ModelData>(std::move(*data)));
    EXPECT_TRUE(model.ok()) << model.status();
    return *model;
  }

  TrainingData data_;
  HoldoutSplit split_;
};

TEST_F(EvaluateHoldoutTest, PersonalisedModelBeatsPopularityAndBrokenModelScoresNothing) {
  auto svd = Train("pure_svd", {{"rank", "20"}});
  auto pop = Train("popularity", {});
  HoldoutMetrics m_svd = EvaluateHoldout(*svd, split_.train, split_.holdout, 10);
  HoldoutMetrics m_pop = EvaluateHoldout(*pop, split_.train, split_.holdout, 10);
  EXPECT_EQ(m_svd.users, split_.holdout.size());
  EXPECT_GT(m_svd.hit_rate, m_pop.hit_rate + 0.03);
  EXPECT_GT(m_svd.hit_rate, 0.1);
  EXPECT_LE(m_svd.ndcg, m_svd.hit_rate);
  EXPECT_GT(m_svd.ndcg, 0.0);

  // Shuffle the item factors: the structure is gone and the hit rate collapses.
  auto broken = std::make_shared<ModelData>(svd->data());
  EmbeddingMatrix& f = broken->item_factors;
  for (Eigen::Index r = 0; r + 1 < f.rows(); r += 2) f.row(r).swap(f.row(r + 1));
  f.row(0).setZero();
  auto broken_model = CreateModel(broken);
  ASSERT_TRUE(broken_model.ok());
  HoldoutMetrics m_broken = EvaluateHoldout(**broken_model, split_.train, split_.holdout, 10);
  EXPECT_LT(m_broken.hit_rate, m_svd.hit_rate * 0.5);
}

TEST_F(EvaluateHoldoutTest, HitRateGrowsWithK) {
  auto svd = Train("pure_svd", {{"rank", "20"}});
  double last = 0.0;
  for (int k : {1, 5, 10, 50}) {
    HoldoutMetrics m = EvaluateHoldout(*svd, split_.train, split_.holdout, k);
    EXPECT_GE(m.hit_rate, last);
    last = m.hit_rate;
  }
  EXPECT_EQ(EvaluateHoldout(*svd, split_.train, {}, 10).users, 0u);
}

}  // namespace
}  // namespace recd
