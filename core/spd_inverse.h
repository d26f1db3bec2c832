// The inverse of a dense symmetric positive-definite matrix, in place and multi-threaded: what
// EASE's closed form P = (XᵀX + λI)⁻¹ needs (core/ease.h).
//
// The method is LAPACK's potrf + potri: the Cholesky factor A = L Lᵀ (right-looking), then L⁻¹
// in place (trtri), then A⁻¹ = L⁻ᵀ L⁻¹ in place (lauum), each in blocks of kSpdBlock columns
// whose updates are matrix products spread over threads. About n³ floating-point operations in
// all (n³/3 per step) and no memory beyond the matrix itself and one block row of temporaries,
// against about 2.3 n³ for Eigen's LLT followed by a solve against the identity.
//
// Determinism: the blocks are fixed by n alone and every output block is computed by exactly one
// thread with products whose shapes depend on n alone, so the result is bit-identical for any
// thread count (on one machine).
#ifndef RECD_CORE_SPD_INVERSE_H_
#define RECD_CORE_SPD_INVERSE_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "Eigen/Core"
#include "absl/status/status.h"

namespace recd {

// Columns per block of the factorisation: large enough for the products to run near the core's
// peak, small enough that a few-thousand-column matrix still has work for every thread.
inline constexpr int64_t kSpdBlock = 128;

struct SpdInverseOptions {
  int num_threads = 1;  // >= 1; threads are started and joined inside
  // Polled between block steps: Cancelled when it becomes true. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Called after each block step with the fraction done in [0, 1]. May be null.
  std::function<void(double)> progress;
};

// Replaces `a` (n x n, only its lower triangle is read) by its inverse (full, symmetric).
// InvalidArgument if `a` is not square; FailedPrecondition if it is not positive definite (to
// working precision), naming the rows where the factorisation broke down; Cancelled. On error
// the contents of `a` are unspecified.
absl::Status InvertSpdInPlace(Eigen::MatrixXd& a, const SpdInverseOptions& options);

}  // namespace recd

#endif  // RECD_CORE_SPD_INVERSE_H_
