// The two-tower network behind core/two_tower.h: parameter layout, batched loss and gradient
// for training, and single-row forward passes for serving. Internal to core (two_tower.cc and
// its tests); templated on the scalar type so the gradient can be checked in double against
// finite differences while training runs in float.
//
// Shapes (de = embedding_dim, h = hidden_dim, n = hidden_layers, d = dim):
//   item_id   num_items x de      user_id  num_users x de
//   hist      num_items x de      feature  feature_buckets x de (at least 1 row)
//   per tower ("item", "user"), layer l = 0..n: w_l (in_l x out_l), b_l (1 x out_l),
//   in_0 = 2 de, out_l = h for l < n, out_n = d; ReLU after every layer but the last.
// Item tower input  [item_id[i] (times the id mask), mean of feature[bucket] over the item's
//                   buckets (zero without buckets)].
// User tower input  [mean of hist[j] over the user's pooled history items j other than the
//                   example's own item and not dropped (zero if none), user_id[u] (times the
//                   id mask)]. Leaving the target out keeps the tower from learning to copy it.
// Outputs are L2-normalised when `normalize` (a zero output stays zero).
// Loss of a batch of (user, item) examples: mean over rows b of the softmax cross-entropy of
//   s_bj = <q_b, v_j> / temperature − logq_weight · log Q(item_j)
// with target j = b; columns j ≠ b whose item equals item_b are excluded (masked to −inf).
#ifndef RECD_CORE_TWO_TOWER_NET_H_
#define RECD_CORE_TWO_TOWER_NET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "Eigen/Core"
#include "absl/functional/function_ref.h"
#include "absl/types/span.h"

namespace recd::two_tower {

struct Shape {
  int64_t num_users = 0;
  int64_t num_items = 0;
  int64_t feature_buckets = 0;  // 0: no features (the table keeps one unused row)
  int embedding_dim = 0;
  int hidden_dim = 0;
  int hidden_layers = 0;
  int dim = 0;
};

// Where each tensor lives in the flat parameter vector. Tensor names are the ModelData tensor
// names ("item_id_emb", "hist_emb", "user_id_emb", "feature_emb", "item_w0", "item_b0", ...).
struct Layout {
  struct Tensor {
    std::string name;
    int64_t offset = 0;
    int64_t rows = 0;
    int64_t cols = 0;
  };
  std::vector<Tensor> tensors;
  int64_t size = 0;
  int item_id = 0, hist = 0, user_id = 0, feature = 0;
  std::vector<int> item_w, item_b, user_w, user_b;  // tensor indices per layer

  static Layout Make(const Shape& shape);
};

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// Read-only views of every tensor (from a flat vector or from ModelData tensors).
template <typename T>
struct NetView {
  using ConstMap = Eigen::Map<const Mat<T>>;
  ConstMap item_id{nullptr, 0, 0}, hist{nullptr, 0, 0}, user_id{nullptr, 0, 0},
      feature{nullptr, 0, 0};
  std::vector<ConstMap> item_w, item_b, user_w, user_b;

  static NetView FromFlat(const Layout& layout, const T* params);
};

// Variable-length lists in CSR form: the buckets of each item, the pooled history of each user.
struct Lists {
  std::vector<int64_t> offsets{0};  // size rows + 1
  std::vector<int32_t> values;
  absl::Span<const int32_t> Row(int64_t r) const {
    return absl::MakeConstSpan(values.data() + offsets[r], offsets[r + 1] - offsets[r]);
  }
  int64_t rows() const { return static_cast<int64_t>(offsets.size()) - 1; }
  void Append(absl::Span<const int32_t> row) {
    values.insert(values.end(), row.begin(), row.end());
    offsets.push_back(static_cast<int64_t>(values.size()));
  }
};

struct Example {
  uint32_t user = 0;
  uint32_t item = 0;
};

struct LossConfig {
  double temperature = 1.0;
  bool normalize = false;
  double logq_weight = 0.0;
};

struct BatchInput {
  absl::Span<const Example> examples;
  // Per example 1 (keep) or 0 (drop the id embedding); empty = keep all.
  absl::Span<const float> user_id_keep;
  absl::Span<const float> item_id_keep;
  // History dropout: for each example in order, one entry per item of its user's pooled
  // history (1 keep, 0 drop); empty = keep all.
  absl::Span<const uint8_t> history_keep;
};

// Threads kept for a whole training run, so that the four fork-join steps of every batch do not
// start threads (ParallelForBlocks does, per call: 0.13-0.25 ms each on a loaded 2-core VM).
// Run(num_blocks, fn) calls fn(block) for every block in [0, num_blocks) on up to num_threads
// threads, the caller being one of them, and returns when all calls have returned. Blocks run
// in any order on any thread, so, as with ParallelForBlocks, results must not depend on which
// thread runs a block. Idle workers spin for a short while (about 0.1 ms) before sleeping, so
// back-to-back steps do not pay a wake-up. Run is called by one thread at a time (the owner);
// fn must not call Run. The destructor stops and joins the workers.
class WorkerPool {
 public:
  explicit WorkerPool(int num_threads);  // num_threads - 1 workers are started (at least 0)
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }
  void Run(int64_t num_blocks, absl::FunctionRef<void(int64_t)> fn);

 private:
  struct State;
  void WorkerLoop();

  std::unique_ptr<State> state_;
  std::vector<std::thread> workers_;
};

// Mean loss of the batch; adds its gradient with respect to the flat parameters to `grad`
// (layout.size entries; entries for unused rows are untouched). Deterministic for any number
// of threads: the batch is cut into a fixed number of chunks whose partial sums are combined in
// chunk order. log_q has one entry per item.
// finalize(begin, end) is called exactly once for each range [begin, end) of `grad` once its
// entries are final, on the thread that finished it, while other ranges may still be in
// progress (so an optimiser step can follow each range without another pass over the
// threads); the ranges partition [0, layout.size). `params` is no longer read by then, so
// finalize may update params[begin, end).
template <typename T>
T BatchLossAndGradient(const Layout& layout, const Shape& shape, const T* params,
                       const Lists& item_buckets, const Lists& histories,
                       absl::Span<const float> log_q, const LossConfig& config,
                       const BatchInput& batch, T* grad, WorkerPool& pool,
                       absl::FunctionRef<void(int64_t begin, int64_t end)> finalize);

// Single-row forward passes for serving and for the final embeddings. `id_row` is the id
// embedding row to use (empty span = zero); `buckets` / `pooled_items` as above.
Vec<float> ItemTowerForward(const NetView<float>& net, absl::Span<const float> id_row,
                            absl::Span<const int32_t> buckets, bool normalize);
Vec<float> UserTowerForward(const NetView<float>& net, absl::Span<const int32_t> pooled_items,
                            absl::Span<const float> id_row, bool normalize);

// FNV-1a 64 of "c:" + category / "t:" + tag, modulo buckets (> 0).
int32_t CategoryBucket(const std::string& category, int64_t buckets);
int32_t TagBucket(const std::string& tag, int64_t buckets);

}  // namespace recd::two_tower

#endif  // RECD_CORE_TWO_TOWER_NET_H_
