// Popularity (algorithm "popularity"): every user gets the same ranking, by how much the
// catalogue's items were engaged with. The fallback for unknown users and the baseline every
// personalised model must beat.
//
// Model layout:
//   item_factors  num_items x 1: the item's popularity score (>= 0; 0 without interactions)
//   user_factors  0 x 1: no per-user state
// FoldInUser returns the 1-vector [1] for any history (even an empty one), so the ordinary
// dot-product scorer ranks by popularity and "score" is the popularity itself.
//
// Score of item i = sum over users u of w_ui, the InteractionMatrix weight of the pair (see
// interaction_matrix.h) under the chosen weighting, times the recency decay 0.5^(age / half_life)
// where age runs from the pair's newest counted event to the newest timestamp in the training
// data (core has no clock, so "now" is the data's own latest event).
//
// Parameters (defaults in brackets):
//   weighting [binary]    "binary" | "log" | "raw". Binary counts distinct users: one bot or
//                         one obsessive user cannot push an item up by repeating events.
//   half_life_days [0]    0..36500; 0 = no decay.
#ifndef RECD_CORE_POPULARITY_H_
#define RECD_CORE_POPULARITY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/train_params.h"

namespace recd {

inline constexpr char kPopularityAlgorithm[] = "popularity";

std::vector<ParamSpec> PopularityParamSpecs();

// Trains popularity. FailedPrecondition when data.num_items is 0 (there is nothing to rank);
// InvalidArgument for bad params or data. Fills item/user factors, meta.params and meta.metrics
// ("active_users", "active_items"), not the generic metadata (TrainModel does that).
absl::StatusOr<ModelData> TrainPopularity(const TrainingData& data,
                                          const std::map<std::string, std::string>& params,
                                          const TrainOptions& options);

// The serving object. Assumes CreateModel's generic checks passed; requires 1 column.
absl::StatusOr<std::shared_ptr<const Model>> CreatePopularityModel(
    std::shared_ptr<const ModelData> data);

}  // namespace recd

#endif  // RECD_CORE_POPULARITY_H_
