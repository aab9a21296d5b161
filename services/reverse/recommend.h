// Reverse-translation recommendations: from a clinical safety signal (organ
// classes or adverse-event terms) to the preclinical assays most associated
// with it in the federation's summed counts, and the in-vivo SEND endpoints
// of the organ class. Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "services/core/status.h"
#include "services/reverse/association.h"
#include "services/reverse/organ_classes.h"

namespace fedrx::reverse {

// What a drug-development team saw in the clinic. Either list may be empty,
// not both. Organ classes are SIDER column names (case-insensitive); adverse
// events are terms of the synonym table or class names (OrganClassForTerm).
struct ClinicalSignal {
  std::vector<std::string> organ_classes;
  std::vector<std::string> adverse_events;
};

// One preclinical assay for one organ class, with the evidence behind it.
struct AssayRecommendation {
  std::string assay;
  PairCounts counts;
  // False: fewer than the minimum compounds in a margin (see Analyze); then
  // odds_ratio, p_value and q_value carry no information and `evidence` says
  // "insufficient evidence: ...".
  bool sufficient_evidence = false;
  OddsRatio odds_ratio;
  double p_value = 1;
  double q_value = 1;
  bool significant = false;  // sufficient_evidence && q_value < the threshold
  // The assay belongs to a family the organ-class table lists as bearing on
  // this class (mechanistic plausibility; does not change the ranking).
  bool in_table_family = false;
  std::string evidence;  // one line a reader can check, e.g. "OR 3.2 (95% CI 1.8-5.6), ..."
};

struct OrganClassRecommendation {
  std::string organ_class;                 // the table's name
  std::vector<std::string> matched_terms;  // the signal's inputs that led here
  // Ranked: significant pairs first, then by the lower bound of the OR's
  // confidence interval (descending), then by assay name; insufficient
  // evidence last (by assay name).
  std::vector<AssayRecommendation> assays;
  std::vector<SendEndpoint> in_vivo_endpoints;  // empty: see none_reason
  std::string none_reason;
  std::string rationale;
  std::string reference;
};

// One recommendation per distinct organ class of the signal, in the order the
// classes first appear (organ_classes before adverse_events). `associations`
// are Analyze's output on the summed counts; pairs whose clinical label is not
// an organ class of the signal are ignored. InvalidArgument naming the entry
// (e.g. "Recommend.adverse_events[2]") for an unknown organ class or term, an
// empty signal, or q_threshold outside (0, 1].
// One association as an assay recommendation: its statistics, significant
// when sufficient and q < q_threshold, the evidence line, and whether
// `organ_class` (may be null) lists the assay's family.
AssayRecommendation ToRecommendation(const Association& association, double q_threshold,
                                     const OrganClass* organ_class);
// The ranking Recommend uses (significant first, then the lower bound of the
// OR's interval descending, then assay name; insufficient evidence last).
void RankAssays(std::vector<AssayRecommendation>& assays);

core::Result<std::vector<OrganClassRecommendation>> Recommend(
    const ClinicalSignal& signal, const std::vector<Association>& associations,
    double q_threshold = 0.05);

}  // namespace fedrx::reverse
