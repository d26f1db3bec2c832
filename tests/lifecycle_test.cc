// Server lifecycle: health and reflection, startup errors, demo data, and the recctl client
// against a real server.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "testing/workload.h"

namespace recd {
namespace {

using ::recd::testing::RecdProcess;
using ::recd::testing::RunCommand;
using ::recd::testing::TempDir;
using ::testing::HasSubstr;

const std::vector<std::string> kSmallModels = {"--models=popularity,pure_svd", "--model_params=pure_svd.rank=4"};

grpc::health::v1::HealthCheckResponse::ServingStatus Health(const RecdProcess& server, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status s = stub->Check(&context, request, &response);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return response.status();
}

TEST(LifecycleTest, HealthReportsServingAndReflectionListsTheService) {
  TempDir dir;
  auto server = RecdProcess::Start(dir.Sub("data"), kSmallModels);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(Health(**server, ""), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(**server, "recd.v1.Recommender"), grpc::health::v1::HealthCheckResponse::SERVING);

  // Server reflection (grpc.reflection.v1alpha), spoken with hand-encoded bytes since Debian
  // ships no reflection .proto: list_services (field 7) = "".
  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = generic.PrepareCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  const char request_bytes[] = {0x3a, 0x00};
  grpc::Slice slice(request_bytes, sizeof(request_bytes));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(bytes, HasSubstr("recd.v1.Recommender"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  context.TryCancel();
  call->Finish(nullptr, reinterpret_cast<void*>(4));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  EXPECT_EQ((*server)->Terminate(), 0);
}

TEST(LifecycleTest, SigtermStopsCleanlyAndLogsTheDrain) {
  TempDir dir;
  auto server = RecdProcess::Start(dir.Sub("data"), kSmallModels);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->Terminate(), 0);
  EXPECT_THAT((*server)->ReadLog(), HasSubstr("draining in-flight calls"));
  EXPECT_THAT((*server)->ReadLog(), HasSubstr("stopped"));
}

TEST(LifecycleTest, PortInUseIsAClearStartupError) {
  TempDir dir;
  auto first = RecdProcess::Start(dir.Sub("a"), kSmallModels);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = RecdProcess::Start(dir.Sub("b"), {"--listen=" + (*first)->address()});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("exited with code 1"));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot listen on " + (*first)->address()));
  EXPECT_EQ((*first)->Terminate(), 0);
}

TEST(LifecycleTest, StoreHeldByAnotherProcessIsAClearStartupError) {
  TempDir dir;
  auto first = RecdProcess::Start(dir.Sub("data"), kSmallModels);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = RecdProcess::Start(dir.Sub("data"), kSmallModels);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("in use by another process"));
  EXPECT_EQ((*first)->Terminate(), 0);
}

TEST(LifecycleTest, ForeignFolderIsRefused) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  ASSERT_EQ(mkdir(data.c_str(), 0755), 0);
  std::ofstream(data + "/notes.txt") << "precious, not a database\n";
  auto server = RecdProcess::Start(data, kSmallModels);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("not a recd store"));
  // Nothing of ours was written over the user's file.
  std::ifstream in(data + "/notes.txt");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "precious, not a database");
}

// Overwrites `bytes` at a third of `path`'s length.
void Damage(const std::string& path, const std::string& bytes = "!!damaged-bytes!!") {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(path) / 3));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Name and size of every file, to show a refused store was left as it was.
std::string Listing(const std::string& dir) {
  std::string out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name == "LOCK" || name.rfind("LOG", 0) == 0) continue;  // made by any open attempt
    out += name + ":" + std::to_string(e.is_regular_file() ? e.file_size() : 0) + "\n";
  }
  return out;
}

std::string FirstFile(const std::string& dir, const std::string& prefix, const std::string& suffix) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return e.path().string();
    }
  }
  return "";
}

TEST(LifecycleTest, DamagedStoresAreRefusedAndLeftUntouched) {
  TempDir dir;
  const std::string data = dir.Sub("data"), snapshot = dir.Sub("snapshot");
  {
    auto server = RecdProcess::Start(data, kSmallModels);
    ASSERT_TRUE(server.ok()) << server.status();
    auto stub = (*server)->NewStub();
    const testing::ClusteredData planted = testing::MakeClusteredData();
    ASSERT_TRUE(testing::LogInteractions(*stub, planted.interactions).ok());
    ASSERT_TRUE(testing::TrainAll(*stub).ok());
    grpc::ClientContext context;
    recd::v1::CreateCheckpointRequest request;
    request.set_path(snapshot);  // a checkpoint's data is in SST files
    recd::v1::CreateCheckpointResponse response;
    ASSERT_TRUE(stub->CreateCheckpoint(&context, request, &response).ok());
    // Writes after the checkpoint's flush stay in `data`'s write-ahead log at shutdown.
    std::vector<recd::v1::Interaction> more = planted.interactions;
    for (auto& in : more) in.set_user_id("w" + in.user_id());
    ASSERT_TRUE(testing::LogInteractions(*stub, more, 20).ok());
    ASSERT_EQ((*server)->Terminate(), 0);
  }
  auto copy = [&](const std::string& from, const std::string& name) {
    std::filesystem::copy(from, dir.Sub(name), std::filesystem::copy_options::recursive);
    return dir.Sub(name);
  };
  auto refused = [&](const std::string& store, const std::vector<std::string>& extra, const std::string& fragment) {
    const std::string before = Listing(store);
    std::vector<std::string> args = kSmallModels;
    args.insert(args.end(), extra.begin(), extra.end());
    auto server = RecdProcess::Start(store, args);
    ASSERT_FALSE(server.ok()) << store << " was opened";
    EXPECT_THAT(std::string(server.status().message()), HasSubstr("exited with code 1"));
    EXPECT_THAT(std::string(server.status().message()), HasSubstr(fragment));
    EXPECT_EQ(Listing(store), before) << "a refused store was modified";
  };

  const std::string manifest = copy(snapshot, "manifest");
  Damage(FirstFile(manifest, "MANIFEST-", ""));
  refused(manifest, {}, "is damaged");

  const std::string current = copy(snapshot, "current");
  std::filesystem::remove(current + "/CURRENT");
  refused(current, {}, "is damaged: its CURRENT file is missing");

  const std::string sst = copy(snapshot, "sst");
  for (const auto& e : std::filesystem::directory_iterator(sst)) {
    if (e.path().extension() == ".sst") Damage(e.path().string());
  }
  refused(sst, {}, "is damaged");

  // Damage RocksDB does not notice (a garbled MANIFEST record header read as the end of the
  // file): its read-write open would delete every data file and present an empty store.
  const std::string header = copy(snapshot, "header");
  const std::string manifest_file = FirstFile(header, "MANIFEST-", "");
  for (size_t offset = 8; offset + 8 < std::filesystem::file_size(manifest_file); offset += 16) {
    const std::string attempt = copy(header, "attempt");
    std::fstream f(FirstFile(attempt, "MANIFEST-", ""), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write("!!damaged-bytes!!", 17);
    f.close();
    const std::string before = Listing(attempt);
    auto server = RecdProcess::Start(attempt, kSmallModels);
    if (server.ok()) {
      // Opened: then it must have kept everything (the damage hit something unused).
      auto stub = (*server)->NewStub();
      recd::v1::GetModelInfoResponse info;
      EXPECT_TRUE(testing::GetModelInfo(*stub, &info).ok());
      EXPECT_EQ(info.num_interactions(), testing::MakeClusteredData().interactions.size()) << "offset " << offset;
    } else {
      EXPECT_THAT(std::string(server.status().message()), HasSubstr("is damaged")) << "offset " << offset;
      EXPECT_EQ(Listing(attempt), before) << "offset " << offset;
    }
    std::filesystem::remove_all(attempt);
  }

  const std::string verified = copy(snapshot, "verified");
  std::filesystem::remove(FirstFile(verified, "", ".sst"));  // a referenced file is missing
  refused(verified, {"--verify_store"}, "store at");

  // A damaged record in the middle of the write-ahead log would otherwise end the replay there
  // and silently drop the acknowledged writes after it.
  const std::string wal = copy(data, "wal");
  const std::string log = FirstFile(wal, "", ".log");
  ASSERT_FALSE(log.empty());
  ASSERT_GT(std::filesystem::file_size(log), 4096u);
  Damage(log);
  refused(wal, {}, "is damaged");

  // The undamaged checkpoint opens and serves.
  auto server = RecdProcess::Start(snapshot, kSmallModels);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->Terminate(), 0);
}

TEST(LifecycleTest, DataFolderThatCannotBeCreatedIsAClearError) {
  TempDir dir;
  std::ofstream(dir.Sub("file")) << "x";
  auto server = RecdProcess::Start(dir.Sub("file") + "/data", kSmallModels);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("--data_dir=" + dir.Sub("file") + "/data"));
}

TEST(LifecycleTest, BadFlagsAreRefused) {
  TempDir dir;
  auto server = RecdProcess::Start(dir.Sub("data"), {"--models=popularity,nonsense"});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("unknown algorithm 'nonsense'"));
}

TEST(LifecycleTest, DemoDataLoadsOnceAndServes) {
  TempDir dir;
  uint64_t interactions = 0;
  {
    auto server = RecdProcess::Start(dir.Sub("data"), {"--demo_data=auto"});
    ASSERT_TRUE(server.ok()) << server.status();
    EXPECT_THAT((*server)->ReadLog(), HasSubstr("loaded the demo data set"));
    EXPECT_THAT((*server)->ReadLog(), HasSubstr("recctl recommend --user"));
    auto stub = (*server)->NewStub();
    recd::v1::GetModelInfoResponse info;
    ASSERT_TRUE(testing::GetModelInfo(*stub, &info).ok());
    EXPECT_GE(info.num_users(), 900u);
    EXPECT_GE(info.num_items(), 1500u);
    interactions = info.num_interactions();
    EXPECT_GE(interactions, 45000u);
    EXPECT_LE(interactions, 55000u);

    const testing::CommandResult r = RunCommand({testing::RecctlBinary(), "recommend", "--user=u0001", "--k=7",
                                                 "--server=" + (*server)->address()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("7 items from pure_svd v1 (model)"));
    EXPECT_EQ((*server)->Terminate(), 0);
  }
  auto server = RecdProcess::Start(dir.Sub("data"), {"--demo_data=auto"});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->ReadLog(), ::testing::Not(HasSubstr("loaded the demo data set")));
  auto stub = (*server)->NewStub();
  recd::v1::GetModelInfoResponse info;
  ASSERT_TRUE(testing::GetModelInfo(*stub, &info).ok());
  EXPECT_EQ(info.num_interactions(), interactions);
  EXPECT_EQ((*server)->Terminate(), 0);
}

TEST(RecctlTest, ImportTrainRecommendAndErrors) {
  TempDir dir;
  auto server = RecdProcess::Start(dir.Sub("data"), kSmallModels);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string addr = "--server=" + (*server)->address();
  const std::string recctl = testing::RecctlBinary();

  // A MovieLens-format file (user item rating seconds), synthetic: two taste clusters.
  const std::string udata = dir.Sub("u.data");
  {
    std::ofstream out(udata);
    for (int u = 1; u <= 40; ++u) {
      for (int j = 0; j < 6; ++j) {
        const int item = (u % 2 == 0 ? 100 : 200) + (u * 7 + j * 3) % 15;
        out << u << "\t" << item << "\t" << (3 + j % 3) << "\t" << (880000000 + u * 100 + j) << "\n";
      }
    }
  }
  testing::CommandResult r = RunCommand({recctl, "import", udata, addr});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("imported 240 interactions"));

  const std::string csv = dir.Sub("events.csv");
  std::ofstream(csv) << "user_id,item_id,event,timestamp_ms\nalice,100,purchase,1700000000000\n"
                        "\"bob, jr\",200,click,1700000001000\n";
  r = RunCommand({recctl, "import", csv, addr});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("imported 2 interactions"));

  const std::string bad = dir.Sub("bad.csv");
  std::ofstream(bad) << "user_id,item_id,event\nalice,100,teleport\n";
  r = RunCommand({recctl, "import", bad, addr});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("line 2"));

  r = RunCommand({recctl, "train", addr});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("pure_svd"));
  EXPECT_THAT(r.output, HasSubstr("published v1"));

  r = RunCommand({recctl, "recommend", "--user=2", "--k=3", addr});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("3 items from pure_svd v1 (model)"));

  r = RunCommand({recctl, "recommend", "--user=2", "--k=0", addr});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("INVALID_ARGUMENT: k: 0"));

  r = RunCommand({recctl, "similar", "--item=100", "--k=3", addr});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand({recctl, "similar", "--item=nope", addr});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("NOT_FOUND"));

  r = RunCommand({recctl, "log", "--user=carol", "--item=101", "--event=like", addr});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("logged 1 interaction"));
  r = RunCommand({recctl, "upsert-item", "--item=101", "--categories=drama,comedy", addr});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand({recctl, "info", addr});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("interactions 243"));
  EXPECT_THAT(r.output, HasSubstr("model pure_svd (pure_svd) [default]  live v1"));
  r = RunCommand({recctl, "delete-user", "--user=carol", addr});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("1 interactions erased"));

  r = RunCommand({recctl, "health", addr});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("SERVING"));

  r = RunCommand({recctl, "recommend", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--server"));
  r = RunCommand({recctl, "recommend", "--k=3", addr});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--user is required"));
  EXPECT_EQ((*server)->Terminate(), 0);

  r = RunCommand({recctl, "info", addr});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("UNAVAILABLE"));
}

}  // namespace
}  // namespace recd
