// `fedrx assess`, `fedrx workflow` and `fedrx report` against a scripted
// gateway: the candidate file read as YAML or JSON (types, nesting, the line
// of an error), the NOAEL of an ingested SEND study proposed locally with only
// species, dose and source sent, the progress lines a sequence of run states
// gives (appended, or redrawn in place on a terminal), the report files
// written, and the exit codes (0 for a verdict, 1 for a failed or timed-out
// run, 2 for usage errors).
#include "services/cli/assess_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "services/cli/ingest_command.h"
#include "tests/cli/scripted_gateway.h"

namespace fedrx::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

codec::StepState Step(const std::string& id, const std::string& state, std::uint32_t attempts = 0,
                      std::int64_t started = 0, std::int64_t finished = 0) {
  codec::StepState s;
  s.step = id;
  s.service = id == "levels" ? "local" : id;
  s.call = "Call";
  s.state = state;
  s.attempts = attempts;
  s.started_ms = started;
  s.finished_ms = finished;
  return s;
}

constexpr std::int64_t kT0 = 1'700'000'000'000;

// --- YAML and JSON candidates ----------------------------------------------------

TEST(YamlToJsonTest, ScalarsKeepTheirTypesAndQuotedTextStaysText) {
  auto j = YamlToJson(
      "name: aspirin\n"
      "count: 3\n"
      "negative: -12\n"
      "ratio: 0.25\n"
      "big: 1e3\n"
      "flag: true\n"
      "off: False\n"
      "nothing: ~\n"
      "empty:\n"
      "quoted_number: \"42\"\n"
      "quoted_bool: 'true'\n"
      "version: \"1\"\n"
      "smiles: CC(=O)Oc1ccccc1C(=O)O\n",
      "c.yaml");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["name"], "aspirin");
  EXPECT_TRUE((*j)["count"].is_number_integer());
  EXPECT_EQ((*j)["count"], 3);
  EXPECT_EQ((*j)["negative"], -12);
  EXPECT_TRUE((*j)["ratio"].is_number_float());
  EXPECT_DOUBLE_EQ((*j)["ratio"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ((*j)["big"].get<double>(), 1000.0);
  EXPECT_EQ((*j)["flag"], true);
  EXPECT_EQ((*j)["off"], false);
  EXPECT_TRUE((*j)["nothing"].is_null());
  EXPECT_TRUE((*j)["empty"].is_null());
  EXPECT_EQ((*j)["quoted_number"], "42");
  EXPECT_EQ((*j)["quoted_bool"], "true");
  EXPECT_EQ((*j)["version"], "1");
  EXPECT_EQ((*j)["smiles"], "CC(=O)Oc1ccccc1C(=O)O");
}

TEST(YamlToJsonTest, NestedMappingsAndSequences) {
  auto j = YamlToJson(
      "structure: CCO\n"
      "noaels:\n"
      "  - {species: rat, noael_mg_per_kg: 50}\n"
      "  - species: dog\n"
      "    noael_mg_per_kg: 10.5\n"
      "    body_weight_kg: 12\n"
      "human_pk:\n"
      "  cl_l_per_h: 5\n"
      "  tags: [a, 2, false]\n",
      "c.yaml");
  ASSERT_TRUE(j.ok()) << j.status();
  const json expected = json::parse(R"({
    "structure": "CCO",
    "noaels": [{"species": "rat", "noael_mg_per_kg": 50},
               {"species": "dog", "noael_mg_per_kg": 10.5, "body_weight_kg": 12}],
    "human_pk": {"cl_l_per_h": 5, "tags": ["a", 2, false]}})");
  EXPECT_EQ(*j, expected);
}

TEST(YamlToJsonTest, ErrorsNameTheFileAndLine) {
  auto dup = YamlToJson("structure: CCO\nnoaels: []\nstructure: CCN\n", "c.yaml");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(dup.status().where(), "c.yaml:3");
  EXPECT_THAT(dup.status().message(), HasSubstr("duplicate key 'structure'"));

  auto syntax = YamlToJson("structure: CCO\nnoaels:\n  - [rat, 50\n", "c.yaml");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(syntax.status().where(), HasSubstr("c.yaml:"));
  EXPECT_THAT(syntax.status().message(), HasSubstr("not valid YAML"));

  auto inf = YamlToJson("a: 1\nb:\n  c: .inf\n", "c.yaml");
  ASSERT_FALSE(inf.ok());
  EXPECT_EQ(inf.status().where(), "c.yaml:3");
  EXPECT_THAT(inf.status().message(), HasSubstr("finite"));

  auto key = YamlToJson("? [a, b]\n: 1\n", "c.yaml");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().where(), "c.yaml:1");
}

class CandidateFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  fedrx::testing::TempDir dir_;
};

TEST_F(CandidateFileTest, JsonAndYamlGiveTheSameCandidate) {
  auto y = ReadCandidate(
      Write("c.yaml", "structure: CCO\nnoaels: [{species: rat, noael_mg_per_kg: 50}]\n"));
  auto j = ReadCandidate(Write(
      "c.json", R"({"structure": "CCO", "noaels": [{"species": "rat", "noael_mg_per_kg": 50}]})"));
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*y, *j);
}

TEST_F(CandidateFileTest, BadJsonNamesItsLineAndANonMappingIsRefused) {
  const std::string bad = Write("c.json", "{\n  \"structure\": \"CCO\",\n  \"noaels\": [1,,]\n}\n");
  auto j = ReadCandidate(bad);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(j.status().where(), bad + ":3");

  const std::string list = Write("l.yaml", "- CCO\n- CCN\n");
  auto l = ReadCandidate(list);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().where(), list + ":1");
  EXPECT_THAT(l.status().message(), HasSubstr("mapping"));

  auto missing = ReadCandidate(dir_.path() + "/none.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
}

// --- progress ---------------------------------------------------------------------

TEST(StepLineTest, SecondsStateAttemptsAndReasons) {
  EXPECT_EQ(StepLine(Step("tox", "succeeded", 1, kT0 + 100, kT0 + 2100), kT0),
            "[  2.1s] tox            succeeded  1 attempt");
  EXPECT_EQ(StepLine(Step("dose", "running", 2, kT0 + 12345), kT0),
            "[ 12.3s] dose           running    2 attempts");
  EXPECT_EQ(StepLine(Step("reverse", "pending"), kT0), "[      ] reverse        pending");
  codec::StepState failed = Step("trial", "failed", 3, kT0, kT0 + 900);
  failed.error_code = "unavailable";
  failed.error = "trial did not answer";
  failed.error_where = "trial";
  EXPECT_EQ(StepLine(failed, kT0),
            "[  0.9s] trial          failed     3 attempts  unavailable: trial did not answer (at "
            "trial)");
  codec::StepState skipped = Step("reverse", "skipped", 0, 0, kT0 + 3000);
  skipped.error = "condition false: len(steps.flags.organ_classes) > 0";
  EXPECT_EQ(
      StepLine(skipped, kT0),
      "[  3.0s] reverse        skipped    condition false: len(steps.flags.organ_classes) > 0");
}

codec::WorkflowRun RunWith(std::vector<codec::StepState> steps, const std::string& state) {
  codec::WorkflowRun r;
  r.run_id = "run-1";
  r.workflow = "first-in-human";
  r.workflow_version = "1";
  r.state = state;
  r.created_ms = kT0;
  r.steps = std::move(steps);
  return r;
}

TEST(ProgressDisplayTest, AppendsALineOnlyWhenAStepChanges) {
  ProgressDisplay d(/*tty=*/false);
  std::ostringstream out;
  d.Show(RunWith({Step("tox", "pending"), Step("dose", "pending")}, "running"), out);
  EXPECT_EQ(out.str(), "");  // nothing has happened yet
  d.Show(RunWith({Step("tox", "running", 1, kT0 + 100), Step("dose", "pending")}, "running"), out);
  d.Show(RunWith({Step("tox", "running", 1, kT0 + 100), Step("dose", "pending")}, "running"), out);
  d.Show(RunWith({Step("tox", "running", 2, kT0 + 100), Step("dose", "running", 1, kT0 + 200)},
                 "running"),
         out);
  d.Show(RunWith({Step("tox", "succeeded", 2, kT0 + 100, kT0 + 2100),
                  Step("dose", "running", 1, kT0 + 200)},
                 "running"),
         out);
  EXPECT_EQ(out.str(),
            "[  0.1s] tox            running    1 attempt\n"
            "[  0.1s] tox            running    2 attempts\n"
            "[  0.2s] dose           running    1 attempt\n"
            "[  2.1s] tox            succeeded  2 attempts\n");
}

TEST(ProgressDisplayTest, OnATerminalRedrawsEveryStepInPlace) {
  ProgressDisplay d(/*tty=*/true);
  std::ostringstream first, second;
  d.Show(RunWith({Step("tox", "running", 1, kT0 + 100), Step("dose", "pending")}, "running"),
         first);
  EXPECT_EQ(first.str(),
            "\r\x1b[2K[  0.1s] tox            running    1 attempt\n"
            "\r\x1b[2K[      ] dose           pending\n");
  d.Show(RunWith({Step("tox", "succeeded", 1, kT0 + 100, kT0 + 1500),
                  Step("dose", "running", 1, kT0 + 1200)},
                 "running"),
         second);
  // Two lines up, then both lines again.
  EXPECT_EQ(second.str(),
            "\x1b[2A"
            "\r\x1b[2K[  1.5s] tox            succeeded  1 attempt\n"
            "\r\x1b[2K[  1.2s] dose           running    1 attempt\n");
}

// --- the commands against a scripted gateway ---------------------------------------

class AssessCommandTest : public testing::ScriptedGatewayTest {
 protected:
  AssessCommandTest() {
    answer = [this](const codec::Body& b) -> core::Result<codec::Body> {
      if (const auto* r = std::get_if<codec::RunWorkflow>(&b)) {
        codec::WorkflowRun run = runs_.front();
        if (!r->run_id.empty()) run.run_id = r->run_id;
        return codec::Body(run);
      }
      if (std::get_if<codec::GetWorkflowRun>(&b) != nullptr) {
        if (runs_.size() > 1) runs_.erase(runs_.begin());
        return codec::Body(runs_.front());
      }
      if (const auto* g = std::get_if<codec::GetReport>(&b)) {
        codec::ReportDocument d;
        d.info.report_id = g->report_id;
        d.format = g->format;
        d.content = g->format == "html" ? "<!DOCTYPE html><p>report " + g->report_id + "</p>"
                                        : R"({"report_id": ")" + g->report_id + R"("})";
        return codec::Body(d);
      }
      return core::Internal("no answer scripted", "test");
    };
  }

  // The run's states as the orchestrator reports them, one per question.
  void Script(const std::string& final_state) {
    codec::WorkflowRun start =
        RunWith({Step("tox", "running", 1, kT0 + 50), Step("dose", "running", 1, kT0 + 60),
                 Step("levels", "pending")},
                "running");
    codec::WorkflowRun middle =
        RunWith({Step("tox", "succeeded", 1, kT0 + 50, kT0 + 2100),
                 Step("dose", "running", 1, kT0 + 60), Step("levels", "pending")},
                "running");
    codec::StepState dose = Step("dose", "succeeded", 1, kT0 + 60, kT0 + 2500);
    codec::StepState levels = Step("levels", "succeeded", 1, kT0 + 2500, kT0 + 2600);
    if (final_state == "partial") {
      dose.state = "failed";
      dose.error_code = "invalid_argument";
      dose.error = "unknown species 'unicorn'";
      dose.error_where = "TranslateDose.noaels[0].species";
      levels.state = "skipped";
      levels.error = "needs dose, which failed";
    }
    if (final_state == "failed") {
      dose.state = "failed";
      dose.error_code = "unavailable";
      dose.error = "no answer";
    }
    codec::WorkflowRun end =
        RunWith({Step("tox", "succeeded", 1, kT0 + 50, kT0 + 2100), dose, levels}, final_state);
    end.finished_ms = kT0 + 2700;
    end.summary = final_state == "failed" ? "no verdict: every step failed"
                                          : "proceed_with_conditions: MRSD 1.6 mg";
    codec::WorkflowRun reported = end;
    reported.report_id = "rep-1";
    runs_ = {start, middle, end, reported};
  }

  std::string Candidate() {
    const std::string path = Path("candidate.yaml");
    std::ofstream(path) << "structure: CC(=O)Oc1ccccc1C(=O)O\n"
                           "therapeutic_area: pain\n"
                           "noaels:\n"
                           "  - {species: rat, noael_mg_per_kg: 50}\n";
    return path;
  }

  std::vector<codec::WorkflowRun> runs_;
};

TEST_F(AssessCommandTest, RunsShowsProgressPrintsTheVerdictAndWritesTheReport) {
  Script("succeeded");
  const std::string out_dir = Path("reports");
  ASSERT_EQ(Run({"assess", Candidate(), "--out", out_dir, "--poll-ms", "0", "--run-id", "run-7"}),
            0)
      << err_.str();
  const auto& r = std::get<codec::RunWorkflow>(requests_.at(0));
  EXPECT_EQ(r.workflow, "first-in-human");
  EXPECT_EQ(r.run_id, "run-7");
  EXPECT_EQ(json::parse(r.input_json),
            json::parse(R"({"structure": "CC(=O)Oc1ccccc1C(=O)O", "therapeutic_area": "pain",
                            "noaels": [{"species": "rat", "noael_mg_per_kg": 50}]})"));
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("run run-7: workflow first-in-human version 1, 3 steps\n"));
  EXPECT_THAT(out, HasSubstr("[  0.1s] tox            running    1 attempt\n"
                             "[  0.1s] dose           running    1 attempt\n"
                             "[  2.1s] tox            succeeded  1 attempt\n"));
  EXPECT_THAT(out, HasSubstr("[  2.5s] dose           succeeded  1 attempt\n"
                             "[  2.6s] levels         succeeded  1 attempt\n"));
  EXPECT_THAT(out, HasSubstr("proceed_with_conditions: MRSD 1.6 mg\n"
                             "run run-1: succeeded (3 of 3 steps succeeded, took 2.7 s)\n"));
  // The report of the run's report id, both formats, under the run's id.
  EXPECT_EQ(ReadBytes(out_dir + "/run-1.html"), "<!DOCTYPE html><p>report rep-1</p>");
  EXPECT_EQ(json::parse(ReadBytes(out_dir + "/run-1.json"))["report_id"], "rep-1");
  EXPECT_THAT(out, HasSubstr(out_dir + "/run-1.html\n"));
  EXPECT_THAT(out, HasSubstr(out_dir + "/run-1.json\n"));
  std::vector<std::string> formats;
  for (const codec::Body& b : requests_) {
    if (const auto* g = std::get_if<codec::GetReport>(&b)) {
      EXPECT_EQ(g->report_id, "rep-1");
      formats.push_back(g->format);
    }
  }
  EXPECT_EQ(formats, (std::vector<std::string>{"html", "json"}));
}

TEST_F(AssessCommandTest, APartialRunIsAVerdictAndShowsTheFailedStepsReason) {
  Script("partial");
  ASSERT_EQ(Run({"assess", Candidate(), "--out", Path("r"), "--poll-ms", "0"}), 0) << err_.str();
  EXPECT_THAT(out_.str(),
              HasSubstr("dose           failed     1 attempt  invalid_argument: unknown species "
                        "'unicorn' (at TranslateDose.noaels[0].species)\n"));
  EXPECT_THAT(out_.str(),
              HasSubstr("levels         skipped    1 attempt  needs dose, which failed\n"));
  EXPECT_THAT(out_.str(), HasSubstr("run run-1: partial (1 of 3 steps succeeded"));
  EXPECT_TRUE(fs::exists(Path("r/run-1.html")));
}

TEST_F(AssessCommandTest, AFailedRunExitsOne) {
  Script("failed");
  EXPECT_EQ(Run({"assess", Candidate(), "--out", Path("r"), "--poll-ms", "0"}), 1);
  EXPECT_THAT(out_.str(), HasSubstr("no verdict: every step failed\nrun run-1: failed"));
}

TEST_F(AssessCommandTest, ARunStillRunningAtTheTimeoutExitsOne) {
  Script("succeeded");
  runs_.resize(1);  // never ends
  EXPECT_EQ(Run({"assess", Candidate(), "--poll-ms", "0", "--timeout-s", "0"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("still running after 0 s"));
  EXPECT_THAT(err_.str(), HasSubstr("(at --timeout-s)"));
}

TEST_F(AssessCommandTest, TheOrchestratorsRefusalIsPrintedWithItsPlace) {
  answer = [](const codec::Body&) -> core::Result<codec::Body> {
    return core::InvalidArgument("'C1CC' is not a structure: unclosed ring", "input.structure");
  };
  EXPECT_EQ(Run({"assess", Candidate()}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("invalid_argument: 'C1CC' is not a structure: unclosed ring "
                                    "(at input.structure)"));
}

TEST_F(AssessCommandTest, UsageErrorsExitTwoAndSendNothing) {
  EXPECT_EQ(Run({"assess"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("(at CANDIDATE)"));
  EXPECT_EQ(Run({"assess", Candidate(), "--poll-ms", "fast"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("(at --poll-ms)"));
  EXPECT_EQ(Run({"assess", Candidate(), "--colour", "red"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("(at --colour)"));
  EXPECT_EQ(Run({"assess", Candidate(), "extra.yaml"}), 2);
  EXPECT_TRUE(requests_.empty());
}

TEST_F(AssessCommandTest, ABadCandidateFileExitsOneNamingTheLineAndSendsNothing) {
  const std::string path = Path("bad.yaml");
  std::ofstream(path) << "structure: CCO\nstructure: CCN\n";
  EXPECT_EQ(Run({"assess", path}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("duplicate key 'structure' (at " + path + ":2)"));
  EXPECT_TRUE(requests_.empty());
}

TEST_F(AssessCommandTest, NoaelFromAnIngestedStudyIsProposedHereAndOnlyItsDoseIsSent) {
  // Ingest the vendored PointCross rat study into a store at this "site".
  const std::string store = Path("store");
  const std::string data =
      std::string(FEDRX_SOURCE_DIR) + "/tests/data/ingest/send_pointcross_pc201708";
  std::ostringstream ingest_out, ingest_err;
  ASSERT_EQ(RunIngestCommand({"ingest", "study", "--in", data, "--store", store}, ingest_out,
                             ingest_err, false),
            0)
      << ingest_err.str();
  const std::string path = Path("from-study.yaml");
  std::ofstream(path) << "structure: CCO\n"
                         "noaels: [{species: dog, noael_mg_per_kg: 10}]\n"
                         "noael_from_study: store\n";  // relative to the candidate file
  Script("succeeded");
  ASSERT_EQ(Run({"assess", path, "--out", Path("r"), "--poll-ms", "0"}), 0) << err_.str();
  const json input = json::parse(std::get<codec::RunWorkflow>(requests_.at(0)).input_json);
  EXPECT_FALSE(input.contains("noael_from_study"));
  ASSERT_EQ(input["noaels"].size(), 2u);
  EXPECT_EQ(input["noaels"][0]["species"], "dog");
  const json& proposed = input["noaels"][1];
  // Exactly species, dose and source: no animal's data, no group table.
  EXPECT_EQ(proposed.size(), 3u);
  EXPECT_EQ(proposed["species"], "RAT");
  // Group 3 (20 mg/kg): the dose below the 200 mg/kg group's body-weight effect.
  EXPECT_DOUBLE_EQ(proposed["noael_mg_per_kg"].get<double>(), 20.0);
  EXPECT_THAT(proposed["source"].get<std::string>(), HasSubstr("SEND study PC201708, group 3"));
  EXPECT_THAT(out_.str(), HasSubstr("NOAEL proposed here from SEND study PC201708 (RAT)"));
}

TEST_F(AssessCommandTest, AMissingStudyStoreIsRefusedBeforeSending) {
  const std::string path = Path("c.yaml");
  std::ofstream(path) << "structure: CCO\nnoael_from_study: " << Path("nowhere") << "\n";
  EXPECT_EQ(Run({"assess", path}), 1);
  EXPECT_TRUE(requests_.empty());
  EXPECT_THAT(err_.str(), HasSubstr("fedrx: "));
}

// --- workflow and report commands -------------------------------------------------

class WorkflowReportCommandTest : public testing::ScriptedGatewayTest {};

TEST_F(WorkflowReportCommandTest, WorkflowListShowAndRuns) {
  answer = [](const codec::Body& b) -> core::Result<codec::Body> {
    if (std::get_if<codec::ListWorkflows>(&b) != nullptr) {
      codec::WorkflowList l;
      l.workflows.push_back({"first-in-human",
                             "1",
                             "Is the candidate ready for a FIH trial?",
                             {"tox", "dose"},
                             {"structure", "noaels"}});
      return codec::Body(l);
    }
    if (const auto* g = std::get_if<codec::GetWorkflowRun>(&b)) {
      codec::WorkflowRun r = RunWith({Step("tox", "succeeded", 1, kT0, kT0 + 1000)}, "succeeded");
      r.run_id = g->run_id;
      r.finished_ms = kT0 + 1200;
      r.summary = "proceed";
      r.report_id = "rep-9";
      if (g->include_outputs) {
        r.steps[0].output_json = R"({"panel": "tox21"})";
        r.output_json = R"({"verdict": "proceed"})";
      }
      return codec::Body(r);
    }
    if (const auto* l = std::get_if<codec::ListWorkflowRuns>(&b)) {
      codec::WorkflowRunList list;
      codec::WorkflowRun r = RunWith({}, "partial");
      r.workflow = l->workflow;
      r.summary = "incomplete";
      list.runs = {r};
      return codec::Body(list);
    }
    return core::Internal("no answer scripted", "test");
  };
  ASSERT_EQ(Run({"workflow", "list"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("first-in-human (version 1): Is the candidate ready"));
  EXPECT_THAT(out_.str(), HasSubstr("  inputs: structure noaels\n  steps: tox, dose\n"));

  const std::string json_path = Path("run.json");
  ASSERT_EQ(Run({"workflow", "show", "run-5", "--json", json_path}), 0) << err_.str();
  EXPECT_TRUE(std::get<codec::GetWorkflowRun>(requests_.back()).include_outputs);
  EXPECT_THAT(out_.str(), HasSubstr("[  1.0s] tox            succeeded  1 attempt\n"));
  EXPECT_THAT(out_.str(), HasSubstr("run run-5: succeeded (1 of 1 steps succeeded, took 1.2 s)\n"));
  EXPECT_THAT(out_.str(), HasSubstr("report rep-9\n"));
  const json j = json::parse(ReadBytes(json_path));
  EXPECT_EQ(j["output"]["verdict"], "proceed");
  EXPECT_EQ(j["steps"][0]["output"]["panel"], "tox21");

  ASSERT_EQ(Run({"workflow", "show", "run-5"}), 0);
  EXPECT_FALSE(std::get<codec::GetWorkflowRun>(requests_.back()).include_outputs);

  ASSERT_EQ(Run({"workflow", "runs", "--workflow", "lead-triage"}), 0) << err_.str();
  EXPECT_EQ(std::get<codec::ListWorkflowRuns>(requests_.back()).workflow, "lead-triage");
  EXPECT_THAT(out_.str(), HasSubstr("run-1"));
  EXPECT_THAT(out_.str(), HasSubstr("lead-triage"));
  EXPECT_THAT(out_.str(), HasSubstr("1 run(s)\n"));

  EXPECT_EQ(Run({"workflow", "show"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("(at RUN_ID)"));
}

TEST_F(WorkflowReportCommandTest, ReportListGetAndCreate) {
  answer = [](const codec::Body& b) -> core::Result<codec::Body> {
    codec::ReportInfo info{"rep-3", "study", "tox21-demo", "Study tox21-demo",
                           kT0,     1200,    800,          "10 rounds"};
    if (const auto* l = std::get_if<codec::ListReports>(&b)) {
      codec::ReportList list;
      if (l->kind != "candidate") list.reports = {info};
      return codec::Body(list);
    }
    if (const auto* g = std::get_if<codec::GetReport>(&b)) {
      if (g->report_id != "rep-3") return core::NotFound("no such report", g->report_id);
      return codec::Body(
          codec::ReportDocument{info, g->format, g->format == "json" ? "{}" : "<html/>"});
    }
    if (const auto* c = std::get_if<codec::CreateReport>(&b)) {
      info.kind = c->kind;
      info.subject = c->subject;
      return codec::Body(info);
    }
    return core::Internal("no answer scripted", "test");
  };
  ASSERT_EQ(Run({"report", "list", "--kind", "study"}), 0) << err_.str();
  EXPECT_EQ(std::get<codec::ListReports>(requests_.back()).kind, "study");
  EXPECT_THAT(out_.str(), HasSubstr("rep-3"));
  EXPECT_THAT(out_.str(), HasSubstr("1 report(s)\n"));

  const std::string html = Path("r.html");
  ASSERT_EQ(Run({"report", "get", "rep-3", "--out", html}), 0) << err_.str();
  EXPECT_EQ(ReadBytes(html), "<html/>");
  ASSERT_EQ(Run({"report", "get", "rep-3", "--format", "json", "--out", Path("r.json")}), 0);
  EXPECT_EQ(ReadBytes(Path("r.json")), "{}");
  EXPECT_EQ(Run({"report", "get", "rep-4", "--out", Path("x")}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("not_found: no such report (at rep-4)"));
  EXPECT_FALSE(fs::exists(Path("x")));

  const std::size_t sent = requests_.size();
  EXPECT_EQ(Run({"report", "get", "rep-3", "--format", "pdf", "--out", Path("y")}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("(at --format)"));
  EXPECT_EQ(Run({"report", "get", "rep-3"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("(at --out)"));
  EXPECT_EQ(Run({"report", "create", "--kind", "movie", "--subject", "x"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("(at --kind)"));
  EXPECT_EQ(requests_.size(), sent);

  ASSERT_EQ(Run({"report", "create", "--kind", "study", "--subject", "tox21-demo"}), 0)
      << err_.str();
  const auto& c = std::get<codec::CreateReport>(requests_.back());
  EXPECT_EQ(c.kind, "study");
  EXPECT_EQ(c.subject, "tox21-demo");
  EXPECT_THAT(out_.str(), HasSubstr("report rep-3 (study tox21-demo"));
}

}  // namespace
}  // namespace fedrx::cli
