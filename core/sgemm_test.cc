#include "core/sgemm.h"

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
