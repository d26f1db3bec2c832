#include "loadtest/report.h"

#include <cmath>
#include <limits>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace recd::loadtest {
namespace {

constexpr const char* kMethodColors[kNumMethods] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#7f7f7f"};
constexpr const char* kPhaseColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
                                        "#8c564b", "#e377c2", "#17becf", "#7f7f7f"};

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

bool HasTraffic(const MethodStats& m) { return m.ok + m.error_count() > 0; }

std::string ErrorsText(const MethodStats& m) {
  std::vector<std::string> parts;
  for (const auto& [code, count] : m.errors) parts.push_back(absl::StrCat(StatusCodeName(code), "=", count));
  return absl::StrJoin(parts, " ");
}

}  // namespace

void WriteLatencyJson(JsonWriter& json, const Histogram& h) {
  json.BeginObject();
  json.Key("count").UInt(h.count());
  json.Key("min").Number(Ms(h.min()));
  json.Key("mean").Number(h.mean() / 1e6);
  json.Key("p50").Number(Ms(h.ValueAtQuantile(0.5)));
  json.Key("p90").Number(Ms(h.ValueAtQuantile(0.9)));
  json.Key("p99").Number(Ms(h.ValueAtQuantile(0.99)));
  json.Key("p99.9").Number(Ms(h.ValueAtQuantile(0.999)));
  json.Key("max").Number(Ms(h.max()));
  json.EndObject();
}

// ---- JSON ------------------------------------------------------------------------------------

std::string JsonEscape(absl::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

void JsonWriter::Newline() {
  out_ += '\n';
  out_.append(2 * first_.size(), ' ');
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
    Newline();
  }
}

JsonWriter& JsonWriter::BeginObject() {
  BeforeValue();
  out_ += '{';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::EndObject() { return Close('}'); }

JsonWriter& JsonWriter::Close(char bracket) {
  const bool empty = first_.back();
  first_.pop_back();
  if (!empty) Newline();
  out_ += bracket;
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  BeforeValue();
  out_ += '[';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::EndArray() { return Close(']'); }

JsonWriter& JsonWriter::Key(absl::string_view key) {
  BeforeValue();
  absl::StrAppend(&out_, "\"", JsonEscape(key), "\": ");
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(absl::string_view value) {
  BeforeValue();
  absl::StrAppend(&out_, "\"", JsonEscape(value), "\"");
  return *this;
}

JsonWriter& JsonWriter::Number(double value) {
  BeforeValue();
  if (!std::isfinite(value)) {
    out_ += "null";
  } else if (value == std::floor(value) && std::fabs(value) < 1e15) {
    absl::StrAppend(&out_, static_cast<int64_t>(value));
  } else {
    absl::StrAppendFormat(&out_, "%.6g", value);
  }
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t value) {
  BeforeValue();
  absl::StrAppend(&out_, value);
  return *this;
}

JsonWriter& JsonWriter::UInt(uint64_t value) {
  BeforeValue();
  absl::StrAppend(&out_, value);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  BeforeValue();
  out_ += value ? "true" : "false";
  return *this;
}

void WritePhaseJson(JsonWriter& json, const PhaseResult& phase, bool with_series) {
  const PhaseSpec& spec = phase.spec;
  json.BeginObject();
  json.Key("name").String(spec.name);
  json.Key("mode").String(spec.closed_loop ? "closed" : "open");
  if (spec.closed_loop) {
    json.Key("concurrency").Int(spec.concurrency);
  } else {
    json.Key("target_rate").Number(spec.rate);
  }
  json.Key("mix").String(phase.mix);
  json.Key("warmup_s").Number(absl::ToDoubleSeconds(spec.warmup));
  json.Key("duration_s").Number(phase.measured_s);
  // CLOCK_MONOTONIC, to line the window up with other traces (e.g. perf record -k CLOCK_MONOTONIC).
  json.Key("window_start_monotonic_s").Number(static_cast<double>(phase.window_start_ns) / 1e9);
  json.Key("sent").UInt(phase.sent);
  json.Key("measured_requests").UInt(phase.measured_requests);
  json.Key("ok").UInt(phase.ok());
  json.Key("errors").UInt(phase.errors());
  json.Key("achieved_rate").Number(phase.achieved_rate);
  json.Key("hit_request_bound").Bool(phase.hit_request_bound);
  if (spec.stop_early != nullptr) json.Key("stopped_early").Bool(phase.stopped_early);
  json.Key("client_cpus").Int(phase.client_cpus);
  json.Key("client_cpu_cores").Number(phase.client_cpu_cores);
  json.Key("server_cpu_cores").Number(phase.server_cpu_cores);
  json.Key("server_rss_start_bytes").UInt(phase.server_rss_start);
  json.Key("server_rss_end_bytes").UInt(phase.server_rss_end);
  json.Key("server_rss_max_bytes").UInt(phase.server_rss_max);
  if (phase.server_rss_start > 0) {
    json.Key("server_rss_growth").Number(
        (static_cast<double>(phase.server_rss_end) - static_cast<double>(phase.server_rss_start)) /
        static_cast<double>(phase.server_rss_start));
  }
  if (!spec.closed_loop) {
    json.Key("send_lag_ms");
    WriteLatencyJson(json, phase.send_lag);
  }
  json.Key("latency_ms");
  WriteLatencyJson(json, phase.all);
  json.Key("methods").BeginObject();
  for (int m = 0; m < kNumMethods; ++m) {
    const MethodStats& s = phase.methods[m];
    if (!HasTraffic(s)) continue;
    json.Key(MethodName(static_cast<Method>(m))).BeginObject();
    json.Key("rpc").String(MethodRpcName(static_cast<Method>(m)));
    json.Key("ok").UInt(s.ok);
    json.Key("errors").UInt(s.error_count());
    json.Key("errors_by_code").BeginObject();
    for (const auto& [code, count] : s.errors) json.Key(StatusCodeName(code)).UInt(count);
    json.EndObject();
    json.Key("ok_per_s").Number(static_cast<double>(s.ok) / phase.measured_s);
    json.Key("units").UInt(s.units);
    json.Key("units_per_s").Number(static_cast<double>(s.units) / phase.measured_s);
    json.Key("fallback").UInt(s.fallback);
    json.Key("latency_ms");
    WriteLatencyJson(json, s.latency);
    json.Key("percentile_distribution").BeginArray();
    for (const Histogram::Point& p : s.latency.PercentileDistribution(4)) {
      json.BeginArray().Number(p.quantile).Number(Ms(p.value)).EndArray();
    }
    json.EndArray();
    json.EndObject();
  }
  json.EndObject();
  json.Key("warnings").BeginArray();
  for (const std::string& w : phase.warnings) json.String(w);
  json.EndArray();
  if (with_series) {
    json.Key("series").BeginArray();
    for (const IntervalStats& i : phase.series) {
      json.BeginObject();
      json.Key("t_s").Number(i.t_s);
      if (i.server_rss_bytes > 0) {
        json.Key("server_rss_bytes").UInt(i.server_rss_bytes);
        json.Key("server_cpu_cores").Number(i.server_cpu_cores);
      }
      for (int m = 0; m < kNumMethods; ++m) {
        if (i.ok[m] + i.errors[m] == 0) continue;
        json.Key(MethodName(static_cast<Method>(m))).BeginObject();
        json.Key("ok").UInt(i.ok[m]);
        json.Key("errors").UInt(i.errors[m]);
        json.Key("p50_ms").Number(Ms(i.p50_ns[m]));
        json.Key("p99_ms").Number(Ms(i.p99_ns[m]));
        json.Key("max_ms").Number(Ms(i.max_ns[m]));
        json.EndObject();
      }
      json.EndObject();
    }
    json.EndArray();
  }
  json.EndObject();
}

void WriteStepRunJson(JsonWriter& json, const StepRun& run) {
  json.BeginObject();
  json.Key("name").String(run.name);
  json.Key("judged_method").String(run.judged_method);
  json.Key("p99_target_ms").Number(run.criteria.p99_target_ms);
  json.Key("max_error_ratio").Number(run.criteria.max_error_ratio);
  json.Key("min_achieved_ratio").Number(run.criteria.min_achieved_ratio);
  json.Key("highest_rate_held").Number(run.highest_held);
  json.Key("lowest_rate_failed").Number(run.lowest_failed);
  json.Key("steps").BeginArray();
  for (const StepRecord& s : run.steps) {
    json.BeginObject();
    json.Key("rate").Number(s.rate);
    json.Key("held").Bool(s.held);
    json.Key("reason").String(s.reason);
    json.Key("phase");
    WritePhaseJson(json, s.phase, /*with_series=*/false);
    json.EndObject();
  }
  json.EndArray();
  json.EndObject();
}

// ---- Text ------------------------------------------------------------------------------------

std::string FormatTable(const std::vector<const PhaseResult*>& phases) {
  std::string out = absl::StrFormat("%-22s %-10s %10s %10s %9s %7s %8s %8s %8s %8s %8s\n", "phase", "method",
                                    "target/s", "achieved/s", "ok", "errors", "p50 ms", "p90 ms", "p99 ms",
                                    "p99.9 ms", "max ms");
  for (const PhaseResult* phase : phases) {
    for (int m = 0; m < kNumMethods; ++m) {
      const MethodStats& s = phase->methods[m];
      if (!HasTraffic(s)) continue;
      const Method method = static_cast<Method>(m);
      Mix mix = *Mix::Parse(phase->mix);
      const std::string target =
          phase->spec.closed_loop ? absl::StrCat("N=", phase->spec.concurrency)
                                  : absl::StrFormat("%.1f", phase->spec.rate * mix.Share(method));
      absl::StrAppendFormat(&out, "%-22s %-10s %10s %10.1f %9d %7d %8.3f %8.3f %8.3f %8.3f %8.3f\n",
                            phase->spec.name, MethodName(method), target,
                            static_cast<double>(s.ok) / phase->measured_s, s.ok, s.error_count(),
                            Ms(s.latency.ValueAtQuantile(0.5)), Ms(s.latency.ValueAtQuantile(0.9)),
                            Ms(s.latency.ValueAtQuantile(0.99)), Ms(s.latency.ValueAtQuantile(0.999)),
                            Ms(s.latency.max()));
      if (method == Method::kLogInteractions) {
        absl::StrAppendFormat(&out, "%-22s %-10s interactions acknowledged: %.1f/s\n", "", "",
                              static_cast<double>(s.units) / phase->measured_s);
      }
      if (s.error_count() > 0) absl::StrAppendFormat(&out, "%-22s %-10s errors: %s\n", "", "", ErrorsText(s));
    }
    std::string resources = absl::StrFormat("client %.2f of %d CPU", phase->client_cpu_cores, phase->client_cpus);
    if (phase->server_rss_start > 0) {
      absl::StrAppendFormat(&resources, "; server %.2f CPU, RSS %.1f -> %.1f MiB (max %.1f)",
                            phase->server_cpu_cores, phase->server_rss_start / 1048576.0,
                            phase->server_rss_end / 1048576.0, phase->server_rss_max / 1048576.0);
    }
    if (!phase->spec.closed_loop && phase->send_lag.count() > 0) {
      absl::StrAppendFormat(&resources, "; send lag p99 %.3f ms", Ms(phase->send_lag.ValueAtQuantile(0.99)));
    }
    absl::StrAppendFormat(&out, "%-22s %s\n", "", resources);
    for (const std::string& w : phase->warnings) absl::StrAppendFormat(&out, "%-22s WARNING: %s\n", "", w);
  }
  return out;
}

std::string FormatSteps(const StepRun& run) {
  std::string out = absl::StrFormat("step search %s: p99 of %s <= %.3g ms, errors <= %.2g %%, achieved >= %.0f %%\n",
                                    run.name, run.judged_method, run.criteria.p99_target_ms,
                                    100 * run.criteria.max_error_ratio, 100 * run.criteria.min_achieved_ratio);
  absl::StrAppendFormat(&out, "  %10s %10s %9s %9s %7s  %s\n", "target/s", "achieved/s", "p50 ms", "p99 ms",
                        "errors", "verdict");
  for (const StepRecord& s : run.steps) {
    Method m = *ParseMethod(run.judged_method);
    const MethodStats& stats = s.phase.methods[static_cast<int>(m)];
    absl::StrAppendFormat(&out, "  %10.1f %10.1f %9.3f %9.3f %7d  %s\n", s.rate, s.phase.achieved_rate,
                          Ms(stats.latency.ValueAtQuantile(0.5)), Ms(stats.latency.ValueAtQuantile(0.99)),
                          s.phase.errors(), s.held ? "held" : absl::StrCat("FAILED: ", s.reason));
  }
  absl::StrAppendFormat(&out, "  highest rate that held: %.1f/s%s\n", run.highest_held,
                        run.lowest_failed == 0 ? " (never broken: raise --step_max)" : "");
  return out;
}

// ---- Charts ----------------------------------------------------------------------------------

Plot LatencyOverTimePlot(const PhaseResult& phase) {
  Plot plot;
  plot.title = absl::StrCat(phase.spec.name, ": latency per second (from intended send time)");
  plot.x_label = "seconds since the measured window began (negative: warm-up)";
  plot.y_label = "latency, ms (log)";
  plot.log_y = true;
  for (int m = 0; m < kNumMethods; ++m) {
    bool any = false;
    for (const IntervalStats& i : phase.series) any |= i.ok[m] > 0;
    if (!any) continue;
    const std::string name = MethodName(static_cast<Method>(m));
    PlotSeries p50{name + " p50", kMethodColors[m], "2,3"};
    PlotSeries p99{name + " p99", kMethodColors[m], ""};
    PlotSeries max{name + " max", kMethodColors[m], "8,3,2,3"};
    for (const IntervalStats& i : phase.series) {
      if (i.ok[m] == 0) continue;
      p50.points.emplace_back(i.t_s, Ms(i.p50_ns[m]));
      p99.points.emplace_back(i.t_s, Ms(i.p99_ns[m]));
      max.points.emplace_back(i.t_s, Ms(i.max_ns[m]));
    }
    plot.series.push_back(std::move(p50));
    plot.series.push_back(std::move(p99));
    plot.series.push_back(std::move(max));
  }
  return plot;
}

Plot ThroughputOverTimePlot(const PhaseResult& phase) {
  Plot plot;
  plot.title = absl::StrCat(phase.spec.name, ": completed calls per second",
                            phase.spec.closed_loop ? "" : absl::StrFormat(" (target %.1f/s)", phase.spec.rate));
  plot.x_label = "seconds since the measured window began";
  plot.y_label = "calls/s";
  PlotSeries errors{"errors", "#d62728", "4,3"};
  bool any_error = false;
  for (int m = 0; m < kNumMethods; ++m) {
    bool any = false;
    for (const IntervalStats& i : phase.series) any |= i.ok[m] > 0;
    if (!any) continue;
    PlotSeries s{MethodName(static_cast<Method>(m)), kMethodColors[m], ""};
    double prev_t = phase.series.empty() ? 0 : phase.series.front().t_s - 1;
    for (const IntervalStats& i : phase.series) {
      const double dt = std::max(1e-3, i.t_s - prev_t);
      s.points.emplace_back(i.t_s, i.ok[m] / dt);
      prev_t = i.t_s;
    }
    plot.series.push_back(std::move(s));
  }
  double prev_t = phase.series.empty() ? 0 : phase.series.front().t_s - 1;
  for (const IntervalStats& i : phase.series) {
    uint64_t e = 0;
    for (int m = 0; m < kNumMethods; ++m) e += i.errors[m];
    any_error |= e > 0;
    errors.points.emplace_back(i.t_s, e / std::max(1e-3, i.t_s - prev_t));
    prev_t = i.t_s;
  }
  if (any_error) plot.series.push_back(std::move(errors));
  if (!phase.spec.closed_loop) plot.hlines.emplace_back(phase.spec.rate, "target");
  return plot;
}

Plot ServerMemoryPlot(const PhaseResult& phase) {
  Plot plot;
  plot.title = absl::StrCat(phase.spec.name, ": server resident memory (RSS)");
  plot.x_label = "seconds since the measured window began";
  plot.y_label = "RSS, MiB";
  PlotSeries rss{"RSS MiB", "#8c564b", ""};
  double lo = std::numeric_limits<double>::infinity();
  double hi = 0;
  for (const IntervalStats& i : phase.series) {
    if (i.server_rss_bytes == 0) continue;
    const double mib = i.server_rss_bytes / 1048576.0;
    rss.points.emplace_back(i.t_s, mib);
    lo = std::min(lo, mib);
    hi = std::max(hi, mib);
  }
  if (hi > 0) {
    // Not zero-based: a growth of a few percent must be visible. At least +-5 % around the data.
    const double mid = (lo + hi) / 2;
    plot.y_min = std::min(lo, mid * 0.95);
    plot.y_max = std::max(hi, mid * 1.05);
    if (phase.server_rss_start > 0) {
      plot.hlines.emplace_back(phase.server_rss_start / 1048576.0 * 1.05, "start +5 %");
    }
  }
  plot.series.push_back(std::move(rss));
  return plot;
}

Plot ServerCpuPlot(const PhaseResult& phase) {
  Plot plot;
  plot.title = absl::StrCat(phase.spec.name, ": server CPU and client CPU");
  plot.x_label = "seconds since the measured window began";
  plot.y_label = "CPU, % of one core";
  PlotSeries cpu{"server CPU %", "#17becf", ""};
  for (const IntervalStats& i : phase.series) {
    if (i.server_rss_bytes == 0) continue;
    cpu.points.emplace_back(i.t_s, 100 * i.server_cpu_cores);
  }
  plot.series.push_back(std::move(cpu));
  plot.hlines.emplace_back(100 * phase.client_cpu_cores, "client CPU % (phase mean)");
  return plot;
}

Plot PercentilePlot(const std::vector<const PhaseResult*>& phases, const std::string& title) {
  Plot plot;
  plot.title = title;
  plot.x_label = "percentile";
  plot.y_label = "latency, ms (log)";
  plot.log_x = true;
  plot.log_y = true;
  // x = 1 / (1 - q): 1 at the median's left end (q=0), 10 at p90, 100 at p99 ...
  plot.x_ticks = {{1, "0%"}, {2, "50%"}, {10, "90%"}, {100, "99%"}, {1000, "99.9%"}, {10000, "99.99%"},
                  {100000, "99.999%"}};
  size_t color = 0;
  double x_max = 10;
  for (const PhaseResult* phase : phases) {
    for (int m = 0; m < kNumMethods; ++m) {
      const Histogram& h = phase->methods[m].latency;
      if (h.count() == 0) continue;
      const std::string method = MethodName(static_cast<Method>(m));
      const bool named = phase->spec.name.find(method) != std::string::npos;
      PlotSeries s{named ? phase->spec.name : absl::StrCat(phase->spec.name, " ", method),
                   kPhaseColors[color++ % std::size(kPhaseColors)], ""};
      for (const Histogram::Point& p : h.PercentileDistribution(8)) {
        const double q = std::min(p.quantile, 1.0 - 1.0 / static_cast<double>(h.count()));
        const double x = 1.0 / std::max(1e-9, 1.0 - q);
        s.points.emplace_back(x, Ms(p.value));
        x_max = std::max(x_max, x);
      }
      plot.series.push_back(std::move(s));
    }
  }
  plot.x_min = 1;
  plot.x_max = x_max;
  std::vector<PlotTick> ticks;
  for (const PlotTick& t : plot.x_ticks) {
    if (t.value <= x_max * 1.01) ticks.push_back(t);
  }
  plot.x_ticks = ticks;
  return plot;
}

Plot StepPlot(const std::vector<const StepRun*>& runs) {
  Plot plot;
  plot.title = "step search: p99 latency against the target rate (green held, red failed)";
  plot.x_label = "target rate, requests/s (log)";
  plot.y_label = "p99, ms (log)";
  plot.log_x = true;
  plot.log_y = true;
  size_t color = 0;
  for (const StepRun* run : runs) {
    std::vector<const StepRecord*> sorted;
    for (const StepRecord& s : run->steps) sorted.push_back(&s);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->rate < b->rate; });
    PlotSeries s{absl::StrCat(run->name, " p99"), kPhaseColors[color++ % std::size(kPhaseColors)], ""};
    s.markers = true;
    const Method m = *ParseMethod(run->judged_method);
    for (const StepRecord* step : sorted) {
      s.points.emplace_back(step->rate, Ms(step->phase.methods[static_cast<int>(m)].latency.ValueAtQuantile(0.99)));
      s.marker_colors.push_back(step->held ? "#2ca02c" : "#d62728");
    }
    plot.series.push_back(std::move(s));
    if (plot.hlines.empty()) {
      plot.hlines.emplace_back(run->criteria.p99_target_ms, absl::StrFormat("p99 target %.3g ms", run->criteria.p99_target_ms));
    }
  }
  return plot;
}

absl::Status WriteTextFile(const std::string& path, absl::string_view text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) return absl::DataLossError(absl::StrCat("short write to ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace recd::loadtest
