// Bearer-token authorisation of RPCs by scope.
//
// Tokens come from a file (--auth_tokens_file), one per line: `<scopes> <token>`, where scopes is
// a comma-separated subset of read, write, admin (admin implies write and read; write implies
// read). Lines starting with # and blank lines are ignored. Clients send
// `authorization: Bearer <token>`.
//
// When tokens are configured, write RPCs need "write", admin RPCs need "admin", and reads need
// "read" only if require_auth_for_reads. A missing or unknown token is UNAUTHENTICATED; a known
// token without the scope is PERMISSION_DENIED. Tokens are compared in constant time and never
// appear in messages or logs.
#ifndef RECD_SERVER_AUTH_H_
#define RECD_SERVER_AUTH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/metrics.h"

namespace recd::server {

enum class Scope : uint8_t { kRead = 1, kWrite = 2, kAdmin = 4 };

// The scope an RPC needs.
Scope RequiredScope(Method method);

class Authorizer {
 public:
  // No tokens: every call is allowed.
  Authorizer() = default;

  // Parses the token file's contents. InvalidArgument naming the line on bad syntax, unknown
  // scopes, tokens shorter than 16 characters or duplicates.
  static absl::StatusOr<Authorizer> FromConfig(absl::string_view text, bool require_auth_for_reads);

  bool enabled() const { return !tokens_.empty(); }

  // `authorization` is the metadata value (empty when absent).
  absl::Status Check(Method method, absl::string_view authorization) const;

 private:
  struct Token {
    std::string secret;
    uint8_t scopes = 0;  // bit set of Scope
  };
  std::vector<Token> tokens_;
  bool require_auth_for_reads_ = false;
};

}  // namespace recd::server

#endif  // RECD_SERVER_AUTH_H_
