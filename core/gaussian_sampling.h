// Random draws for Gibbs samplers (Bayesian matrix factorisation): Gamma, chi-square, Wishart,
// Normal-Wishart and multivariate normal, built only on PortableRng (core/random.h), so a seed
// gives the same numbers under any standard library. Bit-identical under one C library (see
// PortableRng::Normal on std::log/sin/cos).
//
// Conventions (as in Bishop, "Pattern Recognition and Machine Learning", §2.3.6 and B):
//   Gamma(a, 1)          density ∝ x^(a−1) e^(−x); scale by θ for Gamma(a, θ), divide by a rate.
//   Wishart W(V, ν)      on K x K precision matrices; E[Λ] = ν V; needs ν > K − 1.
//   Normal-Wishart       Λ ~ W(W, ν), μ | Λ ~ N(m, (β Λ)⁻¹).
// Matrices are Eigen double, dynamic size. Nothing here is thread-safe for one PortableRng; give
// each thread or block its own generator.
#ifndef RECD_CORE_GAUSSIAN_SAMPLING_H_
#define RECD_CORE_GAUSSIAN_SAMPLING_H_

#include <cstdint>

#include "Eigen/Cholesky"
#include "Eigen/Core"
#include "core/random.h"

namespace recd {

// Gamma(shape, 1), shape > 0: Marsaglia & Tsang (2000) "A simple method for generating gamma
// variables" for shape >= 1; for shape < 1, Gamma(shape + 1) · U^(1/shape).
double SampleGamma(PortableRng& rng, double shape);

// Chi-square with `dof` > 0 degrees of freedom: 2 · Gamma(dof / 2, 1).
double SampleChiSquare(PortableRng& rng, double dof);

// Λ ~ W(V, ν) for V = scale_factor · scale_factorᵀ (any square factor, e.g. a Cholesky factor),
// by the Bartlett decomposition: Λ = F A Aᵀ Fᵀ with A lower triangular, A_ii² ~ χ²(ν − i)
// (i = 0-based row), A_ij ~ N(0, 1) below the diagonal. Requires ν > K − 1.
Eigen::MatrixXd SampleWishart(PortableRng& rng, const Eigen::MatrixXd& scale_factor, double dof);

// A Normal-Wishart distribution over (μ, Λ), parameterised by W⁻¹ (the form in which the
// posterior update is a sum).
struct NormalWishart {
  Eigen::VectorXd mean;           // m, K
  double beta = 1.0;              // β > 0: strength of the mean, in pseudo-observations
  double dof = 1.0;               // ν > K − 1
  Eigen::MatrixXd inverse_scale;  // W⁻¹, K x K, symmetric positive definite
};

// The posterior of `prior` after n >= 0 observations x_1..x_n ~ N(μ, Λ⁻¹), given as
// sum = Σ x_j and sum_outer = Σ x_j x_jᵀ (only the lower triangle is read):
//   β' = β + n, ν' = ν + n, m' = (β m + n x̄) / β',
//   W'⁻¹ = W⁻¹ + S + (β n / β') (x̄ − m)(x̄ − m)ᵀ,  S = Σ (x_j − x̄)(x_j − x̄)ᵀ.
NormalWishart NormalWishartPosterior(const NormalWishart& prior, int64_t n,
                                     const Eigen::VectorXd& sum, const Eigen::MatrixXd& sum_outer);

// One draw (μ, Λ) from `nw`.
struct GaussianParams {
  Eigen::VectorXd mean;       // μ, K
  Eigen::MatrixXd precision;  // Λ, K x K, symmetric
};
GaussianParams SampleNormalWishart(PortableRng& rng, const NormalWishart& nw);

// x ~ N(mean, P⁻¹) given the Cholesky factorisation P = L Lᵀ: x = mean + L⁻ᵀ z, z ~ N(0, I).
// `x` must already have the size of `mean` and must not alias it; no heap allocation, so it is
// safe in a per-row inner loop.
void SampleGaussianFromPrecision(PortableRng& rng, const Eigen::LLT<Eigen::MatrixXd>& precision,
                                 const Eigen::VectorXd& mean, Eigen::VectorXd& x);

// The same in canonical (information) form, the form a Gibbs conditional arrives in: on entry
// `h_then_x` holds h = P · mean, on exit a draw x ~ N(P⁻¹h, P⁻¹), computed as
// x = L⁻ᵀ (L⁻¹ h + z) with z ~ N(0, I): two triangular solves, no heap allocation.
void SampleGaussianCanonical(PortableRng& rng, const Eigen::LLT<Eigen::MatrixXd>& precision,
                             Eigen::VectorXd& h_then_x);

}  // namespace recd

#endif  // RECD_CORE_GAUSSIAN_SAMPLING_H_
