// Engine: runs workflows (workflow.h) step by step, durably. Every run and
// every step's state and output is in the StateStore (keys::WorkflowRun,
// keys::WorkflowStepOutput), written before a request is sent and when its
// answer comes, so an engine started on the same store resumes the runs that
// were not finished without repeating steps that succeeded. Runs are
// event-driven: Start() and the read calls answer at once, Tick() starts every
// step whose dependencies have finished and takes in the answers that came
// since, so independent steps are in flight together.
// Not thread-safe: one thread (the service runner's) owns the engine, its
// StateStore and its StepCaller.
//
// Rules a run follows (the record's fields are those of the issue 9 contract,
// plus the ones named here):
// - A pending step starts when every step it needs (its `needs` and the steps
//   its `when` reads) is finished. A needed step that failed skips it with
//   "needs <id>, which failed"; a needed step that was skipped skips it with
//   "needs <id>, which was skipped (<that step's reason>)" - also when that
//   step was skipped by its condition: a step never runs without the outputs
//   it was declared to need. A false `when` skips it with "condition false:
//   <text>". `skipped_by` says "condition" or "failure" (inherited along a
//   chain of skips).
// - Domain steps are stored as running (attempts + 1, the resolved request)
//   before they are sent; local steps run inline. Unavailable,
//   deadline_exceeded and resource_exhausted are retried up to `retries`
//   times after a backoff (the step is pending meanwhile, with `last_error`);
//   any other error fails the step with {code, message, where}. An answer of
//   another body type than the request's answer fails it as internal. An
//   output with a "model" object has it copied to the step's `provenance`.
// - When every step is finished the output function runs over the record
//   (its failure is recorded as `output_error` and makes the run partial);
//   the summary is the output's "summary" or a count of the steps. State:
//   "failed" when a step failed (or was skipped because of a failure) and none
//   succeeded, "partial" when some did, or the output function failed,
//   "succeeded" otherwise.
// - With `report: candidate` the finished record (state, output) is stored
//   first with `report_pending: true`, and the run stays in the active set
//   until the report service has answered: then report_id (or report_error)
//   is recorded and the run leaves the active set. So a client waiting for
//   the report polls until report_id or report_error is set.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/state_store.h"
#include "services/core/status.h"
#include "services/orchestrator/expression.h"
#include "services/orchestrator/local_functions.h"
#include "services/orchestrator/step_caller.h"
#include "services/orchestrator/workflow.h"

namespace fedrx::orchestrator {

struct EngineOptions {
  // Validates "smiles" inputs; default: RDKit parses and sanitises it
  // (RdkitSmilesCheck).
  SmilesCheck smiles_check;
  // Wait before attempt n+1 of a step whose attempt n failed with a
  // retryable code: retry_backoff * 2^(n-1), at most retry_backoff_max.
  std::chrono::milliseconds retry_backoff{250};
  std::chrono::milliseconds retry_backoff_max{4000};
  // How long the report service may take to write a run's report.
  std::chrono::milliseconds report_timeout{60000};
  // ListRuns answers at most this many runs.
  std::uint32_t max_list = 500;
};

// The RDKit check for "smiles" inputs: InvalidArgument with `where` when the
// structure does not parse or sanitise (the message carries RDKit's reason).
core::Status RdkitSmilesCheck(std::string_view smiles, std::string_view where);

// The body type a domain request is answered with ("PredictToxicity" ->
// "ToxicityPanel"); "" for a type that is not a domain request.
std::string_view AnswerTypeOf(std::string_view request_type);

class Engine {
 public:
  // Borrows everything; all must outlive the engine. `workflows` must have
  // unique names (LoadWorkflowDir checks that).
  Engine(core::StateStore& store, const core::Clock& clock, core::Metrics& metrics,
         StepCaller& caller, const LocalFunctions& functions, std::vector<Workflow> workflows,
         EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Loads every run of the active set and carries it on: steps recorded as
  // running are sent again (attempts + 1), succeeded steps keep their output
  // and are never repeated. A run whose record is missing or unreadable, or
  // whose workflow is no longer loaded, is marked failed (DataLoss /
  // FailedPrecondition in its summary) and taken out of the active set; the
  // others go on. Fails only when the store cannot be read at all.
  core::Status Resume();

  // Starts a run of `workflow` on `input_json` (a JSON object). With a
  // non-empty `run_id` that already exists, answers that run and starts
  // nothing. Errors: InvalidArgument for an unknown workflow
  // (where "RunWorkflow.workflow"), input that is not a JSON object
  // ("RunWorkflow.input_json"), input the workflow refuses ("input.<name>"),
  // a malformed run id ("RunWorkflow.run_id"); the store's error when the
  // run cannot be recorded (nothing is started then). The run's steps start at
  // the next Tick().
  core::Result<codec::WorkflowRun> Start(std::string_view workflow, std::string_view input_json,
                                         std::string_view run_id = {});

  // Takes in the answers that came, starts every step that can start, ends
  // the runs whose steps are all finished. Never blocks on a service; a store
  // error is counted and the write retried at the next Tick.
  void Tick();

  // One run (NotFound naming it when there is none). With `include_outputs`,
  // each succeeded step's output and the run's output as JSON text.
  core::Result<codec::WorkflowRun> Get(std::string_view run_id, bool include_outputs);
  // The run record JSON (contract: issue9_contract.md) with each succeeded
  // step's output inlined as steps[i].output; NotFound when there is none.
  core::Result<nlohmann::json> GetRecord(std::string_view run_id);
  // Runs, newest first, of `workflow` ("" = all), at most `limit`
  // (0 = the default 20; capped at options.max_list), without outputs.
  core::Result<std::vector<codec::WorkflowRun>> List(std::string_view workflow,
                                                     std::uint32_t limit);

  const std::vector<Workflow>& workflows() const { return workflows_; }
  const Workflow* FindWorkflow(std::string_view name) const;
  // Runs not yet finished (including those waiting for their report).
  std::size_t active_runs() const { return runs_.size(); }
  // Requests in flight over the StepCaller.
  std::size_t in_flight() const;

 private:
  struct Run;
  struct Completion;
  struct Inbox;

  core::Status LoadActiveRun(const std::string& run_id);
  void MarkUnreadable(const std::string& run_id, const core::Status& why);
  void TickRun(Run& run);
  bool Advance(Run& run);  // true when something changed
  void StartStep(Run& run, std::size_t index);
  void FinishStep(Run& run, std::size_t index, core::Result<nlohmann::json> output);
  void OnCompletion(Completion&& c);
  void MaybeFinishRun(Run& run);
  void RequestReport(Run& run);
  core::Status Persist(Run& run);
  nlohmann::json Scope(const Run& run) const;
  nlohmann::json RecordWithOutputs(const Run& run) const;
  codec::WorkflowRun ToMessage(const nlohmann::json& record,
                               const std::map<std::string, nlohmann::json>* outputs) const;
  std::string NewRunId();
  void UpdateActiveGauge();

  core::StateStore& store_;
  const core::Clock& clock_;
  core::Metrics& metrics_;
  StepCaller& caller_;
  const LocalFunctions& functions_;
  std::vector<Workflow> workflows_;
  EngineOptions options_;
  std::map<std::string, std::unique_ptr<Run>, std::less<>> runs_;  // active, by id
  std::shared_ptr<Inbox> inbox_;
  std::uint64_t id_state_ = 0;

  core::GaugeRef runs_active_;
  core::CounterRef runs_resumed_;
  core::CounterRef runs_unreadable_;
  core::CounterRef store_errors_;
};

}  // namespace fedrx::orchestrator
