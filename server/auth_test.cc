#include "server/auth.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace recd::server {
namespace {

using ::testing::HasSubstr;

constexpr char kConfig[] = R"(# scopes token
read    reader-token-0123456789
write   writer-token-0123456789
admin   admin-token-01234567890
)";

TEST(AuthorizerTest, NoTokensAllowsEverything) {
  Authorizer auth;
  EXPECT_FALSE(auth.enabled());
  EXPECT_TRUE(auth.Check(Method::kTrainNow, "").ok());
}

TEST(AuthorizerTest, ScopesAndCodes) {
  auto auth = Authorizer::FromConfig(kConfig, /*require_auth_for_reads=*/false);
  ASSERT_TRUE(auth.ok()) << auth.status();
  // Reads are open unless required.
  EXPECT_TRUE(auth->Check(Method::kRecommend, "").ok());
  // Missing and unknown tokens: UNAUTHENTICATED, without echoing the token.
  absl::Status missing = auth->Check(Method::kLogInteractions, "");
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(missing.message(), HasSubstr("LogInteractions needs a token"));
  absl::Status unknown = auth->Check(Method::kLogInteractions, "Bearer guess-guess-guess-guess");
  EXPECT_EQ(unknown.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(unknown.message()), ::testing::Not(HasSubstr("guess")));
  EXPECT_EQ(auth->Check(Method::kLogInteractions, "writer-token-0123456789").code(),
            absl::StatusCode::kUnauthenticated);  // no "Bearer "
  // Wrong scope: PERMISSION_DENIED naming the scope.
  absl::Status denied = auth->Check(Method::kLogInteractions, "Bearer reader-token-0123456789");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.message(), HasSubstr("'write' scope"));
  EXPECT_EQ(auth->Check(Method::kTrainNow, "Bearer writer-token-0123456789").code(),
            absl::StatusCode::kPermissionDenied);
  // Implied scopes.
  EXPECT_TRUE(auth->Check(Method::kLogInteractions, "Bearer writer-token-0123456789").ok());
  EXPECT_TRUE(auth->Check(Method::kDeleteUser, "Bearer admin-token-01234567890").ok());
  EXPECT_TRUE(auth->Check(Method::kRollbackModel, "Bearer admin-token-01234567890").ok());
  EXPECT_TRUE(auth->Check(Method::kCreateCheckpoint, "bearer  admin-token-01234567890 ").ok());
}

TEST(AuthorizerTest, ReadsCanBeRequired) {
  auto auth = Authorizer::FromConfig(kConfig, /*require_auth_for_reads=*/true);
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(auth->Check(Method::kRecommend, "").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(auth->Check(Method::kRecommend, "Bearer reader-token-0123456789").ok());
  EXPECT_TRUE(auth->Check(Method::kGetModelInfo, "Bearer writer-token-0123456789").ok());
}

TEST(AuthorizerTest, ConfigErrors) {
  EXPECT_THAT(Authorizer::FromConfig("read\n", false).status().message(), HasSubstr("line 1"));
  EXPECT_THAT(Authorizer::FromConfig("# c\nsuper token-0123456789abcdef\n", false).status().message(),
              HasSubstr("line 2: unknown scope 'super'"));
  EXPECT_THAT(Authorizer::FromConfig("read short\n", false).status().message(), HasSubstr("shorter than 16"));
  EXPECT_THAT(Authorizer::FromConfig("read token-0123456789abcdef\nwrite token-0123456789abcdef\n", false)
                  .status()
                  .message(),
              HasSubstr("duplicate"));
}

}  // namespace
}  // namespace recd::server
