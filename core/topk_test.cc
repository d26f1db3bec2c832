#include "core/topk.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace recd {
namespace {

std::vector<ScoredIndex> Sorted(std::vector<ScoredIndex> v) {
  std::sort(v.begin(), v.end(), BetterThan);
  return v;
}

TEST(TopKHeapTest, KeepsTheBestWithTiesToTheLowerItemAndNanAsMinusInfinity) {
  TopKHeap heap(3);
  EXPECT_TRUE(std::isnan(heap.threshold()));
  heap.Push(1.0f, 7);
  heap.Push(std::numeric_limits<float>::quiet_NaN(), 0);
  heap.Push(2.0f, 9);
  EXPECT_EQ(heap.threshold(), -std::numeric_limits<float>::infinity());
  heap.Push(2.0f, 4);  // ties 9 on score and wins on item, evicts the NaN
  heap.Push(1.0f, 8);  // ties the worst kept (1.0, 7) and loses on item
  EXPECT_EQ(heap.threshold(), 1.0f);
  const std::vector<ScoredIndex> top = heap.TakeSorted();
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].item, 4u);
  EXPECT_EQ(top[1].item, 9u);
  EXPECT_EQ(top[2].item, 7u);
  EXPECT_EQ(heap.size(), 0u);
}

TEST(TopKHeapTest, ZeroCapacityKeepsNothing) {
  TopKHeap heap(0);
  EXPECT_EQ(heap.threshold(), std::numeric_limits<float>::infinity());
  heap.Push(5.0f, 1);
  EXPECT_TRUE(heap.TakeSorted().empty());
}

// Merging per-part heaps gives what one heap over every candidate gives, for any cut into parts,
// including parts with fewer candidates than k and many equal scores.
TEST(MergeTopKTest, EqualsOneHeapOverAllCandidates) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const size_t k = 1 + rng() % 12;
    const size_t n = rng() % 60;
    const size_t parts = 1 + rng() % 4;
    std::vector<ScoredIndex> all(n);
    for (size_t i = 0; i < n; ++i) {
      all[i] = {static_cast<float>(rng() % 8), static_cast<ItemIndex>(i)};
    }
    TopKHeap whole(k);
    std::vector<TopKHeap> heaps(parts, TopKHeap(k));
    for (const ScoredIndex& s : all) {
      whole.Push(s.score, s.item);
      heaps[rng() % parts].Push(s.score, s.item);
    }
    const std::vector<ScoredIndex> expected = whole.TakeSorted();
    const std::vector<ScoredIndex> merged =
        MergeTopK(k, parts, [&](size_t p) -> TopKHeap& { return heaps[p]; });
    ASSERT_EQ(merged.size(), expected.size()) << "trial " << trial;
    for (size_t i = 0; i < merged.size(); ++i) {
      EXPECT_EQ(merged[i].item, expected[i].item) << "trial " << trial << " rank " << i;
      EXPECT_EQ(merged[i].score, expected[i].score);
    }
    std::vector<ScoredIndex> best = Sorted(all);
    best.resize(std::min(k, n));
    EXPECT_EQ(expected, best) << "trial " << trial;
    for (const TopKHeap& h : heaps) EXPECT_EQ(h.size(), 0u);
  }
}

}  // namespace
}  // namespace recd
