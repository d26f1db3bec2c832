#include "loadtest/mix.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace recd::loadtest {
namespace {

struct MethodNames {
  const char* short_name;
  const char* rpc_short;
  const char* rpc_full;
};
constexpr std::array<MethodNames, kNumMethods> kNames = {{
    {"recommend", "Recommend", "recd.v1.Recommender/Recommend"},
    {"batch", "RecommendBatch", "recd.v1.Recommender/RecommendBatch"},
    {"similar", "SimilarItems", "recd.v1.Recommender/SimilarItems"},
    {"log", "LogInteractions", "recd.v1.Recommender/LogInteractions"},
    {"health", "Check", "grpc.health.v1.Health/Check"},
}};

}  // namespace

const char* MethodName(Method method) { return kNames[static_cast<int>(method)].short_name; }
const char* MethodRpcName(Method method) { return kNames[static_cast<int>(method)].rpc_full; }

absl::StatusOr<Method> ParseMethod(absl::string_view name) {
  name = absl::StripAsciiWhitespace(name);
  for (int m = 0; m < kNumMethods; ++m) {
    if (name == kNames[m].short_name || name == kNames[m].rpc_short) return static_cast<Method>(m);
  }
  std::vector<std::string> known;
  for (const MethodNames& n : kNames) known.push_back(n.short_name);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown method '", name, "'; known: ", absl::StrJoin(known, ", ")));
}

absl::StatusOr<Mix> Mix::Parse(absl::string_view spec) {
  std::array<double, kNumMethods> weights{};
  std::array<bool, kNumMethods> seen{};
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(entry, absl::MaxSplits(':', 1));
    absl::StatusOr<Method> method = ParseMethod(kv.first);
    if (!method.ok()) return absl::InvalidArgumentError(absl::StrCat("--mix: ", method.status().message()));
    double weight = 1.0;
    const absl::string_view w = absl::StripAsciiWhitespace(kv.second);
    if (!w.empty() && (!absl::SimpleAtod(w, &weight) || !std::isfinite(weight) || weight < 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mix: weight of '", kv.first, "' must be a number >= 0, got '", w, "'"));
    }
    const int m = static_cast<int>(*method);
    if (seen[m]) return absl::InvalidArgumentError(absl::StrCat("--mix: '", kv.first, "' listed twice"));
    seen[m] = true;
    weights[m] = weight;
  }
  double total = 0;
  for (double w : weights) total += w;
  if (total <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mix: '", spec, "' has no positive weight; e.g. recommend:70,similar:20,log:10"));
  }
  Mix mix;
  double running = 0;
  for (int m = 0; m < kNumMethods; ++m) {
    mix.share_[m] = weights[m] / total;
    running += mix.share_[m];
    mix.cumulative_[m] = running;
  }
  // Make the last positive entry exactly 1 so Pick never runs past it.
  for (int m = kNumMethods - 1; m >= 0; --m) {
    if (mix.share_[m] > 0) {
      for (int j = m; j < kNumMethods; ++j) mix.cumulative_[j] = 1.0;
      break;
    }
  }
  return mix;
}

Mix Mix::Only(Method method) { return *Parse(MethodName(method)); }

Method Mix::Pick(Rng& rng) const {
  const double u = rng.Uniform();
  for (int m = 0; m < kNumMethods; ++m) {
    if (share_[m] > 0 && u < cumulative_[m]) return static_cast<Method>(m);
  }
  for (int m = kNumMethods - 1; m >= 0; --m) {
    if (share_[m] > 0) return static_cast<Method>(m);
  }
  return Method::kRecommend;
}

std::string Mix::ToString() const {
  std::vector<std::string> parts;
  for (int m = 0; m < kNumMethods; ++m) {
    if (share_[m] > 0) parts.push_back(absl::StrCat(kNames[m].short_name, ":", share_[m]));
  }
  return absl::StrJoin(parts, ",");
}

}  // namespace recd::loadtest
