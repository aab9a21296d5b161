#include "services/trial/sample_size.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "services/domain/working.h"
#include "services/trial/distributions.h"

namespace fedrx::trial {
namespace {

constexpr char kGuidance[] =
    "ICH E9, Statistical Principles for Clinical Trials (1998), section 3.5 Sample Size";
constexpr char kRequest[] = "ComputeSampleSize";

// Bracket of the per-group n searched when solving, as R's uniroot call in
// power.t.test / power.prop.test: [2 or 1, 1e7], extended downwards when the
// lower end already has the power asked for.
constexpr double kSolveUpper = 1e7;
// Largest n (per group, events, or log-rank subjects) accepted or answered, so
// that every count fits its integer field with room to spare.
constexpr double kMaxN = 1e9;

// --- Argument checks, shared by the typed functions and ComputeSampleSize ----

std::string Where(std::string_view function, std::string_view field) {
  std::string w(function);
  w += '.';
  w += field;
  return w;
}

core::Status CheckFinite(double v, std::string_view fn, std::string_view field) {
  if (!std::isfinite(v)) {
    return core::InvalidArgument(std::string(field) + " must be a finite number", Where(fn, field));
  }
  return core::Status::Ok();
}

// Strictly inside (0, 1).
core::Status CheckOpenUnit(double v, std::string_view fn, std::string_view field) {
  FEDRX_RETURN_IF_ERROR(CheckFinite(v, fn, field));
  if (!(v > 0.0 && v < 1.0)) {
    return core::InvalidArgument(
        std::string(field) + " must be strictly between 0 and 1, got " + std::to_string(v),
        Where(fn, field));
  }
  return core::Status::Ok();
}

core::Status CheckPositive(double v, std::string_view fn, std::string_view field) {
  FEDRX_RETURN_IF_ERROR(CheckFinite(v, fn, field));
  if (!(v > 0.0)) {
    return core::InvalidArgument(std::string(field) + " must be > 0, got " + std::to_string(v),
                                 Where(fn, field));
  }
  return core::Status::Ok();
}

core::Status CheckNonNegative(double v, std::string_view fn, std::string_view field) {
  FEDRX_RETURN_IF_ERROR(CheckFinite(v, fn, field));
  if (!(v >= 0.0)) {
    return core::InvalidArgument(std::string(field) + " must be >= 0, got " + std::to_string(v),
                                 Where(fn, field));
  }
  return core::Status::Ok();
}

core::Status CheckSides(int sides, std::string_view fn) {
  if (sides != 1 && sides != 2) {
    return core::InvalidArgument("sides must be 1 or 2, got " + std::to_string(sides),
                                 Where(fn, "sides"));
  }
  return core::Status::Ok();
}

// n per group (or events) given to a power calculation.
core::Status CheckN(double n, std::string_view fn, std::string_view field) {
  FEDRX_RETURN_IF_ERROR(CheckFinite(n, fn, field));
  if (!(n > 1.0 && n <= kMaxN)) {
    return core::InvalidArgument(
        std::string(field) + " must be > 1 and <= 1e9, got " + std::to_string(n), Where(fn, field));
  }
  return core::Status::Ok();
}

core::Status CheckAlphaPower(double alpha, double power, std::string_view fn) {
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(alpha, fn, "alpha"));
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(power, fn, "power"));
  // No test has power below its level: the equation would have no root.
  if (!(power > alpha)) {
    return core::InvalidArgument("power must exceed alpha", Where(fn, "power"));
  }
  return core::Status::Ok();
}

core::Status CheckDeltaSd(double delta, double sd, std::string_view fn) {
  FEDRX_RETURN_IF_ERROR(CheckFinite(delta, fn, "delta"));
  if (delta == 0.0) {
    return core::InvalidArgument("delta must be non-zero", Where(fn, "delta"));
  }
  return CheckPositive(sd, fn, "sd");
}

core::Status CheckProportions(double p1, double p2, std::string_view fn, std::string_view f1,
                              std::string_view f2) {
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(p1, fn, f1));
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(p2, fn, f2));
  if (p1 == p2) {
    return core::InvalidArgument(std::string(f1) + " and " + std::string(f2) + " must differ",
                                 Where(fn, f2));
  }
  return core::Status::Ok();
}

core::Status CheckHazard(double hazard_ratio, double allocation, std::string_view fn) {
  FEDRX_RETURN_IF_ERROR(CheckPositive(hazard_ratio, fn, "hazard_ratio"));
  if (hazard_ratio == 1.0) {
    return core::InvalidArgument("hazard_ratio must differ from 1", Where(fn, "hazard_ratio"));
  }
  return CheckOpenUnit(allocation, fn, "allocation");
}

core::Status CheckSurvival(double accrual_time, double follow_up, double median_control,
                           std::string_view fn) {
  FEDRX_RETURN_IF_ERROR(CheckPositive(median_control, fn, "median_control"));
  FEDRX_RETURN_IF_ERROR(CheckNonNegative(accrual_time, fn, "accrual_time"));
  FEDRX_RETURN_IF_ERROR(CheckNonNegative(follow_up, fn, "follow_up"));
  if (!(accrual_time + follow_up > 0.0)) {
    return core::InvalidArgument("accrual_time + follow_up must be > 0 (no time to observe events)",
                                 Where(fn, "follow_up"));
  }
  return core::Status::Ok();
}

// --- The formulas, unchecked ---------------------------------------------------

struct TDetail {
  double df = 0;
  double ncp = 0;
  double t_crit = 0;
  double power = 0;
};

// R: nu <- pmax(1e-07, n - 1) * 2; qu <- qt(alpha / sides, nu, lower = FALSE).
TDetail TTest(double n, double delta, double sd, double alpha, int sides) {
  TDetail d;
  d.df = std::max(1e-7, n - 1.0) * 2.0;
  d.ncp = std::sqrt(n / 2.0) * std::fabs(delta) / sd;
  d.t_crit = StudentTUpperQuantile(alpha / sides, d.df);
  d.power = NoncentralTUpper(d.t_crit, d.df, d.ncp);
  if (sides == 2) d.power += NoncentralTCdf(-d.t_crit, d.df, d.ncp);
  return d;
}

struct PropDetail {
  double z = 0;
  double pbar = 0;
  double sd_h0 = 0;  // sqrt(2 pbar qbar)
  double sd_h1 = 0;  // sqrt(p1 q1 + p2 q2)
  double power = 0;
};

PropDetail Proportions(double n, double p1, double p2, double alpha, int sides) {
  PropDetail d;
  d.z = -NormalQuantile(alpha / sides);
  d.pbar = (p1 + p2) / 2.0;
  d.sd_h0 = std::sqrt(2.0 * d.pbar * (1.0 - d.pbar));
  d.sd_h1 = std::sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2));
  const double diff = std::sqrt(n) * std::fabs(p1 - p2);
  d.power = NormalCdf((diff - d.z * d.sd_h0) / d.sd_h1);
  if (sides == 2) d.power += NormalUpper((diff + d.z * d.sd_h0) / d.sd_h1);
  return d;
}

struct ArcsineDetail {
  double z = 0;
  double h = 0;
  double power = 0;
};

ArcsineDetail Arcsine(double n, double p1, double p2, double alpha, int sides) {
  ArcsineDetail d;
  d.z = -NormalQuantile(alpha / sides);
  d.h = std::fabs(CohenH(p1, p2));
  const double shift = d.h * std::sqrt(n / 2.0);
  d.power = NormalUpper(d.z - shift);
  if (sides == 2) d.power += NormalCdf(-d.z - shift);
  return d;
}

struct SchoenfeldDetail {
  double z_alpha = 0;
  double z_power = 0;
  double log_hr = 0;
  double events = 0;
  double power = 0;
};

double SchoenfeldEventsUnchecked(double hr, double a, double alpha, double power, int sides,
                                 SchoenfeldDetail* d) {
  d->z_alpha = -NormalQuantile(alpha / sides);
  d->z_power = NormalQuantile(power);
  d->log_hr = std::log(hr);
  const double s = d->z_alpha + d->z_power;
  d->events = s * s / (a * (1.0 - a) * d->log_hr * d->log_hr);
  d->power = power;
  return d->events;
}

double LogRankPowerUnchecked(double events, double hr, double a, double alpha, int sides,
                             SchoenfeldDetail* d) {
  d->z_alpha = -NormalQuantile(alpha / sides);
  d->log_hr = std::log(hr);
  d->events = events;
  d->z_power = std::sqrt(events * a * (1.0 - a)) * std::fabs(d->log_hr) - d->z_alpha;
  d->power = NormalCdf(d->z_power);
  return d->power;
}

// 1 - (exp(-lF) - exp(-l(A+F))) / (lA), written with expm1 so that a short
// accrual does not lose digits; the A -> 0 limit is 1 - exp(-lF).
double ArmEventProbability(double hazard, double accrual, double follow_up) {
  if (accrual == 0.0) return -std::expm1(-hazard * follow_up);
  const double la = hazard * accrual;
  return 1.0 - std::exp(-hazard * follow_up) * (-std::expm1(-la)) / la;
}

// Solves f(x) = target for f increasing in x by bisection on [lo, hi]. When
// f(lo) already reaches the target, lo is moved towards `floor` (R's uniroot
// extendInt = "upX" does the same). Bisection to a relative 1e-13: each
// evaluation is cheap and nothing can throw or diverge.
core::Result<double> SolveIncreasing(const std::function<double(double)>& f, double target,
                                     double lo, double floor, double hi, std::string where) {
  double f_lo = f(lo);
  for (int i = 0; i < 60 && f_lo >= target; ++i) {
    lo = floor + (lo - floor) / 2.0;
    f_lo = f(lo);
  }
  if (!(f_lo < target)) {
    return core::FailedPrecondition(
        "the power asked for is reached below the smallest size searched (" +
            std::to_string(floor) + "); the effect is too large for this design",
        std::move(where));
  }
  const double f_hi = f(hi);
  if (std::isnan(f_hi) || f_hi < target) {
    return core::FailedPrecondition(
        "the power asked for is not reached even with 1e7 per group; the effect is too small",
        std::move(where));
  }
  for (int i = 0; i < 400 && hi - lo > 1e-13 * hi; ++i) {
    const double mid = lo + (hi - lo) / 2.0;
    const double f_mid = f(mid);
    if (std::isnan(f_mid)) {
      return core::FailedPrecondition("power could not be evaluated at n = " + std::to_string(mid),
                                      std::move(where));
    }
    (f_mid < target ? lo : hi) = mid;
  }
  return lo + (hi - lo) / 2.0;
}

core::Result<double> CheckedPower(double power, std::string_view fn) {
  if (!std::isfinite(power)) {
    return core::FailedPrecondition("power could not be evaluated (numerical failure)",
                                    Where(fn, "n"));
  }
  return std::clamp(power, 0.0, 1.0);
}

// --- Simon's two-stage search ------------------------------------------------

// Binomial tables for one response rate: pmf[m][k] and upper[m][k] = P(X >= k)
// for X ~ Bin(m, p), m = 0..max_n. Upper tails are summed from the top so that
// small tails keep their precision.
struct BinomialTable {
  std::vector<std::vector<double>> pmf;
  std::vector<std::vector<double>> at_least;

  BinomialTable(int max_n, double p) : pmf(max_n + 1), at_least(max_n + 1) {
    for (int m = 0; m <= max_n; ++m) {
      pmf[m].resize(m + 1);
      at_least[m].assign(m + 2, 0.0);
      for (int k = 0; k <= m; ++k) pmf[m][k] = BinomialPmf(k, m, p);
      for (int k = m; k >= 0; --k) at_least[m][k] = at_least[m][k + 1] + pmf[m][k];
    }
  }
  // P(X > k) for X ~ Bin(m, p), any integer k.
  double Greater(int m, int k) const {
    if (k < 0) return 1.0;
    if (k >= m) return 0.0;
    return at_least[m][k + 1];
  }
};

// P(X1 > r1 and X1 + X2 > r), X1 ~ Bin(n1, p), X2 ~ Bin(n - n1, p) (Simon 1989,
// the complement of his equation for the probability of rejecting the drug).
double DeclarePromising(const BinomialTable& t, int r1, int n1, int r, int n) {
  double sum = 0.0;
  for (int x1 = r1 + 1; x1 <= n1; ++x1) sum += t.pmf[n1][x1] * t.Greater(n - n1, r - x1);
  return sum;
}

// True when design a ranks before design b under the criterion.
bool Better(const SimonDesign& a, const SimonDesign& b, SimonCriterion criterion) {
  // EN values that differ only by rounding are ties.
  const double en_tol = 1e-12 * std::max(a.en0, b.en0);
  if (criterion == SimonCriterion::kOptimal) {
    if (std::fabs(a.en0 - b.en0) > en_tol) return a.en0 < b.en0;
    if (a.n != b.n) return a.n < b.n;
    return a.n1 < b.n1;
  }
  if (a.n != b.n) return a.n < b.n;
  if (std::fabs(a.en0 - b.en0) > en_tol) return a.en0 < b.en0;
  return a.n1 < b.n1;
}

// --- Working ------------------------------------------------------------------

using domain::AddStep;
using domain::Qty;

std::int64_t CeilToInt(double x) { return static_cast<std::int64_t>(std::ceil(x)); }

// --- ComputeSampleSize by test -------------------------------------------------

core::Result<codec::SampleSizeResult> TTwoSample(const codec::ComputeSampleSize& rq) {
  FEDRX_RETURN_IF_ERROR(CheckDeltaSd(rq.delta, rq.sd, kRequest));
  codec::SampleSizeResult out;
  codec::Working& w = out.working;
  w.method =
      "Two-sample t test, equal variances: power from the noncentral t distribution "
      "(R stats::power.t.test, type = \"two.sample\", strict = TRUE)";
  w.guidance = kGuidance;
  const std::string ref = "R stats::power.t.test (strict = TRUE); pwr::pwr.t.test";
  AddStep(w, "standardised effect", "d = delta / sd", {Qty("delta", rq.delta), Qty("sd", rq.sd)},
          Qty("d", rq.delta / rq.sd), "Cohen (1988), Statistical Power Analysis, ch. 2");
  double n = rq.n;
  if (rq.solve_for == "n") {
    FEDRX_ASSIGN_OR_RETURN(n, SolveNTTest(rq.delta, rq.sd, rq.alpha, rq.power, rq.sides));
    AddStep(w, "solve n", "n such that power(n) = target power (bisection on real n)",
            {Qty("target_power", rq.power), Qty("alpha", rq.alpha), Qty("sides", rq.sides)},
            Qty("n", n, "subjects per group"), "R uniroot on power.t.test's power");
  }
  const TDetail d = TTest(n, rq.delta, rq.sd, rq.alpha, rq.sides);
  AddStep(w, "degrees of freedom", "df = 2 (n - 1)", {Qty("n", n, "subjects per group")},
          Qty("df", d.df), ref);
  AddStep(w, "critical value", "t_crit = qt(1 - alpha / sides, df)",
          {Qty("alpha", rq.alpha), Qty("sides", rq.sides), Qty("df", d.df)},
          Qty("t_crit", d.t_crit), "Student t quantile");
  AddStep(w, "noncentrality", "ncp = sqrt(n / 2) * |delta| / sd",
          {Qty("n", n, "subjects per group"), Qty("delta", rq.delta), Qty("sd", rq.sd)},
          Qty("ncp", d.ncp), ref);
  AddStep(w, "power",
          rq.sides == 2 ? "power = P(T > t_crit) + P(T < -t_crit), T ~ t(df, ncp)"
                        : "power = P(T > t_crit), T ~ t(df, ncp)",
          {Qty("t_crit", d.t_crit), Qty("df", d.df), Qty("ncp", d.ncp)}, Qty("power", d.power),
          "noncentral t; " + ref);
  out.test = rq.test;
  out.n = n;
  out.n_per_group = CeilToInt(n);
  out.n_total = 2 * out.n_per_group;
  out.power = rq.solve_for == "n" ? rq.power : d.power;
  const TDetail at_ceil =
      TTest(static_cast<double>(out.n_per_group), rq.delta, rq.sd, rq.alpha, rq.sides);
  AddStep(w, "power at the rounded-up n", "power(ceil(n))",
          {Qty("n_per_group", static_cast<double>(out.n_per_group), "subjects per group")},
          Qty("power", at_ceil.power), ref);
  if (rq.sides == 1) {
    w.notes.push_back("One-sided test in the direction of delta's sign (|delta| is used).");
  }
  w.notes.push_back("n is per group; n_total = 2 * ceil(n).");
  return out;
}

core::Result<codec::SampleSizeResult> TwoProportions(const codec::ComputeSampleSize& rq) {
  FEDRX_RETURN_IF_ERROR(CheckProportions(rq.p1, rq.p2, kRequest, "p1", "p2"));
  codec::SampleSizeResult out;
  codec::Working& w = out.working;
  w.method =
      "Two proportions, normal approximation with the pooled variance under H0, no continuity "
      "correction (R stats::power.prop.test, strict = TRUE)";
  w.guidance = kGuidance;
  const std::string ref =
      "R stats::power.prop.test (strict = TRUE); Fleiss, Levin & Paik (2003), Statistical "
      "Methods for Rates and Proportions, ch. 4";
  double n = rq.n;
  if (rq.solve_for == "n") {
    FEDRX_ASSIGN_OR_RETURN(n, SolveNTwoProportions(rq.p1, rq.p2, rq.alpha, rq.power, rq.sides));
    AddStep(w, "solve n", "n such that power(n) = target power (bisection on real n)",
            {Qty("target_power", rq.power), Qty("alpha", rq.alpha), Qty("sides", rq.sides)},
            Qty("n", n, "subjects per group"), "R uniroot on power.prop.test's power");
  }
  const PropDetail d = Proportions(n, rq.p1, rq.p2, rq.alpha, rq.sides);
  AddStep(w, "critical value", "z = qnorm(1 - alpha / sides)",
          {Qty("alpha", rq.alpha), Qty("sides", rq.sides)}, Qty("z", d.z),
          "standard normal quantile");
  AddStep(w, "pooled proportion", "pbar = (p1 + p2) / 2", {Qty("p1", rq.p1), Qty("p2", rq.p2)},
          Qty("pbar", d.pbar), ref);
  AddStep(w, "sd under H0", "sqrt(2 pbar (1 - pbar))", {Qty("pbar", d.pbar)}, Qty("sd_h0", d.sd_h0),
          ref);
  AddStep(w, "sd under H1", "sqrt(p1 (1 - p1) + p2 (1 - p2))", {Qty("p1", rq.p1), Qty("p2", rq.p2)},
          Qty("sd_h1", d.sd_h1), ref);
  AddStep(w, "power",
          rq.sides == 2 ? "Phi((sqrt(n)|p1 - p2| - z sd_h0) / sd_h1) + "
                          "1 - Phi((sqrt(n)|p1 - p2| + z sd_h0) / sd_h1)"
                        : "Phi((sqrt(n)|p1 - p2| - z sd_h0) / sd_h1)",
          {Qty("n", n, "subjects per group"), Qty("z", d.z), Qty("sd_h0", d.sd_h0),
           Qty("sd_h1", d.sd_h1)},
          Qty("power", d.power), ref);
  out.test = rq.test;
  out.n = n;
  out.n_per_group = CeilToInt(n);
  out.n_total = 2 * out.n_per_group;
  out.power = rq.solve_for == "n" ? rq.power : d.power;
  AddStep(w, "power at the rounded-up n", "power(ceil(n))",
          {Qty("n_per_group", static_cast<double>(out.n_per_group), "subjects per group")},
          Qty("power",
              Proportions(static_cast<double>(out.n_per_group), rq.p1, rq.p2, rq.alpha, rq.sides)
                  .power),
          ref);
  w.notes.push_back(
      "Normal approximation without continuity correction; pwr::pwr.2p.test's arcsine "
      "(Cohen's h) formula is the separate test \"two_proportions_arcsine\".");
  w.notes.push_back("n is per group; n_total = 2 * ceil(n).");
  return out;
}

core::Result<codec::SampleSizeResult> TwoProportionsArcsine(const codec::ComputeSampleSize& rq) {
  FEDRX_RETURN_IF_ERROR(CheckProportions(rq.p1, rq.p2, kRequest, "p1", "p2"));
  codec::SampleSizeResult out;
  codec::Working& w = out.working;
  w.method =
      "Two proportions, arcsine transformation (Cohen's h), normal approximation "
      "(R pwr::pwr.2p.test)";
  w.guidance = kGuidance;
  const std::string ref = "Cohen (1988), Statistical Power Analysis, ch. 6; R pwr::pwr.2p.test";
  double n = rq.n;
  if (rq.solve_for == "n") {
    FEDRX_ASSIGN_OR_RETURN(n,
                           SolveNTwoProportionsArcsine(rq.p1, rq.p2, rq.alpha, rq.power, rq.sides));
    AddStep(w, "solve n", "n such that power(n) = target power (bisection on real n)",
            {Qty("target_power", rq.power), Qty("alpha", rq.alpha), Qty("sides", rq.sides)},
            Qty("n", n, "subjects per group"), "R uniroot on pwr.2p.test's power");
  }
  const ArcsineDetail d = Arcsine(n, rq.p1, rq.p2, rq.alpha, rq.sides);
  AddStep(w, "effect size", "h = |2 asin(sqrt(p1)) - 2 asin(sqrt(p2))|",
          {Qty("p1", rq.p1), Qty("p2", rq.p2)}, Qty("h", d.h), ref);
  AddStep(w, "critical value", "z = qnorm(1 - alpha / sides)",
          {Qty("alpha", rq.alpha), Qty("sides", rq.sides)}, Qty("z", d.z),
          "standard normal quantile");
  AddStep(w, "power",
          rq.sides == 2 ? "1 - Phi(z - h sqrt(n / 2)) + Phi(-z - h sqrt(n / 2))"
                        : "1 - Phi(z - h sqrt(n / 2))",
          {Qty("n", n, "subjects per group"), Qty("z", d.z), Qty("h", d.h)}, Qty("power", d.power),
          ref);
  out.test = rq.test;
  out.n = n;
  out.n_per_group = CeilToInt(n);
  out.n_total = 2 * out.n_per_group;
  out.power = rq.solve_for == "n" ? rq.power : d.power;
  AddStep(
      w, "power at the rounded-up n", "power(ceil(n))",
      {Qty("n_per_group", static_cast<double>(out.n_per_group), "subjects per group")},
      Qty("power",
          Arcsine(static_cast<double>(out.n_per_group), rq.p1, rq.p2, rq.alpha, rq.sides).power),
      ref);
  w.notes.push_back("n is per group; n_total = 2 * ceil(n).");
  return out;
}

core::Result<codec::SampleSizeResult> LogRank(const codec::ComputeSampleSize& rq) {
  FEDRX_RETURN_IF_ERROR(CheckHazard(rq.hazard_ratio, rq.allocation, kRequest));
  const bool events_only = rq.solve_for == "power" && rq.median_control == 0.0 &&
                           rq.accrual_time == 0.0 && rq.follow_up == 0.0;
  if (!events_only) {
    FEDRX_RETURN_IF_ERROR(
        CheckSurvival(rq.accrual_time, rq.follow_up, rq.median_control, kRequest));
  }
  codec::SampleSizeResult out;
  codec::Working& w = out.working;
  w.method =
      "Log-rank test: events by Schoenfeld's formula; subjects from the probability of an "
      "event under exponential survival with uniform accrual";
  w.guidance = kGuidance;
  const std::string schoenfeld =
      "Schoenfeld (1981) Biometrika 68:316-319; Schoenfeld (1983) Biometrics 39:499-503";
  const double a = rq.allocation;
  SchoenfeldDetail d;
  if (rq.solve_for == "n") {
    SchoenfeldEventsUnchecked(rq.hazard_ratio, a, rq.alpha, rq.power, rq.sides, &d);
    AddStep(w, "critical value", "z_alpha = qnorm(1 - alpha / sides)",
            {Qty("alpha", rq.alpha), Qty("sides", rq.sides)}, Qty("z_alpha", d.z_alpha),
            "standard normal quantile");
    AddStep(w, "power quantile", "z_power = qnorm(power)", {Qty("power", rq.power)},
            Qty("z_power", d.z_power), "standard normal quantile");
    AddStep(w, "events", "d = (z_alpha + z_power)^2 / (a (1 - a) log(HR)^2)",
            {Qty("z_alpha", d.z_alpha), Qty("z_power", d.z_power), Qty("allocation", a),
             Qty("log_hr", d.log_hr)},
            Qty("events", d.events), schoenfeld);
    out.power = rq.power;
  } else {
    LogRankPowerUnchecked(rq.n, rq.hazard_ratio, a, rq.alpha, rq.sides, &d);
    AddStep(w, "critical value", "z_alpha = qnorm(1 - alpha / sides)",
            {Qty("alpha", rq.alpha), Qty("sides", rq.sides)}, Qty("z_alpha", d.z_alpha),
            "standard normal quantile");
    AddStep(w, "power", "power = Phi(sqrt(d a (1 - a)) |log(HR)| - z_alpha)",
            {Qty("events", rq.n), Qty("allocation", a), Qty("log_hr", d.log_hr),
             Qty("z_alpha", d.z_alpha)},
            Qty("power", d.power), schoenfeld);
    out.power = d.power;
    w.notes.push_back("The opposite tail of a two-sided test is not added (Schoenfeld's formula).");
  }
  out.test = rq.test;
  out.events = d.events;
  w.notes.push_back(
      "Events to observe (rounded up): " + std::to_string(CeilToInt(d.events - 1e-9)) + ".");
  if (events_only) {
    w.notes.push_back(
        "median_control, accrual_time and follow_up are 0: subjects not computed (n = 0).");
    return out;
  }
  FEDRX_ASSIGN_OR_RETURN(
      const EventProbabilities p,
      EventProbability(rq.hazard_ratio, a, rq.accrual_time, rq.follow_up, rq.median_control));
  const std::string collett =
      "Collett, Modelling Survival Data in Medical Research (sample size chapter); exact "
      "integral over uniform accrual";
  AddStep(w, "control hazard", "lambda_c = ln 2 / median_control",
          {Qty("median_control", rq.median_control, "time")},
          Qty("lambda_c", p.hazard_control, "1/time"), "exponential survival");
  AddStep(w, "experimental hazard", "lambda_e = lambda_c * HR",
          {Qty("lambda_c", p.hazard_control, "1/time"), Qty("hazard_ratio", rq.hazard_ratio)},
          Qty("lambda_e", p.hazard_experimental, "1/time"), "proportional hazards");
  const char* arm_formula = rq.accrual_time > 0
                                ? "P = 1 - (exp(-lambda F) - exp(-lambda (A + F))) / (lambda A)"
                                : "P = 1 - exp(-lambda F) (no accrual period)";
  AddStep(w, "event probability, control", arm_formula,
          {Qty("lambda_c", p.hazard_control, "1/time"),
           Qty("accrual_time", rq.accrual_time, "time"), Qty("follow_up", rq.follow_up, "time")},
          Qty("p_control", p.control), collett);
  AddStep(w, "event probability, experimental", arm_formula,
          {Qty("lambda_e", p.hazard_experimental, "1/time"),
           Qty("accrual_time", rq.accrual_time, "time"), Qty("follow_up", rq.follow_up, "time")},
          Qty("p_experimental", p.experimental), collett);
  AddStep(
      w, "event probability", "P = a P_exp + (1 - a) P_ctl",
      {Qty("allocation", a), Qty("p_experimental", p.experimental), Qty("p_control", p.control)},
      Qty("event_probability", p.pooled), collett);
  out.event_probability = p.pooled;
  out.n = d.events / p.pooled;
  if (!(out.n <= kMaxN)) {
    return core::FailedPrecondition(
        "more than 1e9 subjects would be needed: the probability of an event (" +
            std::to_string(p.pooled) + ") is too small for the accrual and follow-up given",
        Where(kRequest, "follow_up"));
  }
  const std::int64_t n_exp = CeilToInt(a * out.n);
  const std::int64_t n_ctl = CeilToInt((1.0 - a) * out.n);
  out.n_total = n_exp + n_ctl;
  out.n_per_group = std::max(n_exp, n_ctl);
  AddStep(w, "subjects", "N = d / P", {Qty("events", d.events), Qty("event_probability", p.pooled)},
          Qty("n", out.n, "subjects"), collett);
  AddStep(w, "experimental arm", "ceil(a N)", {Qty("allocation", a), Qty("n", out.n, "subjects")},
          Qty("n_experimental", static_cast<double>(n_exp), "subjects"), "rounding up");
  AddStep(w, "control arm", "ceil((1 - a) N)", {Qty("allocation", a), Qty("n", out.n, "subjects")},
          Qty("n_control", static_cast<double>(n_ctl), "subjects"), "rounding up");
  w.notes.push_back(
      "Exponential survival in both arms, uniform accrual over accrual_time, analysis "
      "follow_up after the end of accrual, no loss to follow-up; n_per_group is the larger arm.");
  return out;
}

core::Result<codec::SampleSizeResult> SimonTwoStageAnswer(const codec::ComputeSampleSize& rq) {
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(rq.p0, kRequest, "p0"));
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(rq.p1, kRequest, "p1"));
  if (!(rq.p1 > rq.p0)) {
    return core::InvalidArgument("p1 (target response rate) must exceed p0", Where(kRequest, "p1"));
  }
  if (rq.solve_for != "n") {
    return core::InvalidArgument("simon_two_stage is solved for n only",
                                 Where(kRequest, "solve_for"));
  }
  SimonCriterion criterion;
  if (rq.simon_design == "optimal") {
    criterion = SimonCriterion::kOptimal;
  } else if (rq.simon_design == "minimax") {
    criterion = SimonCriterion::kMinimax;
  } else {
    return core::InvalidArgument(
        "simon_design must be \"optimal\" or \"minimax\", got \"" + rq.simon_design + "\"",
        Where(kRequest, "simon_design"));
  }
  FEDRX_ASSIGN_OR_RETURN(const SimonDesign s,
                         SimonTwoStage(rq.p0, rq.p1, rq.alpha, rq.power, criterion));
  codec::SampleSizeResult out;
  codec::Working& w = out.working;
  w.method = std::string("Simon's two-stage phase II design, ") + rq.simon_design +
             " (exact binomial search over n <= " + std::to_string(kSimonMaxN) + ")";
  w.guidance = kGuidance;
  const std::string ref =
      "Simon R (1989) Optimal two-stage designs for phase II clinical trials. Controlled "
      "Clinical Trials 10:1-10";
  AddStep(w, "search",
          criterion == SimonCriterion::kOptimal
              ? "minimise EN0 over (r1, n1, r, n) with alpha(p0) <= alpha, power(p1) >= power"
              : "minimise n, then EN0, over (r1, n1, r, n) with alpha(p0) <= alpha, "
                "power(p1) >= power",
          {Qty("p0", rq.p0), Qty("p1", rq.p1), Qty("alpha", rq.alpha), Qty("power", rq.power)},
          Qty("n", s.n, "subjects"), ref);
  AddStep(w, "early termination under p0", "PET0 = P(X1 <= r1), X1 ~ Bin(n1, p0)",
          {Qty("r1", s.r1), Qty("n1", s.n1, "subjects"), Qty("p0", rq.p0)}, Qty("pet0", s.pet0),
          ref);
  AddStep(w, "expected sample size under p0", "EN0 = n1 + (1 - PET0) (n - n1)",
          {Qty("n1", s.n1, "subjects"), Qty("n", s.n, "subjects"), Qty("pet0", s.pet0)},
          Qty("en0", s.en0, "subjects"), ref);
  AddStep(w, "type I error",
          "alpha = sum_{x1 > r1} P(X1 = x1) P(X2 > r - x1), X2 ~ Bin(n - n1, p0)",
          {Qty("r1", s.r1), Qty("n1", s.n1), Qty("r", s.r), Qty("n", s.n), Qty("p0", rq.p0)},
          Qty("achieved_alpha", s.alpha), ref);
  AddStep(w, "power", "same sum with p1",
          {Qty("r1", s.r1), Qty("n1", s.n1), Qty("r", s.r), Qty("n", s.n), Qty("p1", rq.p1)},
          Qty("power", s.power), ref);
  w.notes.push_back(
      "Stop after stage 1 if responses <= r1 of n1; reject the drug if responses "
      "<= r of n.");
  w.notes.push_back("alpha is one-sided (Simon 1989), whatever sides says.");
  out.test = rq.test;
  out.n = s.n;
  out.n_per_group = s.n;
  out.n_total = s.n;
  out.power = s.power;
  out.simon_r1 = s.r1;
  out.simon_n1 = s.n1;
  out.simon_r = s.r;
  out.simon_n = s.n;
  out.simon_en0 = s.en0;
  out.simon_pet0 = s.pet0;
  out.achieved_alpha = s.alpha;
  return out;
}

}  // namespace

// --- Typed functions ------------------------------------------------------------

core::Result<double> PowerTTest(double n, double delta, double sd, double alpha, int sides) {
  constexpr char kFn[] = "PowerTTest";
  FEDRX_RETURN_IF_ERROR(CheckN(n, kFn, "n"));
  FEDRX_RETURN_IF_ERROR(CheckDeltaSd(delta, sd, kFn));
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(alpha, kFn, "alpha"));
  FEDRX_RETURN_IF_ERROR(CheckSides(sides, kFn));
  return CheckedPower(TTest(n, delta, sd, alpha, sides).power, kFn);
}

core::Result<double> SolveNTTest(double delta, double sd, double alpha, double power, int sides) {
  constexpr char kFn[] = "SolveNTTest";
  FEDRX_RETURN_IF_ERROR(CheckDeltaSd(delta, sd, kFn));
  FEDRX_RETURN_IF_ERROR(CheckAlphaPower(alpha, power, kFn));
  FEDRX_RETURN_IF_ERROR(CheckSides(sides, kFn));
  // df = 2 (n - 1) must stay away from 0 for the t quantile: floor n at 1.01.
  return SolveIncreasing([&](double n) { return TTest(n, delta, sd, alpha, sides).power; }, power,
                         2.0, 1.01, kSolveUpper, Where(kFn, "power"));
}

core::Result<double> PowerTwoProportions(double n, double p1, double p2, double alpha, int sides) {
  constexpr char kFn[] = "PowerTwoProportions";
  FEDRX_RETURN_IF_ERROR(CheckN(n, kFn, "n"));
  FEDRX_RETURN_IF_ERROR(CheckProportions(p1, p2, kFn, "p1", "p2"));
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(alpha, kFn, "alpha"));
  FEDRX_RETURN_IF_ERROR(CheckSides(sides, kFn));
  return CheckedPower(Proportions(n, p1, p2, alpha, sides).power, kFn);
}

core::Result<double> SolveNTwoProportions(double p1, double p2, double alpha, double power,
                                          int sides) {
  constexpr char kFn[] = "SolveNTwoProportions";
  FEDRX_RETURN_IF_ERROR(CheckProportions(p1, p2, kFn, "p1", "p2"));
  FEDRX_RETURN_IF_ERROR(CheckAlphaPower(alpha, power, kFn));
  FEDRX_RETURN_IF_ERROR(CheckSides(sides, kFn));
  return SolveIncreasing([&](double n) { return Proportions(n, p1, p2, alpha, sides).power; },
                         power, 1.0, 1e-3, kSolveUpper, Where(kFn, "power"));
}

double CohenH(double p1, double p2) {
  return 2.0 * std::asin(std::sqrt(p1)) - 2.0 * std::asin(std::sqrt(p2));
}

core::Result<double> PowerTwoProportionsArcsine(double n, double p1, double p2, double alpha,
                                                int sides) {
  constexpr char kFn[] = "PowerTwoProportionsArcsine";
  FEDRX_RETURN_IF_ERROR(CheckN(n, kFn, "n"));
  FEDRX_RETURN_IF_ERROR(CheckProportions(p1, p2, kFn, "p1", "p2"));
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(alpha, kFn, "alpha"));
  FEDRX_RETURN_IF_ERROR(CheckSides(sides, kFn));
  return CheckedPower(Arcsine(n, p1, p2, alpha, sides).power, kFn);
}

core::Result<double> SolveNTwoProportionsArcsine(double p1, double p2, double alpha, double power,
                                                 int sides) {
  constexpr char kFn[] = "SolveNTwoProportionsArcsine";
  FEDRX_RETURN_IF_ERROR(CheckProportions(p1, p2, kFn, "p1", "p2"));
  FEDRX_RETURN_IF_ERROR(CheckAlphaPower(alpha, power, kFn));
  FEDRX_RETURN_IF_ERROR(CheckSides(sides, kFn));
  return SolveIncreasing([&](double n) { return Arcsine(n, p1, p2, alpha, sides).power; }, power,
                         2.0, 1e-3, kSolveUpper, Where(kFn, "power"));
}

core::Result<double> SchoenfeldEvents(double hazard_ratio, double allocation, double alpha,
                                      double power, int sides) {
  constexpr char kFn[] = "SchoenfeldEvents";
  FEDRX_RETURN_IF_ERROR(CheckHazard(hazard_ratio, allocation, kFn));
  FEDRX_RETURN_IF_ERROR(CheckAlphaPower(alpha, power, kFn));
  FEDRX_RETURN_IF_ERROR(CheckSides(sides, kFn));
  SchoenfeldDetail d;
  return SchoenfeldEventsUnchecked(hazard_ratio, allocation, alpha, power, sides, &d);
}

core::Result<double> LogRankPower(double events, double hazard_ratio, double allocation,
                                  double alpha, int sides) {
  constexpr char kFn[] = "LogRankPower";
  FEDRX_RETURN_IF_ERROR(CheckN(events, kFn, "events"));
  FEDRX_RETURN_IF_ERROR(CheckHazard(hazard_ratio, allocation, kFn));
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(alpha, kFn, "alpha"));
  FEDRX_RETURN_IF_ERROR(CheckSides(sides, kFn));
  SchoenfeldDetail d;
  return CheckedPower(LogRankPowerUnchecked(events, hazard_ratio, allocation, alpha, sides, &d),
                      kFn);
}

core::Result<EventProbabilities> EventProbability(double hazard_ratio, double allocation,
                                                  double accrual_time, double follow_up,
                                                  double median_control) {
  constexpr char kFn[] = "EventProbability";
  FEDRX_RETURN_IF_ERROR(CheckHazard(hazard_ratio, allocation, kFn));
  FEDRX_RETURN_IF_ERROR(CheckSurvival(accrual_time, follow_up, median_control, kFn));
  EventProbabilities p;
  p.hazard_control = std::numbers::ln2 / median_control;
  p.hazard_experimental = p.hazard_control * hazard_ratio;
  p.control = ArmEventProbability(p.hazard_control, accrual_time, follow_up);
  p.experimental = ArmEventProbability(p.hazard_experimental, accrual_time, follow_up);
  p.pooled = allocation * p.experimental + (1.0 - allocation) * p.control;
  if (!(p.pooled > 0.0) || !std::isfinite(p.pooled)) {
    return core::FailedPrecondition(
        "the probability of an event is 0 in both arms (hazards too small for the time given)",
        Where(kFn, "follow_up"));
  }
  return p;
}

core::Result<SimonDesign> SimonTwoStage(double p0, double p1, double alpha, double power,
                                        SimonCriterion criterion, int max_n) {
  constexpr char kFn[] = "SimonTwoStage";
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(p0, kFn, "p0"));
  FEDRX_RETURN_IF_ERROR(CheckOpenUnit(p1, kFn, "p1"));
  if (!(p1 > p0)) {
    return core::InvalidArgument("p1 must exceed p0", Where(kFn, "p1"));
  }
  FEDRX_RETURN_IF_ERROR(CheckAlphaPower(alpha, power, kFn));
  if (max_n < 2 || max_n > 200) {
    return core::InvalidArgument("max_n must be in [2, 200], got " + std::to_string(max_n),
                                 Where(kFn, "max_n"));
  }
  const BinomialTable h0(max_n, p0);
  const BinomialTable h1(max_n, p1);
  bool found = false;
  SimonDesign best;
  for (int n = 2; n <= max_n; ++n) {
    // Minimax: the first n with a feasible design is the answer (ties at that
    // n are settled by EN below).
    if (found && criterion == SimonCriterion::kMinimax) break;
    for (int n1 = 1; n1 < n; ++n1) {
      // EN0 >= n1: a larger first stage cannot beat the best EN found.
      if (found && criterion == SimonCriterion::kOptimal && n1 > best.en0) break;
      for (int r1 = 0; r1 < n1; ++r1) {
        // The type I error falls as r grows: find the smallest r that meets
        // alpha (the most powerful admissible r for this n1, r1, n).
        int lo = r1, hi = n - 1;
        if (DeclarePromising(h0, r1, n1, hi, n) > alpha) continue;
        while (lo < hi) {
          const int mid = lo + (hi - lo) / 2;
          if (DeclarePromising(h0, r1, n1, mid, n) <= alpha) {
            hi = mid;
          } else {
            lo = mid + 1;
          }
        }
        const double pw = DeclarePromising(h1, r1, n1, lo, n);
        if (pw < power) continue;
        SimonDesign c;
        c.r1 = r1;
        c.n1 = n1;
        c.r = lo;
        c.n = n;
        c.pet0 = 1.0 - h0.at_least[n1][r1 + 1];
        c.en0 = n1 + (1.0 - c.pet0) * (n - n1);
        c.alpha = DeclarePromising(h0, r1, n1, lo, n);
        c.power = pw;
        if (!found || Better(c, best, criterion)) {
          best = c;
          found = true;
        }
      }
    }
  }
  if (!found) {
    return core::FailedPrecondition("no two-stage design with n <= " + std::to_string(max_n) +
                                        " meets alpha and power; p1 - p0 is too small",
                                    Where(kFn, "p1"));
  }
  return best;
}

core::Result<codec::SampleSizeResult> ComputeSampleSize(const codec::ComputeSampleSize& rq) {
  const std::string& t = rq.test;
  if (t != "t_two_sample" && t != "two_proportions" && t != "two_proportions_arcsine" &&
      t != "log_rank" && t != "simon_two_stage") {
    return core::InvalidArgument(
        "unknown test \"" + t +
            "\" (expected t_two_sample, two_proportions, two_proportions_arcsine, log_rank, "
            "simon_two_stage)",
        Where(kRequest, "test"));
  }
  if (rq.solve_for != "n" && rq.solve_for != "power") {
    return core::InvalidArgument(
        "solve_for must be \"n\" or \"power\", got \"" + rq.solve_for + "\"",
        Where(kRequest, "solve_for"));
  }
  FEDRX_RETURN_IF_ERROR(CheckSides(rq.sides, kRequest));
  if (rq.solve_for == "n" || t == "simon_two_stage") {
    FEDRX_RETURN_IF_ERROR(CheckAlphaPower(rq.alpha, rq.power, kRequest));
  } else {
    FEDRX_RETURN_IF_ERROR(CheckOpenUnit(rq.alpha, kRequest, "alpha"));
    FEDRX_RETURN_IF_ERROR(CheckN(rq.n, kRequest, "n"));
  }
  core::Result<codec::SampleSizeResult> out = t == "t_two_sample"      ? TTwoSample(rq)
                                              : t == "two_proportions" ? TwoProportions(rq)
                                              : t == "two_proportions_arcsine"
                                                  ? TwoProportionsArcsine(rq)
                                              : t == "log_rank" ? LogRank(rq)
                                                                : SimonTwoStageAnswer(rq);
  if (out.ok() && !std::isfinite(out->power)) {
    return core::FailedPrecondition("power could not be evaluated (numerical failure)",
                                    Where(kRequest, "n"));
  }
  return out;
}

}  // namespace fedrx::trial
