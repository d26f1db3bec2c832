// Every kind of bad input against the real server: each gets its precise status and a message
// naming the field and the limit; afterwards the server still serves and the store holds exactly
// what was acknowledged. The table mirrors the README's "Bad input" table.
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "testing/workload.h"

namespace recd {
namespace {

using ::recd::testing::RecdProcess;
using ::recd::testing::TempDir;
using ::testing::HasSubstr;
using Stub = recd::v1::Recommender::Stub;

struct Case {
  std::string name;
  std::function<grpc::Status(Stub&)> call;
  grpc::StatusCode code;
  std::string fragment;  // must appear in the message
};

grpc::Status Rec(Stub& stub, const std::function<void(recd::v1::RecommendRequest&)>& edit) {
  recd::v1::RecommendRequest r;
  r.set_user_id("ua0");
  r.set_k(5);
  edit(r);
  grpc::ClientContext context;
  recd::v1::RecommendResponse response;
  return stub.Recommend(&context, r, &response);
}

grpc::Status Batch(Stub& stub, const std::function<void(recd::v1::RecommendBatchRequest&)>& edit) {
  recd::v1::RecommendBatchRequest r;
  edit(r);
  grpc::ClientContext context;
  recd::v1::RecommendBatchResponse response;
  return stub.RecommendBatch(&context, r, &response);
}

grpc::Status Similar(Stub& stub, const std::function<void(recd::v1::SimilarItemsRequest&)>& edit) {
  recd::v1::SimilarItemsRequest r;
  r.set_item_id("a0");
  r.set_k(5);
  edit(r);
  grpc::ClientContext context;
  recd::v1::SimilarItemsResponse response;
  return stub.SimilarItems(&context, r, &response);
}

grpc::Status Log(Stub& stub, const std::function<void(recd::v1::Interaction&)>& edit, int copies = 1) {
  recd::v1::LogInteractionsRequest r;
  for (int i = 0; i < copies; ++i) {
    recd::v1::Interaction* in = r.add_interactions();
    in->set_user_id("ua0");
    in->set_item_id("a0");
    edit(*in);
  }
  grpc::ClientContext context;
  recd::v1::LogInteractionsResponse response;
  return stub.LogInteractions(&context, r, &response);
}

grpc::Status Upsert(Stub& stub, const std::function<void(recd::v1::UpsertItemsRequest&)>& edit) {
  recd::v1::UpsertItemsRequest r;
  edit(r);
  grpc::ClientContext context;
  recd::v1::UpsertItemsResponse response;
  return stub.UpsertItems(&context, r, &response);
}

template <typename Request, typename Response>
grpc::Status Call(Stub& stub,
                  grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request) {
  grpc::ClientContext context;
  Response response;
  return (stub.*method)(&context, request, &response);
}

std::vector<Case> Cases(const std::string& checkpoint_dir) {
  const std::string long_id(257, 'x');
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  using C = grpc::StatusCode;
  std::vector<Case> cases = {
      // Ids.
      {"empty user_id", [](Stub& s) { return Rec(s, [](auto& r) { r.set_user_id(""); }); }, C::INVALID_ARGUMENT, "user_id: empty"},
      {"user_id above 256 bytes", [=](Stub& s) { return Rec(s, [&](auto& r) { r.set_user_id(long_id); }); },
       C::INVALID_ARGUMENT, "user_id: 257 bytes, above the limit 256"},
      // proto3 strings must be UTF-8: the protobuf parser refuses such a request before recd sees it.
      {"user_id not UTF-8", [](Stub& s) { return Rec(s, [](auto& r) { r.set_user_id("caf\xe9"); }); },
       C::INVALID_ARGUMENT, "request: not decodable as recd.v1.RecommendRequest: a string field"},
      {"item_id not UTF-8 in LogInteractions", [](Stub& s) { return Log(s, [](auto& in) { in.set_item_id("\xff\xfe"); }); },
       C::INVALID_ARGUMENT, "request: not decodable as recd.v1.LogInteractionsRequest"},
      {"user_id with a control character", [](Stub& s) { return Rec(s, [](auto& r) { r.set_user_id("a\tb"); }); },
       C::INVALID_ARGUMENT, "user_id: contains a control character"},
      {"empty item_id in SimilarItems", [](Stub& s) { return Similar(s, [](auto& r) { r.set_item_id(""); }); },
       C::INVALID_ARGUMENT, "item_id: empty"},
      // k.
      {"k = 0", [](Stub& s) { return Rec(s, [](auto& r) { r.set_k(0); }); }, C::INVALID_ARGUMENT, "k: 0 is not positive"},
      {"k negative", [](Stub& s) { return Rec(s, [](auto& r) { r.set_k(-5); }); }, C::INVALID_ARGUMENT, "k: -5 is not positive"},
      {"k above the limit", [](Stub& s) { return Rec(s, [](auto& r) { r.set_k(1001); }); }, C::INVALID_ARGUMENT,
       "k: 1001 is above the limit 1000"},
      {"SimilarItems k above the limit", [](Stub& s) { return Similar(s, [](auto& r) { r.set_k(5000); }); },
       C::INVALID_ARGUMENT, "k: 5000 is above the limit 1000"},
      // Models, users, items.
      {"unknown model", [](Stub& s) { return Rec(s, [](auto& r) { r.set_model("gpt"); }); }, C::NOT_FOUND,
       "model: 'gpt' is not a model of this server; known: popularity, pure_svd"},
      {"unknown item in SimilarItems", [](Stub& s) { return Similar(s, [](auto& r) { r.set_item_id("zzz"); }); },
       C::NOT_FOUND, "item_id: 'zzz' is not a known item"},
      {"unknown user in DeleteUser", [](Stub& s) {
         recd::v1::DeleteUserRequest r;
         r.set_user_id("ghost");
         return Call(s, &Stub::DeleteUser, r);
       }, C::NOT_FOUND, "user_id: 'ghost' is not a known user"},
      {"unknown item in DeleteItem", [](Stub& s) {
         recd::v1::DeleteItemRequest r;
         r.set_item_id("ghost");
         return Call(s, &Stub::DeleteItem, r);
       }, C::NOT_FOUND, "item_id: 'ghost' is not a known item"},
      // Filters and controls.
      {"too many filter categories", [](Stub& s) {
         return Rec(s, [](auto& r) { for (int i = 0; i < 65; ++i) r.mutable_filter()->add_include_categories("c"); });
       }, C::INVALID_ARGUMENT, "filter.include_categories: 65 entries, above the limit 64"},
      {"empty filter tag", [](Stub& s) { return Rec(s, [](auto& r) { r.mutable_filter()->add_exclude_tags(""); }); },
       C::INVALID_ARGUMENT, "filter.exclude_tags[0]: empty"},
      {"too many exclude_item_ids", [](Stub& s) {
         return Rec(s, [](auto& r) { for (int i = 0; i < 10001; ++i) r.add_exclude_item_ids("x"); });
       }, C::INVALID_ARGUMENT, "exclude_item_ids: 10001 entries, above the limit 10000"},
      {"mmr_lambda NaN", [=](Stub& s) { return Rec(s, [&](auto& r) { r.mutable_diversity()->set_mmr_lambda(nan); }); },
       C::INVALID_ARGUMENT, "diversity.mmr_lambda"},
      {"mmr_lambda above 1", [](Stub& s) { return Rec(s, [](auto& r) { r.mutable_diversity()->set_mmr_lambda(2); }); },
       C::INVALID_ARGUMENT, "diversity.mmr_lambda: 2 is outside [0, 1]"},
      {"negative max_per_category", [](Stub& s) {
         return Rec(s, [](auto& r) { r.mutable_diversity()->set_max_per_category(-1); });
       }, C::INVALID_ARGUMENT, "diversity.max_per_category: -1 is outside [0, 1000]"},
      {"forged page_token", [](Stub& s) { return Rec(s, [](auto& r) { r.set_page_token("5:0:1:other"); }); },
       C::FAILED_PRECONDITION, "page_token: issued for other v1"},
      {"garbage page_token", [](Stub& s) { return Rec(s, [](auto& r) { r.set_page_token("%%%"); }); },
       C::INVALID_ARGUMENT, "page_token: not a token this server issued"},
      // Batches.
      {"empty RecommendBatch", [](Stub& s) { return Batch(s, [](auto&) {}); }, C::INVALID_ARGUMENT, "requests: empty"},
      {"RecommendBatch above the limit", [](Stub& s) {
         return Batch(s, [](auto& r) {
           for (int i = 0; i < 257; ++i) {
             auto* e = r.add_requests();
             e->set_user_id(absl::StrCat("u", i));
             e->set_k(1);
           }
         });
       }, C::INVALID_ARGUMENT, "requests: 257 entries, above the limit 256"},
      {"duplicate user in RecommendBatch", [](Stub& s) {
         return Batch(s, [](auto& r) {
           for (int i = 0; i < 3; ++i) {
             auto* e = r.add_requests();
             e->set_user_id(i == 2 ? "u0" : absl::StrCat("u", i));
             e->set_k(1);
           }
         });
       }, C::INVALID_ARGUMENT, "requests[2].user_id: 'u0' appears twice in the batch"},
      {"bad k inside a batch", [](Stub& s) {
         return Batch(s, [](auto& r) {
           r.add_requests()->set_user_id("u0");
           r.mutable_requests(0)->set_k(0);
         });
       }, C::INVALID_ARGUMENT, "requests[0].k: 0 is not positive"},
      // LogInteractions.
      {"empty LogInteractions", [](Stub& s) { return Log(s, [](auto&) {}, 0); }, C::INVALID_ARGUMENT, "interactions: empty"},
      {"LogInteractions above the limit", [](Stub& s) { return Log(s, [](auto&) {}, 10001); }, C::INVALID_ARGUMENT,
       "interactions: 10001 entries, above the limit 10000"},
      {"rating without a value", [](Stub& s) { return Log(s, [](auto& in) { in.set_event_type(recd::v1::EVENT_RATING); }); },
       C::INVALID_ARGUMENT, "interactions[0].value: required for EVENT_RATING"},
      {"NaN rating", [=](Stub& s) {
         return Log(s, [&](auto& in) {
           in.set_event_type(recd::v1::EVENT_RATING);
           in.set_value(nan);
         });
       }, C::INVALID_ARGUMENT, "interactions[0].value: not a finite number"},
      {"infinite weight", [=](Stub& s) { return Log(s, [&](auto& in) { in.set_value(inf); }); }, C::INVALID_ARGUMENT,
       "interactions[0].value: not a finite number"},
      {"negative weight", [](Stub& s) { return Log(s, [](auto& in) { in.set_value(-2); }); }, C::INVALID_ARGUMENT,
       "interactions[0].value: weight -2 is outside (0, 1e+06]"},
      {"rating above the limit", [](Stub& s) {
         return Log(s, [](auto& in) {
           in.set_event_type(recd::v1::EVENT_RATING);
           in.set_value(1e7f);
         });
       }, C::INVALID_ARGUMENT, "interactions[0].value: 1e+07 is outside [-1e+06, 1e+06]"},
      {"timestamp in 1970", [](Stub& s) { return Log(s, [](auto& in) { in.set_timestamp_ms(86'400'000); }); },
       C::INVALID_ARGUMENT, "interactions[0].timestamp_ms: 86400000 is outside [631152000000 (1990-01-01)"},
      {"timestamp a year ahead", [](Stub& s) {
         return Log(s, [](auto& in) { in.set_timestamp_ms(4'102'444'800'000); });  // 2100-01-01
       }, C::INVALID_ARGUMENT, "interactions[0].timestamp_ms"},
      {"unknown event type", [](Stub& s) {
         return Log(s, [](auto& in) { in.set_event_type(static_cast<recd::v1::EventType>(99)); });
       }, C::INVALID_ARGUMENT, "interactions[0].event_type: 99 is not a known event type"},
      {"empty item_id in a batch", [](Stub& s) {
         recd::v1::LogInteractionsRequest r;
         for (int i = 0; i < 3; ++i) {
           auto* in = r.add_interactions();
           in->set_user_id("ua0");
           in->set_item_id(i == 2 ? "" : "a0");
         }
         return Call(s, &Stub::LogInteractions, r);
       }, C::INVALID_ARGUMENT, "interactions[2].item_id: empty"},
      // UpsertItems.
      {"empty UpsertItems", [](Stub& s) { return Upsert(s, [](auto&) {}); }, C::INVALID_ARGUMENT, "items: empty"},
      {"duplicate item in UpsertItems", [](Stub& s) {
         return Upsert(s, [](auto& r) {
           r.add_items()->set_item_id("n1");
           r.add_items()->set_item_id("n1");
         });
       }, C::INVALID_ARGUMENT, "items[1].item_id: 'n1' appears twice in the batch"},
      {"category too long", [](Stub& s) {
         return Upsert(s, [](auto& r) {
           auto* item = r.add_items();
           item->set_item_id("n1");
           item->add_categories(std::string(129, 'c'));
         });
       }, C::INVALID_ARGUMENT, "items[0].categories[0]: 129 bytes, above the limit 128"},
      {"title too long", [](Stub& s) {
         return Upsert(s, [](auto& r) {
           auto* item = r.add_items();
           item->set_item_id("n1");
           item->set_title(std::string(1025, 't'));
         });
       }, C::INVALID_ARGUMENT, "items[0].title: 1025 bytes, above the limit 1024"},
      // Administration.
      {"TrainNow of an unknown model", [](Stub& s) {
         recd::v1::TrainNowRequest r;
         r.add_models("nope");
         return Call(s, &Stub::TrainNow, r);
       }, C::NOT_FOUND, "models[0]: model: 'nope' is not a model"},
      {"RollbackModel without a model", [](Stub& s) { return Call(s, &Stub::RollbackModel, recd::v1::RollbackModelRequest()); },
       C::INVALID_ARGUMENT, "model: required"},
      {"RollbackModel to a version never stored", [](Stub& s) {
         recd::v1::RollbackModelRequest r;
         r.set_model("pure_svd");
         r.set_version(42);
         return Call(s, &Stub::RollbackModel, r);
       }, C::NOT_FOUND, "version: pure_svd v42 is not stored"},
      {"RollbackModel with no earlier version", [](Stub& s) {
         recd::v1::RollbackModelRequest r;
         r.set_model("pure_svd");
         return Call(s, &Stub::RollbackModel, r);
       }, C::FAILED_PRECONDITION, "has no earlier accepted version"},
      {"CreateCheckpoint with a relative path", [](Stub& s) {
         recd::v1::CreateCheckpointRequest r;
         r.set_path("relative/dir");
         return Call(s, &Stub::CreateCheckpoint, r);
       }, C::INVALID_ARGUMENT, "path: an absolute folder path is required"},
      {"CreateCheckpoint into an existing folder", [=](Stub& s) {
         recd::v1::CreateCheckpointRequest r;
         r.set_path(checkpoint_dir);
         return Call(s, &Stub::CreateCheckpoint, r);
       }, C::ALREADY_EXISTS, "already exists"},
      // Transport.
      {"message above --max_message_bytes", [](Stub& s) {
         return Upsert(s, [](auto& r) {
           for (int i = 0; i < 1500; ++i) {
             auto* item = r.add_items();
             item->set_item_id(absl::StrCat("big", i));
             item->set_title(std::string(1000, 't'));
           }
         });
       }, C::RESOURCE_EXHAUSTED, ""},
      {"deadline already passed", [](Stub& s) {
         recd::v1::RecommendRequest r;
         r.set_user_id("ua0");
         r.set_k(5);
         grpc::ClientContext context;
         context.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
         recd::v1::RecommendResponse response;
         return s.Recommend(&context, r, &response);
       }, C::DEADLINE_EXCEEDED, ""},
  };
  return cases;
}

TEST(BadInputTest, EveryCaseGetsItsStatusAndTheServerKeepsServing) {
  TempDir dir;
  std::filesystem::create_directories(dir.Sub("existing"));
  auto server = RecdProcess::Start(dir.Sub("data"), {"--models=popularity,pure_svd", "--model_params=pure_svd.rank=4",
                                                     "--max_message_bytes=1048576"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  const testing::ClusteredData data = testing::MakeClusteredData();
  ASSERT_TRUE(testing::UpsertItems(*stub, data.items).ok());
  ASSERT_TRUE(testing::LogInteractions(*stub, data.interactions).ok());
  ASSERT_TRUE(testing::TrainAll(*stub).ok());

  for (const Case& c : Cases(dir.Sub("existing"))) {
    grpc::Status s = c.call(*stub);
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.fragment)) << c.name;
  }

  // Nothing of the refused writes landed; the server still answers.
  recd::v1::GetModelInfoResponse info;
  ASSERT_TRUE(testing::GetModelInfo(*stub, &info).ok());
  EXPECT_EQ(info.num_interactions(), data.interactions.size());
  EXPECT_EQ(info.num_items(), data.items.size());
  recd::v1::RecommendRequest ok;
  ok.set_user_id("ua0");
  ok.set_k(5);
  recd::v1::RecommendResponse response;
  ASSERT_TRUE(testing::Recommend(*stub, ok, &response).ok());
  EXPECT_EQ(response.items_size(), 5);
  // Unknown user: not an error, the flagged fallback.
  ok.set_user_id("stranger");
  ASSERT_TRUE(testing::Recommend(*stub, ok, &response).ok());
  EXPECT_EQ(response.source(), recd::v1::SOURCE_POPULARITY_FALLBACK);
  EXPECT_EQ((*server)->Terminate(), 0);
}

}  // namespace
}  // namespace recd
