// AVX-512 (F, BW, VL, DQ) kernels. Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq
// -mfma -ffp-contract=off; only called after CPUID says the CPU has all four. See kernels.h for
// the include rules of this file.
//
// The layout of work mirrors avx2.cc with 16-float vectors: an exact row accumulates 16 lanes,
// folds them to 8 (low half + high half) and then applies the AVX2 reduction tree, so a row
// scored alone equals the row scored in an 8-row group.
// GCC 12's avx512fintrin.h trips -Wuninitialized on its own _mm256_undefined_* helpers
// (GCC PR 105593, fixed in GCC 13); the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "core/kernels/kernels.h"

namespace recd {
namespace kernels {
namespace {

__mmask16 TailMask16(size_t rem) { return static_cast<__mmask16>((1u << rem) - 1u); }

__m256 Fold(__m512 a) {
  return _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
}

float Hsum8(__m256 a) {
  const __m256 h = _mm256_hadd_ps(a, a);
  const __m256 h2 = _mm256_hadd_ps(h, h);
  return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(h2), _mm256_extractf128_ps(h2, 1)));
}

__m256 Reduce8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
               __m256 a7) {
  const __m256 t0 = _mm256_hadd_ps(a0, a1);
  const __m256 t1 = _mm256_hadd_ps(a2, a3);
  const __m256 t2 = _mm256_hadd_ps(a4, a5);
  const __m256 t3 = _mm256_hadd_ps(a6, a7);
  const __m256 u0 = _mm256_hadd_ps(t0, t1);
  const __m256 u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

__m512 RowAcc(const float* a, const float* b, size_t d16, size_t rem) {
  __m512 acc = _mm512_setzero_ps();
  for (size_t j = 0; j < d16; j += 16) {
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), acc);
  }
  if (rem != 0) {
    const __mmask16 m = TailMask16(rem);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + d16), _mm512_maskz_loadu_ps(m, b + d16),
                          acc);
  }
  return acc;
}

float DotAvx512(const float* a, const float* b, size_t d) {
  const size_t d16 = d & ~size_t{15};
  return Hsum8(Fold(RowAcc(a, b, d16, d - d16)));
}

// Writes (score, base + lane) for each set bit of `mask`, lanes in increasing order.
size_t EmitLanes(const float* lane_scores, unsigned mask, size_t base, float* out_scores,
                 uint32_t* out_rows, size_t count) {
  while (mask != 0) {
    const unsigned lane = static_cast<unsigned>(__builtin_ctz(mask));
    out_scores[count] = lane_scores[lane];
    out_rows[count] = static_cast<uint32_t>(base + lane);
    ++count;
    mask &= mask - 1;
  }
  return count;
}

size_t Emit8(__m256 scores, unsigned mask, size_t base, float* out_scores, uint32_t* out_rows,
             size_t count) {
  alignas(32) float tmp[8];
  _mm256_store_ps(tmp, scores);
  return EmitLanes(tmp, mask, base, out_scores, out_rows, count);
}

size_t Emit16(__m512 scores, unsigned mask, size_t base, float* out_scores, uint32_t* out_rows,
              size_t count) {
  alignas(64) float tmp[16];
  _mm512_store_ps(tmp, scores);
  return EmitLanes(tmp, mask, base, out_scores, out_rows, count);
}

size_t DotFilterAvx512(const float* items, size_t n, size_t d, const float* query,
                       float threshold, float* out_scores, uint32_t* out_rows) {
  const size_t d16 = d & ~size_t{15};
  const size_t rem = d - d16;
  const __m256 vthr = _mm256_set1_ps(threshold);
  size_t count = 0;
  size_t i = 0;
  // Rows of a group accumulated one after another: strictly sequential reads (see avx2.cc).
  for (; i + 8 <= n; i += 8) {
    const float* r = items + i * d;
    __m256 acc[8];
    for (size_t k = 0; k < 8; ++k) acc[k] = Fold(RowAcc(r + k * d, query, d16, rem));
    const __m256 s = Reduce8(acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], acc[7]);
    const unsigned m = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(s, vthr, _CMP_NLE_UQ)));
    if (m != 0) count = Emit8(s, m, i, out_scores, out_rows, count);
  }
  for (; i < n; ++i) {
    const float s = Hsum8(Fold(RowAcc(items + i * d, query, d16, rem)));
    if (!(s <= threshold)) {
      out_scores[count] = s;
      out_rows[count] = static_cast<uint32_t>(i);
      ++count;
    }
  }
  return count;
}

// Blocked codes (kernels.h), no VNNI: each half of a group's 64 bytes (8 rows x 4 codes)
// sign-extends to 32 int16 and multiplies-adds against the group's 4 query codes repeated, giving
// 16 int32 (two partial sums per row; |x|, |q| <= 127: exact). The halves' partial sums are
// paired up once per block.
// The group's 4 query codes as int16, repeated.
inline __m512i QueryPattern(const int8_t* q) {
  const uint64_t pat = uint64_t{static_cast<uint16_t>(q[0])} |
                       uint64_t{static_cast<uint16_t>(q[1])} << 16 |
                       uint64_t{static_cast<uint16_t>(q[2])} << 32 |
                       uint64_t{static_cast<uint16_t>(q[3])} << 48;
  return _mm512_set1_epi64(static_cast<long long>(pat));
}

size_t Int8DotFilterAvx512(const int8_t* codes, const float* row_scales, size_t n, size_t stride,
                           const int8_t* query_codes, const int8_t* query_fine, float query_scale,
                           float offset, float threshold, float* out_scores, uint32_t* out_rows) {
  const __m512 vqs = _mm512_set1_ps(query_scale);
  const __m512 vsteps = _mm512_set1_ps(kQueryFineSteps);
  const __m512 voff = _mm512_set1_ps(offset);
  const __m512 vthr = _mm512_set1_ps(threshold);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const size_t groups = stride / kCodeGroup;
  size_t count = 0;
  for (size_t i = 0; i < n; i += kCodeBlockRows) {
    const int8_t* block = codes + i * stride;
    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
    __m512i flo = _mm512_setzero_si512(), fhi = _mm512_setzero_si512();
    for (size_t g = 0; g < groups; ++g) {
      const __m512i qpat = QueryPattern(query_codes + g * kCodeGroup);
      const __m512i fpat = QueryPattern(query_fine + g * kCodeGroup);
      const __m512i x0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + g * 64)));
      const __m512i x1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + g * 64 + 32)));
      lo = _mm512_add_epi32(lo, _mm512_madd_epi16(x0, qpat));
      hi = _mm512_add_epi32(hi, _mm512_madd_epi16(x1, qpat));
      flo = _mm512_add_epi32(flo, _mm512_madd_epi16(x0, fpat));
      fhi = _mm512_add_epi32(fhi, _mm512_madd_epi16(x1, fpat));
    }
    const __m512i dots = _mm512_add_epi32(_mm512_permutex2var_epi32(lo, even, hi),
                                          _mm512_permutex2var_epi32(lo, odd, hi));
    const __m512i fine = _mm512_add_epi32(_mm512_permutex2var_epi32(flo, even, fhi),
                                          _mm512_permutex2var_epi32(flo, odd, fhi));
    const size_t rows = n - i < kCodeBlockRows ? n - i : kCodeBlockRows;
    const __mmask16 live = TailMask16(rows);
    const __m512 sum = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dots), vsteps),
                                     _mm512_cvtepi32_ps(fine));
    const __m512 s = _mm512_mul_ps(
        _mm512_mul_ps(_mm512_add_ps(sum, voff), _mm512_maskz_loadu_ps(live, row_scales + i)),
        vqs);
    unsigned m = _mm512_mask_cmp_ps_mask(live, s, vthr, _CMP_NLE_UQ);
    if (m != 0) count = Emit16(s, m, i, out_scores, out_rows, count);
  }
  return count;
}

size_t EmitTile(__m512 s, __m512 t, size_t row, size_t query_base, float* out_scores,
                uint32_t* out_rows, uint32_t* out_queries, size_t count) {
  unsigned m = _mm512_cmp_ps_mask(s, t, _CMP_NLE_UQ);
  if (m == 0) return count;
  alignas(64) float tmp[16];
  _mm512_store_ps(tmp, s);
  while (m != 0) {
    const unsigned lane = static_cast<unsigned>(__builtin_ctz(m));
    out_scores[count] = tmp[lane];
    out_rows[count] = static_cast<uint32_t>(row);
    out_queries[count] = static_cast<uint32_t>(query_base + lane);
    ++count;
    m &= m - 1;
  }
  return count;
}

// Register-blocked 12 rows x 16 queries (12 zmm accumulators). Each score is a plain FMA chain
// over j, the same in the 12-row and 1-row paths.
size_t GemmFilterAvx512(const float* items, size_t n, size_t d, const float* panels,
                        size_t num_panels, const float* thresholds, float* out_scores,
                        uint32_t* out_rows, uint32_t* out_queries) {
  constexpr size_t kRows = 12;
  size_t count = 0;
  for (size_t p = 0; p < num_panels; ++p) {
    const float* panel = panels + p * d * kPanelWidth;
    const size_t qbase = p * kPanelWidth;
    const __m512 t = _mm512_loadu_ps(thresholds + qbase);
    size_t i = 0;
    for (; i + kRows <= n; i += kRows) {
      const float* r = items + i * d;
      __m512 c[kRows];
      for (size_t k = 0; k < kRows; ++k) c[k] = _mm512_setzero_ps();
      for (size_t j = 0; j < d; ++j) {
        const __m512 b = _mm512_loadu_ps(panel + j * kPanelWidth);
        for (size_t k = 0; k < kRows; ++k) {
          c[k] = _mm512_fmadd_ps(_mm512_set1_ps(r[k * d + j]), b, c[k]);
        }
      }
      for (size_t k = 0; k < kRows; ++k) {
        count = EmitTile(c[k], t, i + k, qbase, out_scores, out_rows, out_queries, count);
      }
    }
    for (; i < n; ++i) {
      const float* r = items + i * d;
      __m512 c = _mm512_setzero_ps();
      for (size_t j = 0; j < d; ++j) {
        c = _mm512_fmadd_ps(_mm512_set1_ps(r[j]), _mm512_loadu_ps(panel + j * kPanelWidth), c);
      }
      count = EmitTile(c, t, i, qbase, out_scores, out_rows, out_queries, count);
    }
  }
  return count;
}

}  // namespace

const KernelTable kAvx512Kernels = {"avx512", DotAvx512, DotFilterAvx512, Int8DotFilterAvx512,
                                    GemmFilterAvx512};
const KernelTable kAvx512VnniKernels = {"avx512", DotAvx512, DotFilterAvx512,
                                        Int8DotFilterAvx512Vnni, GemmFilterAvx512};

}  // namespace kernels
}  // namespace recd
