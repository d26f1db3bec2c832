#include "core/diversity.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::ElementsAre;

// Six items on two directions: 0,1,2 point along x (near-duplicates), 3,4 along y, 5 along -x.
EmbeddingMatrix Planted() {
  EmbeddingMatrix m(6, 2);
  m << 1, 0, 0.99f, 0.141f, 0.98f, 0.199f, 0, 1, 0.141f, 0.99f, -1, 0;
  for (int r = 0; r < m.rows(); ++r) m.row(r).normalize();
  return m;
}

std::vector<ScoredIndex> Candidates() { return {{5, 0}, {4.9f, 1}, {4.8f, 2}, {4.0f, 3}, {3.9f, 4}, {1, 5}}; }

std::vector<ItemIndex> Items(const std::vector<ScoredIndex>& c, const std::vector<size_t>& order) {
  std::vector<ItemIndex> out;
  for (size_t i : order) out.push_back(c[i].item);
  return out;
}

const std::vector<uint32_t> kCategories[] = {{0}, {0}, {0}, {1}, {1}, {2}};
absl::Span<const uint32_t> CategoryOf(ItemIndex item) { return kCategories[item]; }

TEST(DiversityTest, LambdaZeroKeepsTheOrder) {
  auto c = Candidates();
  EXPECT_THAT(Items(c, DiversifiedOrder(c, Planted(), {}, CategoryOf, 6)), ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_THAT(Items(c, DiversifiedOrder(c, Planted(), {}, CategoryOf, 2)), ElementsAre(0, 1));
}

TEST(DiversityTest, MmrInterleavesDirections) {
  auto c = Candidates();
  DiversityParams p;
  // rel = (score - 1) / 4 = 1, .975, .95, .75, .725, 0. After item 0, at lambda 0.3:
  //   1: .7*.975 - .3*.99 = .386   3: .7*.75 = .525   4: .7*.725 - .3*.141 = .465   5: 0
  // so 3; then 1 (.386) beats 2 (.371) and 4 (.7*.725 - .3*.99 = .210).
  p.mmr_lambda = 0.3f;
  EXPECT_THAT(Items(c, DiversifiedOrder(c, Planted(), p, CategoryOf, 3)), ElementsAre(0, 3, 1));
  // At lambda 0.5 the duplicates go negative (1: .4875 - .495) and item 5 (opposite direction,
  // cosine clipped at 0, value 0) comes third despite its low score.
  p.mmr_lambda = 0.5f;
  EXPECT_THAT(Items(c, DiversifiedOrder(c, Planted(), p, CategoryOf, 3)), ElementsAre(0, 3, 5));
}

TEST(DiversityTest, PrefixConsistent) {
  auto c = Candidates();
  DiversityParams p;
  p.mmr_lambda = 0.6f;
  const std::vector<size_t> all = DiversifiedOrder(c, Planted(), p, CategoryOf, 6);
  ASSERT_EQ(all.size(), 6u);
  for (size_t n = 1; n <= 6; ++n) {
    std::vector<size_t> prefix = DiversifiedOrder(c, Planted(), p, CategoryOf, n);
    EXPECT_EQ(prefix, std::vector<size_t>(all.begin(), all.begin() + n));
  }
}

TEST(DiversityTest, CategoryCap) {
  auto c = Candidates();
  DiversityParams p;
  p.max_per_category = 1;
  EXPECT_THAT(Items(c, DiversifiedOrder(c, Planted(), p, CategoryOf, 6)), ElementsAre(0, 3, 5));
  p.max_per_category = 2;
  EXPECT_THAT(Items(c, DiversifiedOrder(c, Planted(), p, CategoryOf, 6)), ElementsAre(0, 1, 3, 4, 5));
}

TEST(DiversityTest, ItemsWithoutVectorsAndEmptyInput) {
  std::vector<ScoredIndex> c = {{3, 0}, {2, 9}, {1, 1}};  // item 9 has no row
  DiversityParams p;
  p.mmr_lambda = 0.5f;
  EXPECT_THAT(Items(c, DiversifiedOrder(c, Planted(), p, [](ItemIndex) { return absl::Span<const uint32_t>(); }, 3)),
              ElementsAre(0, 9, 1));
  EXPECT_TRUE(DiversifiedOrder({}, Planted(), p, CategoryOf, 3).empty());
}

}  // namespace
}  // namespace recd
