// recload only ever loads a server on this machine: a load test pointed at a production address
// by mistake is an outage. Every target is checked here before a channel is created.
#ifndef RECD_LOADTEST_TARGET_H_
#define RECD_LOADTEST_TARGET_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace recd::loadtest {

// OK when `target` (a gRPC target string) names a loopback endpoint with an explicit port:
//   127.x.y.z:port, localhost:port, [::1]:port, and the same with an "ipv4:", "ipv6:" or
//   "dns:///" scheme; or a Unix domain socket ("unix:path", "unix-abstract:name").
// InvalidArgument otherwise, naming the target. "localhost" is accepted by name (it resolves to
// loopback on any sane system and gRPC resolves it without DNS).
absl::Status CheckLoopbackTarget(absl::string_view target);

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_TARGET_H_
