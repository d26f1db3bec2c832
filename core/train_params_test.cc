#include "core/train_params.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd {
namespace {

using ::testing::HasSubstr;

std::vector<ParamSpec> Specs() {
  return {ParamSpec::Int("rank", 64, 1, 1024, ""),
          ParamSpec::Double("alpha", 0.5, 0.0, 10.0, ""),
          ParamSpec::Choice("weighting", "log", {"log", "binary"}, "")};
}

TEST(ParseParamsTest, FillsDefaults) {
  auto p = ParseParams("algo", Specs(), {});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->GetInt("rank"), 64);
  EXPECT_DOUBLE_EQ(p->GetDouble("alpha"), 0.5);
  EXPECT_EQ(p->GetChoice("weighting"), "log");
  EXPECT_EQ(p->text(), (std::map<std::string, std::string>{
                           {"rank", "64"}, {"alpha", "0.5"}, {"weighting", "log"}}));
}

TEST(ParseParamsTest, ReadsGivenValuesAndTrimsSpaces) {
  auto p = ParseParams("algo", Specs(), {{"rank", " 128 "}, {"alpha", "1e-3"}, {"weighting", "binary"}});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->GetInt("rank"), 128);
  EXPECT_DOUBLE_EQ(p->GetDouble("alpha"), 1e-3);
  EXPECT_EQ(p->GetChoice("weighting"), "binary");
  EXPECT_EQ(p->text().at("rank"), "128");
  EXPECT_EQ(p->text().at("alpha"), "1e-3");
}

TEST(ParseParamsTest, UnknownKeyNamesKeyAndAcceptedKeys) {
  auto p = ParseParams("algo", Specs(), {{"rnak", "8"}});
  ASSERT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("algo"));
  EXPECT_THAT(p.status().message(), HasSubstr("'rnak'"));
  EXPECT_THAT(p.status().message(), HasSubstr("rank, alpha, weighting"));
}

TEST(ParseParamsTest, BadValuesNameKeyValueAndRange) {
  struct Case {
    std::string key, value, expect;
  };
  for (const Case& c : std::vector<Case>{{"rank", "0", "[1, 1024]"},
                                         {"rank", "2000", "[1, 1024]"},
                                         {"rank", "6.5", "integer"},
                                         {"rank", "", "integer"},
                                         {"alpha", "nan", "[0, 10]"},
                                         {"alpha", "inf", "[0, 10]"},
                                         {"alpha", "-1", "[0, 10]"},
                                         {"alpha", "x", "number"},
                                         {"weighting", "LOG", "log, binary"}}) {
    auto p = ParseParams("algo", Specs(), {{c.key, c.value}});
    ASSERT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << c.key << "=" << c.value;
    EXPECT_THAT(p.status().message(), HasSubstr("'" + c.key + "'"));
    EXPECT_THAT(p.status().message(), HasSubstr("'" + c.value + "'"));
    EXPECT_THAT(p.status().message(), HasSubstr(c.expect));
  }
}

}  // namespace
}  // namespace recd
