// Per-instruction-set scoring kernels behind one table of function pointers.
//
// Each ISA level is compiled in its own translation unit with its own flags (scalar.cc: baseline
// x86-64; avx2.cc: -mavx2 -mfma; avx512.cc: -mavx512f/bw/vl/dq; avx512_vnni.cc: also -mavx512vnni). To keep the One Definition Rule
// safe across those flag sets, kernel files include only this header, <cstddef>, <cstdint> and
// <immintrin.h>: no Eigen, no standard templates, nothing with inline functions that the linker
// could merge across TUs compiled for different CPUs. This header declares plain data and
// functions only.
//
// Conventions shared by every kernel:
//  - Item matrices are row-major with a row stride of `d` floats (or `stride` bytes for codes).
//  - Filtering: a kernel writes (score, row) for rows whose score s satisfies !(s <= threshold),
//    in increasing row order. A NaN threshold therefore keeps every row (used while a top-k heap
//    is not yet full); NaN scores always pass (the caller ranks them as -inf). Rows are offsets
//    from the start of the block passed in.
//  - Output arrays must have room for every row of the block (times queries for batch kernels).
//  - Scores of one row never depend on its position in the block (a row scored in an 8-row group
//    or on its own gets bitwise the same value), so results do not depend on how a scan is split.
#ifndef RECD_CORE_KERNELS_KERNELS_H_
#define RECD_CORE_KERNELS_KERNELS_H_

#include <cstddef>
#include <cstdint>

namespace recd {
namespace kernels {

// Dot product of two length-d vectors; same arithmetic as one row of DotFilterFn.
using DotFn = float (*)(const float* a, const float* b, size_t d);

// Exact float32 scan: score_i = dot(items_i, query) for i in [0, n), filtered by `threshold`.
// Returns the number of rows written to out_scores / out_rows.
using DotFilterFn = size_t (*)(const float* items, size_t n, size_t d, const float* query,
                               float threshold, float* out_scores, uint32_t* out_rows);

// Quantized scan. Codes are int8 in [-127, 127], stored in blocks of kCodeBlockRows rows so
// that SIMD kernels score a whole block with one multiply-add per kCodeGroup codes: each row has
// `stride` codes (a multiple of kCodeGroup, zero padded past d), and code j of row r sits at byte
//   (r / kCodeBlockRows) * kCodeBlockRows * stride + (j / kCodeGroup) * kCodeBlockRows * kCodeGroup
//     + (r % kCodeBlockRows) * kCodeGroup + j % kCodeGroup
// i.e. a block is stride / kCodeGroup runs of 64 bytes, run g holding codes 4g..4g+3 of its 16
// rows. `codes` points at the block of the first row, so callers scan from rows that are
// multiples of kCodeBlockRows, and the array holds whole blocks (rows past n may hold anything;
// they are never reported). The query comes in two int8 codes of `stride` codes each (zero
// padded): `query_codes` and `query_fine`, the part of the query the first one rounded off, in
// units kQueryFineSteps times smaller. Score_i =
//   (float(idot(codes_i, query_codes)) * kQueryFineSteps + float(idot(codes_i, query_fine))
//    + offset) * row_scales[i] * query_scale
// (added and multiplied in that order; the product by kQueryFineSteps, a power of two, is
// exact, so a fused multiply-add gives the same sum; offset 0 gives the approximate score, a
// positive offset an upper bound whose slack scales with the row's scale). Integer dot products
// are exact, so every level returns bitwise the same scores. Filtered like DotFilterFn.
using Int8DotFilterFn = size_t (*)(const int8_t* codes, const float* row_scales, size_t n,
                                   size_t stride, const int8_t* query_codes,
                                   const int8_t* query_fine, float query_scale, float offset,
                                   float threshold, float* out_scores, uint32_t* out_rows);
inline constexpr float kQueryFineSteps = 128.0f;

// Batch scan: scores every row of `items` (n x d) against every query of `num_panels` packed
// query panels. Panel p holds queries [p*kPanelWidth, (p+1)*kPanelWidth) transposed: d x
// kPanelWidth floats, panel[j * kPanelWidth + c] = query_c[j]. `thresholds` has one entry per
// (padded) query; padding queries should have threshold +inf. Writes (score, row, query) triples
// for every pair passing its query's threshold; returns the count. Each score is the sequential
// sum over j of fused multiply-adds, so it is independent of the row's position in the block.
using GemmFilterFn = size_t (*)(const float* items, size_t n, size_t d, const float* panels,
                                size_t num_panels, const float* thresholds, float* out_scores,
                                uint32_t* out_rows, uint32_t* out_queries);

inline constexpr size_t kPanelWidth = 16;
inline constexpr size_t kCodeBlockRows = 16;
inline constexpr size_t kCodeGroup = 4;

struct KernelTable {
  const char* isa;  // "scalar", "avx2", "avx512"
  DotFn dot;
  DotFilterFn dot_filter;
  Int8DotFilterFn int8_dot_filter;
  GemmFilterFn gemm_filter;  // null: the caller uses its portable blocked GEMM
};

extern const KernelTable kScalarKernels;
extern const KernelTable kAvx2Kernels;    // requires AVX2 and FMA
extern const KernelTable kAvx512Kernels;  // requires AVX-512 F, BW, VL and DQ
// kAvx512Kernels with the int8 scan on VNNI (vpdpbusd: 64 byte products per instruction);
// requires AVX-512 F, BW, VL, DQ and VNNI. Same name ("avx512"): the scores are bitwise equal.
extern const KernelTable kAvx512VnniKernels;

// Defined in avx512_vnni.cc (compiled with -mavx512vnni), used by kAvx512VnniKernels.
size_t Int8DotFilterAvx512Vnni(const int8_t* codes, const float* row_scales, size_t n,
                               size_t stride, const int8_t* query_codes, const int8_t* query_fine,
                               float query_scale, float offset, float threshold,
                               float* out_scores, uint32_t* out_rows);

}  // namespace kernels
}  // namespace recd

#endif  // RECD_CORE_KERNELS_KERNELS_H_
