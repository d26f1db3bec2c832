#include "core/sgemm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "Eigen/Core"
#include "core/random.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

// Awkward sizes around the kernel's 6-row and 8/16-column blocks, with padded strides, against
// a double-precision reference; tolerance scales with k.
TEST(SgemmTest, MatchesDoubleReferenceOnAwkwardShapes) {
  PortableRng rng(3);
  int cases = 0;
  for (int64_t m : {1, 3, 6, 7, 13, 64}) {
    for (int64_t n : {1, 7, 8, 15, 16, 17, 33, 64}) {
      for (int64_t k : {1, 3, 17, 128}) {
        for (bool accumulate : {false, true}) {
          const int64_t lda = k + 2, ldb = n + 1, ldc = n + 3;
          std::vector<float> a(m * lda), b(k * ldb), c(m * ldc);
          for (float& x : a) x = static_cast<float>(rng.Normal());
          for (float& x : b) x = static_cast<float>(rng.Normal());
          for (float& x : c) x = static_cast<float>(rng.Normal());
          std::vector<float> before = c;
          // The same A stored transposed (k x m, row stride m + 1) for SgemmTransA.
          const int64_t ldt = m + 1;
          std::vector<float> at(k * ldt, 0.0f);
          for (int64_t i = 0; i < m; ++i) for (int64_t p = 0; p < k; ++p) at[p * ldt + i] = a[i * lda + p];
          std::vector<float> ct = c;
          Sgemm(m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc, accumulate);
          SgemmTransA(m, n, k, at.data(), ldt, b.data(), ldb, ct.data(), ldc, accumulate);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              double ref = accumulate ? before[i * ldc + j] : 0.0;
              for (int64_t p = 0; p < k; ++p) ref += double(a[i * lda + p]) * b[p * ldb + j];
              const double tol = 1e-5 * std::sqrt(double(k)) * (1 + std::abs(ref));
              ASSERT_NEAR(c[i * ldc + j], ref, tol)
                  << SgemmKernelName() << " m=" << m << " n=" << n << " k=" << k << " at " << i
                  << "," << j;
              ASSERT_NEAR(ct[i * ldc + j], ref, tol) << "transposed A, m=" << m << " n=" << n
                                                     << " k=" << k << " at " << i << "," << j;
            }
            // Padding between rows is untouched.
            for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], before[i * ldc + j]);
          }
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 6 * 8 * 4 * 2);
}

// Exact: every kernel does the documented float operations in the documented order, as this
// reference (compiled for baseline x86-64, so nothing is contracted into a fused multiply-add).
TEST(AdamStepTest, MatchesTheScalarFormulaBitForBit) {
  PortableRng rng(5);
  for (int64_t n : {1, 3, 7, 8, 15, 17, 33, 100}) {
    AdamStepParams p;
    p.step = 0.005f / 0.19f;
    p.inv_sqrt_bc2 = 1.0f / std::sqrt(0.001999f);
    p.weight_decay = n % 2 ? 0.0f : 0.01f;
    std::vector<float> param(n), m(n), v(n), grad(n);
    for (int64_t k = 0; k < n; ++k) {
      param[k] = static_cast<float>(rng.Normal());
      m[k] = static_cast<float>(0.1 * rng.Normal());
      v[k] = static_cast<float>(0.01 * rng.Uniform());
      grad[k] = k % 5 == 0 ? 0.0f : static_cast<float>(rng.Normal());
    }
    std::vector<float> rp = param, rm = m, rv = v;
    for (int64_t k = 0; k < n; ++k) {
      const float g = grad[k] + p.weight_decay * rp[k];
      rm[k] = p.beta1 * rm[k] + (1.0f - p.beta1) * g;
      rv[k] = p.beta2 * rv[k] + (1.0f - p.beta2) * g * g;
      rp[k] -= p.step * rm[k] / (std::sqrt(rv[k]) * p.inv_sqrt_bc2 + p.eps);
    }
    AdamStep(n, p, param.data(), m.data(), v.data(), grad.data());
    EXPECT_EQ(param, rp) << SgemmKernelName() << " n=" << n;
    EXPECT_EQ(m, rm) << n;
    EXPECT_EQ(v, rv) << n;
    EXPECT_EQ(grad, std::vector<float>(n, 0.0f)) << n;
  }
}

TEST(ExpShiftedSumTest, MatchesStdExpAndGivesZeroBelowTheNormalRange) {
  PortableRng rng(7);
  for (int64_t n : {1, 3, 8, 15, 16, 17, 33, 512}) {
    std::vector<float> x(n);
    for (int64_t k = 0; k < n; ++k) x[k] = static_cast<float>(20.0 * rng.Normal());
    if (n > 1) x[0] = -INFINITY;  // a masked logit
    if (n > 2) x[2] = -100.0f;
    const float shift = *std::max_element(x.begin(), x.end());  // as a softmax uses it
    std::vector<float> before = x;
    const float sum = ExpShiftedSum(n, shift, x.data());
    double ref_sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      const float d = before[k] - shift;  // the kernels see the float difference
      if (d < -87.33654f) {
        EXPECT_EQ(x[k], 0.0f) << SgemmKernelName() << " n=" << n << " at " << k;
      } else if (d <= 88.0f) {
        const double ref = std::exp(double(d));
        EXPECT_NEAR(x[k], ref, 3e-7 * ref) << SgemmKernelName() << " n=" << n << " at " << k;
      }
      ref_sum += x[k];
    }
    EXPECT_NEAR(sum, ref_sum, 1e-6 * ref_sum) << n;
  }
}

TEST(SgemmTest, EmptyInnerDimensionClearsOrKeeps) {
  std::vector<float> c = {1, 2, 3, 4};
  Sgemm(2, 2, 0, nullptr, 0, nullptr, 2, c.data(), 2, true);
  EXPECT_EQ(c, (std::vector<float>{1, 2, 3, 4}));
  Sgemm(2, 2, 0, nullptr, 0, nullptr, 2, c.data(), 2, false);
  EXPECT_EQ(c, (std::vector<float>{0, 0, 0, 0}));
  EXPECT_TRUE(SgemmKernelName() == "avx2" || SgemmKernelName() == "portable");
}

}  // namespace
}  // namespace recd
