// Synthetic interaction logs shared by the model tests (test-only; not part of recd_core).
#ifndef RECD_CORE_TEST_DATA_H_
#define RECD_CORE_TEST_DATA_H_

#include <cstdint>
#include <vector>

#include "core/model.h"
#include "core/types.h"

namespace recd::synthetic {

// The event kinds a synthetic log carries.
enum class EventMix {
  kViewsAndClicks,  // 80 % views, 20 % clicks
  kImplicit,        // 70 % views, 20 % clicks, 10 % purchases
  kEveryKind,       // views, clicks, purchases, ratings 1..5, impressions and dislikes
};

// `n` interactions in log order (timestamps 0, 1 s, 2 s, ...): users and items fall into `groups`
// blocks (user u in block u % groups, items in contiguous blocks), and each interaction is with an
// item of the user's own block with probability `in_group`, else of a uniformly drawn block.
// Deterministic in `seed`.
TrainingData GroupedInteractions(uint64_t seed, uint32_t users, uint32_t items, int groups, int n,
                                 double in_group, EventMix mix);

// The user's entries of `d` in log order, as the store's history would hold them.
std::vector<HistoryEntry> HistoryOf(const TrainingData& d, UserIndex user);

}  // namespace recd::synthetic

#endif  // RECD_CORE_TEST_DATA_H_
