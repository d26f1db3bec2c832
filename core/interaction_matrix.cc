#include "core/interaction_matrix.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"

namespace recd {
namespace {

constexpr double kMsPerDay = 86'400'000.0;

// The running aggregate of one (user, item) pair. Both the matrix builder and the history
// functions push the pair's events through this one state machine in log order, which is what
// makes a training row and a folded-in history bit-identical.
struct PairState {
  double implicit = 0.0;  // double: a heavy user's thousands of views must not lose increments
  double rating = 0.0;
  bool has_rating = false;
  bool touched = false;  // builder bookkeeping: the pair appears in the current user's events
  int64_t newest_ms = std::numeric_limits<int64_t>::min();

  // Pushes one event. Returns whether it counts and the raw amount it contributes (a counted
  // rating replaces the previous rating, so its amount is the new rating, not a difference).
  // A dislike clears the state and returns {false, 0}; callers tracking contributions check for it.
  struct Added {
    bool counted = false;
    double amount = 0.0;
  };
  Added Add(EventType event, bool has_value, float value, int64_t timestamp_ms,
            const EventWeights& w) {
    switch (event) {
      case EventType::kImpression:
        return {};
      case EventType::kDislike: {
        const bool keep = touched;
        *this = PairState();
        touched = keep;
        return {};
      }
      case EventType::kRating: {
        if (!has_value) return {};
        const double r = InteractionWeight(event, has_value, value, w);
        if (!std::isfinite(r)) return {};
        rating = r;
        has_rating = true;
        newest_ms = std::max(newest_ms, timestamp_ms);
        return {true, r};
      }
      default: {
        const double x = InteractionWeight(event, has_value, value, w);
        if (!std::isfinite(x) || x == 0.0) return {};
        implicit += x;
        newest_ms = std::max(newest_ms, timestamp_ms);
        return {true, x};
      }
    }
  }

  double Raw() const { return implicit + (has_rating ? rating : 0.0); }

  // The stored weight, or 0 when the pair is dropped.
  float Final(const InteractionMatrixOptions& o) const {
    const double raw = Raw();
    if (!(raw > 0.0)) return 0.0f;
    double w = raw;
    switch (o.weighting) {
      case InteractionWeighting::kRaw: break;
      case InteractionWeighting::kBinary: w = 1.0; break;
      case InteractionWeighting::kLog:
        w = 1.0 + static_cast<double>(o.log_alpha) *
                      std::log1p(raw / static_cast<double>(o.log_epsilon));
        break;
    }
    if (o.half_life_days > 0.0) {
      const double age_ms =
          std::max(0.0, static_cast<double>(o.reference_time_ms) - static_cast<double>(newest_ms));
      w *= std::exp2(-age_ms / (o.half_life_days * kMsPerDay));
    }
    const float f = static_cast<float>(w);
    return (std::isfinite(f) && f > 0.0f) ? f : 0.0f;
  }
};

// Indices of `history` grouped by item (ascending), log order kept within an item.
std::vector<uint32_t> OrderByItem(absl::Span<const HistoryEntry> history) {
  std::vector<uint32_t> order(history.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return history[a].item < history[b].item;
  });
  return order;
}

}  // namespace

absl::string_view InteractionWeightingName(InteractionWeighting weighting) {
  switch (weighting) {
    case InteractionWeighting::kRaw: return "raw";
    case InteractionWeighting::kBinary: return "binary";
    case InteractionWeighting::kLog: return "log";
  }
  return "unknown";
}

absl::StatusOr<InteractionWeighting> ParseInteractionWeighting(absl::string_view name) {
  for (InteractionWeighting w :
       {InteractionWeighting::kRaw, InteractionWeighting::kBinary, InteractionWeighting::kLog}) {
    if (name == InteractionWeightingName(w)) return w;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown interaction weighting '", name, "'; expected raw, binary or log"));
}

absl::Status ValidateInteractionMatrixOptions(const InteractionMatrixOptions& o) {
  if (o.weighting == InteractionWeighting::kLog) {
    if (!(o.log_alpha > 0.0f) || !std::isfinite(o.log_alpha)) {
      return absl::InvalidArgumentError(
          absl::StrCat("log_alpha must be finite and > 0, got ", o.log_alpha));
    }
    if (!(o.log_epsilon > 0.0f) || !std::isfinite(o.log_epsilon)) {
      return absl::InvalidArgumentError(
          absl::StrCat("log_epsilon must be finite and > 0, got ", o.log_epsilon));
    }
  }
  if (!(o.half_life_days >= 0.0) || !std::isfinite(o.half_life_days)) {
    return absl::InvalidArgumentError(
        absl::StrCat("half_life_days must be finite and >= 0, got ", o.half_life_days));
  }
  return absl::OkStatus();
}

std::vector<WeightedItem> AggregateHistory(absl::Span<const HistoryEntry> history,
                                           const InteractionMatrixOptions& options,
                                           uint32_t num_items) {
  std::vector<WeightedItem> row;
  const std::vector<uint32_t> order = OrderByItem(history);
  size_t i = 0;
  while (i < order.size()) {
    const ItemIndex item = history[order[i]].item;
    PairState state;
    for (; i < order.size() && history[order[i]].item == item; ++i) {
      const HistoryEntry& e = history[order[i]];
      state.Add(e.event, e.has_value, e.value, e.timestamp_ms, options.event_weights);
    }
    if (item >= num_items || item == kNoIndex) continue;
    const float w = state.Final(options);
    if (w > 0.0f) row.push_back({item, w});
  }
  return row;
}

std::vector<float> HistoryContributions(absl::Span<const HistoryEntry> history,
                                        const InteractionMatrixOptions& options,
                                        uint32_t num_items) {
  std::vector<float> out(history.size(), 0.0f);
  const std::vector<uint32_t> order = OrderByItem(history);
  std::vector<std::pair<uint32_t, double>> shares;  // (history index, raw share) since last reset
  size_t i = 0;
  while (i < order.size()) {
    const ItemIndex item = history[order[i]].item;
    PairState state;
    shares.clear();
    int rating_slot = -1;  // index into `shares` of the rating that currently counts
    for (; i < order.size() && history[order[i]].item == item; ++i) {
      const uint32_t j = order[i];
      const HistoryEntry& e = history[j];
      const PairState::Added added =
          state.Add(e.event, e.has_value, e.value, e.timestamp_ms, options.event_weights);
      if (e.event == EventType::kDislike) {
        shares.clear();
        rating_slot = -1;
      } else if (added.counted) {
        if (e.event == EventType::kRating) {
          if (rating_slot >= 0) shares[rating_slot].second = 0.0;  // superseded
          rating_slot = static_cast<int>(shares.size());
        }
        shares.emplace_back(j, added.amount);
      }
    }
    if (item >= num_items || item == kNoIndex) continue;
    const float w = state.Final(options);
    if (w <= 0.0f) continue;
    const double scale = static_cast<double>(w) / state.Raw();
    for (const auto& [j, share] : shares) out[j] = static_cast<float>(share * scale);
  }
  return out;
}

absl::StatusOr<InteractionMatrix> BuildInteractionMatrix(const TrainingData& data,
                                                         const InteractionMatrixOptions& options) {
  if (absl::Status s = ValidateInteractionMatrixOptions(options); !s.ok()) return s;
  const uint32_t num_users = data.num_users;
  const uint32_t num_items = data.num_items;
  const size_t n = data.interactions.size();
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many interactions for a 32-bit sparse index: ", n));
  }

  // Counting sort by user, stable, so each user's events stay in log order.
  std::vector<uint32_t> user_start(static_cast<size_t>(num_users) + 1, 0);
  for (size_t k = 0; k < n; ++k) {
    const Interaction& x = data.interactions[k];
    if (x.user >= num_users || x.item >= num_items) {
      return absl::InvalidArgumentError(absl::StrCat(
          "interaction ", k, " has user ", x.user, " / item ", x.item,
          " outside the training data's ", num_users, " users / ", num_items, " items"));
    }
    ++user_start[x.user + 1];
  }
  std::partial_sum(user_start.begin(), user_start.end(), user_start.begin());
  std::vector<uint32_t> by_user(n);
  {
    std::vector<uint32_t> next(user_start.begin(), user_start.end() - 1);
    for (size_t k = 0; k < n; ++k) by_user[next[data.interactions[k].user]++] = k;
  }

  // A dense per-item scratch state is O(1) per event; the `touched` list resets only what the
  // current user used.
  std::vector<PairState> scratch(num_items);
  std::vector<ItemIndex> touched;
  std::vector<int32_t> outer(static_cast<size_t>(num_users) + 1, 0);
  std::vector<int32_t> inner;
  std::vector<float> values;
  inner.reserve(n);
  values.reserve(n);
  for (uint32_t u = 0; u < num_users; ++u) {
    touched.clear();
    for (uint32_t k = user_start[u]; k < user_start[u + 1]; ++k) {
      const Interaction& x = data.interactions[by_user[k]];
      PairState& s = scratch[x.item];
      if (!s.touched) {
        s.touched = true;
        touched.push_back(x.item);
      }
      s.Add(x.event, x.has_value, x.value, x.timestamp_ms, options.event_weights);
    }
    std::sort(touched.begin(), touched.end());
    for (ItemIndex item : touched) {
      const float w = scratch[item].Final(options);
      if (w > 0.0f) {
        inner.push_back(static_cast<int32_t>(item));
        values.push_back(w);
      }
      scratch[item] = PairState();
    }
    outer[u + 1] = static_cast<int32_t>(inner.size());
  }

  InteractionMatrix m = Eigen::Map<const InteractionMatrix>(
      num_users, num_items, static_cast<int32_t>(inner.size()), outer.data(), inner.data(),
      values.data());
  return m;
}

std::vector<std::vector<ItemIndex>> UserItemLists(const InteractionMatrix& matrix) {
  std::vector<std::vector<ItemIndex>> lists(matrix.rows());
  for (int32_t u = 0; u < matrix.rows(); ++u) {
    for (InteractionMatrix::InnerIterator it(matrix, u); it; ++it) {
      lists[u].push_back(static_cast<ItemIndex>(it.col()));
    }
  }
  return lists;
}

std::vector<double> ItemWeightSums(const InteractionMatrix& matrix) {
  std::vector<double> sums(matrix.cols(), 0.0);
  for (int32_t u = 0; u < matrix.rows(); ++u) {
    for (InteractionMatrix::InnerIterator it(matrix, u); it; ++it) sums[it.col()] += it.value();
  }
  return sums;
}

int64_t NewestTimestampMs(const TrainingData& data) {
  if (data.interactions.empty()) return 0;
  int64_t newest = std::numeric_limits<int64_t>::min();
  for (const Interaction& x : data.interactions) newest = std::max(newest, x.timestamp_ms);
  return newest;
}

absl::StatusOr<LeaveLastOutSplit> SplitLeaveLastOut(const TrainingData& data,
                                                    const InteractionMatrixOptions& options,
                                                    int min_items) {
  auto matrix_or = BuildInteractionMatrix(data, options);
  if (!matrix_or.ok()) return matrix_or.status();
  const InteractionMatrix& m = *matrix_or;
  const int32_t needed = std::max(min_items, 2);

  LeaveLastOutSplit split;
  split.holdout.assign(data.num_users, kNoIndex);
  std::vector<bool> decided(data.num_users, false);
  for (size_t k = data.interactions.size(); k-- > 0;) {
    const Interaction& x = data.interactions[k];
    if (decided[x.user]) continue;
    const int32_t begin = m.outerIndexPtr()[x.user];
    const int32_t end = m.outerIndexPtr()[x.user + 1];
    if (end - begin < needed) {
      decided[x.user] = true;
      continue;
    }
    if (x.event == EventType::kRating && !x.has_value) continue;
    if (!(InteractionWeight(x.event, x.has_value, x.value, options.event_weights) > 0.0f)) continue;
    const int32_t* cols = m.innerIndexPtr();
    if (!std::binary_search(cols + begin, cols + end, static_cast<int32_t>(x.item))) continue;
    decided[x.user] = true;
    split.holdout[x.user] = x.item;
    ++split.num_held_out;
  }

  split.train.num_users = data.num_users;
  split.train.num_items = data.num_items;
  split.train.last_sequence = data.last_sequence;
  split.train.item_features = data.item_features;
  split.train.interactions.reserve(data.interactions.size());
  for (const Interaction& x : data.interactions) {
    if (split.holdout[x.user] != x.item) split.train.interactions.push_back(x);
  }
  return split;
}

}  // namespace recd
