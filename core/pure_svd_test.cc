#include "core/pure_svd.h"

#include <atomic>
#include <cmath>

#include "core/random.h"
#include "core/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::HasSubstr;

// Users and items in `groups` blocks: users interact mostly with their own block's items, with
// every event kind mixed in (ratings, repeats, dislikes, impressions).
TrainingData BlockData(uint64_t seed, uint32_t users, uint32_t items, int groups, int n) {
  return synthetic::GroupedInteractions(seed, users, items, groups, n, 0.9, synthetic::EventMix::kEveryKind);
}

std::vector<std::vector<HistoryEntry>> Histories(const TrainingData& d) {
  std::vector<std::vector<HistoryEntry>> h(d.num_users);
  for (size_t k = 0; k < d.interactions.size(); ++k) {
    const Interaction& x = d.interactions[k];
    h[x.user].push_back({x.item, x.timestamp_ms, k + 1, x.value, x.event, x.has_value});
  }
  return h;
}

absl::StatusOr<std::shared_ptr<const Model>> Train(const TrainingData& d,
                                                   std::map<std::string, std::string> params,
                                                   TrainOptions options = {}) {
  auto data = TrainModel({"svd", "pure_svd", std::move(params)}, d, options);
  if (!data.ok()) return data.status();
  return CreateModel(std::make_shared<const ModelData>(std::move(*data)));
}

TEST(PureSvdTest, ShapesMetadataAndOrthonormalItems) {
  const TrainingData d = BlockData(1, 200, 120, 4, 6000);
  auto model = Train(d, {{"rank", "8"}});
  ASSERT_TRUE(model.ok()) << model.status();
  const Model& m = **model;
  EXPECT_EQ(m.dim(), 8);
  EXPECT_EQ(m.item_factors().rows(), 120);
  EXPECT_EQ(m.data().user_factors.rows(), 200);
  EXPECT_EQ(m.meta().params.at("rank"), "8");
  EXPECT_EQ(m.meta().params.at("weighting"), "log");
  EXPECT_EQ(m.meta().params.at("power_iterations"), "4");
  EXPECT_EQ(m.meta().metrics.at("rank"), 8.0);
  const double energy = m.meta().metrics.at("explained_energy");
  EXPECT_GT(energy, 0.3);
  EXPECT_LT(energy, 1.0);
  const Eigen::MatrixXd v = m.item_factors().cast<double>();
  EXPECT_LT((v.transpose() * v - Eigen::MatrixXd::Identity(8, 8)).cwiseAbs().maxCoeff(), 1e-5);
}

TEST(PureSvdTest, FoldInReproducesTrainedUserRowsExactly) {
  for (const std::string weighting : {"log", "binary", "raw"}) {
    const TrainingData d = BlockData(2, 150, 90, 3, 5000);
    TrainOptions options;
    options.event_weights.view = 1.5f;  // non-default weights must travel with the model
    options.event_weights.rating_scale = 0.5f;
    auto model = Train(d, {{"rank", "12"}, {"weighting", weighting}, {"item_norm_exponent", "-0.3"}},
                       options);
    ASSERT_TRUE(model.ok()) << model.status();
    const Model& m = **model;
    const auto histories = Histories(d);
    int compared = 0;
    for (uint32_t u = 0; u < d.num_users; ++u) {
      const EmbeddingVector folded = m.FoldInUser(histories[u]);
      if (!m.HasUserEmbedding(u)) {
        EXPECT_EQ(folded.size(), 0) << "user " << u;
        continue;
      }
      ASSERT_EQ(folded.size(), 12);
      EXPECT_EQ(folded, m.UserEmbedding(u)) << weighting << " user " << u;  // bit-identical
      ++compared;
    }
    EXPECT_GT(compared, 140);
  }
}

TEST(PureSvdTest, FoldInIgnoresItemsNewerThanTheModel) {
  const TrainingData d = BlockData(3, 100, 60, 3, 3000);
  auto model = Train(d, {{"rank", "6"}});
  ASSERT_TRUE(model.ok());
  std::vector<HistoryEntry> h = Histories(d)[5];
  const EmbeddingVector before = (*model)->FoldInUser(h);
  h.push_back({60, 0, 99999, 0.0f, EventType::kPurchase, false});
  h.push_back({kNoIndex, 0, 100000, 0.0f, EventType::kView, false});
  EXPECT_EQ((*model)->FoldInUser(h), before);
  EXPECT_EQ((*model)->FoldInUser({}).size(), 0);
  const std::vector<HistoryEntry> only_new = {{70, 0, 1, 0.0f, EventType::kView, false}};
  EXPECT_EQ((*model)->FoldInUser(only_new).size(), 0);
}

TEST(PureSvdTest, ExplainScoreDecomposesTheScoreExactly) {
  const TrainingData d = BlockData(4, 120, 80, 4, 4000);
  auto model = Train(d, {{"rank", "10"}, {"weighting", "log"}});
  ASSERT_TRUE(model.ok());
  const Model& m = **model;
  const auto histories = Histories(d);
  for (uint32_t u : {0u, 7u, 33u}) {
    const auto& h = histories[u];
    const EmbeddingVector q = m.FoldInUser(h);
    ASSERT_EQ(q.size(), 10);
    for (ItemIndex item : {0u, 13u, 41u, 79u}) {
      const std::vector<float> parts = m.ExplainScore(h, item);
      ASSERT_EQ(parts.size(), h.size());
      double sum = 0.0;
      for (size_t j = 0; j < h.size(); ++j) {
        sum += parts[j];
        if (h[j].event == EventType::kImpression) {
          EXPECT_EQ(parts[j], 0.0f);
        }
      }
      const double score = q.dot(m.item_factors().row(item).transpose());
      EXPECT_NEAR(sum, score, 1e-4 * (1.0 + std::abs(score))) << "user " << u << " item " << item;
    }
  }
  // An item outside the model explains nothing.
  const std::vector<float> none = m.ExplainScore(histories[0], 80);
  EXPECT_EQ(none, std::vector<float>(histories[0].size(), 0.0f));
}

TEST(PureSvdTest, EmptyItemsAndUsersGetZeroRows) {
  TrainingData d = BlockData(5, 50, 40, 2, 1500);
  d.num_users = 55;  // users 50..54 never interacted
  d.num_items = 45;  // items 40..44 never interacted
  auto model = Train(d, {{"rank", "5"}});
  ASSERT_TRUE(model.ok());
  const Model& m = **model;
  for (ItemIndex i = 40; i < 45; ++i) EXPECT_TRUE(m.item_factors().row(i).isZero(0.0f));
  for (UserIndex u = 50; u < 55; ++u) {
    EXPECT_FALSE(m.HasUserEmbedding(u));
    EXPECT_EQ(m.UserEmbedding(u).size(), 0);
  }
  EXPECT_TRUE(m.HasUserEmbedding(0));
  EXPECT_FALSE(m.HasUserEmbedding(55));
}

TEST(PureSvdTest, RecommendsFromTheUsersOwnBlock) {
  const TrainingData d = BlockData(6, 300, 200, 5, 12000);
  auto model = Train(d, {{"rank", "5"}});
  ASSERT_TRUE(model.ok());
  const Model& m = **model;
  int in_block = 0, total = 0;
  for (UserIndex u = 0; u < 300; ++u) {
    const Eigen::VectorXf scores = m.item_factors() * m.UserEmbedding(u);
    std::vector<int> order(200);
    for (int i = 0; i < 200; ++i) order[i] = i;
    std::partial_sort(order.begin(), order.begin() + 10, order.end(),
                      [&](int a, int b) { return scores[a] > scores[b]; });
    for (int r = 0; r < 10; ++r) {
      in_block += static_cast<uint32_t>(order[r]) / 40 == u % 5;
      ++total;
    }
  }
  // 90% of the planted signal is in-block; a rank-5 model should find nearly only that.
  EXPECT_GT(static_cast<double>(in_block) / total, 0.97);
}

TEST(PureSvdTest, IndependentOfThreadCount) {
  const TrainingData d = BlockData(7, 3000, 500, 8, 150000);
  TrainOptions one;
  TrainOptions four;
  four.num_threads = 4;
  auto a = TrainModel({"svd", "pure_svd", {{"rank", "16"}}}, d, one);
  auto b = TrainModel({"svd", "pure_svd", {{"rank", "16"}}}, d, four);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->item_factors, b->item_factors);
  EXPECT_EQ(a->user_factors, b->user_factors);
}

TEST(PureSvdTest, ParamErrors) {
  const TrainingData d = BlockData(8, 20, 20, 2, 200);
  auto unknown = Train(d, {{"ranks", "8"}});
  ASSERT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("'ranks'"));
  EXPECT_THAT(unknown.status().message(), HasSubstr("rank, oversampling, power_iterations, weighting"));
  auto zero = Train(d, {{"rank", "0"}});
  ASSERT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero.status().message(), HasSubstr("'rank' has invalid value '0'"));
  EXPECT_THAT(zero.status().message(), HasSubstr("[1, 1024]"));
  auto weighting = Train(d, {{"weighting", "tfidf"}});
  ASSERT_EQ(weighting.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(weighting.status().message(), HasSubstr("log, binary, raw"));
}

TEST(PureSvdTest, NoPositivePairsIsFailedPrecondition) {
  TrainingData d;
  d.num_users = 3;
  d.num_items = 3;
  d.interactions = {{0, 1, 0, 0.0f, EventType::kImpression, false}};
  EXPECT_EQ(Train(d, {}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PureSvdTest, CancelledBeforeOrDuring) {
  const TrainingData d = BlockData(9, 100, 50, 2, 2000);
  std::atomic<bool> cancel{false};
  TrainOptions o;
  o.cancel = &cancel;
  o.progress = [&](double f) {
    if (f > 0.2) cancel = true;
  };
  EXPECT_EQ(TrainModel({"svd", "pure_svd", {}}, d, o).status().code(), absl::StatusCode::kCancelled);
}

TEST(PureSvdTest, CreateModelChecksAlgorithmSpecificParts) {
  const TrainingData d = BlockData(10, 60, 30, 2, 1000);
  auto trained = TrainModel({"svd", "pure_svd", {{"rank", "4"}}}, d, {});
  ASSERT_TRUE(trained.ok());
  ModelData bad_params = *trained;
  bad_params.meta.params["weighting"] = "bogus";
  auto m1 = CreateModel(std::make_shared<const ModelData>(bad_params));
  ASSERT_EQ(m1.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m1.status().message(), HasSubstr("model 'svd' version 0"));
  ModelData bad_tensor = *trained;
  bad_tensor.tensors["event_weights"] = EmbeddingMatrix::Zero(1, 3);
  auto m2 = CreateModel(std::make_shared<const ModelData>(bad_tensor));
  ASSERT_EQ(m2.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m2.status().message(), HasSubstr("event_weights"));
}

TEST(PureSvdTest, EventWeightsTensorRoundTrip) {
  EventWeights w;
  w.view = 0.25f;
  w.purchase = 11.0f;
  w.rating_scale = 3.0f;
  auto back = EventWeightsFromTensor(EventWeightsTensor(w));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->view, 0.25f);
  EXPECT_EQ(back->purchase, 11.0f);
  EXPECT_EQ(back->rating_scale, 3.0f);
  EXPECT_EQ(back->click, w.click);
}

}  // namespace
}  // namespace recd
