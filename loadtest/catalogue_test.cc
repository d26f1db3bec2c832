#include "loadtest/catalogue.h"

#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace recd::loadtest {
namespace {

CatalogueSpec SmallSpec() {
  CatalogueSpec spec;
  spec.num_users = 200;
  spec.num_items = 500;
  spec.num_interactions = 6000;
  spec.num_categories = 10;
  spec.seed = 3;
  return spec;
}

uint64_t Index(absl::string_view id, absl::string_view prefix) {
  EXPECT_TRUE(absl::ConsumePrefix(&id, prefix)) << id;
  uint64_t n = 0;
  EXPECT_TRUE(absl::SimpleAtoi(id, &n)) << id;
  return n;
}

TEST(CatalogueTest, ItemsCarryTheirCategory) {
  const CatalogueSpec spec = SmallSpec();
  std::vector<recd::v1::Item> items = MakeItems(spec, 490, 100);
  ASSERT_EQ(items.size(), 10u);  // clamped at the catalogue's end
  EXPECT_EQ(items[0].item_id(), "i490");
  EXPECT_EQ(items[0].categories(0), "c0");
  for (const recd::v1::Item& item : items) {
    EXPECT_GE(item.categories_size(), 1);
    EXPECT_LE(item.categories_size(), 2);
    EXPECT_EQ(item.tags_size(), 1);
  }
}

TEST(CatalogueTest, InteractionsAreDeterministicAndInRange) {
  const CatalogueSpec spec = SmallSpec();
  InteractionGenerator a(spec);
  InteractionGenerator b(spec);
  google::protobuf::RepeatedPtrField<recd::v1::Interaction> all_a;
  google::protobuf::RepeatedPtrField<recd::v1::Interaction> all_b;
  while (a.Next(1000, &all_a) > 0) {
  }
  while (b.Next(777, &all_b) > 0) {  // batch size must not change the stream
  }
  ASSERT_EQ(all_a.size(), all_b.size());
  EXPECT_EQ(a.produced(), static_cast<uint64_t>(all_a.size()));
  EXPECT_LE(a.produced(), a.expected_total());
  // Mean 30 per user, uniform in [1, 59]: the total is close to the request.
  EXPECT_NEAR(static_cast<double>(all_a.size()), 6000, 600);
  std::set<uint64_t> users;
  int in_taste = 0;
  for (int i = 0; i < all_a.size(); ++i) {
    EXPECT_EQ(all_a[i].user_id(), all_b[i].user_id());
    EXPECT_EQ(all_a[i].item_id(), all_b[i].item_id());
    const uint64_t u = Index(all_a[i].user_id(), "u");
    const uint64_t item = Index(all_a[i].item_id(), "i");
    EXPECT_LT(u, 200u);
    EXPECT_LT(item, 500u);
    users.insert(u);
    if (item % 10 == u % 10) ++in_taste;
  }
  EXPECT_EQ(users.size(), 200u);  // every user has at least one interaction
  // 80 % go to the user's category, plus a tenth of the global draws.
  EXPECT_GT(in_taste, 0.75 * all_a.size());
  EXPECT_EQ(a.Next(10, &all_a), 0u);
}

TEST(CatalogueTest, PopularItemsDominate) {
  CatalogueSpec spec = SmallSpec();
  spec.num_interactions = 20000;
  InteractionGenerator g(spec);
  google::protobuf::RepeatedPtrField<recd::v1::Interaction> all;
  while (g.Next(5000, &all) > 0) {
  }
  std::map<std::string, int> counts;
  for (const recd::v1::Interaction& in : all) ++counts[in.item_id()];
  int top = 0;
  for (const auto& [id, n] : counts) top = std::max(top, n);
  EXPECT_GT(top, 10 * static_cast<int>(all.size()) / 500);  // far above the uniform share
}

}  // namespace
}  // namespace recd::loadtest
