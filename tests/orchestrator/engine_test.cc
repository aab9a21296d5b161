// The orchestrator engine on an in-memory store, a fake clock and a step
// caller the test answers by hand: parallel steps, dependency order,
// conditions, failures and partial results, retries, timeouts, resume after a
// restart, bad input, corrupt records, and the end-of-run report.
#include "services/orchestrator/engine.h"

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "services/core/keys.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"
#include "tests/orchestrator/engine_test_support.h"

namespace fedrx::orchestrator {
namespace {

using nlohmann::json;
using testing::ManualStepCaller;

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : functions_(testing::TestFunctions()) {}

  std::unique_ptr<Engine> MakeEngine(ManualStepCaller& caller) {
    return std::make_unique<Engine>(store_, clock_, metrics_, caller, functions_,
                                    testing::TestWorkflows(functions_));
  }

  const codec::StepState& StepOf(const codec::WorkflowRun& run, const std::string& id) {
    for (const auto& s : run.steps) {
      if (s.step == id) return s;
    }
    ADD_FAILURE() << "no step " << id;
    static const codec::StepState kNone;
    return kNone;
  }

  codec::WorkflowRun Fetch(Engine& engine, const std::string& id, bool outputs = false) {
    auto run = engine.Get(id, outputs);
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() ? *run : codec::WorkflowRun{};
  }

  json StoredRecord(const std::string& id) {
    auto text = store_.Get(*core::keys::WorkflowRun(id));
    EXPECT_TRUE(text.ok() && text->has_value());
    return text.ok() && text->has_value() ? json::parse(**text) : json();
  }

  bool Active(const std::string& id) {
    auto members = store_.SetMembers(core::keys::WorkflowActiveRuns());
    EXPECT_TRUE(members.ok());
    for (const auto& m : *members) {
      if (m == id) return true;
    }
    return false;
  }

  // Starts the test workflow and sends its first steps.
  std::string StartTestRun(Engine& engine, const std::string& run_id = {}) {
    auto run = engine.Start("test-flow", testing::TestInput(), run_id);
    EXPECT_TRUE(run.ok()) << run.status();
    engine.Tick();
    return run.ok() ? run->run_id : std::string();
  }

  // Answers the three domain steps successfully.
  void AnswerAll(ManualStepCaller& caller, double confidence = 0.9) {
    EXPECT_TRUE(caller.Answer("PredictToxicity", codec::Body(testing::TestPanel(confidence))));
    EXPECT_TRUE(caller.Answer("AssessClinical", codec::Body(testing::TestClinical())));
    EXPECT_TRUE(caller.Answer("TranslateDose", codec::Body(testing::TestDose())));
  }

  core::testing::FakeStateStore store_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"orchestrator"};
  LocalFunctions functions_;
};

// Independent domain steps are sent together, before any has answered; the
// run record is stored with the steps running and the request sent.
TEST_F(EngineTest, IndependentStepsAreInFlightTogether) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(caller.PendingOf("PredictToxicity"), 1u);
  EXPECT_EQ(caller.PendingOf("AssessClinical"), 1u);
  EXPECT_EQ(caller.PendingOf("TranslateDose"), 1u);
  EXPECT_EQ(caller.total_calls, 3);
  EXPECT_EQ(engine->in_flight(), 3u);

  const json record = StoredRecord(id);
  EXPECT_EQ(record["state"], "running");
  EXPECT_EQ(record["workflow"], "test-flow");
  EXPECT_EQ(record["workflow_version"], "3");
  EXPECT_EQ(record["workflow_file"], "test.yaml");
  EXPECT_EQ(record["workflow_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(record["input"]["area"], "oncology");  // the default applied
  EXPECT_EQ(record["steps"][0]["id"], "tox");
  EXPECT_EQ(record["steps"][0]["state"], "running");
  EXPECT_EQ(record["steps"][0]["attempts"], 1);
  EXPECT_EQ(record["steps"][0]["request"]["smiles"][0], "CC(=O)Oc1ccccc1C(=O)O");
  EXPECT_EQ(record["steps"][3]["state"], "pending");  // levels waits for dose
  EXPECT_TRUE(Active(id));

  // The request actually sent carries the resolved values.
  const auto& tox = std::get<codec::PredictToxicity>(caller.BodyOf("PredictToxicity"));
  ASSERT_EQ(tox.smiles.size(), 1u);
  EXPECT_EQ(tox.smiles[0], "CC(=O)Oc1ccccc1C(=O)O");
  EXPECT_EQ(tox.panel, "tox21");
  EXPECT_EQ(caller.pending.front().timeout, std::chrono::milliseconds(5000));
  const auto& dose = std::get<codec::TranslateDose>(caller.BodyOf("TranslateDose"));
  ASSERT_EQ(dose.noaels.size(), 1u);
  EXPECT_EQ(dose.noaels[0].species, "rat");
  EXPECT_DOUBLE_EQ(dose.noaels[0].noael_mg_per_kg, 50);
}

// A step runs only once the steps it needs have succeeded, and sees their
// outputs; the whole run ends succeeded with the output function's summary,
// every step's output stored under its own key.
TEST_F(EngineTest, DependentStepRunsAfterItsDependencyWithItsOutput) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  ASSERT_TRUE(caller.Answer("TranslateDose", codec::Body(testing::TestDose(48.6))));
  engine->Tick();
  auto run = Fetch(*engine, id, true);
  EXPECT_EQ(StepOf(run, "dose").state, "succeeded");
  EXPECT_EQ(StepOf(run, "levels").state, "succeeded");
  const json levels = json::parse(StepOf(run, "levels").output_json);
  EXPECT_DOUBLE_EQ(levels["dose_mg"][1].get<double>(), 3 * 48.6);
  EXPECT_EQ(StepOf(run, "flagged").state, "pending");  // still waits for tox
  EXPECT_EQ(run.state, "running");

  ASSERT_TRUE(caller.Answer("PredictToxicity", codec::Body(testing::TestPanel(0.9))));
  ASSERT_TRUE(caller.Answer("AssessClinical", codec::Body(testing::TestClinical())));
  engine->Tick();
  run = Fetch(*engine, id, true);
  EXPECT_EQ(StepOf(run, "flagged").state, "succeeded");
  EXPECT_EQ(json::parse(StepOf(run, "flagged").output_json)["panel"], "tox21");
  EXPECT_EQ(run.state, "succeeded");
  EXPECT_EQ(run.summary, "verdict: proceed (5 steps)");
  const json output = json::parse(run.output_json);
  EXPECT_EQ(output["verdict"], "proceed");
  EXPECT_EQ(output["outputs_seen"], 5);  // the output function saw every step's output

  auto stored = store_.Get(*core::keys::WorkflowStepOutput(id, "dose"));
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_DOUBLE_EQ(json::parse(**stored)["mrsd_mg"].get<double>(), 48.6);
  EXPECT_EQ(StoredRecord(id)["state"], "succeeded");
  EXPECT_EQ(metrics_.Read("fedrx_orchestrator_runs_total",
                          {{"workflow", "test-flow"}, {"state", "succeeded"}}),
            1);
  EXPECT_EQ(
      metrics_.Read("fedrx_orchestrator_steps_total", {{"service", "tox"}, {"state", "succeeded"}}),
      1);
}

// A false condition skips the step with the condition's text; a run whose
// only skips are by condition still succeeds.
TEST_F(EngineTest, FalseConditionSkipsTheStep) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  AnswerAll(caller, /*confidence=*/0.2);
  engine->Tick();
  auto run = Fetch(*engine, id);
  EXPECT_EQ(StepOf(run, "flagged").state, "skipped");
  EXPECT_EQ(StepOf(run, "flagged").error, "condition false: steps.tox.confidence > 0.5");
  EXPECT_EQ(StepOf(run, "flagged").attempts, 0u);
  EXPECT_EQ(run.state, "succeeded");
  EXPECT_EQ(StoredRecord(id)["steps"][4]["skip_reason"],
            "condition false: steps.tox.confidence > 0.5");
}

// A failed step fails with its code, message and where; the steps that need it
// are skipped with the reason; independent steps still run; the run is partial.
TEST_F(EngineTest, FailedStepGivesPartialRunAndSkipsDependents) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  ASSERT_TRUE(caller.Answer(
      "TranslateDose",
      core::InvalidArgument("unknown species 'yeti'", "TranslateDose.noaels[0].species")));
  engine->Tick();
  // Independent steps were sent before and are still awaited, not cancelled.
  EXPECT_EQ(caller.PendingOf("PredictToxicity"), 1u);
  EXPECT_EQ(caller.PendingOf("AssessClinical"), 1u);
  ASSERT_TRUE(caller.Answer("PredictToxicity", codec::Body(testing::TestPanel(0.9))));
  ASSERT_TRUE(caller.Answer("AssessClinical", codec::Body(testing::TestClinical())));
  engine->Tick();

  auto run = Fetch(*engine, id);
  const auto& dose = StepOf(run, "dose");
  EXPECT_EQ(dose.state, "failed");
  EXPECT_EQ(dose.error_code, "invalid_argument");
  EXPECT_EQ(dose.error, "unknown species 'yeti'");
  EXPECT_EQ(dose.error_where, "TranslateDose.noaels[0].species");
  EXPECT_EQ(dose.attempts, 1u);  // not retried: the input is wrong
  EXPECT_EQ(StepOf(run, "levels").state, "skipped");
  EXPECT_EQ(StepOf(run, "levels").error, "needs dose, which failed");
  EXPECT_EQ(StepOf(run, "tox").state, "succeeded");
  EXPECT_EQ(StepOf(run, "clinical").state, "succeeded");
  EXPECT_EQ(StepOf(run, "flagged").state, "succeeded");
  EXPECT_EQ(run.state, "partial");
  EXPECT_EQ(run.summary, "verdict: incomplete (3 steps)");
}

// An unavailable service is tried again after a backoff (on the clock), and a
// success then counts two attempts.
TEST_F(EngineTest, RetryableErrorIsRetriedThenSucceeds) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  ASSERT_TRUE(caller.Answer("PredictToxicity", core::Unavailable("tox is down", "tox")));
  engine->Tick();
  auto run = Fetch(*engine, id);
  EXPECT_EQ(StepOf(run, "tox").state, "pending");
  EXPECT_EQ(StepOf(run, "tox").error_code, "unavailable");  // why it waits
  EXPECT_EQ(caller.PendingOf("PredictToxicity"), 0u);       // backoff not over yet

  clock_.Advance(std::chrono::seconds(1));
  engine->Tick();
  ASSERT_EQ(caller.PendingOf("PredictToxicity"), 1u);
  EXPECT_EQ(caller.calls_by_type["PredictToxicity"], 2);
  ASSERT_TRUE(caller.Answer("PredictToxicity", codec::Body(testing::TestPanel(0.9))));
  engine->Tick();
  run = Fetch(*engine, id);
  EXPECT_EQ(StepOf(run, "tox").state, "succeeded");
  EXPECT_EQ(StepOf(run, "tox").attempts, 2u);
  EXPECT_EQ(StepOf(run, "tox").error_code, "");
  EXPECT_EQ(metrics_.Read("fedrx_orchestrator_step_retries_total", {{"service", "tox"}}), 1);
}

// A service that keeps timing out fails the step with deadline_exceeded once
// its retries are spent; the rest of the run carries on to a partial result.
TEST_F(EngineTest, TimeoutFailsStepAfterRetries) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSERT_TRUE(caller.Answer("PredictToxicity",
                              core::DeadlineExceeded("no reply to PredictToxicity in 5000 ms")));
    engine->Tick();
    clock_.Advance(std::chrono::seconds(5));
    engine->Tick();
  }
  EXPECT_EQ(caller.PendingOf("PredictToxicity"), 0u);
  EXPECT_EQ(caller.calls_by_type["PredictToxicity"], 2);  // 1 + retries
  ASSERT_TRUE(caller.Answer("AssessClinical", codec::Body(testing::TestClinical())));
  ASSERT_TRUE(caller.Answer("TranslateDose", codec::Body(testing::TestDose())));
  engine->Tick();
  auto run = Fetch(*engine, id);
  EXPECT_EQ(StepOf(run, "tox").state, "failed");
  EXPECT_EQ(StepOf(run, "tox").error_code, "deadline_exceeded");
  EXPECT_EQ(StepOf(run, "tox").attempts, 2u);
  EXPECT_EQ(StepOf(run, "flagged").state, "skipped");
  EXPECT_EQ(StepOf(run, "flagged").error, "needs tox, which failed");
  EXPECT_EQ(StepOf(run, "levels").state, "succeeded");
  EXPECT_EQ(run.state, "partial");
}

// An answer of the wrong body type fails the step (Internal, naming the type).
TEST_F(EngineTest, WrongAnswerTypeFailsStep) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  ASSERT_TRUE(caller.Answer("PredictToxicity", codec::Body(testing::TestDose())));
  engine->Tick();
  auto run = Fetch(*engine, id);
  EXPECT_EQ(StepOf(run, "tox").state, "failed");
  EXPECT_EQ(StepOf(run, "tox").error_code, "internal");
  EXPECT_NE(StepOf(run, "tox").error.find("DoseTranslation"), std::string::npos)
      << StepOf(run, "tox").error;
  EXPECT_EQ(StepOf(run, "tox").attempts, 1u);
}

// A step's output naming its model is traced: study id and version are copied
// into the step's provenance in the record.
TEST_F(EngineTest, ModelProvenanceCopiedIntoStep) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  AnswerAll(caller);
  engine->Tick();
  const json record = StoredRecord(id);
  EXPECT_EQ(record["steps"][0]["provenance"]["study_id"], "tox21-demo");
  EXPECT_EQ(record["steps"][0]["provenance"]["model_version"], 3);
  EXPECT_EQ(record["steps"][1]["provenance"]["study_id"], "clintox-demo");
  EXPECT_FALSE(record["steps"][2].contains("provenance"));  // dose has no model
}

// Killed mid-run: engine 1 finishes dose (and levels) and is destroyed with tox
// and clinical in flight; engine 2 on the same store resumes, sends only those
// again (attempts 2) and finishes the run. Dose is never asked again.
TEST_F(EngineTest, ResumeFinishesRunWithoutRepeatingFinishedSteps) {
  ManualStepCaller caller1;
  std::string id;
  {
    auto engine1 = MakeEngine(caller1);
    id = StartTestRun(*engine1, "run-resume-1");
    ASSERT_TRUE(caller1.Answer("TranslateDose", codec::Body(testing::TestDose(20))));
    engine1->Tick();
    EXPECT_EQ(Fetch(*engine1, id).steps[3].state, "succeeded");  // levels
  }
  // A late answer to the dead engine's request goes nowhere.
  ASSERT_TRUE(caller1.Answer("PredictToxicity", codec::Body(testing::TestPanel())));

  ManualStepCaller caller2;
  auto engine2 = MakeEngine(caller2);
  ASSERT_TRUE(engine2->Resume().ok());
  EXPECT_EQ(engine2->active_runs(), 1u);
  engine2->Tick();
  EXPECT_EQ(caller2.calls_by_type["TranslateDose"], 0);
  EXPECT_EQ(caller2.PendingOf("PredictToxicity"), 1u);
  EXPECT_EQ(caller2.PendingOf("AssessClinical"), 1u);
  ASSERT_TRUE(caller2.Answer("PredictToxicity", codec::Body(testing::TestPanel(0.9))));
  ASSERT_TRUE(caller2.Answer("AssessClinical", codec::Body(testing::TestClinical())));
  engine2->Tick();

  auto run = Fetch(*engine2, id, true);
  EXPECT_EQ(run.state, "succeeded");
  EXPECT_EQ(StepOf(run, "dose").attempts, 1u);
  EXPECT_EQ(StepOf(run, "tox").attempts, 2u);
  EXPECT_EQ(StepOf(run, "levels").attempts, 1u);
  // The dose output came back from the store and fed the verdict.
  EXPECT_DOUBLE_EQ(json::parse(StepOf(run, "dose").output_json)["mrsd_mg"].get<double>(), 20);
  EXPECT_EQ(json::parse(run.output_json)["outputs_seen"], 5);
  EXPECT_EQ(caller1.calls_by_type["TranslateDose"] + caller2.calls_by_type["TranslateDose"], 1);
  EXPECT_EQ(metrics_.Read("fedrx_orchestrator_runs_resumed_total"), 1);
}

// Input refused before anything is stored: unknown workflow, input that is not
// an object, a missing required input, an unparseable structure, an empty
// array; each names where.
TEST_F(EngineTest, BadInputIsRefusedWithWhere) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  auto unknown = engine->Start("no-such-flow", testing::TestInput());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().where(), "RunWorkflow.workflow");
  EXPECT_NE(unknown.status().message().find("test-flow"), std::string::npos);  // lists known ones

  auto not_json = engine->Start("test-flow", "[1, 2");
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.status().where(), "RunWorkflow.input_json");

  auto missing = engine->Start("test-flow", R"({"noaels": [{"species": "rat"}]})");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().where(), "input.structure");

  auto bad_smiles =
      engine->Start("test-flow", R"({"structure": "C1CC(", "noaels": [{"species": "rat"}]})");
  ASSERT_FALSE(bad_smiles.ok());
  EXPECT_EQ(bad_smiles.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_smiles.status().where(), "input.structure");

  auto empty = engine->Start("test-flow", R"({"structure": "CCO", "noaels": []})");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().where(), "input.noaels");

  auto bad_id = engine->Start("test-flow", testing::TestInput(), "run/../x");
  ASSERT_FALSE(bad_id.ok());
  EXPECT_EQ(bad_id.status().where(), "RunWorkflow.run_id");

  EXPECT_EQ(caller.total_calls, 0);
  EXPECT_EQ(store_.KeyCount(), 0u);
}

// A run id that exists answers that run: nothing new is started.
TEST_F(EngineTest, ExistingRunIdAnswersThatRun) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine, "run-mine");
  EXPECT_EQ(id, "run-mine");
  auto again = engine->Start("test-flow", testing::TestInput(), "run-mine");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->run_id, "run-mine");
  EXPECT_EQ(again->state, "running");
  engine->Tick();
  EXPECT_EQ(caller.total_calls, 3);
  auto list = engine->List("", 10);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
}

// Generated run ids name the time and are unique.
TEST_F(EngineTest, GeneratedRunIdsAreDistinct) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  auto a = engine->Start("small", R"({"noaels": [{"species": "rat"}]})");
  auto b = engine->Start("small", R"({"noaels": [{"species": "rat"}]})");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->run_id, b->run_id);
  EXPECT_EQ(a->run_id.rfind("run-2023", 0), 0u) << a->run_id;  // FakeClock starts in Nov 2023
  EXPECT_EQ(a->run_id.size(), std::string("run-20231114T221320Z-abcdef").size());
}

// A corrupt run record in the active set is marked failed with a DataLoss
// reason and counted; the other runs resume.
TEST_F(EngineTest, CorruptRecordMarkedFailedOthersResume) {
  ManualStepCaller caller1;
  std::string good;
  {
    auto engine1 = MakeEngine(caller1);
    good = StartTestRun(*engine1, "run-good");
  }
  ASSERT_TRUE(store_.Set(*core::keys::WorkflowRun("run-bad"), "{\"run_id\": \"run-bad\", ").ok());
  ASSERT_TRUE(store_.SetAdd(core::keys::WorkflowActiveRuns(), "run-bad").ok());
  ASSERT_TRUE(store_.SetAdd(core::keys::WorkflowRunIndex(), "run-bad").ok());

  ManualStepCaller caller2;
  auto engine2 = MakeEngine(caller2);
  ASSERT_TRUE(engine2->Resume().ok());
  EXPECT_EQ(engine2->active_runs(), 1u);
  EXPECT_FALSE(Active("run-bad"));
  EXPECT_EQ(metrics_.Read("fedrx_orchestrator_runs_unreadable_total"), 1);
  auto bad = Fetch(*engine2, "run-bad");
  EXPECT_EQ(bad.state, "failed");
  EXPECT_NE(bad.summary.find("unreadable"), std::string::npos) << bad.summary;
  EXPECT_EQ(StoredRecord("run-bad")["error"]["code"], "data_loss");
  // What was there is kept for whoever investigates.
  EXPECT_EQ(StoredRecord("run-bad")["unreadable_record"], "{\"run_id\": \"run-bad\", ");

  engine2->Tick();
  EXPECT_EQ(caller2.total_calls, 3);  // the good run's steps, sent again
  AnswerAll(caller2);
  engine2->Tick();
  EXPECT_EQ(Fetch(*engine2, good).state, "succeeded");
}

// At the end of a run whose workflow asks for it, the report service is asked
// for a candidate report of the run; its id is recorded and the run leaves the
// active set.
TEST_F(EngineTest, ReportRequestedAtEndAndIdRecorded) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  AnswerAll(caller);
  engine->Tick();
  EXPECT_EQ(Fetch(*engine, id).state, "succeeded");
  EXPECT_TRUE(Active(id));  // waits for its report
  engine->Tick();
  ASSERT_EQ(caller.PendingOf("CreateReport"), 1u);
  EXPECT_EQ(caller.pending.front().service, "report");
  const auto& ask = std::get<codec::CreateReport>(caller.BodyOf("CreateReport"));
  EXPECT_EQ(ask.kind, "candidate");
  EXPECT_EQ(ask.subject, id);
  // The report service reads a terminal record with the output.
  EXPECT_EQ(StoredRecord(id)["output"]["verdict"], "proceed");

  codec::ReportInfo info;
  info.report_id = "rep-123";
  ASSERT_TRUE(caller.Answer("CreateReport", codec::Body(info)));
  engine->Tick();
  auto run = Fetch(*engine, id);
  EXPECT_EQ(run.report_id, "rep-123");
  EXPECT_EQ(run.report_error, "");
  EXPECT_EQ(StoredRecord(id)["report_id"], "rep-123");
  EXPECT_FALSE(Active(id));
  EXPECT_EQ(engine->active_runs(), 0u);
}

// The report service down: the reason is recorded, the run's state stands.
TEST_F(EngineTest, ReportServiceDownRecordsReportError) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  const std::string id = StartTestRun(*engine);
  AnswerAll(caller);
  engine->Tick();
  engine->Tick();
  ASSERT_TRUE(caller.Answer("CreateReport", core::Unavailable("the report service is not "
                                                              "configured",
                                                              "orchestrator.services.report")));
  engine->Tick();
  auto run = Fetch(*engine, id);
  EXPECT_EQ(run.state, "succeeded");
  EXPECT_EQ(run.report_id, "");
  EXPECT_NE(run.report_error.find("unavailable"), std::string::npos) << run.report_error;
  EXPECT_FALSE(Active(id));
}

// A run finished but killed before its report was recorded asks for the
// report again after a restart, without running any step.
TEST_F(EngineTest, ResumeAsksForMissingReport) {
  ManualStepCaller caller1;
  std::string id;
  {
    auto engine1 = MakeEngine(caller1);
    id = StartTestRun(*engine1);
    AnswerAll(caller1);
    engine1->Tick();
    engine1->Tick();
    ASSERT_EQ(caller1.PendingOf("CreateReport"), 1u);
  }
  ManualStepCaller caller2;
  auto engine2 = MakeEngine(caller2);
  ASSERT_TRUE(engine2->Resume().ok());
  engine2->Tick();
  EXPECT_EQ(caller2.total_calls, 1);
  ASSERT_EQ(caller2.PendingOf("CreateReport"), 1u);
  codec::ReportInfo info;
  info.report_id = "rep-9";
  ASSERT_TRUE(caller2.Answer("CreateReport", codec::Body(info)));
  engine2->Tick();
  EXPECT_EQ(Fetch(*engine2, id).report_id, "rep-9");
  EXPECT_FALSE(Active(id));
}

// The store down when a step would be sent: nothing is sent until the record
// can be written, then the run goes on.
TEST_F(EngineTest, NothingSentWhileStoreIsDown) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  auto run = engine->Start("small", R"({"noaels": [{"species": "rat", "noael_mg_per_kg": 5}]})");
  ASSERT_TRUE(run.ok());
  store_.SetDown(true);
  engine->Tick();
  EXPECT_EQ(caller.total_calls, 0);
  EXPECT_GE(metrics_.Read("fedrx_orchestrator_store_errors_total"), 1);
  store_.SetDown(false);
  clock_.Advance(std::chrono::seconds(1));
  engine->Tick();
  ASSERT_EQ(caller.total_calls, 1);
  ASSERT_TRUE(caller.Answer("TranslateDose", codec::Body(testing::TestDose())));
  engine->Tick();
  auto done = Fetch(*engine, run->run_id);
  EXPECT_EQ(done.state, "succeeded");
  EXPECT_EQ(done.summary, "1 of 1 steps succeeded");
  EXPECT_FALSE(Active(run->run_id));  // no report asked: leaves the active set at once
}

// A reference to a field a step's output lacks fails the step that reads it
// (FailedPrecondition naming the path), not the engine; the run is partial.
TEST_F(EngineTest, MissingPathAtRunTimeFailsTheStep) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  auto run = engine->Start("missing-path", R"({"noaels": [{"species": "rat"}]})");
  ASSERT_TRUE(run.ok()) << run.status();
  engine->Tick();
  ASSERT_TRUE(caller.Answer("TranslateDose", codec::Body(testing::TestDose())));
  engine->Tick();
  auto done = Fetch(*engine, run->run_id);
  EXPECT_EQ(done.state, "partial");
  EXPECT_EQ(StepOf(done, "use").state, "failed");
  EXPECT_EQ(StepOf(done, "use").error_code, "failed_precondition");
  EXPECT_NE(StepOf(done, "use").error.find("steps.dose.no_such_field"), std::string::npos)
      << StepOf(done, "use").error;
  EXPECT_EQ(StepOf(done, "use").error_where.rfind("steps.use.with", 0), 0u)
      << StepOf(done, "use").error_where;
}

// An unknown run is NotFound naming it; List answers newest first, by workflow.
TEST_F(EngineTest, GetAndListRuns) {
  ManualStepCaller caller;
  auto engine = MakeEngine(caller);
  auto missing = engine->Get("run-nope", false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("run-nope"), std::string::npos);

  ASSERT_TRUE(engine->Start("small", R"({"noaels": [{"species": "rat"}]})", "run-a").ok());
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(engine->Start("test-flow", testing::TestInput(), "run-b").ok());
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(engine->Start("small", R"({"noaels": [{"species": "rat"}]})", "run-c").ok());
  auto all = engine->List("", 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].run_id, "run-c");
  EXPECT_EQ((*all)[2].run_id, "run-a");
  auto small = engine->List("small", 1);
  ASSERT_TRUE(small.ok());
  ASSERT_EQ(small->size(), 1u);
  EXPECT_EQ((*small)[0].run_id, "run-c");
}

}  // namespace
}  // namespace fedrx::orchestrator
