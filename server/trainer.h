// The background trainer: turns the interaction log into new model versions.
//
// A run reads one consistent snapshot of the log (never blocking ingestion or serving), trains
// the requested models in turn, persists each as a new version, validates it by building its
// serving snapshot, records it as live in the store and then publishes it to the registry. If the
// process dies at any point, the store still names a complete live version.
//
// Thread-safety: all public methods may be called from any thread. Runs execute one at a time
// (on the trainer thread, or on the caller's thread for RunNow).
#ifndef RECD_SERVER_TRAINER_H_
#define RECD_SERVER_TRAINER_H_

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "core/sync.h"
#include "absl/time/time.h"
#include "core/model.h"
#include "core/scorer.h"
#include "server/clock.h"
#include "server/model_registry.h"
#include "storage/store.h"

namespace recd::server {

struct TrainResult {
  enum class Outcome { kQueued, kPublished, kRejected, kFailed };
  std::string model;
  Outcome outcome = Outcome::kFailed;
  uint64_t version = 0;
  double train_seconds = 0.0;
  std::string message;
};

struct TrainerOptions {
  int num_threads = 1;
  uint64_t seed = 42;
  EventWeights event_weights;
  int keep_versions = 5;
  ScorerConfig scorer = DefaultScorerConfig();  // ServerOptions::scorer in a server
  Clock* clock = Clock::Real();

  // Schedule (0 disables a trigger): retrain every model when this many seconds passed since the
  // last run and something was logged meanwhile, or as soon as this many interactions were
  // logged since the last run.
  double retrain_interval_seconds = 0;
  uint64_t retrain_after_interactions = 0;
  // How often the background thread checks the interval trigger, real time.
  absl::Duration poll_interval = absl::Seconds(1);

  // Validation gate: a candidate is published only if its holdout HR@gate_k is at least the live
  // version's minus gate_tolerance (absolute). Needs gate_min_users held-out users (interactions
  // newer than the live version); otherwise the candidate is published unvalidated (noted in its
  // metrics as holdout_users = 0).
  bool gate_enabled = true;
  double gate_tolerance = 0.05;
  size_t gate_min_users = 20;
  size_t gate_max_users = 2000;
  int gate_k = 10;

  // Niceness added to the trainer thread (and the training threads it starts), so retraining
  // yields the CPU to request handlers.
  int nice_increment = 10;
  // Also put those threads under SCHED_IDLE. Under the normal policy, even at nice +10, a
  // training thread that holds the CPU delays a request handler that wakes up by up to a
  // scheduler slice, often more than one request's work; a SCHED_IDLE thread is preempted at once.
  // The cost: on a core saturated by requests training gets almost nothing (about 0.3 %).
  bool idle_priority = false;

  // Test hook: applied to every trained candidate before validation (e.g. to break it).
  std::function<void(ModelData&)> candidate_hook;
  // Called with every model's result at the end of each run (metrics). May be empty.
  std::function<void(const TrainResult&)> on_result;
};

class Trainer {
 public:
  Trainer(storage::Store* store, ModelRegistry* registry, TrainerOptions options);
  ~Trainer();

  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Starts the background thread.
  void Start();
  // Cancels a run in progress at its next checkpoint, fails queued requests and joins the thread.
  // Idempotent.
  void Stop();

  // Queues a run of `models` (empty = every configured model). The future completes when the run
  // ends. Unknown names complete with kFailed results.
  std::shared_future<std::vector<TrainResult>> Enqueue(std::vector<std::string> models)
      ABSL_LOCKS_EXCLUDED(queue_mu_);

  // Runs synchronously on the calling thread (used at startup, before serving).
  std::vector<TrainResult> RunNow(const std::vector<std::string>& models) ABSL_LOCKS_EXCLUDED(run_mu_);

  // Counts newly logged interactions toward the retrain_after_interactions trigger and wakes the
  // background thread when it fires. Cheap: one atomic add unless the threshold is crossed.
  void NoteInteractions(uint64_t count) ABSL_LOCKS_EXCLUDED(queue_mu_);

  // Whether the schedule calls for a run now (per options.clock).
  bool ScheduleDue() const;

  // Runs every model synchronously if the schedule is due; returns whether it ran. The
  // background thread calls this; tests call it directly with a FakeClock and no thread.
  bool Tick() ABSL_LOCKS_EXCLUDED(run_mu_);

  // True while a run is in progress.
  bool busy() const { return busy_.load(); }

 private:
  struct Request {
    std::vector<std::string> models;
    std::promise<std::vector<TrainResult>> done;
  };

  void Loop();
  std::vector<TrainResult> Run(const std::vector<std::string>& models)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);
  TrainResult TrainOne(const ModelConfig& config, const TrainingData& data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);
  void PruneVersions(const std::string& name, uint64_t live_version);
  // Zeroes the rows of every user index without an id (deleted users, unused indices).
  void EraseDeletedUsers(ModelData& data) const;

  storage::Store* const store_;
  ModelRegistry* const registry_;
  const TrainerOptions options_;

  Mutex run_mu_;  // one run at a time
  Mutex queue_mu_;
  std::deque<Request> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool poked_ ABSL_GUARDED_BY(queue_mu_) = false;  // the interaction trigger fired
  CondVar wake_;  // signalled with queue_mu_ held when a request, a poke or a stop arrives
  std::atomic<bool> cancel_{false};
  std::atomic<bool> busy_{false};
  // Schedule state: when the last run started and what was logged since.
  std::atomic<int64_t> last_run_ms_;
  std::atomic<uint64_t> interactions_since_run_{0};
  std::thread thread_;
};

}  // namespace recd::server

#endif  // RECD_SERVER_TRAINER_H_
