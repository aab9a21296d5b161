#include "services/ml/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace fedrx::ml {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Both metrics work on tie groups in ascending score order: group g holds
// pos[g] positives and neg[g] negatives sharing one score (or one bin).
double RocFromGroups(std::span<const std::uint64_t> pos, std::span<const std::uint64_t> neg) {
  if (pos.size() != neg.size()) return kNaN;
  double p_total = 0, n_total = 0, area = 0;
  for (std::size_t g = 0; g < pos.size(); ++g) {
    const double p = static_cast<double>(pos[g]);
    const double n = static_cast<double>(neg[g]);
    // Each positive beats every negative below it and ties half of its group.
    area += p * (n_total + 0.5 * n);
    p_total += p;
    n_total += n;
  }
  if (p_total == 0 || n_total == 0) return kNaN;
  return area / (p_total * n_total);
}

double ApFromGroups(std::span<const std::uint64_t> pos, std::span<const std::uint64_t> neg) {
  if (pos.size() != neg.size()) return kNaN;
  double p_total = 0;
  for (std::uint64_t p : pos) p_total += static_cast<double>(p);
  if (p_total == 0) return kNaN;
  double tp = 0, fp = 0, ap = 0;
  for (std::size_t g = pos.size(); g-- > 0;) {
    tp += static_cast<double>(pos[g]);
    fp += static_cast<double>(neg[g]);
    if (pos[g] != 0) ap += (static_cast<double>(pos[g]) / p_total) * (tp / (tp + fp));
  }
  return ap;
}

struct Groups {
  std::vector<std::uint64_t> pos, neg;
  bool has_nan = false;
};

// Tie groups of the labelled scores, ascending.
Groups GroupScores(std::span<const float> scores, std::span<const std::int8_t> labels) {
  Groups out;
  std::vector<std::pair<float, bool>> v;
  v.reserve(scores.size());
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1) continue;
    if (std::isnan(scores[i])) {
      out.has_nan = true;
      return out;
    }
    v.emplace_back(scores[i], labels[i] == 1);
  }
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    std::uint64_t p = 0, n = 0;
    for (; j < v.size() && v[j].first == v[i].first; ++j) (v[j].second ? p : n) += 1;
    out.pos.push_back(p);
    out.neg.push_back(n);
    i = j;
  }
  return out;
}

}  // namespace

double RocAuc(std::span<const float> scores, std::span<const std::int8_t> labels) {
  if (scores.size() != labels.size()) return kNaN;
  const Groups g = GroupScores(scores, labels);
  return g.has_nan ? kNaN : RocFromGroups(g.pos, g.neg);
}

double PrAuc(std::span<const float> scores, std::span<const std::int8_t> labels) {
  if (scores.size() != labels.size()) return kNaN;
  const Groups g = GroupScores(scores, labels);
  return g.has_nan ? kNaN : ApFromGroups(g.pos, g.neg);
}

core::Result<std::vector<TaskMetrics>> Evaluate(const Dataset& data,
                                                std::span<const float> probs) {
  const std::size_t n = data.size();
  const std::size_t tasks = data.num_tasks();
  if (probs.size() != n * tasks || data.y.size() != n * tasks) {
    return core::InvalidArgument("expected " + std::to_string(n * tasks) +
                                     " probabilities and labels (rows x tasks), got " +
                                     std::to_string(probs.size()) + " and " +
                                     std::to_string(data.y.size()),
                                 "Evaluate");
  }
  std::vector<TaskMetrics> out;
  out.reserve(tasks);
  std::vector<float> s(n);
  std::vector<std::int8_t> y(n);
  for (std::size_t t = 0; t < tasks; ++t) {
    TaskMetrics m;
    m.task = data.tasks[t];
    for (std::size_t i = 0; i < n; ++i) {
      s[i] = probs[i * tasks + t];
      y[i] = data.y[i * tasks + t];
      m.positives += y[i] == 1;
      m.negatives += y[i] == 0;
    }
    m.roc_auc = RocAuc(s, y);
    m.pr_auc = PrAuc(s, y);
    out.push_back(std::move(m));
  }
  return out;
}

double MeanRocAuc(std::span<const TaskMetrics> metrics) {
  double sum = 0;
  std::size_t count = 0;
  for (const TaskMetrics& m : metrics) {
    if (std::isnan(m.roc_auc)) continue;
    sum += m.roc_auc;
    ++count;
  }
  return count == 0 ? kNaN : sum / static_cast<double>(count);
}

core::Result<std::vector<ScoreHistogram>> Histograms(const Dataset& data,
                                                     std::span<const float> probs,
                                                     std::size_t bins) {
  const std::size_t n = data.size();
  const std::size_t tasks = data.num_tasks();
  if (bins == 0 || bins > kMaxHistogramBins) {
    return core::InvalidArgument("bins must be in [1, " + std::to_string(kMaxHistogramBins) + "]",
                                 "Histograms.bins");
  }
  if (probs.size() != n * tasks || data.y.size() != n * tasks) {
    return core::InvalidArgument("expected " + std::to_string(n * tasks) +
                                     " probabilities and labels (rows x tasks), got " +
                                     std::to_string(probs.size()) + " and " +
                                     std::to_string(data.y.size()),
                                 "Histograms");
  }
  std::vector<ScoreHistogram> out(tasks);
  for (ScoreHistogram& h : out) {
    h.pos.assign(bins, 0);
    h.neg.assign(bins, 0);
  }
  const double scale = static_cast<double>(bins);
  for (std::size_t i = 0; i < n * tasks; ++i) {
    const std::int8_t y = data.y[i];
    if (y != 0 && y != 1) continue;
    const float p = probs[i];
    if (std::isnan(p)) {
      return core::InvalidArgument("probability is NaN",
                                   "row " + std::to_string(i / tasks) + " task " +
                                       std::to_string(i % tasks));
    }
    const double x = std::clamp(static_cast<double>(p) * scale, 0.0, scale - 1.0);
    const std::size_t b = static_cast<std::size_t>(x);
    ScoreHistogram& h = out[i % tasks];
    (y == 1 ? h.pos : h.neg)[b] += 1;
  }
  return out;
}

core::Status Merge(ScoreHistogram& into, const ScoreHistogram& from) {
  if (from.pos.size() != from.neg.size()) {
    return core::InvalidArgument("histogram has " + std::to_string(from.pos.size()) +
                                     " positive and " + std::to_string(from.neg.size()) +
                                     " negative bins",
                                 "ScoreHistogram");
  }
  if (into.pos.empty() && into.neg.empty()) {
    into = from;
    return core::Status::Ok();
  }
  if (into.pos.size() != from.pos.size() || into.neg.size() != from.neg.size()) {
    return core::InvalidArgument("bin counts differ: " + std::to_string(into.pos.size()) +
                                     " vs " + std::to_string(from.pos.size()),
                                 "ScoreHistogram");
  }
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t b = 0; b < from.pos.size(); ++b) {
    if (into.pos[b] > kMax - from.pos[b] || into.neg[b] > kMax - from.neg[b]) {
      return core::InvalidArgument("count overflows", "ScoreHistogram bin " + std::to_string(b));
    }
  }
  for (std::size_t b = 0; b < from.pos.size(); ++b) {
    into.pos[b] += from.pos[b];
    into.neg[b] += from.neg[b];
  }
  return core::Status::Ok();
}

core::Status Merge(std::vector<ScoreHistogram>& into, const std::vector<ScoreHistogram>& from) {
  if (into.empty()) {
    for (std::size_t t = 0; t < from.size(); ++t) {
      if (from[t].pos.size() != from[t].neg.size()) {
        return core::InvalidArgument("positive and negative bin counts differ",
                                     "ScoreHistogram task " + std::to_string(t));
      }
    }
    into = from;
    return core::Status::Ok();
  }
  if (into.size() != from.size()) {
    return core::InvalidArgument("task counts differ: " + std::to_string(into.size()) + " vs " +
                                     std::to_string(from.size()),
                                 "ScoreHistogram");
  }
  // Merge into a copy so a failure on a later task leaves `into` unchanged.
  std::vector<ScoreHistogram> merged = into;
  for (std::size_t t = 0; t < from.size(); ++t) {
    FEDRX_RETURN_IF_ERROR(
        Merge(merged[t], from[t]).WithContext("task " + std::to_string(t)));
  }
  into = std::move(merged);
  return core::Status::Ok();
}

double RocAucFromHistogram(const ScoreHistogram& h) { return RocFromGroups(h.pos, h.neg); }

double PrAucFromHistogram(const ScoreHistogram& h) { return ApFromGroups(h.pos, h.neg); }

}  // namespace fedrx::ml
