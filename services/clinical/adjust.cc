#include "services/clinical/adjust.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace fedrx::clinical {
namespace {

constexpr double kRiskFloor = 1e-6;
constexpr double kProbFloor = 1e-9;

double ClampRisk(double r) { return std::clamp(r, kRiskFloor, 1.0 - kRiskFloor); }

void Add(Working* working, std::string what, std::string formula, std::vector<NamedValue> values) {
  if (working == nullptr) return;
  working->push_back(WorkingStep{std::move(what), std::move(formula), std::move(values)});
}

// Maximum-likelihood logistic regression of y on x with an intercept, by
// Newton-Raphson. Returns false when it does not converge or the slope runs
// away (separated data), which the caller reports as FailedPrecondition.
bool FitLogistic(const std::vector<double>& x, const std::vector<int>& y, int max_iter, double* a,
                 double* b, int* iterations) {
  double ia = 0.0, ib = 0.0;
  for (int it = 1; it <= max_iter; ++it) {
    double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double p = Sigmoid(ia + ib * x[i]);
      const double w = p * (1.0 - p);
      g0 += y[i] - p;
      g1 += (y[i] - p) * x[i];
      h00 += w;
      h01 += w * x[i];
      h11 += w * x[i] * x[i];
    }
    const double det = h00 * h11 - h01 * h01;
    if (!(det > 1e-12)) return false;
    const double da = (h11 * g0 - h01 * g1) / det;
    const double db = (-h01 * g0 + h00 * g1) / det;
    ia += da;
    ib += db;
    if (!std::isfinite(ia) || !std::isfinite(ib) || std::abs(ib) > 50.0) return false;
    if (std::abs(da) < 1e-10 && std::abs(db) < 1e-10) {
      *a = ia;
      *b = ib;
      *iterations = it;
      return true;
    }
  }
  return false;
}

// The kBinned estimate from per-bin counts: bin j covers (upper[j-1],
// upper[j]] and holds a[j] approved and f[j] failed compounds (n1, n0 in
// all). Smoothed log LR per bin, then pool-adjacent-violators so that log LR
// is non-increasing in risk; fills the model's bins.
void FinishBinned(const std::vector<double>& upper, const std::vector<double>& a,
                  const std::vector<double>& f, double n1, double n0, LikelihoodRatioModel& model,
                  Working* working) {
  const std::size_t m = upper.size();
  std::vector<double> log_lr(m);
  for (std::size_t j = 0; j < m; ++j) {
    log_lr[j] = std::log(((a[j] + 0.5) / (n1 + 0.5 * m)) / ((f[j] + 0.5) / (n0 + 0.5 * m)));
    Add(working, "bin " + std::to_string(j) + " raw likelihood ratio",
        "LR_j = ((A_j+0.5)/(n_approved+0.5k)) / ((F_j+0.5)/(n_failed+0.5k))",
        {{"upper", upper[j]}, {"approved", a[j]}, {"failed", f[j]}, {"log_lr", log_lr[j]}});
  }
  // Pool adjacent violators: make log LR non-increasing in risk. A pooled
  // block's LR is that of its summed counts (with 0.5 per bin it spans), the
  // mediant of its members, so it lies between them and the pooling of every
  // bin gives LR = 1 exactly: no evidence when the score does not rank.
  struct Block {
    double approved = 0, failed = 0, bins = 0;
    std::size_t len = 0;
    double LogLr(double n1, double n0, double k) const {
      return std::log(((approved + 0.5 * bins) / (n1 + 0.5 * k)) /
                      ((failed + 0.5 * bins) / (n0 + 0.5 * k)));
    }
  };
  const double k = static_cast<double>(m);
  std::vector<Block> blocks;
  for (std::size_t j = 0; j < m; ++j) {
    blocks.push_back(Block{a[j], f[j], 1.0, 1});
    while (blocks.size() > 1 &&
           blocks[blocks.size() - 2].LogLr(n1, n0, k) < blocks.back().LogLr(n1, n0, k)) {
      Block last = blocks.back();
      blocks.pop_back();
      blocks.back().approved += last.approved;
      blocks.back().failed += last.failed;
      blocks.back().bins += last.bins;
      blocks.back().len += last.len;
    }
  }
  for (const Block& block : blocks) {
    for (std::size_t i = 0; i < block.len; ++i) {
      model.bin_log_lr.push_back(block.LogLr(n1, n0, k));
    }
  }
  model.bin_upper = upper;
  std::vector<NamedValue> mono;
  for (std::size_t j = 0; j < m; ++j) {
    mono.push_back({"log_lr_bin_" + std::to_string(j), model.bin_log_lr[j]});
  }
  Add(working, "monotone likelihood ratio (pool adjacent violators)",
      "log LR non-increasing in risk; a pooled block's LR from its summed counts", std::move(mono));
}

}  // namespace

double Logit(double p) { return std::log(p / (1.0 - p)); }

double Sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

core::Status CheckRisk(double risk, const std::string& where) {
  if (!std::isfinite(risk)) return core::InvalidArgument("risk is not a finite number", where);
  if (risk < 0.0 || risk > 1.0) {
    return core::InvalidArgument("risk " + std::to_string(risk) + " is outside [0,1]", where);
  }
  return core::Status::Ok();
}

core::Status CheckPairs(const std::vector<RiskLabel>& pairs, const std::string& where) {
  if (pairs.empty()) return core::InvalidArgument("no (risk, approved) pairs given", where);
  std::size_t approved = 0;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    FEDRX_RETURN_IF_ERROR(CheckRisk(pairs[i].risk, where + "[" + std::to_string(i) + "].risk"));
    if (pairs[i].approved) ++approved;
  }
  if (approved == 0 || approved == pairs.size()) {
    return core::InvalidArgument("all " + std::to_string(pairs.size()) + " pairs are " +
                                     (approved == 0 ? "failed" : "approved") +
                                     "; both classes are needed",
                                 where + "[].approved");
  }
  return core::Status::Ok();
}

double LikelihoodRatioModel::LogLr(double risk) const {
  const double r = ClampRisk(risk);
  if (method == LrMethod::kLogistic) {
    if (n_approved == 0 || n_failed == 0) return 0.0;  // the neutral model
    return intercept + slope * Logit(r) -
           std::log(static_cast<double>(n_approved) / static_cast<double>(n_failed));
  }
  for (std::size_t j = 0; j < bin_upper.size(); ++j) {
    if (r <= bin_upper[j]) return bin_log_lr[j];
  }
  return bin_log_lr.empty() ? 0.0 : bin_log_lr.back();
}

LikelihoodRatioModel LikelihoodRatioModel::Neutral() { return LikelihoodRatioModel{}; }

core::Result<LikelihoodRatioModel> EstimateLikelihoodRatio(const std::vector<RiskLabel>& pairs,
                                                           const LrOptions& options,
                                                           Working* working) {
  FEDRX_RETURN_IF_ERROR(CheckPairs(pairs, "pairs"));
  LikelihoodRatioModel model;
  model.method = options.method;
  for (const RiskLabel& p : pairs) (p.approved ? model.n_approved : model.n_failed)++;
  const double n1 = static_cast<double>(model.n_approved);
  const double n0 = static_cast<double>(model.n_failed);
  Add(working, "count held-out compounds by outcome", "prior odds = n_approved / n_failed",
      {{"n_approved", n1}, {"n_failed", n0}, {"prior_odds", n1 / n0}});

  if (options.method == LrMethod::kLogistic) {
    if (options.max_iterations < 1) {
      return core::InvalidArgument("max_iterations must be >= 1", "options.max_iterations");
    }
    std::vector<double> x;
    std::vector<int> y;
    for (const RiskLabel& p : pairs) {
      x.push_back(Logit(ClampRisk(p.risk)));
      y.push_back(p.approved ? 1 : 0);
    }
    int iterations = 0;
    if (!FitLogistic(x, y, options.max_iterations, &model.intercept, &model.slope, &iterations)) {
      return core::FailedPrecondition(
          "logistic fit of approval on logit(risk) did not converge (classes separated by risk "
          "or too few compounds); use the binned method",
          "pairs");
    }
    Add(working, "fit P(approved | r) = sigmoid(a + b logit r) by maximum likelihood",
        "Newton-Raphson on the log-likelihood, r clamped to [1e-6, 1-1e-6]",
        {{"a", model.intercept}, {"b", model.slope}, {"iterations", double(iterations)}});
    Add(working, "likelihood ratio", "log LR(r) = a + b logit r - log(n_approved / n_failed)",
        {{"log_lr_at_r_0.1", model.LogLr(0.1)},
         {"log_lr_at_r_0.5", model.LogLr(0.5)},
         {"log_lr_at_r_0.9", model.LogLr(0.9)}});
    return model;
  }

  const int k = options.bins;
  if (k < 2 || static_cast<std::size_t>(k) > pairs.size()) {
    return core::InvalidArgument(
        "bins must be between 2 and the number of pairs, got " + std::to_string(k), "options.bins");
  }
  std::vector<double> risks;
  for (const RiskLabel& p : pairs) risks.push_back(p.risk);
  std::sort(risks.begin(), risks.end());
  // Upper edges at sample quantiles; duplicates (tied risks) merge bins.
  std::vector<double> upper;
  for (int j = 1; j < k; ++j) {
    const double q = risks[static_cast<std::size_t>(j) * risks.size() / k - 1];
    if (upper.empty() || q > upper.back()) upper.push_back(q);
  }
  if (upper.empty() || upper.back() < 1.0) upper.push_back(1.0);
  const std::size_t m = upper.size();
  std::vector<double> a(m, 0.0), f(m, 0.0);
  for (const RiskLabel& p : pairs) {
    std::size_t j = 0;
    while (j + 1 < m && p.risk > upper[j]) ++j;
    (p.approved ? a[j] : f[j]) += 1.0;
  }
  FinishBinned(upper, a, f, n1, n0, model, working);
  return model;
}

core::Result<AdjustedRates> AdjustByLogLr(const BaseRates& base, double log_lr,
                                          const AdjustOptions& options, Working* working) {
  if (!std::isfinite(log_lr)) return core::InvalidArgument("log LR is not finite", "log_lr");
  AdjustedRates out;
  out.area = base.area;
  out.log_lr = log_lr;
  double mass = 0.0;
  std::array<double, kTransitionCount> safety{};
  for (int k = 0; k < kTransitionCount; ++k) {
    const std::string where = "base.transition[" + std::to_string(k) + "]";
    if (!base.transition[k]) {
      return core::InvalidArgument(std::string("no confirmed base rate for ") +
                                       TransitionName(Transition(k)) + " in area '" + base.area +
                                       "'; the adjustment needs all four transitions",
                                   where);
    }
    const double p = *base.transition[k];
    if (!std::isfinite(p) || p <= 0.0 || p >= 1.0) {
      return core::InvalidArgument("base rate must be in (0,1)", where);
    }
    const double s = options.safety_failure_share[k];
    if (!std::isfinite(s) || s < 0.0 || s > 1.0) {
      return core::InvalidArgument("safety share must be in [0,1]",
                                   "options.safety_failure_share[" + std::to_string(k) + "]");
    }
    out.base[k] = p;
    safety[k] = (1.0 - p) * s;
    mass += safety[k];
  }
  if (!(mass > 0.0)) {
    return core::InvalidArgument("all safety shares are zero", "options.safety_failure_share");
  }
  out.base_loa = 1.0;
  out.adjusted_loa = 1.0;
  for (int k = 0; k < kTransitionCount; ++k) {
    out.weight[k] = safety[k] / mass;
    const double z = Logit(out.base[k]) + out.weight[k] * log_lr;
    out.adjusted[k] = std::clamp(Sigmoid(z), kProbFloor, 1.0 - kProbFloor);
    out.base_loa *= out.base[k];
    out.adjusted_loa *= out.adjusted[k];
    Add(working, std::string("adjust ") + TransitionName(Transition(k)),
        "w_k = (1-p_k) s_k / sum_j (1-p_j) s_j; logit p'_k = logit p_k + w_k log LR",
        {{"p_k", out.base[k]},
         {"s_k", options.safety_failure_share[k]},
         {"w_k", out.weight[k]},
         {"log_lr", log_lr},
         {"p_adjusted", out.adjusted[k]}});
  }
  Add(working, "likelihood of approval from Phase I", "LOA = product of the four transitions",
      {{"base_loa", out.base_loa}, {"adjusted_loa", out.adjusted_loa}});
  return out;
}

core::Result<AdjustedRates> AdjustForRisk(const BaseRates& base, const LikelihoodRatioModel& model,
                                          double risk, const AdjustOptions& options,
                                          Working* working) {
  FEDRX_RETURN_IF_ERROR(CheckRisk(risk, "risk"));
  const double log_lr = model.LogLr(risk);
  Add(working, "likelihood ratio at the candidate's risk",
      model.method == LrMethod::kLogistic ? "log LR(r) = a + b logit r - log prior odds"
                                          : "log LR(r) = monotone log LR of r's bin",
      {{"risk", risk}, {"log_lr", log_lr}, {"lr", std::exp(log_lr)}});
  FEDRX_ASSIGN_OR_RETURN(AdjustedRates out, AdjustByLogLr(base, log_lr, options, working));
  out.risk = risk;
  return out;
}

}  // namespace fedrx::clinical

namespace fedrx::clinical {

core::Result<LikelihoodRatioModel> EstimateLikelihoodRatioFromHistogram(
    const ml::ScoreHistogram& h, const HistogramLrOptions& options, Working* working) {
  if (h.pos.empty() && h.neg.empty()) {
    return core::InvalidArgument("the histogram has no bins", "histogram");
  }
  if (h.pos.size() != h.neg.size()) {
    return core::InvalidArgument("the histogram's classes have " + std::to_string(h.neg.size()) +
                                     " and " + std::to_string(h.pos.size()) + " bins",
                                 "histogram.pos");
  }
  const std::size_t bins = h.pos.size();
  double n1 = 0, n0 = 0;  // approved (CT_TOX 0, neg), failed (CT_TOX 1, pos)
  for (std::size_t b = 0; b < bins; ++b) {
    n1 += static_cast<double>(h.neg[b]);
    n0 += static_cast<double>(h.pos[b]);
  }
  if (n1 == 0) {
    return core::InvalidArgument("no approved (CT_TOX = 0) compound in the histogram",
                                 "histogram.neg");
  }
  if (n0 == 0) {
    return core::InvalidArgument("no failed (CT_TOX = 1) compound in the histogram",
                                 "histogram.pos");
  }
  const int k = options.bins;
  if (k < 2 || static_cast<std::size_t>(k) > bins) {
    return core::InvalidArgument("bins must be between 2 and the histogram's " +
                                     std::to_string(bins) + ", got " + std::to_string(k),
                                 "options.bins");
  }
  LikelihoodRatioModel model;
  model.method = LrMethod::kBinned;
  model.n_approved = static_cast<std::size_t>(n1);
  model.n_failed = static_cast<std::size_t>(n0);
  Add(working, "count the calibration compounds by outcome (the sites' validation folds)",
      "approved = CT_TOX 0, failed = CT_TOX 1; prior odds = n_approved / n_failed",
      {{"n_approved", n1},
       {"n_failed", n0},
       {"prior_odds", n1 / n0},
       {"histogram_bins", static_cast<double>(bins)}});
  // Group consecutive bins at the pooled count's quantiles.
  const double total = n1 + n0;
  std::vector<double> upper, a, f;
  double cumulative = 0, ga = 0, gf = 0;
  int next = 1;
  for (std::size_t b = 0; b < bins; ++b) {
    ga += static_cast<double>(h.neg[b]);
    gf += static_cast<double>(h.pos[b]);
    cumulative += static_cast<double>(h.neg[b] + h.pos[b]);
    const bool last = b + 1 == bins;
    if (last || (next < k && cumulative >= total * next / k)) {
      if (ga + gf > 0 || last) {
        upper.push_back(last ? 1.0 : static_cast<double>(b + 1) / static_cast<double>(bins));
        a.push_back(ga);
        f.push_back(gf);
        ga = gf = 0;
      }
      while (next < k && cumulative >= total * next / k) ++next;
    }
  }
  // An empty last group (every compound below it) joins the one before.
  if (upper.size() > 1 && a.back() + f.back() == 0) {
    upper[upper.size() - 2] = 1.0;
    upper.pop_back();
    a.pop_back();
    f.pop_back();
  }
  if (upper.size() < 2) {
    Add(working, "one group only: every compound in one score range", "LR = 1",
        {{"groups", static_cast<double>(upper.size())}});
    model.bin_upper = {1.0};
    model.bin_log_lr = {0.0};
    return model;
  }
  FinishBinned(upper, a, f, n1, n0, model, working);
  return model;
}

}  // namespace fedrx::clinical
