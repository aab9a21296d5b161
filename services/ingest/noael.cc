#include "services/ingest/noael.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "services/ingest/cdm_query.h"

namespace fedrx::ingest::cdm {
namespace {

bool MainStudy(const DoseGroup& g) { return !g.recovery && !g.toxicokinetic; }

bool DosePerKg(const DoseGroup& g) {
  return g.dose.has_value() && (g.dose_unit == "mg/kg" || g.dose_unit == "mg/kg/day");
}

std::string Percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", v);
  return buf;
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// Mean per (set, sex) of one statistic list.
std::map<std::pair<std::string, std::string>, double> Means(
    const std::vector<GroupStatistic>& stats) {
  std::map<std::pair<std::string, std::string>, double> out;
  for (const GroupStatistic& s : stats) {
    if (s.mean.has_value() && s.n > 0) out[{s.set_code, s.sex}] = *s.mean;
  }
  return out;
}

}  // namespace

core::Result<NoaelProposal> ProposeNoael(const StudyData& study, const NoaelRule& rule) {
  if (!(rule.bw_gain_drop_pct > 0 && rule.bw_gain_drop_pct < 100)) {
    return core::InvalidArgument("must be within (0, 100)", "NoaelRule.bw_gain_drop_pct");
  }
  if (!(rule.alt_fold > 1)) return core::InvalidArgument("must exceed 1", "NoaelRule.alt_fold");
  NoaelProposal p;
  p.study_id = study.study.id;
  p.species = study.study.species;
  p.strain = study.study.strain;
  p.route = study.study.route;
  p.duration = study.study.planned_duration;
  p.rule = "adverse: mean body-weight change lower than the control's by >= " +
           Number(rule.bw_gain_drop_pct) + "% (either sex), or mean ALT >= " +
           Number(rule.alt_fold) +
           "x the control's; NOAEL = highest main-study dose below the lowest adverse dose";

  const DoseGroup* control = nullptr;
  std::vector<const DoseGroup*> dosed;
  for (const DoseGroup& g : study.dose_groups) {
    if (!MainStudy(g)) continue;
    if (g.control) {
      if (control == nullptr) control = &g;
    } else if (DosePerKg(g)) {
      dosed.push_back(&g);
    }
  }
  if (control == nullptr) {
    return core::FailedPrecondition("study " + p.study_id + " has no main-study control group",
                                    "dose_groups");
  }
  if (dosed.empty()) {
    return core::FailedPrecondition(
        "study " + p.study_id + " has no dosed main-study group with a dose in mg/kg",
        "dose_groups");
  }
  std::stable_sort(dosed.begin(), dosed.end(),
                   [](const DoseGroup* a, const DoseGroup* b) { return *a->dose < *b->dose; });

  const auto bw = Means(BodyWeightChangeByDoseGroup(study, /*by_sex=*/true));
  FindingQuery alt_query;
  alt_query.domain = "LB";
  alt_query.test_code = "ALT";
  const auto alt = Means(FindingSummaryByDoseGroup(study, alt_query));
  std::vector<std::string> sexes;
  for (const auto& [key, mean] : bw) {
    if (key.first == control->set_code) sexes.push_back(key.second);
  }
  if (sexes.empty()) {
    return core::FailedPrecondition(
        "study " + p.study_id + " has no body-weight change for its control group " +
            control->set_code,
        "findings");
  }

  GroupEvidence control_evidence;
  control_evidence.set_code = control->set_code;
  control_evidence.label = control->label;
  control_evidence.dose = control->dose;
  control_evidence.dose_unit = control->dose_unit;
  control_evidence.control = true;
  control_evidence.reason = "concurrent control";
  p.groups.push_back(control_evidence);

  const DoseGroup* lowest_adverse = nullptr;
  for (const DoseGroup* g : dosed) {
    GroupEvidence e;
    e.set_code = g->set_code;
    e.label = g->label;
    e.dose = g->dose;
    e.dose_unit = g->dose_unit;
    std::vector<std::string> reasons;
    for (const std::string& sex : sexes) {
      const auto group_mean = bw.find({g->set_code, sex});
      const double control_mean = bw.at({control->set_code, sex});
      if (group_mean == bw.end() || control_mean == 0) continue;
      const double pct = 100.0 * (group_mean->second - control_mean) / std::fabs(control_mean);
      e.bw_change_vs_control_pct.emplace_back(sex, pct);
      if (pct <= -rule.bw_gain_drop_pct) {
        reasons.push_back("body-weight change " + Percent(pct) + " vs control" +
                          (sex.empty() ? "" : " (" + sex + ")"));
      }
    }
    const auto group_alt = alt.find({g->set_code, ""});
    const auto control_alt = alt.find({control->set_code, ""});
    if (group_alt != alt.end() && control_alt != alt.end() && control_alt->second > 0) {
      e.alt_fold_vs_control = group_alt->second / control_alt->second;
      if (*e.alt_fold_vs_control >= rule.alt_fold) {
        reasons.push_back("ALT " + Number(*e.alt_fold_vs_control) + "x control");
      }
    }
    e.adverse = !reasons.empty();
    if (e.adverse) {
      for (std::size_t i = 0; i < reasons.size(); ++i) e.reason += (i ? "; " : "") + reasons[i];
      if (lowest_adverse == nullptr) lowest_adverse = g;
    } else {
      e.reason = "no adverse effect by the rule";
    }
    p.groups.push_back(std::move(e));
  }

  const DoseGroup* noael = nullptr;
  if (!rule.noael_set_code.empty()) {
    for (const DoseGroup* g : dosed) {
      if (g->set_code == rule.noael_set_code) noael = g;
    }
    if (noael == nullptr) {
      return core::InvalidArgument("'" + rule.noael_set_code +
                                       "' is not a dosed main-study group of study " + p.study_id,
                                   "NoaelRule.noael_set_code");
    }
    p.rule += "; NOAEL group " + noael->set_code + " named by the study director";
  } else {
    for (const DoseGroup* g : dosed) {
      if (lowest_adverse != nullptr && *g->dose >= *lowest_adverse->dose) break;
      noael = g;
    }
    if (noael == nullptr) {
      return core::FailedPrecondition(
          "no NOAEL in study " + p.study_id + ": the lowest dose (" + Number(*dosed.front()->dose) +
              " " + dosed.front()->dose_unit + ", group " + dosed.front()->set_code +
              ") is already adverse by the rule; name a group or give the NOAEL by hand",
          "dose_groups");
    }
  }
  p.noael = *noael->dose;
  p.noael_unit = noael->dose_unit;
  p.noael_set_code = noael->set_code;
  p.noael_label = noael->label;
  return p;
}

}  // namespace fedrx::ingest::cdm
