// Portable, explicitly specified random numbers for training and synthetic data.
//
// The standard distributions (std::uniform_real_distribution, std::normal_distribution, ...) are
// implementation-defined: the same seed gives different numbers under libstdc++ and libc++. Models
// and demo data must be reproducible from a seed on every platform, so everything here is built
// only on std::mt19937_64, whose output sequence the C++ standard fixes, plus arithmetic written
// out below.
//
// Not thread-safe: give each thread its own generator (e.g. seeded with SeedFor(seed, stream)).
#ifndef RECD_CORE_RANDOM_H_
#define RECD_CORE_RANDOM_H_

#include <cmath>
#include <cstdint>
#include <random>

namespace recd {

class PortableRng {
 public:
  explicit PortableRng(uint64_t seed) : engine_(seed) {}

  // Uniform 64-bit integer.
  uint64_t NextU64() { return engine_(); }

  // Uniform double in [0, 1): the top 53 bits of one draw, so every value is exact.
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  // Uniform double in (0, 1]: never zero, safe under log().
  double UniformPositive() { return static_cast<double>((engine_() >> 11) + 1) * 0x1.0p-53; }

  // Uniform integer in [0, n), n > 0. Lemire-style rejection keeps it exactly unbiased.
  uint64_t UniformInt(uint64_t n) {
    const uint64_t limit = (~uint64_t{0}) - (~uint64_t{0}) % n;  // largest multiple of n
    uint64_t x;
    do {
      x = engine_();
    } while (x >= limit);
    return x % n;
  }

  // True with probability p.
  bool Bernoulli(double p) { return Uniform() < p; }

  // Standard normal by the Box-Muller transform; the second value of each pair is cached.
  // Reproducible bit for bit under one C library; another libm may differ in the last bit of
  // std::log/std::sin/std::cos. (Code that must be identical everywhere, like the demo data,
  // uses only Uniform and arithmetic.)
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = UniformPositive();
    const double u2 = Uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * 3.14159265358979323846 * u2;
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return r * std::cos(theta);
  }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// Derives an independent seed for sub-stream `stream` of `seed` (SplitMix64 finaliser), so that
// e.g. per-thread or per-block generators do not depend on how many there are.
inline uint64_t SeedFor(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace recd

#endif  // RECD_CORE_RANDOM_H_
