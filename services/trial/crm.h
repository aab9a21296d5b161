// The continual reassessment method (CRM) with the one-parameter empiric
// ("power") model p_d = skeleton_d ^ exp(a), a ~ N(0, prior_sd^2), as dfcrm
// parameterises it, with overdose control and a safety stop. Pure functions
// and immutable designs; thread-safe.
//
// References: J. O'Quigley, M. Pepe, L. Fisher (1990), "Continual
// reassessment method: a practical design for phase 1 clinical trials in
// cancer", Biometrics 46:33-48; Y.K. Cheung (2011), "Dose Finding by the
// Continual Reassessment Method" (dfcrm's getprior: indifference intervals);
// J. Babb, A. Rogatko, S. Zacks (1998), escalation with overdose control.
#pragma once

#include <vector>

#include "messages/codec/message.h"
#include "services/core/status.h"
#include "services/trial/escalation.h"

namespace fedrx::trial {

// Stop without an MTD when the lowest dose has at least 3 patients and
// P(p_1 > target | data) exceeds this.
inline constexpr double kCrmSafetyStopProbability = 0.9;

// dfcrm::getprior(halfwidth, target, nu, nlevel) for the empiric model: the
// skeleton whose dose `nu` (1-based) has prior rate `target` and whose
// neighbouring doses are spaced so that each dose is the MTD over an
// interval of a of the same width: with s_nu = target,
//   going down  s_{k-1} = exp(ln(target - halfwidth) ln(s_k) / ln(target + halfwidth)),
//   going up    s_{k+1} = exp(ln(target + halfwidth) ln(s_k) / ln(target - halfwidth)),
// i.e. s_{k-1}^{exp(b)} = target - halfwidth where s_k^{exp(b)} = target +
// halfwidth (the point b where dose k stops and dose k-1 starts being
// closest to target within the indifference interval target ± halfwidth).
// The caller checks 0 < target - halfwidth, target + halfwidth < 1, 1 <= nu <= nlevel.
std::vector<double> DfcrmSkeleton(double halfwidth, double target, int nu, int nlevel);

// The posterior of a, given the patients and DLTs per dose, by composite Gauss-Legendre
// quadrature on a fixed grid over [-10 prior_sd, 10 prior_sd] whose panels
// end at the points where P(p_d > target) switches for each dose, so tail
// probabilities are integrals of a smooth integrand too. The panel width is
// at most 1.5 posterior standard deviations for up to `max_patients`
// patients (a Bernoulli outcome carries at most 0.65 units of Fisher
// information about a under this model), with 8 nodes per panel, so
// posterior means and tails are accurate to well below 1e-6 (checked
// against brute-force integration and R's integrate() in the tests).
// Node-wise model terms are computed once, so an update costs a few
// multiply-adds per node and dose, and one exp per node near the mode.
class CrmPosterior {
 public:
  CrmPosterior(std::vector<double> skeleton, double prior_sd, double target, int max_patients);

  struct Summary {
    // Posterior mean of p_d, per dose.
    std::vector<double> mean_tox;
    // P(p_d > target | data), per dose (non-decreasing in d).
    std::vector<double> p_above;
    // Posterior mean of a.
    double mean_a = 0;
  };
  void Update(const std::vector<int>& patients, const std::vector<int>& dlts, Summary& out) const;
  std::size_t nodes() const { return a_.size(); }

 private:
  int ndose_;
  std::vector<double> a_;                 // nodes
  std::vector<double> log_w_;             // log(quadrature weight * prior density)
  std::vector<double> log_p_;             // dose-major: log p_d at node j is [d * nodes + j]
  std::vector<double> log_1mp_;           // log(1 - p_d)
  std::vector<double> p_;                 // p_d
  std::vector<std::size_t> first_above_;  // per dose: nodes with a < c_d, i.e. p_d > target
  std::vector<int> tail_order_;           // doses by first_above_
};

// The design for `ndose` levels (validated by MakeDoseFinder). After each
// cohort: stop if the safety rule holds; otherwise the recommendation is the
// dose whose posterior mean DLT rate is closest to target (ties: the lower),
// at most one level above the highest dose tried (no skipping). Overdose
// control acts on escalation, as the message contract words it: the trial
// climbs from the current dose towards the recommendation only through doses
// with P(p_d > target | data) <= overdose_probability; de-escalating or
// staying is never blocked. The MTD is the recommendation after the last
// cohort among doses up to the highest tried (a dose never tried is not
// selected); overdose control governs who is dosed where, not the estimate.
class CrmDesign final : public DoseFinder {
 public:
  CrmDesign(const codec::EscalationDesign& design, int ndose, std::vector<double> skeleton,
            bool default_skeleton);
  TrialRecord Run(const OutcomeSource& source, Rng& rng) const override;
  void Describe(codec::OperatingCharacteristics& oc) const override;
  const CrmPosterior& posterior() const { return posterior_; }

  // The rules, exposed for tests (0-based doses): closest to target capped
  // at `cap`; and the next dose from `current` given the highest tried.
  int Recommend(const CrmPosterior::Summary& s, int cap) const;
  int NextDose(const CrmPosterior::Summary& s, int current, int highest) const;

 private:
  codec::EscalationDesign design_;
  int ndose_;
  std::vector<double> skeleton_;
  bool default_skeleton_;
  CrmPosterior posterior_;
};

}  // namespace fedrx::trial
