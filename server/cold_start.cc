#include "server/cold_start.h"

#include <algorithm>
#include <cmath>

namespace recd::server {

double ColdStartTracker::Decayed(const Count& c, int64_t now_ms) const {
  const double age_s = std::max<int64_t>(0, now_ms - c.at_ms) / 1000.0;
  return c.value * std::exp2(-age_s / options_.half_life_seconds);
}

void ColdStartTracker::Record(ItemIndex item, int64_t now_ms) {
  MutexLock lock(&mu_);
  Count& c = counts_[item];
  c.value = Decayed(c, now_ms) + 1.0;
  c.at_ms = std::max(c.at_ms, now_ms);
}

double ColdStartTracker::RecentCount(ItemIndex item, int64_t now_ms) const {
  ReaderMutexLock lock(&mu_);
  auto it = counts_.find(item);
  return it == counts_.end() ? 0.0 : Decayed(it->second, now_ms);
}

void ColdStartTracker::Refresh(const ServingModel& model, uint32_t item_capacity, int64_t now_ms) {
  MutexLock refresh_lock(&refresh_mu_);
  const EmbeddingMatrix& factors = model.model->item_factors();
  const uint32_t rows = static_cast<uint32_t>(factors.rows());
  ZeroRows& zero = zero_rows_[model.meta().name];
  if (zero.version != model.meta().version) {
    // Once per version, outside mu_: a pass over every row of the model.
    zero.version = model.meta().version;
    zero.items.clear();
    zero.is_zero.assign(rows, false);
    for (uint32_t item = rows; item > 0;) {
      --item;
      if (factors.row(item).squaredNorm() == 0.0f) {
        zero.items.push_back(item);
        zero.is_zero[item] = true;
      }
    }
  }
  auto is_cold = [&](ItemIndex item) { return item >= rows || zero.is_zero[item]; };
  const bool prune = now_ms >= next_prune_ms_;
  if (prune) next_prune_ms_ = now_ms + 60 * 1000;
  // Cold items with a recent count, merged with the newest items nobody touched yet (count 0):
  // brand-new items deserve a chance too.
  absl::flat_hash_map<ItemIndex, double> cold;
  {
    MutexLock lock(&mu_);
    for (auto it = counts_.begin(); it != counts_.end();) {
      const bool item_cold = is_cold(it->first);
      if (!item_cold && !prune) {
        ++it;
        continue;
      }
      const double v = Decayed(it->second, now_ms);
      // Forget counts that decayed to nothing, so the map stays the size of recent activity.
      if (v < 1e-3) {
        counts_.erase(it++);
        continue;
      }
      if (item_cold) cold[it->first] = v;
      ++it;
    }
  }
  for (uint32_t item = item_capacity; item > rows && cold.size() < 4 * options_.max_candidates;) {
    --item;
    cold.try_emplace(item, 0.0);
  }
  for (size_t i = 0; i < zero.items.size() && cold.size() < 4 * options_.max_candidates; ++i) {
    cold.try_emplace(zero.items[i], 0.0);
  }
  std::vector<std::pair<double, ItemIndex>> ranked;
  ranked.reserve(cold.size());
  for (const auto& [item, count] : cold) ranked.emplace_back(count, item);
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second > b.second);
  });
  if (ranked.size() > options_.max_candidates) ranked.resize(options_.max_candidates);
  std::shared_ptr<const std::vector<ItemIndex>> list = [&] {
    auto l = std::make_shared<std::vector<ItemIndex>>();
    l->reserve(ranked.size());
    for (const auto& r : ranked) l->push_back(r.second);
    return l;
  }();
  {
    MutexLock lock(&ranked_mu_);
    list.swap(ranked_[model.meta().name]);
  }
  // `list` now holds the previous ranking, released here outside the lock.
}

std::shared_ptr<const std::vector<ItemIndex>> ColdStartTracker::Candidates(absl::string_view model_name) const {
  ReaderMutexLock lock(&ranked_mu_);
  auto it = ranked_.find(model_name);
  return it == ranked_.end() ? nullptr : it->second;
}

}  // namespace recd::server
