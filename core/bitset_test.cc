#include "core/bitset.h"

#include "gtest/gtest.h"

namespace recd {
namespace {

TEST(ItemBitsetTest, SetTestClearAndOutOfRange) {
  ItemBitset b(130);
  EXPECT_EQ(b.size(), 130u);
  EXPECT_EQ(b.num_words(), 3u);
  b.Set(0);
  b.Set(63);
  b.Set(64);
  b.Set(129);
  b.Set(130);   // out of range: ignored
  b.Set(1000);  // out of range: ignored
  EXPECT_TRUE(b.Test(0));
  EXPECT_TRUE(b.Test(63));
  EXPECT_TRUE(b.Test(64));
  EXPECT_TRUE(b.Test(129));
  EXPECT_FALSE(b.Test(1));
  EXPECT_FALSE(b.Test(130));
  EXPECT_FALSE(b.Test(1000));
  EXPECT_EQ(b.Count(), 4u);
  b.Clear(63);
  b.Clear(5000);
  EXPECT_FALSE(b.Test(63));
  EXPECT_EQ(b.Count(), 3u);
}

TEST(ItemBitsetTest, EmptyBitset) {
  ItemBitset b;
  EXPECT_EQ(b.size(), 0u);
  EXPECT_FALSE(b.Test(0));
  b.SetAll();
  EXPECT_EQ(b.Count(), 0u);
}

TEST(ItemBitsetTest, SetAllKeepsBitsPastSizeClear) {
  for (size_t n : {1u, 63u, 64u, 65u, 127u, 128u, 200u}) {
    ItemBitset b(n);
    b.SetAll();
    EXPECT_EQ(b.Count(), n) << n;
    EXPECT_FALSE(b.Test(n)) << n;
    b.ClearAll();
    EXPECT_EQ(b.Count(), 0u) << n;
  }
}

TEST(ItemBitsetTest, ResizeGrowsWithClearBitsAndNeverShrinks) {
  ItemBitset b(10);
  b.SetAll();
  b.Resize(100);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_EQ(b.Count(), 10u);
  EXPECT_FALSE(b.Test(10));
  EXPECT_FALSE(b.Test(70));
  b.Set(99);
  b.Resize(5);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_TRUE(b.Test(99));
}

TEST(ItemBitsetTest, UnionIntersectSubtractOverCommonPrefix) {
  ItemBitset a(100), b(70);
  a.Set(1);
  a.Set(65);
  a.Set(90);
  b.Set(1);
  b.Set(2);
  b.Set(69);

  ItemBitset u = a;
  u.UnionWith(b);
  EXPECT_TRUE(u.Test(1));
  EXPECT_TRUE(u.Test(2));
  EXPECT_TRUE(u.Test(65));
  EXPECT_TRUE(u.Test(69));
  EXPECT_TRUE(u.Test(90));
  EXPECT_EQ(u.Count(), 5u);

  ItemBitset i = a;
  i.IntersectWith(b);
  EXPECT_TRUE(i.Test(1));
  EXPECT_EQ(i.Count(), 1u);  // 90 lies past b's words and is cleared

  ItemBitset s = a;
  s.Subtract(b);
  EXPECT_FALSE(s.Test(1));
  EXPECT_TRUE(s.Test(65));
  EXPECT_TRUE(s.Test(90));
  EXPECT_EQ(s.Count(), 2u);
}

TEST(ItemBitsetTest, UnionWithLongerBitsetDoesNotSetBitsPastSize) {
  ItemBitset small(10), big(128);
  big.SetAll();
  small.UnionWith(big);
  EXPECT_EQ(small.Count(), 10u);
  EXPECT_EQ(small.size(), 10u);
}

}  // namespace
}  // namespace recd
