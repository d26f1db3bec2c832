#include "core/spd_inverse.h"

#include <algorithm>

#include "Eigen/Cholesky"
#include "absl/strings/str_cat.h"
#include "core/parallel_for.h"

namespace recd {
namespace {

bool Cancelled(const SpdInverseOptions& o) {
  return o.cancel != nullptr && o.cancel->load(std::memory_order_relaxed);
}

}  // namespace

absl::Status InvertSpdInPlace(Eigen::MatrixXd& a, const SpdInverseOptions& options) {
  const int64_t n = a.rows();
  if (a.cols() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("InvertSpdInPlace: the matrix is ", n, " x ", a.cols(), ", not square"));
  }
  if (options.num_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("InvertSpdInPlace: num_threads must be >= 1, got ", options.num_threads));
  }
  if (n == 0) return absl::OkStatus();
  const int64_t blocks = (n + kSpdBlock - 1) / kSpdBlock;
  auto begin = [&](int64_t b) { return std::min(n, b * kSpdBlock); };
  auto size = [&](int64_t b) { return begin(b + 1) - begin(b); };
  const int threads = options.num_threads;
  const double steps = 3.0 * static_cast<double>(blocks);
  double done = 0.0;
  auto step_done = [&] {
    done += 1.0;
    if (options.progress) options.progress(done / steps);
  };
  auto cancelled = [] { return absl::CancelledError("matrix inversion cancelled"); };

  // 1. Cholesky A = L Lᵀ, right-looking: factor the diagonal block, solve the panel below it,
  // subtract the panel's outer product from the trailing lower triangle.
  for (int64_t k = 0; k < blocks; ++k) {
    if (Cancelled(options)) return cancelled();
    const int64_t k0 = begin(k), kn = size(k);
    auto akk = a.block(k0, k0, kn, kn);
    const Eigen::LLT<Eigen::MatrixXd, Eigen::Lower> llt(akk);
    if (llt.info() != Eigen::Success) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the matrix is not positive definite: its Cholesky factorisation broke down in rows [",
          k0, ", ", k0 + kn, ")"));
    }
    akk.triangularView<Eigen::Lower>() = llt.matrixL();
    akk.triangularView<Eigen::StrictlyUpper>().setZero();
    if (k + 1 < blocks) {
      // A(I, K) := A(I, K) L_KK⁻ᵀ for every row block I below.
      ParallelForBlocks(blocks - k - 1, threads, [&](int64_t t) {
        const int64_t i = k + 1 + t;
        akk.transpose().triangularView<Eigen::Upper>().solveInPlace<Eigen::OnTheRight>(
            a.block(begin(i), k0, size(i), kn));
      });
      // A(J:, J) -= A(J:, K) A(J, K)ᵀ for every column block J to the right (its diagonal block
      // in full: the strict upper part there is never read before it is zeroed).
      ParallelForBlocks(blocks - k - 1, threads, [&](int64_t t) {
        const int64_t j = k + 1 + t;
        const int64_t j0 = begin(j), jn = size(j);
        a.block(j0, j0, n - j0, jn).noalias() -=
            a.block(j0, k0, n - j0, kn) * a.block(j0, k0, jn, kn).transpose();
      });
    }
    step_done();
  }
  // The blocks above the diagonal still hold the input's upper triangle; the products below
  // read whole blocks, so they must be zero.
  for (int64_t j = 1; j < blocks; ++j) a.block(0, begin(j), begin(j), size(j)).setZero();

  // 2. L⁻¹ in place, last column block first: with L = [L_JJ 0; L_RJ L_RR] and L_RR⁻¹ already
  // in place, the block column of L⁻¹ below the diagonal is -L_RR⁻¹ L_RJ L_JJ⁻¹.
  for (int64_t j = blocks - 1; j >= 0; --j) {
    if (Cancelled(options)) return cancelled();
    const int64_t j0 = begin(j), jn = size(j);
    Eigen::MatrixXd inv_jj = Eigen::MatrixXd::Identity(jn, jn);
    a.block(j0, j0, jn, jn).triangularView<Eigen::Lower>().solveInPlace(inv_jj);
    const int64_t r0 = j0 + jn;
    if (r0 < n) {
      const Eigen::MatrixXd l_rj = a.block(r0, j0, n - r0, jn);
      ParallelForBlocks(blocks - j - 1, threads, [&](int64_t t) {
        const int64_t i = j + 1 + t;
        const int64_t i0 = begin(i), in = size(i);
        const int64_t width = i0 + in - r0;  // L_RR⁻¹ row block I is zero right of its diagonal
        const Eigen::MatrixXd partial = a.block(i0, r0, in, width) * l_rj.topRows(width);
        a.block(i0, j0, in, jn).noalias() = -partial * inv_jj;
      });
    }
    a.block(j0, j0, jn, jn) = inv_jj;
    step_done();
  }

  // 3. A⁻¹ = L⁻ᵀ L⁻¹ in place, top block row first: block row I of the product's lower triangle
  // reads only rows >= I of L⁻¹, which are still untouched.
  Eigen::MatrixXd row_block;
  for (int64_t i = 0; i < blocks; ++i) {
    if (Cancelled(options)) return cancelled();
    const int64_t i0 = begin(i), in = size(i);
    row_block.resize(in, i0 + in);
    ParallelForBlocks(i + 1, threads, [&](int64_t j) {
      const int64_t j0 = begin(j), jn = size(j);
      row_block.middleCols(j0, jn).noalias() =
          a.block(i0, i0, n - i0, in).transpose() * a.block(i0, j0, n - i0, jn);
    });
    a.block(i0, 0, in, i0 + in) = row_block;
    step_done();
  }
  // Mirror the lower triangle, so the result is exactly symmetric.
  for (int64_t j = 0; j < blocks; ++j) {
    for (int64_t i = 0; i < j; ++i) {
      a.block(begin(i), begin(j), size(i), size(j)) =
          a.block(begin(j), begin(i), size(j), size(i)).transpose();
    }
    for (int64_t c = begin(j); c < begin(j + 1); ++c) {
      for (int64_t r = begin(j); r < c; ++r) a(r, c) = a(c, r);
    }
  }
  return absl::OkStatus();
}

}  // namespace recd
