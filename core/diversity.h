// Diversity re-ranking of a candidate list: maximal marginal relevance (Carbonell & Goldstein,
// 1998) over item embeddings, and/or a cap on items per category.
//
// Greedy MMR picks, at each step, the candidate maximising
//   (1 - lambda) * rel(i) - lambda * max_{j already picked} cos(i, j)
// where rel(i) is the candidate's score rescaled to [0, 1] over the candidate list (so lambda
// means the same whatever the model's score scale). lambda = 0 keeps the original order.
// The category cap skips candidates whose categories already reached the cap.
//
// Deterministic (ties go to the earlier candidate), and prefix-consistent: the first n picks do
// not depend on how many picks are asked for, so pages cut from one ordering never overlap.
#ifndef RECD_CORE_DIVERSITY_H_
#define RECD_CORE_DIVERSITY_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/types/span.h"
#include "core/embedding.h"
#include "core/scorer.h"

namespace recd {

struct DiversityParams {
  float mmr_lambda = 0.0f;    // [0, 1]
  int max_per_category = 0;   // 0 = no cap
};

// Returns up to `want` positions into `candidates` (best first by score), in diversified order.
// `normalized` holds L2-normalised item embeddings (rows by item index; items beyond its rows or
// with zero rows count as dissimilar to everything). `categories(item)` gives the item's category
// ids (only used when max_per_category > 0).
std::vector<size_t> DiversifiedOrder(
    absl::Span<const ScoredIndex> candidates, const EmbeddingMatrix& normalized, const DiversityParams& params,
    const std::function<absl::Span<const uint32_t>(ItemIndex)>& categories, size_t want);

}  // namespace recd

#endif  // RECD_CORE_DIVERSITY_H_
