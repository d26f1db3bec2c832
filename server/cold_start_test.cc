#include "server/cold_start.h"

#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/model_registry.h"

namespace recd::server {
namespace {

using ::testing::ElementsAre;

// A pure_svd version with `items` rows of dimension 2; the rows in `zero` are all zeros (items
// without interactions when it was trained).
std::shared_ptr<const ServingModel> Version(uint64_t version, int items, const std::vector<int>& zero) {
  auto data = std::make_shared<ModelData>();
  data->meta.name = std::string("m");  // (from a std::string: GCC 12 warns wrongly on = "literal")
  data->meta.algorithm = std::string("pure_svd");
  data->meta.version = version;
  data->meta.num_users = 3;
  data->meta.num_items = static_cast<uint32_t>(items);
  data->user_factors = EmbeddingMatrix::Ones(3, 2);
  data->item_factors = EmbeddingMatrix::Ones(items, 2);
  for (int item : zero) data->item_factors.row(item).setZero();
  absl::StatusOr<std::shared_ptr<const ServingModel>> serving = ServingModel::Create(data, ScorerConfig());
  EXPECT_TRUE(serving.ok()) << serving.status();
  return *serving;
}

TEST(ColdStartTest, RanksColdItemsByRecentCountThenNewestFirst) {
  ColdStartTracker tracker(ColdStartTracker::Options{});
  const int64_t now = 1'000'000;
  // Items 3 and 7 have zero rows; 10 and 11 are newer than the version (12 items in the store).
  for (int i = 0; i < 2; ++i) tracker.Record(3, now);
  tracker.Record(11, now);
  for (int i = 0; i < 5; ++i) tracker.Record(5, now);  // warm: never a candidate
  tracker.Refresh(*Version(1, 10, {3, 7}), 12, now);
  EXPECT_THAT(*tracker.Candidates("m"), ElementsAre(3, 11, 10, 7));
  EXPECT_EQ(tracker.Candidates("other"), nullptr);
}

TEST(ColdStartTest, ANewVersionRecomputesWhichItemsAreCold) {
  ColdStartTracker tracker(ColdStartTracker::Options{});
  const int64_t now = 1'000'000;
  tracker.Record(5, now);
  tracker.Record(3, now);
  tracker.Refresh(*Version(1, 10, {3}), 10, now);
  EXPECT_THAT(*tracker.Candidates("m"), ElementsAre(3));
  // Version 2 learnt item 3 but not 5: the same counts now rank 5.
  tracker.Refresh(*Version(2, 10, {5}), 10, now + 1000);
  EXPECT_THAT(*tracker.Candidates("m"), ElementsAre(5));
}

TEST(ColdStartTest, CountsDecayAndDecayedOnesAreForgotten) {
  ColdStartTracker::Options options;
  options.half_life_seconds = 10;
  ColdStartTracker tracker(options);
  const int64_t now = 1'000'000;
  tracker.Record(3, now);
  tracker.Record(4, now);  // warm in the version below
  for (int i = 0; i < 4; ++i) tracker.Record(7, now + 20'000);
  EXPECT_NEAR(tracker.RecentCount(3, now + 10'000), 0.5, 1e-9);
  // Two half-lives on, 3 (count 0.25) still ranks after 7 (count 4) but before untouched items.
  tracker.Refresh(*Version(1, 10, {3, 7, 9}), 10, now + 20'000);
  EXPECT_THAT(*tracker.Candidates("m"), ElementsAre(7, 3, 9));
  // 200 half-lives on both counts decayed to nothing: forgotten (the warm item's too, by the
  // once-a-minute pass), and the cold items rank newest first.
  tracker.Refresh(*Version(1, 10, {3, 7, 9}), 10, now + 2'000'000);
  EXPECT_THAT(*tracker.Candidates("m"), ElementsAre(9, 7, 3));
  EXPECT_EQ(tracker.RecentCount(3, now + 2'000'000), 0.0);
  EXPECT_EQ(tracker.RecentCount(4, now + 2'000'000), 0.0);
  EXPECT_EQ(tracker.RecentCount(7, now + 2'000'000), 0.0);
}

}  // namespace
}  // namespace recd::server
