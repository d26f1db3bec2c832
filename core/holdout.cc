#include "core/holdout.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "core/bitset.h"
#include "core/scorer.h"

namespace recd {
namespace {

uint64_t SequenceAt(const TrainingData& data, size_t i) {
  return data.sequences.empty() ? i + 1 : data.sequences[i];
}

uint64_t PairKey(UserIndex user, ItemIndex item) { return (uint64_t{user} << 32) | item; }

}  // namespace

HoldoutSplit SplitHoldout(const TrainingData& data, const HoldoutOptions& options) {
  // Latest positive interaction per user, and the user's positive item count.
  struct Latest {
    size_t position = 0;
    uint64_t sequence = 0;
    absl::flat_hash_set<ItemIndex> items;
  };
  absl::flat_hash_map<UserIndex, Latest> latest;
  for (size_t i = 0; i < data.interactions.size(); ++i) {
    const Interaction& x = data.interactions[i];
    if (InteractionWeight(x.event, x.has_value, x.value, options.weights) <= 0.0f) continue;
    Latest& l = latest[x.user];
    l.position = i;
    l.sequence = SequenceAt(data, i);
    l.items.insert(x.item);
  }
  std::vector<HoldoutEntry> candidates;
  for (const auto& [user, l] : latest) {
    if (l.sequence <= options.after_sequence) continue;
    // The held-out item is removed entirely, so at least min_history other items must remain.
    if (l.items.size() < options.min_history + 1) continue;
    candidates.push_back({user, data.interactions[l.position].item, l.sequence});
  }
  // Most recently active first, then cut; then by user for a stable, readable order.
  std::sort(candidates.begin(), candidates.end(),
            [](const HoldoutEntry& a, const HoldoutEntry& b) { return a.sequence > b.sequence; });
  if (candidates.size() > options.max_users) candidates.resize(options.max_users);
  std::sort(candidates.begin(), candidates.end(),
            [](const HoldoutEntry& a, const HoldoutEntry& b) { return a.user < b.user; });

  absl::flat_hash_set<uint64_t> held;
  for (const HoldoutEntry& h : candidates) held.insert(PairKey(h.user, h.item));
  HoldoutSplit split;
  split.train.num_users = data.num_users;
  split.train.num_items = data.num_items;
  split.train.last_sequence = data.last_sequence;
  split.train.item_features = data.item_features;
  split.train.interactions.reserve(data.interactions.size());
  if (!data.sequences.empty()) split.train.sequences.reserve(data.sequences.size());
  for (size_t i = 0; i < data.interactions.size(); ++i) {
    const Interaction& x = data.interactions[i];
    if (held.contains(PairKey(x.user, x.item))) continue;
    split.train.interactions.push_back(x);
    if (!data.sequences.empty()) split.train.sequences.push_back(data.sequences[i]);
  }
  split.holdout = std::move(candidates);
  return split;
}

HoldoutMetrics EvaluateHoldout(const Model& model, const TrainingData& train,
                               absl::Span<const HoldoutEntry> holdout, int k) {
  HoldoutMetrics metrics;
  if (holdout.empty() || k <= 0) return metrics;
  absl::flat_hash_map<UserIndex, size_t> slot;
  for (size_t i = 0; i < holdout.size(); ++i) slot[holdout[i].user] = i;
  std::vector<std::vector<HistoryEntry>> histories(holdout.size());
  for (size_t i = 0; i < train.interactions.size(); ++i) {
    const Interaction& x = train.interactions[i];
    auto it = slot.find(x.user);
    if (it == slot.end()) continue;
    HistoryEntry& h = histories[it->second].emplace_back();
    h.item = x.item;
    h.timestamp_ms = x.timestamp_ms;
    h.sequence = SequenceAt(train, i);
    h.value = x.value;
    h.event = x.event;
    h.has_value = x.has_value;
  }

  const size_t num_items = static_cast<size_t>(model.item_factors().rows());
  const int dim = model.dim();
  auto items = std::shared_ptr<const EmbeddingMatrix>(std::shared_ptr<const void>(), &model.item_factors());
  absl::StatusOr<std::unique_ptr<ItemScorer>> scorer = CreateItemScorer(items, ScorerOptions());
  if (!scorer.ok()) return metrics;  // non-finite factors: scores nothing, i.e. a hit rate of 0

  constexpr size_t kBlock = 256;  // bounds the exclusion bitsets held at once
  double hits = 0.0, dcg = 0.0;
  for (size_t start = 0; start < holdout.size(); start += kBlock) {
    const size_t end = std::min(holdout.size(), start + kBlock);
    EmbeddingMatrix queries = EmbeddingMatrix::Zero(static_cast<Eigen::Index>(end - start), dim);
    std::vector<ItemBitset> excludes(end - start, ItemBitset(num_items));
    for (size_t i = start; i < end; ++i) {
      EmbeddingVector v = model.FoldInUser(histories[i]);
      if (v.size() == 0) v = model.UserEmbedding(holdout[i].user);
      if (v.size() == dim) queries.row(static_cast<Eigen::Index>(i - start)) = v.transpose();
      for (const HistoryEntry& h : histories[i]) excludes[i - start].Set(h.item);
    }
    std::vector<const ItemBitset*> exclude_ptrs;
    for (const ItemBitset& b : excludes) exclude_ptrs.push_back(&b);
    std::vector<std::vector<ScoredIndex>> top = (*scorer)->TopKBatch(queries, k, exclude_ptrs);
    for (size_t i = start; i < end; ++i) {
      const std::vector<ScoredIndex>& row = top[i - start];
      for (size_t r = 0; r < row.size(); ++r) {
        if (row[r].item == holdout[i].item) {
          hits += 1.0;
          dcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
          break;
        }
      }
    }
  }
  metrics.users = holdout.size();
  metrics.hit_rate = hits / static_cast<double>(holdout.size());
  metrics.ndcg = dcg / static_cast<double>(holdout.size());
  return metrics;
}

}  // namespace recd
