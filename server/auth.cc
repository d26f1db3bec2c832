#include "server/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace recd::server {
namespace {

// Equal without an early exit, so the time taken does not reveal how much of a guess matched.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

const char* ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kRead: return "read";
    case Scope::kWrite: return "write";
    case Scope::kAdmin: return "admin";
  }
  return "?";
}

}  // namespace

Scope RequiredScope(Method method) {
  switch (method) {
    case Method::kRecommend:
    case Method::kRecommendBatch:
    case Method::kSimilarItems:
    case Method::kGetModelInfo:
      return Scope::kRead;
    case Method::kLogInteractions:
    case Method::kUpsertItems:
    case Method::kDeleteItem:
    case Method::kDeleteUser:
      return Scope::kWrite;
    case Method::kTrainNow:
    case Method::kRollbackModel:
    case Method::kCreateCheckpoint:
    case Method::kCount:
      return Scope::kAdmin;
  }
  return Scope::kAdmin;
}

absl::StatusOr<Authorizer> Authorizer::FromConfig(absl::string_view text, bool require_auth_for_reads) {
  Authorizer auth;
  auth.require_auth_for_reads_ = require_auth_for_reads;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth tokens line ", line_no, ": expected '<scopes> <token>'"));
    }
    Token token;
    for (absl::string_view scope : absl::StrSplit(parts[0], ',', absl::SkipEmpty())) {
      if (scope == "read") {
        token.scopes |= static_cast<uint8_t>(Scope::kRead);
      } else if (scope == "write") {
        token.scopes |= static_cast<uint8_t>(Scope::kRead) | static_cast<uint8_t>(Scope::kWrite);
      } else if (scope == "admin") {
        token.scopes |= 7;
      } else {
        return absl::InvalidArgumentError(absl::StrCat("auth tokens line ", line_no, ": unknown scope '", scope,
                                                       "'; use read, write, admin"));
      }
    }
    if (parts[1].size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth tokens line ", line_no, ": the token is shorter than 16 characters"));
    }
    for (const Token& t : auth.tokens_) {
      if (t.secret == parts[1]) {
        return absl::InvalidArgumentError(absl::StrCat("auth tokens line ", line_no, ": duplicate token"));
      }
    }
    token.secret = std::string(parts[1]);
    auth.tokens_.push_back(std::move(token));
  }
  return auth;
}

absl::Status Authorizer::Check(Method method, absl::string_view authorization) const {
  if (tokens_.empty()) return absl::OkStatus();
  const Scope needed = RequiredScope(method);
  if (needed == Scope::kRead && !require_auth_for_reads_) return absl::OkStatus();
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  if (value.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("authorization: ", MethodName(method), " needs a token ('authorization: Bearer <token>')"));
  }
  if (!absl::ConsumePrefix(&value, "Bearer ") && !absl::ConsumePrefix(&value, "bearer ")) {
    return absl::UnauthenticatedError("authorization: expected 'Bearer <token>'");
  }
  value = absl::StripAsciiWhitespace(value);
  const Token* match = nullptr;
  for (const Token& t : tokens_) {
    if (ConstantTimeEquals(t.secret, value)) match = &t;  // no early exit either
  }
  if (match == nullptr) return absl::UnauthenticatedError("authorization: unknown token");
  if ((match->scopes & static_cast<uint8_t>(needed)) == 0) {
    return absl::PermissionDeniedError(absl::StrCat("authorization: the token lacks the '", ScopeName(needed),
                                                    "' scope that ", MethodName(method), " needs"));
  }
  return absl::OkStatus();
}

}  // namespace recd::server
