#include "core/gaussian_sampling.h"

#include <cmath>
#include <vector>

#include "Eigen/LU"
#include "gtest/gtest.h"

namespace recd {
namespace {

// Moments are compared with a tolerance of kSigmas standard errors of the estimate, computed from
// the number of draws and the distribution's own higher moments; seeds are fixed, so the tests
// are deterministic (a 6-sigma band is only there to make the choice of seed immaterial).
constexpr double kSigmas = 6.0;
constexpr int kDraws = 40000;

struct Moments {
  double mean = 0.0, variance = 0.0;
};

Moments Measure(const std::vector<double>& x) {
  Moments m;
  for (double v : x) m.mean += v;
  m.mean /= static_cast<double>(x.size());
  for (double v : x) m.variance += (v - m.mean) * (v - m.mean);
  m.variance /= static_cast<double>(x.size() - 1);
  return m;
}

TEST(GaussianSamplingTest, GammaMomentsForSmallAndLargeShapes) {
  for (double shape : {0.3, 1.0, 2.5, 17.0, 40000.0}) {
    PortableRng rng(11);
    std::vector<double> x(kDraws);
    for (double& v : x) {
      v = SampleGamma(rng, shape);
      ASSERT_GT(v, 0.0) << "shape " << shape;
    }
    const Moments m = Measure(x);
    // Gamma(a, 1): mean a, variance a, excess kurtosis 6/a, so Var(s²) ≈ a² (2 + 6/a) / n.
    const double n = kDraws;
    EXPECT_NEAR(m.mean, shape, kSigmas * std::sqrt(shape / n)) << "shape " << shape;
    EXPECT_NEAR(m.variance, shape, kSigmas * shape * std::sqrt((2.0 + 6.0 / shape) / n))
        << "shape " << shape;
  }
}

TEST(GaussianSamplingTest, ChiSquareMoments) {
  for (double dof : {1.0, 3.7, 50.0}) {
    PortableRng rng(5);
    std::vector<double> x(kDraws);
    for (double& v : x) v = SampleChiSquare(rng, dof);
    const Moments m = Measure(x);
    // χ²(k): mean k, variance 2k, excess kurtosis 12/k.
    const double n = kDraws;
    EXPECT_NEAR(m.mean, dof, kSigmas * std::sqrt(2.0 * dof / n)) << "dof " << dof;
    EXPECT_NEAR(m.variance, 2.0 * dof, kSigmas * 2.0 * dof * std::sqrt((2.0 + 12.0 / dof) / n))
        << "dof " << dof;
  }
}

TEST(GaussianSamplingTest, SameSeedSameDraws) {
  PortableRng a(3), b(3);
  for (int j = 0; j < 100; ++j) ASSERT_EQ(SampleGamma(a, 0.7 + j), SampleGamma(b, 0.7 + j));
}

Eigen::MatrixXd SomeSpd(int k, double diagonal) {
  Eigen::MatrixXd m(k, k);
  for (int i = 0; i < k; ++i) {
    for (int j = 0; j < k; ++j) m(i, j) = 0.3 * std::cos(1.0 + i * 1.7 + j * 0.9);
  }
  Eigen::MatrixXd spd = m * m.transpose();
  spd.diagonal().array() += diagonal;
  return spd;
}

TEST(GaussianSamplingTest, WishartMeanAndVariance) {
  const int k = 3;
  const Eigen::MatrixXd v = SomeSpd(k, 0.5);
  const Eigen::MatrixXd factor = Eigen::LLT<Eigen::MatrixXd>(v).matrixL();
  const double dof = 5.5;
  PortableRng rng(21);
  const int n = 20000;
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(k, k), sum_sq = Eigen::MatrixXd::Zero(k, k);
  for (int d = 0; d < n; ++d) {
    const Eigen::MatrixXd w = SampleWishart(rng, factor, dof);
    ASSERT_EQ(w, w.transpose());
    ASSERT_EQ(Eigen::LLT<Eigen::MatrixXd>(w).info(), Eigen::Success);
    sum += w;
    sum_sq += w.cwiseProduct(w);
  }
  for (int i = 0; i < k; ++i) {
    for (int j = 0; j < k; ++j) {
      // E[Λ_ij] = ν V_ij, Var(Λ_ij) = ν (V_ij² + V_ii V_jj).
      const double variance = dof * (v(i, j) * v(i, j) + v(i, i) * v(j, j));
      const double mean = sum(i, j) / n;
      EXPECT_NEAR(mean, dof * v(i, j), kSigmas * std::sqrt(variance / n)) << i << "," << j;
      const double sample_var = sum_sq(i, j) / n - mean * mean;
      // Loose: the fourth moment of a Wishart entry is bounded by a few times the variance squared.
      EXPECT_NEAR(sample_var, variance, kSigmas * variance * std::sqrt(12.0 / n)) << i << "," << j;
    }
  }
}

TEST(GaussianSamplingTest, NormalWishartPosteriorMatchesTheCentredFormula) {
  const int k = 3;
  NormalWishart prior;
  prior.mean = Eigen::Vector3d(0.5, -1.0, 2.0);
  prior.beta = 2.0;
  prior.dof = k;
  prior.inverse_scale = SomeSpd(k, 1.0).inverse();
  PortableRng rng(8);
  std::vector<Eigen::VectorXd> x(7, Eigen::VectorXd(k));
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(k);
  Eigen::MatrixXd outer = Eigen::MatrixXd::Zero(k, k);
  for (Eigen::VectorXd& v : x) {
    for (int j = 0; j < k; ++j) v(j) = rng.Normal() + j;
    sum += v;
    outer += v * v.transpose();
  }
  Eigen::MatrixXd lower = outer.triangularView<Eigen::Lower>();  // only the lower part is read
  const NormalWishart post = NormalWishartPosterior(prior, 7, sum, lower);

  const Eigen::VectorXd xbar = sum / 7.0;
  Eigen::MatrixXd s = Eigen::MatrixXd::Zero(k, k);
  for (const Eigen::VectorXd& v : x) s += (v - xbar) * (v - xbar).transpose();
  const Eigen::MatrixXd expected = prior.inverse_scale + s +
                                   (2.0 * 7.0 / 9.0) * (xbar - prior.mean) *
                                       (xbar - prior.mean).transpose();
  EXPECT_DOUBLE_EQ(post.beta, 9.0);
  EXPECT_DOUBLE_EQ(post.dof, k + 7.0);
  EXPECT_TRUE(post.mean.isApprox((2.0 * prior.mean + 7.0 * xbar) / 9.0, 1e-12));
  EXPECT_TRUE(post.inverse_scale.isApprox(expected, 1e-12));
  EXPECT_EQ(post.inverse_scale, post.inverse_scale.transpose());

  const NormalWishart none = NormalWishartPosterior(prior, 0, Eigen::VectorXd::Zero(k),
                                                    Eigen::MatrixXd::Zero(k, k));
  EXPECT_EQ(none.mean, prior.mean);
  EXPECT_EQ(none.inverse_scale, prior.inverse_scale);
}

TEST(GaussianSamplingTest, NormalWishartDrawMoments) {
  const int k = 3;
  NormalWishart nw;
  nw.mean = Eigen::Vector3d(1.0, -2.0, 0.5);
  nw.beta = 3.0;
  nw.dof = 9.0;
  const Eigen::MatrixXd w = SomeSpd(k, 0.4);
  nw.inverse_scale = w.inverse();
  PortableRng rng(99);
  const int n = 20000;
  Eigen::MatrixXd precision_sum = Eigen::MatrixXd::Zero(k, k);
  Eigen::VectorXd mean_sum = Eigen::VectorXd::Zero(k);
  for (int d = 0; d < n; ++d) {
    const GaussianParams g = SampleNormalWishart(rng, nw);
    precision_sum += g.precision;
    mean_sum += g.mean;
  }
  // E[Λ] = ν W; E[μ] = m with Cov(μ) = E[(βΛ)⁻¹] = W⁻¹ / (β (ν − K − 1)).
  const Eigen::MatrixXd mean_cov = nw.inverse_scale / (nw.beta * (nw.dof - k - 1));
  for (int i = 0; i < k; ++i) {
    EXPECT_NEAR(mean_sum(i) / n, nw.mean(i), kSigmas * std::sqrt(mean_cov(i, i) / n)) << i;
    for (int j = 0; j < k; ++j) {
      const double variance = nw.dof * (w(i, j) * w(i, j) + w(i, i) * w(j, j));
      EXPECT_NEAR(precision_sum(i, j) / n, nw.dof * w(i, j), kSigmas * std::sqrt(variance / n))
          << i << "," << j;
    }
  }
}

TEST(GaussianSamplingTest, GaussianFromPrecisionHasTheInverseCovariance) {
  const int k = 5;
  const Eigen::MatrixXd precision = SomeSpd(k, 0.8);
  const Eigen::MatrixXd cov = precision.inverse();
  const Eigen::LLT<Eigen::MatrixXd> llt(precision);
  Eigen::VectorXd mean(k);
  mean << 1, -1, 0.5, 3, 0;
  PortableRng rng(4);
  const int n = kDraws;
  Eigen::VectorXd x(k), sum = Eigen::VectorXd::Zero(k);
  Eigen::MatrixXd outer = Eigen::MatrixXd::Zero(k, k);
  for (int d = 0; d < n; ++d) {
    SampleGaussianFromPrecision(rng, llt, mean, x);
    sum += x;
    outer += (x - mean) * (x - mean).transpose();
  }
  for (int i = 0; i < k; ++i) {
    EXPECT_NEAR(sum(i) / n, mean(i), kSigmas * std::sqrt(cov(i, i) / n)) << i;
    for (int j = 0; j < k; ++j) {
      // Var of (x_i − m_i)(x_j − m_j) for a Gaussian is Σ_ii Σ_jj + Σ_ij².
      const double se = std::sqrt((cov(i, i) * cov(j, j) + cov(i, j) * cov(i, j)) / n);
      EXPECT_NEAR(outer(i, j) / n, cov(i, j), kSigmas * se) << i << "," << j;
    }
  }
}

TEST(GaussianSamplingTest, CanonicalFormDrawsTheSameDistribution) {
  const int k = 4;
  const Eigen::MatrixXd precision = SomeSpd(k, 0.6);
  const Eigen::MatrixXd cov = precision.inverse();
  const Eigen::LLT<Eigen::MatrixXd> llt(precision);
  Eigen::VectorXd mean(k);
  mean << -2, 0.5, 1, 4;
  const Eigen::VectorXd h = precision * mean;
  PortableRng rng(17);
  const int n = kDraws;
  Eigen::VectorXd x(k), sum = Eigen::VectorXd::Zero(k);
  Eigen::MatrixXd outer = Eigen::MatrixXd::Zero(k, k);
  for (int d = 0; d < n; ++d) {
    x = h;
    SampleGaussianCanonical(rng, llt, x);
    sum += x;
    outer += (x - mean) * (x - mean).transpose();
  }
  for (int i = 0; i < k; ++i) {
    EXPECT_NEAR(sum(i) / n, mean(i), kSigmas * std::sqrt(cov(i, i) / n)) << i;
    for (int j = 0; j < k; ++j) {
      const double se = std::sqrt((cov(i, i) * cov(j, j) + cov(i, j) * cov(i, j)) / n);
      EXPECT_NEAR(outer(i, j) / n, cov(i, j), kSigmas * se) << i << "," << j;
    }
  }
}

}  // namespace
}  // namespace recd
