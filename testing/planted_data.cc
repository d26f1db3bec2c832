#include "testing/planted_data.h"

#include "absl/strings/str_cat.h"

namespace recd::testing {

ClusteredData MakeClusteredData(int users_per_cluster, int items_per_cluster, int per_user) {
  ClusteredData data;
  for (const char* cluster : {"a", "b"}) {
    for (int i = 0; i < items_per_cluster; ++i) {
      recd::v1::Item& item = data.items.emplace_back();
      item.set_item_id(absl::StrCat(cluster, i));
      item.add_categories(cluster[0] == 'a' ? "A" : "B");
      if (i % 2 == 0) item.add_tags("even");
    }
    uint64_t state = 12345;
    for (int u = 0; u < users_per_cluster; ++u) {
      std::vector<bool> used(items_per_cluster, false);
      for (int j = 0; j < per_user; ++j) {
        int item;
        do {
          state = state * 6364136223846793005ULL + 1442695040888963407ULL;
          // Skewed toward low indices so the cluster has popular and unpopular items.
          const double r = static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53);
          item = static_cast<int>(r * r * items_per_cluster);
        } while (used[item]);
        used[item] = true;
        recd::v1::Interaction& in = data.interactions.emplace_back();
        in.set_user_id(absl::StrCat("u", cluster, u));
        in.set_item_id(absl::StrCat(cluster, item));
        in.set_event_type(recd::v1::EVENT_CLICK);
        in.set_timestamp_ms(1'700'000'000'000 + static_cast<int64_t>(data.interactions.size()) * 1000);
      }
    }
  }
  return data;
}

}  // namespace recd::testing
