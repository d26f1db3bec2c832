// End-to-end: the real recd binary on an ephemeral port, driven over gRPC.
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

const std::vector<std::string> kSmallModels = {"--models=popularity,pure_svd", "--model_params=pure_svd.rank=4"};

std::unique_ptr<RecdProcess> StartOrDie(const std::string& data_dir,
                                        std::vector<std::string> args = kSmallModels) {
  auto process = RecdProcess::Start(data_dir, args);
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? std::move(*process) : nullptr;
}

std::set<std::string> SeenItems(const ClusteredData& data, const std::string& user) {
  std::set<std::string> seen;
  for (const auto& in : data.interactions) {
    if (in.user_id() == user) seen.insert(in.item_id());
  }
  return seen;
}

recd::v1::RecommendRequest Request(const std::string& user, int k) {
  recd::v1::RecommendRequest r;
  r.set_user_id(user);
  r.set_k(k);
  return r;
}

class EndToEndTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string data_dir() const { return dir_.Sub("data"); }
};

TEST_F(EndToEndTest, LogTrainRecommendExcludesSeenAndFollowsTaste) {
  auto server = StartOrDie(data_dir());
  ASSERT_NE(server, nullptr);
  auto stub = server->NewStub();
  const ClusteredData data = testing::MakeClusteredData();
  ASSERT_TRUE(testing::UpsertItems(*stub, data.items).ok());
  ASSERT_TRUE(testing::LogInteractions(*stub, data.interactions).ok());
  recd::v1::TrainNowResponse trained;
  grpc::Status train = testing::TrainAll(*stub, &trained);
  ASSERT_TRUE(train.ok()) << train.error_message();
  ASSERT_EQ(trained.results_size(), 2);

  for (const std::string user : {"ua0", "ua7", "ub3", "ub29"}) {
    recd::v1::RecommendResponse response;
    ASSERT_TRUE(testing::Recommend(*stub, Request(user, 5), &response).ok());
    EXPECT_EQ(response.source(), recd::v1::SOURCE_MODEL) << user;
    EXPECT_EQ(response.model(), "pure_svd");
    EXPECT_EQ(response.model_version(), 1u);
    ASSERT_EQ(response.items_size(), 5) << user;
    const std::set<std::string> seen = SeenItems(data, user);
    for (const auto& item : response.items()) {
      EXPECT_FALSE(seen.contains(item.item_id())) << user << " was recommended seen item " << item.item_id();
      // The planted structure: only the user's own cluster.
      EXPECT_EQ(item.item_id()[0], user[1]) << user << " got " << item.item_id();
    }
    for (int i = 1; i < response.items_size(); ++i) {
      EXPECT_GE(response.items(i - 1).score(), response.items(i).score());
    }
  }

  // exclude_seen=false lets seen items back in; a filter restricts the candidates.
  recd::v1::RecommendRequest with_seen = Request("ua0", 20);
  with_seen.set_exclude_seen(false);
  recd::v1::RecommendResponse all;
  ASSERT_TRUE(testing::Recommend(*stub, with_seen, &all).ok());
  int seen_count = 0;
  for (const auto& id : testing::ItemIds(all)) seen_count += SeenItems(data, "ua0").contains(id);
  EXPECT_GT(seen_count, 0);
  recd::v1::RecommendRequest filtered = Request("ua0", 20);
  filtered.mutable_filter()->add_include_categories("B");
  recd::v1::RecommendResponse only_b;
  ASSERT_TRUE(testing::Recommend(*stub, filtered, &only_b).ok());
  EXPECT_EQ(only_b.items_size(), 20);
  for (const auto& id : testing::ItemIds(only_b)) EXPECT_EQ(id[0], 'b');

  // A new interaction moves the user's list at once (fold-in), before any retrain.
  recd::v1::RecommendResponse before;
  ASSERT_TRUE(testing::Recommend(*stub, Request("ua0", 3), &before).ok());
  recd::v1::Interaction extra;
  extra.set_user_id("ua0");
  extra.set_item_id(before.items(0).item_id());
  ASSERT_TRUE(testing::LogInteractions(*stub, {extra}).ok());
  recd::v1::RecommendResponse after;
  ASSERT_TRUE(testing::Recommend(*stub, Request("ua0", 3), &after).ok());
  for (const auto& id : testing::ItemIds(after)) EXPECT_NE(id, before.items(0).item_id());

  EXPECT_EQ(server->Terminate(), 0);
}

TEST_F(EndToEndTest, RestartServesTheSameAnswersWithoutRetraining) {
  const ClusteredData data = testing::MakeClusteredData();
  std::vector<std::vector<std::string>> answers;
  {
    auto server = StartOrDie(data_dir());
    ASSERT_NE(server, nullptr);
    auto stub = server->NewStub();
    ASSERT_TRUE(testing::UpsertItems(*stub, data.items).ok());
    ASSERT_TRUE(testing::LogInteractions(*stub, data.interactions).ok());
    ASSERT_TRUE(testing::TrainAll(*stub).ok());
    for (const std::string user : {"ua1", "ub2", "nobody"}) {
      recd::v1::RecommendResponse response;
      ASSERT_TRUE(testing::Recommend(*stub, Request(user, 6), &response).ok());
      answers.push_back(testing::ItemIds(response));
    }
    ASSERT_EQ(server->Terminate(), 0);
  }
  auto server = StartOrDie(data_dir());
  ASSERT_NE(server, nullptr);
  auto stub = server->NewStub();
  recd::v1::GetModelInfoResponse info;
  ASSERT_TRUE(testing::GetModelInfo(*stub, &info).ok());
  EXPECT_EQ(info.num_interactions(), data.interactions.size());
  for (const auto& model : info.models()) {
    EXPECT_EQ(model.live_version(), 1u) << model.name();
    EXPECT_EQ(model.versions_size(), 1) << model.name() << " was retrained at startup";
  }
  int i = 0;
  for (const std::string user : {"ua1", "ub2", "nobody"}) {
    recd::v1::RecommendResponse response;
    ASSERT_TRUE(testing::Recommend(*stub, Request(user, 6), &response).ok());
    EXPECT_EQ(testing::ItemIds(response), answers[i++]) << user;
  }
  EXPECT_THAT(server->ReadLog(), HasSubstr("loaded pure_svd v1"));
  EXPECT_THAT(server->ReadLog(), ::testing::Not(HasSubstr("published")));
  EXPECT_EQ(server->Terminate(), 0);
}

TEST_F(EndToEndTest, AcknowledgedInteractionsSurviveSigkill) {
  const ClusteredData data = testing::MakeClusteredData();
  constexpr int kProbes = 150;
  {
    auto server = StartOrDie(data_dir());
    ASSERT_NE(server, nullptr);
    auto stub = server->NewStub();
    ASSERT_TRUE(testing::UpsertItems(*stub, data.items).ok());
    ASSERT_TRUE(testing::LogInteractions(*stub, data.interactions).ok());
    ASSERT_TRUE(testing::TrainAll(*stub).ok());
    // One acknowledged single-interaction call per new user, then SIGKILL with no grace at all.
    for (int i = 0; i < kProbes; ++i) {
      recd::v1::Interaction in;
      in.set_user_id(absl::StrCat("probe", i));
      in.set_item_id(absl::StrCat("a", i % 20));
      ASSERT_TRUE(testing::LogInteractions(*stub, {in}).ok());
    }
    server->Kill();
  }
  auto server = StartOrDie(data_dir());
  ASSERT_NE(server, nullptr);
  auto stub = server->NewStub();
  recd::v1::GetModelInfoResponse info;
  ASSERT_TRUE(testing::GetModelInfo(*stub, &info).ok());
  EXPECT_EQ(info.num_interactions(), data.interactions.size() + kProbes);
  // Each probe user must be known and must have its one item in its history: restricted to that
  // item with seen items excluded, nothing may come back.
  for (int i = 0; i < kProbes; ++i) {
    recd::v1::RecommendRequest request = Request(absl::StrCat("probe", i), 5);
    request.mutable_filter()->add_include_item_ids(absl::StrCat("a", i % 20));
    recd::v1::RecommendResponse response;
    ASSERT_TRUE(testing::Recommend(*stub, request, &response).ok());
    EXPECT_EQ(response.source(), recd::v1::SOURCE_MODEL) << "probe" << i << " lost";
    EXPECT_EQ(response.items_size(), 0) << "probe" << i << "'s interaction lost";
  }
  EXPECT_EQ(server->Terminate(), 0);
}

class BadInputTest : public EndToEndTest {
 protected:
  void SetUp() override {
    server_ = StartOrDie(data_dir(), {"--models=popularity,pure_svd", "--model_params=pure_svd.rank=4",
                                      "--max_batch_interactions=50"});
    ASSERT_NE(server_, nullptr);
    stub_ = server_->NewStub();
    const ClusteredData data = testing::MakeClusteredData();
    ASSERT_TRUE(testing::UpsertItems(*stub_, data.items).ok());
    ASSERT_TRUE(testing::LogInteractions(*stub_, data.interactions, 50).ok());
    ASSERT_TRUE(testing::TrainAll(*stub_).ok());
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->Terminate(), 0);
    }
  }

  void ExpectRecommendError(const recd::v1::RecommendRequest& request, grpc::StatusCode code,
                            const std::string& fragment) {
    recd::v1::RecommendResponse response;
    grpc::Status s = testing::Recommend(*stub_, request, &response);
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(fragment));
  }

  std::unique_ptr<RecdProcess> server_;
  std::unique_ptr<recd::v1::Recommender::Stub> stub_;
};

TEST_F(BadInputTest, RecommendArguments) {
  ExpectRecommendError(Request("", 5), grpc::StatusCode::INVALID_ARGUMENT, "user_id: empty");
  ExpectRecommendError(Request("ua0", 0), grpc::StatusCode::INVALID_ARGUMENT, "k: 0 is not positive");
  ExpectRecommendError(Request("ua0", 1001), grpc::StatusCode::INVALID_ARGUMENT, "k: 1001 is above the limit 1000");
  ExpectRecommendError(Request(std::string(300, 'x'), 5), grpc::StatusCode::INVALID_ARGUMENT, "above the limit 256");
  recd::v1::RecommendRequest unknown_model = Request("ua0", 5);
  unknown_model.set_model("nope");
  ExpectRecommendError(unknown_model, grpc::StatusCode::NOT_FOUND, "model: 'nope' is not a model");
}

TEST_F(BadInputTest, OversizedAndEmptyBatches) {
  recd::v1::LogInteractionsRequest request;
  for (int i = 0; i < 51; ++i) {
    auto* in = request.add_interactions();
    in->set_user_id("u");
    in->set_item_id("i");
  }
  grpc::ClientContext context;
  recd::v1::LogInteractionsResponse response;
  grpc::Status s = stub_->LogInteractions(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("interactions: 51 entries, above the limit 50"));

  request.mutable_interactions()->DeleteSubrange(0, 1);
  request.mutable_interactions(7)->set_user_id("");
  grpc::ClientContext context2;
  s = stub_->LogInteractions(&context2, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("interactions[7].user_id: empty"));

  // The refused batches wrote nothing.
  recd::v1::GetModelInfoResponse info;
  ASSERT_TRUE(testing::GetModelInfo(*stub_, &info).ok());
  EXPECT_EQ(info.num_interactions(), testing::MakeClusteredData().interactions.size());

  recd::v1::RecommendBatchRequest batch;
  grpc::ClientContext context3;
  recd::v1::RecommendBatchResponse batch_response;
  s = stub_->RecommendBatch(&context3, batch, &batch_response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("requests: empty"));
}

TEST_F(BadInputTest, SimilarItemsUnknownItemIsNotFound) {
  recd::v1::SimilarItemsRequest request;
  request.set_item_id("no-such-item");
  request.set_k(5);
  grpc::ClientContext context;
  recd::v1::SimilarItemsResponse response;
  grpc::Status s = stub_->SimilarItems(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("item_id: 'no-such-item'"));

  request.set_item_id("a0");
  grpc::ClientContext context2;
  s = stub_->SimilarItems(&context2, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.items_size(), 5);
  EXPECT_EQ(response.source(), recd::v1::SOURCE_MODEL);
  for (const auto& item : response.items()) {
    EXPECT_NE(item.item_id(), "a0");
    EXPECT_EQ(item.item_id()[0], 'a') << "cosine neighbours of a0 should be in its cluster";
    EXPECT_LE(item.score(), 1.0001f);
  }
}

TEST_F(BadInputTest, UnknownUserGetsFlaggedPopularityFallback) {
  recd::v1::RecommendResponse response;
  ASSERT_TRUE(testing::Recommend(*stub_, Request("never-seen-user", 4), &response).ok());
  EXPECT_EQ(response.source(), recd::v1::SOURCE_POPULARITY_FALLBACK);
  EXPECT_EQ(response.fallback_reason(), "unknown user");
  EXPECT_EQ(response.model(), "popularity");
  ASSERT_EQ(response.items_size(), 4);
  // The planted data skews both clusters toward index 0.
  const std::vector<std::string> ids = testing::ItemIds(response);
  const std::set<std::string> top(ids.begin(), ids.end());
  EXPECT_TRUE(top.contains("a0") || top.contains("b0"));
}

TEST_F(BadInputTest, UnknownUserAndItemInDeletes) {
  grpc::ClientContext c1;
  recd::v1::DeleteUserRequest du;
  du.set_user_id("ghost");
  recd::v1::DeleteUserResponse dur;
  EXPECT_EQ(stub_->DeleteUser(&c1, du, &dur).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext c2;
  recd::v1::DeleteItemRequest di;
  di.set_item_id("ghost");
  recd::v1::DeleteItemResponse dir;
  EXPECT_EQ(stub_->DeleteItem(&c2, di, &dir).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BadInputTest, DeletedAndInactiveItemsAreNeverServed) {
  recd::v1::RecommendRequest request = Request("ua0", 50);
  request.set_exclude_seen(false);
  recd::v1::RecommendResponse before;
  ASSERT_TRUE(testing::Recommend(*stub_, request, &before).ok());
  const std::string top = before.items(0).item_id();
  const std::string second = before.items(1).item_id();

  grpc::ClientContext c1;
  recd::v1::DeleteItemRequest di;
  di.set_item_id(top);
  recd::v1::DeleteItemResponse dir;
  ASSERT_TRUE(stub_->DeleteItem(&c1, di, &dir).ok());
  recd::v1::Item inactive;
  inactive.set_item_id(second);
  inactive.set_active(false);
  ASSERT_TRUE(testing::UpsertItems(*stub_, {inactive}).ok());

  recd::v1::RecommendResponse after;
  ASSERT_TRUE(testing::Recommend(*stub_, request, &after).ok());
  for (const auto& id : testing::ItemIds(after)) {
    EXPECT_NE(id, top);
    EXPECT_NE(id, second);
  }
  EXPECT_EQ(after.items_size(), before.items_size() - 2);
}

TEST_F(BadInputTest, DeleteUserErasesTheirHistory) {
  grpc::ClientContext c;
  recd::v1::DeleteUserRequest du;
  du.set_user_id("ua3");
  recd::v1::DeleteUserResponse dur;
  ASSERT_TRUE(stub_->DeleteUser(&c, du, &dur).ok());
  EXPECT_EQ(dur.erased_interactions(), 8u);
  recd::v1::RecommendResponse response;
  ASSERT_TRUE(testing::Recommend(*stub_, Request("ua3", 4), &response).ok());
  EXPECT_EQ(response.source(), recd::v1::SOURCE_POPULARITY_FALLBACK);
  EXPECT_EQ(response.fallback_reason(), "unknown user");
}

TEST_F(BadInputTest, PagingReturnsNoDuplicates) {
  recd::v1::RecommendRequest request = Request("ua0", 7);
  request.set_exclude_seen(false);
  std::vector<std::string> all;
  for (int page = 0; page < 10; ++page) {
    recd::v1::RecommendResponse response;
    ASSERT_TRUE(testing::Recommend(*stub_, request, &response).ok());
    for (const auto& id : testing::ItemIds(response)) all.push_back(id);
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_EQ(all.size(), 40u);  // every item exactly once
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 40u);

  request.set_page_token("garbage");
  ExpectRecommendError(request, grpc::StatusCode::INVALID_ARGUMENT, "page_token");
}

}  // namespace
}  // namespace recd
