#include "core/als.h"

#include <atomic>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/random.h"
#include "core/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using synthetic::HistoryOf;

// Users mostly engage with their own group's items, with mixed event types.
TrainingData GroupData(uint64_t seed, uint32_t users, uint32_t items, int groups, int n) {
  return synthetic::GroupedInteractions(seed, users, items, groups, n, 0.85, synthetic::EventMix::kImplicit);
}

std::vector<double> Objectives(const ModelData& d) {
  std::vector<double> out;
  for (int it = 1;; ++it) {
    auto f = d.meta.metrics.find(absl::StrCat("objective_iter_", it));
    if (f == d.meta.metrics.end()) return out;
    out.push_back(f->second);
  }
}

TEST(AlsTest, ObjectiveDecreasesEveryIteration) {
  const TrainingData d = GroupData(1, 300, 200, 5, 12000);
  for (const char* weighting : {"log", "raw", "binary", "log/frequency-scaled"}) {
    const bool scaled = std::string(weighting) == "log/frequency-scaled";
    auto data = TrainModel({"als", "als",
                            {{"factors", "16"}, {"iterations", "12"}, {"regularization", "1"},
                             {"alpha", "4"}, {"weighting", scaled ? "log" : weighting},
                             {"init_std", "0.1"}, {"reg_exponent", scaled ? "1" : "0"}}},
                           d, {});
    ASSERT_TRUE(data.ok()) << data.status();
    const std::vector<double> objective = Objectives(*data);
    ASSERT_EQ(objective.size(), 12u);
    for (size_t i = 1; i < objective.size(); ++i) {
      EXPECT_LT(objective[i], objective[i - 1]) << weighting << " iteration " << i + 1;
    }
    // The final exact user step can only lower L further.
    EXPECT_LE(data->meta.metrics.at("objective"), objective.back() * (1 + 1e-12));
    EXPECT_EQ(data->meta.metrics.at("iterations_run"), 12);
  }
}

class AlsFoldInTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AlsFoldInTest, FoldInReproducesTrainedRowsAndExplainSumsToScore) {
  const TrainingData d = GroupData(2, 120, 90, 3, 4000);
  auto data = TrainModel(
      {"als", "als", {{"factors", "8"}, {"iterations", "5"}, {"reg_exponent", GetParam()}}}, d, {});
  ASSERT_TRUE(data.ok()) << data.status();
  auto model = CreateModel(std::make_shared<const ModelData>(*data));
  ASSERT_TRUE(model.ok()) << model.status();
  for (UserIndex u : {0u, 5u, 119u}) {
    const std::vector<HistoryEntry> h = HistoryOf(d, u);
    const EmbeddingVector folded = (*model)->FoldInUser(h);
    ASSERT_EQ(folded.size(), 8);
    EXPECT_EQ(folded, (*model)->UserEmbedding(u)) << "user " << u;
    for (ItemIndex i : {0u, 44u, 89u}) {
      const std::vector<float> parts = (*model)->ExplainScore(h, i);
      ASSERT_EQ(parts.size(), h.size());
      double sum = 0;
      for (float p : parts) sum += p;
      const double score = folded.dot((*model)->item_factors().row(i).transpose());
      EXPECT_NEAR(sum, score, 1e-4 * (1 + std::abs(score)));
    }
  }
  // Items newer than the model are ignored; a history of only those has no vector.
  EXPECT_EQ((*model)->FoldInUser({{1000, 0, 1, 0, EventType::kView, false}}).size(), 0);
}

INSTANTIATE_TEST_SUITE_P(RegExponent, AlsFoldInTest, ::testing::Values("0", "1"));

TEST(AlsTest, DeterministicForAnyThreadCount) {
  const TrainingData d = GroupData(3, 500, 150, 4, 15000);
  TrainOptions one, two;
  two.num_threads = 2;
  const ModelConfig config{"als", "als", {{"factors", "12"}, {"iterations", "4"}}};
  auto a = TrainModel(config, d, one);
  auto b = TrainModel(config, d, two);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->item_factors, b->item_factors);
  EXPECT_EQ(a->user_factors, b->user_factors);
  EXPECT_EQ(a->meta.metrics, b->meta.metrics);
}

TEST(AlsTest, WarmStartFromAConvergedModelStartsLowerAndStopsSooner) {
  TrainingData d = GroupData(4, 400, 160, 4, 16000);
  const ModelConfig config{"als", "als",
                           {{"factors", "10"}, {"iterations", "60"}, {"tolerance", "1e-4"},
                            {"regularization", "2"}, {"alpha", "3"}}};
  auto first = TrainModel(config, d, {});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->meta.metrics.at("warm_started"), 0.0);

  // New data: more events, 20 new users and 10 new items.
  TrainingData more = GroupData(5, 420, 170, 4, 2000);
  d.num_users = 420;
  d.num_items = 170;
  d.interactions.insert(d.interactions.end(), more.interactions.begin(), more.interactions.end());

  TrainOptions warm;
  warm.warm_start = &*first;
  auto cold = TrainModel(config, d, {});
  auto hot = TrainModel(config, d, warm);
  ASSERT_TRUE(cold.ok() && hot.ok());
  EXPECT_EQ(hot->meta.metrics.at("warm_started"), 1.0);
  EXPECT_EQ(hot->item_factors.rows(), 170);
  EXPECT_EQ(hot->user_factors.rows(), 420);
  const std::vector<double> c = Objectives(*cold), h = Objectives(*hot);
  EXPECT_LT(h.front(), 0.9 * c.front());
  EXPECT_LT(h.size(), c.size());
  // Both reach the same quality of fit.
  EXPECT_NEAR(h.back(), c.back(), 0.01 * c.back());

  // A version of another shape is ignored, not an error.
  auto other = TrainModel({"als", "als", {{"factors", "4"}, {"iterations", "2"}}}, d, warm);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->meta.metrics.at("warm_started"), 0.0);
}

TEST(AlsTest, ErrorsAndCancellation) {
  TrainingData empty;
  empty.num_users = 2;
  empty.num_items = 2;
  EXPECT_EQ(TrainModel({"als", "als", {}}, empty, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const TrainingData d = GroupData(6, 50, 40, 2, 500);
  EXPECT_EQ(TrainModel({"als", "als", {{"alpha", "-1"}}}, d, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::atomic<bool> cancel{true};
  TrainOptions o;
  o.cancel = &cancel;
  EXPECT_EQ(TrainModel({"als", "als", {}}, d, o).status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace recd
