#include "testing/engine_harness.h"

#include "gtest/gtest.h"

namespace recd::testing {

bool EngineHarness::Open(server::ServerOptions options, server::TrainerOptions trainer_options) {
  engine_.reset();
  trainer_.reset();
  registry_.reset();
  store_.reset();
  storage::StoreOptions store_options;
  store_options.path = dir_.Sub("data");
  store_options.sync_writes = false;  // durability is the store's own tests' business
  store_options.history_cache_depth = options.max_history;  // as RecdServer does
  store_options.history_cache_entries = options.history_cache_entries;
  auto store = storage::Store::Open(store_options);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return false;
  store_ = std::move(*store);
  if (options.models.empty()) {
    options.models = {{"popularity", "popularity", {}}, {"pure_svd", "pure_svd", {{"rank", "16"}}}};
    options.default_model = "pure_svd";
  }
  registry_ = std::make_unique<server::ModelRegistry>(options.models, options.default_model);
  trainer_options.clock = &clock_;
  trainer_options.scorer = options.scorer;  // as RecdServer does
  trainer_ = std::make_unique<server::Trainer>(store_.get(), registry_.get(), std::move(trainer_options));
  engine_ = std::make_unique<server::Engine>(options, store_.get(), registry_.get(), trainer_.get(), &clock_);
  absl::StatusOr<std::vector<std::string>> loaded = engine_->LoadFromStore();
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok();
}

bool EngineHarness::Log(const std::vector<recd::v1::Interaction>& interactions) {
  for (size_t start = 0; start < interactions.size(); start += 5000) {
    recd::v1::LogInteractionsRequest request;
    for (size_t i = start; i < std::min(interactions.size(), start + 5000); ++i) {
      *request.add_interactions() = interactions[i];
    }
    recd::v1::LogInteractionsResponse response;
    absl::Status s = engine_->LogInteractions(request, &response);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) return false;
  }
  return true;
}

bool EngineHarness::Log(const std::string& user, const std::string& item, recd::v1::EventType event) {
  recd::v1::Interaction in;
  in.set_user_id(user);
  in.set_item_id(item);
  in.set_event_type(event);
  in.set_timestamp_ms(clock_.NowMs());
  return Log(std::vector<recd::v1::Interaction>{in});
}

bool EngineHarness::Upsert(const std::vector<recd::v1::Item>& items) {
  recd::v1::UpsertItemsRequest request;
  for (const recd::v1::Item& item : items) *request.add_items() = item;
  recd::v1::UpsertItemsResponse response;
  absl::Status s = engine_->UpsertItems(request, &response);
  EXPECT_TRUE(s.ok()) << s;
  return s.ok();
}

bool EngineHarness::TrainAll() {
  bool ok = true;
  for (const server::TrainResult& r : trainer_->RunNow({})) {
    EXPECT_EQ(r.outcome, server::TrainResult::Outcome::kPublished) << r.model << ": " << r.message;
    ok = ok && r.outcome == server::TrainResult::Outcome::kPublished;
  }
  return ok;
}

uint64_t EngineHarness::LiveVersion(const std::string& model) const {
  auto live = registry_->Live(model);
  return live ? live->meta().version : 0;
}

recd::v1::RecommendResponse EngineHarness::Recommend(const recd::v1::RecommendRequest& request) {
  recd::v1::RecommendResponse response;
  absl::Status s = engine_->Recommend(request, &response);
  EXPECT_TRUE(s.ok()) << s;
  return response;
}

recd::v1::RecommendResponse EngineHarness::Recommend(const std::string& user, int k) {
  recd::v1::RecommendRequest request;
  request.set_user_id(user);
  request.set_k(k);
  return Recommend(request);
}

std::vector<std::string> Ids(const recd::v1::RecommendResponse& response) {
  std::vector<std::string> ids;
  for (const auto& item : response.items()) ids.push_back(item.item_id());
  return ids;
}

}  // namespace recd::testing
