// GatewayService: the one address institutions' sites know. Sites connect
// out to it; it forwards their messages to the coordinator stamped with the
// site they come from (`origin`), and delivers the coordinator's messages to
// the site named in `route_to`. In plaintext mode a site is known by the id it
// registered with; on a CURVE bus (Inbound.identity set) the origin is the
// authenticated identity, re-checked against the registry and audited. Runs on
// the runner's thread; not thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "gateway/gateway_policy.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/service_runner.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"

namespace fedrx::gateway {

struct GatewayOptions {
  // Where sites connect.
  std::string sites_endpoint = "tcp://0.0.0.0:5560";
  // The coordinator behind the gateway.
  std::string coordinator_endpoint = "tcp://127.0.0.1:5570";
  // How often the gateway checks the coordinator answers, and how stale an
  // answer may be before the gateway reports itself not ready.
  std::chrono::milliseconds probe_interval{2000};
  std::chrono::milliseconds probe_stale_after{6000};
};

// What the gateway uses for messages that arrive with an identity (CURVE).
// Either pointer may be null: no status re-check, or no audit trail.
struct GatewaySecurity {
  security::InstitutionRegistry* registry = nullptr;
  security::AuditLog* audit = nullptr;
  // How long an identity's status is trusted before the registry is asked
  // again: a suspended or revoked institution is refused within this time.
  std::chrono::milliseconds status_ttl{2000};
  // Rate, size and replay limits for authenticated identities.
  GatewayLimits limits;
};

class GatewayService final : public core::Service {
 public:
  GatewayService(GatewayOptions options, core::Bus& bus, core::Metrics& metrics,
                 const core::Clock& clock, GatewaySecurity security = {});

  core::Status Start() override;
  core::Status Tick() override;
  core::Readiness CheckReady() override;

  // The site bound to a peer, or empty.
  std::string SiteOf(const core::PeerId& peer) const;
  std::size_t connected_sites() const { return site_to_peer_.size(); }

 private:
  void OnSiteMessage(core::Inbound&& in);
  void OnCoordinatorMessage(codec::Message&& message);
  void Refuse(const core::Inbound& in, const core::Status& status, const char* reason);
  // A message from an authenticated identity: role, status and origin checks,
  // audit, then forwarding.
  void OnIdentifiedMessage(core::Inbound&& in);
  void Deny(const core::Inbound& in, const core::Status& status, const char* reason);
  void Audit(const core::Inbound& in, security::Decision decision, const std::string& reason);
  // OK when the identity's institution is active (from a cache of status_ttl).
  core::Status CheckActive(const std::string& id);
  void Bind(const std::string& site, const core::PeerId& peer);
  void Forward(codec::Message&& m, const std::string& site);

  GatewayOptions options_;
  core::Bus& bus_;
  core::Metrics& metrics_;
  const core::Clock& clock_;
  GatewaySecurity security_;
  struct CachedStatus {
    security::InstitutionStatus status;
    std::chrono::steady_clock::time_point checked_at;
  };
  std::map<std::string, CachedStatus> status_cache_;
  core::ChannelId coordinator_ = -1;
  std::map<std::string, core::PeerId> site_to_peer_;
  std::map<core::PeerId, std::string> peer_to_site_;
  std::chrono::steady_clock::time_point next_probe_{};
  std::chrono::steady_clock::time_point last_coordinator_answer_{};
  bool probe_in_flight_ = false;
  core::CounterRef to_coordinator_;
  core::CounterRef to_sites_;
  core::CounterRef unroutable_;
  core::GaugeRef sites_gauge_;
};

}  // namespace fedrx::gateway
