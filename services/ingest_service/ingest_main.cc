#include "services/ingest_service/ingest_main.h"

#include <filesystem>
#include <memory>

#include "services/core/process.h"

namespace fedrx::ingest_service {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-ingest [--config FILE]\n"
    "  Watches an inbox and ingests each dataset dropped there into its own dataset store.\n"
    "  Drop <name>.csv|.tsv|.sdf (compounds) or a study folder <name>/ (SEND/SDTM .xpt or\n"
    "  .json), then create <name>.ready; the input, marker and <name>.report.json end up in\n"
    "  <inbox>/done/ or <inbox>/failed/. <name>: 1-64 of A-Z a-z 0-9 _ -.\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  ingest.inbox                  the watched directory (must exist)\n"
    "  ingest.stores                 where stores live: <stores>/<name> (must exist)\n"
    "  ingest.poll_interval          how often the inbox is scanned (2s)\n"
    "  ingest.key_file               the consortium key (scrambles bits, keys folds)\n"
    "  ingest.folds (5), ingest.threads (2), ingest.max_bytes (1GiB: per file)\n"
    "  http.listen                   /metrics, /healthz, /readyz (0.0.0.0:9464)";

core::Result<std::string> Directory(const core::Config& config, const char* key) {
  FEDRX_ASSIGN_OR_RETURN(std::string dir, config.String(key));
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return core::InvalidArgument(std::string(key) + " = \"" + dir + "\": not a directory",
                                 config.SourceOf(key));
  }
  return dir;
}

core::Result<std::unique_ptr<core::Service>> Make(core::ProcessParts& p) {
  FEDRX_ASSIGN_OR_RETURN(IngestServiceOptions options, OptionsFrom(p.config));
  return std::unique_ptr<core::Service>(
      std::make_unique<IngestService>(std::move(options), p.metrics, p.clock));
}

}  // namespace

core::Result<IngestServiceOptions> OptionsFrom(const core::Config& config) {
  IngestServiceOptions o;
  FEDRX_ASSIGN_OR_RETURN(o.inbox, Directory(config, "ingest.inbox"));
  FEDRX_ASSIGN_OR_RETURN(o.stores, Directory(config, "ingest.stores"));
  FEDRX_ASSIGN_OR_RETURN(o.poll_interval,
                         config.DurationOr("ingest.poll_interval", o.poll_interval));
  if (o.poll_interval.count() <= 0) {
    return core::InvalidArgument("ingest.poll_interval must be positive",
                                 config.SourceOf("ingest.poll_interval"));
  }
  FEDRX_ASSIGN_OR_RETURN(std::int64_t folds, config.IntOr("ingest.folds", o.folds, 1, 100));
  o.folds = static_cast<std::uint32_t>(folds);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t threads, config.IntOr("ingest.threads", o.threads, 1, 64));
  o.threads = static_cast<int>(threads);
  FEDRX_ASSIGN_OR_RETURN(o.max_bytes, config.BytesOr("ingest.max_bytes", o.max_bytes));
  if (o.max_bytes == 0) {
    return core::InvalidArgument("ingest.max_bytes must be positive",
                                 config.SourceOf("ingest.max_bytes"));
  }
  if (config.Has("ingest.key_file")) {
    FEDRX_ASSIGN_OR_RETURN(std::string path, config.String("ingest.key_file"));
    auto key = ingest::ConsortiumKey::FromFile(path);
    if (!key.ok()) return key.status().WithContext(config.SourceOf("ingest.key_file"));
    o.key = std::move(*key);
  }
  return o;
}

int Main(int argc, char** argv) {
  core::ProcessSpec spec{"fedrx-ingest", "ingest", kUsage, nullptr, nullptr};
  return core::RunServiceMain(argc, argv, spec, Make);
}

}  // namespace fedrx::ingest_service
