// Planted low-rank structure: the factorization models must recover it.
#include <algorithm>
#include <set>

#include "core/eval_protocol.h"
#include "core/model.h"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

// `groups` blocks: every user interacts with every item of their block (a rank-`groups` binary
// matrix), except a random 20% of those pairs, which are held out.
struct Blocks {
  TrainingData train;
  std::vector<std::vector<ItemIndex>> held_out;  // per user, sorted
};

Blocks PlantedBlocks(uint64_t seed, int groups, int users_per_group, int items_per_group) {
  PortableRng rng(seed);
  Blocks b;
  b.train.num_users = groups * users_per_group;
  b.train.num_items = groups * items_per_group;
  b.held_out.resize(b.train.num_users);
  for (UserIndex u = 0; u < b.train.num_users; ++u) {
    const int g = u % groups;
    for (int j = 0; j < items_per_group; ++j) {
      const ItemIndex i = g * items_per_group + j;
      if (rng.Bernoulli(0.2)) {
        b.held_out[u].push_back(i);
        continue;
      }
      Interaction x;
      x.user = u;
      x.item = i;
      x.event = EventType::kView;
      b.train.interactions.push_back(x);
    }
  }
  return b;
}

class PlantedBlocksTest : public ::testing::TestWithParam<ModelConfig> {};

// Recall@|held out| = 1 for every user: the held-out in-block items outrank every other-block
// item once the training items are excluded.
TEST_P(PlantedBlocksTest, HeldOutBlockItemsRankFirst) {
  const Blocks b = PlantedBlocks(11, 4, 30, 25);
  auto data = TrainModel(GetParam(), b.train, {});
  ASSERT_TRUE(data.ok()) << data.status();
  auto model = CreateModel(std::make_shared<const ModelData>(std::move(*data)));
  ASSERT_TRUE(model.ok()) << model.status();
  const auto exclude = ItemsByUser(b.train);
  const auto history = HistoriesByUser(b.train);
  for (UserIndex u = 0; u < b.train.num_users; ++u) {
    if (b.held_out[u].empty()) continue;
    RankingEvalOptions o;
    o.k = static_cast<int>(b.held_out[u].size());
    std::vector<std::vector<ItemIndex>> relevant(b.train.num_users);
    relevant[u] = b.held_out[u];
    auto r = EvaluateRanking(**model, relevant, exclude, history, o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->mean.recall, 1.0) << GetParam().algorithm << " user " << u;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, PlantedBlocksTest,
    ::testing::Values(
        ModelConfig{"svd", "pure_svd", {{"rank", "4"}, {"weighting", "binary"}}},
        ModelConfig{"als", "als", {{"factors", "4"}, {"iterations", "15"}, {"regularization", "0.1"}, {"weighting", "binary"}}},
        ModelConfig{"ease", "ease", {}},
        ModelConfig{"ease_rank4", "ease", {{"rank", "4"}, {"seq_weight", "0"}}}),
    [](const auto& info) { return info.param.name; });

// A dense planted rank-3 matrix of positive weights: PureSVD of rank 3 spans its row space, so
// projecting a user's row onto it (r_u V Vᵀ) gives the row back.
TEST(PlantedLowRankTest, PureSvdRecoversAnExactLowRankMatrix) {
  PortableRng rng(5);
  const int users = 60, items = 40, rank = 3;
  Eigen::MatrixXd p(users, rank), q(items, rank);
  for (int u = 0; u < users; ++u) for (int f = 0; f < rank; ++f) p(u, f) = 0.2 + rng.Uniform();
  for (int i = 0; i < items; ++i) for (int f = 0; f < rank; ++f) q(i, f) = 0.2 + rng.Uniform();
  const Eigen::MatrixXd m = p * q.transpose();
  TrainingData d;
  d.num_users = users;
  d.num_items = items;
  for (int u = 0; u < users; ++u) {
    for (int i = 0; i < items; ++i) {
      Interaction x;
      x.user = u;
      x.item = i;
      x.event = EventType::kView;
      x.has_value = true;
      x.value = static_cast<float>(m(u, i));
      d.interactions.push_back(x);
    }
  }
  auto data = TrainModel({"svd", "pure_svd", {{"rank", "3"}, {"weighting", "raw"}}}, d, {});
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_NEAR(data->meta.metrics.at("explained_energy"), 1.0, 1e-5);
  const Eigen::MatrixXd v = data->item_factors.cast<double>();
  const Eigen::MatrixXd reconstructed = data->user_factors.cast<double>() * v.transpose();
  EXPECT_LT((reconstructed - m).cwiseAbs().maxCoeff(), 1e-3 * m.cwiseAbs().maxCoeff());
}

// Implicit ALS on a fully observed binary rank-2 block matrix with tiny regularisation and
// uniform confidence fits it: x_uᵀy_i ≈ 1 on blocks, ≈ 0 off them.
TEST(PlantedLowRankTest, AlsRecoversAFullyObservedBlockMatrix) {
  TrainingData d;
  d.num_users = 40;
  d.num_items = 30;
  for (UserIndex u = 0; u < 40; ++u) {
    for (ItemIndex i = 0; i < 30; ++i) {
      if ((u < 20) != (i < 15)) continue;
      Interaction x;
      x.user = u;
      x.item = i;
      d.interactions.push_back(x);
    }
  }
  auto data = TrainModel({"als", "als",
                          {{"factors", "2"}, {"iterations", "30"}, {"regularization", "1e-4"},
                           {"alpha", "0"}, {"weighting", "binary"}, {"init_std", "0.3"}}},
                         d, {});
  ASSERT_TRUE(data.ok()) << data.status();
  const Eigen::MatrixXd s = data->user_factors.cast<double>() * data->item_factors.cast<double>().transpose();
  for (int u = 0; u < 40; ++u) {
    for (int i = 0; i < 30; ++i) {
      EXPECT_NEAR(s(u, i), (u < 20) == (i < 15) ? 1.0 : 0.0, 1e-2) << u << "," << i;
    }
  }
}

}  // namespace
}  // namespace recd
