// Random numbers for load generation: a small fast generator and a Zipf sampler over ids.
//
// Everything is specified here (no std:: distributions, whose output differs between standard
// libraries), so a seed gives the same workload on every platform.
#ifndef RECD_LOADTEST_ZIPF_H_
#define RECD_LOADTEST_ZIPF_H_

#include <cstdint>
#include <vector>

namespace recd::loadtest {

// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit add and a mix per draw. Not thread-safe:
// one per thread, seeded with StreamSeed(seed, thread).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t NextU64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), 53 bits.
  double Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n), n > 0 (multiply-shift; bias below 2^-32 for the n recload uses).
  uint64_t UniformInt(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(NextU64()) * n) >> 64);
  }

 private:
  uint64_t state_;
};

// An independent seed for stream `stream` of a run seeded with `seed`.
uint64_t StreamSeed(uint64_t seed, uint64_t stream);

// Draws ids in [0, n) with P(rank r) proportional to 1 / (r + 1)^s (rank 0 the most popular).
// s = 0 is uniform. Ranks are mapped to ids through a fixed pseudo-random permutation (seeded by
// `permutation_seed`) unless `scramble` is false, so popular ids are spread over the id space
// as in real traffic, not clustered at the low ids.
//
// Exact: a cumulative table of n doubles (8 bytes per id) searched by bisection, O(log n) per
// draw. Immutable after construction; Sample may be called from many threads, each with its
// own Rng.
class ZipfSampler {
 public:
  // n >= 1, s >= 0 (checked by the caller; s is clamped at 0).
  ZipfSampler(uint64_t n, double s, bool scramble = true, uint64_t permutation_seed = 1);

  uint64_t Sample(Rng& rng) const { return IdOfRank(SampleRank(rng)); }
  // The popularity rank drawn (0 = most popular), before the permutation.
  uint64_t SampleRank(Rng& rng) const;
  uint64_t IdOfRank(uint64_t rank) const { return permutation_.empty() ? rank : permutation_[rank]; }
  // Probability of rank r.
  double RankProbability(uint64_t rank) const;

  uint64_t n() const { return n_; }
  double s() const { return s_; }

 private:
  uint64_t n_;
  double s_;
  std::vector<double> cdf_;              // cdf_[r] = P(rank <= r); cdf_[n-1] = 1
  std::vector<uint32_t> permutation_;    // rank -> id; empty = identity
};

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_ZIPF_H_
