#include "core/biased_mf.h"

#include <cmath>

#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

// Ratings from a planted model r = 3.5 + b_u + b_i + p_uᵀq_i (rank 3) plus noise, clipped to
// [1, 5], on a random half of the pairs; the other half is returned as `test`.
struct Planted {
  TrainingData train;
  std::vector<Interaction> test;
};

Planted PlantedRatings(uint64_t seed, uint32_t users, uint32_t items, double density) {
  PortableRng rng(seed);
  Eigen::MatrixXd p(users, 3), q(items, 3);
  Eigen::VectorXd bu(users), bi(items);
  for (uint32_t u = 0; u < users; ++u) {
    for (int f = 0; f < 3; ++f) p(u, f) = 0.7 * rng.Normal();
    bu(u) = 0.3 * rng.Normal();
  }
  for (uint32_t i = 0; i < items; ++i) {
    for (int f = 0; f < 3; ++f) q(i, f) = 0.7 * rng.Normal();
    bi(i) = 0.3 * rng.Normal();
  }
  Planted out;
  out.train.num_users = users;
  out.train.num_items = items;
  int64_t t = 0;
  for (uint32_t u = 0; u < users; ++u) {
    for (uint32_t i = 0; i < items; ++i) {
      if (!rng.Bernoulli(density)) continue;
      Interaction x;
      x.user = u;
      x.item = i;
      x.event = EventType::kRating;
      x.has_value = true;
      const double r = 3.5 + bu(u) + bi(i) + p.row(u).dot(q.row(i)) + 0.1 * rng.Normal();
      x.value = static_cast<float>(std::clamp(r, 1.0, 5.0));
      x.timestamp_ms = ++t;
      (rng.Bernoulli(0.8) ? out.train.interactions : out.test).push_back(x);
    }
  }
  return out;
}

double TestRmse(const ModelData& d, const std::vector<Interaction>& test) {
  auto predictor = BiasedMfPredictor::Create(d);
  EXPECT_TRUE(predictor.ok()) << predictor.status();
  double sq = 0;
  for (const Interaction& x : test) {
    const double e = predictor->Predict(x.user, x.item) - x.value;
    sq += e * e;
  }
  return std::sqrt(sq / test.size());
}

std::vector<HistoryEntry> HistoryOf(const TrainingData& d, UserIndex user) {
  std::vector<HistoryEntry> h;
  for (size_t k = 0; k < d.interactions.size(); ++k) {
    const Interaction& x = d.interactions[k];
    if (x.user == user) h.push_back({x.item, x.timestamp_ms, k + 1, x.value, x.event, x.has_value});
  }
  return h;
}

class BiasedMfSolverTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BiasedMfSolverTest, RecoversPlantedRatingsAndFoldInMatchesTraining) {
  const Planted planted = PlantedRatings(7, 150, 120, 0.5);
  TrainOptions options;
  options.num_threads = 2;
  auto data = TrainModel({"mf", "biased_mf",
                          {{"factors", "3"}, {"solver", GetParam()}, {"iterations", "40"},
                           {"regularization", "0.01"}, {"bias_regularization", "0.01"},
                           {"learning_rate", "0.02"}, {"lr_decay", "0.99"}}},
                         planted.train, options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->item_factors.cols(), 4);
  EXPECT_LT(data->meta.metrics.at("train_rmse"), 0.15);
  // Noise is 0.1; an unexplained rank-3 structure would leave an error near 1.
  EXPECT_LT(TestRmse(*data, planted.test), 0.2);

  auto model = CreateModel(std::make_shared<const ModelData>(*data));
  ASSERT_TRUE(model.ok()) << model.status();
  for (UserIndex u : {0u, 17u, 149u}) {
    const EmbeddingVector folded = (*model)->FoldInUser(HistoryOf(planted.train, u));
    const EmbeddingVector trained = (*model)->UserEmbedding(u);
    ASSERT_EQ(folded.size(), 4);
    EXPECT_EQ(folded(3), 1.0f);
    for (int f = 0; f < 4; ++f) EXPECT_EQ(folded(f), trained(f)) << "user " << u << " dim " << f;
  }
}

INSTANTIATE_TEST_SUITE_P(Solvers, BiasedMfSolverTest, ::testing::Values("als", "sgd"));

TEST(BiasedMfTest, RankingVectorOrdersItemsLikeThePrediction) {
  const Planted planted = PlantedRatings(3, 60, 50, 0.6);
  auto data = TrainModel({"mf", "biased_mf", {{"factors", "4"}}}, planted.train, {});
  ASSERT_TRUE(data.ok()) << data.status();
  auto predictor = BiasedMfPredictor::Create(*data);
  ASSERT_TRUE(predictor.ok());
  const EmbeddingMatrix& users = data->user_factors;
  const EmbeddingMatrix& items = data->item_factors;
  for (UserIndex u = 0; u < 5; ++u) {
    for (ItemIndex i = 0; i + 1 < 50; ++i) {
      const double dot_gap = users.row(u).dot(items.row(i)) - users.row(u).dot(items.row(i + 1));
      const double pred_gap = predictor->Predict(u, i) - predictor->Predict(u, i + 1);
      // Equal up to clipping at the rating range.
      if (std::abs(pred_gap) > 1e-3 && predictor->Predict(u, i) > 1.0f &&
          predictor->Predict(u, i) < 5.0f && predictor->Predict(u, i + 1) > 1.0f &&
          predictor->Predict(u, i + 1) < 5.0f) {
        EXPECT_NEAR(dot_gap, pred_gap, 1e-4);
      }
    }
  }
}

TEST(BiasedMfTest, DeterministicForAnyThreadCountAndRatingsOnly) {
  const Planted planted = PlantedRatings(5, 80, 70, 0.4);
  TrainOptions one, two;
  two.num_threads = 2;
  auto a = TrainModel({"mf", "biased_mf", {{"factors", "5"}, {"iterations", "5"}}}, planted.train, one);
  auto b = TrainModel({"mf", "biased_mf", {{"factors", "5"}, {"iterations", "5"}}}, planted.train, two);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->item_factors, b->item_factors);
  EXPECT_EQ(a->user_factors, b->user_factors);

  TrainingData views = planted.train;
  for (Interaction& x : views.interactions) {
    x.event = EventType::kView;
    x.has_value = false;
  }
  auto none = TrainModel({"mf", "biased_mf", {}}, views, one);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  auto bad = TrainModel({"mf", "biased_mf", {{"solver", "adam"}}}, planted.train, one);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BiasedMfTest, LatestRatingOfAPairCountsAndUnknownsFallBack) {
  TrainingData d;
  d.num_users = 3;
  d.num_items = 3;
  auto rate = [&](UserIndex u, ItemIndex i, float v) {
    Interaction x;
    x.user = u;
    x.item = i;
    x.event = EventType::kRating;
    x.has_value = true;
    x.value = v;
    d.interactions.push_back(x);
  };
  rate(0, 0, 1);
  rate(0, 0, 5);  // replaces the 1
  rate(1, 1, 3);
  auto data = TrainModel({"mf", "biased_mf", {{"factors", "2"}}}, d, {});
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_FLOAT_EQ(data->meta.metrics.at("global_mean"), 4.0);
  auto predictor = BiasedMfPredictor::Create(*data);
  ASSERT_TRUE(predictor.ok());
  // User 2 and item 2 have no ratings: user 2 gets μ + b_i, item 2 gets μ + b_u.
  EXPECT_GE(predictor->Predict(2, 2), 3.0f);
  EXPECT_LE(predictor->Predict(2, 2), 5.0f);
  EXPECT_EQ(data->user_factors.row(2).squaredNorm(), 0.0f);
  auto model = CreateModel(std::make_shared<const ModelData>(*data));
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->FoldInUser({}).size(), 0);
}

}  // namespace
}  // namespace recd
