// Freshness probes (issue 5, continuous learning): how long after a LogInteractions
// acknowledgement does a Recommend answer reflect the interaction?
//
// One probe, for a user not probed before:
//   1. Recommend(user, k) -> the "before" list (must come from the model, not the fallback),
//      and once more as a control (below);
//   2. LogInteractions: the user clicked the before list's top item; the ack time is recorded;
//   3. Recommend(user, k) again, back to back, until the answer reflects the click or
//      `timeout` passes. Freshness = arrival of the reflecting answer - arrival of the ack.
//
// "Reflects" (JudgeReflection) means both:
//   * the clicked item is gone from the answer (Recommend excludes seen items by default), and
//   * the user vector moved: with the clicked item cut from both lists, the answer does not
//     start with the before list. Had the server scored with the old vector, the model's
//     ranking would repeat the before list's entries in order with bit-identical scores (the
//     scan is deterministic for a given query); any difference among them, an id or a score,
//     shows the query vector changed.
// A control guards the second test: a second Recommend before the click must give the same
// ranking and bit-identical scores (else the probe is not judged; counted as control_failed).
// Exploration slots (items newer than the model, placed by recent popularity, whose score
// repeats the last model slot's) are left out of both lists before comparing.
//
// The server must be otherwise quiet for the user (no other writer logs for the probed users)
// and must not publish a new model version between the before list and the answer: a probe
// whose answer names another model version is not judged (counted as model_changed).
#ifndef RECD_LOADTEST_FRESHNESS_H_
#define RECD_LOADTEST_FRESHNESS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loadtest/histogram.h"
#include "recd/v1/recommender.pb.h"

namespace recd::loadtest {

// ---- pure parts (unit-tested) -----------------------------------------------------------------

// One model-ranked entry of an answer.
struct RankedItem {
  std::string item_id;
  float score = 0;
  bool operator==(const RankedItem& other) const = default;
};

// The model-ranked entries of an answer, in order (exploration slots left out).
std::vector<RankedItem> ModelRanked(const recd::v1::RecommendResponse& response);

struct Reflection {
  bool item_gone = false;      // the clicked item is not in the answer
  bool vector_moved = false;   // the ranking differs from before's (clicked item cut from both)
  bool reflected() const { return item_gone && vector_moved; }
};

// Judges `after` against `before` (both ModelRanked) for a click on `clicked` (before[0]).
Reflection JudgeReflection(const std::vector<RankedItem>& before, const std::vector<RankedItem>& after,
                           const std::string& clicked);

// `count` distinct indices in [0, n), in a random order fixed by `seed` (count is capped at n).
std::vector<uint64_t> DistinctSample(uint64_t n, uint64_t count, uint64_t seed);

// ---- the probe run ----------------------------------------------------------------------------

struct FreshnessOptions {
  std::string target;              // loopback only
  uint64_t num_users = 100000;     // probe users are drawn from <user_prefix>0..num_users-1
  std::string user_prefix = "u";
  int probes = 500;                // distinct users, one probe each
  int k = 10;
  std::string model;               // empty = the server's default model
  absl::Duration gap = absl::Milliseconds(40);  // mean pause between probes (uniform 0.5x..1.5x)
  absl::Duration timeout = absl::Seconds(5);    // per probe: give up waiting for a reflecting answer
  absl::Duration deadline = absl::Seconds(2);   // per call
  absl::Duration time_limit = absl::Hours(2);   // the whole run stops (with fewer probes) after this
  uint64_t seed = 1;
};

struct ProbeRecord {
  std::string user_id;
  std::string clicked;
  bool judged = false;             // false: skipped (fallback answer, too few items, call error,
                                   // another model version answered, or the control failed)
  std::string skip_reason;
  bool reflected = false;
  int attempts = 0;                // Recommend calls after the ack, the reflecting one included
  int64_t log_ns = 0;              // LogInteractions round trip
  int64_t freshness_ns = 0;        // ack -> reflecting answer (reflected only)
  int64_t recommend_ns = 0;        // round trip of the reflecting Recommend (reflected only)
  Reflection first;                // verdict on the first answer after the ack
};

struct FreshnessResult {
  std::vector<ProbeRecord> probes;
  uint64_t judged = 0;
  uint64_t reflected = 0;
  uint64_t reflected_first = 0;    // reflected by the first Recommend after the ack
  uint64_t model_changed = 0;      // skipped because another model version answered
  uint64_t control_failed = 0;     // skipped because two answers before the click differed
  Histogram freshness;             // ns, reflected probes
  Histogram log_ack;               // ns, LogInteractions round trip
  Histogram reflecting_recommend;  // ns, round trip of the reflecting Recommend
  int max_attempts = 0;
  double seconds = 0;              // wall time of the run

  // Quantile of ack -> reflection over every judged probe, an unreflected probe counting as
  // infinitely late (so the p99 is infinite when more than 1 % never reflected). ns; INT64_MAX
  // for "never".
  int64_t FreshnessQuantileNs(double q) const;
};

absl::StatusOr<FreshnessResult> RunFreshness(const FreshnessOptions& options,
                                             const std::function<void(const std::string&)>& progress);

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_FRESHNESS_H_
