#include "services/orchestrator/orchestrator_service.h"

#include <utility>

namespace fedrx::orchestrator {

codec::WorkflowInfo InfoOf(const Workflow& wf) {
  codec::WorkflowInfo info;
  info.name = wf.name;
  info.version = wf.version;
  info.description = wf.description;
  for (const StepSpec& s : wf.steps) info.steps.push_back(s.id);
  for (const InputSpec& in : wf.inputs) {
    if (in.required) info.inputs.push_back(in.name);
  }
  for (const InputSpec& in : wf.inputs) {
    if (!in.required) info.inputs.push_back(in.name);
  }
  return info;
}

OrchestratorService::OrchestratorService(OrchestratorOptions options, core::Bus& bus,
                                         core::StateStore& store, core::Metrics& metrics,
                                         const core::Clock& clock, Engine& engine)
    : options_(std::move(options)),
      bus_(bus),
      store_(store),
      metrics_(metrics),
      clock_(clock),
      engine_(engine) {}

core::Status OrchestratorService::Start() {
  started_ = clock_.Now();
  FEDRX_RETURN_IF_ERROR(engine_.Resume());
  return bus_.Serve(options_.endpoint, [this](core::Inbound&& in) { OnRequest(std::move(in)); });
}

core::Status OrchestratorService::Tick() {
  engine_.Tick();
  return core::Status::Ok();
}

core::Readiness OrchestratorService::CheckReady() {
  const core::Status ping = store_.Ping();
  if (!ping.ok()) return {false, "state store: " + ping.ToString()};
  return {true, ""};
}

void OrchestratorService::BeginDrain() { draining_ = true; }

bool OrchestratorService::Drained() { return engine_.in_flight() == 0; }

core::Result<codec::Body> OrchestratorService::Answer(const codec::Body& body) {
  if (const auto* r = std::get_if<codec::RunWorkflow>(&body)) {
    if (draining_) {
      return core::Unavailable("the orchestrator is shutting down; run again shortly",
                               "orchestrator");
    }
    FEDRX_ASSIGN_OR_RETURN(codec::WorkflowRun run,
                           engine_.Start(r->workflow, r->input_json, r->run_id));
    return codec::Body(std::move(run));
  }
  if (const auto* r = std::get_if<codec::GetWorkflowRun>(&body)) {
    FEDRX_ASSIGN_OR_RETURN(codec::WorkflowRun run, engine_.Get(r->run_id, r->include_outputs));
    return codec::Body(std::move(run));
  }
  if (std::holds_alternative<codec::ListWorkflows>(body)) {
    codec::WorkflowList list;
    for (const Workflow& wf : engine_.workflows()) list.workflows.push_back(InfoOf(wf));
    return codec::Body(std::move(list));
  }
  if (const auto* r = std::get_if<codec::ListWorkflowRuns>(&body)) {
    if (!r->workflow.empty() && engine_.FindWorkflow(r->workflow) == nullptr) {
      return core::InvalidArgument("no workflow named '" + r->workflow + "'",
                                   "ListWorkflowRuns.workflow");
    }
    FEDRX_ASSIGN_OR_RETURN(std::vector<codec::WorkflowRun> runs,
                           engine_.List(r->workflow, r->limit));
    return codec::Body(codec::WorkflowRunList{std::move(runs)});
  }
  return core::Status(core::StatusCode::kUnimplemented,
                      std::string("the orchestrator does not answer ") + codec::BodyName(body),
                      "envelope.body");
}

void OrchestratorService::OnRequest(core::Inbound&& in) {
  const codec::Body& body = in.message.body;
  const char* type = codec::BodyName(body);
  if (std::holds_alternative<codec::HealthCheck>(body)) {
    const core::Readiness ready = CheckReady();
    const double uptime = std::chrono::duration<double>(clock_.Now() - started_).count();
    core::Reply(
        bus_, in,
        codec::HealthStatus{"orchestrator", ready.ready, options_.version, uptime, ready.reason})
        .IgnoreError();
    return;
  }
  const auto begin = clock_.Now();
  core::Result<codec::Body> answer = Answer(body);
  const double seconds = std::chrono::duration<double>(clock_.Now() - begin).count();
  if (answer.ok()) {
    metrics_.ObserveRequest(type, "ok", seconds);
    core::Reply(bus_, in, std::move(*answer)).IgnoreError();
    return;
  }
  const core::Status& s = answer.status();
  metrics_.ObserveRequest(type, core::StatusCodeName(s.code()), seconds);
  if (s.code() == core::StatusCode::kUnimplemented) metrics_.CountRejected("message_type");
  if (s.code() == core::StatusCode::kInvalidArgument) metrics_.CountRejected("bad_request");
  core::ReplyError(bus_, in, s).IgnoreError();
}

}  // namespace fedrx::orchestrator
