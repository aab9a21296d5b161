// The building blocks: escaping (markup characters, invalid UTF-8, control
// characters), numbers, tick placement, and charts that never emit NaN
// coordinates and always parse as XML.
#include <gtest/gtest.h>

#include "services/report/html.h"
#include "services/report/svg.h"
#include "tests/report/report_fixtures.h"

namespace fedrx::report {
namespace {

TEST(HtmlTest, EscapesMarkupAndRepairsText) {
  EXPECT_EQ(Escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  EXPECT_EQ(Escape("caf\xC3\xA9"), "caf\xC3\xA9");  // valid UTF-8 kept
  EXPECT_EQ(Escape("a\xFF"
                   "b"),
            "a\xEF\xBF\xBD"
            "b");  // invalid byte replaced
  EXPECT_EQ(Escape("a\xC0\xAF"
                   "b"),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");                                             // overlong form
  EXPECT_EQ(Escape(std::string("a\0b\x01\tc", 6)), "ab\tc");  // controls dropped
}

TEST(HtmlTest, Numbers) {
  EXPECT_EQ(Num(0.123456), "0.123");
  EXPECT_EQ(Num(48.4, 4), "48.4");
  EXPECT_EQ(Num(std::numeric_limits<double>::quiet_NaN()), "-");
  EXPECT_EQ(Pct(0.051), "5.1%");
}

TEST(HtmlTest, WriterClosesWhatItOpens) {
  HtmlWriter w;
  w.Open("div", {{"title", "a\"b"}}).Open("p").Text("x<y");
  EXPECT_EQ(w.Finish(), "<div title=\"a&quot;b\"><p>x&lt;y</p></div>");
}

TEST(SvgTest, NiceTicks) {
  const std::vector<double> unit = svg::NiceTicks(0, 1);
  ASSERT_EQ(unit.size(), 6u);
  for (std::size_t i = 0; i < unit.size(); ++i) EXPECT_NEAR(unit[i], 0.2 * i, 1e-12);
  const std::vector<double> t = svg::NiceTicks(0, 2904);
  EXPECT_EQ(t.front(), 0);
  EXPECT_EQ(t[1], 1000);
  EXPECT_GE(t.back(), 2904);
  EXPECT_TRUE(svg::NiceTicks(std::numeric_limits<double>::infinity(), 1).empty());
}

TEST(SvgTest, ChartsWithNonFiniteValuesStayWellFormed) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  svg::ChartOptions o;
  o.name = "c";
  o.title = "t <&>";
  std::string page = "<div>";
  page += svg::HorizontalBars(o, {{"a", nan}, {"b", 0.5, nan, 2}, {"c", 3, 1, 4}}, nan);
  page += svg::GroupedBars(o, {"x", "y"}, {{"s", {nan, 1}}});
  page += svg::LineChart(o, {{"l", {{0, nan}, {1, 2}, {nan, 3}}}});
  page += svg::Gantt(o, {{"s", 0, 0, "failed"}, {"t", 1, nan, "succeeded"}});
  page += svg::LineChart(o, {});
  page += "</div>";
  EXPECT_EQ(page.find("nan"), std::string::npos);
  const testing::XmlPage xml = testing::ParseXml(page);
  ASSERT_NE(xml.doc, nullptr) << xml.error;
  EXPECT_EQ(testing::CountNodes(xml.doc.get(), "//svg[@data-chart='c']"), 5);
  // Bars: b and c drawn (a is NaN); c has a whisker of three lines.
  EXPECT_EQ(testing::CountNodes(xml.doc.get(), "(//svg)[1]//rect"), 2);
  EXPECT_EQ(testing::CountNodes(xml.doc.get(), "(//svg)[1]//line[@class='whisker']"), 3);
  // Line: one finite point.
  EXPECT_EQ(testing::CountNodes(xml.doc.get(), "(//svg)[3]//circle"), 1);
}

}  // namespace
}  // namespace fedrx::report
