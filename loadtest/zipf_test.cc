#include "loadtest/zipf.h"

#include <cmath>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace recd::loadtest {
namespace {

TEST(RngTest, DeterministicAndInRange) {
  Rng a(42);
  Rng b(42);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = a.NextU64();
    EXPECT_EQ(x, b.NextU64());
  }
  Rng r(7);
  for (int i = 0; i < 10000; ++i) {
    const double u = r.Uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    EXPECT_LT(r.UniformInt(13), 13u);
  }
  EXPECT_NE(StreamSeed(1, 0), StreamSeed(1, 1));
  EXPECT_NE(StreamSeed(1, 0), StreamSeed(2, 0));
}

TEST(ZipfTest, ProbabilitiesFollowThePowerLaw) {
  const ZipfSampler z(1000, 1.2, /*scramble=*/false);
  double sum = 0;
  for (uint64_t r = 0; r < 1000; ++r) sum += z.RankProbability(r);
  EXPECT_NEAR(sum, 1.0, 1e-9);
  for (uint64_t r : {1u, 9u, 99u, 999u}) {
    EXPECT_NEAR(z.RankProbability(r) / z.RankProbability(0), std::pow(r + 1.0, -1.2), 1e-9) << r;
  }
  EXPECT_EQ(z.RankProbability(1000), 0.0);
}

TEST(ZipfTest, ExponentZeroIsUniform) {
  const ZipfSampler z(50, 0.0, false);
  for (uint64_t r = 0; r < 50; ++r) EXPECT_NEAR(z.RankProbability(r), 0.02, 1e-12);
}

TEST(ZipfTest, SampleFrequenciesMatch) {
  // A fixed seed makes this exact and repeatable; the tolerance is ~5 standard deviations.
  const ZipfSampler z(100, 1.0, false);
  Rng rng(123);
  const int n = 200000;
  std::vector<int> counts(100, 0);
  for (int i = 0; i < n; ++i) {
    const uint64_t r = z.SampleRank(rng);
    ASSERT_LT(r, 100u);
    ++counts[r];
  }
  for (uint64_t r : {0u, 1u, 4u, 20u, 99u}) {
    const double p = z.RankProbability(r);
    const double sd = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(counts[r], n * p, 5 * sd + 1) << r;
  }
}

TEST(ZipfTest, PermutationIsABijectionAndSeeded) {
  const ZipfSampler a(1000, 1.0, true, 5);
  const ZipfSampler b(1000, 1.0, true, 5);
  const ZipfSampler c(1000, 1.0, true, 6);
  std::set<uint64_t> ids;
  bool differs = false;
  for (uint64_t r = 0; r < 1000; ++r) {
    ids.insert(a.IdOfRank(r));
    EXPECT_EQ(a.IdOfRank(r), b.IdOfRank(r));
    differs |= a.IdOfRank(r) != c.IdOfRank(r);
  }
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(*ids.rbegin(), 999u);
  EXPECT_TRUE(differs);
  // Unscrambled: the identity.
  const ZipfSampler plain(10, 1.0, false);
  for (uint64_t r = 0; r < 10; ++r) EXPECT_EQ(plain.IdOfRank(r), r);
}

TEST(ZipfTest, SingleId) {
  const ZipfSampler z(1, 1.0);
  Rng rng(1);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(z.Sample(rng), 0u);
}

}  // namespace
}  // namespace recd::loadtest
