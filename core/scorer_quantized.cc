// int8 scan + exact float32 re-rank.
//
// Encoding. Trained factors have very different ranges per dimension (SVD: the leading singular
// directions dominate) and per item (popular items have larger norms), so both are factored out
// before rounding: x_ij ~= row_scale_i * col_scale_j * code_ij with col_scale_j = max_i |x_ij|
// and row_scale_i = max_j |x_ij / col_scale_j| / 127, codes in [-127, 127]. The column scales
// are folded into the query (q'_j = q_j * col_scale_j), which is then rounded to int8 with its
// own scale, so the scan is a pure int8 x int8 dot product: exact integer sums, one float
// multiply per item, d + 4 bytes read per item instead of 4d. The query is rounded twice: a
// second int8 code holds what the first rounded off, kernels::kQueryFineSteps (128) times finer,
// and the kernel takes both dot products from the same loaded item codes. The query's rounding
// error then all but vanishes from the bounds below (with one code it was about two thirds of
// the exact mode's slack on trained factors, and the slack decides how many rows need a float32
// dot).
//
// Approximate mode (quantized.exact = false) keeps the best max(k * rerank_factor, k +
// rerank_min) items by approximate score and re-scores them with the float32 kernel.
//
// Exact mode. Write x^_i for the decoded row (row_scale_i * col_scale_j * code_ij, a real
// number), e_i = x_i - x^_i, f_j = q_j * col_scale_j, g = 128 g_coarse + g_fine the query's two
// codes combined (an integer vector) with scale t (the fine unit), and a_i = row_scale_i * t *
// <g, code_i> the int8 score. In real arithmetic
//   q.x_i = q.x^_i + q.e_i,    q.x^_i = row_scale_i <f, code_i> = a_i + row_scale_i <f - t g, code_i>
// and the float32 kernel's score s_i differs from q.x_i by at most (d + 2) u |q| |x_i| for any
// summation order (u = 2^-24). With residual_i = |e_i| + (d + 2) u |x_i|, by Cauchy-Schwarz
//   |s_i - a_i| <= |q| residual_i + |f - t g| row_scale_i |code_i|                 (1)
// The int8 kernel filters every row by an upper bound from (1) that scales with the row scale,
// (int8 dot + offset) * row_scale_i * t, using the maxima over rows of residual_i / row_scale_i
// and |code_i| (rounding errors are proportional to the row scale, so these maxima are tight for
// every row, popular or not). The rows that pass (on trained factors a few hundred of a scan's
// rows) are scored with the float32 kernel the exact scorer uses, and the scan keeps the k best
// of these exact scores; L, the k-th of them, only rises, and a row whose upper bound is below
// L cannot be in the top k. The answer is the exact scorer's, bit for bit: the same scores of
// the same kernel, ranked by the same order.
//
// (An earlier version bounded the passing rows' scores from their codes in double and re-scored
// the survivors at the end, to keep the scan's reads sequential. The bounds cost more than the
// float rows they saved reading: ~240 double dots, bound arithmetic and two heaps per query on
// the load benchmark's 10k-item model, against ~100 float32 dots now.)
//
// Early stop. Rows are stored in decreasing order of their norms, and every float32 score obeys
// s_i <= |q| |x_i| (1 + (d + 2) u) (+ the subnormal slack). Before each block the scan compares
// that bound for the block's first (largest) norm with L: once it is strictly below, no row from
// there on can be in the top k, even on a tie, and the scan stops. Trained factors have very
// unequal norms (popular items are long vectors), so on a pure_svd model of the load benchmark
// (100k items, rank 64) only about 1.4 % of the rows can reach the 10th best score and the scan
// reads a small part of the codes. Every bound carries slack for the float and double arithmetic
// that computes it; any non-finite intermediate (overflowing embeddings) sends the query to the
// exact scan.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/scorer_internal.h"

namespace recd {
namespace scorer_internal {
namespace {

// The query in code space: column scales folded in, rounded to int8 in units of
// kQueryFineSteps * scale (codes), and what that left rounded again in units of scale (fine), so
// f ~= scale * (kQueryFineSteps * codes + fine) (see kernels::Int8DotFilterFn).
struct QueryCodes {
  std::vector<int8_t> codes;  // stride_ entries, zero padded
  std::vector<int8_t> fine;   // stride_ entries, zero padded
  float scale = 1.0f;
  double rounding_norm = 0.0;  // |f - scale * (kQueryFineSteps * codes + fine)|, f_j = q_j * col_scale_j (real)
};

struct ExactPartition;
struct ExactScreen;
struct ScreenState;

class QuantizedScorer final : public ItemScorer {
 public:
  QuantizedScorer(std::shared_ptr<const EmbeddingMatrix> items, const ScorerOptions& options,
                  const kernels::KernelTable& kernels)
      : items_(std::move(items)),
        options_(options),
        kernels_(kernels),
        stride_((static_cast<size_t>(items_->cols()) + kernels::kCodeGroup - 1) /
                kernels::kCodeGroup * kernels::kCodeGroup) {
    Encode();
    if (options_.huge_pages) {
      AdviseHugePages(codes_.data(), codes_.size());
      AdviseHugePages(row_scales_.data(), row_scales_.size() * sizeof(float));
    }
    exact_ = NewExactScorer(items_, options_, kernels_);
  }

  std::vector<ScoredIndex> TopK(absl::Span<const float> query, int k,
                                const ItemBitset* exclude) const override {
    const size_t n = num_items();
    if (k <= 0 || n == 0 || !ValidQuery(query, dim())) return {};
    const QueryCodes qc = EncodeQuery(query);
    const size_t kk = std::min(static_cast<size_t>(k), n);
    if (options_.quantized.exact) return ExactTopK(query, qc, kk, exclude);
    return ApproximateTopK(query, qc, kk, exclude);
  }

  // Exact mode screens every query of a batch over shared, cache-resident row blocks (see
  // ExactTopKBatch): TopK's answers for each query. The approximate mode's batches are the
  // exact scorer's blocked float product.
  std::vector<std::vector<ScoredIndex>> TopKBatch(
      const EmbeddingMatrix& queries, int k,
      absl::Span<const ItemBitset* const> excludes) const override {
    const size_t n = num_items();
    if (!options_.quantized.exact || queries.rows() < 2 || k <= 0 || n == 0 || queries.cols() != dim()) {
      return options_.quantized.exact ? ItemScorer::TopKBatch(queries, k, excludes)
                                      : exact_->TopKBatch(queries, k, excludes);
    }
    return ExactTopKBatch(queries, std::min(static_cast<size_t>(k), n), excludes);
  }

  size_t num_items() const override { return static_cast<size_t>(items_->rows()); }
  int dim() const override { return static_cast<int>(items_->cols()); }
  std::string Describe() const override {
    if (options_.quantized.exact) {
      return absl::StrCat("int8-exact/", kernels_.isa, "/threads=", options_.num_threads);
    }
    return absl::StrCat("int8/", kernels_.isa, "/threads=", options_.num_threads, "/rerank=",
                        options_.quantized.rerank_factor, "k+", options_.quantized.rerank_min);
  }

 private:
  // Code j of row `item` is codes_[RowStart(item) + CodeOffset(j)] (the blocked layout of
  // core/kernels/kernels.h).
  size_t RowStart(size_t item) const {
    return (item / kernels::kCodeBlockRows) * kernels::kCodeBlockRows * stride_ +
           (item % kernels::kCodeBlockRows) * kernels::kCodeGroup;
  }
  static size_t CodeOffset(size_t j) {
    return (j / kernels::kCodeGroup) * kernels::kCodeBlockRows * kernels::kCodeGroup +
           j % kernels::kCodeGroup;
  }


  QueryCodes EncodeQuery(absl::Span<const float> query) const {
    const size_t d = static_cast<size_t>(dim());
    QueryCodes qc;
    qc.codes.assign(stride_, 0);
    qc.fine.assign(stride_, 0);
    // f_j = q_j * col_scale_j, computed where it is needed (the same float product both times).
    float qmax = 0.0f;
    for (size_t j = 0; j < d; ++j) qmax = std::max(qmax, std::fabs(query[j] * col_scales_[j]));
    // (At least the smallest subnormal: a query this tiny would otherwise divide by zero below;
    // its codes are then zero and its rounding norm all of it, so the bounds still hold.)
    qc.scale = std::max((qmax > 0.0f ? qmax / 127.0f : 1.0f) / kernels::kQueryFineSteps,
                        std::numeric_limits<float>::denorm_min());
    // The coarse unit as the kernel sees it (exactly kQueryFineSteps fine units).
    const float coarse = qc.scale * kernels::kQueryFineSteps;
    double sq = 0.0;
    for (size_t j = 0; j < d; ++j) {
      qc.codes[j] = static_cast<int8_t>(
          std::clamp(std::lrint(query[j] * col_scales_[j] / coarse), -127L, 127L));
      // The real folded value (a product of two floats is exact in double), not its float; a
      // float times a code is exact in double too.
      const double left = static_cast<double>(query[j]) * col_scales_[j] - static_cast<double>(coarse) * qc.codes[j];
      qc.fine[j] = static_cast<int8_t>(std::clamp(std::lrint(left / qc.scale), -127L, 127L));
      const double r = left - static_cast<double>(qc.scale) * qc.fine[j];
      sq += r * r;
    }
    qc.rounding_norm = std::sqrt(sq);
    return qc;
  }

  std::vector<ScoredIndex> ExactTopK(absl::Span<const float> query, const QueryCodes& qc,
                                     size_t kk, const ItemBitset* exclude) const;
  std::vector<std::vector<ScoredIndex>> ExactTopKBatch(
      const EmbeddingMatrix& queries, size_t kk, absl::Span<const ItemBitset* const> excludes) const;
  // Exact mode's pieces: the per-query constants (nullopt when the bounds would not be finite or
  // would underflow: the exact scan answers), one kernel block screened into a partition's state,
  // and the merge of the partitions' top k.
  std::optional<ExactScreen> MakeScreen(absl::Span<const float> query, const QueryCodes& qc) const;
  // shared_lower: the k-th best score another thread of the query has found (NaN: none).
  void ScreenBlock(const ExactScreen& screen, size_t first, size_t m, const ItemBitset* exclude,
                   float shared_lower, ExactPartition& state, float* scores, uint32_t* rows) const;
  // The kernel threshold for a k-th best score (see its definition).
  static float KernelThreshold(float lower);
  // True when no row at position `first` or later can reach the partition's k-th best score
  // (its scan can stop).
  bool BelowLowerBound(const ExactScreen& screen, size_t first, const ExactPartition& state,
                       float shared_lower) const;
  // Screens each query (screens[i], excludes[i]) over the row blocks on up to num_threads
  // threads; returns every thread's part of every query, for FinishExact.
  ScreenState ScreenQueries(absl::Span<const ExactScreen* const> screens,
                            absl::Span<const ItemBitset* const> excludes, size_t kk) const;
  // Query i's answer from its threads' parts (consumes them).
  std::vector<ScoredIndex> FinishExact(absl::Span<const float> query, size_t kk,
                                       const ItemBitset* exclude, ScreenState& state,
                                       size_t i) const;

  std::vector<ScoredIndex> ApproximateTopK(absl::Span<const float> query, const QueryCodes& qc,
                                           size_t kk, const ItemBitset* exclude) const {
    const size_t n = num_items();
    const size_t d = static_cast<size_t>(dim());
    const size_t candidates = std::min(
        n, std::max(kk * static_cast<size_t>(options_.quantized.rerank_factor),
                    kk + static_cast<size_t>(options_.quantized.rerank_min)));
    const int8_t* codes = codes_.data();
    const float* row_scales = row_scales_.data();
    const size_t stride = stride_;
    const kernels::Int8DotFilterFn scan = kernels_.int8_dot_filter;
    const int8_t* qcodes = qc.codes.data();
    const int8_t* qfine = qc.fine.data();
    const float qscale = qc.scale;
    std::vector<ScoredIndex> approx = PartitionedTopK(
        n, stride_ + sizeof(float), options_.num_threads, candidates,
        [&](const RowRange& range, TopKHeap& heap) {
          float scores[kScanBlockRows];
          uint32_t rows[kScanBlockRows];
          for (size_t first = range.begin, m = 0, block = FirstScanBlock(heap.capacity());
               first < range.end; first += m, block = NextScanBlock(block)) {
            m = std::min(block, range.end - first);
            const size_t count = scan(codes + first * stride, row_scales + first, m, stride, qcodes,
                                      qfine, qscale, 0.0f, heap.threshold(), scores, rows);
            for (size_t c = 0; c < count; ++c) {
              const ItemIndex item = order_[first + rows[c]];
              if (exclude != nullptr && exclude->Test(item)) continue;
              heap.Push(scores[c], item);
            }
          }
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
    // Positions in decreasing order of the rows' norms (ties: lower item first), so a scan can
    // stop once no later row's norm can reach the k-th best score.
    std::vector<double> norms(n);
    for (size_t i = 0; i < n; ++i) {
      const float* row = items_->data() + i * d;
      double x2 = 0.0;
      for (size_t j = 0; j < d; ++j) x2 += static_cast<double>(row[j]) * row[j];
      norms[i] = std::sqrt(x2);
    }
    order_.resize(n);
    for (size_t i = 0; i < n; ++i) order_[i] = static_cast<ItemIndex>(i);
    std::sort(order_.begin(), order_.end(), [&](ItemIndex a, ItemIndex b) {
      return norms[a] > norms[b] || (norms[a] == norms[b] && a < b);
    });
    norm_at_.resize(n);
    // Rounded up by the double computation's own relative error.
    for (size_t p = 0; p < n; ++p) norm_at_[p] = norms[order_[p]] * (1.0 + 1e-12);

    const size_t blocks = (n + kernels::kCodeBlockRows - 1) / kernels::kCodeBlockRows;
    codes_.assign(blocks * kernels::kCodeBlockRows * stride_, 0);
    row_scales_.assign(n, 0.0f);
    std::vector<float> y(d);
    for (size_t i = 0; i < n; ++i) {  // i: position; the row is item order_[i]
      const float* row = items_->data() + static_cast<size_t>(order_[i]) * d;
      float m = 0.0f;
      for (size_t j = 0; j < d; ++j) {
        y[j] = row[j] / col_scales_[j];
        m = std::max(m, std::fabs(y[j]));
      }
      if (m == 0.0f) continue;  // zero row: zero codes, zero scale
      const float scale = m / 127.0f;
      row_scales_[i] = scale;
      int8_t* c = codes_.data() + RowStart(i);
      for (size_t j = 0; j < d; ++j) {
        c[CodeOffset(j)] = static_cast<int8_t>(std::clamp(std::lrint(y[j] / scale), -127L, 127L));
      }
    }
    EncodeBounds();
  }

  // The maxima over rows of residual_i / row_scale_i and |code_i| (see the top of this file).
  // Computed in double from the stored floats and codes, with margin.
  void EncodeBounds() {
    const size_t n = num_items();
    const size_t d = static_cast<size_t>(dim());
    const double fp = (static_cast<double>(d) + 2.0) * kUnitRoundoff;
    for (size_t i = 0; i < n; ++i) {  // i: position
      const float* row = items_->data() + static_cast<size_t>(order_[i]) * d;
      const int8_t* c = codes_.data() + RowStart(i);
      double e2 = 0.0, x2 = 0.0, c2 = 0.0;
      for (size_t j = 0; j < d; ++j) {
        const double x = row[j];
        const int8_t code = c[CodeOffset(j)];
        const double decoded = static_cast<double>(row_scales_[i]) * col_scales_[j] * code;
        e2 += (x - decoded) * (x - decoded);
        x2 += x * x;
        c2 += static_cast<double>(code) * code;
      }
      const double residual = (std::sqrt(e2) + fp * std::sqrt(x2)) * kMargin;
      // Relative to the row scale: rounding errors scale with it, so these maxima are close
      // to every row's own value (unlike the absolute bounds, which popular items dominate).
      if (row_scales_[i] > 0.0f) {
        min_row_scale_ = std::min(min_row_scale_, static_cast<double>(row_scales_[i]));
        max_residual_per_scale_ = std::max(
            max_residual_per_scale_,
            residual / static_cast<double>(row_scales_[i]) * kMargin);
      }
      max_code_length_ = std::max(max_code_length_, std::sqrt(c2) * kMargin);
    }
  }

  // The smallest float >= x, for any finite x (+inf when it does not fit; nextafter only when
  // the conversion rounded the wrong way).
  static float RoundUp(double x) {
    float f = static_cast<float>(x);
    if (static_cast<double>(f) < x) f = std::nextafter(f, std::numeric_limits<float>::infinity());
    return f;
  }

  static constexpr double kUnitRoundoff = 0x1.0p-24;  // float32
  // Relative slack on every bound for the double arithmetic that computes it.
  static constexpr double kMargin = 1.0 + 1e-9;

  std::shared_ptr<const EmbeddingMatrix> items_;
  ScorerOptions options_;
  const kernels::KernelTable& kernels_;
  size_t stride_;                  // codes per row: d rounded up to kernels::kCodeGroup
  // Rows are stored by position, in decreasing order of their norms: position p holds item
  // order_[p], and norm_at_[p] >= |x_{order_[p]}| (so norm_at_ is non-increasing). codes_ and
  // row_scales_ are indexed by position.
  std::vector<ItemIndex> order_;
  std::vector<double> norm_at_;
  // Rows of stride_ codes in the blocked layout of core/kernels/kernels.h (blocks of
  // kCodeBlockRows rows, the last one zero padded), zero padded past d.
  std::vector<int8_t> codes_;
  std::vector<float> row_scales_;  // num_items
  std::vector<float> col_scales_;  // dim
  // Exact mode: max over rows with a non-zero scale of residual_i / row_scale_i, and of
  // |code_i|: so that row_scale_i * (|q| max_residual_per_scale_ + |f - t g| max_code_length_)
  // bounds (1).
  double max_residual_per_scale_ = 0.0;
  double max_code_length_ = 0.0;
  double min_row_scale_ = std::numeric_limits<double>::infinity();  // over non-zero rows
  // The plain float32 scan, for queries whose bounds do not come out finite.
  std::unique_ptr<ItemScorer> exact_;
};

// One partition's state in exact mode: the k best exact scores of the rows it screened.
struct ExactPartition {
  explicit ExactPartition(size_t k) : top(k) {}
  TopKHeap top;
  bool overflow = false;  // a score was not finite: use the exact scan
  bool stopped = false;   // no later block can reach L
};

// Every thread's part of every query of one screen: part(t, i) is thread t's part of query i.
struct ScreenState {
  ScreenState(size_t threads, size_t nq, size_t k) : threads(threads), nq(nq) {
    parts.reserve(threads * nq);
    for (size_t p = 0; p < threads * nq; ++p) parts.emplace_back(k);
  }
  ExactPartition& part(size_t t, size_t i) { return parts[t * nq + i]; }
  size_t threads, nq;
  std::vector<ExactPartition> parts;
};

// Per-query constants of exact mode (see the top of this file).
struct ExactScreen {
  const QueryCodes* qc = nullptr;
  absl::Span<const float> query;
  double qnorm = 0.0;  // |q|, with margin
  double underflow_slack = 0.0;
  float offset = 0.0f;            // the kernel's upper-bound offset, in integer-dot units
  // Bounds every float32 score from a row's norm: s_i <= |x_i| * norm_factor + underflow_slack.
  double norm_factor = 0.0;
};

std::optional<ExactScreen> QuantizedScorer::MakeScreen(absl::Span<const float> query,
                                                       const QueryCodes& qc) const {
  const size_t d = static_cast<size_t>(dim());
  ExactScreen sc;
  sc.qc = &qc;
  sc.query = query;
  double q2 = 0.0;
  for (float x : query) q2 += static_cast<double>(x) * x;
  sc.qnorm = std::sqrt(q2) * kMargin;
  const double qrounding = qc.rounding_norm * kMargin;
  // The kernel filters by an upper bound: (int8 dot + offset) * row_scale * t, where the offset
  // (in units of the integer dot <g, code_i>, g = 128 g_coarse + g_fine) covers bound (1) of
  // every row, so rows that fail it are below the running L. Slack for the float arithmetic of
  // a_i (4u|a_i| <= 4u 129 127^2 d row_scale t: |<g, code_i>| <= (128 + 1) 127^2 d), the
  // kernel's own rounding of the sum and products, and the threshold's.
  const double offset_d =
      (sc.qnorm * max_residual_per_scale_ + qrounding * max_code_length_) / qc.scale * (1.0 + 1e-6) +
      16.0 * kUnitRoundoff * (kernels::kQueryFineSteps + 1.0) * 127.0 * 127.0 * static_cast<double>(d);
  if (!std::isfinite(offset_d) || offset_d > 1e30) return std::nullopt;
  // The float32 kernel's products and sums may fall into float's subnormal range, where the
  // relative bound (d + 2) u |q| |x_i| does not hold: each of its ~2d roundings then errs by
  // at most half the smallest subnormal, 2^-150.
  sc.underflow_slack = (2.0 * static_cast<double>(d) + 2.0) * 0x1.0p-150;
  // The kernel's upper bound multiplies by the row and query scales in float: keep it out of
  // the subnormal range too (embeddings this small take the exact scan).
  if (static_cast<double>(qc.scale) * min_row_scale_ < 0x1.0p-100) return std::nullopt;
  sc.offset = RoundUp(offset_d);
  // |s_i - q.x_i| <= (d + 2) u |q| |x_i| (see the top of this file), and q.x_i <= |q| |x_i|.
  sc.norm_factor = sc.qnorm * (1.0 + (static_cast<double>(d) + 2.0) * kUnitRoundoff) * kMargin;
  return sc;
}

// The kernel threshold for a k-th best score L: a kernel upper bound at or below it is strictly
// below L, with slack for the float arithmetic of the bound itself. NaN (no L yet) passes every
// row.
float QuantizedScorer::KernelThreshold(float lower) {
  if (std::isnan(lower)) return lower;
  const double t = static_cast<double>(lower) - 8.0 * kUnitRoundoff * std::fabs(lower);
  float threshold = static_cast<float>(t);
  if (static_cast<double>(threshold) >= t) {
    threshold = std::nextafter(threshold, -std::numeric_limits<float>::infinity());
  }
  return threshold;
}

// The higher of two k-th best scores (NaN: none yet).
float HigherBound(float a, float b) { return std::isnan(a) || b > a ? b : a; }

void QuantizedScorer::ScreenBlock(const ExactScreen& sc, size_t first, size_t m,
                                  const ItemBitset* exclude, float shared_lower, ExactPartition& st,
                                  float* scores, uint32_t* rows) const {
  // Rows whose kernel upper bound is at or below the threshold are below L, the partition's or
  // the query's other threads' k-th best score, whichever is higher (NaN while neither has k:
  // every row passes).
  float lower = HigherBound(st.top.threshold(), shared_lower);
  float threshold = KernelThreshold(lower);
  const QueryCodes& qc = *sc.qc;
  const size_t count = kernels_.int8_dot_filter(codes_.data() + first * stride_, row_scales_.data() + first,
                                                m, stride_, qc.codes.data(), qc.fine.data(), qc.scale, sc.offset,
                                                threshold, scores, rows);
  const size_t d = static_cast<size_t>(dim());
  const float* items = items_->data();
  auto prefetch = [&](const uint32_t* cs, size_t n) {
    // The candidates' float rows are scattered (item order): request them all before the first
    // is needed.
    for (size_t i = 0; i < n; ++i) {
      const char* row = reinterpret_cast<const char*>(items + static_cast<size_t>(order_[first + rows[cs[i]]]) * d);
      for (size_t b = 0; b < d * sizeof(float); b += 64) __builtin_prefetch(row + b);
    }
  };
  // Scores the candidates cs[0, n) in turn; false on a non-finite score.
  auto score = [&](const uint32_t* cs, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const uint32_t c = cs[i];
      // L rises while rows are pushed: rows that passed against an earlier L may be below the
      // current one, which a float compare tells.
      if (const float l = HigherBound(st.top.threshold(), shared_lower); l != lower && !std::isnan(l)) {
        lower = l;
        threshold = KernelThreshold(l);
      }
      if (scores[c] <= threshold) continue;
      const ItemIndex item = order_[first + rows[c]];
      const float s = kernels_.dot(items + static_cast<size_t>(item) * d, sc.query.data(), d);
      if (!std::isfinite(s)) return false;
      st.top.Push(s, item);
    }
    return true;
  };
  // Excluded rows are dropped first: a user's history holds many of the long (popular) vectors
  // the scan starts with.
  uint32_t cand[kScanBlockRows];
  size_t num = 0;
  for (uint32_t c = 0; c < count; ++c) {
    cand[num] = c;
    num += exclude == nullptr || !exclude->Test(order_[first + rows[c]]);
  }
  // Best bound first: the k candidates with the highest bounds are scored first, so L rises to
  // about the block's k-th best score after k dots and the others are tested against that, not
  // against the L the block started with. The heap keeps the same k best whatever the order.
  const size_t kk = st.top.capacity();
  size_t head = num;
  if (num > kk) {
    head = kk;
    std::nth_element(cand, cand + kk, cand + num, [&](uint32_t a, uint32_t b) {
      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    });
  }
  prefetch(cand, head);
  if (!score(cand, head)) {
    st.overflow = true;
    return;
  }
  if (head == num) return;
  // The rest: those still above the raised threshold (all of them while L is unknown),
  // requested together, then scored.
  if (const float l = HigherBound(st.top.threshold(), shared_lower); l != lower && !std::isnan(l)) {
    lower = l;
    threshold = KernelThreshold(l);
  }
  size_t rest = 0;
  for (size_t i = head; i < num; ++i) {
    if (!(scores[cand[i]] <= threshold)) cand[head + rest++] = cand[i];
  }
  prefetch(cand + head, rest);
  if (!score(cand + head, rest)) st.overflow = true;
}

bool QuantizedScorer::BelowLowerBound(const ExactScreen& sc, size_t first, const ExactPartition& st,
                                      float shared_lower) const {
  // Rows are in decreasing norm order: when the row at `first` cannot score L, no later one can.
  // Strictly below L, which is at most the k-th best exact score: such a row cannot be in the top
  // k, not even on a tie. L: this thread's k-th best score or the best one shared by the query's
  // other threads, whichever is higher (each is at most the k-th best exact score).
  const float l = HigherBound(st.top.threshold(), shared_lower);
  if (std::isnan(l) || first >= norm_at_.size()) return false;
  return norm_at_[first] * sc.norm_factor + sc.underflow_slack < static_cast<double>(l);
}

std::vector<ScoredIndex> QuantizedScorer::FinishExact(absl::Span<const float> query, size_t kk,
                                                      const ItemBitset* exclude, ScreenState& state,
                                                      size_t i) const {
  for (size_t t = 0; t < state.threads; ++t) {
    if (state.part(t, i).overflow) return exact_->TopK(query, static_cast<int>(kk), exclude);
  }
  // Every row of the top k is in its partition's top k (a row is left out only when its bound
  // is below a k-th best score).
  return MergeTopK(kk, state.threads, [&](size_t t) -> TopKHeap& { return state.part(t, i).top; });
}

// The blocks of the exact screen in position order (FirstScanBlock, NextScanBlock): L becomes
// finite early and is refreshed often while it matters. Computed, not listed: a query on a
// large catalogue would otherwise build a list of a thousand blocks it mostly never reaches.
class ScanBlocks {
 public:
  ScanBlocks(size_t n, size_t kk) : n_(n) {
    // The growing blocks (at most log2(kScanBlockRows / 32) + 1 of them), then full ones.
    size_t first = 0, block = FirstScanBlock(kk);
    for (; block < kScanBlockRows && first < n; first += block, block = NextScanBlock(block)) {
      starts_[num_growing_++] = first;
    }
    steady_begin_ = std::min(first, n);
    size_ = num_growing_ + (n - steady_begin_ + kScanBlockRows - 1) / kScanBlockRows;
  }
  size_t size() const { return size_; }
  RowRange operator[](size_t b) const {
    if (b < num_growing_) {
      return {starts_[b], b + 1 < num_growing_ ? starts_[b + 1] : steady_begin_};
    }
    const size_t begin = steady_begin_ + (b - num_growing_) * kScanBlockRows;
    return {begin, std::min(n_, begin + kScanBlockRows)};
  }

 private:
  size_t n_;
  size_t starts_[16] = {};
  size_t num_growing_ = 0;
  size_t steady_begin_ = 0;  // where the kScanBlockRows blocks start
  size_t size_ = 0;
};

// Rows the calling thread screens alone before it starts threads (1 MB of codes at d = 64, about
// the cost of starting one): with rows in decreasing norm order most queries on trained
// embeddings stop inside them, and then no thread is started.
constexpr size_t kSerialPrefixRows = 16384;

// The number of leading blocks that hold the serial prefix.
size_t SerialPrefixBlocks(const ScanBlocks& blocks) {
  size_t b = 0;
  while (b < blocks.size() && blocks[b].begin < kSerialPrefixRows) ++b;
  return b;
}

// The k-th best score known across a query's threads: each thread's own is at most the k-th best
// exact score of the whole scan, so their maximum is too. NaN until one thread has k.
class SharedLowerBound {
 public:
  float Get() const { return value_.load(std::memory_order_relaxed); }
  void Offer(float l) {
    if (std::isnan(l)) return;
    float cur = value_.load(std::memory_order_relaxed);
    while ((std::isnan(cur) || l > cur) &&
           !value_.compare_exchange_weak(cur, l, std::memory_order_relaxed)) {
    }
  }

 private:
  std::atomic<float> value_{std::numeric_limits<float>::quiet_NaN()};
};

// Threads take the blocks round-robin, so each scans from the largest norms down and all of them
// can stop early (contiguous partitions would leave the small norms to one thread that could
// rarely stop); they share their lower bounds. The calling thread screens the serial prefix
// alone first. A batch screens every query over each block in turn: a block's codes (64 KB at
// d = 64) are read from memory once and stay in the L2 cache while each query scans them.
ScreenState QuantizedScorer::ScreenQueries(absl::Span<const ExactScreen* const> screens,
                                           absl::Span<const ItemBitset* const> excludes,
                                           size_t kk) const {
  const size_t n = num_items();
  const size_t nq = screens.size();
  const size_t threads = SplitRows(n, stride_ + sizeof(float), options_.num_threads).size();
  const ScanBlocks blocks(n, kk);
  ScreenState state(threads, nq, kk);
  // One query's threads share their k-th best scores (none to share on one thread).
  std::vector<SharedLowerBound> shared(threads > 1 ? nq : 0);
  // Scans blocks [from, to) by `step` for every query into thread t's states; false once every
  // query has stopped there.
  auto scan = [&](size_t t, size_t from, size_t to, size_t step) {
    float scores[kScanBlockRows];
    uint32_t rows[kScanBlockRows];
    for (size_t b = from; b < to; b += step) {
      const RowRange block = blocks[b];
      const size_t first = block.begin, m = block.end - block.begin;
      bool any = false;
      for (size_t i = 0; i < nq; ++i) {
        ExactPartition& st = state.part(t, i);
        if (st.overflow || st.stopped) continue;
        const float shared_lower = threads > 1 ? shared[i].Get() : std::numeric_limits<float>::quiet_NaN();
        if (BelowLowerBound(*screens[i], first, st, shared_lower)) {
          st.stopped = true;
          continue;
        }
        ScreenBlock(*screens[i], first, m, excludes[i], shared_lower, st, scores, rows);
        any = any || !st.overflow;
        if (threads > 1) shared[i].Offer(st.top.threshold());
      }
      if (!any) return false;
    }
    return true;
  };
  const size_t prefix = threads > 1 ? SerialPrefixBlocks(blocks) : 0;
  if ((prefix == 0 || scan(0, 0, prefix, 1)) && prefix < blocks.size()) {
    RunParallel(threads, [&](size_t t) { scan(t, prefix + t, blocks.size(), threads); });
  }
  return state;
}

std::vector<ScoredIndex> QuantizedScorer::ExactTopK(absl::Span<const float> query,
                                                    const QueryCodes& qc, size_t kk,
                                                    const ItemBitset* exclude) const {
  const std::optional<ExactScreen> screen = MakeScreen(query, qc);
  if (!screen.has_value()) return exact_->TopK(query, static_cast<int>(kk), exclude);
  const ExactScreen* screens[] = {&*screen};
  ScreenState state = ScreenQueries(screens, {&exclude, 1}, kk);
  return FinishExact(query, kk, exclude, state, 0);
}

// The batch's screens share each block of codes (ScreenQueries), so it reads the int8 codes once
// instead of once per query. Answers are those of TopK, query by query, bit for bit.
std::vector<std::vector<ScoredIndex>> QuantizedScorer::ExactTopKBatch(
    const EmbeddingMatrix& queries, size_t kk, absl::Span<const ItemBitset* const> excludes) const {
  const size_t nq = static_cast<size_t>(queries.rows());
  const size_t d = static_cast<size_t>(dim());
  auto exclude_for = [&](size_t q) -> const ItemBitset* { return q < excludes.size() ? excludes[q] : nullptr; };
  auto query_of = [&](size_t q) { return absl::Span<const float>(queries.row(static_cast<Eigen::Index>(q)).data(), d); };
  std::vector<std::vector<ScoredIndex>> out(nq);
  // Per query: its codes and screen; queries the screen cannot bound take the exact scan.
  std::vector<QueryCodes> codes(nq);
  std::vector<std::optional<ExactScreen>> screens(nq);
  std::vector<size_t> screened;
  for (size_t q = 0; q < nq; ++q) {
    if (!ValidQuery(query_of(q), dim())) continue;
    codes[q] = EncodeQuery(query_of(q));
    screens[q] = MakeScreen(query_of(q), codes[q]);
    if (screens[q].has_value()) {
      screened.push_back(q);
    } else {
      out[q] = exact_->TopK(query_of(q), static_cast<int>(kk), exclude_for(q));
    }
  }
  std::vector<const ExactScreen*> screen_ptrs;
  std::vector<const ItemBitset*> screen_excludes;
  for (size_t q : screened) {
    screen_ptrs.push_back(&*screens[q]);
    screen_excludes.push_back(exclude_for(q));
  }
  ScreenState state = ScreenQueries(screen_ptrs, screen_excludes, kk);
  for (size_t i = 0; i < screened.size(); ++i) {
    const size_t q = screened[i];
    out[q] = FinishExact(query_of(q), kk, exclude_for(q), state, i);
  }
  return out;
}

}  // namespace

std::unique_ptr<ItemScorer> NewQuantizedScorer(std::shared_ptr<const EmbeddingMatrix> items,
                                               const ScorerOptions& options,
                                               const kernels::KernelTable& kernels) {
  return std::make_unique<QuantizedScorer>(std::move(items), options, kernels);
}

}  // namespace scorer_internal
}  // namespace recd
