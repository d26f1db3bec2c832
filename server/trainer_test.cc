// Trainer and engine together on a real store, in process, with a fake clock: schedule, gate,
// rollback, and serving while versions are swapped.
#include "server/trainer.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/demo_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine.h"
#include "testing/engine_harness.h"

namespace recd::server {
namespace {

using ::testing::HasSubstr;


class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(TrainerOptions()); }

  void Open(TrainerOptions trainer_options) { ASSERT_TRUE(h_.Open(ServerOptions(), std::move(trainer_options))); }

  // Logs the demo data's interactions [begin, end) (800 users, 500 items, 30k interactions).
  void LogDemo(size_t begin, size_t end) {
    if (demo_.interactions.empty()) {
      DemoDataOptions o;
      o.num_users = 800;
      o.num_items = 500;
      o.num_interactions = 30000;
      o.end_time_ms = testing::EngineHarness::kStartMs;
      auto demo = GenerateDemoData(o);
      ASSERT_TRUE(demo.ok());
      demo_ = std::move(*demo);
    }
    std::vector<recd::v1::Interaction> batch;
    for (size_t i = begin; i < std::min(end, demo_.interactions.size()); ++i) {
      const ExternalInteraction& e = demo_.interactions[i];
      recd::v1::Interaction& in = batch.emplace_back();
      in.set_user_id(e.user_id);
      in.set_item_id(e.item_id);
      in.set_event_type(static_cast<recd::v1::EventType>(e.event));
      if (e.has_value) in.set_value(e.value);
      in.set_timestamp_ms(e.timestamp_ms);
    }
    ASSERT_TRUE(h_.Log(batch));
  }

  // The n-th distinct user of the first `prefix` logged interactions.
  std::string ActiveUser(size_t n, size_t prefix = 20000) {
    std::vector<std::string> users;
    absl::flat_hash_set<std::string> seen;
    for (size_t i = 0; i < prefix && i < demo_.interactions.size(); ++i) {
      if (seen.insert(demo_.interactions[i].user_id).second) users.push_back(demo_.interactions[i].user_id);
    }
    return users[n % users.size()];
  }

  uint64_t LiveVersion(const std::string& name) { return h_.LiveVersion(name); }

  recd::v1::ModelInfo Info(const std::string& name) {
    recd::v1::GetModelInfoRequest request;
    request.set_model(name);
    recd::v1::GetModelInfoResponse response;
    EXPECT_TRUE(h_.engine().GetModelInfo(request, &response).ok());
    return response.models(0);
  }

  testing::EngineHarness h_;
  DemoDataset demo_;
};

TEST_F(TrainerTest, IntervalTriggerNeedsTimeAndNewInteractions) {
  TrainerOptions o;
  o.retrain_interval_seconds = 60;
  Open(o);
  LogDemo(0, 20000);
  EXPECT_FALSE(h_.trainer().ScheduleDue());  // nothing elapsed yet
  h_.clock().AdvanceMs(59'000);
  EXPECT_FALSE(h_.trainer().Tick());
  h_.clock().AdvanceMs(1'000);
  EXPECT_TRUE(h_.trainer().ScheduleDue());
  ASSERT_TRUE(h_.trainer().Tick());
  EXPECT_EQ(LiveVersion("pure_svd"), 1u);
  EXPECT_EQ(LiveVersion("popularity"), 1u);

  // An hour later with nothing new logged: no run.
  h_.clock().AdvanceMs(3'600'000);
  EXPECT_FALSE(h_.trainer().Tick());
  // Something new, and the interval has passed since the last run: run.
  LogDemo(20000, 20100);
  EXPECT_TRUE(h_.trainer().Tick());
  EXPECT_EQ(LiveVersion("popularity"), 2u);
}

TEST_F(TrainerTest, InteractionCountTrigger) {
  TrainerOptions o;
  o.retrain_after_interactions = 1000;
  Open(o);
  LogDemo(0, 999);
  EXPECT_FALSE(h_.trainer().Tick());
  LogDemo(999, 1000);
  EXPECT_TRUE(h_.trainer().ScheduleDue());
  EXPECT_TRUE(h_.trainer().Tick());
  EXPECT_EQ(LiveVersion("pure_svd"), 1u);
  EXPECT_FALSE(h_.trainer().Tick());  // the count restarts at each run
  LogDemo(1000, 1999);
  EXPECT_FALSE(h_.trainer().ScheduleDue());
  LogDemo(1999, 2000);
  EXPECT_TRUE(h_.trainer().Tick());
  EXPECT_EQ(LiveVersion("pure_svd"), 2u);
}

TEST_F(TrainerTest, BackgroundThreadRunsTheScheduleAndTrainNow) {
  TrainerOptions o;
  o.retrain_after_interactions = 5000;
  o.poll_interval = absl::Milliseconds(10);
  Open(o);
  h_.trainer().Start();
  LogDemo(0, 6000);
  for (int i = 0; i < 1000 && LiveVersion("pure_svd") == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(LiveVersion("pure_svd"), 1u);
  auto done = h_.trainer().Enqueue({"pure_svd"});
  ASSERT_EQ(done.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  ASSERT_EQ(done.get().size(), 1u);
  h_.trainer().Stop();
}

// Training yields the CPU to request handlers: nice +10, and SCHED_IDLE when asked (recd's
// default), for the trainer thread and the threads training starts.
TEST_F(TrainerTest, TrainingRunsAtLowOrIdlePriority) {
  const int base_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  LogDemo(0, 6000);
  for (const bool idle : {true, false}) {
    SCOPED_TRACE(idle ? "idle" : "low");
    TrainerOptions o;
    o.idle_priority = idle;
    std::atomic<int> policy{-1}, child_policy{-1}, nice{-100};
    o.candidate_hook = [&](ModelData&) {
      policy = sched_getscheduler(0);
      nice = getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
      std::thread([&] { child_policy = sched_getscheduler(0); }).join();
    };
    Open(o);
    h_.trainer().Start();
    auto done = h_.trainer().Enqueue({"pure_svd"});
    ASSERT_EQ(done.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    h_.trainer().Stop();
    EXPECT_EQ(policy.load(), idle ? SCHED_IDLE : SCHED_OTHER);
    EXPECT_EQ(child_policy.load(), policy.load());
    EXPECT_EQ(nice.load(), std::min(19, base_nice + 10));
  }
}

TEST_F(TrainerTest, GateRejectsABrokenCandidateAndKeepsTheLiveVersion) {
  LogDemo(0, 20000);
  ASSERT_EQ(h_.trainer().RunNow({})[1].outcome, TrainResult::Outcome::kPublished);
  ASSERT_EQ(LiveVersion("pure_svd"), 1u);

  // A candidate whose item factors are scrambled: the structure is gone.
  TrainerOptions broken;
  broken.candidate_hook = [](ModelData& data) {
    // Permute the item rows: every item gets another item's vector. (Permuting dimensions would
    // not do: it preserves every dot product.)
    EmbeddingMatrix& f = data.item_factors;
    std::mt19937 rng(7);
    for (Eigen::Index r = f.rows() - 1; r > 0; --r) {
      f.row(r).swap(f.row(static_cast<Eigen::Index>(rng() % static_cast<uint32_t>(r + 1))));
    }
  };
  Open(broken);
  LogDemo(20000, 30000);
  std::vector<TrainResult> results = h_.trainer().RunNow({"pure_svd"});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, TrainResult::Outcome::kRejected) << results[0].message;
  EXPECT_THAT(results[0].message, HasSubstr("below the live v1"));
  EXPECT_EQ(results[0].version, 2u);
  EXPECT_EQ(LiveVersion("pure_svd"), 1u);

  const recd::v1::ModelInfo info = Info("pure_svd");
  EXPECT_EQ(info.live_version(), 1u);
  ASSERT_EQ(info.versions_size(), 2);
  EXPECT_EQ(info.versions(0).version(), 2u);
  EXPECT_EQ(info.versions(0).state(), recd::v1::VERSION_REJECTED);
  EXPECT_THAT(info.versions(0).reject_reason(), HasSubstr("holdout HR@10"));
  EXPECT_GE(info.versions(0).metrics().at("holdout_users"), 20.0);
  EXPECT_EQ(info.versions(1).state(), recd::v1::VERSION_LIVE);

  // The same data without the sabotage passes the gate.
  Open(TrainerOptions());
  results = h_.trainer().RunNow({"pure_svd"});
  EXPECT_EQ(results[0].outcome, TrainResult::Outcome::kPublished) << results[0].message;
  EXPECT_EQ(LiveVersion("pure_svd"), 3u);
  const recd::v1::ModelInfo passed = Info("pure_svd");
  EXPECT_GT(passed.versions(0).metrics().at("holdout_hr@10"), 0.05);
  EXPECT_GT(passed.versions(0).metrics().at("holdout_users"), 20.0);
}

// A gated candidate is trained without the holdout, yet its trained_through_sequence covers it:
// the held-out users are published without a row, so the engine folds them in from their whole
// history (latest interactions included) instead of serving a row that misses them.
TEST_F(TrainerTest, HeldOutUsersAreFoldedInFromTheirWholeHistoryAfterAGatedPublish) {
  LogDemo(0, 20000);
  ASSERT_EQ(h_.trainer().RunNow({"pure_svd"})[0].outcome, TrainResult::Outcome::kPublished);
  LogDemo(20000, 30000);
  const std::vector<TrainResult> results = h_.trainer().RunNow({"pure_svd"});
  ASSERT_EQ(results[0].outcome, TrainResult::Outcome::kPublished) << results[0].message;
  const recd::v1::ModelInfo info = Info("pure_svd");
  const int held_out = static_cast<int>(info.versions(0).metrics().at("holdout_users"));
  ASSERT_GT(held_out, 20);

  const std::shared_ptr<const ServingModel> live = h_.registry().Live("pure_svd");
  ASSERT_NE(live, nullptr);
  absl::flat_hash_set<std::string> recent;
  for (size_t i = 20000; i < demo_.interactions.size(); ++i) recent.insert(demo_.interactions[i].user_id);
  int without_row = 0, with_row = 0;
  for (const std::string& user : recent) {
    const std::optional<UserIndex> u = h_.store().FindUser(user);
    ASSERT_TRUE(u.has_value());
    if (live->model->HasUserEmbedding(*u)) {
      ++with_row;
      continue;
    }
    ++without_row;
    const recd::v1::RecommendResponse response = h_.Recommend(user, 10);
    EXPECT_EQ(response.source(), recd::v1::SOURCE_MODEL) << user;
    EXPECT_EQ(response.items_size(), 10) << user;
  }
  EXPECT_GE(without_row, held_out);
  // Users with nothing new keep their trained rows.
  for (size_t i = 0; i < 20000; ++i) {
    const std::string& user = demo_.interactions[i].user_id;
    if (recent.contains(user)) continue;
    const std::optional<UserIndex> u = h_.store().FindUser(user);
    ASSERT_TRUE(u.has_value());
    with_row += live->model->HasUserEmbedding(*u);
  }
  EXPECT_GT(with_row, 0);
}

TEST_F(TrainerTest, RollbackAndVersionRetention) {
  TrainerOptions o;
  o.keep_versions = 3;
  o.gate_enabled = false;
  Open(o);
  LogDemo(0, 10000);
  for (int i = 0; i < 5; ++i) {
    LogDemo(10000 + i * 100, 10100 + i * 100);
    ASSERT_EQ(h_.trainer().RunNow({"pure_svd"})[0].outcome, TrainResult::Outcome::kPublished);
  }
  EXPECT_EQ(LiveVersion("pure_svd"), 5u);
  recd::v1::ModelInfo info = Info("pure_svd");
  ASSERT_EQ(info.versions_size(), 3);  // 5, 4, 3 kept
  EXPECT_EQ(info.versions(2).version(), 3u);

  recd::v1::RollbackModelRequest rollback;
  rollback.set_model("pure_svd");
  recd::v1::RollbackModelResponse response;
  ASSERT_TRUE(h_.engine().RollbackModel(rollback, &response).ok());
  EXPECT_EQ(response.live_version(), 4u);
  EXPECT_EQ(LiveVersion("pure_svd"), 4u);
  rollback.set_version(3);
  ASSERT_TRUE(h_.engine().RollbackModel(rollback, &response).ok());
  EXPECT_EQ(LiveVersion("pure_svd"), 3u);
  rollback.set_version(1);
  EXPECT_EQ(h_.engine().RollbackModel(rollback, &response).code(), absl::StatusCode::kNotFound);

  // The rollback is durable: a restart serves v3.
  Open(o);
  EXPECT_EQ(LiveVersion("pure_svd"), 3u);
}

TEST_F(TrainerTest, ColdItemsGetTheExplorationShare) {
  LogDemo(0, 20000);
  ASSERT_EQ(h_.trainer().RunNow({})[1].outcome, TrainResult::Outcome::kPublished);
  // Two items the model has never seen, one of them popular right now.
  recd::v1::LogInteractionsRequest request;
  for (int u = 0; u < 30; ++u) {
    auto* in = request.add_interactions();
    in->set_user_id(absl::StrCat("fan", u));
    in->set_item_id("brand-new-hit");
  }
  auto* quiet = request.add_interactions();
  quiet->set_user_id("fan0");
  quiet->set_item_id("brand-new-quiet");
  recd::v1::LogInteractionsResponse logged;
  ASSERT_TRUE(h_.engine().LogInteractions(request, &logged).ok());
  h_.engine().Maintain();

  recd::v1::RecommendRequest rec;
  rec.set_user_id(ActiveUser(3));
  rec.set_k(10);
  recd::v1::RecommendResponse response;
  ASSERT_TRUE(h_.engine().Recommend(rec, &response).ok());
  ASSERT_EQ(response.items_size(), 10);
  EXPECT_EQ(response.items(9).item_id(), "brand-new-hit");
  EXPECT_TRUE(response.items(9).exploration());
  for (int i = 0; i < 9; ++i) EXPECT_FALSE(response.items(i).exploration());

  // k = 20 gives two exploration slots; the fan who already has both gets neither.
  rec.set_k(20);
  response.Clear();
  ASSERT_TRUE(h_.engine().Recommend(rec, &response).ok());
  EXPECT_EQ(response.items(18).item_id(), "brand-new-hit");
  EXPECT_EQ(response.items(19).item_id(), "brand-new-quiet");
  rec.set_user_id("fan0");
  response.Clear();
  ASSERT_TRUE(h_.engine().Recommend(rec, &response).ok());
  for (const auto& item : response.items()) EXPECT_THAT(item.item_id(), ::testing::Not(HasSubstr("brand-new")));

  // Filters apply to exploration too.
  rec.set_user_id(ActiveUser(3));
  rec.mutable_filter()->add_include_categories("genre-01");
  response.Clear();
  ASSERT_TRUE(h_.engine().Recommend(rec, &response).ok());
  for (const auto& item : response.items()) EXPECT_FALSE(item.exploration());
}

// Regression (fuzz/engine_fuzzer): no item is placed twice, by the model and by exploration on
// one page or across pages. The cold list holds items with all-zero rows (which the model scores
// 0) and, until the next Maintain, items that a just-published version has rows for.
TEST_F(TrainerTest, ExploredItemsAreNeverAlsoPlacedByTheModel) {
  LogDemo(0, 20000);
  recd::v1::Item idle;
  idle.set_item_id("idle");  // in the catalogue, never interacted with: an all-zero row
  ASSERT_TRUE(h_.Upsert({idle}));
  ASSERT_TRUE(h_.TrainAll());
  ASSERT_TRUE(h_.Log("fan0", "late"));  // newer than the model: cold
  h_.engine().Maintain();
  ASSERT_TRUE(h_.TrainAll());  // "late" now has a row, but the cold list predates it
  for (const bool refreshed : {false, true}) {
    if (refreshed) h_.engine().Maintain();
    recd::v1::RecommendRequest rec;
    rec.set_user_id(ActiveUser(3));
    rec.set_k(200);
    std::set<std::string> placed;
    int explored = 0;
    for (int page = 0; page < 5; ++page) {
      const recd::v1::RecommendResponse response = h_.Recommend(rec);
      for (const auto& item : response.items()) {
        EXPECT_TRUE(placed.insert(item.item_id()).second)
            << item.item_id() << " placed twice (page " << page << ", list refreshed: " << refreshed << ")";
        explored += item.exploration();
      }
      if (response.next_page_token().empty()) break;
      rec.set_page_token(response.next_page_token());
    }
    EXPECT_GT(explored, 0);
    EXPECT_GT(placed.size(), 300u);  // the pages reached the model's zero and negative scores
  }
}

TEST_F(TrainerTest, DeleteUserErasesLiveRowsAtOnceAndTrainingKeepsThemErased) {
  LogDemo(0, 20000);
  ASSERT_TRUE(h_.TrainAll());
  const std::string victim = ActiveUser(5);
  const UserIndex index = *h_.store().FindUser(victim);
  auto before = h_.registry().Live("pure_svd");
  ASSERT_TRUE(HasUserRows(before->model->data(), index));

  recd::v1::DeleteUserRequest request;
  request.set_user_id(victim);
  recd::v1::DeleteUserResponse response;
  ASSERT_TRUE(h_.engine().DeleteUser(request, &response).ok());
  auto after = h_.registry().Live("pure_svd");
  EXPECT_NE(after, before);                                 // a new snapshot...
  EXPECT_EQ(after->meta().version, before->meta().version);  // ...of the same version
  EXPECT_FALSE(HasUserRows(after->model->data(), index));
  EXPECT_TRUE(HasUserRows(before->model->data(), index));  // in-flight readers' copy untouched
  // Other users keep their rows.
  EXPECT_TRUE(HasUserRows(after->model->data(), *h_.store().FindUser(ActiveUser(6))));

  // The next version (trained with a warm start from the erased one) has no row either.
  LogDemo(20000, 21000);
  ASSERT_TRUE(h_.TrainAll());
  EXPECT_EQ(h_.LiveVersion("pure_svd"), 2u);
  EXPECT_FALSE(HasUserRows(h_.registry().Live("pure_svd")->model->data(), index));
}

TEST_F(TrainerTest, FoldInsAreReusedUntilTheHistoryChangesAndForgottenOnDelete) {
  LogDemo(0, 20000);
  ASSERT_TRUE(h_.TrainAll());
  const std::string user = ActiveUser(7);
  const UserIndex index = *h_.store().FindUser(user);
  ASSERT_TRUE(h_.Log(user, demo_.interactions[25000].item_id));  // newer than the model
  const auto live = h_.registry().Live("pure_svd");
  ASSERT_EQ(live->fold_ins->size(), 0u);

  const recd::v1::RecommendResponse first = h_.Recommend(user, 10);
  ASSERT_EQ(first.source(), recd::v1::SOURCE_MODEL);
  ASSERT_EQ(first.items_size(), 10);
  EXPECT_EQ(live->fold_ins->size(), 1u);
  // The scores are those of a fresh fold-in of the whole history.
  auto history = h_.store().GetUserHistory(index, ServerOptions().max_history);
  ASSERT_TRUE(history.ok());
  const EmbeddingVector folded = live->model->FoldInUser(*history);
  ASSERT_GT(folded.size(), 0);
  for (const recd::v1::ScoredItem& item : first.items()) {
    const float want = live->model->item_factors().row(*h_.store().FindItem(item.item_id())).dot(folded);
    EXPECT_NEAR(item.score(), want, 1e-4f * (1.0f + std::fabs(want))) << item.item_id();
  }
  // Asked again: the same answer, from the cached vector.
  const recd::v1::RecommendResponse again = h_.Recommend(user, 10);
  ASSERT_EQ(again.items_size(), first.items_size());
  for (int i = 0; i < first.items_size(); ++i) {
    EXPECT_EQ(again.items(i).item_id(), first.items(i).item_id());
    EXPECT_EQ(again.items(i).score(), first.items(i).score());
  }

  // A new interaction changes the history, so the vector is folded in again: the clicked item is
  // gone and the other scores moved.
  ASSERT_TRUE(h_.Log(user, first.items(0).item_id()));
  const recd::v1::RecommendResponse after = h_.Recommend(user, 10);
  ASSERT_EQ(after.items_size(), 10);
  bool moved = false;
  for (const recd::v1::ScoredItem& item : after.items()) {
    EXPECT_NE(item.item_id(), first.items(0).item_id());
    for (const recd::v1::ScoredItem& old : first.items()) {
      if (old.item_id() == item.item_id() && old.score() != item.score()) moved = true;
    }
  }
  EXPECT_TRUE(moved);
  EXPECT_EQ(live->fold_ins->size(), 1u);  // replaced, not added

  // DeleteUser leaves no vector of the user in the live snapshot's cache.
  recd::v1::DeleteUserRequest request;
  request.set_user_id(user);
  recd::v1::DeleteUserResponse response;
  ASSERT_TRUE(h_.engine().DeleteUser(request, &response).ok());
  EXPECT_EQ(h_.registry().Live("pure_svd")->fold_ins->size(), 0u);
  EXPECT_EQ(live->fold_ins->size(), 0u);
}

TEST_F(TrainerTest, ReadersNeverFailWhileVersionsAreSwappedAndRolledBack) {
  TrainerOptions o;
  o.gate_enabled = false;
  Open(o);
  LogDemo(0, 20000);
  ASSERT_EQ(h_.trainer().RunNow({})[1].outcome, TrainResult::Outcome::kPublished);

  std::vector<std::string> users;
  for (int n = 0; n < 300; ++n) users.push_back(ActiveUser(n));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, answered{0};
  std::mutex versions_mu;
  std::set<uint64_t> seen_versions;
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      std::set<uint64_t> local;
      for (int i = 0; !stop.load() || i < 50; ++i) {
        recd::v1::RecommendRequest request;
        request.set_user_id(users[(t * 97 + i * 13) % users.size()]);
        request.set_k(10);
        recd::v1::RecommendResponse response;
        absl::Status s = h_.engine().Recommend(request, &response);
        if (!s.ok() || response.items_size() != 10 || response.source() != recd::v1::SOURCE_MODEL) {
          ++failures;
        }
        local.insert(response.model_version());
        ++answered;
      }
      std::lock_guard<std::mutex> lock(versions_mu);
      seen_versions.insert(local.begin(), local.end());
    });
  }
  std::thread writer([&] {
    for (int round = 0; round < 6; ++round) {
      LogDemo(20000 + round * 500, 20500 + round * 500);
      h_.trainer().RunNow({"pure_svd"});
      recd::v1::RollbackModelRequest rollback;
      rollback.set_model("pure_svd");
      recd::v1::RollbackModelResponse response;
      if (!h_.engine().RollbackModel(rollback, &response).ok()) ++failures;
    }
    stop = true;
  });
  writer.join();
  for (std::thread& r : readers) r.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(answered.load(), 200);
  EXPECT_GT(seen_versions.size(), 1u) << "readers should have observed several versions";
}

}  // namespace
}  // namespace recd::server
