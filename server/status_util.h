// The one place where absl::Status becomes grpc::Status (the codes are numerically identical).
#ifndef RECD_SERVER_STATUS_UTIL_H_
#define RECD_SERVER_STATUS_UTIL_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace recd::server {

// Longest message sent to clients; longer ones are cut with a marker.
inline constexpr size_t kMaxStatusMessageBytes = 1024;

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace recd::server

#endif  // RECD_SERVER_STATUS_UTIL_H_
