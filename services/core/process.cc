#include "services/core/process.h"

#include <iostream>
#include <string_view>
#include <thread>

#include "services/core/zmq_bus.h"

namespace fedrx::core {
namespace {
constexpr char kHelp[] = "help";
}

Result<Config> ConfigFromArgs(int argc, char** argv, const std::string& usage) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      return Status(StatusCode::kFailedPrecondition, usage, kHelp);
    }
    if (arg == "--config" && i + 1 < argc) {
      path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      path = std::string(arg.substr(9));
    } else {
      return InvalidArgument("unknown argument '" + std::string(arg) + "'\n" + usage,
                             "argv[" + std::to_string(i) + "]");
    }
  }
  if (path.empty()) return Config::Parse("", "<defaults>", ProcessEnvironment());
  return Config::Load(path, ProcessEnvironment());
}

Result<BusOptions> BusOptionsFrom(const Config& config, const std::string& name) {
  BusOptions o;
  o.name = name;
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t env_bytes,
                         config.BytesOr("bus.max_envelope_bytes", o.limits.max_envelope_bytes));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t tensor_bytes,
                         config.BytesOr("bus.max_tensor_bytes", o.limits.max_tensor_bytes));
  o.limits.max_envelope_bytes = env_bytes;
  o.limits.max_tensor_bytes = tensor_bytes;
  FEDRX_ASSIGN_OR_RETURN(std::int64_t hwm,
                         config.IntOr("bus.high_water_mark", o.high_water_mark, 1, 1'000'000));
  o.high_water_mark = static_cast<int>(hwm);
  FEDRX_ASSIGN_OR_RETURN(o.reconnect_interval,
                         config.DurationOr("bus.reconnect_interval", o.reconnect_interval));
  FEDRX_ASSIGN_OR_RETURN(o.reconnect_interval_max,
                         config.DurationOr("bus.reconnect_interval_max", o.reconnect_interval_max));
  return o;
}

Result<RedisOptions> RedisOptionsFrom(const Config& config) {
  RedisOptions o;
  o.host = config.StringOr("redis.host", o.host);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t port, config.IntOr("redis.port", o.port, 1, 65535));
  o.port = static_cast<int>(port);
  o.unix_socket = config.StringOr("redis.unix_socket", "");
  o.password = config.StringOr("redis.password", "");
  FEDRX_ASSIGN_OR_RETURN(std::int64_t db, config.IntOr("redis.db", 0, 0, 15));
  o.db = static_cast<int>(db);
  FEDRX_ASSIGN_OR_RETURN(o.connect_timeout,
                         config.DurationOr("redis.connect_timeout", o.connect_timeout));
  FEDRX_ASSIGN_OR_RETURN(o.command_timeout,
                         config.DurationOr("redis.command_timeout", o.command_timeout));
  return o;
}

Result<RunnerOptions> RunnerOptionsFrom(const Config& config) {
  RunnerOptions o;
  o.http_listen = config.StringOr("http.listen", o.http_listen);
  FEDRX_ASSIGN_OR_RETURN(o.poll_interval,
                         config.DurationOr("runner.poll_interval", o.poll_interval));
  FEDRX_ASSIGN_OR_RETURN(o.drain_timeout,
                         config.DurationOr("runner.drain_timeout", o.drain_timeout));
  return o;
}

Result<std::unique_ptr<RedisStateStore>> ConnectRedisWithRetry(const Config& config,
                                                               Metrics& metrics,
                                                               const Clock& clock) {
  FEDRX_ASSIGN_OR_RETURN(RedisOptions options, RedisOptionsFrom(config));
  return ConnectRedisWithRetry(options, config, metrics, clock);
}

Result<std::unique_ptr<RedisStateStore>> ConnectRedisWithRetry(const RedisOptions& options,
                                                               const Config& config,
                                                               Metrics& metrics,
                                                               const Clock& clock) {
  FEDRX_ASSIGN_OR_RETURN(std::chrono::milliseconds wait,
                         config.DurationOr("redis.startup_wait", std::chrono::seconds(30)));
  const auto deadline = clock.Now() + wait;
  while (true) {
    auto store = RedisStateStore::Connect(options, &metrics);
    if (store.ok() || store.status().code() != StatusCode::kUnavailable ||
        clock.Now() >= deadline) {
      return store;
    }
    std::cerr << metrics.service() << ": waiting for Redis: " << store.status() << "\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int RunServiceMain(int argc, char** argv, const ProcessSpec& spec, const ServiceFactory& make) {
  int exit_code = 1;
  const Status status = [&]() -> Status {
    FEDRX_ASSIGN_OR_RETURN(Config config, ConfigFromArgs(argc, argv, spec.usage));
    const std::string sender = spec.sender ? spec.sender(config) : spec.service;
    FEDRX_ASSIGN_OR_RETURN(BusOptions bus_options, BusOptionsFrom(config, sender));
    if (spec.configure_bus) FEDRX_RETURN_IF_ERROR(spec.configure_bus(config, bus_options));
    FEDRX_ASSIGN_OR_RETURN(RunnerOptions runner_options, RunnerOptionsFrom(config));
    SystemClock clock;
    Metrics metrics(spec.service);
    ZmqBus bus(bus_options, metrics, clock);
    ProcessParts parts{config, clock, metrics, bus, {}};
    FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<Service> service, make(parts));
    ServiceRunner runner(runner_options, bus, metrics, clock);
    exit_code = runner.Run(*service);
    return Status::Ok();
  }();
  return status.ok() ? exit_code : ExitWith(spec.program, status);
}

int ExitWith(const std::string& program, const Status& status) {
  if (status.where() == kHelp) {
    std::cout << status.message() << "\n";
    return 0;
  }
  std::cerr << program << ": " << status << "\n";
  return 1;
}

}  // namespace fedrx::core
