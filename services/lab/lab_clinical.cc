// `clinical-prepare`: the clinical institutions' ClinTox shares, each
// compound also carrying the Tox21 labels of the same compound (matched by
// InChIKey) so that the reverse service can count clinical x preclinical
// pairs at the sites.
#include <algorithm>
#include <iomanip>
#include <map>

#include "services/lab/lab_common.h"
#include "services/ml/chem.h"

namespace fedrx::lab {
namespace {

constexpr char kCtTox[] = "CT_TOX";
constexpr char kApproved[] = "FDA_APPROVED";

std::size_t TaskIndex(const std::vector<std::string>& tasks, const std::string& name) {
  return static_cast<std::size_t>(std::find(tasks.begin(), tasks.end(), name) - tasks.begin());
}

// The labels of each Tox21 compound by InChIKey. Rows of one compound (Tox21
// holds a few under different salts or SMILES) are merged: equal labels
// stay, a label beside a missing one is kept, two different labels become
// missing (the assays disagree).
std::map<std::string, std::vector<std::int8_t>> LabelsByInChIKey(const ml::Dataset& d,
                                                                 std::size_t* unkeyed) {
  std::map<std::string, std::vector<std::int8_t>> out;
  std::map<std::string, std::vector<bool>> conflicted;
  for (std::size_t r = 0; r < d.size(); ++r) {
    auto key = ml::InChIKeyOfSmiles(d.smiles[r]);
    if (!key.ok()) {
      ++*unkeyed;
      continue;
    }
    auto [it, fresh] = out.try_emplace(*key, d.num_tasks(), ml::kMissing);
    auto& bad = conflicted.try_emplace(*key, d.num_tasks(), false).first->second;
    for (std::size_t t = 0; t < d.num_tasks(); ++t) {
      const std::int8_t y = d.label(r, t);
      if (y == ml::kMissing || bad[t]) continue;
      if (it->second[t] == ml::kMissing) {
        it->second[t] = y;
      } else if (it->second[t] != y) {
        it->second[t] = ml::kMissing;
        bad[t] = true;
      }
    }
    (void)fresh;
  }
  return out;
}

}  // namespace

core::Status ClinicalPrepareCommand(const Flags& f, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string clintox_path, Need(f, "clintox"));
  FEDRX_ASSIGN_OR_RETURN(std::string tox21_path, Need(f, "tox21"));
  FEDRX_ASSIGN_OR_RETURN(std::string dir, Need(f, "out"));
  FEDRX_ASSIGN_OR_RETURN(SiteShares shares, ParseSiteShares(f));
  // Only SMILES, scaffolds and labels are written; small fingerprints load faster.
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset clintox, Load(clintox_path, 2, 64, out));
  FEDRX_ASSIGN_OR_RETURN(ml::Dataset tox21, Load(tox21_path, 2, 64, out));
  for (const char* t : {kCtTox, kApproved}) {
    if (TaskIndex(clintox.tasks, t) == clintox.tasks.size()) {
      return core::InvalidArgument(std::string("no task column '") + t + "'", clintox_path);
    }
  }
  for (const auto& t : tox21.tasks) {
    if (t == kCtTox || t == kApproved) {
      return core::InvalidArgument("Tox21 file has a ClinTox column '" + t + "'", tox21_path);
    }
  }
  std::size_t tox21_unkeyed = 0, clintox_unkeyed = 0;
  const auto tox21_labels = LabelsByInChIKey(tox21, &tox21_unkeyed);

  // ClinTox's two tasks first (the study's), then Tox21's twelve.
  std::vector<std::string> tasks = {kCtTox, kApproved};
  tasks.insert(tasks.end(), tox21.tasks.begin(), tox21.tasks.end());
  ml::Dataset all = clintox.WithTasks(tasks);
  std::size_t matched = 0;
  std::vector<std::size_t> per_task(tox21.num_tasks(), 0);
  for (std::size_t r = 0; r < all.size(); ++r) {
    auto key = ml::InChIKeyOfSmiles(all.smiles[r]);
    if (!key.ok()) {
      ++clintox_unkeyed;
      continue;
    }
    const auto it = tox21_labels.find(*key);
    if (it == tox21_labels.end()) continue;
    ++matched;
    for (std::size_t t = 0; t < tox21.num_tasks(); ++t) {
      all.y[r * tasks.size() + 2 + t] = it->second[t];
      if (it->second[t] != ml::kMissing) ++per_task[t];
    }
  }
  out << "ClinTox x Tox21 by InChIKey: " << matched << " of " << all.size()
      << " ClinTox compounds measured in Tox21 (" << tox21_labels.size()
      << " distinct Tox21 compounds";
  if (tox21_unkeyed + clintox_unkeyed > 0) {
    out << "; no InChIKey for " << tox21_unkeyed << " Tox21 and " << clintox_unkeyed
        << " ClinTox rows";
  }
  out << ")\n  labelled per Tox21 assay:";
  for (std::size_t t = 0; t < tox21.num_tasks(); ++t) {
    out << (t % 6 == 0 ? "\n    " : "  ") << tox21.tasks[t] << " " << per_task[t];
  }
  out << "\n";
  return WriteSiteShares(std::move(all), shares, dir, out);
}

}  // namespace fedrx::lab
