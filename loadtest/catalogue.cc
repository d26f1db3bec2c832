#include "loadtest/catalogue.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace recd::loadtest {
namespace {

uint64_t Categories(const CatalogueSpec& spec) {
  return static_cast<uint64_t>(std::max(1, spec.num_categories));
}

}  // namespace

std::string UserId(const CatalogueSpec& spec, uint64_t user) { return absl::StrCat(spec.user_prefix, user); }
std::string ItemId(const CatalogueSpec& spec, uint64_t item) { return absl::StrCat(spec.item_prefix, item); }

std::vector<recd::v1::Item> MakeItems(const CatalogueSpec& spec, uint64_t first, uint64_t count) {
  std::vector<recd::v1::Item> items;
  const uint64_t c = Categories(spec);
  const uint64_t end = std::min(spec.num_items, first + count);
  for (uint64_t n = first; n < end; ++n) {
    recd::v1::Item& item = items.emplace_back();
    item.set_item_id(ItemId(spec, n));
    item.add_categories(absl::StrCat("c", n % c));
    if (n % 3 == 0 && (n / c) % c != n % c) item.add_categories(absl::StrCat("c", (n / c) % c));
    item.add_tags(absl::StrCat("t", n % 17));
    item.set_title(absl::StrCat("Synthetic item ", n));
  }
  return items;
}

InteractionGenerator::InteractionGenerator(const CatalogueSpec& spec)
    : spec_(spec),
      mean_(std::max<uint64_t>(1, spec.num_interactions / std::max<uint64_t>(1, spec.num_users))),
      rng_(StreamSeed(spec.seed, 1)),
      global_items_(std::max<uint64_t>(1, spec.num_items), spec.item_zipf, true, StreamSeed(spec.seed, 2)),
      within_category_(std::max<uint64_t>(1, spec.num_items / Categories(spec)), spec.item_zipf, true,
                       StreamSeed(spec.seed, 3)) {}

uint64_t InteractionGenerator::expected_total() const { return spec_.num_users * (2 * mean_ - 1); }

uint64_t InteractionGenerator::PickItem(uint64_t user) {
  const uint64_t c = Categories(spec_);
  const uint64_t category = user % c;
  if (spec_.num_items >= c && rng_.Uniform() < 0.8) {
    // Items of `category` are category, category + c, ...; the sampler covers the first
    // num_items / c of them, which exist for every category.
    return category + within_category_.Sample(rng_) * c;
  }
  return global_items_.Sample(rng_);
}

size_t InteractionGenerator::Next(size_t max_count,
                                  google::protobuf::RepeatedPtrField<recd::v1::Interaction>* out) {
  size_t made = 0;
  while (made < max_count && user_ < spec_.num_users) {
    if (left_for_user_ == 0) {
      left_for_user_ = 1 + rng_.UniformInt(2 * mean_ - 1);
    }
    const std::string user_id = UserId(spec_, user_);
    while (left_for_user_ > 0 && made < max_count) {
      recd::v1::Interaction* in = out->Add();
      in->set_user_id(user_id);
      in->set_item_id(ItemId(spec_, PickItem(user_)));
      const double u = rng_.Uniform();
      in->set_event_type(u < 0.70   ? recd::v1::EVENT_VIEW
                         : u < 0.90 ? recd::v1::EVENT_CLICK
                         : u < 0.97 ? recd::v1::EVENT_ADD_TO_CART
                                    : recd::v1::EVENT_PURCHASE);
      --left_for_user_;
      ++made;
    }
    if (left_for_user_ == 0) ++user_;
  }
  produced_ += made;
  return made;
}

}  // namespace recd::loadtest
