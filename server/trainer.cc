#include "server/trainer.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/holdout.h"
#include "core/status_macros.h"
#include "server/logging.h"

namespace recd::server {
namespace {

TrainResult Failed(const std::string& model, std::string message) {
  TrainResult r;
  r.model = model;
  r.outcome = TrainResult::Outcome::kFailed;
  r.message = std::move(message);
  return r;
}

std::vector<TrainResult> FailAll(const std::vector<std::string>& models, const std::string& message) {
  std::vector<TrainResult> results;
  for (const std::string& m : models) results.push_back(Failed(m, message));
  return results;
}

}  // namespace

Trainer::Trainer(storage::Store* store, ModelRegistry* registry, TrainerOptions options)
    : store_(store),
      registry_(registry),
      options_(std::move(options)),
      last_run_ms_(options_.clock->NowMs()) {}

Trainer::~Trainer() { Stop(); }

void Trainer::Start() {
  MutexLock lock(&queue_mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void Trainer::Stop() {
  std::deque<Request> abandoned;
  {
    MutexLock lock(&queue_mu_);
    stopping_ = true;
    abandoned.swap(queue_);
    wake_.SignalAll();
  }
  cancel_ = true;
  for (Request& r : abandoned) r.done.set_value(FailAll(r.models, "server is shutting down"));
  if (thread_.joinable()) thread_.join();
}

std::shared_future<std::vector<TrainResult>> Trainer::Enqueue(std::vector<std::string> models) {
  Request request;
  request.models = std::move(models);
  std::shared_future<std::vector<TrainResult>> future = request.done.get_future().share();
  MutexLock lock(&queue_mu_);
  if (stopping_) {
    request.done.set_value(FailAll(request.models, "server is shutting down"));
  } else {
    queue_.push_back(std::move(request));
    wake_.Signal();
  }
  return future;
}

void Trainer::NoteInteractions(uint64_t count) {
  const uint64_t total = interactions_since_run_.fetch_add(count) + count;
  const uint64_t threshold = options_.retrain_after_interactions;
  if (threshold > 0 && total >= threshold && total - count < threshold) {
    MutexLock lock(&queue_mu_);
    poked_ = true;
    wake_.Signal();
  }
}

bool Trainer::ScheduleDue() const {
  const uint64_t pending = interactions_since_run_.load();
  if (options_.retrain_after_interactions > 0 && pending >= options_.retrain_after_interactions) {
    return true;
  }
  if (options_.retrain_interval_seconds > 0 && pending > 0) {
    const int64_t elapsed_ms = options_.clock->NowMs() - last_run_ms_.load();
    if (elapsed_ms >= static_cast<int64_t>(options_.retrain_interval_seconds * 1000)) return true;
  }
  return false;
}

bool Trainer::Tick() {
  if (!ScheduleDue()) return false;
  MutexLock lock(&run_mu_);
  if (!ScheduleDue()) return false;  // a run finished while we waited for the lock
  RECD_LOG(kInfo, "trainer", "scheduled retrain: ", interactions_since_run_.load(),
           " interactions since the last run");
  Run({});
  return true;
}

void Trainer::Loop() {
  // Named so operators (top -H, perf) and the benchmarks can tell it from request handlers;
  // threads started by training inherit the name.
  pthread_setname_np(pthread_self(), "recd-trainer");
  // Training is batch work: let request handlers have the CPU first. Linux keeps niceness per
  // thread, and threads started by training inherit it.
  if (options_.nice_increment != 0) {
    const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
    setpriority(PRIO_PROCESS, tid, getpriority(PRIO_PROCESS, tid) + options_.nice_increment);
  }
  if (options_.idle_priority) {
    // Threads inherit the policy (std::thread leaves PTHREAD_INHERIT_SCHED, the default).
    sched_param param{};
    if (const int error = pthread_setschedparam(pthread_self(), SCHED_IDLE, &param); error != 0) {
      RECD_LOG(kWarning, "trainer", "cannot run training under SCHED_IDLE (error ", error,
               "); it keeps the normal policy at nice +", options_.nice_increment);
    }
  }
  while (true) {
    std::optional<Request> request;
    {
      MutexLock lock(&queue_mu_);
      const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.poll_interval);
      while (!stopping_ && queue_.empty() && !poked_ && std::chrono::steady_clock::now() < deadline) {
        wake_.WaitWithTimeout(&queue_mu_, deadline - std::chrono::steady_clock::now());
      }
      if (stopping_) return;
      poked_ = false;
      if (!queue_.empty()) {
        request.emplace(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (request.has_value()) {
      MutexLock run_lock(&run_mu_);
      request->done.set_value(Run(request->models));
    } else {
      Tick();
    }
  }
}

std::vector<TrainResult> Trainer::RunNow(const std::vector<std::string>& models) {
  MutexLock lock(&run_mu_);
  return Run(models);
}

std::vector<TrainResult> Trainer::Run(const std::vector<std::string>& requested) {
  busy_ = true;
  std::vector<const ModelConfig*> configs;
  std::vector<TrainResult> results;
  if (requested.empty()) {
    for (const ModelConfig& c : registry_->configs()) configs.push_back(&c);
  } else {
    for (const std::string& name : requested) {
      absl::StatusOr<const ModelConfig*> config = registry_->Config(name);
      if (!config.ok()) {
        results.push_back(Failed(name, std::string(config.status().message())));
      } else {
        configs.push_back(*config);
      }
    }
  }
  if (!configs.empty()) {
    // Interactions logged from here on count toward the next run.
    last_run_ms_ = options_.clock->NowMs();
    interactions_since_run_ = 0;
    absl::StatusOr<TrainingData> data = store_->ReadTrainingSnapshot();
    for (const ModelConfig* config : configs) {
      if (!data.ok()) {
        results.push_back(Failed(config->name, absl::StrCat("reading the interaction log: ", data.status().message())));
      } else if (cancel_) {
        results.push_back(Failed(config->name, "cancelled"));
      } else {
        results.push_back(TrainOne(*config, *data));
      }
    }
  }
  busy_ = false;
  if (options_.on_result) {
    for (const TrainResult& r : results) options_.on_result(r);
  }
  return results;
}

TrainResult Trainer::TrainOne(const ModelConfig& config, const TrainingData& data) {
  TrainResult result;
  result.model = config.name;
  if (data.interactions.empty()) {
    result.message = "no interactions logged yet";
    return result;
  }
  std::shared_ptr<const ServingModel> live = registry_->Live(config.name);
  const auto start = std::chrono::steady_clock::now();
  RECD_LOG(kInfo, "trainer", "training ", config.name, " on ", data.interactions.size(), " interactions");

  // The gate's holdout: interactions newer than the live version, which neither model saw.
  bool gate = options_.gate_enabled && live != nullptr && config.algorithm != "popularity";
  HoldoutSplit split;
  if (gate) {
    HoldoutOptions holdout_options;
    holdout_options.after_sequence = live->meta().trained_through_sequence;
    holdout_options.max_users = options_.gate_max_users;
    holdout_options.weights = options_.event_weights;
    split = SplitHoldout(data, holdout_options);
    if (split.holdout.size() < options_.gate_min_users) {
      RECD_LOG(kInfo, "trainer", config.name, ": only ", split.holdout.size(),
               " users with new interactions; publishing without validation");
      gate = false;
    }
  }
  const TrainingData& train_data = gate ? split.train : data;

  TrainOptions train_options;
  train_options.seed = options_.seed;
  train_options.num_threads = options_.num_threads;
  train_options.event_weights = options_.event_weights;
  train_options.warm_start = live ? &live->model->data() : nullptr;
  train_options.cancel = &cancel_;
  absl::StatusOr<ModelData> trained = TrainModel(config, train_data, train_options);
  if (!trained.ok()) {
    result.message = std::string(trained.status().message());
    RECD_LOG(kError, "trainer", "training ", config.name, " failed: ", result.message);
    return result;
  }
  if (options_.candidate_hook) options_.candidate_hook(*trained);
  auto candidate = std::make_shared<ModelData>(std::move(*trained));
  // Users deleted since the snapshot (or whose rows came from a warm start) leave no trace.
  EraseDeletedUsers(*candidate);

  std::string reject_reason;
  if (gate) {
    absl::StatusOr<std::shared_ptr<const Model>> model = CreateModel(candidate);
    if (!model.ok()) {
      reject_reason = std::string(model.status().message());
    } else {
      const HoldoutMetrics mine = EvaluateHoldout(**model, split.train, split.holdout, options_.gate_k);
      const HoldoutMetrics theirs = EvaluateHoldout(*live->model, split.train, split.holdout, options_.gate_k);
      const std::string k = absl::StrCat(options_.gate_k);
      candidate->meta.metrics["holdout_users"] = static_cast<double>(mine.users);
      candidate->meta.metrics["holdout_hr@" + k] = mine.hit_rate;
      candidate->meta.metrics["holdout_ndcg@" + k] = mine.ndcg;
      candidate->meta.metrics["live_holdout_hr@" + k] = theirs.hit_rate;
      if (mine.hit_rate < theirs.hit_rate - options_.gate_tolerance) {
        reject_reason = absl::StrFormat(
            "holdout HR@%d %.4f is below the live v%d's %.4f by more than the tolerance %.4f (%d users)",
            options_.gate_k, mine.hit_rate, live->meta().version, theirs.hit_rate, options_.gate_tolerance,
            mine.users);
      }
    }
    if (reject_reason.empty()) {
      // The candidate never saw the held-out interactions, but its trained_through_sequence
      // covers them, so the engine would serve those users a row that misses their latest
      // interactions until the next retrain. Without a row the engine folds the user in from the
      // whole history (the projection PureSVD and ALS train user rows with anyway).
      for (const HoldoutEntry& e : split.holdout) {
        if (static_cast<Eigen::Index>(e.user) < candidate->user_factors.rows()) {
          candidate->user_factors.row(static_cast<Eigen::Index>(e.user)).setZero();
        }
      }
    }
  } else {
    candidate->meta.metrics["holdout_users"] = 0.0;
  }
  result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  candidate->meta.trained_at_ms = options_.clock->NowMs();
  candidate->meta.train_seconds = result.train_seconds;

  absl::StatusOr<uint64_t> version = store_->SaveModel(*candidate);
  if (!version.ok()) {
    result.message = absl::StrCat("saving: ", version.status().message());
    RECD_LOG(kError, "trainer", "saving ", config.name, " failed: ", result.message);
    return result;
  }
  candidate->meta.version = *version;
  result.version = *version;

  std::shared_ptr<const ServingModel> serving;
  if (reject_reason.empty()) {
    absl::StatusOr<std::shared_ptr<const ServingModel>> built = ServingModel::Create(candidate, options_.scorer);
    if (built.ok()) {
      serving = *built;
    } else {
      // A version that cannot be served (e.g. non-finite embeddings) is kept for inspection only.
      reject_reason = std::string(built.status().message());
    }
  }
  if (!reject_reason.empty()) {
    result.outcome = TrainResult::Outcome::kRejected;
    result.message = reject_reason;
    if (absl::Status s = store_->MarkRejected(config.name, *version, reject_reason); !s.ok()) {
      RECD_LOG(kError, "trainer", "could not mark ", config.name, " v", *version, " rejected: ", s.message());
    }
    RECD_LOG(kWarning, "trainer", "rejected ", config.name, " v", *version, ": ", reject_reason);
    PruneVersions(config.name, live ? live->meta().version : 0);
    return result;
  }
  if (absl::Status s = store_->SetLiveVersion(config.name, *version); !s.ok()) {
    result.message = absl::StrCat("recording live version: ", s.message());
    return result;
  }
  registry_->Publish(serving);
  // A DeleteUser between EraseDeletedUsers above and the publish erased the previous live
  // version, not this one: catch up.
  std::vector<UserIndex> deleted_meanwhile;
  for (UserIndex u = 0; u < static_cast<UserIndex>(candidate->user_factors.rows()); ++u) {
    if (store_->UserId(u).empty() && HasUserRows(*candidate, u)) deleted_meanwhile.push_back(u);
  }
  if (!deleted_meanwhile.empty()) (void)registry_->EraseUsers(deleted_meanwhile, options_.scorer);
  result.outcome = TrainResult::Outcome::kPublished;
  RECD_LOG(kInfo, "trainer",
           absl::StrFormat("published %s v%d: %d interactions, %d users, %d items, %.2f s%s", config.name,
                           *version, train_data.interactions.size(), data.num_users, data.num_items,
                           result.train_seconds,
                           gate ? absl::StrFormat(" (holdout HR@%d %.4f vs live %.4f)", options_.gate_k,
                                                  candidate->meta.metrics["holdout_hr@" + absl::StrCat(options_.gate_k)],
                                                  candidate->meta.metrics["live_holdout_hr@" + absl::StrCat(options_.gate_k)])
                                : ""));
  PruneVersions(config.name, *version);
  return result;
}

void Trainer::EraseDeletedUsers(ModelData& data) const {
  Eigen::Index rows = data.user_factors.rows();
  for (const auto& [name, tensor] : data.tensors) {
    if (IsUserIndexedTensor(name)) rows = std::max(rows, tensor.rows());
  }
  for (Eigen::Index u = 0; u < rows; ++u) {
    if (store_->UserId(static_cast<UserIndex>(u)).empty()) EraseUserRows(data, static_cast<UserIndex>(u));
  }
}

void Trainer::PruneVersions(const std::string& name, uint64_t live_version) {
  absl::StatusOr<std::vector<ModelMetadata>> versions = store_->ListModelVersions(name);
  if (!versions.ok()) return;
  int kept = 0;
  for (const ModelMetadata& meta : *versions) {  // newest first
    if (meta.version == live_version || kept < options_.keep_versions) {
      ++kept;
      continue;
    }
    if (absl::Status s = store_->DeleteModelVersion(name, meta.version); !s.ok()) {
      RECD_LOG(kWarning, "trainer", "could not delete ", name, " v", meta.version, ": ", s.message());
    }
  }
}

}  // namespace recd::server
