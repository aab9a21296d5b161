#include "services/lab/lab.h"

#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "services/coordinator/study_runner.h"
#include "services/core/config.h"
#include "services/lab/simulation.h"
#include "services/ml/chem.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"
#include "services/ml/split.h"
#include "services/ml/study_spec.h"
#include "services/ml/trainer.h"
#include "services/privacy/dp_accountant.h"

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
    "  compare --study FILE --test CSV --json OUT [--dp-model WEIGHTS --dp-study FILE\n"
    "          --dp-epsilon EPS [--dp-rounds N]] [--poisoning JSON] NAME=WEIGHTS ...\n"
    "      per-task and mean ROC-AUC / PR-AUC of each model on the test rows; with --dp-model,\n"
    "      also the model of the DP study (EPS: the epsilon its coordinator reports, N: the\n"
    "      rounds it ran) against the model named federated; --poisoning embeds the JSON\n"
    "      `poison` wrote\n"
    "  poison --study FILE --data CSV --test CSV --json OUT [--sites 10] [--attackers 2]\n"
    "          [--scale 10] [--rounds 3] [--trim 0.2] [--learning-rate X] [--seed N]\n"
    "      SIMULATED sites in this process: the CSV's train rows dealt to --sites shares by\n"
    "      scaffold; the first --attackers send global - scale x (local - global); the study's\n"
    "      network and training settings (learning rate: X if given); FedAvg, median,\n"
    "      trimmed mean, Krum and multi-Krum (f = attackers) aggregate; FedAvg without\n"
    "      attackers is the reference";

using Flags = std::map<std::string, std::string>;

core::Result<Flags> ParseFlags(const std::vector<std::string>& args,
                               std::vector<std::string>& rest) {
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
  out << "scaffold split: " << parts.train.size() << " train, " << parts.valid.size() << " valid, "
      << parts.test.size() << " test rows\n";
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

// The DP study's model, with what its coordinator reported about it.
struct DpResult {
  codec::StudySpec spec;
  double epsilon = 0;             // as the coordinator reported it
  double accountant_epsilon = 0;  // recomputed here from the study and its rounds
  std::uint32_t rounds = 0;
  std::vector<ml::TaskMetrics> metrics;
};

core::Result<DpResult> EvaluateDp(const Flags& f, const codec::StudySpec& spec,
                                  const ml::Dataset& raw_test, const std::string& test_path,
                                  std::ostream& out) {
  DpResult dp;
  FEDRX_ASSIGN_OR_RETURN(std::string model_path, Need(f, "dp-model"));
  FEDRX_ASSIGN_OR_RETURN(std::string study_path, Need(f, "dp-study"));
  FEDRX_ASSIGN_OR_RETURN(dp.spec, LoadStudy(study_path));
  if (dp.spec.tasks != spec.tasks) {
    return core::InvalidArgument("the DP study must have the compared study's tasks", study_path);
  }
  if (!(dp.spec.dp_clip_norm > 0 && dp.spec.dp_noise_multiplier > 0)) {
    return core::InvalidArgument("the DP study sets no privacy.clip_norm and noise_multiplier",
                                 study_path);
  }
  if (f.count("dp-epsilon") == 0) {
    return core::InvalidArgument("--dp-epsilon (the coordinator's) is required with --dp-model",
                                 "--dp-epsilon");
  }
  FEDRX_ASSIGN_OR_RETURN(dp.epsilon, NumberFlag(f, "dp-epsilon", 0, 0, 1e9));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t rounds,
                         CountFlag(f, "dp-rounds", dp.spec.rounds, 0, 100000));
  dp.rounds = static_cast<std::uint32_t>(rounds);
  FEDRX_ASSIGN_OR_RETURN(std::optional<privacy::RdpAccountant> accountant,
                         coordinator::MakeAccountant(dp.spec));
  dp.accountant_epsilon = accountant.has_value() ? accountant->EpsilonAfter(dp.rounds) : 0;
  const ml::NetSpec net = ml::NetSpecFromStudy(dp.spec);
  ml::Dataset dp_test;
  if (dp.spec.fingerprint_radius == spec.fingerprint_radius &&
      dp.spec.model.input_dim == spec.model.input_dim) {
    dp_test = raw_test.WithTasks(dp.spec.tasks);
  } else {
    FEDRX_ASSIGN_OR_RETURN(
        ml::Dataset raw,
        Load(test_path, static_cast<int>(dp.spec.fingerprint_radius), net.input_dim, out));
    dp_test = raw.WithTasks(dp.spec.tasks);
  }
  FEDRX_ASSIGN_OR_RETURN(dp.metrics, EvaluateWeights(net, model_path, dp_test));
  return dp;
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

core::Status Compare(const Flags& f, const std::vector<std::string>& models, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string study_path, Need(f, "study"));
  FEDRX_ASSIGN_OR_RETURN(std::string test_path, Need(f, "test"));
  FEDRX_ASSIGN_OR_RETURN(std::string json_path, Need(f, "json"));
  FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, LoadStudy(study_path));
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset raw, Load(test_path, static_cast<int>(spec.fingerprint_radius),
                                               net.input_dim, out));
  const ml::Dataset test = raw.WithTasks(spec.tasks);

  std::vector<std::pair<std::string, std::vector<ml::TaskMetrics>>> results;
  for (const auto& m : models) {
    const auto eq = m.find('=');
    if (eq == std::string::npos) return core::InvalidArgument("expected NAME=WEIGHTS", m);
    FEDRX_ASSIGN_OR_RETURN(std::vector<ml::TaskMetrics> metrics,
                           EvaluateWeights(net, m.substr(eq + 1), test));
    results.emplace_back(m.substr(0, eq), std::move(metrics));
  }
  std::optional<DpResult> dp;
  if (f.count("dp-model") != 0) {
    FEDRX_ASSIGN_OR_RETURN(DpResult d, EvaluateDp(f, spec, raw, test_path, out));
    dp = std::move(d);
  }
  std::string poisoning;
  if (f.count("poisoning") != 0) {
    FEDRX_ASSIGN_OR_RETURN(poisoning, ReadJsonObject(f.at("poisoning")));
  }
  double federated = std::nan("");
  for (const auto& [name, m] : results) {
    if (name == "federated") federated = ml::MeanRocAuc(m);
  }

  // The DP model is a column of the table too, but not one of "models":
  // those share the compared study's network and budget.
  auto columns = results;
  if (dp.has_value()) columns.emplace_back("dp", dp->metrics);
  out << "\nHeld-out scaffold test set: " << test.size() << " molecules, " << spec.tasks.size()
      << " tasks (ROC-AUC)\n";
  out << std::left << std::setw(16) << "task";
  for (const auto& [name, _] : columns) out << std::right << std::setw(12) << name;
  out << "\n";
  for (std::size_t t = 0; t < spec.tasks.size(); ++t) {
    out << std::left << std::setw(16) << spec.tasks[t];
    for (const auto& [_, m] : columns) {
      out << std::right << std::setw(12) << std::fixed << std::setprecision(4) << m[t].roc_auc;
    }
    out << "\n";
  }
  out << std::left << std::setw(16) << "mean ROC-AUC";
  for (const auto& [_, m] : columns) {
    out << std::right << std::setw(12) << std::fixed << std::setprecision(4) << ml::MeanRocAuc(m);
  }
  out << "\n" << std::left << std::setw(16) << "mean PR-AUC";
  for (const auto& [_, m] : columns) {
    out << std::right << std::setw(12) << std::fixed << std::setprecision(4) << MeanPrAuc(m);
  }
  out << "\n";
  double dp_loss = std::nan("");
  if (dp.has_value()) {
    dp_loss = federated - ml::MeanRocAuc(dp->metrics);
    out << "\ndp: client-level DP over the whole study, epsilon " << std::setprecision(3)
        << dp->epsilon << " (coordinator; accountant " << dp->accountant_epsilon << ") at delta "
        << std::defaultfloat << dp->spec.dp_delta << ", " << dp->rounds << " rounds, clip norm "
        << dp->spec.dp_clip_norm << ", noise multiplier " << dp->spec.dp_noise_multiplier
        << ": mean ROC-AUC " << std::fixed << std::setprecision(4) << ml::MeanRocAuc(dp->metrics)
        << ", " << dp_loss << " below federated\n";
  }

  std::ofstream json(json_path, std::ios::trunc);
  json << "{\n  \"test_rows\": " << test.size() << ",\n  \"models\": {\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    json << "    \"" << results[i].first << "\": ";
    WriteMetricsJson(json, results[i].second);
    json << "}" << (i + 1 < results.size() ? "," : "") << "\n";
  }
  json << "  }";
  if (dp.has_value()) {
    json << ",\n  \"dp\": {\"epsilon\": " << JsonNumber(dp->epsilon)
         << ", \"delta\": " << JsonNumber(dp->spec.dp_delta) << ", \"rounds\": " << dp->rounds
         << ", \"clip_norm\": " << JsonNumber(dp->spec.dp_clip_norm)
         << ", \"noise_multiplier\": " << JsonNumber(dp->spec.dp_noise_multiplier)
         << ", \"mean_roc_auc\": " << JsonNumber(ml::MeanRocAuc(dp->metrics))
         << ", \"loss_vs_federated\": " << JsonNumber(dp_loss)
         << ", \"epsilon_budget\": " << JsonNumber(dp->spec.dp_epsilon_budget)
         << ", \"accountant_epsilon\": " << JsonNumber(dp->accountant_epsilon) << ", \"study\": \""
         << dp->spec.study_id << "\",\n         \"metrics\": ";
    WriteMetricsJson(json, dp->metrics);
    json << "}}";
  }
  if (!poisoning.empty()) json << ",\n  \"poisoning\": " << poisoning;
  json << "\n}\n";
  if (!json) return core::Unavailable("cannot write the comparison", json_path);
  out << "\ncomparison written to " << json_path << "\n";
  return core::Status::Ok();
}

struct PoisonRun {
  std::string key;    // the JSON key
  std::string label;  // the table's
  std::string extra;  // the rule's parameters, as JSON fields
  codec::StudySpec rule;
  bool attacked = true;
};

core::Status Poison(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string study_path, Need(f, "study"));
  FEDRX_ASSIGN_OR_RETURN(std::string data_path, Need(f, "data"));
  FEDRX_ASSIGN_OR_RETURN(std::string test_path, Need(f, "test"));
  FEDRX_ASSIGN_OR_RETURN(std::string json_path, Need(f, "json"));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t num_sites, CountFlag(f, "sites", 10, 1, 1000));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t attackers_flag, CountFlag(f, "attackers", 2, 0, 1000));
  FEDRX_ASSIGN_OR_RETURN(double scale, NumberFlag(f, "scale", 10, -1e6, 1e6));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t rounds, CountFlag(f, "rounds", 3, 1, 10000));
  FEDRX_ASSIGN_OR_RETURN(double trim, NumberFlag(f, "trim", 0.2, 0, 0.49));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t seed, CountFlag(f, "seed", 7, 0, 1'000'000'000'000'000));
  FEDRX_ASSIGN_OR_RETURN(double learning_rate, NumberFlag(f, "learning-rate", 0, 0, 10));
  const auto n = static_cast<std::size_t>(num_sites);
  const auto attackers = static_cast<std::uint32_t>(attackers_flag);
  if (attackers >= n)
    return core::InvalidArgument("--attackers must be fewer than --sites", "--attackers");

  FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, LoadStudy(study_path));
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  const int radius = static_cast<int>(spec.fingerprint_radius);
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset all, Load(data_path, radius, net.input_dim, out));
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset raw_test, Load(test_path, radius, net.input_dim, out));
  const ml::Dataset train =
      (all.split.empty() ? all : all.WithSplit("train")).WithTasks(spec.tasks);
  const ml::Dataset test = raw_test.WithTasks(spec.tasks);
  std::vector<std::size_t> rows(train.size());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  const std::vector<double> shares(n, 1.0);
  FEDRX_ASSIGN_OR_RETURN(auto parts, ml::PartitionByScaffold(train, rows, shares, seed));
  std::vector<SimulatedSite> sites(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::ostringstream id;
    id << "sim-site-" << std::setw(2) << std::setfill('0') << i + 1;
    sites[i].id = id.str();
    sites[i].train = train.Subset(parts[i]);
    sites[i].attacker = i < attackers;
  }
  std::vector<SimulatedSite> honest = sites;
  for (auto& s : honest) s.attacker = false;

  SimulationOptions o;
  o.rounds = static_cast<std::uint32_t>(rounds);
  o.local_epochs = spec.local_epochs;
  o.batch_size = spec.batch_size;
  o.learning_rate = learning_rate > 0 ? static_cast<float>(learning_rate) : spec.learning_rate;
  o.seed = spec.seed;
  o.attack_scale = scale;
  o.threads = 2;

  const auto rule = [&](const std::string& name) {
    codec::StudySpec r;
    r.strategy = name;
    r.trim_fraction = static_cast<float>(trim);
    r.krum_byzantine = attackers;
    r.krum_selected = 0;  // multi-Krum: n - f
    return r;
  };
  const std::string f_text = std::to_string(attackers);
  const std::string m_text = std::to_string(n - attackers);
  std::ostringstream beta;
  beta << trim;
  std::vector<PoisonRun> runs = {
      {"no_attack_fedavg", "fedavg, no attackers", "", rule("fedavg"), false},
      {"fedavg", "fedavg", "", rule("fedavg"), true},
      {"median", "coordinate median", "", rule("median"), true},
      {"trimmed_mean", "trimmed mean (beta " + beta.str() + ")",
       "\"beta\": " + JsonNumber(trim) + ", ", rule("trimmed_mean"), true},
      {"krum", "krum (f " + f_text + ")", "\"f\": " + f_text + ", ", rule("krum"), true},
      {"multikrum", "multi-krum (f " + f_text + ", m " + m_text + ")",
       "\"f\": " + f_text + ", \"m\": " + m_text + ", ", rule("multikrum"), true},
  };
  out << "SIMULATED federation: " << n << " in-process sites (" << train.size()
      << " train rows dealt by scaffold), the first " << attackers << " send global - " << scale
      << " x (local - global); " << o.rounds << " round(s) of " << o.local_epochs
      << " local epoch(s), learning rate " << o.learning_rate << "\n";
  out << std::left << std::setw(30) << "rule" << std::right << std::setw(18) << "mean test ROC-AUC"
      << std::setw(14) << "vs no attack"
      << "\n";
  std::vector<SimulationResult> results;
  for (const auto& run : runs) {
    FEDRX_ASSIGN_OR_RETURN(
        SimulationResult r,
        SimulateFederation(net, run.attacked ? sites : honest, test, run.rule, o));
    out << std::left << std::setw(30) << run.label << std::right << std::fixed
        << std::setprecision(4) << std::setw(18) << r.mean_roc_auc;
    if (!results.empty()) {
      out << std::setw(14) << std::showpos << r.mean_roc_auc - results.front().mean_roc_auc
          << std::noshowpos;
    }
    out << "\n";
    out.flush();
    results.push_back(std::move(r));
  }

  std::ofstream json(json_path, std::ios::trunc);
  json << "{\"simulated\": true, \"sites\": " << n << ", \"attackers\": " << attackers
       << ", \"attack\": \"global - scale * (local - global)\", \"scale\": " << JsonNumber(scale)
       << ", \"rounds\": " << o.rounds << ", \"local_epochs\": " << o.local_epochs
       << ", \"learning_rate\": " << JsonNumber(o.learning_rate) << ", \"seed\": " << o.seed
       << ", \"partition_seed\": " << seed << ", \"train_rows\": " << train.size()
       << ", \"test_rows\": " << test.size() << ",\n    \"rules\": {\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    json << "      \"" << runs[i].key << "\": {" << runs[i].extra
         << "\"mean_roc_auc\": " << JsonNumber(results[i].mean_roc_auc)
         << ", \"round_mean_roc_auc\": [";
    for (std::size_t r = 0; r < results[i].round_mean_roc_auc.size(); ++r) {
      json << (r ? ", " : "") << JsonNumber(results[i].round_mean_roc_auc[r]);
    }
    json << "]}" << (i + 1 < runs.size() ? "," : "") << "\n";
  }
  json << "    }}\n";
  if (!json) return core::Unavailable("cannot write the poisoning results", json_path);
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
  } else if (args[0] == "poison") {
    s = Poison(*flags, out);
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
