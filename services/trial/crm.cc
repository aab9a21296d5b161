#include "services/trial/crm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "services/domain/working.h"

namespace fedrx::trial {
namespace {

// 8-point Gauss-Legendre rule on [-1, 1] (abscissae and weights, positive half).
constexpr double kGlX[4] = {0.1834346424956498, 0.5255324099163290, 0.7966664774136267,
                            0.9602898564975363};
constexpr double kGlW[4] = {0.3626837833783620, 0.3137066458778873, 0.2223810344533745,
                            0.1012285362903763};
// Largest expected Fisher information about a from one patient:
// max over x > 0 of x^2 / (e^x - 1) (x = -ln p), about 0.6476.
constexpr double kMaxInfoPerPatient = 0.65;

}  // namespace

std::vector<double> DfcrmSkeleton(double halfwidth, double target, int nu, int nlevel) {
  std::vector<double> s(nlevel);
  const double lo = std::log(target - halfwidth), hi = std::log(target + halfwidth);
  s[nu - 1] = target;
  for (int k = nu - 1; k >= 1; --k) s[k - 1] = std::exp(lo * std::log(s[k]) / hi);
  for (int k = nu - 1; k + 1 < nlevel; ++k) s[k + 1] = std::exp(hi * std::log(s[k]) / lo);
  return s;
}

CrmPosterior::CrmPosterior(std::vector<double> skeleton, double prior_sd, double target,
                           int max_patients)
    : ndose_(static_cast<int>(skeleton.size())) {
  const double half_range = 10 * prior_sd;
  const double sd_min =
      1.0 / std::sqrt(kMaxInfoPerPatient * max_patients + 1.0 / (prior_sd * prior_sd));
  const double h = std::min(prior_sd, 1.5 * sd_min);
  const double lt = std::log(target);
  // Where P(p_d > target) switches: p_d > target <=> a < c_d.
  std::vector<double> cuts(ndose_);
  std::vector<double> breaks = {-half_range, half_range};
  for (int d = 0; d < ndose_; ++d) {
    cuts[d] = std::log(lt / std::log(skeleton[d]));
    if (cuts[d] > -half_range && cuts[d] < half_range) breaks.push_back(cuts[d]);
  }
  std::sort(breaks.begin(), breaks.end());
  breaks.erase(std::unique(breaks.begin(), breaks.end()), breaks.end());
  std::vector<double> log_w;
  for (std::size_t b = 0; b + 1 < breaks.size(); ++b) {
    const double u = breaks[b], v = breaks[b + 1];
    const int panels = std::max(1, static_cast<int>(std::ceil((v - u) / h)));
    const double width = (v - u) / panels;
    for (int p = 0; p < panels; ++p) {
      const double mid = u + (p + 0.5) * width, half = 0.5 * width;
      for (int i = 3; i >= 0; --i) {
        a_.push_back(mid - half * kGlX[i]);
        log_w.push_back(std::log(half * kGlW[i]));
      }
      for (int i = 0; i < 4; ++i) {
        a_.push_back(mid + half * kGlX[i]);
        log_w.push_back(std::log(half * kGlW[i]));
      }
    }
  }
  const std::size_t n = a_.size();
  log_w_.resize(n);
  log_p_.resize(n * ndose_);
  log_1mp_.resize(n * ndose_);
  p_.resize(n * ndose_);
  for (std::size_t j = 0; j < n; ++j) {
    // Normal prior density up to a constant (it cancels in every ratio).
    log_w_[j] = log_w[j] - a_[j] * a_[j] / (2 * prior_sd * prior_sd);
    const double e = std::exp(a_[j]);
    for (int d = 0; d < ndose_; ++d) {
      const double lp = e * std::log(skeleton[d]);
      log_p_[d * n + j] = lp;
      // ln(1 - p) without cancellation when p is near 1 (a very negative).
      log_1mp_[d * n + j] = std::log(-std::expm1(lp));
      p_[d * n + j] = std::exp(lp);
    }
  }
  first_above_.resize(ndose_);
  for (int d = 0; d < ndose_; ++d) {
    // Number of nodes with a < c_d (p_d > target there).
    first_above_[d] =
        static_cast<std::size_t>(std::lower_bound(a_.begin(), a_.end(), cuts[d]) - a_.begin());
  }
  for (int d = 0; d < ndose_; ++d) tail_order_.push_back(d);
  std::sort(tail_order_.begin(), tail_order_.end(),
            [&](int x, int y) { return first_above_[x] < first_above_[y]; });
}

void CrmPosterior::Update(const std::vector<int>& patients, const std::vector<int>& dlts,
                          Summary& out) const {
  const std::size_t n = a_.size();
  // Dose-major arrays and straight loops over the nodes, so the compiler can
  // vectorise the log-likelihood; a per-thread buffer avoids an allocation
  // per update.
  thread_local std::vector<double> lpost;
  lpost.assign(log_w_.begin(), log_w_.end());
  for (int d = 0; d < ndose_; ++d) {
    if (patients[d] == 0) continue;
    const double y = dlts[d], ny = patients[d] - dlts[d];
    const double* lp = &log_p_[d * n];
    const double* l1 = &log_1mp_[d * n];
    double* l = lpost.data();
    for (std::size_t j = 0; j < n; ++j) l[j] += y * lp[j] + ny * l1[j];
  }
  const double max_lpost = *std::max_element(lpost.begin(), lpost.end());
  // Nodes more than 50 log units below the mode weigh < 2e-22 each relative
  // to it: only the window of nodes above that enters the sums.
  const double floor = max_lpost - 50;
  std::size_t lo = 0, hi = n;
  while (lo < n && lpost[lo] <= floor) ++lo;
  while (hi > lo && lpost[hi - 1] <= floor) --hi;
  double z = 0, za = 0;
  for (std::size_t j = lo; j < hi; ++j) {
    const double w = std::exp(lpost[j] - max_lpost);
    lpost[j] = w;
    z += w;
    za += w * a_[j];
  }
  std::fill(lpost.begin(), lpost.begin() + lo, 0.0);
  std::fill(lpost.begin() + hi, lpost.end(), 0.0);
  out.mean_tox.assign(ndose_, 0);
  out.p_above.assign(ndose_, 0);
  for (int d = 0; d < ndose_; ++d) {
    const double* p = &p_[d * n];
    double m = 0;
    for (std::size_t j = lo; j < hi; ++j) m += lpost[j] * p[j];
    out.mean_tox[d] = m / z;
  }
  out.mean_a = za / z;
  // Tails: prefix sums of the node masses up to each dose's switch point.
  std::size_t j = 0;
  double cum = 0;
  for (int d : tail_order_) {
    for (; j < first_above_[d]; ++j) cum += lpost[j];
    out.p_above[d] = std::min(1.0, cum / z);
  }
}

CrmDesign::CrmDesign(const codec::EscalationDesign& design, int ndose, std::vector<double> skeleton,
                     bool default_skeleton)
    : design_(design),
      ndose_(ndose),
      skeleton_(skeleton),
      default_skeleton_(default_skeleton),
      posterior_(std::move(skeleton), design.prior_sd, design.target, design.max_patients) {}

int CrmDesign::Recommend(const CrmPosterior::Summary& s, int cap) const {
  int best = 0;
  for (int d = 1; d < ndose_; ++d) {
    if (std::fabs(s.mean_tox[d] - design_.target) < std::fabs(s.mean_tox[best] - design_.target)) {
      best = d;
    }
  }
  return std::min(best, cap);
}

int CrmDesign::NextDose(const CrmPosterior::Summary& s, int current, int highest) const {
  const int rec = Recommend(s, std::min(highest + 1, ndose_ - 1));
  if (rec <= current) return rec;
  // Overdose control on escalation: P(p_d > target) is non-decreasing in d,
  // so climb while the next dose is within the limit.
  int next = current;
  while (next < rec && s.p_above[next + 1] <= design_.overdose_probability) ++next;
  return next;
}

TrialRecord CrmDesign::Run(const OutcomeSource& source, Rng& rng) const {
  TrialRecord r;
  r.patients.assign(ndose_, 0);
  r.dlts.assign(ndose_, 0);
  const int cohort = design_.cohort_size;
  const int cohorts = design_.max_patients / cohort;
  int d = design_.start_dose - 1;
  int highest = d;
  CrmPosterior::Summary s;
  for (int c = 0; c < cohorts; ++c) {
    r.dlts[d] += source.CountDlts(d, cohort, rng);
    r.patients[d] += cohort;
    posterior_.Update(r.patients, r.dlts, s);
    if (r.patients[0] >= 3 && s.p_above[0] > kCrmSafetyStopProbability) {
      r.mtd = -1;
      return r;
    }
    if (c + 1 == cohorts) break;
    d = NextDose(s, d, highest);
    highest = std::max(highest, d);
  }
  // Doses below the start that were never tried are not selected either.
  int mtd = Recommend(s, highest);
  while (mtd > 0 && r.patients[mtd] == 0) --mtd;
  if (r.patients[mtd] == 0) {
    // Everything tried lies above the recommendation: the lowest dose tried.
    while (r.patients[mtd] == 0) ++mtd;
  }
  r.mtd = mtd;
  return r;
}

void CrmDesign::Describe(codec::OperatingCharacteristics& oc) const {
  oc.working.method =
      "CRM, empiric (power) model p_d = skeleton_d^exp(a), a ~ N(0, prior_sd^2); posterior by "
      "Gauss-Legendre quadrature; next dose closest to target by posterior mean DLT rate, with "
      "overdose control and no skipping of untried doses";
  oc.working.guidance =
      "O'Quigley J, Pepe M, Fisher L (1990) Biometrics 46:33-48; Cheung YK (2011) Dose Finding by "
      "the Continual Reassessment Method (dfcrm); Babb J, Rogatko A, Zacks S (1998) Stat Med "
      "17:1103-1120 (overdose control)";
  std::vector<codec::Quantity> in = {{"target", design_.target, "probability"},
                                     {"prior_sd", design_.prior_sd, ""}};
  for (int d = 0; d < ndose_; ++d) {
    oc.working.steps.push_back(
        {"skeleton dose " + std::to_string(d + 1),
         default_skeleton_ ? "dfcrm::getprior(0.05, target, ceil(ndose/2), ndose)" : "given",
         in,
         {"skeleton_" + std::to_string(d + 1), skeleton_[d], "probability"},
         default_skeleton_ ? "Cheung 2011, indifference intervals" : ""});
  }
  oc.working.notes.push_back(
      "next dose: closest to target by posterior mean of p_d (ties: lower), at most one level "
      "above the highest dose tried; an escalation goes no higher than the last dose with "
      "P(p_d > target | data) <= " +
      domain::FormatNumber(design_.overdose_probability) +
      " (staying when the next is above it); de-escalation and staying are not limited");
  oc.working.notes.push_back(
      "safety stop (no MTD): lowest dose has >= 3 patients and P(p_1 > target | data) > " +
      domain::FormatNumber(kCrmSafetyStopProbability));
  oc.working.notes.push_back(
      "MTD: the dose closest to target after the last cohort, among doses up to the highest "
      "tried (overdose control governs dosing, not the final estimate); dfcrm "
      "plugs the posterior mean of a into the model instead of averaging p_d over the posterior");
}

}  // namespace fedrx::trial
