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
#include "services/lab/lab_common.h"
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
    "      [--min-labelled N] [--min-positives M] [--max-positive-rate R]: first keep only the\n"
    "      label columns with >= N measured compounds, >= M positives and a positive rate <= R\n"
    "      (the ToxCast panel), and the rows with one of their labels; prints the counts\n"
    "  train --study FILE --data CSV --out WEIGHTS [--epochs N] [--seed N]\n"
    "      trains the study's network on the CSV's train rows (epochs default: rounds x\n"
    "      local epochs, the federation's budget); writes raw float32 weights\n"
    "  compare --study FILE --test CSV --json OUT [--dp-model WEIGHTS --dp-study FILE\n"
    "          --dp-epsilon EPS [--dp-rounds N]] [--poisoning JSON]\n"
    "          [--embed NAME=JSON,...] NAME=WEIGHTS ...\n"
    "      per-task and mean ROC-AUC / PR-AUC of each model on the test rows; with --dp-model,\n"
    "      also the model of the DP study (EPS: the epsilon its coordinator reports, N: the\n"
    "      rounds it ran) against the model named federated; --poisoning embeds the JSON\n"
    "      `poison` wrote; --embed puts other commands' JSON objects under their NAMEs\n"
    "  poison --study FILE --data CSV --test CSV --json OUT [--sites 10] [--attackers 2]\n"
    "          [--scale 10] [--rounds 3] [--trim 0.2] [--learning-rate X] [--seed N]\n"
    "      SIMULATED sites in this process: the CSV's train rows dealt to --sites shares by\n"
    "      scaffold; the first --attackers send global - scale x (local - global); the study's\n"
    "      network and training settings (learning rate: X if given); FedAvg, median,\n"
    "      trimmed mean, Krum and multi-Krum (f = attackers) aggregate; FedAvg without\n"
    "      attackers is the reference\n"
    "  secagg --study FILE --data CSV --json OUT [--plain-model WEIGHTS --secure-model WEIGHTS\n"
    "          --test CSV [--plain-first WEIGHTS --secure-first WEIGHTS]] [--sites 10]\n"
    "          [--dropouts 3] [--threshold T] [--max-rows N] [--seed N]\n"
    "      secure aggregation: with the two models, the secure study's final model against the\n"
    "      plain FedAvg one (max |difference|, mean test ROC-AUC of each; with their version-1\n"
    "      models, round 1's difference against the fixed point's bound); then SIMULATED sites\n"
    "      in this process, each masking one local round's delta on its scaffold share of the\n"
    "      CSV's train rows, through the real SecAggClient/SecAggServer: the last --dropouts\n"
    "      leave after their masked input (T: a majority by default), one leaves earlier, and\n"
    "      too many leave; the unmasked sum against the plain sum and the fixed point's bound\n"
    "  heads-prepare --tox21 CSV --clintox CSV --toxcast CSV --out DIR [--seed 7] [--fraction "
    "0.6]\n"
    "      the private-heads demo's four institutions, each with its own tasks: DIR/nr-site.csv\n"
    "      (Tox21 NR-* on a seeded --fraction of its molecules), DIR/sr-site.csv (SR-* on "
    "another,\n"
    "      independently drawn), DIR/clintox-site.csv, DIR/toxcast-site.csv; rows without a label\n"
    "      dropped, each file scaffold-split 80/10/10; prints the overlaps between sites\n"
    "  heads-compare --study FILE --trunk TRUNK --sites ID=CSV:HEAD[,ID=CSV:HEAD...] --json OUT\n"
    "          [--epochs N]\n"
    "      per site, on its CSV's test rows and own tasks: the federated trunk (`fedrx study\n"
    "      model`) under the site's private head (<site.state_dir>/<study>.head) against the same\n"
    "      network from the same start trained on its train rows alone (epochs default: rounds x\n"
    "      local epochs); each institution runs it on its own machine\n"
    "  export --data STORE|CSV --out FILE.csv [--study FILE]\n"
    "      the rows' SMILES, split, labels (the study's tasks, if given) and fingerprint bits\n"
    "      (space-separated indices, as the store holds them: scrambled when it was) as CSV,\n"
    "      so that a baseline outside fedrx sees exactly the federated model's inputs\n"
    "  coverage --study FILE --model WEIGHTS --test STORE|CSV --redis HOST:PORT --json OUT\n"
    "          [--version N] [--confidence 0.8,0.9]\n"
    "      conformal coverage per class on the test rows: the prediction sets the tox service\n"
    "      would give (serving/conformal.h) from the calibration the coordinator stored for\n"
    "      the model version (default: the study's latest), and the out-of-domain share\n"
    "  clinical-prepare --clintox CSV --tox21 CSV --out DIR --sites A,B,C --shares 0.5,0.3,0.2\n"
    "          [--seed N]\n"
    "      ClinTox as `prepare` splits a dataset (DIR/<site>.csv, pooled.csv, test.csv), each\n"
    "      compound with the 12 Tox21 labels of the same compound (by InChIKey; empty when\n"
    "      Tox21 did not measure it); prints how many matched\n"
    "  clinical-evaluate --study FILE --test CSV|STORE --redis HOST:PORT --json OUT\n"
    "          [--area NAME] [--version N] [--lr-bins 5]\n"
    "      the study's federated model and CT_TOX calibration histogram from the registry: on\n"
    "      the held-out compounds, the base against the risk-adjusted likelihood of approval\n"
    "      (services/clinical) as predictors of approval: Brier, log loss, ROC-AUC";

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

core::Status Prepare(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string data, Need(f, "data"));
  FEDRX_ASSIGN_OR_RETURN(std::string dir, Need(f, "out"));
  FEDRX_ASSIGN_OR_RETURN(SiteShares shares, ParseSiteShares(f));
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset all, Load(data, 2, 2048, out));
  if (f.count("min-labelled") != 0 || f.count("min-positives") != 0 ||
      f.count("max-positive-rate") != 0) {
    FEDRX_ASSIGN_OR_RETURN(all, ApplyPanelRule(f, all, out));
  }
  return WriteSiteShares(all, shares, dir, out);
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
  // Sections other commands wrote, embedded under their names.
  std::vector<std::pair<std::string, std::string>> sections;
  if (f.count("poisoning") != 0) {
    FEDRX_ASSIGN_OR_RETURN(std::string poisoning, ReadJsonObject(f.at("poisoning")));
    sections.emplace_back("poisoning", std::move(poisoning));
  }
  for (const auto& item : CommaList(f.count("embed") != 0 ? f.at("embed") : "")) {
    const auto eq = item.find('=');
    const std::string name = item.substr(0, eq);
    if (eq == std::string::npos || name.empty() ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) {
      return core::InvalidArgument("expected NAME=JSON with NAME in [a-z_]: '" + item + "'",
                                   "--embed");
    }
    for (const auto& [existing, _] : sections) {
      if (existing == name)
        return core::InvalidArgument("'" + name + "' embedded twice", "--embed");
    }
    FEDRX_ASSIGN_OR_RETURN(std::string body, ReadJsonObject(item.substr(eq + 1)));
    sections.emplace_back(name, std::move(body));
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
  for (const auto& [name, body] : sections) json << ",\n  \"" << name << "\": " << body;
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
  } else if (args[0] == "secagg") {
    s = SecureAggregationCommand(*flags, out);
  } else if (args[0] == "heads-prepare") {
    s = HeadsPrepareCommand(*flags, out);
  } else if (args[0] == "heads-compare") {
    s = HeadsCompareCommand(*flags, out);
  } else if (args[0] == "clinical-prepare") {
    s = ClinicalPrepareCommand(*flags, out);
  } else if (args[0] == "clinical-evaluate") {
    s = ClinicalEvaluateCommand(*flags, out);
  } else if (args[0] == "export") {
    s = ExportCommand(*flags, out);
  } else if (args[0] == "coverage") {
    s = CoverageCommand(*flags, out);
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
