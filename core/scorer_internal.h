// Shared pieces of the scorer implementations (exact, quantized, HNSW). Private to core/.
#ifndef RECD_CORE_SCORER_INTERNAL_H_
#define RECD_CORE_SCORER_INTERNAL_H_

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/bitset.h"
#include "core/embedding.h"
#include "core/kernels/kernels.h"
#include "core/scorer.h"
#include "core/topk.h"

namespace recd {
namespace scorer_internal {

// Rows handed to one scoring-kernel call: small enough that the candidate buffers live on the
// stack and the heap threshold is refreshed often, large enough to amortise the call.
inline constexpr size_t kScanBlockRows = 1024;

// The scans' block sizes: about k rows first (every row of the first block is a candidate while
// the heap fills, so a small first block makes the threshold useful early), then doubling up to
// kScanBlockRows.
inline size_t FirstScanBlock(size_t k) {
  return std::min(kScanBlockRows, (std::max<size_t>(k, 32) + 31) / 32 * 32);
}
inline size_t NextScanBlock(size_t block) { return std::min(kScanBlockRows, 2 * block); }

struct RowRange {
  size_t begin = 0;
  size_t end = 0;
};

// Splits [0, num_rows) into at most `num_threads` contiguous ranges of at least about
// kMinBytesPerPartition each (boundaries on multiples of 64 rows, matching bitset words).
// Returns one range (possibly empty) when splitting would not pay for a thread start.
std::vector<RowRange> SplitRows(size_t num_rows, size_t bytes_per_row, int num_threads);

// Calls fn(i) for i in [0, n): i = 0 on the calling thread, the others on threads started for
// this call and joined before returning. If a thread cannot be started its part runs inline.
void RunParallel(size_t n, const std::function<void(size_t)>& fn);

// True if every item in [begin, end) has its bit set in `exclude` (null: false).
bool AllExcluded(const ItemBitset* exclude, size_t begin, size_t end);

// Number of items below `num_items` whose bit is set in `exclude` (null: 0).
size_t CountExcluded(const ItemBitset* exclude, size_t num_items);

// Feeds the items of [begin, end) into `heap` block by block: score_block(first_row, rows,
// threshold, out_scores, out_rows) scores a block and returns its filtered candidates (rows
// relative to first_row, see kernels.h); excluded candidates are dropped here, and blocks whose
// items are all excluded are not scored at all.
template <typename ScoreBlockFn>
void ScanRange(size_t begin, size_t end, const ItemBitset* exclude, TopKHeap& heap,
               ScoreBlockFn&& score_block) {
  float scores[kScanBlockRows];
  uint32_t rows[kScanBlockRows];
  for (size_t first = begin, n = 0, block = FirstScanBlock(heap.capacity()); first < end;
       first += n, block = NextScanBlock(block)) {
    n = std::min(block, end - first);
    if (exclude != nullptr && AllExcluded(exclude, first, first + n)) continue;
    const size_t count = score_block(first, n, heap.threshold(), scores, rows);
    for (size_t c = 0; c < count; ++c) {
      const size_t item = first + rows[c];
      if (exclude != nullptr && exclude->Test(item)) continue;
      heap.Push(scores[c], static_cast<ItemIndex>(item));
    }
  }
}

// Runs `scan(range, heap)` over the partitions of [0, num_rows) on up to `num_threads` threads,
// each with its own heap of `capacity`, and merges them. Deterministic: the merge ranks by
// BetterThan, and a row's score does not depend on the partition it falls in.
std::vector<ScoredIndex> PartitionedTopK(
    size_t num_rows, size_t bytes_per_row, int num_threads, size_t capacity,
    const std::function<void(const RowRange&, TopKHeap&)>& scan);

// Asks the kernel to back the 2 MB-aligned stretches of [data, data + bytes) with transparent huge
// pages (ScorerOptions::huge_pages). Best effort: errors (old kernels, THP off) are ignored.
void AdviseHugePages(const void* data, size_t bytes);

// Validated query: true if `query` has `dim` finite entries.
bool ValidQuery(absl::Span<const float> query, int dim);

// Exact float32 scorer (also the fallback inside the HNSW scorer).
std::unique_ptr<ItemScorer> NewExactScorer(std::shared_ptr<const EmbeddingMatrix> items,
                                           const ScorerOptions& options,
                                           const kernels::KernelTable& kernels);

std::unique_ptr<ItemScorer> NewQuantizedScorer(std::shared_ptr<const EmbeddingMatrix> items,
                                               const ScorerOptions& options,
                                               const kernels::KernelTable& kernels);

absl::StatusOr<std::unique_ptr<ItemScorer>> NewHnswScorer(
    std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options,
    const kernels::KernelTable& kernels);

}  // namespace scorer_internal
}  // namespace recd

#endif  // RECD_CORE_SCORER_INTERNAL_H_
