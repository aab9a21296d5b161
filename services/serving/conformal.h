// Conformal prediction from the calibration statistics the sites aggregate:
// Mondrian (class-conditional) inductive conformal p-values of a task's
// labels from its ml::ScoreHistogram, prediction sets, credibility and
// confidence, and the applicability-domain p-value from the histogram of
// calibration rows' domain scores. Only counts are used, never a score or a
// label of a site's row. Immutable after construction; thread-safe.
//
// Formulas (n_y calibration rows of class y; s a model probability):
//   nonconformity of label 1 is 1 - s, of label 0 is s, so
//   exact  p_1(s) = (#{positive rows with score <= s} + 1) / (n_1 + 1)
//          p_0(s) = (#{negative rows with score >= s} + 1) / (n_0 + 1).
//   The sites only report the bin of each score (ScoreBin: B equal bins over
//   [0, 1], bin b = [b/B, (b+1)/B), 1.0 in the last), so every calibration row
//   in the test score's own bin is counted as at least as nonconforming:
//          p_1(s) = (sum_{k <= bin(s)} pos[k] + 1) / (n_1 + 1)
//          p_0(s) = (sum_{k >= bin(s)} neg[k] + 1) / (n_0 + 1).
//   These are >= the exact p-values (conservative), and are themselves the
//   exact conformal p-values of the bin index as nonconformity score with
//   ties counted against the test row, so under exchangeability
//   P(p_y <= eps) <= eps for the true label y: the prediction set
//   {y : p_y > 1 - confidence} holds the true label with probability at least
//   `confidence`, separately within each class (Mondrian).
//   credibility = max(p_0, p_1); confidence = 1 - min(p_0, p_1).
//   Domain: a structure's ml::DomainScore u in [0, 1) (larger = farther from
//   the training rows); with the calibration rows' histogram h over [0, 1):
//          p_domain(u) = (sum_{k >= bin(u)} h[k] + 1) / (n + 1),
//   the (conservative) share of calibration rows at least as far.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/status.h"
#include "services/ml/metrics.h"

namespace fedrx::serving {

// The bin of `score` among `bins` equal bins over [0, 1], computed exactly as
// ml::Histograms does at the sites (double arithmetic on the float score:
// floor(score * bins), 1.0 and above in the last bin, below 0 in the first),
// so a served score lands in the bin its calibration twin was counted in.
// `score` must not be NaN; bins >= 1.
std::size_t ScoreBin(double score, std::size_t bins);

// The p-values of a structure's two labels for one task.
struct LabelPValues {
  double negative = 0;  // p-value of label 0
  double positive = 0;  // p-value of label 1
};

// One task's Mondrian calibration: cumulative counts of its histogram.
class MondrianCalibration {
 public:
  // kInvalidArgument (where = `where`) when pos and neg differ in size, have
  // no bins, or hold more rows than fit the counts; a class without rows is
  // allowed (its label's p-value is then always 1: never excluded).
  static core::Result<MondrianCalibration> Create(const ml::ScoreHistogram& histogram,
                                                  const std::string& where);

  // p-values of both labels for model probability `probability` (see the
  // header's formulas). kInvalidArgument for NaN.
  core::Result<LabelPValues> PValues(double probability) const;

  // The counts behind PValues (for an answer's working): calibration
  // positives in bins <= bin(probability), negatives in bins >= it.
  struct Counts {
    std::uint64_t positives_at_or_below = 0;
    std::uint64_t negatives_at_or_above = 0;
  };
  core::Result<Counts> CountsAt(double probability) const;

  std::size_t bins() const { return pos_at_or_below_.size(); }
  std::uint64_t negatives() const { return negatives_; }
  std::uint64_t positives() const { return positives_; }

 private:
  MondrianCalibration() = default;
  // pos_at_or_below_[b] = sum_{k <= b} pos[k]; neg_at_or_above_[b] = sum_{k >= b} neg[k].
  std::vector<std::uint64_t> pos_at_or_below_;
  std::vector<std::uint64_t> neg_at_or_above_;
  std::uint64_t negatives_ = 0;
  std::uint64_t positives_ = 0;
};

// kInvalidArgument (where = `where`) unless 0 < confidence < 1 (NaN refused).
core::Status ValidateConfidence(double confidence, const std::string& where);

// The labels whose p-value exceeds 1 - confidence: "negative", "positive",
// "both" or "empty".
std::string_view PredictionSet(const LabelPValues& p, double confidence);
// max(p_0, p_1): how well the likelier label fits the calibration rows.
double Credibility(const LabelPValues& p);
// 1 - min(p_0, p_1): how confidently the other label is excluded.
double Confidence(const LabelPValues& p);

// The calibration rows' domain-score histogram (bins over [0, 1)).
class DomainCalibration {
 public:
  // kInvalidArgument (where = `where`) for no bins, no rows, or counts that
  // overflow.
  static core::Result<DomainCalibration> Create(const std::vector<std::uint64_t>& histogram,
                                                const std::string& where);

  // Share of calibration rows at least as far as a structure with domain
  // score `score` (header formula), in (0, 1]. kInvalidArgument for NaN.
  core::Result<double> PValue(double score) const;

  std::uint64_t rows() const { return rows_; }
  std::size_t bins() const { return at_or_above_.size(); }

 private:
  DomainCalibration() = default;
  std::vector<std::uint64_t> at_or_above_;  // [b] = sum_{k >= b} h[k]
  std::uint64_t rows_ = 0;
};

}  // namespace fedrx::serving
