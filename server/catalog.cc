#include "server/catalog.h"

#include <algorithm>


namespace recd::server {
namespace {

const Catalog::ItemAttributes& DefaultAttributes() {
  static const Catalog::ItemAttributes* const kDefault = new Catalog::ItemAttributes();
  return *kDefault;
}

// Returns a private, writable copy of map[term] (cloned at most once per update, tracked in
// `owned`), creating it when absent.
ItemBitset* Writable(absl::flat_hash_map<std::string, std::shared_ptr<const ItemBitset>>& map,
                     absl::flat_hash_map<std::string, std::shared_ptr<ItemBitset>>& owned,
                     const std::string& term) {
  auto it = owned.find(term);
  if (it != owned.end()) return it->second.get();
  auto found = map.find(term);
  auto copy = found == map.end() ? std::make_shared<ItemBitset>()
                                 : std::make_shared<ItemBitset>(*found->second);
  map[term] = copy;
  owned[term] = copy;
  return copy.get();
}

}  // namespace

const Catalog::ItemAttributes& Catalog::Attributes(ItemIndex item) const {
  const size_t chunk = item / kChunkItems;
  if (chunk >= chunks_.size() || chunks_[chunk] == nullptr) return DefaultAttributes();
  return chunks_[chunk]->items[item % kChunkItems];
}

std::shared_ptr<const Catalog> Catalog::With(absl::Span<const storage::ItemRecord> records) const {
  auto next = std::make_shared<Catalog>(*this);  // shares every part until touched
  auto unservable = std::make_shared<ItemBitset>(*unservable_);
  absl::flat_hash_map<std::string, std::shared_ptr<ItemBitset>> owned_categories, owned_tags;
  absl::flat_hash_map<size_t, std::shared_ptr<Chunk>> owned_chunks;
  for (const storage::ItemRecord& record : records) {
    const ItemIndex item = record.index;
    if (item == kNoIndex) continue;
    const size_t c = item / kChunkItems;
    if (c >= next->chunks_.size()) next->chunks_.resize(c + 1);
    std::shared_ptr<Chunk>& chunk = owned_chunks[c];
    if (chunk == nullptr) {
      chunk = next->chunks_[c] ? std::make_shared<Chunk>(*next->chunks_[c]) : std::make_shared<Chunk>();
      chunk->items.resize(kChunkItems);
      next->chunks_[c] = chunk;
    }
    ItemAttributes& attrs = chunk->items[item % kChunkItems];
    for (const std::string& t : attrs.categories) Writable(next->categories_, owned_categories, t)->Clear(item);
    for (const std::string& t : attrs.tags) Writable(next->tags_, owned_tags, t)->Clear(item);
    attrs.active = record.active;
    attrs.deleted = record.deleted;
    attrs.categories = record.categories;
    attrs.tags = record.tags;
    for (const std::string& t : attrs.categories) {
      ItemBitset* b = Writable(next->categories_, owned_categories, t);
      b->Resize(item + 1);
      b->Set(item);
    }
    for (const std::string& t : attrs.tags) {
      ItemBitset* b = Writable(next->tags_, owned_tags, t);
      b->Resize(item + 1);
      b->Set(item);
    }
    unservable->Resize(item + 1);
    if (record.deleted || !record.active) {
      unservable->Set(item);
    } else {
      unservable->Clear(item);
    }
  }
  next->unservable_ = std::move(unservable);
  return next;
}

ItemBitset Catalog::Union(const BitsetMap& map,
                          const google::protobuf::RepeatedPtrField<std::string>& terms, size_t n) {
  ItemBitset out(n);
  for (const std::string& t : terms) {
    auto it = map.find(t);
    if (it != map.end()) out.UnionWith(*it->second);
  }
  return out;
}

ItemBitset Catalog::Exclusion(
    const recd::v1::ItemFilter& filter, size_t n,
    const std::function<std::optional<ItemIndex>(absl::string_view)>& find_item) const {
  ItemBitset exclusion;
  Exclusion(filter, n, find_item, &exclusion);
  return exclusion;
}

void Catalog::Exclusion(const recd::v1::ItemFilter& filter, size_t n,
                        const std::function<std::optional<ItemIndex>(absl::string_view)>& find_item,
                        ItemBitset* out) const {
  // Without a filter the exclusion is the unservable items, written straight into *out (this
  // runs for every Recommend; at 100k items a bitset is 12.5 KB, above glibc's per-thread cache).
  out->Reset(n);
  if (filter.include_categories().empty() && filter.include_tags().empty() &&
      filter.include_item_ids().empty() && filter.exclude_categories().empty() &&
      filter.exclude_tags().empty()) {
    out->UnionWith(*unservable_);
    return;
  }
  // Start from "allowed = everything", narrow it, then invert into an exclusion set.
  ItemBitset allowed(n);
  allowed.SetAll();
  if (!filter.include_categories().empty()) {
    if (filter.require_all_categories()) {
      for (const std::string& t : filter.include_categories()) {
        auto it = categories_.find(t);
        if (it == categories_.end()) {
          allowed.ClearAll();
          break;
        }
        allowed.IntersectWith(*it->second);
      }
    } else {
      allowed.IntersectWith(Union(categories_, filter.include_categories(), n));
    }
  }
  if (!filter.include_tags().empty()) allowed.IntersectWith(Union(tags_, filter.include_tags(), n));
  if (!filter.include_item_ids().empty()) {
    ItemBitset listed(n);
    for (const std::string& id : filter.include_item_ids()) {
      if (std::optional<ItemIndex> item = find_item(id)) listed.Set(*item);
    }
    allowed.IntersectWith(listed);
  }
  if (!filter.exclude_categories().empty()) allowed.Subtract(Union(categories_, filter.exclude_categories(), n));
  if (!filter.exclude_tags().empty()) allowed.Subtract(Union(tags_, filter.exclude_tags(), n));
  allowed.Subtract(*unservable_);

  out->SetAll();
  out->Subtract(allowed);
}

}  // namespace recd::server
