#include "gateway/gateway_main.h"

#include "gateway/gateway_service.h"
#include "services/core/process.h"

namespace fedrx::gateway {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-gateway [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  gateway.sites_endpoint        where sites connect (tcp://0.0.0.0:5560)\n"
    "  gateway.coordinator_endpoint  the coordinator (tcp://127.0.0.1:5570)\n"
    "  http.listen                   /metrics, /healthz, /readyz (0.0.0.0:9464)\n"
    "  bus.max_envelope_bytes, bus.max_tensor_bytes, bus.high_water_mark";

core::Result<std::unique_ptr<core::Service>> Make(core::ProcessParts& p) {
  GatewayOptions options;
  options.sites_endpoint = p.config.StringOr("gateway.sites_endpoint", options.sites_endpoint);
  options.coordinator_endpoint =
      p.config.StringOr("gateway.coordinator_endpoint", options.coordinator_endpoint);
  return std::unique_ptr<core::Service>(
      std::make_unique<GatewayService>(options, p.bus, p.metrics, p.clock));
}

}  // namespace

int Main(int argc, char** argv) {
  return core::RunServiceMain(argc, argv, {"fedrx-gateway", "gateway", kUsage, {}}, Make);
}

}  // namespace fedrx::gateway
