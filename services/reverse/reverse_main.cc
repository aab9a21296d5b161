// fedrx-reverse: the reverse-translation service behind the gateway. Answers
// ReverseTranslate from the organ-class table and the association counts the
// sites summed through the federation (the latest version of a pair_counts
// statistics study, re-read from the registry every reverse.counts_refresh).
#include <chrono>
#include <memory>
#include <string>

#include "services/core/keys.h"
#include "services/core/process.h"
#include "services/domain/redis_address.h"
#include "services/domain/request_service.h"
#include "services/reverse/reverse_service.h"

namespace fedrx::reverse {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-reverse [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  reverse.endpoint        where the gateway connects (tcp://127.0.0.1:5584)\n"
    "  reverse.redis           the registry's Redis, host:port (127.0.0.1:6379)\n"
    "  reverse.counts_study    the pair_counts study whose latest version holds the summed\n"
    "                          counts (reverse-counts); empty: the table alone answers\n"
    "  reverse.counts_refresh  how often the counts are re-read (10s)\n"
    "  reverse.workers (1), reverse.max_queued (64)\n"
    "  reverse.curve_key_file  CURVE: the service's key pair file (0600); with it\n"
    "  reverse.clients_file    CURVE: authorised clients (the gateway), one a line\n"
    "  redis.password, redis.db, redis.startup_wait (30s)\n"
    "  http.listen             /metrics, /healthz, /readyz (0.0.0.0:9464)\n"
    "  bus.max_envelope_bytes, bus.high_water_mark";

// Builds the counts cache, refreshed every reverse.counts_refresh on the
// runner's thread, and the ReverseTranslate handler that answers from it.
core::Status Setup(domain::RequestService& service, core::ProcessParts& p) {
  const std::string study = p.config.StringOr("reverse.counts_study", "reverse-counts");
  FEDRX_ASSIGN_OR_RETURN(std::chrono::milliseconds refresh,
                         p.config.DurationOr("reverse.counts_refresh", std::chrono::seconds(10)));
  if (refresh.count() <= 0) {
    return core::InvalidArgument("reverse.counts_refresh must be positive",
                                 p.config.SourceOf("reverse.counts_refresh"));
  }
  std::unique_ptr<CountsReader> reader;
  if (!study.empty()) {
    FEDRX_RETURN_IF_ERROR(core::ValidateId(study, "reverse.counts_study"));
    FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<core::RedisStateStore> store,
                           domain::ConnectRedisAt(p.config, "reverse.redis", p.metrics, p.clock));
    std::shared_ptr<core::StateStore> shared = std::move(store);
    p.keep_alive.push_back(shared);
    reader = std::make_unique<CountsReader>(*shared, study);
  }
  auto cache = std::make_shared<CountsCache>(std::move(reader), p.metrics);
  p.keep_alive.push_back(cache);
  // The first run is at the first tick, before any request is answered.
  service.Every(refresh, [cache] { cache->Refresh().IgnoreError(); });
  core::Metrics* metrics = &p.metrics;
  service.Handle<codec::ReverseTranslate>([cache, metrics](const codec::ReverseTranslate& r) {
    return domain::AsBody(AnswerReverseTranslate(r, cache->Current(), metrics));
  });
  return core::Status::Ok();
}

}  // namespace
}  // namespace fedrx::reverse

int main(int argc, char** argv) {
  fedrx::domain::RequestServiceOptions options;
  options.name = "reverse";
  options.endpoint = "tcp://127.0.0.1:5584";
  return fedrx::domain::RunRequestServiceMainWith(argc, argv, options, fedrx::reverse::kUsage,
                                                  fedrx::reverse::Setup);
}
