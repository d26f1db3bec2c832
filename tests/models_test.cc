// Every model algorithm through the real server: trained from the log, persisted (a restart
// serves the same answers without retraining) and selectable per request.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "testing/workload.h"

namespace recd {
namespace {

using ::recd::testing::ClusteredData;
using ::recd::testing::RecdProcess;
using ::recd::testing::TempDir;
using ::testing::HasSubstr;

const std::vector<std::string> kModels = {"pure_svd", "biased_mf", "als", "two_tower", "ease"};

// Small models: the clustered data has 60 users and 40 items.
const std::vector<std::string> kArgs = {
    "--models=popularity,pure_svd,biased_mf,als,two_tower,ease",
    "--model_params=pure_svd.rank=4,biased_mf.factors=4,biased_mf.regularization=0.1,"
    "als.factors=4,als.regularization=1,"
    "two_tower.dim=8,two_tower.embedding_dim=8,two_tower.hidden_dim=16,two_tower.epochs=40,"
    "two_tower.batch_size=64,two_tower.learning_rate=0.01,two_tower.temperature=0.1,"
    "two_tower.logq_weight=1"};

// The clustered clicks plus explicit ratings for biased_mf: each user rates four of their own
// cluster's clicked items high and two of the other cluster's items low.
ClusteredData DataWithRatings() {
  ClusteredData data = testing::MakeClusteredData();
  std::map<std::string, int> rated;
  const size_t clicks = data.interactions.size();
  for (size_t k = 0; k < clicks; ++k) {
    const recd::v1::Interaction click = data.interactions[k];
    const std::string& user = click.user_id();
    if (rated[user]++ >= 4) continue;
    recd::v1::Interaction& high = data.interactions.emplace_back(click);
    high.set_event_type(recd::v1::EVENT_RATING);
    high.set_value(4.0f + (k % 2));
    if (rated[user] <= 2) {
      recd::v1::Interaction& low = data.interactions.emplace_back(click);
      low.set_event_type(recd::v1::EVENT_RATING);
      low.set_value(1.0f);
      low.set_item_id(absl::StrCat(user[1] == 'a' ? "b" : "a", (k * 7) % 20));
    }
  }
  return data;
}

recd::v1::RecommendRequest Request(const std::string& user, const std::string& model, int k) {
  recd::v1::RecommendRequest r;
  r.set_user_id(user);
  r.set_model(model);
  r.set_k(k);
  return r;
}

std::unique_ptr<RecdProcess> StartOrDie(const std::string& data_dir) {
  auto process = RecdProcess::Start(data_dir, kArgs);
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? std::move(*process) : nullptr;
}

class ModelsTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string data_dir() const { return dir_.Sub("data"); }
};

TEST_F(ModelsTest, EveryAlgorithmTrainsPersistsAndIsSelectablePerRequest) {
  const ClusteredData data = DataWithRatings();
  const std::vector<std::string> users = {"ua0", "ua5", "ub3", "ub17"};
  std::map<std::string, std::vector<std::string>> answers;  // model + user -> item ids
  {
    auto server = StartOrDie(data_dir());
    ASSERT_NE(server, nullptr);
    auto stub = server->NewStub();
    ASSERT_TRUE(testing::UpsertItems(*stub, data.items).ok());
    ASSERT_TRUE(testing::LogInteractions(*stub, data.interactions).ok());
    recd::v1::TrainNowResponse trained;
    grpc::Status train = testing::TrainAll(*stub, &trained);
    ASSERT_TRUE(train.ok()) << train.error_message();
    EXPECT_EQ(trained.results_size(), 6);

    recd::v1::GetModelInfoResponse info;
    ASSERT_TRUE(testing::GetModelInfo(*stub, &info).ok());
    std::set<std::string> algorithms;
    for (const auto& m : info.models()) {
      algorithms.insert(m.algorithm());
      EXPECT_EQ(m.live_version(), 1u) << m.name();
    }
    EXPECT_THAT(algorithms, ::testing::IsSupersetOf({"popularity", "pure_svd", "biased_mf", "als",
                                                     "two_tower", "ease"}));

    for (const std::string& model : kModels) {
      for (const std::string& user : users) {
        recd::v1::RecommendResponse response;
        grpc::Status s = testing::Recommend(*stub, Request(user, model, 5), &response);
        ASSERT_TRUE(s.ok()) << model << ": " << s.error_message();
        EXPECT_EQ(response.model(), model);
        EXPECT_EQ(response.model_version(), 1u);
        EXPECT_EQ(response.source(), recd::v1::SOURCE_MODEL) << model << " " << user;
        ASSERT_EQ(response.items_size(), 5) << model << " " << user;
        // Each model learned the two taste clusters: most of the list is the user's own cluster.
        int own = 0;
        for (const auto& item : response.items()) own += item.item_id()[0] == user[1];
        EXPECT_GE(own, 4) << model << " recommended " << own << "/5 own-cluster items to " << user;
        answers[model + "/" + user] = testing::ItemIds(response);
      }
    }
    // An unknown model name is NOT_FOUND, not a fallback.
    recd::v1::RecommendResponse response;
    EXPECT_EQ(testing::Recommend(*stub, Request("ua0", "no_such_model", 5), &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
    ASSERT_EQ(server->Terminate(), 0);
  }

  // Restart: every model is loaded from the store (no retraining) and answers identically.
  auto server = StartOrDie(data_dir());
  ASSERT_NE(server, nullptr);
  auto stub = server->NewStub();
  recd::v1::GetModelInfoResponse info;
  ASSERT_TRUE(testing::GetModelInfo(*stub, &info).ok());
  for (const auto& m : info.models()) {
    EXPECT_EQ(m.live_version(), 1u) << m.name();
    EXPECT_EQ(m.versions_size(), 1) << m.name() << " was retrained at startup";
  }
  for (const std::string& model : kModels) {
    EXPECT_THAT(server->ReadLog(), HasSubstr(absl::StrCat("loaded ", model, " v1")));
    for (const std::string& user : users) {
      recd::v1::RecommendResponse response;
      ASSERT_TRUE(testing::Recommend(*stub, Request(user, model, 5), &response).ok());
      EXPECT_EQ(testing::ItemIds(response), answers[model + "/" + user]) << model << " " << user;
    }
  }

  // A new interaction moves a user's list at once under every model (fold-in), before any
  // retrain: the item is excluded from then on, and the user vector is rebuilt from the history.
  recd::v1::Interaction extra;
  extra.set_user_id("ua0");
  extra.set_item_id(answers["als/ua0"][0]);
  extra.set_event_type(recd::v1::EVENT_RATING);
  extra.set_value(5.0f);
  ASSERT_TRUE(testing::LogInteractions(*stub, {extra}).ok());
  for (const std::string& model : kModels) {
    recd::v1::RecommendResponse response;
    ASSERT_TRUE(testing::Recommend(*stub, Request("ua0", model, 5), &response).ok());
    EXPECT_EQ(response.source(), recd::v1::SOURCE_MODEL) << model;
    for (const auto& id : testing::ItemIds(response)) EXPECT_NE(id, extra.item_id()) << model;
  }
  EXPECT_EQ(server->Terminate(), 0);
}

}  // namespace
}  // namespace recd
