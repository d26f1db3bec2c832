// DeleteUser leaves nothing of the user: not in the API, not in the store's logical content,
// not in any stored model version, not as bytes in the data folder's files — after the purge,
// after a restart and after the next retrain.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/store.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "testing/workload.h"

namespace recd {
namespace {

using ::recd::testing::RecdProcess;
using ::recd::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kVictim[] = "victim-5f3a9c-user";
const std::vector<std::string> kArgs = {"--models=popularity,pure_svd,als", "--model_params=pure_svd.rank=4,als.factors=4",
                                        "--purge_delay_seconds=0", "--gate_tolerance=-1"};

// Every file under `dir` whose bytes contain `needle`.
std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle) {
  std::vector<std::string> hits;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) hits.push_back(entry.path().filename().string());
  }
  return hits;
}

struct StoreView {
  std::optional<UserIndex> index;
  std::string id_at_index;
  size_t interactions_of_index = 0;
  size_t versions = 0;
  size_t versions_with_rows = 0;
};

// Opens the store (the server must be stopped) and looks for the user's traces.
StoreView Inspect(const std::string& data_dir, UserIndex known_index) {
  storage::StoreOptions options;
  options.path = data_dir;
  auto store = storage::Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  StoreView view;
  if (!store.ok()) return view;
  view.index = (*store)->FindUser(kVictim);
  view.id_at_index = (*store)->UserId(known_index);
  auto snapshot = (*store)->ReadTrainingSnapshot();
  EXPECT_TRUE(snapshot.ok());
  for (const Interaction& x : snapshot->interactions) view.interactions_of_index += x.user == known_index;
  auto names = (*store)->ListModelNames();
  EXPECT_TRUE(names.ok());
  for (const std::string& name : *names) {
    auto versions = (*store)->ListModelVersions(name);
    EXPECT_TRUE(versions.ok());
    for (const ModelMetadata& meta : *versions) {
      auto data = (*store)->LoadModel(name, meta.version);
      EXPECT_TRUE(data.ok()) << data.status();
      ++view.versions;
      if (data.ok() && HasUserRows(*data, known_index)) ++view.versions_with_rows;
    }
  }
  return view;
}

TEST(PrivacyTest, DeleteUserLeavesNothingBehind) {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  const testing::ClusteredData data = testing::MakeClusteredData();
  std::vector<recd::v1::Interaction> victim;
  for (const char* item : {"a1", "a4", "a7", "b2"}) {
    recd::v1::Interaction& in = victim.emplace_back();
    in.set_user_id(kVictim);
    in.set_item_id(item);
    in.set_event_type(recd::v1::EVENT_PURCHASE);
  }
  {
    auto server = RecdProcess::Start(data_dir, kArgs);
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = (*server)->NewStub();
    ASSERT_TRUE(testing::UpsertItems(*stub, data.items).ok());
    ASSERT_TRUE(testing::LogInteractions(*stub, data.interactions).ok());
    ASSERT_TRUE(testing::LogInteractions(*stub, victim).ok());
    ASSERT_TRUE(testing::TrainAll(*stub).ok());
    ASSERT_EQ((*server)->Terminate(), 0);
  }
  const StoreView before = Inspect(data_dir, 0);
  ASSERT_TRUE(before.index.has_value());
  const UserIndex index = *before.index;
  const StoreView trained = Inspect(data_dir, index);
  EXPECT_EQ(trained.interactions_of_index, 4u);
  EXPECT_GE(trained.versions_with_rows, 2u);  // pure_svd and als hold a row for the victim
  EXPECT_FALSE(FilesContaining(data_dir, kVictim).empty());

  {
    // The purge is due only in an hour: the server stops before it, and the next start must
    // purge (the pending mark is in the store, not only in this process's memory).
    std::vector<std::string> late = kArgs;
    late.push_back("--purge_delay_seconds=3600");
    auto server = RecdProcess::Start(data_dir, late);
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = (*server)->NewStub();
    recd::v1::RecommendRequest request;
    request.set_user_id(kVictim);
    request.set_k(3);
    recd::v1::RecommendResponse response;
    ASSERT_TRUE(testing::Recommend(*stub, request, &response).ok());
    EXPECT_EQ(response.source(), recd::v1::SOURCE_MODEL);

    grpc::ClientContext context;
    recd::v1::DeleteUserRequest del;
    del.set_user_id(kVictim);
    recd::v1::DeleteUserResponse deleted;
    ASSERT_TRUE(stub->DeleteUser(&context, del, &deleted).ok());
    EXPECT_EQ(deleted.erased_interactions(), 4u);
    response.Clear();
    ASSERT_TRUE(testing::Recommend(*stub, request, &response).ok());
    EXPECT_EQ(response.source(), recd::v1::SOURCE_POPULARITY_FALLBACK);
    EXPECT_EQ(response.fallback_reason(), "unknown user");
    ASSERT_EQ((*server)->Terminate(), 0);
    EXPECT_EQ((*server)->ReadLog().find("purged deleted data"), std::string::npos);
  }
  {
    auto server = RecdProcess::Start(data_dir, kArgs);
    ASSERT_TRUE(server.ok()) << server.status();
    bool purged = false;
    for (int i = 0; i < 300 && !purged; ++i) {
      purged = (*server)->ReadLog().find("purged deleted data") != std::string::npos;
      absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_TRUE(purged) << (*server)->ReadLog();
    ASSERT_EQ((*server)->Terminate(), 0);
  }
  auto check = [&](const char* when) {
    const StoreView after = Inspect(data_dir, index);
    EXPECT_FALSE(after.index.has_value()) << when;
    EXPECT_EQ(after.id_at_index, "") << when;
    EXPECT_EQ(after.interactions_of_index, 0u) << when;
    EXPECT_GT(after.versions, 0u) << when;
    EXPECT_EQ(after.versions_with_rows, 0u) << when;
    EXPECT_THAT(FilesContaining(data_dir, kVictim), ::testing::IsEmpty()) << when;
  };
  check("after the purge");

  // A restart and a retrain bring nothing back.
  {
    auto server = RecdProcess::Start(data_dir, kArgs);
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = (*server)->NewStub();
    recd::v1::TrainNowResponse retrained;
    ASSERT_TRUE(testing::TrainAll(*stub, &retrained).ok());
    recd::v1::RecommendRequest request;
    request.set_user_id(kVictim);
    request.set_k(3);
    recd::v1::RecommendResponse response;
    ASSERT_TRUE(testing::Recommend(*stub, request, &response).ok());
    EXPECT_EQ(response.source(), recd::v1::SOURCE_POPULARITY_FALLBACK);
    ASSERT_EQ((*server)->Terminate(), 0);
  }
  check("after a restart and a retrain");
}

}  // namespace
}  // namespace recd
