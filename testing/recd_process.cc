#include "testing/recd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"

namespace recd::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fork + exec with stdout and stderr redirected to `log_path`.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    // Signals blocked in the test process must not stay blocked in the child.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    std::perror("execv");
    _exit(127);
  }
  return pid;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string Tail(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(s.size() - n); }

// An idle client channel reads incoming frames only when gRPC's client backup poller runs
// (every 5 s by default), so a server's graceful shutdown would wait that long for the test's
// idle channels to answer its GOAWAY. Busy production clients poll all the time; tests poll
// often. Set before gRPC initialises (at the first channel), i.e. during static initialisation.
const bool kFastBackupPoll = [] {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50", /*overwrite=*/0);
  return true;
}();

}  // namespace

std::string RecdBinary() { return RECD_BINARY_PATH; }
std::string RecctlBinary() { return RECCTL_BINARY_PATH; }

absl::StatusOr<std::unique_ptr<RecdProcess>> RecdProcess::Start(const std::string& data_dir,
                                                                 const std::vector<std::string>& extra_args,
                                                                 absl::Duration timeout) {
  auto process = std::unique_ptr<RecdProcess>(new RecdProcess());
  static int counter = 0;
  // Logs live outside data_dir's parent, which a test may have made unusable on purpose.
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string stem =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/recd-process-", getpid(), "-", ++counter);
  process->log_path_ = stem + ".log";
  process->port_file_ = stem + ".port";
  std::remove(process->port_file_.c_str());
  std::vector<std::string> argv = {RecdBinary(), "--data_dir=" + data_dir, "--listen=127.0.0.1:0",
                                   "--port_file=" + process->port_file_, "--train_threads=1", "--log_level=debug",
                                   "--metrics_listen=127.0.0.1:0",
                                   // Tests check the lock order of gRPC's absl::Mutex locks.
                                   "--mutex_deadlock_detection=true"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process->pid_ = Spawn(argv, process->log_path_);
  if (process->pid_ < 0) return absl::InternalError("fork failed");

  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(process->pid_, &status, WNOHANG) == process->pid_) {
      process->pid_ = -1;
      return absl::FailedPreconditionError(absl::StrCat("recd exited with code ", DecodeWaitStatus(status),
                                                        " during startup; log:\n",
                                                        Tail(process->ReadLog(), 4000)));  // files removed by ~RecdProcess
    }
    // The file is renamed into place whole: "<grpc port>\n<metrics port>\n".
    const std::string text = ReadFile(process->port_file_);
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    int port = 0, metrics_port = 0;
    if (lines.size() >= 3 && absl::SimpleAtoi(lines[0], &port) && absl::SimpleAtoi(lines[1], &metrics_port) &&
        port > 0) {
      process->port_ = port;
      process->metrics_port_ = metrics_port;
      return process;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("recd did not start within ", absl::FormatDuration(timeout), "; log:\n",
                   Tail(process->ReadLog(), 4000)));
}

RecdProcess::~RecdProcess() {
  if (pid_ > 0) Kill();
  std::remove(port_file_.c_str());
  std::remove(log_path_.c_str());
}

std::string RecdProcess::ReadLog() const { return ReadFile(log_path_); }

std::unique_ptr<recd::v1::Recommender::Stub> RecdProcess::NewStub() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  // A new channel per stub: tests that restart the server must not reuse a dead connection.
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return recd::v1::Recommender::NewStub(
      grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args));
}

int RecdProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return DecodeWaitStatus(status);
    }
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

int RecdProcess::Terminate(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  return Wait(timeout);
}

void RecdProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  char tmpl[] = "/tmp/recd-cmd-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd >= 0) close(fd);
  CommandResult result;
  const pid_t pid = Spawn(argv, tmpl);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      result.exit_code = DecodeWaitStatus(status);
      break;
    }
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.exit_code = -1;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  result.output = ReadFile(tmpl);
  std::remove(tmpl);
  return result;
}

}  // namespace recd::testing
