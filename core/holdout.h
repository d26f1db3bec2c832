// A recent-interaction holdout for validating a candidate model against the live one before it
// is published (the trainer's gate).
//
// The holdout is each recently active user's latest positive interaction, taken only from
// interactions newer than the live version (so neither the live model nor the candidate trained
// on it). The candidate is trained without the holdout; both models are then scored the same way:
// the user vector is folded in from the user's remaining history, the user's remaining items are
// excluded, and a hit is the held-out item in the top k.
#ifndef RECD_CORE_HOLDOUT_H_
#define RECD_CORE_HOLDOUT_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "core/model.h"
#include "core/types.h"

namespace recd {

struct HoldoutOptions {
  // Only interactions with a log sequence above this are eligible (the live version's
  // trained_through_sequence; 0 = all).
  uint64_t after_sequence = 0;
  // At most this many users, the most recently active first.
  size_t max_users = 2000;
  // A user needs at least this many positive interactions left after the holdout, so there is a
  // history to fold in.
  size_t min_history = 1;
  EventWeights weights;
};

struct HoldoutEntry {
  UserIndex user = kNoIndex;
  ItemIndex item = kNoIndex;
  uint64_t sequence = 0;
};

struct HoldoutSplit {
  // `data` without every interaction of a held-out (user, item) pair; sequences kept aligned.
  TrainingData train;
  std::vector<HoldoutEntry> holdout;  // ordered by user index
};

// Splits `data`. When data.sequences is empty, position + 1 stands for the sequence.
HoldoutSplit SplitHoldout(const TrainingData& data, const HoldoutOptions& options);

struct HoldoutMetrics {
  size_t users = 0;         // holdout entries scored
  double hit_rate = 0.0;    // HR@k
  double ndcg = 0.0;        // NDCG@k with one relevant item
};

// Scores `model` on `holdout` with histories from `train` (see the file comment). Held-out items
// outside the model's item rows count as misses.
HoldoutMetrics EvaluateHoldout(const Model& model, const TrainingData& train,
                               absl::Span<const HoldoutEntry> holdout, int k);

}  // namespace recd

#endif  // RECD_CORE_HOLDOUT_H_
