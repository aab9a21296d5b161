// The candidate report of a first-in-human run: every section present with
// its numbers, every chart drawn with marks, the page well-formed XML and
// self-contained, input text escaped (a script in a candidate's name stays
// text), failed/skipped/missing steps shown as "not available: <reason>",
// and a malformed record rendered without a crash.
#include "services/report/candidate_report.h"

#include <gtest/gtest.h>

#include <regex>

#include "tests/report/report_fixtures.h"

namespace fedrx::report {
namespace {

using nlohmann::json;
using testing::ChartMarks;
using testing::CountNodes;
using testing::FirstInHumanCharts;
using testing::FirstInHumanRun;
using testing::ParseXml;
using testing::StepById;

RenderedReport Render(const json& run) {
  auto r = RenderCandidateReport(run, 1795719700000);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : RenderedReport{};
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

json SectionById(const json& sections, const std::string& id) {
  for (const json& s : sections) {
    if (s["id"] == id) return s;
  }
  return json();
}

TEST(CandidateReportTest, EverySectionAvailableWithItsNumbers) {
  const RenderedReport r = Render(FirstInHumanRun());
  EXPECT_EQ(r.title, "Candidate report: Candidate-7");
  EXPECT_EQ(r.summary, "proceed with conditions: start at 48.4 mg; monitor liver enzymes");
  for (const char* id :
       {"verdict", "toxicity", "clinical", "dose", "escalation", "recommendations", "provenance"}) {
    const json s = SectionById(r.json["sections"], id);
    ASSERT_TRUE(s.is_object()) << id;
    EXPECT_TRUE(s["available"].get<bool>()) << id << ": " << s["reason"];
    EXPECT_TRUE(Contains(r.html, std::string("<section id=\"") + id + "\">")) << id;
  }
  // Verdict and findings cite step, field and model.
  EXPECT_TRUE(Contains(r.html, "proceed with conditions</p>"));
  EXPECT_TRUE(Contains(r.html, "<td>results[0].tasks[1].probability</td><td>tox21-demo v3</td>"));
  // Toxicity: set and p-values per task, domain flags.
  EXPECT_TRUE(Contains(r.html, "<td>SR-p53</td><td class=\"num\">0.71</td><td>positive</td>"));
  EXPECT_TRUE(Contains(r.html, "{positive}  p-=0.04 p+=0.44"));
  EXPECT_TRUE(Contains(r.html, "OUT OF DOMAIN (score 0.93, p = 0.01, threshold 0.05)"));
  // Clinical: adjusted approval and the side-effect reason.
  EXPECT_TRUE(Contains(r.html, "5.1% (base) -&gt; 6.5% (adjusted)"));
  EXPECT_TRUE(
      Contains(r.html, "not available: no study trained on the SIDER organ classes is served"));
  // Dose: MRSD, and the working's formula, inputs, result and reference.
  EXPECT_TRUE(Contains(r.html, "MRSD 48.4 mg (0.806 mg/kg for a 60 kg adult)"));
  EXPECT_TRUE(Contains(r.html,
                       "<td>HED of the rat</td><td>HED = NOAEL x (Km_animal / Km_human)</td>"
                       "<td>NOAEL = 50 mg/kg; Km_rat = 6</td><td>HED = 8.06 mg/kg</td>"
                       "<td>FDA 2005 Table 1</td>"));
  // Escalation: both designs compared.
  EXPECT_TRUE(Contains(r.html,
                       "<td>boin (virtual_trial)</td><td class=\"num\">1000</td>"
                       "<td class=\"num\">52.3</td>"));
  EXPECT_TRUE(Contains(r.html, "<td>3+3 (escalation_3p3)</td>"));
  // Reverse: OR with CI, q, SEND endpoints.
  EXPECT_TRUE(Contains(r.html, "<td class=\"num\">6.83 [4.3, 10.8]</td>"));
  EXPECT_TRUE(Contains(r.html, "<td>LB</td><td>ALT</td><td>alanine aminotransferase</td>"));
  // Provenance: workflow hash, models.
  EXPECT_TRUE(Contains(r.html, "<td>Workflow SHA-256</td><td>9f2c4e0d7a1b</td>"));
  EXPECT_TRUE(Contains(r.html, "<td>clintox-demo</td><td>4</td>"));
  // JSON: the run with outputs, and the chart data.
  EXPECT_EQ(r.json["run"]["steps"][0]["output"]["panel"], "tox21");
  EXPECT_EQ(r.json["charts"]["oc-selection"]["3+3 (escalation_3p3)"][2], 41.0);
  EXPECT_EQ(r.json["charts"]["tox-tox-0"][1]["prediction_set"], "positive");
}

TEST(CandidateReportTest, PageIsWellFormedAndEveryChartHasMarks) {
  const RenderedReport r = Render(FirstInHumanRun());
  const testing::XmlPage page = ParseXml(r.html);
  ASSERT_NE(page.doc, nullptr) << page.error;
  const std::map<std::string, int> marks = ChartMarks(page.doc.get());
  std::set<std::string> names;
  for (const auto& [name, n] : marks) {
    names.insert(name);
    EXPECT_GE(n, 1) << name;
  }
  EXPECT_EQ(names, FirstInHumanCharts());
  // One bar per task; 5 dose levels x 2 designs per OC chart; one line and
  // 5 markers per virtual-trial curve; one Gantt bar per step.
  EXPECT_EQ(marks.at("tox-tox-0"), 3);
  EXPECT_EQ(marks.at("oc-selection"), 10);
  EXPECT_EQ(marks.at("virtual-trial-virtual_trial"), 2 + 10);
  EXPECT_EQ(marks.at("timeline"), 9);
  EXPECT_EQ(marks.at("phase-clinical-0"), 10);  // 4 transitions + approval, base and adjusted
  EXPECT_EQ(r.json["charts"].size(), FirstInHumanCharts().size());
}

TEST(CandidateReportTest, SelfContained) {
  const RenderedReport r = Render(FirstInHumanRun());
  EXPECT_FALSE(Contains(r.html, "http://"));
  EXPECT_FALSE(Contains(r.html, "https://"));
  EXPECT_FALSE(Contains(r.html, " src="));
  EXPECT_FALSE(Contains(r.html, " href="));
  EXPECT_FALSE(Contains(r.html, "<script"));
  EXPECT_FALSE(std::regex_search(r.html, std::regex("[^A-Za-z](nan|inf)[^A-Za-z]")));
}

TEST(CandidateReportTest, EscapesInputText) {
  const std::string evil = "<script>alert(1)</script>&\"";
  json run = FirstInHumanRun();
  run["input"]["name"] = evil;
  StepById(run, "tox")["output"]["results"][0]["tasks"][0]["task"] = evil;
  StepById(run, "dose")["output"]["working"]["steps"][0]["formula"] = evil;
  StepById(run, "reverse")["output"]["organ_classes"][0]["endpoints"][0]["note"] = evil;
  run["steps"][1]["id"] = evil;  // lands in chart names and the provenance table
  const RenderedReport r = Render(run);
  EXPECT_FALSE(Contains(r.html, "<script>"));
  EXPECT_FALSE(Contains(r.html, "alert(1)</script>"));
  EXPECT_TRUE(Contains(r.html, "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;"));
  EXPECT_TRUE(Contains(r.html,
                       "<title>Candidate report: &lt;script&gt;alert(1)&lt;/script&gt;"
                       "&amp;&quot;</title>"));
  const testing::XmlPage page = ParseXml(r.html);
  ASSERT_NE(page.doc, nullptr) << page.error;
  EXPECT_EQ(CountNodes(page.doc.get(), "//script"), 0);
  // The chart names stay attribute-safe.
  for (const auto& [name, n] : ChartMarks(page.doc.get())) {
    EXPECT_TRUE(std::regex_match(name, std::regex("[A-Za-z0-9_-]+"))) << name;
  }
  // Invalid UTF-8 and control characters do not break the page either.
  run["input"]["name"] = std::string("bad \x01 byte");
  run["output"]["summary"] = "ok";
  const RenderedReport r2 = Render(run);
  EXPECT_NE(ParseXml(r2.html).doc, nullptr) << ParseXml(r2.html).error;
}

TEST(CandidateReportTest, FailedSkippedAndMissingStepsAreUnavailable) {
  json run = FirstInHumanRun();
  json& tox = StepById(run, "tox");
  tox["state"] = "failed";
  tox.erase("output");
  tox["error"] = {{"code", "unavailable"}, {"message", "tox service down"}, {"where", "tox"}};
  json& reverse = StepById(run, "reverse");
  reverse["state"] = "skipped";
  reverse.erase("output");
  reverse["skip_reason"] = "condition false: len(steps.flags.organ_classes) > 0";
  StepById(run, "clinical").erase("output");  // succeeded but not stored
  json& dose = StepById(run, "dose");
  dose["state"] = "running";
  run["state"] = "partial";
  run.erase("output");
  const RenderedReport r = Render(run);
  EXPECT_TRUE(Contains(r.html,
                       "not available: step tox failed (unavailable): tox service down "
                       "[tox]"));
  EXPECT_TRUE(Contains(r.html,
                       "not available: step reverse was skipped: condition false: "
                       "len(steps.flags.organ_classes) &gt; 0"));
  EXPECT_TRUE(
      Contains(r.html, "not available: step clinical succeeded but its output is not stored"));
  EXPECT_TRUE(Contains(r.html, "not available: step dose is running"));
  EXPECT_TRUE(Contains(r.html, "not available: the run has no verdict (state partial)"));
  const json& sections = r.json["sections"];
  EXPECT_FALSE(SectionById(sections, "verdict")["available"].get<bool>());
  EXPECT_FALSE(SectionById(sections, "clinical")["available"].get<bool>());
  EXPECT_FALSE(SectionById(sections, "dose")["available"].get<bool>());
  EXPECT_FALSE(SectionById(sections, "recommendations")["available"].get<bool>());
  // The toxcast panel still shows, so the section is partly available: its
  // first unavailable reason is recorded.
  EXPECT_EQ(SectionById(sections, "toxicity")["reason"],
            "step tox failed (unavailable): tox service down [tox]");
  EXPECT_TRUE(SectionById(sections, "escalation")["available"].get<bool>());
  const testing::XmlPage page = ParseXml(r.html);
  ASSERT_NE(page.doc, nullptr) << page.error;
  const auto marks = ChartMarks(page.doc.get());
  EXPECT_EQ(marks.count("tox-tox-0"), 0u);
  EXPECT_EQ(marks.count("tox-toxcast-0"), 1u);
  EXPECT_EQ(marks.count("oc-selection"), 1u);
  // A run without those steps at all says the workflow has none.
  json bare = {{"run_id", "run-1"}, {"state", "running"}, {"steps", json::array()}};
  const RenderedReport b = Render(bare);
  EXPECT_TRUE(Contains(b.html, "not available: the workflow has no toxicity step"));
  EXPECT_TRUE(Contains(b.html, "not available: the run record lists no step"));
  EXPECT_NE(ParseXml(b.html).doc, nullptr);
}

// The lead-triage workflow's output (a ranking of several structures) and
// a panel over several structures: one chart per structure, a ranking chart.
TEST(CandidateReportTest, RankingOfSeveralStructures) {
  json run = FirstInHumanRun();
  run["workflow"] = "lead-triage";
  run["input"] = {{"structures", {"CCO", "c1ccccc1O"}}, {"names", {"ethanol", "phenol"}}};
  json& tox = StepById(run, "tox");
  json second = tox["output"]["results"][0];
  second["input"] = "c1ccccc1O";
  second["domain"]["in_domain"] = false;
  tox["output"]["results"].push_back(second);
  run["output"] = {{"ranking",
                    {{{"rank", 1},
                      {"name", "ethanol"},
                      {"structure", "CCO"},
                      {"score", 0.2},
                      {"ct_tox", 0.1},
                      {"approval_probability", 0.9},
                      {"flags", 0},
                      {"organ_classes", json::array()},
                      {"in_domain", true},
                      {"reasons", {"low risk"}}},
                     {{"rank", 2},
                      {"structure", "c1ccccc1O"},
                      {"score", 0.7},
                      {"ct_tox", 0.5},
                      {"flags", 2},
                      {"organ_classes", {"Hepatobiliary disorders"}},
                      {"in_domain", false},
                      {"reasons", {"2 tox flags", "out of domain"}}}}},
                   {"rule", "score = CT_TOX + 0.1 x flags"},
                   {"summary", "first: ethanol (score 0.2) of 2 ranked; 1 out of domain"},
                   {"missing", json::array()}};
  const RenderedReport r = Render(run);
  EXPECT_EQ(r.title, "Candidate report: ethanol and 1 more");
  EXPECT_EQ(r.summary, "first: ethanol (score 0.2) of 2 ranked; 1 out of domain");
  EXPECT_TRUE(Contains(r.html,
                       "<td class=\"num\">2</td><td>c1ccccc1O</td><td class=\"num\">0.7"
                       "</td>"));
  const testing::XmlPage page = ParseXml(r.html);
  ASSERT_NE(page.doc, nullptr) << page.error;
  const auto marks = ChartMarks(page.doc.get());
  EXPECT_EQ(marks.at("ranking"), 2);
  EXPECT_EQ(marks.at("tox-tox-0"), 3);
  EXPECT_EQ(marks.at("tox-tox-1"), 3);
  EXPECT_TRUE(SectionById(r.json["sections"], "verdict")["available"].get<bool>());
}

TEST(CandidateReportTest, MalformedRecordRendersWithoutCrash) {
  // Wrong types everywhere: rendered as absent.
  json run = FirstInHumanRun();
  StepById(run, "tox")["output"]["results"] = "not an array";
  StepById(run, "clinical")["output"]["success"] = json::array({42, "x"});
  StepById(run, "dose")["output"]["heds"] = json::array({json::array(), 7});
  StepById(run, "virtual_trial")["output"]["p_dlt"] = json::array({"a", nullptr});
  StepById(run, "escalation_3p3")["output"] = json::array();
  run["output"]["findings"] = json::array({1, json::object()});
  run["created_ms"] = "yesterday";
  run["steps"].push_back(17);
  const RenderedReport r = Render(run);
  const testing::XmlPage page = ParseXml(r.html);
  ASSERT_NE(page.doc, nullptr) << page.error;
  EXPECT_FALSE(std::regex_search(r.html, std::regex("[^A-Za-z](nan|inf)[^A-Za-z]")));
  EXPECT_TRUE(Contains(r.html,
                       "not available: step escalation_3p3 succeeded but its output is "
                       "not stored"));
  // A record that is not an object is refused.
  auto bad = RenderCandidateReport(json::array(), 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().where(), "run");
}

}  // namespace
}  // namespace fedrx::report
