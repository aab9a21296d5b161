// Adjusting published phase-transition success rates by a candidate's
// predicted clinical-toxicity risk (the calibrated ClinTox CT_TOX probability
// from the federated model). Pure functions on values; thread-safe.
//
// Method (a Bayes-odds adjustment):
//  1. Likelihood ratio. On held-out ClinTox compounds with a predicted risk r
//     and the label approved (FDA_APPROVED = 1) or failed (approved = 0; in
//     ClinTox these are the compounds that failed clinical trials for
//     toxicity, CT_TOX = 1), LR(r) = P(r | approved) / P(r | failed). By Bayes,
//     LR(r) = odds(approved | r) / odds(approved), the second odds being the
//     sample's n_approved / n_failed, so LR is estimated as:
//       kLogistic: P(approved | r) = 1 / (1 + exp(-(a + b * logit r))), fitted
//         by maximum likelihood (Newton-Raphson); log LR(r) = a + b logit r -
//         log(n_approved / n_failed). Monotone in r by construction.
//       kBinned: r cut at sample quantiles into k bins; per bin
//         LR_j = ((A_j + 0.5) / (n_approved + 0.5k)) / ((F_j + 0.5) / (n_failed + 0.5k))
//         (A_j, F_j approved and failed counts in bin j); then made monotone
//         non-increasing in r by pool-adjacent-violators: adjacent bins in
//         the wrong order are pooled and the pooled block's LR computed from
//         its summed counts (0.5 added per bin it spans), so pooling every
//         bin gives LR = 1. A step function.
//     r is clamped to [1e-6, 1 - 1e-6] before logit.
//     From the platform's aggregated calibration histogram (no compound
//       leaves a site): the federated evaluation's CT_TOX score histogram of
//       the sites' validation folds, class 0 read as approved and class 1 as
//       failed. In ClinTox the two labels are almost exact complements
//       (FDA_APPROVED = 1 - CT_TOX for all but a few dozen of 1,484
//       compounds: drugs approved despite a toxicity failure, or failed ones
//       never approved), so the CT_TOX histogram is the approved/failed one.
//       The histogram's B fine bins are grouped into k groups of consecutive
//       bins holding about n/k compounds each (cut where the pooled
//       cumulative count first reaches j n / k), then per group the smoothed
//       LR and pool-adjacent-violators as kBinned. Exact up to the
//       histogram's bin width (1/B).
//  2. Which transitions. Toxicity ends programmes in Phase I, II and III; the
//     share of failures due to safety is about one third in Phase I, 17% in
//     Phase II and one third in Phase III (Tufts CSDD, 410 drugs entering
//     human testing 2000-2009; Applied Clinical Trials 22(12), Dec 2013,
//     "Reasons for Clinical Failures by Phase"). The filing->approval step is
//     left at its base rate (share 0 by default).
//  3. Splitting the evidence. The candidate's risk is one observation, so its
//     log LR is applied once in total, split over the transitions by each
//     transition's expected safety failures: w_k = (1 - p_k) s_k / sum_j (1 - p_j) s_j
//     (p_k base rate, s_k safety share). Adjusted:
//       logit p'_k = logit p_k + w_k * log LR(r)
//     The other transitions keep p_k. LR = 1 gives back the base rates; a
//     monotone LR gives monotone adjusted rates; each p'_k is kept in
//     [1e-9, 1 - 1e-9].
//  4. LOA from Phase I = product of the four (adjusted) transitions.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "services/clinical/base_rates.h"
#include "services/clinical/working.h"
#include "services/core/status.h"
#include "services/ml/metrics.h"

namespace fedrx::clinical {

// One held-out compound: predicted clinical-toxicity risk in [0,1] and whether
// it was approved (true) or failed for toxicity (false).
struct RiskLabel {
  double risk = 0.0;
  bool approved = false;
};

enum class LrMethod { kLogistic, kBinned };

struct LrOptions {
  LrMethod method = LrMethod::kLogistic;
  int bins = 5;              // kBinned only; >= 2
  int max_iterations = 100;  // kLogistic Newton-Raphson
};

// An estimated likelihood ratio LR(r) = P(r | approved) / P(r | failed).
struct LikelihoodRatioModel {
  LrMethod method = LrMethod::kLogistic;
  std::size_t n_approved = 0;
  std::size_t n_failed = 0;
  // kLogistic: P(approved | r) = sigmoid(intercept + slope * logit(r)).
  double intercept = 0.0;
  double slope = 0.0;
  // kBinned: bin j covers (upper[j-1], upper[j]] (the first from 0, the last
  // to 1); log_lr[j] its monotone log LR.
  std::vector<double> bin_upper;
  std::vector<double> bin_log_lr;

  // log LR at risk r (r clamped to [1e-6, 1 - 1e-6]); r must be in [0,1].
  double LogLr(double risk) const;
  // The model of LR = 1 everywhere (no adjustment).
  static LikelihoodRatioModel Neutral();
};

// Estimates LR from held-out pairs. InvalidArgument (where
// "pairs[i].risk", "pairs", "options.bins") for an empty vector, a risk NaN or
// outside [0,1], one class only, bad options; FailedPrecondition when the
// logistic fit does not converge (e.g. perfectly separated data). Appends its
// steps to `working` when non-null.
core::Result<LikelihoodRatioModel> EstimateLikelihoodRatio(const std::vector<RiskLabel>& pairs,
                                                           const LrOptions& options = {},
                                                           Working* working = nullptr);

struct HistogramLrOptions {
  // Groups of consecutive histogram bins; >= 2 and at most the histogram's
  // bins. Fewer groups than asked when a group would be empty.
  int bins = 5;
};

// Estimates LR (method kBinned) from a clinical-toxicity score histogram:
// `h.neg` counts the approved (CT_TOX = 0) compounds per score bin, `h.pos`
// the failed (CT_TOX = 1) ones, bins of equal width over [0,1]. The risk is
// the CT_TOX score itself, so the result is non-increasing in risk.
// InvalidArgument (where "histogram", "histogram.neg", "histogram.pos",
// "options.bins") for no bins, pos and neg of different sizes, a class with
// no compounds, bins < 2 or above the histogram's. Appends its steps to
// `working` when non-null.
core::Result<LikelihoodRatioModel> EstimateLikelihoodRatioFromHistogram(
    const ml::ScoreHistogram& h, const HistogramLrOptions& options = {},
    Working* working = nullptr);

struct AdjustOptions {
  // Share of each transition's failures attributed to safety (see step 2).
  std::array<double, kTransitionCount> safety_failure_share = {1.0 / 3.0, 0.17, 1.0 / 3.0, 0.0};
};

struct AdjustedRates {
  std::string area;
  double risk = 0.0;
  double log_lr = 0.0;
  std::array<double, kTransitionCount> base{};
  std::array<double, kTransitionCount> weight{};
  std::array<double, kTransitionCount> adjusted{};
  double base_loa = 0.0;      // product of base transitions
  double adjusted_loa = 0.0;  // product of adjusted transitions
};

// Adjusts `base` by a given log LR (step 3-4). InvalidArgument when `base`
// lacks any transition (where "base.transition[k]"), a rate is outside (0,1),
// log_lr is not finite, or the shares are negative / all zero.
core::Result<AdjustedRates> AdjustByLogLr(const BaseRates& base, double log_lr,
                                          const AdjustOptions& options = {},
                                          Working* working = nullptr);

// Adjusts `base` by the candidate's risk through `model` (steps 1-4).
// InvalidArgument for a risk NaN or outside [0,1] (where "risk"), and as
// AdjustByLogLr.
core::Result<AdjustedRates> AdjustForRisk(const BaseRates& base, const LikelihoodRatioModel& model,
                                          double risk, const AdjustOptions& options = {},
                                          Working* working = nullptr);

// Helpers shared with the evaluation.
double Logit(double p);
double Sigmoid(double x);
// Checks risk is finite and in [0,1]; InvalidArgument at `where` otherwise.
core::Status CheckRisk(double risk, const std::string& where);
// Checks pairs are non-empty, risks valid, and both classes present.
core::Status CheckPairs(const std::vector<RiskLabel>& pairs, const std::string& where);

}  // namespace fedrx::clinical
