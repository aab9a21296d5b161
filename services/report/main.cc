// fedrx-report: the report service behind the gateway. Answers
// CreateReport (candidate: a workflow run; study: a federated study),
// GetReport and ListReports from the platform's Redis.
#include <memory>
#include <string>

#include "services/core/process.h"
#include "services/domain/redis_address.h"
#include "services/domain/request_service.h"
#include "services/report/report_service.h"

namespace fedrx::report {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-report [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  report.endpoint        where the gateway and the orchestrator connect\n"
    "                         (tcp://127.0.0.1:5586)\n"
    "  report.redis           the Redis holding runs, studies and reports, host:port\n"
    "                         (127.0.0.1:6379)\n"
    "  report.max_bytes       largest HTML page or JSON stored (900000)\n"
    "  report.workers (1), report.max_queued (64)\n"
    "  report.curve_key_file  CURVE: the service's key pair file (0600); with it\n"
    "  report.clients_file    CURVE: authorised clients (gateway, orchestrator), one a line\n"
    "  redis.password, redis.db, redis.startup_wait (30s)\n"
    "  http.listen            /metrics, /healthz, /readyz (0.0.0.0:9488)\n"
    "  bus.max_envelope_bytes, bus.high_water_mark";

core::Status Setup(domain::RequestService& service, core::ProcessParts& p) {
  ReportServiceOptions options;
  FEDRX_ASSIGN_OR_RETURN(
      std::int64_t max_bytes,
      p.config.IntOr("report.max_bytes", static_cast<std::int64_t>(options.max_content_bytes), 1,
                     static_cast<std::int64_t>(options.max_content_bytes)));
  options.max_content_bytes = static_cast<std::size_t>(max_bytes);
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<core::RedisStateStore> store,
                         domain::ConnectRedisAt(p.config, "report.redis", p.metrics, p.clock));
  std::shared_ptr<core::StateStore> shared = std::move(store);
  p.keep_alive.push_back(shared);
  auto reports = std::make_shared<ReportService>(*shared, p.metrics, p.clock, options);
  p.keep_alive.push_back(reports);
  InstallReportHandlers(service, *reports);
  return core::Status::Ok();
}

}  // namespace
}  // namespace fedrx::report

int main(int argc, char** argv) {
  fedrx::domain::RequestServiceOptions options;
  options.name = "report";
  options.endpoint = "tcp://127.0.0.1:5586";
  return fedrx::domain::RunRequestServiceMainWith(argc, argv, options, fedrx::report::kUsage,
                                                  fedrx::report::Setup);
}
