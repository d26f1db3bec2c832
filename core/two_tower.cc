#include "core/two_tower.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/parallel_for.h"
#include "core/pure_svd.h"
#include "core/random.h"
#include "core/sgemm.h"
#include "core/status_macros.h"
#include "core/two_tower_net.h"

namespace recd {
namespace {

using two_tower::BatchInput;
using two_tower::Example;
using two_tower::Layout;
using two_tower::Lists;
using two_tower::LossConfig;
using two_tower::NetView;
using two_tower::Shape;


// Positivity of pairs only: the loss treats every positive pair alike.
InteractionMatrixOptions PairOptions(const EventWeights& weights) {
  InteractionMatrixOptions o;
  o.event_weights = weights;
  o.weighting = InteractionWeighting::kBinary;
  return o;
}

Shape ShapeFrom(const ParsedParams& p, int64_t num_users, int64_t num_items) {
  Shape s;
  s.num_users = num_users;
  s.num_items = num_items;
  s.feature_buckets = p.GetInt("feature_buckets");
  s.embedding_dim = p.GetInt("embedding_dim");
  s.hidden_dim = p.GetInt("hidden_dim");
  s.hidden_layers = p.GetInt("hidden_layers");
  s.dim = p.GetInt("dim");
  return s;
}

std::vector<int32_t> ItemBuckets(const ItemFeatures& f, int64_t buckets) {
  std::vector<int32_t> out;
  if (buckets <= 0) return out;
  for (const std::string& c : f.categories) out.push_back(two_tower::CategoryBucket(c, buckets));
  for (const std::string& t : f.tags) out.push_back(two_tower::TagBucket(t, buckets));
  return out;
}

// Dense Adam as torch.optim.Adam (L2 weight decay added to the gradient). Begin() starts a
// step; Apply(begin, end) then updates one range of the flat parameters from their gradient
// (which it clears). Every range is applied once per step, in any order.
struct Adam {
  double lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay;
  std::vector<float> m, v;
  int64_t t = 0;
  AdamStepParams step;

  void Begin() {
    ++t;
    step.step = static_cast<float>(lr / (1.0 - std::pow(beta1, t)));
    step.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(beta2, t)));
    step.beta1 = static_cast<float>(beta1);
    step.beta2 = static_cast<float>(beta2);
    step.eps = static_cast<float>(eps);
    step.weight_decay = static_cast<float>(weight_decay);
  }

  void Apply(int64_t begin, int64_t end, float* params, float* grad) {
    AdamStep(end - begin, step, params + begin, m.data() + begin, v.data() + begin, grad + begin);
  }
};

// Views of the network in a ModelData's tensors. Requires ValidateTensors to have passed.
NetView<float> ViewTensors(const Layout& layout, const std::map<std::string, EmbeddingMatrix>& t) {
  // Flat offsets are meaningless here: build the maps from each tensor's own storage.
  NetView<float> v;
  using Map = NetView<float>::ConstMap;
  auto map = [&](int index) {
    const EmbeddingMatrix& m = t.at(layout.tensors[index].name);
    return Map(m.data(), m.rows(), m.cols());
  };
  new (&v.item_id) Map(map(layout.item_id));
  new (&v.hist) Map(map(layout.hist));
  new (&v.user_id) Map(map(layout.user_id));
  new (&v.feature) Map(map(layout.feature));
  for (int i : layout.item_w) v.item_w.push_back(map(i));
  for (int i : layout.item_b) v.item_b.push_back(map(i));
  for (int i : layout.user_w) v.user_w.push_back(map(i));
  for (int i : layout.user_b) v.user_b.push_back(map(i));
  return v;
}

class TwoTowerModel final : public Model {
 public:
  TwoTowerModel(std::shared_ptr<const ModelData> data, Layout layout, Shape shape,
                InteractionMatrixOptions options, int history_length, bool normalize)
      : Model(std::move(data)),
        layout_(std::move(layout)),
        shape_(shape),
        options_(std::move(options)),
        history_length_(history_length),
        normalize_(normalize),
        net_(ViewTensors(layout_, this->data().tensors)) {}

  EmbeddingVector FoldInUser(absl::Span<const HistoryEntry> history) const override {
    return Fold(kNoIndex, history);
  }

  EmbeddingVector FoldInKnownUser(UserIndex user,
                                  absl::Span<const HistoryEntry> history) const override {
    return Fold(user, history);
  }

  EmbeddingVector ItemVectorFromFeatures(const ItemFeatures& features) const override {
    const std::vector<int32_t> buckets = ItemBuckets(features, shape_.feature_buckets);
    if (buckets.empty()) return EmbeddingVector();
    return two_tower::ItemTowerForward(net_, {}, buckets, normalize_);
  }

 private:
  EmbeddingVector Fold(UserIndex user, absl::Span<const HistoryEntry> history) const {
    const std::vector<int32_t> recent = RecentPositiveItems(
        history, options_, static_cast<uint32_t>(shape_.num_items), history_length_);
    absl::Span<const float> id;
    if (user != kNoIndex && HasUserEmbedding(user) && user < net_.user_id.rows()) {
      id = absl::MakeConstSpan(net_.user_id.row(user).data(), net_.user_id.cols());
    }
    if (recent.empty() && id.empty()) return EmbeddingVector();
    return two_tower::UserTowerForward(net_, recent, id, normalize_);
  }

  Layout layout_;
  Shape shape_;
  InteractionMatrixOptions options_;
  int history_length_;
  bool normalize_;
  NetView<float> net_;
};

}  // namespace

std::vector<ParamSpec> TwoTowerParamSpecs() {
  return {
      ParamSpec::Int("dim", 32, 1, 1024, "output (served) dimension"),
      ParamSpec::Int("embedding_dim", 32, 1, 1024, "id, history and feature embedding width"),
      ParamSpec::Int("hidden_dim", 64, 1, 4096, "width of the ReLU layers"),
      ParamSpec::Int("hidden_layers", 1, 0, 4, "ReLU layers before the output layer"),
      ParamSpec::Int("history_length", 50, 1, 100000, "most recent positive items pooled"),
      ParamSpec::Int("feature_buckets", 1024, 0, 1 << 24, "hashed category/tag embeddings"),
      ParamSpec::Int("epochs", 7, 0, 1000, "passes over the positive pairs"),
      ParamSpec::Int("batch_size", 512, 2, 65536, "examples per batch (in-batch negatives)"),
      ParamSpec::Double("learning_rate", 0.005, 1e-9, 1.0, "Adam step size"),
      ParamSpec::Double("weight_decay", 0.0, 0.0, 1.0, "L2 added to the gradient"),
      ParamSpec::Double("temperature", 0.1, 1e-6, 100.0, "softmax temperature"),
      ParamSpec::Int("normalize", 1, 0, 1, "L2-normalise tower outputs"),
      ParamSpec::Double("logq_weight", 1.5, 0.0, 10.0, "log-Q correction strength"),
      ParamSpec::Double("user_id_dropout", 0.0, 0.0, 1.0, "drop rate of the user id embedding"),
      ParamSpec::Double("item_id_dropout", 0.0, 0.0, 1.0, "drop rate of the item id embedding"),
      ParamSpec::Double("history_dropout", 0.0, 0.0, 1.0, "drop rate of pooled history items"),
      ParamSpec::Double("init_std", 0.05, 1e-9, 10.0, "std of the initial embeddings"),
  };
}

std::vector<int32_t> RecentPositiveItems(absl::Span<const HistoryEntry> history,
                                         const InteractionMatrixOptions& options,
                                         uint32_t num_items, int limit) {
  const std::vector<WeightedItem> row = AggregateHistory(history, options, num_items);
  std::vector<int32_t> out;
  if (row.empty()) return out;
  std::vector<bool> taken(row.size(), false);
  for (size_t k = history.size(); k-- > 0 && static_cast<int>(out.size()) < limit;) {
    const ItemIndex item = history[k].item;
    auto it = std::lower_bound(row.begin(), row.end(), item,
                               [](const WeightedItem& w, ItemIndex i) { return w.item < i; });
    if (it == row.end() || it->item != item) continue;
    const size_t pos = it - row.begin();
    if (taken[pos]) continue;
    taken[pos] = true;
    out.push_back(static_cast<int32_t>(item));
  }
  return out;
}

absl::StatusOr<ModelData> TrainTwoTower(const TrainingData& data,
                                        const std::map<std::string, std::string>& params,
                                        const TrainOptions& options) {
  ASSIGN_OR_RETURN(ParsedParams p, ParseParams(kTwoTowerAlgorithm, TwoTowerParamSpecs(), params));
  const InteractionMatrixOptions mopts = PairOptions(options.event_weights);
  ASSIGN_OR_RETURN(InteractionMatrix r, BuildInteractionMatrix(data, mopts));
  if (r.nonZeros() == 0) {
    return absl::FailedPreconditionError(
        "two_tower: the training data has no positive (user, item) pair");
  }
  const Shape shape = ShapeFrom(p, data.num_users, data.num_items);
  const Layout layout = Layout::Make(shape);
  const int history_length = p.GetInt("history_length");
  const bool normalize = p.GetInt("normalize") == 1;
  const int threads = options.num_threads;

  // Each user's recent positive items: the same function FoldInKnownUser uses.
  std::vector<std::vector<HistoryEntry>> histories(data.num_users);
  for (size_t k = 0; k < data.interactions.size(); ++k) {
    const Interaction& x = data.interactions[k];
    histories[x.user].push_back({x.item, x.timestamp_ms, k + 1, x.value, x.event, x.has_value});
  }
  Lists recent;
  for (uint32_t u = 0; u < data.num_users; ++u) {
    recent.Append(RecentPositiveItems(histories[u], mopts, data.num_items, history_length));
  }
  histories.clear();
  histories.shrink_to_fit();
  Lists buckets;
  for (uint32_t i = 0; i < data.num_items; ++i) {
    buckets.Append(i < data.item_features.size()
                       ? ItemBuckets(data.item_features[i], shape.feature_buckets)
                       : std::vector<int32_t>());
  }

  // Examples: positive pairs, user-major, items ascending.
  std::vector<Example> examples;
  examples.reserve(r.nonZeros());
  std::vector<double> counts(data.num_items, 0.0);
  for (int64_t u = 0; u < r.rows(); ++u) {
    for (InteractionMatrix::InnerIterator it(r, u); it; ++it) {
      examples.push_back({static_cast<uint32_t>(u), static_cast<uint32_t>(it.col())});
      counts[it.col()] += 1.0;
    }
  }
  std::vector<float> log_q(data.num_items, 0.0f);
  for (uint32_t i = 0; i < data.num_items; ++i) {
    log_q[i] = static_cast<float>(std::log(std::max(counts[i], 1.0) / examples.size()));
  }

  // Initialisation: embeddings N(0, init_std); He-normal hidden weights, LeCun-normal output
  // weights; zero biases. One seeded stream in layout order.
  PortableRng rng(options.seed);
  std::vector<float> params_flat(layout.size, 0.0f);
  const double init_std = p.GetDouble("init_std");
  std::vector<bool> is_bias(layout.tensors.size(), false), is_output(layout.tensors.size(), false);
  for (int t : layout.item_b) is_bias[t] = true;
  for (int t : layout.user_b) is_bias[t] = true;
  is_output[layout.item_w.back()] = is_output[layout.user_w.back()] = true;
  for (size_t t = 0; t < layout.tensors.size(); ++t) {
    const Layout::Tensor& tensor = layout.tensors[t];
    if (is_bias[t]) continue;
    const bool embedding = static_cast<int>(t) <= layout.feature;  // the four tables come first
    const double std = embedding ? init_std : std::sqrt((is_output[t] ? 1.0 : 2.0) / tensor.rows);
    for (int64_t k = 0; k < tensor.rows * tensor.cols; ++k) {
      params_flat[tensor.offset + k] = static_cast<float>(std * rng.Normal());
    }
  }
  // Warm start: same network shape; id and history tables may have grown (new rows keep their
  // random initialisation).
  bool warm = false;
  if (const ModelData* w = options.warm_start;
      w != nullptr && w->meta.algorithm == kTwoTowerAlgorithm) {
    auto old = ParseParams(kTwoTowerAlgorithm, TwoTowerParamSpecs(), w->meta.params);
    if (old.ok()) {
      const Shape os = ShapeFrom(*old, 0, 0);
      warm = os.feature_buckets == shape.feature_buckets &&
             os.embedding_dim == shape.embedding_dim && os.hidden_dim == shape.hidden_dim &&
             os.hidden_layers == shape.hidden_layers && os.dim == shape.dim;
    }
    auto fits = [&](size_t t) {
      const Layout::Tensor& tensor = layout.tensors[t];
      auto it = w->tensors.find(tensor.name);
      const bool grows = static_cast<int>(t) <= layout.user_id;  // item_id, hist, user_id
      return it != w->tensors.end() && it->second.cols() == tensor.cols &&
             (grows || it->second.rows() == tensor.rows);
    };
    for (size_t t = 0; t < layout.tensors.size(); ++t) warm = warm && fits(t);
    for (size_t t = 0; warm && t < layout.tensors.size(); ++t) {
      const Layout::Tensor& tensor = layout.tensors[t];
      auto it = w->tensors.find(tensor.name);
      const int64_t rows = std::min<int64_t>(tensor.rows, it->second.rows());
      Eigen::Map<EmbeddingMatrix>(params_flat.data() + tensor.offset, tensor.rows, tensor.cols)
          .topRows(rows) = it->second.topRows(rows);
    }
  }

  LossConfig loss_config;
  loss_config.temperature = p.GetDouble("temperature");
  loss_config.normalize = normalize;
  loss_config.logq_weight = p.GetDouble("logq_weight");
  Adam adam{p.GetDouble("learning_rate")};
  adam.weight_decay = p.GetDouble("weight_decay");
  adam.m.assign(layout.size, 0.0f);
  adam.v.assign(layout.size, 0.0f);
  std::vector<float> grad(layout.size, 0.0f);
  two_tower::WorkerPool pool(threads);
  const int epochs = p.GetInt("epochs");
  const int64_t batch_size = p.GetInt("batch_size");
  const double user_drop = p.GetDouble("user_id_dropout"), item_drop = p.GetDouble("item_id_dropout");
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t batches_per_epoch = (n + batch_size - 1) / batch_size;
  const double history_drop = p.GetDouble("history_dropout");
  std::vector<float> user_keep, item_keep;
  std::vector<uint8_t> history_keep;

  ModelData out;
  double initial_loss = 0.0;
  int initial_batches = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (int64_t j = n; j > 1; --j) std::swap(examples[j - 1], examples[rng.UniformInt(j)]);
    double epoch_loss = 0.0;
    int64_t epoch_rows = 0;
    for (int64_t b = 0; b < batches_per_epoch; ++b) {
      if (options.cancel != nullptr && options.cancel->load()) {
        return absl::CancelledError("two_tower: training cancelled");
      }
      const int64_t begin = b * batch_size, end = std::min(n, begin + batch_size);
      if (end - begin < 2) continue;
      BatchInput batch;
      batch.examples = absl::MakeConstSpan(examples.data() + begin, end - begin);
      if (user_drop > 0.0) {
        user_keep.resize(end - begin);
        for (float& k : user_keep) k = rng.Bernoulli(user_drop) ? 0.0f : 1.0f;
        batch.user_id_keep = user_keep;
      }
      if (item_drop > 0.0) {
        item_keep.resize(end - begin);
        for (float& k : item_keep) k = rng.Bernoulli(item_drop) ? 0.0f : 1.0f;
        batch.item_id_keep = item_keep;
      }
      if (history_drop > 0.0) {
        history_keep.clear();
        for (const Example& e : batch.examples) {
          for (size_t k = 0; k < recent.Row(e.user).size(); ++k) {
            history_keep.push_back(rng.Bernoulli(history_drop) ? 0 : 1);
          }
        }
        batch.history_keep = history_keep;
      }
      // Adam runs on each range of the gradient as soon as it is complete.
      adam.Begin();
      const float loss = two_tower::BatchLossAndGradient<float>(
          layout, shape, params_flat.data(), buckets, recent, log_q, loss_config, batch,
          grad.data(), pool, [&](int64_t range_begin, int64_t range_end) {
            adam.Apply(range_begin, range_end, params_flat.data(), grad.data());
          });
      if (!std::isfinite(loss)) {
        return absl::InternalError(absl::StrCat("two_tower: loss diverged in epoch ", epoch + 1,
                                                "; lower learning_rate"));
      }
      epoch_loss += static_cast<double>(loss) * (end - begin);
      epoch_rows += end - begin;
      if (epoch == 0 && b < 10) {
        initial_loss += loss;
        ++initial_batches;
      }
      if (options.progress) {
        options.progress((epoch + static_cast<double>(b + 1) / batches_per_epoch) / (epochs + 0.2));
      }
    }
    out.meta.metrics[absl::StrCat("loss_epoch_", epoch + 1)] = epoch_loss / std::max<int64_t>(1, epoch_rows);
    out.meta.metrics["loss"] = epoch_loss / std::max<int64_t>(1, epoch_rows);
  }

  // Tensors, then the served embeddings through the single-row passes serving uses.
  for (const Layout::Tensor& t : layout.tensors) {
    out.tensors[t.name] =
        Eigen::Map<const EmbeddingMatrix>(params_flat.data() + t.offset, t.rows, t.cols);
  }
  out.tensors[kEventWeightsTensor] = EventWeightsTensor(options.event_weights);
  const NetView<float> net = ViewTensors(layout, out.tensors);
  out.item_factors = EmbeddingMatrix::Zero(data.num_items, shape.dim);
  out.user_factors = EmbeddingMatrix::Zero(data.num_users, shape.dim);
  const int64_t de = shape.embedding_dim;
  pool.Run(64, [&](int64_t b) {
    for (int64_t i = BlockBegin(data.num_items, 64, b); i < BlockBegin(data.num_items, 64, b + 1); ++i) {
      absl::Span<const float> id;
      if (counts[i] > 0.0) id = absl::MakeConstSpan(net.item_id.row(i).data(), de);
      out.item_factors.row(i) = two_tower::ItemTowerForward(net, id, buckets.Row(i), normalize).transpose();
    }
    for (int64_t u = BlockBegin(data.num_users, 64, b); u < BlockBegin(data.num_users, 64, b + 1); ++u) {
      if (r.outerIndexPtr()[u + 1] == r.outerIndexPtr()[u]) continue;
      out.user_factors.row(u) =
          two_tower::UserTowerForward(net, recent.Row(u),
                                      absl::MakeConstSpan(net.user_id.row(u).data(), de), normalize)
              .transpose();
    }
  });
  out.meta.params = p.text();
  out.meta.metrics["examples"] = static_cast<double>(n);
  out.meta.metrics["warm_started"] = warm ? 1.0 : 0.0;
  out.meta.metrics["initial_loss"] = initial_batches > 0 ? initial_loss / initial_batches : 0.0;
  if (options.progress) options.progress(1.0);
  return out;
}

absl::StatusOr<std::shared_ptr<const Model>> CreateTwoTowerModel(
    std::shared_ptr<const ModelData> data) {
  const std::string prefix =
      absl::StrCat("model '", data->meta.name, "' version ", data->meta.version, ": ");
  auto parsed = ParseParams(kTwoTowerAlgorithm, TwoTowerParamSpecs(), data->meta.params);
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(prefix, parsed.status().message()));
  const Shape shape = ShapeFrom(*parsed, data->user_factors.rows(), data->item_factors.rows());
  const Layout layout = Layout::Make(shape);
  if (data->item_factors.cols() != shape.dim) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "item_factors has ", data->item_factors.cols(),
                                                   " columns, dim is ", shape.dim));
  }
  for (const Layout::Tensor& t : layout.tensors) {
    auto it = data->tensors.find(t.name);
    if (it == data->tensors.end() || it->second.rows() != t.rows || it->second.cols() != t.cols) {
      return absl::InvalidArgumentError(absl::StrCat(
          prefix, "tensor '", t.name, "' must be ", t.rows, " x ", t.cols,
          it == data->tensors.end() ? " but is missing"
                                    : absl::StrCat(" but is ", it->second.rows(), " x ", it->second.cols())));
    }
  }
  EventWeights weights;
  if (auto it = data->tensors.find(kEventWeightsTensor); it != data->tensors.end()) {
    auto w = EventWeightsFromTensor(it->second);
    if (!w.ok()) return absl::InvalidArgumentError(absl::StrCat(prefix, w.status().message()));
    weights = *w;
  }
  const int history_length = parsed->GetInt("history_length");
  const bool normalize = parsed->GetInt("normalize") == 1;
  return std::shared_ptr<const Model>(std::make_shared<TwoTowerModel>(
      std::move(data), layout, shape, PairOptions(weights), history_length, normalize));
}

}  // namespace recd
