// Exposure for items without embeddings (created after the live model was trained, or without
// interactions when it was): until the next retrain they can only be found through what users
// do with them now.
//
// The tracker keeps an exponentially decayed count of recent positive interactions per item and,
// periodically (off the request path), ranks the cold items of each live model: recent count
// first, newest item first among equals. Requests read the ranked list (a pinned immutable
// snapshot) and give its best eligible entries a share of their slots.
//
// Recommend never waits for the upkeep: the ranked lists have their own lock, held only to swap
// a pointer. The counts' lock (Record, Refresh) is held for one pass over the counts that tests
// coldness in a per-version mask (not the model's rows) and decays only cold items; decayed
// counts are forgotten once a minute.
#ifndef RECD_SERVER_COLD_START_H_
#define RECD_SERVER_COLD_START_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "core/sync.h"
#include "core/types.h"
#include "server/model_registry.h"

namespace recd::server {

class ColdStartTracker {
 public:
  struct Options {
    double half_life_seconds = 3600;  // decay of recent counts
    size_t max_candidates = 256;      // cold items kept per model
  };
  explicit ColdStartTracker(Options options) : options_(options) {}

  // Counts a positive interaction with `item` at `now_ms`.
  void Record(ItemIndex item, int64_t now_ms) ABSL_LOCKS_EXCLUDED(mu_);

  // Recomputes the ranked cold items of `model` (published as `model.meta().name`).
  // `item_capacity` is 1 + the highest item index in the store (items beyond the model's rows are
  // cold too).
  void Refresh(const ServingModel& model, uint32_t item_capacity, int64_t now_ms)
      ABSL_LOCKS_EXCLUDED(mu_, ranked_mu_);

  // The ranked cold items of the live version of `model_name`, best first (may be null/empty).
  std::shared_ptr<const std::vector<ItemIndex>> Candidates(absl::string_view model_name) const
      ABSL_LOCKS_EXCLUDED(ranked_mu_);

  // Decayed recent count of `item` at `now_ms` (for tests and metrics).
  double RecentCount(ItemIndex item, int64_t now_ms) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Count {
    double value = 0.0;
    int64_t at_ms = 0;
  };
  double Decayed(const Count& c, int64_t now_ms) const;

  const Options options_;
  mutable Mutex mu_;
  absl::flat_hash_map<ItemIndex, Count> counts_ ABSL_GUARDED_BY(mu_);
  // The request path's lock: Refresh, which runs on a background thread that request handlers
  // may preempt, takes it only to swap in a list, never while it works.
  mutable Mutex ranked_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<ItemIndex>>> ranked_
      ABSL_GUARDED_BY(ranked_mu_);
  // Items with an all-zero row (no interactions at training time), per model name, computed once
  // per version; touched only by Refresh (one caller at a time).
  struct ZeroRows {
    uint64_t version = 0;
    std::vector<ItemIndex> items;  // newest first
    std::vector<bool> is_zero;     // by item index, one per row of the version
  };
  Mutex refresh_mu_;
  absl::flat_hash_map<std::string, ZeroRows> zero_rows_ ABSL_GUARDED_BY(refresh_mu_);
  int64_t next_prune_ms_ ABSL_GUARDED_BY(refresh_mu_) = 0;
};

}  // namespace recd::server

#endif  // RECD_SERVER_COLD_START_H_
