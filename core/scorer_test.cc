#include "core/scorer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/demo_data.h"
#include "core/model.h"
#include "core/kernels/dispatch.h"
#include "core/synthetic_embeddings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#define __SANITIZE_THREAD__ 1  // clang says it with __has_feature, gcc with this macro
#endif
#endif
#if defined(__SANITIZE_THREAD__)
// hnswlib takes per-node locks in graph order while inserting, which ThreadSanitizer's
// lock-order graph flags as a potential deadlock even in a serial build (hnswlib's top-down
// insertion rules the cycle out; yugabyte-db#24814 hit the same report). Data races are not
// suppressed.
extern "C" const char* __tsan_default_suppressions() {
  return "deadlock:hnswlib::HierarchicalNSW\n";
}
#endif

namespace recd {
namespace {

using Isa = ScorerOptions::Isa;
using Kind = ScorerOptions::Kind;

std::shared_ptr<EmbeddingMatrix> RandomMatrix(int rows, int cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  auto m = std::make_shared<EmbeddingMatrix>(rows, cols);
  for (Eigen::Index i = 0; i < m->size(); ++i) m->data()[i] = g(rng);
  return m;
}

std::vector<float> RandomVector(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = g(rng);
  return v;
}

std::vector<float> Row(const EmbeddingMatrix& m, Eigen::Index r) {
  return std::vector<float>(m.row(r).data(), m.row(r).data() + m.cols());
}

// Embeddings shaped like trained factors (core/synthetic_embeddings.h, shared with
// bench/scorer_bench): clustered items, a decaying spectrum and log-normal item norms.
using TrainedLike = synthetic::Embeddings;
using synthetic::MakeTrainedLike;

double RecallAtK(const std::vector<ScoredIndex>& got, const std::vector<ScoredIndex>& truth) {
  if (truth.empty()) return 1.0;
  std::set<ItemIndex> want;
  for (const auto& s : truth) want.insert(s.item);
  size_t hit = 0;
  for (const auto& s : got) hit += want.count(s.item);
  return static_cast<double>(hit) / static_cast<double>(truth.size());
}

// Fast kernels sum in a different order than the reference, so near-ties may swap. Checks that
// the result is sorted, has the reference's length, scores match position by position within
// `tol`, excluded items are absent, and every returned item is a true top-k item up to `tol`.
void ExpectMatchesReference(const std::vector<ScoredIndex>& got,
                            const std::vector<ScoredIndex>& ref, float tol,
                            const ItemBitset* exclude = nullptr) {
  ASSERT_EQ(got.size(), ref.size());
  std::set<ItemIndex> distinct;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].score, ref[i].score, tol) << "position " << i;
    if (i > 0) {
      EXPECT_FALSE(BetterThan(got[i], got[i - 1])) << "unsorted at " << i;
    }
    if (exclude != nullptr) {
      EXPECT_FALSE(exclude->Test(got[i].item)) << got[i].item;
    }
    distinct.insert(got[i].item);
  }
  EXPECT_EQ(distinct.size(), got.size()) << "duplicate items";
  if (!ref.empty()) {
    const float kth = ref.back().score;
    for (const ScoredIndex& s : got) EXPECT_GE(s.score, kth - tol) << "item " << s.item;
  }
}

// Scores are sums of `dim` products of N(0,1) values: rounding error grows with dim.
float Tolerance(int dim) { return 2e-6f * static_cast<float>(dim) + 1e-5f; }

bool Supported(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return kernels::SupportedIsaLevel() >= kernels::IsaLevel::kAvx512;
    case Isa::kAvx2:
      return kernels::SupportedIsaLevel() >= kernels::IsaLevel::kAvx2;
    default:
      return true;
  }
}

std::string IsaName(Isa isa) {
  switch (isa) {
    case Isa::kAuto:
      return "auto";
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

std::unique_ptr<ItemScorer> MakeScorer(std::shared_ptr<const EmbeddingMatrix> items,
                                       ScorerOptions options = {}) {
  auto s = CreateItemScorer(std::move(items), options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

TEST(ReferenceTopKTest, FullSortWithTiesByIndex) {
  EmbeddingMatrix items(5, 1);
  items << 1, 3, 2, 3, -1;
  const float q[] = {1.0f};
  auto r = ReferenceTopK(items, q, 10, nullptr);
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0], (ScoredIndex{3.0f, 1}));
  EXPECT_EQ(r[1], (ScoredIndex{3.0f, 3}));
  EXPECT_EQ(r[2], (ScoredIndex{2.0f, 2}));
  EXPECT_EQ(r[3], (ScoredIndex{1.0f, 0}));
  EXPECT_EQ(r[4], (ScoredIndex{-1.0f, 4}));
  EXPECT_TRUE(ReferenceTopK(items, q, 0, nullptr).empty());
}

// --- Exact scorer, every ISA level --------------------------------------------------------

class ExactScorerTest : public testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!Supported(GetParam())) {
      GTEST_SKIP() << IsaName(GetParam()) << " is compiled but not supported by this CPU (best: "
                   << kernels::IsaLevelName(kernels::SupportedIsaLevel()) << "); not run";
    }
  }
  ScorerOptions Options(int threads = 1) const {
    ScorerOptions o;
    o.isa = GetParam();
    o.num_threads = threads;
    return o;
  }
};

TEST_P(ExactScorerTest, MatchesFullSortOverAwkwardDimsAndSizes) {
  for (int dim : {1, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129}) {
    for (int n : {1, 7, 64, 1000, 2500}) {
      auto items = RandomMatrix(n, dim, 1000 * dim + n);
      auto scorer = MakeScorer(items, Options());
      ASSERT_NE(scorer, nullptr);
      EXPECT_EQ(scorer->num_items(), static_cast<size_t>(n));
      EXPECT_EQ(scorer->dim(), dim);
      const auto q = RandomVector(dim, 7 * dim + n);
      for (int k : {1, 10, 100}) {
        SCOPED_TRACE(testing::Message() << "dim=" << dim << " n=" << n << " k=" << k);
        ExpectMatchesReference(scorer->TopK(q, k, nullptr), ReferenceTopK(*items, q, k, nullptr),
                               Tolerance(dim));
      }
    }
  }
}

TEST_P(ExactScorerTest, EqualScoresOrderedByLowerIndex) {
  // Small integer entries: every kernel computes exact sums, so ties are real ties and the
  // answer must equal the reference exactly.
  auto items = std::make_shared<EmbeddingMatrix>(3000, 20);
  for (int i = 0; i < 3000; ++i) {
    for (int j = 0; j < 20; ++j) (*items)(i, j) = static_cast<float>((i * 7 + j * 3) % 5 - 2);
  }
  std::vector<float> q(20);
  for (int j = 0; j < 20; ++j) q[j] = static_cast<float>(j % 3 - 1);
  for (int threads : {1, 2}) {
    auto scorer = MakeScorer(items, Options(threads));
    for (int k : {1, 7, 50, 3000}) {
      EXPECT_EQ(scorer->TopK(q, k, nullptr), ReferenceTopK(*items, q, k, nullptr)) << k;
    }
    EmbeddingMatrix batch(3, 20);
    for (int r = 0; r < 3; ++r) batch.row(r) = Eigen::Map<const Eigen::RowVectorXf>(q.data(), 20);
    for (const auto& row : scorer->TopKBatch(batch, 50, {})) {
      EXPECT_EQ(row, ReferenceTopK(*items, q, 50, nullptr));
    }
  }
}

TEST_P(ExactScorerTest, KLargerThanCatalogueAndNonPositiveK) {
  auto items = RandomMatrix(20, 8, 1);
  auto scorer = MakeScorer(items, Options());
  const auto q = RandomVector(8, 2);
  EXPECT_EQ(scorer->TopK(q, 1000, nullptr).size(), 20u);
  ItemBitset ex(20);
  ex.Set(3);
  ex.Set(19);
  auto r = scorer->TopK(q, 1000, &ex);
  EXPECT_EQ(r.size(), 18u);
  ExpectMatchesReference(r, ReferenceTopK(*items, q, 1000, &ex), Tolerance(8), &ex);
  EXPECT_TRUE(scorer->TopK(q, 0, nullptr).empty());
  EXPECT_TRUE(scorer->TopK(q, -5, nullptr).empty());
}

TEST_P(ExactScorerTest, ExclusionShorterThanCatalogueAndRemovingEverything) {
  auto items = RandomMatrix(5000, 16, 3);
  auto scorer = MakeScorer(items, Options());
  const auto q = RandomVector(16, 4);

  ItemBitset all(5000);
  all.SetAll();
  EXPECT_TRUE(scorer->TopK(q, 10, &all).empty());
  ItemBitset longer(9000);
  longer.SetAll();
  EXPECT_TRUE(scorer->TopK(q, 10, &longer).empty());

  ItemBitset shorter(1500);  // items >= 1500 are never excluded
  shorter.SetAll();
  auto r = scorer->TopK(q, 10, &shorter);
  ExpectMatchesReference(r, ReferenceTopK(*items, q, 10, &shorter), Tolerance(16), &shorter);
  for (const auto& s : r) EXPECT_GE(s.item, 1500u);

  // All but a few scattered items: whole blocks are skipped, the rest filtered per item.
  ItemBitset most(5000);
  most.SetAll();
  for (size_t i : {5u, 1023u, 1024u, 4999u}) most.Clear(i);
  r = scorer->TopK(q, 10, &most);
  ASSERT_EQ(r.size(), 4u);
  ExpectMatchesReference(r, ReferenceTopK(*items, q, 10, &most), Tolerance(16), &most);

  // Exclude the unfiltered winners: the next ones come up.
  auto best = scorer->TopK(q, 5, nullptr);
  ItemBitset seen(5000);
  for (const auto& s : best) seen.Set(s.item);
  ExpectMatchesReference(scorer->TopK(q, 5, &seen), ReferenceTopK(*items, q, 5, &seen),
                         Tolerance(16), &seen);

  ItemBitset empty;
  ExpectMatchesReference(scorer->TopK(q, 5, &empty), ReferenceTopK(*items, q, 5, nullptr),
                         Tolerance(16));
}

TEST_P(ExactScorerTest, PartitionedScanEqualsSingleThreadExactly) {
  // 40k x 64 floats = 10 MB: split into partitions with 2 and 3 threads.
  auto items = RandomMatrix(40000, 64, 8);
  auto one = MakeScorer(items, Options(1));
  auto two = MakeScorer(items, Options(2));
  auto three = MakeScorer(items, Options(3));
  ItemBitset ex(40000);
  for (size_t i = 0; i < 40000; i += 7) ex.Set(i);
  for (int k : {1, 10, 100}) {
    for (uint64_t seed = 0; seed < 3; ++seed) {
      const auto q = RandomVector(64, seed);
      const auto want = one->TopK(q, k, &ex);
      EXPECT_EQ(two->TopK(q, k, &ex), want);
      EXPECT_EQ(three->TopK(q, k, &ex), want);
      ExpectMatchesReference(want, ReferenceTopK(*items, q, k, &ex), Tolerance(64), &ex);
    }
  }
}

TEST_P(ExactScorerTest, BatchMatchesReferenceAndIsDeterministicAcrossThreads) {
  auto items = RandomMatrix(30000, 33, 5);
  auto one = MakeScorer(items, Options(1));
  auto two = MakeScorer(items, Options(2));
  for (int rows : {2, 17, 40}) {
    auto queries = RandomMatrix(rows, 33, 100 + rows);
    ItemBitset ex(30000);
    for (int i = 0; i < 30000; i += 3) ex.Set(i);
    ItemBitset all(30000);
    all.SetAll();
    std::vector<const ItemBitset*> excludes(rows, nullptr);
    excludes[1] = &ex;
    excludes[rows - 1] = &all;
    // The reference is a full sort: its top-k is a prefix of its top-100.
    std::vector<std::vector<ScoredIndex>> reference(rows);
    for (int r = 0; r < rows; ++r) {
      reference[r] = ReferenceTopK(*items, Row(*queries, r), 100, excludes[r]);
    }
    for (int k : {1, 10, 100}) {
      auto batch = one->TopKBatch(*queries, k, excludes);
      ASSERT_EQ(batch.size(), static_cast<size_t>(rows));
      EXPECT_EQ(two->TopKBatch(*queries, k, excludes), batch);
      for (int r = 0; r < rows; ++r) {
        SCOPED_TRACE(testing::Message() << "rows=" << rows << " row=" << r << " k=" << k);
        std::vector<ScoredIndex> want(
            reference[r].begin(),
            reference[r].begin() + std::min<size_t>(k, reference[r].size()));
        ExpectMatchesReference(batch[r], want, Tolerance(33), excludes[r]);
      }
    }
  }
  // Unfiltered, k > N, an invalid row among valid ones, no rows.
  auto small = RandomMatrix(50, 33, 9);
  auto scorer = MakeScorer(small, Options());
  auto queries = RandomMatrix(4, 33, 10);
  (*queries)(2, 5) = std::numeric_limits<float>::infinity();
  auto out = scorer->TopKBatch(*queries, 100, {});
  ASSERT_EQ(out.size(), 4u);
  EXPECT_TRUE(out[2].empty());
  for (int r : {0, 1, 3}) {
    ExpectMatchesReference(out[r], ReferenceTopK(*small, Row(*queries, r), 100, nullptr),
                           Tolerance(33));
  }
  EXPECT_TRUE(scorer->TopKBatch(EmbeddingMatrix(0, 33), 10, {}).empty());
}

TEST_P(ExactScorerTest, OverflowingScoresRankAsMinusInfinityWithoutBreakingOrder) {
  // Finite embeddings whose products overflow: +inf, -inf and NaN (inf - inf) scores.
  auto items = std::make_shared<EmbeddingMatrix>(40, 2);
  for (int i = 0; i < 40; ++i) {
    const float a = (i % 4 == 0) ? 3e38f : 1.0f;
    const float b = (i % 4 == 0) ? -3e38f : static_cast<float>(i % 4 == 1 ? 3e38f : i);
    (*items)(i, 0) = a;
    (*items)(i, 1) = b;
  }
  const std::vector<float> q = {3e38f, 3e38f};
  auto scorer = MakeScorer(items, Options());
  auto r = scorer->TopK(q, 100, nullptr);
  ASSERT_EQ(r.size(), 40u);
  for (size_t i = 1; i < r.size(); ++i) EXPECT_FALSE(BetterThan(r[i], r[i - 1]));
  for (const auto& s : r) EXPECT_FALSE(std::isnan(s.score));
}

TEST_P(ExactScorerTest, DegenerateShapes) {
  auto scorer = MakeScorer(std::make_shared<EmbeddingMatrix>(0, 8), Options());
  EXPECT_TRUE(scorer->TopK(RandomVector(8, 1), 10, nullptr).empty());
  EXPECT_TRUE(scorer->TopKBatch(*RandomMatrix(3, 8, 1), 10, {})[0].empty());
  auto zero_dim = MakeScorer(std::make_shared<EmbeddingMatrix>(5, 0), Options());
  auto r = zero_dim->TopK({}, 3, nullptr);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], (ScoredIndex{0.0f, 0}));
  EXPECT_EQ(r[2], (ScoredIndex{0.0f, 2}));
}

INSTANTIATE_TEST_SUITE_P(AllLevels, ExactScorerTest,
                         testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                         [](const testing::TestParamInfo<Isa>& info) {
                           return IsaName(info.param);
                         });

// --- Quantized scorer --------------------------------------------------------------------

class QuantizedScorerTest : public testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!Supported(GetParam())) {
      GTEST_SKIP() << IsaName(GetParam()) << " is compiled but not supported by this CPU; not run";
    }
  }
  // Approximate mode (a fixed number re-ranked) unless `exact`.
  ScorerOptions Options(int threads = 1, bool exact = false) const {
    ScorerOptions o;
    o.kind = Kind::kQuantizedInt8;
    o.isa = GetParam();
    o.num_threads = threads;
    o.quantized.exact = exact;
    return o;
  }
  ScorerOptions ExactOptions(int threads = 1) const {
    ScorerOptions o;
    o.isa = GetParam();
    o.num_threads = threads;
    return o;
  }
};

TEST_P(QuantizedScorerTest, ExactModeIsTheDefault) {
  EXPECT_TRUE(ScorerOptions().quantized.exact);
  auto items = RandomMatrix(100, 8, 1);
  ScorerOptions o;
  o.kind = Kind::kQuantizedInt8;
  o.isa = GetParam();
  EXPECT_THAT(MakeScorer(items, o)->Describe(), testing::StartsWith("int8-exact/"));
}

// The exact mode's contract: TopK equals the exact scorer's TopK (items, bitwise scores, order)
// for every query, k and filter, on any thread count.
TEST_P(QuantizedScorerTest, ExactModeEqualsTheExactScanOnTrainedLikeEmbeddings) {
  for (int dim : {32, 64, 128}) {
    const TrainedLike t = MakeTrainedLike(30000, 60, dim, 77 + dim);
    auto exact = MakeScorer(t.items, ExactOptions());
    auto one = MakeScorer(t.items, Options(1, true));
    auto two = MakeScorer(t.items, Options(2, true));
    ItemBitset ex(30000);
    for (size_t i = 0; i < 30000; i += 7) ex.Set(i);
    for (int u = 0; u < t.users->rows(); ++u) {
      const auto q = Row(*t.users, u);
      for (int k : {1, 10, 100}) {
        const auto want = exact->TopK(q, k, nullptr);
        ASSERT_EQ(one->TopK(q, k, nullptr), want) << "dim " << dim << " user " << u << " k " << k;
        ASSERT_EQ(two->TopK(q, k, nullptr), want) << "dim " << dim << " user " << u << " k " << k;
        ASSERT_EQ(one->TopK(q, k, &ex), exact->TopK(q, k, &ex)) << dim << " " << u << " " << k;
      }
    }
  }
}

// A real trained model: PureSVD on the demo generator's data (item norms spread by popularity,
// many items with zero rows, users whose best scores are small).
TEST_P(QuantizedScorerTest, ExactModeEqualsTheExactScanOnATrainedPureSvdModel) {
  DemoDataOptions demo_options;
  demo_options.num_users = 2000;
  demo_options.num_items = 6000;
  demo_options.num_interactions = 60000;
  demo_options.num_genres = 30;
  absl::StatusOr<DemoDataset> demo = GenerateDemoData(demo_options);
  ASSERT_TRUE(demo.ok()) << demo.status();
  const TrainingData data = DemoTrainingData(*demo, /*include_unseen_items=*/true);  // zero rows too
  absl::StatusOr<ModelData> model = TrainModel({"pure_svd", "pure_svd", {{"rank", "32"}}}, data, {});
  ASSERT_TRUE(model.ok()) << model.status();
  auto item_factors = std::make_shared<EmbeddingMatrix>(model->item_factors);
  auto exact = MakeScorer(item_factors, ExactOptions());
  auto quantized = MakeScorer(item_factors, Options(1, true));
  int checked = 0;
  for (Eigen::Index u = 0; u < model->user_factors.rows(); u += 7) {
    const auto q = Row(model->user_factors, u);
    for (int k : {1, 10, 100}) {
      ASSERT_EQ(quantized->TopK(q, k, nullptr), exact->TopK(q, k, nullptr)) << "user " << u << " k " << k;
    }
    ++checked;
  }
  EXPECT_GT(checked, 250);
}

TEST_P(QuantizedScorerTest, ExactModeEqualsTheExactScanOnGaussiansAndAwkwardDimensions) {
  for (int dim : {1, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129}) {
    auto items = RandomMatrix(3000, dim, 900 + dim);
    auto exact = MakeScorer(items, ExactOptions());
    auto quantized = MakeScorer(items, Options(1, true));
    for (uint64_t u = 0; u < 20; ++u) {
      const auto q = RandomVector(dim, 5000 + 31 * dim + u);
      for (int k : {1, 10, 100, 3000, 5000}) {
        ASSERT_EQ(quantized->TopK(q, k, nullptr), exact->TopK(q, k, nullptr))
            << "dim " << dim << " query " << u << " k " << k;
      }
    }
  }
}

TEST_P(QuantizedScorerTest, ExactModeKeepsExactTieOrder) {
  // Many identical rows and integer-valued rows: exact ties everywhere, broken by item index.
  auto items = std::make_shared<EmbeddingMatrix>(5000, 24);
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> small(-3, 3);
  for (int i = 0; i < 5000; ++i) {
    if (i % 3 == 2) {
      items->row(i) = items->row(i - 1);
      continue;
    }
    for (int j = 0; j < 24; ++j) (*items)(i, j) = static_cast<float>(small(rng));
  }
  auto exact = MakeScorer(items, ExactOptions());
  auto quantized = MakeScorer(items, Options(1, true));
  for (int u = 0; u < 30; ++u) {
    std::vector<float> q(24);
    for (float& x : q) x = static_cast<float>(small(rng));
    for (int k : {1, 7, 50, 500}) {
      ASSERT_EQ(quantized->TopK(q, k, nullptr), exact->TopK(q, k, nullptr)) << u << " " << k;
    }
  }
}

TEST_P(QuantizedScorerTest, ExactModeOnAdversarialOrderAndFilters) {
  // Items in increasing order of their score for the query: the running threshold rises as
  // slowly as it can, so the scan collects the most candidates. The answer is still exact.
  const int n = 20000, d = 16;
  auto base = RandomMatrix(n, d, 8);
  const auto q = RandomVector(d, 9);
  std::vector<std::pair<float, int>> order;
  for (int i = 0; i < n; ++i) {
    float s = 0.0f;
    for (int j = 0; j < d; ++j) s += (*base)(i, j) * q[j];
    order.push_back({s, i});
  }
  std::sort(order.begin(), order.end());
  auto items = std::make_shared<EmbeddingMatrix>(n, d);
  for (int i = 0; i < n; ++i) items->row(i) = base->row(order[i].second);
  auto exact = MakeScorer(items, ExactOptions());
  auto quantized = MakeScorer(items, Options(2, true));
  for (int k : {1, 10, 1000}) {
    EXPECT_EQ(quantized->TopK(q, k, nullptr), exact->TopK(q, k, nullptr)) << k;
  }
  // Filters: the best half excluded, everything but three items excluded, everything excluded.
  ItemBitset best_half(n), all_but_three(n), all(n);
  for (int i = n / 2; i < n; ++i) best_half.Set(i);
  all_but_three.SetAll();
  all_but_three.Clear(5);
  all_but_three.Clear(n / 2);
  all_but_three.Clear(n - 1);
  all.SetAll();
  for (const ItemBitset* ex : {&best_half, &all_but_three}) {
    EXPECT_EQ(quantized->TopK(q, 10, ex), exact->TopK(q, 10, ex));
  }
  EXPECT_EQ(quantized->TopK(q, 10, &all_but_three).size(), 3u);
  EXPECT_TRUE(quantized->TopK(q, 10, &all).empty());
}

TEST_P(QuantizedScorerTest, ExactModeFallsBackWhenBoundsOverflow) {
  // Entries near float's limit: scores overflow to infinity, the bounds are not finite and the
  // query takes the exact scan, whose answer (infinite scores included) is returned as is.
  auto items = RandomMatrix(500, 8, 3);
  for (int i = 0; i < 500; i += 50) items->row(i) *= 1e37f;
  auto exact = MakeScorer(items, ExactOptions());
  auto quantized = MakeScorer(items, Options(1, true));
  for (uint64_t u = 0; u < 5; ++u) {
    auto q = RandomVector(8, 40 + u);
    q[0] *= 1e10f;
    EXPECT_EQ(quantized->TopK(q, 20, nullptr), exact->TopK(q, 20, nullptr)) << u;
  }
}

TEST_P(QuantizedScorerTest, ExactModeHandlesTinyAndSubnormalValues) {
  // Rows and queries near float's subnormal range, where relative rounding bounds fail: the
  // answer must still be the exact scan's (through absolute slack, or the exact fallback).
  for (float scale : {1e-12f, 1e-19f, 1e-22f, 1e-40f, 1e-44f}) {
    auto items = RandomMatrix(700, 12, 17);
    for (Eigen::Index i = 0; i < items->size(); ++i) items->data()[i] *= (i % 5 == 0) ? 1.0f : scale;
    auto exact = MakeScorer(items, ExactOptions());
    auto quantized = MakeScorer(items, Options(1, true));
    for (uint64_t u = 0; u < 5; ++u) {
      auto q = RandomVector(12, 70 + u);
      for (float& x : q) x *= scale;
      EXPECT_EQ(quantized->TopK(q, 15, nullptr), exact->TopK(q, 15, nullptr)) << scale << " " << u;
    }
  }
}

TEST_P(QuantizedScorerTest, ExactBatchesAnswerAsTopKQueryByQuery) {
  // Exact mode screens every query of a batch over shared row blocks: each answer is TopK's
  // (hence the exact scan's), bit for bit, filters, k > n and partitions included.
  struct Case {
    int64_t n;
    int dim;
    int threads;
  };
  for (const Case c : {Case{5000, 32, 1}, Case{150000, 64, 2}}) {
    SCOPED_TRACE(testing::Message() << "n=" << c.n << " dim=" << c.dim << " threads=" << c.threads);
    const TrainedLike t = MakeTrainedLike(c.n, 40, c.dim, 12);
    auto exact = MakeScorer(t.items, ExactOptions());
    auto quantized = MakeScorer(t.items, Options(c.threads, true));
    ItemBitset ex(static_cast<size_t>(c.n));
    for (size_t i = 0; i < static_cast<size_t>(c.n); i += 3) ex.Set(i);
    ItemBitset all(static_cast<size_t>(c.n));
    for (size_t i = 0; i < static_cast<size_t>(c.n); ++i) all.Set(i);
    std::vector<const ItemBitset*> excludes = {&ex, nullptr, &all, &ex};
    // The exact scan's answer for query r (its filter as in every batch below) and k, once.
    std::map<std::pair<int, int>, std::vector<ScoredIndex>> want;
    for (int rows : {2, 9, 40}) {
      const EmbeddingMatrix queries = t.users->topRows(rows);
      for (int k : {1, 10, 100}) {
        const auto got = quantized->TopKBatch(queries, k, excludes);
        ASSERT_EQ(got.size(), static_cast<size_t>(rows));
        for (int r = 0; r < rows; ++r) {
          const ItemBitset* e = static_cast<size_t>(r) < excludes.size() ? excludes[r] : nullptr;
          const auto q = Row(queries, r);
          auto [it, fresh] = want.try_emplace({r, k});
          if (fresh) it->second = exact->TopK(q, k, e);
          EXPECT_EQ(got[r], it->second) << "rows=" << rows << " k=" << k << " r=" << r;
          EXPECT_EQ(got[r], quantized->TopK(q, k, e)) << "rows=" << rows << " k=" << k << " r=" << r;
        }
      }
    }
  }
  // k larger than the catalogue.
  const TrainedLike small = MakeTrainedLike(20, 3, 7, 5);
  auto exact = MakeScorer(small.items, ExactOptions());
  auto quantized = MakeScorer(small.items, Options(1, true));
  const auto got = quantized->TopKBatch(*small.users, 50, {});
  for (int r = 0; r < small.users->rows(); ++r) {
    EXPECT_EQ(got[r], exact->TopK(Row(*small.users, r), 50, nullptr));
    EXPECT_EQ(got[r].size(), 20u);
  }
}

TEST_P(QuantizedScorerTest, EarlyStopOnHeavyTailedNormsKeepsTheExactAnswer) {
  // Popularity-like norms spanning four orders of magnitude (the scan stops early), duplicated
  // rows (equal norms and bitwise equal scores: ties must go to the lower index) and zero rows.
  TrainedLike t = MakeTrainedLike(60000, 30, 48, 77);
  std::mt19937_64 rng(78);
  std::normal_distribution<float> g(0.0f, 1.5f);
  for (Eigen::Index i = 0; i < t.items->rows(); ++i) t.items->row(i) *= std::exp(g(rng));
  for (Eigen::Index i = 0; i < 200; ++i) t.items->row(59000 + i) = t.items->row(i * 7);
  for (Eigen::Index i = 0; i < 50; ++i) t.items->row(58000 + i).setZero();
  ItemBitset every_other(60000);
  for (size_t i = 0; i < 60000; i += 2) every_other.Set(i);
  ItemBitset all_but_few(60000);
  for (size_t i = 0; i < 60000; ++i) {
    if (i % 9973 != 0) all_but_few.Set(i);
  }
  const std::vector<const ItemBitset*> filters = {nullptr, &every_other, &all_but_few};
  const std::vector<int> ks = {1, 10, 100, 1000};
  // A negated query ranks the small-norm and zero rows too.
  std::vector<float> neg = Row(*t.users, 0);
  for (float& x : neg) x = -x;
  // The exact scan's answers, once: want[f][k][u], and the negated query's as user 30.
  auto exact = MakeScorer(t.items, ExactOptions());
  std::vector<std::vector<std::vector<std::vector<ScoredIndex>>>> want(filters.size());
  for (size_t f = 0; f < filters.size(); ++f) {
    for (int k : ks) {
      auto& per_user = want[f].emplace_back();
      for (int u = 0; u < t.users->rows(); ++u) per_user.push_back(exact->TopK(Row(*t.users, u), k, filters[f]));
      per_user.push_back(exact->TopK(neg, k, filters[f]));
    }
  }
  for (int threads : {1, 3}) {
    auto quantized = MakeScorer(t.items, Options(threads, true));
    for (size_t f = 0; f < filters.size(); ++f) {
      for (size_t ki = 0; ki < ks.size(); ++ki) {
        const int k = ks[ki];
        const auto& expected = want[f][ki];
        for (int u = 0; u < t.users->rows(); ++u) {
          ASSERT_EQ(quantized->TopK(Row(*t.users, u), k, filters[f]), expected[u])
              << "threads=" << threads << " k=" << k << " user " << u;
        }
        ASSERT_EQ(quantized->TopK(neg, k, filters[f]), expected.back()) << "negated, k=" << k;
        const auto batch = quantized->TopKBatch(*t.users, k, std::vector<const ItemBitset*>(30, filters[f]));
        for (int u = 0; u < t.users->rows(); ++u) {
          ASSERT_EQ(batch[u], expected[u]) << "batch, k=" << k << " user " << u;
        }
      }
    }
  }
}

TEST_P(QuantizedScorerTest, ApproximateBatchesAnswerAsTheExactScorersBatches) {
  const TrainedLike t = MakeTrainedLike(5000, 9, 32, 12);
  auto exact = MakeScorer(t.items, ExactOptions());
  auto quantized = MakeScorer(t.items, Options(1, false));
  ItemBitset ex(5000);
  for (size_t i = 0; i < 5000; i += 3) ex.Set(i);
  std::vector<const ItemBitset*> excludes = {&ex, nullptr, &ex};
  for (int rows : {2, 9}) {
    const EmbeddingMatrix queries = t.users->topRows(rows);
    EXPECT_EQ(quantized->TopKBatch(queries, 10, excludes), exact->TopKBatch(queries, 10, excludes))
        << rows;
  }
}

TEST_P(QuantizedScorerTest, RecallAt10OnTrainedLikeEmbeddings) {
  for (int dim : {32, 64}) {
    const TrainedLike t = MakeTrainedLike(50000, 150, dim, 21 + dim);
    ScorerOptions exact_options;
    exact_options.isa = GetParam();
    auto exact = MakeScorer(t.items, exact_options);
    auto quantized = MakeScorer(t.items, Options());
    double recall = 0.0;
    int identical = 0;
    for (int u = 0; u < t.users->rows(); ++u) {
      const auto q = Row(*t.users, u);
      const auto want = exact->TopK(q, 10, nullptr);
      const auto got = quantized->TopK(q, 10, nullptr);
      recall += RecallAtK(got, want);
      identical += got == want;
    }
    recall /= static_cast<double>(t.users->rows());
    RecordProperty(absl::StrCat("recall_at_10_d", dim), std::to_string(recall));
    std::cout << "[ INFO     ] int8 recall@10, trained-like 50000 x " << dim << ": " << recall
              << " (" << identical << "/" << t.users->rows() << " lists identical)\n";
    EXPECT_GE(recall, 0.99) << "dim=" << dim;
  }
}

TEST_P(QuantizedScorerTest, RecallOnIsotropicGaussianIsReported) {
  // Isotropic Gaussians are the hardest case (no spectrum to exploit, many near-ties); the
  // threshold here is looser than on trained-like data.
  auto items = RandomMatrix(50000, 64, 31);
  ScorerOptions exact_options;
  exact_options.isa = GetParam();
  auto exact = MakeScorer(items, exact_options);
  auto quantized = MakeScorer(items, Options());
  double recall = 0.0;
  for (uint64_t u = 0; u < 100; ++u) {
    const auto q = RandomVector(64, 500 + u);
    recall += RecallAtK(quantized->TopK(q, 10, nullptr), exact->TopK(q, 10, nullptr));
  }
  recall /= 100.0;
  std::cout << "[ INFO     ] int8 recall@10, Gaussian 50000 x 64: " << recall << "\n";
  EXPECT_GE(recall, 0.95);
}

TEST_P(QuantizedScorerTest, ReRankedScoresAreExactAndThreadsDoNotChangeAnswers) {
  const TrainedLike t = MakeTrainedLike(40000, 10, 64, 3);
  ScorerOptions exact_options;
  exact_options.isa = GetParam();
  auto exact = MakeScorer(t.items, exact_options);
  auto one = MakeScorer(t.items, Options(1));
  auto two = MakeScorer(t.items, Options(2));
  ItemBitset ex(40000);
  for (size_t i = 0; i < 40000; i += 5) ex.Set(i);
  for (int u = 0; u < t.users->rows(); ++u) {
    const auto q = Row(*t.users, u);
    const auto got = one->TopK(q, 10, &ex);
    EXPECT_EQ(two->TopK(q, 10, &ex), got);
    ASSERT_EQ(got.size(), 10u);
    // Every returned score is the exact scorer's score for that item.
    const auto all = exact->TopK(q, 40000, nullptr);
    std::vector<float> exact_score(40000);
    for (const auto& s : all) exact_score[s.item] = s.score;
    for (const auto& s : got) {
      EXPECT_FALSE(ex.Test(s.item));
      EXPECT_EQ(s.score, exact_score[s.item]);
    }
  }
}

TEST_P(QuantizedScorerTest, SmallCataloguesAndEdgeCasesMatchExact) {
  // When every item is a re-rank candidate the answer is the exact one.
  for (int dim : {1, 3, 7, 17, 33, 65, 129}) {
    auto items = RandomMatrix(60, dim, dim);
    ScorerOptions exact_options;
    exact_options.isa = GetParam();
    auto exact = MakeScorer(items, exact_options);
    auto quantized = MakeScorer(items, Options());
    const auto q = RandomVector(dim, 2 * dim);
    ItemBitset ex(30);
    ex.Set(0);
    ex.Set(29);
    for (int k : {1, 10, 100}) {
      EXPECT_EQ(quantized->TopK(q, k, nullptr), exact->TopK(q, k, nullptr)) << dim << " " << k;
      EXPECT_EQ(quantized->TopK(q, k, &ex), exact->TopK(q, k, &ex)) << dim << " " << k;
    }
    ItemBitset all(60);
    all.SetAll();
    EXPECT_TRUE(quantized->TopK(q, 10, &all).empty());
    EXPECT_TRUE(quantized->TopK(q, 0, nullptr).empty());
  }
  // Zero rows, a zero column and a zero query.
  auto items = RandomMatrix(30, 4, 1);
  items->row(3).setZero();
  items->col(2).setZero();
  auto quantized = MakeScorer(items, Options());
  ScorerOptions exact_options;
  exact_options.isa = GetParam();
  auto exact = MakeScorer(items, exact_options);
  const std::vector<float> zero(4, 0.0f);
  EXPECT_EQ(quantized->TopK(zero, 5, nullptr), exact->TopK(zero, 5, nullptr));
  const auto q = RandomVector(4, 3);
  EXPECT_EQ(quantized->TopK(q, 30, nullptr), exact->TopK(q, 30, nullptr));
  EXPECT_THAT(quantized->Describe(), testing::StartsWith("int8/"));
}

INSTANTIATE_TEST_SUITE_P(AllLevels, QuantizedScorerTest,
                         testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                         [](const testing::TestParamInfo<Isa>& info) {
                           return IsaName(info.param);
                         });

// --- HNSW scorer -------------------------------------------------------------------------

ScorerOptions HnswOptions() {
  ScorerOptions o;
  o.kind = Kind::kHnsw;
  o.hnsw.exact_fallback_fraction = 1.0;  // always use the graph in these small tests
  return o;
}

TEST(HnswScorerTest, RecallAt10OnTrainedLikeEmbeddings) {
  const TrainedLike t = MakeTrainedLike(8000, 100, 32, 77);
  auto exact = MakeScorer(t.items);
  auto hnsw = MakeScorer(t.items, HnswOptions());
  EXPECT_THAT(hnsw->Describe(), testing::StartsWith("hnsw/"));
  double recall = 0.0;
  for (int u = 0; u < t.users->rows(); ++u) {
    const auto q = Row(*t.users, u);
    const auto got = hnsw->TopK(q, 10, nullptr);
    ASSERT_EQ(got.size(), 10u);
    for (size_t i = 1; i < got.size(); ++i) EXPECT_FALSE(BetterThan(got[i], got[i - 1]));
    recall += RecallAtK(got, exact->TopK(q, 10, nullptr));
  }
  recall /= static_cast<double>(t.users->rows());
  std::cout << "[ INFO     ] hnsw recall@10, trained-like 8000 x 32, ef_search=128: " << recall
            << "\n";
  EXPECT_GE(recall, 0.9);
}

TEST(HnswScorerTest, ExclusionKLargerThanCatalogueAndFallback) {
  const TrainedLike t = MakeTrainedLike(3000, 5, 16, 5);
  auto exact = MakeScorer(t.items);
  auto hnsw = MakeScorer(t.items, HnswOptions());
  const auto q = Row(*t.users, 0);
  // Exclude the exact top 50: results must skip them and still hold k items.
  ItemBitset seen(3000);
  for (const auto& s : exact->TopK(q, 50, nullptr)) seen.Set(s.item);
  const auto r = hnsw->TopK(q, 10, &seen);
  ASSERT_EQ(r.size(), 10u);
  for (const auto& s : r) EXPECT_FALSE(seen.Test(s.item));
  // k > N and everything excluded.
  EXPECT_EQ(hnsw->TopK(q, 5000, nullptr).size(), 3000u);
  ItemBitset all(3000);
  all.SetAll();
  EXPECT_TRUE(hnsw->TopK(q, 10, &all).empty());
  // Default fallback fraction: a deep query runs the exact scan and equals it.
  ScorerOptions defaults;
  defaults.kind = Kind::kHnsw;
  auto with_fallback = MakeScorer(t.items, defaults);
  EXPECT_EQ(with_fallback->TopK(q, 100, &seen), exact->TopK(q, 100, &seen));
  // The serial build (the default) is reproducible: same seed, same graph, same answers.
  auto again = MakeScorer(t.items, HnswOptions());
  for (int u = 0; u < t.users->rows(); ++u) {
    EXPECT_EQ(again->TopK(Row(*t.users, u), 10, nullptr), hnsw->TopK(Row(*t.users, u), 10, nullptr));
  }
  // Empty catalogue.
  auto empty = MakeScorer(std::make_shared<EmbeddingMatrix>(0, 16), HnswOptions());
  EXPECT_TRUE(empty->TopK(q, 10, nullptr).empty());
}

// --- Concurrency -------------------------------------------------------------------------

TEST(ScorerConcurrencyTest, ConcurrentQueriesMatchSequentialOnes) {
  // TopK / TopKBatch are const and may run from many threads at once (also with the scorer's
  // own partition threads underneath: 40k x 64 floats is split in two).
  const TrainedLike big = MakeTrainedLike(40000, 16, 64, 9);
  const TrainedLike small = MakeTrainedLike(4000, 16, 32, 10);
  struct Case {
    std::unique_ptr<ItemScorer> scorer;
    const EmbeddingMatrix* users;
    ItemBitset exclude;
    std::vector<std::vector<ScoredIndex>> want, want_batch;
  };
  std::vector<Case> cases;
  for (Kind kind : {Kind::kExact, Kind::kQuantizedInt8, Kind::kHnsw}) {
    const TrainedLike& t = kind == Kind::kHnsw ? small : big;
    ScorerOptions o;
    o.kind = kind;
    o.num_threads = 2;
    o.hnsw.exact_fallback_fraction = 1.0;
    Case c{MakeScorer(t.items, o), t.users.get(), ItemBitset(t.items->rows()), {}, {}};
    for (int i = 0; i < t.items->rows(); i += 97) c.exclude.Set(i);
    for (int u = 0; u < c.users->rows(); ++u) {
      c.want.push_back(c.scorer->TopK(Row(*c.users, u), 10, &c.exclude));
    }
    c.want_batch = c.scorer->TopKBatch(*c.users, 10, {});
    cases.push_back(std::move(c));
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int round = 0; round < 2; ++round) {
        for (const Case& c : cases) {
          for (int u = th; u < c.users->rows(); u += 4) {
            if (c.scorer->TopK(Row(*c.users, u), 10, &c.exclude) != c.want[u]) ++mismatches;
          }
          if (th == round && c.scorer->TopKBatch(*c.users, 10, {}) != c.want_batch) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// --- Creation ----------------------------------------------------------------------------

TEST(CreateItemScorerTest, RejectsNonFiniteEmbeddingsAndBadOptions) {
  for (Kind kind : {Kind::kExact, Kind::kQuantizedInt8, Kind::kHnsw}) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
      auto items = RandomMatrix(10, 4, 1);
      (*items)(7, 2) = bad;
      ScorerOptions o;
      o.kind = kind;
      auto s = CreateItemScorer(items, o);
      ASSERT_FALSE(s.ok());
      EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(s.status().message()), testing::HasSubstr("row 7, column 2"));
    }
  }
  EXPECT_EQ(CreateItemScorer(nullptr, {}).status().code(), absl::StatusCode::kInvalidArgument);
  auto items = RandomMatrix(10, 4, 1);
  auto expect_invalid = [&](ScorerOptions o, const std::string& field) {
    auto s = CreateItemScorer(items, o);
    ASSERT_FALSE(s.ok()) << field;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(std::string(s.status().message()), testing::HasSubstr(field));
  };
  ScorerOptions o;
  o.num_threads = 0;
  expect_invalid(o, "num_threads");
  o = {};
  o.quantized.rerank_factor = 0;
  expect_invalid(o, "quantized.rerank_factor");
  o = {};
  o.hnsw.m = 1;
  expect_invalid(o, "hnsw.m");
  o = {};
  o.hnsw.exact_fallback_fraction = std::numeric_limits<double>::quiet_NaN();
  expect_invalid(o, "hnsw.exact_fallback_fraction");
  if (!Supported(Isa::kAvx512)) {
    o = {};
    o.isa = Isa::kAvx512;
    expect_invalid(o, "isa");
  }
}

TEST(CreateItemScorerTest, WrongQueryLengthOrNonFiniteQueryReturnsNothing) {
  for (Kind kind : {Kind::kExact, Kind::kQuantizedInt8, Kind::kHnsw}) {
    ScorerOptions o;
    o.kind = kind;
    auto scorer = MakeScorer(RandomMatrix(10, 8, 1), o);
    EXPECT_TRUE(scorer->TopK(RandomVector(7, 1), 3, nullptr).empty());
    auto q = RandomVector(8, 1);
    q[2] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_TRUE(scorer->TopK(q, 3, nullptr).empty());
  }
}

TEST(ScorerIsaNameTest, NamesTheDefaultLevel) {
  EXPECT_EQ(ScorerIsaName(), kernels::IsaLevelName(kernels::DefaultIsaLevel()));
  EXPECT_THAT(ScorerIsaName(), testing::AnyOf("avx512", "avx2", "scalar"));
  auto scorer = MakeScorer(RandomMatrix(10, 8, 1));
  EXPECT_EQ(scorer->Describe(), absl::StrCat("exact/", ScorerIsaName(), "/threads=1"));
}

}  // namespace
}  // namespace recd
