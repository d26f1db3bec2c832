// The RPCs recload sends and the workload mix, parsed from "recommend:70,similar:20,log:10".
#ifndef RECD_LOADTEST_MIX_H_
#define RECD_LOADTEST_MIX_H_

#include <array>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "loadtest/zipf.h"

namespace recd::loadtest {

enum class Method : int {
  kRecommend = 0,
  kRecommendBatch = 1,
  kSimilarItems = 2,
  kLogInteractions = 3,
  kHealth = 4,  // grpc.health.v1.Health/Check: the gRPC floor on this machine
};
inline constexpr int kNumMethods = 5;

// Short names used in --mix, the table and the JSON: recommend, batch, similar, log, health.
const char* MethodName(Method method);
// Full gRPC method names, e.g. "recd.v1.Recommender/Recommend".
const char* MethodRpcName(Method method);
// Parses a short name (also accepts the RPC names "Recommend", "RecommendBatch", ...).
absl::StatusOr<Method> ParseMethod(absl::string_view name);

// Relative weights of the methods; picks one per request.
class Mix {
 public:
  // Comma-separated name:weight pairs (weight a non-negative number; a bare name means weight 1).
  // InvalidArgument for unknown names, repeats, bad weights or an all-zero mix.
  static absl::StatusOr<Mix> Parse(absl::string_view spec);
  static Mix Only(Method method);

  Method Pick(Rng& rng) const;
  // Share of requests of `method`, in [0, 1].
  double Share(Method method) const { return share_[static_cast<int>(method)]; }
  bool Has(Method method) const { return Share(method) > 0; }
  // The canonical spec, e.g. "recommend:0.7,similar:0.3".
  std::string ToString() const;

 private:
  std::array<double, kNumMethods> share_{};
  std::array<double, kNumMethods> cumulative_{};
};

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_MIX_H_
