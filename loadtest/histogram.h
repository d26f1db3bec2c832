// A log-linear ("HDR") latency histogram: every value from 0 to kMaxTrackable is counted in a
// bucket whose width is at most 1/2^kSubBucketBits of the value (0.8 % with 7 bits), so any
// percentile is reported within that relative error, whatever the spread of the data. Values
// are integers (recload records nanoseconds). Larger values are counted in the top bucket; the
// exact maximum and minimum are kept separately.
//
// Buckets: values below 2^b (b = kSubBucketBits) have one bucket each; above, each power-of-two
// range [2^e, 2^(e+1)) is split into 2^b equal buckets. This is HdrHistogram's layout with a
// fixed precision and no auto-resize.
//
// Not thread-safe: give each recording thread its own histogram and Merge() them.
#ifndef RECD_LOADTEST_HISTOGRAM_H_
#define RECD_LOADTEST_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace recd::loadtest {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;
  // 2^40 ns is about 18 minutes: far above any deadline recload uses.
  static constexpr int kMaxValueBits = 40;
  static constexpr uint64_t kMaxTrackable = (uint64_t{1} << kMaxValueBits) - 1;

  Histogram();

  // Counts `value` (clamped to kMaxTrackable for bucketing) `count` times.
  void Record(uint64_t value, uint64_t count = 1);
  // Adds every count of `other` (same layout by construction).
  void Merge(const Histogram& other);
  void Reset();

  uint64_t count() const { return total_; }
  // Exact extremes of the recorded values (0 when empty).
  uint64_t min() const { return total_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return total_ == 0 ? 0.0 : sum_ / static_cast<double>(total_); }

  // The value at quantile q in [0, 1]: the highest value equivalent to the bucket holding the
  // ceil(q * count)-th smallest sample (so never below the true quantile), capped at max().
  // q = 0 returns min(), q = 1 returns max(). 0 when empty.
  uint64_t ValueAtQuantile(double q) const;

  // Bucket layout, public for tests and for plotting the distribution.
  static size_t BucketIndex(uint64_t value);
  static uint64_t BucketLowest(size_t index);
  // Highest value mapping to bucket `index`.
  static uint64_t BucketHighest(size_t index);
  static size_t NumBuckets();

  struct Point {
    double quantile;  // fraction of samples <= value
    uint64_t value;
  };
  // The percentile distribution for a plot: for quantiles 0, 0.5, 0.75, 0.875, ... (halving the
  // remainder each time, `ticks_per_half` points per halving) up to the last sample.
  std::vector<Point> PercentileDistribution(int ticks_per_half = 4) const;

 private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  double sum_ = 0.0;
};

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_HISTOGRAM_H_
