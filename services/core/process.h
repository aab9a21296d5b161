// Process set-up shared by every service's main: command-line arguments, the
// config file, and adapter options read from config with clear errors.
// Functions only; thread-safe.
#pragma once

#include <memory>
#include <string>

#include "services/core/bus.h"
#include "services/core/clock.h"
#include "services/core/config.h"
#include "services/core/metrics.h"
#include "services/core/redis_state_store.h"
#include "services/core/service_runner.h"
#include "services/core/status.h"

namespace fedrx::core {

// Reads `--config FILE` (optional; without it only defaults and FEDRX_*
// environment variables apply) from argv. `--help` yields kCancelled-like
// kFailedPrecondition with the usage text as message.
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

// Prints "<program>: <status>" to stderr and returns exit code 1 (or 0 for --help).
int ExitWith(const std::string& program, const Status& status);

}  // namespace fedrx::core
