#include "services/domain/redis_address.h"

#include "services/core/process.h"

namespace fedrx::domain {

core::Result<core::RedisOptions> RedisOptionsAt(const core::Config& config,
                                                const std::string& key) {
  FEDRX_ASSIGN_OR_RETURN(core::RedisOptions o, core::RedisOptionsFrom(config));
  const std::string address = config.StringOr(key, o.host + ":" + std::to_string(o.port));
  const std::size_t colon = address.rfind(':');
  const std::string port_text = colon == std::string::npos ? "" : address.substr(colon + 1);
  // At most five digits, so that stoi cannot overflow before the range check.
  if (colon == std::string::npos || colon == 0 || port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return core::InvalidArgument("'" + address + "' is not host:port", key);
  }
  const int port = std::stoi(port_text);
  if (port < 1 || port > 65535) {
    return core::InvalidArgument("'" + address + "' has no valid port", key);
  }
  o.host = address.substr(0, colon);
  o.port = port;
  o.unix_socket.clear();
  return o;
}

core::Result<std::unique_ptr<core::RedisStateStore>> ConnectRedisAt(const core::Config& config,
                                                                    const std::string& key,
                                                                    core::Metrics& metrics,
                                                                    const core::Clock& clock) {
  FEDRX_ASSIGN_OR_RETURN(core::RedisOptions options, RedisOptionsAt(config, key));
  return core::ConnectRedisWithRetry(options, config, metrics, clock);
}

}  // namespace fedrx::domain
