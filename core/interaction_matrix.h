// The user x item interaction matrix: how the event log becomes one weight per (user, item).
//
// Every matrix-based algorithm (PureSVD, popularity, ALS, biased MF) trains on this aggregation,
// and the same per-pair rules fold a live history into a user vector, so a user's training row
// and the row rebuilt from their history agree exactly.
//
// Per-pair rules, applied to the pair's events in log order (HistoryEntry order = log order):
//   * implicit events (view, click, add_to_cart, purchase, like) add InteractionWeight(): the
//     event type's weight from EventWeights, or the explicit value when has_value;
//   * a rating replaces any earlier rating: the latest rating r counts r * rating_scale, added to
//     the implicit sum (a rating without a value is ignored);
//   * a dislike removes the pair: everything before it is forgotten, later events start afresh;
//   * impressions are ignored, as are events whose weight is not finite;
//   * raw = implicit sum + latest rating; pairs with raw <= 0 are dropped (absent);
//   * the weighting transform maps raw to the stored weight (see InteractionWeighting);
//   * optional recency decay multiplies by 0.5^(age / half_life), where age is measured from the
//     newest timestamp among the pair's counted events to reference_time_ms (never negative).
// "Latest" always means last in log order, not largest timestamp: the log is the source of truth
// and a client's clock may be skewed.
#ifndef RECD_CORE_INTERACTION_MATRIX_H_
#define RECD_CORE_INTERACTION_MATRIX_H_

#include <cstdint>
#include <vector>

#include "Eigen/SparseCore"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/model.h"
#include "core/types.h"

namespace recd {

// num_users x num_items, row-major (CSR): row u lists user u's items in ascending index order
// with their final weights (all > 0 and finite). Users or items without pairs have empty
// rows/columns.
using InteractionMatrix = Eigen::SparseMatrix<float, Eigen::RowMajor, int32_t>;

enum class InteractionWeighting {
  kRaw,     // w = raw
  kBinary,  // w = 1
  kLog,     // w = 1 + log_alpha * log(1 + raw / log_epsilon) (Hu, Koren & Volinsky 2008)
};

// "raw", "binary", "log".
absl::string_view InteractionWeightingName(InteractionWeighting weighting);
// Inverse of InteractionWeightingName; InvalidArgument listing the names otherwise.
absl::StatusOr<InteractionWeighting> ParseInteractionWeighting(absl::string_view name);

struct InteractionMatrixOptions {
  EventWeights event_weights;
  InteractionWeighting weighting = InteractionWeighting::kRaw;
  // kLog parameters: log_alpha > 0, log_epsilon > 0.
  float log_alpha = 1.0f;
  float log_epsilon = 1.0f;
  // Recency decay; 0 = off. In days (86,400,000 ms), >= 0.
  double half_life_days = 0.0;
  int64_t reference_time_ms = 0;  // Unix ms that has age 0 (e.g. the newest event in the data)
};

// OK, or InvalidArgument naming the first bad field.
absl::Status ValidateInteractionMatrixOptions(const InteractionMatrixOptions& options);

// One (item, weight) entry of a user's aggregated row.
struct WeightedItem {
  ItemIndex item = kNoIndex;
  float weight = 0.0f;
  friend bool operator==(const WeightedItem&, const WeightedItem&) = default;
};

// Aggregates one user's history (oldest first) into their row: ascending item order, weights
// bit-identical to that user's row of BuildInteractionMatrix over the same events and options.
// Entries with item >= num_items are ignored (pass kNoIndex for "no limit").
std::vector<WeightedItem> AggregateHistory(absl::Span<const HistoryEntry> history,
                                           const InteractionMatrixOptions& options,
                                           uint32_t num_items = kNoIndex);

// How much each history entry contributes to its item's final weight: result[j] for
// history[j]. Within one item the contributions are proportional to the events' raw shares
// (implicit weight, or the latest rating) and sum to the item's AggregateHistory weight up to
// float rounding; entries that do not count (impressions, ratings superseded by a later one,
// anything before a dislike, dropped pairs, item >= num_items) get 0. For explanations.
std::vector<float> HistoryContributions(absl::Span<const HistoryEntry> history,
                                        const InteractionMatrixOptions& options,
                                        uint32_t num_items = kNoIndex);

// Builds the matrix of `data` (data.num_users x data.num_items). Deterministic; O(interactions)
// plus a sort of each user's distinct items. InvalidArgument for bad options or an interaction
// whose user/item index is out of range (naming its position in data.interactions).
absl::StatusOr<InteractionMatrix> BuildInteractionMatrix(const TrainingData& data,
                                                         const InteractionMatrixOptions& options);

// Each user's items (the column indices of row u), ascending; result.size() == matrix.rows().
// For evaluation: the set of items a user has interacted with.
std::vector<std::vector<ItemIndex>> UserItemLists(const InteractionMatrix& matrix);

// Sum of each item's column (result.size() == matrix.cols()), accumulated in double in row order.
std::vector<double> ItemWeightSums(const InteractionMatrix& matrix);

// Largest timestamp_ms among data.interactions (0 when there are none).
int64_t NewestTimestampMs(const TrainingData& data);

// A per-user leave-last-out split for offline evaluation.
struct LeaveLastOutSplit {
  TrainingData train;  // `data` minus every interaction of each held-out (user, item) pair
  // holdout[u] = the item held out for user u, or kNoIndex (size data.num_users).
  std::vector<ItemIndex> holdout;
  uint32_t num_held_out = 0;
};

// For every user with at least `min_items` distinct items in BuildInteractionMatrix(data, options)
// (values < 2 count as 2), holds out the item of the user's last positive event in log order
// that survives aggregation, and removes all of that pair's interactions from the training part.
// Preconditions as BuildInteractionMatrix.
absl::StatusOr<LeaveLastOutSplit> SplitLeaveLastOut(const TrainingData& data,
                                                    const InteractionMatrixOptions& options,
                                                    int min_items = 2);

}  // namespace recd

#endif  // RECD_CORE_INTERACTION_MATRIX_H_
