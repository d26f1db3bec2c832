#include "core/popularity.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/interaction_matrix.h"
#include "core/status_macros.h"

namespace recd {
namespace {

class PopularityModel final : public Model {
 public:
  explicit PopularityModel(std::shared_ptr<const ModelData> data) : Model(std::move(data)) {}

  EmbeddingVector FoldInUser(absl::Span<const HistoryEntry> history) const override {
    return EmbeddingVector::Ones(1);
  }
};

}  // namespace

std::vector<ParamSpec> PopularityParamSpecs() {
  return {
      ParamSpec::Choice("weighting", "binary", {"binary", "log", "raw"},
                        "per-(user, item) weight summed into the score"),
      ParamSpec::Double("half_life_days", 0.0, 0.0, 36500.0,
                        "recency half-life relative to the newest event; 0 = no decay"),
  };
}

absl::StatusOr<ModelData> TrainPopularity(const TrainingData& data,
                                          const std::map<std::string, std::string>& params,
                                          const TrainOptions& options) {
  ASSIGN_OR_RETURN(ParsedParams p,
                   ParseParams(kPopularityAlgorithm, PopularityParamSpecs(), params));
  if (data.num_items == 0) {
    return absl::FailedPreconditionError("popularity: the training data has no items");
  }
  InteractionMatrixOptions mopts;
  mopts.event_weights = options.event_weights;
  ASSIGN_OR_RETURN(mopts.weighting, ParseInteractionWeighting(p.GetChoice("weighting")));
  mopts.half_life_days = p.GetDouble("half_life_days");
  mopts.reference_time_ms = NewestTimestampMs(data);
  ASSIGN_OR_RETURN(InteractionMatrix r, BuildInteractionMatrix(data, mopts));

  const std::vector<double> sums = ItemWeightSums(r);
  ModelData out;
  out.item_factors.resize(data.num_items, 1);
  int64_t active_items = 0;
  for (size_t i = 0; i < sums.size(); ++i) {
    out.item_factors(i, 0) = static_cast<float>(sums[i]);
    active_items += sums[i] > 0.0;
  }
  out.user_factors.resize(0, 1);
  int64_t active_users = 0;
  for (int64_t u = 0; u < r.rows(); ++u) {
    active_users += r.outerIndexPtr()[u + 1] > r.outerIndexPtr()[u];
  }
  out.meta.params = p.text();
  out.meta.metrics["active_users"] = static_cast<double>(active_users);
  out.meta.metrics["active_items"] = static_cast<double>(active_items);
  if (options.progress) options.progress(1.0);
  return out;
}

absl::StatusOr<std::shared_ptr<const Model>> CreatePopularityModel(
    std::shared_ptr<const ModelData> data) {
  const std::string prefix =
      absl::StrCat("model '", data->meta.name, "' version ", data->meta.version);
  auto parsed = ParseParams(kPopularityAlgorithm, PopularityParamSpecs(), data->meta.params);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, ": ", parsed.status().message()));
  }
  if (data->item_factors.cols() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, ": popularity item_factors must have 1 column, got ", data->item_factors.cols()));
  }
  return std::shared_ptr<const Model>(std::make_shared<PopularityModel>(std::move(data)));
}

}  // namespace recd
