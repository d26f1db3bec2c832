#include "core/interaction_matrix.h"

#include <cmath>

#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Interaction Ev(UserIndex u, ItemIndex i, EventType e, int64_t t = 0) {
  Interaction x;
  x.user = u;
  x.item = i;
  x.event = e;
  x.timestamp_ms = t;
  return x;
}

Interaction Val(UserIndex u, ItemIndex i, EventType e, float v, int64_t t = 0) {
  Interaction x = Ev(u, i, e, t);
  x.has_value = true;
  x.value = v;
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

float At(const InteractionMatrix& m, int u, int i) { return m.coeff(u, i); }

TEST(InteractionMatrixTest, AggregationRules) {
  const TrainingData d = Data(
      3, 6,
      {
          Ev(0, 0, EventType::kView), Ev(0, 0, EventType::kClick),             // 1 + 2
          Val(0, 1, EventType::kRating, 4.0f), Val(0, 1, EventType::kRating, 2.0f),  // latest: 2
          Ev(0, 1, EventType::kView),                                            // + 1
          Ev(0, 2, EventType::kPurchase), Ev(0, 2, EventType::kDislike),         // removed
          Ev(0, 3, EventType::kView), Ev(0, 3, EventType::kDislike),
          Ev(0, 3, EventType::kLike),                                            // afresh: 4
          Ev(0, 4, EventType::kImpression),                                      // ignored
          Val(1, 0, EventType::kView, 2.5f),                                     // override
          Val(1, 5, EventType::kView, -1.0f), Ev(1, 5, EventType::kView),        // 0: dropped
          Ev(2, 4, EventType::kAddToCart),
      });
  auto m = BuildInteractionMatrix(d, {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->rows(), 3);
  EXPECT_EQ(m->cols(), 6);
  EXPECT_EQ(m->nonZeros(), 5);
  EXPECT_EQ(At(*m, 0, 0), 3.0f);
  EXPECT_EQ(At(*m, 0, 1), 3.0f);
  EXPECT_EQ(At(*m, 0, 2), 0.0f);
  EXPECT_EQ(At(*m, 0, 3), 4.0f);
  EXPECT_EQ(At(*m, 0, 4), 0.0f);
  EXPECT_EQ(At(*m, 1, 0), 2.5f);
  EXPECT_EQ(At(*m, 1, 5), 0.0f);
  EXPECT_EQ(At(*m, 2, 4), 4.0f);
  EXPECT_THAT(UserItemLists(*m), ElementsAre(ElementsAre(0, 1, 3), ElementsAre(0), ElementsAre(4)));
  EXPECT_THAT(ItemWeightSums(*m), ElementsAre(5.5, 3.0, 0.0, 4.0, 4.0, 0.0));
}

TEST(InteractionMatrixTest, CustomEventWeightsAndRatingScale) {
  InteractionMatrixOptions o;
  o.event_weights.view = 0.5f;
  o.event_weights.rating_scale = 2.0f;
  auto m = BuildInteractionMatrix(
      Data(1, 2, {Ev(0, 0, EventType::kView), Val(0, 1, EventType::kRating, 3.0f)}), o);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(At(*m, 0, 0), 0.5f);
  EXPECT_EQ(At(*m, 0, 1), 6.0f);
}

TEST(InteractionMatrixTest, WeightingTransforms) {
  const TrainingData d = Data(1, 2, {Ev(0, 0, EventType::kPurchase), Ev(0, 1, EventType::kView)});
  InteractionMatrixOptions o;
  o.weighting = InteractionWeighting::kBinary;
  auto binary = BuildInteractionMatrix(d, o);
  ASSERT_TRUE(binary.ok());
  EXPECT_EQ(At(*binary, 0, 0), 1.0f);
  EXPECT_EQ(At(*binary, 0, 1), 1.0f);

  o.weighting = InteractionWeighting::kLog;
  o.log_alpha = 2.0f;
  o.log_epsilon = 0.5f;
  auto log = BuildInteractionMatrix(d, o);
  ASSERT_TRUE(log.ok());
  EXPECT_FLOAT_EQ(At(*log, 0, 0), 1.0f + 2.0f * std::log(1.0f + 8.0f / 0.5f));
  EXPECT_FLOAT_EQ(At(*log, 0, 1), 1.0f + 2.0f * std::log(1.0f + 1.0f / 0.5f));
}

TEST(InteractionMatrixTest, RecencyDecayUsesNewestCountedEvent) {
  constexpr int64_t kDay = 86'400'000;
  const TrainingData d = Data(1, 3,
                              {Ev(0, 0, EventType::kView, 0), Ev(0, 0, EventType::kView, 8 * kDay),
                               Ev(0, 1, EventType::kView, 6 * kDay),
                               Ev(0, 2, EventType::kView, 20 * kDay)});  // "future": age 0
  InteractionMatrixOptions o;
  o.half_life_days = 2.0;
  o.reference_time_ms = 10 * kDay;
  auto m = BuildInteractionMatrix(d, o);
  ASSERT_TRUE(m.ok());
  EXPECT_FLOAT_EQ(At(*m, 0, 0), 2.0f * 0.5f);   // age 2 days
  EXPECT_FLOAT_EQ(At(*m, 0, 1), 1.0f * 0.25f);  // age 4 days
  EXPECT_FLOAT_EQ(At(*m, 0, 2), 1.0f);
}

TEST(InteractionMatrixTest, RejectsBadInput) {
  auto bad_user = BuildInteractionMatrix(Data(2, 2, {Ev(0, 0, EventType::kView), Ev(2, 0, EventType::kView)}), {});
  ASSERT_EQ(bad_user.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_user.status().message(), HasSubstr("interaction 1"));
  auto bad_item = BuildInteractionMatrix(Data(2, 2, {Ev(0, 5, EventType::kView)}), {});
  EXPECT_EQ(bad_item.status().code(), absl::StatusCode::kInvalidArgument);
  InteractionMatrixOptions o;
  o.weighting = InteractionWeighting::kLog;
  o.log_epsilon = 0.0f;
  auto bad_opt = BuildInteractionMatrix(Data(1, 1, {}), o);
  ASSERT_EQ(bad_opt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_opt.status().message(), HasSubstr("log_epsilon"));
  o = {};
  o.half_life_days = -1;
  EXPECT_EQ(BuildInteractionMatrix(Data(1, 1, {}), o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(InteractionMatrixTest, WeightingNames) {
  for (auto w : {InteractionWeighting::kRaw, InteractionWeighting::kBinary, InteractionWeighting::kLog}) {
    auto parsed = ParseInteractionWeighting(InteractionWeightingName(w));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, w);
  }
  EXPECT_FALSE(ParseInteractionWeighting("linear").ok());
}

// Random logs with every event kind, few items so that pairs repeat and dislikes interleave.
TrainingData RandomData(uint64_t seed, uint32_t users, uint32_t items, int n) {
  PortableRng rng(seed);
  TrainingData d;
  d.num_users = users;
  d.num_items = items;
  for (int k = 0; k < n; ++k) {
    Interaction x;
    x.user = static_cast<UserIndex>(rng.UniformInt(users));
    x.item = static_cast<ItemIndex>(rng.UniformInt(items));
    x.event = static_cast<EventType>(1 + rng.UniformInt(kMaxEventType));
    x.timestamp_ms = static_cast<int64_t>(rng.UniformInt(1'000'000'000));
    if (x.event == EventType::kRating || rng.Bernoulli(0.1)) {
      x.has_value = true;
      x.value = static_cast<float>(1 + rng.UniformInt(5));
    }
    d.interactions.push_back(x);
  }
  d.last_sequence = n;
  return d;
}

std::vector<std::vector<HistoryEntry>> Histories(const TrainingData& d) {
  std::vector<std::vector<HistoryEntry>> h(d.num_users);
  for (size_t k = 0; k < d.interactions.size(); ++k) {
    const Interaction& x = d.interactions[k];
    h[x.user].push_back({x.item, x.timestamp_ms, k + 1, x.value, x.event, x.has_value});
  }
  return h;
}

TEST(InteractionMatrixTest, AggregateHistoryMatchesMatrixRowsExactly) {
  for (auto weighting : {InteractionWeighting::kRaw, InteractionWeighting::kLog}) {
    const TrainingData d = RandomData(7, 40, 12, 3000);
    InteractionMatrixOptions o;
    o.weighting = weighting;
    o.half_life_days = 3.0;
    o.reference_time_ms = 1'000'000'000;
    auto m = BuildInteractionMatrix(d, o);
    ASSERT_TRUE(m.ok());
    ASSERT_GT(m->nonZeros(), 100);
    const auto histories = Histories(d);
    for (uint32_t u = 0; u < d.num_users; ++u) {
      std::vector<WeightedItem> from_matrix;
      for (InteractionMatrix::InnerIterator it(*m, u); it; ++it) {
        from_matrix.push_back({static_cast<ItemIndex>(it.col()), it.value()});
      }
      EXPECT_EQ(AggregateHistory(histories[u], o), from_matrix) << "user " << u;
      // A model with fewer items sees only the prefix of the catalogue.
      std::vector<WeightedItem> prefix;
      for (const WeightedItem& w : from_matrix) {
        if (w.item < 5) prefix.push_back(w);
      }
      EXPECT_EQ(AggregateHistory(histories[u], o, 5), prefix);
    }
  }
}

TEST(InteractionMatrixTest, HistoryContributionsSumToItemWeights) {
  const TrainingData d = RandomData(11, 30, 8, 2000);
  InteractionMatrixOptions o;
  o.weighting = InteractionWeighting::kLog;
  const auto histories = Histories(d);
  for (uint32_t u = 0; u < d.num_users; ++u) {
    const auto& h = histories[u];
    const std::vector<float> c = HistoryContributions(h, o);
    ASSERT_EQ(c.size(), h.size());
    std::vector<double> per_item(d.num_items, 0.0);
    for (size_t j = 0; j < h.size(); ++j) {
      per_item[h[j].item] += c[j];
      if (h[j].event == EventType::kImpression || h[j].event == EventType::kDislike) {
        EXPECT_EQ(c[j], 0.0f);
      }
    }
    std::vector<double> expected(d.num_items, 0.0);
    for (const WeightedItem& w : AggregateHistory(h, o)) expected[w.item] = w.weight;
    for (uint32_t i = 0; i < d.num_items; ++i) {
      EXPECT_NEAR(per_item[i], expected[i], 1e-5 * (1 + expected[i])) << "user " << u << " item " << i;
    }
  }
}

TEST(InteractionMatrixTest, HistoryContributionsSpecificCases) {
  std::vector<HistoryEntry> h = {
      {0, 0, 1, 4.0f, EventType::kRating, true},  // superseded by the later rating
      {0, 0, 2, 0.0f, EventType::kView, false},
      {0, 0, 3, 2.0f, EventType::kRating, true},
      {1, 0, 4, 0.0f, EventType::kPurchase, false},  // before the dislike
      {1, 0, 5, 0.0f, EventType::kDislike, false},
      {1, 0, 6, 0.0f, EventType::kClick, false},
      {2, 0, 7, 0.0f, EventType::kImpression, false},
      {9, 0, 8, 0.0f, EventType::kView, false},  // outside a 5-item model
  };
  EXPECT_THAT(HistoryContributions(h, {}, 5), ElementsAre(0.0f, 1.0f, 2.0f, 0.0f, 0.0f, 2.0f, 0.0f, 0.0f));
}

TEST(InteractionMatrixTest, LeaveLastOutSplit) {
  const TrainingData d = Data(4, 5,
                              {
                                  Ev(0, 0, EventType::kView), Ev(0, 1, EventType::kView),
                                  Ev(0, 2, EventType::kView), Ev(0, 1, EventType::kClick),
                                  Ev(0, 3, EventType::kImpression),  // not positive
                                  Ev(1, 4, EventType::kView),        // single item: kept
                                  Ev(2, 0, EventType::kView), Ev(2, 3, EventType::kView),
                                  Ev(2, 3, EventType::kDislike),     // pair gone: not held out
                                  Ev(2, 1, EventType::kView),
                              });
  auto split = SplitLeaveLastOut(d, {});
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_THAT(split->holdout, ElementsAre(1, kNoIndex, 1, kNoIndex));
  EXPECT_EQ(split->num_held_out, 2u);
  for (const Interaction& x : split->train.interactions) {
    EXPECT_FALSE(x.user == 0 && x.item == 1);
    EXPECT_FALSE(x.user == 2 && x.item == 1);
  }
  EXPECT_EQ(split->train.interactions.size(), d.interactions.size() - 3);
  EXPECT_EQ(split->train.num_items, 5u);

  auto strict = SplitLeaveLastOut(d, {}, 3);
  ASSERT_TRUE(strict.ok());
  EXPECT_THAT(strict->holdout, ElementsAre(1, kNoIndex, kNoIndex, kNoIndex));
}

}  // namespace
}  // namespace recd
