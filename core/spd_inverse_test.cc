#include "core/spd_inverse.h"

#include <atomic>

#include "Eigen/Cholesky"
#include "core/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::HasSubstr;

// XᵀX + λI for a random non-negative X with `n` columns: an EASE-like Gram matrix.
Eigen::MatrixXd RandomSpd(int64_t n, double lambda, uint64_t seed) {
  PortableRng rng(seed);
  Eigen::MatrixXd x(n / 2 + 3, n);
  for (int64_t i = 0; i < x.rows(); ++i) {
    for (int64_t j = 0; j < n; ++j) x(i, j) = rng.Bernoulli(0.3) ? 1.0 : 0.0;
  }
  Eigen::MatrixXd g = x.transpose() * x;
  g.diagonal().array() += lambda;
  return g;
}

// Sizes around the block width, where the blocked steps have remainders or a single block.
class SpdInverseTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(SpdInverseTest, MatchesEigenAndIgnoresTheUpperTriangle) {
  const int64_t n = GetParam();
  const Eigen::MatrixXd g = RandomSpd(n, 2.0, 7 + n);
  const Eigen::MatrixXd expected = g.llt().solve(Eigen::MatrixXd::Identity(n, n));
  Eigen::MatrixXd a = g;
  a.triangularView<Eigen::StrictlyUpper>().setConstant(1e6);  // must not be read
  ASSERT_TRUE(InvertSpdInPlace(a, {}).ok());
  const double scale = expected.cwiseAbs().maxCoeff();
  EXPECT_LT((a - expected).cwiseAbs().maxCoeff(), 1e-12 * n * scale) << n;
  EXPECT_LT((g * a - Eigen::MatrixXd::Identity(n, n)).cwiseAbs().maxCoeff(), 1e-12 * n) << n;
  EXPECT_EQ(a, a.transpose()) << "the result is exactly symmetric";
}

TEST_P(SpdInverseTest, BitIdenticalForAnyThreadCount) {
  const int64_t n = GetParam();
  const Eigen::MatrixXd g = RandomSpd(n, 1.0, 100 + n);
  Eigen::MatrixXd one = g;
  ASSERT_TRUE(InvertSpdInPlace(one, {}).ok());
  for (int threads : {2, 3, 8}) {
    Eigen::MatrixXd many = g;
    SpdInverseOptions o;
    o.num_threads = threads;
    ASSERT_TRUE(InvertSpdInPlace(many, o).ok());
    EXPECT_EQ(one, many) << n << " with " << threads << " threads";
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, SpdInverseTest,
                         ::testing::Values(1, 3, 7, 127, 128, 129, 257, 300));

TEST(SpdInverseErrorsTest, NotPositiveDefiniteNamesTheRows) {
  Eigen::MatrixXd a = RandomSpd(200, 1.0, 3);
  a(150, 150) = -5.0;
  const absl::Status s = InvertSpdInPlace(a, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("not positive definite"));
  EXPECT_THAT(s.message(), HasSubstr("rows [128, 200)"));
}

TEST(SpdInverseErrorsTest, NotSquareCancelledProgressAndEmpty) {
  Eigen::MatrixXd rect(3, 4);
  EXPECT_EQ(InvertSpdInPlace(rect, {}).code(), absl::StatusCode::kInvalidArgument);

  Eigen::MatrixXd a = RandomSpd(300, 1.0, 4);
  std::atomic<bool> cancel{true};
  SpdInverseOptions o;
  o.cancel = &cancel;
  EXPECT_EQ(InvertSpdInPlace(a, o).code(), absl::StatusCode::kCancelled);

  a = RandomSpd(300, 1.0, 4);
  std::vector<double> seen;
  SpdInverseOptions p;
  p.progress = [&](double f) { seen.push_back(f); };
  ASSERT_TRUE(InvertSpdInPlace(a, p).ok());
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_DOUBLE_EQ(seen.back(), 1.0);

  Eigen::MatrixXd empty(0, 0);
  EXPECT_TRUE(InvertSpdInPlace(empty, {}).ok());
}

}  // namespace
}  // namespace recd
