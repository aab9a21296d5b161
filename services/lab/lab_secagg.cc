// `fedrx-lab secagg`: what secure aggregation does to the demo. Two parts:
// the platform's secure study against its plain twin (same seeds, same
// sites), and a SIMULATED round of many sites, some of which leave it, run
// through the real SecAggClient / SecAggServer in this process.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <optional>
#include <sstream>

#include "services/coordinator/study_runner.h"
#include "services/lab/lab_common.h"
#include "services/lab/secagg_demo.h"
#include "services/ml/split.h"
#include "services/ml/study_spec.h"
#include "services/ml/trainer.h"

namespace fedrx::lab {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string SiteName(std::size_t i) {
  std::ostringstream id;
  id << "sim-site-" << std::setw(2) << std::setfill('0') << i + 1;
  return id.str();
}

// The bound on one round's mean delta, per coordinate, for `sites` sites of
// the platform's encoding: the weighted sum and the total weight are each
// off by at most n e, so the mean S/W is off by at most
// n e (1 + |S/W|) / (W - n e); the largest site weighs 1, so W >= 1, and a
// round's mean delta is far below 1 in magnitude: 2 n e / (1 - n e).
double RoundMeanBound(std::size_t sites) {
  const double ne =
      static_cast<double>(sites) * coordinator::SecAggEncoding(sites).MaxErrorPerSite();
  return 2 * ne / (1 - ne);
}

struct ModelComparison {
  double max_abs_diff = 0;
  double mean_abs_diff = 0;
  std::vector<ml::TaskMetrics> plain;
  std::vector<ml::TaskMetrics> secure;
  // The two studies' version-1 models (--plain-first, --secure-first), when
  // given: from the same initial model, they differ only by round 1's rounding.
  bool first_round = false;
  double first_max_abs_diff = 0;
  double first_bound = 0;
};

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  }
  return m;
}

core::Result<std::vector<float>> ReadModel(const Flags& f, const std::string& flag,
                                           std::size_t parameters) {
  FEDRX_ASSIGN_OR_RETURN(std::string path, Need(f, flag));
  auto w = ReadWeights(path, parameters);
  if (!w.ok()) {
    return core::Status(w.status().code(), path + ": " + w.status().message(), "--" + flag);
  }
  return w;
}

core::Result<ModelComparison> CompareModels(const Flags& f, const codec::StudySpec& spec,
                                            const ml::NetSpec& net, std::ostream& out) {
  const std::size_t parameters = ml::ParameterCount(net);
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> plain, ReadModel(f, "plain-model", parameters));
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> secure, ReadModel(f, "secure-model", parameters));
  FEDRX_ASSIGN_OR_RETURN(std::string test_path, Need(f, "test"));
  ModelComparison c;
  double sum = 0;
  for (std::size_t i = 0; i < parameters; ++i) {
    const double d = std::abs(static_cast<double>(secure[i]) - plain[i]);
    c.max_abs_diff = std::max(c.max_abs_diff, d);
    sum += d;
  }
  c.mean_abs_diff = sum / static_cast<double>(parameters);
  if (f.count("plain-first") != 0 || f.count("secure-first") != 0) {
    FEDRX_ASSIGN_OR_RETURN(std::vector<float> plain_1, ReadModel(f, "plain-first", parameters));
    FEDRX_ASSIGN_OR_RETURN(std::vector<float> secure_1, ReadModel(f, "secure-first", parameters));
    c.first_round = true;
    c.first_max_abs_diff = MaxAbsDiff(plain_1, secure_1);
    // The mean delta's bound, plus float32 rounding on both sides: the plain
    // running mean's and the secure sum's, mean's and base + mean's, each a
    // few ulps of the largest weight; 16 ulps cover them.
    double largest = 0;
    for (float w : plain_1) largest = std::max(largest, std::abs(static_cast<double>(w)));
    const std::size_t n =
        spec.sites.empty() ? std::max<std::size_t>(spec.min_sites, 2) : spec.sites.size();
    c.first_bound = RoundMeanBound(n) + 16 * largest * std::ldexp(1.0, -24);
  }
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset raw, Load(test_path, static_cast<int>(spec.fingerprint_radius),
                                               net.input_dim, out));
  const ml::Dataset test = raw.WithTasks(spec.tasks);
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> p_plain, ml::Predict(net, plain, test.x, 2));
  FEDRX_ASSIGN_OR_RETURN(c.plain, ml::Evaluate(test, p_plain));
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> p_secure, ml::Predict(net, secure, test.x, 2));
  FEDRX_ASSIGN_OR_RETURN(c.secure, ml::Evaluate(test, p_secure));
  return c;
}

// One local round of the study's training from its initial model on each
// simulated site's rows: the deltas the simulated sites mask, and their
// FedAvg weights (samples over the largest site's, as the coordinator sets).
core::Result<std::vector<SecAggSimSite>> TrainDeltas(const codec::StudySpec& spec,
                                                     const ml::NetSpec& net,
                                                     const ml::Dataset& train, std::size_t n,
                                                     std::uint64_t partition_seed,
                                                     std::size_t max_rows, std::ostream& out) {
  std::vector<std::size_t> rows(train.size());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  const std::vector<double> shares(n, 1.0);
  FEDRX_ASSIGN_OR_RETURN(auto parts, ml::PartitionByScaffold(train, rows, shares, partition_seed));
  const std::vector<float> global = coordinator::InitialModel(spec);
  std::vector<SecAggSimSite> sites(n);
  std::size_t largest = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (max_rows > 0 && parts[i].size() > max_rows) parts[i].resize(max_rows);
    largest = std::max(largest, parts[i].size());
  }
  if (largest == 0) return core::InvalidArgument("no training rows for the sites", "--data");
  for (std::size_t i = 0; i < n; ++i) {
    ml::TrainOptions o;
    o.epochs = spec.local_epochs;
    o.batch_size = spec.batch_size;
    o.learning_rate = spec.learning_rate;
    o.threads = 2;
    o.seed = coordinator::SiteRoundSeed(spec.seed, 1, SiteName(i));
    ml::Trainer trainer(o);
    std::vector<float> local = global;
    if (!parts[i].empty()) {
      FEDRX_RETURN_IF_ERROR(trainer.Train(net, train.Subset(parts[i]), local).status());
    }
    sites[i].update.resize(global.size());
    for (std::size_t k = 0; k < global.size(); ++k) sites[i].update[k] = local[k] - global[k];
    sites[i].weight = static_cast<double>(parts[i].size()) / static_cast<double>(largest);
    out << "  " << SiteName(i) << ": " << std::setw(5) << parts[i].size() << " rows, weight "
        << std::fixed << std::setprecision(3) << sites[i].weight << "\n";
    out.unsetf(std::ios::floatfield);
  }
  return sites;
}

struct Scenario {
  std::string key;
  std::string label;
  std::size_t dropped = 0;
  SecAggLeave stage = SecAggLeave::kNever;
  std::optional<SecAggSimReport> report;  // nullopt: not run (too few sites)
  // For sites that left before their masked input: the largest |w x| of the
  // excluded updates, which the sum would be off by had they been counted.
  double excluded_max_abs = 0;
};

std::string ScenarioJson(const Scenario& s, std::size_t plain_update_bytes) {
  std::ostringstream j;
  const SecAggSimReport& r = *s.report;
  j << "{\"dropped\": " << s.dropped << ", \"completed\": " << (r.completed ? "true" : "false");
  if (!r.completed) {
    j << ", \"error\": " << JsonString(r.failure.ToString()) << "}";
    return j.str();
  }
  std::uint64_t lo = 0, hi = 0;
  for (std::uint64_t b : r.bytes_sent) {
    if (b == 0) continue;
    lo = lo == 0 ? b : std::min(lo, b);
    hi = std::max(hi, b);
  }
  j << ", \"survivors\": " << r.survivors.size() << ", \"unmasking_responders\": " << r.responders
    << ", \"max_abs_error\": " << JsonNumber(r.max_abs_error)
    << ", \"total_weight_error\": " << JsonNumber(r.weight_error)
    << ", \"error_bound\": " << JsonNumber(r.error_bound)
    << ", \"within_bound\": " << (r.within_bound ? "true" : "false")
    << ", \"mean_max_abs_error\": " << JsonNumber(r.mean_max_abs_error)
    << ", \"clipped_coordinates\": " << r.clipped_coordinates
    << ", \"unmask_seconds\": " << JsonNumber(r.unmask_seconds)
    << ", \"bytes_sent_per_site\": {\"min\": " << lo << ", \"max\": " << hi
    << ", \"plain_update\": " << plain_update_bytes << "}";
  if (s.stage == SecAggLeave::kBeforeMaskedInput || s.stage == SecAggLeave::kBeforeKeys) {
    j << ", \"excluded_update_max_abs\": " << JsonNumber(s.excluded_max_abs);
  }
  j << "}";
  return j.str();
}

}  // namespace

core::Status SecureAggregationCommand(const Flags& f, std::ostream& out) {
  // Flags first, so that a bad one is refused before anything loads.
  FEDRX_ASSIGN_OR_RETURN(std::string study_path, Need(f, "study"));
  FEDRX_ASSIGN_OR_RETURN(std::string data_path, Need(f, "data"));
  FEDRX_ASSIGN_OR_RETURN(std::string json_path, Need(f, "json"));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t sites_flag, CountFlag(f, "sites", 10, 2, 1000));
  const auto n = static_cast<std::size_t>(sites_flag);
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t dropouts_flag, CountFlag(f, "dropouts", 3, 0, 1000));
  const auto dropouts = static_cast<std::size_t>(dropouts_flag);
  // A majority by default, as the privacy library advises (t > n / 2).
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t threshold_flag, CountFlag(f, "threshold", n / 2 + 1, 2, n));
  const auto threshold = static_cast<std::size_t>(threshold_flag);
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t seed, CountFlag(f, "seed", 7, 0, 1'000'000'000'000'000));
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t max_rows, CountFlag(f, "max-rows", 0, 0, 100'000'000));
  if (dropouts >= n) {
    return core::InvalidArgument("--dropouts " + std::to_string(dropouts) +
                                     " must be fewer than --sites " + std::to_string(n),
                                 "--dropouts");
  }
  if (dropouts > n - threshold) {
    return core::InvalidArgument("--dropouts " + std::to_string(dropouts) + " leaves " +
                                     std::to_string(n - dropouts) + " of " + std::to_string(n) +
                                     " sites to answer the unmasking, below the threshold " +
                                     std::to_string(threshold) + " (--threshold): at most " +
                                     std::to_string(n - threshold) + " may drop",
                                 "--dropouts");
  }
  const bool compare_models = f.count("plain-model") != 0 || f.count("secure-model") != 0;
  if (compare_models) {
    for (const char* flag : {"plain-model", "secure-model", "test"}) {
      if (auto s = Need(f, flag); !s.ok()) {
        return core::InvalidArgument(
            "--plain-model and --secure-model go together, with --test: --" + std::string(flag) +
                " is missing",
            "--" + std::string(flag));
      }
    }
  }

  auto loaded = LoadStudy(study_path);
  if (!loaded.ok()) {
    return core::Status(loaded.status().code(), study_path + ": " + loaded.status().ToString(),
                        "--study");
  }
  const codec::StudySpec spec = std::move(*loaded);
  if (spec.private_heads) {
    return core::InvalidArgument("a private-heads study is not supported here", "--study");
  }
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  if (core::Status s = ml::ValidateSpec(net); !s.ok()) {
    return core::InvalidArgument(study_path + ": " + s.ToString(), "--study");
  }
  const std::size_t parameters = ml::ParameterCount(net);
  const int radius = static_cast<int>(spec.fingerprint_radius);

  // 1. The platform's models, plain and secure.
  std::optional<ModelComparison> models;
  if (compare_models) {
    out << "Platform: study " << spec.study_id << " (secure aggregation "
        << (spec.secure_aggregation ? "on" : "OFF") << ") against the plain FedAvg model\n";
    FEDRX_ASSIGN_OR_RETURN(ModelComparison c, CompareModels(f, spec, net, out));
    const double plain_auc = ml::MeanRocAuc(c.plain);
    const double secure_auc = ml::MeanRocAuc(c.secure);
    out << std::left << std::setw(34) << "  model" << std::right << std::setw(18)
        << "mean test ROC-AUC\n"
        << std::fixed << std::setprecision(4) << std::left << std::setw(34) << "  plain FedAvg"
        << std::right << std::setw(17) << plain_auc << "\n"
        << std::left << std::setw(34) << "  secure aggregation" << std::right << std::setw(17)
        << secure_auc << "\n"
        << std::left << std::setw(34) << "  difference" << std::right << std::setw(17)
        << std::showpos << secure_auc - plain_auc << std::noshowpos << "\n";
    out.unsetf(std::ios::floatfield);
    out << std::setprecision(3) << "  max |secure - plain| over " << parameters
        << " weights: " << c.max_abs_diff << " (mean " << c.mean_abs_diff << ")\n";
    if (c.first_round) {
      out << "  after round 1 (same initial model): max |secure - plain| " << c.first_max_abs_diff
          << ", bound " << c.first_bound << ": "
          << (c.first_max_abs_diff <= c.first_bound ? "within" : "NOT within") << "\n";
    }
    models = std::move(c);
  }

  // 2. The dropout check, SIMULATED.
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset all, Load(data_path, radius, net.input_dim, out));
  const ml::Dataset train =
      (all.split.empty() ? all : all.WithSplit("train")).WithTasks(spec.tasks);
  out << "SIMULATED secure aggregation: " << n << " in-process sites (not site services), each "
      << "masking a real delta: one local round (" << spec.local_epochs << " epoch(s)) from the "
      << "study's initial model on its scaffold share of " << train.size() << " train rows\n";
  FEDRX_ASSIGN_OR_RETURN(std::vector<SecAggSimSite> sites,
                         TrainDeltas(spec, net, train, n, seed, max_rows, out));

  std::vector<Scenario> scenarios = {
      {"dropped_after_masked_input", std::to_string(dropouts) + " leave after their masked input",
       dropouts, SecAggLeave::kAfterMaskedInput},
      {"dropped_before_masked_input", "1 leaves before its masked input", 1,
       SecAggLeave::kBeforeMaskedInput},
      {"dropped_before_keys", "1 never sends its keys", 1, SecAggLeave::kBeforeKeys},
      {"below_threshold", std::to_string(n - threshold + 1) + " leave after their masked input",
       n - threshold + 1, SecAggLeave::kAfterMaskedInput},
  };
  out << std::left << std::setw(40)
      << "  sites leaving (threshold " + std::to_string(threshold) + ")" << std::right
      << std::setw(10) << "outcome" << std::setw(11) << "in sum" << std::setw(14) << "max |error|"
      << std::setw(12) << "bound" << std::setw(10) << "within" << std::setw(12) << "unmask s"
      << "\n";
  for (Scenario& s : scenarios) {
    // Single dropouts at other stages need n - 1 >= t to be worth running.
    if (s.stage != SecAggLeave::kAfterMaskedInput && n - s.dropped < threshold) continue;
    std::vector<SecAggSimSite> run = sites;
    // The last `dropped` sites leave, so that the largest (first) stay in.
    for (std::size_t i = n - s.dropped; i < n; ++i) {
      run[i].leave = s.stage;
      if (s.stage == SecAggLeave::kBeforeMaskedInput || s.stage == SecAggLeave::kBeforeKeys) {
        for (float x : run[i].update) {
          s.excluded_max_abs =
              std::max(s.excluded_max_abs, std::abs(run[i].weight * static_cast<double>(x)));
        }
      }
    }
    FEDRX_ASSIGN_OR_RETURN(SecAggSimReport r, SimulateSecAggRound(run, threshold));
    out << std::left << std::setw(40) << "  " + s.label << std::right << std::setw(10)
        << (r.completed ? "completed" : "failed");
    if (r.completed) {
      out << std::setw(11) << std::to_string(r.survivors.size()) + "/" + std::to_string(n)
          << std::setprecision(3) << std::setw(14) << r.max_abs_error << std::setw(12)
          << r.error_bound << std::setw(10) << (r.within_bound ? "yes" : "NO") << std::setw(12)
          << r.unmask_seconds << "\n";
    } else {
      out << "  (" << r.failure.message() << ")\n";
    }
    s.report = std::move(r);
  }
  const SecAggSimReport& main = *scenarios[0].report;
  if (!main.completed) {
    return core::Internal("the simulated round with " + std::to_string(dropouts) +
                          " dropouts did not complete: " + main.failure.ToString());
  }
  std::uint64_t bytes_max = 0;
  for (std::uint64_t b : main.bytes_sent) bytes_max = std::max(bytes_max, b);
  out << std::setprecision(4) << "  fixed point: " << main.scale_bits << " fractional bits, clip +-"
      << main.clip << "; each site rounds by at most " << main.rounding_per_site
      << " per coordinate; a site sends at most " << bytes_max << " bytes (a plain update "
      << main.plain_update_bytes << ")\n";

  // 3. The JSON.
  std::ofstream json(json_path, std::ios::trunc);
  json << "{\"simulated_dropout\": {\"simulated\": true, \"sites\": " << n
       << ", \"threshold\": " << threshold << ", \"parameters\": " << parameters
       << ", \"dropped_after_masked_input\": " << dropouts
       << ", \"completed\": " << (main.completed ? "true" : "false")
       << ", \"survivors\": " << main.survivors.size()
       << ", \"unmasking_responders\": " << main.responders
       << ", \"max_abs_error\": " << JsonNumber(main.max_abs_error)
       << ", \"error_bound\": " << JsonNumber(main.error_bound)
       << ", \"within_bound\": " << (main.within_bound ? "true" : "false")
       << ",\n    \"scale_bits\": " << main.scale_bits << ", \"clip\": " << JsonNumber(main.clip)
       << ", \"rounding_per_site\": " << JsonNumber(main.rounding_per_site) << ", \"bound\": "
       << JsonString(
              "|survivors| x 2^-(scale_bits+1) per coordinate, plus float32 rounding of "
              "the dequantised sum (|sum| x 2^-24)")
       << ", \"updates\": "
       << JsonString(
              "one local round of the study's training from its initial model on each "
              "site's scaffold share; weight = rows / largest site's rows")
       << ", \"partition_seed\": " << seed << ", \"train_rows\": " << train.size()
       << ",\n    \"scenarios\": {";
  bool first = true;
  for (const Scenario& s : scenarios) {
    if (!s.report) continue;
    json << (first ? "" : ",") << "\n      \"" << s.key
         << "\": " << ScenarioJson(s, main.plain_update_bytes);
    first = false;
  }
  json << "}}";
  if (models) {
    const std::size_t platform_sites =
        spec.sites.empty() ? std::max<std::size_t>(spec.min_sites, 2) : spec.sites.size();
    const privacy::FixedPointEncoding enc = coordinator::SecAggEncoding(platform_sites);
    const double plain_auc = ml::MeanRocAuc(models->plain);
    const double secure_auc = ml::MeanRocAuc(models->secure);
    json << ",\n  \"platform\": {\"study\": " << JsonString(spec.study_id)
         << ", \"secure_aggregation\": " << (spec.secure_aggregation ? "true" : "false")
         << ", \"sites\": " << platform_sites
         << ", \"secagg_threshold\": " << coordinator::SecAggThreshold(spec)
         << ", \"rounds\": " << spec.rounds << ", \"parameters\": " << parameters
         << ", \"max_abs_diff_vs_plain\": " << JsonNumber(models->max_abs_diff)
         << ", \"mean_abs_diff_vs_plain\": " << JsonNumber(models->mean_abs_diff)
         << ", \"plain_mean_roc_auc\": " << JsonNumber(plain_auc)
         << ", \"secure_mean_roc_auc\": " << JsonNumber(secure_auc)
         << ", \"mean_roc_auc_difference\": " << JsonNumber(secure_auc - plain_auc);
    if (models->first_round) {
      json << ",\n    \"first_round\": {\"max_abs_diff_vs_plain\": "
           << JsonNumber(models->first_max_abs_diff)
           << ", \"bound\": " << JsonNumber(models->first_bound) << ", \"within_bound\": "
           << (models->first_max_abs_diff <= models->first_bound ? "true" : "false") << "}";
    }
    json << ",\n    \"scale_bits\": " << enc.scale_bits
         << ", \"rounding_per_site\": " << JsonNumber(enc.MaxErrorPerSite())
         << ", \"round_mean_bound\": " << JsonNumber(RoundMeanBound(platform_sites))
         << ", \"quantisation\": "
         << JsonString(
                "each site masks weight x (trained - global), weight = samples / largest "
                "site's samples, clipped to +-" +
                JsonNumber(enc.clip) + " per coordinate and rounded to " +
                std::to_string(enc.scale_bits) + " fractional bits: at most e = 2^-" +
                std::to_string(enc.scale_bits + 1) + " = " + JsonNumber(enc.MaxErrorPerSite()) +
                " per site per coordinate, the weight likewise; so a round's mean delta is off "
                "by at most n e (1 + |mean|) / (sum of weights - n e) <= 2 n e / (1 - n e) = " +
                JsonNumber(RoundMeanBound(platform_sites)) +
                " for n = " + std::to_string(platform_sites) +
                " (plus float32 rounding, which plain FedAvg has too). Later rounds train from "
                "the slightly different global model, so the final difference is what training "
                "makes of these per-round perturbations: measured, not bounded")
         << ",\n    \"plain\": ";
    WriteMetricsJson(json, models->plain);
    json << "}, \"secure\": ";
    WriteMetricsJson(json, models->secure);
    json << "}}";
  }
  json << "}\n";
  if (!json) return core::Unavailable("cannot write the secure-aggregation results", json_path);
  out << "secure-aggregation results written to " << json_path << "\n";
  return core::Status::Ok();
}

}  // namespace fedrx::lab
