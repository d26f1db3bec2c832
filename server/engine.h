// The request logic of recd, independent of the gRPC transport: validation, id mapping, user
// vectors, exclusion sets, scoring, ingestion and administration. RecommenderService (service.h)
// adapts it to gRPC; tests may drive it directly.
//
// Thread-safety: every method may be called concurrently. Reads pin immutable snapshots (model,
// catalogue) and never hold a lock while scoring.
#ifndef RECD_SERVER_ENGINE_H_
#define RECD_SERVER_ENGINE_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "core/sync.h"
#include "recd/v1/recommender.pb.h"
#include "server/catalog.h"
#include "server/cold_start.h"
#include "server/clock.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/trainer.h"
#include "storage/store.h"

namespace recd::server {

class Engine {
 public:
  // `store`, `registry` and `trainer` must outlive the engine.
  Engine(const ServerOptions& options, storage::Store* store, ModelRegistry* registry,
         Trainer* trainer, Clock* clock);

  // Loads the catalogue and the live version of every configured model from the store.
  // Models without a stored live version (or whose version fails to load) are reported in the
  // returned list so the caller can schedule training.
  absl::StatusOr<std::vector<std::string>> LoadFromStore();

  absl::Status Recommend(const recd::v1::RecommendRequest& request,
                         recd::v1::RecommendResponse* response) const;
  absl::Status RecommendBatch(const recd::v1::RecommendBatchRequest& request,
                              recd::v1::RecommendBatchResponse* response) const;
  absl::Status SimilarItems(const recd::v1::SimilarItemsRequest& request,
                            recd::v1::SimilarItemsResponse* response) const;

  absl::Status LogInteractions(const recd::v1::LogInteractionsRequest& request,
                               recd::v1::LogInteractionsResponse* response);
  absl::Status UpsertItems(const recd::v1::UpsertItemsRequest& request,
                           recd::v1::UpsertItemsResponse* response);
  absl::Status DeleteItem(const recd::v1::DeleteItemRequest& request);
  absl::Status DeleteUser(const recd::v1::DeleteUserRequest& request,
                          recd::v1::DeleteUserResponse* response);

  absl::Status GetModelInfo(const recd::v1::GetModelInfoRequest& request,
                            recd::v1::GetModelInfoResponse* response) const;
  // Waits for the run until `deadline` when request.wait is set.
  absl::Status TrainNow(const recd::v1::TrainNowRequest& request,
                        std::chrono::system_clock::time_point deadline,
                        recd::v1::TrainNowResponse* response);
  absl::Status RollbackModel(const recd::v1::RollbackModelRequest& request,
                             recd::v1::RollbackModelResponse* response);
  absl::Status CreateCheckpoint(const recd::v1::CreateCheckpointRequest& request,
                                recd::v1::CreateCheckpointResponse* response);

  // Periodic upkeep, called about once a second by the server's maintenance thread: ranks the
  // cold items of every live model for exploration, and purges deleted users' data from the
  // store's files purge_delay_seconds after a DeleteUser.
  void Maintain();

  // Applies item records to the store and the serving catalogue (used by UpsertItems and by the
  // demo-data loader).
  absl::StatusOr<storage::UpsertResult> ApplyItems(std::vector<storage::ItemRecord> records)
      ABSL_LOCKS_EXCLUDED(catalog_write_mu_);

 private:
  // Recommend after validation, for one entry; `config` is the resolved model.
  absl::Status RecommendValidated(const recd::v1::RecommendRequest& request,
                                  const ModelConfig& config,
                                  recd::v1::RecommendResponse* response) const;
  std::shared_ptr<const Catalog> PinCatalog() const ABSL_LOCKS_EXCLUDED(catalog_mu_);
  void SetCatalog(std::shared_ptr<const Catalog> catalog) ABSL_LOCKS_EXCLUDED(catalog_mu_);

  const ServerOptions options_;
  storage::Store* const store_;
  ModelRegistry* const registry_;
  Trainer* const trainer_;
  Clock* const clock_;
  ColdStartTracker cold_start_;
  // When the store should next be purged of deleted data (0 = nothing pending).
  Mutex purge_mu_;
  int64_t purge_due_ms_ ABSL_GUARDED_BY(purge_mu_) = 0;

  // Serialises catalogue writers so the store and the catalogue apply upserts in the same order.
  Mutex catalog_write_mu_;
  mutable Mutex catalog_mu_;
  std::shared_ptr<const Catalog> catalog_ ABSL_GUARDED_BY(catalog_mu_);
};

}  // namespace recd::server

#endif  // RECD_SERVER_ENGINE_H_
