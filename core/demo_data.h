// A built-in synthetic data set with planted taste structure, loaded when a server starts with
// an empty store so that every API call has something meaningful to return.
//
// The generative story (all draws from PortableRng(seed) using only uniform draws and exact
// arithmetic, so the output is identical on every platform and compiler):
//   * num_genres latent genres. Each item has a primary genre (its category "genre-07"), with
//     probability 0.3 a secondary genre, 1-3 tags drawn from its genre's tag pool (neighbouring
//     genres share tags), a generated title, and a popularity weight following a power law
//     1 / (rank + 5)^0.75 over a random ranking of the catalogue.
//   * Each user has a taste mixture: 1-3 favourite genres holding 85% of the mass, the rest
//     spread evenly; and an activity level 1 / (0.02 + 0.98 u), u uniform (heavy-tailed, 1..50).
//   * An engagement picks a user by activity; with probability 0.1 an item by global popularity,
//     otherwise a genre from the user's taste and an item of that genre by popularity (secondary
//     members at half weight). It emits: 6% an explicit rating (3-5 for taste picks, 1-4 for
//     global picks); otherwise a view, then a click (25%), add_to_cart (30% of clicks) and
//     purchase (50% of carts), a like (3% of views); 10% of the global picks that are not
//     ratings end in a dislike after the view.
//   * Engagement times are uniform over the span_days before end_time_ms; follow-up events come
//     1-120 s after the previous one (never after end_time_ms). Generation stops at exactly
//     num_interactions events, which are returned sorted by time (log order = time order).
// Ids: "u0001".., "i0001".. (1-based, zero-padded to at least 4 digits, to the width of the
// count beyond that).
#ifndef RECD_CORE_DEMO_DATA_H_
#define RECD_CORE_DEMO_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/types.h"

namespace recd {

// 2024-06-01T00:00:00Z. Tests and offline tools use it; a server passes its own "now".
inline constexpr int64_t kDemoDefaultEndTimeMs = 1'717'200'000'000;

struct DemoDataOptions {
  int num_users = 1000;          // 1..10,000,000
  int num_items = 2000;          // 1..10,000,000
  int num_interactions = 50000;  // 0..100,000,000
  int num_genres = 20;           // 1..1000
  uint64_t seed = 2024;
  int64_t end_time_ms = kDemoDefaultEndTimeMs;  // newest possible timestamp, Unix ms (> 0)
  int span_days = 90;                           // 1..3650
};

struct DemoItem {
  std::string id;
  std::vector<std::string> categories;  // {"genre-07"}: the primary genre
  std::vector<std::string> tags;        // 1-3 distinct tags
  std::string title;
  // Planted truth, for tests and evaluation only.
  int genre = 0;            // primary genre, 0-based
  int secondary_genre = -1; // -1 when none
  double popularity = 0.0;  // unnormalised power-law weight
};

struct DemoUser {
  std::string id;
  // Planted truth: the user's genre distribution (num_genres entries, sum 1) and activity.
  std::vector<float> taste;
  double activity = 0.0;
};

struct DemoDataset {
  std::vector<ExternalInteraction> interactions;  // sorted by timestamp_ms (stable)
  std::vector<DemoItem> items;                    // items[i].id == "i" + (i + 1), padded
  std::vector<DemoUser> users;                    // users[u].id == "u" + (u + 1), padded
};

// Generates the data set. Deterministic for given options. InvalidArgument when an option is
// outside its range (naming it). The defaults take about 40 ms; 1M interactions about 1.5 s.
absl::StatusOr<DemoDataset> GenerateDemoData(const DemoDataOptions& options = {});

// The data set as training input for offline tools and tests (the server assigns its own
// indices as ids arrive): users and items get indices in order of first appearance in the log,
// interactions keep log order, and each indexed item carries its categories and tags as
// features. With include_unseen_items, items that never appear in the log follow, in catalogue
// order (models give them zero rows).
TrainingData DemoTrainingData(const DemoDataset& data, bool include_unseen_items = false);

}  // namespace recd

#endif  // RECD_CORE_DEMO_DATA_H_
