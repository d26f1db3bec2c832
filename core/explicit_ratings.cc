#include "core/explicit_ratings.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace recd {
namespace {

bool IsRating(EventType event, bool has_value, float value) {
  return event == EventType::kRating && has_value && std::isfinite(value);
}

// Sorts `list` by index keeping log order within an index, then keeps the last of each index.
void KeepLatest(std::vector<RatedIndex>& list) {
  std::stable_sort(list.begin(), list.end(),
                   [](const RatedIndex& a, const RatedIndex& b) { return a.index < b.index; });
  size_t out = 0;
  for (size_t k = 0; k < list.size(); ++k) {
    if (k + 1 < list.size() && list[k + 1].index == list[k].index) continue;
    list[out++] = list[k];
  }
  list.resize(out);
}

}  // namespace

ExplicitRatings CollectExplicitRatings(const TrainingData& data) {
  ExplicitRatings r;
  r.by_user.resize(data.num_users);
  r.by_item.resize(data.num_items);
  for (const Interaction& x : data.interactions) {
    if (!IsRating(x.event, x.has_value, x.value)) continue;
    r.by_user[x.user].push_back({x.item, x.value});
  }
  r.min = std::numeric_limits<float>::infinity();
  r.max = -std::numeric_limits<float>::infinity();
  for (uint32_t u = 0; u < data.num_users; ++u) {
    KeepLatest(r.by_user[u]);
    for (const RatedIndex& e : r.by_user[u]) {
      r.by_item[e.index].push_back({u, e.rating});
      ++r.count;
      r.sum += e.rating;
      r.min = std::min(r.min, e.rating);
      r.max = std::max(r.max, e.rating);
    }
  }
  if (r.count == 0) r.min = r.max = 0.0f;
  return r;
}

std::vector<RatedIndex> HistoryRatings(absl::Span<const HistoryEntry> history, uint32_t num_items) {
  std::vector<RatedIndex> list;
  for (const HistoryEntry& e : history) {
    if (e.item >= num_items || !IsRating(e.event, e.has_value, e.value)) continue;
    list.push_back({e.item, e.value});
  }
  KeepLatest(list);
  return list;
}

}  // namespace recd
