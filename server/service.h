// gRPC adapter of the Engine: each handler checks cancellation, calls the engine and converts the
// status at the edge (server/status_util.h). Nothing else happens here.
#ifndef RECD_SERVER_SERVICE_H_
#define RECD_SERVER_SERVICE_H_

#include <atomic>
#include <functional>

#include "grpcpp/support/server_interceptor.h"
#include "recd/v1/recommender.grpc.pb.h"
#include "server/auth.h"
#include "server/engine.h"
#include "server/metrics.h"

namespace recd::server {

// Turns gRPC's answer to an undecodable request (INTERNAL, or UNIMPLEMENTED for the callback
// methods, with an empty message: the protobuf
// parser refused the bytes before any handler ran, typically because a string field such as an
// id is not valid UTF-8, which proto3 forbids) into INVALID_ARGUMENT naming the request type and
// the likely cause. recd's own handlers never answer INTERNAL without a message.
class DecodeErrorInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;
};

// The reads (Recommend, RecommendBatch, SimilarItems) use gRPC's callback API: they run on the
// thread that received the call, with no hand-off to a synchronous-server thread (a futex wake
// and a context switch per call, about half of a small Recommend's CPU). They never block.
// The other methods may wait (fsync, training, compaction) and stay synchronous.
using RecommenderServiceBase = recd::v1::Recommender::WithCallbackMethod_Recommend<
    recd::v1::Recommender::WithCallbackMethod_RecommendBatch<
        recd::v1::Recommender::WithCallbackMethod_SimilarItems<recd::v1::Recommender::Service>>>;

class RecommenderService final : public RecommenderServiceBase {
 public:
  // `metrics` may be null. A share `request_log_sample_rate` (0..1) of calls is logged, one line
  // each; server-side failures (internal, data loss, unavailable, unknown) are always logged.
  // `auth` decides which calls need which token scope (no tokens: everything is allowed).
  RecommenderService(Engine* engine, Metrics* metrics, const Authorizer* auth, double request_log_sample_rate)
      : engine_(engine), metrics_(metrics), auth_(auth), request_log_sample_rate_(request_log_sample_rate) {}

  grpc::ServerUnaryReactor* Recommend(grpc::CallbackServerContext* context,
                                      const recd::v1::RecommendRequest* request,
                                      recd::v1::RecommendResponse* response) override;
  grpc::ServerUnaryReactor* RecommendBatch(grpc::CallbackServerContext* context,
                                           const recd::v1::RecommendBatchRequest* request,
                                           recd::v1::RecommendBatchResponse* response) override;
  grpc::ServerUnaryReactor* SimilarItems(grpc::CallbackServerContext* context,
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
  // Runs one handler body: cancellation check, metrics, status conversion, request logging.
  grpc::Status Handle(Method method, grpc::ServerContextBase* context,
                      const std::function<absl::Status()>& body);
  // Handle() for a callback method: finishes the call with its status.
  grpc::ServerUnaryReactor* HandleUnary(Method method, grpc::CallbackServerContext* context,
                                        const std::function<absl::Status()>& body);

  Engine* const engine_;
  Metrics* const metrics_;
  const Authorizer* const auth_;
  const double request_log_sample_rate_;
  std::atomic<uint64_t> calls_{0};
};

}  // namespace recd::server

#endif  // RECD_SERVER_SERVICE_H_
