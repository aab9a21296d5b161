// ServiceRunner: the process loop every fedrx service's main uses. It serves
// /metrics, /healthz and /readyz over HTTP, handles SIGTERM/SIGINT, polls the
// bus, ticks the service, and drains gracefully on stop. Run() blocks;
// RequestStop() is thread-safe and async-signal-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/metrics.h"
#include "services/core/status.h"

namespace fedrx::core {

class HttpEndpoint;

struct Readiness {
  bool ready = false;
  std::string reason;  // why not, when not ready
};

// What a service plugs into the runner.
class Service {
 public:
  virtual ~Service() = default;
  // Binds sockets, loads state. An error stops the process with exit code 1.
  virtual Status Start() = 0;
  // Periodic work (deadlines, heartbeats), once per loop iteration.
  virtual Status Tick() { return Status::Ok(); }
  // Whether the service can take work now (e.g. Redis reachable).
  virtual Readiness CheckReady() = 0;
  // Stop taking new work; in-flight work may finish.
  virtual void BeginDrain() {}
  // True once in-flight work is done and the process may exit.
  virtual bool Drained() { return true; }
};

struct RunnerOptions {
  // "host:port" for the HTTP endpoint; port 0 picks a free one.
  std::string http_listen = "0.0.0.0:9464";
  std::chrono::milliseconds poll_interval{50};
  // How often CheckReady() runs.
  std::chrono::milliseconds ready_interval{1000};
  std::chrono::milliseconds drain_timeout{10000};
  // Installs SIGTERM/SIGINT handlers that call RequestStop().
  bool handle_signals = true;
};

class ServiceRunner {
 public:
  ServiceRunner(RunnerOptions options, Bus& bus, Metrics& metrics, const Clock& clock);
  ~ServiceRunner();

  // Starts the HTTP endpoint and the service, loops until stopped, drains.
  // Returns the process exit code: 0 after a clean stop, 1 if startup failed.
  int Run(Service& service);
  // Thread-safe and async-signal-safe.
  void RequestStop();
  // The HTTP port actually bound (valid once Run() has started the endpoint).
  std::uint16_t http_port() const { return http_port_.load(); }

 private:
  RunnerOptions options_;
  Bus& bus_;
  Metrics& metrics_;
  const Clock& clock_;
  std::unique_ptr<HttpEndpoint> http_;
  std::atomic<std::uint16_t> http_port_{0};
  // Set by RequestStop(); never reset, so a stop that comes before Run() still stops it.
  std::atomic<bool> stop_requested_{false};
};

}  // namespace fedrx::core
