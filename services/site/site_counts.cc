// The site's side of a statistics study, and the SiteService's counting
// task (a statistics study's "training": site_service.h).
#include "services/site/site_counts.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <set>

#include "services/ml/chem.h"
#include "services/ml/dataset.h"

namespace fedrx::site {
namespace {

// The index of each of `wanted` in `held` (CheckHeldLabels ran first).
std::vector<std::size_t> Columns(const std::vector<std::string>& wanted,
                                 const std::vector<std::string>& held) {
  std::vector<std::size_t> out;
  for (const auto& w : wanted) {
    out.push_back(static_cast<std::size_t>(std::find(held.begin(), held.end(), w) - held.begin()));
  }
  return out;
}

// Folds one row's labels into a compound's, as ingest merges duplicates;
// `conflicted` remembers the columns that went missing for good.
void MergeRow(const ml::Dataset& d, std::size_t row, const std::vector<std::size_t>& columns,
              std::vector<std::optional<bool>>& into, std::set<std::size_t>& conflicted) {
  for (std::size_t k = 0; k < columns.size(); ++k) {
    const std::int8_t v = d.label(row, columns[k]);
    if (v == ml::kMissing || conflicted.count(k) != 0) continue;
    if (!into[k].has_value()) {
      into[k] = v == 1;
    } else if (*into[k] != (v == 1)) {
      into[k].reset();
      conflicted.insert(k);
    }
  }
}

bool AnyLabel(const std::vector<std::optional<bool>>& row) {
  return std::any_of(row.begin(), row.end(), [](const auto& v) { return v.has_value(); });
}

}  // namespace

core::Status CheckHeldLabels(const codec::StudySpec& spec, const std::vector<std::string>& held) {
  const auto check = [&](const std::vector<std::string>& labels, const char* field) {
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (std::find(held.begin(), held.end(), labels[i]) == held.end()) {
        return core::InvalidArgument(
            "this site holds no label '" + labels[i] + "' (its labels are its dataset's columns)",
            std::string("StudySpec.") + field + "[" + std::to_string(i) + "]");
      }
    }
    return core::Status::Ok();
  };
  FEDRX_RETURN_IF_ERROR(check(spec.statistic_rows, "statistic_rows"));
  return check(spec.tasks, "tasks");
}

core::Result<SiteLabelTables> BuildLabelTables(const codec::StudySpec& spec,
                                               const LocalData& data) {
  FEDRX_RETURN_IF_ERROR(CheckHeldLabels(spec, data.train.tasks));
  SiteLabelTables out;
  out.clinical.names = spec.statistic_rows;
  out.preclinical.names = spec.tasks;
  std::map<std::string, std::set<std::size_t>> clinical_conflicts, preclinical_conflicts;
  for (const ml::Dataset* d : {&data.train, &data.valid, &data.test}) {
    if (d->size() == 0) continue;
    if (d->tasks != data.train.tasks) {
      return core::Internal("the site's splits have different label columns", "LocalData");
    }
    const auto rows = Columns(spec.statistic_rows, d->tasks);
    const auto cols = Columns(spec.tasks, d->tasks);
    for (std::size_t r = 0; r < d->size(); ++r) {
      core::Result<std::string> key = ml::InChIKeyOfSmiles(d->smiles[r]);
      if (!key.ok()) {
        ++out.unkeyed;
        continue;
      }
      auto& c = out.clinical.by_inchikey[*key];
      auto& p = out.preclinical.by_inchikey[*key];
      if (c.empty()) c.resize(rows.size());
      if (p.empty()) p.resize(cols.size());
      MergeRow(*d, r, rows, c, clinical_conflicts[*key]);
      MergeRow(*d, r, cols, p, preclinical_conflicts[*key]);
    }
  }
  return out;
}

core::Result<SiteCounts> CountStudyPairs(const codec::StudySpec& spec, const LocalData& data) {
  FEDRX_ASSIGN_OR_RETURN(SiteLabelTables tables, BuildLabelTables(spec, data));
  SiteCounts out;
  out.unkeyed = tables.unkeyed;
  FEDRX_ASSIGN_OR_RETURN(out.counts,
                         reverse::CountPairs(reverse::AllPairs(spec.statistic_rows, spec.tasks),
                                             tables.clinical, tables.preclinical));
  for (const auto& [key, row] : tables.clinical.by_inchikey) {
    if (AnyLabel(row) && AnyLabel(tables.preclinical.by_inchikey.at(key))) ++out.compounds;
  }
  return out;
}

void SiteService::StartCounting(Task t) {
  const codec::StudySpec spec = specs_.at(t.task.study_id);
  if (spec.statistic != "pair_counts") {
    Complain("bad_task",
             "refused study " + spec.study_id + ": unknown statistic '" + spec.statistic + "'");
    return;
  }
  const std::size_t words = 4 * spec.statistic_rows.size() * spec.tasks.size();
  if (t.weights.size() != words) {
    Complain("bad_task", "study " + spec.study_id + " sent " + std::to_string(t.weights.size()) +
                             " words, its pairs need " + std::to_string(words));
    return;
  }
  if (core::Status s = CheckHeldLabels(spec, data_.train.tasks); !s.ok()) {
    Complain("missing_labels",
             "refused the statistics task of study " + spec.study_id + ": " + s.ToString());
    return;
  }
  std::cerr << "site " << options_.site_id << ": counting " << words / 4 << " label pair(s) of "
            << spec.study_id << "\n";
  const LocalData* data = &data_;
  training_ = std::async(std::launch::async, [spec, data, task = t.task]() -> core::Result<Update> {
    FEDRX_ASSIGN_OR_RETURN(SiteCounts counts, CountStudyPairs(spec, *data));
    if (counts.compounds >= (std::uint64_t{1} << 24)) {
      return core::InvalidArgument("more than 2^24 compounds to count", "site data");
    }
    const std::vector<std::uint64_t> flat = reverse::Flatten(counts.counts);
    Update u;
    u.study_id = task.study_id;
    u.round = task.round;
    u.base_version = task.model_version;
    u.samples = counts.compounds;
    u.weights = std::make_shared<const std::vector<float>>(flat.begin(), flat.end());
    // Masked as weights - global: the counts themselves.
    u.global = std::make_shared<const std::vector<float>>(flat.size(), 0.0f);
    if (counts.unkeyed > 0) {
      std::cerr << "site: " << counts.unkeyed << " row(s) without an InChIKey left out of the "
                << "counts of " << task.study_id << "\n";
    }
    return u;
  });
}

}  // namespace fedrx::site
