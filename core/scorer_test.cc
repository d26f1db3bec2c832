#include "core/scorer.h"

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

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

std::unique_ptr<ItemScorer> MakeScorer(std::shared_ptr<const EmbeddingMatrix> items,
                                       ScorerOptions options = {}) {
  auto s = CreateItemScorer(std::move(items), options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

// Fast kernels sum in a different order than the reference, so near-ties may swap. Checks that
// the result is sorted, has the reference's length, scores match position by position within
// `tol`, and every returned item is a true top-k item up to `tol`.
void ExpectMatchesReference(const std::vector<ScoredIndex>& got,
                            const std::vector<ScoredIndex>& ref, float tol,
                            const ItemBitset* exclude = nullptr) {
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].score, ref[i].score, tol) << "position " << i;
    if (i > 0) {
      EXPECT_FALSE(BetterThan(got[i], got[i - 1])) << "unsorted at " << i;
    }
    if (exclude != nullptr) {
      EXPECT_FALSE(exclude->Test(got[i].item)) << got[i].item;
    }
  }
  if (!ref.empty()) {
    const float kth = ref.back().score;
    for (const ScoredIndex& s : got) EXPECT_GE(s.score, kth - tol) << "item " << s.item;
  }
}

float Tolerance(int dim) { return 1e-5f * static_cast<float>(dim) + 1e-5f; }

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

TEST(ScorerTest, MatchesReferenceOverAwkwardDimsAndSizes) {
  for (int dim : {1, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129}) {
    for (int n : {1, 5, 64, 257, 1000}) {
      auto items = RandomMatrix(n, dim, 1000 * dim + n);
      auto scorer = MakeScorer(items);
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

TEST(ScorerTest, EqualScoresOrderedByLowerIndex) {
  // Integer entries: every kernel computes exact sums, so ties are real ties.
  auto items = std::make_shared<EmbeddingMatrix>(300, 4);
  for (int i = 0; i < 300; ++i) items->row(i) << (i % 3), 1, -(i % 2), 2;
  const std::vector<float> q = {1, 1, 1, 1};
  auto scorer = MakeScorer(items);
  for (int k : {1, 7, 50, 300}) {
    EXPECT_EQ(scorer->TopK(q, k, nullptr), ReferenceTopK(*items, q, k, nullptr)) << k;
  }
  auto top = scorer->TopK(q, 3, nullptr);
  ASSERT_EQ(top.size(), 3u);
  // Rows with i%3==2 and i even score 5: items 2, 8, 14.
  EXPECT_EQ(top[0].item, 2u);
  EXPECT_EQ(top[1].item, 8u);
  EXPECT_EQ(top[2].item, 14u);
}

TEST(ScorerTest, KLargerThanCatalogueReturnsAllRemaining) {
  auto items = RandomMatrix(20, 8, 1);
  auto scorer = MakeScorer(items);
  const auto q = RandomVector(8, 2);
  EXPECT_EQ(scorer->TopK(q, 1000, nullptr).size(), 20u);
  ItemBitset ex(20);
  ex.Set(3);
  ex.Set(19);
  auto r = scorer->TopK(q, 1000, &ex);
  EXPECT_EQ(r.size(), 18u);
  ExpectMatchesReference(r, ReferenceTopK(*items, q, 1000, &ex), Tolerance(8), &ex);
}

TEST(ScorerTest, NonPositiveKReturnsNothing) {
  auto items = RandomMatrix(20, 8, 1);
  auto scorer = MakeScorer(items);
  const auto q = RandomVector(8, 2);
  EXPECT_TRUE(scorer->TopK(q, 0, nullptr).empty());
  EXPECT_TRUE(scorer->TopK(q, -5, nullptr).empty());
}

TEST(ScorerTest, ExclusionShorterThanCatalogueAndRemovingEverything) {
  auto items = RandomMatrix(500, 16, 3);
  auto scorer = MakeScorer(items);
  const auto q = RandomVector(16, 4);

  ItemBitset all(500);
  all.SetAll();
  EXPECT_TRUE(scorer->TopK(q, 10, &all).empty());

  ItemBitset shorter(100);  // items >= 100 are never excluded
  shorter.SetAll();
  auto r = scorer->TopK(q, 10, &shorter);
  ExpectMatchesReference(r, ReferenceTopK(*items, q, 10, &shorter), Tolerance(16), &shorter);
  for (const auto& s : r) EXPECT_GE(s.item, 100u);

  // Exclude the unfiltered winners: the next ones come up.
  auto best = scorer->TopK(q, 5, nullptr);
  ItemBitset seen(500);
  for (const auto& s : best) seen.Set(s.item);
  auto next = scorer->TopK(q, 5, &seen);
  ExpectMatchesReference(next, ReferenceTopK(*items, q, 5, &seen), Tolerance(16), &seen);

  ItemBitset empty;
  ExpectMatchesReference(scorer->TopK(q, 5, &empty), ReferenceTopK(*items, q, 5, nullptr),
                         Tolerance(16));
}

TEST(ScorerTest, EmptyCatalogue) {
  auto scorer = MakeScorer(std::make_shared<EmbeddingMatrix>(0, 8));
  EXPECT_TRUE(scorer->TopK(RandomVector(8, 1), 10, nullptr).empty());
}

TEST(ScorerTest, WrongQueryLengthOrNonFiniteQueryReturnsNothing) {
  auto scorer = MakeScorer(RandomMatrix(10, 8, 1));
  EXPECT_TRUE(scorer->TopK(RandomVector(7, 1), 3, nullptr).empty());
  auto q = RandomVector(8, 1);
  q[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(scorer->TopK(q, 3, nullptr).empty());
}

TEST(ScorerTest, RejectsNonFiniteEmbeddingsAndBadOptions) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    auto items = RandomMatrix(10, 4, 1);
    (*items)(7, 2) = bad;
    auto s = CreateItemScorer(items, {});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.status().message()), testing::HasSubstr("row 7, column 2"));
  }
  EXPECT_EQ(CreateItemScorer(nullptr, {}).status().code(), absl::StatusCode::kInvalidArgument);
  ScorerOptions opts;
  opts.num_threads = 0;
  EXPECT_EQ(CreateItemScorer(RandomMatrix(10, 4, 1), opts).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ScorerTest, BatchMatchesSingleQueries) {
  auto items = RandomMatrix(700, 33, 5);
  auto scorer = MakeScorer(items);
  auto queries = RandomMatrix(9, 33, 6);
  ItemBitset ex(700);
  for (int i = 0; i < 700; i += 3) ex.Set(i);
  std::vector<const ItemBitset*> excludes(9, nullptr);
  excludes[2] = &ex;
  excludes[5] = &ex;
  for (int k : {1, 10, 1000}) {
    auto batch = scorer->TopKBatch(*queries, k, excludes);
    auto plain = scorer->TopKBatch(*queries, k, {});
    ASSERT_EQ(batch.size(), 9u);
    ASSERT_EQ(plain.size(), 9u);
    for (int r = 0; r < 9; ++r) {
      SCOPED_TRACE(testing::Message() << "row=" << r << " k=" << k);
      std::vector<float> q(queries->row(r).data(), queries->row(r).data() + 33);
      ExpectMatchesReference(batch[r], ReferenceTopK(*items, q, k, excludes[r]), Tolerance(33),
                             excludes[r]);
      ExpectMatchesReference(plain[r], ReferenceTopK(*items, q, k, nullptr), Tolerance(33));
    }
  }
  EXPECT_TRUE(scorer->TopKBatch(EmbeddingMatrix(0, 33), 10, {}).empty());
}

TEST(ScorerTest, IsaNameIsKnown) {
  EXPECT_THAT(ScorerIsaName(), testing::AnyOf("avx512", "avx2", "scalar"));
}

}  // namespace
}  // namespace recd
