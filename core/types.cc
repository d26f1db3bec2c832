#include "core/types.h"

namespace recd {

absl::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kView: return "view";
    case EventType::kClick: return "click";
    case EventType::kAddToCart: return "add_to_cart";
    case EventType::kPurchase: return "purchase";
    case EventType::kLike: return "like";
    case EventType::kDislike: return "dislike";
    case EventType::kRating: return "rating";
    case EventType::kImpression: return "impression";
  }
  return "unknown";
}

float InteractionWeight(EventType event, bool has_value, float value, const EventWeights& w) {
  switch (event) {
    case EventType::kRating: return value * w.rating_scale;
    case EventType::kDislike: return 0.0f;
    case EventType::kImpression: return 0.0f;
    default: break;
  }
  if (has_value) return value;
  switch (event) {
    case EventType::kView: return w.view;
    case EventType::kClick: return w.click;
    case EventType::kAddToCart: return w.add_to_cart;
    case EventType::kPurchase: return w.purchase;
    case EventType::kLike: return w.like;
    default: return 0.0f;
  }
}

}  // namespace recd
