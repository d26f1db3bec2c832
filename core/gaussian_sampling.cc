#include "core/gaussian_sampling.h"

#include <cmath>

namespace recd {

double SampleGamma(PortableRng& rng, double shape) {
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) · U^(1/a) (Marsaglia & Tsang, section 6): the squeeze below needs
    // a >= 1. The uniform is drawn first so the stream order is fixed.
    const double u = rng.UniformPositive();
    return SampleGamma(rng, shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = rng.Normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = rng.UniformPositive();
    const double x2 = x * x;
    // The cheap squeeze accepts ~98% of candidates without a logarithm.
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;
    if (std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return d * v;
  }
}

double SampleChiSquare(PortableRng& rng, double dof) { return 2.0 * SampleGamma(rng, 0.5 * dof); }

Eigen::MatrixXd SampleWishart(PortableRng& rng, const Eigen::MatrixXd& scale_factor, double dof) {
  const Eigen::Index k = scale_factor.rows();
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(k, k);
  for (Eigen::Index i = 0; i < k; ++i) {
    a(i, i) = std::sqrt(SampleChiSquare(rng, dof - static_cast<double>(i)));
    for (Eigen::Index j = 0; j < i; ++j) a(i, j) = rng.Normal();
  }
  const Eigen::MatrixXd m = scale_factor * a.triangularView<Eigen::Lower>();
  // M Mᵀ by a rank update, so the result is symmetric to the bit (a plain product need not be).
  Eigen::MatrixXd lower = Eigen::MatrixXd::Zero(k, k);
  lower.selfadjointView<Eigen::Lower>().rankUpdate(m);
  return lower.selfadjointView<Eigen::Lower>();
}

NormalWishart NormalWishartPosterior(const NormalWishart& prior, int64_t n,
                                     const Eigen::VectorXd& sum, const Eigen::MatrixXd& sum_outer) {
  if (n <= 0) return prior;
  const double nd = static_cast<double>(n);
  NormalWishart post;
  post.beta = prior.beta + nd;
  post.dof = prior.dof + nd;
  const Eigen::VectorXd xbar = sum / nd;
  post.mean = (prior.beta * prior.mean + sum) / post.beta;
  // S = Σ x xᵀ − n x̄ x̄ᵀ; the two rank-one terms are folded into one symmetric update.
  const Eigen::MatrixXd outer = sum_outer.selfadjointView<Eigen::Lower>();
  const Eigen::VectorXd d = xbar - prior.mean;
  Eigen::MatrixXd w = prior.inverse_scale + outer - nd * xbar * xbar.transpose() +
                      (prior.beta * nd / post.beta) * d * d.transpose();
  post.inverse_scale = 0.5 * (w + w.transpose());
  return post;
}

GaussianParams SampleNormalWishart(PortableRng& rng, const NormalWishart& nw) {
  const Eigen::Index k = nw.mean.size();
  // W⁻¹ = C Cᵀ, so W = C⁻ᵀ C⁻¹ and F = C⁻ᵀ is a factor of W: no explicit inverse needed.
  const Eigen::LLT<Eigen::MatrixXd> inv_scale(nw.inverse_scale);
  const Eigen::MatrixXd factor = inv_scale.matrixU().solve(Eigen::MatrixXd::Identity(k, k));
  GaussianParams out;
  out.precision = SampleWishart(rng, factor, nw.dof);
  const Eigen::LLT<Eigen::MatrixXd> mean_precision(nw.beta * out.precision);
  out.mean.resize(k);
  SampleGaussianFromPrecision(rng, mean_precision, nw.mean, out.mean);
  return out;
}

void SampleGaussianFromPrecision(PortableRng& rng, const Eigen::LLT<Eigen::MatrixXd>& precision,
                                 const Eigen::VectorXd& mean, Eigen::VectorXd& x) {
  for (Eigen::Index j = 0; j < x.size(); ++j) x(j) = rng.Normal();
  // Cov(L⁻ᵀ z) = L⁻ᵀ L⁻¹ = (L Lᵀ)⁻¹ = P⁻¹.
  precision.matrixU().solveInPlace(x);
  x += mean;
}

void SampleGaussianCanonical(PortableRng& rng, const Eigen::LLT<Eigen::MatrixXd>& precision,
                             Eigen::VectorXd& h_then_x) {
  // mean = L⁻ᵀ L⁻¹ h, and mean + L⁻ᵀ z = L⁻ᵀ (L⁻¹ h + z).
  precision.matrixL().solveInPlace(h_then_x);
  for (Eigen::Index j = 0; j < h_then_x.size(); ++j) h_then_x(j) += rng.Normal();
  precision.matrixU().solveInPlace(h_then_x);
}

}  // namespace recd
