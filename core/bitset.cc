#include "core/bitset.h"

#include <algorithm>
#include <bit>

namespace recd {

void ItemBitset::SetAll() {
  std::fill(words_.begin(), words_.end(), ~uint64_t{0});
  if (size_ % 64 != 0 && !words_.empty()) words_.back() = (uint64_t{1} << (size_ % 64)) - 1;
}

void ItemBitset::ClearAll() { std::fill(words_.begin(), words_.end(), 0); }

size_t ItemBitset::Count() const {
  size_t n = 0;
  for (uint64_t w : words_) n += static_cast<size_t>(std::popcount(w));
  return n;
}

void ItemBitset::UnionWith(const ItemBitset& other) {
  const size_t n = std::min(words_.size(), other.words_.size());
  for (size_t i = 0; i < n; ++i) words_[i] |= other.words_[i];
  if (size_ % 64 != 0 && n == words_.size() && !words_.empty())
    words_.back() &= (uint64_t{1} << (size_ % 64)) - 1;
}

void ItemBitset::IntersectWith(const ItemBitset& other) {
  const size_t n = std::min(words_.size(), other.words_.size());
  for (size_t i = 0; i < n; ++i) words_[i] &= other.words_[i];
  for (size_t i = n; i < words_.size(); ++i) words_[i] = 0;
}

void ItemBitset::Subtract(const ItemBitset& other) {
  const size_t n = std::min(words_.size(), other.words_.size());
  for (size_t i = 0; i < n; ++i) words_[i] &= ~other.words_[i];
}

}  // namespace recd
