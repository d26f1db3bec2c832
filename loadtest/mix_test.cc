#include "loadtest/mix.h"

#include <array>

#include "gtest/gtest.h"

namespace recd::loadtest {
namespace {

TEST(MixTest, ParsesWeights) {
  absl::StatusOr<Mix> mix = Mix::Parse("recommend:70, batch:5,similar:15 ,log:10");
  ASSERT_TRUE(mix.ok()) << mix.status();
  EXPECT_DOUBLE_EQ(mix->Share(Method::kRecommend), 0.70);
  EXPECT_DOUBLE_EQ(mix->Share(Method::kRecommendBatch), 0.05);
  EXPECT_DOUBLE_EQ(mix->Share(Method::kSimilarItems), 0.15);
  EXPECT_DOUBLE_EQ(mix->Share(Method::kLogInteractions), 0.10);
  EXPECT_FALSE(mix->Has(Method::kHealth));
  EXPECT_EQ(mix->ToString(), "recommend:0.7,batch:0.05,similar:0.15,log:0.1");
}

TEST(MixTest, BareNamesAndRpcNames) {
  absl::StatusOr<Mix> mix = Mix::Parse("Recommend,health");
  ASSERT_TRUE(mix.ok());
  EXPECT_DOUBLE_EQ(mix->Share(Method::kRecommend), 0.5);
  EXPECT_DOUBLE_EQ(mix->Share(Method::kHealth), 0.5);
  EXPECT_DOUBLE_EQ(Mix::Only(Method::kLogInteractions).Share(Method::kLogInteractions), 1.0);
}

TEST(MixTest, RejectsBadSpecs) {
  EXPECT_FALSE(Mix::Parse("").ok());
  EXPECT_FALSE(Mix::Parse("recommend:0").ok());
  EXPECT_FALSE(Mix::Parse("recomend:1").ok());
  EXPECT_FALSE(Mix::Parse("recommend:-1").ok());
  EXPECT_FALSE(Mix::Parse("recommend:x").ok());
  EXPECT_FALSE(Mix::Parse("recommend:1,recommend:2").ok());
  EXPECT_FALSE(Mix::Parse("recommend:nan").ok());
}

TEST(MixTest, PickFollowsShares) {
  const Mix mix = *Mix::Parse("recommend:60,similar:30,log:10");
  Rng rng(9);
  std::array<int, kNumMethods> counts{};
  const int n = 100000;
  for (int i = 0; i < n; ++i) ++counts[static_cast<int>(mix.Pick(rng))];
  EXPECT_NEAR(counts[0], 60000, 800);
  EXPECT_NEAR(counts[2], 30000, 800);
  EXPECT_NEAR(counts[3], 10000, 500);
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[4], 0);
}

TEST(MixTest, MethodNames) {
  EXPECT_STREQ(MethodName(Method::kRecommendBatch), "batch");
  EXPECT_STREQ(MethodRpcName(Method::kHealth), "grpc.health.v1.Health/Check");
  EXPECT_EQ(*ParseMethod("similar"), Method::kSimilarItems);
  EXPECT_EQ(*ParseMethod("LogInteractions"), Method::kLogInteractions);
  EXPECT_FALSE(ParseMethod("nope").ok());
}

}  // namespace
}  // namespace recd::loadtest
