// Offline evaluation protocols: reproducible train/test splits and the top-K evaluation loop.
// Pure computation over TrainingData and trained Models; reading files is the caller's job
// (eval/receval does it for MovieLens).
//
// Protocols:
//   * Stratified random split (Microsoft Recommenders' python_stratified_split): the
//     interactions of each user (or each item) are shuffled and the first round(ratio * n) go to
//     training. Reproduces Recommenders' split exactly, interaction for interaction, when the
//     interactions are in the order their loader reads u.data (file order): their
//     DataFrame.sample(frac=1, random_state=seed) draws numpy.random.RandomState(seed)
//     .permutation(n) afresh for every group, and np.split cuts at Python's round(), which
//     rounds halves to even.
//   * Leave-last-out by time: each user's last interaction by timestamp is held out
//     (SortByTimestamp, then SplitLeaveLastOut from interaction_matrix.h).
//   * Ranking: every user with relevant test items and a user vector gets the model's top k over
//     the whole catalogue, minus the items of the user's training interactions; see
//     eval_metrics.h for the metrics.
#ifndef RECD_CORE_EVAL_PROTOCOL_H_
#define RECD_CORE_EVAL_PROTOCOL_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval_metrics.h"
#include "core/model.h"
#include "core/types.h"

namespace recd {

// numpy.random.RandomState(seed).permutation(n), bit for bit: Fisher-Yates from the back with
// numpy's legacy masked-rejection bounded integers on MT19937 (std::mt19937 uses the same
// init_genrand seeding). n < 2^32.
std::vector<uint32_t> NumpyLegacyPermutation(uint32_t n, uint32_t seed);

struct StratifiedSplitOptions {
  double ratio = 0.75;  // share of each group that goes to training, in (0, 1)
  enum class By { kUser, kItem };
  By by = By::kUser;    // Recommenders' filter_by="user" (their default) or "item"
  uint32_t seed = 42;
};

struct TrainTestSplit {
  TrainingData train;  // same num_users / num_items / item_features as the input
  TrainingData test;
};

// Splits `data` as described above; within each part the interactions keep their input order.
// InvalidArgument for a ratio outside (0, 1) or indices outside the data's ranges.
absl::StatusOr<TrainTestSplit> StratifiedSplit(const TrainingData& data,
                                               const StratifiedSplitOptions& options);

// `data` with its interactions stably sorted by timestamp (ties keep their input order), so that
// log order is time order.
TrainingData SortByTimestamp(TrainingData data);

// For each user, the sorted distinct items of their interactions in `data` (size num_users).
std::vector<std::vector<ItemIndex>> ItemsByUser(const TrainingData& data);

// For each user, their interactions in `data` as a history, oldest first (input order), with
// sequence = position in data.interactions + 1.
std::vector<std::vector<HistoryEntry>> HistoriesByUser(const TrainingData& data);

struct RankingEvalOptions {
  int k = 10;
  int num_threads = 1;
  // Called with the fraction of users done, from the worker threads (must be thread-safe);
  // may be null.
  std::function<void(double)> progress;
};

struct RankingEvalResult {
  UserRankingMetrics mean;       // means over the evaluated users
  int64_t num_users = 0;         // users evaluated
  int64_t users_without_vector = 0;  // users with relevant items but no user vector (skipped)
};

// Ranks for each user u with non-empty relevant[u]: the user vector is the trained row when the
// model has one, else FoldInKnownUser(u, history[u]); the top k exclude exclude[u] (sorted).
// Exact dot-product scan; ties go to the lower item index. Deterministic for any thread count.
// relevant, exclude and history are indexed by user (shorter vectors mean "nothing").
absl::StatusOr<RankingEvalResult> EvaluateRanking(
    const Model& model, const std::vector<std::vector<ItemIndex>>& relevant,
    const std::vector<std::vector<ItemIndex>>& exclude,
    const std::vector<std::vector<HistoryEntry>>& history, const RankingEvalOptions& options);

}  // namespace recd

#endif  // RECD_CORE_EVAL_PROTOCOL_H_
