#include "core/biased_mf.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "Eigen/Cholesky"
#include "absl/strings/str_cat.h"
#include "core/explicit_ratings.h"
#include "core/gaussian_sampling.h"
#include "core/parallel_for.h"
#include "core/random.h"
#include "core/status_macros.h"

namespace recd {
namespace {

constexpr char kGlobalMean[] = "global_mean";
constexpr char kUserBias[] = "user_bias";
constexpr char kRatingRange[] = "rating_range";
// mcmc only: what FoldInUser needs (not user-indexed, so no "user_" prefix).
constexpr char kFoldInPriorMean[] = "fold_in_prior_mean";            // 1 x (k + 1)
constexpr char kFoldInPriorPrecision[] = "fold_in_prior_precision";  // (k + 1) x (k + 1)
constexpr char kFoldInNoisePrecision[] = "fold_in_noise_precision";  // 1 x 1

struct Regularization {
  double factors = 0.0;
  double bias = 0.0;
  double exponent = 1.0;  // a row with n ratings is regularised by n^exponent · λ
  double Weight(double n) const { return exponent == 1.0 ? n : std::pow(n, exponent); }
};

// One ridge step for a row w = [f (k), b_self] against fixed rows of the other side,
// other.row(j) = [f_j (k), b_j]:
//   minimise Σ_j (r_j − μ − b_j − b_self − fᵀf_j)² + n (λ|f|² + λ_b b_self²),  n = |list|.
// Features x_j = [f_j, 1], targets t_j = r_j − μ − b_j. Double precision, LDLT; the same
// arithmetic in training and fold-in. Returns zeros for an empty list.
Eigen::VectorXd SolveRow(absl::Span<const RatedIndex> list, const EmbeddingMatrix& other,
                         double mean, const Regularization& reg) {
  const int64_t k = other.cols() - 1;
  Eigen::VectorXd w = Eigen::VectorXd::Zero(k + 1);
  if (list.empty()) return w;
  const int64_t n = static_cast<int64_t>(list.size());
  Eigen::MatrixXd x(n, k + 1);
  Eigen::VectorXd t(n);
  for (int64_t j = 0; j < n; ++j) {
    const auto row = other.row(list[j].index);
    x.row(j).head(k) = row.head(k).cast<double>();
    x(j, k) = 1.0;
    t(j) = static_cast<double>(list[j].rating) - mean - static_cast<double>(row(k));
  }
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(k + 1, k + 1);
  a.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
  const double weight = reg.Weight(static_cast<double>(n));
  a.diagonal().head(k).array() += weight * reg.factors;
  a(k, k) += weight * reg.bias;
  const Eigen::VectorXd b = x.transpose() * t;
  w = a.selfadjointView<Eigen::Lower>().ldlt().solve(b);
  if (!w.allFinite()) w.setZero();
  return w;
}

// Solves every row of `self` (n_self x (k+1), [f, b]) against `other`, in parallel.
void SolveSide(const std::vector<std::vector<RatedIndex>>& lists, const EmbeddingMatrix& other,
               double mean, const Regularization& reg, int num_threads, EmbeddingMatrix& self) {
  const int64_t n = static_cast<int64_t>(lists.size());
  const int64_t blocks = std::clamp<int64_t>(n / 64, 1, 256);
  ParallelForBlocks(blocks, num_threads, [&](int64_t b) {
    for (int64_t r = BlockBegin(n, blocks, b); r < BlockBegin(n, blocks, b + 1); ++r) {
      if (lists[r].empty()) continue;
      self.row(r) = SolveRow(lists[r], other, mean, reg).cast<float>().transpose();
    }
  });
}

struct Fit {
  double sse = 0.0;
  double objective = 0.0;
};

// Squared error and objective of the [f, b] tables; per-user partial sums in fixed blocks.
Fit Evaluate(const ExplicitRatings& r, const EmbeddingMatrix& users, const EmbeddingMatrix& items,
             double mean, const Regularization& reg, int num_threads) {
  const int64_t n = static_cast<int64_t>(r.by_user.size());
  const int64_t k = items.cols() - 1;
  constexpr int64_t kBlocks = 64;
  std::vector<Fit> part(kBlocks);
  ParallelForBlocks(kBlocks, num_threads, [&](int64_t b) {
    Fit f;
    for (int64_t u = BlockBegin(n, kBlocks, b); u < BlockBegin(n, kBlocks, b + 1); ++u) {
      const auto pu = users.row(u);
      for (const RatedIndex& e : r.by_user[u]) {
        const auto qi = items.row(e.index);
        const double pred = mean + pu(k) + qi(k) +
                            pu.head(k).cast<double>().dot(qi.head(k).cast<double>());
        const double err = e.rating - pred;
        f.sse += err * err;
      }
      const double nu = reg.Weight(static_cast<double>(r.by_user[u].size()));
      f.objective += nu * (reg.factors * pu.head(k).cast<double>().squaredNorm() +
                           reg.bias * static_cast<double>(pu(k)) * pu(k));
    }
    part[b] = f;
  });
  Fit total;
  for (const Fit& f : part) {
    total.sse += f.sse;
    total.objective += f.objective;
  }
  for (size_t i = 0; i < r.by_item.size(); ++i) {
    const auto qi = items.row(i);
    total.objective += reg.Weight(static_cast<double>(r.by_item[i].size())) *
                       (reg.factors * qi.head(k).cast<double>().squaredNorm() +
                        reg.bias * static_cast<double>(qi(k)) * qi(k));
  }
  total.objective += total.sse;
  return total;
}

void RunSgd(const ExplicitRatings& r, double mean, const Regularization& reg, double lr,
            PortableRng& rng, EmbeddingMatrix& users, EmbeddingMatrix& items) {
  const int64_t k = items.cols() - 1;
  // All ratings in (user, item) order, visited in a fresh seeded permutation each epoch.
  std::vector<std::pair<uint32_t, uint32_t>> order;  // (user, position in by_user[user])
  order.reserve(r.count);
  for (uint32_t u = 0; u < r.by_user.size(); ++u) {
    for (uint32_t j = 0; j < r.by_user[u].size(); ++j) order.emplace_back(u, j);
  }
  for (size_t j = order.size(); j > 1; --j) std::swap(order[j - 1], order[rng.UniformInt(j)]);
  const float flr = static_cast<float>(lr);
  // Each visit of a row with n ratings carries n^(exponent - 1) of its regularisation, so the
  // epoch's total is n^exponent · λ as in the objective.
  auto visit_scale = [&](size_t n) {
    return static_cast<float>(reg.Weight(static_cast<double>(n)) / static_cast<double>(n));
  };
  std::vector<float> user_scale(r.by_user.size()), item_scale(r.by_item.size());
  for (size_t u = 0; u < r.by_user.size(); ++u) user_scale[u] = r.by_user[u].empty() ? 0.0f : visit_scale(r.by_user[u].size());
  for (size_t i = 0; i < r.by_item.size(); ++i) item_scale[i] = r.by_item[i].empty() ? 0.0f : visit_scale(r.by_item[i].size());
  const float lf = static_cast<float>(reg.factors), lb = static_cast<float>(reg.bias);
  const float fmean = static_cast<float>(mean);
  for (const auto& [u, j] : order) {
    const RatedIndex& e = r.by_user[u][j];
    auto pu = users.row(u);
    auto qi = items.row(e.index);
    const float su = user_scale[u], si = item_scale[e.index];
    const float err = e.rating - (fmean + pu(k) + qi(k) + pu.head(k).dot(qi.head(k)));
    pu(k) += flr * (err - su * lb * pu(k));
    qi(k) += flr * (err - si * lb * qi(k));
    for (int64_t f = 0; f < k; ++f) {
      const float p = pu(f), q = qi(f);
      pu(f) += flr * (err * q - su * lf * p);
      qi(f) += flr * (err * p - si * lf * q);
    }
  }
}

// --- mcmc: Bayesian PMF with biases by Gibbs sampling ------------------------------------------
//
// Salakhutdinov & Mnih, "Bayesian probabilistic matrix factorization using Markov chain Monte
// Carlo", ICML 2008, with the biases folded into the rows: a user row w_u = [p_u, b_u] is
// regressed on item features [q_i, 1] with targets r − μ − c_i, an item row [q_i, c_i] on user
// features [p_u, 1] with targets r − μ − b_u. Each side has a Gaussian prior N(μ_s, Λ_s⁻¹) over
// its (k + 1)-vectors with a Normal-Wishart hyperprior (m0 = 0, β0 = prior_beta, ν0 = k + 1,
// W0 = prior_scale · I).

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct McmcSettings {
  int samples = 0;
  int burn_in = 0;
  double noise_precision = 0.0;  // 0 = sampled
  double prior_beta = 0.0;
  double prior_scale = 0.0;
};

// Gamma(shape, rate) prior of a sampled noise precision: weak (one pseudo-observation of unit
// variance) next to the thousands of ratings in any real data set.
constexpr double kNoiseShape0 = 1.0;
constexpr double kNoiseRate0 = 1.0;

// Random stream of one (sweep, side, block): blocks < 2^16 (SideBlocks caps them at 256), so
// streams never collide. Sweep 0 is the initialisation; block kHyperBlock draws hyperparameters.
enum class Side : uint64_t { kUsers = 0, kItems = 1, kNoise = 2 };
constexpr uint64_t kHyperBlock = 0xFFFF;
uint64_t Stream(int64_t sweep, Side side, uint64_t block) {
  return (static_cast<uint64_t>(sweep) << 20) | (static_cast<uint64_t>(side) << 16) | block;
}

// Fixed from the row count only, so the draws do not depend on the thread count.
int64_t SideBlocks(int64_t rows) { return std::clamp<int64_t>(rows / 64, 1, 256); }

// Draws (μ_s, Λ_s) from their Normal-Wishart posterior given the current rows of the rated
// entries of one side (rows of unrated users/items are not part of the model).
GaussianParams SampleHyperparameters(const std::vector<std::vector<RatedIndex>>& lists,
                                     const EmbeddingMatrix& rows, const NormalWishart& prior,
                                     PortableRng& rng) {
  const int64_t k1 = rows.cols();
  int64_t n = 0;
  for (const auto& list : lists) n += list.empty() ? 0 : 1;
  RowMatrix rated(n, k1);
  for (size_t r = 0, j = 0; r < lists.size(); ++r) {
    if (!lists[r].empty()) {
      rated.row(static_cast<int64_t>(j++)) = rows.row(static_cast<int64_t>(r)).cast<double>();
    }
  }
  Eigen::MatrixXd outer = Eigen::MatrixXd::Zero(k1, k1);
  outer.selfadjointView<Eigen::Lower>().rankUpdate(rated.transpose());
  const Eigen::VectorXd sum = rated.colwise().sum().transpose();
  return SampleNormalWishart(rng, NormalWishartPosterior(prior, n, sum, outer));
}

// Scratch of one block of row draws, sized once for the block's longest list: the per-row loop
// allocates nothing.
struct RowScratch {
  RowScratch(int64_t k1, int64_t max_n)
      : features(k1 + 1, max_n),
        gram(Eigen::MatrixXf::Zero(k1 + 1, k1 + 1)),
        precision(Eigen::MatrixXd::Zero(k1, k1)),
        h(k1),
        residuals(1, max_n),
        llt(k1) {}
  // Column j = [f_j, 1, t_j] for the j-th rating: one symmetric rank update gives XᵀX and tᵀX
  // together (the last row of `gram`). Single precision: the rank update is most of a sweep and
  // runs twice as fast, and its rounding (~1e-6 relative) is far below the sampling noise; the
  // prior is added and the factorisation done in double.
  Eigen::MatrixXf features;
  Eigen::MatrixXf gram;       // lower triangle: [XᵀX, ·; tᵀX, ·]
  Eigen::MatrixXd precision;  // lower triangle: Λ + αXᵀX
  Eigen::VectorXd h;          // Λμ + αXᵀt, then the draw
  Eigen::RowVectorXf residuals;  // t − Xw
  Eigen::LLT<Eigen::MatrixXd> llt;
};

// Draws every rated row of one side from its Gaussian conditional given the other side:
//   precision P = Λ_s + α XᵀX, mean P⁻¹ (Λ_s μ_s + α Xᵀt),
// with X rows [f_j, 1] and t_j = r_j − μ − b_j (b_j the other side's bias). Rows are drawn in
// SideBlocks(n) blocks, block b with its own generator seeded from (sweep, side, b). Returns
// Σ (t − Xw)² over the side's ratings with the new rows w: after the item step, the squared
// training error of the current sample (summed in block order, so thread-independent).
double SampleSide(const std::vector<std::vector<RatedIndex>>& lists, const EmbeddingMatrix& other,
                double mean, const GaussianParams& prior, double alpha, uint64_t seed,
                int64_t sweep, Side side, int num_threads, EmbeddingMatrix& self) {
  const int64_t n = static_cast<int64_t>(lists.size());
  const int64_t k1 = other.cols(), k = k1 - 1;
  const int64_t blocks = SideBlocks(n);
  const Eigen::VectorXd prior_h = prior.precision * prior.mean;
  std::vector<double> block_sse(blocks, 0.0);
  ParallelForBlocks(blocks, num_threads, [&](int64_t b) {
    const int64_t begin = BlockBegin(n, blocks, b), end = BlockBegin(n, blocks, b + 1);
    size_t max_n = 0;
    for (int64_t r = begin; r < end; ++r) max_n = std::max(max_n, lists[r].size());
    if (max_n == 0) return;
    PortableRng rng(SeedFor(seed, Stream(sweep, side, static_cast<uint64_t>(b))));
    RowScratch s(k1, static_cast<int64_t>(max_n));
    double sse = 0.0;
    for (int64_t r = begin; r < end; ++r) {
      const std::vector<RatedIndex>& list = lists[r];
      if (list.empty()) continue;
      const int64_t m = static_cast<int64_t>(list.size());
      for (int64_t j = 0; j < m; ++j) {
        const auto row = other.row(list[j].index);
        s.features.col(j).head(k) = row.head(k).transpose();
        s.features(k, j) = 1.0f;
        const double target = static_cast<double>(list[j].rating) - mean - row(k);
        s.features(k1, j) = static_cast<float>(target);
      }
      s.gram.triangularView<Eigen::Lower>().setZero();
      s.gram.selfadjointView<Eigen::Lower>().rankUpdate(s.features.leftCols(m));
      s.precision.triangularView<Eigen::Lower>() =
          prior.precision + alpha * s.gram.topLeftCorner(k1, k1).cast<double>();
      s.h = prior_h + alpha * s.gram.row(k1).head(k1).transpose().cast<double>();
      s.llt.compute(s.precision);  // LLT<·, Lower> reads the lower triangle only
      if (s.llt.info() != Eigen::Success) continue;  // numerically impossible: keep the row
      SampleGaussianCanonical(rng, s.llt, s.h);
      self.row(r) = s.h.transpose().cast<float>();
      s.residuals.head(m) = s.features.row(k1).head(m);
      s.residuals.head(m).noalias() -= self.row(r) * s.features.topLeftCorner(k1, m);
      sse += s.residuals.head(m).cast<double>().squaredNorm();
    }
    block_sse[b] = sse;
  });
  double total = 0.0;
  for (double part : block_sse) total += part;
  return total;
}

// What the chain leaves: posterior means of the rows ([f, b] per row, zero for unrated rows)
// and of the user-side hyperparameters and noise precision, for fold-in.
struct McmcResult {
  RowMatrix users, items;
  Eigen::VectorXd user_prior_mean;
  Eigen::MatrixXd user_prior_precision;
  double noise_precision = 0.0;
  double last_sample_sse = 0.0;
  int averaged = 0;
};

absl::StatusOr<McmcResult> RunMcmc(const ExplicitRatings& r, double mean, int k,
                                   const McmcSettings& settings, double init_std,
                                   const TrainOptions& options) {
  const int64_t k1 = k + 1;
  const uint64_t seed = options.seed;
  const int64_t num_users = static_cast<int64_t>(r.by_user.size());
  const int64_t num_items = static_cast<int64_t>(r.by_item.size());
  // The current draws, in single precision like the served tables (the averages are double).
  EmbeddingMatrix users = EmbeddingMatrix::Zero(num_users, k1);
  EmbeddingMatrix items = EmbeddingMatrix::Zero(num_items, k1);
  {
    // Small random factors, zero biases (sweep 0's streams). Only the first user hyperparameter
    // draw sees the user values: the user rows are drawn before anything reads them.
    PortableRng rng(SeedFor(seed, Stream(0, Side::kUsers, 0)));
    for (int64_t u = 0; u < num_users; ++u) {
      if (r.by_user[u].empty()) continue;
      for (int f = 0; f < k; ++f) users(u, f) = static_cast<float>(init_std * rng.Normal());
    }
    PortableRng item_rng(SeedFor(seed, Stream(0, Side::kItems, 0)));
    for (int64_t i = 0; i < num_items; ++i) {
      if (r.by_item[i].empty()) continue;
      for (int f = 0; f < k; ++f) items(i, f) = static_cast<float>(init_std * item_rng.Normal());
    }
  }
  NormalWishart prior;
  prior.mean = Eigen::VectorXd::Zero(k1);
  prior.beta = settings.prior_beta;
  prior.dof = static_cast<double>(k1);
  prior.inverse_scale = Eigen::MatrixXd::Identity(k1, k1) / settings.prior_scale;

  McmcResult out;
  out.users = RowMatrix::Zero(num_users, k1);
  out.items = RowMatrix::Zero(num_items, k1);
  out.user_prior_mean = Eigen::VectorXd::Zero(k1);
  out.user_prior_precision = Eigen::MatrixXd::Zero(k1, k1);
  // A sampled α starts at 2 (the fixed default) for the first sweep's rows.
  double alpha = settings.noise_precision > 0.0 ? settings.noise_precision : 2.0;
  double alpha_sum = 0.0;
  for (int sweep = 1; sweep <= settings.samples; ++sweep) {
    if (options.cancel != nullptr && options.cancel->load()) {
      return absl::CancelledError("biased_mf: training cancelled");
    }
    PortableRng user_hyper_rng(SeedFor(seed, Stream(sweep, Side::kUsers, kHyperBlock)));
    const GaussianParams user_prior =
        SampleHyperparameters(r.by_user, users, prior, user_hyper_rng);
    SampleSide(r.by_user, items, mean, user_prior, alpha, seed, sweep, Side::kUsers,
               options.num_threads, users);
    PortableRng item_hyper_rng(SeedFor(seed, Stream(sweep, Side::kItems, kHyperBlock)));
    const GaussianParams item_prior =
        SampleHyperparameters(r.by_item, items, prior, item_hyper_rng);
    out.last_sample_sse = SampleSide(r.by_item, users, mean, item_prior, alpha, seed, sweep,
                                     Side::kItems, options.num_threads, items);
    if (settings.noise_precision == 0.0) {
      // α | rest ~ Gamma(a0 + N/2, rate b0 + SSE/2).
      PortableRng noise_rng(SeedFor(seed, Stream(sweep, Side::kNoise, kHyperBlock)));
      alpha = SampleGamma(noise_rng, kNoiseShape0 + 0.5 * static_cast<double>(r.count)) /
              (kNoiseRate0 + 0.5 * out.last_sample_sse);
    }
    if (sweep > settings.burn_in) {
      out.users += users.cast<double>();
      out.items += items.cast<double>();
      out.user_prior_mean += user_prior.mean;
      out.user_prior_precision += user_prior.precision;
      alpha_sum += alpha;
      ++out.averaged;
    }
    if (options.progress) options.progress(static_cast<double>(sweep) / (settings.samples + 1));
  }
  const double scale = 1.0 / out.averaged;
  out.users *= scale;
  out.items *= scale;
  out.user_prior_mean *= scale;
  out.user_prior_precision *= scale;
  out.noise_precision = alpha_sum * scale;
  return out;
}

// The posterior mean of a user row [p, b] under the prior N(m, Λ⁻¹) and noise precision α, the
// item rows held fixed: (Λ + α XᵀX)⁻¹ (Λ m + α Xᵀt), X rows [q_i, 1], t_i = r_i − μ − c_i.
Eigen::VectorXd PosteriorMeanRow(absl::Span<const RatedIndex> list, const EmbeddingMatrix& items,
                                 double mean, const Eigen::MatrixXd& prior_precision,
                                 const Eigen::VectorXd& prior_rhs, double alpha) {
  const int64_t k = items.cols() - 1;
  const int64_t n = static_cast<int64_t>(list.size());
  Eigen::MatrixXd x(k + 1, n);
  Eigen::VectorXd t(n);
  for (int64_t j = 0; j < n; ++j) {
    const auto row = items.row(list[j].index);
    x.col(j).head(k) = row.head(k).transpose().cast<double>();
    x(k, j) = 1.0;
    t(j) = static_cast<double>(list[j].rating) - mean - static_cast<double>(row(k));
  }
  Eigen::MatrixXd a = prior_precision;
  a.selfadjointView<Eigen::Lower>().rankUpdate(x, alpha);
  const Eigen::VectorXd b = prior_rhs + alpha * (x * t);
  Eigen::VectorXd w = a.selfadjointView<Eigen::Lower>().llt().solve(b);
  if (!w.allFinite()) w.setZero();
  return w;
}

Regularization RegFrom(const ParsedParams& p) {
  return {p.GetDouble("regularization"), p.GetDouble("bias_regularization"),
          p.GetDouble("reg_exponent")};
}

// The user prior FoldInUser applies: a ridge with regularisation (als, sgd), or the posterior
// mean under the learned Gaussian prior (mcmc).
struct FoldInPrior {
  bool bayesian = false;
  Regularization reg;               // als, sgd
  Eigen::MatrixXd precision;        // mcmc: Λ̄ (k + 1) x (k + 1)
  Eigen::VectorXd precision_mean;   // mcmc: Λ̄ m̄
  double noise_precision = 0.0;     // mcmc: ᾱ
};

class BiasedMfModel final : public Model {
 public:
  BiasedMfModel(std::shared_ptr<const ModelData> data, double mean, FoldInPrior prior)
      : Model(std::move(data)), mean_(mean), prior_(std::move(prior)) {}

  EmbeddingVector FoldInUser(absl::Span<const HistoryEntry> history) const override {
    const std::vector<RatedIndex> list =
        HistoryRatings(history, static_cast<uint32_t>(item_factors().rows()));
    if (list.empty()) return EmbeddingVector();
    EmbeddingVector v =
        (prior_.bayesian ? PosteriorMeanRow(list, item_factors(), mean_, prior_.precision,
                                            prior_.precision_mean, prior_.noise_precision)
                         : SolveRow(list, item_factors(), mean_, prior_.reg))
            .cast<float>();
    v(v.size() - 1) = 1.0f;
    return v;
  }

 private:
  double mean_;
  FoldInPrior prior_;
};

}  // namespace

std::vector<ParamSpec> BiasedMfParamSpecs() {
  return {
      ParamSpec::Int("factors", 16, 1, 1024, "latent factors k"),
      ParamSpec::Choice("solver", "mcmc", {"als", "sgd", "mcmc"},
                        "alternating least squares, SGD or Gibbs sampling (Bayesian PMF)"),
      ParamSpec::Int("iterations", 10, 1, 1000, "ALS sweeps or SGD epochs"),
      ParamSpec::Int("samples", 200, 1, 100000, "mcmc: Gibbs sweeps, burn-in included"),
      ParamSpec::Int("burn_in", 20, 0, 99999, "mcmc: first sweeps left out of the average"),
      ParamSpec::Double("noise_precision", 0.0, 0.0, 10000.0,
                        "mcmc: 1 / rating noise variance; 0 = sample it"),
      ParamSpec::Double("prior_beta", 2.0, 1e-6, 1e6, "mcmc: Normal-Wishart beta0"),
      ParamSpec::Double("prior_scale", 1.0, 1e-6, 1e6, "mcmc: Normal-Wishart W0 = scale * I"),
      ParamSpec::Double("regularization", 1.2, 0.0, 100.0, "lambda on factors"),
      ParamSpec::Double("bias_regularization", 1.0, 0.0, 100.0, "lambda on biases"),
      ParamSpec::Double("reg_exponent", 0.5, 0.0, 2.0, "rows with n ratings get n^e * lambda"),
      ParamSpec::Double("learning_rate", 0.01, 1e-9, 1.0, "SGD step size"),
      ParamSpec::Double("lr_decay", 0.95, 1e-9, 1.0, "SGD step size factor per epoch"),
      ParamSpec::Double("init_std", 0.1, 0.0, 10.0, "standard deviation of initial factors"),
  };
}

absl::StatusOr<ModelData> TrainBiasedMf(const TrainingData& data,
                                        const std::map<std::string, std::string>& params,
                                        const TrainOptions& options) {
  ASSIGN_OR_RETURN(ParsedParams p, ParseParams(kBiasedMfAlgorithm, BiasedMfParamSpecs(), params));
  const ExplicitRatings r = CollectExplicitRatings(data);
  if (r.count == 0) {
    return absl::FailedPreconditionError(
        "biased_mf: the training data has no ratings (rating events with a value)");
  }
  const int k = p.GetInt("factors");
  const int iterations = p.GetInt("iterations");
  const Regularization reg = RegFrom(p);
  // Rounded to float once: the stored tensor is float and fold-in must use the same value.
  const double mean = static_cast<float>(r.sum / static_cast<double>(r.count));
  const std::string& solver = p.GetChoice("solver");
  const double init_std = p.GetDouble("init_std");
  ModelData out;
  // users, items: [f, b] per row (zero for rows without ratings), whichever solver ran.
  EmbeddingMatrix users, items;
  if (solver == "mcmc") {
    McmcSettings settings;
    settings.samples = p.GetInt("samples");
    settings.burn_in = p.GetInt("burn_in");
    settings.noise_precision = p.GetDouble("noise_precision");
    settings.prior_beta = p.GetDouble("prior_beta");
    settings.prior_scale = p.GetDouble("prior_scale");
    if (settings.burn_in >= settings.samples) {
      return absl::InvalidArgumentError(absl::StrCat(
          "biased_mf: parameter 'burn_in' (", settings.burn_in,
          ") must be below 'samples' (", settings.samples, "): no sweep would be averaged"));
    }
    ASSIGN_OR_RETURN(McmcResult chain, RunMcmc(r, mean, k, settings, init_std, options));
    users = chain.users.cast<float>();
    items = chain.items.cast<float>();
    out.tensors[kFoldInPriorMean] = chain.user_prior_mean.transpose().cast<float>();
    out.tensors[kFoldInPriorPrecision] = chain.user_prior_precision.cast<float>();
    out.tensors[kFoldInNoisePrecision] =
        EmbeddingMatrix::Constant(1, 1, static_cast<float>(chain.noise_precision));
    out.meta.metrics["train_rmse_last_sample"] =
        std::sqrt(chain.last_sample_sse / static_cast<double>(r.count));
    out.meta.metrics["noise_precision"] = chain.noise_precision;
    out.meta.metrics["samples_averaged"] = chain.averaged;
  } else {
    const bool sgd = solver == "sgd";
    PortableRng rng(options.seed);
    users = EmbeddingMatrix::Zero(data.num_users, k + 1);
    items = EmbeddingMatrix::Zero(data.num_items, k + 1);
    for (int64_t i = 0; i < items.rows(); ++i) {
      if (r.by_item[i].empty()) continue;
      for (int f = 0; f < k; ++f) items(i, f) = static_cast<float>(init_std * rng.Normal());
    }
    if (sgd) {
      for (int64_t u = 0; u < users.rows(); ++u) {
        if (r.by_user[u].empty()) continue;
        for (int f = 0; f < k; ++f) users(u, f) = static_cast<float>(init_std * rng.Normal());
      }
    }
    double lr = p.GetDouble("learning_rate");
    for (int it = 0; it < iterations; ++it) {
      if (options.cancel != nullptr && options.cancel->load()) {
        return absl::CancelledError("biased_mf: training cancelled");
      }
      if (sgd) {
        RunSgd(r, mean, reg, lr, rng, users, items);
        lr *= p.GetDouble("lr_decay");
      } else {
        SolveSide(r.by_user, items, mean, reg, options.num_threads, users);
        SolveSide(r.by_item, users, mean, reg, options.num_threads, items);
      }
      const Fit fit = Evaluate(r, users, items, mean, reg, options.num_threads);
      out.meta.metrics[absl::StrCat("train_rmse_iter_", it + 1)] =
          std::sqrt(fit.sse / static_cast<double>(r.count));
      if (options.progress) options.progress(static_cast<double>(it + 1) / (iterations + 1));
    }
    // The final user step is FoldInUser's computation, so trained rows and fold-in agree.
    SolveSide(r.by_user, items, mean, reg, options.num_threads, users);
  }
  const Fit fit = Evaluate(r, users, items, mean, reg, options.num_threads);

  out.item_factors = std::move(items);
  out.user_factors = EmbeddingMatrix::Zero(data.num_users, k + 1);
  EmbeddingMatrix user_bias = EmbeddingMatrix::Zero(data.num_users, 1);
  int64_t rated_users = 0;
  for (int64_t u = 0; u < users.rows(); ++u) {
    if (r.by_user[u].empty()) continue;
    ++rated_users;
    out.user_factors.row(u).head(k) = users.row(u).head(k);
    out.user_factors(u, k) = 1.0f;
    user_bias(u, 0) = users(u, k);
  }
  out.tensors[kGlobalMean] = EmbeddingMatrix::Constant(1, 1, static_cast<float>(mean));
  out.tensors[kUserBias] = std::move(user_bias);
  EmbeddingMatrix range(1, 2);
  range << r.min, r.max;
  out.tensors[kRatingRange] = std::move(range);
  out.meta.params = p.text();
  out.meta.metrics["train_rmse"] = std::sqrt(fit.sse / static_cast<double>(r.count));
  if (solver != "mcmc") out.meta.metrics["objective"] = fit.objective;
  out.meta.metrics["global_mean"] = mean;
  out.meta.metrics["rated_users"] = static_cast<double>(rated_users);
  if (options.progress) options.progress(1.0);
  return out;
}

absl::StatusOr<std::shared_ptr<const Model>> CreateBiasedMfModel(
    std::shared_ptr<const ModelData> data) {
  const std::string prefix =
      absl::StrCat("model '", data->meta.name, "' version ", data->meta.version, ": ");
  auto parsed = ParseParams(kBiasedMfAlgorithm, BiasedMfParamSpecs(), data->meta.params);
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(prefix, parsed.status().message()));
  if (data->item_factors.cols() != parsed->GetInt("factors") + 1) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "item_factors has ",
                                                   data->item_factors.cols(),
                                                   " columns, expected factors + 1"));
  }
  auto mean = data->tensors.find(kGlobalMean);
  if (mean == data->tensors.end() || mean->second.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "tensor '", kGlobalMean,
                                                   "' must be 1 x 1"));
  }
  const double m = mean->second(0, 0);
  FoldInPrior prior;
  prior.reg = RegFrom(*parsed);
  if (parsed->GetChoice("solver") == "mcmc") {
    const int64_t k1 = data->item_factors.cols();
    auto tensor = [&](const char* name, int64_t rows,
                      int64_t cols) -> absl::StatusOr<const EmbeddingMatrix*> {
      auto it = data->tensors.find(name);
      if (it == data->tensors.end() || it->second.rows() != rows || it->second.cols() != cols) {
        return absl::InvalidArgumentError(absl::StrCat(prefix, "tensor '", name, "' must be ",
                                                       rows, " x ", cols, " (solver mcmc)"));
      }
      return &it->second;
    };
    ASSIGN_OR_RETURN(const EmbeddingMatrix* prior_mean, tensor(kFoldInPriorMean, 1, k1));
    ASSIGN_OR_RETURN(const EmbeddingMatrix* precision, tensor(kFoldInPriorPrecision, k1, k1));
    ASSIGN_OR_RETURN(const EmbeddingMatrix* noise, tensor(kFoldInNoisePrecision, 1, 1));
    prior.bayesian = true;
    prior.precision = precision->cast<double>();
    if (prior.precision != prior.precision.transpose() ||
        prior.precision.llt().info() != Eigen::Success) {
      return absl::InvalidArgumentError(absl::StrCat(
          prefix, "tensor '", kFoldInPriorPrecision, "' is not symmetric positive definite"));
    }
    prior.precision_mean = prior.precision * prior_mean->transpose().cast<double>();
    prior.noise_precision = (*noise)(0, 0);
    if (!(prior.noise_precision > 0.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "tensor '", kFoldInNoisePrecision, "' must be positive"));
    }
  }
  return std::shared_ptr<const Model>(
      std::make_shared<BiasedMfModel>(std::move(data), m, std::move(prior)));
}

absl::StatusOr<BiasedMfPredictor> BiasedMfPredictor::Create(const ModelData& data) {
  auto mean = data.tensors.find(kGlobalMean);
  auto bias = data.tensors.find(kUserBias);
  auto range = data.tensors.find(kRatingRange);
  if (data.meta.algorithm != kBiasedMfAlgorithm || mean == data.tensors.end() ||
      bias == data.tensors.end() || range == data.tensors.end() || mean->second.size() != 1 ||
      range->second.size() != 2 || bias->second.rows() != data.user_factors.rows()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", data.meta.name, "' is not a valid biased_mf model"));
  }
  BiasedMfPredictor p(data);
  p.user_bias_ = &bias->second;
  p.mean_ = mean->second(0, 0);
  p.min_ = range->second(0, 0);
  p.max_ = range->second(0, 1);
  return p;
}

float BiasedMfPredictor::Predict(UserIndex user, ItemIndex item) const {
  const EmbeddingMatrix& items = data_->item_factors;
  const EmbeddingMatrix& users = data_->user_factors;
  const int64_t k = items.cols() - 1;
  double pred = mean_;
  const bool known_user = user < users.rows() && users(user, k) != 0.0f;
  const bool known_item = item < items.rows();
  if (known_user) pred += (*user_bias_)(user, 0);
  if (known_item) pred += items(item, k);
  if (known_user && known_item) {
    pred += users.row(user).head(k).cast<double>().dot(items.row(item).head(k).cast<double>());
  }
  return static_cast<float>(std::clamp(pred, static_cast<double>(min_), static_cast<double>(max_)));
}

}  // namespace recd
