// Workflow files: a full-featured file loads with the right graph, timeouts and defaults; each
// load error names what is wrong and its exact line; ResolveInputs applies defaults and checks.
#include "services/orchestrator/workflow.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace fedrx::orchestrator {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Serves a few domain calls and local functions, like the engine's catalog does.
core::Status FakeCatalog(std::string_view service, std::string_view call) {
  static const std::map<std::string, std::set<std::string>, std::less<>> kServed = {
      {"tox", {"PredictToxicity"}},
      {"translational", {"TranslateDose"}},
      {"local", {"flag_organ_classes", "dose_levels", "first_in_human_verdict"}}};
  auto it = kServed.find(service);
  if (it == kServed.end())
    return core::InvalidArgument("unknown service '" + std::string(service) + "'");
  if (!it->second.count(std::string(call))) {
    return core::InvalidArgument("service '" + std::string(service) + "' does not serve '" +
                                 std::string(call) + "'");
  }
  return core::Status::Ok();
}

constexpr const char* kFull = R"(name: first-in-human
version: "1"
description: test workflow
inputs:
  structure: {type: smiles, required: true, description: the candidate}
  noaels: {type: array, required: true, min_items: 1}
  therapeutic_area: {type: string, default: ""}
  flag_threshold: {type: number, default: 0.5, min: 0, max: 1}
  doses: {type: array, items: number, min: 0, default: [1, 3]}
steps:
  - id: tox
    service: tox
    call: PredictToxicity
    with:
      smiles: ["${input.structure}"]
      panel: tox21
    timeout: 20s
    retries: 2
  - id: dose
    service: translational
    call: TranslateDose
    with: {noaels: "${input.noaels}"}
    timeout: 500ms
  - id: flags
    service: local
    call: flag_organ_classes
    with:
      panel: "${steps.tox}"
      threshold: "${input.flag_threshold}"
    needs: [dose]
  - id: reverse
    service: local
    call: flag_organ_classes
    when: "len(steps.flags.organ_classes) > 0 and input.therapeutic_area != 'x'"
    timeout: 2m
    retries: 0
output:
  call: first_in_human_verdict
  with: {area: "area ${input.therapeutic_area}", n: 3}
report: candidate
)";

core::Status LoadError(const std::string& yaml) {
  auto wf = ParseWorkflow(yaml, "wf.yaml", FakeCatalog);
  if (wf.ok()) return core::Internal("loaded without error");
  return wf.status();
}

// Expects InvalidArgument at wf.yaml:<line> whose message contains `what`.
void ExpectError(const std::string& yaml, int line, const std::string& what) {
  const core::Status st = LoadError(yaml);
  EXPECT_EQ(st.code(), core::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(st.where(), "wf.yaml:" + std::to_string(line)) << st;
  EXPECT_THAT(st.message(), HasSubstr(what)) << st;
}

// Every feature: inputs with defaults and ranges, steps with with/timeout/retries/needs/when,
// implicit dependencies from references, output and report.
TEST(WorkflowTest, FullWorkflowLoadsWithNeedsTimeoutsDefaults) {
  auto wf = ParseWorkflow(kFull, "first-in-human.yaml", FakeCatalog);
  ASSERT_TRUE(wf.ok()) << wf.status();
  EXPECT_EQ(wf->name, "first-in-human");
  EXPECT_EQ(wf->version, "1");
  EXPECT_EQ(wf->description, "test workflow");
  EXPECT_EQ(wf->file, "first-in-human.yaml");
  EXPECT_EQ(wf->report, "candidate");
  EXPECT_EQ(wf->output_call, "first_in_human_verdict");
  EXPECT_EQ(wf->output_with, json::parse(R"({"area": "area ${input.therapeutic_area}", "n": 3})"));

  ASSERT_EQ(wf->inputs.size(), 5u);
  EXPECT_EQ(wf->inputs[0].name, "structure");
  EXPECT_EQ(wf->inputs[0].type, "smiles");
  EXPECT_TRUE(wf->inputs[0].required);
  EXPECT_EQ(wf->inputs[0].description, "the candidate");
  EXPECT_EQ(wf->inputs[0].line, 5);
  EXPECT_EQ(wf->inputs[1].min_items, 1u);
  EXPECT_EQ(wf->inputs[2].default_value, json(""));
  EXPECT_EQ(wf->inputs[3].default_value, json(0.5));
  EXPECT_EQ(wf->inputs[3].min, 0.0);
  EXPECT_EQ(wf->inputs[3].max, 1.0);
  EXPECT_EQ(wf->inputs[4].items, "number");
  EXPECT_EQ(wf->inputs[4].default_value, json::parse("[1, 3]"));

  ASSERT_EQ(wf->steps.size(), 4u);
  const StepSpec& tox = wf->steps[0];
  EXPECT_EQ(tox.id, "tox");
  EXPECT_EQ(tox.service, "tox");
  EXPECT_EQ(tox.call, "PredictToxicity");
  EXPECT_EQ(tox.with, json::parse(R"({"smiles": ["${input.structure}"], "panel": "tox21"})"));
  EXPECT_EQ(tox.timeout, 20s);
  EXPECT_EQ(tox.retries, 2);
  EXPECT_TRUE(tox.needs.empty());
  EXPECT_EQ(tox.line, 11);

  const StepSpec& dose = wf->steps[1];
  EXPECT_EQ(dose.timeout, 500ms);
  EXPECT_EQ(dose.retries, 1);  // default
  EXPECT_EQ(dose.line, 19);

  const StepSpec& flags = wf->steps[2];
  EXPECT_EQ(flags.timeout, 30s);                         // default
  EXPECT_THAT(flags.needs, ElementsAre("dose", "tox"));  // explicit + referenced, sorted

  const StepSpec& reverse = wf->steps[3];
  EXPECT_EQ(reverse.timeout, 2min);
  EXPECT_EQ(reverse.retries, 0);
  EXPECT_EQ(reverse.when, "len(steps.flags.organ_classes) > 0 and input.therapeutic_area != 'x'");
  EXPECT_THAT(reverse.needs, ElementsAre("flags"));  // from the condition
}

// sha256 is the hex digest of the file's bytes (value from sha256sum of the same text).
TEST(WorkflowTest, Sha256OfFileBytes) {
  const std::string text = "name: mini\nsteps:\n  - {id: s, service: tox, call: PredictToxicity}\n";
  auto wf = ParseWorkflow(text, "mini.yaml", FakeCatalog);
  ASSERT_TRUE(wf.ok()) << wf.status();
  EXPECT_EQ(wf->sha256, "68f1b6af6e3d3dce1cab5e575824804a934efb4c41733c5ba7040bc8c3d6c4be");
  EXPECT_EQ(wf->version, "");
  EXPECT_EQ(wf->steps[0].line, 3);
}

const char* const kStepS = "  - {id: s, service: tox, call: PredictToxicity}\n";

// Unknown keys are refused at every level, at the key's line.
TEST(WorkflowLoadErrorTest, UnknownKeysAtEveryLevel) {
  ExpectError(std::string("name: a\nsteps:\n") + kStepS + "stepz: 1\n", 4, "unknown key 'stepz'");
  ExpectError(
      "name: a\nsteps:\n  - id: s\n    service: tox\n    call: PredictToxicity\n"
      "    timeot: 3s\n",
      6, "unknown key 'timeot' in a step");
  ExpectError(
      std::string("name: a\ninputs:\n  x:\n    type: string\n    requird: true\nsteps:\n") + kStepS,
      5, "unknown key 'requird' in input 'x'");
  ExpectError(std::string("name: a\nsteps:\n") + kStepS +
                  "output:\n  call: first_in_human_verdict\n  args: {}\n",
              6, "unknown key 'args' in the output");
  ExpectError(std::string("name: a\nname: b\nsteps:\n") + kStepS, 2, "duplicate key 'name'");
  ExpectError(
      "name: a\nsteps:\n  - id: s\n    service: tox\n    call: PredictToxicity\n"
      "    with:\n      a: 1\n      a: 2\n",
      8, "duplicate key 'a'");
}

// Missing name, steps, id, service or call: at the line of the mapping that lacks it.
TEST(WorkflowLoadErrorTest, MissingRequiredKeys) {
  ExpectError(std::string("version: '1'\nsteps:\n") + kStepS, 1, "the workflow has no 'name'");
  ExpectError("# comment\n\nname: a\n", 3, "the workflow has no 'steps'");
  ExpectError("name: a\nsteps: []\n", 2, "'steps' must be a non-empty list");
  ExpectError("name: a\nsteps:\n  - id: s\n    call: PredictToxicity\n", 3,
              "step 's' has no 'service'");
  ExpectError("name: a\nsteps:\n" + std::string(kStepS) + "  - service: tox\n    call: X\n", 4,
              "step has no 'id'");
  ExpectError("name: a\nsteps:\n  - id: s\n    service: tox\n", 3, "step 's' has no 'call'");
  ExpectError(std::string("name: a\nsteps:\n") + kStepS + "output:\n  with: {}\n", 4,
              "'output' has no 'call'");
}

// A second step with an id already used: at the second step, naming the first's line.
TEST(WorkflowLoadErrorTest, DuplicateStepId) {
  ExpectError(std::string("name: a\nsteps:\n") + kStepS +
                  "  - id: t\n    service: tox\n    call: PredictToxicity\n" + kStepS,
              7, "duplicate step id 's' (first at line 3)");
}

// The catalog's verdict on service/call, reported at the step's `call` line.
TEST(WorkflowLoadErrorTest, UnknownServiceOrCall) {
  ExpectError("name: a\nsteps:\n  - id: s\n    service: toxx\n    call: PredictToxicity\n", 5,
              "step 's': unknown service 'toxx'");
  ExpectError("name: a\nsteps:\n  - id: s\n    service: tox\n    call: TranslateDose\n", 5,
              "step 's': service 'tox' does not serve 'TranslateDose'");
  ExpectError(std::string("name: a\nsteps:\n") + kStepS + "output:\n  call: nope\n", 5,
              "output: service 'local' does not serve 'nope'");
}

// References to unknown steps, undeclared inputs, or the step itself, at the referencing line.
TEST(WorkflowLoadErrorTest, BadReferences) {
  ExpectError(std::string("name: a\nsteps:\n") + kStepS +
                  "  - id: t\n    service: tox\n    call: PredictToxicity\n    with:\n"
                  "      smiles: ['x']\n      panel: \"${steps.nothere.p}\"\n",
              9, "step 't' refers to unknown step 'nothere'");
  ExpectError(
      "name: a\ninputs:\n  x: {type: string}\nsteps:\n  - id: s\n    service: tox\n"
      "    call: PredictToxicity\n    with:\n      smiles: [\"${input.y}\"]\n",
      9, "step 's' refers to undeclared input 'y'");
  ExpectError(
      "name: a\nsteps:\n  - id: s\n    service: tox\n    call: PredictToxicity\n"
      "    when: \"steps.s.ok == true\"\n",
      6, "step 's' refers to itself");
  ExpectError(
      "name: a\nsteps:\n  - id: s\n    service: tox\n    call: PredictToxicity\n"
      "    needs: [s]\n",
      6, "step 's' refers to itself");
  ExpectError(
      "name: a\nsteps:\n  - id: s\n    service: tox\n    call: PredictToxicity\n"
      "    needs:\n      - q\n",
      7, "step 's' refers to unknown step 'q'");
  ExpectError(
      "name: a\nsteps:\n  - id: s\n    service: tox\n    call: PredictToxicity\n"
      "    when: \"input.flag\"\n",
      6, "step 's' refers to undeclared input 'flag'");
  ExpectError(std::string("name: a\nsteps:\n") + kStepS +
                  "output:\n  call: first_in_human_verdict\n  with:\n    x: \"${steps.zz}\"\n",
              7, "output refers to unknown step 'zz'");
  ExpectError(
      "name: a\nsteps:\n  - id: s\n    service: tox\n    call: PredictToxicity\n"
      "    with:\n      smiles: \"${foo.bar}\"\n",
      7, "unknown name 'foo'");
  ExpectError(
      "name: a\nsteps:\n  - id: s\n    service: tox\n    call: PredictToxicity\n"
      "    with:\n      smiles: \"x ${input.y\"\n",
      7, "unterminated '${' at column 3");
}

// A three-step cycle is named in order, each step needing the next, at the first step's line.
TEST(WorkflowLoadErrorTest, ThreeStepCycleNamed) {
  const std::string yaml =
      "name: a\n"
      "steps:\n"
      "  - id: a\n"  // 3
      "    service: tox\n"
      "    call: PredictToxicity\n"
      "    with: {smiles: [\"${steps.c.x}\"]}\n"
      "  - id: b\n"  // 7
      "    service: local\n"
      "    call: dose_levels\n"
      "    needs: [a]\n"
      "  - id: c\n"  // 11
      "    service: local\n"
      "    call: dose_levels\n"
      "    when: \"steps.b.ok == true\"\n"
      "  - id: d\n"
      "    service: local\n"
      "    call: dose_levels\n"
      "    needs: [c]\n";
  ExpectError(yaml, 3, "cycle: a -> c -> b -> a");
  // Two steps needing each other.
  ExpectError(
      "name: a\nsteps:\n  - {id: x, service: local, call: dose_levels, needs: [y]}\n"
      "  - {id: y, service: local, call: dose_levels, needs: [x]}\n",
      3, "cycle: x -> y -> x");
}

std::string StepWith(const std::string& line) {
  return "name: a\nsteps:\n  - id: s\n    service: tox\n    call: PredictToxicity\n    " + line +
         "\n";
}

// Timeouts: whole number with ms/s/m, > 0 and <= 1h; retries 0..10.
TEST(WorkflowLoadErrorTest, BadTimeoutAndRetries) {
  ExpectError(StepWith("timeout: 30"), 6,
              "timeout '30' must be a whole number followed by ms, s or m");
  ExpectError(StepWith("timeout: 1.5s"), 6, "timeout '1.5s' must be a whole number");
  ExpectError(StepWith("timeout: 2h"), 6, "timeout '2h' must be a whole number");
  ExpectError(StepWith("timeout: 0s"), 6, "timeout '0s' must be > 0");
  ExpectError(StepWith("timeout: 61m"), 6, "timeout '61m' exceeds 1h");
  ExpectError(StepWith("timeout: [1]"), 6, "'timeout' must be a single value");
  ExpectError(StepWith("retries: 11"), 6, "retries '11' must be an integer from 0 to 10");
  ExpectError(StepWith("retries: -1"), 6, "retries '-1' must be an integer from 0 to 10");
  ExpectError(StepWith("retries: two"), 6, "retries 'two' must be an integer from 0 to 10");
  auto ok = ParseWorkflow(StepWith("timeout: 3600000ms"), "wf.yaml", FakeCatalog);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->steps[0].timeout, 1h);
}

// Condition syntax errors: at the `when` line, with the column inside the condition.
TEST(WorkflowLoadErrorTest, ConditionSyntaxError) {
  ExpectError(StepWith("when: \"len(input.x) >\""), 6,
              "step 's': condition 'len(input.x) >': unexpected end of condition (expected an "
              "operand) at column 15");
  ExpectError(StepWith("when: \"input.x = 1\""), 6,
              "'=' is not an operator (use '==') at column 9");
}

// Inputs: unknown type, default of the wrong type or out of range, misplaced min/max/items.
TEST(WorkflowLoadErrorTest, BadInputs) {
  auto with_input = [](const std::string& spec) {
    return "name: a\ninputs:\n  x:\n" + spec + "steps:\n" + kStepS;
  };
  ExpectError(with_input("    type: float\n"), 4, "input 'x' has unknown type 'float'");
  ExpectError(with_input("    type: number\n    default: high\n"), 5,
              "default of input 'x': expected a number, got string");
  ExpectError(with_input("    type: number\n    max: 1\n    default: 2\n"), 6,
              "default of input 'x': 2 is above the maximum 1");
  ExpectError(with_input("    type: integer\n    default: 2.5\n"), 5,
              "default of input 'x': expected an integer, got 2.5");
  ExpectError(with_input("    type: array\n    items: number\n    default: [1, 'a']\n"), 6,
              "default of input 'x': expected a number, got string");
  ExpectError(with_input("    type: string\n    min: 1\n"), 5,
              "min/max apply to number or integer");
  ExpectError(with_input("    type: string\n    items: number\n"), 5,
              "'items' applies to array inputs only");
  ExpectError(with_input("    type: boolean\n    required: yes\n"), 5,
              "'required' must be true or false");
  ExpectError(with_input("    type: string\n    required: true\n    default: a\n"), 6,
              "input 'x' is required and has a default");
  ExpectError(with_input("    description: no type\n"), 3, "input 'x' has no 'type'");
  ExpectError("name: a\ninputs:\n  x: string\nsteps:\n" + std::string(kStepS), 3,
              "input 'x' must be a mapping");
}

// Malformed YAML (yaml-cpp's exception) is InvalidArgument at the parser's line.
TEST(WorkflowLoadErrorTest, MalformedYamlHasLine) {
  ExpectError("name: a\nsteps:\n  - id: s\n    with: {a: [1, 2}\n", 4, "malformed YAML");
  ExpectError("name: a\n  bad: indentation\n", 2, "malformed YAML");
  ExpectError("- just\n- a list\n", 1, "a workflow file is a mapping");
  ExpectError(StepWith("when: \"a\"\n    report: x"), 7, "unknown key 'report' in a step");
  ExpectError(std::string("name: a\nsteps:\n") + kStepS + "report: study\n", 4,
              "unknown report kind 'study'");
  ExpectError(std::string("name: 'a b'\nsteps:\n") + kStepS, 1, "workflow name 'a b' must be");
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("fedrx-wf-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A directory's *.yaml files load in name order; other files are ignored; the base name is kept.
TEST(WorkflowDirTest, LoadsEveryYamlInNameOrder) {
  TempDir dir;
  dir.Write("b.yaml", std::string("name: second\nsteps:\n") + kStepS);
  dir.Write("a.yaml", std::string("name: first\nsteps:\n") + kStepS);
  dir.Write("notes.txt", "not a workflow");
  auto all = LoadWorkflowDir(dir.path(), FakeCatalog);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "first");
  EXPECT_EQ((*all)[0].file, "a.yaml");
  EXPECT_EQ((*all)[1].name, "second");
  EXPECT_EQ((*all)[1].file, "b.yaml");
}

// Two files declaring the same workflow name: the error names both files.
TEST(WorkflowDirTest, DuplicateNameNamesBothFiles) {
  TempDir dir;
  dir.Write("a.yaml", std::string("name: same\nsteps:\n") + kStepS);
  dir.Write("b.yaml", std::string("name: same\nsteps:\n") + kStepS);
  auto all = LoadWorkflowDir(dir.path(), FakeCatalog);
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(all.status().message(), HasSubstr("'same' is defined in both a.yaml and b.yaml"));
  // An error inside a file carries that file's base name and line.
  dir.Write("b.yaml", "name: other\nsteps:\n  - {id: s, service: nope, call: X}\n");
  auto bad = LoadWorkflowDir(dir.path(), FakeCatalog);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().where(), "b.yaml:3");
  auto missing = LoadWorkflowDir(dir.path() / "absent", FakeCatalog);
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
}

Workflow FullWorkflow() {
  auto wf = ParseWorkflow(kFull, "first-in-human.yaml", FakeCatalog);
  EXPECT_TRUE(wf.ok()) << wf.status();
  return *wf;
}

core::Status RejectSulfur(std::string_view smiles, std::string_view where) {
  if (smiles.find('S') != std::string_view::npos) {
    return core::InvalidArgument("cannot parse SMILES", std::string(where));
  }
  return core::Status::Ok();
}

// Defaults fill what is not given (null counts as absent); given values are kept.
TEST(ResolveInputsTest, DefaultsApplied) {
  auto in = ResolveInputs(FullWorkflow(),
                          json::parse(R"({"structure": "CCO", "noaels": [{"species": "rat"}],
                                          "therapeutic_area": null, "flag_threshold": 0.25})"),
                          RejectSulfur);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(*in, json::parse(R"({"structure": "CCO", "noaels": [{"species": "rat"}],
                                 "therapeutic_area": "", "flag_threshold": 0.25, "doses": [1, 3]})"));
}

// Each refused input: where "input.<name>" (or "[i]" for an element), message says why.
TEST(ResolveInputsTest, ErrorsNameTheInput) {
  const Workflow wf = FullWorkflow();
  auto expect = [&](const std::string& given, const std::string& where, const std::string& what) {
    auto in = ResolveInputs(wf, json::parse(given), RejectSulfur);
    ASSERT_FALSE(in.ok()) << given;
    EXPECT_EQ(in.status().code(), core::StatusCode::kInvalidArgument) << given;
    EXPECT_EQ(in.status().where(), where) << given << ": " << in.status();
    EXPECT_THAT(in.status().message(), HasSubstr(what)) << given;
  };
  expect(R"({"noaels": [1]})", "input.structure", "missing required input 'structure'");
  expect(R"({"structure": "CCO"})", "input.noaels", "missing required input 'noaels'");
  expect(R"({"structure": "CCO", "noaels": [1], "colour": "red"})", "input.colour",
         "unknown input 'colour' (workflow 'first-in-human' declares: doses, flag_threshold");
  expect(R"({"structure": 5, "noaels": [1]})", "input.structure",
         "expected a SMILES string, got number");
  expect(R"({"structure": "CCS", "noaels": [1]})", "input.structure", "cannot parse SMILES");
  expect(R"({"structure": "CCO", "noaels": []})", "input.noaels",
         "has 0 items, at least 1 required");
  expect(R"({"structure": "CCO", "noaels": {}})", "input.noaels", "expected an array, got object");
  expect(R"({"structure": "CCO", "noaels": [1], "flag_threshold": 1.5})", "input.flag_threshold",
         "1.5 is above the maximum 1");
  expect(R"({"structure": "CCO", "noaels": [1], "flag_threshold": -0.1})", "input.flag_threshold",
         "-0.1 is below the minimum 0");
  expect(R"({"structure": "CCO", "noaels": [1], "flag_threshold": "0.3"})", "input.flag_threshold",
         "expected a number, got string");
  expect(R"({"structure": "CCO", "noaels": [1], "therapeutic_area": false})",
         "input.therapeutic_area", "expected a string, got boolean");
  expect(R"({"structure": "CCO", "noaels": [1], "doses": [1, -2]})", "input.doses[1]",
         "-2 is below the minimum 0");
  auto not_object = ResolveInputs(wf, json::parse("[1]"), RejectSulfur);
  ASSERT_FALSE(not_object.ok());
  EXPECT_EQ(not_object.status().where(), "input");
}

// Integer, boolean and object inputs; an integral float becomes an integer; arrays of SMILES are
// checked element by element.
TEST(ResolveInputsTest, IntegerBooleanObjectAndSmilesItems) {
  auto wf = ParseWorkflow(
      "name: t\ninputs:\n  n: {type: integer, min: 1, max: 6}\n  b: {type: boolean, default: "
      "false}\n"
      "  o: {type: object}\n  s: {type: array, items: smiles, min_items: 1}\n"
      "steps:\n  - {id: x, service: local, call: dose_levels}\n",
      "t.yaml", FakeCatalog);
  ASSERT_TRUE(wf.ok()) << wf.status();
  auto in = ResolveInputs(
      *wf, json::parse(R"({"n": 3.0, "o": {"k": 1}, "s": ["CCO", "c1ccccc1"]})"), RejectSulfur);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_TRUE((*in)["n"].is_number_integer());
  EXPECT_EQ((*in)["n"], json(3));
  EXPECT_EQ((*in)["b"], json(false));
  EXPECT_EQ((*in)["o"], json::parse(R"({"k": 1})"));
  EXPECT_FALSE(ResolveInputs(*wf, json::parse(R"({"n": 2.5})"), RejectSulfur).ok());
  auto too_big = ResolveInputs(*wf, json::parse(R"({"n": 7})"), RejectSulfur);
  EXPECT_THAT(too_big.status().message(), HasSubstr("7 is above the maximum 6"));
  auto bad_smiles = ResolveInputs(*wf, json::parse(R"({"s": ["CCO", "CS"]})"), RejectSulfur);
  ASSERT_FALSE(bad_smiles.ok());
  EXPECT_EQ(bad_smiles.status().where(), "input.s[1]");
  auto bad_bool = ResolveInputs(*wf, json::parse(R"({"b": "yes"})"), RejectSulfur);
  EXPECT_EQ(bad_bool.status().where(), "input.b");
  auto bad_obj = ResolveInputs(*wf, json::parse(R"({"o": [1]})"), RejectSulfur);
  EXPECT_THAT(bad_obj.status().message(), HasSubstr("expected an object, got array"));
  // Optional inputs without a default stay absent; no smiles_check means no SMILES parse.
  auto empty = ResolveInputs(*wf, json::object(), nullptr);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, json::parse(R"({"b": false})"));
}

// YamlToJson: YAML 1.2 core scalars, quoted strings stay strings, non-finite refused with line.
TEST(YamlToJsonTest, CoreSchemaScalars) {
  auto j =
      YamlToJson("a: 1\nb: 2.5\nc: true\nd: ~\ne: '12'\nf: text\ng: [1, x]\nh: -3e2\n", "c.yaml");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, json::parse(R"({"a": 1, "b": 2.5, "c": true, "d": null, "e": "12", "f": "text",
                                "g": [1, "x"], "h": -300.0})"));
  auto inf = YamlToJson("a: 1\nb: .inf\n", "c.yaml");
  ASSERT_FALSE(inf.ok());
  EXPECT_EQ(inf.status().where(), "c.yaml:2");
}

}  // namespace
}  // namespace fedrx::orchestrator
