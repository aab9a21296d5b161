// Evaluation metrics for multi-task binary classification with missing
// labels: exact ROC AUC and average precision, and their federated form from
// per-site score histograms (sites send counts only, never scores or labels).
// Pure functions; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/ml/dataset.h"

namespace fedrx::ml {

// Area under the ROC curve of `scores` (higher = more likely positive) against
// `labels` (1 positive, 0 negative; kMissing and any other value skipped).
// Ties count one half (trapezoid rule, i.e. average ranks). NaN when there
// is no positive or no negative, or when a labelled score is NaN. The spans
// must have equal sizes (otherwise NaN).
double RocAuc(std::span<const float> scores, std::span<const std::int8_t> labels);

// Average precision as scikit-learn's average_precision_score: sum over
// distinct score thresholds (descending) of (recall_k - recall_{k-1}) *
// precision_k, tied scores forming one threshold. NaN without positives or
// with a NaN score; 1 when every labelled entry is positive.
double PrAuc(std::span<const float> scores, std::span<const std::int8_t> labels);

struct TaskMetrics {
  std::string task;
  double roc_auc = 0;  // NaN when undefined (see RocAuc)
  double pr_auc = 0;   // NaN when undefined (see PrAuc)
  std::size_t positives = 0;
  std::size_t negatives = 0;
};

// Per task of `data`, the metrics of `probs` (row-major size() x num_tasks(),
// as Predict returns). InvalidArgument when probs has the wrong size.
core::Result<std::vector<TaskMetrics>> Evaluate(const Dataset& data,
                                                std::span<const float> probs);

// Mean ROC AUC over the tasks where it is defined; NaN when none is.
double MeanRocAuc(std::span<const TaskMetrics> metrics);

// Counts of labelled scores in B equal bins over [0, 1], per class. Bin b
// holds scores in [b/B, (b+1)/B); 1.0 and above go to the last bin, below 0 to
// the first. Only counts leave a site.
struct ScoreHistogram {
  std::vector<std::uint64_t> pos, neg;
};

inline constexpr std::size_t kDefaultHistogramBins = 1000;
inline constexpr std::size_t kMaxHistogramBins = std::size_t{1} << 20;

// One histogram per task of `data` for `probs` (row-major size() x
// num_tasks()). InvalidArgument when probs has the wrong size, holds a NaN,
// or bins is 0 or above kMaxHistogramBins.
core::Result<std::vector<ScoreHistogram>> Histograms(const Dataset& data,
                                                     std::span<const float> probs,
                                                     std::size_t bins = kDefaultHistogramBins);

// Adds `from` into `into`. An empty `into` (no bins) takes `from`'s shape.
// InvalidArgument when the bin counts differ or a count would overflow;
// `into` is then unchanged.
core::Status Merge(ScoreHistogram& into, const ScoreHistogram& from);
// Per task; an empty `into` takes `from`'s shape. InvalidArgument when the
// task counts or any task's bins differ; `into` is then unchanged.
core::Status Merge(std::vector<ScoreHistogram>& into, const std::vector<ScoreHistogram>& from);

// ROC AUC and average precision from a histogram, each bin one tie group.
// NaN when undefined (as RocAuc / PrAuc) or when pos and neg differ in size.
double RocAucFromHistogram(const ScoreHistogram& h);
double PrAucFromHistogram(const ScoreHistogram& h);

}  // namespace fedrx::ml
