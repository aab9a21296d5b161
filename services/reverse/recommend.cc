#include "services/reverse/recommend.h"

#include <algorithm>
#include <cstdio>

namespace fedrx::reverse {
namespace {

std::string Describe(const AssayRecommendation& r) {
  const PairCounts& t = r.counts;
  const std::string cells = "a=" + std::to_string(t.a) + " b=" + std::to_string(t.b) +
                            " c=" + std::to_string(t.c) + " d=" + std::to_string(t.d);
  if (!r.sufficient_evidence) return r.evidence + " [" + cells + "]";
  char buf[256];
  std::snprintf(buf, sizeof buf, "OR %.3g (95%% CI %.3g-%.3g%s), Fisher p=%.3g, BH q=%.3g",
                r.odds_ratio.estimate, r.odds_ratio.ci_low, r.odds_ratio.ci_high,
                r.odds_ratio.corrected ? ", 0.5 added to each cell" : "", r.p_value, r.q_value);
  return std::string(buf) + " [" + cells + "]";
}

bool RanksBefore(const AssayRecommendation& x, const AssayRecommendation& y) {
  if (x.sufficient_evidence != y.sufficient_evidence) return x.sufficient_evidence;
  if (x.sufficient_evidence) {
    if (x.significant != y.significant) return x.significant;
    if (x.odds_ratio.ci_low != y.odds_ratio.ci_low)
      return x.odds_ratio.ci_low > y.odds_ratio.ci_low;
  }
  return x.assay < y.assay;
}

}  // namespace

AssayRecommendation ToRecommendation(const Association& assoc, double q_threshold,
                                     const OrganClass* row) {
  AssayRecommendation r;
  r.assay = assoc.pair.preclinical;
  r.counts = assoc.counts;
  r.sufficient_evidence = assoc.sufficient_evidence;
  r.in_table_family = row != nullptr && AssayBearsOn(*row, r.assay);
  if (assoc.sufficient_evidence) {
    r.odds_ratio = assoc.odds_ratio;
    r.p_value = assoc.p_value;
    r.q_value = assoc.q_value;
    r.significant = assoc.q_value < q_threshold;
  } else {
    r.evidence =
        assoc.insufficient_reason.empty() ? "insufficient evidence" : assoc.insufficient_reason;
  }
  r.evidence = Describe(r);
  return r;
}

void RankAssays(std::vector<AssayRecommendation>& assays) {
  std::stable_sort(assays.begin(), assays.end(), RanksBefore);
}

core::Result<std::vector<OrganClassRecommendation>> Recommend(
    const ClinicalSignal& signal, const std::vector<Association>& associations,
    double q_threshold) {
  if (!(q_threshold > 0 && q_threshold <= 1)) {
    return core::InvalidArgument("q threshold must be in (0, 1]", "Recommend.q_threshold");
  }
  if (signal.organ_classes.empty() && signal.adverse_events.empty()) {
    return core::InvalidArgument("the clinical signal names no organ class or adverse event",
                                 "Recommend.signal");
  }
  std::vector<OrganClassRecommendation> out;
  auto add = [&](const OrganClass* row, const std::string& term) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& r) { return r.organ_class == row->name; });
    if (it == out.end()) {
      OrganClassRecommendation rec;
      rec.organ_class = row->name;
      rec.in_vivo_endpoints = row->endpoints;
      rec.none_reason = row->none_reason;
      rec.rationale = row->rationale;
      rec.reference = row->reference;
      out.push_back(std::move(rec));
      it = out.end() - 1;
    }
    it->matched_terms.push_back(term);
  };
  for (std::size_t i = 0; i < signal.organ_classes.size(); ++i) {
    const OrganClass* row = FindOrganClass(signal.organ_classes[i]);
    if (row == nullptr) {
      return core::InvalidArgument("unknown organ class '" + signal.organ_classes[i] + "'",
                                   "Recommend.organ_classes[" + std::to_string(i) + "]");
    }
    add(row, signal.organ_classes[i]);
  }
  for (std::size_t i = 0; i < signal.adverse_events.size(); ++i) {
    const OrganClass* row = OrganClassForTerm(signal.adverse_events[i]);
    if (row == nullptr) {
      return core::InvalidArgument("unknown adverse-event term '" + signal.adverse_events[i] +
                                       "' (not an organ class name nor in the synonym table)",
                                   "Recommend.adverse_events[" + std::to_string(i) + "]");
    }
    add(row, signal.adverse_events[i]);
  }
  for (auto& rec : out) {
    const OrganClass* row = FindOrganClass(rec.organ_class);
    for (const Association& assoc : associations) {
      // Labels from the sites are the SIDER headers; compare as the table does.
      if (FindOrganClass(assoc.pair.clinical) != row) continue;
      rec.assays.push_back(ToRecommendation(assoc, q_threshold, row));
    }
    RankAssays(rec.assays);
  }
  return out;
}

}  // namespace fedrx::reverse
