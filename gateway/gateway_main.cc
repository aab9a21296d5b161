#include "gateway/gateway_main.h"

#include "gateway/gateway_routes.h"
#include "gateway/gateway_service.h"
#include "gateway/registry_authenticator.h"
#include "services/core/curve_keys.h"
#include "services/core/process.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"

namespace fedrx::gateway {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-gateway [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  gateway.sites_endpoint        where sites connect (tcp://0.0.0.0:5560)\n"
    "  gateway.coordinator_endpoint  the coordinator (tcp://127.0.0.1:5570), or its\n"
    "                                replicas as a comma-separated list (each study's\n"
    "                                messages go to the replica driving it)\n"
    "  gateway.probe_interval        how often each coordinator replica and service is\n"
    "                                probed (2s); one that misses a probe gets no more\n"
    "                                study traffic until it answers again\n"
    "  gateway.request_timeout       how long a person's forwarded request waits for its\n"
    "                                service (60s); then the person is answered\n"
    "                                DeadlineExceeded\n"
    "  gateway.curve_key_file        CURVE: the gateway's key pair file (0600); sites must\n"
    "                                then be enrolled and active (needs redis.*)\n"
    "  gateway.coordinator_public_key_file  CURVE to the coordinator: a file holding its\n"
    "                                public key (`public = <z85>`, or its key-pair file);\n"
    "                                the gateway connects with its own key pair (needs\n"
    "                                gateway.curve_key_file)\n"
    "  gateway.services.<name>.endpoint  a service behind the gateway (translational,\n"
    "                                trial, tox, clinical, reverse, orchestrator, report);\n"
    "                                requests for one not set are refused\n"
    "  gateway.services.<name>.public_key_file  CURVE to that service: its public key\n"
    "                                (needs gateway.curve_key_file)\n"
    "  gateway.audit_key_file        the audit trail's HMAC key (64 hex digits, 0600;\n"
    "                                `fedrx keys audit --out FILE`); unkeyed without it\n"
    "  gateway.status_ttl            how long an institution's status is cached (2s)\n"
    "  gateway.limits.<role>.rate    messages a second per identity of role site,\n"
    "                                scientist or admin (50, 20, 10; 0 = unlimited)\n"
    "  gateway.limits.<role>.burst   messages at once after a quiet spell (100, 40, 20)\n"
    "  gateway.limits.<role>.max_message_bytes  largest message (512MiB, 1MiB, 1MiB)\n"
    "  gateway.replay_window         duplicate ids and send times are checked over (5m)\n"
    "  http.listen                   /metrics, /healthz, /readyz (0.0.0.0:9464)\n"
    "  bus.max_envelope_bytes, bus.max_tensor_bytes, bus.high_water_mark";

constexpr char kCurveKeyFile[] = "gateway.curve_key_file";
constexpr char kCoordinatorKeyFile[] = "gateway.coordinator_public_key_file";
constexpr char kAuditKeyFile[] = "gateway.audit_key_file";

// With gateway.curve_key_file, the sites' socket is a CURVE server; with
// gateway.coordinator_public_key_file as well, the connection to the
// coordinator is a CURVE client authenticated by the same key pair.
core::Status ConfigureCurve(const core::Config& config, core::BusOptions& bus) {
  if (config.Has(kCoordinatorKeyFile) && !config.Has(kCurveKeyFile)) {
    return core::InvalidArgument(
        std::string("a CURVE connection to the coordinator needs the gateway's own key pair: "
                    "set ") +
            kCurveKeyFile + " as well (" + kCoordinatorKeyFile + " is set at " +
            config.SourceOf(kCoordinatorKeyFile) + ")",
        kCurveKeyFile);
  }
  for (std::string_view name : DomainServices()) {
    const std::string key_file = "gateway.services." + std::string(name) + ".public_key_file";
    if (config.Has(key_file) && !config.Has(kCurveKeyFile)) {
      return core::InvalidArgument("a CURVE connection to the " + std::string(name) +
                                       " service needs the gateway's own key pair: set " +
                                       kCurveKeyFile + " as well",
                                   kCurveKeyFile);
    }
  }
  if (!config.Has(kCurveKeyFile)) return core::Status::Ok();
  FEDRX_ASSIGN_OR_RETURN(std::string path, config.String(kCurveKeyFile));
  FEDRX_ASSIGN_OR_RETURN(core::CurveKeyPair pair, core::LoadCurveKeyPair(path));
  bus.curve_public_key = pair.public_key;
  bus.curve_secret_key = pair.secret_key;
  if (config.Has(kCoordinatorKeyFile)) {
    FEDRX_ASSIGN_OR_RETURN(std::string server, config.String(kCoordinatorKeyFile));
    FEDRX_ASSIGN_OR_RETURN(bus.curve_server_key, core::LoadCurvePublicKey(server));
  }
  for (std::string_view name : DomainServices()) {
    const std::string prefix = "gateway.services." + std::string(name) + ".";
    if (!config.Has(prefix + "public_key_file")) continue;
    if (!config.Has(prefix + "endpoint")) {
      return core::InvalidArgument("a public key without an endpoint", prefix + "endpoint");
    }
    FEDRX_ASSIGN_OR_RETURN(std::string endpoint, config.String(prefix + "endpoint"));
    FEDRX_ASSIGN_OR_RETURN(std::string key_path, config.String(prefix + "public_key_file"));
    FEDRX_ASSIGN_OR_RETURN(bus.curve_server_keys[endpoint], core::LoadCurvePublicKey(key_path));
  }
  return core::Status::Ok();
}

// The registry, audit log and authenticator of CURVE mode, kept alive with the service.
struct SecurityParts {
  std::unique_ptr<core::RedisStateStore> store;
  std::unique_ptr<security::InstitutionRegistry> registry;
  std::unique_ptr<security::AuditLog> audit;
  std::unique_ptr<RegistryAuthenticator> authenticator;
};

core::Result<std::unique_ptr<core::Service>> Make(core::ProcessParts& p) {
  GatewayOptions options;
  options.sites_endpoint = p.config.StringOr("gateway.sites_endpoint", options.sites_endpoint);
  options.coordinator_endpoint =
      p.config.StringOr("gateway.coordinator_endpoint", options.coordinator_endpoint);
  FEDRX_RETURN_IF_ERROR(CoordinatorEndpoints(options.coordinator_endpoint).status());
  FEDRX_ASSIGN_OR_RETURN(options.probe_interval,
                         p.config.DurationOr("gateway.probe_interval", options.probe_interval));
  if (options.probe_interval.count() <= 0) {
    return core::InvalidArgument("probe_interval must be positive", "gateway.probe_interval");
  }
  FEDRX_ASSIGN_OR_RETURN(options.request_timeout,
                         p.config.DurationOr("gateway.request_timeout", options.request_timeout));
  if (options.request_timeout.count() <= 0) {
    return core::InvalidArgument("request_timeout must be positive", "gateway.request_timeout");
  }
  // Readiness tolerates two missed probes, as with the defaults (2s, 6s).
  options.probe_stale_after = 3 * options.probe_interval;
  for (std::string_view name : DomainServices()) {
    const std::string key = "gateway.services." + std::string(name) + ".endpoint";
    if (!p.config.Has(key)) continue;
    FEDRX_ASSIGN_OR_RETURN(options.service_endpoints[std::string(name)], p.config.String(key));
  }
  GatewaySecurity security;
  if (p.config.Has(kCurveKeyFile)) {
    FEDRX_ASSIGN_OR_RETURN(security.status_ttl,
                           p.config.DurationOr("gateway.status_ttl", security.status_ttl));
    FEDRX_RETURN_IF_ERROR(LoadGatewayLimits(p.config, security.limits));
    auto parts = std::make_shared<SecurityParts>();
    FEDRX_ASSIGN_OR_RETURN(parts->store, core::ConnectRedisWithRetry(p.config, p.metrics, p.clock));
    parts->registry = std::make_unique<security::InstitutionRegistry>(*parts->store, p.clock);
    parts->audit = std::make_unique<security::AuditLog>(*parts->store, p.clock, p.metrics);
    if (p.config.Has(kAuditKeyFile)) {
      FEDRX_ASSIGN_OR_RETURN(std::string key_path, p.config.String(kAuditKeyFile));
      FEDRX_ASSIGN_OR_RETURN(std::string key, security::LoadAuditKey(key_path));
      FEDRX_RETURN_IF_ERROR(parts->audit->SetKey(std::move(key)));
    }
    parts->authenticator = std::make_unique<RegistryAuthenticator>(*parts->registry);
    p.bus.SetAuthenticator(parts->authenticator.get());
    security.registry = parts->registry.get();
    security.audit = parts->audit.get();
    security.store = parts->store.get();
    p.keep_alive.push_back(parts);
  }
  return std::unique_ptr<core::Service>(
      std::make_unique<GatewayService>(options, p.bus, p.metrics, p.clock, security));
}

}  // namespace

int Main(int argc, char** argv) {
  return core::RunServiceMain(argc, argv, {"fedrx-gateway", "gateway", kUsage, {}, ConfigureCurve},
                              Make);
}

}  // namespace fedrx::gateway
