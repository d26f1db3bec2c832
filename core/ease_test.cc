#include "core/ease.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "Eigen/Cholesky"
#include "Eigen/Eigenvalues"
#include "Eigen/SVD"
#include "absl/strings/str_cat.h"
#include "core/interaction_matrix.h"
#include "core/pure_svd.h"
#include "core/random.h"
#include "core/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using synthetic::HistoryOf;

using ::testing::HasSubstr;

Interaction View(UserIndex user, ItemIndex item, int64_t t) {
  Interaction x;
  x.user = user;
  x.item = item;
  x.timestamp_ms = t;
  x.event = EventType::kView;
  return x;
}

// Users mostly engage with their own group's items, with every event kind mixed in (ratings,
// repeats, dislikes, impressions), in log order.
TrainingData MixedData(uint64_t seed, uint32_t users, uint32_t items, int groups, int n) {
  return synthetic::GroupedInteractions(seed, users, items, groups, n, 0.85, synthetic::EventMix::kEveryKind);
}

absl::StatusOr<ModelData> Train(const TrainingData& d, std::map<std::string, std::string> params,
                                TrainOptions options = {}) {
  return TrainModel({"ease", "ease", std::move(params)}, d, options);
}

std::shared_ptr<const Model> Serve(const ModelData& data) {
  auto model = CreateModel(std::make_shared<const ModelData>(data));
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *model : nullptr;
}

// Scores of every item for a folded-in history, in double.
Eigen::VectorXd Scores(const Model& m, const std::vector<HistoryEntry>& history) {
  const EmbeddingVector q = m.FoldInUser(history);
  return m.item_factors().cast<double>() * q.cast<double>();
}

// EASE's closed form for a Gram matrix: B = I − P diag(1/diag P), P = (gram + Λ)⁻¹ with
// Λ = λI + p/(1 − p) diag(gram) (EDLAE's dropout p), by a direct dense solve.
Eigen::MatrixXd DirectEase(Eigen::MatrixXd gram, double lambda, double dropout = 0.0) {
  const int64_t n = gram.rows();
  const Eigen::VectorXd emphasis = dropout / (1.0 - dropout) * gram.diagonal();
  gram.diagonal() += emphasis;
  gram.diagonal().array() += lambda;
  const Eigen::MatrixXd p = gram.ldlt().solve(Eigen::MatrixXd::Identity(n, n));
  Eigen::MatrixXd b = -p * p.diagonal().cwiseInverse().asDiagonal();
  b.diagonal().setZero();
  return b;
}

TEST(EaseTest, TwoItemsByHand) {
  // Items a = 0 and b = 1: a has 3 users, b 2, both 2. With λ = 1,
  // P = [[4, 2], [2, 3]]⁻¹ = [[3, −2], [−2, 4]] / 8, so B_ab = 2/4 and B_ba = 2/3.
  TrainingData d;
  d.num_users = 3;
  d.num_items = 2;
  d.interactions = {View(0, 0, 1), View(0, 1, 2), View(1, 0, 3), View(1, 1, 4), View(2, 0, 5)};
  auto data = Train(d, {{"lambda", "1"}, {"seq_weight", "0"}, {"gf_weight", "0"}});
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->dim(), 2);
  const auto m = Serve(*data);
  const Eigen::VectorXd from_a = Scores(*m, {{0, 0, 1, 0, EventType::kView, false}});
  const Eigen::VectorXd from_b = Scores(*m, {{1, 0, 1, 0, EventType::kView, false}});
  EXPECT_NEAR(from_a(1), 0.5, 1e-6);
  EXPECT_NEAR(from_b(0), 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(from_a(0), 0.0, 1e-6);  // zero diagonal
  EXPECT_NEAR(data->meta.metrics.at("explained_energy"), 1.0, 1e-9);
}

TEST(EaseTest, DropoutByHand) {
  // The data of TwoItemsByHand with dropout p = 0.5: Λ = λI + p/(1 − p) diag(XᵀX) = I +
  // diag(3, 2), so P = [[7, 2], [2, 5]]⁻¹ = [[5, −2], [−2, 7]] / 31, B_ab = 2/7 and B_ba = 2/5
  // (plain EASE: 2/4 and 2/3); the diagonal stays zero.
  TrainingData d;
  d.num_users = 3;
  d.num_items = 2;
  d.interactions = {View(0, 0, 1), View(0, 1, 2), View(1, 0, 3), View(1, 1, 4), View(2, 0, 5)};
  auto data = Train(d, {{"lambda", "1"}, {"seq_weight", "0"}, {"gf_weight", "0"}, {"dropout", "0.5"}});
  ASSERT_TRUE(data.ok()) << data.status();
  const auto m = Serve(*data);
  const Eigen::VectorXd from_a = Scores(*m, {{0, 0, 1, 0, EventType::kView, false}});
  const Eigen::VectorXd from_b = Scores(*m, {{1, 0, 1, 0, EventType::kView, false}});
  EXPECT_NEAR(from_a(1), 2.0 / 7.0, 1e-6);
  EXPECT_NEAR(from_b(0), 2.0 / 5.0, 1e-6);
  EXPECT_NEAR(from_a(0), 0.0, 1e-6);
  EXPECT_NEAR(from_b(1), 0.0, 1e-6);
  EXPECT_EQ(data->meta.params.at("dropout"), "0.5");
}

TEST(EaseTest, DropoutZeroIsPlainEaseBitForBit) {
  // p = 0 must leave the Gram matrix untouched (not scaled by 1 + 0): the same bits as a
  // model trained without the parameter, with and without the sequence term.
  const TrainingData d = MixedData(9, 200, 90, 3, 6000);
  for (const char* seq_weight : {"0", "0.5"}) {
    auto plain = Train(d, {{"rank", "16"}, {"seq_weight", seq_weight}});
    auto zero = Train(d, {{"rank", "16"}, {"seq_weight", seq_weight}, {"dropout", "0"}});
    auto some = Train(d, {{"rank", "16"}, {"seq_weight", seq_weight}, {"dropout", "0.2"}});
    ASSERT_TRUE(plain.ok() && zero.ok() && some.ok());
    EXPECT_EQ(zero->item_factors, plain->item_factors) << seq_weight;
    EXPECT_EQ(zero->tensors, plain->tensors) << seq_weight;
    EXPECT_NE(some->tensors, plain->tensors) << seq_weight;
  }
}

// Users with distinct items in a known order, so the sequence term's Gram matrix is easy to
// write down independently.
TrainingData OrderedData(uint64_t seed, uint32_t users, uint32_t items) {
  PortableRng rng(seed);
  TrainingData d;
  d.num_users = users;
  d.num_items = items;
  int64_t t = 0;
  for (UserIndex u = 0; u < users; ++u) {
    std::vector<bool> used(items, false);
    const int count = 2 + static_cast<int>(rng.UniformInt(items / 2));
    for (int k = 0; k < count; ++k) {
      const ItemIndex i = static_cast<ItemIndex>((u % 3) * 4 + rng.UniformInt(items)) % items;
      if (used[i]) continue;
      used[i] = true;
      d.interactions.push_back(View(u, i, ++t));
    }
  }
  return d;
}

class EaseClosedFormTest
    : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

// With rank = n and the graph filter off, the served scores x_u L Vᵀ equal x_u (B + β B_seq)
// from a direct solve, with EDLAE's dropout (when p > 0) in both terms.
TEST_P(EaseClosedFormTest, FullRankScoresEqualTheDirectSolve) {
  const std::string kernel = std::get<0>(GetParam());
  const std::string dropout_text = std::get<1>(GetParam());
  const double dropout = std::stod(dropout_text);
  const uint32_t users = 40, items = 12;
  const int window = 2;
  const double lambda = 3.0, seq_lambda = 5.0, beta = 0.7;
  const TrainingData d = OrderedData(5, users, items);
  auto data = Train(d, {{"lambda", "3"},
                        {"rank", "12"},
                        {"seq_window", "2"},
                        {"seq_lambda", "5"},
                        {"seq_weight", "0.7"},
                        {"seq_kernel", kernel},
                        {"gf_weight", "0"},
                        {"dropout", dropout_text}});
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->dim(), 12);
  const auto m = Serve(*data);

  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(users, items);
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(items, items);
  std::vector<std::vector<ItemIndex>> sequence(users);
  for (const Interaction& e : d.interactions) {
    x(e.user, e.item) = 1.0;
    sequence[e.user].push_back(e.item);
  }
  for (const auto& s : sequence) {
    for (size_t p = 0; p < s.size(); ++p) {
      c(s[p], s[p]) += 1.0;
      for (size_t q = p + 1; q < s.size() && q <= p + window; ++q) {
        const double w = kernel == "box" ? 1.0 : 1.0 - static_cast<double>(q - p) / (window + 1);
        c(s[p], s[q]) += w;
        c(s[q], s[p]) += w;
      }
    }
  }
  const Eigen::MatrixXd b = DirectEase(x.transpose() * x, lambda, dropout) +
                            beta * DirectEase(c, seq_lambda, dropout);
  const Eigen::MatrixXd expected = x * b;
  for (UserIndex u = 0; u < users; ++u) {
    const Eigen::VectorXd got = Scores(*m, HistoryOf(d, u));
    for (ItemIndex i = 0; i < items; ++i) {
      EXPECT_NEAR(got(i), expected(u, i), 1e-5 * (1.0 + std::abs(expected(u, i))))
          << kernel << " dropout " << dropout << " user " << u << " item " << i;
    }
  }
  EXPECT_NEAR(data->meta.metrics.at("explained_energy"), 1.0, 1e-9);
}

INSTANTIATE_TEST_SUITE_P(KernelsAndDropout, EaseClosedFormTest,
                         ::testing::Combine(::testing::Values("box", "triangle"),
                                            ::testing::Values("0", "0.3")),
                         [](const auto& info) {
                           std::string name = absl::StrCat(std::get<0>(info.param), "_dropout_",
                                                           std::get<1>(info.param));
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

// The graph-filter term against the formula of ease.h written out densely: R = D_U^-1/2 X D_I^-1/2,
// G = RᵀR + α D_I^-1/2 V Vᵀ D_I^1/2 (V: RᵀR's leading gf_rank eigenvectors), scaled by gf_weight
// times the ratio of the score RMS of B and of G over every user (fewer than the sample cap),
// truncated to gf_rank by an exact SVD. With 12 items the randomized SVD's 12 test vectors span
// everything, so the served scores match to rounding.
TEST(EaseTest, GraphFilterScoresEqualTheDirectFormula) {
  const uint32_t users = 40, items = 12;
  const int64_t cutoff = 4;
  const double alpha = 0.7, weight = 0.6;
  const TrainingData d = OrderedData(11, users, items);
  const std::map<std::string, std::string> common = {{"lambda", "3"}, {"rank", "12"},
                                                     {"seq_weight", "0"}};
  std::map<std::string, std::string> with = common;
  with.insert({{"gf_weight", "0.6"}, {"gf_rank", "4"}, {"gf_alpha", "0.7"}});
  std::map<std::string, std::string> without = common;
  without["gf_weight"] = "0";
  auto data = Train(d, with);
  auto plain = Train(d, without);
  ASSERT_TRUE(data.ok() && plain.ok()) << data.status() << plain.status();
  ASSERT_EQ(data->dim(), 12 + 4);
  EXPECT_EQ(data->meta.metrics.at("gf_rank"), 4.0);
  // B's part is the model without the filter, bit for bit.
  EXPECT_EQ(data->item_factors.leftCols(12), plain->item_factors);

  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(users, items);
  for (const Interaction& e : d.interactions) x(e.user, e.item) = 1.0;
  const Eigen::VectorXd du = x.rowwise().sum(), di = x.colwise().sum().transpose();
  for (uint32_t u = 0; u < users; ++u) ASSERT_GT(du(u), 0.0);
  for (uint32_t i = 0; i < items; ++i) ASSERT_GT(di(i), 0.0);
  const Eigen::MatrixXd r = du.cwiseSqrt().cwiseInverse().asDiagonal() * x *
                            di.cwiseSqrt().cwiseInverse().asDiagonal();
  const Eigen::MatrixXd gram = r.transpose() * r;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram);
  const Eigen::MatrixXd v = eig.eigenvectors().rightCols(cutoff);  // ascending eigenvalues
  Eigen::MatrixXd g = gram + alpha * di.cwiseSqrt().cwiseInverse().asDiagonal() * v *
                                 v.transpose() * di.cwiseSqrt().asDiagonal();
  const Eigen::MatrixXd b = DirectEase(x.transpose() * x, 3.0);
  auto rms = [&](const Eigen::MatrixXd& m) {
    return std::sqrt((x * m).squaredNorm() / static_cast<double>(users * items));
  };
  g *= weight * rms(b) / rms(g);
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(g, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const Eigen::MatrixXd g_served = svd.matrixU().leftCols(cutoff) *
                                   svd.singularValues().head(cutoff).asDiagonal() *
                                   svd.matrixV().leftCols(cutoff).transpose();
  const Eigen::MatrixXd expected = x * (b + g_served);
  const Eigen::MatrixXd filter_only = x * g_served;
  const auto m = Serve(*data);
  double filter_size = 0.0;
  for (UserIndex u = 0; u < users; ++u) {
    const Eigen::VectorXd got = Scores(*m, HistoryOf(d, u));
    for (ItemIndex i = 0; i < items; ++i) {
      EXPECT_NEAR(got(i), expected(u, i), 1e-5 * (1.0 + std::abs(expected(u, i))))
          << "user " << u << " item " << i;
      filter_size = std::max(filter_size, std::abs(filter_only(u, i)));
    }
  }
  EXPECT_GT(filter_size, 0.05);  // the term is not negligible next to B's scores
}

TEST(EaseTest, LowRankApproximatesAndFullRankIsExact) {
  const TrainingData d = MixedData(3, 200, 60, 3, 5000);
  auto full = Train(d, {{"rank", "60"}, {"gf_weight", "0"}});
  auto low = Train(d, {{"rank", "20"}, {"gf_weight", "0"}});
  ASSERT_TRUE(full.ok() && low.ok());
  EXPECT_NEAR(full->meta.metrics.at("explained_energy"), 1.0, 1e-9);
  const double energy = low->meta.metrics.at("explained_energy");
  EXPECT_GT(energy, 0.3);
  EXPECT_LT(energy, 1.0);
  // V has orthonormal columns.
  const Eigen::MatrixXd v = low->item_factors.cast<double>();
  EXPECT_LT((v.transpose() * v - Eigen::MatrixXd::Identity(20, 20)).cwiseAbs().maxCoeff(), 1e-5);
  // The rank-20 model ranks like the full one: most of each user's top 5 agree.
  const auto mf = Serve(*full), ml = Serve(*low);
  int agree = 0, total = 0;
  for (UserIndex u = 0; u < 200; u += 7) {
    const std::vector<HistoryEntry> h = HistoryOf(d, u);
    Eigen::VectorXd sf = Scores(*mf, h), sl = Scores(*ml, h);
    for (const HistoryEntry& e : h) sf(e.item) = sl(e.item) = -1e30;
    for (int k = 0; k < 5; ++k) {
      Eigen::Index a = 0, b = 0;
      sf.maxCoeff(&a);
      sl.maxCoeff(&b);
      agree += a == b;
      ++total;
      sf(a) = sl(b) = -1e30;
    }
  }
  EXPECT_GT(agree, total / 2);
}

TEST(EaseTest, FoldInIsTheTrainingRowProjectionAndExplanationsSumToTheScore) {
  const TrainingData d = MixedData(2, 150, 80, 4, 5000);
  for (const char* weighting : {"binary", "log"}) {
    auto data = Train(d, {{"rank", "16"}, {"weighting", weighting}});
    ASSERT_TRUE(data.ok()) << data.status();
    const auto m = Serve(*data);
    const EmbeddingMatrix& input = data->tensors.at(kEaseInputFactorsTensor);
    InteractionMatrixOptions mo;
    mo.weighting = *ParseInteractionWeighting(weighting);
    const InteractionMatrix x = *BuildInteractionMatrix(d, mo);
    for (UserIndex u : {0u, 7u, 149u}) {
      std::vector<WeightedItem> row;
      for (InteractionMatrix::InnerIterator it(x, u); it; ++it) {
        row.push_back({static_cast<ItemIndex>(it.col()), it.value()});
      }
      const std::vector<HistoryEntry> h = HistoryOf(d, u);
      const EmbeddingVector folded = m->FoldInUser(h);
      ASSERT_EQ(folded.size(), 16 + 64);  // B's rank, then the graph filter's
      EXPECT_EQ(folded, ProjectWeightedItems(row, input)) << weighting << " user " << u;
      for (ItemIndex i : {0u, 33u, 79u}) {
        const std::vector<float> parts = m->ExplainScore(h, i);
        ASSERT_EQ(parts.size(), h.size());
        double sum = 0.0;
        for (float p : parts) sum += p;
        const double score = folded.dot(data->item_factors.row(i).transpose());
        EXPECT_NEAR(sum, score, 1e-4 * (1.0 + std::abs(score))) << weighting << " " << u;
      }
    }
  }
}

TEST(EaseTest, EveryUserIsFoldedInAndTheStateSurvivesACopyBitForBit) {
  const TrainingData d = MixedData(4, 120, 70, 3, 3000);
  auto data = Train(d, {{"rank", "8"}, {"gf_rank", "4"}});
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->user_factors.rows(), 0);
  EXPECT_EQ(data->meta.num_users, 0u);
  EXPECT_EQ(data->meta.num_items, 70u);
  EXPECT_EQ(data->meta.params.at("rank"), "8");
  EXPECT_EQ(data->meta.params.at("seq_kernel"), "triangle");
  for (const auto& [name, tensor] : data->tensors) EXPECT_FALSE(IsUserIndexedTensor(name)) << name;
  ModelData erased = *data;
  EXPECT_FALSE(EraseUserRows(erased, 3));
  EXPECT_EQ(erased.tensors, data->tensors);

  // What a store hands back: a copy of every field. Built again, it serves the same bits.
  const ModelData copy = *data;
  EXPECT_EQ(copy.item_factors, data->item_factors);
  EXPECT_EQ(copy.tensors, data->tensors);
  EXPECT_EQ(copy.meta.params, data->meta.params);
  const auto a = Serve(*data), b = Serve(copy);
  EXPECT_FALSE(a->HasUserEmbedding(0));
  for (UserIndex u : {0u, 50u, 119u}) {
    const std::vector<HistoryEntry> h = HistoryOf(d, u);
    EXPECT_EQ(a->FoldInUser(h), b->FoldInUser(h));
    EXPECT_EQ(a->FoldInKnownUser(u, h), a->FoldInUser(h));
    EXPECT_EQ(a->ExplainScore(h, 5), b->ExplainScore(h, 5));
  }
  // Items newer than the model are ignored; a history of only those has no vector.
  EXPECT_EQ(a->FoldInUser({{1000, 0, 1, 0, EventType::kView, false}}).size(), 0);
  EXPECT_EQ(a->ExplainScore({{1, 0, 1, 0, EventType::kView, false}}, 1000),
            std::vector<float>(1, 0.0f));

  // A version missing L, or with L of the wrong shape, is refused.
  ModelData broken = *data;
  broken.tensors.erase(kEaseInputFactorsTensor);
  auto missing = CreateModel(std::make_shared<const ModelData>(broken));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("'item_input_factors' is missing"));
  broken.tensors[kEaseInputFactorsTensor] = EmbeddingMatrix::Zero(70, 3);
  auto shape = CreateModel(std::make_shared<const ModelData>(broken));
  EXPECT_THAT(shape.status().message(), HasSubstr("is 70 x 3 but item_factors is 70 x 12"));
}

TEST(EaseTest, MaxItemsKeepsTheMostPopularItemsAndTheRestAreCold) {
  // Item i is viewed by users 0 .. users_of[i] - 1: items 1, 3 and 4 tie for the top.
  const int users_of[] = {5, 7, 2, 7, 7, 3};
  TrainingData d;
  d.num_users = 7;
  d.num_items = 7;  // item 6 has no interactions
  int64_t t = 0;
  for (ItemIndex i = 0; i < 6; ++i) {
    for (int u = 0; u < users_of[i]; ++u) d.interactions.push_back(View(u, i, ++t));
  }
  auto data = Train(d, {{"max_items", "2"}, {"lambda", "1"}});
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->meta.metrics.at("items_modelled"), 2.0);
  EXPECT_EQ(data->meta.metrics.at("items_capped"), 4.0);
  EXPECT_EQ(data->dim(), 2 + 2);  // both parts at rank 2, the items modelled
  const EmbeddingMatrix& input = data->tensors.at(kEaseInputFactorsTensor);
  for (ItemIndex i = 0; i < 7; ++i) {
    const bool kept = i == 1 || i == 3;  // ties go to the lower index
    EXPECT_EQ(data->item_factors.row(i).isZero(0.0f), !kept) << i;
    EXPECT_EQ(input.row(i).isZero(0.0f), !kept) << i;
  }
  const auto m = Serve(*data);
  const HistoryEntry cold{0, 0, 1, 0, EventType::kView, false};
  const HistoryEntry warm{1, 0, 2, 0, EventType::kView, false};
  EXPECT_EQ(m->FoldInUser({cold}).size(), 0);  // nothing modelled: no vector
  EXPECT_EQ(m->FoldInUser({cold, warm}), m->FoldInUser({warm}));
  const std::vector<float> parts = m->ExplainScore({cold, warm}, 3);
  EXPECT_EQ(parts[0], 0.0f);
  EXPECT_NE(parts[1], 0.0f);

  auto all = Train(d, {{"lambda", "1"}});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->meta.metrics.at("items_modelled"), 6.0);
  EXPECT_EQ(all->meta.metrics.at("items_capped"), 0.0);
  EXPECT_TRUE(all->item_factors.row(6).isZero(0.0f));
}

TEST(EaseTest, DeterministicForAnyThreadCount) {
  // Over 128 items, so the dense steps run in several blocks.
  const TrainingData d = MixedData(6, 600, 300, 5, 20000);
  TrainOptions one, three;
  three.num_threads = 3;
  auto a = Train(d, {{"rank", "24"}}, one);
  auto b = Train(d, {{"rank", "24"}}, three);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(a->item_factors, b->item_factors);
  EXPECT_EQ(a->tensors, b->tensors);
  EXPECT_EQ(a->meta.metrics, b->meta.metrics);
}

TEST(EaseTest, ParameterErrorsNameTheFieldAndTheLimit) {
  const TrainingData d = MixedData(7, 50, 40, 2, 800);
  struct Case {
    std::map<std::string, std::string> params;
    std::vector<std::string> parts;
  };
  const Case cases[] = {
      {{{"lambda", "0"}}, {"'lambda'", "[1e-09, 1e+09]"}},
      {{{"dropout", "1"}}, {"'dropout'", "[0, 0.99]"}},
      {{{"dropout", "-0.1"}}, {"'dropout'", "[0, 0.99]"}},
      {{{"dropout", "nan"}}, {"'dropout'"}},
      {{{"rank", "0"}}, {"'rank'", "[1, 1024]"}},
      {{{"max_items", "20000"}}, {"'max_items'", "[1, 16384]"}},
      {{{"seq_window", "0"}}, {"'seq_window'", "[1, 1000]"}},
      {{{"seq_weight", "-1"}}, {"'seq_weight'", "[0, 100]"}},
      {{{"seq_kernel", "gauss"}}, {"'seq_kernel'", "box, triangle"}},
      {{{"weighting", "sqrt"}}, {"'weighting'", "binary, log, raw"}},
      {{{"gf_weight", "-0.5"}}, {"'gf_weight'", "[0, 100]"}},
      {{{"gf_rank", "0"}}, {"'gf_rank'", "[1, 1024]"}},
      {{{"gf_alpha", "-1"}}, {"'gf_alpha'", "[0, 1e+06]"}},
      {{{"lamda", "5"}}, {"unknown parameter 'lamda'", "lambda, dropout, rank, max_items"}},
  };
  for (const Case& c : cases) {
    auto r = Train(d, c.params);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.parts[0];
    for (const std::string& p : c.parts) EXPECT_THAT(r.status().message(), HasSubstr(p));
  }
}

TEST(EaseTest, ErrorsCancellationAndProgress) {
  TrainingData empty;
  empty.num_users = 2;
  empty.num_items = 2;
  EXPECT_EQ(Train(empty, {}).status().code(), absl::StatusCode::kFailedPrecondition);

  // Every user watches 0, 1, 2 in that order: with the box kernel and window 1 the sequence
  // Gram matrix is 30 · [[1, 1, 0], [1, 1, 1], [0, 1, 1]], whose smallest eigenvalue is
  // 30 (1 − √2) < 0. A tiny seq_lambda leaves it indefinite; the triangle kernel never is.
  TrainingData chain;
  chain.num_users = 30;
  chain.num_items = 3;
  int64_t t = 0;
  for (UserIndex u = 0; u < 30; ++u) {
    for (ItemIndex i = 0; i < 3; ++i) chain.interactions.push_back(View(u, i, ++t));
  }
  const std::map<std::string, std::string> box = {
      {"seq_kernel", "box"}, {"seq_window", "1"}, {"seq_lambda", "1"}};
  auto indefinite = Train(chain, box);
  ASSERT_EQ(indefinite.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(indefinite.status().message(), HasSubstr("sequence Gram matrix"));
  EXPECT_THAT(indefinite.status().message(), HasSubstr("raise seq_lambda"));
  EXPECT_TRUE(
      Train(chain, {{"seq_kernel", "triangle"}, {"seq_window", "1"}, {"seq_lambda", "1e-6"}}).ok());

  const TrainingData d = MixedData(8, 60, 40, 2, 1000);
  std::atomic<bool> cancel{true};
  TrainOptions cancelled;
  cancelled.cancel = &cancel;
  EXPECT_EQ(Train(d, {}, cancelled).status().code(), absl::StatusCode::kCancelled);

  std::vector<double> seen;
  TrainOptions watched;
  watched.progress = [&](double f) { seen.push_back(f); };
  ASSERT_TRUE(Train(d, {}, watched).ok());
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_DOUBLE_EQ(seen.back(), 1.0);
}

}  // namespace
}  // namespace recd
