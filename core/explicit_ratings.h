// The explicit ratings of a training snapshot or a history: one rating per (user, item) pair,
// the latest in log order (as in interaction_matrix.h), from EventType::kRating events that
// carry a finite value. Other events are ignored. Shared by the explicit-rating models.
#ifndef RECD_CORE_EXPLICIT_RATINGS_H_
#define RECD_CORE_EXPLICIT_RATINGS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "core/model.h"
#include "core/types.h"

namespace recd {

// One rating in a per-user (index = item) or per-item (index = user) list.
struct RatedIndex {
  uint32_t index = 0;
  float rating = 0.0f;
};

struct ExplicitRatings {
  std::vector<std::vector<RatedIndex>> by_user;  // size num_users, each ascending by item
  std::vector<std::vector<RatedIndex>> by_item;  // size num_items, each ascending by user
  int64_t count = 0;
  double sum = 0.0;  // of all ratings, in double
  float min = 0.0f, max = 0.0f;
};

// Collects the ratings of `data`; indices must be in range (TrainModel checks this).
ExplicitRatings CollectExplicitRatings(const TrainingData& data);

// The ratings of one history (oldest first), ascending by item; items >= num_items are dropped.
// For a user's full training history this equals CollectExplicitRatings(...).by_user[u].
std::vector<RatedIndex> HistoryRatings(absl::Span<const HistoryEntry> history, uint32_t num_items);

}  // namespace recd

#endif  // RECD_CORE_EXPLICIT_RATINGS_H_
