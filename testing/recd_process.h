// A real `recd` server process for integration tests: started on 127.0.0.1 with an ephemeral
// port, stopped (SIGTERM) or killed (SIGKILL) by the test. Its stderr goes to a log file that is
// printed when startup fails.
#ifndef RECD_TESTING_RECD_PROCESS_H_
#define RECD_TESTING_RECD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "recd/v1/recommender.grpc.pb.h"

namespace recd::testing {

// Paths of the binaries built alongside the tests.
std::string RecdBinary();
std::string RecctlBinary();

class RecdProcess {
 public:
  // Starts recd with `--data_dir=data_dir --listen=127.0.0.1:0` plus `extra_args`, and waits
  // until it reports its port (i.e. is SERVING) or exits. A failed start returns the exit status
  // and the tail of its log in the error.
  static absl::StatusOr<std::unique_ptr<RecdProcess>> Start(const std::string& data_dir,
                                                            const std::vector<std::string>& extra_args = {},
                                                            absl::Duration timeout = absl::Seconds(120));
  ~RecdProcess();  // kills the process if still running

  int port() const { return port_; }
  // The Prometheus exposer's port (0 when started with --metrics_listen=).
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

  // A stub on a fresh channel to this server.
  std::unique_ptr<recd::v1::Recommender::Stub> NewStub() const;

  // SIGTERM, then waits; returns the exit code (or 128 + signal).
  int Terminate(absl::Duration timeout = absl::Seconds(60));
  // SIGKILL, then waits.
  void Kill();

 private:
  RecdProcess() = default;
  int Wait(absl::Duration timeout);

  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  std::string log_path_;
  std::string port_file_;
};

// Runs a command to completion with a timeout, returning its exit code and combined output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout = absl::Seconds(120));

}  // namespace recd::testing

#endif  // RECD_TESTING_RECD_PROCESS_H_
