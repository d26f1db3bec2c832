// Fixed-capacity top-k selection over parallel (score, item) arrays, the collection step that
// follows a scoring kernel. Internal to core/ (scorer implementations); not for per-ISA kernel
// files, which must not include headers with inline functions.
#ifndef RECD_CORE_TOPK_H_
#define RECD_CORE_TOPK_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "core/scorer.h"

namespace recd {

// Keeps the best `capacity` candidates offered so far under BetterThan (higher score, then lower
// item). A binary heap whose root is the worst kept candidate, so a candidate that does not beat
// it costs one comparison. NaN scores are ranked as -inf. Not thread-safe; one per scan.
class TopKHeap {
 public:
  explicit TopKHeap(size_t capacity) : capacity_(capacity) {
    scores_.reserve(capacity);
    items_.reserve(capacity);
  }
  // Copies reserve the full capacity too (a vector's copy only reserves its size), so heaps made
  // from a prototype, e.g. std::vector<TopKHeap>(n, TopKHeap(k)), never reallocate while filling.
  TopKHeap(const TopKHeap& other) : TopKHeap(other.capacity_) {
    scores_.assign(other.scores_.begin(), other.scores_.end());
    items_.assign(other.items_.begin(), other.items_.end());
  }
  TopKHeap& operator=(const TopKHeap& other) {
    TopKHeap copy(other);
    return *this = std::move(copy);
  }
  TopKHeap(TopKHeap&&) = default;
  TopKHeap& operator=(TopKHeap&&) = default;

  size_t capacity() const { return capacity_; }
  size_t size() const { return scores_.size(); }
  bool full() const { return scores_.size() >= capacity_; }

  // Filter threshold for kernels (see core/kernels/kernels.h): NaN while the heap has room (keep
  // every candidate), then the worst kept score. Valid for scans in increasing item order: a
  // later item with a score equal to the worst kept one loses the tie.
  float threshold() const {
    return full() ? (capacity_ == 0 ? std::numeric_limits<float>::infinity() : scores_[0])
                  : std::numeric_limits<float>::quiet_NaN();
  }

  void Push(float score, ItemIndex item) {
    if (std::isnan(score)) score = -std::numeric_limits<float>::infinity();
    if (!full()) {
      scores_.push_back(score);
      items_.push_back(item);
      SiftUp(scores_.size() - 1);
    } else if (capacity_ > 0 && Worse(scores_[0], items_[0], score, item)) {
      scores_[0] = score;
      items_[0] = item;
      SiftDown(0);
    }
  }

  // The kept candidates, best first. Leaves the heap empty.
  std::vector<ScoredIndex> TakeSorted() {
    std::vector<ScoredIndex> out(scores_.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = {scores_[i], items_[i]};
    std::sort(out.begin(), out.end(), BetterThan);
    scores_.clear();
    items_.clear();
    return out;
  }

 private:
  // True if (s1, i1) ranks below (s2, i2).
  static bool Worse(float s1, ItemIndex i1, float s2, ItemIndex i2) {
    return s1 < s2 || (s1 == s2 && i1 > i2);
  }
  void SiftUp(size_t pos) {
    const float s = scores_[pos];
    const ItemIndex it = items_[pos];
    while (pos > 0) {
      const size_t parent = (pos - 1) / 2;
      if (!Worse(s, it, scores_[parent], items_[parent])) break;
      scores_[pos] = scores_[parent];
      items_[pos] = items_[parent];
      pos = parent;
    }
    scores_[pos] = s;
    items_[pos] = it;
  }
  void SiftDown(size_t pos) {
    const size_t n = scores_.size();
    const float s = scores_[pos];
    const ItemIndex it = items_[pos];
    for (;;) {
      size_t child = 2 * pos + 1;
      if (child >= n) break;
      if (child + 1 < n && Worse(scores_[child + 1], items_[child + 1], scores_[child], items_[child]))
        ++child;
      if (!Worse(scores_[child], items_[child], s, it)) break;
      scores_[pos] = scores_[child];
      items_[pos] = items_[child];
      pos = child;
    }
    scores_[pos] = s;
    items_[pos] = it;
  }

  size_t capacity_;
  std::vector<float> scores_;
  std::vector<ItemIndex> items_;
};

// The best `capacity` of several partial top-k lists, best first: `part(p)` for p < num_parts
// returns the TopKHeap of part p, which is emptied. One part's heap is returned as is. Ties
// resolve by BetterThan, so the result does not depend on how the rows were split into parts.
template <typename PartHeap>
std::vector<ScoredIndex> MergeTopK(size_t capacity, size_t num_parts, PartHeap&& part) {
  if (num_parts == 1) return part(size_t{0}).TakeSorted();
  TopKHeap merged(capacity);
  for (size_t p = 0; p < num_parts; ++p) {
    for (const ScoredIndex& s : part(p).TakeSorted()) merged.Push(s.score, s.item);
  }
  return merged.TakeSorted();
}

}  // namespace recd

#endif  // RECD_CORE_TOPK_H_
