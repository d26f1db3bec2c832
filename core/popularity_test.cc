#include "core/popularity.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kDay = 86'400'000;

Interaction Ev(UserIndex u, ItemIndex i, EventType e, int64_t t = 0) {
  Interaction x;
  x.user = u;
  x.item = i;
  x.event = e;
  x.timestamp_ms = t;
  return x;
}

TrainingData Data(uint32_t users, uint32_t items, std::vector<Interaction> xs) {
  TrainingData d;
  d.num_users = users;
  d.num_items = items;
  d.interactions = std::move(xs);
  d.last_sequence = d.interactions.size();
  return d;
}

std::vector<float> Scores(const ModelData& m) {
  return std::vector<float>(m.item_factors.data(), m.item_factors.data() + m.item_factors.rows());
}

TEST(PopularityTest, CountsDistinctUsersByDefault) {
  const TrainingData d = Data(3, 4,
                              {Ev(0, 0, EventType::kView), Ev(0, 0, EventType::kView),
                               Ev(0, 0, EventType::kPurchase),  // one user, many events: 1
                               Ev(0, 1, EventType::kView), Ev(1, 1, EventType::kView),
                               Ev(2, 1, EventType::kView),  // three users: 3
                               Ev(1, 2, EventType::kView), Ev(1, 2, EventType::kDislike),
                               Ev(2, 3, EventType::kImpression)});
  auto m = TrainModel({"popularity", "popularity", {}}, d, {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(Scores(*m), (std::vector<float>{1, 3, 0, 0}));
  EXPECT_EQ(m->user_factors.rows(), 0);
  EXPECT_EQ(m->meta.num_users, 0u);
  EXPECT_EQ(m->meta.num_items, 4u);
  EXPECT_EQ(m->meta.params.at("weighting"), "binary");
  EXPECT_EQ(m->meta.params.at("half_life_days"), "0");
  EXPECT_EQ(m->meta.metrics.at("active_users"), 3.0);
  EXPECT_EQ(m->meta.metrics.at("active_items"), 2.0);
}

TEST(PopularityTest, RawWeightingSumsEventWeights) {
  const TrainingData d = Data(2, 2,
                              {Ev(0, 0, EventType::kPurchase), Ev(1, 0, EventType::kView),
                               Ev(0, 1, EventType::kView), Ev(1, 1, EventType::kClick)});
  auto m = TrainModel({"pop", "popularity", {{"weighting", "raw"}}}, d, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(Scores(*m), (std::vector<float>{9, 3}));
}

TEST(PopularityTest, HalfLifeFavoursRecentEngagement) {
  // Item 0: four users, 30 days before the newest event. Item 1: two users, today.
  std::vector<Interaction> xs;
  for (UserIndex u = 0; u < 4; ++u) xs.push_back(Ev(u, 0, EventType::kView, 0));
  xs.push_back(Ev(4, 1, EventType::kView, 30 * kDay));
  xs.push_back(Ev(5, 1, EventType::kView, 30 * kDay));
  const TrainingData d = Data(6, 2, xs);
  auto plain = TrainModel({"p", "popularity", {}}, d, {});
  auto decayed = TrainModel({"p", "popularity", {{"half_life_days", "10"}}}, d, {});
  ASSERT_TRUE(plain.ok() && decayed.ok());
  EXPECT_GT(plain->item_factors(0, 0), plain->item_factors(1, 0));
  EXPECT_FLOAT_EQ(decayed->item_factors(0, 0), 4.0f / 8.0f);
  EXPECT_FLOAT_EQ(decayed->item_factors(1, 0), 2.0f);
}

TEST(PopularityTest, FoldInIsTheUnitVectorSoTheDotProductIsThePopularity) {
  const TrainingData d = Data(2, 3, {Ev(0, 2, EventType::kView), Ev(1, 2, EventType::kView),
                                     Ev(1, 0, EventType::kView)});
  auto data = TrainModel({"popularity", "popularity", {}}, d, {});
  ASSERT_TRUE(data.ok());
  auto model = CreateModel(std::make_shared<const ModelData>(*data));
  ASSERT_TRUE(model.ok()) << model.status();
  const Model& m = **model;
  EXPECT_FALSE(m.HasUserEmbedding(0));
  const std::vector<HistoryEntry> history = {{2, 0, 1, 0.0f, EventType::kView, false}};
  for (const EmbeddingVector& q : {m.FoldInUser({}), m.FoldInUser(history)}) {
    ASSERT_EQ(q.size(), 1);
    const Eigen::VectorXf scores = m.item_factors() * q;
    EXPECT_EQ(scores[0], 1.0f);
    EXPECT_EQ(scores[1], 0.0f);
    EXPECT_EQ(scores[2], 2.0f);
  }
  EXPECT_TRUE(m.ExplainScore(history, 2).empty());  // not supported
}

TEST(PopularityTest, Errors) {
  auto no_items = TrainModel({"p", "popularity", {}}, Data(1, 0, {}), {});
  EXPECT_EQ(no_items.status().code(), absl::StatusCode::kFailedPrecondition);
  auto empty_log = TrainModel({"p", "popularity", {}}, Data(0, 2, {}), {});
  ASSERT_TRUE(empty_log.ok());  // nothing happened yet: every item scores 0
  EXPECT_EQ(Scores(*empty_log), (std::vector<float>{0, 0}));
  auto bad = TrainModel({"p", "popularity", {{"half_life_days", "-3"}}}, Data(1, 1, {}), {});
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("'half_life_days' has invalid value '-3'"));
  EXPECT_THAT(bad.status().message(), HasSubstr("[0, 36500]"));
}

}  // namespace
}  // namespace recd
