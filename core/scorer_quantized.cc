// int8 scan + exact float32 re-rank.
//
// Encoding. Trained factors have very different ranges per dimension (SVD: the leading singular
// directions dominate) and per item (popular items have larger norms), so both are factored out
// before rounding: x_ij ~= row_scale_i * col_scale_j * code_ij with col_scale_j = max_i |x_ij|
// and row_scale_i = max_j |x_ij / col_scale_j| / 127, codes in [-127, 127]. The column scales
// are folded into the query (q'_j = q_j * col_scale_j), which is then rounded to int8 with its
// own scale, so the scan is a pure int8 x int8 dot product: exact integer sums, one float
// multiply per item, d + 4 bytes read per item instead of 4d.
//
// The scan keeps the best max(k * rerank_factor, k + rerank_min) items by approximate score;
// those are re-scored with the float32 kernel and the best k returned. Re-ranked scores are
// bitwise the exact scorer's scores (same dot kernel), so the two agree whenever the true top k
// is among the candidates.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/scorer_internal.h"

namespace recd {
namespace scorer_internal {
namespace {

class QuantizedScorer final : public ItemScorer {
 public:
  QuantizedScorer(std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options,
                  const kernels::KernelTable& kernels)
      : items_(std::move(items)),
        options_(options),
        kernels_(kernels),
        stride_((static_cast<size_t>(items_->cols()) + kernels::kCodeStrideAlign - 1) /
                kernels::kCodeStrideAlign * kernels::kCodeStrideAlign) {
    Encode();
  }

  std::vector<ScoredIndex> TopK(absl::Span<const float> query, int k,
                                const ItemBitset* exclude) const override {
    const size_t n = num_items();
    if (k <= 0 || n == 0 || !ValidQuery(query, dim())) return {};
    const size_t d = static_cast<size_t>(dim());

    // Query in code space: fold the column scales in, then round to int8.
    std::vector<int8_t> qcodes(stride_, 0);
    float qmax = 0.0f;
    std::vector<float> folded(d);
    for (size_t j = 0; j < d; ++j) {
      folded[j] = query[j] * col_scales_[j];
      qmax = std::max(qmax, std::fabs(folded[j]));
    }
    const float qscale = qmax > 0.0f ? qmax / 127.0f : 1.0f;
    for (size_t j = 0; j < d; ++j) {
      qcodes[j] = static_cast<int8_t>(std::clamp(std::lrint(folded[j] / qscale), -127L, 127L));
    }

    const size_t kk = std::min(static_cast<size_t>(k), n);
    const size_t candidates = std::min(
        n, std::max(kk * static_cast<size_t>(options_.quantized.rerank_factor),
                    kk + static_cast<size_t>(options_.quantized.rerank_min)));
    const int8_t* codes = codes_.data();
    const float* row_scales = row_scales_.data();
    const size_t stride = stride_;
    const kernels::Int8DotFilterFn scan = kernels_.int8_dot_filter;
    std::vector<ScoredIndex> approx = PartitionedTopK(
        n, stride_ + sizeof(float), options_.num_threads, candidates,
        [&](const RowRange& range, TopKHeap& heap) {
          ScanRange(range.begin, range.end, exclude, heap,
                    [&](size_t first, size_t rows, float threshold, float* out_scores,
                        uint32_t* out_rows) {
                      return scan(codes + first * stride, row_scales + first, rows, stride,
                                  qcodes.data(), qscale, threshold, out_scores, out_rows);
                    });
        });

    // Exact re-rank (candidates are already filtered by `exclude`). Visiting them in item order
    // keeps the row reads as sequential as the candidates allow.
    std::sort(approx.begin(), approx.end(),
              [](const ScoredIndex& a, const ScoredIndex& b) { return a.item < b.item; });
    TopKHeap heap(kk);
    const float* items = items_->data();
    for (const ScoredIndex& c : approx) {
      heap.Push(kernels_.dot(items + static_cast<size_t>(c.item) * d, query.data(), d), c.item);
    }
    return heap.TakeSorted();
  }

  size_t num_items() const override { return static_cast<size_t>(items_->rows()); }
  int dim() const override { return static_cast<int>(items_->cols()); }
  std::string Describe() const override {
    return absl::StrCat("int8/", kernels_.isa, "/threads=", options_.num_threads, "/rerank=",
                        options_.quantized.rerank_factor, "k+", options_.quantized.rerank_min);
  }

 private:
  void Encode() {
    const size_t n = num_items();
    const size_t d = static_cast<size_t>(dim());
    col_scales_.assign(d, 0.0f);
    for (size_t i = 0; i < n; ++i) {
      const float* row = items_->data() + i * d;
      for (size_t j = 0; j < d; ++j) col_scales_[j] = std::max(col_scales_[j], std::fabs(row[j]));
    }
    for (float& s : col_scales_) {
      if (s == 0.0f) s = 1.0f;  // an all-zero dimension: any scale encodes it exactly
    }
    codes_.assign(n * stride_, 0);
    row_scales_.assign(n, 0.0f);
    std::vector<float> y(d);
    for (size_t i = 0; i < n; ++i) {
      const float* row = items_->data() + i * d;
      float m = 0.0f;
      for (size_t j = 0; j < d; ++j) {
        y[j] = row[j] / col_scales_[j];
        m = std::max(m, std::fabs(y[j]));
      }
      if (m == 0.0f) continue;  // zero row: zero codes, zero scale
      const float scale = m / 127.0f;
      row_scales_[i] = scale;
      int8_t* c = codes_.data() + i * stride_;
      for (size_t j = 0; j < d; ++j) {
        c[j] = static_cast<int8_t>(std::clamp(std::lrint(y[j] / scale), -127L, 127L));
      }
    }
  }

  std::shared_ptr<const EmbeddingMatrix> items_;
  ScorerOptions options_;
  const kernels::KernelTable& kernels_;
  size_t stride_;                  // bytes per code row: d rounded up to kCodeStrideAlign
  std::vector<int8_t> codes_;      // num_items x stride_, zero padded
  std::vector<float> row_scales_;  // num_items
  std::vector<float> col_scales_;  // dim
};

}  // namespace

std::unique_ptr<ItemScorer> NewQuantizedScorer(std::shared_ptr<const EmbeddingMatrix> items,
                                               const ScorerOptions& options,
                                               const kernels::KernelTable& kernels) {
  return std::make_unique<QuantizedScorer>(std::move(items), options, kernels);
}

}  // namespace scorer_internal
}  // namespace recd
