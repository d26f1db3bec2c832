// Single-precision matrix product for the training loops (the two-tower network), with an
// AVX2+FMA kernel chosen once at run time and a portable fallback (Eigen, baseline x86-64).
//
// recd is built without ISA flags, so Eigen's own product runs on SSE2: 4 lanes and separate
// multiply and add. The AVX2 kernel is compiled for that ISA by a function attribute in
// sgemm.cc (no Eigen code in it, so no template is ever compiled for two ISAs), and used only
// when CPUID reports AVX2 and FMA.
#ifndef RECD_CORE_SGEMM_H_
#define RECD_CORE_SGEMM_H_

#include <cstdint>
#include <string>

namespace recd {

// C (m x n) = A (m x k) · B (k x n) [+ C when accumulate], all row-major with leading
// dimensions (row strides) lda >= k, ldb >= n, ldc >= n. Each entry of C sums its k products
// in ascending k order, so results are deterministic on one machine; the AVX2 kernel and the
// fallback round differently, so results differ between CPUs with and without AVX2.
// Thread-safe (no shared state after the first call); runs on the calling thread.
void Sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool accumulate);

// As Sgemm with A stored transposed: A(i, p) = a[p * lda + i], i.e. `a` holds the k x m matrix
// Aᵀ row-major (lda >= m). Saves the copy when a product needs Xᵀ · Y.
void SgemmTransA(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float* c, int64_t ldc, bool accumulate);

// "avx2" or "portable": the kernel Sgemm uses in this process. RECD_SGEMM=portable forces the
// fallback (for tests and comparisons).
std::string SgemmKernelName();

}  // namespace recd

#endif  // RECD_CORE_SGEMM_H_
