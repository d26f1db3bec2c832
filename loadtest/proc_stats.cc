#include "loadtest/proc_stats.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace recd::loadtest {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<uint64_t> ParseVmRssBytes(absl::string_view status_text) {
  for (absl::string_view line : absl::StrSplit(status_text, '\n')) {
    if (!absl::ConsumePrefix(&line, "VmRSS:")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, "kB");
    uint64_t kb = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kb)) break;
    return kb * 1024;
  }
  return absl::InvalidArgumentError("no VmRSS line");
}

absl::StatusOr<uint64_t> ParseCpuTicks(absl::string_view stat_text) {
  // "pid (comm) state ppid ...": fields after the last ')' start at field 3 (state); utime and
  // stime are fields 14 and 15.
  const size_t close = stat_text.rfind(')');
  if (close == absl::string_view::npos) return absl::InvalidArgumentError("no ')' in stat");
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat_text.substr(close + 1), ' ', absl::SkipEmpty());
  uint64_t utime = 0;
  uint64_t stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::InvalidArgumentError("malformed stat line");
  }
  return utime + stime;
}

absl::StatusOr<ProcSample> SampleProcess(pid_t pid) {
  const std::string dir = absl::StrCat("/proc/", pid);
  absl::StatusOr<std::string> status = ReadFile(dir + "/status");
  if (!status.ok()) return status.status();
  absl::StatusOr<std::string> stat = ReadFile(dir + "/stat");
  if (!stat.ok()) return stat.status();
  ProcSample sample;
  absl::StatusOr<uint64_t> rss = ParseVmRssBytes(*status);
  if (!rss.ok()) return rss.status();  // a zombie has no VmRSS
  absl::StatusOr<uint64_t> ticks = ParseCpuTicks(*stat);
  if (!ticks.ok()) return ticks.status();
  sample.rss_bytes = *rss;
  sample.cpu_seconds = static_cast<double>(*ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return sample;
}

double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

int AllowedCpuCount() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

std::string AllowedCpuList() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return "?";
  std::vector<std::string> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(absl::StrCat(c));
  }
  return absl::StrJoin(cpus, ",");
}

}  // namespace recd::loadtest
