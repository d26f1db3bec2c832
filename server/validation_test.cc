#include "server/validation.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd::server {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kNow = 1'800'000'000'000;

MATCHER_P(IsInvalid, fragment, "") {
  return arg.code() == absl::StatusCode::kInvalidArgument &&
         std::string(arg.message()).find(fragment) != std::string::npos;
}

TEST(Utf8Test, AcceptsWellFormedRejectsMalformed) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xff"));
}

TEST(ValidateIdTest, NamesTheFieldAndTheLimit) {
  Limits limits;
  EXPECT_TRUE(ValidateId("u1", "user_id", limits).ok());
  EXPECT_THAT(ValidateId("", "user_id", limits), IsInvalid("user_id: empty"));
  EXPECT_THAT(ValidateId(std::string(257, 'a'), "user_id", limits), IsInvalid("257 bytes, above the limit 256"));
  EXPECT_TRUE(ValidateId(std::string(256, 'a'), "user_id", limits).ok());
  EXPECT_THAT(ValidateId("a\xff", "item_id", limits), IsInvalid("item_id: not valid UTF-8"));
  EXPECT_THAT(ValidateId("a\nb", "item_id", limits), IsInvalid("control character"));
}

TEST(ValidateRecommendTest, RejectsBadK) {
  Limits limits;
  recd::v1::RecommendRequest r;
  r.set_user_id("u");
  r.set_k(0);
  EXPECT_THAT(ValidateRecommendRequest(r, "", limits), IsInvalid("k: 0 is not positive"));
  r.set_k(-3);
  EXPECT_THAT(ValidateRecommendRequest(r, "", limits), IsInvalid("k: -3"));
  r.set_k(1001);
  EXPECT_THAT(ValidateRecommendRequest(r, "", limits), IsInvalid("k: 1001 is above the limit 1000"));
  r.set_k(1000);
  EXPECT_TRUE(ValidateRecommendRequest(r, "", limits).ok());
}

TEST(ValidateRecommendTest, ChecksFilterAndDiversity) {
  Limits limits;
  recd::v1::RecommendRequest r;
  r.set_user_id("u");
  r.set_k(5);
  r.mutable_filter()->add_include_categories("");
  EXPECT_THAT(ValidateRecommendRequest(r, "", limits), IsInvalid("filter.include_categories[0]: empty"));
  r.mutable_filter()->Clear();
  for (int i = 0; i < 65; ++i) r.mutable_filter()->add_exclude_tags("t");
  EXPECT_THAT(ValidateRecommendRequest(r, "", limits), IsInvalid("filter.exclude_tags: 65 entries, above the limit 64"));
  r.mutable_filter()->Clear();
  r.mutable_diversity()->set_mmr_lambda(std::numeric_limits<float>::quiet_NaN());
  EXPECT_THAT(ValidateRecommendRequest(r, "", limits), IsInvalid("diversity.mmr_lambda"));
  r.mutable_diversity()->set_mmr_lambda(1.5f);
  EXPECT_THAT(ValidateRecommendRequest(r, "", limits), IsInvalid("diversity.mmr_lambda"));
}

TEST(ValidateBatchTest, LimitsAndDuplicates) {
  Limits limits;
  limits.max_batch_users = 3;
  recd::v1::RecommendBatchRequest batch;
  EXPECT_THAT(ValidateRecommendBatchRequest(batch, limits), IsInvalid("requests: empty"));
  for (int i = 0; i < 4; ++i) {
    auto* r = batch.add_requests();
    r->set_user_id("u" + std::to_string(i));
    r->set_k(3);
  }
  EXPECT_THAT(ValidateRecommendBatchRequest(batch, limits), IsInvalid("requests: 4 entries, above the limit 3"));
  batch.mutable_requests()->RemoveLast();
  batch.mutable_requests(2)->set_user_id("u0");
  EXPECT_THAT(ValidateRecommendBatchRequest(batch, limits), IsInvalid("requests[2].user_id: 'u0' appears twice"));
  batch.mutable_requests(2)->set_k(0);
  EXPECT_THAT(ValidateRecommendBatchRequest(batch, limits), IsInvalid("requests[2].k"));
}

recd::v1::LogInteractionsRequest OneInteraction() {
  recd::v1::LogInteractionsRequest r;
  auto* in = r.add_interactions();
  in->set_user_id("u");
  in->set_item_id("i");
  return r;
}

TEST(ValidateLogTest, ValuesTimestampsAndSizes) {
  Limits limits;
  auto r = OneInteraction();
  EXPECT_TRUE(ValidateLogInteractionsRequest(r, kNow, limits).ok());

  r.mutable_interactions(0)->set_event_type(recd::v1::EVENT_RATING);
  EXPECT_THAT(ValidateLogInteractionsRequest(r, kNow, limits), IsInvalid("interactions[0].value: required"));
  r.mutable_interactions(0)->set_value(std::nanf(""));
  EXPECT_THAT(ValidateLogInteractionsRequest(r, kNow, limits), IsInvalid("not a finite number"));
  r.mutable_interactions(0)->set_value(std::numeric_limits<float>::infinity());
  EXPECT_THAT(ValidateLogInteractionsRequest(r, kNow, limits), IsInvalid("not a finite number"));
  r.mutable_interactions(0)->set_value(4.5f);
  EXPECT_TRUE(ValidateLogInteractionsRequest(r, kNow, limits).ok());

  r.mutable_interactions(0)->set_event_type(recd::v1::EVENT_CLICK);
  r.mutable_interactions(0)->set_value(-1.0f);
  EXPECT_THAT(ValidateLogInteractionsRequest(r, kNow, limits), IsInvalid("weight -1 is outside (0"));

  r = OneInteraction();
  r.mutable_interactions(0)->set_timestamp_ms(1000);
  EXPECT_THAT(ValidateLogInteractionsRequest(r, kNow, limits), IsInvalid("interactions[0].timestamp_ms"));
  r.mutable_interactions(0)->set_timestamp_ms(kNow + limits.max_future_ms + 1);
  EXPECT_THAT(ValidateLogInteractionsRequest(r, kNow, limits), IsInvalid("interactions[0].timestamp_ms"));
  r.mutable_interactions(0)->set_timestamp_ms(kNow + limits.max_future_ms);
  EXPECT_TRUE(ValidateLogInteractionsRequest(r, kNow, limits).ok());

  r = OneInteraction();
  r.mutable_interactions(0)->set_event_type(static_cast<recd::v1::EventType>(42));
  EXPECT_THAT(ValidateLogInteractionsRequest(r, kNow, limits), IsInvalid("event_type: 42"));

  limits.max_batch_interactions = 2;
  r = OneInteraction();
  *r.add_interactions() = r.interactions(0);
  *r.add_interactions() = r.interactions(0);
  EXPECT_THAT(ValidateLogInteractionsRequest(r, kNow, limits), IsInvalid("interactions: 3 entries, above the limit 2"));
  r.mutable_interactions()->RemoveLast();
  r.mutable_interactions(1)->set_item_id("");
  EXPECT_THAT(ValidateLogInteractionsRequest(r, kNow, limits), IsInvalid("interactions[1].item_id: empty"));

  recd::v1::LogInteractionsRequest empty;
  EXPECT_THAT(ValidateLogInteractionsRequest(empty, kNow, limits), IsInvalid("interactions: empty"));
}

TEST(ValidateUpsertTest, DuplicatesAndTerms) {
  Limits limits;
  recd::v1::UpsertItemsRequest r;
  r.add_items()->set_item_id("a");
  r.add_items()->set_item_id("a");
  EXPECT_THAT(ValidateUpsertItemsRequest(r, limits), IsInvalid("items[1].item_id: 'a' appears twice"));
  r.mutable_items(1)->set_item_id("b");
  r.mutable_items(1)->add_categories(std::string(129, 'c'));
  EXPECT_THAT(ValidateUpsertItemsRequest(r, limits), IsInvalid("items[1].categories[0]: 129 bytes"));
  r.mutable_items(1)->clear_categories();
  r.mutable_items(1)->set_title(std::string(1025, 't'));
  EXPECT_THAT(ValidateUpsertItemsRequest(r, limits), IsInvalid("items[1].title"));
  r.mutable_items(1)->clear_title();
  EXPECT_TRUE(ValidateUpsertItemsRequest(r, limits).ok());
}

}  // namespace
}  // namespace recd::server
