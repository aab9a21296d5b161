#include "services/coordinator/coordinator_main.h"

#include "services/coordinator/coordinator_service.h"
#include "services/core/process.h"
#include "services/core/zmq_bus.h"

namespace fedrx::coordinator {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-coordinator [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  coordinator.endpoint  ZeroMQ endpoint to serve (tcp://0.0.0.0:5570)\n"
    "  http.listen           /metrics, /healthz, /readyz address (0.0.0.0:9464)\n"
    "  coordinator.upload_timeout (30s), coordinator.evaluation_timeout (30s),\n"
    "  coordinator.site_alive_window (6s)\n"
    "  redis.host, redis.port, redis.password, redis.db, redis.startup_wait\n"
    "  bus.max_envelope_bytes, bus.max_tensor_bytes, bus.high_water_mark";

core::Status Run(int argc, char** argv, int& exit_code) {
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::ConfigFromArgs(argc, argv, kUsage));
  FEDRX_ASSIGN_OR_RETURN(core::BusOptions bus_options, core::BusOptionsFrom(config, "coordinator"));
  FEDRX_ASSIGN_OR_RETURN(core::RunnerOptions runner_options, core::RunnerOptionsFrom(config));
  CoordinatorOptions options;
  options.endpoint = config.StringOr("coordinator.endpoint", options.endpoint);
  FEDRX_ASSIGN_OR_RETURN(options.timings.upload_timeout,
                         config.DurationOr("coordinator.upload_timeout",
                                           options.timings.upload_timeout));
  FEDRX_ASSIGN_OR_RETURN(options.timings.evaluation_timeout,
                         config.DurationOr("coordinator.evaluation_timeout",
                                           options.timings.evaluation_timeout));
  FEDRX_ASSIGN_OR_RETURN(options.site_alive_window,
                         config.DurationOr("coordinator.site_alive_window",
                                           options.site_alive_window));

  core::SystemClock clock;
  core::Metrics metrics("coordinator");
  FEDRX_ASSIGN_OR_RETURN(auto store, core::ConnectRedisWithRetry(config, metrics, clock));
  core::ZmqBus bus(bus_options, metrics, clock);
  CoordinatorService service(options, bus, *store, metrics, clock);
  core::ServiceRunner runner(runner_options, bus, metrics, clock);
  exit_code = runner.Run(service);
  return core::Status::Ok();
}

}  // namespace

int Main(int argc, char** argv) {
  int exit_code = 1;
  core::Status s = Run(argc, argv, exit_code);
  if (!s.ok()) return core::ExitWith("fedrx-coordinator", s);
  return exit_code;
}

}  // namespace fedrx::coordinator
