// Sample size and power for the designs a first clinical trial is planned with:
// two-sample t test, two proportions, log-rank (Schoenfeld), Simon's two-stage
// phase II design. Each answer carries its working. Pure functions; thread-safe.
//
// The fixed-sample formulas reproduce R's (stats 4.2) so that a statistician can
// check an answer with the tool they already trust:
//   t_two_sample          power.t.test(type = "two.sample", strict = TRUE)
//                         (equals pwr::pwr.t.test(d = delta / sd));
//   two_proportions       power.prop.test(strict = TRUE) (pooled variance under
//                         H0, no continuity correction);
//   two_proportions_arcsine  pwr::pwr.2p.test(h = ES.h(p1, p2)) (Cohen's h);
//   log_rank              Schoenfeld's events formula in closed form;
//   simon_two_stage       exact binomial search (Simon 1989).
// Sample sizes are solved on the real line, as R reports them; the integer
// design is the ceiling.
#pragma once

#include <cstdint>

#include "messages/codec/message.h"
#include "services/core/status.h"

namespace fedrx::trial {

// Answers request.test with request.solve_for ("n" or "power"); see
// codec::ComputeSampleSize. Bad input (unknown test, sides not 1/2, alpha or
// power or a proportion outside (0, 1), power <= alpha, delta == 0, sd <= 0,
// hazard ratio <= 0 or == 1, n <= 1 or > 1e9, NaN/inf) is InvalidArgument with `where`
// naming the field, e.g. "ComputeSampleSize.p1". A root that cannot be
// bracketed (an effect too small for 1e7 per group) or a Simon design not found
// within kSimonMaxN is FailedPrecondition. Does not block.
//
// Fields of the answer by test:
//   t_two_sample, two_proportions(_arcsine): n = per-group n (real),
//     n_per_group = ceil(n), n_total = 2 * n_per_group, power (the requested
//     power when solving n, as R reports it; the power at the rounded-up n is in
//     the working).
//   log_rank: events = Schoenfeld events (real; when solving power, the input n);
//     event_probability = a P_exp + (1 - a) P_ctl; n = events / event_probability
//     (total subjects, real); n_total = ceil(a n) + ceil((1 - a) n);
//     n_per_group = the larger arm. When solving power without survival inputs
//     (median_control, accrual_time and follow_up all 0), only power is given.
//   simon_two_stage: simon_* design, n = n_per_group = n_total = simon_n,
//     power and achieved_alpha exact for the design. alpha is one-sided whatever
//     `sides` says (noted in the working).
//   achieved_alpha is 0 (not applicable) for the fixed-sample tests.
core::Result<codec::SampleSizeResult> ComputeSampleSize(const codec::ComputeSampleSize& request);

// --- Typed building blocks. Each validates its arguments (InvalidArgument,
// `where` = "<Function>.<argument>") and returns the number R would.

// Two-sample t test, equal variances, n per group (real, > 1): noncentral t with
// df = 2(n - 1), ncp = sqrt(n / 2) |delta| / sd. sides 2: both tails (strict);
// sides 1: the upper tail in the direction of delta.
core::Result<double> PowerTTest(double n, double delta, double sd, double alpha, int sides);
// Per-group n (real) with PowerTTest(n) = power, to a relative 1e-12.
core::Result<double> SolveNTTest(double delta, double sd, double alpha, double power, int sides);

// Two proportions, n per group (real, > 0), power.prop.test's normal
// approximation: power = Phi((sqrt(n)|p1 - p2| - z sqrt(2 pbar qbar)) /
// sqrt(p1 q1 + p2 q2)) (+ the opposite tail when sides = 2), z = z_{1-alpha/sides}.
core::Result<double> PowerTwoProportions(double n, double p1, double p2, double alpha, int sides);
core::Result<double> SolveNTwoProportions(double p1, double p2, double alpha, double power,
                                          int sides);

// Cohen's effect size h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2)) (pwr::ES.h).
double CohenH(double p1, double p2);
// pwr::pwr.2p.test: power = P(Z > z - |h| sqrt(n/2)) (+ P(Z < -z - |h| sqrt(n/2))
// when sides = 2).
core::Result<double> PowerTwoProportionsArcsine(double n, double p1, double p2, double alpha,
                                                int sides);
core::Result<double> SolveNTwoProportionsArcsine(double p1, double p2, double alpha, double power,
                                                 int sides);

// Schoenfeld (1981, 1983): events d = (z_{1-alpha/sides} + z_power)^2 /
// (a (1 - a) log(HR)^2), a = fraction allocated to the experimental arm.
core::Result<double> SchoenfeldEvents(double hazard_ratio, double allocation, double alpha,
                                      double power, int sides);
// The inverse: power = Phi(sqrt(d a (1 - a)) |log HR| - z_{1-alpha/sides}) (the
// opposite tail, negligible at useful powers, is not added, as in the formula).
core::Result<double> LogRankPower(double events, double hazard_ratio, double allocation,
                                  double alpha, int sides);

struct EventProbabilities {
  double hazard_control = 0;       // ln 2 / median_control
  double hazard_experimental = 0;  // hazard_control * HR
  double control = 0;              // P(event) in the control arm
  double experimental = 0;         // P(event) in the experimental arm
  double pooled = 0;               // a * experimental + (1 - a) * control
};
// Exponential survival, uniform accrual over [0, A], analysis at A + F:
// P = 1 - (exp(-lambda F) - exp(-lambda (A + F))) / (lambda A); with A = 0,
// P = 1 - exp(-lambda F). median_control > 0, accrual_time >= 0,
// follow_up >= 0, accrual_time + follow_up > 0 (same time unit as the median).
core::Result<EventProbabilities> EventProbability(double hazard_ratio, double allocation,
                                                  double accrual_time, double follow_up,
                                                  double median_control);

enum class SimonCriterion {
  kOptimal,  // smallest EN under p0; ties: smaller n, then smaller n1
  kMinimax,  // smallest n; ties: smaller EN, then smaller n1
};

struct SimonDesign {
  std::int32_t r1 = 0;  // stop after stage 1 if responses <= r1 of n1
  std::int32_t n1 = 0;
  std::int32_t r = 0;  // reject the drug if responses <= r of n
  std::int32_t n = 0;
  double en0 = 0;    // expected sample size under p0
  double pet0 = 0;   // probability of early termination under p0
  double alpha = 0;  // P(declare promising | p0), exact
  double power = 0;  // P(declare promising | p1), exact
};

// The default (and the ComputeSampleSize) bound on the total sample size n.
inline constexpr int kSimonMaxN = 100;

// Exact search over 1 <= n1 < n <= max_n, 0 <= r1 < n1, r1 <= r < n, keeping
// for each (n, n1, r1) the smallest r with type I error <= alpha (the most
// powerful admissible r), then the feasible designs (power >= `power`) ranked
// by `criterion`. p0 < p1 in (0, 1); alpha, power in (0, 1);
// 2 <= max_n <= 200 (the search grows as max_n^4; n <= 100 takes ~0.1 s).
// FailedPrecondition when no design has n <= max_n.
core::Result<SimonDesign> SimonTwoStage(double p0, double p1, double alpha, double power,
                                        SimonCriterion criterion, int max_n = kSimonMaxN);

}  // namespace fedrx::trial
