#include "bench/report/svg.h"

#include <string>
#include <vector>

#include "bench/report/charts.h"
#include "bench/report/test_report.h"
#include "gtest/gtest.h"

namespace txbuf::bench {
namespace {

int Count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos;
       at = s.find(what, at + 1)) {
    ++n;
  }
  return n;
}

TEST(SvgTest, NiceTicks) {
  EXPECT_EQ(NiceTicks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(NiceTicks(0, 1, 4), (std::vector<double>{0, 0.5, 1}));
  EXPECT_EQ(NiceTicks(0, 130000, 4), (std::vector<double>{0, 50000, 100000}));
  EXPECT_EQ(NiceTicks(5, 5, 4).size(), 1u);
}

TEST(SvgTest, Escape) {
  EXPECT_EQ(EscapeXml("a<b & \"c\">'"), "a&lt;b &amp; &quot;c&quot;&gt;&#39;");
}

TEST(SvgTest, LineAndBarChartsAreWellFormed) {
  LineChart c;
  c.title = "t <1>";
  c.log_x = true;
  c.series.push_back({"copy", "#123456", {{10, 0}, {100, 0.5}, {1000, 1}}});
  c.series.push_back({"raw", "#654321", {{0, 0}, {20, 1}}});  // x=0 skipped
  std::string svg = RenderLineChart(c, 400, 300);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(Count(svg, "<svg"), Count(svg, "</svg>"));
  EXPECT_EQ(Count(svg, "<polyline"), 2);
  EXPECT_NE(svg.find("t &lt;1&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);

  BarChart b;
  b.title = "bars";
  b.bars = {{"copy", 10, "#111", "10"}, {"raw", 20, "#222", "20"}};
  svg = RenderBarChart(b, 400, 200);
  EXPECT_EQ(Count(svg, "<rect"), 3);  // background + 2 bars
  EXPECT_EQ(svg.find("nan"), std::string::npos);

  EXPECT_NE(RenderLineChart(LineChart{}, 100, 100).find("no data"),
            std::string::npos);
  EXPECT_NE(RenderBarChart(BarChart{}, 100, 100).find("no data"),
            std::string::npos);
  std::string grid = RenderGrid({svg, svg, svg}, 2, 400, 200, "grid");
  EXPECT_EQ(Count(grid, "<svg"), 4);
  EXPECT_EQ(Count(grid, "</svg>"), 4);
}

TEST(ChartsTest, CdfPoints) {
  LogHistogram h;
  h.Record(1000, 50);
  h.Record(2000, 30);
  h.Record(100000, 20);
  std::vector<std::pair<double, double>> p = CdfPoints(h);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_DOUBLE_EQ(p.front().second, 0);
  EXPECT_DOUBLE_EQ(p[1].second, 0.5);
  EXPECT_DOUBLE_EQ(p[2].second, 0.8);
  EXPECT_DOUBLE_EQ(p.back().second, 1);
  for (size_t i = 1; i < p.size(); ++i) EXPECT_GT(p[i].first, p[i - 1].first);
  EXPECT_TRUE(CdfPoints(LogHistogram()).empty());
}

TEST(ChartsTest, ReportCharts) {
  CompareReport r =
      testing::MakeTestReport({"copy", "auto", "raw", "grpc"}, 5000);
  const std::string tput = ThroughputSvg(r);
  EXPECT_EQ(Count(tput, "<svg"), 7);  // the grid + 6 panels
  EXPECT_NE(tput.find("(1.00x raw)"), std::string::npos);
  const std::string cdf = LatencyCdfSvg(r);
  EXPECT_EQ(Count(cdf, "<polyline"), 6 * 4);
  const std::string pinned = PinnedBytesSvg(r);
  EXPECT_EQ(Count(pinned, "<polyline"), 6 * 2);  // engines only
  EXPECT_NE(TargetColor("copy"), TargetColor("auto"));
}

}  // namespace
}  // namespace txbuf::bench
