// `clinical-evaluate`: the phase-success adjustment (services/clinical/
// adjust.h) scored on the held-out ClinTox compounds, with the federated
// model and the platform's calibration read from the registry as stored.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>

#include "services/clinical/adjust.h"
#include "services/clinical/base_rates.h"
#include "services/clinical/evaluate.h"
#include "services/coordinator/study_store.h"
#include "services/core/redis_state_store.h"
#include "services/lab/lab_common.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"

namespace fedrx::lab {
namespace {

constexpr char kCtTox[] = "CT_TOX";
constexpr char kApproved[] = "FDA_APPROVED";

std::size_t TaskIndex(const std::vector<std::string>& tasks, const std::string& name) {
  return static_cast<std::size_t>(std::find(tasks.begin(), tasks.end(), name) - tasks.begin());
}

// "host:port" of the platform's Redis.
core::Result<core::RedisOptions> RedisAddress(const std::string& address) {
  const auto colon = address.rfind(':');
  core::RedisOptions o;
  if (colon == std::string::npos || colon == 0) {
    return core::InvalidArgument("expected host:port, got '" + address + "'", "--redis");
  }
  o.host = address.substr(0, colon);
  char* end = nullptr;
  const long port = std::strtol(address.c_str() + colon + 1, &end, 10);
  if (end == address.c_str() + colon + 1 || *end != '\0' || port < 1 || port > 65535) {
    return core::InvalidArgument("expected host:port, got '" + address + "'", "--redis");
  }
  o.port = static_cast<int>(port);
  return o;
}

void WriteScoresJson(std::ostream& json, const clinical::ProbabilityScores& s) {
  json << "{\"brier\": " << JsonNumber(s.brier) << ", \"log_loss\": " << JsonNumber(s.log_loss)
       << ", \"roc_auc\": " << JsonNumber(s.roc_auc)
       << ", \"calibration_error\": " << JsonNumber(s.calibration_error) << "}";
}

}  // namespace

core::Status ClinicalEvaluateCommand(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string study_path, Need(f, "study"));
  FEDRX_ASSIGN_OR_RETURN(std::string test_path, Need(f, "test"));
  FEDRX_ASSIGN_OR_RETURN(std::string redis_address, Need(f, "redis"));
  FEDRX_ASSIGN_OR_RETURN(std::string json_path, Need(f, "json"));
  const std::string area = f.count("area") != 0 ? f.at("area") : "all_indications";
  FEDRX_ASSIGN_OR_RETURN(std::uint64_t lr_bins, CountFlag(f, "lr-bins", 5, 2, 1000));
  FEDRX_ASSIGN_OR_RETURN(codec::StudySpec spec, LoadStudy(study_path));
  const std::size_t ct_tox = TaskIndex(spec.tasks, kCtTox);
  const std::size_t approved_task = TaskIndex(spec.tasks, kApproved);
  if (ct_tox == spec.tasks.size() || approved_task == spec.tasks.size()) {
    return core::InvalidArgument("the study must have the tasks CT_TOX and FDA_APPROVED",
                                 study_path);
  }
  FEDRX_ASSIGN_OR_RETURN(clinical::BaseRates base, clinical::LookupBaseRates(area, "--area"));

  // The federated model and its calibration, as the platform stored them.
  FEDRX_ASSIGN_OR_RETURN(core::RedisOptions redis_options, RedisAddress(redis_address));
  FEDRX_ASSIGN_OR_RETURN(std::unique_ptr<core::RedisStateStore> redis,
                         core::RedisStateStore::Connect(redis_options, nullptr));
  coordinator::StudyStore store(*redis);
  FEDRX_ASSIGN_OR_RETURN(coordinator::StudyRecord record, store.Load(spec.study_id));
  std::uint32_t version = record.model_version;
  if (f.count("version") != 0) {
    FEDRX_ASSIGN_OR_RETURN(std::uint64_t v, CountFlag(f, "version", 0, 0, record.model_version));
    version = static_cast<std::uint32_t>(v);
  }
  // Version 0 is the coordinator's initial model: only when asked for.
  if (version == 0 && f.count("version") == 0) {
    return core::FailedPrecondition("study '" + spec.study_id + "' has no trained model yet",
                                    "--redis");
  }
  const ml::NetSpec net = ml::NetSpecFromStudy(record.spec);
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> weights, store.LoadModel(spec.study_id, version));
  if (weights.size() != ml::ParameterCount(net)) {
    return core::Status(core::StatusCode::kDataLoss,
                        "stored model has the wrong size for its study", spec.study_id);
  }
  FEDRX_ASSIGN_OR_RETURN(std::optional<coordinator::VersionCalibration> calibration,
                         store.LoadCalibration(spec.study_id, version));
  if (!calibration.has_value()) {
    return core::FailedPrecondition("no calibration stored for version " + std::to_string(version) +
                                        " of '" + spec.study_id + "'",
                                    "--redis");
  }
  const std::size_t cal_task = TaskIndex(calibration->tasks, kCtTox);
  if (cal_task >= calibration->histograms.size()) {
    return core::Status(core::StatusCode::kDataLoss, "the calibration holds no CT_TOX histogram",
                        spec.study_id);
  }
  clinical::Working lr_working;
  clinical::HistogramLrOptions lr_options;
  lr_options.bins = static_cast<int>(lr_bins);
  FEDRX_ASSIGN_OR_RETURN(clinical::LikelihoodRatioModel lr,
                         clinical::EstimateLikelihoodRatioFromHistogram(
                             calibration->histograms[cal_task], lr_options, &lr_working));

  // The held-out compounds: predicted risk, and whether they were approved.
  FEDRX_ASSIGN_OR_RETURN(
      ml::Dataset raw,
      Load(test_path, static_cast<int>(record.spec.fingerprint_radius), net.input_dim, out));
  const ml::Dataset test =
      (raw.split.empty() ? raw : raw.WithSplit("test")).WithTasks(record.spec.tasks);
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> probs, ml::Predict(net, weights, test.x, 2));
  std::vector<clinical::RiskLabel> pairs;
  std::vector<double> base_loa, adjusted_loa;
  std::vector<bool> approved;
  for (std::size_t r = 0; r < test.size(); ++r) {
    const std::int8_t y = test.label(r, approved_task);
    if (y == ml::kMissing) continue;
    const double risk = probs[r * test.num_tasks() + ct_tox];
    FEDRX_ASSIGN_OR_RETURN(clinical::AdjustedRates a, clinical::AdjustForRisk(base, lr, risk));
    pairs.push_back({risk, y == 1});
    base_loa.push_back(a.base_loa);
    adjusted_loa.push_back(a.adjusted_loa);
    approved.push_back(y == 1);
  }
  FEDRX_ASSIGN_OR_RETURN(clinical::ProbabilityScores base_scores,
                         clinical::ScoreProbabilities(base_loa, approved));
  FEDRX_ASSIGN_OR_RETURN(clinical::ProbabilityScores adjusted_scores,
                         clinical::ScoreProbabilities(adjusted_loa, approved));
  // The same update on the sample's scale: ClinTox is mostly approved drugs,
  // so an LOA from Phase I (about 8%) is far from its base rate whatever the
  // risk; starting from the calibration's own approved share separates the
  // adjustment's discrimination from that shift of scale.
  const double calibration_prior =
      static_cast<double>(lr.n_approved) / static_cast<double>(lr.n_approved + lr.n_failed);
  FEDRX_ASSIGN_OR_RETURN(clinical::AdjustmentEvaluation sample,
                         clinical::EvaluateAdjustment(pairs, lr, calibration_prior));
  std::size_t n_approved = 0;
  for (bool a : approved) n_approved += a ? 1 : 0;
  // How well the risk ranks failed above approved compounds, on the
  // calibration rows (from the histogram) and on the test rows: below 0.5 the
  // score ranks the wrong way, and the monotone LR pools towards 1.
  const double calibration_auc = ml::RocAucFromHistogram(calibration->histograms[cal_task]);
  std::vector<double> risks;
  std::vector<bool> failed;
  for (const clinical::RiskLabel& p : pairs) {
    risks.push_back(p.risk);
    failed.push_back(!p.approved);
  }
  const auto test_auc = clinical::ScoreProbabilities(risks, failed);
  const double test_risk_auc = test_auc.ok() ? test_auc->roc_auc : std::nan("");

  out << "\nphase-success adjustment on " << pairs.size() << " held-out ClinTox compounds ("
      << n_approved << " approved), " << spec.study_id << " version " << version
      << ", LR from the CT_TOX calibration histogram of " << lr.n_approved + lr.n_failed
      << " validation compounds (" << lr.n_failed << " failed), area " << base.area << "\n";
  out << std::left << std::setw(34) << "predictor of approval" << std::right << std::setw(9)
      << "Brier" << std::setw(10) << "log loss" << std::setw(9) << "ROC-AUC"
      << "\n";
  const auto row = [&](const std::string& name, const clinical::ProbabilityScores& s) {
    out << std::left << std::setw(34) << name << std::right << std::fixed << std::setprecision(4)
        << std::setw(9) << s.brier << std::setw(10) << s.log_loss << std::setw(9) << s.roc_auc
        << "\n";
  };
  row("base LOA from Phase I", base_scores);
  row("adjusted LOA from Phase I", adjusted_scores);
  row("base, sample scale", sample.base);
  row("adjusted, sample scale", sample.adjusted);
  out << "CT_TOX risk ROC-AUC (failed vs approved): calibration rows " << std::setprecision(4)
      << calibration_auc << ", test rows " << test_risk_auc << std::defaultfloat << "\n";

  std::ofstream json(json_path, std::ios::trunc);
  json << "{\"study\": \"" << spec.study_id << "\", \"model_version\": " << version
       << ", \"therapeutic_area\": \"" << base.area << "\", \"test_compounds\": " << pairs.size()
       << ", \"test_approved\": " << n_approved
       << ",\n  \"likelihood_ratio\": {\"source\": \"CT_TOX score histogram of the sites' "
          "validation folds (platform calibration)\", \"calibration_approved\": "
       << lr.n_approved << ", \"calibration_failed\": " << lr.n_failed
       << ", \"calibration_risk_roc_auc\": " << JsonNumber(calibration_auc)
       << ", \"test_risk_roc_auc\": " << JsonNumber(test_risk_auc) << ", \"bin_upper\": [";
  for (std::size_t j = 0; j < lr.bin_upper.size(); ++j) {
    json << (j ? ", " : "") << JsonNumber(lr.bin_upper[j]);
  }
  json << "], \"log_lr\": [";
  for (std::size_t j = 0; j < lr.bin_log_lr.size(); ++j) {
    json << (j ? ", " : "") << JsonNumber(lr.bin_log_lr[j]);
  }
  json << "]},\n  \"loa\": {\"base_probability\": "
       << JsonNumber(base_loa.empty() ? 0 : base_loa[0]) << ", \"base\": ";
  WriteScoresJson(json, base_scores);
  json << ", \"adjusted\": ";
  WriteScoresJson(json, adjusted_scores);
  json << "},\n  \"sample_scale\": {\"base_probability\": " << JsonNumber(calibration_prior)
       << ", \"base\": ";
  WriteScoresJson(json, sample.base);
  json << ", \"adjusted\": ";
  WriteScoresJson(json, sample.adjusted);
  json << ", \"brier_skill\": " << JsonNumber(sample.brier_skill) << "}\n}\n";
  if (!json) return core::Unavailable("cannot write the evaluation", json_path);
  out << "clinical evaluation written to " << json_path << "\n";
  return core::Status::Ok();
}

}  // namespace fedrx::lab
