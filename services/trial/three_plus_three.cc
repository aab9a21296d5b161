#include "services/trial/three_plus_three.h"

namespace fedrx::trial {

TrialRecord ThreePlusThreeDesign::Run(const OutcomeSource& source, Rng& rng) const {
  TrialRecord r;
  r.patients.assign(ndose_, 0);
  r.dlts.assign(ndose_, 0);
  int d = design_.start_dose - 1;
  // The lowest dose known to exceed the MTD (ndose_ = none yet).
  int ceiling = ndose_;
  // Each pass treats one cohort of 3 at d; the rules then move d, or end the
  // trial. At most two cohorts per dose, so this loop is bounded by 2 ndose.
  for (;;) {
    r.dlts[d] += source.CountDlts(d, 3, rng);
    r.patients[d] += 3;
    const int n = r.patients[d], y = r.dlts[d];
    const bool too_toxic = y >= 2;
    if (!too_toxic) {
      if (n == 3 && y == 1) continue;  // 3 more at the same dose
      // 0/3 or <= 1/6: escalate if the next dose is open.
      if (d + 1 < ceiling) {
        ++d;
        continue;
      }
      // Top dose, or the next one exceeded: the MTD needs 6 here.
      if (n == 3) continue;
      r.mtd = d;
      return r;
    }
    ceiling = d;
    // Go down until a dose can be declared or needs more patients.
    if (d == 0) {
      r.mtd = -1;
      return r;
    }
    --d;
    if (r.patients[d] >= 6) {
      r.mtd = d;  // it had <= 1/6, otherwise it would be the ceiling
      return r;
    }
    // 3 patients (0/3: it was escalated from) or none: 3 more there. With
    // 3 patients and 0 DLTs the next pass sees n == 6.
  }
}

void ThreePlusThreeDesign::Describe(codec::OperatingCharacteristics& oc) const {
  oc.working.method =
      "3+3: cohorts of 3; 0/3 escalate, 1/3 add 3, <= 1/6 escalate, >= 2 DLTs de-escalate; MTD = "
      "highest dose with <= 1/6 DLTs among 6 patients";
  oc.working.guidance =
      "Storer BE (1989) Biometrics 45:925-937 (design A); Le Tourneau C, Lee JJ, Siu LL (2009) "
      "J Natl Cancer Inst 101:708-720";
  oc.working.notes.push_back(
      "at the top dose (or below a dose that exceeded the MTD) a dose with 0/3 is expanded to 6 "
      "and declared the MTD with <= 1/6; de-escalation into a dose with 3 patients treats 3 more "
      "there; >= 2 DLTs at the lowest dose stops the trial with no MTD");
  oc.working.notes.push_back(
      "cohort_size and max_patients are not used: the rules cap each dose at 6 patients");
}

}  // namespace fedrx::trial
