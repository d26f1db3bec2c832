// A deep two-tower retrieval model trained with a softmax over items (Covington et al., "Deep
// neural networks for YouTube recommendations", 2016; Yi et al., "Sampling-bias-corrected neural
// modeling for large corpus item recommendations", RecSys 2019).
//
//   user tower  [mean of the history embeddings of the user's `history_length` most recent
//               positive items, user id embedding] -> ReLU MLP -> q_u
//   item tower  [item id embedding, mean of the hashed embeddings of the item's categories and
//               tags] -> ReLU MLP -> v_i
// Outputs are L2-normalised (normalize = 1) and the score is <q_u, v_i> (/ temperature in
// training; ranking is unchanged by the scale). Each (user, item) positive pair of the
// InteractionMatrix is one example; a batch's items are each other's negatives (in-batch
// softmax) and the logits are corrected by − logq_weight · log Q(i), Q(i) = the item's share of
// examples, so popular items are not punished for being sampled often as negatives. The
// example's own item is left out of the pooled history (else the tower would learn to copy
// it), and other copies of the target item in the batch are masked. Dense Adam, like PyTorch's.
// Network details and shapes: core/two_tower_net.h; the PyTorch twin in bench/peers/ is the
// same model.
//
// Model layout (algorithm "two_tower"):
//   item_factors  num_items x dim: v_i. Items without training pairs use a zero id embedding,
//                 so their row equals ItemVectorFromFeatures(their features).
//   user_factors  num_users x dim: q_u from the user's training history and id embedding
//                 (zero for users without positive pairs).
//   tensors       every network weight by name (item_id_emb, hist_emb, user_id_emb, feature_emb,
//                 item_w<l>, item_b<l>, user_w<l>, user_b<l>) and "event_weights" (as pure_svd).
// FoldInKnownUser(u, history) runs the user tower on the history's most recent positive items
// and u's id embedding (reproducing the trained row for the training history);
// FoldInUser(history) uses the pooled history alone (a new user has no id embedding).
// ItemVectorFromFeatures(features) runs the item tower with a zero id embedding: cold start for
// a new item with categories or tags (empty when it has none or feature_buckets is 0).
// Features are hashed as FNV-1a 64 of "c:<category>" / "t:<tag>" modulo feature_buckets.
//
// Deterministic for a seed and any num_threads (the batch is cut into a fixed number of chunks).
// Warm start: a previous "two_tower" version with the same network shape (embedding_dim,
// hidden_dim, hidden_layers, dim, feature_buckets) initialises every weight it has; new users and
// items get fresh random rows. Otherwise it is ignored (meta.metrics "warm_started" = 0).
//
// Parameters (defaults in brackets; chosen on the validation part of ML-100K's Recommenders
// protocol, see eval/README.md "Tuning" and the closing note of issue 4):
//   dim [32]              1..1024 output (served) dimension
//   embedding_dim [32]    1..1024
//   hidden_dim [64]       1..4096
//   hidden_layers [1]     0..4 ReLU layers before the output layer
//   history_length [50]   1..100000 most recent positive items pooled
//   feature_buckets [1024] 0..16777216 hashed category/tag embeddings (0 = no features)
//   epochs [7]            0..1000
//   batch_size [512]      2..65536
//   learning_rate [0.005] (0, 1] Adam step size
//   weight_decay [0]      0..1 L2 added to the gradient (as torch.optim.Adam; with dense Adam
//                         it shrinks every embedding row each step, and hurt on ML-100K)
//   temperature [0.1]     (0, 100]
//   normalize [1]         0 | 1
//   logq_weight [1.5]     0..10 strength of the log-Q correction (1 = unbiased full-softmax
//                         estimate; 1.5 tilts further toward popular items, which the top-k
//                         metrics reward: 0 halves nDCG@10, 1.5 beats 1 and full softmax)
//   user_id_dropout [0]   0..1 probability of zeroing an example's user id embedding
//   item_id_dropout [0]   0..1 same for the item id embedding (teaches the feature path)
//   history_dropout [0]   0..1 probability of leaving each pooled history item out of an
//                         example (denoising, as Mult-DAE's input dropout)
//   init_std [0.05]       (0, 10] standard deviation of the initial embeddings
#ifndef RECD_CORE_TWO_TOWER_H_
#define RECD_CORE_TWO_TOWER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/interaction_matrix.h"
#include "core/model.h"
#include "core/train_params.h"

namespace recd {

inline constexpr char kTwoTowerAlgorithm[] = "two_tower";

std::vector<ParamSpec> TwoTowerParamSpecs();

// Trains the model. FailedPrecondition without positive pairs; InvalidArgument for bad params;
// Cancelled if options.cancel fires (checked between batches). meta.metrics: "loss_epoch_<n>"
// (mean training loss of epoch n), "loss" (last epoch), "examples", "warm_started",
// "initial_loss" (mean loss over the first epoch's first 10 batches, before their updates are
// felt: a warm start shows here).
absl::StatusOr<ModelData> TrainTwoTower(const TrainingData& data,
                                        const std::map<std::string, std::string>& params,
                                        const TrainOptions& options);

absl::StatusOr<std::shared_ptr<const Model>> CreateTwoTowerModel(
    std::shared_ptr<const ModelData> data);

// The most recent distinct items of `history` (oldest first) that are positive in
// AggregateHistory(history, options, num_items), newest first, at most `limit`.
std::vector<int32_t> RecentPositiveItems(absl::Span<const HistoryEntry> history,
                                         const InteractionMatrixOptions& options,
                                         uint32_t num_items, int limit);

}  // namespace recd

#endif  // RECD_CORE_TWO_TOWER_H_
