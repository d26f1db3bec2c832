// Prometheus metrics of recd (prometheus-cpp), exposed on --metrics_listen at /metrics.
//
// Request-path series are updated with lock-free atomics (counters and histograms per method are
// created once); everything describing state (catalogue, models, store, process) is computed at
// scrape time by StateCollector, so the request path never pays for it.
//
// Series (all names follow Prometheus conventions; units in the name):
//   recd_requests_total{method,code}                    counter
//   recd_request_duration_seconds{method}               histogram, buckets 50 µs .. 5 s
//   recd_requests_in_flight{method}                     gauge
//   recd_interactions_ingested_total                    counter
//   recd_interactions_rejected_total{reason}            counter (entries of refused batches)
//   recd_trainings_total{model,outcome}                 counter (published|rejected|failed)
//   recd_users, recd_items, recd_interactions           gauges (catalogue and log sizes)
//   recd_log_sequence                                   gauge (highest log sequence)
//   recd_model_live_version{model}                      gauge
//   recd_model_age_seconds{model}                       gauge (now - trained_at of the live version)
//   recd_model_train_duration_seconds{model}            gauge (of the live version)
//   recd_model_trained_interactions{model}              gauge
//   recd_model_interactions_since_train{model}          gauge
//   recd_model_freshness_lag_seconds{model}             gauge (age of the live version when anything
//                                                        was logged since it was trained, else 0)
//   recd_model_metric{model,metric}                     gauge (train_loss, holdout_hr@10, ...)
//   recd_model_rejected_versions{model}                 gauge (stored versions the gate rejected)
//   recd_store_disk_bytes, recd_store_pending_compaction_bytes, recd_store_write_stopped  gauges
//   recd_store_write_stall_seconds_total                counter
//   recd_store_history_cache_hits_total, recd_store_history_cache_misses_total  counters (history
//                                                        reads from memory / from RocksDB)
//   recd_store_history_cache_users, recd_store_history_cache_entries  gauges (what it holds now)
//   recd_scorer_isa_info{isa}, recd_build_info{version,allocator} gauges = 1
//   process_resident_memory_bytes, process_virtual_memory_bytes, process_cpu_seconds_total,
//   process_open_fds, process_max_fds, process_threads, process_start_time_seconds
#ifndef RECD_SERVER_METRICS_H_
#define RECD_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "core/sync.h"
#include "grpcpp/support/status.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/clock.h"
#include "server/model_registry.h"
#include "server/trainer.h"
#include "storage/store.h"

namespace recd::server {

enum class Method {
  kRecommend,
  kRecommendBatch,
  kSimilarItems,
  kLogInteractions,
  kUpsertItems,
  kDeleteItem,
  kDeleteUser,
  kGetModelInfo,
  kTrainNow,
  kRollbackModel,
  kCreateCheckpoint,
  kCount,
};
const char* MethodName(Method method);
// The allocator this process's malloc resolves to: "tcmalloc" (a build with RECD_MALLOC=tcmalloc,
// see CMakeLists.txt) or "system" (glibc's, or a sanitizer's).
const char* AllocatorName();
// Lower-case gRPC code name, e.g. "ok", "invalid_argument".
const char* CodeName(grpc::StatusCode code);

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // One RPC: counted in flight from construction until Finish (or destruction).
  class Call {
   public:
    Call(Metrics* metrics, Method method);
    ~Call();
    void Finish(grpc::StatusCode code);
    double ElapsedSeconds() const;

   private:
    Metrics* const metrics_;
    const Method method_;
    const int64_t start_ns_;
    bool finished_ = false;
  };

  void CountIngested(uint64_t interactions);
  void CountRejected(uint64_t interactions, grpc::StatusCode code);
  void CountTraining(const TrainResult& result);

 private:
  prometheus::Counter& RequestCounter(Method method, grpc::StatusCode code);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Gauge>& in_flight_;
  prometheus::Family<prometheus::Counter>& ingested_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& trainings_;
  prometheus::Counter& ingested_total_;

  static constexpr int kMethods = static_cast<int>(Method::kCount);
  static constexpr int kCodes = 17;
  std::array<prometheus::Histogram*, kMethods> latency_by_method_{};
  std::array<prometheus::Gauge*, kMethods> in_flight_by_method_{};
  // Created on first use (Family::Add takes a lock; the pointer cache keeps the hot path free).
  std::array<std::array<std::atomic<prometheus::Counter*>, kCodes>, kMethods> requests_by_code_{};
  Mutex add_mu_;
};

// Computes the state gauges at scrape time. All referenced objects must outlive it.
class StateCollector : public prometheus::Collectable {
 public:
  StateCollector(const storage::Store* store, const ModelRegistry* registry, const Clock* clock);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const storage::Store* const store_;
  const ModelRegistry* const registry_;
  const Clock* const clock_;
};

}  // namespace recd::server

#endif  // RECD_SERVER_METRICS_H_
