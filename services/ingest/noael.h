// A proposed NOAEL (no-observed-adverse-effect level) from a repeat-dose
// toxicity study in the common data model, by a stated screening rule, on the
// institution's own machine: only the species, route, the dose and the
// group-by-group evidence leave it, never an animal's data. The rule is a
// screen a study director confirms or overrides (by naming the NOAEL group),
// not a pathologist's judgement:
//   - main-study dose groups only (recovery and toxicokinetic sets are left
//     out), compared with the concurrent control of the main study;
//   - a group is adverse when, in either sex, its mean body-weight change over
//     the study is lower than the control's by at least `bw_gain_drop_pct`
//     percent of the control's (a drop of 10% or more in body-weight gain is
//     the conventional threshold for an adverse effect on growth), or when its
//     mean ALT (LB ALT, last value per animal) is at least `alt_fold` times the
//     control's;
//   - the NOAEL is the highest dose below the lowest adverse dose. With no
//     adverse group it is the highest dose tested; when the lowest dose is
//     already adverse there is none (an error says so).
// Pure function; thread-safe for concurrent readers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/ingest/cdm.h"

namespace fedrx::ingest::cdm {

struct NoaelRule {
  double bw_gain_drop_pct = 10;
  double alt_fold = 2;
  // When not empty: the study director's NOAEL group (SETCD/ARMCD); the
  // evidence is still computed and reported.
  std::string noael_set_code;
};

struct GroupEvidence {
  std::string set_code;
  std::string label;
  std::optional<double> dose;
  std::string dose_unit;
  bool control = false;
  // Body-weight change relative to the control's, in percent, per sex
  // ("F", "M"; "" when the study does not split by sex); negative = less gain.
  std::vector<std::pair<std::string, double>> bw_change_vs_control_pct;
  // Mean ALT over the control's mean (empty without ALT data).
  std::optional<double> alt_fold_vs_control;
  bool adverse = false;
  std::string reason;  // why adverse, or "no adverse effect by the rule"
};

struct NoaelProposal {
  std::string study_id;
  std::string species;  // CDM term, upper case (e.g. "RAT")
  std::string strain;
  std::string route;
  std::string duration;  // TS DOSDUR as given
  double noael = 0;
  std::string noael_unit;  // the dose unit (mg/kg or mg/kg/day)
  std::string noael_set_code;
  std::string noael_label;
  std::string rule;  // the rule in words, with its thresholds
  std::vector<GroupEvidence> groups;
};

// kFailedPrecondition when the study has no control group, no dosed main-study
// group with a dose in mg/kg, no body weights, or no dose below the lowest
// adverse one; kInvalidArgument for a NOAEL group that is not a dosed
// main-study group ("NoaelRule.noael_set_code").
core::Result<NoaelProposal> ProposeNoael(const StudyData& study, const NoaelRule& rule = {});

}  // namespace fedrx::ingest::cdm
