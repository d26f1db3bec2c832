// Portable kernels: baseline x86-64 (or any CPU). The fallback level and the shape the SIMD
// levels are checked against. See kernels.h for the include rules of this file.
#include "core/kernels/kernels.h"

namespace recd {
namespace kernels {
namespace {

// Four independent partial sums: no reassociation is needed for the compiler to keep them in
// one SSE register, and the row's value does not depend on where the row sits in a block.
float DotScalar(const float* a, const float* b, size_t d) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  size_t j = 0;
  for (; j + 4 <= d; j += 4) {
    s0 += a[j] * b[j];
    s1 += a[j + 1] * b[j + 1];
    s2 += a[j + 2] * b[j + 2];
    s3 += a[j + 3] * b[j + 3];
  }
  for (; j < d; ++j) s0 += a[j] * b[j];
  return (s0 + s1) + (s2 + s3);
}

size_t DotFilterScalar(const float* items, size_t n, size_t d, const float* query,
                       float threshold, float* out_scores, uint32_t* out_rows) {
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    const float s = DotScalar(items + i * d, query, d);
    if (!(s <= threshold)) {
      out_scores[count] = s;
      out_rows[count] = static_cast<uint32_t>(i);
      ++count;
    }
  }
  return count;
}

size_t Int8DotFilterScalar(const int8_t* codes, const float* row_scales, size_t n, size_t stride,
                           const int8_t* query_codes, const int8_t* query_fine, float query_scale,
                           float offset, float threshold, float* out_scores, uint32_t* out_rows) {
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    // Row i's first group in its block; group g of the row is kCodeBlockRows groups further.
    const int8_t* c = codes + (i / kCodeBlockRows) * kCodeBlockRows * stride +
                      (i % kCodeBlockRows) * kCodeGroup;
    int32_t acc = 0, fine = 0;
    for (size_t j = 0; j < stride; j += kCodeGroup, c += kCodeBlockRows * kCodeGroup) {
      for (size_t b = 0; b < kCodeGroup; ++b) {
        acc += int32_t{c[b]} * int32_t{query_codes[j + b]};
        fine += int32_t{c[b]} * int32_t{query_fine[j + b]};
      }
    }
    const float s = (static_cast<float>(acc) * kQueryFineSteps + static_cast<float>(fine) + offset) *
                    row_scales[i] * query_scale;
    if (!(s <= threshold)) {
      out_scores[count] = s;
      out_rows[count] = static_cast<uint32_t>(i);
      ++count;
    }
  }
  return count;
}

}  // namespace

const KernelTable kScalarKernels = {"scalar", DotScalar, DotFilterScalar, Int8DotFilterScalar,
                                    nullptr};

}  // namespace kernels
}  // namespace recd
