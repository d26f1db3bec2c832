// Loads the synthetic catalogue (catalogue.h) into a recd server and trains its models: items
// by UpsertItems, interactions by LogInteractions in large batches with several calls in
// flight, then TrainNow(wait) with a long deadline.
#ifndef RECD_LOADTEST_POPULATE_H_
#define RECD_LOADTEST_POPULATE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loadtest/catalogue.h"
#include "recd/v1/recommender.pb.h"

namespace recd::loadtest {

struct PopulateOptions {
  std::string target;            // loopback only
  CatalogueSpec catalogue;
  int batch = 10000;             // interactions / items per call (server limit 10,000)
  int in_flight = 8;             // concurrent LogInteractions calls
  bool train = true;             // TrainNow(all models, wait) after loading
  absl::Duration train_timeout = absl::Minutes(30);
  // Load even when the server already holds at least the catalogue's users, items and 90 % of
  // its interactions (otherwise loading is skipped, and training too if a model is live).
  bool force = false;
};

struct PopulateResult {
  bool skipped_load = false;
  uint64_t items = 0;
  uint64_t interactions = 0;
  double load_seconds = 0;
  double train_seconds = 0;
  recd::v1::TrainNowResponse train;
  recd::v1::GetModelInfoResponse info;  // after training
};

// `progress` receives human-readable progress lines (may be empty).
absl::StatusOr<PopulateResult> Populate(const PopulateOptions& options,
                                        const std::function<void(const std::string&)>& progress);

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_POPULATE_H_
