#include "core/pure_svd.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/randomized_svd.h"
#include "core/status_macros.h"

namespace recd {
namespace {


class PureSvdModel final : public Model {
 public:
  PureSvdModel(std::shared_ptr<const ModelData> data, InteractionMatrixOptions options)
      : Model(std::move(data)), options_(std::move(options)) {}

  EmbeddingVector FoldInUser(absl::Span<const HistoryEntry> history) const override {
    const std::vector<WeightedItem> row =
        AggregateHistory(history, options_, static_cast<uint32_t>(item_factors().rows()));
    if (row.empty()) return EmbeddingVector();
    return ProjectWeightedItems(row, item_factors());
  }

  std::vector<float> ExplainScore(absl::Span<const HistoryEntry> history,
                                  ItemIndex item) const override {
    const EmbeddingMatrix& v = item_factors();
    std::vector<float> out(history.size(), 0.0f);
    if (item >= v.rows()) return out;
    const std::vector<float> c =
        HistoryContributions(history, options_, static_cast<uint32_t>(v.rows()));
    const auto target = v.row(item).cast<double>();
    for (size_t j = 0; j < history.size(); ++j) {
      if (c[j] == 0.0f) continue;  // HistoryContributions is 0 for items outside the model
      out[j] = static_cast<float>(c[j] * v.row(history[j].item).cast<double>().dot(target));
    }
    return out;
  }

 private:
  InteractionMatrixOptions options_;
};

}  // namespace

std::vector<ParamSpec> PureSvdParamSpecs() {
  return {
      ParamSpec::Int("rank", 64, 1, 1024, "number of singular vectors kept"),
      ParamSpec::Int("oversampling", 10, 0, 1000, "randomized SVD oversampling"),
      ParamSpec::Int("power_iterations", 4, 0, 50, "randomized SVD power iterations"),
      ParamSpec::Choice("weighting", "log", {"log", "binary", "raw"},
                        "pair weight transform before the SVD"),
      ParamSpec::Double("log_alpha", 1.0, 1e-6, 1e6, "log weighting: 1 + alpha*log(1 + w/eps)"),
      ParamSpec::Double("log_epsilon", 1.0, 1e-6, 1e6, "log weighting epsilon"),
      ParamSpec::Double("item_norm_exponent", 0.0, -2.0, 2.0,
                        "scale item columns by norm^d before the SVD (EigenRec)"),
  };
}

EmbeddingVector ProjectWeightedItems(absl::Span<const WeightedItem> row,
                                     const EmbeddingMatrix& item_factors) {
  // Double accumulation: a heavy user's row sums thousands of terms.
  Eigen::VectorXd acc = Eigen::VectorXd::Zero(item_factors.cols());
  for (const WeightedItem& e : row) {
    if (e.item >= item_factors.rows()) continue;
    acc.noalias() += static_cast<double>(e.weight) * item_factors.row(e.item).cast<double>().transpose();
  }
  return acc.cast<float>();
}

EmbeddingMatrix EventWeightsTensor(const EventWeights& w) {
  EmbeddingMatrix t(1, 8);
  t << w.view, w.click, w.add_to_cart, w.purchase, w.like, w.dislike, w.impression, w.rating_scale;
  return t;
}

absl::StatusOr<EventWeights> EventWeightsFromTensor(const EmbeddingMatrix& t) {
  if (t.rows() != 1 || t.cols() != 8) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", kEventWeightsTensor,
                                                   "' must be 1 x 8, got ", t.rows(), " x ",
                                                   t.cols()));
  }
  EventWeights w;
  w.view = t(0, 0);
  w.click = t(0, 1);
  w.add_to_cart = t(0, 2);
  w.purchase = t(0, 3);
  w.like = t(0, 4);
  w.dislike = t(0, 5);
  w.impression = t(0, 6);
  w.rating_scale = t(0, 7);
  return w;
}

absl::StatusOr<InteractionMatrixOptions> ImplicitMatrixOptions(const ParsedParams& p,
                                                               const EventWeights& weights) {
  InteractionMatrixOptions o;
  o.event_weights = weights;
  ASSIGN_OR_RETURN(o.weighting, ParseInteractionWeighting(p.GetChoice("weighting")));
  o.log_alpha = static_cast<float>(p.GetDouble("log_alpha"));
  o.log_epsilon = static_cast<float>(p.GetDouble("log_epsilon"));
  RETURN_IF_ERROR(ValidateInteractionMatrixOptions(o));
  return o;
}

absl::StatusOr<StoredImplicitModel> ParseStoredImplicitModel(const ModelData& data,
                                                             absl::string_view algorithm,
                                                             const std::vector<ParamSpec>& specs) {
  auto bad = [&](const absl::Status& s) {
    return absl::InvalidArgumentError(absl::StrCat("model '", data.meta.name, "' version ",
                                                   data.meta.version, ": ", s.message()));
  };
  absl::StatusOr<ParsedParams> params = ParseParams(algorithm, specs, data.meta.params);
  if (!params.ok()) return bad(params.status());
  EventWeights weights;  // versions without the tensor were built with the defaults
  if (auto it = data.tensors.find(kEventWeightsTensor); it != data.tensors.end()) {
    absl::StatusOr<EventWeights> w = EventWeightsFromTensor(it->second);
    if (!w.ok()) return bad(w.status());
    weights = *w;
  }
  absl::StatusOr<InteractionMatrixOptions> matrix = ImplicitMatrixOptions(*params, weights);
  if (!matrix.ok()) return bad(matrix.status());
  return StoredImplicitModel{*std::move(params), *matrix};
}

absl::StatusOr<ModelData> TrainPureSvd(const TrainingData& data,
                                       const std::map<std::string, std::string>& params,
                                       const TrainOptions& options) {
  const std::vector<ParamSpec> specs = PureSvdParamSpecs();
  ASSIGN_OR_RETURN(ParsedParams p, ParseParams(kPureSvdAlgorithm, specs, params));
  ASSIGN_OR_RETURN(InteractionMatrixOptions mopts, ImplicitMatrixOptions(p, options.event_weights));
  ASSIGN_OR_RETURN(InteractionMatrix r, BuildInteractionMatrix(data, mopts));
  if (r.nonZeros() == 0) {
    return absl::FailedPreconditionError(
        "pure_svd: the training data has no positive (user, item) pair");
  }

  // EigenRec scaling: only the matrix the subspace is computed from is scaled.
  InteractionMatrix a = r;
  const double d = p.GetDouble("item_norm_exponent");
  if (d != 0.0) {
    std::vector<double> sq(a.cols(), 0.0);
    for (int64_t k = 0; k < a.nonZeros(); ++k) {
      sq[a.innerIndexPtr()[k]] += static_cast<double>(a.valuePtr()[k]) * a.valuePtr()[k];
    }
    std::vector<float> scale(a.cols());
    for (size_t i = 0; i < sq.size(); ++i) {
      scale[i] = sq[i] > 0.0 ? static_cast<float>(std::pow(std::sqrt(sq[i]), d)) : 0.0f;
    }
    for (int64_t k = 0; k < a.nonZeros(); ++k) a.valuePtr()[k] *= scale[a.innerIndexPtr()[k]];
  }

  RandomizedSvdOptions so;
  so.rank = p.GetInt("rank");
  so.oversampling = p.GetInt("oversampling");
  so.power_iterations = p.GetInt("power_iterations");
  so.seed = options.seed;
  so.num_threads = options.num_threads;
  so.cancel = options.cancel;
  if (options.progress) {
    so.progress = [&options](double f) { options.progress(0.9 * f); };
  }
  ASSIGN_OR_RETURN(RandomizedSvdResult svd, RandomizedSvd(a, so));
  const int64_t k = svd.singular_values.size();

  ModelData out;
  out.item_factors = svd.v.cast<float>();
  // Items without interactions have exactly zero rows in exact arithmetic; the QR leaves
  // rounding noise there, and serving them noise scores would be arbitrary.
  std::vector<bool> has_column(a.cols(), false);
  for (int64_t j = 0; j < a.nonZeros(); ++j) has_column[a.innerIndexPtr()[j]] = true;
  for (int64_t i = 0; i < a.cols(); ++i) {
    if (!has_column[i]) out.item_factors.row(i).setZero();
  }

  // User rows: r_u V with the exact code path FoldInUser uses. Rows are independent, so
  // contiguous user blocks per thread give the same bits for any thread count.
  out.user_factors = EmbeddingMatrix::Zero(r.rows(), k);
  auto project_users = [&](int64_t begin, int64_t end) {
    std::vector<WeightedItem> row;
    for (int64_t u = begin; u < end; ++u) {
      row.clear();
      for (InteractionMatrix::InnerIterator it(r, u); it; ++it) {
        row.push_back({static_cast<ItemIndex>(it.col()), it.value()});
      }
      if (!row.empty()) out.user_factors.row(u) = ProjectWeightedItems(row, out.item_factors);
    }
  };
  const int64_t threads =
      std::clamp<int64_t>(r.nonZeros() / 50'000, 1, std::max(1, options.num_threads));
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < threads; ++t) {
    workers.emplace_back(project_users, r.rows() * t / threads, r.rows() * (t + 1) / threads);
  }
  project_users(0, r.rows() / threads);
  for (std::thread& w : workers) w.join();

  int64_t active_users = 0;
  for (int64_t u = 0; u < r.rows(); ++u) active_users += r.outerIndexPtr()[u + 1] > r.outerIndexPtr()[u];
  const double total_energy = static_cast<double>(a.squaredNorm());
  out.meta.params = p.text();
  out.meta.metrics["rank"] = static_cast<double>(k);
  out.meta.metrics["explained_energy"] =
      total_energy > 0.0 ? svd.singular_values.squaredNorm() / total_energy : 0.0;
  out.meta.metrics["active_users"] = static_cast<double>(active_users);
  out.tensors[kEventWeightsTensor] = EventWeightsTensor(options.event_weights);
  if (options.progress) options.progress(1.0);
  return out;
}

absl::StatusOr<std::shared_ptr<const Model>> CreatePureSvdModel(
    std::shared_ptr<const ModelData> data) {
  ASSIGN_OR_RETURN(StoredImplicitModel stored,
                   ParseStoredImplicitModel(*data, kPureSvdAlgorithm, PureSvdParamSpecs()));
  if (data->user_factors.rows() != 0 && data->user_factors.cols() != data->item_factors.cols()) {
    return absl::InvalidArgumentError(absl::StrCat("model '", data->meta.name, "' version ",
                                                   data->meta.version,
                                                   ": user/item factor widths differ"));
  }
  return std::shared_ptr<const Model>(std::make_shared<PureSvdModel>(std::move(data), stored.matrix));
}

}  // namespace recd
