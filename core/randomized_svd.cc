#include "core/randomized_svd.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "Eigen/QR"
#include "Eigen/SVD"
#include "absl/strings/str_cat.h"
#include "core/random.h"

namespace recd {
namespace {

// Below this many non-zeros per thread, starting a thread costs more than it saves.
constexpr int64_t kMinNonZerosPerThread = 20'000;

// Orthonormal basis of the columns of x (thin Q of a Householder QR). Householder rather than
// Gram-Schmidt or Cholesky-QR because the blocks coming out of the power iteration are badly
// conditioned and Householder's Q is orthonormal to working precision regardless.
DenseRowMatrix Orthonormalize(const DenseRowMatrix& x) {
  const Eigen::MatrixXd col_major = x;
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(col_major);
  Eigen::MatrixXd q = Eigen::MatrixXd::Identity(x.rows(), x.cols());
  q.applyOnTheLeft(qr.householderQ());
  return q;
}

bool Cancelled(const RandomizedSvdOptions& o) {
  return o.cancel != nullptr && o.cancel->load(std::memory_order_relaxed);
}

using FloatRowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// a * x with each output row accumulated in double, in column order, by one thread, then stored
// as Out's scalar. X's rows are what the product gathers at random: float rows halve those bytes.
template <typename Out, typename X>
Out Product(const InteractionMatrix& a, const X& x, int num_threads) {
  Out out(a.rows(), x.cols());
  const int32_t* outer = a.outerIndexPtr();
  const int32_t* inner = a.innerIndexPtr();
  const float* values = a.valuePtr();
  auto run_rows = [&](int32_t begin, int32_t end) {
    Eigen::RowVectorXd acc(x.cols());
    for (int32_t r = begin; r < end; ++r) {
      acc.setZero();
      for (int32_t k = outer[r]; k < outer[r + 1]; ++k) {
        acc.noalias() += static_cast<double>(values[k]) * x.row(inner[k]).template cast<double>();
      }
      out.row(r) = acc.template cast<typename Out::Scalar>();
    }
  };

  const int64_t nnz = a.nonZeros();
  const int threads = static_cast<int>(
      std::clamp<int64_t>(nnz / kMinNonZerosPerThread, 1, std::max(1, num_threads)));
  if (threads <= 1) {
    run_rows(0, static_cast<int32_t>(a.rows()));
    return out;
  }
  // Contiguous row blocks with about nnz / threads non-zeros each (rows are not split).
  std::vector<int32_t> bounds = {0};
  for (int t = 1; t < threads; ++t) {
    const int64_t target = nnz * t / threads;
    const int32_t* pos = std::lower_bound(outer + bounds.back(), outer + a.rows(), target);
    bounds.push_back(static_cast<int32_t>(pos - outer));
  }
  bounds.push_back(static_cast<int32_t>(a.rows()));
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) workers.emplace_back(run_rows, bounds[t], bounds[t + 1]);
  run_rows(bounds[0], bounds[1]);
  for (std::thread& w : workers) w.join();
  return out;
}

}  // namespace

DenseRowMatrix SparseTimesDense(const InteractionMatrix& a, const DenseRowMatrix& x,
                                int num_threads) {
  return Product<DenseRowMatrix>(a, x, num_threads);
}

absl::StatusOr<RandomizedSvdResult> RandomizedSvd(const InteractionMatrix& a,
                                                  const RandomizedSvdOptions& options) {
  if (options.rank < 1) {
    return absl::InvalidArgumentError(absl::StrCat("rank must be >= 1, got ", options.rank));
  }
  if (options.oversampling < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("oversampling must be >= 0, got ", options.oversampling));
  }
  if (options.power_iterations < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("power_iterations must be >= 0, got ", options.power_iterations));
  }
  if (options.num_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads must be >= 1, got ", options.num_threads));
  }
  const int64_t m = a.rows();
  const int64_t n = a.cols();
  if (m == 0 || n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot factor an empty ", m, " x ", n, " matrix"));
  }

  // Work with M whose column side is the smaller one: the power iteration orthonormalises
  // blocks of that side only, and the one QR on the larger side happens once at the end.
  const InteractionMatrix at = a.transpose();
  const bool cols_small = n <= m;
  const InteractionMatrix& mat = cols_small ? a : at;
  const InteractionMatrix& mat_t = cols_small ? at : a;
  const int64_t small = std::min(m, n);
  const int64_t k = std::min<int64_t>(options.rank, small);
  const int64_t l = std::min<int64_t>(int64_t{options.rank} + options.oversampling, small);
  const int passes = options.power_iterations + 2;
  auto report = [&](int done) {
    if (options.progress) options.progress(static_cast<double>(done) / passes);
  };

  // Gaussian start block, filled row by row so its values depend only on the seed and shape.
  PortableRng rng(options.seed);
  DenseRowMatrix z(small, l);
  for (int64_t i = 0; i < small; ++i) {
    for (int64_t j = 0; j < l; ++j) z(i, j) = rng.Normal();
  }

  for (int it = 0; it <= options.power_iterations; ++it) {
    if (Cancelled(options)) return absl::CancelledError("randomized SVD cancelled");
    const FloatRowMatrix z_f = z.cast<float>();
    const FloatRowMatrix y = Product<FloatRowMatrix>(mat, z_f, options.num_threads);
    z = Orthonormalize(Product<DenseRowMatrix>(mat_t, y, options.num_threads));
    report(it + 1);
  }
  if (Cancelled(options)) return absl::CancelledError("randomized SVD cancelled");

  // mat ~= B zᵀ with B = mat z (large side x l). SVD of B through its QR: B = Q_B R and
  // R = U_R S V_Rᵀ (l x l, Jacobi: small and accurate), so mat ~= (Q_B U_R) S (z V_R)ᵀ.
  const Eigen::MatrixXd b = SparseTimesDense(mat, z, options.num_threads);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr_b(b);
  const Eigen::MatrixXd r = qr_b.matrixQR().topRows(l).triangularView<Eigen::Upper>();
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(r, Eigen::ComputeFullU | Eigen::ComputeFullV);

  RandomizedSvdResult result;
  result.singular_values = svd.singularValues().head(k);
  const Eigen::MatrixXd right_small = Eigen::MatrixXd(z) * svd.matrixV().leftCols(k);
  const bool need_left = !cols_small || options.compute_u;
  Eigen::MatrixXd left_large;
  if (need_left) {
    left_large = Eigen::MatrixXd::Identity(b.rows(), l);
    left_large.applyOnTheLeft(qr_b.householderQ());
    left_large = left_large * svd.matrixU().leftCols(k);
  }
  if (cols_small) {
    result.v = right_small;
    if (options.compute_u) result.u = std::move(left_large);
  } else {
    result.v = std::move(left_large);
    if (options.compute_u) result.u = right_small;
  }

  // Fix the sign ambiguity (see header).
  for (int64_t c = 0; c < k; ++c) {
    Eigen::Index arg = 0;
    result.v.col(c).cwiseAbs().maxCoeff(&arg);
    if (result.v(arg, c) < 0.0) {
      result.v.col(c) *= -1.0;
      if (options.compute_u) result.u.col(c) *= -1.0;
    }
  }
  report(passes);
  return result;
}

}  // namespace recd
