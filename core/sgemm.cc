#include "core/sgemm.h"

#include <immintrin.h>

#include <cmath>
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

// Below this exp(x) is not a normal float; ExpShiftedSum gives 0 there.
constexpr float kExpMin = -87.33654f;

float ExpShiftedSumPortable(int64_t n, float shift, float* x) {
  Eigen::Map<Eigen::ArrayXf> row(x, n);
  row -= shift;
  row = (row < kExpMin).select(0.0f, row.exp());  // Eigen's exp clamps instead
  return row.sum();
}

// SSE2 is part of x86-64, so this needs no dispatch; it exists because GCC does not vectorise
// std::sqrt without -fno-math-errno.
void AdamStepPortable(int64_t n, const AdamStepParams& p, float* param, float* m, float* v,
                      float* grad) {
  const __m128 b1 = _mm_set1_ps(p.beta1), b2 = _mm_set1_ps(p.beta2);
  const __m128 one_b1 = _mm_set1_ps(1.0f - p.beta1), one_b2 = _mm_set1_ps(1.0f - p.beta2);
  const __m128 step = _mm_set1_ps(p.step), inv = _mm_set1_ps(p.inv_sqrt_bc2);
  const __m128 eps = _mm_set1_ps(p.eps), wd = _mm_set1_ps(p.weight_decay);
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const __m128 w = _mm_loadu_ps(param + k);
    const __m128 g = _mm_add_ps(_mm_loadu_ps(grad + k), _mm_mul_ps(wd, w));
    const __m128 mm = _mm_add_ps(_mm_mul_ps(b1, _mm_loadu_ps(m + k)), _mm_mul_ps(one_b1, g));
    const __m128 vv =
        _mm_add_ps(_mm_mul_ps(b2, _mm_loadu_ps(v + k)), _mm_mul_ps(_mm_mul_ps(one_b2, g), g));
    const __m128 den = _mm_add_ps(_mm_mul_ps(_mm_sqrt_ps(vv), inv), eps);
    _mm_storeu_ps(param + k, _mm_sub_ps(w, _mm_div_ps(_mm_mul_ps(step, mm), den)));
    _mm_storeu_ps(m + k, mm);
    _mm_storeu_ps(v + k, vv);
    _mm_storeu_ps(grad + k, _mm_setzero_ps());
  }
  for (; k < n; ++k) {
    const __m128 w = _mm_set_ss(param[k]);
    const __m128 g = _mm_add_ss(_mm_set_ss(grad[k]), _mm_mul_ss(wd, w));
    const __m128 mm = _mm_add_ss(_mm_mul_ss(b1, _mm_set_ss(m[k])), _mm_mul_ss(one_b1, g));
    const __m128 vv =
        _mm_add_ss(_mm_mul_ss(b2, _mm_set_ss(v[k])), _mm_mul_ss(_mm_mul_ss(one_b2, g), g));
    const __m128 den = _mm_add_ss(_mm_mul_ss(_mm_sqrt_ss(vv), inv), eps);
    param[k] = _mm_cvtss_f32(_mm_sub_ss(w, _mm_div_ss(_mm_mul_ss(step, mm), den)));
    m[k] = _mm_cvtss_f32(mm);
    v[k] = _mm_cvtss_f32(vv);
    grad[k] = 0.0f;
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

// exp(x) for 8 lanes: Cephes' expf (as Eigen's pexp): x = n ln2 + r with n = round(x log2 e),
// a degree-7 polynomial in r, then the exponent n added to the bits. Lanes with x below the
// smallest normal result (kExpMin, and -inf) give 0.
__attribute__((target("avx2,fma"))) inline __m256 Exp8(__m256 x) {
  const __m256 too_small = _mm256_cmp_ps(x, _mm256_set1_ps(kExpMin), _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647950f));
  x = _mm256_max_ps(x, _mm256_set1_ps(kExpMin));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(too_small, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

__attribute__((target("avx2,fma"))) float ExpShiftedSumAvx2(int64_t n, float shift, float* x) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256 y0 = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), s));
    const __m256 y1 = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), s));
    _mm256_storeu_ps(x + j, y0);
    _mm256_storeu_ps(x + j + 8, y1);
    acc0 = _mm256_add_ps(acc0, y0);
    acc1 = _mm256_add_ps(acc1, y1);
  }
  // The tail (n % 16 lanes) through a padded buffer, so every lane takes the same path.
  if (j < n) {
    alignas(32) float buf[16];
    for (int64_t t = 0; t < 16; ++t) buf[t] = j + t < n ? x[j + t] : -INFINITY;
    const __m256 y0 = Exp8(_mm256_sub_ps(_mm256_load_ps(buf), s));
    const __m256 y1 = Exp8(_mm256_sub_ps(_mm256_load_ps(buf + 8), s));
    _mm256_store_ps(buf, y0);
    _mm256_store_ps(buf + 8, y1);
    for (int64_t t = 0; j + t < n; ++t) x[j + t] = buf[t];
    acc0 = _mm256_add_ps(acc0, y0);
    acc1 = _mm256_add_ps(acc1, y1);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(acc0, acc1));
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// AVX without FMA (target "avx2" only): the same operations per entry as AdamStepPortable, so
// the same bits; GCC would otherwise contract the multiply-adds.
__attribute__((target("avx2"))) void AdamStepAvx2(int64_t n, const AdamStepParams& p, float* param,
                                                  float* m, float* v, float* grad) {
  const __m256 b1 = _mm256_set1_ps(p.beta1), b2 = _mm256_set1_ps(p.beta2);
  const __m256 one_b1 = _mm256_set1_ps(1.0f - p.beta1), one_b2 = _mm256_set1_ps(1.0f - p.beta2);
  const __m256 step = _mm256_set1_ps(p.step), inv = _mm256_set1_ps(p.inv_sqrt_bc2);
  const __m256 eps = _mm256_set1_ps(p.eps), wd = _mm256_set1_ps(p.weight_decay);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256 w = _mm256_loadu_ps(param + k);
    const __m256 g = _mm256_add_ps(_mm256_loadu_ps(grad + k), _mm256_mul_ps(wd, w));
    const __m256 mm =
        _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + k)), _mm256_mul_ps(one_b1, g));
    const __m256 vv = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + k)),
                                    _mm256_mul_ps(_mm256_mul_ps(one_b2, g), g));
    const __m256 den = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vv), inv), eps);
    _mm256_storeu_ps(param + k, _mm256_sub_ps(w, _mm256_div_ps(_mm256_mul_ps(step, mm), den)));
    _mm256_storeu_ps(m + k, mm);
    _mm256_storeu_ps(v + k, vv);
    _mm256_storeu_ps(grad + k, _mm256_setzero_ps());
  }
  AdamStepPortable(n - k, p, param + k, m + k, v + k, grad + k);
}

struct Kernels {
  SgemmFn sgemm;
  float (*exp_shifted_sum)(int64_t, float, float*);
  void (*adam_step)(int64_t, const AdamStepParams&, float*, float*, float*, float*);
  const char* name;
};

Kernels Choose() {
  const char* env = std::getenv("RECD_SGEMM");
  const bool forced_portable = env != nullptr && std::strcmp(env, "portable") == 0;
  __builtin_cpu_init();
  if (!forced_portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return {SgemmAvx2, ExpShiftedSumAvx2, AdamStepAvx2, "avx2"};
  }
  return {SgemmPortable, ExpShiftedSumPortable, AdamStepPortable, "portable"};
}

const Kernels& Chosen() {
  static const Kernels kernels = Choose();
  return kernels;
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
  Chosen().sgemm(m, n, k, a, ars, acs, b, ldb, c, ldc, accumulate);
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

float ExpShiftedSum(int64_t n, float shift, float* x) {
  return n > 0 ? Chosen().exp_shifted_sum(n, shift, x) : 0.0f;
}

void AdamStep(int64_t n, const AdamStepParams& p, float* param, float* m, float* v, float* grad) {
  if (n > 0) Chosen().adam_step(n, p, param, m, v, grad);
}

std::string SgemmKernelName() { return Chosen().name; }

}  // namespace recd
