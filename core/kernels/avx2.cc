// AVX2 + FMA kernels. Compiled with -mavx2 -mfma -ffp-contract=off; only called after CPUID
// says the CPU has both. See kernels.h for the include rules of this file.
#include <immintrin.h>

#include "core/kernels/kernels.h"

namespace recd {
namespace kernels {
namespace {

// maskload masks for a d % 8 tail: kTailMask + (8 - rem) has `rem` leading all-ones lanes.
alignas(32) const int32_t kTailMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                           0,  0,  0,  0,  0,  0,  0,  0};

__m256i TailMask(size_t rem) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTailMask + 8 - rem));
}

// Sum of the 8 lanes as ((a0+a1)+(a2+a3)) + ((a4+a5)+(a6+a7)): the same tree Reduce8 applies to
// each row, so a row scored alone equals the row scored in a group.
float Hsum(__m256 a) {
  const __m256 h = _mm256_hadd_ps(a, a);
  const __m256 h2 = _mm256_hadd_ps(h, h);
  return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(h2), _mm256_extractf128_ps(h2, 1)));
}

// Lane r of the result is Hsum(a_r).
__m256 Reduce8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
               __m256 a7) {
  const __m256 t0 = _mm256_hadd_ps(a0, a1);
  const __m256 t1 = _mm256_hadd_ps(a2, a3);
  const __m256 t2 = _mm256_hadd_ps(a4, a5);
  const __m256 t3 = _mm256_hadd_ps(a6, a7);
  const __m256 u0 = _mm256_hadd_ps(t0, t1);  // rows 0-3: low-half sums | high-half sums
  const __m256 u1 = _mm256_hadd_ps(t2, t3);  // rows 4-7
  const __m256 lo = _mm256_permute2f128_ps(u0, u1, 0x20);
  const __m256 hi = _mm256_permute2f128_ps(u0, u1, 0x31);
  return _mm256_add_ps(lo, hi);
}

// Lane accumulator of one row: lane l holds the sum over chunks of a[8c+l]*b[8c+l].
__m256 RowAcc(const float* a, const float* b, size_t d8, size_t rem, __m256i mask) {
  __m256 acc = _mm256_setzero_ps();
  for (size_t j = 0; j < d8; j += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), acc);
  }
  if (rem != 0) {
    acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + d8, mask), _mm256_maskload_ps(b + d8, mask), acc);
  }
  return acc;
}

float DotAvx2(const float* a, const float* b, size_t d) {
  const size_t d8 = d & ~size_t{7};
  const size_t rem = d - d8;
  return Hsum(RowAcc(a, b, d8, rem, TailMask(rem)));
}

// Writes the lanes of `scores` selected by `mask` as candidates for rows base + lane.
inline size_t Emit8(__m256 scores, int mask, size_t base, float* out_scores, uint32_t* out_rows,
                    size_t count) {
  alignas(32) float tmp[8];
  _mm256_store_ps(tmp, scores);
  while (mask != 0) {
    const int lane = __builtin_ctz(static_cast<unsigned>(mask));
    out_scores[count] = tmp[lane];
    out_rows[count] = static_cast<uint32_t>(base + static_cast<size_t>(lane));
    ++count;
    mask &= mask - 1;
  }
  return count;
}

// DotFilterAvx2 for d = 8 * kChunks (+ a masked tail chunk when kTail), with the query's chunks
// held in registers: the generic loop reloads them for every row, as many loads as the scan's
// own, and the scan then fell further behind a plain streaming read (bench: 75-86 % of the
// bandwidth probe generic, 87-94 % with the query in registers, d = 64). Same arithmetic as
// RowAcc row by row (fused multiply-adds from a zero accumulator, chunk by chunk), so scores are
// bitwise those of DotAvx2 and of the generic loop.
template <size_t kChunks, bool kTail>
size_t DotFilterQueryInRegisters(const float* items, size_t n, size_t d, const float* query,
                                 float threshold, float* out_scores, uint32_t* out_rows) {
  constexpr size_t kQueryRegs = kChunks + (kTail ? 1 : 0);
  const __m256i mask = TailMask(d - kChunks * 8);
  __m256 q[kQueryRegs];
#pragma GCC unroll 9
  for (size_t c = 0; c < kChunks; ++c) q[c] = _mm256_loadu_ps(query + 8 * c);
  if constexpr (kTail) q[kChunks] = _mm256_maskload_ps(query + 8 * kChunks, mask);
  auto row = [&](const float* r) {
    __m256 acc = _mm256_setzero_ps();
#pragma GCC unroll 9
    for (size_t c = 0; c < kChunks; ++c) acc = _mm256_fmadd_ps(_mm256_loadu_ps(r + 8 * c), q[c], acc);
    if constexpr (kTail) acc = _mm256_fmadd_ps(_mm256_maskload_ps(r + 8 * kChunks, mask), q[kChunks], acc);
    return acc;
  };
  const __m256 vthr = _mm256_set1_ps(threshold);
  size_t count = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float* r = items + i * d;
    const __m256 s = Reduce8(row(r), row(r + d), row(r + 2 * d), row(r + 3 * d), row(r + 4 * d),
                             row(r + 5 * d), row(r + 6 * d), row(r + 7 * d));
    const int m = _mm256_movemask_ps(_mm256_cmp_ps(s, vthr, _CMP_NLE_UQ));
    if (m != 0) count = Emit8(s, m, i, out_scores, out_rows, count);
  }
  for (; i < n; ++i) {
    const float s = Hsum(row(items + i * d));
    if (!(s <= threshold)) {
      out_scores[count] = s;
      out_rows[count] = static_cast<uint32_t>(i);
      ++count;
    }
  }
  return count;
}

size_t DotFilterAvx2(const float* items, size_t n, size_t d, const float* query, float threshold,
                     float* out_scores, uint32_t* out_rows) {
  // Up to 64 dimensions the query fits in registers next to the eight row accumulators.
  switch (d) {
#define RECD_QUERY_IN_REGISTERS(chunks)                                                          \
  case 8 * (chunks):                                                                           \
    return DotFilterQueryInRegisters<chunks, false>(items, n, d, query, threshold, out_scores, \
                                                    out_rows);
    RECD_QUERY_IN_REGISTERS(1)
    RECD_QUERY_IN_REGISTERS(2)
    RECD_QUERY_IN_REGISTERS(3)
    RECD_QUERY_IN_REGISTERS(4)
    RECD_QUERY_IN_REGISTERS(5)
    RECD_QUERY_IN_REGISTERS(6)
    RECD_QUERY_IN_REGISTERS(7)
    RECD_QUERY_IN_REGISTERS(8)
#undef RECD_QUERY_IN_REGISTERS
    default:
      break;
  }
  if (d < 64) {
    switch (d / 8) {
      case 0: return DotFilterQueryInRegisters<0, true>(items, n, d, query, threshold, out_scores, out_rows);
      case 1: return DotFilterQueryInRegisters<1, true>(items, n, d, query, threshold, out_scores, out_rows);
      case 2: return DotFilterQueryInRegisters<2, true>(items, n, d, query, threshold, out_scores, out_rows);
      case 3: return DotFilterQueryInRegisters<3, true>(items, n, d, query, threshold, out_scores, out_rows);
      case 4: return DotFilterQueryInRegisters<4, true>(items, n, d, query, threshold, out_scores, out_rows);
      case 5: return DotFilterQueryInRegisters<5, true>(items, n, d, query, threshold, out_scores, out_rows);
      case 6: return DotFilterQueryInRegisters<6, true>(items, n, d, query, threshold, out_scores, out_rows);
      case 7: return DotFilterQueryInRegisters<7, true>(items, n, d, query, threshold, out_scores, out_rows);
      default: break;
    }
  }
  const size_t d8 = d & ~size_t{7};
  const size_t rem = d - d8;
  const __m256i mask = TailMask(rem);
  const __m256 vthr = _mm256_set1_ps(threshold);
  size_t count = 0;
  size_t i = 0;
  // Eight rows at a time, each accumulated in turn so memory is read strictly sequentially
  // (walking the 8 rows in lockstep instead, a strided pattern, cost a third of the DRAM
  // bandwidth); the eight FMA chains are independent, so out-of-order execution overlaps them.
  // One transposed reduction then yields all 8 scores for a single vector compare.
  for (; i + 8 <= n; i += 8) {
    const float* r = items + i * d;
    const __m256 a0 = RowAcc(r, query, d8, rem, mask);
    const __m256 a1 = RowAcc(r + d, query, d8, rem, mask);
    const __m256 a2 = RowAcc(r + 2 * d, query, d8, rem, mask);
    const __m256 a3 = RowAcc(r + 3 * d, query, d8, rem, mask);
    const __m256 a4 = RowAcc(r + 4 * d, query, d8, rem, mask);
    const __m256 a5 = RowAcc(r + 5 * d, query, d8, rem, mask);
    const __m256 a6 = RowAcc(r + 6 * d, query, d8, rem, mask);
    const __m256 a7 = RowAcc(r + 7 * d, query, d8, rem, mask);
    const __m256 s = Reduce8(a0, a1, a2, a3, a4, a5, a6, a7);
    const int m = _mm256_movemask_ps(_mm256_cmp_ps(s, vthr, _CMP_NLE_UQ));
    if (m != 0) count = Emit8(s, m, i, out_scores, out_rows, count);
  }
  for (; i < n; ++i) {
    const float s = Hsum(RowAcc(items + i * d, query, d8, rem, mask));
    if (!(s <= threshold)) {
      out_scores[count] = s;
      out_rows[count] = static_cast<uint32_t>(i);
      ++count;
    }
  }
  return count;
}

// int8 dot of one 32-byte chunk via the sign trick: maddubs(|q|, sign(x, q)) = pairwise sums of
// q*x as int16 (|q|, |x| <= 127, so no saturation), then madd with ones to int32.
inline __m256i ChunkDot(__m256i x, __m256i q_abs, __m256i q, __m256i ones16) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q_abs, _mm256_sign_epi8(x, q)), ones16);
}

// The 8 rows of one half block (32 bytes per group: rows 0-7 of the block, or 8-15), lane r =
// row r's dot product. `qa` / `qs` hold each group's 4 query codes repeated 8 times, as |q| and
// as q (see ChunkDot).
inline __m256i HalfBlockDot(const int8_t* half, size_t groups, const __m256i* qa, const __m256i* qs,
                            __m256i ones16) {
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  size_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half + g * 64));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half + g * 64 + 64));
    acc0 = _mm256_add_epi32(acc0, ChunkDot(x0, qa[g], qs[g], ones16));
    acc1 = _mm256_add_epi32(acc1, ChunkDot(x1, qa[g + 1], qs[g + 1], ones16));
  }
  if (g < groups) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half + g * 64));
    acc0 = _mm256_add_epi32(acc0, ChunkDot(x0, qa[g], qs[g], ones16));
  }
  return _mm256_add_epi32(acc0, acc1);
}

// Blocked codes (kernels.h): one 32-byte load holds 4 codes of 8 rows, so the sign trick with
// the group's query codes repeated 8 times gives 8 row sums per load, with no horizontal
// reduction. Query vectors are built once per call (stride / 4 pairs of ymm).
// The 16 rows' dot products with one query code over `groups` groups: lo = rows 0-7, hi = rows
// 8-15. The first `held` groups' query vectors are prepared in qa / qs (see ChunkDot); the rest
// (rows wider than 256 codes) are built here.
inline void BlockDot(const int8_t* block, const int8_t* query_codes, size_t groups, size_t held,
                     const __m256i* qa, const __m256i* qs, __m256i ones16, __m256i* lo, __m256i* hi) {
  *lo = HalfBlockDot(block, held, qa, qs, ones16);
  *hi = HalfBlockDot(block + 32, held, qa, qs, ones16);
  for (size_t g = held; g < groups; ++g) {
    int32_t word;
    __builtin_memcpy(&word, query_codes + g * kCodeGroup, sizeof(word));
    const __m256i q = _mm256_set1_epi32(word);
    const __m256i qabs = _mm256_abs_epi8(q);
    *lo = _mm256_add_epi32(*lo, ChunkDot(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + g * 64)),
                                         qabs, q, ones16));
    *hi = _mm256_add_epi32(*hi, ChunkDot(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + g * 64 + 32)),
                                         qabs, q, ones16));
  }
}

size_t Int8DotFilterAvx2(const int8_t* codes, const float* row_scales, size_t n, size_t stride,
                         const int8_t* query_codes, const int8_t* query_fine, float query_scale,
                         float offset, float threshold, float* out_scores, uint32_t* out_rows) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256 vqs = _mm256_set1_ps(query_scale);
  const __m256 voff = _mm256_set1_ps(offset);
  const __m256 vthr = _mm256_set1_ps(threshold);
  const __m256 vsteps = _mm256_set1_ps(kQueryFineSteps);
  const size_t groups = stride / kCodeGroup;
  // Query vectors for up to 64 groups (d <= 256) stay in L1; wider rows build the rest per block.
  constexpr size_t kMaxGroups = 64;
  __m256i qa[kMaxGroups], qs[kMaxGroups], fa[kMaxGroups], fs[kMaxGroups];
  size_t count = 0;
  const size_t held = groups < kMaxGroups ? groups : kMaxGroups;
  for (size_t g = 0; g < held; ++g) {
    int32_t word;
    __builtin_memcpy(&word, query_codes + g * kCodeGroup, sizeof(word));
    qs[g] = _mm256_set1_epi32(word);
    qa[g] = _mm256_abs_epi8(qs[g]);
    __builtin_memcpy(&word, query_fine + g * kCodeGroup, sizeof(word));
    fs[g] = _mm256_set1_epi32(word);
    fa[g] = _mm256_abs_epi8(fs[g]);
  }
  for (size_t i = 0; i < n; i += kCodeBlockRows) {
    const int8_t* block = codes + i * stride;
    __m256i lo, hi, flo, fhi;
    BlockDot(block, query_codes, groups, held, qa, qs, ones16, &lo, &hi);
    BlockDot(block, query_fine, groups, held, fa, fs, ones16, &flo, &fhi);
    const size_t rows = n - i < kCodeBlockRows ? n - i : kCodeBlockRows;
    for (size_t h = 0; h < 2 && h * 8 < rows; ++h) {
      const size_t live = rows - h * 8 < 8 ? rows - h * 8 : 8;
      const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(live)),
                                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      const __m256 sum = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(h == 0 ? lo : hi), vsteps),
                                       _mm256_cvtepi32_ps(h == 0 ? flo : fhi));
      const __m256 dots = _mm256_add_ps(sum, voff);
      const __m256 scales = _mm256_maskload_ps(row_scales + i + h * 8, mask);
      const __m256 s = _mm256_mul_ps(_mm256_mul_ps(dots, scales), vqs);
      const int m = _mm256_movemask_ps(_mm256_cmp_ps(s, vthr, _CMP_NLE_UQ)) &
                    ((1 << static_cast<int>(live)) - 1);
      if (m != 0) count = Emit8(s, m, i + h * 8, out_scores, out_rows, count);
    }
  }
  return count;
}

// Candidates of one (row, panel) tile: lanes of lo (queries 0-7) and hi (8-15) passing t0/t1.
inline size_t EmitTile(__m256 lo, __m256 hi, __m256 t0, __m256 t1, size_t row, size_t query_base,
                       float* out_scores, uint32_t* out_rows, uint32_t* out_queries,
                       size_t count) {
  int m = _mm256_movemask_ps(_mm256_cmp_ps(lo, t0, _CMP_NLE_UQ)) |
          (_mm256_movemask_ps(_mm256_cmp_ps(hi, t1, _CMP_NLE_UQ)) << 8);
  if (m == 0) return count;
  alignas(32) float tmp[16];
  _mm256_store_ps(tmp, lo);
  _mm256_store_ps(tmp + 8, hi);
  while (m != 0) {
    const int lane = __builtin_ctz(static_cast<unsigned>(m));
    out_scores[count] = tmp[lane];
    out_rows[count] = static_cast<uint32_t>(row);
    out_queries[count] = static_cast<uint32_t>(query_base + static_cast<size_t>(lane));
    ++count;
    m &= m - 1;
  }
  return count;
}

// Register-blocked 6 rows x 16 queries: 12 accumulators, 2 panel vectors and 1 broadcast fill
// the 16 ymm registers. The panel (d x 16 floats) stays in L1 while the item block streams
// from L2; each score is a plain FMA chain over j, the same in the 6-row and 1-row paths.
size_t GemmFilterAvx2(const float* items, size_t n, size_t d, const float* panels,
                      size_t num_panels, const float* thresholds, float* out_scores,
                      uint32_t* out_rows, uint32_t* out_queries) {
  size_t count = 0;
  for (size_t p = 0; p < num_panels; ++p) {
    const float* panel = panels + p * d * kPanelWidth;
    const size_t qbase = p * kPanelWidth;
    const __m256 t0 = _mm256_loadu_ps(thresholds + qbase);
    const __m256 t1 = _mm256_loadu_ps(thresholds + qbase + 8);
    size_t i = 0;
    for (; i + 6 <= n; i += 6) {
      const float* r = items + i * d;
      __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
             c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
             c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
             c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
      for (size_t j = 0; j < d; ++j) {
        const __m256 b0 = _mm256_loadu_ps(panel + j * kPanelWidth);
        const __m256 b1 = _mm256_loadu_ps(panel + j * kPanelWidth + 8);
        __m256 a = _mm256_broadcast_ss(r + j);
        c00 = _mm256_fmadd_ps(a, b0, c00);
        c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(r + d + j);
        c10 = _mm256_fmadd_ps(a, b0, c10);
        c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(r + 2 * d + j);
        c20 = _mm256_fmadd_ps(a, b0, c20);
        c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(r + 3 * d + j);
        c30 = _mm256_fmadd_ps(a, b0, c30);
        c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(r + 4 * d + j);
        c40 = _mm256_fmadd_ps(a, b0, c40);
        c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(r + 5 * d + j);
        c50 = _mm256_fmadd_ps(a, b0, c50);
        c51 = _mm256_fmadd_ps(a, b1, c51);
      }
      count = EmitTile(c00, c01, t0, t1, i, qbase, out_scores, out_rows, out_queries, count);
      count = EmitTile(c10, c11, t0, t1, i + 1, qbase, out_scores, out_rows, out_queries, count);
      count = EmitTile(c20, c21, t0, t1, i + 2, qbase, out_scores, out_rows, out_queries, count);
      count = EmitTile(c30, c31, t0, t1, i + 3, qbase, out_scores, out_rows, out_queries, count);
      count = EmitTile(c40, c41, t0, t1, i + 4, qbase, out_scores, out_rows, out_queries, count);
      count = EmitTile(c50, c51, t0, t1, i + 5, qbase, out_scores, out_rows, out_queries, count);
    }
    for (; i < n; ++i) {
      const float* r = items + i * d;
      __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps();
      for (size_t j = 0; j < d; ++j) {
        const __m256 a = _mm256_broadcast_ss(r + j);
        c0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(panel + j * kPanelWidth), c0);
        c1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(panel + j * kPanelWidth + 8), c1);
      }
      count = EmitTile(c0, c1, t0, t1, i, qbase, out_scores, out_rows, out_queries, count);
    }
  }
  return count;
}

}  // namespace

const KernelTable kAvx2Kernels = {"avx2", DotAvx2, DotFilterAvx2, Int8DotFilterAvx2,
                                  GemmFilterAvx2};

}  // namespace kernels
}  // namespace recd
