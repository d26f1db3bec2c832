#include "core/two_tower.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/eval_protocol.h"
#include "core/random.h"
#include "core/sgemm.h"
#include "core/test_data.h"
#include "core/two_tower_net.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using two_tower::BatchInput;
using two_tower::Example;
using two_tower::Layout;
using two_tower::Lists;
using two_tower::LossConfig;
using two_tower::Shape;

struct GradCase {
  int hidden_layers;
  bool normalize;
  int batch;
};

class TwoTowerGradientTest : public ::testing::TestWithParam<GradCase> {};

// The analytic gradient of the batch loss against central finite differences, in double.
TEST_P(TwoTowerGradientTest, MatchesFiniteDifferences) {
  const GradCase gc = GetParam();
  Shape shape;
  shape.num_users = 5;
  shape.num_items = 9;
  shape.feature_buckets = 4;
  shape.embedding_dim = 3;
  shape.hidden_dim = 4;
  shape.hidden_layers = gc.hidden_layers;
  shape.dim = 3;
  const Layout layout = Layout::Make(shape);
  PortableRng rng(17);
  std::vector<double> params(layout.size);
  for (double& p : params) p = 0.5 * rng.Normal();

  Lists buckets, histories;
  for (int i = 0; i < shape.num_items; ++i) {
    std::vector<int32_t> b;
    for (int k = 0; k < i % 3; ++k) b.push_back(static_cast<int32_t>(rng.UniformInt(4)));
    buckets.Append(b);  // items 0, 3, 6 have no features
  }
  for (int u = 0; u < shape.num_users; ++u) {
    std::vector<int32_t> h;
    for (int k = 0; k < u; ++k) h.push_back((u + 2 * k) % shape.num_items);
    histories.Append(h);  // user 0 has an empty history
  }
  std::vector<Example> examples;
  std::vector<float> user_keep, item_keep;
  std::vector<uint8_t> history_keep;
  for (int r = 0; r < gc.batch; ++r) {
    Example e;
    e.user = rng.UniformInt(shape.num_users);
    e.item = rng.UniformInt(shape.num_items);  // duplicates of an item occur: masked columns
    const absl::Span<const int32_t> h = histories.Row(e.user);
    if (!h.empty() && rng.Bernoulli(0.5)) e.item = h[rng.UniformInt(h.size())];
    examples.push_back(e);
    for (size_t k = 0; k < h.size(); ++k) history_keep.push_back(rng.Bernoulli(0.3) ? 0 : 1);
    user_keep.push_back(rng.Bernoulli(0.2) ? 0.0f : 1.0f);
    item_keep.push_back(rng.Bernoulli(0.2) ? 0.0f : 1.0f);
  }
  std::vector<float> log_q(shape.num_items);
  for (float& q : log_q) q = static_cast<float>(std::log(0.05 + rng.Uniform()));
  LossConfig config;
  config.temperature = 0.5;
  config.normalize = gc.normalize;
  config.logq_weight = 0.7;
  BatchInput batch{examples, user_keep, item_keep, history_keep};

  std::vector<double> grad(layout.size, 0.0);
  two_tower::WorkerPool two_threads(2), one_thread(1);
  // The finalised ranges partition the parameters.
  std::vector<int> finalized(layout.size, 0);
  const double loss = two_tower::BatchLossAndGradient<double>(
      layout, shape, params.data(), buckets, histories, log_q, config, batch, grad.data(),
      two_threads, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) ++finalized[k];
      });
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_EQ(finalized, std::vector<int>(layout.size, 1));
  auto loss_at = [&](std::vector<double>& p) {
    std::vector<double> unused(layout.size, 0.0);
    return two_tower::BatchLossAndGradient<double>(layout, shape, p.data(), buckets, histories,
                                                   log_q, config, batch, unused.data(),
                                                   one_thread, [](int64_t, int64_t) {});
  };
  int checked = 0;
  for (const Layout::Tensor& t : layout.tensors) {
    for (int64_t k = 0; k < t.rows * t.cols; ++k) {
      const int64_t at = t.offset + k;
      const double h = 1e-6, saved = params[at];
      params[at] = saved + h;
      const double up = loss_at(params);
      params[at] = saved - h;
      const double down = loss_at(params);
      params[at] = saved;
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(grad[at], numeric, 1e-7 + 1e-5 * std::abs(numeric))
          << t.name << "[" << k / t.cols << "," << k % t.cols << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, layout.size);
}

INSTANTIATE_TEST_SUITE_P(Shapes, TwoTowerGradientTest,
                         ::testing::Values(GradCase{1, true, 7}, GradCase{0, false, 6},
                                           GradCase{2, true, 9},
                                           // 130 rows: two chunks, combined in order
                                           GradCase{1, true, 130}),
                         [](const auto& info) {
                           return absl::StrCat("layers", info.param.hidden_layers,
                                               info.param.normalize ? "_norm" : "_raw", "_batch",
                                               info.param.batch);
                         });

// Users engage with their own group's items (with features naming the group).
TrainingData GroupData(uint64_t seed, uint32_t users, uint32_t items, int groups, int n) {
  TrainingData d = synthetic::GroupedInteractions(seed, users, items, groups, n, 0.9,
                                                  synthetic::EventMix::kViewsAndClicks);
  const uint32_t per_group = items / groups;
  d.item_features.resize(items);
  for (uint32_t i = 0; i < items; ++i) {
    d.item_features[i].categories = {absl::StrCat("group-", i / per_group)};
    d.item_features[i].tags = {absl::StrCat("tag-", i % 3)};
  }
  return d;
}

const std::map<std::string, std::string> kSmall = {
    {"dim", "8"}, {"embedding_dim", "8"}, {"hidden_dim", "16"}, {"epochs", "8"},
    {"batch_size", "64"}, {"learning_rate", "0.01"}, {"feature_buckets", "64"},
    {"history_length", "20"}, {"temperature", "0.2"}, {"item_id_dropout", "0.3"}};

TEST(TwoTowerTest, LearnsGroupsFoldsInExactlyAndIsDeterministic) {
  TrainingData d = GroupData(1, 120, 80, 4, 1500);
  d.num_items = 84;  // items 80..83: no interactions, features of group 1
  for (int i = 80; i < 84; ++i) d.item_features.push_back({{"group-1"}, {"tag-0"}});
  TrainOptions one, two;
  two.num_threads = 2;
  auto a = TrainModel({"tt", "two_tower", kSmall}, d, one);
  auto b = TrainModel({"tt", "two_tower", kSmall}, d, two);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->item_factors, b->item_factors);
  EXPECT_EQ(a->user_factors, b->user_factors);
  EXPECT_EQ(a->meta.metrics, b->meta.metrics);
  EXPECT_LT(a->meta.metrics.at("loss_epoch_8"), a->meta.metrics.at("loss_epoch_1"));
  EXPECT_EQ(a->item_factors.rows(), 84);
  EXPECT_EQ(a->dim(), 8);

  auto model = CreateModel(std::make_shared<const ModelData>(*a));
  ASSERT_TRUE(model.ok()) << model.status();
  const auto histories = HistoriesByUser(d);
  for (UserIndex u : {0u, 7u, 119u}) {
    EXPECT_EQ((*model)->FoldInKnownUser(u, histories[u]), (*model)->UserEmbedding(u)) << u;
    const EmbeddingVector anonymous = (*model)->FoldInUser(histories[u]);
    ASSERT_EQ(anonymous.size(), 8);
    EXPECT_NEAR(anonymous.norm(), 1.0f, 1e-5);
  }
  // Cold items: their row is the feature-only vector; a new item gets the same from features.
  for (ItemIndex i = 80; i < 84; ++i) {
    const EmbeddingVector v = (*model)->ItemVectorFromFeatures(d.item_features[i]);
    ASSERT_EQ(v.size(), 8);
    EXPECT_EQ(v, (*model)->item_factors().row(i).transpose());
  }
  EXPECT_EQ((*model)->ItemVectorFromFeatures({}).size(), 0);

  // The planted groups: held-in ranking of each user puts own-group items first.
  const auto seen = ItemsByUser(d);
  int own = 0, total = 0;
  for (UserIndex u = 0; u < 120; ++u) {
    const EmbeddingVector q = (*model)->UserEmbedding(u);
    if (q.size() == 0) continue;
    std::vector<std::pair<float, ItemIndex>> scored;
    for (ItemIndex i = 0; i < 80; ++i) {
      if (!std::binary_search(seen[u].begin(), seen[u].end(), i)) {
        scored.push_back({-q.dot((*model)->item_factors().row(i).transpose()), i});
      }
    }
    std::sort(scored.begin(), scored.end());
    for (int k = 0; k < 5 && k < static_cast<int>(scored.size()); ++k) {
      own += scored[k].second / 20 == u % 4;
      ++total;
    }
  }
  EXPECT_GT(static_cast<double>(own) / total, 0.8);
  // A feature-only vector of group 1 is closer to group-1 items than to others.
  const EmbeddingVector cold = (*model)->ItemVectorFromFeatures({{"group-1"}, {}});
  double in = 0, out = 0;
  for (ItemIndex i = 0; i < 80; ++i) {
    (i / 20 == 1 ? in : out) += cold.dot((*model)->item_factors().row(i).transpose());
  }
  EXPECT_GT(in / 20, out / 60);
}

TEST(TwoTowerTest, WarmStartBeginsAtALowerLossAndGrowsTables) {
  TrainingData d = GroupData(2, 150, 80, 4, 6000);
  auto first = TrainModel({"tt", "two_tower", kSmall}, d, {});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->meta.metrics.at("warm_started"), 0.0);
  TrainingData more = GroupData(3, 160, 88, 4, 1500);
  d.num_users = 160;
  d.num_items = 88;
  d.item_features = more.item_features;
  d.interactions.insert(d.interactions.end(), more.interactions.begin(), more.interactions.end());
  TrainOptions warm;
  warm.warm_start = &*first;
  auto cold = TrainModel({"tt", "two_tower", kSmall}, d, {});
  auto hot = TrainModel({"tt", "two_tower", kSmall}, d, warm);
  ASSERT_TRUE(cold.ok() && hot.ok());
  EXPECT_EQ(hot->meta.metrics.at("warm_started"), 1.0);
  EXPECT_EQ(hot->user_factors.rows(), 160);
  EXPECT_EQ(hot->item_factors.rows(), 88);
  EXPECT_LT(hot->meta.metrics.at("initial_loss"), cold->meta.metrics.at("initial_loss") - 0.3);
  EXPECT_LT(hot->meta.metrics.at("loss_epoch_1"), cold->meta.metrics.at("loss_epoch_1"));
  // Another network shape: ignored.
  auto params = kSmall;
  params["hidden_dim"] = "12";
  auto other = TrainModel({"tt", "two_tower", params}, d, warm);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->meta.metrics.at("warm_started"), 0.0);
}

// Timing of one training step (loss, gradient and the fused Adam update) on ML-100K's shapes:
// 943 users, 1682 items, histories of up to 50 items, 1024 feature buckets, batches of 512,
// the default network. Not a correctness test; run it with
//   core_factorization_test --gtest_also_run_disabled_tests --gtest_filter='*StepTiming*'
// It prints the fastest and the median step over 300 batches for 1 and 2 threads: the fastest
// step is what the code costs, the median what a busy machine lets it have.
TEST(TwoTowerBenchmark, DISABLED_StepTiming) {
  Shape shape;
  shape.num_users = 943;
  shape.num_items = 1682;
  shape.feature_buckets = 1024;
  shape.embedding_dim = 32;
  shape.hidden_dim = 64;
  shape.hidden_layers = 1;
  shape.dim = 32;
  const Layout layout = Layout::Make(shape);
  PortableRng rng(1);
  std::vector<float> params(layout.size), grad(layout.size, 0.0f), m(layout.size, 0.0f),
      v(layout.size, 0.0f);
  for (float& p : params) p = static_cast<float>(0.05 * rng.Normal());
  Lists buckets, histories;
  for (int i = 0; i < shape.num_items; ++i) {
    std::vector<int32_t> b;
    for (int k = 0; k < 1 + i % 3; ++k) b.push_back(static_cast<int32_t>(rng.UniformInt(19)));
    buckets.Append(b);
  }
  std::vector<Example> examples;
  for (int u = 0; u < shape.num_users; ++u) {
    std::vector<int32_t> h;
    const int n = 20 + static_cast<int>(rng.UniformInt(60));  // ~80 training items a user
    for (int k = 0; k < n; ++k) {
      const int32_t item = static_cast<int32_t>(rng.UniformInt(shape.num_items));
      examples.push_back({static_cast<uint32_t>(u), static_cast<uint32_t>(item)});
      if (h.size() < 50) h.push_back(item);
    }
    histories.Append(h);
  }
  std::vector<float> log_q(shape.num_items, std::log(1.0f / shape.num_items));
  LossConfig config;
  config.temperature = 0.1;
  config.normalize = true;
  config.logq_weight = 1.5;
  AdamStepParams adam;
  adam.step = 0.005f;
  for (int threads : {1, 2}) {
    two_tower::WorkerPool pool(threads);
    std::vector<double> ms;
    for (int b = 0; b < 300; ++b) {
      BatchInput batch;
      const size_t begin = (b * 512) % (examples.size() - 512);
      batch.examples = absl::MakeConstSpan(examples.data() + begin, 512);
      const auto start = std::chrono::steady_clock::now();
      two_tower::BatchLossAndGradient<float>(
          layout, shape, params.data(), buckets, histories, log_q, config, batch, grad.data(),
          pool, [&](int64_t begin, int64_t end) {
            AdamStep(end - begin, adam, params.data() + begin, m.data() + begin,
                     v.data() + begin, grad.data() + begin);
          });
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                             start).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("two_tower step, %d thread(s), kernels %s: fastest %.3f ms, median %.3f ms\n",
                threads, SgemmKernelName().c_str(), ms.front(), ms[ms.size() / 2]);
  }
}

TEST(TwoTowerTest, RejectsBadInputAndMissingTensors) {
  const TrainingData d = GroupData(4, 20, 16, 2, 200);
  EXPECT_EQ(TrainModel({"tt", "two_tower", {{"temperature", "0"}}}, d, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  TrainingData none = d;
  none.interactions.clear();
  EXPECT_EQ(TrainModel({"tt", "two_tower", {}}, none, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto ok = TrainModel({"tt", "two_tower", {{"epochs", "1"}, {"dim", "4"}, {"embedding_dim", "4"},
                                            {"hidden_dim", "4"}}},
                       d, {});
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto broken = std::make_shared<ModelData>(*ok);
  broken->tensors.erase("user_w1");
  auto model = CreateModel(broken);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()), ::testing::HasSubstr("user_w1"));
}

}  // namespace
}  // namespace recd
