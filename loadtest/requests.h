// Builds the requests of a run: which method, and its users and items drawn by Zipf popularity
// over the ids the server holds ("<prefix><n>", n in [0, count), as loaded by `recload populate`).
#ifndef RECD_LOADTEST_REQUESTS_H_
#define RECD_LOADTEST_REQUESTS_H_

#include <cstdint>
#include <string>

#include "grpc/health/v1/health.pb.h"
#include "loadtest/mix.h"
#include "loadtest/zipf.h"
#include "recd/v1/recommender.pb.h"

namespace recd::loadtest {

struct WorkloadOptions {
  uint64_t num_users = 100000;
  uint64_t num_items = 100000;
  std::string user_prefix = "u";
  std::string item_prefix = "i";
  double user_zipf = 1.0;   // exponent over users (0 = uniform)
  double item_zipf = 1.0;   // exponent over items (SimilarItems anchors, logged items)
  int k = 10;               // Recommend, RecommendBatch and SimilarItems
  int batch_users = 8;      // users per RecommendBatch call (distinct)
  int log_batch = 1;        // interactions per LogInteractions call
  std::string model;        // empty = the server's default model
  Mix mix = Mix::Only(Method::kRecommend);
  uint64_t seed = 1;
};

// The Zipf tables, built once (8 bytes per id each) and shared read-only by every factory.
struct WorkloadTables {
  explicit WorkloadTables(const WorkloadOptions& options);
  ZipfSampler users;
  ZipfSampler items;
};

// One per thread: owns its random stream; the options and tables must outlive it.
class RequestFactory {
 public:
  RequestFactory(const WorkloadOptions* options, const WorkloadTables* tables, uint64_t stream);

  Method PickMethod() { return options_->mix.Pick(rng_); }
  void Fill(recd::v1::RecommendRequest* request);
  void Fill(recd::v1::RecommendBatchRequest* request);
  void Fill(recd::v1::SimilarItemsRequest* request);
  void Fill(recd::v1::LogInteractionsRequest* request);
  void Fill(grpc::health::v1::HealthCheckRequest* request);

  std::string NextUserId();
  std::string NextItemId();

 private:
  const WorkloadOptions* options_;
  const WorkloadTables* tables_;
  Rng rng_;
};

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_REQUESTS_H_
