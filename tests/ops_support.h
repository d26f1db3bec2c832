// Helpers for the operations tests (tests/ops_*_test.cc): Debian's prometheus and nginx started
// as child processes on loopback, plain HTTP GETs, free ports, the repository's deploy/ folder.
#ifndef RECD_TESTS_OPS_SUPPORT_H_
#define RECD_TESTS_OPS_SUPPORT_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace recd::testing::ops {

// The repository root (the folder holding deploy/ and server/): $RECD_SOURCE_DIR when set, else
// derived from this file's compile-time path.
std::string SourceDir();

// Absolute path of an executable found in $PATH, /usr/sbin, /usr/bin, /sbin or /bin; "" when
// there is none.
std::string FindProgram(const std::string& name);

// A python3 that can `import yaml` (Debian's /usr/bin/python3 first: $PATH may hold a pyenv
// shim without it); "" when there is none.
std::string FindPythonWithYaml();

// A TCP port nobody listens on at 127.0.0.1 right now. Another process may take it before the
// caller binds it: callers retry their start on failure.
int FreePort();

absl::StatusOr<std::string> ReadFile(const std::string& path);
absl::Status WriteFile(const std::string& path, absl::string_view content);

struct HttpResponse {
  int status = 0;
  std::string body;
};
// HTTP/1.0 GET http://127.0.0.1:<port><target>.
absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& target, absl::Duration timeout = absl::Seconds(5));
std::string UrlEncode(absl::string_view text);

// Polls until a TCP connection to 127.0.0.1:port succeeds.
bool WaitForPort(int port, absl::Duration timeout);

// Sum of the samples of series `name` in a Prometheus text exposition whose label set contains
// every `name="value"` pair of `labels`.
double SumSamples(const std::string& exposition, const std::string& name,
                  const std::map<std::string, std::string>& labels = {});

// A program running in the background with stdout and stderr in a log file. It gets SIGKILL if
// the test process dies; the destructor stops it (SIGTERM, then SIGKILL).
class ChildProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // False once the process has exited (its status is then collected).
  bool Running();
  // SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit code or 128 + signal.
  int Stop(absl::Duration timeout = absl::Seconds(10));
  std::string ReadLog() const;

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

}  // namespace recd::testing::ops

#endif  // RECD_TESTS_OPS_SUPPORT_H_
