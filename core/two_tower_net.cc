#include "core/two_tower_net.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <new>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "core/parallel_for.h"
#include "core/sgemm.h"
#include "core/sync.h"

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

// c = a · b, or c += a · b; all row-major, lda / ldb / ldc the row strides. Float goes to the
// AVX2 kernel when the CPU has one; double (the gradient checks) stays on Eigen.
template <typename T>
void Gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
          T* c, int64_t ldc, bool accumulate) {
  using Stride = Eigen::OuterStride<>;
  using Map = Eigen::Map<const Mat<T>, 0, Stride>;
  Eigen::Map<Mat<T>, 0, Stride> cm(c, m, n, Stride(ldc));
  if (accumulate) {
    cm.noalias() += Map(a, m, k, Stride(lda)) * Map(b, k, n, Stride(ldb));
  } else {
    cm.noalias() = Map(a, m, k, Stride(lda)) * Map(b, k, n, Stride(ldb));
  }
}

template <>
void Gemm<float>(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  Sgemm(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
}

// c = aᵀ · b, or c += aᵀ · b, for a: k x m stored with row stride lda (so c: m x n), without
// materialising aᵀ.
template <typename T>
void GemmTransA(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  using Stride = Eigen::OuterStride<>;
  using Map = Eigen::Map<const Mat<T>, 0, Stride>;
  Eigen::Map<Mat<T>, 0, Stride> cm(c, m, n, Stride(ldc));
  if (accumulate) {
    cm.noalias() += Map(a, k, m, Stride(lda)).transpose() * Map(b, k, n, Stride(ldb));
  } else {
    cm.noalias() = Map(a, k, m, Stride(lda)).transpose() * Map(b, k, n, Stride(ldb));
  }
}

template <>
void GemmTransA<float>(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                       const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  SgemmTransA(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
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
  Gemm<T>(a.rows(), b.cols(), a.cols(), a.data(), a.cols(), b.data(), b.cols(), out.data(),
          b.cols(), false);
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
    GemmTransA<T>(c.input[l].cols(), dz.cols(), dz.rows(), c.input[l].data(), c.input[l].cols(),
                  dz.data(), dz.cols(), dw[l].data(), dz.cols(), true);
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

// --- WorkerPool ------------------------------------------------------------------------------

namespace {

// How long an idle thread polls before it sleeps: longer than the serial gaps between the
// steps of a batch (tens of microseconds), short enough not to burn a core between runs.
constexpr std::chrono::microseconds kSpin(100);

// Polls pred() until it holds (true) or kSpin has passed (false).
template <typename Pred>
bool SpinUntil(const Pred& pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 1;; ++i) {
    if (pred()) return true;
    __builtin_ia32_pause();
    if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) return pred();
  }
}

}  // namespace

// A job is open from Run's start until every worker that joined it has left; workers join only
// an open job they have not joined yet, under mu, so a late worker can never take blocks of the
// next job with the previous job's function.
struct WorkerPool::State {
  Mutex mu;
  CondVar wake;  // a job opened, or stop
  CondVar idle;  // the last worker left the job
  bool stop ABSL_GUARDED_BY(mu) = false;
  bool open ABSL_GUARDED_BY(mu) = false;
  uint64_t job ABSL_GUARDED_BY(mu) = 0;  // number of jobs opened so far
  int busy ABSL_GUARDED_BY(mu) = 0;      // workers inside the open job
  const absl::FunctionRef<void(int64_t)>* fn ABSL_GUARDED_BY(mu) = nullptr;
  int64_t num_blocks ABSL_GUARDED_BY(mu) = 0;
  std::atomic<int64_t> next{0};          // next block of the open job
  std::atomic<uint64_t> spin_job{0};     // == job, polled without the lock
  std::atomic<int> spin_busy{0};         // == busy, polled without the lock
};

WorkerPool::WorkerPool(int num_threads) : state_(std::make_unique<State>()) {
  for (int t = 1; t < num_threads; ++t) workers_.emplace_back([this] { WorkerLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    MutexLock lock(&state_->mu);
    state_->stop = true;
  }
  state_->wake.SignalAll();
  for (std::thread& w : workers_) w.join();
}

void WorkerPool::WorkerLoop() {
  State& s = *state_;
  uint64_t seen = 0;  // the last job this worker joined or found closed
  for (;;) {
    SpinUntil([&] { return s.spin_job.load(std::memory_order_acquire) != seen; });
    const absl::FunctionRef<void(int64_t)>* fn;
    int64_t num_blocks;
    {
      MutexLock lock(&s.mu);
      if (!s.stop && !s.open && s.job != seen) {  // woke too late for a job: poll for the next
        seen = s.job;
        continue;
      }
      while (!s.stop && !(s.open && s.job != seen)) s.wake.Wait(&s.mu);
      if (s.stop) return;
      seen = s.job;
      s.spin_busy.store(++s.busy, std::memory_order_relaxed);
      fn = s.fn;
      num_blocks = s.num_blocks;
    }
    for (int64_t b = s.next.fetch_add(1); b < num_blocks; b = s.next.fetch_add(1)) (*fn)(b);
    MutexLock lock(&s.mu);
    s.spin_busy.store(--s.busy, std::memory_order_release);
    if (s.busy == 0) s.idle.SignalAll();
  }
}

void WorkerPool::Run(int64_t num_blocks, absl::FunctionRef<void(int64_t)> fn) {
  if (workers_.empty() || num_blocks <= 1) {
    for (int64_t b = 0; b < num_blocks; ++b) fn(b);
    return;
  }
  State& s = *state_;
  {
    MutexLock lock(&s.mu);
    s.fn = &fn;
    s.num_blocks = num_blocks;
    s.next.store(0, std::memory_order_relaxed);
    s.open = true;
    s.spin_job.store(++s.job, std::memory_order_release);
  }
  s.wake.SignalAll();
  for (int64_t b = s.next.fetch_add(1); b < num_blocks; b = s.next.fetch_add(1)) fn(b);
  // Every block is taken; wait for the workers still running one (a worker that has not joined
  // by the time the job closes runs nothing of it).
  SpinUntil([&] { return s.spin_busy.load(std::memory_order_acquire) == 0; });
  MutexLock lock(&s.mu);
  while (s.busy > 0) s.idle.Wait(&s.mu);
  s.open = false;
}

// --- Batch loss and gradient ---------------------------------------------------------------

template <typename T>
T BatchLossAndGradient(const Layout& layout, const Shape& shape, const T* params,
                       const Lists& item_buckets, const Lists& histories,
                       absl::Span<const float> log_q, const LossConfig& config,
                       const BatchInput& batch, T* grad, WorkerPool& pool,
                       absl::FunctionRef<void(int64_t, int64_t)> finalize) {
  const NetView<T> net = NetView<T>::FromFlat(layout, params);
  std::vector<Mat<T>> item_wt, user_wt;
  for (const auto& w : net.item_w) item_wt.push_back(w.transpose());
  for (const auto& w : net.user_w) user_wt.push_back(w.transpose());
  const Tower<T> item_tower{&net.item_w, &net.item_b, &item_wt};
  const Tower<T> user_tower{&net.user_w, &net.user_b, &user_wt};
  const absl::Span<const Example> ex = batch.examples;
  const int64_t rows = static_cast<int64_t>(ex.size());
  const int de = shape.embedding_dim;
  const int d = shape.dim;
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

  // The embedding tables' gradients are scattered by tasks that own disjoint destinations: the
  // rows of each table cut into kParts ranges. Each chunk lists its examples' contributions
  // (destination row, source example, scale) sorted by destination range, in example order
  // within a range; the task of a range applies the chunks' lists in chunk order, so every row
  // receives its contributions in example order whatever the number of threads.
  constexpr int64_t kParts = 8;
  constexpr int kTables = 4;  // item_id, feature, hist, user_id
  const int tables[kTables] = {layout.item_id, layout.feature, layout.hist, layout.user_id};
  struct Contribution {
    int32_t row;      // destination row of the table
    int32_t example;  // source row of gi / gu
    T scale;
  };
  struct ChunkContributions {
    std::vector<Contribution> sorted;
    std::vector<int64_t> begin;  // kTables * kParts + 1 offsets into sorted
  };
  std::vector<ChunkContributions> contributions(chunks);
  // The part p of a row: BlockBegin(n, kParts, p) <= row < BlockBegin(n, kParts, p + 1), by
  // comparisons with the part boundaries (a division per contribution showed in the profile).
  int64_t part_begin[kTables][kParts];
  for (int table = 0; table < kTables; ++table) {
    for (int64_t p = 0; p < kParts; ++p) {
      part_begin[table][p] = BlockBegin(layout.tensors[tables[table]].rows, kParts, p);
    }
  }
  auto list_of = [&](int table, int64_t row) {
    int64_t p = 0;
    for (int64_t k = 1; k < kParts; ++k) p += row >= part_begin[table][k];
    return table * kParts + p;
  };

  // Phase 1: both towers forward, per chunk; the chunk's contribution lists.
  std::vector<TowerCache<T>> item_cache(chunks), user_cache(chunks);
  Mat<T> q(rows, d), v(rows, d), vt(d, rows);  // tower outputs of all rows
  pool.Run(chunks, [&](int64_t c) {
    const int64_t r0 = BlockBegin(rows, chunks, c), r1 = BlockBegin(rows, chunks, c + 1);
    Mat<T> xi = Mat<T>::Zero(r1 - r0, 2 * de), xu = Mat<T>::Zero(r1 - r0, 2 * de);
    std::vector<std::pair<int64_t, Contribution>> raw;  // (list, contribution), example order
    raw.reserve(keep_offset[r1] - keep_offset[r0] + (r1 - r0) * 8);
    for (int64_t r = r0; r < r1; ++r) {
      const Example& e = ex[r];
      const int32_t er = static_cast<int32_t>(r);
      T* xir = xi.row(r - r0).data();
      const T ik = item_keep(r);
      const T* id = net.item_id.row(e.item).data();
      for (int k = 0; k < de; ++k) xir[k] = ik * id[k];
      raw.push_back({list_of(0, e.item), {static_cast<int32_t>(e.item), er, ik}});
      const absl::Span<const int32_t> buckets = item_buckets.Row(e.item);
      for (int32_t bkt : buckets) {
        const T* f = net.feature.row(bkt).data();
        for (int k = 0; k < de; ++k) xir[de + k] += f[k];
        raw.push_back({list_of(1, bkt), {bkt, er, T(1) / T(buckets.size())}});
      }
      if (!buckets.empty()) {
        for (int k = 0; k < de; ++k) xir[de + k] /= T(buckets.size());
      }
      T* xur = xu.row(r - r0).data();
      const size_t first = raw.size();
      const int64_t n = for_pooled(r, [&](int32_t j) {
        const T* h = net.hist.row(j).data();
        for (int k = 0; k < de; ++k) xur[k] += h[k];
        raw.push_back({list_of(2, j), {j, er, T(0)}});
      });
      if (n > 0) {
        for (int k = 0; k < de; ++k) xur[k] /= T(n);
        for (size_t k = first; k < raw.size(); ++k) raw[k].second.scale = T(1) / T(n);
      }
      const T uk = user_keep(r);
      const T* uid = net.user_id.row(e.user).data();
      for (int k = 0; k < de; ++k) xur[de + k] = uk * uid[k];
      raw.push_back({list_of(3, e.user), {static_cast<int32_t>(e.user), er, uk}});
    }
    ChunkContributions& cc = contributions[c];
    cc.begin.assign(kTables * kParts + 1, 0);
    for (const auto& [list, k] : raw) ++cc.begin[list + 1];
    for (int64_t l = 0; l < kTables * kParts; ++l) cc.begin[l + 1] += cc.begin[l];
    std::vector<int64_t> fill(cc.begin.begin(), cc.begin.end() - 1);
    cc.sorted.resize(raw.size());
    for (const auto& [list, k] : raw) cc.sorted[fill[list]++] = k;

    TowerForward(item_tower, std::move(xi), config.normalize, item_cache[c]);
    TowerForward(user_tower, std::move(xu), config.normalize, user_cache[c]);
    v.middleRows(r0, r1 - r0) = item_cache[c].out;
    vt.middleCols(r0, r1 - r0) = item_cache[c].out.transpose();
    q.middleRows(r0, r1 - r0) = user_cache[c].out;
  });

  // Phase 2: logits, softmax and the gradients of the user tower outputs, per chunk of users.
  // Columns holding another copy of row r's item are masked: group rows by item once.
  std::vector<uint64_t> keyed(rows);  // (item, row): sorting them groups rows by item, stably
  for (int64_t r = 0; r < rows; ++r) keyed[r] = uint64_t{ex[r].item} << 32 | uint64_t(r);
  std::sort(keyed.begin(), keyed.end());
  std::vector<int64_t> by_item(rows);
  for (int64_t k = 0; k < rows; ++k) by_item[k] = static_cast<int64_t>(keyed[k] & 0xFFFFFFFFu);
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
  // dlogits(b, j) = ∂loss/∂s_bj / temperature: the gradient with respect to <q_b, v_j>.
  Mat<T> dlogits(rows, rows);
  std::vector<T> chunk_loss(chunks, T(0));
  std::vector<Mat<T>> dq(chunks);
  pool.Run(chunks, [&](int64_t c) {
    const int64_t r0 = BlockBegin(rows, chunks, c), r1 = BlockBegin(rows, chunks, c + 1);
    T* s = dlogits.data() + r0 * rows;
    Gemm<T>(r1 - r0, rows, d, q.data() + r0 * d, d, vt.data(), rows, s, rows, false);
    T loss = T(0);
    for (int64_t r = r0; r < r1; ++r) {
      Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>> row(s + (r - r0) * rows, rows);
      row = row * inv_temp - logq_term;
      for (int64_t k = group_begin[r]; k < group_end[r]; ++k) {
        if (by_item[k] != r) row(by_item[k]) = -std::numeric_limits<T>::infinity();
      }
      const T max = row.maxCoeff();
      const T target = row(r);
      const T sum = ExpShiftedSumOf<T>(rows, max, row.data());  // masked columns give 0
      loss += std::log(sum) + max - target;  // log Σ_j exp(s_rj) − s_rr
      row *= inv_temp / (sum * T(rows));
      row(r) -= inv_temp / T(rows);
    }
    chunk_loss[c] = loss;
    dq[c].resize(r1 - r0, d);
    Gemm<T>(r1 - r0, d, rows, s, rows, v.data(), d, dq[c].data(), d, false);
  });

  // Phase 3: backward through both towers, per chunk; weight gradients per chunk. The item
  // tower's output gradient for the chunk's rows j is Σ_b dlogits(b, j) q_b over all rows b.
  std::vector<std::vector<Mat<T>>> diw(chunks), dib(chunks), duw(chunks), dub(chunks);
  Mat<T> gi(rows, 2 * de), gu(rows, 2 * de);  // input gradients of both towers, all rows
  pool.Run(chunks, [&](int64_t c) {
    const int64_t r0 = BlockBegin(rows, chunks, c), r1 = BlockBegin(rows, chunks, c + 1);
    Mat<T> dv(r1 - r0, d);
    GemmTransA<T>(r1 - r0, d, rows, dlogits.data() + r0, rows, q.data(), d, dv.data(), d, false);
    diw[c] = ZerosLike<T>(net.item_w);
    dib[c] = ZerosLike<T>(net.item_b);
    duw[c] = ZerosLike<T>(net.user_w);
    dub[c] = ZerosLike<T>(net.user_b);
    gi.middleRows(r0, r1 - r0) =
        TowerBackward(item_tower, item_cache[c], std::move(dv), config.normalize, diw[c], dib[c]);
    gu.middleRows(r0, r1 - r0) = TowerBackward(user_tower, user_cache[c], std::move(dq[c]),
                                               config.normalize, duw[c], dub[c]);
  });

  // Phase 4: combine in chunk and example order, one task per destination (a weight tensor, or
  // a row range of one embedding table), each finalising its range when done. The hist ranges,
  // which take most contributions, go first.
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
      DenseGrad g{tensor, {}};
      for (int64_t c = 0; c < chunks; ++c) g.chunks.push_back(&(*per_chunk)[c][l]);
      dense.push_back(std::move(g));
    }
  }
  constexpr int kTableOrder[kTables] = {2, 3, 0, 1};  // hist, user_id, item_id, feature
  pool.Run(kTables * kParts + static_cast<int64_t>(dense.size()), [&](int64_t task) {
    if (task >= kTables * kParts) {
      const DenseGrad& g = dense[task - kTables * kParts];
      const Layout::Tensor& t = layout.tensors[g.tensor];
      Eigen::Map<Mat<T>> out(grad + t.offset, t.rows, t.cols);
      for (const Mat<T>* part : g.chunks) out += *part;
      finalize(t.offset, t.offset + t.rows * t.cols);
      return;
    }
    const int table = kTableOrder[task / kParts];
    const int64_t part = task % kParts, list = table * kParts + part;
    const Layout::Tensor& t = layout.tensors[tables[table]];
    // item_id and feature rows take the item tower's input gradient (first / second half),
    // hist and user_id rows the user tower's.
    const Mat<T>& source = table < 2 ? gi : gu;
    const int64_t col = (table == 1 || table == 3) ? de : 0;
    for (const ChunkContributions& cc : contributions) {
      for (int64_t i = cc.begin[list]; i < cc.begin[list + 1]; ++i) {
        const Contribution& k = cc.sorted[i];
        T* dst = grad + t.offset + int64_t{k.row} * t.cols;
        const T* src = source.row(k.example).data() + col;
        for (int j = 0; j < de; ++j) dst[j] += k.scale * src[j];
      }
    }
    const int64_t begin = t.offset + BlockBegin(t.rows, kParts, part) * t.cols;
    const int64_t end = t.offset + BlockBegin(t.rows, kParts, part + 1) * t.cols;
    if (begin < end) finalize(begin, end);
  });
  T loss = T(0);
  for (int64_t c = 0; c < chunks; ++c) loss += chunk_loss[c];
  return loss / T(rows);
}

template struct NetView<float>;
template struct NetView<double>;
template float BatchLossAndGradient<float>(const Layout&, const Shape&, const float*, const Lists&,
                                           const Lists&, absl::Span<const float>,
                                           const LossConfig&, const BatchInput&, float*,
                                           WorkerPool&, absl::FunctionRef<void(int64_t, int64_t)>);
template double BatchLossAndGradient<double>(const Layout&, const Shape&, const double*,
                                             const Lists&, const Lists&, absl::Span<const float>,
                                             const LossConfig&, const BatchInput&, double*,
                                             WorkerPool&, absl::FunctionRef<void(int64_t, int64_t)>);

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
