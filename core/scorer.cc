#include "core/scorer.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/kernels/dispatch.h"
#include "core/scorer_internal.h"
#include "core/status_macros.h"
#include "core/topk.h"

namespace recd {
namespace scorer_internal {

// A partition must carry enough work to pay for starting a thread (tens of microseconds): 4 MB
// is roughly 200 us of streaming at DRAM speed.
constexpr size_t kMinBytesPerPartition = size_t{4} << 20;

std::vector<RowRange> SplitRows(size_t num_rows, size_t bytes_per_row, int num_threads) {
  const size_t total_bytes = num_rows * std::max<size_t>(bytes_per_row, 1);
  size_t parts = std::min<size_t>(static_cast<size_t>(std::max(num_threads, 1)),
                                  std::max<size_t>(total_bytes / kMinBytesPerPartition, 1));
  // Partition boundaries on 64-row multiples keep each partition's bitset words its own.
  const size_t units = (num_rows + 63) / 64;
  parts = std::max<size_t>(std::min(parts, units), 1);
  std::vector<RowRange> ranges;
  ranges.reserve(parts);
  size_t begin = 0;
  for (size_t p = 0; p < parts; ++p) {
    const size_t end = p + 1 == parts ? num_rows : std::min(num_rows, units * (p + 1) / parts * 64);
    ranges.push_back({begin, end});
    begin = end;
  }
  return ranges;
}

void RunParallel(size_t n, const std::function<void(size_t)>& fn) {
  std::vector<std::thread> threads;
  std::vector<size_t> inline_parts;
  threads.reserve(n > 0 ? n - 1 : 0);
  for (size_t i = 1; i < n; ++i) {
    try {
      threads.emplace_back(fn, i);
    } catch (const std::system_error&) {
      inline_parts.push_back(i);  // out of threads: do the work here rather than fail the query
    }
  }
  if (n > 0) fn(0);
  for (size_t i : inline_parts) fn(i);
  for (std::thread& t : threads) t.join();
}

bool AllExcluded(const ItemBitset* exclude, size_t begin, size_t end) {
  if (exclude == nullptr || end > exclude->size()) return false;
  const uint64_t* words = exclude->words();
  size_t i = begin;
  while (i < end) {
    const size_t w = i >> 6;
    const size_t lo = i & 63;
    const size_t hi = std::min<size_t>(64, end - (w << 6));  // one past the last bit in this word
    const uint64_t mask =
        (hi == 64 ? ~uint64_t{0} : ((uint64_t{1} << hi) - 1)) & (~uint64_t{0} << lo);
    if ((words[w] & mask) != mask) return false;
    i = (w + 1) << 6;
  }
  return true;
}

size_t CountExcluded(const ItemBitset* exclude, size_t num_items) {
  if (exclude == nullptr) return 0;
  const size_t bits = std::min(num_items, exclude->size());
  const uint64_t* words = exclude->words();
  size_t count = 0;
  for (size_t w = 0; w < bits / 64; ++w) count += static_cast<size_t>(std::popcount(words[w]));
  if (bits % 64 != 0) {
    count += static_cast<size_t>(std::popcount(words[bits / 64] & ((uint64_t{1} << (bits % 64)) - 1)));
  }
  return count;
}

std::vector<ScoredIndex> PartitionedTopK(
    size_t num_rows, size_t bytes_per_row, int num_threads, size_t capacity,
    const std::function<void(const RowRange&, TopKHeap&)>& scan) {
  const std::vector<RowRange> parts = SplitRows(num_rows, bytes_per_row, num_threads);
  if (parts.size() == 1) {
    TopKHeap heap(capacity);
    scan(parts[0], heap);
    return heap.TakeSorted();
  }
  std::vector<TopKHeap> heaps(parts.size(), TopKHeap(capacity));
  RunParallel(parts.size(), [&](size_t p) { scan(parts[p], heaps[p]); });
  return MergeTopK(capacity, heaps.size(), [&](size_t p) -> TopKHeap& { return heaps[p]; });
}

void AdviseHugePages(const void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (data == nullptr || end <= begin) return;
  void* p = reinterpret_cast<void*>(begin);
  if (madvise(p, end - begin, MADV_HUGEPAGE) != 0) return;
  // Memory already faulted in stays in 4 KB pages until khugepaged gets to it (minutes);
  // MADV_COLLAPSE (Linux 6.1) converts it now. EINVAL on older kernels: nothing to do.
  constexpr int kMadvCollapse = 25;
  (void)madvise(p, end - begin, kMadvCollapse);
#else
  (void)data;
  (void)bytes;
#endif
}

bool ValidQuery(absl::Span<const float> query, int dim) {
  if (static_cast<int64_t>(query.size()) != dim) return false;
  for (float x : query) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

namespace {

// Batch blocks: items per kernel call so that the block (re-read once per 16-query panel) stays
// in L1/L2. Candidate buffers are sized for the worst case of one block.
constexpr size_t kBatchBlockBytes = size_t{64} << 10;

// Rows per batch block: a multiple of the GEMM kernels' row tiles (6 for AVX2, 12 for AVX-512)
// so that only a partition's last block runs the slower one-row tail.
size_t BatchBlockRows(size_t d) {
  const size_t rows = kBatchBlockBytes / (std::max<size_t>(d, 1) * sizeof(float));
  return std::clamp<size_t>(rows / 12 * 12, 12, 4092);
}

class ExactScorer final : public ItemScorer {
 public:
  ExactScorer(std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options,
              const kernels::KernelTable& kernels)
      : items_(std::move(items)), num_threads_(options.num_threads), kernels_(kernels) {
    if (options.huge_pages) {
      AdviseHugePages(items_->data(), static_cast<size_t>(items_->size()) * sizeof(float));
    }
  }

  std::vector<ScoredIndex> TopK(absl::Span<const float> query, int k,
                                const ItemBitset* exclude) const override {
    const size_t n = num_items();
    if (k <= 0 || n == 0 || !ValidQuery(query, dim())) return {};
    const size_t d = static_cast<size_t>(dim());
    const float* items = items_->data();
    const float* q = query.data();
    const kernels::DotFilterFn dot_filter = kernels_.dot_filter;
    return PartitionedTopK(
        n, d * sizeof(float), num_threads_, std::min(static_cast<size_t>(k), n),
        [&](const RowRange& range, TopKHeap& heap) {
          ScanRange(range.begin, range.end, exclude, heap,
                    [&](size_t first, size_t rows, float threshold, float* out_scores,
                        uint32_t* out_rows) {
                      return dot_filter(items + first * d, rows, d, q, threshold, out_scores,
                                        out_rows);
                    });
        });
  }

  std::vector<std::vector<ScoredIndex>> TopKBatch(
      const EmbeddingMatrix& queries, int k,
      absl::Span<const ItemBitset* const> excludes) const override;

  size_t num_items() const override { return static_cast<size_t>(items_->rows()); }
  int dim() const override { return static_cast<int>(items_->cols()); }
  std::string Describe() const override {
    return absl::StrCat("exact/", kernels_.isa, "/threads=", num_threads_);
  }

 private:
  // Scores rows [range) against every valid query, feeding heaps[q].
  void BatchScanRange(const RowRange& range, const EmbeddingMatrix& queries,
                      const std::vector<char>& valid, const std::vector<float>& panels,
                      absl::Span<const ItemBitset* const> excludes,
                      std::vector<TopKHeap>& heaps) const;
  void BatchScanRangeEigen(const RowRange& range, const EmbeddingMatrix& queries,
                           const std::vector<char>& valid,
                           absl::Span<const ItemBitset* const> excludes,
                           std::vector<TopKHeap>& heaps) const;

  std::shared_ptr<const EmbeddingMatrix> items_;
  int num_threads_;
  const kernels::KernelTable& kernels_;
};

const ItemBitset* ExcludeFor(absl::Span<const ItemBitset* const> excludes, size_t q) {
  return q < excludes.size() ? excludes[q] : nullptr;
}

std::vector<std::vector<ScoredIndex>> ExactScorer::TopKBatch(
    const EmbeddingMatrix& queries, int k, absl::Span<const ItemBitset* const> excludes) const {
  const size_t nq = static_cast<size_t>(queries.rows());
  const size_t n = num_items();
  // One query is a memory-bound scan, not a matrix product; degenerate inputs behave as TopK.
  if (nq < 2 || k <= 0 || n == 0 || queries.cols() != dim()) {
    return ItemScorer::TopKBatch(queries, k, excludes);
  }
  const size_t d = static_cast<size_t>(dim());
  std::vector<char> valid(nq);
  for (size_t q = 0; q < nq; ++q) {
    valid[q] = ValidQuery(absl::Span<const float>(queries.row(q).data(), d), dim());
  }
  // Queries transposed into panels of kPanelWidth columns (zero padding), shared read-only.
  std::vector<float> panels;
  if (kernels_.gemm_filter != nullptr) {
    const size_t num_panels = (nq + kernels::kPanelWidth - 1) / kernels::kPanelWidth;
    panels.assign(num_panels * d * kernels::kPanelWidth, 0.0f);
    for (size_t q = 0; q < nq; ++q) {
      float* panel = panels.data() + (q / kernels::kPanelWidth) * d * kernels::kPanelWidth;
      const size_t c = q % kernels::kPanelWidth;
      for (size_t j = 0; j < d; ++j) panel[j * kernels::kPanelWidth + c] = queries(q, j);
    }
  }
  const size_t capacity = std::min(static_cast<size_t>(k), n);
  const std::vector<RowRange> parts = SplitRows(n, d * sizeof(float), num_threads_);
  std::vector<std::vector<TopKHeap>> heaps(parts.size(),
                                           std::vector<TopKHeap>(nq, TopKHeap(capacity)));
  RunParallel(parts.size(), [&](size_t p) {
    if (kernels_.gemm_filter != nullptr) {
      BatchScanRange(parts[p], queries, valid, panels, excludes, heaps[p]);
    } else {
      BatchScanRangeEigen(parts[p], queries, valid, excludes, heaps[p]);
    }
  });
  std::vector<std::vector<ScoredIndex>> out(nq);
  for (size_t q = 0; q < nq; ++q) {
    if (!valid[q]) continue;
    out[q] = MergeTopK(capacity, heaps.size(), [&](size_t p) -> TopKHeap& { return heaps[p][q]; });
  }
  return out;
}

void ExactScorer::BatchScanRange(const RowRange& range, const EmbeddingMatrix& queries,
                                 const std::vector<char>& valid, const std::vector<float>& panels,
                                 absl::Span<const ItemBitset* const> excludes,
                                 std::vector<TopKHeap>& heaps) const {
  const size_t nq = static_cast<size_t>(queries.rows());
  const size_t d = static_cast<size_t>(dim());
  const size_t num_panels = (nq + kernels::kPanelWidth - 1) / kernels::kPanelWidth;
  const size_t padded = num_panels * kernels::kPanelWidth;
  const size_t block_rows = BatchBlockRows(d);
  // Padding and invalid queries never pass +inf.
  std::vector<float> thresholds(padded, std::numeric_limits<float>::infinity());
  std::vector<float> cand_scores(block_rows * padded);
  std::vector<uint32_t> cand_rows(block_rows * padded);
  std::vector<uint32_t> cand_queries(block_rows * padded);
  const float* items = items_->data();
  // As in ScanRange: start with about k rows and double, so thresholds become finite early.
  const size_t capacity = heaps.empty() ? 0 : heaps[0].capacity();
  size_t block = std::min(block_rows, (std::max<size_t>(capacity, 12) + 11) / 12 * 12);
  for (size_t first = range.begin, rows = 0; first < range.end;
       first += rows, block = std::min(block_rows, 2 * block)) {
    rows = std::min(block, range.end - first);
    for (size_t q = 0; q < nq; ++q) {
      if (valid[q]) thresholds[q] = heaps[q].threshold();
    }
    const size_t count =
        kernels_.gemm_filter(items + first * d, rows, d, panels.data(), num_panels,
                             thresholds.data(), cand_scores.data(), cand_rows.data(),
                             cand_queries.data());
    for (size_t c = 0; c < count; ++c) {
      const size_t q = cand_queries[c];
      const size_t item = first + cand_rows[c];
      const ItemBitset* ex = ExcludeFor(excludes, q);
      if (ex != nullptr && ex->Test(item)) continue;
      heaps[q].Push(cand_scores[c], static_cast<ItemIndex>(item));
    }
  }
}

// Portable batch path (scalar level): Eigen's blocked GEMM per item block, then a threshold
// filter per query row.
void ExactScorer::BatchScanRangeEigen(const RowRange& range, const EmbeddingMatrix& queries,
                                      const std::vector<char>& valid,
                                      absl::Span<const ItemBitset* const> excludes,
                                      std::vector<TopKHeap>& heaps) const {
  const size_t nq = static_cast<size_t>(queries.rows());
  const size_t d = static_cast<size_t>(dim());
  const size_t block_rows = BatchBlockRows(d);
  EmbeddingMatrix scores(static_cast<Eigen::Index>(nq), static_cast<Eigen::Index>(block_rows));
  for (size_t first = range.begin; first < range.end; first += block_rows) {
    const size_t rows = std::min(block_rows, range.end - first);
    Eigen::Map<const EmbeddingMatrix> block(items_->data() + first * d,
                                            static_cast<Eigen::Index>(rows),
                                            static_cast<Eigen::Index>(d));
    auto out = scores.leftCols(static_cast<Eigen::Index>(rows));
    out.noalias() = queries * block.transpose();
    for (size_t q = 0; q < nq; ++q) {
      if (!valid[q]) continue;
      TopKHeap& heap = heaps[q];
      const ItemBitset* ex = ExcludeFor(excludes, q);
      float threshold = heap.threshold();
      const float* row = scores.row(static_cast<Eigen::Index>(q)).data();
      for (size_t j = 0; j < rows; ++j) {
        if (row[j] <= threshold) continue;
        if (ex != nullptr && ex->Test(first + j)) continue;
        heap.Push(row[j], static_cast<ItemIndex>(first + j));
        threshold = heap.threshold();
      }
    }
  }
}

}  // namespace

std::unique_ptr<ItemScorer> NewExactScorer(std::shared_ptr<const EmbeddingMatrix> items,
                                           const ScorerOptions& options,
                                           const kernels::KernelTable& kernels) {
  return std::make_unique<ExactScorer>(std::move(items), options, kernels);
}

}  // namespace scorer_internal

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

namespace {

absl::Status ValidateOptions(const ScorerOptions& o) {
  if (o.num_threads < 1 || o.num_threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads: ", o.num_threads, ", must be in [1, 1024]"));
  }
  if (o.quantized.rerank_factor < 1) {
    return absl::InvalidArgumentError(absl::StrCat("quantized.rerank_factor: ",
                                                   o.quantized.rerank_factor, ", must be >= 1"));
  }
  if (o.quantized.rerank_min < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantized.rerank_min: ", o.quantized.rerank_min, ", must be >= 0"));
  }
  if (o.hnsw.m < 2 || o.hnsw.m > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("hnsw.m: ", o.hnsw.m, ", must be in [2, 1024]"));
  }
  if (o.hnsw.ef_construction < 1 || o.hnsw.ef_search < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hnsw.ef_construction / hnsw.ef_search: ", o.hnsw.ef_construction, " / ",
        o.hnsw.ef_search, ", must be >= 1"));
  }
  if (!(o.hnsw.exact_fallback_fraction >= 0.0 && o.hnsw.exact_fallback_fraction <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("hnsw.exact_fallback_fraction: ",
                                                   o.hnsw.exact_fallback_fraction,
                                                   ", must be in [0, 1]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<kernels::IsaLevel> ResolveIsa(ScorerOptions::Isa isa) {
  kernels::IsaLevel wanted;
  switch (isa) {
    case ScorerOptions::Isa::kAuto:
      return kernels::DefaultIsaLevel();
    case ScorerOptions::Isa::kScalar:
      wanted = kernels::IsaLevel::kScalar;
      break;
    case ScorerOptions::Isa::kAvx2:
      wanted = kernels::IsaLevel::kAvx2;
      break;
    case ScorerOptions::Isa::kAvx512:
      wanted = kernels::IsaLevel::kAvx512;
      break;
    default:
      return absl::InvalidArgumentError("isa: unknown value");
  }
  if (wanted > kernels::SupportedIsaLevel()) {
    return absl::InvalidArgumentError(
        absl::StrCat("isa: ", kernels::IsaLevelName(wanted), " is not supported by this CPU (best: ",
                     kernels::IsaLevelName(kernels::SupportedIsaLevel()), ")"));
  }
  return wanted;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ItemScorer>> CreateItemScorer(
    std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options) {
  if (items == nullptr) return absl::InvalidArgumentError("item embeddings: null matrix");
  if (static_cast<uint64_t>(items->rows()) >= kNoIndex) {
    return absl::InvalidArgumentError(
        absl::StrCat("item embeddings: ", items->rows(), " rows, limit is ", kNoIndex - 1));
  }
  RETURN_IF_ERROR(ValidateOptions(options));
  ASSIGN_OR_RETURN(const kernels::IsaLevel level, ResolveIsa(options.isa));
  RETURN_IF_ERROR(CheckFinite(*items, "item embeddings"));
  const kernels::KernelTable& table = kernels::KernelsFor(level);
  switch (options.kind) {
    case ScorerOptions::Kind::kExact:
      return scorer_internal::NewExactScorer(std::move(items), options, table);
    case ScorerOptions::Kind::kQuantizedInt8:
      return scorer_internal::NewQuantizedScorer(std::move(items), options, table);
    case ScorerOptions::Kind::kHnsw:
      return scorer_internal::NewHnswScorer(std::move(items), options, table);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("kind: unknown value ", static_cast<int>(options.kind)));
}

std::string ScorerIsaName() { return kernels::IsaLevelName(kernels::DefaultIsaLevel()); }

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
    float f = static_cast<float>(s);
    if (std::isnan(f)) f = -std::numeric_limits<float>::infinity();
    all.push_back({f, static_cast<ItemIndex>(i)});
  }
  std::sort(all.begin(), all.end(), BetterThan);
  if (all.size() > static_cast<size_t>(k)) all.resize(static_cast<size_t>(k));
  return all;
}

}  // namespace recd
