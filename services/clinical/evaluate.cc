#include "services/clinical/evaluate.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

namespace fedrx::clinical {
namespace {

// Mann-Whitney AUC with ties at half weight, by sorting once.
double RocAuc(const std::vector<double>& p, const std::vector<bool>& y) {
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  double rank_sum = 0.0;  // sum of mid-ranks of the approved
  std::size_t n1 = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && p[order[j]] == p[order[i]]) ++j;
    const double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (std::size_t t = i; t < j; ++t) {
      if (y[order[t]]) {
        rank_sum += mid_rank;
        ++n1;
      }
    }
    i = j;
  }
  const double n0 = static_cast<double>(p.size() - n1);
  const double u = rank_sum - static_cast<double>(n1) * (static_cast<double>(n1) + 1.0) / 2.0;
  return u / (static_cast<double>(n1) * n0);
}

}  // namespace

core::Result<ProbabilityScores> ScoreProbabilities(const std::vector<double>& p,
                                                   const std::vector<bool>& approved, int bins) {
  if (p.empty()) return core::InvalidArgument("no probabilities given", "probabilities");
  if (p.size() != approved.size()) {
    return core::InvalidArgument("probabilities has " + std::to_string(p.size()) +
                                     " values but approved has " +
                                     std::to_string(approved.size()),
                                 "probabilities");
  }
  if (bins < 1) return core::InvalidArgument("bins must be >= 1", "bins");
  std::size_t n1 = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (!std::isfinite(p[i]) || p[i] < 0.0 || p[i] > 1.0) {
      return core::InvalidArgument("probability is NaN or outside [0,1]",
                                   "probabilities[" + std::to_string(i) + "]");
    }
    if (approved[i]) ++n1;
  }
  if (n1 == 0 || n1 == p.size()) {
    return core::InvalidArgument("outcomes are all of one class; AUC and calibration need both",
                                 "approved");
  }
  ProbabilityScores s;
  const double n = static_cast<double>(p.size());
  std::vector<double> sum_p(bins, 0.0), sum_y(bins, 0.0);
  std::vector<std::size_t> count(bins, 0);
  for (std::size_t i = 0; i < p.size(); ++i) {
    const double y = approved[i] ? 1.0 : 0.0;
    s.brier += (p[i] - y) * (p[i] - y);
    const double q = std::clamp(p[i], 1e-15, 1.0 - 1e-15);
    s.log_loss += -(y * std::log(q) + (1.0 - y) * std::log(1.0 - q));
    const int j = std::min(bins - 1, static_cast<int>(p[i] * bins));
    sum_p[j] += p[i];
    sum_y[j] += y;
    ++count[j];
  }
  s.brier /= n;
  s.log_loss /= n;
  for (int j = 0; j < bins; ++j) {
    if (count[j] == 0) continue;
    CalibrationBin b;
    b.lower = static_cast<double>(j) / bins;
    b.upper = static_cast<double>(j + 1) / bins;
    b.count = count[j];
    b.mean_predicted = sum_p[j] / count[j];
    b.observed_rate = sum_y[j] / count[j];
    s.calibration_error += count[j] / n * std::abs(b.mean_predicted - b.observed_rate);
    s.calibration.push_back(b);
  }
  s.roc_auc = RocAuc(p, approved);
  return s;
}

core::Result<AdjustmentEvaluation> EvaluateAdjustment(const std::vector<RiskLabel>& pairs,
                                                      const LikelihoodRatioModel& model,
                                                      double base_probability, int bins) {
  FEDRX_RETURN_IF_ERROR(CheckPairs(pairs, "pairs"));
  if (!std::isfinite(base_probability) || base_probability <= 0.0 || base_probability >= 1.0) {
    return core::InvalidArgument("base probability must be in (0,1)", "base_probability");
  }
  if (bins < 1) return core::InvalidArgument("bins must be >= 1", "bins");
  AdjustmentEvaluation ev;
  ev.n = pairs.size();
  ev.base_probability = base_probability;
  std::vector<double> base_p, adj_p;
  std::vector<bool> y;
  const double z0 = Logit(base_probability);
  for (const RiskLabel& r : pairs) {
    base_p.push_back(base_probability);
    adj_p.push_back(Sigmoid(z0 + model.LogLr(r.risk)));
    y.push_back(r.approved);
    if (r.approved) ++ev.n_approved;
  }
  ev.working.push_back({"held-out compounds", "n, approved",
                        {{"n", double(ev.n)}, {"n_approved", double(ev.n_approved)},
                         {"base_probability", base_probability}}});
  FEDRX_ASSIGN_OR_RETURN(ev.base, ScoreProbabilities(base_p, y, bins));
  FEDRX_ASSIGN_OR_RETURN(ev.adjusted, ScoreProbabilities(adj_p, y, bins));
  ev.brier_skill = ev.base.brier > 0.0 ? 1.0 - ev.adjusted.brier / ev.base.brier : 0.0;
  ev.working.push_back({"unadjusted: every compound at the base probability",
                        "Brier = mean (p-y)^2; log loss = mean -[y ln p + (1-y) ln(1-p)]",
                        {{"brier", ev.base.brier},
                         {"log_loss", ev.base.log_loss},
                         {"roc_auc", ev.base.roc_auc},
                         {"calibration_error", ev.base.calibration_error}}});
  ev.working.push_back({"adjusted: p_i = sigmoid(logit p0 + log LR(r_i))",
                        "same scores on the adjusted probabilities",
                        {{"brier", ev.adjusted.brier},
                         {"log_loss", ev.adjusted.log_loss},
                         {"roc_auc", ev.adjusted.roc_auc},
                         {"calibration_error", ev.adjusted.calibration_error},
                         {"brier_skill", ev.brier_skill}}});
  return ev;
}

}  // namespace fedrx::clinical
