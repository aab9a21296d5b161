// CoordinatorService: the federation coordinator's process logic on top of
// the ServiceRunner. So far: site registration and listing, and health. Runs
// on the runner's thread; not thread-safe.
#pragma once

#include <string>

#include "services/coordinator/site_registry.h"
#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/dispatcher.h"
#include "services/core/metrics.h"
#include "services/core/service_runner.h"
#include "services/core/state_store.h"

namespace fedrx::coordinator {

struct CoordinatorOptions {
  // Where sites (through the gateway) and the CLI reach the coordinator.
  std::string endpoint = "tcp://0.0.0.0:5570";
  std::string version = "0.1.0";
};

class CoordinatorService final : public core::Service {
 public:
  CoordinatorService(CoordinatorOptions options, core::Bus& bus, core::StateStore& store,
                     core::Metrics& metrics, const core::Clock& clock);

  core::Status Start() override;
  core::Readiness CheckReady() override;
  void BeginDrain() override { draining_ = true; }

 private:
  core::Result<core::Response> OnRegisterSite(core::Inbound& in, codec::RegisterSite& body);
  core::Result<core::Response> OnListSites(core::Inbound& in, codec::ListSites& body);
  core::Result<core::Response> OnHealthCheck(core::Inbound& in, codec::HealthCheck& body);

  CoordinatorOptions options_;
  core::Bus& bus_;
  core::StateStore& store_;
  const core::Clock& clock_;
  core::Dispatcher dispatcher_;
  SiteRegistry sites_;
  std::chrono::steady_clock::time_point started_;
  bool draining_ = false;
  core::Readiness last_ready_;
};

}  // namespace fedrx::coordinator
