#include "services/site/site_main.h"

#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "services/core/curve_keys.h"
#include "services/core/process.h"
#include "services/ingest/compounds.h"
#include "services/ingest/dataset_store.h"
#include "services/ml/chem.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/split.h"
#include "services/site/site_service.h"

namespace fedrx::site {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-site [--config FILE]\n"
    "  Keys (file `key = value`, or environment FEDRX_<KEY> with '.' as '_'):\n"
    "  site.id, site.institution     who this site is\n"
    "  site.data                     the institution's CSV (smiles, task columns, optional split)\n"
    "  site.store                    instead of site.data: a dataset store written by\n"
    "                                `fedrx ingest compounds` (its CURRENT version is loaded and\n"
    "                                its descriptor's preparation hash reported)\n"
    "  site.approved_studies         comma-separated study ids the institution approved\n"
    "  site.gateway                  the platform's gateway (tcp://127.0.0.1:5560)\n"
    "  site.fingerprint_radius, site.fingerprint_bits   (2, 2048)\n"
    "  site.train_threads (2), site.heartbeat_interval (2s)\n"
    "  site.synthetic_step           benchmark mode: no data, training adds this constant\n"
    "  site.state_dir                where private heads are kept (<study>.head); unset: memory\n"
    "  site.key_file, site.gateway_public_key   CURVE: this site's key pair file (0600) and\n"
    "                                the gateway's public key (Z85); both or neither\n"
    "  http.listen                   /metrics, /healthz, /readyz (0.0.0.0:9464)";

std::vector<std::string> CommaList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

LocalData SplitLocal(const ml::Dataset& all) {
  LocalData data;
  if (!all.split.empty()) {
    data.train = all.WithSplit("train");
    data.valid = all.WithSplit("valid");
    data.test = all.WithSplit("test");
  } else {
    const ml::SplitIndices parts = ml::ScaffoldSplit(all, 0.8, 0.1);
    data.train = all.Subset(parts.train);
    data.valid = all.Subset(parts.valid);
    data.test = all.Subset(parts.test);
  }
  return data;
}

core::Result<LocalData> LoadLocalData(const core::Config& config, const ml::FingerprintOptions& fp,
                                      const std::string& site) {
  FEDRX_ASSIGN_OR_RETURN(std::string path, config.String("site.data"));
  ml::LoadReport report;
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset all,
                         ml::LoadCsvDataset(path, ml::CsvOptions{}, fp, &report));
  std::cerr << "site " << site << ": " << path << ": " << report.rows_loaded << " of "
            << report.rows_read << " rows loaded";
  if (!report.skipped.empty()) {
    std::cerr << ", " << report.skipped.size() << " skipped (first: row "
              << report.skipped[0].row << ": " << report.skipped[0].reason << ")";
  }
  std::cerr << "\n";
  LocalData data = SplitLocal(all);
  if (data.train.size() == 0) {
    return core::InvalidArgument("no training rows in " + path, "site.data");
  }
  return data;
}

// With site.key_file and site.gateway_public_key, every connection is a CURVE
// client authenticated by this site's key pair.
core::Status ConfigureCurve(const core::Config& config, core::BusOptions& bus) {
  const bool has_key = config.Has("site.key_file");
  const bool has_server = config.Has("site.gateway_public_key");
  if (!has_key && !has_server) return core::Status::Ok();
  if (has_key != has_server) {
    return core::InvalidArgument("site.key_file and site.gateway_public_key must be set together",
                                 has_key ? "site.gateway_public_key" : "site.key_file");
  }
  FEDRX_ASSIGN_OR_RETURN(std::string path, config.String("site.key_file"));
  FEDRX_ASSIGN_OR_RETURN(core::CurveKeyPair pair, core::LoadCurveKeyPair(path));
  FEDRX_ASSIGN_OR_RETURN(std::string server, config.String("site.gateway_public_key"));
  FEDRX_RETURN_IF_ERROR(core::CheckCurveKey(server, "site.gateway_public_key"));
  bus.curve_public_key = pair.public_key;
  bus.curve_secret_key = pair.secret_key;
  bus.curve_server_key = server;
  return core::Status::Ok();
}

core::Result<std::unique_ptr<core::Service>> Make(core::ProcessParts& p) {
  const core::Config& config = p.config;
  SiteOptions options;
  FEDRX_ASSIGN_OR_RETURN(options.site_id, config.String("site.id"));
  FEDRX_RETURN_IF_ERROR(core::ValidateId(options.site_id, "site.id"));
  FEDRX_ASSIGN_OR_RETURN(options.institution, config.String("site.institution"));
  options.gateway_endpoint = config.StringOr("site.gateway", options.gateway_endpoint);
  options.approved_studies = CommaList(config.StringOr("site.approved_studies", ""));
  ml::FingerprintOptions fp;
  FEDRX_ASSIGN_OR_RETURN(std::int64_t radius, config.IntOr("site.fingerprint_radius", 2, 0, 6));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t bits,
                         config.IntOr("site.fingerprint_bits", 2048, 64, 1 << 20));
  fp.radius = static_cast<int>(radius);
  fp.bits = static_cast<std::uint32_t>(bits);
  options.fingerprint_bits = fp.bits;
  options.preparation_hash = ml::PreparationHash(fp, "");
  FEDRX_ASSIGN_OR_RETURN(std::int64_t threads, config.IntOr("site.train_threads", 2, 1, 64));
  options.train_threads = static_cast<int>(threads);
  FEDRX_ASSIGN_OR_RETURN(options.heartbeat_interval,
                         config.DurationOr("site.heartbeat_interval", options.heartbeat_interval));
  options.state_dir = config.StringOr("site.state_dir", "");
  if (!options.state_dir.empty() && !std::filesystem::is_directory(options.state_dir)) {
    return core::InvalidArgument("site.state_dir = \"" + options.state_dir + "\": not a directory",
                                 config.SourceOf("site.state_dir"));
  }
  const std::string step = config.StringOr("site.synthetic_step", "0");
  char* end = nullptr;
  options.synthetic_step = std::strtof(step.c_str(), &end);
  if (step.empty() || end != step.c_str() + step.size() || !std::isfinite(options.synthetic_step)) {
    return core::InvalidArgument("site.synthetic_step = \"" + step + "\": expected a number",
                                 config.SourceOf("site.synthetic_step"));
  }
  LocalData data;
  if (options.synthetic_step == 0 && config.Has("site.store")) {
    if (config.Has("site.data")) {
      return core::InvalidArgument("give site.store or site.data, not both",
                                   config.SourceOf("site.store"));
    }
    FEDRX_ASSIGN_OR_RETURN(std::string dir, config.String("site.store"));
    auto loaded = LoadStoreData(dir);
    if (!loaded.ok()) return loaded.status().WithContext(config.SourceOf("site.store"));
    // The store's preparation is what the site trains on, so it is what it reports.
    if (config.Has("site.fingerprint_bits") && loaded->fingerprint_bits != fp.bits) {
      return core::InvalidArgument("site.fingerprint_bits = " + std::to_string(fp.bits) +
                                       " but the store was prepared with " +
                                       std::to_string(loaded->fingerprint_bits),
                                   config.SourceOf("site.fingerprint_bits"));
    }
    options.fingerprint_bits = loaded->fingerprint_bits;
    options.preparation_hash = loaded->preparation_hash;
    std::cerr << "site " << options.site_id << ": store " << dir << " version " << loaded->version
              << ": " << loaded->compounds << " compounds (" << loaded->data.train.size()
              << " train, " << loaded->data.valid.size() << " valid, "
              << loaded->data.test.size() << " test)\n";
    // What the ingest behind this version read, kept and set aside, as
    // metrics (bounded labels): the platform team sees a site training on a
    // dataset that lost many records without reading the site's files.
    p.metrics.Gauge("dataset_version", "Version of the local dataset store the site trains on")
        .Set(static_cast<double>(loaded->version));
    const auto records = [&](const char* outcome, std::size_t n) {
      p.metrics
          .Gauge("dataset_records",
                 "Records of the ingest behind the current dataset version, by outcome",
                 {{"outcome", outcome}})
          .Set(static_cast<double>(n));
    };
    records("read", loaded->records_read);
    records("kept", loaded->compounds);
    records("unparseable", loaded->unparseable);
    records("duplicate_merged", loaded->duplicates_merged);
    records("label_conflict", loaded->label_conflicts);
    data = std::move(loaded->data);
  } else if (options.synthetic_step == 0) {
    FEDRX_ASSIGN_OR_RETURN(data, LoadLocalData(config, fp, options.site_id));
  }

  return std::unique_ptr<core::Service>(
      std::make_unique<SiteService>(options, std::move(data), p.bus, p.metrics, p.clock));
}

}  // namespace

core::Result<StoreData> LoadStoreData(const std::string& store_dir) {
  std::uint64_t version = 0;
  FEDRX_ASSIGN_OR_RETURN(ingest::LoadedCompounds loaded,
                         ingest::LoadCurrentCompounds(store_dir, &version));
  StoreData out;
  out.data = SplitLocal(loaded.dataset);
  out.preparation_hash = loaded.descriptor.preparation_hash;
  out.fingerprint_bits = loaded.descriptor.fingerprint_bits;
  out.version = version;
  out.compounds = loaded.dataset.size();
  out.records_read = loaded.descriptor.records_read;
  out.unparseable = loaded.descriptor.unparseable;
  out.duplicates_merged = loaded.descriptor.duplicates_merged;
  out.label_conflicts = loaded.descriptor.label_conflicts;
  if (out.data.train.size() == 0) {
    return core::InvalidArgument("no training rows in version " + std::to_string(version),
                                 store_dir);
  }
  return out;
}

int Main(int argc, char** argv) {
  core::ProcessSpec spec{
      "fedrx-site", "site", kUsage,
      [](const core::Config& config) { return "site-" + config.StringOr("site.id", "unnamed"); },
      ConfigureCurve};
  return core::RunServiceMain(argc, argv, spec, Make);
}

}  // namespace fedrx::site
