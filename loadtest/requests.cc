#include "loadtest/requests.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace recd::loadtest {

WorkloadTables::WorkloadTables(const WorkloadOptions& options)
    : users(std::max<uint64_t>(1, options.num_users), options.user_zipf, true, StreamSeed(options.seed, 101)),
      items(std::max<uint64_t>(1, options.num_items), options.item_zipf, true, StreamSeed(options.seed, 102)) {}

RequestFactory::RequestFactory(const WorkloadOptions* options, const WorkloadTables* tables, uint64_t stream)
    : options_(options), tables_(tables), rng_(StreamSeed(options->seed, 1000 + stream)) {}

std::string RequestFactory::NextUserId() {
  return absl::StrCat(options_->user_prefix, tables_->users.Sample(rng_));
}

std::string RequestFactory::NextItemId() {
  return absl::StrCat(options_->item_prefix, tables_->items.Sample(rng_));
}

void RequestFactory::Fill(recd::v1::RecommendRequest* request) {
  request->set_user_id(NextUserId());
  request->set_k(options_->k);
  if (!options_->model.empty()) request->set_model(options_->model);
}

void RequestFactory::Fill(recd::v1::RecommendBatchRequest* request) {
  // The server requires distinct users: redraw duplicates (hot users repeat often under Zipf),
  // and fall back to uniform draws if the popular head keeps repeating.
  const uint64_t wanted = std::min<uint64_t>(std::max(1, options_->batch_users), tables_->users.n());
  std::vector<uint64_t> chosen;
  chosen.reserve(wanted);
  for (int attempt = 0; chosen.size() < wanted; ++attempt) {
    const uint64_t u = attempt < 64 * static_cast<int>(wanted) ? tables_->users.Sample(rng_)
                                                               : rng_.UniformInt(tables_->users.n());
    if (std::find(chosen.begin(), chosen.end(), u) == chosen.end()) chosen.push_back(u);
  }
  for (uint64_t u : chosen) {
    recd::v1::RecommendRequest* r = request->add_requests();
    r->set_user_id(absl::StrCat(options_->user_prefix, u));
    r->set_k(options_->k);
    if (!options_->model.empty()) r->set_model(options_->model);
  }
}

void RequestFactory::Fill(recd::v1::SimilarItemsRequest* request) {
  request->set_item_id(NextItemId());
  request->set_k(options_->k);
  if (!options_->model.empty()) request->set_model(options_->model);
}

void RequestFactory::Fill(recd::v1::LogInteractionsRequest* request) {
  const int n = std::max(1, options_->log_batch);
  for (int i = 0; i < n; ++i) {
    recd::v1::Interaction* in = request->add_interactions();
    in->set_user_id(NextUserId());
    in->set_item_id(NextItemId());
    in->set_event_type(rng_.Uniform() < 0.8 ? recd::v1::EVENT_VIEW : recd::v1::EVENT_CLICK);
  }
}

void RequestFactory::Fill(grpc::health::v1::HealthCheckRequest* request) {
  request->set_service("");  // the server's overall status
}

}  // namespace recd::loadtest
