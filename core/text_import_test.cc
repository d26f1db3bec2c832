#include "core/text_import.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

void ExpectError(const absl::Status& s, const std::vector<std::string>& parts) {
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  for (const std::string& p : parts) EXPECT_THAT(s.message(), HasSubstr(p));
}

TEST(MovieLensTest, ParsesUData) {
  auto x = ParseMovieLensLine("196\t242\t3\t881250949", 1);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->user_id, "196");
  EXPECT_EQ(x->item_id, "242");
  EXPECT_EQ(x->event, EventType::kRating);
  EXPECT_TRUE(x->has_value);
  EXPECT_EQ(x->value, 3.0f);
  EXPECT_EQ(x->timestamp_ms, 881250949000);
}

TEST(MovieLensTest, ParsesDoubleColonFormatAndCrlf) {
  auto x = ParseMovieLensLine("1::1193::4.5::978300760\r\n", 7);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->user_id, "1");
  EXPECT_EQ(x->item_id, "1193");
  EXPECT_EQ(x->value, 4.5f);
  EXPECT_EQ(x->timestamp_ms, 978300760000);
}

TEST(MovieLensTest, Errors) {
  ExpectError(ParseMovieLensLine("1\t2\t3", 12).status(), {"line 12", "expected 4 fields", "got 3"});
  ExpectError(ParseMovieLensLine("1\t2\t3\t4\t5", 3).status(), {"line 3", "got 5"});
  ExpectError(ParseMovieLensLine("1\t2\tgood\t881250949", 4).status(),
              {"line 4", "column 3 (rating)", "'good' is not a number"});
  ExpectError(ParseMovieLensLine("1\t2\tnan\t881250949", 5).status(),
              {"line 5", "column 3 (rating)", "finite"});
  ExpectError(ParseMovieLensLine("1\t2\tinf\t881250949", 5).status(), {"column 3 (rating)"});
  ExpectError(ParseMovieLensLine("1\t2\t3\t-5", 6).status(), {"line 6", "column 4 (timestamp)"});
  ExpectError(ParseMovieLensLine("1\t2\t3\t12.5", 6).status(), {"column 4", "not an integer"});
  ExpectError(ParseMovieLensLine("1\t2\t3\t99999999999999999", 6).status(), {"column 4", "range"});
  ExpectError(ParseMovieLensLine("\t2\t3\t4", 8).status(), {"line 8", "column 1", "empty user id"});
  ExpectError(ParseMovieLensLine("1\t \t3\t4", 9).status(), {"line 9", "column 2", "empty item id"});
}

TEST(IsBlankLineTest, Works) {
  EXPECT_TRUE(IsBlankLine(""));
  EXPECT_TRUE(IsBlankLine(" \t\r\n"));
  EXPECT_FALSE(IsBlankLine(" a "));
}

TEST(SplitCsvLineTest, Rfc4180Quoting) {
  auto f = SplitCsvLine(R"(a,"b,c","say ""hi""",,  d  , "e" ,"")", 1);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(*f, ElementsAre("a", "b,c", "say \"hi\"", "", "d", "e", ""));
  auto trailing = SplitCsvLine("a,b,\r\n", 1);
  ASSERT_TRUE(trailing.ok());
  EXPECT_THAT(*trailing, ElementsAre("a", "b", ""));
  ExpectError(SplitCsvLine(R"(a,"b)", 4).status(), {"line 4", "column 2", "unterminated"});
  ExpectError(SplitCsvLine(R"(a,"b"x,c)", 5).status(), {"line 5", "column 2", "after a closing quote"});
  ExpectError(SplitCsvLine(R"(a,b"c)", 6).status(), {"line 6", "column 2", "double quote"});
}

TEST(CsvParserTest, FullHeaderAnyOrder) {
  auto p = CsvInteractionParser::FromHeader("timestamp_ms,event,item_id,value,user_id");
  ASSERT_TRUE(p.ok()) << p.status();
  auto x = p->ParseLine("1700000000000,rating,\"The Matrix, 1999\",4.5,alice", 2);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->user_id, "alice");
  EXPECT_EQ(x->item_id, "The Matrix, 1999");
  EXPECT_EQ(x->event, EventType::kRating);
  EXPECT_TRUE(x->has_value);
  EXPECT_EQ(x->value, 4.5f);
  EXPECT_EQ(x->timestamp_ms, 1700000000000);

  auto y = p->ParseLine(",PURCHASE,i9,,bob", 3);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->event, EventType::kPurchase);
  EXPECT_FALSE(y->has_value);
  EXPECT_EQ(y->timestamp_ms, 0);
}

TEST(CsvParserTest, MinimalHeaderDefaultsToView) {
  auto p = CsvInteractionParser::FromHeader("\xEF\xBB\xBFuser_id,item_id\r");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->num_columns(), 2);
  auto x = p->ParseLine("u1,i1", 2);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->event, EventType::kView);
  EXPECT_FALSE(x->has_value);
  EXPECT_EQ(x->timestamp_ms, 0);
}

TEST(CsvParserTest, EveryEventName) {
  auto p = CsvInteractionParser::FromHeader("user_id,item_id,event,value");
  ASSERT_TRUE(p.ok());
  for (int e = 1; e <= kMaxEventType; ++e) {
    const EventType type = static_cast<EventType>(e);
    auto x = p->ParseLine("u,i," + std::string(EventTypeName(type)) + ",1", 2);
    ASSERT_TRUE(x.ok()) << x.status();
    EXPECT_EQ(x->event, type);
  }
}

TEST(CsvParserTest, HeaderErrors) {
  ExpectError(CsvInteractionParser::FromHeader("user_id,item,event").status(),
              {"line 1", "column 2", "unknown header column 'item'"});
  ExpectError(CsvInteractionParser::FromHeader("user_id,item_id,user_id").status(),
              {"line 1", "column 3", "duplicate"});
  ExpectError(CsvInteractionParser::FromHeader("item_id,event").status(), {"no user_id"});
  ExpectError(CsvInteractionParser::FromHeader("user_id,value").status(), {"no item_id"});
}

TEST(CsvParserTest, LineErrors) {
  auto p = CsvInteractionParser::FromHeader("user_id,item_id,event,value,timestamp_ms");
  ASSERT_TRUE(p.ok());
  ExpectError(p->ParseLine("u,i,view,1", 10).status(), {"line 10", "expected 5 fields", "got 4"});
  ExpectError(p->ParseLine(",i,view,,", 11).status(), {"line 11", "column 1 (user_id)", "empty id"});
  ExpectError(p->ParseLine("u,,view,,", 12).status(), {"line 12", "column 2 (item_id)", "empty id"});
  ExpectError(p->ParseLine("u,i,watch,,", 13).status(),
              {"line 13", "column 3 (event)", "unknown event 'watch'"});
  ExpectError(p->ParseLine("u,i,rating,five,", 14).status(),
              {"line 14", "column 4 (value)", "not a number"});
  ExpectError(p->ParseLine("u,i,rating,NaN,", 15).status(), {"line 15", "column 4 (value)", "finite"});
  ExpectError(p->ParseLine("u,i,view,1e39,", 15).status(), {"column 4 (value)", "finite"});
  ExpectError(p->ParseLine("u,i,rating,,", 16).status(), {"line 16", "column 4 (value)", "needs a value"});
  ExpectError(p->ParseLine("u,i,view,,yesterday", 17).status(),
              {"line 17", "column 5 (timestamp_ms)", "not an integer"});
  ExpectError(p->ParseLine("u,i,view,,-1", 18).status(), {"line 18", "column 5 (timestamp_ms)"});
  ExpectError(p->ParseLine("u,\"i,view,,", 19).status(), {"line 19", "unterminated"});
}

}  // namespace
}  // namespace recd
