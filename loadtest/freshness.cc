#include "loadtest/freshness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "loadtest/driver.h"
#include "loadtest/target.h"
#include "loadtest/zipf.h"
#include "recd/v1/recommender.grpc.pb.h"

namespace recd::loadtest {

std::vector<RankedItem> ModelRanked(const recd::v1::RecommendResponse& response) {
  std::vector<RankedItem> out;
  for (const recd::v1::ScoredItem& item : response.items()) {
    if (!item.exploration()) out.push_back({item.item_id(), item.score()});
  }
  return out;
}

Reflection JudgeReflection(const std::vector<RankedItem>& before, const std::vector<RankedItem>& after,
                           const std::string& clicked) {
  Reflection r;
  r.item_gone = std::none_of(after.begin(), after.end(), [&](const RankedItem& i) { return i.item_id == clicked; });
  // Unmoved, the answer would be the before list's ranking again, with or without the clicked
  // item: compare the entries both lists hold once it is cut from each. Scores compare exactly:
  // the same query gives the same floats.
  std::vector<RankedItem> b;
  std::vector<RankedItem> a;
  for (const RankedItem& i : before) {
    if (i.item_id != clicked) b.push_back(i);
  }
  for (const RankedItem& i : after) {
    if (i.item_id != clicked) a.push_back(i);
  }
  bool same = a.size() >= b.size();  // fewer items than an unmoved ranking gives: it changed
  for (size_t i = 0; same && i < b.size(); ++i) same = a[i] == b[i];
  r.vector_moved = !same;
  return r;
}

std::vector<uint64_t> DistinctSample(uint64_t n, uint64_t count, uint64_t seed) {
  // A partial Fisher-Yates shuffle of [0, n) that stores only the swapped positions.
  count = std::min(count, n);
  Rng rng(StreamSeed(seed, 501));
  absl::flat_hash_map<uint64_t, uint64_t> moved;
  auto at = [&](uint64_t i) {
    auto it = moved.find(i);
    return it == moved.end() ? i : it->second;
  };
  std::vector<uint64_t> out;
  out.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t j = i + rng.UniformInt(n - i);
    const uint64_t picked = at(j);
    moved[j] = at(i);
    out.push_back(picked);
  }
  return out;
}

int64_t FreshnessResult::FreshnessQuantileNs(double q) const {
  if (judged == 0) return 0;
  // The rank-th fastest judged probe; unreflected probes rank after every reflected one.
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(judged))));
  if (rank > reflected) return INT64_MAX;
  return static_cast<int64_t>(freshness.ValueAtQuantile((static_cast<double>(rank) - 0.5) / static_cast<double>(reflected)));
}

namespace {

using recd::v1::Recommender;

std::chrono::system_clock::time_point In(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

}  // namespace

absl::StatusOr<FreshnessResult> RunFreshness(const FreshnessOptions& options,
                                             const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  if (absl::Status s = CheckLoopbackTarget(options.target); !s.ok()) return s;
  if (options.probes < 1 || options.probes > 1000000 || options.k < 2 || options.num_users < 1) {
    return absl::InvalidArgumentError("freshness needs 1 <= probes <= 1e6, k >= 2 and users >= 1");
  }
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(options.target, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(In(absl::Seconds(10)))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", options.target, " within 10 s"));
  }
  std::unique_ptr<Recommender::Stub> stub = Recommender::NewStub(channel);

  auto recommend = [&](const std::string& user, recd::v1::RecommendResponse* response) {
    recd::v1::RecommendRequest request;
    request.set_user_id(user);
    request.set_k(options.k);
    if (!options.model.empty()) request.set_model(options.model);
    grpc::ClientContext context;
    context.set_deadline(In(options.deadline));
    return stub->Recommend(&context, request, response);
  };

  FreshnessResult result;
  Rng rng(StreamSeed(options.seed, 502));
  // More candidates than probes: a user whose answer cannot be judged is replaced by the next.
  const std::vector<uint64_t> users =
      DistinctSample(options.num_users, static_cast<uint64_t>(options.probes) * 2, options.seed);
  const int64_t t_start = NowNs();
  int64_t next_report = t_start + 5'000'000'000;
  const int64_t stop_at = t_start + absl::ToInt64Nanoseconds(options.time_limit);
  for (size_t u = 0; u < users.size() && result.judged < static_cast<uint64_t>(options.probes); ++u) {
    if (NowNs() >= stop_at) {
      say("stopping: the time limit passed");
      break;
    }
    // Spread the probes in time: a pause of 0.5x..1.5x the mean gap before each.
    const int64_t gap_ns = absl::ToInt64Nanoseconds(options.gap);
    if (gap_ns > 0) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(gap_ns / 2 + static_cast<int64_t>(rng.UniformInt(gap_ns + 1))));
    }
    ProbeRecord probe;
    probe.user_id = absl::StrCat(options.user_prefix, users[u]);

    recd::v1::RecommendResponse before_response;
    if (grpc::Status s = recommend(probe.user_id, &before_response); !s.ok()) {
      probe.skip_reason = absl::StrCat("Recommend: ", s.error_message());
      result.probes.push_back(std::move(probe));
      continue;
    }
    const std::vector<RankedItem> before = ModelRanked(before_response);
    if (before_response.source() != recd::v1::SOURCE_MODEL || before.size() < 2) {
      probe.skip_reason = before_response.source() != recd::v1::SOURCE_MODEL
                              ? absl::StrCat("fallback answer: ", before_response.fallback_reason())
                              : "fewer than 2 model-ranked items";
      result.probes.push_back(std::move(probe));
      continue;
    }
    probe.clicked = before[0].item_id;
    // The control: asked again before the click, the server must give the same ranking with the
    // same scores, or "the vector moved" could not be told from noise.
    recd::v1::RecommendResponse control_response;
    if (grpc::Status s = recommend(probe.user_id, &control_response); !s.ok()) {
      probe.skip_reason = absl::StrCat("Recommend (control): ", s.error_message());
      result.probes.push_back(std::move(probe));
      continue;
    }
    if (control_response.model_version() != before_response.model_version()) {
      probe.skip_reason = "model version changed before the click";
      ++result.model_changed;
      result.probes.push_back(std::move(probe));
      continue;
    }
    if (const Reflection control = JudgeReflection(before, ModelRanked(control_response), probe.clicked);
        control.vector_moved || control.item_gone) {
      probe.skip_reason = "control failed: two answers before the click differ";
      ++result.control_failed;
      result.probes.push_back(std::move(probe));
      continue;
    }

    recd::v1::LogInteractionsRequest log;
    recd::v1::Interaction* click = log.add_interactions();
    click->set_user_id(probe.user_id);
    click->set_item_id(probe.clicked);
    click->set_event_type(recd::v1::EVENT_CLICK);
    recd::v1::LogInteractionsResponse log_response;
    grpc::ClientContext log_context;
    log_context.set_deadline(In(options.deadline));
    const int64_t t_log = NowNs();
    grpc::Status logged = stub->LogInteractions(&log_context, log, &log_response);
    const int64_t t_ack = NowNs();
    if (!logged.ok()) {
      // A write that failed is an error of the run, not a skipped probe.
      return absl::UnavailableError(absl::StrCat("LogInteractions for ", probe.user_id, ": ", logged.error_message()));
    }
    probe.log_ns = t_ack - t_log;

    const int64_t give_up = t_ack + absl::ToInt64Nanoseconds(options.timeout);
    while (true) {
      recd::v1::RecommendResponse after_response;
      const int64_t t_send = NowNs();
      grpc::Status s = recommend(probe.user_id, &after_response);
      const int64_t t_answer = NowNs();
      ++probe.attempts;
      if (!s.ok()) {
        if (t_answer >= give_up) break;
        continue;  // a failed call is an attempt that did not reflect
      }
      if (after_response.model_version() != before_response.model_version() ||
          after_response.model() != before_response.model()) {
        probe.skip_reason = absl::StrFormat("model version changed (v%d -> v%d)", before_response.model_version(),
                                            after_response.model_version());
        ++result.model_changed;
        break;
      }
      const Reflection verdict = JudgeReflection(before, ModelRanked(after_response), probe.clicked);
      if (probe.attempts == 1) probe.first = verdict;
      if (verdict.reflected()) {
        probe.reflected = true;
        probe.freshness_ns = t_answer - t_ack;
        probe.recommend_ns = t_answer - t_send;
        break;
      }
      if (t_answer >= give_up) break;
    }
    if (!probe.skip_reason.empty()) {
      result.probes.push_back(std::move(probe));
      continue;
    }
    probe.judged = true;
    ++result.judged;
    result.log_ack.Record(static_cast<uint64_t>(probe.log_ns));
    result.max_attempts = std::max(result.max_attempts, probe.attempts);
    if (probe.reflected) {
      ++result.reflected;
      if (probe.attempts == 1) ++result.reflected_first;
      result.freshness.Record(static_cast<uint64_t>(probe.freshness_ns));
      result.reflecting_recommend.Record(static_cast<uint64_t>(probe.recommend_ns));
    }
    result.probes.push_back(std::move(probe));
    if (const int64_t now = NowNs(); now >= next_report) {
      next_report = now + 5'000'000'000;
      say(absl::StrFormat("  %d probes judged, %d reflected (%d on the first Recommend)", result.judged,
                          result.reflected, result.reflected_first));
    }
  }
  result.seconds = static_cast<double>(NowNs() - t_start) / 1e9;
  if (result.judged < static_cast<uint64_t>(options.probes)) {
    say(absl::StrFormat("only %d of %d probes could be judged (see the skip reasons in the JSON)", result.judged,
                        options.probes));
  }
  return result;
}

}  // namespace recd::loadtest
