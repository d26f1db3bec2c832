// Vocabulary types shared by every layer: dense indices, events and interactions.
#ifndef RECD_CORE_TYPES_H_
#define RECD_CORE_TYPES_H_

#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/string_view.h"

namespace recd {

// Dense internal indices. Client-chosen string ids are mapped to these by the store; indices are
// never reused (a deleted user's index stays a hole), so they are stable for the life of a store.
using UserIndex = uint32_t;
using ItemIndex = uint32_t;
inline constexpr uint32_t kNoIndex = std::numeric_limits<uint32_t>::max();

// Event kinds. Values match recd.v1.EventType in the public API.
enum class EventType : uint8_t {
  kView = 1,
  kClick = 2,
  kAddToCart = 3,
  kPurchase = 4,
  kLike = 5,
  kDislike = 6,
  kRating = 7,
  kImpression = 8,
};
inline constexpr int kMaxEventType = 8;

// Returns true for a value that names a known EventType.
inline bool IsValidEventType(int v) { return v >= 1 && v <= kMaxEventType; }
// Lower-case name, e.g. "view", "rating".
absl::string_view EventTypeName(EventType type);

// One logged interaction in internal indices. 24 bytes; the training pipeline holds millions.
struct Interaction {
  UserIndex user = kNoIndex;
  ItemIndex item = kNoIndex;
  int64_t timestamp_ms = 0;  // Unix ms
  float value = 0.0f;        // rating for kRating, weight override for others when has_value
  EventType event = EventType::kView;
  bool has_value = false;    // false: implicit event with its type's default weight
};

// An interaction as a client states it: external string ids. Produced by the API layer, file
// importers and the demo data generator; the store maps the ids to indices.
struct ExternalInteraction {
  std::string user_id;
  std::string item_id;
  EventType event = EventType::kView;
  bool has_value = false;
  float value = 0.0f;
  int64_t timestamp_ms = 0;  // Unix ms
};

// One entry of a user's history (the per-user view of the log), oldest first in containers.
struct HistoryEntry {
  ItemIndex item = kNoIndex;
  int64_t timestamp_ms = 0;
  uint64_t sequence = 0;     // position in the global interaction log (arrival order)
  float value = 0.0f;
  EventType event = EventType::kView;
  bool has_value = false;
};

// Default implicit-feedback weights per event type; an explicit `value` overrides them.
struct EventWeights {
  float view = 1.0f;
  float click = 2.0f;
  float add_to_cart = 4.0f;
  float purchase = 8.0f;
  float like = 4.0f;
  float dislike = 0.0f;
  float impression = 0.0f;
  // Weight of an explicit rating r for implicit models: r * rating_scale (ratings are positive
  // evidence of consumption; their size says how much the user liked the item).
  float rating_scale = 1.0f;
};

// The positive-feedback weight of one event under `weights` (0 = not a positive signal).
float InteractionWeight(EventType event, bool has_value, float value, const EventWeights& weights);

}  // namespace recd

#endif  // RECD_CORE_TYPES_H_
