#include "services/serving/serving_process.h"

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <utility>

#include "services/core/redis_state_store.h"
#include "services/domain/redis_address.h"
#include "services/serving/model_registry.h"

namespace fedrx::serving {

core::Result<ModelServer*> ServeModels(const std::string& name, ServingOptions options,
                                       domain::RequestService& service, core::ProcessParts& p) {
  const core::Config& config = p.config;
  options.key_file = config.StringOr(name + ".key_file", "");
  FEDRX_ASSIGN_OR_RETURN(std::int64_t folds, config.IntOr(name + ".folds", 5, 1, 100));
  options.folds = static_cast<std::uint32_t>(folds);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t atoms,
                         config.IntOr(name + ".max_heavy_atoms", 200, 1, 100000));
  options.max_heavy_atoms = static_cast<std::size_t>(atoms);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t threads, config.IntOr(name + ".threads", 1, 1, 64));
  options.threads = static_cast<int>(threads);
  const std::string interval_key = name + ".refresh_interval";
  FEDRX_ASSIGN_OR_RETURN(std::chrono::milliseconds interval,
                         config.DurationOr(interval_key, std::chrono::seconds(2)));
  if (interval.count() < 1) return core::InvalidArgument("must be positive", interval_key);

  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<core::RedisStateStore> store,
                         domain::ConnectRedisAt(config, name + ".redis", p.metrics, p.clock));
  auto registry = std::make_shared<ModelRegistry>(*store);
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<ModelServer> created,
                         ModelServer::Create(options, *registry, p.metrics));
  std::shared_ptr<ModelServer> server = std::move(created);

  // The registry's StateStore belongs to the runner's thread: Refresh runs
  // there, the handlers only read snapshots.
  ModelServer* refreshed = server.get();
  auto last_error = std::make_shared<std::string>();
  service.Every(interval, [name, refreshed, last_error] {
    const core::Status s = refreshed->Refresh();
    // A refresh problem is logged once, not every interval (the metrics count each).
    std::string text = s.ok() ? "" : s.ToString();
    if (text != *last_error) {
      if (s.ok()) {
        std::cerr << name << ": model refresh recovered\n";
      } else {
        std::cerr << name << ": model refresh: " << text << "\n";
      }
      *last_error = std::move(text);
    }
  });

  // All outlive the service (and so its workers and ticks); none uses another
  // while being destroyed.
  p.keep_alive.push_back(std::shared_ptr<core::RedisStateStore>(std::move(store)));
  p.keep_alive.push_back(registry);
  p.keep_alive.push_back(server);
  return refreshed;
}

}  // namespace fedrx::serving
