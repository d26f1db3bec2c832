// Single-precision kernels for the training loops (the two-tower network): matrix product, the
// exponentials of a softmax row and the Adam update, each with an AVX2(+FMA) kernel chosen once
// at run time and a portable fallback (Eigen or SSE2, baseline x86-64).
//
// recd is built without ISA flags, so Eigen's own code runs on SSE2: 4 lanes, separate multiply
// and add, and an exp without a rounding instruction. The AVX2 kernels are compiled for that ISA
// by a function attribute in sgemm.cc (no Eigen code in them, so no template is ever compiled
// for two ISAs), and used only when CPUID reports AVX2 and FMA.
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

// x[j] = exp(x[j] - shift) for j < n, in place; returns the sum of the results, accumulated in
// an order fixed by n alone (deterministic on one machine). Where x[j] - shift < -87.33654 (the
// result would not be a normal float) or is -inf, the result is 0. The AVX2 kernel's exp is a polynomial
// within a few ulp of the true value; it and Eigen's (the fallback) round differently.
float ExpShiftedSum(int64_t n, float shift, float* x);

// One step of Adam as torch.optim.Adam (L2 weight decay added to the gradient) over n
// parameters, which also clears the gradient: per entry, in this order and in float,
//   g = grad + weight_decay * param
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + ((1 - beta2) * g) * g
//   param -= (step * m) / (sqrt(v) * inv_sqrt_bc2 + eps),   grad = 0
// with step = lr / (1 - beta1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t) at step t. No fused
// multiply-add and IEEE sqrt and division: every kernel gives the same bits.
struct AdamStepParams {
  float step = 0, inv_sqrt_bc2 = 1, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0;
};
void AdamStep(int64_t n, const AdamStepParams& p, float* param, float* m, float* v, float* grad);

// "avx2" or "portable": the kernels this process uses. RECD_SGEMM=portable forces the fallback
// (for tests and comparisons).
std::string SgemmKernelName();

}  // namespace recd

#endif  // RECD_CORE_SGEMM_H_
