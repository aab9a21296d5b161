// The study report: metric curves, sites per round with the dropout,
// privacy budget spent, aggregation strategy; well-formed and escaped.
#include "services/report/study_report.h"

#include <gtest/gtest.h>

#include "tests/report/report_fixtures.h"

namespace fedrx::report {
namespace {

using testing::ChartMarks;
using testing::ParseXml;
using testing::ThreeRoundStudy;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(StudyReportTest, DropoutsAreSelectedSitesThatDidNotContribute) {
  StudyRoundView r;
  r.state = "closed";
  r.selected = {"a", "b", "c"};
  r.contributed = {"c", "a"};
  EXPECT_EQ(Dropouts(r), std::vector<std::string>{"b"});
  r.state = "training";  // still under way: nobody has dropped out yet
  EXPECT_TRUE(Dropouts(r).empty());
}

TEST(StudyReportTest, ChartsTablesAndSummary) {
  const RenderedReport r = RenderStudyReport(ThreeRoundStudy(), 1795719700000);
  EXPECT_EQ(r.title, "Study report: Tox21 federated");
  EXPECT_EQ(r.summary,
            "tox21-demo: completed, 3 of 3 rounds closed, validation mean ROC-AUC 0.72, privacy "
            "epsilon spent 4.5, 1 dropouts");
  const testing::XmlPage page = ParseXml(r.html);
  ASSERT_NE(page.doc, nullptr) << page.error;
  const auto marks = ChartMarks(page.doc.get());
  ASSERT_EQ(marks.size(), 4u);
  EXPECT_EQ(marks.at("metric-curves"), 2 + 6);  // 2 lines, 3 markers each
  EXPECT_EQ(marks.at("task-roc"), 2 + 6);
  EXPECT_EQ(marks.at("privacy-budget"), 2 + 5);  // spent (3 markers) and budget (2)
  // selected, contributed, dropped out per round (a zero drawn as a 1px baseline bar)
  EXPECT_EQ(marks.at("sites-per-round"), 9);
  EXPECT_TRUE(Contains(r.html,
                       "<td class=\"num\">2</td><td>closed</td><td class=\"num\">1</td>"
                       "<td>site-a, site-b, site-c</td><td>site-a, site-c</td>"
                       "<td>site-b</td>"));
  EXPECT_TRUE(Contains(r.html, "<td>Privacy budget spent</td><td>epsilon 4.5 (delta 1e-05)</td>"));
  EXPECT_TRUE(Contains(r.html, "<td>Aggregation</td><td>fedavg</td>"));
  EXPECT_EQ(r.json["rounds"][1]["dropouts"], nlohmann::json::array({"site-b"}));
  EXPECT_EQ(r.json["study"]["privacy_epsilon_spent"], 4.5);
  EXPECT_EQ(r.json["charts"]["sites-per-round"][1]["contributed"], 2);
}

TEST(StudyReportTest, NoRoundsYetAndEscapedNames) {
  StudyView v;
  v.spec.study_id = "s1";
  v.spec.name = "<b>x</b> & \"y\"";
  v.state = "running";
  const RenderedReport r = RenderStudyReport(v, 0);
  EXPECT_TRUE(Contains(r.html, "&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;"));
  EXPECT_TRUE(Contains(r.html, "not available: no round has validation metrics yet"));
  EXPECT_TRUE(Contains(r.html, "not available: no round has started"));
  const testing::XmlPage page = ParseXml(r.html);
  ASSERT_NE(page.doc, nullptr) << page.error;
  EXPECT_TRUE(ChartMarks(page.doc.get()).empty());
}

}  // namespace
}  // namespace fedrx::report
