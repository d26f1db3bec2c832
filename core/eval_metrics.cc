#include "core/eval_metrics.h"

#include <algorithm>
#include <cmath>

namespace recd {

UserRankingMetrics ComputeUserRankingMetrics(absl::Span<const ItemIndex> ranked,
                                             absl::Span<const ItemIndex> relevant, int k) {
  UserRankingMetrics m;
  if (relevant.empty() || k < 1) return m;
  const size_t n = std::min<size_t>(ranked.size(), static_cast<size_t>(k));
  double dcg = 0.0;
  double precision_sum = 0.0;
  for (size_t r = 0; r < n; ++r) {
    if (!std::binary_search(relevant.begin(), relevant.end(), ranked[r])) continue;
    ++m.hits;
    dcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
    precision_sum += static_cast<double>(m.hits) / static_cast<double>(r + 1);
  }
  double ideal = 0.0;
  const size_t ideal_n = std::min<size_t>(relevant.size(), static_cast<size_t>(k));
  for (size_t r = 0; r < ideal_n; ++r) ideal += 1.0 / std::log2(static_cast<double>(r) + 2.0);
  const double num_relevant = static_cast<double>(relevant.size());
  m.precision = static_cast<double>(m.hits) / k;
  m.recall = static_cast<double>(m.hits) / num_relevant;
  m.ndcg = dcg / ideal;
  m.average_precision = precision_sum / num_relevant;
  m.hit_rate = m.hits > 0 ? 1.0 : 0.0;
  return m;
}

void RankingMetricsAccumulator::Add(const UserRankingMetrics& m) {
  ++num_users_;
  hits_ += m.hits;
  precision_ += m.precision;
  recall_ += m.recall;
  ndcg_ += m.ndcg;
  ap_ += m.average_precision;
  hit_rate_ += m.hit_rate;
}

void RankingMetricsAccumulator::Merge(const RankingMetricsAccumulator& o) {
  num_users_ += o.num_users_;
  hits_ += o.hits_;
  precision_ += o.precision_;
  recall_ += o.recall_;
  ndcg_ += o.ndcg_;
  ap_ += o.ap_;
  hit_rate_ += o.hit_rate_;
}

UserRankingMetrics RankingMetricsAccumulator::Mean() const {
  UserRankingMetrics m;
  if (num_users_ == 0) return m;
  const double n = static_cast<double>(num_users_);
  m.hits = static_cast<int>(std::lround(hits_ / n));
  m.precision = precision_ / n;
  m.recall = recall_ / n;
  m.ndcg = ndcg_ / n;
  m.average_precision = ap_ / n;
  m.hit_rate = hit_rate_ / n;
  return m;
}

RatingErrors ComputeRatingErrors(absl::Span<const float> predicted, absl::Span<const float> actual) {
  RatingErrors e;
  const size_t n = std::min(predicted.size(), actual.size());
  double sq = 0.0, abs = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(predicted[i]) - static_cast<double>(actual[i]);
    sq += d * d;
    abs += std::fabs(d);
  }
  e.count = static_cast<int64_t>(n);
  if (n > 0) {
    e.rmse = std::sqrt(sq / n);
    e.mae = abs / n;
  }
  return e;
}

}  // namespace recd
