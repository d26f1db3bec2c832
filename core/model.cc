#include "core/model.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/als.h"
#include "core/biased_mf.h"
#include "core/ease.h"
#include "core/popularity.h"
#include "core/pure_svd.h"
#include "core/two_tower.h"
#include "core/status_macros.h"

namespace recd {

bool IsUserIndexedTensor(absl::string_view tensor_name) { return absl::StartsWith(tensor_name, "user_"); }

namespace {

// Calls f(matrix) for user_factors and every user-indexed tensor that has a row for `user`.
template <typename Data, typename F>
void ForEachUserRow(Data& data, UserIndex user, F f) {
  if (static_cast<Eigen::Index>(user) < data.user_factors.rows()) f(data.user_factors);
  for (auto& [name, tensor] : data.tensors) {
    if (IsUserIndexedTensor(name) && static_cast<Eigen::Index>(user) < tensor.rows()) f(tensor);
  }
}

}  // namespace

bool EraseUserRows(ModelData& data, UserIndex user) {
  bool nonzero = false;
  ForEachUserRow(data, user, [&](EmbeddingMatrix& m) {
    auto row = m.row(static_cast<Eigen::Index>(user));
    nonzero = nonzero || (row.array() != 0.0f).any();
    row.setZero();
  });
  return nonzero;
}

bool HasUserRows(const ModelData& data, UserIndex user) {
  bool nonzero = false;
  ForEachUserRow(data, user, [&](const EmbeddingMatrix& m) {
    nonzero = nonzero || (m.row(static_cast<Eigen::Index>(user)).array() != 0.0f).any();
  });
  return nonzero;
}

namespace {

// One entry per algorithm: adding an algorithm is one line here plus its own files.
struct Algorithm {
  const char* name;
  absl::StatusOr<ModelData> (*train)(const TrainingData&, const std::map<std::string, std::string>&,
                                     const TrainOptions&);
  absl::StatusOr<std::shared_ptr<const Model>> (*create)(std::shared_ptr<const ModelData>);
};

constexpr Algorithm kAlgorithms[] = {
    {kPopularityAlgorithm, TrainPopularity, CreatePopularityModel},
    {kPureSvdAlgorithm, TrainPureSvd, CreatePureSvdModel},
    {kBiasedMfAlgorithm, TrainBiasedMf, CreateBiasedMfModel},
    {kAlsAlgorithm, TrainAls, CreateAlsModel},
    {kTwoTowerAlgorithm, TrainTwoTower, CreateTwoTowerModel},
    {kEaseAlgorithm, TrainEase, CreateEaseModel},
};

const Algorithm* FindAlgorithm(absl::string_view name) {
  for (const Algorithm& a : kAlgorithms) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

absl::Status UnknownAlgorithm(absl::string_view prefix, absl::string_view name) {
  return absl::InvalidArgumentError(absl::StrCat(prefix, "unknown algorithm '", name,
                                                 "'; known: ", absl::StrJoin(KnownAlgorithms(), ", ")));
}

// The algorithm-independent invariants of ModelData (see model.h).
absl::Status ValidateModelData(const ModelData& d) {
  const std::string prefix = absl::StrCat("model '", d.meta.name, "' version ", d.meta.version);
  if (d.item_factors.rows() == 0 || d.item_factors.cols() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, ": item_factors is empty (",
                                                   d.item_factors.rows(), " x ",
                                                   d.item_factors.cols(), ")"));
  }
  if (d.user_factors.rows() != 0 && d.user_factors.cols() != d.item_factors.cols()) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, ": user_factors has ", d.user_factors.cols(), " columns but item_factors has ",
        d.item_factors.cols()));
  }
  if (d.meta.num_items != d.item_factors.rows()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, ": metadata says ", d.meta.num_items,
                                                   " items but item_factors has ",
                                                   d.item_factors.rows(), " rows"));
  }
  if (d.meta.num_users != d.user_factors.rows()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, ": metadata says ", d.meta.num_users,
                                                   " users but user_factors has ",
                                                   d.user_factors.rows(), " rows"));
  }
  RETURN_IF_ERROR(CheckFinite(d.item_factors, absl::StrCat(prefix, ": tensor 'item_factors'")));
  RETURN_IF_ERROR(CheckFinite(d.user_factors, absl::StrCat(prefix, ": tensor 'user_factors'")));
  for (const auto& [name, tensor] : d.tensors) {
    RETURN_IF_ERROR(CheckFinite(tensor, absl::StrCat(prefix, ": tensor '", name, "'")));
  }
  return absl::OkStatus();
}

}  // namespace

bool Model::HasUserEmbedding(UserIndex user) const {
  const EmbeddingMatrix& users = data_->user_factors;
  // Users unknown at training time and users erased since (the store zeroes their row) both
  // have all-zero rows; neither has anything to score with.
  return user < users.rows() && (users.row(user).array() != 0.0f).any();
}

EmbeddingVector Model::UserEmbedding(UserIndex user) const {
  if (!HasUserEmbedding(user)) return EmbeddingVector();
  return data_->user_factors.row(user).transpose();
}

std::vector<float> Model::ExplainScore(absl::Span<const HistoryEntry> history,
                                       ItemIndex item) const {
  return {};
}

EmbeddingVector Model::FoldInKnownUser(UserIndex user,
                                       absl::Span<const HistoryEntry> history) const {
  return FoldInUser(history);
}

EmbeddingVector Model::ItemVectorFromFeatures(const ItemFeatures& features) const {
  return EmbeddingVector();
}

absl::StatusOr<std::shared_ptr<const Model>> CreateModel(std::shared_ptr<const ModelData> data) {
  if (data == nullptr) return absl::InvalidArgumentError("CreateModel: null model data");
  RETURN_IF_ERROR(ValidateModelData(*data));
  const Algorithm* algorithm = FindAlgorithm(data->meta.algorithm);
  if (algorithm == nullptr) {
    return UnknownAlgorithm(
        absl::StrCat("model '", data->meta.name, "' version ", data->meta.version, ": "),
        data->meta.algorithm);
  }
  return algorithm->create(std::move(data));
}

std::vector<std::string> KnownAlgorithms() {
  std::vector<std::string> names;
  for (const Algorithm& a : kAlgorithms) names.emplace_back(a.name);
  return names;
}

absl::StatusOr<ModelData> TrainModel(const ModelConfig& config, const TrainingData& data,
                                     const TrainOptions& options) {
  const Algorithm* algorithm = FindAlgorithm(config.algorithm);
  if (algorithm == nullptr) {
    return UnknownAlgorithm(absl::StrCat("model '", config.name, "': "), config.algorithm);
  }
  if (options.num_threads < 1 || options.num_threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads must be in [1, 1024], got ", options.num_threads));
  }
  // Checked here once so no algorithm indexes out of bounds on a malformed snapshot.
  for (size_t k = 0; k < data.interactions.size(); ++k) {
    const Interaction& x = data.interactions[k];
    if (x.user >= data.num_users || x.item >= data.num_items) {
      return absl::InvalidArgumentError(absl::StrCat(
          "interaction ", k, " has user ", x.user, " / item ", x.item, " outside the data's ",
          data.num_users, " users / ", data.num_items, " items"));
    }
  }
  if (options.cancel != nullptr && options.cancel->load()) {
    return absl::CancelledError("training cancelled");
  }

  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(ModelData out, algorithm->train(data, config.params, options));
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

  ModelMetadata& meta = out.meta;
  meta.name = config.name.empty() ? config.algorithm : config.name;
  meta.algorithm = config.algorithm;
  meta.version = 0;
  meta.trained_at_ms = 0;  // core has no clock; the caller stamps it
  meta.train_seconds = elapsed.count();
  meta.num_interactions = data.interactions.size();
  meta.trained_through_sequence = data.last_sequence;
  meta.num_users = static_cast<uint32_t>(out.user_factors.rows());
  meta.num_items = static_cast<uint32_t>(out.item_factors.rows());
  if (absl::Status s = ValidateModelData(out); !s.ok()) {
    return absl::InternalError(absl::StrCat("training produced an invalid model: ", s.message()));
  }
  return out;
}

}  // namespace recd
