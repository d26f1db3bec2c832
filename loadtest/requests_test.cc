#include "loadtest/requests.h"

#include <set>

#include "gtest/gtest.h"

namespace recd::loadtest {
namespace {

WorkloadOptions Options() {
  WorkloadOptions o;
  o.num_users = 50;
  o.num_items = 80;
  o.user_zipf = 1.5;  // a very hot head: duplicates are frequent
  o.k = 7;
  o.batch_users = 40;
  o.log_batch = 100;
  o.model = "pure_svd";
  return o;
}

TEST(RequestFactoryTest, BatchUsersAreDistinct) {
  const WorkloadOptions options = Options();
  const WorkloadTables tables(options);
  RequestFactory f(&options, &tables, 0);
  for (int i = 0; i < 20; ++i) {
    recd::v1::RecommendBatchRequest request;
    f.Fill(&request);
    ASSERT_EQ(request.requests_size(), 40);
    std::set<std::string> users;
    for (const auto& r : request.requests()) {
      users.insert(r.user_id());
      EXPECT_EQ(r.k(), 7);
      EXPECT_EQ(r.model(), "pure_svd");
    }
    EXPECT_EQ(users.size(), 40u);
  }
  // More users asked than exist: capped at the population.
  WorkloadOptions small = options;
  small.batch_users = 500;
  RequestFactory g(&small, &tables, 1);
  recd::v1::RecommendBatchRequest request;
  g.Fill(&request);
  EXPECT_EQ(request.requests_size(), 50);
}

TEST(RequestFactoryTest, FillsEveryRequestKind) {
  const WorkloadOptions options = Options();
  const WorkloadTables tables(options);
  RequestFactory f(&options, &tables, 3);
  recd::v1::RecommendRequest rec;
  f.Fill(&rec);
  EXPECT_EQ(rec.user_id().substr(0, 1), "u");
  EXPECT_EQ(rec.k(), 7);
  recd::v1::SimilarItemsRequest sim;
  f.Fill(&sim);
  EXPECT_EQ(sim.item_id().substr(0, 1), "i");
  recd::v1::LogInteractionsRequest log;
  f.Fill(&log);
  EXPECT_EQ(log.interactions_size(), 100);
  grpc::health::v1::HealthCheckRequest health;
  f.Fill(&health);
  EXPECT_EQ(health.service(), "");
}

TEST(RequestFactoryTest, StreamsAreSeeded) {
  const WorkloadOptions options = Options();
  const WorkloadTables tables(options);
  RequestFactory a(&options, &tables, 5);
  RequestFactory b(&options, &tables, 5);
  RequestFactory c(&options, &tables, 6);
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    const std::string x = a.NextUserId();
    EXPECT_EQ(x, b.NextUserId());
    differs |= x != c.NextUserId();
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace recd::loadtest
