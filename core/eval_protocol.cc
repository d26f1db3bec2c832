#include "core/eval_protocol.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/bitset.h"
#include "core/scorer.h"
#include "core/status_macros.h"

namespace recd {
namespace {

// numpy's legacy random_interval(max): the smallest all-ones mask covering max, then
// rejection of 32-bit draws (max < 2^32 here) until one is <= max.
uint32_t RandomInterval(std::mt19937& engine, uint32_t max) {
  if (max == 0) return 0;
  uint32_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  uint32_t value;
  while ((value = (static_cast<uint32_t>(engine()) & mask)) > max) {
  }
  return value;
}

// Python's round() of ratio * n: to nearest, halves to even (nearbyint in the default
// FE_TONEAREST mode, which nothing in recd changes).
int64_t PythonRound(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

TrainingData EmptyLike(const TrainingData& data) {
  TrainingData out;
  out.num_users = data.num_users;
  out.num_items = data.num_items;
  out.last_sequence = data.last_sequence;
  out.item_features = data.item_features;
  return out;
}

}  // namespace

std::vector<uint32_t> NumpyLegacyPermutation(uint32_t n, uint32_t seed) {
  std::vector<uint32_t> out(n);
  for (uint32_t i = 0; i < n; ++i) out[i] = i;
  std::mt19937 engine(seed);
  for (uint32_t i = n; i-- > 1;) {
    const uint32_t j = RandomInterval(engine, i);
    std::swap(out[i], out[j]);
  }
  return out;
}

absl::StatusOr<TrainTestSplit> StratifiedSplit(const TrainingData& data,
                                               const StratifiedSplitOptions& options) {
  if (!(options.ratio > 0.0 && options.ratio < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("split ratio must be in (0, 1), got ", options.ratio));
  }
  const bool by_user = options.by == StratifiedSplitOptions::By::kUser;
  const uint32_t groups = by_user ? data.num_users : data.num_items;
  std::vector<std::vector<uint32_t>> members(groups);
  for (size_t k = 0; k < data.interactions.size(); ++k) {
    const Interaction& x = data.interactions[k];
    if (x.user >= data.num_users || x.item >= data.num_items) {
      return absl::InvalidArgumentError(absl::StrCat("interaction ", k, " is outside the data's ",
                                                     data.num_users, " users / ", data.num_items,
                                                     " items"));
    }
    members[by_user ? x.user : x.item].push_back(static_cast<uint32_t>(k));
  }
  std::vector<bool> is_train(data.interactions.size(), false);
  for (const std::vector<uint32_t>& group : members) {
    if (group.empty()) continue;
    const uint32_t n = static_cast<uint32_t>(group.size());
    const std::vector<uint32_t> perm = NumpyLegacyPermutation(n, options.seed);
    const int64_t cut = PythonRound(options.ratio * static_cast<double>(n));
    for (int64_t j = 0; j < cut && j < n; ++j) is_train[group[perm[j]]] = true;
  }
  TrainTestSplit split{EmptyLike(data), EmptyLike(data)};
  for (size_t k = 0; k < data.interactions.size(); ++k) {
    (is_train[k] ? split.train : split.test).interactions.push_back(data.interactions[k]);
  }
  return split;
}

TrainingData SortByTimestamp(TrainingData data) {
  std::stable_sort(data.interactions.begin(), data.interactions.end(),
                   [](const Interaction& a, const Interaction& b) {
                     return a.timestamp_ms < b.timestamp_ms;
                   });
  return data;
}

std::vector<std::vector<ItemIndex>> ItemsByUser(const TrainingData& data) {
  std::vector<std::vector<ItemIndex>> out(data.num_users);
  for (const Interaction& x : data.interactions) {
    if (x.user < out.size()) out[x.user].push_back(x.item);
  }
  for (auto& items : out) {
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
  }
  return out;
}

std::vector<std::vector<HistoryEntry>> HistoriesByUser(const TrainingData& data) {
  std::vector<std::vector<HistoryEntry>> out(data.num_users);
  for (size_t k = 0; k < data.interactions.size(); ++k) {
    const Interaction& x = data.interactions[k];
    if (x.user >= out.size()) continue;
    out[x.user].push_back({x.item, x.timestamp_ms, k + 1, x.value, x.event, x.has_value});
  }
  return out;
}

absl::StatusOr<RankingEvalResult> EvaluateRanking(
    const Model& model, const std::vector<std::vector<ItemIndex>>& relevant,
    const std::vector<std::vector<ItemIndex>>& exclude,
    const std::vector<std::vector<HistoryEntry>>& history, const RankingEvalOptions& options) {
  if (options.k < 1) return absl::InvalidArgumentError("k must be >= 1");
  auto items = std::make_shared<const EmbeddingMatrix>(model.item_factors());
  ScorerOptions so;
  so.kind = ScorerOptions::Kind::kExact;
  ASSIGN_OR_RETURN(std::unique_ptr<ItemScorer> scorer, CreateItemScorer(items, so));
  const size_t num_items = items->rows();
  const size_t num_users = relevant.size();

  // Fixed blocks of users, merged in block order: the same sums for any thread count.
  constexpr size_t kBlocks = 16;
  std::vector<RankingMetricsAccumulator> acc(kBlocks);
  std::vector<int64_t> without_vector(kBlocks, 0);
  std::atomic<size_t> next_block{0};
  std::atomic<size_t> users_done{0};
  auto work = [&] {
    ItemBitset seen(num_items);
    std::vector<ItemIndex> ranked;
    for (size_t b = next_block++; b < kBlocks; b = next_block++) {
      const size_t begin = num_users * b / kBlocks, end = num_users * (b + 1) / kBlocks;
      for (size_t u = begin; u < end; ++u) {
        if (relevant[u].empty()) continue;
        const UserIndex user = static_cast<UserIndex>(u);
        static const std::vector<HistoryEntry> kNone;
        const std::vector<HistoryEntry>& h = u < history.size() ? history[u] : kNone;
        EmbeddingVector q = model.HasUserEmbedding(user) ? model.UserEmbedding(user)
                                                         : model.FoldInKnownUser(user, h);
        if (q.size() != model.dim()) {
          ++without_vector[b];
          continue;
        }
        seen.ClearAll();
        if (u < exclude.size()) {
          for (ItemIndex i : exclude[u]) seen.Set(i);
        }
        const std::vector<ScoredIndex> top =
            scorer->TopK(absl::MakeConstSpan(q.data(), q.size()), options.k, &seen);
        ranked.clear();
        for (const ScoredIndex& s : top) ranked.push_back(s.item);
        acc[b].Add(ComputeUserRankingMetrics(ranked, relevant[u], options.k));
      }
      const size_t done = users_done += end - begin;
      if (options.progress) options.progress(static_cast<double>(done) / num_users);
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < std::min<int>(options.num_threads, kBlocks); ++t) workers.emplace_back(work);
  work();
  for (std::thread& w : workers) w.join();

  RankingEvalResult result;
  RankingMetricsAccumulator total;
  for (size_t b = 0; b < kBlocks; ++b) {
    total.Merge(acc[b]);
    result.users_without_vector += without_vector[b];
  }
  result.mean = total.Mean();
  result.num_users = total.num_users();
  return result;
}

}  // namespace recd
