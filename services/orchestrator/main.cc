// fedrx-orchestrator: runs workflows (deploy/workflows/*.yaml) over the
// domain services and asks the report service to write each candidate's
// report. Runs are durable in Redis and resumed after a restart.
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "services/core/curve_server.h"
#include "services/core/process.h"
#include "services/domain/domain_json.h"
#include "services/domain/redis_address.h"
#include "services/orchestrator/bus_step_caller.h"
#include "services/orchestrator/engine.h"
#include "services/orchestrator/local_functions.h"
#include "services/orchestrator/orchestrator_service.h"
#include "services/orchestrator/workflow.h"

namespace fedrx::orchestrator {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-orchestrator [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  orchestrator.endpoint        where the gateway connects (tcp://127.0.0.1:5585)\n"
    "  orchestrator.redis           the Redis of the run records, host:port (127.0.0.1:6379);\n"
    "                               redis.password, redis.db, redis.*_timeout,\n"
    "                               redis.startup_wait (30s) also apply\n"
    "  orchestrator.workflows_dir   the workflow files, *.yaml (deploy/workflows); a file that\n"
    "                               does not validate stops startup with its file:line\n"
    "  orchestrator.services.<svc>.endpoint  a service steps call (translational, trial, tox,\n"
    "                               clinical, reverse, report); calls to one not set fail as\n"
    "                               unavailable\n"
    "  orchestrator.services.<svc>.public_key_file  CURVE to that service: its public key\n"
    "  orchestrator.key_file        CURVE: the orchestrator's key pair for those connections\n"
    "  orchestrator.curve_key_file  CURVE: the same key pair, for its own endpoint; with\n"
    "  orchestrator.clients_file    CURVE: authorised clients (the gateway), one a line\n"
    "  orchestrator.retry_backoff   wait before a step's first retry, doubling (250ms)\n"
    "  orchestrator.report_timeout  how long the report service may take (60s)\n"
    "  http.listen                  /metrics, /healthz, /readyz (0.0.0.0:9464)\n"
    "  bus.max_envelope_bytes, bus.high_water_mark";

// What the service borrows, kept alive with it.
struct Parts {
  std::unique_ptr<core::StateStore> store;
  LocalFunctions functions;
  std::unique_ptr<BusStepCaller> caller;
  std::unique_ptr<Engine> engine;
};

core::Result<std::unique_ptr<core::Service>> Make(core::ProcessParts& p) {
  OrchestratorOptions options;
  options.endpoint = p.config.StringOr("orchestrator.endpoint", options.endpoint);
  FEDRX_RETURN_IF_ERROR(core::InstallCurveClients(p, "orchestrator").status());

  auto parts = std::make_shared<Parts>();
  parts->functions = BuiltinLocalFunctions();
  const LocalFunctions& functions = parts->functions;
  CallCatalog catalog = [&functions](std::string_view service,
                                     std::string_view call) -> core::Status {
    if (service == "local") {
      if (functions.Find(call) != nullptr) return core::Status::Ok();
      return core::InvalidArgument("no local function '" + std::string(call) + "'");
    }
    if (!domain::IsDomainRequest(call)) {
      return core::InvalidArgument("'" + std::string(call) + "' is not a domain request");
    }
    if (domain::ServiceOfRequest(call) != service) {
      return core::InvalidArgument("the " + std::string(service) + " service does not serve " +
                                   std::string(call) + " (the " +
                                   std::string(domain::ServiceOfRequest(call)) + " service does)");
    }
    return core::Status::Ok();
  };
  const std::string dir = p.config.StringOr("orchestrator.workflows_dir", "deploy/workflows");
  FEDRX_ASSIGN_OR_RETURN(std::vector<Workflow> workflows, LoadWorkflowDir(dir, catalog));
  if (workflows.empty()) {
    return core::FailedPrecondition("no workflow files (*.yaml) in " + dir,
                                    "orchestrator.workflows_dir");
  }

  using Endpoints = std::map<std::string, std::string>;
  FEDRX_ASSIGN_OR_RETURN(Endpoints endpoints, ServiceEndpointsFrom(p.config));
  // A service the workflows call but nobody configured is not fatal (its
  // steps fail as unavailable, the rest of each run stands), but say so once.
  std::map<std::string, std::string> unconfigured;  // service -> workflows
  for (const Workflow& wf : workflows) {
    for (const StepSpec& s : wf.steps) {
      if (s.service == "local" || endpoints.count(s.service) != 0) continue;
      std::string& names = unconfigured[s.service];
      if (names.find(wf.name) == std::string::npos) names += (names.empty() ? "" : ", ") + wf.name;
    }
    if (wf.report == "candidate" && endpoints.count("report") == 0) {
      std::string& names = unconfigured["report"];
      if (names.find(wf.name) == std::string::npos) names += (names.empty() ? "" : ", ") + wf.name;
    }
  }
  for (const auto& [svc, names] : unconfigured) {
    std::cerr << "fedrx-orchestrator: orchestrator.services." << svc
              << ".endpoint is not set; the steps of " << names << " that call it will fail\n";
  }
  std::cerr << "fedrx-orchestrator: " << workflows.size() << " workflow(s) from " << dir << "\n";

  EngineOptions engine_options;
  FEDRX_ASSIGN_OR_RETURN(
      engine_options.retry_backoff,
      p.config.DurationOr("orchestrator.retry_backoff", engine_options.retry_backoff));
  FEDRX_ASSIGN_OR_RETURN(
      engine_options.report_timeout,
      p.config.DurationOr("orchestrator.report_timeout", engine_options.report_timeout));

  FEDRX_ASSIGN_OR_RETURN(
      std::unique_ptr<core::RedisStateStore> store,
      domain::ConnectRedisAt(p.config, "orchestrator.redis", p.metrics, p.clock));
  parts->store = std::move(store);
  parts->caller = std::make_unique<BusStepCaller>(p.bus, std::move(endpoints), &p.clock);
  FEDRX_RETURN_IF_ERROR(parts->caller->Connect());
  parts->engine =
      std::make_unique<Engine>(*parts->store, p.clock, p.metrics, *parts->caller, parts->functions,
                               std::move(workflows), std::move(engine_options));
  auto service = std::make_unique<OrchestratorService>(options, p.bus, *parts->store, p.metrics,
                                                       p.clock, *parts->engine);
  p.keep_alive.push_back(parts);
  return std::unique_ptr<core::Service>(std::move(service));
}

}  // namespace
}  // namespace fedrx::orchestrator

int main(int argc, char** argv) {
  return fedrx::core::RunServiceMain(argc, argv,
                                     {"fedrx-orchestrator",
                                      "orchestrator",
                                      fedrx::orchestrator::kUsage,
                                      {},
                                      fedrx::orchestrator::ConfigureOrchestratorBus},
                                     fedrx::orchestrator::Make);
}
