// The Redis a domain service reads (the model registry, summed counts), named
// by its own `<name>.redis` key ("host:port") over the shared redis.* options.
// Functions only; thread-safe.
#pragma once

#include <memory>
#include <string>

#include "services/core/clock.h"
#include "services/core/config.h"
#include "services/core/metrics.h"
#include "services/core/redis_state_store.h"
#include "services/core/status.h"

namespace fedrx::domain {

// The redis.* options (core::RedisOptionsFrom) with host and port taken from
// `key` ("host:port"; default redis.host:redis.port), a Unix socket dropped.
// InvalidArgument naming `key` when it is not host:port with a port in 1..65535.
core::Result<core::RedisOptions> RedisOptionsAt(const core::Config& config, const std::string& key);

// Connects to the Redis of `key`, retrying for redis.startup_wait so the
// service may start before its Redis (core::ConnectRedisWithRetry). Blocks.
core::Result<std::unique_ptr<core::RedisStateStore>> ConnectRedisAt(const core::Config& config,
                                                                    const std::string& key,
                                                                    core::Metrics& metrics,
                                                                    const core::Clock& clock);

}  // namespace fedrx::domain
