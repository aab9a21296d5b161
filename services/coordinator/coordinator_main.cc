#include "services/coordinator/coordinator_main.h"

#include <unistd.h>

#include <iostream>
#include <string>

#include "services/coordinator/coordinator_service.h"
#include "services/core/curve_server.h"
#include "services/core/process.h"

namespace fedrx::coordinator {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-coordinator [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  coordinator.endpoint  ZeroMQ endpoint to serve (tcp://0.0.0.0:5570)\n"
    "  http.listen           /metrics, /healthz, /readyz address (0.0.0.0:9464)\n"
    "  coordinator.upload_timeout (30s), coordinator.evaluation_timeout (30s),\n"
    "  coordinator.site_alive_window (6s), coordinator.secagg_stage_timeout (30s; each\n"
    "  secure-aggregation stage, capped by the study's round deadline)\n"
    "  coordinator.curve_key_file  CURVE: the coordinator's key pair file (0600); with it\n"
    "                              only clients in coordinator.clients_file get through\n"
    "  coordinator.clients_file    CURVE: authorised clients, one a line\n"
    "                              `<id> <role> <public_key_z85>`; a `gateway` role may\n"
    "                              speak for sites (envelope origin), nobody else may\n"
    "  coordinator.replica_id      this replica's id (env FEDRX_COORDINATOR_REPLICA_ID;\n"
    "                              default: the host name); unique per replica\n"
    "  coordinator.lease_ttl       replicas: a study's lease lives this long unless its\n"
    "                              holder renews it (every ttl/3); a dead replica's\n"
    "                              studies are taken over after it (10s)\n"
    "  redis.host, redis.port, redis.password, redis.db, redis.startup_wait\n"
    "  bus.max_envelope_bytes, bus.max_tensor_bytes, bus.high_water_mark";

// The default replica id: the host's name (a StatefulSet pod's name in k8s).
std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "coordinator";
  return name;
}

// coordinator.curve_key_file and coordinator.clients_file: a CURVE server.
core::Status ConfigureCurve(const core::Config& config, core::BusOptions& bus) {
  return core::ConfigureCurveServer(config, bus, "coordinator");
}

core::Result<std::unique_ptr<core::Service>> Make(core::ProcessParts& p) {
  const core::Config& config = p.config;
  CoordinatorOptions options;
  options.endpoint = config.StringOr("coordinator.endpoint", options.endpoint);
  FEDRX_ASSIGN_OR_RETURN(
      options.timings.upload_timeout,
      config.DurationOr("coordinator.upload_timeout", options.timings.upload_timeout));
  FEDRX_ASSIGN_OR_RETURN(
      options.timings.evaluation_timeout,
      config.DurationOr("coordinator.evaluation_timeout", options.timings.evaluation_timeout));
  FEDRX_ASSIGN_OR_RETURN(
      options.timings.secagg_stage_timeout,
      config.DurationOr("coordinator.secagg_stage_timeout", options.timings.secagg_stage_timeout));
  FEDRX_ASSIGN_OR_RETURN(
      options.site_alive_window,
      config.DurationOr("coordinator.site_alive_window", options.site_alive_window));
  options.lease.replica_id = config.StringOr("coordinator.replica_id", HostName());
  FEDRX_ASSIGN_OR_RETURN(options.lease.ttl,
                         config.DurationOr("coordinator.lease_ttl", options.lease.ttl));
  FEDRX_RETURN_IF_ERROR(ValidateLeaseOptions(options.lease));
  std::cerr << "coordinator: replica id " << options.lease.replica_id << ", lease ttl "
            << options.lease.ttl.count() << " ms\n";
  FEDRX_ASSIGN_OR_RETURN(options.authenticated, core::InstallCurveClients(p, "coordinator"));
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<core::RedisStateStore> redis,
                         core::ConnectRedisWithRetry(config, p.metrics, p.clock));
  std::shared_ptr<core::StateStore> store = std::move(redis);
  p.keep_alive.push_back(store);
  return std::unique_ptr<core::Service>(
      std::make_unique<CoordinatorService>(options, p.bus, *store, p.metrics, p.clock));
}

}  // namespace

int Main(int argc, char** argv) {
  return core::RunServiceMain(
      argc, argv, {"fedrx-coordinator", "coordinator", kUsage, {}, ConfigureCurve}, Make);
}

}  // namespace fedrx::coordinator
