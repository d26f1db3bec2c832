#include "loadtest/report.h"

#include <string>

#include "gtest/gtest.h"
#include "loadtest/svg_plot.h"

namespace recd::loadtest {
namespace {

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

TEST(JsonWriterTest, NestedStructure) {
  JsonWriter json;
  json.BeginObject();
  json.Key("a").Int(-3);
  json.Key("b").BeginArray().Number(1.5).Number(2).String("x\"y\n").Bool(true).EndArray();
  json.Key("c").BeginObject().EndObject();
  json.Key("d").BeginArray().EndArray();
  json.Key("nan").Number(std::numeric_limits<double>::quiet_NaN());
  json.Key("big").UInt(18446744073709551615ull);
  json.EndObject();
  EXPECT_EQ(json.str(),
            "{\n  \"a\": -3,\n  \"b\": [\n    1.5,\n    2,\n    \"x\\\"y\\n\",\n    true\n  ],\n"
            "  \"c\": {},\n  \"d\": [],\n  \"nan\": null,\n  \"big\": 18446744073709551615\n}");
}

TEST(JsonWriterTest, EscapesControlCharacters) {
  EXPECT_EQ(JsonEscape(std::string("a\\b\x01", 4)), "a\\\\b\\u0001");
}

PhaseResult SamplePhase() {
  PhaseResult p;
  p.spec.name = "open 100/s";
  p.spec.rate = 100;
  p.mix = "recommend:0.9,log:0.1";
  p.measured_s = 10;
  MethodStats& rec = p.methods[static_cast<int>(Method::kRecommend)];
  for (int i = 1; i <= 900; ++i) rec.latency.Record(i * 1000);
  rec.ok = 900;
  rec.units = 900;
  MethodStats& log = p.methods[static_cast<int>(Method::kLogInteractions)];
  log.latency.Record(2000000);
  log.ok = 99;
  log.units = 9900;
  log.errors[4] = 1;
  for (int t = -1; t < 10; ++t) {
    IntervalStats i;
    i.t_s = t + 1;
    i.ok[0] = 90;
    i.p50_ns[0] = 450000;
    i.p99_ns[0] = 891000;
    i.max_ns[0] = 900000;
    i.server_rss_bytes = 100 << 20;
    p.series.push_back(i);
  }
  p.server_rss_start = 100 << 20;
  p.server_rss_end = 101 << 20;
  p.server_rss_max = 101 << 20;
  return p;
}

TEST(ReportTest, TableHasOneRowPerMethodAndTheInteractionRate) {
  const PhaseResult p = SamplePhase();
  const std::string table = FormatTable({&p});
  EXPECT_NE(table.find("recommend"), std::string::npos);
  EXPECT_NE(table.find("interactions acknowledged: 990.0/s"), std::string::npos);
  EXPECT_NE(table.find("DEADLINE_EXCEEDED=1"), std::string::npos);
  EXPECT_EQ(table.find("similar"), std::string::npos);
  EXPECT_NE(table.find("90.0"), std::string::npos);  // recommend's target share of 100/s
}

TEST(ReportTest, PhaseJsonCarriesPercentilesAndErrors) {
  const PhaseResult p = SamplePhase();
  JsonWriter json;
  WritePhaseJson(json, p);
  const std::string s = json.str();
  EXPECT_NE(s.find("\"p99.9\""), std::string::npos);
  EXPECT_NE(s.find("\"DEADLINE_EXCEEDED\": 1"), std::string::npos);
  EXPECT_NE(s.find("\"units_per_s\": 990"), std::string::npos);
  EXPECT_NE(s.find("\"server_rss_growth\": 0.01"), std::string::npos);
  EXPECT_NE(s.find("\"series\""), std::string::npos);
  EXPECT_EQ(Count(s, "{"), Count(s, "}"));
  EXPECT_EQ(Count(s, "["), Count(s, "]"));
}

TEST(ReportTest, ChartsRender) {
  const PhaseResult p = SamplePhase();
  const std::string svg = RenderSvg({LatencyOverTimePlot(p), ThroughputOverTimePlot(p), ServerMemoryPlot(p),
                                     ServerCpuPlot(p), PercentilePlot({&p}, "a <title> & more")});
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("a &lt;title&gt; &amp; more"), std::string::npos);
  // recommend p50/p99/max + throughput (only recommend has per-second traffic) + RSS + CPU +
  // 2 percentile lines.
  EXPECT_EQ(Count(svg, "<polyline"), 3 + 1 + 1 + 1 + 2);
  EXPECT_NE(svg.find("start +5 %"), std::string::npos);
  EXPECT_NE(svg.find("99%"), std::string::npos);
}

TEST(ReportTest, StepPlotMarksEachStep) {
  StepRun run;
  run.name = "recommend";
  run.judged_method = "recommend";
  for (double rate : {100.0, 200.0, 400.0}) {
    StepRecord s;
    s.rate = rate;
    s.held = rate < 400;
    s.phase = SamplePhase();
    run.steps.push_back(s);
  }
  const std::string svg = RenderSvg({StepPlot({&run})});
  EXPECT_EQ(Count(svg, "<circle"), 3);
  EXPECT_EQ(Count(svg, "#d62728\"/>"), 1);  // one red (failed) marker
  const std::string text = FormatSteps(run);
  EXPECT_NE(text.find("FAILED"), std::string::npos);
}

TEST(SvgPlotTest, NiceTicks) {
  EXPECT_EQ(NiceTicks(0, 10, false, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(NiceTicks(0.1, 100, true), (std::vector<double>{0.1, 1, 10, 100}));
  EXPECT_EQ(NiceTicks(1, 10, true), (std::vector<double>{1, 2, 5, 10}));
}

}  // namespace
}  // namespace recd::loadtest
