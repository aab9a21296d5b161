#include "services/lab/lab.h"

#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "services/core/config.h"
#include "services/ml/chem.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"
#include "services/ml/split.h"
#include "services/ml/study_spec.h"
#include "services/ml/trainer.h"

namespace fedrx::lab {
namespace {

constexpr char kUsage[] =
    "usage: fedrx-lab COMMAND [--flag value ...]\n"
    "  prepare --data CSV --out DIR --sites A,B,C --shares 0.5,0.3,0.2 [--seed N]\n"
    "      scaffold split (80/10/10), then train and valid rows dealt to the sites by scaffold;\n"
    "      writes DIR/<site>.csv, DIR/pooled.csv (all train+valid) and DIR/test.csv\n"
    "  train --study FILE --data CSV --out WEIGHTS [--epochs N] [--seed N]\n"
    "      trains the study's network on the CSV's train rows (epochs default: rounds x\n"
    "      local epochs, the federation's budget); writes raw float32 weights\n"
    "  compare --study FILE --test CSV --json OUT NAME=WEIGHTS ...\n"
    "      per-task and mean ROC-AUC / PR-AUC of each model on the test rows";

using Flags = std::map<std::string, std::string>;

core::Result<Flags> ParseFlags(const std::vector<std::string>& args, std::vector<std::string>& rest) {
  Flags f;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) == 0) {
      if (i + 1 >= args.size()) return core::InvalidArgument(args[i] + " needs a value", args[i]);
      f[args[i].substr(2)] = args[i + 1];
      ++i;
    } else {
      rest.push_back(args[i]);
    }
  }
  return f;
}

core::Result<std::string> Need(const Flags& f, const std::string& name) {
  auto it = f.find(name);
  if (it == f.end() || it->second.empty()) {
    return core::InvalidArgument("--" + name + " is required", "--" + name);
  }
  return it->second;
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

core::Result<codec::StudySpec> LoadStudy(const std::string& path) {
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::Config::Load(path, core::ProcessEnvironment()));
  return ml::StudySpecFromConfig(config);
}

core::Status Prepare(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string data, Need(f, "data"));
  FEDRX_ASSIGN_OR_RETURN(std::string dir, Need(f, "out"));
  FEDRX_ASSIGN_OR_RETURN(std::string sites_flag, Need(f, "sites"));
  FEDRX_ASSIGN_OR_RETURN(std::string shares_flag, Need(f, "shares"));
  const std::vector<std::string> sites = CommaList(sites_flag);
  std::vector<double> shares;
  for (const auto& s : CommaList(shares_flag)) shares.push_back(std::strtod(s.c_str(), nullptr));
  if (sites.size() != shares.size() || sites.empty()) {
    return core::InvalidArgument("--sites and --shares must name the same number of sites",
                                 "--shares");
  }
  const std::uint64_t seed =
      f.count("seed") != 0 ? std::strtoull(f.at("seed").c_str(), nullptr, 10) : 7;
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset all, Load(data, 2, 2048, out));
  all.split.clear();
  const ml::SplitIndices parts = ml::ScaffoldSplit(all, 0.8, 0.1);
  FEDRX_ASSIGN_OR_RETURN(auto train_parts, ml::PartitionByScaffold(all, parts.train, shares, seed));
  FEDRX_ASSIGN_OR_RETURN(auto valid_parts,
                         ml::PartitionByScaffold(all, parts.valid, shares, seed + 1));
  const auto tagged = [&](const std::vector<std::size_t>& train,
                          const std::vector<std::size_t>& valid) {
    std::vector<std::size_t> rows = train;
    rows.insert(rows.end(), valid.begin(), valid.end());
    ml::Dataset d = all.Subset(rows);
    d.split.assign(train.size(), "train");
    d.split.insert(d.split.end(), valid.size(), "valid");
    return d;
  };
  out << "scaffold split: " << parts.train.size() << " train, " << parts.valid.size()
      << " valid, " << parts.test.size() << " test rows\n";
  for (std::size_t i = 0; i < sites.size(); ++i) {
    const std::string path = dir + "/" + sites[i] + ".csv";
    FEDRX_RETURN_IF_ERROR(ml::WriteCsvDataset(path, tagged(train_parts[i], valid_parts[i])));
    out << "  " << std::left << std::setw(12) << sites[i] << std::right << std::setw(6)
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

core::Status Train(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string study_path, Need(f, "study"));
  FEDRX_ASSIGN_OR_RETURN(std::string data, Need(f, "data"));
  FEDRX_ASSIGN_OR_RETURN(std::string weights_path, Need(f, "out"));
  FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, LoadStudy(study_path));
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset all,
                         Load(data, static_cast<int>(spec.fingerprint_radius), net.input_dim, out));
  ml::Dataset train = (all.split.empty() ? all : all.WithSplit("train")).WithTasks(spec.tasks);
  ml::TrainOptions o;
  o.epochs = f.count("epochs") != 0 ? static_cast<std::uint32_t>(std::atoi(f.at("epochs").c_str()))
                                    : spec.rounds * spec.local_epochs;
  o.batch_size = spec.batch_size;
  o.learning_rate = spec.learning_rate;
  o.seed = f.count("seed") != 0 ? std::strtoull(f.at("seed").c_str(), nullptr, 10) : spec.seed;
  o.threads = 2;
  std::vector<float> params = ml::InitParameters(net, spec.seed);
  ml::Trainer trainer(o);
  FEDRX_ASSIGN_OR_RETURN(ml::TrainStats stats, trainer.Train(net, train, params));
  std::ofstream file(weights_path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(params.data()),
             static_cast<std::streamsize>(params.size() * sizeof(float)));
  if (!file) return core::Unavailable("cannot write weights", weights_path);
  out << "trained " << train.size() << " rows x " << o.epochs << " epochs in " << std::fixed
      << std::setprecision(1) << stats.seconds << " s ("
      << static_cast<double>(stats.samples_seen) / std::max(stats.seconds, 1e-9)
      << " samples/s), final loss " << std::setprecision(4)
      << (stats.epoch_loss.empty() ? 0.0 : stats.epoch_loss.back()) << " -> " << weights_path
      << "\n";
  return core::Status::Ok();
}

core::Result<std::vector<float>> ReadWeights(const std::string& path, std::size_t expected) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) return core::NotFound("cannot open weights", path);
  const auto size = static_cast<std::size_t>(file.tellg());
  if (size != expected * sizeof(float)) {
    return core::InvalidArgument("weights file has " + std::to_string(size) + " bytes, the study's " +
                                     "network needs " + std::to_string(expected * sizeof(float)),
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

core::Status Compare(const Flags& f, const std::vector<std::string>& models, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string study_path, Need(f, "study"));
  FEDRX_ASSIGN_OR_RETURN(std::string test_path, Need(f, "test"));
  FEDRX_ASSIGN_OR_RETURN(std::string json_path, Need(f, "json"));
  FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, LoadStudy(study_path));
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset raw,
                         Load(test_path, static_cast<int>(spec.fingerprint_radius), net.input_dim, out));
  const ml::Dataset test = raw.WithTasks(spec.tasks);

  std::vector<std::pair<std::string, std::vector<ml::TaskMetrics>>> results;
  for (const auto& m : models) {
    const auto eq = m.find('=');
    if (eq == std::string::npos) return core::InvalidArgument("expected NAME=WEIGHTS", m);
    FEDRX_ASSIGN_OR_RETURN(std::vector<float> w,
                           ReadWeights(m.substr(eq + 1), ml::ParameterCount(net)));
    FEDRX_ASSIGN_OR_RETURN(std::vector<float> probs, ml::Predict(net, w, test.x, 2));
    FEDRX_ASSIGN_OR_RETURN(std::vector<ml::TaskMetrics> metrics, ml::Evaluate(test, probs));
    results.emplace_back(m.substr(0, eq), std::move(metrics));
  }

  out << "\nHeld-out scaffold test set: " << test.size() << " molecules, " << spec.tasks.size()
      << " tasks (ROC-AUC)\n";
  out << std::left << std::setw(16) << "task";
  for (const auto& [name, _] : results) out << std::right << std::setw(12) << name;
  out << "\n";
  for (std::size_t t = 0; t < spec.tasks.size(); ++t) {
    out << std::left << std::setw(16) << spec.tasks[t];
    for (const auto& [_, m] : results) {
      out << std::right << std::setw(12) << std::fixed << std::setprecision(4) << m[t].roc_auc;
    }
    out << "\n";
  }
  out << std::left << std::setw(16) << "mean ROC-AUC";
  for (const auto& [_, m] : results) {
    out << std::right << std::setw(12) << std::fixed << std::setprecision(4) << ml::MeanRocAuc(m);
  }
  out << "\n" << std::left << std::setw(16) << "mean PR-AUC";
  for (const auto& [_, m] : results) {
    double sum = 0;
    int n = 0;
    for (const auto& t : m) {
      if (std::isfinite(t.pr_auc)) {
        sum += t.pr_auc;
        ++n;
      }
    }
    out << std::right << std::setw(12) << std::fixed << std::setprecision(4) << (n ? sum / n : 0);
  }
  out << "\n";

  std::ofstream json(json_path, std::ios::trunc);
  json << "{\n  \"test_rows\": " << test.size() << ",\n  \"models\": {\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& [name, m] = results[i];
    json << "    \"" << name << "\": {\"mean_roc_auc\": " << JsonNumber(ml::MeanRocAuc(m))
         << ", \"tasks\": {";
    for (std::size_t t = 0; t < m.size(); ++t) {
      json << (t ? ", " : "") << "\"" << m[t].task << "\": {\"roc_auc\": "
           << JsonNumber(m[t].roc_auc) << ", \"pr_auc\": " << JsonNumber(m[t].pr_auc) << "}";
    }
    json << "}}" << (i + 1 < results.size() ? "," : "") << "\n";
  }
  json << "  }\n}\n";
  if (!json) return core::Unavailable("cannot write the comparison", json_path);
  out << "\ncomparison written to " << json_path << "\n";
  return core::Status::Ok();
}

}  // namespace

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << kUsage << "\n";
    return 2;
  }
  std::vector<std::string> rest;
  auto flags = ParseFlags(args, rest);
  if (!flags.ok()) {
    err << "fedrx-lab: " << flags.status() << "\n";
    return 2;
  }
  core::Status s;
  if (args[0] == "prepare") {
    s = Prepare(*flags, out);
  } else if (args[0] == "train") {
    s = Train(*flags, out);
  } else if (args[0] == "compare") {
    s = Compare(*flags, rest, out);
  } else {
    err << kUsage << "\n";
    return 2;
  }
  if (!s.ok()) {
    err << "fedrx-lab: " << s << "\n";
    return 1;
  }
  return 0;
}

}  // namespace fedrx::lab
