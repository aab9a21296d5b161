#include "services/coordinator/coordinator_main.h"

#include <iostream>

#include "services/coordinator/coordinator_service.h"
#include "services/core/curve_keys.h"
#include "services/core/process.h"
#include "services/core/static_authenticator.h"

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
    "  redis.host, redis.port, redis.password, redis.db, redis.startup_wait\n"
    "  bus.max_envelope_bytes, bus.max_tensor_bytes, bus.high_water_mark";

constexpr char kCurveKeyFile[] = "coordinator.curve_key_file";
constexpr char kClientsFile[] = "coordinator.clients_file";

// CURVE mode needs both keys: a key pair without clients would admit nobody,
// clients without a key pair would leave the socket plaintext.
core::Result<bool> CurveMode(const core::Config& config) {
  const bool keys = config.Has(kCurveKeyFile);
  const bool clients = config.Has(kClientsFile);
  if (keys != clients) {
    const char* missing = keys ? kClientsFile : kCurveKeyFile;
    const char* given = keys ? kCurveKeyFile : kClientsFile;
    return core::InvalidArgument(std::string("CURVE mode needs ") + missing + " as well as " +
                                     given + " (set at " + config.SourceOf(given) + ")",
                                 missing);
  }
  return keys;
}

// With coordinator.curve_key_file, the served socket is a CURVE server.
core::Status ConfigureCurve(const core::Config& config, core::BusOptions& bus) {
  FEDRX_ASSIGN_OR_RETURN(bool curve, CurveMode(config));
  if (!curve) return core::Status::Ok();
  FEDRX_ASSIGN_OR_RETURN(std::string path, config.String(kCurveKeyFile));
  FEDRX_ASSIGN_OR_RETURN(core::CurveKeyPair pair, core::LoadCurveKeyPair(path));
  bus.curve_public_key = pair.public_key;
  bus.curve_secret_key = pair.secret_key;
  return core::Status::Ok();
}

core::Result<std::unique_ptr<core::Service>> Make(core::ProcessParts& p) {
  const core::Config& config = p.config;
  CoordinatorOptions options;
  options.endpoint = config.StringOr("coordinator.endpoint", options.endpoint);
  FEDRX_ASSIGN_OR_RETURN(options.timings.upload_timeout,
                         config.DurationOr("coordinator.upload_timeout",
                                           options.timings.upload_timeout));
  FEDRX_ASSIGN_OR_RETURN(options.timings.evaluation_timeout,
                         config.DurationOr("coordinator.evaluation_timeout",
                                           options.timings.evaluation_timeout));
  FEDRX_ASSIGN_OR_RETURN(options.timings.secagg_stage_timeout,
                         config.DurationOr("coordinator.secagg_stage_timeout",
                                           options.timings.secagg_stage_timeout));
  FEDRX_ASSIGN_OR_RETURN(options.site_alive_window,
                         config.DurationOr("coordinator.site_alive_window",
                                           options.site_alive_window));
  FEDRX_ASSIGN_OR_RETURN(options.authenticated, CurveMode(config));
  if (options.authenticated) {
    FEDRX_ASSIGN_OR_RETURN(std::string clients, config.String(kClientsFile));
    FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<core::StaticAuthenticator> authenticator,
                           core::StaticAuthenticator::Load(clients));
    std::cerr << "coordinator: CURVE mode, " << authenticator->size()
              << " authorised client key(s) from " << clients << "\n";
    std::shared_ptr<core::StaticAuthenticator> shared = std::move(authenticator);
    p.bus.SetAuthenticator(shared.get());
    p.keep_alive.push_back(shared);
  }
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
