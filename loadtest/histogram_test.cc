#include "loadtest/histogram.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace recd::loadtest {
namespace {

TEST(HistogramTest, BucketsAreContiguousAndNarrow) {
  // Every bucket starts right after the previous one ends, and its width is at most
  // 1/2^kSubBucketBits of its lowest value (the precision promise).
  const size_t n = Histogram::NumBuckets();
  for (size_t i = 1; i < n; ++i) {
    ASSERT_EQ(Histogram::BucketLowest(i), Histogram::BucketHighest(i - 1) + 1) << i;
    const uint64_t lo = Histogram::BucketLowest(i);
    const uint64_t width = Histogram::BucketHighest(i) - lo + 1;
    ASSERT_LE(static_cast<double>(width - 1), std::max(1.0, lo / 128.0)) << i;
  }
  EXPECT_EQ(Histogram::BucketHighest(n - 1), Histogram::kMaxTrackable);
}

TEST(HistogramTest, ValuesMapIntoTheirBucket) {
  for (uint64_t v : std::vector<uint64_t>{0, 1, 127, 128, 129, 255, 256, 1000, 123456789,
                                          (uint64_t{1} << 39) + 12345, Histogram::kMaxTrackable}) {
    const size_t b = Histogram::BucketIndex(v);
    EXPECT_LE(Histogram::BucketLowest(b), v) << v;
    EXPECT_GE(Histogram::BucketHighest(b), v) << v;
  }
  // Larger values are clamped into the last bucket.
  EXPECT_EQ(Histogram::BucketIndex(UINT64_MAX), Histogram::NumBuckets() - 1);
}

TEST(HistogramTest, EmptyHistogram) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.ValueAtQuantile(0.99), 0u);
  EXPECT_TRUE(h.PercentileDistribution().empty());
}

TEST(HistogramTest, QuantilesOfAUniformSequence) {
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);  // 1 us .. 100 ms in ns
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_EQ(h.max(), 100000000u);
  EXPECT_NEAR(h.mean(), 50000.5 * 1000, 1.0);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = q * 100000 * 1000;
    const double got = static_cast<double>(h.ValueAtQuantile(q));
    // Never below the true quantile, and within the bucket precision above it.
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(got, exact * (1 + 1.0 / 128) + 1000) << q;
  }
  EXPECT_EQ(h.ValueAtQuantile(1.0), 100000000u);
  EXPECT_EQ(h.ValueAtQuantile(0.0), 1000u);
}

TEST(HistogramTest, OutlierIsTheMaxAndOnlyMovesTheTail) {
  Histogram h;
  for (int i = 0; i < 999; ++i) h.Record(100000);  // 100 us
  h.Record(5000000000ull);                         // one 5 s stall
  EXPECT_LE(h.ValueAtQuantile(0.99), 100000u * 129 / 128);
  EXPECT_EQ(h.ValueAtQuantile(0.9999), 5000000000ull);
  EXPECT_EQ(h.max(), 5000000000ull);
}

TEST(HistogramTest, MergeEqualsRecordingEverything) {
  Histogram a;
  Histogram b;
  Histogram both;
  for (uint64_t v = 0; v < 5000; ++v) {
    (v % 3 == 0 ? a : b).Record(v * 777);
    both.Record(v * 777);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), both.count());
  EXPECT_EQ(a.min(), both.min());
  EXPECT_EQ(a.max(), both.max());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.ValueAtQuantile(q), both.ValueAtQuantile(q));
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.ValueAtQuantile(0.5), 0u);
}

TEST(HistogramTest, RecordWithCount) {
  Histogram h;
  h.Record(500, 10);
  h.Record(900, 0);  // no-op
  EXPECT_EQ(h.count(), 10u);
  EXPECT_EQ(h.max(), 500u);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 500u);
}

TEST(HistogramTest, PercentileDistributionIsMonotoneAndEndsAtMax) {
  Histogram h;
  for (uint64_t v = 1; v <= 10000; ++v) h.Record(v * v);
  const std::vector<Histogram::Point> points = h.PercentileDistribution(4);
  ASSERT_GE(points.size(), 10u);
  for (size_t i = 1; i < points.size(); ++i) {
    EXPECT_GE(points[i].quantile, points[i - 1].quantile);
    EXPECT_GE(points[i].value, points[i - 1].value);
  }
  EXPECT_EQ(points.front().quantile, 0.0);
  EXPECT_EQ(points.back().quantile, 1.0);
  EXPECT_EQ(points.back().value, h.max());
}

}  // namespace
}  // namespace recd::loadtest
