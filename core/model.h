// Models: the persisted state of a trained recommender (ModelData) and the immutable, thread-safe
// object serving it (Model). Every algorithm produces user and item embeddings; serving scores an
// item by the dot product of the two, so one scorer serves every algorithm.
#ifndef RECD_CORE_MODEL_H_
#define RECD_CORE_MODEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/embedding.h"
#include "core/types.h"

namespace recd {

// Descriptive facts about one trained version. Everything here is persisted with the version.
struct ModelMetadata {
  std::string name;       // model name used in requests, e.g. "pure_svd"
  std::string algorithm;  // "popularity", "pure_svd", "biased_mf", "als", "two_tower", "ease"
  uint64_t version = 0;   // assigned by the store when saved; 1, 2, ...
  int64_t trained_at_ms = 0;
  double train_seconds = 0.0;
  uint64_t num_interactions = 0;          // interactions the version was trained on
  uint64_t trained_through_sequence = 0;  // highest log sequence included in training
  uint32_t num_users = 0;                 // rows of user_factors
  uint32_t num_items = 0;                 // rows of item_factors
  std::map<std::string, double> metrics;       // "train_loss", "holdout_ndcg@10", ...
  std::map<std::string, std::string> params;   // hyperparameters, as text
  bool rejected = false;                       // failed the validation gate
  std::string reject_reason;
};

// Everything needed to rebuild a Model: metadata, embeddings and algorithm-specific tensors.
// Row u of user_factors is user u's embedding (all zeros for a user unknown at training time);
// row i of item_factors is item i's embedding. Both have `dim` columns, except that user_factors
// may have zero rows for algorithms that compute every user vector by fold-in.
struct ModelData {
  ModelMetadata meta;
  EmbeddingMatrix user_factors;
  EmbeddingMatrix item_factors;
  // Extra state by name (biases, network weights...). Serialised with the version.
  std::map<std::string, EmbeddingMatrix> tensors;

  int dim() const { return static_cast<int>(item_factors.cols()); }
};

// Optional per-item side information (the two-tower model hashes categories/tags into features).
struct ItemFeatures {
  std::vector<std::string> categories;
  std::vector<std::string> tags;
};

// An immutable trained model. All methods are const and safe to call from many threads.
class Model {
 public:
  virtual ~Model() = default;

  const ModelData& data() const { return *data_; }
  const ModelMetadata& meta() const { return data_->meta; }
  int dim() const { return data_->dim(); }
  const EmbeddingMatrix& item_factors() const { return data_->item_factors; }

  // True if `user` has a trained embedding row (known at training time, not erased).
  bool HasUserEmbedding(UserIndex user) const;

  // The user's trained embedding, or an empty vector if HasUserEmbedding(user) is false.
  EmbeddingVector UserEmbedding(UserIndex user) const;

  // Computes a user vector from the user's history (oldest first), against the fixed item
  // factors: the way a new interaction moves a user's recommendations before the next retrain.
  // Items outside item_factors (newer than the model) are ignored. Returns an empty vector if the
  // history holds no usable positive signal.
  virtual EmbeddingVector FoldInUser(absl::Span<const HistoryEntry> history) const = 0;

  // Per-item contribution of each history entry to the score of `item` for a folded-in user,
  // for explanations: result[j] = contribution of history[j]. Default: empty (not supported).
  virtual std::vector<float> ExplainScore(absl::Span<const HistoryEntry> history,
                                          ItemIndex item) const;

  // FoldInUser for a user the caller can name: models with per-user state beyond the history
  // (the two-tower model's user id embedding) use it when `user` has a trained row, so a known
  // user's vector does not jump when a new interaction arrives. For the model's own training
  // history it reproduces the trained row. Default: FoldInUser(history).
  virtual EmbeddingVector FoldInKnownUser(UserIndex user,
                                          absl::Span<const HistoryEntry> history) const;

  // A vector for an item from its attributes alone (no interactions, no trained row): cold
  // start for new items. Same width and space as item_factors rows. Default: empty vector
  // (not supported by the algorithm).
  virtual EmbeddingVector ItemVectorFromFeatures(const ItemFeatures& features) const;

 protected:
  explicit Model(std::shared_ptr<const ModelData> data) : data_(std::move(data)) {}

 private:
  std::shared_ptr<const ModelData> data_;
};

// Tensors whose name starts with "user_" have one row per user index, like user_factors
// (e.g. "user_bias", "user_id_emb"). Erasing a user zeroes their row in all of them.
bool IsUserIndexedTensor(absl::string_view tensor_name);

// Zeroes `user`'s row in user_factors and in every user-indexed tensor. Returns true if any of
// those rows held a non-zero value.
bool EraseUserRows(ModelData& data, UserIndex user);

// True if `user`'s row is non-zero in user_factors or a user-indexed tensor.
bool HasUserRows(const ModelData& data, UserIndex user);

// Builds the serving object for `data` according to data.meta.algorithm. Validates shapes and
// rejects non-finite values (InvalidArgument naming the tensor, row and column).
absl::StatusOr<std::shared_ptr<const Model>> CreateModel(std::shared_ptr<const ModelData> data);

// Names of the algorithms this build can train and serve.
std::vector<std::string> KnownAlgorithms();

// --- Training -------------------------------------------------------------------------------

// What one model is: its name, algorithm and hyperparameters (text, parsed by the algorithm;
// unknown keys are InvalidArgument).
struct ModelConfig {
  std::string name;
  std::string algorithm;
  std::map<std::string, std::string> params;
};

// The training input: a consistent snapshot of the interaction log in internal indices.
struct TrainingData {
  std::vector<Interaction> interactions;  // in log (arrival) order
  // Log sequence of each interaction (same length as `interactions`, increasing), or empty when
  // the data does not come from the log (offline files, tests).
  std::vector<uint64_t> sequences;
  uint32_t num_users = 0;                 // every user index is < num_users
  uint32_t num_items = 0;                 // every item index is < num_items
  uint64_t last_sequence = 0;             // highest log sequence included
  // Indexed by ItemIndex; may be empty or shorter than num_items (missing = no features).
  std::vector<ItemFeatures> item_features;
};

struct TrainOptions {
  uint64_t seed = 42;
  int num_threads = 1;
  EventWeights event_weights;
  // Previous version of the same model for warm start, or null. Algorithms that cannot warm
  // start ignore it.
  const ModelData* warm_start = nullptr;
  // Called now and then with progress in [0, 1]; may be null.
  std::function<void(double)> progress;
  // Polled between iterations; training stops with Cancelled when it becomes true. May be null.
  const std::atomic<bool>* cancel = nullptr;
};

// Trains `config` on `data`. Deterministic for a fixed seed and thread count. The result's
// metadata carries name, algorithm, params, sizes, training time and training metrics; the
// version is left 0 for the store to assign, and trained_at_ms 0 for the caller (core has no
// clock). An empty config.name defaults to the algorithm name.
absl::StatusOr<ModelData> TrainModel(const ModelConfig& config, const TrainingData& data,
                                     const TrainOptions& options);

}  // namespace recd

#endif  // RECD_CORE_MODEL_H_
