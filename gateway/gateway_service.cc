#include "gateway/gateway_service.h"

#include <iostream>

#include "services/core/keys.h"

namespace fedrx::gateway {

GatewayService::GatewayService(GatewayOptions options, core::Bus& bus, core::Metrics& metrics,
                               const core::Clock& clock, GatewaySecurity security)
    : options_(std::move(options)),
      bus_(bus),
      metrics_(metrics),
      clock_(clock),
      security_(security),
      to_coordinator_(metrics.Counter("forwarded_total", "Messages forwarded",
                                      {{"direction", "to_coordinator"}})),
      to_sites_(metrics.Counter("forwarded_total", "Messages forwarded", {{"direction", "to_site"}})),
      unroutable_(metrics.Counter("unroutable_total",
                                  "Coordinator messages for a site not connected here")),
      sites_gauge_(metrics.Gauge("sites_connected", "Sites bound to a connection")) {}

core::Status GatewayService::Start() {
  FEDRX_RETURN_IF_ERROR(bus_.Serve(options_.sites_endpoint, [this](core::Inbound&& in) {
    OnSiteMessage(std::move(in));
  }));
  FEDRX_ASSIGN_OR_RETURN(coordinator_,
                         bus_.Connect(options_.coordinator_endpoint, [this](codec::Message&& m) {
                           OnCoordinatorMessage(std::move(m));
                         }));
  return core::Status::Ok();
}

void GatewayService::Refuse(const core::Inbound& in, const core::Status& status,
                            const char* reason) {
  metrics_.CountRejected(reason);
  core::ReplyError(bus_, in, status).IgnoreError();
}

namespace {

// The bodies a site sends through the gateway.
bool IsSiteMessage(const codec::Body& body) {
  return std::holds_alternative<codec::RegisterSite>(body) ||
         std::holds_alternative<codec::Heartbeat>(body) ||
         std::holds_alternative<codec::UpdateReady>(body) ||
         std::holds_alternative<codec::ModelUpdate>(body) ||
         std::holds_alternative<codec::EvaluationResult>(body) ||
         std::holds_alternative<codec::GetStudy>(body);
}

std::uint64_t TensorBytes(const codec::Message& m) {
  std::uint64_t bytes = 0;
  for (const auto& t : m.tensors) bytes += t.data.size();
  return bytes;
}

core::Status PermissionDenied(std::string message, std::string where) {
  return core::Status(core::StatusCode::kPermissionDenied, std::move(message), std::move(where));
}

}  // namespace

void GatewayService::Deny(const core::Inbound& in, const core::Status& status, const char* reason) {
  metrics_
      .Counter("denied_total", "Messages from authenticated peers refused", {{"reason", reason}})
      .Inc();
  Audit(in, security::Decision::kDenied, status.message());
  Refuse(in, status, reason);
}

void GatewayService::Audit(const core::Inbound& in, security::Decision decision,
                           const std::string& reason) {
  if (security_.audit == nullptr) return;
  security::AuditRecord record;
  record.actor = in.identity;
  record.role = in.role;
  record.action = codec::BodyName(in.message.body);
  record.decision = decision;
  record.reason = reason;
  record.message_id = in.message.header.message_id;
  record.bytes = TensorBytes(in.message);
  // The log counts its own failures; the message's fate does not depend on it.
  if (auto appended = security_.audit->Append(record); !appended.ok()) {
    std::cerr << "gateway: audit append failed for " << in.identity << ": " << appended.status()
              << "\n";
  }
}

core::Status GatewayService::CheckActive(const std::string& id) {
  if (security_.registry == nullptr) return core::Status::Ok();
  const auto now = clock_.Now();
  auto cached = status_cache_.find(id);
  if (cached == status_cache_.end() || now - cached->second.checked_at >= security_.status_ttl) {
    auto found = security_.registry->Get(id);
    if (!found.ok()) {
      // Fail closed: an identity the registry cannot confirm is not admitted.
      status_cache_.erase(id);
      if (found.status().code() == core::StatusCode::kNotFound) {
        return PermissionDenied("institution '" + id + "' is not enrolled", "identity");
      }
      return core::Unavailable("cannot check institution '" + id + "': " + found.status().message(),
                               "identity");
    }
    cached = status_cache_.insert_or_assign(id, CachedStatus{found->status, now}).first;
  }
  if (cached->second.status != security::InstitutionStatus::kActive) {
    return PermissionDenied(
        "institution '" + id + "' is " + security::InstitutionStatusName(cached->second.status),
        "identity");
  }
  return core::Status::Ok();
}

void GatewayService::OnIdentifiedMessage(core::Inbound&& in) {
  const char* type = codec::BodyName(in.message.body);
  if (core::Status s = CheckActive(in.identity); !s.ok()) {
    Deny(in, s, s.code() == core::StatusCode::kPermissionDenied ? "inactive" : "registry_error");
    return;
  }
  if (!IsSiteMessage(in.message.body)) {
    Deny(in,
         PermissionDenied(std::string(type) + " is not accepted at the sites' gateway",
                          "envelope.body"),
         "message_type");
    return;
  }
  if (in.role != security::RoleName(security::Role::kSite)) {
    Deny(in, PermissionDenied("role '" + in.role + "' may not send " + type, "identity.role"),
         "role");
    return;
  }
  if (const auto* reg = std::get_if<codec::RegisterSite>(&in.message.body);
      reg != nullptr && reg->site_id != in.identity) {
    Deny(in,
         PermissionDenied("site_id '" + reg->site_id + "' is not the authenticated identity '" +
                              in.identity + "'",
                          "RegisterSite.site_id"),
         "origin_mismatch");
    return;
  }
  Audit(in, security::Decision::kAdmitted, "");
  // The connection is authenticated, so any admitted message (re)binds it.
  const std::string site = in.identity;
  Bind(site, in.peer);
  Forward(std::move(in.message), site);
}

void GatewayService::Bind(const std::string& site, const core::PeerId& peer) {
  auto bound = site_to_peer_.find(site);
  if (bound != site_to_peer_.end() && bound->second != peer) {
    // The site reconnected (a restart gives it a new connection).
    peer_to_site_.erase(bound->second);
  }
  site_to_peer_[site] = peer;
  peer_to_site_[peer] = site;
  sites_gauge_.Set(static_cast<double>(site_to_peer_.size()));
}

void GatewayService::OnSiteMessage(core::Inbound&& in) {
  if (!in.identity.empty()) {
    OnIdentifiedMessage(std::move(in));
    return;
  }
  codec::Message& m = in.message;
  std::string site;
  if (const auto* reg = std::get_if<codec::RegisterSite>(&m.body)) {
    if (core::Status s = core::ValidateId(reg->site_id, "RegisterSite.site_id"); !s.ok()) {
      Refuse(in, s, "bad_site_id");
      return;
    }
    site = reg->site_id;
    Bind(site, in.peer);
  } else {
    auto it = peer_to_site_.find(in.peer);
    if (it == peer_to_site_.end()) {
      Refuse(in,
             core::FailedPrecondition(std::string("a site must register before sending ") +
                                          codec::BodyName(m.body),
                                      "envelope.origin"),
             "unregistered");
      return;
    }
    site = it->second;
  }
  Forward(std::move(m), site);
}

void GatewayService::Forward(codec::Message&& m, const std::string& site) {
  // Whatever the sender wrote, the origin is the site bound to this connection.
  m.header.origin = site;
  m.header.route_to.clear();
  if (core::Status s = bus_.Send(coordinator_, std::move(m)); !s.ok()) {
    metrics_.CountError("gateway", "forward");
    std::cerr << "gateway: could not forward a message from " << site << ": " << s << "\n";
    return;
  }
  to_coordinator_.Inc();
}

void GatewayService::OnCoordinatorMessage(codec::Message&& message) {
  const std::string site = message.header.route_to;
  auto it = site_to_peer_.find(site);
  if (site.empty() || it == site_to_peer_.end()) {
    unroutable_.Inc();
    std::cerr << "gateway: no connected site '" << site << "' for a "
              << codec::BodyName(message.body) << " (id " << message.header.message_id << ")\n";
    return;
  }
  if (core::Status s = bus_.SendTo(it->second, std::move(message)); !s.ok()) {
    metrics_.CountError("gateway", "deliver");
    std::cerr << "gateway: could not deliver to " << site << ": " << s << "\n";
    if (s.code() == core::StatusCode::kUnavailable) {
      // The connection is gone; the site will register again when it returns.
      peer_to_site_.erase(it->second);
      site_to_peer_.erase(it);
      sites_gauge_.Set(static_cast<double>(site_to_peer_.size()));
    }
    return;
  }
  to_sites_.Inc();
}

core::Status GatewayService::Tick() {
  const auto now = clock_.Now();
  if (probe_in_flight_ || now < next_probe_) return core::Status::Ok();
  next_probe_ = now + options_.probe_interval;
  probe_in_flight_ = true;
  return bus_.Request(coordinator_, core::MakeMessage(codec::HealthCheck{}), options_.probe_interval,
                      [this](core::Result<codec::Message>&& reply) {
                        probe_in_flight_ = false;
                        if (reply.ok()) last_coordinator_answer_ = clock_.Now();
                      });
}

core::Readiness GatewayService::CheckReady() {
  if (last_coordinator_answer_ == std::chrono::steady_clock::time_point{} ||
      clock_.Now() - last_coordinator_answer_ > options_.probe_stale_after) {
    return {false, "coordinator not answering at " + options_.coordinator_endpoint};
  }
  return {true, ""};
}

std::string GatewayService::SiteOf(const core::PeerId& peer) const {
  auto it = peer_to_site_.find(peer);
  return it == peer_to_site_.end() ? std::string() : it->second;
}

}  // namespace fedrx::gateway
