#include "server/options.h"

#include "gtest/gtest.h"

namespace recd::server {
namespace {

TEST(ParseModelConfigsTest, AddsPopularityAndParams) {
  auto configs = ParseModelConfigs("pure_svd, svd128:pure_svd", "svd128.rank=128,pure_svd.rank=16");
  ASSERT_TRUE(configs.ok()) << configs.status();
  ASSERT_EQ(configs->size(), 3u);
  EXPECT_EQ((*configs)[0].name, "popularity");
  EXPECT_EQ((*configs)[1].name, "pure_svd");
  EXPECT_EQ((*configs)[1].params.at("rank"), "16");
  EXPECT_EQ((*configs)[2].name, "svd128");
  EXPECT_EQ((*configs)[2].algorithm, "pure_svd");
  EXPECT_EQ((*configs)[2].params.at("rank"), "128");
}

TEST(ParseModelConfigsTest, Errors) {
  EXPECT_EQ(ParseModelConfigs("nope", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelConfigs("pure_svd,pure_svd", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelConfigs("pure_svd", "other.rank=3").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelConfigs("pure_svd", "rank=3").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseEventWeightsTest, OverridesAndRejects) {
  auto w = ParseEventWeights("click=3,purchase=10", EventWeights{});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->click, 3.0f);
  EXPECT_EQ(w->purchase, 10.0f);
  EXPECT_EQ(w->view, 1.0f);
  EXPECT_FALSE(ParseEventWeights("clck=3", EventWeights{}).ok());
  EXPECT_FALSE(ParseEventWeights("click=-1", EventWeights{}).ok());
  EXPECT_FALSE(ParseEventWeights("click=nan", EventWeights{}).ok());
}

}  // namespace
}  // namespace recd::server
