#include "loadtest/proc_stats.h"

#include <unistd.h>

#include "gtest/gtest.h"

namespace recd::loadtest {
namespace {

TEST(ProcStatsTest, ParsesVmRss) {
  EXPECT_EQ(*ParseVmRssBytes("Name:\trecd\nVmPeak:\t  999 kB\nVmRSS:\t  123456 kB\nThreads:\t9\n"),
            uint64_t{123456} * 1024);
  EXPECT_FALSE(ParseVmRssBytes("Name:\tzombie\nState:\tZ\n").ok());
}

TEST(ProcStatsTest, ParsesCpuTicksWithAwkwardCommandNames) {
  // Fields after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt
  // cmajflt utime stime ...
  EXPECT_EQ(*ParseCpuTicks("42 (re cd) (x)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9"), 300u);
  EXPECT_FALSE(ParseCpuTicks("42 recd S 1").ok());
  EXPECT_FALSE(ParseCpuTicks("42 (recd) S 1 2").ok());
}

TEST(ProcStatsTest, SamplesThisProcess) {
  absl::StatusOr<ProcSample> s = SampleProcess(getpid());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->rss_bytes, 0u);
  EXPECT_GE(s->cpu_seconds, 0.0);
  EXPECT_GE(AllowedCpuCount(), 1);
  EXPECT_FALSE(AllowedCpuList().empty());
}

}  // namespace
}  // namespace recd::loadtest
