// Top-K retrieval by dot product over an item embedding matrix.
//
// The public interface has no ISA-specific code. Implementations (exact scan with runtime CPU
// dispatch, quantized scan with re-rank, HNSW) live behind ItemScorer and are chosen by
// ScorerOptions when a model snapshot is loaded. Kernels: core/kernels/ (one translation unit
// per instruction set, picked once per process by CPUID). Benchmarks: bench/run_scorer_bench.sh.
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
  enum class Kind {
    // Exact float32 scan (fused dot product + top-k), SIMD kernels chosen at run time.
    kExact,
    // int8 scan (per-dimension and per-item scales, int8 query) of the catalogue in decreasing
    // norm order, then an exact float32 re-rank of candidates. About 4x fewer bytes per item,
    // and in exact mode the scan stops once norms rule out every remaining item. With
    // quantized.exact (the default) the candidates are every item whose proven error bound
    // lets it reach the top k, so the answer is the exact scan's, bit for bit; otherwise a
    // fixed number of the best approximate candidates is re-ranked (see Quantized).
    kQuantizedInt8,
    // HNSW graph (hnswlib, inner product), built when the scorer is created (a few minutes
    // per million items, serially). Approximate; far fewer items touched per query on large
    // catalogues. Keeps its own copy of the vectors plus the graph (~(4d + 8M + 8) bytes/item).
    kHnsw,
  };
  Kind kind = Kind::kExact;
  // Threads used to scan one query (or one batch) over a large catalogue: the catalogue is split
  // into contiguous partitions whose top-k lists are merged; the answer is identical for any
  // thread count. A partition must hold at least 4 MB of item data (roughly 200 us of scanning,
  // to pay for starting a thread), so small catalogues are scanned on the calling thread only.
  // Threads are started per call, not pooled. Also the number of build threads for kHnsw
  // when hnsw.parallel_build is set. Must be in [1, 1024].
  int num_threads = 1;

  // Back the scanned arrays (the item matrix, int8 codes) with 2 MB transparent huge pages
  // where the kernel allows it (madvise MADV_HUGEPAGE, then MADV_COLLAPSE on Linux >= 6.1 for
  // memory already in use; silently nothing elsewhere). Fewer TLB misses and prefetch streams
  // that do not stop at every 4 KB page: measured here, +16 % streaming bandwidth from DRAM and
  // +38 % from L3. Only whole 2 MB-aligned stretches inside an array are advised, so memory
  // outside it is never touched; the hint only changes page sizes, never contents.
  bool huge_pages = true;

  // Instruction-set level of the kernels. kAuto: the best this CPU supports (see
  // ScorerIsaName()). An explicit level the CPU lacks is InvalidArgument.
  enum class Isa { kAuto, kScalar, kAvx2, kAvx512 };
  Isa isa = Isa::kAuto;

  struct Quantized {
    // Exact answers. The int8 score of every item has a proven bound on its distance from the
    // exact float32 score (from the catalogue's rounding residuals, the query's rounding and
    // the float arithmetic of both kernels); the scan keeps the k best float32 scores seen and
    // scores in float32 every item whose int8 upper bound reaches the k-th of them. No other
    // item can be in the top k, so TopK returns what the exact scorer returns (same items, same
    // bitwise scores, same order). The number scored in float32 adapts to the query: typically
    // a few hundred.
    bool exact = true;
    // With exact = false: approximate candidates re-ranked exactly per query:
    // max(k * rerank_factor, k + rerank_min), capped at the catalogue size. Larger = higher
    // recall, slightly slower; an item outside the candidates is missed.
    int rerank_factor = 4;
    int rerank_min = 64;
  };
  Quantized quantized;

  struct Hnsw {
    int m = 16;                 // graph degree (hnswlib M)
    int ef_construction = 200;  // build-time beam width
    int ef_search = 128;        // query-time beam width (raised to k when k is larger)
    uint64_t seed = 100;        // level generator seed; a serial build is reproducible
    // Build with num_threads threads. Off by default: hnswlib 0.6's addPoint draws every
    // node's level from one shared RNG without a lock, a data race (ThreadSanitizer reports
    // it; on x86-64 the effect is nondeterministic levels, not corruption). A serial build
    // takes minutes per million items; opt in only where build time matters more.
    bool parallel_build = false;
    // hnswlib 0.6 cannot filter during search, so a query asks the graph for k + (excluded
    // items) results. When that exceeds this fraction of the catalogue (default: 2000 of 1M),
    // the query runs the exact scan instead: a graph search that deep is slower than a scan.
    double exact_fallback_fraction = 0.002;
  };
  Hnsw hnsw;
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
  // The default implementation calls TopK per row; the exact scorer overrides it with a blocked
  // matrix product (scores may then differ from TopK's in the last bits, so near-ties may order
  // differently between the two; each is deterministic on its own). The int8 scorer in exact
  // mode screens all rows of a batch over shared, cache-resident blocks of codes and answers
  // each exactly as TopK (and hence as the exact scorer's TopK); in approximate mode it answers
  // with the exact scorer's product.
  virtual std::vector<std::vector<ScoredIndex>> TopKBatch(
      const EmbeddingMatrix& queries, int k, absl::Span<const ItemBitset* const> excludes) const;

  virtual size_t num_items() const = 0;
  virtual int dim() const = 0;

  // What this scorer is, for logs and model info, e.g. "exact/avx2/threads=2".
  virtual std::string Describe() const { return ""; }
};

// Builds a scorer over `items` (rows = items). The matrix is shared, not copied; it must stay
// unchanged for the scorer's lifetime. Rejects non-finite embeddings, a null matrix, more than
// 2^32-2 rows and out-of-range options with InvalidArgument naming the field. kQuantizedInt8
// keeps an int8 copy in norm order with its bounds (about d + 24 bytes per item); kHnsw keeps
// the graph and a float copy.
absl::StatusOr<std::unique_ptr<ItemScorer>> CreateItemScorer(
    std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options);

// Instruction-set level scorers created with Isa::kAuto use in this process: "avx512", "avx2" or
// "scalar". The best level CPUID reports, lowered by the environment variable
// RECD_SCORER_ISA=scalar|avx2 if set (never raised). Fixed for the life of the process.
std::string ScorerIsaName();

// Reference implementation: scores every row, full sort. For tests and as the scalar ground truth.
std::vector<ScoredIndex> ReferenceTopK(const EmbeddingMatrix& items, absl::Span<const float> query,
                                       int k, const ItemBitset* exclude);

}  // namespace recd

#endif  // RECD_CORE_SCORER_H_
