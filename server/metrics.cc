#include "server/metrics.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/scorer.h"

namespace recd::server {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Buckets from 50 µs to 5 s, roughly 1-2.5-5 per decade.
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5,    5.0};
}

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void AddGauge(prometheus::MetricFamily& family, double value,
              std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (family.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  family.metric.push_back(std::move(m));
}

// Process facts from /proc (Linux), as the standard process_* series.
struct ProcessStats {
  double cpu_seconds = 0, resident_bytes = 0, virtual_bytes = 0, threads = 0, start_time = 0;
  double open_fds = 0, max_fds = 0;
};

ProcessStats ReadProcessStats() {
  ProcessStats p;
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the parenthesised command name (which may contain spaces).
  const size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
    // f[0] is field 3 (state); field n is f[n - 3].
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    if (f.size() > 21) {
      p.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime
      p.threads = std::stod(f[17]);
      p.virtual_bytes = std::stod(f[20]);
      p.resident_bytes = std::stod(f[21]) * page;
      std::ifstream boot("/proc/stat");
      std::string line;
      while (std::getline(boot, line)) {
        if (line.rfind("btime ", 0) == 0) p.start_time = std::stod(line.substr(6)) + std::stod(f[19]) / ticks;
      }
    }
  }
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++p.open_fds;
    closedir(dir);
    p.open_fds -= 3;  // ".", ".." and the directory's own descriptor
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) p.max_fds = static_cast<double>(limit.rlim_cur);
  return p;
}

}  // namespace

const char* AllocatorName() {
  // tcmalloc exports its entry points under their own names as well.
  static const char* const name = dlsym(RTLD_DEFAULT, "tc_malloc") != nullptr ? "tcmalloc" : "system";
  return name;
}

const char* MethodName(Method method) {
  switch (method) {
    case Method::kRecommend: return "Recommend";
    case Method::kRecommendBatch: return "RecommendBatch";
    case Method::kSimilarItems: return "SimilarItems";
    case Method::kLogInteractions: return "LogInteractions";
    case Method::kUpsertItems: return "UpsertItems";
    case Method::kDeleteItem: return "DeleteItem";
    case Method::kDeleteUser: return "DeleteUser";
    case Method::kGetModelInfo: return "GetModelInfo";
    case Method::kTrainNow: return "TrainNow";
    case Method::kRollbackModel: return "RollbackModel";
    case Method::kCreateCheckpoint: return "CreateCheckpoint";
    case Method::kCount: break;
  }
  return "unknown";
}

const char* CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "ok",         "cancelled",         "unknown",   "invalid_argument", "deadline_exceeded",
      "not_found",  "already_exists",    "permission_denied", "resource_exhausted",
      "failed_precondition", "aborted",  "out_of_range", "unimplemented", "internal",
      "unavailable", "data_loss",        "unauthenticated"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : "unknown";
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("recd_requests_total")
                    .Help("RPCs handled, by method and gRPC status code")
                    .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("recd_request_duration_seconds")
                   .Help("RPC handling time from the handler's start to its reply, by method")
                   .Register(*registry_)),
      in_flight_(prometheus::BuildGauge()
                     .Name("recd_requests_in_flight")
                     .Help("RPCs being handled now, by method")
                     .Register(*registry_)),
      ingested_(prometheus::BuildCounter()
                    .Name("recd_interactions_ingested_total")
                    .Help("Interactions written durably by LogInteractions")
                    .Register(*registry_)),
      rejected_(prometheus::BuildCounter()
                    .Name("recd_interactions_rejected_total")
                    .Help("Interactions in LogInteractions batches that were refused, by reason")
                    .Register(*registry_)),
      trainings_(prometheus::BuildCounter()
                     .Name("recd_trainings_total")
                     .Help("Training runs per model by outcome: published, rejected (validation gate), failed")
                     .Register(*registry_)),
      ingested_total_(ingested_.Add({})) {
  for (int m = 0; m < kMethods; ++m) {
    const std::string name = MethodName(static_cast<Method>(m));
    latency_by_method_[m] = &latency_.Add({{"method", name}}, LatencyBuckets());
    in_flight_by_method_[m] = &in_flight_.Add({{"method", name}});
    for (auto& c : requests_by_code_[m]) c.store(nullptr);
  }
  // The success series exists from the start so rates and ratios are defined before traffic.
  for (int m = 0; m < kMethods; ++m) RequestCounter(static_cast<Method>(m), grpc::StatusCode::OK);
}

prometheus::Counter& Metrics::RequestCounter(Method method, grpc::StatusCode code) {
  const int m = static_cast<int>(method);
  const int c = static_cast<int>(code) >= 0 && static_cast<int>(code) < kCodes ? static_cast<int>(code) : 2;
  prometheus::Counter* counter = requests_by_code_[m][c].load(std::memory_order_acquire);
  if (counter == nullptr) {
    MutexLock lock(&add_mu_);
    counter = &requests_.Add({{"method", MethodName(method)}, {"code", CodeName(static_cast<grpc::StatusCode>(c))}});
    requests_by_code_[m][c].store(counter, std::memory_order_release);
  }
  return *counter;
}

Metrics::Call::Call(Metrics* metrics, Method method) : metrics_(metrics), method_(method), start_ns_(NowNs()) {
  metrics_->in_flight_by_method_[static_cast<int>(method)]->Increment();
}

Metrics::Call::~Call() {
  if (!finished_) Finish(grpc::StatusCode::UNKNOWN);
}

double Metrics::Call::ElapsedSeconds() const { return (NowNs() - start_ns_) * 1e-9; }

void Metrics::Call::Finish(grpc::StatusCode code) {
  if (finished_) return;
  finished_ = true;
  const int m = static_cast<int>(method_);
  metrics_->latency_by_method_[m]->Observe(ElapsedSeconds());
  metrics_->RequestCounter(method_, code).Increment();
  metrics_->in_flight_by_method_[m]->Decrement();
}

void Metrics::CountIngested(uint64_t interactions) { ingested_total_.Increment(static_cast<double>(interactions)); }

void Metrics::CountRejected(uint64_t interactions, grpc::StatusCode code) {
  rejected_.Add({{"reason", CodeName(code)}}).Increment(static_cast<double>(interactions));
}

void Metrics::CountTraining(const TrainResult& result) {
  const char* outcome = result.outcome == TrainResult::Outcome::kPublished  ? "published"
                        : result.outcome == TrainResult::Outcome::kRejected ? "rejected"
                                                                            : "failed";
  trainings_.Add({{"model", result.model}, {"outcome", outcome}}).Increment();
}

StateCollector::StateCollector(const storage::Store* store, const ModelRegistry* registry, const Clock* clock)
    : store_(store), registry_(registry), clock_(clock) {}

std::vector<prometheus::MetricFamily> StateCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  const storage::StoreStats stats = store_->GetStats();
  const double now_s = clock_->NowMs() / 1000.0;

  auto gauge = [&](const char* name, const char* help, double value) {
    prometheus::MetricFamily f = Family(name, help, MetricType::Gauge);
    AddGauge(f, value);
    out.push_back(std::move(f));
  };
  auto counter = [&](const char* name, const char* help, double value) {
    prometheus::MetricFamily f = Family(name, help, MetricType::Counter);
    AddGauge(f, value);
    out.push_back(std::move(f));
  };
  gauge("recd_users", "Users with an id in the store", stats.num_users);
  gauge("recd_items", "Items in the catalogue (deleted excluded)", stats.num_items);
  gauge("recd_interactions", "Interactions in the log", static_cast<double>(stats.num_interactions));
  gauge("recd_log_sequence", "Highest interaction log sequence assigned", static_cast<double>(stats.last_sequence));
  gauge("recd_store_disk_bytes", "RocksDB live SST and WAL bytes", static_cast<double>(stats.disk_bytes));
  gauge("recd_store_pending_compaction_bytes", "RocksDB estimate of bytes awaiting compaction",
        static_cast<double>(stats.pending_compaction_bytes));
  gauge("recd_store_write_stopped", "1 while RocksDB stops writes", stats.write_stopped ? 1 : 0);
  counter("recd_store_write_stall_seconds_total", "Time RocksDB stalled writes",
          static_cast<double>(stats.write_stall_micros) / 1e6);
  counter("recd_store_history_cache_hits_total", "User history reads answered from memory",
          static_cast<double>(stats.history_cache_hits));
  counter("recd_store_history_cache_misses_total", "User history reads that went to RocksDB to fill the cache",
          static_cast<double>(stats.history_cache_misses));
  gauge("recd_store_history_cache_users", "Users in the history cache", static_cast<double>(stats.history_cache_users));
  gauge("recd_store_history_cache_entries", "History entries in the history cache",
        static_cast<double>(stats.history_cache_entries));

  prometheus::MetricFamily isa = Family("recd_scorer_isa_info", "Instruction set the scorer kernels use", MetricType::Gauge);
  AddGauge(isa, 1, {{"isa", ScorerIsaName()}});
  out.push_back(std::move(isa));
  prometheus::MetricFamily build = Family("recd_build_info", "recd build", MetricType::Gauge);
  AddGauge(build, 1, {{"version", RECD_VERSION}, {"allocator", AllocatorName()}});
  out.push_back(std::move(build));

  auto version = Family("recd_model_live_version", "Live version per model (0 = none trained)", MetricType::Gauge);
  auto age = Family("recd_model_age_seconds", "Seconds since the live version finished training", MetricType::Gauge);
  auto duration = Family("recd_model_train_duration_seconds", "Training time of the live version", MetricType::Gauge);
  auto trained = Family("recd_model_trained_interactions", "Interactions the live version was trained on", MetricType::Gauge);
  auto since = Family("recd_model_interactions_since_train", "Interactions logged after the live version's training snapshot",
                      MetricType::Gauge);
  auto lag = Family("recd_model_freshness_lag_seconds",
                    "Age of the live version when interactions were logged since it was trained, else 0",
                    MetricType::Gauge);
  auto metric = Family("recd_model_metric", "Training and validation metrics of the live version", MetricType::Gauge);
  auto rejected = Family("recd_model_rejected_versions", "Stored versions rejected by the validation gate",
                         MetricType::Gauge);
  for (const ModelConfig& config : registry_->configs()) {
    std::vector<prometheus::ClientMetric::Label> labels = {{"model", config.name}};
    std::shared_ptr<const ServingModel> live = registry_->Live(config.name);
    AddGauge(version, live ? static_cast<double>(live->meta().version) : 0, labels);
    if (live != nullptr) {
      const ModelMetadata& meta = live->meta();
      const double model_age = std::max(0.0, now_s - meta.trained_at_ms / 1000.0);
      const uint64_t newer =
          stats.last_sequence > meta.trained_through_sequence ? stats.last_sequence - meta.trained_through_sequence : 0;
      AddGauge(age, model_age, labels);
      AddGauge(duration, meta.train_seconds, labels);
      AddGauge(trained, static_cast<double>(meta.num_interactions), labels);
      AddGauge(since, static_cast<double>(newer), labels);
      AddGauge(lag, newer > 0 ? model_age : 0.0, labels);
      for (const auto& [key, value] : meta.metrics) {
        AddGauge(metric, value, {{"model", config.name}, {"metric", key}});
      }
    }
    absl::StatusOr<std::vector<ModelMetadata>> versions = store_->ListModelVersions(config.name);
    double count = 0;
    if (versions.ok()) {
      for (const ModelMetadata& v : *versions) count += v.rejected ? 1 : 0;
    }
    AddGauge(rejected, count, labels);
  }
  for (auto* f : {&version, &age, &duration, &trained, &since, &lag, &metric, &rejected}) out.push_back(std::move(*f));

  const ProcessStats p = ReadProcessStats();
  counter("process_cpu_seconds_total", "User and system CPU time spent, seconds", p.cpu_seconds);
  gauge("process_resident_memory_bytes", "Resident memory size, bytes", p.resident_bytes);
  gauge("process_virtual_memory_bytes", "Virtual memory size, bytes", p.virtual_bytes);
  gauge("process_open_fds", "Open file descriptors", p.open_fds);
  gauge("process_max_fds", "Maximum open file descriptors", p.max_fds);
  gauge("process_threads", "OS threads", p.threads);
  gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, seconds", p.start_time);
  return out;
}

}  // namespace recd::server
