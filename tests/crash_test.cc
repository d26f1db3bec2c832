// Durability under crashes: the real recd binary is killed with SIGKILL 20 times at seeded
// random moments, during ingestion by concurrent clients and during training, and restarted each
// time. After every restart:
//  * every acknowledged LogInteractions batch is present (its user is known and each of its
//    items is in the user's history), and no unacknowledged batch is half-present (batches are
//    atomic);
//  * the interaction count lies between the acknowledged and the attempted totals;
//  * pure_svd's live version never goes backwards (it is at least the newest version any client
//    saw live before the kill) and Recommend answers from it.
// At the end every batch of every cycle is checked once more, so later crashes must not lose
// earlier writes either.
//
// The schedule is deterministic for a seed (RECD_CRASH_SEED overrides it; the seed is printed).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "testing/workload.h"

namespace recd {
namespace {

using ::recd::testing::RecdProcess;
using ::recd::testing::TempDir;

constexpr int kCycles = 20;
constexpr int kClients = 3;
constexpr int kDemoInteractions = 50000;  // --demo_data=auto loads this many
constexpr int kDemoItems = 2000;
// pure_svd trains for many seconds on the demo data with these (see continuous_test.cc); the
// fast ones finish in well under a second, so kills land before, during and after a publish.
const char kSlowParams[] = "--model_params=pure_svd.rank=800,pure_svd.power_iterations=30";
const char kFastParams[] = "--model_params=pure_svd.rank=16";

struct Batch {
  std::string user;
  std::vector<std::string> items;
  int cycle = 0;
  bool acknowledged = false;
};

std::string DemoItem(int one_based) { return absl::StrFormat("i%04d", one_based); }

// Logs one-user batches of 1..6 distinct demo items until the server stops answering. Each
// batch's user is new, so its presence is checkable on its own.
void IngestUntilKilled(const RecdProcess& server, int cycle, int client, uint64_t seed,
                       std::atomic<int>* acknowledged, std::vector<Batch>* batches) {
  auto stub = server.NewStub();
  std::mt19937_64 rng(seed);
  for (int n = 0;; ++n) {
    Batch batch;
    batch.cycle = cycle;
    batch.user = absl::StrCat("crash-", cycle, "-", client, "-", n);
    std::set<int> chosen;
    const int size = 1 + static_cast<int>(rng() % 6);
    while (static_cast<int>(chosen.size()) < size) chosen.insert(1 + static_cast<int>(rng() % kDemoItems));
    recd::v1::LogInteractionsRequest request;
    for (int item : chosen) {
      batch.items.push_back(DemoItem(item));
      recd::v1::Interaction* in = request.add_interactions();
      in->set_user_id(batch.user);
      in->set_item_id(batch.items.back());
      in->set_event_type(recd::v1::EVENT_CLICK);
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    recd::v1::LogInteractionsResponse response;
    const grpc::Status s = stub->LogInteractions(&context, request, &response);
    batch.acknowledged = s.ok() && static_cast<int>(response.accepted()) == request.interactions_size();
    batches->push_back(std::move(batch));
    if (!s.ok()) return;  // the server is gone; this batch may or may not have landed
    ++*acknowledged;
    // A few hundred batches per cycle are plenty, and keep the checks quick.
    absl::SleepFor(absl::Milliseconds(5));
  }
}

uint64_t LiveVersion(recd::v1::Recommender::Stub& stub, const std::string& model, uint64_t* interactions = nullptr) {
  recd::v1::GetModelInfoResponse info;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!stub.GetModelInfo(&context, recd::v1::GetModelInfoRequest(), &info).ok()) return 0;
  if (interactions != nullptr) *interactions = info.num_interactions();
  for (const auto& m : info.models()) {
    if (m.name() == model) return m.live_version();
  }
  return 0;
}

// Checks the batches in [begin, end): acknowledged ones must be wholly present, and none may
// be partly present (batches are atomic). Restricted to a batch's items with seen items
// excluded, a user who has them all gets nothing back; an unknown user gets the popularity
// fallback. One RecommendBatch call covers up to 200 batches (their users are distinct).
void CheckBatches(recd::v1::Recommender::Stub& stub, const std::vector<Batch>& batches, size_t begin, size_t end,
                  int* unacknowledged_present) {
  for (size_t chunk = begin; chunk < end; chunk += 200) {
    const size_t chunk_end = std::min(end, chunk + 200);
    recd::v1::RecommendBatchRequest request;
    for (size_t i = chunk; i < chunk_end; ++i) {
      recd::v1::RecommendRequest* r = request.add_requests();
      r->set_user_id(batches[i].user);
      r->set_k(10);
      for (const std::string& item : batches[i].items) r->mutable_filter()->add_include_item_ids(item);
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    recd::v1::RecommendBatchResponse response;
    const grpc::Status s = stub.RecommendBatch(&context, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(response.responses_size(), request.requests_size());
    for (size_t i = chunk; i < chunk_end; ++i) {
      const Batch& batch = batches[i];
      const recd::v1::RecommendResponse& answer = response.responses(static_cast<int>(i - chunk));
      const bool known = answer.source() == recd::v1::SOURCE_MODEL;
      if (known) {
        EXPECT_EQ(answer.items_size(), 0) << batch.user << " (cycle " << batch.cycle << ") has only part of its batch: "
                                          << answer.items_size() << " of " << batch.items.size() << " missing";
      } else {
        EXPECT_EQ(answer.fallback_reason(), "unknown user") << batch.user;
      }
      if (batch.acknowledged) {
        EXPECT_TRUE(known) << "the acknowledged batch of " << batch.user << " (cycle " << batch.cycle << ") was lost";
      } else if (known) {
        ++*unacknowledged_present;
      }
    }
  }
}

TEST(CrashTest, AcknowledgedWritesAndPublishedModelsSurviveRepeatedSigkill) {
  uint64_t seed = 20240826;
  if (const char* env = std::getenv("RECD_CRASH_SEED")) seed = std::strtoull(env, nullptr, 10);
  std::printf("crash schedule seed %llu (set RECD_CRASH_SEED to replay another)\n",
              static_cast<unsigned long long>(seed));
  std::mt19937_64 schedule(seed);
  auto uniform_ms = [&](int lo, int hi) { return absl::Milliseconds(lo + static_cast<int>(schedule() % (hi - lo + 1))); };

  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  const std::vector<std::string> common = {"--gate_tolerance=-1", "--drain_seconds=1"};
  std::vector<Batch> batches;
  uint64_t floor_version = 0;  // newest pure_svd version seen live so far
  int unacknowledged_present = 0, training_kills = 0, published_during_training = 0;
  const absl::Time start = absl::Now();

  {
    std::vector<std::string> args = common;
    args.push_back("--demo_data=auto");
    args.push_back(kFastParams);
    auto server = RecdProcess::Start(data_dir, args);
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = (*server)->NewStub();
    floor_version = LiveVersion(*stub, "pure_svd");
    ASSERT_GE(floor_version, 1u);
    (*server)->Kill();
  }

  for (int cycle = 0; cycle < kCycles; ++cycle) {
    const bool during_training = cycle % 2 == 1;
    const bool slow = during_training && schedule() % 2 == 0;
    std::vector<std::string> args = common;
    args.push_back(slow ? kSlowParams : kFastParams);
    auto server = RecdProcess::Start(data_dir, args);
    ASSERT_TRUE(server.ok()) << "restart " << cycle << ": " << server.status();
    auto stub = (*server)->NewStub();

    // ---- After the previous kill: durability checks. ----
    uint64_t interactions = 0;
    const uint64_t live = LiveVersion(*stub, "pure_svd", &interactions);
    EXPECT_GE(live, floor_version) << "cycle " << cycle << ": the live version went backwards";
    floor_version = std::max(floor_version, live);
    uint64_t acked = 0, attempted = 0;
    for (const Batch& b : batches) {
      attempted += b.items.size();
      if (b.acknowledged) acked += b.items.size();
    }
    EXPECT_GE(interactions, kDemoInteractions + acked) << "cycle " << cycle;
    EXPECT_LE(interactions, kDemoInteractions + attempted) << "cycle " << cycle;
    size_t previous_begin = batches.size();
    while (previous_begin > 0 && batches[previous_begin - 1].cycle == cycle - 1) --previous_begin;
    CheckBatches(*stub, batches, previous_begin, batches.size(), &unacknowledged_present);
    recd::v1::RecommendRequest probe;
    probe.set_user_id("u0001");
    probe.set_k(5);
    recd::v1::RecommendResponse answer;
    ASSERT_TRUE(testing::Recommend(*stub, probe, &answer).ok());
    EXPECT_EQ(answer.source(), recd::v1::SOURCE_MODEL);
    EXPECT_EQ(answer.model_version(), live);
    EXPECT_EQ(answer.items_size(), 5);
    if (HasFailure()) break;

    // ---- This cycle's load, then SIGKILL at a random moment. ----
    std::vector<std::vector<Batch>> client_batches(kClients);
    std::vector<std::thread> clients;
    std::atomic<int> acknowledged{0};
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back(IngestUntilKilled, std::cref(**server), cycle, c, schedule(), &acknowledged,
                           &client_batches[c]);
    }
    // The kill's moment counts from the first acknowledged write, so every cycle kills a server
    // that is ingesting (connection setup time varies a lot on a loaded machine).
    for (int i = 0; i < 2000 && acknowledged.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
    std::atomic<bool> stop_watching{false};
    std::atomic<uint64_t> seen_live{live};
    // Tracks the newest version clients could see live: after the kill it must not be lost.
    std::thread watcher([&] {
      auto watch = (*server)->NewStub();
      while (!stop_watching.load()) {
        const uint64_t v = LiveVersion(*watch, "pure_svd");
        if (v > seen_live.load()) seen_live.store(v);
        absl::SleepFor(absl::Milliseconds(10));
      }
    });
    absl::Duration delay;
    if (during_training) {
      ++training_kills;
      recd::v1::TrainNowRequest train;  // every model, not waiting
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      recd::v1::TrainNowResponse queued;
      EXPECT_TRUE(stub->TrainNow(&context, train, &queued).ok());
      if (slow) {
        // Kill while pure_svd's long run is in progress (after its start is logged).
        for (int i = 0; i < 400 && (*server)->ReadLog().find("training pure_svd on") == std::string::npos; ++i) {
          absl::SleepFor(absl::Milliseconds(25));
        }
        delay = uniform_ms(0, 1500);
      } else {
        delay = uniform_ms(0, 1200);  // fast runs: before, during or after the publish
      }
    } else {
      delay = uniform_ms(0, 800);
    }
    absl::SleepFor(delay);
    const uint64_t before_kill = seen_live.load();
    (*server)->Kill();
    stop_watching = true;
    watcher.join();
    for (std::thread& t : clients) t.join();
    // A version seen live up to the kill itself is also a floor (the watcher may have seen it
    // after before_kill was read).
    floor_version = std::max(floor_version, std::max(before_kill, seen_live.load()));
    if (during_training && seen_live.load() > live) ++published_during_training;
    size_t acked_now = 0, total_now = 0;
    for (auto& list : client_batches) {
      for (Batch& b : list) {
        acked_now += b.acknowledged;
        ++total_now;
        batches.push_back(std::move(b));
      }
    }
    std::printf("cycle %2d: %-19s killed after %5.0f ms; %3zu/%3zu batches acknowledged; pure_svd live v%llu\n",
                cycle, during_training ? (slow ? "training (slow)" : "training (fast)") : "ingestion",
                absl::ToDoubleMilliseconds(delay), acked_now, total_now,
                static_cast<unsigned long long>(floor_version));
    EXPECT_GT(acked_now, 0u) << "cycle " << cycle << ": no batch was acknowledged before the kill";
  }

  // ---- Final restart: everything ever acknowledged, from every cycle. ----
  auto server = RecdProcess::Start(data_dir, common);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  EXPECT_GE(LiveVersion(*stub, "pure_svd"), floor_version);
  int final_unacknowledged_present = 0;
  CheckBatches(*stub, batches, 0, batches.size(), &final_unacknowledged_present);
  size_t acked = 0;
  for (const Batch& b : batches) acked += b.acknowledged;
  std::printf("%zu batches (%zu acknowledged, all present; %d unacknowledged ones landed), %d kills during "
              "training (%d after a publish), pure_svd at v%llu, %.1f s\n",
              batches.size(), acked, final_unacknowledged_present, training_kills, published_during_training,
              static_cast<unsigned long long>(floor_version), absl::ToDoubleSeconds(absl::Now() - start));
  EXPECT_EQ((*server)->Terminate(), 0);
}

}  // namespace
}  // namespace recd
