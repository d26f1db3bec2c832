// gRPC adapter of the Engine: each handler checks cancellation, calls the engine and converts the
// status at the edge (server/status_util.h). Nothing else happens here.
#ifndef RECD_SERVER_SERVICE_H_
#define RECD_SERVER_SERVICE_H_

#include "recd/v1/recommender.grpc.pb.h"
#include "server/engine.h"

namespace recd::server {

class RecommenderService final : public recd::v1::Recommender::Service {
 public:
  explicit RecommenderService(Engine* engine) : engine_(engine) {}

  grpc::Status Recommend(grpc::ServerContext* context, const recd::v1::RecommendRequest* request,
                         recd::v1::RecommendResponse* response) override;
  grpc::Status RecommendBatch(grpc::ServerContext* context,
                              const recd::v1::RecommendBatchRequest* request,
                              recd::v1::RecommendBatchResponse* response) override;
  grpc::Status SimilarItems(grpc::ServerContext* context,
                            const recd::v1::SimilarItemsRequest* request,
                            recd::v1::SimilarItemsResponse* response) override;
  grpc::Status LogInteractions(grpc::ServerContext* context,
                               const recd::v1::LogInteractionsRequest* request,
                               recd::v1::LogInteractionsResponse* response) override;
  grpc::Status UpsertItems(grpc::ServerContext* context, const recd::v1::UpsertItemsRequest* request,
                           recd::v1::UpsertItemsResponse* response) override;
  grpc::Status DeleteItem(grpc::ServerContext* context, const recd::v1::DeleteItemRequest* request,
                          recd::v1::DeleteItemResponse* response) override;
  grpc::Status DeleteUser(grpc::ServerContext* context, const recd::v1::DeleteUserRequest* request,
                          recd::v1::DeleteUserResponse* response) override;
  grpc::Status GetModelInfo(grpc::ServerContext* context,
                            const recd::v1::GetModelInfoRequest* request,
                            recd::v1::GetModelInfoResponse* response) override;
  grpc::Status TrainNow(grpc::ServerContext* context, const recd::v1::TrainNowRequest* request,
                        recd::v1::TrainNowResponse* response) override;
  grpc::Status RollbackModel(grpc::ServerContext* context,
                             const recd::v1::RollbackModelRequest* request,
                             recd::v1::RollbackModelResponse* response) override;
  grpc::Status CreateCheckpoint(grpc::ServerContext* context,
                                const recd::v1::CreateCheckpointRequest* request,
                                recd::v1::CreateCheckpointResponse* response) override;

 private:
  Engine* const engine_;
};

}  // namespace recd::server

#endif  // RECD_SERVER_SERVICE_H_
