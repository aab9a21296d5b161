// Evaluating the risk adjustment on held-out compounds: the adjusted
// probability of approval against the unadjusted base probability, by Brier
// score, log loss, calibration in bins and ROC-AUC. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <vector>

#include "services/clinical/adjust.h"
#include "services/clinical/working.h"
#include "services/core/status.h"

namespace fedrx::clinical {

// One calibration bin of equal width on [0,1]: bin j covers [j/B, (j+1)/B)
// (the last includes 1). Only bins holding at least one compound are reported.
struct CalibrationBin {
  double lower = 0.0;
  double upper = 0.0;
  std::size_t count = 0;
  double mean_predicted = 0.0;
  double observed_rate = 0.0;  // fraction approved
};

struct ProbabilityScores {
  double brier = 0.0;     // mean (p - y)^2
  double log_loss = 0.0;  // mean -(y log p + (1-y) log(1-p)), p clamped to [1e-15, 1-1e-15]
  double roc_auc = 0.0;   // P(p_approved > p_failed) + 0.5 P(tie) (Mann-Whitney)
  // Expected calibration error: sum over bins of count/n * |mean_predicted - observed_rate|.
  double calibration_error = 0.0;
  std::vector<CalibrationBin> calibration;
};

// Scores probabilities `p` of approval against outcomes `approved`.
// InvalidArgument for empty or differently sized vectors (where
// "probabilities"), a probability NaN or outside [0,1]
// ("probabilities[i]"), one class only ("approved"), bins < 1 ("bins").
core::Result<ProbabilityScores> ScoreProbabilities(const std::vector<double>& p,
                                                   const std::vector<bool>& approved,
                                                   int bins = 10);

struct AdjustmentEvaluation {
  std::size_t n = 0;
  std::size_t n_approved = 0;
  double base_probability = 0.0;
  ProbabilityScores base;      // every compound given base_probability
  ProbabilityScores adjusted;  // sigmoid(logit(base_probability) + log LR(r_i))
  double brier_skill = 0.0;    // 1 - adjusted.brier / base.brier
  Working working;
};

// Scores the adjustment on held-out pairs (which must not be those `model` was
// estimated on). Each compound's adjusted probability of approval is the
// Bayes update of `base_probability` by its likelihood ratio:
//   p_i = sigmoid(logit(base_probability) + log LR(r_i)),
// which is the approval-level form of the per-transition adjustment (all of
// the log LR applied once). On ClinTox, whose approved share is far above any
// clinical LOA, pass the held-out prevalence (or the estimation set's) as
// base_probability so that both predictions are on the sample's scale;
// passing a published LOA measures the shift in scale, not discrimination.
// InvalidArgument as CheckPairs (where "pairs"), base_probability outside
// (0,1) ("base_probability"), bins < 1 ("bins").
core::Result<AdjustmentEvaluation> EvaluateAdjustment(const std::vector<RiskLabel>& pairs,
                                                      const LikelihoodRatioModel& model,
                                                      double base_probability, int bins = 10);

}  // namespace fedrx::clinical
