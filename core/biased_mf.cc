#include "core/biased_mf.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "Eigen/Cholesky"
#include "absl/strings/str_cat.h"
#include "core/explicit_ratings.h"
#include "core/parallel_for.h"
#include "core/random.h"
#include "core/status_macros.h"

namespace recd {
namespace {

constexpr char kGlobalMean[] = "global_mean";
constexpr char kUserBias[] = "user_bias";
constexpr char kRatingRange[] = "rating_range";

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

Regularization RegFrom(const ParsedParams& p) {
  return {p.GetDouble("regularization"), p.GetDouble("bias_regularization"),
          p.GetDouble("reg_exponent")};
}

class BiasedMfModel final : public Model {
 public:
  BiasedMfModel(std::shared_ptr<const ModelData> data, double mean, Regularization reg)
      : Model(std::move(data)), mean_(mean), reg_(reg) {}

  EmbeddingVector FoldInUser(absl::Span<const HistoryEntry> history) const override {
    const std::vector<RatedIndex> list =
        HistoryRatings(history, static_cast<uint32_t>(item_factors().rows()));
    if (list.empty()) return EmbeddingVector();
    EmbeddingVector v = SolveRow(list, item_factors(), mean_, reg_).cast<float>();
    v(v.size() - 1) = 1.0f;
    return v;
  }

 private:
  double mean_;
  Regularization reg_;
};

}  // namespace

std::vector<ParamSpec> BiasedMfParamSpecs() {
  return {
      ParamSpec::Int("factors", 32, 1, 1024, "latent factors k"),
      ParamSpec::Choice("solver", "als", {"als", "sgd"}, "alternating least squares or SGD"),
      ParamSpec::Int("iterations", 10, 1, 1000, "ALS sweeps or SGD epochs"),
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
  const bool sgd = p.GetChoice("solver") == "sgd";

  PortableRng rng(options.seed);
  const double init_std = p.GetDouble("init_std");
  EmbeddingMatrix users = EmbeddingMatrix::Zero(data.num_users, k + 1);
  EmbeddingMatrix items = EmbeddingMatrix::Zero(data.num_items, k + 1);
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

  ModelData out;
  double lr = p.GetDouble("learning_rate");
  Fit fit;
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
    fit = Evaluate(r, users, items, mean, reg, options.num_threads);
    out.meta.metrics[absl::StrCat("train_rmse_iter_", it + 1)] =
        std::sqrt(fit.sse / static_cast<double>(r.count));
    if (options.progress) options.progress(static_cast<double>(it + 1) / (iterations + 1));
  }
  // The final user step is FoldInUser's computation, so trained rows and fold-in agree.
  SolveSide(r.by_user, items, mean, reg, options.num_threads, users);
  fit = Evaluate(r, users, items, mean, reg, options.num_threads);

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
  out.meta.metrics["objective"] = fit.objective;
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
  return std::shared_ptr<const Model>(
      std::make_shared<BiasedMfModel>(std::move(data), m, RegFrom(*parsed)));
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
