#include "core/test_data.h"

#include "core/random.h"

namespace recd::synthetic {

TrainingData GroupedInteractions(uint64_t seed, uint32_t users, uint32_t items, int groups, int n,
                                 double in_group, EventMix mix) {
  PortableRng rng(seed);
  TrainingData d;
  d.num_users = users;
  d.num_items = items;
  const uint32_t per_group = items / groups;
  for (int k = 0; k < n; ++k) {
    Interaction x;
    x.user = static_cast<UserIndex>(rng.UniformInt(users));
    const uint32_t group = rng.Bernoulli(in_group) ? x.user % groups : rng.UniformInt(groups);
    x.item = static_cast<ItemIndex>(group * per_group + rng.UniformInt(per_group));
    switch (mix) {
      case EventMix::kViewsAndClicks:
        x.event = rng.Bernoulli(0.8) ? EventType::kView : EventType::kClick;
        break;
      case EventMix::kImplicit: {
        const double r = rng.Uniform();
        x.event = r < 0.7 ? EventType::kView : r < 0.9 ? EventType::kClick : EventType::kPurchase;
        break;
      }
      case EventMix::kEveryKind: {
        const double r = rng.Uniform();
        x.event = r < 0.6    ? EventType::kView
                  : r < 0.75 ? EventType::kClick
                  : r < 0.8  ? EventType::kPurchase
                  : r < 0.9  ? EventType::kRating
                  : r < 0.95 ? EventType::kImpression
                             : EventType::kDislike;
        if (x.event == EventType::kRating) {
          x.has_value = true;
          x.value = static_cast<float>(1 + rng.UniformInt(5));
        }
        break;
      }
    }
    x.timestamp_ms = k * 1000;
    d.interactions.push_back(x);
  }
  d.last_sequence = n;
  return d;
}

std::vector<HistoryEntry> HistoryOf(const TrainingData& d, UserIndex user) {
  std::vector<HistoryEntry> h;
  for (size_t k = 0; k < d.interactions.size(); ++k) {
    const Interaction& x = d.interactions[k];
    if (x.user == user) h.push_back({x.item, x.timestamp_ms, k + 1, x.value, x.event, x.has_value});
  }
  return h;
}

}  // namespace recd::synthetic
