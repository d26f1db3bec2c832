#include "testing/workload.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace recd::testing {
namespace {

void SetDeadline(grpc::ClientContext* context, int seconds) {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

}  // namespace

grpc::Status LogInteractions(recd::v1::Recommender::Stub& stub,
                             const std::vector<recd::v1::Interaction>& interactions, size_t batch) {
  for (size_t start = 0; start < interactions.size(); start += batch) {
    recd::v1::LogInteractionsRequest request;
    for (size_t i = start; i < std::min(interactions.size(), start + batch); ++i) {
      *request.add_interactions() = interactions[i];
    }
    grpc::ClientContext context;
    SetDeadline(&context, 60);
    recd::v1::LogInteractionsResponse response;
    grpc::Status s = stub.LogInteractions(&context, request, &response);
    if (!s.ok()) return s;
    if (static_cast<int>(response.accepted()) != request.interactions_size()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "accepted count differs from batch size");
    }
  }
  return grpc::Status::OK;
}

grpc::Status UpsertItems(recd::v1::Recommender::Stub& stub, const std::vector<recd::v1::Item>& items) {
  recd::v1::UpsertItemsRequest request;
  for (const recd::v1::Item& item : items) *request.add_items() = item;
  grpc::ClientContext context;
  SetDeadline(&context, 60);
  recd::v1::UpsertItemsResponse response;
  return stub.UpsertItems(&context, request, &response);
}

grpc::Status TrainAll(recd::v1::Recommender::Stub& stub, recd::v1::TrainNowResponse* response) {
  recd::v1::TrainNowRequest request;
  request.set_wait(true);
  grpc::ClientContext context;
  SetDeadline(&context, 300);
  recd::v1::TrainNowResponse local;
  if (response == nullptr) response = &local;
  grpc::Status s = stub.TrainNow(&context, request, response);
  if (!s.ok()) return s;
  for (const recd::v1::TrainResult& r : response->results()) {
    if (r.outcome() != recd::v1::TRAIN_PUBLISHED) {
      return grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat("training ", r.model(), ": ", r.message()));
    }
  }
  return grpc::Status::OK;
}

grpc::Status Recommend(recd::v1::Recommender::Stub& stub, const recd::v1::RecommendRequest& request,
                       recd::v1::RecommendResponse* response) {
  grpc::ClientContext context;
  SetDeadline(&context, 30);
  return stub.Recommend(&context, request, response);
}

grpc::Status GetModelInfo(recd::v1::Recommender::Stub& stub, recd::v1::GetModelInfoResponse* response) {
  grpc::ClientContext context;
  SetDeadline(&context, 30);
  return stub.GetModelInfo(&context, recd::v1::GetModelInfoRequest(), response);
}

std::vector<std::string> ItemIds(const recd::v1::RecommendResponse& response) {
  std::vector<std::string> ids;
  for (const auto& item : response.items()) ids.push_back(item.item_id());
  return ids;
}

}  // namespace recd::testing
