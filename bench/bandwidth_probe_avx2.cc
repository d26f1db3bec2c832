// AVX2 read loop for the bandwidth probe; compiled with -mavx2, called only after CPUID.
// Includes nothing with inline functions shared with other TUs (see core/kernels/kernels.h).
#include <immintrin.h>

#include <cstddef>

namespace recd {
namespace bench {

float StreamSumAvx2(const float* data, size_t n) {
  // Four accumulators x 8 lanes: two 32-byte loads per cycle are never waiting on an add.
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(data + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(data + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(data + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(data + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float s = 0.0f;
  for (float x : lanes) s += x;
  for (; i < n; ++i) s += data[i];
  return s;
}

}  // namespace bench
}  // namespace recd
