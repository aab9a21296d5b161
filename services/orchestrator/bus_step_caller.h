// BusStepCaller: the orchestrator's StepCaller over the platform bus. One
// client connection per configured service (`orchestrator.services.<svc>.
// endpoint`, CURVE with `.public_key_file` and the orchestrator's own key pair
// `orchestrator.key_file`); each step is one Request with the step's timeout.
// Not thread-safe: it shares the bus's thread (answers arrive inside Poll()).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/config.h"
#include "services/core/status.h"
#include "services/orchestrator/step_caller.h"

namespace fedrx::orchestrator {

// The services a workflow step (or the end-of-run report) may call.
const std::vector<std::string>& CallableServices();

// Reads orchestrator.services.<svc>.endpoint for each callable service; the
// map holds only those configured.
core::Result<std::map<std::string, std::string>> ServiceEndpointsFrom(const core::Config& config);

// For ProcessSpec::configure_bus: with `orchestrator.curve_key_file` (the
// service's own CURVE server key pair) and/or `orchestrator.key_file` (its
// client key pair; both set = the same pair, since one bus has one key pair,
// and a client pair needs the server side configured too, since a bus with a
// key pair serves CURVE only), loads the pair into `bus`, and the server key
// of every service with a `.public_key_file` into bus.curve_server_keys by
// endpoint. A public key without an endpoint, or without the orchestrator's
// own key pair, is InvalidArgument naming the key.
core::Status ConfigureOrchestratorBus(const core::Config& config, core::BusOptions& bus);

// Health probes of the services (HealthCheck, answered on a service's own
// loop even while its workers are busy): a service that has missed
// `down_after` probes in a row is down, and a step for it fails at once as
// Unavailable (which the engine retries with its backoff) instead of waiting
// out the step's timeout; one answered probe brings it back.
struct ProbeOptions {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds timeout{2000};
  int down_after = 3;
};

class BusStepCaller final : public StepCaller {
 public:
  // `endpoints`: service name -> endpoint. Nothing is connected until Connect().
  // With a clock, Maintain() probes every connected service; without one,
  // nothing is probed and every step waits for its answer or its timeout.
  BusStepCaller(core::Bus& bus, std::map<std::string, std::string> endpoints,
                const core::Clock* clock = nullptr, ProbeOptions probes = {});

  // Connects to every endpoint (ZeroMQ connects lazily: a service that is not
  // up yet is not an error; its requests time out until it is).
  core::Status Connect();

  // Unavailable naming the service (and the config key to set) when it is not
  // configured; otherwise the reply body, the Status of an Error reply, or
  // DeadlineExceeded after `timeout`.
  void Call(std::string_view service, codec::Body body, std::chrono::milliseconds timeout,
            Callback done) override;

  // Sends a HealthCheck to every connected service whose last probe has been
  // answered (or timed out) and whose interval has passed.
  void Maintain() override;

  // Whether `service` is taken as down (missed down_after probes in a row).
  bool Down(std::string_view service) const;

 private:
  struct Health {
    bool in_flight = false;
    int missed = 0;  // probes missed in a row
    std::chrono::steady_clock::time_point next{};
  };

  core::Bus& bus_;
  const core::Clock* clock_;
  ProbeOptions probes_;
  std::map<std::string, std::string, std::less<>> endpoints_;
  std::map<std::string, core::ChannelId, std::less<>> channels_;
  // Shared with the probes' reply callbacks, which may outlive this object.
  std::map<std::string, std::shared_ptr<Health>, std::less<>> health_;
};

}  // namespace fedrx::orchestrator
