#include "server/trainer.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "server/logging.h"

namespace recd::server {

Trainer::Trainer(storage::Store* store, ModelRegistry* registry, TrainerOptions options)
    : store_(store), registry_(registry), options_(std::move(options)) {}

Trainer::~Trainer() { Stop(); }

void Trainer::Start() {
  absl::MutexLock lock(&queue_mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void Trainer::Stop() {
  std::deque<Request> abandoned;
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
    abandoned.swap(queue_);
  }
  cancel_ = true;
  for (Request& r : abandoned) {
    std::vector<TrainResult> results;
    for (const std::string& m : r.models) {
      results.push_back({m, TrainResult::Outcome::kFailed, 0, 0.0, "server is shutting down"});
    }
    r.done.set_value(std::move(results));
  }
  if (thread_.joinable()) thread_.join();
}

std::shared_future<std::vector<TrainResult>> Trainer::Enqueue(std::vector<std::string> models) {
  Request request;
  request.models = std::move(models);
  std::shared_future<std::vector<TrainResult>> future = request.done.get_future().share();
  absl::MutexLock lock(&queue_mu_);
  if (stopping_) {
    std::vector<TrainResult> results;
    for (const std::string& m : request.models) {
      results.push_back({m, TrainResult::Outcome::kFailed, 0, 0.0, "server is shutting down"});
    }
    request.done.set_value(std::move(results));
  } else {
    queue_.push_back(std::move(request));
  }
  return future;
}

void Trainer::Loop() {
  while (true) {
    Request request;
    {
      absl::MutexLock lock(&queue_mu_);
      queue_mu_.Await(absl::Condition(
          +[](Trainer* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->queue_mu_) {
            return t->stopping_ || !t->queue_.empty();
          },
          this));
      if (stopping_) return;
      request = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::MutexLock run_lock(&run_mu_);
    request.done.set_value(Run(request.models));
  }
}

std::vector<TrainResult> Trainer::RunNow(const std::vector<std::string>& models) {
  absl::MutexLock lock(&run_mu_);
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
        results.push_back({name, TrainResult::Outcome::kFailed, 0, 0.0, std::string(config.status().message())});
      } else {
        configs.push_back(*config);
      }
    }
  }
  if (!configs.empty()) {
    absl::StatusOr<TrainingData> data = store_->ReadTrainingSnapshot();
    for (const ModelConfig* config : configs) {
      if (!data.ok()) {
        results.push_back({config->name, TrainResult::Outcome::kFailed, 0, 0.0,
                           absl::StrCat("reading the interaction log: ", data.status().message())});
        continue;
      }
      if (cancel_) {
        results.push_back({config->name, TrainResult::Outcome::kFailed, 0, 0.0, "cancelled"});
        continue;
      }
      results.push_back(TrainOne(*config, *data));
    }
  }
  busy_ = false;
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
  TrainOptions train_options;
  train_options.seed = options_.seed;
  train_options.num_threads = options_.num_threads;
  train_options.event_weights = options_.event_weights;
  train_options.warm_start = live ? &live->model->data() : nullptr;
  train_options.cancel = &cancel_;

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<ModelData> trained = TrainModel(config, data, train_options);
  result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!trained.ok()) {
    result.message = std::string(trained.status().message());
    RECD_LOG(kError, "trainer", "training ", config.name, " failed: ", result.message);
    return result;
  }
  trained->meta.trained_at_ms = options_.clock->NowMs();
  trained->meta.train_seconds = result.train_seconds;

  absl::StatusOr<uint64_t> version = store_->SaveModel(*trained);
  if (!version.ok()) {
    result.message = absl::StrCat("saving: ", version.status().message());
    RECD_LOG(kError, "trainer", "saving ", config.name, " failed: ", result.message);
    return result;
  }
  trained->meta.version = *version;
  result.version = *version;

  absl::StatusOr<std::shared_ptr<const ServingModel>> serving =
      ServingModel::Create(std::make_shared<const ModelData>(std::move(*trained)), options_.scorer);
  if (!serving.ok()) {
    // A version that cannot be served (e.g. non-finite embeddings) is kept for inspection only.
    result.outcome = TrainResult::Outcome::kRejected;
    result.message = std::string(serving.status().message());
    (void)store_->MarkRejected(config.name, *version, result.message);
    RECD_LOG(kWarning, "trainer", "rejected ", config.name, " v", *version, ": ", result.message);
    return result;
  }
  if (absl::Status s = store_->SetLiveVersion(config.name, *version); !s.ok()) {
    result.message = absl::StrCat("recording live version: ", s.message());
    return result;
  }
  registry_->Publish(*serving);
  result.outcome = TrainResult::Outcome::kPublished;
  RECD_LOG(kInfo, "trainer",
           absl::StrFormat("published %s v%d: %d interactions, %d users, %d items, %.2f s", config.name,
                           *version, data.interactions.size(), data.num_users, data.num_items,
                           result.train_seconds));
  PruneVersions(config.name, *version);
  return result;
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
