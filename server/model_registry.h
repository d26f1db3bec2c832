// The live model of every configured model name, as immutable ServingModel snapshots.
//
// Readers pin a snapshot (one shared_ptr copy under a short mutex) and score without any lock;
// the trainer publishes a new snapshot with one pointer swap. A request that started on a
// version finishes on it even if a newer one is published meanwhile (TF Serving's
// ServableHandle idea).
#ifndef RECD_SERVER_MODEL_REGISTRY_H_
#define RECD_SERVER_MODEL_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/sync.h"
#include "core/model.h"
#include "core/scorer.h"
#include "server/fold_in_cache.h"
#include "server/micro_batcher.h"

namespace recd::server {

// How scorers are built: one ScorerOptions for every model, with a per-model override of the
// kind (e.g. HNSW for a model with a very large catalogue).
struct ScorerConfig {
  ScorerOptions defaults;
  std::map<std::string, ScorerOptions::Kind> kind_by_model;
  // Micro-batching of concurrent Recommend scans (server/micro_batcher.h): at most this many
  // queries per batch; 0 or 1 = off. Scans run at once before calls queue: micro_batch_scans
  // (0 = the number of hardware threads).
  size_t micro_batch_max = 0;
  size_t micro_batch_scans = 0;
  // Folded-in user vectors kept per model snapshot (server/fold_in_cache.h); 0 = none.
  size_t fold_in_cache_users = 65536;

  // The options for model `name`: defaults, with its kind override if any.
  ScorerOptions For(absl::string_view name) const;
};

// The server's default scorers: the int8 screen with exact answers (the exact float32 scan's
// answers at about a quarter of the bytes read), one thread per query.
inline ScorerConfig DefaultScorerConfig() {
  ScorerConfig config;
  config.defaults.kind = ScorerOptions::Kind::kQuantizedInt8;
  config.defaults.quantized.exact = true;
  return config;
}

// "exact", "int8" (exact answers through the int8 screen), "int8_approx" (fixed re-rank) or
// "hnsw" into `options` (kind, and quantized.exact). InvalidArgument naming `field` otherwise.
absl::Status ParseScorerKind(absl::string_view text, absl::string_view field, ScorerOptions& options);

// The name ParseScorerKind accepts for `options` (kind and quantized.exact).
std::string ScorerKindName(const ScorerOptions& options);

// Parses "model=kind,..." (kinds as ParseScorerKind) into config.kind_by_model, checking that
// each model is in `models`. InvalidArgument naming the entry otherwise.
absl::Status ParseModelScorers(absl::string_view spec, const std::vector<ModelConfig>& models,
                               ScorerConfig& config);

// One model version ready to serve. Immutable.
struct ServingModel {
  std::shared_ptr<const Model> model;
  // Top-K by dot product over the item factors (Recommend).
  std::unique_ptr<ItemScorer> scorer;
  // Micro-batches concurrent Recommend scans on `scorer`; null when micro-batching is off.
  std::unique_ptr<MicroBatcher> batcher;
  // Top-K by cosine: the same search over L2-normalised item factors (SimilarItems).
  std::shared_ptr<const EmbeddingMatrix> normalized_items;
  std::unique_ptr<ItemScorer> cosine_scorer;
  // Fold-ins of users whose history is newer than this version (thread-safe; the only part of
  // the snapshot that changes, and only as a cache).
  std::unique_ptr<FoldInCache> fold_ins;

  const ModelMetadata& meta() const { return model->meta(); }

  // Validates `data` (shapes, finite values), builds the model and both scorers with
  // scorers.For(data->meta.name).
  static absl::StatusOr<std::shared_ptr<const ServingModel>> Create(
      std::shared_ptr<const ModelData> data, const ScorerConfig& scorers);
};

class ModelRegistry {
 public:
  ModelRegistry(std::vector<ModelConfig> configs, std::string default_model);

  // The configured model `name` ("" = the default model). NotFound naming the known models when
  // `name` is not configured.
  absl::StatusOr<const ModelConfig*> Config(absl::string_view name) const;
  const std::vector<ModelConfig>& configs() const { return configs_; }
  const std::string& default_model() const { return default_model_; }

  // The live snapshot of a configured model, or null when it has not been trained yet.
  std::shared_ptr<const ServingModel> Live(absl::string_view name) const ABSL_LOCKS_EXCLUDED(mu_);

  // Makes `model` the live version of its name.
  void Publish(std::shared_ptr<const ServingModel> model) ABSL_LOCKS_EXCLUDED(mu_);

  // Replaces the live snapshot of `replacement`'s name only if it is still `expected` (so an
  // erasure never undoes a version published meanwhile). Returns whether it replaced.
  bool ReplaceIfCurrent(const std::shared_ptr<const ServingModel>& expected,
                        std::shared_ptr<const ServingModel> replacement) ABSL_LOCKS_EXCLUDED(mu_);

  // Removes `users`' rows from every live model: each live snapshot that holds a non-zero row of
  // one of them is replaced by a copy without those rows (snapshots are immutable; in-flight
  // requests finish on the old one, which is freed after them). Costs a copy and a scorer build
  // per affected model: meant for rare, privacy-driven deletions.
  absl::Status EraseUsers(const std::vector<UserIndex>& users, const ScorerConfig& scorers)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::vector<ModelConfig> configs_;
  const std::string default_model_;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const ServingModel>> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace recd::server

#endif  // RECD_SERVER_MODEL_REGISTRY_H_
