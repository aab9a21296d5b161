// The Bayesian optimal interval (BOIN) design: escalation, de-escalation and
// elimination boundaries as the BOIN R package's get.boundary computes them,
// and the design's trial conduct and MTD selection as its get.oc and
// select.mtd do. Pure functions and an immutable design; thread-safe.
//
// References: S. Liu, Y. Yuan (2015), "Bayesian optimal interval designs for
// phase I clinical trials", JRSS C 64:507-523; Y. Yuan, K.R. Hess, S.G.
// Hilsenbeck, M.R. Gilbert (2016), "Bayesian optimal interval design: a simple
// and well-performing design for phase I oncology trials", Clin Cancer Res
// 22:4291-4301.
#pragma once

#include <vector>

#include "messages/codec/message.h"
#include "services/core/status.h"
#include "services/trial/escalation.h"

namespace fedrx::trial {

struct BoinBoundaries {
  double lambda_e = 0;
  double lambda_d = 0;
  // One row per n = 1..min(max_patients, stop_at_n), as get.boundary's full
  // table: escalate if DLTs <= escalate_at_most, de-escalate if >=
  // deescalate_at_least, eliminate if >= eliminate_at_least (-1: never).
  std::vector<codec::BoundaryRow> rows;
  // extrasafe: stop the trial when the lowest dose has n >= 3 patients and at
  // least stop_at_least[n - 1] DLTs (-1: never); one entry per row.
  std::vector<int> stop_at_least;
};

// lambda_e = log((1-phi1)/(1-target)) / log(target(1-phi1) / (phi1(1-target)))
// lambda_d = log((1-target)/(1-phi2)) / log(phi2(1-target) / (target(1-phi2)))
// and per n: escalate_at_most = floor(n lambda_e), deescalate_at_least =
// ceil(n lambda_d) capped at the elimination boundary, eliminate_at_least =
// the smallest y with P(p > target | Beta(1 + y, 1 + n - y)) > elimination_cutoff
// for n >= 3. phi1 / phi2 / stop_at_n of 0 mean 0.6 target / 1.4 target / 100.
// `extra_safe_offset` is the extrasafe margin (0.05 in the package).
// InvalidArgument (where "target", "phi1", ...) unless 0 < phi1 < target <
// phi2 < 1, 1 <= cohort_size, max_patients a positive multiple of cohort_size
// and at most kMaxEscalationPatients, elimination_cutoff in (0, 1).
core::Result<BoinBoundaries> BoinBoundaryTable(double target, int max_patients, int cohort_size,
                                               double phi1 = 0, double phi2 = 0,
                                               double elimination_cutoff = 0.95, int stop_at_n = 0,
                                               double extra_safe_offset = 0.05);

// P(p > target) for p ~ Beta(1 + y, 1 + n - y), i.e. under a uniform prior
// after y DLTs in n patients (= P(Binomial(n + 1, target) <= y)).
double BetaPosteriorAbove(double target, int y, int n);

// BOIN's MTD selection (select.mtd): doses eliminated by the data (the first
// dose with n >= 3 and P(p > target) > cutoff, and all above; with
// extra_safe also all doses when the lowest has n >= 3 and P > cutoff -
// offset) and untried doses are excluded; (y + 0.05)/(n + 0.1) on the rest is
// smoothed by weighted isotonic regression (weights 1/variance of that
// Beta(y + 0.05, n - y + 0.05) estimate) and the dose closest to target is
// selected. Ties: the package adds k * 1e-10 to the k-th admissible estimate
// and takes the first minimum, so among equal pooled estimates above the
// target the lowest dose wins, below the target the highest, and of two
// estimates equally far on either side the one below the target. Returns the
// 0-based dose or -1 (no MTD: lowest dose eliminated or nothing tried).
int BoinSelectMtd(const std::vector<int>& patients, const std::vector<int>& dlts, double target,
                  double elimination_cutoff, bool extra_safe, double extra_safe_offset = 0.05);

// The design for `ndose` levels (validated by MakeDoseFinder).
class BoinDesign final : public DoseFinder {
 public:
  BoinDesign(const codec::EscalationDesign& design, int ndose, BoinBoundaries boundaries);
  TrialRecord Run(const OutcomeSource& source, Rng& rng) const override;
  void Describe(codec::OperatingCharacteristics& oc) const override;

 private:
  codec::EscalationDesign design_;
  int ndose_;
  int stop_at_n_;
  BoinBoundaries b_;
};

}  // namespace fedrx::trial
