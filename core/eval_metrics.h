// Offline evaluation metrics: top-K ranking quality and rating-prediction error. Pure functions
// over ranked lists and relevance sets; no models, no files.
//
// Ranking metrics follow the definitions of Microsoft Recommenders
// (recommenders/evaluation/python_evaluation.py, binary relevance), so figures computed here
// can be set against their published MovieLens tables:
//   hits         relevant items among the first k of the ranked list
//   precision@k  hits / k (k, not the list length: a short list is not rewarded)
//   recall@k     hits / |relevant|
//   nDCG@k       sum over hits at 1-based rank r of 1 / log2(1 + r), divided by the ideal
//                sum over r = 1..min(|relevant|, k)
//   MAP@k        ("map_at_k" before Recommenders 1.2) sum over hits of (hits so far / rank),
//                divided by |relevant|: the user's full number of test items, not min(k, ...)
//   HR@k         1 if hits > 0 (next-item protocols with one held-out item)
// A user with no relevant items is not evaluated (callers skip them); averaging is over the
// evaluated users, counting users without hits as zeros.
#ifndef RECD_CORE_EVAL_METRICS_H_
#define RECD_CORE_EVAL_METRICS_H_

#include <cstdint>
#include <string>

#include "absl/types/span.h"
#include "core/types.h"

namespace recd {

struct UserRankingMetrics {
  int hits = 0;
  double precision = 0.0;
  double recall = 0.0;
  double ndcg = 0.0;
  double average_precision = 0.0;  // the MAP term defined above
  double hit_rate = 0.0;           // 0 or 1
};

// Metrics of one user's ranked list (best first; only the first k entries count) against the
// user's relevant items. `relevant` must be sorted ascending without duplicates and non-empty;
// `ranked` must not repeat an item. k >= 1.
UserRankingMetrics ComputeUserRankingMetrics(absl::Span<const ItemIndex> ranked,
                                             absl::Span<const ItemIndex> relevant, int k);

// Running mean of UserRankingMetrics over users. Not thread-safe; merge per-thread instances
// with Merge (sums are kept in double, so the order of merging changes only the last bits).
class RankingMetricsAccumulator {
 public:
  void Add(const UserRankingMetrics& m);
  void Merge(const RankingMetricsAccumulator& other);

  int64_t num_users() const { return num_users_; }
  // Means over the added users (0 when none).
  UserRankingMetrics Mean() const;

 private:
  int64_t num_users_ = 0;
  double hits_ = 0.0, precision_ = 0.0, recall_ = 0.0, ndcg_ = 0.0, ap_ = 0.0, hit_rate_ = 0.0;
};

// Root-mean-square and mean absolute error of predictions against truths.
struct RatingErrors {
  double rmse = 0.0;
  double mae = 0.0;
  int64_t count = 0;
};

// `predicted` and `actual` have equal lengths (the shorter length is used otherwise).
RatingErrors ComputeRatingErrors(absl::Span<const float> predicted, absl::Span<const float> actual);

}  // namespace recd

#endif  // RECD_CORE_EVAL_METRICS_H_
