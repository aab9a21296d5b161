// Process set-up shared by every service's main: command-line arguments, the
// config file, and adapter options read from config with clear errors.
// Functions only; thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/config.h"
#include "services/core/metrics.h"
#include "services/core/redis_state_store.h"
#include "services/core/service_runner.h"
#include "services/core/status.h"

namespace fedrx::core {

// Reads `--config FILE` (optional; without it only defaults and FEDRX_*
// environment variables apply) from argv. `--help` yields
// kFailedPrecondition carrying the usage text, which ExitWith prints with exit code 0.
Result<Config> ConfigFromArgs(int argc, char** argv, const std::string& usage);

// bus.max_envelope_bytes, bus.max_tensor_bytes, bus.high_water_mark,
// bus.reconnect_interval, bus.reconnect_interval_max.
Result<BusOptions> BusOptionsFrom(const Config& config, const std::string& name);
// redis.host, redis.port, redis.unix_socket, redis.password, redis.db,
// redis.connect_timeout, redis.command_timeout.
Result<RedisOptions> RedisOptionsFrom(const Config& config);
// http.listen, runner.poll_interval, runner.drain_timeout.
Result<RunnerOptions> RunnerOptionsFrom(const Config& config);

// Connects to Redis, retrying for up to redis.startup_wait (default 30s) so a
// service may start before its Redis; then fails with the last error.
Result<std::unique_ptr<RedisStateStore>> ConnectRedisWithRetry(const Config& config,
                                                               Metrics& metrics,
                                                               const Clock& clock);
// The same with `options` given (a service's own Redis address, say) rather
// than read from redis.*; redis.startup_wait still comes from `config`.
Result<std::unique_ptr<RedisStateStore>> ConnectRedisWithRetry(const RedisOptions& options,
                                                               const Config& config,
                                                               Metrics& metrics,
                                                               const Clock& clock);

// Prints "<program>: <status>" to stderr and returns exit code 1 (or 0 for --help).
int ExitWith(const std::string& program, const Status& status);

// What RunServiceMain builds before it asks for the service itself.
struct ProcessParts {
  const Config& config;
  const Clock& clock;
  Metrics& metrics;
  Bus& bus;
  // Objects the service borrows (a state store, say) that must live as long as it.
  std::vector<std::shared_ptr<void>> keep_alive;
};

struct ProcessSpec {
  std::string program;  // "fedrx-gateway", for messages
  std::string service;  // "gateway": the metrics prefix and, by default, the bus sender name
  std::string usage;
  // The sender name on the bus, from config (e.g. "site-<id>"); empty: `service`.
  std::function<std::string(const Config&)> sender;
  // Optional: adjusts the bus options read from config (e.g. CURVE keys from a
  // key file) before the bus is built; a non-OK status fails startup.
  std::function<Status(const Config&, BusOptions&)> configure_bus;
};

using ServiceFactory = std::function<Result<std::unique_ptr<Service>>(ProcessParts&)>;

// Every service's main: reads --config and the environment, builds the
// clock, metrics, ZeroMQ bus and runner, asks `make` for the service, and runs
// it until SIGTERM/SIGINT. Returns the process exit code; a startup error is
// printed as "<program>: <what> (at <where>)" with exit code 1.
int RunServiceMain(int argc, char** argv, const ProcessSpec& spec, const ServiceFactory& make);

}  // namespace fedrx::core
