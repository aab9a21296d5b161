#include "services/trial/boin.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "services/domain/working.h"
#include "services/trial/isotonic.h"

namespace fedrx::trial {
namespace {

// The package's n.earlystop default "essentially turns off" that rule.
constexpr int kDefaultStopAtN = 100;

}  // namespace

double BetaPosteriorAbove(double target, int y, int n) {
  // 1 - pbeta(target, y + 1, n - y + 1) for integer shapes equals
  // P(Binomial(n + 1, target) <= y): a finite sum, exact up to rounding. The
  // log pmf is built by its ratio recursion (no lgamma, whose glibc version
  // writes a global, so simulations on several threads stay race-free).
  const int m = n + 1;
  const double log_odds = std::log(target) - std::log1p(-target);
  double log_pmf = m * std::log1p(-target);  // k = 0
  double sum = std::exp(log_pmf);
  for (int k = 1; k <= y; ++k) {
    log_pmf += std::log(static_cast<double>(m - k + 1) / k) + log_odds;
    sum += std::exp(log_pmf);
  }
  return std::min(1.0, sum);
}

core::Result<BoinBoundaries> BoinBoundaryTable(double target, int max_patients, int cohort_size,
                                               double phi1, double phi2, double elimination_cutoff,
                                               int stop_at_n, double extra_safe_offset) {
  if (!(target > 0 && target < 1)) {
    return core::InvalidArgument(
        "target DLT rate must be in (0, 1), got " + domain::FormatNumber(target), "target");
  }
  if (phi1 == 0) phi1 = 0.6 * target;
  if (phi2 == 0) phi2 = 1.4 * target;
  if (!(phi1 > 0 && phi1 < target)) {
    return core::InvalidArgument(
        "phi1 (highest rate deemed subtherapeutic) must be in (0, target), got " +
            domain::FormatNumber(phi1),
        "phi1");
  }
  if (!(phi2 > target && phi2 < 1)) {
    return core::InvalidArgument(
        "phi2 (lowest rate deemed overly toxic) must be in (target, 1), got " +
            domain::FormatNumber(phi2),
        "phi2");
  }
  if (cohort_size < 1) return core::InvalidArgument("cohort size must be >= 1", "cohort_size");
  if (max_patients < 1 || max_patients % cohort_size != 0 ||
      max_patients > kMaxEscalationPatients) {
    return core::InvalidArgument(
        "max_patients must be a positive multiple of cohort_size, at most " +
            std::to_string(kMaxEscalationPatients) + ", got " + std::to_string(max_patients),
        "max_patients");
  }
  if (!(elimination_cutoff > 0 && elimination_cutoff < 1)) {
    return core::InvalidArgument(
        "elimination cutoff must be in (0, 1), got " + domain::FormatNumber(elimination_cutoff),
        "elimination_cutoff");
  }
  if (stop_at_n < 0) return core::InvalidArgument("stop_at_n must be >= 0", "stop_at_n");
  if (stop_at_n == 0) stop_at_n = kDefaultStopAtN;
  if (!(extra_safe_offset >= 0 && extra_safe_offset < elimination_cutoff)) {
    return core::InvalidArgument("extrasafe offset must be in [0, elimination cutoff)",
                                 "extra_safe");
  }

  // Liu & Yuan (2015): with the three point hypotheses p = phi1 (escalate),
  // p = target (stay) and p = phi2 (de-escalate) equally likely a priori, the
  // decision error is smallest when the observed rate y/n is compared with
  // lambda_e (between phi1 and target) and lambda_d (between target and
  // phi2), the points where the binomial likelihoods of neighbouring
  // hypotheses cross. Escalating when y/n <= lambda_e means y <= floor(n
  // lambda_e); de-escalating when y/n >= lambda_d means y >= ceil(n lambda_d)
  // (get.boundary's floor/ceiling). The expressions keep the package's
  // operation order so that floor/ceil see the same doubles.
  BoinBoundaries out;
  out.lambda_e =
      std::log((1 - phi1) / (1 - target)) / std::log(target * (1 - phi1) / (phi1 * (1 - target)));
  out.lambda_d =
      std::log((1 - target) / (1 - phi2)) / std::log(phi2 * (1 - target) / (target * (1 - phi2)));
  const int rows = std::min(max_patients, stop_at_n);
  for (int n = 1; n <= rows; ++n) {
    codec::BoundaryRow row;
    row.n = n;
    row.escalate_at_most = static_cast<int>(std::floor(out.lambda_e * n));
    row.deescalate_at_least = static_cast<int>(std::ceil(out.lambda_d * n));
    int stop = -1;
    // Elimination (and the extrasafe stop) need n >= 3; the package searches
    // y from 1 upwards for the first count whose posterior tail exceeds the
    // cutoff under a Beta(1, 1) prior.
    if (n >= 3) {
      for (int y = 1; y <= n; ++y) {
        if (BetaPosteriorAbove(target, y, n) > elimination_cutoff) {
          row.eliminate_at_least = y;
          break;
        }
      }
      for (int y = 1; y <= n; ++y) {
        if (BetaPosteriorAbove(target, y, n) > elimination_cutoff - extra_safe_offset) {
          stop = y;
          break;
        }
      }
    }
    // De-escalation is never later than elimination.
    if (row.eliminate_at_least >= 0 && row.deescalate_at_least > row.eliminate_at_least) {
      row.deescalate_at_least = row.eliminate_at_least;
    }
    out.rows.push_back(row);
    out.stop_at_least.push_back(stop);
  }
  return out;
}

int BoinSelectMtd(const std::vector<int>& patients, const std::vector<int>& dlts, double target,
                  double elimination_cutoff, bool extra_safe, double extra_safe_offset) {
  const int ndose = static_cast<int>(patients.size());
  std::vector<bool> eliminated(ndose, false);
  for (int i = 0; i < ndose; ++i) {
    if (patients[i] >= 3 && BetaPosteriorAbove(target, dlts[i], patients[i]) > elimination_cutoff) {
      std::fill(eliminated.begin() + i, eliminated.end(), true);
      break;
    }
  }
  if (extra_safe && ndose > 0 && patients[0] >= 3 &&
      BetaPosteriorAbove(target, dlts[0], patients[0]) > elimination_cutoff - extra_safe_offset) {
    std::fill(eliminated.begin(), eliminated.end(), true);
  }
  std::vector<int> index;
  std::vector<double> phat, weight;
  for (int i = 0; i < ndose; ++i) {
    if (patients[i] == 0 || eliminated[i]) continue;
    const double y = dlts[i], n = patients[i];
    index.push_back(i);
    phat.push_back((y + 0.05) / (n + 0.1));
    // Variance of the Beta(y + 0.05, n - y + 0.05) estimate.
    weight.push_back(1.0 / ((y + 0.05) * (n - y + 0.05) / ((n + 0.1) * (n + 0.1) * (n + 0.1 + 1))));
  }
  if (ndose == 0 || eliminated[0] || index.empty()) return -1;
  std::vector<double> fit = IsotonicRegression(phat, weight);
  int best = 0;
  double best_gap = 0;
  for (std::size_t k = 0; k < fit.size(); ++k) {
    // The package's tie-break (see the header).
    const double gap = std::fabs(fit[k] + static_cast<double>(k + 1) * 1e-10 - target);
    if (k == 0 || gap < best_gap) {
      best = static_cast<int>(k);
      best_gap = gap;
    }
  }
  return index[best];
}

BoinDesign::BoinDesign(const codec::EscalationDesign& design, int ndose, BoinBoundaries boundaries)
    : design_(design),
      ndose_(ndose),
      stop_at_n_(design.stop_at_n == 0 ? kDefaultStopAtN : design.stop_at_n),
      b_(std::move(boundaries)) {}

TrialRecord BoinDesign::Run(const OutcomeSource& source, Rng& rng) const {
  // The conduct of the package's get.oc (no titration): after each cohort,
  // (1) eliminate the current dose and all above when its DLTs reach the
  // elimination boundary (the trial stops without an MTD when that is the
  // lowest dose); with extrasafe, stop when the current dose is the lowest
  // and its posterior tail exceeds cutoff - offset; (2) stop when the current
  // dose has n.earlystop patients and the next decision would keep the dose
  // (stay, de-escalate at the lowest dose, escalate at the highest or into an
  // eliminated dose); (3) escalate if DLTs <= the escalation boundary (unless
  // the next dose is eliminated: stay), de-escalate if >= the de-escalation
  // boundary, else stay. No decision follows the last cohort; the MTD is
  // then chosen by BoinSelectMtd on all the data.
  TrialRecord r;
  r.patients.assign(ndose_, 0);
  r.dlts.assign(ndose_, 0);
  std::vector<bool> eliminated(ndose_, false);
  const int cohort = design_.cohort_size;
  const int cohorts = design_.max_patients / cohort;
  int d = design_.start_dose - 1;
  int treated = 0;
  bool early_stop = false;
  for (int c = 0; c < cohorts; ++c) {
    r.dlts[d] += source.CountDlts(d, cohort, rng);
    r.patients[d] += cohort;
    treated += cohort;
    if (treated >= design_.max_patients) break;
    const int n = r.patients[d], y = r.dlts[d];
    const codec::BoundaryRow& row = b_.rows[n - 1];
    if (row.eliminate_at_least >= 0) {
      if (y >= row.eliminate_at_least) {
        std::fill(eliminated.begin() + d, eliminated.end(), true);
        if (d == 0) {
          early_stop = true;
          break;
        }
      }
      if (design_.extra_safe && d == 0 && n >= 3 && b_.stop_at_least[n - 1] >= 0 &&
          y >= b_.stop_at_least[n - 1]) {
        early_stop = true;
        break;
      }
    }
    const bool top = d == ndose_ - 1 || eliminated[d + 1];
    if (n >= stop_at_n_ &&
        ((y > row.escalate_at_most && y < row.deescalate_at_least) ||
         (d == 0 && y >= row.deescalate_at_least) || (top && y <= row.escalate_at_most))) {
      break;
    }
    if (y <= row.escalate_at_most && d != ndose_ - 1) {
      if (!eliminated[d + 1]) ++d;
    } else if (y >= row.deescalate_at_least && d != 0) {
      --d;
    }
  }
  r.mtd = early_stop ? -1
                     : BoinSelectMtd(r.patients, r.dlts, design_.target, design_.elimination_cutoff,
                                     design_.extra_safe);
  return r;
}

void BoinDesign::Describe(codec::OperatingCharacteristics& oc) const {
  oc.lambda_e = b_.lambda_e;
  oc.lambda_d = b_.lambda_d;
  const int rows = std::min<int>(static_cast<int>(b_.rows.size()), stop_at_n_);
  oc.boundaries.assign(b_.rows.begin(), b_.rows.begin() + rows);
  const double phi1 = design_.phi1 == 0 ? 0.6 * design_.target : design_.phi1;
  const double phi2 = design_.phi2 == 0 ? 1.4 * design_.target : design_.phi2;
  const std::vector<codec::Quantity> in = {{"target", design_.target, "probability"},
                                           {"phi1", phi1, "probability"},
                                           {"phi2", phi2, "probability"}};
  oc.working.method =
      "BOIN: compare the observed DLT rate at the current dose with the optimal interval "
      "boundaries lambda_e and lambda_d; Bayesian elimination of overly toxic doses; MTD by "
      "isotonic regression";
  oc.working.guidance =
      "Liu S, Yuan Y (2015) JRSS C 64:507-523; Yuan Y, Hess KR, Hilsenbeck SG, Gilbert MR (2016) "
      "Clin Cancer Res 22:4291-4301; BOIN R package (get.boundary, get.oc, select.mtd)";
  oc.working.steps.push_back(
      {"escalation boundary",
       "lambda_e = ln((1-phi1)/(1-target)) / ln(target(1-phi1)/(phi1(1-target)))",
       in,
       {"lambda_e", b_.lambda_e, "DLT rate"},
       "Liu & Yuan 2015, Theorem 1"});
  oc.working.steps.push_back(
      {"de-escalation boundary",
       "lambda_d = ln((1-target)/(1-phi2)) / ln(phi2(1-target)/(target(1-phi2)))",
       in,
       {"lambda_d", b_.lambda_d, "DLT rate"},
       "Liu & Yuan 2015, Theorem 1"});
  oc.working.notes.push_back(
      "per n: escalate if DLTs <= floor(n lambda_e), de-escalate if DLTs >= ceil(n lambda_d) "
      "(capped at the elimination boundary), eliminate the dose and all above if n >= 3 and "
      "P(p > target | Beta(1+y, 1+n-y)) > " +
      domain::FormatNumber(design_.elimination_cutoff));
  oc.working.notes.push_back("stop when the current dose has " + std::to_string(stop_at_n_) +
                             " patients and the decision is to stay (n.earlystop)");
  if (design_.extra_safe) {
    oc.working.notes.push_back(
        "extrasafe: stop the trial when the lowest dose has >= 3 patients and P(p > target) > " +
        domain::FormatNumber(design_.elimination_cutoff - 0.05));
  }
  oc.working.notes.push_back(
      "MTD: isotonic regression of (y+0.05)/(n+0.1) over tried, non-eliminated doses; the dose "
      "closest to target (ties as select.mtd: lower dose above target, higher below)");
}

}  // namespace fedrx::trial
