// An in-process recd without gRPC: store (in a temp folder), registry, trainer and engine on a
// fake clock, for unit tests of serving and training behaviour.
#ifndef RECD_TESTING_ENGINE_HARNESS_H_
#define RECD_TESTING_ENGINE_HARNESS_H_

#include <memory>
#include <string>
#include <vector>

#include "recd/v1/recommender.pb.h"
#include "server/clock.h"
#include "server/engine.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/trainer.h"
#include "storage/store.h"
#include "testing/temp_dir.h"

namespace recd::testing {

class EngineHarness {
 public:
  static constexpr int64_t kStartMs = 1'800'000'000'000;

  // Models "popularity" and "pure_svd" (rank 16) unless `options.models` is set.
  EngineHarness() = default;

  // (Re)opens everything on the same folder with these options; trainer_options.clock is set to
  // the harness clock. Returns false (with a gtest failure) on error.
  bool Open(server::ServerOptions options = {}, server::TrainerOptions trainer_options = {});

  // Logs interactions through the engine (validated like a client call).
  bool Log(const std::vector<recd::v1::Interaction>& interactions);
  // Logs one interaction: user, item, event (default click), at the clock's time.
  bool Log(const std::string& user, const std::string& item,
           recd::v1::EventType event = recd::v1::EVENT_CLICK);
  bool Upsert(const std::vector<recd::v1::Item>& items);
  // Trains every model now; false unless all were published.
  bool TrainAll();
  uint64_t LiveVersion(const std::string& model) const;
  recd::v1::RecommendResponse Recommend(const recd::v1::RecommendRequest& request);
  recd::v1::RecommendResponse Recommend(const std::string& user, int k);

  server::FakeClock& clock() { return clock_; }
  server::Engine& engine() { return *engine_; }
  server::Trainer& trainer() { return *trainer_; }
  server::ModelRegistry& registry() { return *registry_; }
  storage::Store& store() { return *store_; }

 private:
  TempDir dir_;
  server::FakeClock clock_{kStartMs};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<server::ModelRegistry> registry_;
  std::unique_ptr<server::Trainer> trainer_;
  std::unique_ptr<server::Engine> engine_;
};

// Item ids of a response, in order.
std::vector<std::string> Ids(const recd::v1::RecommendResponse& response);

}  // namespace recd::testing

#endif  // RECD_TESTING_ENGINE_HARNESS_H_
