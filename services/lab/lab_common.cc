#include "services/lab/lab_common.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "services/core/config.h"
#include "services/ingest/compounds.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/split.h"
#include "services/ml/study_spec.h"

namespace fedrx::lab {

core::Result<std::string> Need(const Flags& f, const std::string& name) {
  auto it = f.find(name);
  if (it == f.end() || it->second.empty()) {
    return core::InvalidArgument("--" + name + " is required", "--" + name);
  }
  return it->second;
}

// A numeric flag in [lo, hi], or `fallback` when absent.
core::Result<double> NumberFlag(const Flags& f, const std::string& name, double fallback, double lo,
                                double hi) {
  auto it = f.find(name);
  if (it == f.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || end != it->second.c_str() + it->second.size() || !std::isfinite(v) ||
      v < lo || v > hi) {
    std::ostringstream range;
    range << "--" << name << " = \"" << it->second << "\": expected a number in [" << lo << ", "
          << hi << "]";
    return core::InvalidArgument(range.str(), "--" + name);
  }
  return v;
}

// A whole-number flag in [lo, hi], or `fallback` when absent.
core::Result<std::uint64_t> CountFlag(const Flags& f, const std::string& name,
                                      std::uint64_t fallback, std::uint64_t lo, std::uint64_t hi) {
  FEDRX_ASSIGN_OR_RETURN(double v, NumberFlag(f, name, static_cast<double>(fallback),
                                              static_cast<double>(lo), static_cast<double>(hi)));
  if (v != std::floor(v)) {
    return core::InvalidArgument("--" + name + " = \"" + f.at(name) + "\": expected a whole number",
                                 "--" + name);
  }
  return static_cast<std::uint64_t>(v);
}

std::vector<std::string> CommaList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

core::Result<ml::Dataset> Load(const std::string& path, int radius, std::uint32_t bits,
                               std::ostream& out) {
  if (std::filesystem::is_directory(path)) {
    // A site's dataset store (fedrx ingest): its current version, prepared
    // as the site trains on it, provided the preparation fits the network.
    std::uint64_t version = 0;
    FEDRX_ASSIGN_OR_RETURN(ingest::LoadedCompounds loaded,
                           ingest::LoadCurrentCompounds(path, &version));
    if (loaded.descriptor.fingerprint_radius != static_cast<std::uint32_t>(radius) ||
        loaded.descriptor.fingerprint_bits != bits) {
      return core::InvalidArgument("the store was prepared with radius " +
                                       std::to_string(loaded.descriptor.fingerprint_radius) +
                                       " and " +
                                       std::to_string(loaded.descriptor.fingerprint_bits) +
                                       " bits; the study needs radius " + std::to_string(radius) +
                                       " and " + std::to_string(bits),
                                   path);
    }
    out << path << ": store version " << version << ", " << loaded.dataset.size() << " compounds\n";
    return std::move(loaded.dataset);
  }
  ml::FingerprintOptions fp;
  fp.radius = radius;
  fp.bits = bits;
  ml::LoadReport report;
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset d, ml::LoadCsvDataset(path, ml::CsvOptions{}, fp, &report));
  out << path << ": " << report.rows_loaded << " of " << report.rows_read << " rows loaded";
  if (!report.skipped.empty()) out << " (" << report.skipped.size() << " skipped)";
  out << "\n";
  return d;
}

core::Result<SiteShares> ParseSiteShares(const Flags& f) {
  FEDRX_ASSIGN_OR_RETURN(std::string sites_flag, Need(f, "sites"));
  FEDRX_ASSIGN_OR_RETURN(std::string shares_flag, Need(f, "shares"));
  SiteShares out;
  out.sites = CommaList(sites_flag);
  for (const auto& s : CommaList(shares_flag)) {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || !std::isfinite(v) || v < 0) {
      return core::InvalidArgument("share '" + s + "' is not a number >= 0", "--shares");
    }
    out.shares.push_back(v);
  }
  if (out.sites.size() != out.shares.size() || out.sites.empty()) {
    return core::InvalidArgument("--sites and --shares must name the same number of sites",
                                 "--shares");
  }
  FEDRX_ASSIGN_OR_RETURN(out.seed, CountFlag(f, "seed", 7, 0, 1'000'000'000'000'000));
  return out;
}

core::Status WriteSiteShares(ml::Dataset all, const SiteShares& shares, const std::string& dir,
                             std::ostream& out) {
  all.split.clear();
  const ml::SplitIndices parts = ml::ScaffoldSplit(all, 0.8, 0.1);
  FEDRX_ASSIGN_OR_RETURN(auto train_parts,
                         ml::PartitionByScaffold(all, parts.train, shares.shares, shares.seed));
  FEDRX_ASSIGN_OR_RETURN(auto valid_parts,
                         ml::PartitionByScaffold(all, parts.valid, shares.shares, shares.seed + 1));
  const auto tagged = [&](const std::vector<std::size_t>& train,
                          const std::vector<std::size_t>& valid) {
    std::vector<std::size_t> rows = train;
    rows.insert(rows.end(), valid.begin(), valid.end());
    ml::Dataset d = all.Subset(rows);
    d.split.assign(train.size(), "train");
    d.split.insert(d.split.end(), valid.size(), "valid");
    return d;
  };
  out << "scaffold split: " << parts.train.size() << " train, " << parts.valid.size() << " valid, "
      << parts.test.size() << " test rows\n";
  for (std::size_t i = 0; i < shares.sites.size(); ++i) {
    const std::string path = dir + "/" + shares.sites[i] + ".csv";
    FEDRX_RETURN_IF_ERROR(ml::WriteCsvDataset(path, tagged(train_parts[i], valid_parts[i])));
    out << "  " << std::left << std::setw(12) << shares.sites[i] << std::right << std::setw(6)
        << train_parts[i].size() << " train " << std::setw(5) << valid_parts[i].size()
        << " valid rows -> " << path << "\n";
  }
  FEDRX_RETURN_IF_ERROR(ml::WriteCsvDataset(dir + "/pooled.csv", tagged(parts.train, parts.valid)));
  ml::Dataset test = all.Subset(parts.test);
  test.split.assign(test.size(), "test");
  FEDRX_RETURN_IF_ERROR(ml::WriteCsvDataset(dir + "/test.csv", test));
  out << "  pooled: " << parts.train.size() << " train rows; held-out test: " << test.size()
      << " rows -> " << dir << "/test.csv\n";
  return core::Status::Ok();
}

core::Result<codec::StudySpec> LoadStudy(const std::string& path) {
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::Config::Load(path, core::ProcessEnvironment()));
  return ml::StudySpecFromConfig(config);
}

core::Result<std::vector<float>> ReadWeights(const std::string& path, std::size_t expected) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) return core::NotFound("cannot open weights", path);
  const auto size = static_cast<std::size_t>(file.tellg());
  if (size != expected * sizeof(float)) {
    return core::InvalidArgument("weights file has " + std::to_string(size) +
                                     " bytes, the study's " + "network needs " +
                                     std::to_string(expected * sizeof(float)),
                                 path);
  }
  std::vector<float> w(expected);
  file.seekg(0);
  file.read(reinterpret_cast<char*>(w.data()), static_cast<std::streamsize>(size));
  return w;
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream s;
  s << std::setprecision(6) << v;
  return s.str();
}

core::Result<std::vector<ml::TaskMetrics>> EvaluateWeights(const ml::NetSpec& net,
                                                           const std::string& weights_path,
                                                           const ml::Dataset& test) {
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> w, ReadWeights(weights_path, ml::ParameterCount(net)));
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> probs, ml::Predict(net, w, test.x, 2));
  return ml::Evaluate(test, probs);
}

double MeanPrAuc(const std::vector<ml::TaskMetrics>& m) {
  double sum = 0;
  int n = 0;
  for (const auto& t : m) {
    if (std::isfinite(t.pr_auc)) {
      sum += t.pr_auc;
      ++n;
    }
  }
  return n ? sum / n : 0;
}

// {"mean_roc_auc": ..., "tasks": {...}} without the closing brace, so that
// callers can add fields.
void WriteMetricsJson(std::ostream& json, const std::vector<ml::TaskMetrics>& m) {
  json << "{\"mean_roc_auc\": " << JsonNumber(ml::MeanRocAuc(m)) << ", \"tasks\": {";
  for (std::size_t t = 0; t < m.size(); ++t) {
    json << (t ? ", " : "") << "\"" << m[t].task << "\": {\"roc_auc\": " << JsonNumber(m[t].roc_auc)
         << ", \"pr_auc\": " << JsonNumber(m[t].pr_auc) << "}";
  }
  json << "}";
}

// The JSON `fedrx-lab poison` wrote, to embed as it is: our own output, but
// still checked to be one object before it goes into another document.
core::Result<std::string> ReadJsonObject(const std::string& path) {
  std::ifstream file(path);
  if (!file) return core::NotFound("cannot open", path);
  std::stringstream text;
  text << file.rdbuf();
  std::string s = text.str();
  const auto b = s.find_first_not_of(" \t\r\n");
  const auto e = s.find_last_not_of(" \t\r\n");
  if (b == std::string::npos || s[b] != '{' || s[e] != '}' || s.size() > (1u << 20)) {
    return core::InvalidArgument("expected one JSON object (as `fedrx-lab poison` writes)", path);
  }
  return s.substr(b, e - b + 1);
}

}  // namespace fedrx::lab
