#include "server/model_registry.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"

namespace recd::server {

ScorerOptions ScorerConfig::For(absl::string_view name) const {
  ScorerOptions options = defaults;
  auto it = kind_by_model.find(std::string(name));
  if (it != kind_by_model.end()) options.kind = it->second;
  return options;
}

absl::Status ParseScorerKind(absl::string_view text, absl::string_view field,
                             ScorerOptions& options) {
  if (text == "exact") {
    options.kind = ScorerOptions::Kind::kExact;
  } else if (text == "int8" || text == "int8_approx") {
    options.kind = ScorerOptions::Kind::kQuantizedInt8;
    options.quantized.exact = text == "int8";
  } else if (text == "hnsw") {
    options.kind = ScorerOptions::Kind::kHnsw;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": '", text, "' is not a scorer; use exact, int8, int8_approx or hnsw"));
  }
  return absl::OkStatus();
}

std::string ScorerKindName(const ScorerOptions& options) {
  switch (options.kind) {
    case ScorerOptions::Kind::kExact:
      return "exact";
    case ScorerOptions::Kind::kQuantizedInt8:
      return options.quantized.exact ? "int8" : "int8_approx";
    case ScorerOptions::Kind::kHnsw:
      return "hnsw";
  }
  return "unknown";
}

absl::Status ParseModelScorers(absl::string_view spec, const std::vector<ModelConfig>& models,
                               ScorerConfig& config) {
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    const size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_scorers: '", entry, "' is not model=scorer"));
    }
    const std::string name(absl::StripAsciiWhitespace(entry.substr(0, eq)));
    if (std::none_of(models.begin(), models.end(),
                     [&](const ModelConfig& m) { return m.name == name; })) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_scorers: '", name, "' is not a model of --models"));
    }
    // Only the kind is per model: the int8 mode (exact or not) comes with it.
    ScorerOptions parsed = config.defaults;
    RETURN_IF_ERROR(ParseScorerKind(absl::StripAsciiWhitespace(entry.substr(eq + 1)),
                                    absl::StrCat("--model_scorers ", name), parsed));
    if (parsed.kind == ScorerOptions::Kind::kQuantizedInt8 &&
        parsed.quantized.exact != config.defaults.quantized.exact) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--model_scorers ", name, ": int8 and int8_approx cannot be mixed with --scorer=",
          ScorerKindName(config.defaults), "; set the int8 mode with --scorer"));
    }
    config.kind_by_model[name] = parsed.kind;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const ServingModel>> ServingModel::Create(
    std::shared_ptr<const ModelData> data, const ScorerConfig& scorers) {
  const ScorerOptions scorer_options = scorers.For(data->meta.name);
  auto serving = std::make_shared<ServingModel>();
  ASSIGN_OR_RETURN(serving->model, CreateModel(data));
  auto items = std::shared_ptr<const EmbeddingMatrix>(data, &data->item_factors);
  ASSIGN_OR_RETURN(serving->scorer, CreateItemScorer(items, scorer_options));
  if (scorers.micro_batch_max > 1) {
    const size_t scans = scorers.micro_batch_scans > 0
                             ? scorers.micro_batch_scans
                             : std::max<size_t>(1, std::thread::hardware_concurrency());
    serving->batcher = std::make_unique<MicroBatcher>(serving->scorer.get(), scorers.micro_batch_max, scans);
  }

  auto normalized = std::make_shared<EmbeddingMatrix>(data->item_factors);
  for (Eigen::Index r = 0; r < normalized->rows(); ++r) {
    const float norm = normalized->row(r).norm();
    if (norm > 0.0f) normalized->row(r) /= norm;
  }
  serving->normalized_items = normalized;
  ASSIGN_OR_RETURN(serving->cosine_scorer, CreateItemScorer(normalized, scorer_options));
  serving->fold_ins = std::make_unique<FoldInCache>(scorers.fold_in_cache_users);
  return std::shared_ptr<const ServingModel>(std::move(serving));
}

ModelRegistry::ModelRegistry(std::vector<ModelConfig> configs, std::string default_model)
    : configs_(std::move(configs)), default_model_(std::move(default_model)) {}

absl::StatusOr<const ModelConfig*> ModelRegistry::Config(absl::string_view name) const {
  if (name.empty()) name = default_model_;
  for (const ModelConfig& c : configs_) {
    if (c.name == name) return &c;
  }
  std::vector<std::string> names;
  for (const ModelConfig& c : configs_) names.push_back(c.name);
  return absl::NotFoundError(absl::StrCat("model: '", name, "' is not a model of this server; known: ",
                                          absl::StrJoin(names, ", ")));
}

std::shared_ptr<const ServingModel> ModelRegistry::Live(absl::string_view name) const {
  MutexLock lock(&mu_);
  auto it = live_.find(name);
  return it == live_.end() ? nullptr : it->second;
}

void ModelRegistry::Publish(std::shared_ptr<const ServingModel> model) {
  const std::string name = model->meta().name;
  std::shared_ptr<const ServingModel> old;
  {
    MutexLock lock(&mu_);
    old = std::exchange(live_[name], std::move(model));
  }
  // `old` is released here, outside the lock; in-flight requests may still hold it.
}

bool ModelRegistry::ReplaceIfCurrent(const std::shared_ptr<const ServingModel>& expected,
                                     std::shared_ptr<const ServingModel> replacement) {
  const std::string name = replacement->meta().name;
  MutexLock lock(&mu_);
  auto it = live_.find(name);
  if (it == live_.end() || it->second != expected) return false;
  it->second = std::move(replacement);
  return true;
}

absl::Status ModelRegistry::EraseUsers(const std::vector<UserIndex>& users, const ScorerConfig& scorers) {
  for (const ModelConfig& config : configs_) {
    // Retry if a new version was published between the copy and the swap.
    for (int attempt = 0; attempt < 10; ++attempt) {
      std::shared_ptr<const ServingModel> live = Live(config.name);
      if (live == nullptr) break;
      const ModelData& data = live->model->data();
      if (std::none_of(users.begin(), users.end(), [&](UserIndex u) { return HasUserRows(data, u); })) break;
      auto copy = std::make_shared<ModelData>(data);
      for (UserIndex u : users) EraseUserRows(*copy, u);
      ASSIGN_OR_RETURN(std::shared_ptr<const ServingModel> erased, ServingModel::Create(copy, scorers));
      if (ReplaceIfCurrent(live, std::move(erased))) break;
    }
  }
  return absl::OkStatus();
}

}  // namespace recd::server
