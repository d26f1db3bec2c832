// The int8 scan on AVX-512 VNNI. Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq
// -mavx512vnni; only called after CPUID reports VNNI (core/kernels/dispatch.cc). See kernels.h for
// the include rules of this file and the blocked code layout.
//
// vpdpbusd multiplies unsigned bytes by signed bytes and adds groups of four into int32 lanes. One
// 64-byte load of a block holds 4 codes of each of its 16 rows, so one instruction per group
// (with the group's 4 query codes broadcast) accumulates all 16 row dot products. The item codes
// are made unsigned by flipping their sign bit (x + 128), which adds 128 * sum(q) to every row:
// a constant subtracted once per block. |x + 128| <= 255 and |q| <= 127, so the int32 sums are
// exact (at most 255 * 127 * stride). The fine query code takes a second vpdpbusd on the same
// loaded codes.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "core/kernels/kernels.h"

namespace recd {
namespace kernels {

size_t Int8DotFilterAvx512Vnni(const int8_t* codes, const float* row_scales, size_t n,
                               size_t stride, const int8_t* query_codes, const int8_t* query_fine,
                               float query_scale, float offset, float threshold,
                               float* out_scores, uint32_t* out_rows) {
  const __m512 vqs = _mm512_set1_ps(query_scale);
  const __m512 voff = _mm512_set1_ps(offset);
  const __m512 vthr = _mm512_set1_ps(threshold);
  const __m512 vsteps = _mm512_set1_ps(kQueryFineSteps);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const size_t groups = stride / kCodeGroup;
  int32_t qsum = 0, fsum = 0;
  for (size_t j = 0; j < stride; ++j) {
    qsum += query_codes[j];
    fsum += query_fine[j];
  }
  const __m512i bias = _mm512_set1_epi32(128 * qsum);
  const __m512i fine_bias = _mm512_set1_epi32(128 * fsum);
  size_t count = 0;
  for (size_t i = 0; i < n; i += kCodeBlockRows) {
    const int8_t* block = codes + i * stride;
    // Two accumulators per code: consecutive vpdpbusd on one register wait for each other's
    // latency.
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    __m512i fine0 = _mm512_setzero_si512(), fine1 = _mm512_setzero_si512();
    size_t g = 0;
    for (; g + 2 <= groups; g += 2) {
      int32_t q0, q1, f0, f1;
      __builtin_memcpy(&q0, query_codes + g * kCodeGroup, sizeof(q0));
      __builtin_memcpy(&q1, query_codes + (g + 1) * kCodeGroup, sizeof(q1));
      __builtin_memcpy(&f0, query_fine + g * kCodeGroup, sizeof(f0));
      __builtin_memcpy(&f1, query_fine + (g + 1) * kCodeGroup, sizeof(f1));
      const __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(block + g * 64), flip);
      const __m512i x1 = _mm512_xor_si512(_mm512_loadu_si512(block + g * 64 + 64), flip);
      acc0 = _mm512_dpbusd_epi32(acc0, x0, _mm512_set1_epi32(q0));
      acc1 = _mm512_dpbusd_epi32(acc1, x1, _mm512_set1_epi32(q1));
      fine0 = _mm512_dpbusd_epi32(fine0, x0, _mm512_set1_epi32(f0));
      fine1 = _mm512_dpbusd_epi32(fine1, x1, _mm512_set1_epi32(f1));
    }
    if (g < groups) {
      int32_t q0, f0;
      __builtin_memcpy(&q0, query_codes + g * kCodeGroup, sizeof(q0));
      __builtin_memcpy(&f0, query_fine + g * kCodeGroup, sizeof(f0));
      const __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(block + g * 64), flip);
      acc0 = _mm512_dpbusd_epi32(acc0, x0, _mm512_set1_epi32(q0));
      fine0 = _mm512_dpbusd_epi32(fine0, x0, _mm512_set1_epi32(f0));
    }
    const __m512i dots = _mm512_sub_epi32(_mm512_add_epi32(acc0, acc1), bias);
    const __m512i fine = _mm512_sub_epi32(_mm512_add_epi32(fine0, fine1), fine_bias);
    const size_t rows = n - i < kCodeBlockRows ? n - i : kCodeBlockRows;
    const __mmask16 live = static_cast<__mmask16>((1u << rows) - 1u);
    const __m512 sum = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dots), vsteps),
                                     _mm512_cvtepi32_ps(fine));
    const __m512 s = _mm512_mul_ps(
        _mm512_mul_ps(_mm512_add_ps(sum, voff), _mm512_maskz_loadu_ps(live, row_scales + i)),
        vqs);
    unsigned m = _mm512_mask_cmp_ps_mask(live, s, vthr, _CMP_NLE_UQ);
    if (m != 0) {
      alignas(64) float tmp[16];
      _mm512_store_ps(tmp, s);
      while (m != 0) {
        const unsigned lane = static_cast<unsigned>(__builtin_ctz(m));
        out_scores[count] = tmp[lane];
        out_rows[count] = static_cast<uint32_t>(i + lane);
        ++count;
        m &= m - 1;
      }
    }
  }
  return count;
}

}  // namespace kernels
}  // namespace recd
