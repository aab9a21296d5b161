#include "services/ingest/cdm_query.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

namespace fedrx::ingest::cdm {
namespace {

// A finding's position in time; a finding without any day sorts first.
double DayOf(const Finding& f) {
  if (f.study_day) return *f.study_day;
  if (f.visit_day) return *f.visit_day;
  return -std::numeric_limits<double>::infinity();
}

struct Value {
  double value;
  std::string unit;
};

// Collects per-subject values into group statistics.
class Accumulator {
 public:
  Accumulator(const StudyData& study, bool by_sex) : study_(study), by_sex_(by_sex) {}

  void Add(const Subject& s, Value v) { per_key_[Key(s)].push_back(std::move(v)); }
  void Exclude(const Subject& s) { ++excluded_[Key(s)]; }

  std::vector<GroupStatistic> Finish() const {
    std::vector<GroupStatistic> out;
    for (const DoseGroup& g : study_.dose_groups) {
      std::vector<std::string> sexes;
      for (const Subject& s : study_.subjects) {
        if (s.set_code != g.set_code) continue;
        const std::string sex = by_sex_ ? s.sex : std::string();
        if (std::find(sexes.begin(), sexes.end(), sex) == sexes.end()) sexes.push_back(sex);
      }
      std::sort(sexes.begin(), sexes.end());
      for (const std::string& sex : sexes) out.push_back(Stat(g, sex));
    }
    return out;
  }

 private:
  using GroupKey = std::pair<std::string, std::string>;
  GroupKey Key(const Subject& s) const { return {s.set_code, by_sex_ ? s.sex : std::string()}; }

  GroupStatistic Stat(const DoseGroup& g, const std::string& sex) const {
    GroupStatistic st;
    st.set_code = g.set_code;
    st.label = g.label;
    st.dose = g.dose;
    st.dose_unit = g.dose_unit;
    st.control = g.control;
    st.sex = sex;
    const GroupKey key{g.set_code, sex};
    if (const auto e = excluded_.find(key); e != excluded_.end()) st.excluded = e->second;
    const auto it = per_key_.find(key);
    if (it == per_key_.end()) return st;
    // The most common unit wins; values in another unit are excluded, not mixed.
    std::map<std::string, std::size_t> counts;
    for (const Value& v : it->second) ++counts[v.unit];
    std::string unit;
    std::size_t best = 0;
    for (const auto& [u, c] : counts) {
      if (c > best) {
        unit = u;
        best = c;
      }
    }
    st.unit = unit;
    double sum = 0;
    for (const Value& v : it->second) {
      if (v.unit == unit) {
        sum += v.value;
        ++st.n;
      } else {
        ++st.excluded;
      }
    }
    if (st.n == 0) return st;
    const double mean = sum / static_cast<double>(st.n);
    st.mean = mean;
    if (st.n >= 2) {
      double ss = 0;
      for (const Value& v : it->second) {
        if (v.unit == unit) ss += (v.value - mean) * (v.value - mean);
      }
      st.sd = std::sqrt(ss / static_cast<double>(st.n - 1));
    }
    return st;
  }

  const StudyData& study_;
  bool by_sex_;
  std::map<GroupKey, std::vector<Value>> per_key_;
  std::map<GroupKey, std::size_t> excluded_;
};

// Findings matching `pred`, per subject, in time order (stable for equal days).
template <typename Pred>
std::unordered_map<std::string, std::vector<const Finding*>> BySubject(const StudyData& study,
                                                                       Pred pred) {
  std::unordered_map<std::string, std::vector<const Finding*>> out;
  for (const Finding& f : study.findings) {
    if (pred(f)) out[f.usubjid].push_back(&f);
  }
  for (auto& [id, list] : out) {
    std::stable_sort(list.begin(), list.end(),
                     [](const Finding* a, const Finding* b) { return DayOf(*a) < DayOf(*b); });
  }
  return out;
}

}  // namespace

std::vector<GroupStatistic> BodyWeightChangeByDoseGroup(const StudyData& study, bool by_sex) {
  const auto weights = BySubject(study, [](const Finding& f) {
    return IsBodyWeight(f) && f.value.has_value() && (f.study_day || f.visit_day);
  });
  Accumulator acc(study, by_sex);
  for (const Subject& s : study.subjects) {
    const auto it = weights.find(s.usubjid);
    if (it == weights.end()) continue;
    const auto& list = it->second;
    if (list.size() < 2 || !list.front()->unit_normalised || !list.back()->unit_normalised ||
        list.front()->unit != "g" || list.back()->unit != "g") {
      acc.Exclude(s);
      continue;
    }
    acc.Add(s, {*list.back()->value - *list.front()->value, "g"});
  }
  return acc.Finish();
}

std::vector<GroupStatistic> FindingSummaryByDoseGroup(const StudyData& study,
                                                      const FindingQuery& query) {
  const auto values = BySubject(study, [&](const Finding& f) {
    return f.domain == query.domain && f.test_code == query.test_code && f.value.has_value() &&
           (query.specimen.empty() || f.specimen == query.specimen) &&
           (!query.study_day || (f.study_day && *f.study_day == *query.study_day));
  });
  Accumulator acc(study, query.by_sex);
  for (const Subject& s : study.subjects) {
    const auto it = values.find(s.usubjid);
    if (it == values.end()) continue;
    const Finding& last = *it->second.back();
    acc.Add(s, {*last.value, last.unit});
  }
  return acc.Finish();
}

std::vector<GroupStatistic> FindingSummaryByDoseGroup(const StudyData& study,
                                                      std::string_view domain,
                                                      std::string_view test_code) {
  FindingQuery q;
  q.domain = std::string(domain);
  q.test_code = std::string(test_code);
  return FindingSummaryByDoseGroup(study, q);
}

}  // namespace fedrx::ingest::cdm
