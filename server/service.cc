#include "server/service.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/logging.h"
#include "server/status_util.h"

namespace recd::server {
namespace {

// The client's x-request-id when it sent one (cut to 64 bytes), else a process-unique id.
std::string RequestId(const grpc::ServerContextBase& context, uint64_t call_number) {
  auto it = context.client_metadata().find("x-request-id");
  if (it != context.client_metadata().end()) {
    std::string id(it->second.data(), std::min<size_t>(it->second.size(), 64));
    for (char& c : id) {
      if (c < 0x21 || c > 0x7e) c = '_';
    }
    return id;
  }
  return absl::StrFormat("%08x-%x", static_cast<uint32_t>(getpid()), call_number);
}

absl::string_view AuthorizationHeader(const grpc::ServerContextBase& context) {
  auto it = context.client_metadata().find("authorization");
  if (it == context.client_metadata().end()) return "";
  return absl::string_view(it->second.data(), it->second.size());
}

bool IsServerFault(grpc::StatusCode code) {
  return code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::DATA_LOSS ||
         code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::UNAVAILABLE;
}

class DecodeErrorInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit DecodeErrorInterceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      // The synchronous handlers answer an undecodable request with INTERNAL, the callback ones
      // (the reads) with UNIMPLEMENTED; both without a message, which recd never sends.
      if ((status.error_code() == grpc::StatusCode::INTERNAL ||
           status.error_code() == grpc::StatusCode::UNIMPLEMENTED) &&
          status.error_message().empty()) {
        // "/recd.v1.Recommender/LogInteractions" -> "recd.v1.LogInteractionsRequest".
        const size_t slash = method_.rfind('/');
        const std::string request_type =
            absl::StrCat("recd.v1.", slash == std::string::npos ? method_ : method_.substr(slash + 1), "Request");
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("request: not decodable as ", request_type,
                         ": a string field (an id such as user_id or item_id, a model name, a category, tag or "
                         "title) is not valid UTF-8, or the bytes are not that message")));
      }
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
};

}  // namespace

grpc::experimental::Interceptor* DecodeErrorInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const std::string method = info->method();
  // Only our service: health and reflection keep gRPC's own behaviour.
  if (method.rfind("/recd.v1.", 0) != 0) return nullptr;
  return new DecodeErrorInterceptor(method);
}

grpc::Status RecommenderService::Handle(Method method, grpc::ServerContextBase* context,
                                        const std::function<absl::Status()>& body) {
  std::optional<Metrics::Call> call;
  if (metrics_ != nullptr) call.emplace(metrics_, method);
  const uint64_t n = calls_.fetch_add(1);
  grpc::Status status;
  if (context->IsCancelled()) {
    status = grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled by the client");
  } else if (absl::Status allowed = auth_->Check(method, AuthorizationHeader(*context)); !allowed.ok()) {
    status = ToGrpcStatus(allowed);
  } else {
    status = ToGrpcStatus(body());
  }
  if (call.has_value()) call->Finish(status.error_code());
  // Sampling by call number: deterministic, no RNG on the request path.
  const bool sampled = request_log_sample_rate_ > 0 &&
                       std::floor((n + 1) * request_log_sample_rate_) > std::floor(n * request_log_sample_rate_);
  if (sampled || IsServerFault(status.error_code())) {
    LogLine(IsServerFault(status.error_code()) ? LogLevel::kError : LogLevel::kInfo, "request",
            absl::StrFormat("method=%s code=%s duration_ms=%.3f%s%s", MethodName(method),
                            CodeName(status.error_code()), call.has_value() ? call->ElapsedSeconds() * 1e3 : 0.0,
                            status.ok() ? "" : " message=", status.error_message()),
            RequestId(*context, n));
  }
  return status;
}

grpc::ServerUnaryReactor* RecommenderService::HandleUnary(Method method, grpc::CallbackServerContext* context,
                                                         const std::function<absl::Status()>& body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(Handle(method, context, body));
  return reactor;
}

grpc::ServerUnaryReactor* RecommenderService::Recommend(grpc::CallbackServerContext* context,
                                                        const recd::v1::RecommendRequest* request,
                                                        recd::v1::RecommendResponse* response) {
  return HandleUnary(Method::kRecommend, context, [&] { return engine_->Recommend(*request, response); });
}

grpc::ServerUnaryReactor* RecommenderService::RecommendBatch(grpc::CallbackServerContext* context,
                                                             const recd::v1::RecommendBatchRequest* request,
                                                             recd::v1::RecommendBatchResponse* response) {
  return HandleUnary(Method::kRecommendBatch, context,
                     [&] { return engine_->RecommendBatch(*request, response); });
}

grpc::ServerUnaryReactor* RecommenderService::SimilarItems(grpc::CallbackServerContext* context,
                                                           const recd::v1::SimilarItemsRequest* request,
                                                           recd::v1::SimilarItemsResponse* response) {
  return HandleUnary(Method::kSimilarItems, context,
                     [&] { return engine_->SimilarItems(*request, response); });
}

grpc::Status RecommenderService::LogInteractions(grpc::ServerContext* context,
                                                 const recd::v1::LogInteractionsRequest* request,
                                                 recd::v1::LogInteractionsResponse* response) {
  return Handle(Method::kLogInteractions, context, [&] {
    absl::Status s = engine_->LogInteractions(*request, response);
    if (metrics_ != nullptr) {
      if (s.ok()) {
        metrics_->CountIngested(response->accepted());
      } else {
        metrics_->CountRejected(request->interactions_size(), static_cast<grpc::StatusCode>(s.code()));
      }
    }
    return s;
  });
}

grpc::Status RecommenderService::UpsertItems(grpc::ServerContext* context, const recd::v1::UpsertItemsRequest* request,
                                             recd::v1::UpsertItemsResponse* response) {
  return Handle(Method::kUpsertItems, context, [&] { return engine_->UpsertItems(*request, response); });
}

grpc::Status RecommenderService::DeleteItem(grpc::ServerContext* context, const recd::v1::DeleteItemRequest* request,
                                            recd::v1::DeleteItemResponse*) {
  return Handle(Method::kDeleteItem, context, [&] { return engine_->DeleteItem(*request); });
}

grpc::Status RecommenderService::DeleteUser(grpc::ServerContext* context, const recd::v1::DeleteUserRequest* request,
                                            recd::v1::DeleteUserResponse* response) {
  return Handle(Method::kDeleteUser, context, [&] { return engine_->DeleteUser(*request, response); });
}

grpc::Status RecommenderService::GetModelInfo(grpc::ServerContext* context,
                                              const recd::v1::GetModelInfoRequest* request,
                                              recd::v1::GetModelInfoResponse* response) {
  return Handle(Method::kGetModelInfo, context, [&] { return engine_->GetModelInfo(*request, response); });
}

grpc::Status RecommenderService::TrainNow(grpc::ServerContext* context, const recd::v1::TrainNowRequest* request,
                                          recd::v1::TrainNowResponse* response) {
  return Handle(Method::kTrainNow, context,
                [&] { return engine_->TrainNow(*request, context->deadline(), response); });
}

grpc::Status RecommenderService::RollbackModel(grpc::ServerContext* context,
                                               const recd::v1::RollbackModelRequest* request,
                                               recd::v1::RollbackModelResponse* response) {
  return Handle(Method::kRollbackModel, context, [&] { return engine_->RollbackModel(*request, response); });
}

grpc::Status RecommenderService::CreateCheckpoint(grpc::ServerContext* context,
                                                  const recd::v1::CreateCheckpointRequest* request,
                                                  recd::v1::CreateCheckpointResponse* response) {
  return Handle(Method::kCreateCheckpoint, context, [&] { return engine_->CreateCheckpoint(*request, response); });
}

}  // namespace recd::server
