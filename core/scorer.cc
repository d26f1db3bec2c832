#include "core/scorer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace recd {
namespace {

bool AllFinite(absl::Span<const float> v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

// Exact scan, portable code. Keeps a k-sized heap whose top is the worst kept candidate, so each
// item costs one comparison unless it beats the current k-th best.
class ExactScorer final : public ItemScorer {
 public:
  ExactScorer(std::shared_ptr<const EmbeddingMatrix> items, ScorerOptions options)
      : items_(std::move(items)), options_(options) {}

  std::vector<ScoredIndex> TopK(absl::Span<const float> query, int k,
                                const ItemBitset* exclude) const override {
    std::vector<ScoredIndex> heap;
    if (k <= 0 || static_cast<int>(query.size()) != dim() || !AllFinite(query)) return heap;
    const size_t n = num_items();
    const size_t d = static_cast<size_t>(dim());
    const size_t kk = std::min(static_cast<size_t>(k), n);
    heap.reserve(kk);
    // std heap with BetterThan as "less" keeps the worst element at the front.
    const float* row = items_->data();
    for (size_t i = 0; i < n; ++i, row += d) {
      if (exclude != nullptr && exclude->Test(i)) continue;
      float s = 0.0f;
      for (size_t j = 0; j < d; ++j) s += row[j] * query[j];
      const ScoredIndex c{s, static_cast<ItemIndex>(i)};
      if (heap.size() < kk) {
        heap.push_back(c);
        std::push_heap(heap.begin(), heap.end(), BetterThan);
      } else if (BetterThan(c, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), BetterThan);
        heap.back() = c;
        std::push_heap(heap.begin(), heap.end(), BetterThan);
      }
    }
    std::sort(heap.begin(), heap.end(), BetterThan);
    return heap;
  }

  size_t num_items() const override { return static_cast<size_t>(items_->rows()); }
  int dim() const override { return static_cast<int>(items_->cols()); }

 private:
  std::shared_ptr<const EmbeddingMatrix> items_;
  ScorerOptions options_;
};

}  // namespace

std::vector<std::vector<ScoredIndex>> ItemScorer::TopKBatch(
    const EmbeddingMatrix& queries, int k, absl::Span<const ItemBitset* const> excludes) const {
  std::vector<std::vector<ScoredIndex>> out(static_cast<size_t>(queries.rows()));
  for (Eigen::Index r = 0; r < queries.rows(); ++r) {
    const ItemBitset* ex =
        static_cast<size_t>(r) < excludes.size() ? excludes[static_cast<size_t>(r)] : nullptr;
    out[static_cast<size_t>(r)] =
        TopK(absl::Span<const float>(queries.row(r).data(), static_cast<size_t>(queries.cols())),
             k, ex);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<ItemScorer>> CreateItemScorer(
    std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options) {
  if (items == nullptr) return absl::InvalidArgumentError("item embeddings: null matrix");
  if (static_cast<uint64_t>(items->rows()) >= kNoIndex) {
    return absl::InvalidArgumentError(
        absl::StrCat("item embeddings: ", items->rows(), " rows, limit is ", kNoIndex - 1));
  }
  if (options.num_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads: ", options.num_threads, ", must be at least 1"));
  }
  RETURN_IF_ERROR(CheckFinite(*items, "item embeddings"));
  return std::unique_ptr<ItemScorer>(new ExactScorer(std::move(items), options));
}

std::string ScorerIsaName() { return "scalar"; }

std::vector<ScoredIndex> ReferenceTopK(const EmbeddingMatrix& items, absl::Span<const float> query,
                                       int k, const ItemBitset* exclude) {
  std::vector<ScoredIndex> all;
  if (k <= 0 || static_cast<Eigen::Index>(query.size()) != items.cols()) return all;
  const size_t d = static_cast<size_t>(items.cols());
  for (Eigen::Index i = 0; i < items.rows(); ++i) {
    if (exclude != nullptr && exclude->Test(static_cast<size_t>(i))) continue;
    // Double accumulation: the ground truth the fast kernels are compared against.
    double s = 0.0;
    const float* row = items.row(i).data();
    for (size_t j = 0; j < d; ++j) s += static_cast<double>(row[j]) * query[j];
    all.push_back({static_cast<float>(s), static_cast<ItemIndex>(i)});
  }
  std::sort(all.begin(), all.end(), BetterThan);
  if (all.size() > static_cast<size_t>(k)) all.resize(static_cast<size_t>(k));
  return all;
}

}  // namespace recd
