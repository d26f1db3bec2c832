#include "core/two_tower_net.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>

#include "absl/strings/str_cat.h"
#include "core/parallel_for.h"
#include "core/sgemm.h"

namespace recd::two_tower {
namespace {

// Chunks of a batch: fixed by the batch size alone, so results do not depend on threads.
int64_t NumChunks(int64_t rows) { return std::clamp<int64_t>(rows / 64, 1, 8); }

uint64_t Fnv1a64(const std::string& text) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

// c = a · b, or c += a · b; all row-major and contiguous. Float goes to the AVX2 kernel when
// the CPU has one; double (the gradient checks) stays on Eigen.
template <typename T>
void Gemm(int64_t m, int64_t n, int64_t k, const T* a, const T* b, T* c, bool accumulate) {
  using Map = Eigen::Map<const Mat<T>>;
  Eigen::Map<Mat<T>> cm(c, m, n);
  if (accumulate) {
    cm.noalias() += Map(a, m, k) * Map(b, k, n);
  } else {
    cm.noalias() = Map(a, m, k) * Map(b, k, n);
  }
}

template <>
void Gemm<float>(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
                 bool accumulate) {
  Sgemm(m, n, k, a, k, b, n, c, n, accumulate);
}

// c = aᵀ · b, or c += aᵀ · b, for a: k x m (so c: m x n), without materialising aᵀ.
template <typename T>
void GemmTransA(int64_t m, int64_t n, int64_t k, const T* a, const T* b, T* c, bool accumulate) {
  using Map = Eigen::Map<const Mat<T>>;
  Eigen::Map<Mat<T>> cm(c, m, n);
  if (accumulate) {
    cm.noalias() += Map(a, k, m).transpose() * Map(b, k, n);
  } else {
    cm.noalias() = Map(a, k, m).transpose() * Map(b, k, n);
  }
}

template <>
void GemmTransA<float>(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
                       bool accumulate) {
  SgemmTransA(m, n, k, a, m, b, n, c, n, accumulate);
}

// x[j] = exp(x[j] − shift) in place, returning the sum; exp(−inf) = 0. Float goes to the AVX2
// kernel when the CPU has one; double (the gradient checks) stays exact and scalar.
template <typename T>
T ExpShiftedSumOf(int64_t n, T shift, T* x) {
  T sum = T(0);
  for (int64_t j = 0; j < n; ++j) sum += (x[j] = std::exp(x[j] - shift));
  return sum;
}

template <>
float ExpShiftedSumOf<float>(int64_t n, float shift, float* x) {
  return ExpShiftedSum(n, shift, x);
}

// out = a · b (a: m x k, b: k x n).
template <typename T, typename A, typename B>
void Product(const A& a, const B& b, Mat<T>& out) {
  out.resize(a.rows(), b.cols());
  Gemm<T>(a.rows(), b.cols(), a.cols(), a.data(), b.data(), out.data(), false);
}

template <typename T>
struct Tower {
  const std::vector<typename NetView<T>::ConstMap>* w;
  const std::vector<typename NetView<T>::ConstMap>* b;
  const std::vector<Mat<T>>* wt;  // transposed weights, for the backward pass
};

// Activations of one tower over a chunk of rows.
template <typename T>
struct TowerCache {
  std::vector<Mat<T>> input;  // input[l] = input of layer l (input[0] = x)
  Mat<T> out;                 // last layer output, normalised when requested
  Vec<T> norm;                // row norms of the raw last layer output
};

template <typename T>
void TowerForward(const Tower<T>& t, Mat<T> x, bool normalize, TowerCache<T>& c) {
  const size_t layers = t.w->size();
  c.input.clear();
  c.input.push_back(std::move(x));
  for (size_t l = 0; l < layers; ++l) {
    Mat<T> z;
    Product<T>(c.input.back(), (*t.w)[l], z);
    z.rowwise() += (*t.b)[l].row(0);
    if (l + 1 < layers) {
      c.input.push_back(z.cwiseMax(T(0)));
    } else {
      c.out = std::move(z);
    }
  }
  c.norm = Vec<T>::Ones(c.out.rows());
  if (normalize) {
    for (int64_t r = 0; r < c.out.rows(); ++r) {
      const T n = c.out.row(r).norm();
      c.norm(r) = n;
      if (n > T(0)) c.out.row(r) /= n;
    }
  }
}

// Backward through one tower: adds weight gradients to dw/db (one per layer) and returns the
// gradient with respect to the input.
template <typename T>
Mat<T> TowerBackward(const Tower<T>& t, const TowerCache<T>& c, Mat<T> dout, bool normalize,
                     std::vector<Mat<T>>& dw, std::vector<Mat<T>>& db) {
  if (normalize) {
    for (int64_t r = 0; r < dout.rows(); ++r) {
      if (c.norm(r) > T(0)) {
        const T proj = c.out.row(r).dot(dout.row(r));
        dout.row(r) = (dout.row(r) - proj * c.out.row(r)) / c.norm(r);
      } else {
        dout.row(r).setZero();
      }
    }
  }
  Mat<T> dz = std::move(dout);
  for (size_t l = t.w->size(); l-- > 0;) {
    GemmTransA<T>(c.input[l].cols(), dz.cols(), dz.rows(), c.input[l].data(), dz.data(),
                  dw[l].data(), true);
    db[l].row(0) += dz.colwise().sum();
    Mat<T> dx;
    Product<T>(dz, (*t.wt)[l], dx);
    if (l == 0) return dx;
    // ReLU: input[l] = max(0, z_{l-1}); its derivative is 1 where the activation is > 0.
    dz = dx.cwiseProduct((c.input[l].array() > T(0)).template cast<T>().matrix());
  }
  return Mat<T>();
}

template <typename T>
std::vector<Mat<T>> ZerosLike(const std::vector<typename NetView<T>::ConstMap>& ms) {
  std::vector<Mat<T>> out;
  for (const auto& m : ms) out.push_back(Mat<T>::Zero(m.rows(), m.cols()));
  return out;
}

}  // namespace

Layout Layout::Make(const Shape& s) {
  Layout l;
  auto add = [&l](std::string name, int64_t rows, int64_t cols) {
    l.tensors.push_back({std::move(name), l.size, rows, cols});
    l.size += rows * cols;
    return static_cast<int>(l.tensors.size() - 1);
  };
  const int de = s.embedding_dim;
  l.item_id = add("item_id_emb", s.num_items, de);
  l.hist = add("hist_emb", s.num_items, de);
  l.user_id = add("user_id_emb", s.num_users, de);
  l.feature = add("feature_emb", std::max<int64_t>(1, s.feature_buckets), de);
  for (const char* tower : {"item", "user"}) {
    std::vector<int>& w = tower[0] == 'i' ? l.item_w : l.user_w;
    std::vector<int>& b = tower[0] == 'i' ? l.item_b : l.user_b;
    int64_t in = 2 * de;
    for (int layer = 0; layer <= s.hidden_layers; ++layer) {
      const int64_t out = layer < s.hidden_layers ? s.hidden_dim : s.dim;
      w.push_back(add(absl::StrCat(tower, "_w", layer), in, out));
      b.push_back(add(absl::StrCat(tower, "_b", layer), 1, out));
      in = out;
    }
  }
  return l;
}

template <typename T>
NetView<T> NetView<T>::FromFlat(const Layout& layout, const T* params) {
  NetView<T> v;
  auto map = [&](int index) {
    const Layout::Tensor& t = layout.tensors[index];
    return ConstMap(params + t.offset, t.rows, t.cols);
  };
  new (&v.item_id) ConstMap(map(layout.item_id));
  new (&v.hist) ConstMap(map(layout.hist));
  new (&v.user_id) ConstMap(map(layout.user_id));
  new (&v.feature) ConstMap(map(layout.feature));
  for (int i : layout.item_w) v.item_w.push_back(map(i));
  for (int i : layout.item_b) v.item_b.push_back(map(i));
  for (int i : layout.user_w) v.user_w.push_back(map(i));
  for (int i : layout.user_b) v.user_b.push_back(map(i));
  return v;
}

template <typename T>
T BatchLossAndGradient(const Layout& layout, const Shape& shape, const T* params,
                       const Lists& item_buckets, const Lists& histories,
                       absl::Span<const float> log_q, const LossConfig& config,
                       const BatchInput& batch, T* grad, int num_threads) {
  const NetView<T> net = NetView<T>::FromFlat(layout, params);
  std::vector<Mat<T>> item_wt, user_wt;
  for (const auto& w : net.item_w) item_wt.push_back(w.transpose());
  for (const auto& w : net.user_w) user_wt.push_back(w.transpose());
  const Tower<T> item_tower{&net.item_w, &net.item_b, &item_wt};
  const Tower<T> user_tower{&net.user_w, &net.user_b, &user_wt};
  const absl::Span<const Example> ex = batch.examples;
  const int64_t rows = static_cast<int64_t>(ex.size());
  const int de = shape.embedding_dim;
  const int64_t chunks = NumChunks(rows);
  const T inv_temp = T(1.0 / config.temperature);
  auto user_keep = [&](int64_t r) { return batch.user_id_keep.empty() ? T(1) : T(batch.user_id_keep[r]); };
  auto item_keep = [&](int64_t r) { return batch.item_id_keep.empty() ? T(1) : T(batch.item_id_keep[r]); };
  // Where each example's history mask starts in batch.history_keep.
  std::vector<int64_t> keep_offset(rows + 1, 0);
  for (int64_t r = 0; r < rows; ++r) {
    keep_offset[r + 1] = keep_offset[r] + static_cast<int64_t>(histories.Row(ex[r].user).size());
  }
  // Calls fn(j) for each pooled item of example r; returns how many.
  auto for_pooled = [&](int64_t r, auto&& fn) {
    const absl::Span<const int32_t> h = histories.Row(ex[r].user);
    int64_t n = 0;
    for (size_t pos = 0; pos < h.size(); ++pos) {
      if (h[pos] == static_cast<int32_t>(ex[r].item)) continue;
      if (!batch.history_keep.empty() && batch.history_keep[keep_offset[r] + pos] == 0) continue;
      fn(h[pos]);
      ++n;
    }
    return n;
  };

  // Phase 1: both towers forward, per chunk.
  std::vector<TowerCache<T>> item_cache(chunks), user_cache(chunks);
  ParallelForBlocks(chunks, num_threads, [&](int64_t c) {
    const int64_t r0 = BlockBegin(rows, chunks, c), r1 = BlockBegin(rows, chunks, c + 1);
    Mat<T> xi = Mat<T>::Zero(r1 - r0, 2 * de), xu = Mat<T>::Zero(r1 - r0, 2 * de);
    for (int64_t r = r0; r < r1; ++r) {
      const Example& e = ex[r];
      xi.row(r - r0).head(de) = item_keep(r) * net.item_id.row(e.item);
      const absl::Span<const int32_t> buckets = item_buckets.Row(e.item);
      for (int32_t bkt : buckets) xi.row(r - r0).tail(de) += net.feature.row(bkt);
      if (!buckets.empty()) xi.row(r - r0).tail(de) /= T(buckets.size());
      auto pooled = xu.row(r - r0).head(de);
      if (const int64_t n = for_pooled(r, [&](int32_t j) { pooled += net.hist.row(j); }); n > 0) {
        pooled /= T(n);
      }
      xu.row(r - r0).tail(de) = user_keep(r) * net.user_id.row(e.user);
    }
    TowerForward(item_tower, std::move(xi), config.normalize, item_cache[c]);
    TowerForward(user_tower, std::move(xu), config.normalize, user_cache[c]);
  });
  Mat<T> v(rows, shape.dim);
  for (int64_t c = 0; c < chunks; ++c) {
    v.middleRows(BlockBegin(rows, chunks, c), item_cache[c].out.rows()) = item_cache[c].out;
  }
  const Mat<T> vt = v.transpose();

  // Phase 2: logits, softmax and the gradients of the tower outputs, per chunk of users.
  // Columns holding another copy of row r's item are masked: group rows by item once.
  std::vector<int64_t> by_item(rows);
  for (int64_t r = 0; r < rows; ++r) by_item[r] = r;
  std::stable_sort(by_item.begin(), by_item.end(),
                   [&](int64_t a, int64_t b) { return ex[a].item < ex[b].item; });
  std::vector<int64_t> group_begin(rows), group_end(rows);  // range of by_item holding r's item
  for (int64_t g = 0; g < rows;) {
    int64_t h = g;
    while (h < rows && ex[by_item[h]].item == ex[by_item[g]].item) ++h;
    for (int64_t k = g; k < h; ++k) {
      group_begin[by_item[k]] = g;
      group_end[by_item[k]] = h;
    }
    g = h;
  }
  Eigen::Array<T, 1, Eigen::Dynamic> logq_term(rows);
  for (int64_t j = 0; j < rows; ++j) logq_term(j) = T(config.logq_weight) * T(log_q[ex[j].item]);
  std::vector<T> chunk_loss(chunks, T(0));
  std::vector<Mat<T>> dq(chunks), dv_part(chunks);
  ParallelForBlocks(chunks, num_threads, [&](int64_t c) {
    const int64_t r0 = BlockBegin(rows, chunks, c), r1 = BlockBegin(rows, chunks, c + 1);
    const Mat<T>& q = user_cache[c].out;
    Mat<T> s;
    Product<T>(q, vt, s);
    T loss = T(0);
    for (int64_t r = r0; r < r1; ++r) {
      auto row = s.row(r - r0).array();
      row = row * inv_temp - logq_term;
      for (int64_t k = group_begin[r]; k < group_end[r]; ++k) {
        if (by_item[k] != r) row(by_item[k]) = -std::numeric_limits<T>::infinity();
      }
      const T max = row.maxCoeff();
      const T target = row(r);
      const T sum = ExpShiftedSumOf<T>(rows, max, row.data());  // masked columns give 0
      loss += std::log(sum) + max - target;  // log Σ_j exp(s_rj) − s_rr
      row /= sum * T(rows);
      row(r) -= T(1) / T(rows);
    }
    chunk_loss[c] = loss;
    Product<T>(s, v, dq[c]);
    dq[c] *= inv_temp;
    dv_part[c].resize(rows, q.cols());
    GemmTransA<T>(rows, q.cols(), s.rows(), s.data(), q.data(), dv_part[c].data(), false);
    dv_part[c] *= inv_temp;
  });
  Mat<T> dv = dv_part[0];
  for (int64_t c = 1; c < chunks; ++c) dv += dv_part[c];

  // Phase 3: backward through both towers, per chunk; weight gradients per chunk.
  std::vector<std::vector<Mat<T>>> diw(chunks), dib(chunks), duw(chunks), dub(chunks);
  std::vector<Mat<T>> dxi(chunks), dxu(chunks);
  ParallelForBlocks(chunks, num_threads, [&](int64_t c) {
    const int64_t r0 = BlockBegin(rows, chunks, c), r1 = BlockBegin(rows, chunks, c + 1);
    diw[c] = ZerosLike<T>(net.item_w);
    dib[c] = ZerosLike<T>(net.item_b);
    duw[c] = ZerosLike<T>(net.user_w);
    dub[c] = ZerosLike<T>(net.user_b);
    dxi[c] = TowerBackward(item_tower, item_cache[c], Mat<T>(dv.middleRows(r0, r1 - r0)),
                           config.normalize, diw[c], dib[c]);
    dxu[c] = TowerBackward(user_tower, user_cache[c], std::move(dq[c]), config.normalize, duw[c],
                           dub[c]);
  });

  // Phase 4: combine in chunk and example order. Tasks own disjoint destinations (a weight
  // tensor, or a range of rows of one embedding table) and apply their contributions in example
  // order, so the sums do not depend on the thread count. The contributions to each row range
  // are listed first (one serial pass over the batch).
  Mat<T> gi(rows, 2 * de), gu(rows, 2 * de);  // input gradients of both towers, all rows
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t r0 = BlockBegin(rows, chunks, c);
    gi.middleRows(r0, dxi[c].rows()) = dxi[c];
    gu.middleRows(r0, dxu[c].rows()) = dxu[c];
  }
  constexpr int64_t kParts = 8;
  struct Contribution {
    int32_t row;      // destination row of the table
    int32_t example;  // source row of gi / gu
    T scale;
  };
  // Tables in order: item_id, feature, hist, user_id.
  const int tables[4] = {layout.item_id, layout.feature, layout.hist, layout.user_id};
  std::vector<std::vector<Contribution>> lists(4 * kParts);
  auto part_of = [&](int table, int64_t row) {
    const int64_t n = layout.tensors[tables[table]].rows;
    // The part p with BlockBegin(n, kParts, p) <= row < BlockBegin(n, kParts, p + 1).
    int64_t p = row * kParts / std::max<int64_t>(n, 1);
    while (p + 1 < kParts && BlockBegin(n, kParts, p + 1) <= row) ++p;
    while (p > 0 && BlockBegin(n, kParts, p) > row) --p;
    return table * kParts + p;
  };
  std::vector<int32_t> pooled;
  for (int64_t r = 0; r < rows; ++r) {
    const Example& e = ex[r];
    const int32_t er = static_cast<int32_t>(r);
    lists[part_of(0, e.item)].push_back({static_cast<int32_t>(e.item), er, item_keep(r)});
    const absl::Span<const int32_t> buckets = item_buckets.Row(e.item);
    for (int32_t bkt : buckets) lists[part_of(1, bkt)].push_back({bkt, er, T(1) / T(buckets.size())});
    pooled.clear();
    for_pooled(r, [&](int32_t j) { pooled.push_back(j); });
    for (int32_t j : pooled) lists[part_of(2, j)].push_back({j, er, T(1) / T(pooled.size())});
    lists[part_of(3, e.user)].push_back({static_cast<int32_t>(e.user), er, user_keep(r)});
  }
  struct DenseGrad {
    int tensor;
    std::vector<const Mat<T>*> chunks;  // the tensor's gradient from each chunk
  };
  std::vector<DenseGrad> dense;
  for (size_t l = 0; l < net.item_w.size(); ++l) {
    const std::pair<int, std::vector<std::vector<Mat<T>>>*> parts[] = {
        {layout.item_w[l], &diw}, {layout.item_b[l], &dib}, {layout.user_w[l], &duw},
        {layout.user_b[l], &dub}};
    for (const auto& [tensor, per_chunk] : parts) {
      DenseGrad d{tensor, {}};
      for (int64_t c = 0; c < chunks; ++c) d.chunks.push_back(&(*per_chunk)[c][l]);
      dense.push_back(std::move(d));
    }
  }
  ParallelForBlocks(4 * kParts + static_cast<int64_t>(dense.size()), num_threads, [&](int64_t task) {
    if (task >= 4 * kParts) {
      const DenseGrad& d = dense[task - 4 * kParts];
      const Layout::Tensor& t = layout.tensors[d.tensor];
      Eigen::Map<Mat<T>> out(grad + t.offset, t.rows, t.cols);
      for (const Mat<T>* g : d.chunks) out += *g;
      return;
    }
    const int table = static_cast<int>(task / kParts);
    const Layout::Tensor& t = layout.tensors[tables[table]];
    // item_id and feature rows take the item tower's input gradient (first / second half),
    // hist and user_id rows the user tower's.
    const Mat<T>& source = table < 2 ? gi : gu;
    const int64_t col = (table == 1 || table == 3) ? de : 0;
    for (const Contribution& k : lists[task]) {
      Eigen::Map<Vec<T>>(grad + t.offset + int64_t{k.row} * t.cols, t.cols) +=
          k.scale * source.row(k.example).segment(col, de).transpose();
    }
  });
  T loss = T(0);
  for (int64_t c = 0; c < chunks; ++c) loss += chunk_loss[c];
  return loss / T(rows);
}

template struct NetView<float>;
template struct NetView<double>;
template float BatchLossAndGradient<float>(const Layout&, const Shape&, const float*, const Lists&,
                                           const Lists&, absl::Span<const float>,
                                           const LossConfig&, const BatchInput&, float*, int);
template double BatchLossAndGradient<double>(const Layout&, const Shape&, const double*,
                                             const Lists&, const Lists&, absl::Span<const float>,
                                             const LossConfig&, const BatchInput&, double*, int);

namespace {

Vec<float> MlpForward(const std::vector<NetView<float>::ConstMap>& w,
                      const std::vector<NetView<float>::ConstMap>& b, Vec<float> x,
                      bool normalize) {
  for (size_t l = 0; l < w.size(); ++l) {
    Vec<float> z = w[l].transpose() * x + b[l].row(0).transpose();
    x = l + 1 < w.size() ? Vec<float>(z.cwiseMax(0.0f)) : std::move(z);
  }
  if (normalize) {
    const float n = x.norm();
    if (n > 0.0f) x /= n;
  }
  return x;
}

}  // namespace

Vec<float> ItemTowerForward(const NetView<float>& net, absl::Span<const float> id_row,
                            absl::Span<const int32_t> buckets, bool normalize) {
  const int64_t de = net.item_id.cols();
  Vec<float> x = Vec<float>::Zero(2 * de);
  if (!id_row.empty()) x.head(de) = Eigen::Map<const Vec<float>>(id_row.data(), de);
  for (int32_t bkt : buckets) x.tail(de) += net.feature.row(bkt).transpose();
  if (!buckets.empty()) x.tail(de) /= static_cast<float>(buckets.size());
  return MlpForward(net.item_w, net.item_b, std::move(x), normalize);
}

Vec<float> UserTowerForward(const NetView<float>& net, absl::Span<const int32_t> pooled_items,
                            absl::Span<const float> id_row, bool normalize) {
  const int64_t de = net.hist.cols();
  Vec<float> x = Vec<float>::Zero(2 * de);
  for (int32_t j : pooled_items) x.head(de) += net.hist.row(j).transpose();
  if (!pooled_items.empty()) x.head(de) /= static_cast<float>(pooled_items.size());
  if (!id_row.empty()) x.tail(de) = Eigen::Map<const Vec<float>>(id_row.data(), de);
  return MlpForward(net.user_w, net.user_b, std::move(x), normalize);
}

int32_t CategoryBucket(const std::string& category, int64_t buckets) {
  return static_cast<int32_t>(Fnv1a64("c:" + category) % static_cast<uint64_t>(buckets));
}

int32_t TagBucket(const std::string& tag, int64_t buckets) {
  return static_cast<int32_t>(Fnv1a64("t:" + tag) % static_cast<uint64_t>(buckets));
}

}  // namespace recd::two_tower
