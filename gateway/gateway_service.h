// GatewayService: the one address institutions know. Sites connect out to
// it; it forwards their messages to the coordinator stamped with the site
// they come from (`origin`), and delivers the coordinator's messages to the
// site named in `route_to`. In plaintext mode a site is known by the id it
// registered with. On a CURVE bus (Inbound.identity set) every message is
// judged by its authenticated identity: the institution must be active, its
// role may send the message (gateway_policy.h), within its rate and size
// limits, never a replay; a site acts only for itself and in studies that
// name it. Every decision goes to the audit trail. Admins manage
// institutions and check the audit trail here; scientists' and admins'
// requests to the coordinator are forwarded and their answers returned by
// correlation; requests for a domain service (translational, trial, ...;
// gateway_routes.h) go to that service the same way. Runs on the runner's
// thread; not thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gateway/gateway_policy.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/service_runner.h"
#include "services/core/state_store.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"

namespace fedrx::gateway {

struct GatewayOptions {
  // Where sites connect.
  std::string sites_endpoint = "tcp://0.0.0.0:5560";
  // The coordinator behind the gateway: one endpoint, or a comma-separated
  // list of its replicas (CoordinatorEndpoints). With replicas, a site's
  // message about a study goes to the replica that drives the study (learnt
  // from which replica last sent that study's messages to sites; to every
  // live replica while unknown or down: the others drop it), heartbeats go
  // to every live replica, registration to one live replica (copies to the
  // others, whose answers are dropped, so each learns the site's preparation
  // hash), and people's requests to the study's replica or any live one.
  std::string coordinator_endpoint = "tcp://127.0.0.1:5570";
  // The domain services behind the gateway, by name (DomainServices()). A
  // request for a service not listed is refused as unavailable.
  std::map<std::string, std::string> service_endpoints;
  // How often the gateway checks the coordinator answers, and how stale an
  // answer may be before the gateway reports itself not ready.
  std::chrono::milliseconds probe_interval{2000};
  std::chrono::milliseconds probe_stale_after{6000};
  // How long a person's forwarded request waits for the coordinator's answer
  // before the gateway forgets it.
  std::chrono::milliseconds request_timeout{60000};
  // Reported in HealthStatus.
  std::string version = "dev";
};

// The endpoints of gateway.coordinator_endpoint, split at commas with
// surrounding spaces trimmed; kInvalidArgument naming the key for an empty
// list, an empty entry or a repeated endpoint.
core::Result<std::vector<std::string>> CoordinatorEndpoints(const std::string& list);

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
  // Where studies' site lists are read (keys::StudySites); null: not checked.
  core::StateStore* store = nullptr;
};

class GatewayService final : public core::Service {
 public:
  GatewayService(GatewayOptions options, core::Bus& bus, core::Metrics& metrics,
                 const core::Clock& clock, GatewaySecurity security = {});

  core::Status Start() override;
  core::Status Tick() override;
  core::Readiness CheckReady() override;
  // Writes the audit records still queued.
  void BeginDrain() override;

  // The site bound to a peer, or empty.
  std::string SiteOf(const core::PeerId& peer) const;
  std::size_t connected_sites() const { return site_to_peer_.size(); }
  // Requests of people (scientists, admins) forwarded and not yet answered.
  std::size_t pending_requests() const { return pending_.size(); }

 private:
  void OnSiteMessage(core::Inbound&& in);
  void OnCoordinatorMessage(std::size_t replica, codec::Message&& message);
  // An answer from a domain service: delivered to the person who asked.
  void OnServiceMessage(const std::string& service, codec::Message&& message);
  bool DeliverToPerson(codec::Message& message);
  void ProbeServices();
  void Refuse(const core::Inbound& in, const core::Status& status, const char* reason);
  core::CounterRef CachedCounter(const char* name, const char* help, const char* label,
                                 const std::string& value);

  // --- Authenticated traffic (CURVE) ---------------------------------------
  // Checks in order: institution active, role may send the body, rate limit,
  // size limit, replay, then the body's own rules (a site acts only for
  // itself and in studies that name it); audits the decision; then answers
  // (health, administration) or forwards.
  void OnIdentifiedMessage(core::Inbound&& in);
  struct IdentityState;
  IdentityState& StateOf(const core::Inbound& in);
  // OK, or the denial and its reason label.
  core::Status CheckBody(const core::Inbound& in, const char** reason);
  core::Status CheckStudyNamesSite(const std::string& study_id, const std::string& site);
  void Deny(const core::Inbound& in, const core::Status& status, const char* reason);
  void RateLimited(const core::Inbound& in, IdentityState& state, const RoleLimits& limits);
  void Audit(const core::Inbound& in, security::Decision decision, const std::string& reason);
  void AuditEvent(const std::string& actor, const std::string& role, const std::string& action,
                  security::Decision decision, const std::string& reason);
  // OK when the identity's institution is active (from a cache of status_ttl).
  core::Status CheckActive(const std::string& id);
  // Health and administration, answered here.
  void AnswerHealth(const core::Inbound& in);
  void AnswerAdmin(const core::Inbound& in);
  core::Result<codec::Body> Administer(const core::Inbound& in);
  // A person's request: forwarded under a gateway id, answered by correlation.
  void ForwardRequest(core::Inbound&& in);
  // Drops identities whose institution is no longer active; flushes
  // rate-limit summaries to the audit trail; forgets unanswered requests.
  void Sweep();
  void Bind(const std::string& site, const core::PeerId& peer);
  void Unbind(const std::string& site);
  void Forward(codec::Message&& m, const std::string& site);
  // Coordinator replicas: the one a site's or person's message goes to.
  // The first live replica (the first of all when none answers).
  std::size_t PrimaryReplica() const;
  // The live replica known to drive `study`, if any.
  std::optional<std::size_t> OwnerOf(const std::string& study) const;
  core::Status SendToReplica(std::size_t replica, codec::Message m);
  // Sends `m` to every live replica (every replica when none answers); OK
  // when at least one send succeeded.
  core::Status SendToEveryReplica(codec::Message m, bool duplicate_ids);
  void ProbeCoordinators();
  void FlushAudit();
  void QueueAudit(const security::AuditRecord& record);

  GatewayOptions options_;
  core::Bus& bus_;
  core::Metrics& metrics_;
  const core::Clock& clock_;
  GatewaySecurity security_;
  std::chrono::steady_clock::time_point started_;
  struct CachedStatus {
    security::InstitutionStatus status;
    std::chrono::steady_clock::time_point checked_at;
  };
  std::map<std::string, CachedStatus> status_cache_;
  struct CachedSites {
    std::vector<std::string> sites;
    std::chrono::steady_clock::time_point checked_at;
  };
  std::map<std::string, CachedSites> study_sites_cache_;
  struct IdentityState {
    std::string role;
    std::optional<TokenBucket> bucket;
    std::optional<ReplayGuard> replay;
    // Rate-limited messages refused since the last audit record about them.
    std::uint64_t limited_since_audit = 0;
    bool limited_audited = false;
  };
  std::map<std::string, IdentityState> identities_;
  struct Pending {
    core::PeerId peer;
    std::string original_id;
    std::chrono::steady_clock::time_point expires;
    std::string service;  // where it went ("coordinator" or a domain service)
  };
  // The counter of forwarded requests that `service` did not answer in time.
  core::CounterRef TimeoutCounter(const std::string& service);
  std::map<std::string, Pending> pending_;
  std::uint64_t next_request_ = 0;
  std::chrono::steady_clock::time_point next_sweep_{};

  // One coordinator replica behind the gateway and what its probes said.
  struct Replica {
    std::string endpoint;
    core::ChannelId channel = -1;
    bool probe_in_flight = false;
    // False once a probe failed, true again when one is answered.
    bool up = true;
    std::chrono::steady_clock::time_point last_answer{};
    core::GaugeRef up_gauge;
    core::CounterRef routed;
  };
  std::vector<Replica> replicas_;
  // Which replica drives a study: the one that last sent its messages to sites.
  std::map<std::string, std::size_t> study_owner_;
  // Ids of registration copies sent to the other replicas; their answers
  // are dropped. Forgotten after request_timeout.
  std::map<std::string, std::chrono::steady_clock::time_point> duplicate_ids_;
  std::uint64_t next_duplicate_ = 0;
  core::CounterRef owner_changes_;
  core::CounterRef owner_unknown_;
  // A domain service behind the gateway and what its health probes said.
  struct Backend {
    std::string endpoint;
    core::ChannelId channel = -1;
    bool probe_in_flight = false;
    // False once a probe failed, true again when one is answered.
    bool up = true;
    core::GaugeRef up_gauge;
    core::CounterRef forwarded;
  };
  std::map<std::string, Backend, std::less<>> backends_;
  std::map<std::string, core::PeerId> site_to_peer_;
  std::map<core::PeerId, std::string> peer_to_site_;
  std::chrono::steady_clock::time_point next_probe_{};
  core::CounterRef to_coordinator_;
  core::CounterRef to_sites_;
  core::CounterRef to_people_;
  core::CounterRef unroutable_;
  core::CounterRef sessions_dropped_;
  core::GaugeRef sites_gauge_;
  std::map<std::string, core::CounterRef> counters_;
  std::map<std::string, core::HistogramRef> tensor_bytes_;
};

}  // namespace fedrx::gateway
