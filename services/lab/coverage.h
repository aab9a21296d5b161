// Conformal coverage of a test set: how often the prediction sets the tox
// service gives (serving/conformal.h, Mondrian, from the sites' aggregated
// calibration histograms) hold the true label, per class and per task.
// Pure function; thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/ml/dataset.h"
#include "services/ml/metrics.h"

namespace fedrx::lab {

// Labelled (row, task) pairs of one class, and how many of their prediction
// sets held the label ("both" holds either).
struct ClassCoverage {
  std::uint64_t rows = 0, covered = 0;
  double coverage() const {
    return rows == 0 ? std::nan("") : static_cast<double>(covered) / static_cast<double>(rows);
  }
};

struct CoverageLevel {
  double confidence = 0;
  std::vector<ClassCoverage> negative, positive;  // per task
  ClassCoverage all_negative, all_positive;       // over every task
  std::map<std::string, std::uint64_t> sets;      // "negative", "positive", "both", "empty"
};

// One CoverageLevel per confidence, from `probabilities` (row-major
// test.size() x test.num_tasks()) and one calibration histogram per task.
// kInvalidArgument for sizes that disagree, a bad histogram
// ("calibration.histograms[t]"), a confidence outside (0, 1) or a NaN
// probability.
core::Result<std::vector<CoverageLevel>> ConformalCoverage(
    const ml::Dataset& test, std::span<const float> probabilities,
    const std::vector<ml::ScoreHistogram>& histograms, const std::vector<double>& confidences);

}  // namespace fedrx::lab
