// recload against a real recd process: populate, open and closed loop, the health baseline, a
// short step search, freshness probes, a run during training, and the recload binary's outputs. Functional checks only: no timing
// assertions (the machine may be busy).
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loadtest/driver.h"
#include "loadtest/populate.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"

namespace recd::loadtest {
namespace {

using ::recd::testing::RecdProcess;
using ::recd::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kUsers = 300;
constexpr uint64_t kItems = 200;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class RecloadIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto process = RecdProcess::Start(dir_->Sub("data"), {"--models=popularity,pure_svd", "--model_params=pure_svd.rank=8"});
    ASSERT_TRUE(process.ok()) << process.status();
    server_ = process->release();
    PopulateOptions options;
    options.target = server_->address();
    options.catalogue.num_users = kUsers;
    options.catalogue.num_items = kItems;
    options.catalogue.num_interactions = 6000;
    options.catalogue.num_categories = 5;
    options.batch = 1000;
    options.in_flight = 3;
    absl::StatusOr<PopulateResult> result = Populate(options, nullptr);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_FALSE(result->skipped_load);
    ASSERT_EQ(result->items, kItems);
    ASSERT_GE(result->info.num_users(), kUsers);
    ASSERT_GE(result->info.num_items(), kItems);
  }
  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Terminate(), 0);
    }
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }

  static WorkloadOptions Workload() {
    WorkloadOptions w;
    w.num_users = kUsers;
    w.num_items = kItems;
    w.batch_users = 4;
    w.log_batch = 3;
    return w;
  }
  static ClientOptions Client() {
    ClientOptions c;
    c.target = server_->address();
    c.server_pid = server_->pid();
    c.deadline = absl::Seconds(10);
    return c;
  }

  static TempDir* dir_;
  static RecdProcess* server_;
};

TempDir* RecloadIntegrationTest::dir_ = nullptr;
RecdProcess* RecloadIntegrationTest::server_ = nullptr;

TEST_F(RecloadIntegrationTest, PopulateAgainIsSkipped) {
  PopulateOptions options;
  options.target = server_->address();
  options.catalogue.num_users = kUsers;
  options.catalogue.num_items = kItems;
  options.catalogue.num_interactions = 6000;
  absl::StatusOr<PopulateResult> result = Populate(options, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->skipped_load);
}

TEST_F(RecloadIntegrationTest, OpenLoopMixHasNoErrors) {
  auto driver = LoadDriver::Create(Client(), Workload());
  ASSERT_TRUE(driver.ok()) << driver.status();
  PhaseSpec spec;
  spec.rate = 200;
  spec.warmup = absl::Milliseconds(300);
  spec.duration = absl::Seconds(2);
  const PhaseResult r = (*driver)->RunPhase(spec, *Mix::Parse("recommend:4,batch:1,similar:2,log:1,health:1"));
  EXPECT_EQ(r.errors(), 0u);
  for (int m = 0; m < kNumMethods; ++m) {
    const MethodStats& s = r.methods[m];
    EXPECT_GT(s.ok, 0u) << MethodName(static_cast<Method>(m));
    EXPECT_EQ(s.latency.count(), s.ok);
  }
  // Every user of the catalogue has a history and the model is trained: no fallback answers.
  EXPECT_EQ(r.methods[static_cast<int>(Method::kRecommend)].fallback, 0u);
  const MethodStats& batch = r.methods[static_cast<int>(Method::kRecommendBatch)];
  EXPECT_EQ(batch.units, 4 * batch.ok);
  const MethodStats& log = r.methods[static_cast<int>(Method::kLogInteractions)];
  EXPECT_EQ(log.units, 3 * log.ok);
  // About 400 requests in the window (open loop: the schedule decides, not the server).
  EXPECT_NEAR(static_cast<double>(r.measured_requests), 400, 2);
  EXPECT_GT(r.server_rss_start, 0u);
  EXPECT_FALSE(r.series.empty());
  EXPECT_GT(r.send_lag.count(), 0u);
}

TEST_F(RecloadIntegrationTest, ClosedLoopAndRequestBound) {
  auto driver = LoadDriver::Create(Client(), Workload());
  ASSERT_TRUE(driver.ok()) << driver.status();
  PhaseSpec spec;
  spec.closed_loop = true;
  spec.concurrency = 4;
  spec.warmup = absl::ZeroDuration();
  spec.duration = absl::Seconds(30);
  spec.max_requests = 500;
  const PhaseResult r = (*driver)->RunPhase(spec, Mix::Only(Method::kHealth));
  EXPECT_TRUE(r.hit_request_bound);
  EXPECT_EQ(r.sent, 500u);
  EXPECT_EQ(r.errors(), 0u);
  EXPECT_EQ(r.methods[static_cast<int>(Method::kHealth)].ok, 500u);
  // The window ends with the last call, not at the 30 s duration: the rate is over real time.
  EXPECT_LT(r.measured_s, 20.0);
  EXPECT_NEAR(r.achieved_rate * r.measured_s, 500.0, 1.0);
}

TEST_F(RecloadIntegrationTest, RefusesRemoteTargets) {
  ClientOptions c = Client();
  c.target = "10.1.2.3:50051";
  auto driver = LoadDriver::Create(c, Workload());
  EXPECT_EQ(driver.status().code(), absl::StatusCode::kInvalidArgument);
  PopulateOptions p;
  p.target = "example.com:50051";
  EXPECT_EQ(Populate(p, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RecloadIntegrationTest, BinaryStepSearchWritesJsonAndCharts) {
  const std::string out = dir_->Sub("step");
  const auto result = ::recd::testing::RunCommand(
      {RECLOAD_BINARY_PATH, "step", absl::StrCat("--target=", server_->address()),
       absl::StrCat("--users=", kUsers), absl::StrCat("--items=", kItems), "--mix=recommend",
       "--step_start=50", "--step_factor=2", "--step_max=100", "--step_warmup=200ms", "--step_duration=1s",
       "--p99_target=10s", "--baseline", "--baseline_step_start=50", absl::StrCat("--out=", out)},
      absl::Seconds(120));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("highest rate that held: 100.0/s"));
  const std::string json = ReadFile(out + ".json");
  EXPECT_THAT(json, HasSubstr("\"highest_rate_held\": 100"));
  EXPECT_THAT(json, HasSubstr("\"baseline_highest_rate_held\": 100"));
  EXPECT_THAT(ReadFile(out + "_steps.svg"), HasSubstr("</svg>"));
  EXPECT_THAT(ReadFile(out + "_percentiles.svg"), HasSubstr("</svg>"));
}

TEST_F(RecloadIntegrationTest, BinaryFreshnessProbesSeeEveryClickAtOnce) {
  const std::string out = dir_->Sub("freshness");
  const auto result = ::recd::testing::RunCommand(
      {RECLOAD_BINARY_PATH, "freshness", absl::StrCat("--target=", server_->address()),
       absl::StrCat("--users=", kUsers), absl::StrCat("--items=", kItems), "--probes=12", "--probe_gap=5ms",
       "--k=5", "--seed=3", absl::StrCat("--out=", out)},
      absl::Seconds(120));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // recd folds a click into the user's vector on the next request: the first Recommend after
  // the acknowledgement already drops the item and moves the ranking.
  EXPECT_THAT(result.output, HasSubstr("12 probes judged"));
  const std::string json = ReadFile(out + ".json");
  EXPECT_THAT(json, HasSubstr("\"judged\": 12"));
  EXPECT_THAT(json, HasSubstr("\"reflected\": 12"));
  EXPECT_THAT(json, HasSubstr("\"reflected_first\": 12"));
  EXPECT_THAT(json, HasSubstr("\"control_failed\": 0"));
}

TEST_F(RecloadIntegrationTest, BinaryRunDuringTrainEndsWithTraining) {
  const std::string out = dir_->Sub("during");
  const auto result = ::recd::testing::RunCommand(
      {RECLOAD_BINARY_PATH, "run", absl::StrCat("--target=", server_->address()),
       absl::StrCat("--users=", kUsers), absl::StrCat("--items=", kItems), "--mix=recommend", "--rate=50",
       "--warmup=200ms", "--duration=60s", "--during_train", "--train_min_window=1s",
       absl::StrCat("--out=", out)},
      absl::Seconds(120));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("training run 1:"));
  const std::string json = ReadFile(out + ".json");
  // The window ended with training (not after --duration) and every run published both models.
  EXPECT_THAT(json, HasSubstr("\"stopped_early\": true"));
  EXPECT_THAT(json, HasSubstr("\"started\": true"));
  EXPECT_THAT(json, HasSubstr("\"outcome\": \"TRAIN_PUBLISHED\""));
  EXPECT_THAT(json, Not(HasSubstr("TRAIN_FAILED")));
  EXPECT_THAT(json, HasSubstr("\"live_versions_after\""));
}

TEST_F(RecloadIntegrationTest, BinaryRefusesMissingIdsAndRemoteTargets) {
  auto remote = ::recd::testing::RunCommand({RECLOAD_BINARY_PATH, "run", "--target=192.168.1.10:50051"});
  EXPECT_NE(remote.exit_code, 0);
  EXPECT_THAT(remote.output, HasSubstr("not a loopback address"));
  auto missing = ::recd::testing::RunCommand(
      {RECLOAD_BINARY_PATH, "run", absl::StrCat("--target=", server_->address()), "--users=1000000"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.output, HasSubstr("recload populate"));
  auto too_long = ::recd::testing::RunCommand(
      {RECLOAD_BINARY_PATH, "run", absl::StrCat("--target=", server_->address()), "--duration=3h"});
  EXPECT_NE(too_long.exit_code, 0);
  EXPECT_THAT(too_long.output, HasSubstr("--time_limit"));
}

}  // namespace
}  // namespace recd::loadtest
