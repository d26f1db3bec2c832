#include "core/randomized_svd.h"

#include <atomic>
#include <cmath>

#include "Eigen/QR"
#include "Eigen/SVD"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

Eigen::MatrixXd Gaussian(int rows, int cols, uint64_t seed) {
  PortableRng rng(seed);
  Eigen::MatrixXd m(rows, cols);
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) m(i, j) = rng.Normal();
  }
  return m;
}

Eigen::MatrixXd RandomOrthonormal(int rows, int cols, uint64_t seed) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(Gaussian(rows, cols, seed));
  Eigen::MatrixXd q = Eigen::MatrixXd::Identity(rows, cols);
  q.applyOnTheLeft(qr.householderQ());
  return q;
}

InteractionMatrix ToSparse(const Eigen::MatrixXd& dense) {
  InteractionMatrix m = dense.cast<float>().sparseView();
  m.makeCompressed();
  return m;
}

// Cosine of the largest principal angle between the column spaces of two orthonormal bases.
double MinPrincipalCosine(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(a.transpose() * b);
  return svd.singularValues().minCoeff();
}

double OrthonormalityError(const Eigen::MatrixXd& q) {
  return (q.transpose() * q - Eigen::MatrixXd::Identity(q.cols(), q.cols())).cwiseAbs().maxCoeff();
}

struct Planted {
  Eigen::MatrixXd u, v;
  Eigen::VectorXd sigma;
  Eigen::MatrixXd a;
};

Planted MakePlanted(int m, int n, int r, uint64_t seed) {
  Planted p;
  p.u = RandomOrthonormal(m, r, seed);
  p.v = RandomOrthonormal(n, r, seed + 1);
  p.sigma.resize(r);
  for (int i = 0; i < r; ++i) p.sigma[i] = 100.0 * std::pow(0.7, i);  // 100 .. 4
  p.a = p.u * p.sigma.asDiagonal() * p.v.transpose();
  return p;
}

TEST(RandomizedSvdTest, RecoversPlantedLowRankMatrix) {
  const Planted p = MakePlanted(300, 200, 10, 1);
  const InteractionMatrix a = ToSparse(p.a);
  RandomizedSvdOptions o;
  o.rank = 10;
  o.oversampling = 5;
  o.power_iterations = 2;
  o.compute_u = true;
  auto r = RandomizedSvd(a, o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->singular_values.size(), 10);
  ASSERT_EQ(r->v.rows(), 200);
  ASSERT_EQ(r->u.rows(), 300);
  for (int i = 0; i < 10; ++i) {
    // The input is stored as float32: relative perturbation ~1e-7.
    EXPECT_NEAR(r->singular_values[i], p.sigma[i], 1e-5 * p.sigma[0]) << i;
  }
  EXPECT_GT(MinPrincipalCosine(r->v, p.v), 1.0 - 1e-9);
  EXPECT_GT(MinPrincipalCosine(r->u, p.u), 1.0 - 1e-9);
  EXPECT_LT(OrthonormalityError(r->v), 1e-12);
  EXPECT_LT(OrthonormalityError(r->u), 1e-12);
}

TEST(RandomizedSvdTest, MatchesExactSvdOnNoisyMatrixWithSpectralGap) {
  // Rank-8 signal plus dense noise 100x smaller than the smallest signal component: the top 8
  // singular triplets must match the exact SVD closely.
  Planted p = MakePlanted(400, 250, 8, 5);
  Eigen::MatrixXd noisy = p.a + 0.002 * Gaussian(400, 250, 9);
  const InteractionMatrix a = ToSparse(noisy);
  const Eigen::MatrixXd exact_input = Eigen::MatrixXf(a).cast<double>();
  Eigen::JacobiSVD<Eigen::MatrixXd> exact(exact_input, Eigen::ComputeThinU | Eigen::ComputeThinV);

  RandomizedSvdOptions o;
  o.rank = 8;
  o.power_iterations = 3;
  auto r = RandomizedSvd(a, o);
  ASSERT_TRUE(r.ok());
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(r->singular_values[i], exact.singularValues()[i], 1e-9 * exact.singularValues()[0]);
    // Individual vectors (well separated: sigma ratio 0.7), compared up to sign.
    EXPECT_GT(std::abs(r->v.col(i).dot(exact.matrixV().col(i))), 1.0 - 1e-9) << i;
  }
}

TEST(RandomizedSvdTest, WideMatrixAndReconstruction) {
  // More columns than rows exercises the transposed path.
  const Planted p = MakePlanted(60, 500, 6, 21);
  const InteractionMatrix a = ToSparse(p.a);
  RandomizedSvdOptions o;
  o.rank = 6;
  o.compute_u = true;
  auto r = RandomizedSvd(a, o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->u.rows(), 60);
  ASSERT_EQ(r->v.rows(), 500);
  const Eigen::MatrixXd rebuilt = r->u * r->singular_values.asDiagonal() * r->v.transpose();
  EXPECT_LT((rebuilt - Eigen::MatrixXf(a).cast<double>()).norm(), 1e-5 * p.a.norm());
  EXPECT_GT(MinPrincipalCosine(r->v, p.v), 1.0 - 1e-9);
}

TEST(RandomizedSvdTest, SparseInteractionLikeMatrixAgainstExact) {
  // A realistic sparse 0/1 matrix: the top singular values must agree with the dense SVD.
  PortableRng rng(3);
  Eigen::MatrixXd dense = Eigen::MatrixXd::Zero(500, 300);
  for (int u = 0; u < 500; ++u) {
    const int group = u % 4;
    for (int i = 0; i < 300; ++i) {
      const double p = (i % 4 == group ? 0.15 : 0.02) * (1.0 + 2.0 * (i < 30));
      if (rng.Bernoulli(p)) dense(u, i) = 1.0;
    }
  }
  const InteractionMatrix a = ToSparse(dense);
  Eigen::JacobiSVD<Eigen::MatrixXd> exact(dense);
  RandomizedSvdOptions o;
  o.rank = 10;
  auto r = RandomizedSvd(a, o);
  ASSERT_TRUE(r.ok());
  for (int i = 0; i < 4; ++i) {
    // The planted 4 components are well separated from the noise bulk.
    EXPECT_NEAR(r->singular_values[i], exact.singularValues()[i], 1e-6 * exact.singularValues()[0]);
  }
  // Components 4.. sit in the flat noise bulk, where individual values are not resolvable; what
  // matters is that the rank-10 approximation is nearly optimal (Eckart-Young):
  // ||A - A_k||_F^2 = ||A||_F^2 - sum sigma_i^2.
  const double total = dense.squaredNorm();
  const double best = total - exact.singularValues().head(10).squaredNorm();
  const double ours = total - r->singular_values.squaredNorm();
  EXPECT_LE(ours, 1.005 * best);
  for (int i = 0; i < 10; ++i) {
    // Ritz values never exceed the true singular values (interlacing).
    EXPECT_LE(r->singular_values[i], exact.singularValues()[i] * (1 + 1e-12));
  }
}

TEST(RandomizedSvdTest, IndependentOfThreadCountAndDeterministic) {
  const Planted p = MakePlanted(700, 400, 12, 77);  // 280k non-zeros: several row blocks
  const InteractionMatrix a = ToSparse(p.a + 0.01 * Gaussian(700, 400, 78));
  RandomizedSvdOptions o;
  o.rank = 16;
  o.compute_u = true;
  o.num_threads = 1;
  auto one = RandomizedSvd(a, o);
  o.num_threads = 3;
  auto three = RandomizedSvd(a, o);
  auto again = RandomizedSvd(a, o);
  ASSERT_TRUE(one.ok() && three.ok() && again.ok());
  EXPECT_EQ(one->singular_values, three->singular_values);  // bit-identical
  EXPECT_EQ(one->v, three->v);
  EXPECT_EQ(one->u, three->u);
  EXPECT_EQ(three->v, again->v);

  o.seed = 12345;
  auto other_seed = RandomizedSvd(a, o);
  ASSERT_TRUE(other_seed.ok());
  EXPECT_NE(other_seed->v, one->v);  // a different test matrix ...
  for (int i = 0; i < 12; ++i) {     // ... same answer where the spectrum is resolved
    EXPECT_NEAR(other_seed->singular_values[i], one->singular_values[i], 1e-8 * p.sigma[0]);
  }
}

TEST(RandomizedSvdTest, SignConventionLargestEntryPositive) {
  const Planted p = MakePlanted(50, 40, 5, 8);
  auto r = RandomizedSvd(ToSparse(p.a), {.rank = 5, .compute_u = true});
  ASSERT_TRUE(r.ok());
  for (int c = 0; c < 5; ++c) {
    Eigen::Index arg;
    r->v.col(c).cwiseAbs().maxCoeff(&arg);
    EXPECT_GT(r->v(arg, c), 0.0);
    // u_c = A v_c / sigma_c: flipping v flipped u too.
    const Eigen::VectorXd av = Eigen::MatrixXf(ToSparse(p.a)).cast<double>() * r->v.col(c);
    EXPECT_GT(av.dot(r->u.col(c)), 0.0);
  }
}

TEST(RandomizedSvdTest, RankIsClampedAndRankDeficiencyGivesZeros) {
  const Planted p = MakePlanted(30, 12, 3, 4);
  RandomizedSvdOptions o;
  o.rank = 64;
  auto r = RandomizedSvd(ToSparse(p.a), o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->singular_values.size(), 12);
  EXPECT_EQ(r->v.cols(), 12);
  EXPECT_NEAR(r->singular_values[2], p.sigma[2], 1e-4);
  for (int i = 3; i < 12; ++i) EXPECT_LT(r->singular_values[i], 1e-4);
  EXPECT_LT(OrthonormalityError(r->v), 1e-10);
  EXPECT_EQ(r->u.size(), 0);  // not requested
}

TEST(RandomizedSvdTest, RejectsBadOptionsAndEmptyInput) {
  const InteractionMatrix a = ToSparse(Eigen::MatrixXd::Identity(4, 4));
  EXPECT_EQ(RandomizedSvd(a, {.rank = 0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RandomizedSvd(a, {.oversampling = -1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RandomizedSvd(a, {.power_iterations = -1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RandomizedSvd(a, {.num_threads = 0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RandomizedSvd(InteractionMatrix(0, 5), {}).status().code(), absl::StatusCode::kInvalidArgument);
  std::atomic<bool> cancel{true};
  EXPECT_EQ(RandomizedSvd(a, {.cancel = &cancel}).status().code(), absl::StatusCode::kCancelled);
}

TEST(RandomizedSvdTest, ReportsProgress) {
  std::vector<double> seen;
  RandomizedSvdOptions o;
  o.power_iterations = 2;
  o.progress = [&](double f) { seen.push_back(f); };
  ASSERT_TRUE(RandomizedSvd(ToSparse(Eigen::MatrixXd::Identity(6, 6)), o).ok());
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_DOUBLE_EQ(seen.back(), 1.0);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TEST(SparseTimesDenseTest, MatchesDenseProduct) {
  const Eigen::MatrixXd dense = Gaussian(90, 70, 2).unaryExpr([](double x) { return x > 1.0 ? x : 0.0; });
  const InteractionMatrix a = ToSparse(dense);
  const DenseRowMatrix x = Gaussian(70, 9, 3);
  for (int threads : {1, 4}) {
    const DenseRowMatrix y = SparseTimesDense(a, x, threads);
    EXPECT_LT((y - Eigen::MatrixXf(a).cast<double>() * x).cwiseAbs().maxCoeff(), 1e-12);
  }
}

}  // namespace
}  // namespace recd
