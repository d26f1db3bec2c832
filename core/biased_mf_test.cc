#include "core/biased_mf.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "Eigen/Cholesky"
#include "core/random.h"
#include "core/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using synthetic::HistoryOf;

// Ratings from a planted model r = 3.5 + b_u + b_i + p_uᵀq_i (rank 3) plus Gaussian noise of
// standard deviation `noise`, clipped to [1, 5], on a `density` share of the pairs; 80% of them
// train, the other 20% are returned as `test`.
struct Planted {
  TrainingData train;
  std::vector<Interaction> test;
};

Planted PlantedRatings(uint64_t seed, uint32_t users, uint32_t items, double density,
                       double noise = 0.1) {
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
      const double r = 3.5 + bu(u) + bi(i) + p.row(u).dot(q.row(i)) + noise * rng.Normal();
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
  EXPECT_EQ(a->meta.params.at("solver"), "mcmc");  // the default
  EXPECT_EQ(a->item_factors, b->item_factors);
  EXPECT_EQ(a->user_factors, b->user_factors);
  EXPECT_EQ(a->tensors, b->tensors);

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

// --- mcmc (Bayesian PMF by Gibbs sampling) ---------------------------------------------------

// RMSE of μ + b_u + b_i with ridge-fitted biases (λ = 5, ten alternating passes): what a model
// with no latent factors achieves.
double BiasBaselineRmse(const Planted& planted) {
  const TrainingData& d = planted.train;
  double mean = 0;
  for (const Interaction& x : d.interactions) mean += x.value;
  mean /= d.interactions.size();
  std::vector<double> bu(d.num_users, 0.0), bi(d.num_items, 0.0);
  for (int pass = 0; pass < 10; ++pass) {
    std::vector<double> su(d.num_users, 0.0), nu(d.num_users, 5.0);
    for (const Interaction& x : d.interactions) {
      su[x.user] += x.value - mean - bi[x.item];
      nu[x.user] += 1;
    }
    for (uint32_t u = 0; u < d.num_users; ++u) bu[u] = su[u] / nu[u];
    std::vector<double> si(d.num_items, 0.0), ni(d.num_items, 5.0);
    for (const Interaction& x : d.interactions) {
      si[x.item] += x.value - mean - bu[x.user];
      ni[x.item] += 1;
    }
    for (uint32_t i = 0; i < d.num_items; ++i) bi[i] = si[i] / ni[i];
  }
  double sq = 0;
  for (const Interaction& x : planted.test) {
    const double e = std::clamp(mean + bu[x.user] + bi[x.item], 1.0, 5.0) - x.value;
    sq += e * e;
  }
  return std::sqrt(sq / planted.test.size());
}

// Noisy (σ = 0.5), sparse ratings: where averaging over the posterior pays.
Planted NoisyPlanted() { return PlantedRatings(13, 200, 160, 0.25, 0.5); }

const std::map<std::string, std::string> kMcmcParams = {
    {"solver", "mcmc"}, {"factors", "5"}, {"samples", "60"}, {"burn_in", "10"}};

TEST(BiasedMfMcmcTest, BeatsTheBiasBaselineAndAls) {
  const Planted planted = NoisyPlanted();
  TrainOptions options;
  options.num_threads = 2;
  auto mcmc = TrainModel({"mf", "biased_mf", kMcmcParams}, planted.train, options);
  ASSERT_TRUE(mcmc.ok()) << mcmc.status();
  auto als = TrainModel({"mf", "biased_mf", {{"solver", "als"}, {"factors", "5"}}},
                        planted.train, options);
  ASSERT_TRUE(als.ok()) << als.status();
  const double baseline = BiasBaselineRmse(planted);
  const double mcmc_rmse = TestRmse(*mcmc, planted.test);
  const double als_rmse = TestRmse(*als, planted.test);
  // The planted factors carry as much variance as the noise: a model that finds them is far
  // below the baseline, and nothing can go below the noise (0.5, a little less after clipping).
  EXPECT_LT(mcmc_rmse, 0.8 * baseline) << "baseline " << baseline;
  EXPECT_LE(mcmc_rmse, als_rmse) << "baseline " << baseline;
  EXPECT_GT(mcmc_rmse, 0.4);
  EXPECT_EQ(mcmc->meta.metrics.at("samples_averaged"), 50);
  EXPECT_GT(mcmc->meta.metrics.at("noise_precision"), 0.0);  // sampled by default
  EXPECT_EQ(mcmc->meta.metrics.count("objective"), 0u);
  EXPECT_LT(mcmc->meta.metrics.at("train_rmse"), mcmc_rmse);
  // The stored layout is the other solvers': [p_u, 1] users, [q_i, b_i] items, 5 + 1 columns.
  EXPECT_EQ(mcmc->item_factors.cols(), 6);
  EXPECT_EQ(mcmc->user_factors(0, 5), 1.0f);
}

TEST(BiasedMfMcmcTest, SampledNoisePrecisionFindsTheNoiseLevel) {
  const Planted planted = NoisyPlanted();
  std::map<std::string, std::string> params = kMcmcParams;
  params["noise_precision"] = "0";
  auto data = TrainModel({"mf", "biased_mf", params}, planted.train, {});
  ASSERT_TRUE(data.ok()) << data.status();
  // True precision 1 / 0.5² = 4 (a little more after clipping to [1, 5]); the chain's posterior
  // mean of α sits near the inverse of its own training error.
  const double alpha = data->meta.metrics.at("noise_precision");
  EXPECT_GT(alpha, 3.0);
  EXPECT_LT(alpha, 8.0);
  EXPECT_LT(TestRmse(*data, planted.test), 0.8 * BiasBaselineRmse(planted));

  params["noise_precision"] = "2.5";
  auto fixed = TrainModel({"mf", "biased_mf", params}, planted.train, {});
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(fixed->meta.metrics.at("noise_precision"), 2.5);
  EXPECT_EQ(fixed->tensors.at("fold_in_noise_precision")(0, 0), 2.5f);
}

TEST(BiasedMfMcmcTest, BitIdenticalForAnyThreadCount) {
  // 300 users and 130 items: 4 and 2 row blocks of 64+, so threads really split the work.
  const Planted planted = PlantedRatings(5, 300, 130, 0.3, 0.3);
  std::map<std::string, std::string> params = {{"solver", "mcmc"}, {"factors", "4"},
                                               {"samples", "12"}, {"burn_in", "3"},
                                               {"noise_precision", "0"}};
  TrainOptions one, two, four;
  two.num_threads = 2;
  four.num_threads = 4;
  auto a = TrainModel({"mf", "biased_mf", params}, planted.train, one);
  auto b = TrainModel({"mf", "biased_mf", params}, planted.train, two);
  auto c = TrainModel({"mf", "biased_mf", params}, planted.train, four);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  for (const ModelData* other : {&*b, &*c}) {
    EXPECT_EQ(a->item_factors, other->item_factors);
    EXPECT_EQ(a->user_factors, other->user_factors);
    EXPECT_EQ(a->tensors, other->tensors);
    EXPECT_EQ(a->meta.metrics, other->meta.metrics);
  }
  TrainOptions seeded = one;
  seeded.seed = 43;
  auto d = TrainModel({"mf", "biased_mf", params}, planted.train, seeded);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(a->item_factors, d->item_factors);
}

TEST(BiasedMfMcmcTest, FoldInIsThePosteriorMeanUnderTheLearnedPrior) {
  const Planted planted = NoisyPlanted();
  auto data = TrainModel({"mf", "biased_mf", kMcmcParams}, planted.train, {});
  ASSERT_TRUE(data.ok()) << data.status();
  // Through CreateModel from a copy, as a loaded version is built.
  auto model = CreateModel(std::make_shared<const ModelData>(*data));
  ASSERT_TRUE(model.ok()) << model.status();
  const EmbeddingMatrix& items = data->item_factors;
  const int k1 = 6;
  const Eigen::MatrixXd precision = data->tensors.at("fold_in_prior_precision").cast<double>();
  const Eigen::VectorXd prior_mean =
      data->tensors.at("fold_in_prior_mean").row(0).transpose().cast<double>();
  const double alpha = data->tensors.at("fold_in_noise_precision")(0, 0);
  const double mu = data->tensors.at("global_mean")(0, 0);
  ASSERT_EQ(precision.rows(), k1);
  EXPECT_FLOAT_EQ(alpha, data->meta.metrics.at("noise_precision"));
  for (UserIndex u : {0u, 17u, 199u}) {
    const std::vector<HistoryEntry> history = HistoryOf(planted.train, u);
    Eigen::MatrixXd a = precision;
    Eigen::VectorXd b = precision * prior_mean;
    for (const HistoryEntry& h : history) {
      Eigen::VectorXd x(k1);
      x.head(k1 - 1) = items.row(h.item).head(k1 - 1).transpose().cast<double>();
      x(k1 - 1) = 1.0;
      a += alpha * x * x.transpose();
      b += alpha * x * (h.value - mu - items(h.item, k1 - 1));
    }
    const Eigen::VectorXd expected = a.ldlt().solve(b);
    const EmbeddingVector folded = (*model)->FoldInUser(history);
    ASSERT_EQ(folded.size(), k1);
    EXPECT_EQ(folded(k1 - 1), 1.0f);
    for (int f = 0; f + 1 < k1; ++f) EXPECT_NEAR(folded(f), expected(f), 1e-4) << u << " " << f;
    // Not the trained row (that is the chain's posterior mean), but close to it.
    const EmbeddingVector trained = (*model)->UserEmbedding(u);
    EXPECT_NE(folded, trained);
    EXPECT_GT(folded.head(k1 - 1).normalized().dot(trained.head(k1 - 1).normalized()), 0.98) << u;
  }
  EXPECT_EQ((*model)->FoldInUser({}).size(), 0);
}

TEST(BiasedMfMcmcTest, LoadRejectsMissingOrBadFoldInTensors) {
  const Planted planted = PlantedRatings(3, 60, 50, 0.5);
  std::map<std::string, std::string> params = kMcmcParams;
  params["samples"] = "5";
  params["burn_in"] = "1";
  auto data = TrainModel({"mf", "biased_mf", params}, planted.train, {});
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_TRUE(CreateModel(std::make_shared<const ModelData>(*data)).ok());
  for (const char* name :
       {"fold_in_prior_mean", "fold_in_prior_precision", "fold_in_noise_precision"}) {
    ModelData broken = *data;
    broken.tensors.erase(name);
    auto model = CreateModel(std::make_shared<const ModelData>(std::move(broken)));
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(model.status().message(), ::testing::HasSubstr(name));
  }
  ModelData indefinite = *data;
  indefinite.tensors["fold_in_prior_precision"] = -indefinite.tensors["fold_in_prior_precision"];
  auto model = CreateModel(std::make_shared<const ModelData>(std::move(indefinite)));
  EXPECT_THAT(model.status().message(), ::testing::HasSubstr("positive definite"));
}

TEST(BiasedMfMcmcTest, BadParamsNameTheKeyAndTheRange) {
  const Planted planted = PlantedRatings(3, 30, 20, 0.5);
  struct Case {
    std::map<std::string, std::string> params;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {{{"solver", "mcmc"}, {"samples", "0"}}, {"'samples'", "[1, 100000]"}},
      {{{"solver", "mcmc"}, {"burn_in", "-1"}}, {"'burn_in'", "[0, 99999]"}},
      {{{"solver", "mcmc"}, {"samples", "20"}, {"burn_in", "20"}},
       {"'burn_in' (20)", "'samples' (20)"}},
      {{{"solver", "mcmc"}, {"noise_precision", "-0.5"}}, {"'noise_precision'", "[0, 10000]"}},
      {{{"solver", "mcmc"}, {"prior_beta", "0"}}, {"'prior_beta'", "[1e-06, 1e+06]"}},
      {{{"solver", "mcmc"}, {"prior_scale", "nan"}}, {"'prior_scale'"}},
      {{{"solver", "gibbs"}}, {"'solver'", "als, sgd, mcmc"}},
  };
  for (const Case& c : cases) {
    auto data = TrainModel({"mf", "biased_mf", c.params}, planted.train, {});
    EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& e : c.expected) {
      EXPECT_THAT(data.status().message(), ::testing::HasSubstr(e));
    }
  }
}

TEST(BiasedMfMcmcTest, CancelledAndProgress) {
  const Planted planted = PlantedRatings(3, 60, 50, 0.5);
  std::atomic<bool> cancel{true};
  TrainOptions options;
  options.cancel = &cancel;
  auto cancelled = TrainModel({"mf", "biased_mf", kMcmcParams}, planted.train, options);
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled);

  cancel = false;
  std::vector<double> progress;
  options.progress = [&](double f) { progress.push_back(f); };
  auto data = TrainModel({"mf", "biased_mf", kMcmcParams}, planted.train, options);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_GE(progress.size(), 60u);
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_EQ(progress.back(), 1.0);
}

}  // namespace
}  // namespace recd
