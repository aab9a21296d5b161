// The traditional 3+3 dose-escalation design. Immutable; thread-safe.
#pragma once

#include "messages/codec/message.h"
#include "services/trial/escalation.h"

namespace fedrx::trial {

// The variant simulated (cohorts of 3; cohort_size and max_patients of the
// request are not used, the rules fix the trial size at <= 6 per dose):
//   at a dose with 3 patients: 0 DLTs -> escalate; 1 DLT -> 3 more at the
//     same dose; >= 2 DLTs -> the dose exceeds the MTD;
//   at a dose with 6 patients: <= 1 DLT -> escalate; >= 2 -> exceeds the MTD;
//   "escalate" at the top dose, or when the next dose already exceeded the
//     MTD, instead expands the current dose to 6 (if it has 3) and declares
//     it the MTD once it has <= 1/6 DLTs;
//   when a dose exceeds the MTD, go one level down: no lower dose -> stop
//     with no MTD; the lower dose has 6 patients -> it is the MTD; it has 3
//     (or none, when the trial started above it) -> treat 3 more there and
//     apply the same rules, never re-escalating into a dose that exceeded.
// So the MTD is the highest dose with <= 1/6 DLTs among 6 patients, below the
// lowest dose with >= 2 DLTs; every declared MTD had 6 patients treated.
class ThreePlusThreeDesign final : public DoseFinder {
 public:
  ThreePlusThreeDesign(const codec::EscalationDesign& design, int ndose)
      : design_(design), ndose_(ndose) {}
  TrialRecord Run(const OutcomeSource& source, Rng& rng) const override;
  void Describe(codec::OperatingCharacteristics& oc) const override;

 private:
  codec::EscalationDesign design_;
  int ndose_;
};

}  // namespace fedrx::trial
