// Every ISA level's kernels against the portable reference, over awkward dimensions. Levels the
// CPU lacks are skipped with a message (they are compiled, not run).
#include "core/kernels/kernels.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/kernels/dispatch.h"
#include "gtest/gtest.h"

namespace recd {
namespace kernels {
namespace {

// Awkward sizes around every SIMD width, and the multiples of 8 up to 64 (the AVX2 scan keeps the
// query in registers there).
constexpr int kDims[] = {1, 3, 7, 8, 15, 16, 17, 24, 31, 32, 33, 40, 48, 56, 63, 64, 65, 127, 129};
// Row counts around the 6-, 8-, 12- and 16-row groups of the SIMD kernels.
constexpr size_t kRowCounts[] = {1, 5, 6, 7, 8, 9, 12, 13, 16, 17, 31, 100};

std::vector<float> Gaussian(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

struct RefDot {
  double value;
  double abs_sum;  // sum |a_j b_j|: scales the rounding error bound
};

RefDot ReferenceDot(const float* a, const float* b, size_t d) {
  RefDot r{0.0, 0.0};
  for (size_t j = 0; j < d; ++j) {
    r.value += static_cast<double>(a[j]) * b[j];
    r.abs_sum += std::fabs(static_cast<double>(a[j]) * b[j]);
  }
  return r;
}

// Float summation of d terms errs by at most about d * eps * sum|terms|; allow 2x.
double Tolerance(const RefDot& r, size_t d) {
  return 2.0 * static_cast<double>(d) * std::numeric_limits<float>::epsilon() * r.abs_sum + 1e-30;
}

class KernelTest : public testing::TestWithParam<IsaLevel> {
 protected:
  void SetUp() override {
    if (GetParam() > SupportedIsaLevel()) {
      GTEST_SKIP() << IsaLevelName(GetParam()) << " kernels are compiled but this CPU (best: "
                   << IsaLevelName(SupportedIsaLevel()) << ") cannot run them";
    }
  }
  const KernelTable& table() const { return KernelsFor(GetParam()); }
};

TEST_P(KernelTest, DotMatchesReference) {
  for (int dim : kDims) {
    const size_t d = static_cast<size_t>(dim);
    for (uint64_t seed = 0; seed < 4; ++seed) {
      const auto a = Gaussian(d, seed * 1000 + d);
      const auto b = Gaussian(d, seed * 1000 + d + 500);
      const RefDot ref = ReferenceDot(a.data(), b.data(), d);
      EXPECT_NEAR(table().dot(a.data(), b.data(), d), ref.value, Tolerance(ref, d))
          << "dim=" << dim;
    }
  }
}

TEST_P(KernelTest, DotFilterKeepsEveryRowUnderNanThresholdWithPositionIndependentScores) {
  for (int dim : kDims) {
    const size_t d = static_cast<size_t>(dim);
    for (size_t n : kRowCounts) {
      SCOPED_TRACE(testing::Message() << "dim=" << dim << " n=" << n);
      const auto items = Gaussian(n * d, 17 * d + n);
      const auto q = Gaussian(d, 3 * d + n);
      std::vector<float> scores(n);
      std::vector<uint32_t> rows(n);
      const size_t count =
          table().dot_filter(items.data(), n, d, q.data(), std::numeric_limits<float>::quiet_NaN(),
                             scores.data(), rows.data());
      ASSERT_EQ(count, n);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(rows[i], i);
        const RefDot ref = ReferenceDot(items.data() + i * d, q.data(), d);
        EXPECT_NEAR(scores[i], ref.value, Tolerance(ref, d)) << "row " << i;
        // Bitwise: the same row scored alone (DotFn) or at another offset in a block.
        EXPECT_EQ(scores[i], table().dot(items.data() + i * d, q.data(), d)) << "row " << i;
      }
      if (n > 1) {
        std::vector<float> shifted(n);
        std::vector<uint32_t> shifted_rows(n);
        ASSERT_EQ(table().dot_filter(items.data() + d, n - 1, d, q.data(),
                                     std::numeric_limits<float>::quiet_NaN(), shifted.data(),
                                     shifted_rows.data()),
                  n - 1);
        for (size_t i = 0; i + 1 < n; ++i) EXPECT_EQ(shifted[i], scores[i + 1]) << "row " << i + 1;
      }
    }
  }
}

TEST_P(KernelTest, DotFilterReturnsExactlyTheRowsAboveThreshold) {
  const size_t d = 33, n = 100;
  const auto items = Gaussian(n * d, 5);
  const auto q = Gaussian(d, 6);
  std::vector<float> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = table().dot(items.data() + i * d, q.data(), d);
  for (float threshold : {-1e30f, -1.0f, 0.0f, 2.5f, all[40], 1e30f,
                          std::numeric_limits<float>::infinity()}) {
    std::vector<float> scores(n);
    std::vector<uint32_t> rows(n);
    const size_t count =
        table().dot_filter(items.data(), n, d, q.data(), threshold, scores.data(), rows.data());
    std::vector<uint32_t> expected;
    for (size_t i = 0; i < n; ++i) {
      if (all[i] > threshold) expected.push_back(static_cast<uint32_t>(i));
    }
    ASSERT_EQ(count, expected.size()) << threshold;
    for (size_t c = 0; c < count; ++c) {
      EXPECT_EQ(rows[c], expected[c]);
      EXPECT_EQ(scores[c], all[rows[c]]);
    }
  }
}

// Packs row-major codes (n x stride) into the blocked layout of kernels.h; rows past n in the
// last block get `pad` (the kernels must ignore them).
std::vector<int8_t> PackBlocked(const std::vector<int8_t>& row_major, size_t n, size_t stride,
                                int8_t pad) {
  const size_t blocks = (n + kCodeBlockRows - 1) / kCodeBlockRows;
  std::vector<int8_t> out(blocks * kCodeBlockRows * stride, pad);
  for (size_t r = 0; r < n; ++r) {
    for (size_t j = 0; j < stride; ++j) {
      out[(r / kCodeBlockRows) * kCodeBlockRows * stride + (j / kCodeGroup) * kCodeBlockRows * kCodeGroup +
          (r % kCodeBlockRows) * kCodeGroup + j % kCodeGroup] = row_major[r * stride + j];
    }
  }
  return out;
}

// Integer sums are exact and the float multiplies happen in a fixed order, so a level must agree
// with the exact integer dot product (and hence with the scalar kernel) to the bit.
void CheckInt8Kernel(Int8DotFilterFn kernel) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> code(-127, 127);
  // Multiples of kCodeGroup around the SIMD widths; 260 and 516 exceed the 64 groups the AVX2
  // kernel keeps in registers.
  for (size_t stride : {size_t{4}, size_t{8}, size_t{12}, size_t{32}, size_t{36}, size_t{64},
                        size_t{68}, size_t{96}, size_t{160}, size_t{260}, size_t{516}}) {
    for (size_t n : kRowCounts) {
      SCOPED_TRACE(testing::Message() << "stride=" << stride << " n=" << n);
      std::vector<int8_t> row_major(n * stride), qcodes(stride), qfine(stride);
      for (auto& c : row_major) c = static_cast<int8_t>(code(rng));
      for (auto& c : qcodes) c = static_cast<int8_t>(code(rng));
      for (auto& c : qfine) c = static_cast<int8_t>(code(rng));
      // Extremes: a row of +127 and one of -127 against a query of +-127 (the largest sums the
      // kernels must neither saturate nor overflow).
      for (size_t j = 0; j < stride; ++j) row_major[j] = 127;
      if (n > 1) {
        for (size_t j = 0; j < stride; ++j) row_major[stride + j] = -127;
      }
      for (size_t j = 0; j < stride; ++j) qcodes[j] = (j % 3 == 0) ? -127 : 127;
      for (size_t j = 0; j < stride; ++j) qfine[j] = (j % 5 == 0) ? 127 : -127;
      const std::vector<int8_t> codes = PackBlocked(row_major, n, stride, /*pad=*/-128);
      std::vector<float> row_scales = Gaussian(n, n + stride);
      const float qscale = 0.013f;
      std::vector<float> got(n);
      std::vector<uint32_t> got_rows(n);
      const float nan = std::numeric_limits<float>::quiet_NaN();
      for (const float offset : {0.0f, 1234.5f}) {
        SCOPED_TRACE(testing::Message() << "offset=" << offset);
        std::vector<float> want(n);
        for (size_t i = 0; i < n; ++i) {
          int64_t exact = 0, exact_fine = 0;
          for (size_t j = 0; j < stride; ++j) {
            exact += int64_t{row_major[i * stride + j]} * qcodes[j];
            exact_fine += int64_t{row_major[i * stride + j]} * qfine[j];
          }
          want[i] = (static_cast<float>(exact) * kQueryFineSteps + static_cast<float>(exact_fine) + offset) *
                    row_scales[i] * qscale;
        }
        ASSERT_EQ(kernel(codes.data(), row_scales.data(), n, stride, qcodes.data(), qfine.data(), qscale,
                         offset, nan, got.data(), got_rows.data()),
                  n);
        for (size_t i = 0; i < n; ++i) {
          EXPECT_EQ(got_rows[i], i);
          EXPECT_EQ(got[i], want[got_rows[i]]) << "row " << i;
        }
        // Threshold filtering keeps exactly the rows above it, in row order.
        const float threshold = 0.0f;
        const size_t count = kernel(codes.data(), row_scales.data(), n, stride, qcodes.data(),
                                    qfine.data(), qscale, offset, threshold, got.data(), got_rows.data());
        std::vector<uint32_t> expected;
        for (size_t i = 0; i < n; ++i) {
          if (want[i] > threshold) expected.push_back(static_cast<uint32_t>(i));
        }
        ASSERT_EQ(count, expected.size());
        for (size_t c = 0; c < count; ++c) {
          EXPECT_EQ(got_rows[c], expected[c]);
          EXPECT_EQ(got[c], want[expected[c]]);
        }
      }
    }
  }
}

TEST_P(KernelTest, Int8DotFilterIsExact) { CheckInt8Kernel(table().int8_dot_filter); }

// Both AVX-512 int8 kernels, whichever one dispatch picks on this CPU.
TEST(Avx512Int8Test, WithoutVnniIsExact) {
  if (SupportedIsaLevel() < IsaLevel::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  CheckInt8Kernel(kAvx512Kernels.int8_dot_filter);
}

TEST(Avx512Int8Test, VnniIsExact) {
  __builtin_cpu_init();
  if (SupportedIsaLevel() < IsaLevel::kAvx512 || !__builtin_cpu_supports("avx512vnni")) {
    GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  }
  CheckInt8Kernel(kAvx512VnniKernels.int8_dot_filter);
}

TEST_P(KernelTest, GemmFilterMatchesReferenceAndIsPositionIndependent) {
  if (table().gemm_filter == nullptr) {
    GTEST_SKIP() << IsaLevelName(GetParam()) << " has no GEMM kernel (the scorer uses Eigen)";
  }
  for (int dim : kDims) {
    const size_t d = static_cast<size_t>(dim);
    for (size_t nq : {size_t{1}, size_t{5}, size_t{16}, size_t{17}, size_t{40}}) {
      const size_t n = 37;
      SCOPED_TRACE(testing::Message() << "dim=" << dim << " nq=" << nq);
      const auto items = Gaussian(n * d, d * 7 + nq);
      const auto queries = Gaussian(nq * d, d * 13 + nq);
      const size_t num_panels = (nq + kPanelWidth - 1) / kPanelWidth;
      std::vector<float> panels(num_panels * d * kPanelWidth, 0.0f);
      for (size_t q = 0; q < nq; ++q) {
        for (size_t j = 0; j < d; ++j) {
          panels[(q / kPanelWidth) * d * kPanelWidth + j * kPanelWidth + q % kPanelWidth] =
              queries[q * d + j];
        }
      }
      std::vector<float> thresholds(num_panels * kPanelWidth,
                                    std::numeric_limits<float>::infinity());
      for (size_t q = 0; q < nq; ++q) thresholds[q] = std::numeric_limits<float>::quiet_NaN();
      const size_t cap = n * num_panels * kPanelWidth;
      std::vector<float> scores(cap);
      std::vector<uint32_t> rows(cap), qs(cap);
      const size_t count = table().gemm_filter(items.data(), n, d, panels.data(), num_panels,
                                               thresholds.data(), scores.data(), rows.data(),
                                               qs.data());
      ASSERT_EQ(count, n * nq);  // padding queries (threshold +inf) never pass
      std::vector<float> grid(n * nq, std::numeric_limits<float>::quiet_NaN());
      for (size_t c = 0; c < count; ++c) {
        ASSERT_LT(rows[c], n);
        ASSERT_LT(qs[c], nq);
        grid[rows[c] * nq + qs[c]] = scores[c];
      }
      for (size_t i = 0; i < n; ++i) {
        for (size_t q = 0; q < nq; ++q) {
          const RefDot ref = ReferenceDot(items.data() + i * d, queries.data() + q * d, d);
          EXPECT_NEAR(grid[i * nq + q], ref.value, Tolerance(ref, d)) << i << "," << q;
        }
      }
      // The same rows scored from another offset give bitwise the same scores.
      const size_t count2 = table().gemm_filter(items.data() + 5 * d, n - 5, d, panels.data(),
                                                num_panels, thresholds.data(), scores.data(),
                                                rows.data(), qs.data());
      ASSERT_EQ(count2, (n - 5) * nq);
      for (size_t c = 0; c < count2; ++c) {
        EXPECT_EQ(scores[c], grid[(rows[c] + 5) * nq + qs[c]]);
      }
      // A finite threshold per query keeps exactly the pairs above it.
      for (size_t q = 0; q < nq; ++q) thresholds[q] = grid[(q % n) * nq + q];
      const size_t count3 = table().gemm_filter(items.data(), n, d, panels.data(), num_panels,
                                                thresholds.data(), scores.data(), rows.data(),
                                                qs.data());
      size_t expected = 0;
      for (size_t i = 0; i < n; ++i) {
        for (size_t q = 0; q < nq; ++q) expected += grid[i * nq + q] > thresholds[q];
      }
      EXPECT_EQ(count3, expected);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllLevels, KernelTest,
                         testing::Values(IsaLevel::kScalar, IsaLevel::kAvx2, IsaLevel::kAvx512),
                         [](const testing::TestParamInfo<IsaLevel>& info) {
                           return std::string(IsaLevelName(info.param));
                         });

TEST(DispatchTest, DefaultLevelIsSupportedAndNamed) {
  EXPECT_LE(DefaultIsaLevel(), SupportedIsaLevel());
  const std::string name = IsaLevelName(DefaultIsaLevel());
  EXPECT_TRUE(name == "scalar" || name == "avx2" || name == "avx512") << name;
}

}  // namespace
}  // namespace kernels
}  // namespace recd
