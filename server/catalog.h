// The item catalogue as the serving path sees it: which items may be served and which carry a
// category or tag, as bitsets ready to combine into a scan's exclusion set.
//
// A Catalog is immutable; updates produce a new Catalog that shares every untouched part with the
// old one (category bitsets and attribute chunks are copy-on-write), so readers pin a snapshot
// with one shared_ptr copy and never wait for writers.
#ifndef RECD_SERVER_CATALOG_H_
#define RECD_SERVER_CATALOG_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "core/bitset.h"
#include "core/types.h"
#include "recd/v1/recommender.pb.h"
#include "storage/store.h"

namespace recd::server {

class Catalog {
 public:
  struct ItemAttributes {
    bool active = true;
    bool deleted = false;
    std::vector<std::string> categories;
    std::vector<std::string> tags;
  };

  // An empty catalogue: every item index is servable and has no attributes.
  Catalog() = default;

  // The catalogue after applying `records` (upserts or deletions, by record.index) to this one.
  std::shared_ptr<const Catalog> With(absl::Span<const storage::ItemRecord> records) const;

  // Items that must never be served (inactive or deleted). Sized to the highest index seen.
  const ItemBitset& unservable() const { return *unservable_; }
  bool IsServable(ItemIndex item) const { return !unservable_->Test(item); }
  // Attributes of `item`; default attributes for an item without a record.
  const ItemAttributes& Attributes(ItemIndex item) const;

  // The exclusion set for a scan over items [0, num_items): unservable items plus everything the
  // filter rules out. `find_item` maps external ids (for include_item_ids); unknown ids ignored.
  ItemBitset Exclusion(const recd::v1::ItemFilter& filter, size_t num_items,
                       const std::function<std::optional<ItemIndex>(absl::string_view)>& find_item) const;
  // The same into *out, replacing it: a caller that keeps the bitset between calls (the engine,
  // per serving thread) reuses its memory.
  void Exclusion(const recd::v1::ItemFilter& filter, size_t num_items,
                 const std::function<std::optional<ItemIndex>(absl::string_view)>& find_item,
                 ItemBitset* out) const;

 private:
  static constexpr size_t kChunkItems = 4096;
  struct Chunk {
    std::vector<ItemAttributes> items;  // kChunkItems entries
  };
  using BitsetMap = absl::flat_hash_map<std::string, std::shared_ptr<const ItemBitset>>;

  // OR of the bitsets of `terms` in `map` (an empty bitset of n bits if none match).
  static ItemBitset Union(const BitsetMap& map,
                          const google::protobuf::RepeatedPtrField<std::string>& terms, size_t n);

  std::shared_ptr<const ItemBitset> unservable_ = std::make_shared<ItemBitset>();
  BitsetMap categories_;
  BitsetMap tags_;
  std::vector<std::shared_ptr<const Chunk>> chunks_;
};

}  // namespace recd::server

#endif  // RECD_SERVER_CATALOG_H_
