// RequestService: the shape of every stateless domain service behind the
// gateway (translational, trial, ...). It serves one endpoint, answers
// HealthCheck itself, and hands each request whose body type has a handler
// to a worker thread (a simulation may take seconds, and health checks must
// not wait behind it); the answer is sent from the runner's thread once the
// worker is done. A body without a handler is answered Unimplemented; a
// handler's error (bad input: InvalidArgument with the field in `where`) is
// the Error reply. Every request is counted and timed by body type and result
// code (fedrx_<service>_requests_total{type,code},
// _request_duration_seconds{type}); refused ones also in rejected_total{reason}.
// Register handlers (and periodic tasks, Every) before Start(); the service
// itself and its periodic tasks run on the runner's thread, handlers on the
// workers (they must not touch the bus).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/config.h"
#include "services/core/metrics.h"
#include "services/core/process.h"
#include "services/core/service_runner.h"
#include "services/core/status.h"

namespace fedrx::domain {

struct RequestServiceOptions {
  // "translational": HealthStatus.service and the log prefix.
  std::string name;
  std::string endpoint = "tcp://127.0.0.1:5580";
  // Worker threads running handlers.
  int workers = 1;
  // Requests waiting for a worker beyond this are refused (ResourceExhausted).
  std::size_t max_queued = 64;
  std::string version = "dev";
};

class RequestService final : public core::Service {
 public:
  using Handler = std::function<core::Result<codec::Body>(const codec::Body&)>;

  RequestService(RequestServiceOptions options, core::Bus& bus, core::Metrics& metrics,
                 const core::Clock& clock);
  ~RequestService() override;
  RequestService(const RequestService&) = delete;
  RequestService& operator=(const RequestService&) = delete;

  // Answers bodies of type T with `handler` (called on a worker thread).
  template <typename T>
  void Handle(std::function<core::Result<codec::Body>(const T&)> handler) {
    handlers_[codec::Body(T{}).index()] = [h = std::move(handler)](const codec::Body& body) {
      return h(std::get<T>(body));
    };
  }

  // Runs `task` on the runner's thread, from Tick: at the first Tick after
  // Start, then each time `interval` (> 0) has passed on the clock since it
  // last began. For work that must stay on one thread, such as a
  // ModelServer's Refresh (its registry's StateStore belongs to one thread);
  // it delays answers being sent while it runs, so keep it short.
  void Every(std::chrono::milliseconds interval, std::function<void()> task);

  core::Status Start() override;
  core::Status Tick() override;
  core::Readiness CheckReady() override;
  void BeginDrain() override;
  bool Drained() override;

  // Requests queued or running.
  std::size_t in_flight() const;

 private:
  struct Job {
    core::Inbound in;
    const Handler* handler = nullptr;
    core::Result<codec::Body> answer = core::Internal("not run");
    double seconds = 0;
  };
  void OnRequest(core::Inbound&& in);
  void WorkerLoop();
  void Finish(Job& job);

  RequestServiceOptions options_;
  core::Bus& bus_;
  core::Metrics& metrics_;
  const core::Clock& clock_;
  std::chrono::steady_clock::time_point started_;
  std::map<std::size_t, Handler> handlers_;
  bool draining_ = false;
  struct Periodic {
    std::chrono::milliseconds interval;
    std::function<void()> task;
    bool ran = false;
    std::chrono::steady_clock::time_point last;
  };
  std::vector<Periodic> periodic_;  // runner thread only

  mutable std::mutex mu_;
  std::condition_variable work_ready_;
  std::deque<Job> queued_;   // guarded by mu_
  std::deque<Job> done_;     // guarded by mu_
  std::size_t running_ = 0;  // guarded by mu_
  bool stopping_ = false;    // guarded by mu_
  std::vector<std::thread> workers_;

  core::GaugeRef in_flight_;
};

// Reads `<name>.endpoint`, `<name>.workers`, `<name>.max_queued` over the
// defaults given in `options`.
core::Status LoadRequestServiceOptions(const core::Config& config, RequestServiceOptions& options);

// A handler's typed answer as a Body.
template <typename Answer>
core::Result<codec::Body> AsBody(core::Result<Answer>&& answer) {
  if (!answer.ok()) return answer.status();
  return codec::Body(std::move(*answer));
}

// A domain service's whole process: `options` (name, default endpoint) read
// over from `<name>.*` keys, a CURVE server when `<name>.curve_key_file` and
// `<name>.clients_file` are set (core/curve_server.h), the handlers that
// `install` registers; runs until SIGTERM/SIGINT. Returns the exit code.
int RunRequestServiceMain(int argc, char** argv, RequestServiceOptions options, const char* usage,
                          const std::function<void(RequestService&)>& install);

// The same for a service that needs its process's parts (config, metrics,
// clock) to build what its handlers use: `setup` registers the handlers and
// periodic tasks and puts what they borrow into parts.keep_alive (it lives
// as long as the service); a non-OK status fails startup with it.
int RunRequestServiceMainWith(
    int argc, char** argv, RequestServiceOptions options, const char* usage,
    const std::function<core::Status(RequestService&, core::ProcessParts&)>& setup);

}  // namespace fedrx::domain
