// Continuous learning against the real binary: background retrains from flags, instant user
// updates, and a SIGKILL in the middle of training.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "testing/workload.h"

namespace recd {
namespace {

using ::recd::testing::RecdProcess;
using ::recd::testing::TempDir;
using ::testing::HasSubstr;

uint64_t LiveVersion(recd::v1::Recommender::Stub& stub, const std::string& model) {
  recd::v1::GetModelInfoResponse info;
  EXPECT_TRUE(testing::GetModelInfo(stub, &info).ok());
  for (const auto& m : info.models()) {
    if (m.name() == model) return m.live_version();
  }
  return 0;
}

TEST(ContinuousTest, RetrainsInTheBackgroundAfterNInteractions) {
  TempDir dir;
  auto server = RecdProcess::Start(dir.Sub("data"), {"--models=popularity,pure_svd", "--model_params=pure_svd.rank=4",
                                                     "--retrain_after_interactions=300", "--gate_tolerance=-1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  const testing::ClusteredData data = testing::MakeClusteredData();  // 480 interactions
  ASSERT_TRUE(testing::LogInteractions(*stub, data.interactions).ok());
  // No TrainNow: the trainer thread notices the count and trains on its own.
  for (int i = 0; i < 600 && LiveVersion(*stub, "pure_svd") == 0; ++i) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_GE(LiveVersion(*stub, "pure_svd"), 1u);
  EXPECT_THAT((*server)->ReadLog(), HasSubstr("scheduled retrain"));
  EXPECT_EQ((*server)->Terminate(), 0);
}

TEST(ContinuousTest, NewUserIsPersonalisedFromTheFirstInteraction) {
  TempDir dir;
  auto server = RecdProcess::Start(dir.Sub("data"), {"--models=popularity,pure_svd", "--model_params=pure_svd.rank=4"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  const testing::ClusteredData data = testing::MakeClusteredData();
  ASSERT_TRUE(testing::UpsertItems(*stub, data.items).ok());
  ASSERT_TRUE(testing::LogInteractions(*stub, data.interactions).ok());
  ASSERT_TRUE(testing::TrainAll(*stub).ok());

  recd::v1::RecommendRequest request;
  request.set_user_id("newcomer");
  request.set_k(5);
  recd::v1::RecommendResponse before;
  ASSERT_TRUE(testing::Recommend(*stub, request, &before).ok());
  EXPECT_EQ(before.source(), recd::v1::SOURCE_POPULARITY_FALLBACK);

  // One interaction with a cluster-B item: the very next answer is personalised toward B.
  recd::v1::Interaction first;
  first.set_user_id("newcomer");
  first.set_item_id("b3");
  ASSERT_TRUE(testing::LogInteractions(*stub, {first}).ok());
  recd::v1::RecommendResponse after;
  ASSERT_TRUE(testing::Recommend(*stub, request, &after).ok());
  EXPECT_EQ(after.source(), recd::v1::SOURCE_MODEL);
  ASSERT_EQ(after.items_size(), 5);
  for (const auto& item : after.items()) {
    EXPECT_EQ(item.item_id()[0], 'b') << item.item_id();
    EXPECT_NE(item.item_id(), "b3");
  }
  EXPECT_EQ((*server)->Terminate(), 0);
}

TEST(ContinuousTest, SigkillDuringTrainingLeavesTheLastPublishedVersionServing) {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  std::vector<std::string> answer;
  {
    auto server = RecdProcess::Start(data_dir, {"--demo_data=auto"});
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = (*server)->NewStub();
    recd::v1::RecommendRequest request;
    request.set_user_id("u0001");
    request.set_k(8);
    recd::v1::RecommendResponse response;
    ASSERT_TRUE(testing::Recommend(*stub, request, &response).ok());
    answer = testing::ItemIds(response);
    ASSERT_EQ((*server)->Terminate(), 0);
  }
  {
    // The same store with hyperparameters that make pure_svd train for many seconds.
    auto server = RecdProcess::Start(
        data_dir, {"--model_params=pure_svd.rank=800,pure_svd.power_iterations=30", "--gate_tolerance=-1"});
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = (*server)->NewStub();
    recd::v1::TrainNowRequest train;
    train.add_models("pure_svd");
    grpc::ClientContext context;
    recd::v1::TrainNowResponse queued;
    ASSERT_TRUE(stub->TrainNow(&context, train, &queued).ok());
    bool started = false;
    for (int i = 0; i < 600 && !started; ++i) {
      started = (*server)->ReadLog().find("training pure_svd on") != std::string::npos;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_TRUE(started) << (*server)->ReadLog();
    absl::SleepFor(absl::Milliseconds(300));
    ASSERT_EQ((*server)->ReadLog().find("published pure_svd v2"), std::string::npos) << "training was too fast";
    (*server)->Kill();
  }
  auto server = RecdProcess::Start(data_dir);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  recd::v1::GetModelInfoResponse info;
  ASSERT_TRUE(testing::GetModelInfo(*stub, &info).ok());
  for (const auto& m : info.models()) {
    if (m.name() != "pure_svd") continue;
    EXPECT_EQ(m.live_version(), 1u);
    EXPECT_EQ(m.versions_size(), 1) << "an unfinished version is visible";
  }
  recd::v1::RecommendRequest request;
  request.set_user_id("u0001");
  request.set_k(8);
  recd::v1::RecommendResponse response;
  ASSERT_TRUE(testing::Recommend(*stub, request, &response).ok());
  EXPECT_EQ(response.model_version(), 1u);
  EXPECT_EQ(testing::ItemIds(response), answer);
  EXPECT_EQ((*server)->Terminate(), 0);
}

}  // namespace
}  // namespace recd
