// Debian's Prometheus server scrapes a real recd with the configuration and alert rules from
// deploy/prometheus/, and the test reads the series back through Prometheus's HTTP query API:
// the metrics exist under the documented names with sane values, the rules load and evaluate,
// and every query of the Grafana dashboard runs.
//
// Skipped (with the reason) only when the prometheus or promtool binaries are not installed
// (tools/install-deps.sh --extra, which tools/test.sh runs, installs them).
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "testing/workload.h"
#include "tests/ops_support.h"

namespace recd {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;
using ::recd::testing::RecdProcess;
using ::recd::testing::RunCommand;
using ::recd::testing::TempDir;
using ::recd::testing::ops::ChildProcess;
using ::recd::testing::ops::FindProgram;
using ::recd::testing::ops::FreePort;
using ::recd::testing::ops::HttpGet;
using ::recd::testing::ops::ReadFile;
using ::recd::testing::ops::SumSamples;
using ::recd::testing::ops::SourceDir;
using ::recd::testing::ops::UrlEncode;
using ::recd::testing::ops::WriteFile;

constexpr int kRecommends = 40;
constexpr int kBadRecommends = 5;

struct Sample {
  std::map<std::string, std::string> labels;
  double value = NAN;
};

absl::StatusOr<Struct> GetJson(int port, const std::string& target) {
  absl::StatusOr<testing::ops::HttpResponse> response = HttpGet(port, target, absl::Seconds(10));
  if (!response.ok()) return response.status();
  Struct json;
  if (!google::protobuf::util::JsonStringToMessage(response->body, &json).ok()) {
    return absl::DataLossError(absl::StrCat("not JSON (HTTP ", response->status, "): ", response->body.substr(0, 300)));
  }
  const auto status = json.fields().find("status");
  if (response->status != 200 || status == json.fields().end() || status->second.string_value() != "success") {
    return absl::FailedPreconditionError(absl::StrCat("HTTP ", response->status, ": ", response->body.substr(0, 500)));
  }
  return json;
}

// An instant query; the result must be a vector (or a scalar, returned as one sample).
absl::StatusOr<std::vector<Sample>> Query(int port, const std::string& promql) {
  absl::StatusOr<Struct> json = GetJson(port, "/api/v1/query?query=" + UrlEncode(promql));
  if (!json.ok()) return absl::Status(json.status().code(), absl::StrCat(promql, ": ", json.status().message()));
  const Struct& data = json->fields().at("data").struct_value();
  const std::string type = data.fields().at("resultType").string_value();
  const Value& result = data.fields().at("result");
  std::vector<Sample> samples;
  auto value_of = [](const Value& pair) {
    return std::strtod(pair.list_value().values(1).string_value().c_str(), nullptr);  // handles NaN, +Inf
  };
  if (type == "scalar") {
    samples.push_back({{}, value_of(result)});
    return samples;
  }
  if (type != "vector") return absl::InvalidArgumentError(absl::StrCat(promql, ": result type ", type));
  for (const Value& item : result.list_value().values()) {
    Sample s;
    for (const auto& [k, v] : item.struct_value().fields().at("metric").struct_value().fields()) {
      s.labels[k] = v.string_value();
    }
    s.value = value_of(item.struct_value().fields().at("value"));
    samples.push_back(std::move(s));
  }
  return samples;
}

// The single value of a query that must return exactly one series.
double One(int port, const std::string& promql) {
  absl::StatusOr<std::vector<Sample>> samples = Query(port, promql);
  EXPECT_TRUE(samples.ok()) << samples.status();
  if (!samples.ok()) return NAN;
  EXPECT_EQ(samples->size(), 1u) << promql;
  return samples->size() == 1 ? (*samples)[0].value : NAN;
}

class OpsPrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prometheus_ = FindProgram("prometheus");
    promtool_ = FindProgram("promtool");
    if (prometheus_.empty() || promtool_.empty()) {
      GTEST_SKIP() << "Debian's prometheus/promtool are not installed (apt-get install prometheus, or "
                      "tools/install-deps.sh --extra); skipping the real-Prometheus scrape test";
    }
  }

  // deploy/prometheus/ with the compose target replaced by `target` and 1 s intervals, written
  // with a copy of the alert rules into `folder`. Returns the config path.
  std::string WriteConfig(const std::string& folder, const std::string& target) {
    const std::string deploy = SourceDir() + "/deploy/prometheus";
    absl::StatusOr<std::string> config = ReadFile(deploy + "/prometheus.yml");
    absl::StatusOr<std::string> rules = ReadFile(deploy + "/alerts.yml");
    EXPECT_TRUE(config.ok() && rules.ok()) << config.status() << rules.status();
    if (!config.ok() || !rules.ok()) return "";
    EXPECT_THAT(*config, ::testing::HasSubstr("\"recd:9464\""));
    EXPECT_THAT(*config, ::testing::HasSubstr("scrape_interval: 15s"));
    EXPECT_THAT(*config, ::testing::HasSubstr("evaluation_interval: 15s"));
    const std::string derived = absl::StrReplaceAll(
        *config, {{"\"recd:9464\"", absl::StrCat("\"", target, "\"")}, {"interval: 15s", "interval: 1s"}});
    EXPECT_TRUE(WriteFile(folder + "/prometheus.yml", derived).ok());
    EXPECT_TRUE(WriteFile(folder + "/alerts.yml", *rules).ok());
    return folder + "/prometheus.yml";
  }

  // Starts prometheus on a free loopback port (retrying if another process took the port).
  std::unique_ptr<ChildProcess> StartPrometheus(const TempDir& dir, const std::string& config, int* port) {
    std::string logs;
    for (int attempt = 0; attempt < 3; ++attempt) {
      *port = FreePort();
      auto process = ChildProcess::Start(
          {prometheus_, "--config.file=" + config, "--storage.tsdb.path=" + dir.Sub("tsdb"),
           absl::StrCat("--web.listen-address=127.0.0.1:", *port), "--storage.tsdb.retention.time=1h",
           "--log.level=warn"},
          dir.Sub(absl::StrCat("prometheus-", attempt, ".log")));
      if (!process.ok()) continue;
      const absl::Time deadline = absl::Now() + absl::Seconds(30);
      while (absl::Now() < deadline && (*process)->Running()) {
        absl::StatusOr<testing::ops::HttpResponse> ready = HttpGet(*port, "/-/ready");
        if (ready.ok() && ready->status == 200) return std::move(*process);
        absl::SleepFor(absl::Milliseconds(100));
      }
      (*process)->Stop();
      absl::StrAppend(&logs, "attempt ", attempt + 1, " on port ", *port, ":\n", (*process)->ReadLog(), "\n");
    }
    ADD_FAILURE() << "prometheus did not become ready; logs:\n" << logs;
    return nullptr;
  }

  std::string prometheus_, promtool_;
};

// Drives every kind of traffic the dashboards and alerts look at.
void ServeTraffic(recd::v1::Recommender::Stub& stub, const testing::ClusteredData& data) {
  ASSERT_TRUE(testing::UpsertItems(stub, data.items).ok());
  ASSERT_TRUE(testing::LogInteractions(stub, data.interactions).ok());
  grpc::Status trained = testing::TrainAll(stub);
  ASSERT_TRUE(trained.ok()) << trained.error_message();
  for (int i = 0; i < kRecommends; ++i) {
    recd::v1::RecommendRequest request;
    request.set_user_id(absl::StrCat(i % 2 == 0 ? "ua" : "ub", i % 30));
    request.set_k(5);
    recd::v1::RecommendResponse response;
    ASSERT_TRUE(testing::Recommend(stub, request, &response).ok());
  }
  for (int i = 0; i < kBadRecommends; ++i) {
    recd::v1::RecommendRequest request;
    request.set_user_id("ua1");
    request.set_k(1000000);  // above --max_k
    recd::v1::RecommendResponse response;
    EXPECT_EQ(testing::Recommend(stub, request, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    // One refused batch: the interaction has no item.
    recd::v1::Interaction bad;
    bad.set_user_id("ua1");
    EXPECT_EQ(testing::LogInteractions(stub, {bad}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    recd::v1::SimilarItemsRequest request;
    request.set_item_id("no-such-item");
    request.set_k(5);
    recd::v1::SimilarItemsResponse response;
    EXPECT_EQ(stub.SimilarItems(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(OpsPrometheusTest, PrometheusScrapesRecdWithTheDeployConfig) {
  const absl::Time start = absl::Now();
  TempDir dir;
  auto recd = RecdProcess::Start(dir.Sub("data"), {"--models=popularity,pure_svd", "--model_params=pure_svd.rank=4"});
  ASSERT_TRUE(recd.ok()) << recd.status();
  ASSERT_GT((*recd)->metrics_port(), 0);
  auto stub = (*recd)->NewStub();
  const testing::ClusteredData data = testing::MakeClusteredData();
  ServeTraffic(*stub, data);
  if (HasFatalFailure()) return;

  const std::string config = WriteConfig(dir.path(), absl::StrCat("127.0.0.1:", (*recd)->metrics_port()));
  ASSERT_FALSE(config.empty());
  // The derived config (which loads the rules) and the rules themselves pass promtool.
  testing::CommandResult check = RunCommand({promtool_, "check", "config", config});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  check = RunCommand({promtool_, "check", "rules", SourceDir() + "/deploy/prometheus/alerts.yml"});
  EXPECT_EQ(check.exit_code, 0) << check.output;

  int port = 0;
  std::unique_ptr<ChildProcess> prometheus = StartPrometheus(dir, config, &port);
  ASSERT_NE(prometheus, nullptr);

  // Wait until a scrape after the traffic has landed.
  const std::string recommend_ok = R"(recd_requests_total{job="recd", method="Recommend", code="ok"})";
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  double seen = 0;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::vector<Sample>> samples = Query(port, recommend_ok);
    if (samples.ok() && samples->size() == 1 && (*samples)[0].value >= kRecommends) {
      seen = (*samples)[0].value;
      break;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_GE(seen, kRecommends) << "prometheus never scraped the traffic; log:\n" << prometheus->ReadLog();

  // The target and the request series.
  EXPECT_EQ(One(port, R"(up{job="recd"})"), 1);
  EXPECT_EQ(One(port, recommend_ok), kRecommends);
  EXPECT_EQ(One(port, R"(recd_requests_total{method="Recommend", code="invalid_argument"})"), kBadRecommends);
  EXPECT_EQ(One(port, R"(recd_requests_total{method="SimilarItems", code="not_found"})"), 1);
  EXPECT_GE(One(port, R"(recd_requests_total{method="TrainNow", code="ok"})"), 1);
  EXPECT_EQ(One(port, R"(recd_requests_in_flight{method="Recommend"})"), 0);

  // Latency histogram: 16 finite buckets from 50 µs to 5 s plus +Inf, cumulative, all calls counted.
  absl::StatusOr<std::vector<Sample>> buckets =
      Query(port, R"(recd_request_duration_seconds_bucket{method="Recommend"})");
  ASSERT_TRUE(buckets.ok()) << buckets.status();
  std::map<double, double> by_le;
  for (const Sample& s : *buckets) by_le[std::strtod(s.labels.at("le").c_str(), nullptr)] = s.value;
  ASSERT_EQ(by_le.size(), 17u);
  EXPECT_DOUBLE_EQ(by_le.begin()->first, 0.00005);
  EXPECT_DOUBLE_EQ(std::prev(by_le.end(), 2)->first, 5.0);
  EXPECT_TRUE(std::isinf(by_le.rbegin()->first));
  double previous = 0;
  for (const auto& [le, count] : by_le) {
    EXPECT_GE(count, previous) << "le=" << le;
    previous = count;
  }
  EXPECT_EQ(by_le.rbegin()->second, kRecommends + kBadRecommends);
  EXPECT_EQ(One(port, R"(recd_request_duration_seconds_count{method="Recommend"})"), kRecommends + kBadRecommends);
  EXPECT_GT(One(port, R"(recd_request_duration_seconds_sum{method="Recommend"})"), 0);
  const double p50 =
      One(port, R"(histogram_quantile(0.5, sum by (le) (recd_request_duration_seconds_bucket{method="Recommend"})))");
  EXPECT_GT(p50, 0);
  EXPECT_LT(p50, 1.0);

  // Ingestion.
  EXPECT_EQ(One(port, "recd_interactions_ingested_total"), static_cast<double>(data.interactions.size()));
  EXPECT_EQ(One(port, R"(recd_interactions_rejected_total{reason="invalid_argument"})"), 1);

  // Catalogue and models.
  EXPECT_EQ(One(port, "recd_items"), static_cast<double>(data.items.size()));
  EXPECT_EQ(One(port, "recd_users"), 60);
  EXPECT_EQ(One(port, "recd_interactions"), static_cast<double>(data.interactions.size()));
  EXPECT_GE(One(port, R"(recd_model_live_version{model="pure_svd"})"), 1);
  EXPECT_GE(One(port, R"(recd_model_live_version{model="popularity"})"), 1);
  EXPECT_EQ(One(port, R"(recd_trainings_total{model="pure_svd", outcome="published"})"), 1);
  const double age = One(port, R"(recd_model_age_seconds{model="pure_svd"})");
  EXPECT_GE(age, 0);
  EXPECT_LT(age, absl::ToDoubleSeconds(absl::Now() - start) + 5);
  EXPECT_EQ(One(port, R"(recd_model_freshness_lag_seconds{model="pure_svd"})"), 0);  // nothing logged since
  EXPECT_EQ(One(port, R"(recd_model_interactions_since_train{model="pure_svd"})"), 0);
  EXPECT_GT(One(port, R"(recd_model_trained_interactions{model="pure_svd"})"), 0);
  EXPECT_GE(One(port, R"(recd_model_train_duration_seconds{model="pure_svd"})"), 0);
  EXPECT_EQ(One(port, R"(recd_model_rejected_versions{model="pure_svd"})"), 0);
  EXPECT_GT(One(port, R"(count(recd_model_metric{model="pure_svd"}))"), 0);
  EXPECT_EQ(One(port, "count(recd_scorer_isa_info == 1)"), 1);
  EXPECT_EQ(One(port, "count(recd_build_info == 1)"), 1);

  // Store and process.
  EXPECT_GT(One(port, "recd_store_disk_bytes"), 0);
  EXPECT_GE(One(port, "recd_store_pending_compaction_bytes"), 0);
  EXPECT_EQ(One(port, "recd_store_write_stopped"), 0);
  EXPECT_GE(One(port, "recd_store_write_stall_seconds_total"), 0);
  EXPECT_GT(One(port, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(One(port, "process_virtual_memory_bytes"), One(port, "process_resident_memory_bytes"));
  EXPECT_GT(One(port, "process_cpu_seconds_total"), 0);
  EXPECT_GT(One(port, "process_open_fds"), 0);
  EXPECT_GT(One(port, "process_max_fds"), One(port, "process_open_fds"));
  EXPECT_GT(One(port, "process_threads"), 1);
  EXPECT_NEAR(One(port, "process_start_time_seconds"), absl::ToUnixSeconds(start), 120);

  // Every dashboard query runs and finds data (rates need two scrapes: wait for a few).
  absl::SleepFor(absl::Seconds(3));
  absl::StatusOr<std::string> dashboard_text = ReadFile(SourceDir() + "/deploy/grafana/dashboards/recd.json");
  ASSERT_TRUE(dashboard_text.ok());
  Struct dashboard;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*dashboard_text, &dashboard).ok());
  int queries = 0;
  for (const Value& panel : dashboard.fields().at("panels").list_value().values()) {
    const auto& fields = panel.struct_value().fields();
    if (!fields.contains("targets")) continue;
    const std::string title = fields.at("title").string_value();
    for (const Value& target : fields.at("targets").list_value().values()) {
      std::string expr = target.struct_value().fields().at("expr").string_value();
      expr = absl::StrReplaceAll(expr, {{"$__rate_interval", "30s"},
                                        {"$job", "recd"},
                                        {"$instance", ".*"},
                                        {"$method", "Recommend"},
                                        {"$model", ".*"}});
      absl::StatusOr<std::vector<Sample>> result = Query(port, expr);
      ++queries;
      if (!result.ok()) {
        ADD_FAILURE() << "panel '" << title << "': " << result.status();
        continue;
      }
      EXPECT_FALSE(result->empty()) << "panel '" << title << "' shows nothing: " << expr;
    }
  }
  EXPECT_GT(queries, 30);

  // The alert rules loaded and evaluate without errors; a healthy server fires none of them.
  absl::Time rules_deadline = absl::Now() + absl::Seconds(15);
  std::vector<std::string> not_ok;
  int rules = 0;
  do {
    not_ok.clear();
    rules = 0;
    absl::StatusOr<Struct> json = GetJson(port, "/api/v1/rules");
    ASSERT_TRUE(json.ok()) << json.status();
    for (const Value& group : json->fields().at("data").struct_value().fields().at("groups").list_value().values()) {
      for (const Value& rule : group.struct_value().fields().at("rules").list_value().values()) {
        const auto& f = rule.struct_value().fields();
        ++rules;
        if (f.at("health").string_value() != "ok") {
          not_ok.push_back(absl::StrCat(f.at("name").string_value(), ": ", f.at("health").string_value(), " ",
                                        f.contains("lastError") ? f.at("lastError").string_value() : ""));
        }
        if (f.contains("state")) {
          EXPECT_NE(f.at("state").string_value(), "firing") << f.at("name").string_value();
        }
      }
    }
    if (not_ok.empty()) break;
    absl::SleepFor(absl::Milliseconds(500));
  } while (absl::Now() < rules_deadline);
  EXPECT_GE(rules, 10);
  EXPECT_THAT(not_ok, ::testing::IsEmpty());

  EXPECT_EQ(prometheus->Stop(), 0) << prometheus->ReadLog();
  EXPECT_EQ((*recd)->Terminate(), 0);
  std::printf("prometheus test: %d queries, %d rules, %.1f s\n", queries, rules,
              absl::ToDoubleSeconds(absl::Now() - start));
}

// recd_build_info names the allocator the running binary really uses: the build links tcmalloc
// into recd unless configured otherwise (RECD_EXPECTED_ALLOCATOR, from CMakeLists.txt), and a
// link that silently dropped it would cost every request its allocation time. No Prometheus
// server needed.
TEST(RecdBuildInfoTest, NamesTheAllocatorTheBuildLinked) {
  TempDir dir;
  auto recd = RecdProcess::Start(dir.Sub("data"), {});
  ASSERT_TRUE(recd.ok()) << recd.status();
  ASSERT_GT((*recd)->metrics_port(), 0);
  absl::StatusOr<testing::ops::HttpResponse> metrics = HttpGet((*recd)->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(SumSamples(metrics->body, "recd_build_info", {{"allocator", RECD_EXPECTED_ALLOCATOR}}), 1.0)
      << metrics->body.substr(0, 2000);
}

}  // namespace
}  // namespace recd
