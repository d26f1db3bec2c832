// Recommendation controls on planted data, where each expected list follows exactly from the
// plain ranking: filters, paging, explanations, diversity and repeat control.
#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/engine_harness.h"
#include "testing/planted_data.h"

namespace recd::server {
namespace {

using ::recd::testing::Ids;
using ::testing::ElementsAreArray;

class ControlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.exploration_share = 0;  // every item has interactions; keep lists purely model-ranked
    options.models = {{"popularity", "popularity", {}}, {"pure_svd", "pure_svd", {{"rank", "4"}}}};
    options.default_model = "pure_svd";
    options.impression_demotion_seconds = 600;
    ASSERT_TRUE(h_.Open(options));
    data_ = testing::MakeClusteredData();
    ASSERT_TRUE(h_.Upsert(data_.items));
    ASSERT_TRUE(h_.Log(data_.interactions));
    // A user with mixed taste, mostly A.
    for (const char* item : {"a0", "a1", "a2", "b0"}) ASSERT_TRUE(h_.Log("mixed", item));
    ASSERT_TRUE(h_.TrainAll());
  }

  recd::v1::RecommendRequest Request(const std::string& user, int k) {
    recd::v1::RecommendRequest r;
    r.set_user_id(user);
    r.set_k(k);
    return r;
  }

  // Every unseen item for `user`, in the model's order.
  std::vector<std::string> FullRanking(const std::string& user) { return Ids(h_.Recommend(Request(user, 1000))); }

  testing::EngineHarness h_;
  testing::ClusteredData data_;
};

bool HasTag(const recd::v1::Item& item, const std::string& tag) {
  return std::find(item.tags().begin(), item.tags().end(), tag) != item.tags().end();
}

TEST_F(ControlsTest, FiltersRunInsideTheScan) {
  const std::vector<std::string> full = FullRanking("ua0");
  ASSERT_EQ(full.size(), 32u);  // 40 items minus the 8 seen
  // Items tagged "even" outside category A: every match of the full ranking, in order, even
  // though they all rank below the user's own cluster (no over-fetch could find them).
  recd::v1::RecommendRequest r = Request("ua0", 10);
  r.mutable_filter()->add_include_tags("even");
  r.mutable_filter()->add_exclude_categories("A");
  std::vector<std::string> expected;
  for (const std::string& id : full) {
    auto item = std::find_if(data_.items.begin(), data_.items.end(), [&](const auto& i) { return i.item_id() == id; });
    if (HasTag(*item, "even") && id[0] == 'b' && expected.size() < 10) expected.push_back(id);
  }
  EXPECT_THAT(Ids(h_.Recommend(r)), ElementsAreArray(expected));

  // include_item_ids with an exclusion: the allowed list, in model order, minus the excluded.
  r = Request("ua0", 10);
  for (const std::string& id : {full[30], full[2], full[5], std::string("nope")}) r.mutable_filter()->add_include_item_ids(id);
  r.add_exclude_item_ids(full[5]);
  EXPECT_THAT(Ids(h_.Recommend(r)), ElementsAreArray({full[2], full[30]}));

  // "all of" categories that no item has together: nothing.
  r = Request("ua0", 10);
  r.mutable_filter()->add_include_categories("A");
  r.mutable_filter()->add_include_categories("B");
  r.mutable_filter()->set_require_all_categories(true);
  EXPECT_TRUE(Ids(h_.Recommend(r)).empty());
}

TEST_F(ControlsTest, PagesConcatenateToTheFullRanking) {
  const std::vector<std::string> full = FullRanking("ub4");
  recd::v1::RecommendRequest r = Request("ub4", 6);
  std::vector<std::string> paged;
  int pages = 0;
  while (true) {
    recd::v1::RecommendResponse page = h_.Recommend(r);
    ++pages;
    for (const std::string& id : Ids(page)) paged.push_back(id);
    if (page.next_page_token().empty()) break;
    r.set_page_token(page.next_page_token());
  }
  EXPECT_EQ(pages, 6);  // 32 items: 5 full pages and a short one
  EXPECT_EQ(paged, full);
}

TEST_F(ControlsTest, ExplanationsAreExactSharesOfTheHistory) {
  recd::v1::RecommendRequest r = Request("mixed", 5);
  EXPECT_EQ(h_.Recommend(r).items(0).explanations_size(), 0);  // off by default
  r.set_explain(true);
  recd::v1::RecommendResponse response = h_.Recommend(r);
  ASSERT_EQ(response.items_size(), 5);
  for (const auto& item : response.items()) {
    ASSERT_GT(item.explanations_size(), 0) << item.item_id();
    ASSERT_LE(item.explanations_size(), 4);  // the user's four history items at most
    double sum = 0;
    for (const auto& e : item.explanations()) {
      sum += e.share();
      EXPECT_TRUE(e.item_id() == "a0" || e.item_id() == "a1" || e.item_id() == "a2" || e.item_id() == "b0");
    }
    // Every contributing history item is listed (4 <= 5), so the shares add up to the score.
    EXPECT_NEAR(sum, 1.0, 1e-4) << item.item_id();
    for (int i = 1; i < item.explanations_size(); ++i) {
      EXPECT_GE(std::fabs(item.explanations(i - 1).share()), std::fabs(item.explanations(i).share()));
    }
    // Cluster-A recommendations are explained by the A history first, B ones by b0.
    EXPECT_EQ(item.explanations(0).item_id()[0], item.item_id()[0]) << item.item_id();
  }
}

TEST_F(ControlsTest, CategoryCapAndMmr) {
  const std::vector<std::string> full = FullRanking("ua0");
  auto first_of = [&](char cluster) {
    return *std::find_if(full.begin(), full.end(), [&](const std::string& id) { return id[0] == cluster; });
  };
  recd::v1::RecommendRequest r = Request("ua0", 5);
  r.mutable_diversity()->set_max_per_category(1);
  // One item per category: the best A, then the best B, and nothing else exists.
  EXPECT_THAT(Ids(h_.Recommend(r)), ElementsAreArray({first_of('a'), first_of('b')}));
  r.mutable_diversity()->set_max_per_category(2);
  EXPECT_EQ(Ids(h_.Recommend(r)).size(), 4u);

  // Without MMR the mixed user's top 4 are all from A; with a strong MMR weight a B item enters.
  auto count_b = [](const std::vector<std::string>& ids) {
    return std::count_if(ids.begin(), ids.end(), [](const std::string& id) { return id[0] == 'b'; });
  };
  recd::v1::RecommendRequest plain = Request("mixed", 4);
  EXPECT_EQ(count_b(Ids(h_.Recommend(plain))), 0);
  recd::v1::RecommendRequest mmr = Request("mixed", 4);
  mmr.mutable_diversity()->set_mmr_lambda(0.7f);
  const std::vector<std::string> diverse = Ids(h_.Recommend(mmr));
  ASSERT_EQ(diverse.size(), 4u);
  EXPECT_GE(count_b(diverse), 1);
  EXPECT_EQ(diverse[0], Ids(h_.Recommend(plain))[0]);  // the most relevant item still leads
}

TEST_F(ControlsTest, DiversifiedPagesDoNotOverlap) {
  recd::v1::RecommendRequest r = Request("mixed", 5);
  r.mutable_diversity()->set_mmr_lambda(0.5f);
  std::vector<std::string> all;
  for (int page = 0; page < 20; ++page) {
    recd::v1::RecommendResponse response = h_.Recommend(r);
    for (const std::string& id : Ids(response)) all.push_back(id);
    if (response.next_page_token().empty()) break;
    r.set_page_token(response.next_page_token());
  }
  EXPECT_EQ(all.size(), 36u);  // 40 items minus 4 seen, each exactly once
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
}

TEST_F(ControlsTest, RecentlyShownItemsAreDemotedUntilTheWindowPasses) {
  const std::vector<std::string> full = FullRanking("ua5");
  const std::vector<std::string> before = Ids(h_.Recommend(Request("ua5", 10)));
  ASSERT_EQ(before, std::vector<std::string>(full.begin(), full.begin() + 10));
  // The client showed the first three and logged impressions.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(h_.Log("ua5", before[i], recd::v1::EVENT_IMPRESSION));

  std::vector<std::string> expected(full.begin() + 3, full.begin() + 13);
  EXPECT_EQ(Ids(h_.Recommend(Request("ua5", 10))), expected);
  // The shown items are demoted, not removed: they close the full list, in score order.
  const std::vector<std::string> all = Ids(h_.Recommend(Request("ua5", 100)));
  ASSERT_EQ(all.size(), full.size());
  EXPECT_EQ(std::vector<std::string>(all.end() - 3, all.end()), std::vector<std::string>(full.begin(), full.begin() + 3));

  h_.clock().AdvanceMs(601'000);
  EXPECT_EQ(Ids(h_.Recommend(Request("ua5", 10))), before);
}

// The server's scorer choice (--scorer, --model_scorers): the int8 screen answers exactly what
// the float32 scan answers, through every path that ranks (Recommend with and without filters,
// RecommendBatch, SimilarItems), and GetModelInfo says which scorer serves each model.
TEST(ScorerChoiceTest, Int8ScreenServesTheExactScansAnswers) {
  const testing::ClusteredData data = testing::MakeClusteredData(60, 400, 25);
  auto answers = [&](const std::string& scorer, std::string* described) {
    testing::EngineHarness h;
    ServerOptions options;
    options.exploration_share = 0;
    options.models = {{"popularity", "popularity", {}}, {"pure_svd", "pure_svd", {{"rank", "12"}}}};
    options.default_model = "pure_svd";
    EXPECT_TRUE(ParseScorerKind(scorer, "--scorer", options.scorer.defaults).ok());
    EXPECT_TRUE(ParseModelScorers("popularity=exact", options.models, options.scorer).ok());
    EXPECT_TRUE(h.Open(options));
    EXPECT_TRUE(h.Upsert(data.items));
    EXPECT_TRUE(h.Log(data.interactions));
    EXPECT_TRUE(h.TrainAll());
    std::vector<std::string> out;
    auto add = [&](const google::protobuf::RepeatedPtrField<recd::v1::ScoredItem>& items) {
      std::string line;
      for (const auto& item : items) line += item.item_id() + ":" + std::to_string(item.score()) + " ";
      out.push_back(line);
    };
    for (int u = 0; u < 60; u += 3) {
      const std::string user = absl::StrCat(u % 2 == 0 ? "ua" : "ub", u / 2);
      recd::v1::RecommendRequest r;
      r.set_user_id(user);
      r.set_k(u % 4 == 0 ? 800 : 10);
      add(h.Recommend(r).items());
      r.mutable_filter()->add_include_categories(u % 2 == 0 ? "B" : "A");  // the other cluster only
      add(h.Recommend(r).items());
      recd::v1::SimilarItemsRequest similar;
      similar.set_item_id(absl::StrCat("a", u));
      similar.set_k(20);
      recd::v1::SimilarItemsResponse similar_response;
      EXPECT_TRUE(h.engine().SimilarItems(similar, &similar_response).ok());
      add(similar_response.items());
    }
    for (int size : {2, 9}) {
      recd::v1::RecommendBatchRequest batch;
      for (int u = 0; u < size; ++u) {
        recd::v1::RecommendRequest* r = batch.add_requests();
        r->set_user_id(absl::StrCat(u % 2 == 0 ? "ua" : "ub", u));
        r->set_k(15);
      }
      recd::v1::RecommendBatchResponse batch_response;
      EXPECT_TRUE(h.engine().RecommendBatch(batch, &batch_response).ok());
      for (const auto& response : batch_response.responses()) add(response.items());
    }
    recd::v1::GetModelInfoRequest info_request;
    recd::v1::GetModelInfoResponse info;
    EXPECT_TRUE(h.engine().GetModelInfo(info_request, &info).ok());
    for (const recd::v1::ModelInfo& m : info.models()) *described += m.name() + "=" + m.scorer() + " ";
    return out;
  };
  std::string exact_described, int8_described;
  const std::vector<std::string> exact = answers("exact", &exact_described);
  const std::vector<std::string> int8 = answers("int8", &int8_described);
  ASSERT_EQ(exact.size(), int8.size());
  for (size_t i = 0; i < exact.size(); ++i) EXPECT_EQ(int8[i], exact[i]) << "answer " << i;
  EXPECT_THAT(exact_described, ::testing::HasSubstr("pure_svd=exact/"));
  EXPECT_THAT(int8_described, ::testing::HasSubstr("pure_svd=int8-exact/"));
  EXPECT_THAT(int8_described, ::testing::HasSubstr("popularity=exact/"));
}

}  // namespace
}  // namespace recd::server
