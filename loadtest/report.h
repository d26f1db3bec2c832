// recload's outputs: the text table, the JSON result file and the SVG charts.
#ifndef RECD_LOADTEST_REPORT_H_
#define RECD_LOADTEST_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "loadtest/driver.h"
#include "loadtest/pacing.h"
#include "loadtest/svg_plot.h"

namespace recd::loadtest {

// A streaming JSON writer: commas, nesting and string escapes handled; non-finite numbers are
// written as null. Misuse (a value without a key inside an object) is the caller's bug.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view value);
  JsonWriter& Number(double value);
  JsonWriter& Int(int64_t value);
  JsonWriter& UInt(uint64_t value);
  JsonWriter& Bool(bool value);
  const std::string& str() const { return out_; }

 private:
  void BeforeValue();
  void Newline();
  JsonWriter& Close(char bracket);
  std::string out_;
  std::vector<bool> first_;     // per open container: no element written yet
  bool after_key_ = false;
};

std::string JsonEscape(absl::string_view text);

// One step of a step search.
struct StepRecord {
  double rate = 0;
  bool held = false;
  std::string reason;
  PhaseResult phase;
};
struct StepRun {
  std::string name;            // e.g. "recommend" or "health (baseline)"
  std::string judged_method;   // the method whose p99 decides
  StepCriteria criteria;
  std::vector<StepRecord> steps;
  double highest_held = 0;
  double lowest_failed = 0;    // 0 = never failed up to the ceiling
};

// The per-method latency table of phases, one row per (phase, method) with traffic.
std::string FormatTable(const std::vector<const PhaseResult*>& phases);
// One line per step and the verdict.
std::string FormatSteps(const StepRun& run);

void WritePhaseJson(JsonWriter& json, const PhaseResult& phase, bool with_series = true);
// {count, min, mean, p50, p90, p99, p99.9, max} of a histogram of nanoseconds, in milliseconds.
void WriteLatencyJson(JsonWriter& json, const Histogram& h);
void WriteStepRunJson(JsonWriter& json, const StepRun& run);

// Charts. Latency over time (p50/p99/max per method per second), throughput and server RSS.
Plot LatencyOverTimePlot(const PhaseResult& phase);
Plot ThroughputOverTimePlot(const PhaseResult& phase);
Plot ServerMemoryPlot(const PhaseResult& phase);  // empty series when not sampled
Plot ServerCpuPlot(const PhaseResult& phase);
// Percentile distribution of every (phase, method) with traffic, on the usual HDR axis.
Plot PercentilePlot(const std::vector<const PhaseResult*>& phases, const std::string& title);
// p99 against the target rate, one line per step run, with the p99 target.
Plot StepPlot(const std::vector<const StepRun*>& runs);

// Writes `text` to `path` (atomically: a temporary file renamed over it).
absl::Status WriteTextFile(const std::string& path, absl::string_view text);

}  // namespace recd::loadtest

#endif  // RECD_LOADTEST_REPORT_H_
