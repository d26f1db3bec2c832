// Server lifecycle: health and reflection, startup errors, demo data, and the recctl client
// against a real server.
#include <unistd.h>

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
