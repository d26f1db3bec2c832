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

TEST(ScorerConfigTest, DefaultIsTheExactInt8ScreenAndKindsParse) {
  const ServerOptions defaults;
  EXPECT_EQ(defaults.scorer.defaults.kind, ScorerOptions::Kind::kQuantizedInt8);
  EXPECT_TRUE(defaults.scorer.defaults.quantized.exact);
  EXPECT_EQ(ScorerKindName(defaults.scorer.defaults), "int8");
  for (const char* name : {"exact", "int8", "int8_approx", "hnsw"}) {
    ScorerOptions o;
    ASSERT_TRUE(ParseScorerKind(name, "--scorer", o).ok()) << name;
    EXPECT_EQ(ScorerKindName(o), name);
  }
  ScorerOptions o;
  const absl::Status bad = ParseScorerKind("faiss", "--scorer", o);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("--scorer: 'faiss' is not a scorer"), std::string::npos) << bad;
}

TEST(ScorerConfigTest, PerModelKindsOverrideTheDefault) {
  auto models = ParseModelConfigs("pure_svd,two_tower", "");
  ASSERT_TRUE(models.ok());
  ScorerConfig config = DefaultScorerConfig();
  config.defaults.num_threads = 2;
  ASSERT_TRUE(ParseModelScorers("two_tower=hnsw, popularity=exact", *models, config).ok());
  EXPECT_EQ(config.For("two_tower").kind, ScorerOptions::Kind::kHnsw);
  EXPECT_EQ(config.For("two_tower").num_threads, 2);  // only the kind is per model
  EXPECT_EQ(config.For("popularity").kind, ScorerOptions::Kind::kExact);
  EXPECT_EQ(config.For("pure_svd").kind, ScorerOptions::Kind::kQuantizedInt8);

  for (const char* bad : {"als=exact", "pure_svd", "pure_svd=fast", "pure_svd=int8_approx"}) {
    ScorerConfig c = DefaultScorerConfig();
    const absl::Status s = ParseModelScorers(bad, *models, c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("--model_scorers"), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace recd::server
