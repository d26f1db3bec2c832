// Small planted data sets and client helpers shared by integration tests.
#ifndef RECD_TESTING_WORKLOAD_H_
#define RECD_TESTING_WORKLOAD_H_

#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "recd/v1/recommender.grpc.pb.h"
#include "testing/planted_data.h"

namespace recd::testing {

// Calls with a deadline of `seconds`.
grpc::Status LogInteractions(recd::v1::Recommender::Stub& stub,
                             const std::vector<recd::v1::Interaction>& interactions, size_t batch = 500);
grpc::Status UpsertItems(recd::v1::Recommender::Stub& stub, const std::vector<recd::v1::Item>& items);
// TrainNow(all models, wait) ; fails unless every model was published.
grpc::Status TrainAll(recd::v1::Recommender::Stub& stub, recd::v1::TrainNowResponse* response = nullptr);
grpc::Status Recommend(recd::v1::Recommender::Stub& stub, const recd::v1::RecommendRequest& request,
                       recd::v1::RecommendResponse* response);
grpc::Status GetModelInfo(recd::v1::Recommender::Stub& stub, recd::v1::GetModelInfoResponse* response);

// Item ids of a response, in order.
std::vector<std::string> ItemIds(const recd::v1::RecommendResponse& response);

}  // namespace recd::testing

#endif  // RECD_TESTING_WORKLOAD_H_
