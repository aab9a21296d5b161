#include "services/serving/conformal.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fedrx::serving {
namespace {

constexpr std::uint64_t kMaxCount = std::numeric_limits<std::uint64_t>::max() - 1;

// Sums `counts` from the back: out[b] = sum_{k >= b} counts[k]. False on overflow
// (kept one below the maximum so that the +1 of a p-value cannot wrap).
bool SuffixSums(const std::vector<std::uint64_t>& counts, std::vector<std::uint64_t>& out) {
  out.assign(counts.size(), 0);
  std::uint64_t sum = 0;
  for (std::size_t k = counts.size(); k-- > 0;) {
    if (counts[k] > kMaxCount - sum) return false;
    sum += counts[k];
    out[k] = sum;
  }
  return true;
}

bool PrefixSums(const std::vector<std::uint64_t>& counts, std::vector<std::uint64_t>& out) {
  out.assign(counts.size(), 0);
  std::uint64_t sum = 0;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    if (counts[k] > kMaxCount - sum) return false;
    sum += counts[k];
    out[k] = sum;
  }
  return true;
}

// (count + 1) / (n + 1) in double; count <= n < 2^64 - 1.
double Ratio(std::uint64_t count, std::uint64_t n) {
  return (static_cast<double>(count) + 1.0) / (static_cast<double>(n) + 1.0);
}

}  // namespace

std::size_t ScoreBin(double score, std::size_t bins) {
  // The expression of ml::Histograms, kept identical so that both sides bin
  // a float score the same way at the edges (e.g. 0.3f * 1000 = 300.0000119 -> 300).
  const double scale = static_cast<double>(bins);
  const double x = std::clamp(score * scale, 0.0, scale - 1.0);
  return static_cast<std::size_t>(x);
}

core::Result<MondrianCalibration> MondrianCalibration::Create(const ml::ScoreHistogram& h,
                                                              const std::string& where) {
  if (h.pos.size() != h.neg.size()) {
    return core::InvalidArgument("histogram has " + std::to_string(h.pos.size()) +
                                     " positive and " + std::to_string(h.neg.size()) +
                                     " negative bins",
                                 where);
  }
  if (h.pos.empty()) return core::InvalidArgument("histogram has no bins", where);
  MondrianCalibration c;
  if (!PrefixSums(h.pos, c.pos_at_or_below_) || !SuffixSums(h.neg, c.neg_at_or_above_)) {
    return core::InvalidArgument("histogram counts overflow", where);
  }
  c.positives_ = c.pos_at_or_below_.back();
  c.negatives_ = c.neg_at_or_above_.front();
  return c;
}

core::Result<MondrianCalibration::Counts> MondrianCalibration::CountsAt(double probability) const {
  if (std::isnan(probability)) return core::InvalidArgument("probability is NaN", "probability");
  const std::size_t b = ScoreBin(probability, bins());
  return Counts{pos_at_or_below_[b], neg_at_or_above_[b]};
}

core::Result<LabelPValues> MondrianCalibration::PValues(double probability) const {
  FEDRX_ASSIGN_OR_RETURN(Counts c, CountsAt(probability));
  LabelPValues p;
  p.positive = Ratio(c.positives_at_or_below, positives_);
  p.negative = Ratio(c.negatives_at_or_above, negatives_);
  return p;
}

core::Status ValidateConfidence(double confidence, const std::string& where) {
  if (!(confidence > 0.0 && confidence < 1.0)) {
    return core::InvalidArgument(
        "confidence must be strictly between 0 and 1 (e.g. 0.9), got " + std::to_string(confidence),
        where);
  }
  return core::Status::Ok();
}

std::string_view PredictionSet(const LabelPValues& p, double confidence) {
  const double significance = 1.0 - confidence;
  const bool negative = p.negative > significance;
  const bool positive = p.positive > significance;
  if (negative && positive) return "both";
  if (negative) return "negative";
  if (positive) return "positive";
  return "empty";
}

double Credibility(const LabelPValues& p) { return std::max(p.negative, p.positive); }

double Confidence(const LabelPValues& p) { return 1.0 - std::min(p.negative, p.positive); }

core::Result<DomainCalibration> DomainCalibration::Create(const std::vector<std::uint64_t>& h,
                                                          const std::string& where) {
  if (h.empty()) return core::InvalidArgument("domain histogram has no bins", where);
  DomainCalibration c;
  if (!SuffixSums(h, c.at_or_above_)) {
    return core::InvalidArgument("domain histogram counts overflow", where);
  }
  c.rows_ = c.at_or_above_.front();
  if (c.rows_ == 0) return core::InvalidArgument("domain histogram holds no rows", where);
  return c;
}

core::Result<double> DomainCalibration::PValue(double score) const {
  if (std::isnan(score)) return core::InvalidArgument("domain score is NaN", "domain.score");
  return Ratio(at_or_above_[ScoreBin(score, bins())], rows_);
}

}  // namespace fedrx::serving
