#include "gateway/gateway_service.h"

#include <iostream>

#include "services/core/keys.h"

namespace fedrx::gateway {

GatewayService::GatewayService(GatewayOptions options, core::Bus& bus, core::Metrics& metrics,
                               const core::Clock& clock)
    : options_(std::move(options)),
      bus_(bus),
      metrics_(metrics),
      clock_(clock),
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

void GatewayService::OnSiteMessage(core::Inbound&& in) {
  codec::Message& m = in.message;
  std::string site;
  if (const auto* reg = std::get_if<codec::RegisterSite>(&m.body)) {
    if (core::Status s = core::ValidateId(reg->site_id, "RegisterSite.site_id"); !s.ok()) {
      Refuse(in, s, "bad_site_id");
      return;
    }
    site = reg->site_id;
    auto bound = site_to_peer_.find(site);
    if (bound != site_to_peer_.end() && bound->second != in.peer) {
      // The site reconnected (a restart gives it a new connection).
      peer_to_site_.erase(bound->second);
    }
    site_to_peer_[site] = in.peer;
    peer_to_site_[in.peer] = site;
    sites_gauge_.Set(static_cast<double>(site_to_peer_.size()));
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
