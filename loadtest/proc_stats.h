// Resource use of a process, read from /proc (Linux): resident memory and CPU time. recload
// samples the server it loads (--server_pid) and itself.
#ifndef RECD_LOADTEST_PROC_STATS_H_
#define RECD_LOADTEST_PROC_STATS_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace recd::loadtest {

struct ProcSample {
  uint64_t rss_bytes = 0;    // VmRSS
  double cpu_seconds = 0;    // user + system time of every thread
};

// Reads /proc/<pid>/status and /proc/<pid>/stat. NotFound when the process is gone.
absl::StatusOr<ProcSample> SampleProcess(pid_t pid);

// Parsers, separate for tests: the VmRSS line of a status file (bytes), and utime + stime of a
// stat line (clock ticks; the command name may contain spaces and parentheses).
absl::StatusOr<uint64_t> ParseVmRssBytes(absl::string_view status_text);
absl::StatusOr<uint64_t> ParseCpuTicks(absl::string_view stat_text);

// CPU seconds used by this process so far (getrusage).
double SelfCpuSeconds();
// CPUs this process may run on (its affinity mask).
int AllowedCpuCount();
// The affinity mask as a list, e.g. "1" or "0-1".
std::string AllowedCpuList();

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_PROC_STATS_H_
