// OrchestratorService: the fedrx-orchestrator process's service. Serves
// RunWorkflow, GetWorkflowRun, ListWorkflows, ListWorkflowRuns and
// HealthCheck on one endpoint, and drives the Engine from the runner's loop
// (the engine's step requests go out over the same bus, through a
// BusStepCaller). Every request is counted and timed by body type and code
// (fedrx_orchestrator_requests_total{type,code}, _request_duration_seconds).
// Runs on the runner's thread only; not thread-safe.
#pragma once

#include <chrono>
#include <string>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/service_runner.h"
#include "services/core/state_store.h"
#include "services/core/status.h"
#include "services/orchestrator/engine.h"

namespace fedrx::orchestrator {

struct OrchestratorOptions {
  std::string endpoint = "tcp://127.0.0.1:5585";
  std::string version = "dev";
};

class OrchestratorService final : public core::Service {
 public:
  // Borrows everything; `engine` must use `store` and share this thread.
  OrchestratorService(OrchestratorOptions options, core::Bus& bus, core::StateStore& store,
                      core::Metrics& metrics, const core::Clock& clock, Engine& engine);

  // Serves the endpoint and resumes the unfinished runs (an unreadable store
  // stops startup).
  core::Status Start() override;
  // Takes in step answers and starts the steps that can start.
  core::Status Tick() override;
  // Ready while the store answers.
  core::Readiness CheckReady() override;
  // New runs are refused (Unavailable) from now on; running ones carry on
  // until the process exits and resume at the next start.
  void BeginDrain() override;
  // True once no step request is in flight.
  bool Drained() override;

 private:
  void OnRequest(core::Inbound&& in);
  core::Result<codec::Body> Answer(const codec::Body& body);

  OrchestratorOptions options_;
  core::Bus& bus_;
  core::StateStore& store_;
  core::Metrics& metrics_;
  const core::Clock& clock_;
  Engine& engine_;
  std::chrono::steady_clock::time_point started_;
  bool draining_ = false;
};

// WorkflowInfo of `wf`: its steps in declared order, required inputs first.
codec::WorkflowInfo InfoOf(const Workflow& wf);

}  // namespace fedrx::orchestrator
