#include "gateway/gateway_main.h"

#include "gateway/gateway_service.h"
#include "services/core/process.h"
#include "services/core/zmq_bus.h"

namespace fedrx::gateway {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-gateway [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  gateway.sites_endpoint        where sites connect (tcp://0.0.0.0:5560)\n"
    "  gateway.coordinator_endpoint  the coordinator (tcp://127.0.0.1:5570)\n"
    "  http.listen                   /metrics, /healthz, /readyz (0.0.0.0:9464)\n"
    "  bus.max_envelope_bytes, bus.max_tensor_bytes, bus.high_water_mark";

core::Status Run(int argc, char** argv, int& exit_code) {
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::ConfigFromArgs(argc, argv, kUsage));
  FEDRX_ASSIGN_OR_RETURN(core::BusOptions bus_options, core::BusOptionsFrom(config, "gateway"));
  FEDRX_ASSIGN_OR_RETURN(core::RunnerOptions runner_options, core::RunnerOptionsFrom(config));
  GatewayOptions options;
  options.sites_endpoint = config.StringOr("gateway.sites_endpoint", options.sites_endpoint);
  options.coordinator_endpoint =
      config.StringOr("gateway.coordinator_endpoint", options.coordinator_endpoint);

  core::SystemClock clock;
  core::Metrics metrics("gateway");
  core::ZmqBus bus(bus_options, metrics, clock);
  GatewayService service(options, bus, metrics, clock);
  core::ServiceRunner runner(runner_options, bus, metrics, clock);
  exit_code = runner.Run(service);
  return core::Status::Ok();
}

}  // namespace

int Main(int argc, char** argv) {
  int exit_code = 1;
  if (core::Status s = Run(argc, argv, exit_code); !s.ok()) {
    return core::ExitWith("fedrx-gateway", s);
  }
  return exit_code;
}

}  // namespace fedrx::gateway
