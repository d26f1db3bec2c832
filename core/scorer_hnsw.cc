// HNSW scorer over hnswlib (Debian libhnswlib-dev, header-only).
//
// hnswlib's headers define non-inline functions, so they are included in this translation unit
// only. Its own SIMD distance code is chosen at compile time (baseline flags here: SSE at best),
// so the graph uses our dispatched dot kernel through a custom space instead. Exceptions thrown by
// hnswlib are caught here and turned into Status (build) or an exact fallback (query).
#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/scorer_internal.h"

// hnswlib 0.6's SSE path prefetches one entry past the end of a neighbour list: a
// heap-buffer-overflow read that ASan reports while building (nmslib/hnswlib#107, #578; the fix
// PR #459 is unmerged). Its SIMD distances are unused here (the space below brings our own), so
// compile it without manual vectorization: no out-of-bounds prefetch, and none of the non-inline
// CPUID helpers it otherwise defines in its header.
#define NO_MANUAL_VECTORIZATION
#include "hnswlib/hnswlib.h"

namespace recd {
namespace scorer_internal {
namespace {

// Inner-product space whose distance (1 - dot, as hnswlib's InnerProductSpace) runs the
// dispatched kernel.
class KernelInnerProductSpace final : public hnswlib::SpaceInterface<float> {
 public:
  KernelInnerProductSpace(size_t dim, kernels::DotFn dot) : param_{dim, dot} {}
  size_t get_data_size() override { return param_.dim * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return &Distance; }
  void* get_dist_func_param() override { return &param_; }

 private:
  struct Param {
    size_t dim;
    kernels::DotFn dot;
  };
  static float Distance(const void* a, const void* b, const void* param) {
    const Param* p = static_cast<const Param*>(param);
    return 1.0f - p->dot(static_cast<const float*>(a), static_cast<const float*>(b), p->dim);
  }
  Param param_;
};

class HnswScorer final : public ItemScorer {
 public:
  HnswScorer(std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options,
             const kernels::KernelTable& kernels)
      : items_(items),
        options_(options),
        kernels_(kernels),
        exact_(NewExactScorer(std::move(items), options, kernels)) {}

  absl::Status Build() {
    const size_t n = num_items();
    if (n == 0) return absl::OkStatus();
    const size_t d = static_cast<size_t>(dim());
    try {
      space_ = std::make_unique<KernelInnerProductSpace>(d, kernels_.dot);
      index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(
          space_.get(), n, static_cast<size_t>(options_.hnsw.m),
          static_cast<size_t>(options_.hnsw.ef_construction),
          static_cast<size_t>(options_.hnsw.seed));
      index_->setEf(static_cast<size_t>(options_.hnsw.ef_search));
      const float* data = items_->data();
      // The first point alone (it becomes the entry point), then the rest; in parallel only on
      // request (ScorerOptions::Hnsw::parallel_build: hnswlib 0.6 races on its level RNG).
      // TSan also reports lock-order inversions inside a parallel addPoint (per-node locks, as
      // in yugabyte-db#24814); a cycle would need a node reachable at a level its inserter has
      // not linked yet, which hnswlib's top-down insertion rules out.
      index_->addPoint(data, 0);
      std::atomic<size_t> next{1};
      std::atomic<bool> failed{false};
      const size_t threads =
          options_.hnsw.parallel_build
              ? std::min<size_t>(static_cast<size_t>(options_.num_threads), std::max<size_t>(n / 1000, 1))
              : 1;
      RunParallel(threads, [&](size_t) {
        try {
          for (size_t i = next++; i < n && !failed; i = next++) index_->addPoint(data + i * d, i);
        } catch (const std::exception&) {
          failed = true;
        }
      });
      if (failed) return absl::InternalError("hnsw: building the graph failed");
    } catch (const std::exception& e) {
      return absl::ResourceExhaustedError(absl::StrCat("hnsw: ", e.what()));
    }
    return absl::OkStatus();
  }

  std::vector<ScoredIndex> TopK(absl::Span<const float> query, int k,
                                const ItemBitset* exclude) const override {
    const size_t n = num_items();
    if (k <= 0 || n == 0 || !ValidQuery(query, dim())) return {};
    const size_t kk = std::min(static_cast<size_t>(k), n);
    const size_t remaining = n - CountExcluded(exclude, n);
    // hnswlib 0.6 has no search filter: ask for enough extra results to survive the exclusion.
    // When the answer is (nearly) everything that remains, or the search would be that deep,
    // the exact scan is both faster and complete.
    const size_t wanted = std::min(n, kk + (n - remaining));
    if (remaining <= kk ||
        static_cast<double>(wanted) > options_.hnsw.exact_fallback_fraction * static_cast<double>(n)) {
      return exact_->TopK(query, k, exclude);
    }
    std::priority_queue<std::pair<float, hnswlib::labeltype>> found;
    try {
      found = index_->searchKnn(query.data(), wanted);
    } catch (const std::exception&) {
      return exact_->TopK(query, k, exclude);
    }
    // Re-score with the exact kernel: results carry the same scores as the exact scorer and
    // are ordered by BetterThan, not by graph distance.
    const size_t d = static_cast<size_t>(dim());
    TopKHeap heap(kk);
    for (; !found.empty(); found.pop()) {
      const size_t item = found.top().second;
      if (exclude != nullptr && exclude->Test(item)) continue;
      heap.Push(kernels_.dot(items_->data() + item * d, query.data(), d),
                static_cast<ItemIndex>(item));
    }
    // The graph can fail to reach k allowed items (a disconnected region, heavy exclusion);
    // the contract is k results whenever k items remain.
    if (heap.size() < kk) return exact_->TopK(query, k, exclude);
    return heap.TakeSorted();
  }

  size_t num_items() const override { return static_cast<size_t>(items_->rows()); }
  int dim() const override { return static_cast<int>(items_->cols()); }
  std::string Describe() const override {
    return absl::StrCat("hnsw/", kernels_.isa, "/M=", options_.hnsw.m,
                        "/ef_construction=", options_.hnsw.ef_construction,
                        "/ef_search=", options_.hnsw.ef_search);
  }

 private:
  std::shared_ptr<const EmbeddingMatrix> items_;
  ScorerOptions options_;
  const kernels::KernelTable& kernels_;
  std::unique_ptr<ItemScorer> exact_;
  std::unique_ptr<KernelInnerProductSpace> space_;  // outlives index_ (declared first)
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ItemScorer>> NewHnswScorer(
    std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options,
    const kernels::KernelTable& kernels) {
  auto scorer = std::make_unique<HnswScorer>(std::move(items), options, kernels);
  if (absl::Status s = scorer->Build(); !s.ok()) return s;
  return std::unique_ptr<ItemScorer>(std::move(scorer));
}

}  // namespace scorer_internal
}  // namespace recd
