#include "core/sgemm.h"

#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "Eigen/Core"

namespace recd {
namespace {

// A(i, p) = a[i * ars + p * acs]: (lda, 1) for row-major A, (1, lda) for transposed storage.
using SgemmFn = void (*)(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*,
                         int64_t, float*, int64_t, bool);

void SgemmPortable(int64_t m, int64_t n, int64_t k, const float* a, int64_t ars, int64_t acs,
                   const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  using AnyStride = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  // Row-major map: outer stride between rows (ars), inner stride between columns (acs).
  const Eigen::Map<const RowMat, 0, AnyStride> am(a, m, k, AnyStride(ars, acs));
  const Eigen::Map<const RowMat, 0, Stride> bm(b, k, n, Stride(ldb));
  Eigen::Map<RowMat, 0, Stride> cm(c, m, n, Stride(ldc));
  if (accumulate) {
    cm.noalias() += am * bm;
  } else {
    cm.noalias() = am * bm;
  }
}

// --- AVX2 + FMA ------------------------------------------------------------------------------
// R rows x 16 (or 8) columns of C per call, in registers: 2R accumulators + 2 rows of B + 1
// broadcast. B is read in place (row-major, 16 consecutive floats per k), A one scalar per row
// and k. The accumulators are named variables, not an array: GCC keeps an array of __m256 in
// memory and stores it back after every FMA (measured: the 6-row kernel ran at a third of its
// speed). Everything below is plain C with intrinsics and internal linkage: nothing here is
// shared with code compiled for the baseline ISA.

__attribute__((target("avx2,fma"))) inline void Block16x6(int64_t k, const float* a, int64_t ars,
                                                          int64_t acs, const float* b, int64_t ldb,
                                                          float* c, int64_t ldc, bool accumulate) {
  __m256 l0, h0, l1, h1, l2, h2, l3, h3, l4, h4, l5, h5;
  if (accumulate) {
    l0 = _mm256_loadu_ps(c), h0 = _mm256_loadu_ps(c + 8);
    l1 = _mm256_loadu_ps(c + ldc), h1 = _mm256_loadu_ps(c + ldc + 8);
    l2 = _mm256_loadu_ps(c + 2 * ldc), h2 = _mm256_loadu_ps(c + 2 * ldc + 8);
    l3 = _mm256_loadu_ps(c + 3 * ldc), h3 = _mm256_loadu_ps(c + 3 * ldc + 8);
    l4 = _mm256_loadu_ps(c + 4 * ldc), h4 = _mm256_loadu_ps(c + 4 * ldc + 8);
    l5 = _mm256_loadu_ps(c + 5 * ldc), h5 = _mm256_loadu_ps(c + 5 * ldc + 8);
  } else {
    l0 = h0 = l1 = h1 = l2 = h2 = l3 = h3 = l4 = h4 = l5 = h5 = _mm256_setzero_ps();
  }
  const float* a0 = a;
  const float* a1 = a + ars;
  const float* a2 = a + 2 * ars;
  const float* a3 = a + 3 * ars;
  const float* a4 = a + 4 * ars;
  const float* a5 = a + 5 * ars;
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * ldb);
    const __m256 b1 = _mm256_loadu_ps(b + p * ldb + 8);
    const int64_t o = p * acs;
    __m256 av = _mm256_broadcast_ss(a0 + o);
    l0 = _mm256_fmadd_ps(av, b0, l0), h0 = _mm256_fmadd_ps(av, b1, h0);
    av = _mm256_broadcast_ss(a1 + o);
    l1 = _mm256_fmadd_ps(av, b0, l1), h1 = _mm256_fmadd_ps(av, b1, h1);
    av = _mm256_broadcast_ss(a2 + o);
    l2 = _mm256_fmadd_ps(av, b0, l2), h2 = _mm256_fmadd_ps(av, b1, h2);
    av = _mm256_broadcast_ss(a3 + o);
    l3 = _mm256_fmadd_ps(av, b0, l3), h3 = _mm256_fmadd_ps(av, b1, h3);
    av = _mm256_broadcast_ss(a4 + o);
    l4 = _mm256_fmadd_ps(av, b0, l4), h4 = _mm256_fmadd_ps(av, b1, h4);
    av = _mm256_broadcast_ss(a5 + o);
    l5 = _mm256_fmadd_ps(av, b0, l5), h5 = _mm256_fmadd_ps(av, b1, h5);
  }
  _mm256_storeu_ps(c, l0), _mm256_storeu_ps(c + 8, h0);
  _mm256_storeu_ps(c + ldc, l1), _mm256_storeu_ps(c + ldc + 8, h1);
  _mm256_storeu_ps(c + 2 * ldc, l2), _mm256_storeu_ps(c + 2 * ldc + 8, h2);
  _mm256_storeu_ps(c + 3 * ldc, l3), _mm256_storeu_ps(c + 3 * ldc + 8, h3);
  _mm256_storeu_ps(c + 4 * ldc, l4), _mm256_storeu_ps(c + 4 * ldc + 8, h4);
  _mm256_storeu_ps(c + 5 * ldc, l5), _mm256_storeu_ps(c + 5 * ldc + 8, h5);
}

__attribute__((target("avx2,fma"))) inline void Block8x6(int64_t k, const float* a, int64_t ars,
                                                         int64_t acs, const float* b, int64_t ldb,
                                                         float* c, int64_t ldc, bool accumulate) {
  __m256 c0, c1, c2, c3, c4, c5;
  if (accumulate) {
    c0 = _mm256_loadu_ps(c), c1 = _mm256_loadu_ps(c + ldc), c2 = _mm256_loadu_ps(c + 2 * ldc);
    c3 = _mm256_loadu_ps(c + 3 * ldc), c4 = _mm256_loadu_ps(c + 4 * ldc);
    c5 = _mm256_loadu_ps(c + 5 * ldc);
  } else {
    c0 = c1 = c2 = c3 = c4 = c5 = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * ldb);
    const float* ap = a + p * acs;
    c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap), b0, c0);
    c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + ars), b0, c1);
    c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 2 * ars), b0, c2);
    c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 3 * ars), b0, c3);
    c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 4 * ars), b0, c4);
    c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 5 * ars), b0, c5);
  }
  _mm256_storeu_ps(c, c0), _mm256_storeu_ps(c + ldc, c1), _mm256_storeu_ps(c + 2 * ldc, c2);
  _mm256_storeu_ps(c + 3 * ldc, c3), _mm256_storeu_ps(c + 4 * ldc, c4);
  _mm256_storeu_ps(c + 5 * ldc, c5);
}

// One row of C, 16 or 8 columns.
__attribute__((target("avx2,fma"))) inline void Block16x1(int64_t k, const float* a, int64_t acs,
                                                          const float* b, int64_t ldb, float* c,
                                                          bool accumulate) {
  __m256 lo = accumulate ? _mm256_loadu_ps(c) : _mm256_setzero_ps();
  __m256 hi = accumulate ? _mm256_loadu_ps(c + 8) : _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const __m256 av = _mm256_broadcast_ss(a + p * acs);
    lo = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + p * ldb), lo);
    hi = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + p * ldb + 8), hi);
  }
  _mm256_storeu_ps(c, lo);
  _mm256_storeu_ps(c + 8, hi);
}

__attribute__((target("avx2,fma"))) inline void Block8x1(int64_t k, const float* a, int64_t acs,
                                                         const float* b, int64_t ldb, float* c,
                                                         bool accumulate) {
  __m256 acc = accumulate ? _mm256_loadu_ps(c) : _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    acc = _mm256_fmadd_ps(_mm256_broadcast_ss(a + p * acs), _mm256_loadu_ps(b + p * ldb), acc);
  }
  _mm256_storeu_ps(c, acc);
}

// Columns [j, j + width) for all rows, width 16 or 8, in row blocks of 6 then 1.
template <int W>
__attribute__((target("avx2,fma"))) void Panel(int64_t m, int64_t k, const float* a, int64_t ars,
                                               int64_t acs, const float* b, int64_t ldb, float* c,
                                               int64_t ldc, bool accumulate) {
  int64_t i = 0;
  for (; i + 6 <= m; i += 6) {
    if constexpr (W == 16) {
      Block16x6(k, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, accumulate);
    } else {
      Block8x6(k, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, accumulate);
    }
  }
  for (; i < m; ++i) {
    if constexpr (W == 16) {
      Block16x1(k, a + i * ars, acs, b, ldb, c + i * ldc, accumulate);
    } else {
      Block8x1(k, a + i * ars, acs, b, ldb, c + i * ldc, accumulate);
    }
  }
}

__attribute__((target("avx2,fma"))) void SgemmAvx2(int64_t m, int64_t n, int64_t k, const float* a,
                                                   int64_t ars, int64_t acs, const float* b,
                                                   int64_t ldb, float* c, int64_t ldc,
                                                   bool accumulate) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) Panel<16>(m, k, a, ars, acs, b + j, ldb, c + j, ldc, accumulate);
  for (; j + 8 <= n; j += 8) Panel<8>(m, k, a, ars, acs, b + j, ldb, c + j, ldc, accumulate);
  for (; j < n; ++j) {  // fewer than 8 columns left: one dot product per entry
    for (int64_t i = 0; i < m; ++i) {
      float s = accumulate ? c[i * ldc + j] : 0.0f;
      for (int64_t p = 0; p < k; ++p) s += a[i * ars + p * acs] * b[p * ldb + j];
      c[i * ldc + j] = s;
    }
  }
}

SgemmFn Choose() {
  const char* env = std::getenv("RECD_SGEMM");
  const bool forced_portable = env != nullptr && std::strcmp(env, "portable") == 0;
  __builtin_cpu_init();
  if (!forced_portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return SgemmAvx2;
  }
  return SgemmPortable;
}

SgemmFn Kernel() {
  static const SgemmFn fn = Choose();
  return fn;
}

void Run(int64_t m, int64_t n, int64_t k, const float* a, int64_t ars, int64_t acs,
         const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate) {
      for (int64_t i = 0; i < m; ++i) std::memset(c + i * ldc, 0, sizeof(float) * n);
    }
    return;
  }
  Kernel()(m, n, k, a, ars, acs, b, ldb, c, ldc, accumulate);
}

}  // namespace

void Sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  Run(m, n, k, a, lda, 1, b, ldb, c, ldc, accumulate);
}

void SgemmTransA(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  Run(m, n, k, a, 1, lda, b, ldb, c, ldc, accumulate);
}

std::string SgemmKernelName() { return Kernel() == SgemmPortable ? "portable" : "avx2"; }

}  // namespace recd
