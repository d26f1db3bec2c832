#include "core/diversity.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"

namespace recd {

std::vector<size_t> DiversifiedOrder(
    absl::Span<const ScoredIndex> candidates, const EmbeddingMatrix& normalized, const DiversityParams& params,
    const std::function<absl::Span<const uint32_t>(ItemIndex)>& categories, size_t want) {
  const size_t n = candidates.size();
  std::vector<size_t> order;
  if (n == 0 || want == 0) return order;
  order.reserve(std::min(want, n));

  float best = candidates[0].score, worst = candidates[0].score;
  for (const ScoredIndex& c : candidates) {
    best = std::max(best, c.score);
    worst = std::min(worst, c.score);
  }
  const float span = best - worst;
  auto relevance = [&](size_t i) { return span > 0 ? (candidates[i].score - worst) / span : 1.0f; };

  const bool use_mmr = params.mmr_lambda > 0.0f;
  const Eigen::Index rows = normalized.rows();
  auto has_vector = [&](ItemIndex item) { return static_cast<Eigen::Index>(item) < rows; };
  // max_sim[i]: largest cosine between candidate i and anything picked so far.
  std::vector<float> max_sim(n, use_mmr ? -1.0f : 0.0f);
  // Picked, or capped: a candidate whose category reached the cap stays capped (counts only
  // grow), so it is dropped for good rather than re-tested at every pick, which cost
  // O(want x n) category lookups (1 ms of a k=100 request, bench/controls_bench).
  std::vector<bool> taken(n, false);
  size_t first = 0;  // every candidate before it is taken
  absl::flat_hash_map<uint32_t, int> per_category;

  auto capped = [&](size_t i) {
    if (params.max_per_category <= 0) return false;
    for (uint32_t c : categories(candidates[i].item)) {
      auto it = per_category.find(c);
      if (it != per_category.end() && it->second >= params.max_per_category) return true;
    }
    return false;
  };

  while (order.size() < want) {
    while (first < n && taken[first]) ++first;
    size_t pick = n;
    float pick_value = -std::numeric_limits<float>::infinity();
    for (size_t i = first; i < n; ++i) {
      if (taken[i]) continue;
      if (capped(i)) {
        taken[i] = true;
        continue;
      }
      // Before anything is picked there is nothing to be similar to.
      const float sim = order.empty() ? 0.0f : std::max(0.0f, max_sim[i]);
      const float value = use_mmr ? (1.0f - params.mmr_lambda) * relevance(i) - params.mmr_lambda * sim
                                  : -static_cast<float>(i);  // original order
      if (value > pick_value) {
        pick_value = value;
        pick = i;
      }
      if (!use_mmr) break;  // the first eligible candidate is the pick
    }
    if (pick == n) break;  // everything left is capped
    taken[pick] = true;
    order.push_back(pick);
    if (params.max_per_category > 0) {
      for (uint32_t c : categories(candidates[pick].item)) ++per_category[c];
    }
    if (use_mmr && has_vector(candidates[pick].item)) {
      const auto picked = normalized.row(candidates[pick].item);
      for (size_t i = 0; i < n; ++i) {
        if (taken[i] || !has_vector(candidates[i].item)) continue;
        max_sim[i] = std::max(max_sim[i], normalized.row(candidates[i].item).dot(picked));
      }
    }
  }
  return order;
}

}  // namespace recd
