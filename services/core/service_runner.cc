#include "services/core/service_runner.h"

#include <signal.h>

#include <algorithm>
#include <iostream>
#include <optional>
#include <utility>

#include "services/core/http_endpoint.h"

namespace fedrx::core {
namespace {

static_assert(std::atomic<bool>::is_always_lock_free, "RequestStop() must be async-signal-safe");
static_assert(std::atomic<ServiceRunner*>::is_always_lock_free,
              "the signal handler reads the runner pointer");

// The runner whose Run() owns SIGTERM/SIGINT. A signal handler has no other
// way to reach it; only one runner may own the signals at a time.
std::atomic<ServiceRunner*> g_signal_runner{nullptr};

extern "C" void OnStopSignal(int) {
  ServiceRunner* runner = g_signal_runner.load();
  if (runner != nullptr) runner->RequestStop();
}

// Installs the stop handlers for the lifetime of a Run(), restoring the
// previous ones afterwards.
class SignalScope {
 public:
  SignalScope(ServiceRunner* runner, std::string_view service) {
    ServiceRunner* expected = nullptr;
    if (!g_signal_runner.compare_exchange_strong(expected, runner)) {
      std::cerr << "fedrx " << service
                << ": another runner already handles SIGTERM/SIGINT; not installing handlers\n";
      return;
    }
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART: a blocking poll returns early so the stop is seen at once.
    action.sa_flags = 0;
    installed_ = ::sigaction(SIGTERM, &action, &old_term_) == 0;
    installed_ = (::sigaction(SIGINT, &action, &old_int_) == 0) && installed_;
    if (!installed_) {
      std::cerr << "fedrx " << service << ": cannot install SIGTERM/SIGINT handlers\n";
    }
    owner_ = true;
  }
  ~SignalScope() {
    if (!owner_) return;
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGINT, &old_int_, nullptr);
    g_signal_runner.store(nullptr);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  bool owner_ = false;
  bool installed_ = false;
  struct sigaction old_term_ {};
  struct sigaction old_int_ {};
};

// Logs a repeating error once per streak: the count goes to a metric, and
// the log shows each distinct failure without flooding.
class ErrorLog {
 public:
  ErrorLog(std::string_view service, std::string_view what) : service_(service), what_(what) {}
  void Record(const Status& status) {
    if (status.ok()) {
      last_.clear();
      return;
    }
    std::string text = status.ToString();
    if (text == last_) return;
    std::cerr << "fedrx " << service_ << ": " << what_ << " failed: " << text << "\n";
    last_ = std::move(text);
  }

 private:
  std::string_view service_;
  std::string_view what_;
  std::string last_;
};

}  // namespace

ServiceRunner::ServiceRunner(RunnerOptions options, Bus& bus, Metrics& metrics, const Clock& clock)
    : options_(std::move(options)), bus_(bus), metrics_(metrics), clock_(clock) {}

ServiceRunner::~ServiceRunner() = default;

void ServiceRunner::RequestStop() { stop_requested_.store(true); }

int ServiceRunner::Run(Service& service) {
  const std::string& name = metrics_.service();

  HttpEndpointOptions http_options;
  http_options.listen = options_.http_listen;
  // Generous: a liveness failure restarts the process, so only a loop that
  // is clearly stuck should fail it, never one slow poll or readiness check.
  http_options.liveness_window = std::max<std::chrono::milliseconds>(
      {std::chrono::seconds(30), options_.poll_interval * 10, options_.ready_interval * 10});
  auto http = HttpEndpoint::Start(std::move(http_options), metrics_, clock_);
  if (!http.ok()) {
    std::cerr << "fedrx " << name << ": cannot start the HTTP endpoint on " << options_.http_listen
              << ": " << http.status() << "\n";
    return 1;
  }
  http_ = std::move(http).value();
  http_port_.store(http_->port());

  const GaugeRef up = metrics_.Gauge("up", "1 while the service process is running.");
  const GaugeRef ready_gauge =
      metrics_.Gauge("ready", "1 when the service can take work (what /readyz answers).");
  metrics_.Gauge("start_time_seconds", "When the service started, in seconds since the Unix epoch.")
      .Set(static_cast<double>(clock_.WallMillis()) / 1000.0);
  up.Set(1);
  ready_gauge.Set(0);

  if (Status started = service.Start(); !started.ok()) {
    std::cerr << "fedrx " << name << ": startup failed: " << started << "\n";
    up.Set(0);
    http_.reset();
    return 1;
  }

  std::optional<SignalScope> signals;
  if (options_.handle_signals) signals.emplace(this, name);

  ErrorLog poll_log(name, "bus poll");
  ErrorLog tick_log(name, "tick");
  auto poll_and_tick = [&] {
    Status polled = bus_.Poll(options_.poll_interval);
    if (!polled.ok()) metrics_.CountError("runner", "poll");
    // An interrupted poll during shutdown is expected, not worth a log line.
    if (!(stop_requested_.load() && !polled.ok())) poll_log.Record(polled);
    Status ticked = service.Tick();
    if (!ticked.ok()) metrics_.CountError("runner", "tick");
    tick_log.Record(ticked);
    http_->MarkAlive();
  };

  bool was_ready = false;
  std::string last_reason;
  auto check_ready = [&] {
    Readiness r = service.CheckReady();
    if (!r.ready && r.reason.empty()) r.reason = "not ready";
    if (r.ready != was_ready || (!r.ready && r.reason != last_reason)) {
      std::cerr << "fedrx " << name << ": " << (r.ready ? "ready" : "not ready: " + r.reason)
                << "\n";
    }
    was_ready = r.ready;
    last_reason = r.reason;
    ready_gauge.Set(r.ready ? 1 : 0);
    http_->SetReadiness(r.ready, std::move(r.reason));
  };

  // Readiness is known before the first tick, not one interval later.
  check_ready();
  auto last_ready_check = clock_.Now();
  http_->MarkAlive();

  while (!stop_requested_.load()) {
    poll_and_tick();
    if (clock_.Now() - last_ready_check >= options_.ready_interval) {
      check_ready();
      last_ready_check = clock_.Now();
    }
  }

  std::cerr << "fedrx " << name << ": stopping; draining for at most "
            << options_.drain_timeout.count() << "ms\n";
  ready_gauge.Set(0);
  http_->SetReadiness(false, "draining");
  service.BeginDrain();
  const auto drain_deadline = clock_.Now() + options_.drain_timeout;
  while (!service.Drained()) {
    if (clock_.Now() >= drain_deadline) {
      std::cerr << "fedrx " << name << ": drain timed out with work still in flight\n";
      metrics_.CountError("runner", "drain_timeout");
      break;
    }
    poll_and_tick();
  }

  signals.reset();
  up.Set(0);
  http_.reset();
  std::cerr << "fedrx " << name << ": stopped\n";
  return 0;
}

}  // namespace fedrx::core
