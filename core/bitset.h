// A fixed-size set of item indices, one bit per item, used to exclude items from a scan
// (seen items, filtered-out items, inactive items) without copying the catalogue.
#ifndef RECD_CORE_BITSET_H_
#define RECD_CORE_BITSET_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace recd {

class ItemBitset {
 public:
  ItemBitset() = default;
  explicit ItemBitset(size_t size) : size_(size), words_((size + 63) / 64, 0) {}

  size_t size() const { return size_; }
  // Becomes `size` clear bits, reusing the memory it has.
  void Reset(size_t size) {
    size_ = size;
    words_.assign((size + 63) / 64, 0);
  }
  // Grows (new bits clear); never shrinks.
  void Resize(size_t size) {
    if (size <= size_) return;
    size_ = size;
    words_.resize((size + 63) / 64, 0);
  }
  // Out-of-range indices are ignored by Set/Clear and reported clear by Test.
  void Set(size_t i) {
    if (i < size_) words_[i >> 6] |= uint64_t{1} << (i & 63);
  }
  void Clear(size_t i) {
    if (i < size_) words_[i >> 6] &= ~(uint64_t{1} << (i & 63));
  }
  bool Test(size_t i) const { return i < size_ && ((words_[i >> 6] >> (i & 63)) & 1); }
  void SetAll();
  void ClearAll();
  size_t Count() const;
  // this |= other / this &= other / this &= ~other, over the common prefix of both.
  void UnionWith(const ItemBitset& other);
  void IntersectWith(const ItemBitset& other);
  void Subtract(const ItemBitset& other);
  const uint64_t* words() const { return words_.data(); }
  size_t num_words() const { return words_.size(); }

 private:
  size_t size_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace recd

#endif  // RECD_CORE_BITSET_H_
