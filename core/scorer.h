// Top-K retrieval by dot product over an item embedding matrix.
//
// The public interface has no ISA-specific code. Implementations (exact scan with runtime CPU
// dispatch, quantized scan with re-rank, HNSW) live behind ItemScorer and are chosen by
// ScorerOptions when a model snapshot is loaded.
#ifndef RECD_CORE_SCORER_H_
#define RECD_CORE_SCORER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/bitset.h"
#include "core/embedding.h"
#include "core/types.h"

namespace recd {

struct ScoredIndex {
  float score = 0.0f;
  ItemIndex item = kNoIndex;
  friend bool operator==(const ScoredIndex&, const ScoredIndex&) = default;
};

// Result order: higher score first; equal scores by lower item index first. This total order
// makes answers deterministic regardless of how a scan was partitioned.
inline bool BetterThan(const ScoredIndex& a, const ScoredIndex& b) {
  return a.score > b.score || (a.score == b.score && a.item < b.item);
}

struct ScorerOptions {
  enum class Kind { kExact };
  Kind kind = Kind::kExact;
  // Threads used to scan one query over a large catalogue (partitions merged at the end).
  int num_threads = 1;
};

// Finds the best k items for query vectors. Immutable after creation; TopK may be called from
// many threads at once.
class ItemScorer {
 public:
  virtual ~ItemScorer() = default;

  // The k best items for `query` (length dim()), best first (see BetterThan), skipping items
  // whose bit is set in `exclude` (may be null; may be shorter than num_items()). Returns fewer
  // than k when fewer items remain. k <= 0 returns nothing. A query of the wrong length or with
  // a non-finite entry returns nothing (callers validate requests; this keeps the scan total).
  virtual std::vector<ScoredIndex> TopK(absl::Span<const float> query, int k,
                                        const ItemBitset* exclude) const = 0;

  // TopK for each row of `queries` (rows x dim(), row-major). `excludes` is empty or has one
  // entry per row (entries may be null; rows past the end of a shorter span are unfiltered).
  // The default implementation calls TopK per row.
  virtual std::vector<std::vector<ScoredIndex>> TopKBatch(
      const EmbeddingMatrix& queries, int k, absl::Span<const ItemBitset* const> excludes) const;

  virtual size_t num_items() const = 0;
  virtual int dim() const = 0;
};

// Builds a scorer over `items` (rows = items). The matrix is shared, not copied; it must stay
// unchanged for the scorer's lifetime. Rejects non-finite embeddings with InvalidArgument.
absl::StatusOr<std::unique_ptr<ItemScorer>> CreateItemScorer(
    std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options);

// Instruction-set level the exact kernels use in this process: "avx512", "avx2" or "scalar".
std::string ScorerIsaName();

// Reference implementation: scores every row, full sort. For tests and as the scalar ground truth.
std::vector<ScoredIndex> ReferenceTopK(const EmbeddingMatrix& items, absl::Span<const float> query,
                                       int k, const ItemBitset* exclude);

}  // namespace recd

#endif  // RECD_CORE_SCORER_H_
