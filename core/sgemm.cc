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
// R <= 6 rows x 16 (or 8) columns of C per call, in registers: 2R accumulators + 2 rows of B +
// 1 broadcast. B is read in place (row-major, 16 consecutive floats per k), A one scalar per row
// and k. The accumulators are named variables, not an array: GCC keeps an array of __m256 in
// memory and stores it back after every FMA (measured: the 6-row kernel ran at a third of its
// speed). Rows left over after the blocks of 6 go through the same kernel with R = m % 6, not
// one row at a time: a single row's two FMA chains wait on the FMA latency. Everything below is
// plain C with intrinsics and internal linkage: nothing here is shared with code compiled for
// the baseline ISA.

#define RECD_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

template <int R>
__attribute__((target("avx2,fma"))) inline void Block16(int64_t k, const float* a, int64_t ars,
                                                        int64_t acs, const float* b, int64_t ldb,
                                                        float* c, int64_t ldc, bool accumulate) {
  static_assert(R >= 1 && R <= 6);
  __m256 lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3, lo4, hi4, lo5, hi5;
#define RECD_INIT(r)                                                                  \
  if constexpr (r < R) {                                                              \
    lo##r = accumulate ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();          \
    hi##r = accumulate ? _mm256_loadu_ps(c + r * ldc + 8) : _mm256_setzero_ps();      \
  }
  RECD_ROWS(RECD_INIT)
#undef RECD_INIT
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * ldb);
    const __m256 b1 = _mm256_loadu_ps(b + p * ldb + 8);
    const float* ap = a + p * acs;
#define RECD_FMA(r)                                                                   \
  if constexpr (r < R) {                                                              \
    const __m256 av = _mm256_broadcast_ss(ap + r * ars);                              \
    lo##r = _mm256_fmadd_ps(av, b0, lo##r);                                           \
    hi##r = _mm256_fmadd_ps(av, b1, hi##r);                                           \
  }
    RECD_ROWS(RECD_FMA)
#undef RECD_FMA
  }
#define RECD_STORE(r)                                                                 \
  if constexpr (r < R) {                                                              \
    _mm256_storeu_ps(c + r * ldc, lo##r);                                             \
    _mm256_storeu_ps(c + r * ldc + 8, hi##r);                                         \
  }
  RECD_ROWS(RECD_STORE)
#undef RECD_STORE
}

template <int R>
__attribute__((target("avx2,fma"))) inline void Block8(int64_t k, const float* a, int64_t ars,
                                                       int64_t acs, const float* b, int64_t ldb,
                                                       float* c, int64_t ldc, bool accumulate) {
  static_assert(R >= 1 && R <= 6);
  __m256 c0, c1, c2, c3, c4, c5;
#define RECD_INIT(r) \
  if constexpr (r < R) c##r = accumulate ? _mm256_loadu_ps(c + r * ldc) : _mm256_setzero_ps();
  RECD_ROWS(RECD_INIT)
#undef RECD_INIT
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * ldb);
    const float* ap = a + p * acs;
#define RECD_FMA(r) \
  if constexpr (r < R) c##r = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + r * ars), b0, c##r);
    RECD_ROWS(RECD_FMA)
#undef RECD_FMA
  }
#define RECD_STORE(r) \
  if constexpr (r < R) _mm256_storeu_ps(c + r * ldc, c##r);
  RECD_ROWS(RECD_STORE)
#undef RECD_STORE
}

#undef RECD_ROWS

template <int W, int R>
__attribute__((target("avx2,fma"))) inline void Block(int64_t k, const float* a, int64_t ars,
                                                      int64_t acs, const float* b, int64_t ldb,
                                                      float* c, int64_t ldc, bool accumulate) {
  if constexpr (W == 16) {
    Block16<R>(k, a, ars, acs, b, ldb, c, ldc, accumulate);
  } else {
    Block8<R>(k, a, ars, acs, b, ldb, c, ldc, accumulate);
  }
}

// Columns [j, j + W) for all rows, W = 16 or 8, in row blocks of 6 and one of m % 6.
template <int W>
__attribute__((target("avx2,fma"))) void Panel(int64_t m, int64_t k, const float* a, int64_t ars,
                                               int64_t acs, const float* b, int64_t ldb, float* c,
                                               int64_t ldc, bool accumulate) {
  int64_t i = 0;
  for (; i + 6 <= m; i += 6) {
    Block<W, 6>(k, a + i * ars, ars, acs, b, ldb, c + i * ldc, ldc, accumulate);
  }
  a += i * ars;
  c += i * ldc;
  switch (m - i) {
    case 1: Block<W, 1>(k, a, ars, acs, b, ldb, c, ldc, accumulate); break;
    case 2: Block<W, 2>(k, a, ars, acs, b, ldb, c, ldc, accumulate); break;
    case 3: Block<W, 3>(k, a, ars, acs, b, ldb, c, ldc, accumulate); break;
    case 4: Block<W, 4>(k, a, ars, acs, b, ldb, c, ldc, accumulate); break;
    case 5: Block<W, 5>(k, a, ars, acs, b, ldb, c, ldc, accumulate); break;
    default: break;
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
