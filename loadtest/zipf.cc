#include "loadtest/zipf.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace recd::loadtest {

uint64_t StreamSeed(uint64_t seed, uint64_t stream) {
  Rng mix(seed ^ (0xD1B54A32D192ED03ull * (stream + 1)));
  mix.NextU64();
  return mix.NextU64();
}

ZipfSampler::ZipfSampler(uint64_t n, double s, bool scramble, uint64_t permutation_seed)
    : n_(std::max<uint64_t>(n, 1)), s_(std::max(s, 0.0)) {
  cdf_.resize(n_);
  // Sum small terms first would be more exact; in double the difference is far below what a
  // load test can observe, so a forward running sum is enough.
  double sum = 0.0;
  for (uint64_t r = 0; r < n_; ++r) {
    sum += s_ == 0.0 ? 1.0 : std::pow(static_cast<double>(r + 1), -s_);
    cdf_[r] = sum;
  }
  for (double& c : cdf_) c /= sum;
  cdf_.back() = 1.0;
  if (scramble && n_ > 1) {
    permutation_.resize(n_);
    std::iota(permutation_.begin(), permutation_.end(), 0u);
    Rng rng(StreamSeed(permutation_seed, 0x5A5A));
    for (uint64_t i = n_ - 1; i > 0; --i) {  // Fisher-Yates
      std::swap(permutation_[i], permutation_[rng.UniformInt(i + 1)]);
    }
  }
}

uint64_t ZipfSampler::SampleRank(Rng& rng) const {
  const double u = rng.Uniform();
  // First rank whose cumulative probability exceeds u.
  const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  return it == cdf_.end() ? n_ - 1 : static_cast<uint64_t>(it - cdf_.begin());
}

double ZipfSampler::RankProbability(uint64_t rank) const {
  if (rank >= n_) return 0.0;
  return rank == 0 ? cdf_[0] : cdf_[rank] - cdf_[rank - 1];
}

}  // namespace recd::loadtest
