// Published clinical phase-transition success rates (BIO, Informa Pharma
// Intelligence and QLS Advisors, "Clinical Development Success Rates and
// Contributing Factors 2011-2020", February 2021) by therapeutic area, looked
// up by name. Immutable tables and pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/status.h"

namespace fedrx::clinical {

// The four transitions the report measures, in development order.
enum class Transition { kPhase1To2 = 0, kPhase2To3 = 1, kPhase3ToFiling = 2, kFilingToApproval = 3 };
inline constexpr int kTransitionCount = 4;

// Stable lower-case name, e.g. "phase1_to_phase2".
const char* TransitionName(Transition t);

// One row of the table. Only figures confirmed from a source are present; a
// missing figure is std::nullopt, never a guess. Probabilities in (0,1).
struct BaseRates {
  std::string area;  // canonical name, e.g. "oncology"
  // Success probability of each transition, indexed by Transition.
  std::optional<double> transition[kTransitionCount];
  // Likelihood of approval from Phase I as the report states it (rounded).
  std::optional<double> loa_from_phase1;
  // Where each figure comes from (report, page or figure, or the secondary
  // source through which it was confirmed).
  std::string source;

  // True when all four transitions are known.
  bool HasAllTransitions() const;
  // Product of the four transitions; nullopt unless HasAllTransitions().
  std::optional<double> TransitionProduct() const;
};

// Every area in the table (canonical names), "all_indications" first.
std::vector<std::string> KnownAreas();

// The row for `area`: case-insensitive, spaces, '-' and '_' equivalent, with
// aliases ("overall", "all" -> all_indications; "haematology"; "cancer" ->
// oncology; ...). Unknown area: InvalidArgument naming it and listing the
// known areas, where = `where`.
core::Result<BaseRates> LookupBaseRates(std::string_view area,
                                        std::string_view where = "area");

}  // namespace fedrx::clinical
