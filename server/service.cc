#include "server/service.h"

#include "server/status_util.h"

namespace recd::server {
namespace {

// A call whose client already gave up is not worth starting.
#define RECD_RETURN_IF_CANCELLED(context)                                            \
  do {                                                                               \
    if ((context)->IsCancelled()) {                                                  \
      return grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled by the client"); \
    }                                                                                \
  } while (false)

}  // namespace

grpc::Status RecommenderService::Recommend(grpc::ServerContext* context,
                                           const recd::v1::RecommendRequest* request,
                                           recd::v1::RecommendResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->Recommend(*request, response));
}

grpc::Status RecommenderService::RecommendBatch(grpc::ServerContext* context,
                                                const recd::v1::RecommendBatchRequest* request,
                                                recd::v1::RecommendBatchResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->RecommendBatch(*request, response));
}

grpc::Status RecommenderService::SimilarItems(grpc::ServerContext* context,
                                              const recd::v1::SimilarItemsRequest* request,
                                              recd::v1::SimilarItemsResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->SimilarItems(*request, response));
}

grpc::Status RecommenderService::LogInteractions(grpc::ServerContext* context,
                                                 const recd::v1::LogInteractionsRequest* request,
                                                 recd::v1::LogInteractionsResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->LogInteractions(*request, response));
}

grpc::Status RecommenderService::UpsertItems(grpc::ServerContext* context,
                                             const recd::v1::UpsertItemsRequest* request,
                                             recd::v1::UpsertItemsResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->UpsertItems(*request, response));
}

grpc::Status RecommenderService::DeleteItem(grpc::ServerContext* context,
                                            const recd::v1::DeleteItemRequest* request,
                                            recd::v1::DeleteItemResponse*) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->DeleteItem(*request));
}

grpc::Status RecommenderService::DeleteUser(grpc::ServerContext* context,
                                            const recd::v1::DeleteUserRequest* request,
                                            recd::v1::DeleteUserResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->DeleteUser(*request, response));
}

grpc::Status RecommenderService::GetModelInfo(grpc::ServerContext* context,
                                              const recd::v1::GetModelInfoRequest* request,
                                              recd::v1::GetModelInfoResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->GetModelInfo(*request, response));
}

grpc::Status RecommenderService::TrainNow(grpc::ServerContext* context,
                                          const recd::v1::TrainNowRequest* request,
                                          recd::v1::TrainNowResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->TrainNow(*request, context->deadline(), response));
}

grpc::Status RecommenderService::RollbackModel(grpc::ServerContext* context,
                                               const recd::v1::RollbackModelRequest* request,
                                               recd::v1::RollbackModelResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->RollbackModel(*request, response));
}

grpc::Status RecommenderService::CreateCheckpoint(grpc::ServerContext* context,
                                                  const recd::v1::CreateCheckpointRequest* request,
                                                  recd::v1::CreateCheckpointResponse* response) {
  RECD_RETURN_IF_CANCELLED(context);
  return ToGrpcStatus(engine_->CreateCheckpoint(*request, response));
}

}  // namespace recd::server
