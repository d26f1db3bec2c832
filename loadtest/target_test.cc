#include "loadtest/target.h"

#include "gtest/gtest.h"

namespace recd::loadtest {
namespace {

TEST(TargetTest, AcceptsLoopback) {
  for (const char* t : {"127.0.0.1:50051", "127.1.2.3:1", "localhost:8080", "LOCALHOST:80", "[::1]:50051",
                        "ipv4:127.0.0.1:9", "ipv6:[::1]:9", "dns:///localhost:50051", "unix:/tmp/recd.sock",
                        "unix-abstract:recd", "[::ffff:127.0.0.1]:5"}) {
    EXPECT_TRUE(CheckLoopbackTarget(t).ok()) << t << ": " << CheckLoopbackTarget(t);
  }
}

TEST(TargetTest, RefusesEverythingElse) {
  for (const char* t : {"", "10.0.0.1:50051", "192.168.1.1:80", "example.com:443", "recd.prod:50051",
                        "0.0.0.0:50051", "127.0.0.1", "localhost", "127.0.0.1:0", "127.0.0.1:70000",
                        "127.0.0.1:abc", "[::2]:50051", "::1:50051", "dns://8.8.8.8/localhost:50051",
                        "ipv4:127.0.0.1:1,10.0.0.1:1", "[::1", "localhost.evil.com:50051"}) {
    const absl::Status s = CheckLoopbackTarget(t);
    EXPECT_FALSE(s.ok()) << t;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << t;
  }
}

}  // namespace
}  // namespace recd::loadtest
