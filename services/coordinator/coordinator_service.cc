#include "services/coordinator/coordinator_service.h"

#include <chrono>

namespace fedrx::coordinator {

CoordinatorService::CoordinatorService(CoordinatorOptions options, core::Bus& bus,
                                       core::StateStore& store, core::Metrics& metrics,
                                       const core::Clock& clock)
    : options_(std::move(options)),
      bus_(bus),
      store_(store),
      clock_(clock),
      dispatcher_(bus, metrics, clock),
      sites_(store, clock, metrics),
      started_(clock.Now()) {
  dispatcher_.On<codec::RegisterSite>(
      [this](core::Inbound& in, codec::RegisterSite& b) { return OnRegisterSite(in, b); });
  dispatcher_.On<codec::ListSites>(
      [this](core::Inbound& in, codec::ListSites& b) { return OnListSites(in, b); });
  dispatcher_.On<codec::HealthCheck>(
      [this](core::Inbound& in, codec::HealthCheck& b) { return OnHealthCheck(in, b); });
}

core::Status CoordinatorService::Start() {
  FEDRX_RETURN_IF_ERROR(bus_.Serve(options_.endpoint, dispatcher_.AsHandler()));
  // The store may come up later; readiness reports it, the process keeps running.
  last_ready_ = CheckReady();
  return core::Status::Ok();
}

core::Readiness CoordinatorService::CheckReady() {
  if (draining_) return {false, "draining"};
  if (core::Status s = store_.Ping(); !s.ok()) {
    last_ready_ = {false, "state store unreachable: " + s.ToString()};
  } else {
    last_ready_ = {true, ""};
  }
  return last_ready_;
}

core::Result<core::Response> CoordinatorService::OnRegisterSite(core::Inbound&,
                                                                codec::RegisterSite& body) {
  if (draining_) return core::Unavailable("coordinator is shutting down", "coordinator");
  FEDRX_ASSIGN_OR_RETURN(codec::SiteRegistered done, sites_.Register(body));
  return core::Response{std::move(done), {}};
}

core::Result<core::Response> CoordinatorService::OnListSites(core::Inbound&, codec::ListSites&) {
  FEDRX_ASSIGN_OR_RETURN(codec::SiteList list, sites_.List());
  return core::Response{std::move(list), {}};
}

core::Result<core::Response> CoordinatorService::OnHealthCheck(core::Inbound&,
                                                               codec::HealthCheck&) {
  const core::Readiness ready = CheckReady();
  const double uptime = std::chrono::duration<double>(clock_.Now() - started_).count();
  return core::Response{
      codec::HealthStatus{"coordinator", ready.ready, options_.version, uptime, ready.reason},
      {}};
}

}  // namespace fedrx::coordinator
