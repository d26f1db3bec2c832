// Read scaling with deploy/nginx: a trained store is exported with the CreateCheckpoint RPC and
// copied, two recd replicas open the two copies, and Debian's nginx (on loopback, configured
// from deploy/nginx/recd-grpc.conf.template through render.sh) balances gRPC calls over them.
// Reads are spread over both replicas, writes reach the primary only, and when a replica is
// killed the reads through nginx keep succeeding.
//
// Skipped (with the reason) only when nginx is not installed (tools/install-deps.sh --extra,
// which tools/test.sh runs, installs it).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "testing/workload.h"
#include "tests/ops_support.h"

namespace recd {
namespace {

using ::recd::testing::RecdProcess;
using ::recd::testing::RunCommand;
using ::recd::testing::TempDir;
using ::recd::testing::ops::ChildProcess;
using ::recd::testing::ops::FindProgram;
using ::recd::testing::ops::FreePort;
using ::recd::testing::ops::HttpGet;
using ::recd::testing::ops::SourceDir;
using ::recd::testing::ops::SumSamples;
using ::recd::testing::ops::WaitForPort;
using ::recd::testing::ops::WriteFile;

const std::vector<std::string> kModels = {"--models=popularity,pure_svd", "--model_params=pure_svd.rank=4"};
constexpr int kReadsBeforeKill = 40;
constexpr int kReadsAfterKill = 40;

std::vector<std::string> With(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// Successful Recommend calls a replica answered, from its own /metrics.
double RecommendsServed(const RecdProcess& replica) {
  absl::StatusOr<testing::ops::HttpResponse> metrics = HttpGet(replica.metrics_port(), "/metrics");
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  if (!metrics.ok()) return -1;
  return SumSamples(metrics->body, "recd_requests_total", {{"method", "Recommend"}, {"code", "ok"}});
}

double Ingested(const RecdProcess& replica) {
  absl::StatusOr<testing::ops::HttpResponse> metrics = HttpGet(replica.metrics_port(), "/metrics");
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  return metrics.ok() ? SumSamples(metrics->body, "recd_interactions_ingested_total") : -1;
}

// One Recommend through `stub` with a request id; the status, and the served model version.
grpc::Status RecommendVia(recd::v1::Recommender::Stub& stub, int i, uint64_t* version) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata("x-request-id", absl::StrCat("ops-nginx-", i));
  recd::v1::RecommendRequest request;
  request.set_user_id(absl::StrCat(i % 2 == 0 ? "ua" : "ub", i % 30));
  request.set_k(5);
  recd::v1::RecommendResponse response;
  grpc::Status status = stub.Recommend(&context, request, &response);
  if (status.ok()) {
    *version = response.model_version();
    if (response.items_size() != 5) return grpc::Status(grpc::StatusCode::INTERNAL, "short list");
  }
  return status;
}

TEST(OpsNginxTest, ReadsSpreadOverCheckpointReplicasAndSurviveOneDying) {
  const std::string nginx = FindProgram("nginx");
  if (nginx.empty()) {
    GTEST_SKIP() << "Debian's nginx is not installed (apt-get install nginx, or tools/install-deps.sh --extra); "
                    "skipping the load-balancing test";
  }
  const absl::Time start = absl::Now();
  TempDir dir;

  // 1. A trained store, exported by the admin RPC while the server runs.
  {
    auto primary = RecdProcess::Start(dir.Sub("origin"), kModels);
    ASSERT_TRUE(primary.ok()) << primary.status();
    auto stub = (*primary)->NewStub();
    const testing::ClusteredData data = testing::MakeClusteredData();
    ASSERT_TRUE(testing::UpsertItems(*stub, data.items).ok());
    ASSERT_TRUE(testing::LogInteractions(*stub, data.interactions).ok());
    grpc::Status trained = testing::TrainAll(*stub);
    ASSERT_TRUE(trained.ok()) << trained.error_message();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    recd::v1::CreateCheckpointRequest request;
    request.set_path(dir.Sub("replica-a"));
    recd::v1::CreateCheckpointResponse response;
    grpc::Status checkpoint = stub->CreateCheckpoint(&context, request, &response);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.error_message();
    EXPECT_EQ((*primary)->Terminate(), 0);
  }
  // 2. One store per process: the second replica gets a copy.
  testing::CommandResult copy = RunCommand({"/bin/cp", "-r", dir.Sub("replica-a"), dir.Sub("replica-b")});
  ASSERT_EQ(copy.exit_code, 0) << copy.output;

  // 3. Two replicas; a is the primary (writes), both serve reads.
  auto a = RecdProcess::Start(dir.Sub("replica-a"), With(kModels, {"--request_log_sample_rate=1"}));
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = RecdProcess::Start(dir.Sub("replica-b"), With(kModels, {"--request_log_sample_rate=1"}));
  ASSERT_TRUE(b.ok()) << b.status();
  for (RecdProcess* replica : {a->get(), b->get()}) {
    recd::v1::GetModelInfoResponse info;
    auto stub = replica->NewStub();
    ASSERT_TRUE(testing::GetModelInfo(*stub, &info).ok());
    bool found = false;
    for (const auto& model : info.models()) {
      if (model.name() == "pure_svd") {
        found = true;
        EXPECT_EQ(model.live_version(), 1u) << "the replica should serve the checkpoint's model, not retrain";
      }
    }
    EXPECT_TRUE(found);
  }

  // 4. nginx on loopback with the deploy/ template, rendered for these ports.
  std::unique_ptr<ChildProcess> proxy;
  int port = 0;
  for (int attempt = 0; attempt < 3 && proxy == nullptr; ++attempt) {
    port = FreePort();
    const std::string error_log = dir.Sub(absl::StrCat("nginx-error-", attempt, ".log"));
    testing::CommandResult rendered =
        RunCommand({"/bin/bash", SourceDir() + "/deploy/nginx/render.sh", absl::StrCat("--listen=127.0.0.1:", port),
                    "--primary=" + (*a)->address(), "--replica=" + (*b)->address(),
                    "--access-log=" + dir.Sub("nginx-access.log")});
    ASSERT_EQ(rendered.exit_code, 0) << rendered.output;
    ASSERT_TRUE(WriteFile(dir.Sub("recd.conf"), rendered.output).ok());
    // The main context a distribution's nginx.conf would provide, kept inside the temp folder.
    const std::string main_conf = absl::StrCat(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid ", dir.Sub("nginx.pid"), ";\nerror_log ",
        error_log, " info;\nevents { worker_connections 256; }\nhttp {\n  client_body_temp_path ",
        dir.Sub("nginx-body"), ";\n  proxy_temp_path ", dir.Sub("nginx-proxy"), ";\n  fastcgi_temp_path ",
        dir.Sub("nginx-fastcgi"), ";\n  uwsgi_temp_path ", dir.Sub("nginx-uwsgi"), ";\n  scgi_temp_path ",
        dir.Sub("nginx-scgi"), ";\n  include ", dir.Sub("recd.conf"), ";\n}\n");
    ASSERT_TRUE(WriteFile(dir.Sub("nginx.conf"), main_conf).ok());
    const std::vector<std::string> base = {nginx, "-c", dir.Sub("nginx.conf"), "-p", dir.path() + "/",
                                           "-e", error_log};
    testing::CommandResult syntax = RunCommand(With(base, {"-t"}));
    ASSERT_EQ(syntax.exit_code, 0) << syntax.output;
    auto started = ChildProcess::Start(base, dir.Sub("nginx.out"));
    ASSERT_TRUE(started.ok()) << started.status();
    // A port taken meanwhile by another process: nginx logs the failed bind (and retries it).
    const bool listening = WaitForPort(port, absl::Seconds(10)) && (*started)->Running();
    absl::StatusOr<std::string> errors = testing::ops::ReadFile(error_log);
    if (listening && errors.ok() && !absl::StrContains(*errors, "Address already in use")) {
      proxy = std::move(*started);
    }
  }
  ASSERT_NE(proxy, nullptr) << "nginx did not start";

  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  auto via_nginx = recd::v1::Recommender::NewStub(
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args));

  // 5. Reads are spread over both replicas.
  for (int i = 0; i < kReadsBeforeKill; ++i) {
    uint64_t version = 0;
    grpc::Status status = RecommendVia(*via_nginx, i, &version);
    ASSERT_TRUE(status.ok()) << "call " << i << ": " << status.error_message();
    EXPECT_EQ(version, 1u);
  }
  const double served_a = RecommendsServed(**a), served_b = RecommendsServed(**b);
  EXPECT_EQ(served_a + served_b, kReadsBeforeKill);
  EXPECT_GE(served_a, kReadsBeforeKill / 4) << "replica a served " << served_a << ", b " << served_b;
  EXPECT_GE(served_b, kReadsBeforeKill / 4) << "replica a served " << served_a << ", b " << served_b;
  // nginx passes x-request-id on, so a request can be followed into the replica that served it.
  const std::string logs = (*a)->ReadLog() + (*b)->ReadLog();
  EXPECT_THAT(logs, ::testing::HasSubstr("request_id=ops-nginx-0 "));
  EXPECT_THAT(logs, ::testing::HasSubstr(absl::StrCat("request_id=ops-nginx-", kReadsBeforeKill - 1, " ")));

  // 6. Writes go to the primary only.
  {
    recd::v1::Interaction in;
    in.set_user_id("ua1");
    in.set_item_id("a3");
    const double a_before = Ingested(**a), b_before = Ingested(**b);
    ASSERT_TRUE(testing::LogInteractions(*via_nginx, {in}).ok());
    EXPECT_EQ(Ingested(**a), a_before + 1);
    EXPECT_EQ(Ingested(**b), b_before);
  }

  // 7. Replica b dies; every read through nginx still succeeds, answered by a.
  const double a_before_kill = RecommendsServed(**a);
  (*b)->Kill();
  int failures = 0;
  for (int i = 0; i < kReadsAfterKill; ++i) {
    uint64_t version = 0;
    grpc::Status status = RecommendVia(*via_nginx, kReadsBeforeKill + i, &version);
    if (!status.ok()) {
      ++failures;
      ADD_FAILURE() << "call " << i << " after the kill: " << status.error_code() << " " << status.error_message();
    }
  }
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(RecommendsServed(**a), a_before_kill + kReadsAfterKill);

  EXPECT_EQ(proxy->Stop(), 0) << proxy->ReadLog();
  EXPECT_EQ((*a)->Terminate(), 0);
  std::printf("nginx test: %d reads spread %.0f/%.0f over the replicas, %d after the kill, %.1f s\n",
              kReadsBeforeKill, served_a, served_b, kReadsAfterKill, absl::ToDoubleSeconds(absl::Now() - start));
}

}  // namespace
}  // namespace recd
