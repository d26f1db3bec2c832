#include "core/als.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "Eigen/Cholesky"
#include "absl/strings/str_cat.h"
#include "core/interaction_matrix.h"
#include "core/parallel_for.h"
#include "core/pure_svd.h"
#include "core/random.h"
#include "core/status_macros.h"

namespace recd {
namespace {


struct Settings {
  double lambda = 0.0;
  double alpha = 0.0;
  int cg_steps = 3;
  double reg_exponent = 0.0;

  // λ of a row whose observed entries have Σ α w = confidence_extra, against `others` rows on
  // the other side: λ · ((others + confidence_extra) / others)^reg_exponent, i.e. scaled by the
  // row's total confidence mass relative to a row without interactions (Rendle et al. 2021's
  // frequency-scaled regularisation, in the HKV parametrisation).
  double RowLambda(double confidence_extra, int64_t others) const {
    if (reg_exponent == 0.0) return lambda;
    const double n = static_cast<double>(std::max<int64_t>(others, 1));
    return lambda * std::pow((n + confidence_extra) / n, reg_exponent);
  }
};

Settings SettingsFrom(const ParsedParams& p) {
  return {p.GetDouble("regularization"), p.GetDouble("alpha"), p.GetInt("cg_steps"),
          p.GetDouble("reg_exponent")};
}

// YᵀY in double. One code path for training and serving, so fold-in matches training.
Eigen::MatrixXd Gram(const EmbeddingMatrix& m) {
  const Eigen::MatrixXd d = m.cast<double>();
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(d.cols(), d.cols());
  g.selfadjointView<Eigen::Lower>().rankUpdate(d.transpose());
  g.triangularView<Eigen::StrictlyUpper>() = g.transpose();
  return g;
}

// One row's least-squares problem against the fixed factors `other` (rows = the other side):
//   A = G + λI + Σ_j α w_j y_j y_jᵀ,   b = Σ_j (1 + α w_j) y_j
// for the row's observed entries j (indices `idx`, weights `w`).
struct RowProblem {
  Eigen::MatrixXd y;   // n x k gathered rows
  Eigen::VectorXd cw;  // α w_j
  Eigen::VectorXd b;

  RowProblem(const int32_t* idx, const float* w, int64_t n, const EmbeddingMatrix& other,
             double alpha)
      : y(n, other.cols()), cw(n) {
    for (int64_t j = 0; j < n; ++j) {
      y.row(j) = other.row(idx[j]).cast<double>();
      cw(j) = alpha * static_cast<double>(w[j]);
    }
    b = y.transpose() * (cw.array() + 1.0).matrix();
  }

  Eigen::VectorXd Apply(const Eigen::MatrixXd& gram, double lambda, const Eigen::VectorXd& v) const {
    Eigen::VectorXd out = gram * v + lambda * v;
    out.noalias() += y.transpose() * (cw.array() * (y * v).array()).matrix();
    return out;
  }

  Eigen::MatrixXd Normal(const Eigen::MatrixXd& gram, double lambda) const {
    Eigen::MatrixXd a = gram;
    a.diagonal().array() += lambda;
    const Eigen::MatrixXd scaled = cw.cwiseSqrt().asDiagonal() * y;
    a.selfadjointView<Eigen::Lower>().rankUpdate(scaled.transpose());
    return a;
  }

  Eigen::VectorXd SolveExact(const Eigen::MatrixXd& gram, double lambda) const {
    return Normal(gram, lambda).selfadjointView<Eigen::Lower>().ldlt().solve(b);
  }
};

// Conjugate gradient from x (Takács et al. 2011, Algorithm 2), `steps` iterations.
Eigen::VectorXd SolveCg(const RowProblem& p, const Eigen::MatrixXd& gram, double lambda,
                        Eigen::VectorXd x, int steps) {
  Eigen::VectorXd r = p.b - p.Apply(gram, lambda, x);
  Eigen::VectorXd d = r;
  double rs = r.squaredNorm();
  for (int s = 0; s < steps && rs > 1e-30; ++s) {
    const Eigen::VectorXd ad = p.Apply(gram, lambda, d);
    const double dad = d.dot(ad);
    if (!(dad > 0.0)) break;
    const double a = rs / dad;
    x.noalias() += a * d;
    r.noalias() -= a * ad;
    const double rs_new = r.squaredNorm();
    d = r + (rs_new / rs) * d;
    rs = rs_new;
  }
  return x;
}

enum class Step { kCg, kExact };

// Updates every row of `self` against `other` (m = self's matrix, rows = self's entities).
void SolveSide(const InteractionMatrix& m, const EmbeddingMatrix& other, const Settings& s,
               Step step, int num_threads, EmbeddingMatrix& self) {
  const Eigen::MatrixXd gram = Gram(other);
  const int64_t n = m.rows();
  const int64_t blocks = std::clamp<int64_t>(n / 32, 1, 512);
  ParallelForBlocks(blocks, num_threads, [&](int64_t b) {
    for (int64_t r = BlockBegin(n, blocks, b); r < BlockBegin(n, blocks, b + 1); ++r) {
      const int64_t begin = m.outerIndexPtr()[r], end = m.outerIndexPtr()[r + 1];
      if (begin == end) continue;
      const RowProblem p(m.innerIndexPtr() + begin, m.valuePtr() + begin, end - begin, other,
                         s.alpha);
      const double lambda = s.RowLambda(p.cw.sum(), other.rows());
      const Eigen::VectorXd x = step == Step::kExact
                                    ? p.SolveExact(gram, lambda)
                                    : SolveCg(p, gram, lambda, self.row(r).cast<double>().transpose(),
                                              s.cg_steps);
      if (x.allFinite()) self.row(r) = x.cast<float>().transpose();
    }
  });
}

// L of the current factors (see als.h), in double, per-user partial sums in fixed blocks.
double Objective(const InteractionMatrix& r, const InteractionMatrix& rt,
                 const EmbeddingMatrix& x, const EmbeddingMatrix& y, const Settings& s,
                 int num_threads) {
  const Eigen::MatrixXd gram = Gram(y);
  const int64_t n = r.rows();
  constexpr int64_t kBlocks = 64;
  std::vector<double> part(kBlocks, 0.0);
  ParallelForBlocks(kBlocks, num_threads, [&](int64_t b) {
    double sum = 0.0;
    for (int64_t u = BlockBegin(n, kBlocks, b); u < BlockBegin(n, kBlocks, b + 1); ++u) {
      const Eigen::VectorXd xu = x.row(u).cast<double>().transpose();
      double extra = 0.0;
      for (InteractionMatrix::InnerIterator it(r, u); it; ++it) {
        const double dot = xu.dot(y.row(it.col()).cast<double>().transpose());
        const double c = 1.0 + s.alpha * it.value();
        extra += s.alpha * it.value();
        sum += c * (1.0 - dot) * (1.0 - dot) - dot * dot;
      }
      sum += xu.dot(gram * xu) + s.RowLambda(extra, y.rows()) * xu.squaredNorm();
    }
    part[b] = sum;
  });
  double total = 0.0;
  for (double v : part) total += v;
  for (int64_t i = 0; i < y.rows(); ++i) {
    double extra = 0.0;
    for (InteractionMatrix::InnerIterator it(rt, i); it; ++it) extra += s.alpha * it.value();
    total += s.RowLambda(extra, x.rows()) * y.row(i).cast<double>().squaredNorm();
  }
  return total;
}

class AlsModel final : public Model {
 public:
  AlsModel(std::shared_ptr<const ModelData> data, InteractionMatrixOptions options, Settings s)
      : Model(std::move(data)), options_(std::move(options)), settings_(s),
        gram_(Gram(item_factors())) {}

  EmbeddingVector FoldInUser(absl::Span<const HistoryEntry> history) const override {
    const std::vector<WeightedItem> row =
        AggregateHistory(history, options_, static_cast<uint32_t>(item_factors().rows()));
    if (row.empty()) return EmbeddingVector();
    const RowProblem p = Problem(row);
    const Eigen::VectorXd x = p.SolveExact(gram_, Lambda(p));
    if (!x.allFinite()) return EmbeddingVector();
    return x.cast<float>();
  }

  std::vector<float> ExplainScore(absl::Span<const HistoryEntry> history,
                                  ItemIndex item) const override {
    std::vector<float> out(history.size(), 0.0f);
    const EmbeddingMatrix& v = item_factors();
    if (item >= v.rows()) return out;
    const uint32_t num_items = static_cast<uint32_t>(v.rows());
    const std::vector<WeightedItem> row = AggregateHistory(history, options_, num_items);
    if (row.empty()) return out;
    const RowProblem p = Problem(row);
    // score = y_targetᵀ A⁻¹ b = Σ_i c_i (A⁻¹ y_target)ᵀ y_i  (A symmetric).
    const Eigen::VectorXd z = p.Normal(gram_, Lambda(p))
                                  .selfadjointView<Eigen::Lower>()
                                  .ldlt()
                                  .solve(v.row(item).cast<double>().transpose());
    std::vector<double> per_item(num_items, 0.0), weight(num_items, 0.0);
    for (size_t j = 0; j < row.size(); ++j) {
      per_item[row[j].item] = (1.0 + p.cw(j)) * z.dot(p.y.row(j).transpose());
      weight[row[j].item] = row[j].weight;
    }
    const std::vector<float> c = HistoryContributions(history, options_, num_items);
    for (size_t j = 0; j < history.size(); ++j) {
      const ItemIndex i = history[j].item;
      if (c[j] == 0.0f || i >= num_items || weight[i] == 0.0) continue;
      out[j] = static_cast<float>(per_item[i] * c[j] / weight[i]);
    }
    return out;
  }

 private:
  double Lambda(const RowProblem& p) const {
    return settings_.RowLambda(p.cw.sum(), item_factors().rows());
  }

  RowProblem Problem(const std::vector<WeightedItem>& row) const {
    std::vector<int32_t> idx(row.size());
    std::vector<float> w(row.size());
    for (size_t j = 0; j < row.size(); ++j) {
      idx[j] = static_cast<int32_t>(row[j].item);
      w[j] = row[j].weight;
    }
    return RowProblem(idx.data(), w.data(), static_cast<int64_t>(row.size()), item_factors(),
                      settings_.alpha);
  }

  InteractionMatrixOptions options_;
  Settings settings_;
  Eigen::MatrixXd gram_;
};

}  // namespace

std::vector<ParamSpec> AlsParamSpecs() {
  return {
      ParamSpec::Int("factors", 64, 1, 1024, "latent factors k"),
      ParamSpec::Int("iterations", 10, 1, 1000, "sweeps (user step + item step)"),
      ParamSpec::Double("regularization", 100.0, 0.0, 1e6, "lambda"),
      ParamSpec::Double("alpha", 10.0, 0.0, 1e6, "confidence c = 1 + alpha * w"),
      ParamSpec::Choice("weighting", "log", {"log", "binary", "raw"}, "pair weight w"),
      ParamSpec::Double("log_alpha", 1.0, 1e-6, 1e6, "log weighting: 1 + alpha*log(1 + w/eps)"),
      ParamSpec::Double("log_epsilon", 1.0, 1e-6, 1e6, "log weighting epsilon"),
      ParamSpec::Int("cg_steps", 3, 1, 100, "conjugate-gradient iterations per row and step"),
      ParamSpec::Double("reg_exponent", 0.0, 0.0, 2.0,
                        "scale lambda by the row's relative confidence mass to this power"),
      ParamSpec::Double("tolerance", 0.0, 0.0, 1.0, "stop when a sweep lowers L by less"),
      ParamSpec::Double("init_std", 0.01, 1e-9, 10.0, "std of the initial item factors"),
  };
}

absl::StatusOr<ModelData> TrainAls(const TrainingData& data,
                                   const std::map<std::string, std::string>& params,
                                   const TrainOptions& options) {
  ASSIGN_OR_RETURN(ParsedParams p, ParseParams(kAlsAlgorithm, AlsParamSpecs(), params));
  ASSIGN_OR_RETURN(InteractionMatrixOptions mopts, ImplicitMatrixOptions(p, options.event_weights));
  ASSIGN_OR_RETURN(InteractionMatrix r, BuildInteractionMatrix(data, mopts));
  if (r.nonZeros() == 0) {
    return absl::FailedPreconditionError("als: the training data has no positive (user, item) pair");
  }
  const InteractionMatrix rt = r.transpose();
  const int k = p.GetInt("factors");
  const int iterations = p.GetInt("iterations");
  const double tolerance = p.GetDouble("tolerance");
  const Settings s = SettingsFrom(p);

  EmbeddingMatrix x = EmbeddingMatrix::Zero(r.rows(), k);
  EmbeddingMatrix y = EmbeddingMatrix::Zero(r.cols(), k);
  // Items draw from one seeded stream in index order: a new item's row does not depend on
  // whether an older version exists.
  PortableRng rng(options.seed);
  const double init_std = p.GetDouble("init_std");
  for (int64_t i = 0; i < y.rows(); ++i) {
    const bool active = rt.outerIndexPtr()[i + 1] > rt.outerIndexPtr()[i];
    for (int f = 0; f < k; ++f) {
      const float v = static_cast<float>(init_std * rng.Normal());
      if (active) y(i, f) = v;
    }
  }
  bool warm = false;
  if (const ModelData* w = options.warm_start;
      w != nullptr && w->meta.algorithm == kAlsAlgorithm && w->item_factors.cols() == k &&
      (w->user_factors.rows() == 0 || w->user_factors.cols() == k)) {
    warm = true;
    const int64_t items = std::min<int64_t>(w->item_factors.rows(), y.rows());
    for (int64_t i = 0; i < items; ++i) {
      if (w->item_factors.row(i).squaredNorm() > 0.0f) y.row(i) = w->item_factors.row(i);
    }
    const int64_t users = std::min<int64_t>(w->user_factors.rows(), x.rows());
    x.topRows(users) = w->user_factors.topRows(users);
  }

  ModelData out;
  double previous = 0.0;
  int run = 0;
  for (int it = 0; it < iterations; ++it) {
    if (options.cancel != nullptr && options.cancel->load()) {
      return absl::CancelledError("als: training cancelled");
    }
    SolveSide(r, y, s, Step::kCg, options.num_threads, x);
    SolveSide(rt, x, s, Step::kCg, options.num_threads, y);
    const double objective = Objective(r, rt, x, y, s, options.num_threads);
    out.meta.metrics[absl::StrCat("objective_iter_", it + 1)] = objective;
    ++run;
    if (options.progress) options.progress(static_cast<double>(it + 1) / (iterations + 1));
    if (it > 0 && tolerance > 0.0 && previous - objective < tolerance * std::fabs(previous)) break;
    previous = objective;
  }
  // The exact user step: FoldInUser's computation, so trained rows and fold-in agree.
  SolveSide(r, y, s, Step::kExact, options.num_threads, x);

  int64_t active_users = 0;
  for (int64_t u = 0; u < r.rows(); ++u) active_users += r.outerIndexPtr()[u + 1] > r.outerIndexPtr()[u];
  out.meta.metrics["objective"] = Objective(r, rt, x, y, s, options.num_threads);
  out.meta.metrics["iterations_run"] = run;
  out.meta.metrics["warm_started"] = warm ? 1.0 : 0.0;
  out.meta.metrics["active_users"] = static_cast<double>(active_users);
  out.meta.params = p.text();
  out.user_factors = std::move(x);
  out.item_factors = std::move(y);
  out.tensors[kEventWeightsTensor] = EventWeightsTensor(options.event_weights);
  if (options.progress) options.progress(1.0);
  return out;
}

absl::StatusOr<std::shared_ptr<const Model>> CreateAlsModel(std::shared_ptr<const ModelData> data) {
  ASSIGN_OR_RETURN(StoredImplicitModel stored,
                   ParseStoredImplicitModel(*data, kAlsAlgorithm, AlsParamSpecs()));
  return std::shared_ptr<const Model>(
      std::make_shared<AlsModel>(std::move(data), stored.matrix, SettingsFrom(stored.params)));
}

}  // namespace recd
