#include "loadtest/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace recd::loadtest {
namespace {

constexpr uint64_t kSubBuckets = uint64_t{1} << Histogram::kSubBucketBits;
constexpr uint64_t kSubMask = kSubBuckets - 1;

}  // namespace

Histogram::Histogram() : counts_(NumBuckets(), 0) {}

size_t Histogram::NumBuckets() {
  return BucketIndex(kMaxTrackable) + 1;
}

size_t Histogram::BucketIndex(uint64_t value) {
  if (value > kMaxTrackable) value = kMaxTrackable;
  if (value < kSubBuckets) return static_cast<size_t>(value);
  const int msb = 63 - std::countl_zero(value);
  const int shift = msb - kSubBucketBits;
  // Group g >= 1 covers [2^(b+g-1), 2^(b+g)) in 2^b buckets of width 2^(g-1).
  return static_cast<size_t>((static_cast<uint64_t>(shift + 1) << kSubBucketBits) |
                             ((value >> shift) & kSubMask));
}

uint64_t Histogram::BucketLowest(size_t index) {
  if (index < kSubBuckets) return index;
  const uint64_t group = index >> kSubBucketBits;
  const uint64_t sub = index & kSubMask;
  return (kSubBuckets | sub) << (group - 1);
}

uint64_t Histogram::BucketHighest(size_t index) {
  if (index < kSubBuckets) return index;
  const uint64_t group = index >> kSubBucketBits;
  return BucketLowest(index) + (uint64_t{1} << (group - 1)) - 1;
}

void Histogram::Record(uint64_t value, uint64_t count) {
  if (count == 0) return;
  counts_[BucketIndex(value)] += count;
  total_ += count;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<double>(value) * static_cast<double>(count);
}

void Histogram::Merge(const Histogram& other) {
  if (other.total_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void Histogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0.0;
}

uint64_t Histogram::ValueAtQuantile(double q) const {
  if (total_ == 0) return 0;
  if (q <= 0.0) return min();
  if (q >= 1.0) return max_;
  // The rank of the sample at quantile q (1-based), at least 1.
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
  rank = std::clamp<uint64_t>(rank, 1, total_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(BucketHighest(i), min(), max_);
  }
  return max_;
}

std::vector<Histogram::Point> Histogram::PercentileDistribution(int ticks_per_half) const {
  std::vector<Point> points;
  if (total_ == 0) return points;
  ticks_per_half = std::max(1, ticks_per_half);
  // Quantiles 1 - 2^(-j / ticks_per_half) until fewer than one sample remains above.
  const double last = 1.0 - 1.0 / static_cast<double>(total_);
  for (int j = 0;; ++j) {
    const double q = 1.0 - std::pow(2.0, -static_cast<double>(j) / ticks_per_half);
    if (q > last) break;
    points.push_back({q, ValueAtQuantile(q)});
    if (j > 64 * ticks_per_half) break;
  }
  points.push_back({1.0, max_});
  return points;
}

}  // namespace recd::loadtest
