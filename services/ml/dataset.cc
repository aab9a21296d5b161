#include "services/ml/dataset.h"

namespace fedrx::ml {

void SparseRows::AddRow(std::span<const std::uint32_t> bits) {
  indices.insert(indices.end(), bits.begin(), bits.end());
  offsets.push_back(indices.size());
}

Dataset Dataset::Subset(std::span<const std::size_t> rows) const {
  Dataset out;
  out.tasks = tasks;
  out.x.dim = x.dim;
  const std::size_t t = tasks.size();
  out.smiles.reserve(rows.size());
  out.scaffolds.reserve(rows.size());
  out.y.reserve(rows.size() * t);
  for (std::size_t r : rows) {
    out.smiles.push_back(smiles[r]);
    out.scaffolds.push_back(scaffolds[r]);
    if (!split.empty()) out.split.push_back(split[r]);
    out.x.AddRow(x.row(r));
    out.y.insert(out.y.end(), y.begin() + static_cast<std::ptrdiff_t>(r * t),
                 y.begin() + static_cast<std::ptrdiff_t>((r + 1) * t));
  }
  return out;
}

Dataset Dataset::WithSplit(const std::string& tag) const {
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < split.size(); ++i) {
    if (split[i] == tag) rows.push_back(i);
  }
  return Subset(rows);
}

Dataset Dataset::WithTasks(const std::vector<std::string>& wanted) const {
  Dataset out;
  out.tasks = wanted;
  out.smiles = smiles;
  out.scaffolds = scaffolds;
  out.split = split;
  out.x = x;
  std::vector<std::ptrdiff_t> source(wanted.size(), -1);
  for (std::size_t j = 0; j < wanted.size(); ++j) {
    for (std::size_t k = 0; k < tasks.size(); ++k) {
      if (tasks[k] == wanted[j]) source[j] = static_cast<std::ptrdiff_t>(k);
    }
  }
  const std::size_t n = size();
  out.y.assign(n * wanted.size(), kMissing);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t j = 0; j < wanted.size(); ++j) {
      if (source[j] >= 0) {
        out.y[r * wanted.size() + j] = y[r * tasks.size() + static_cast<std::size_t>(source[j])];
      }
    }
  }
  return out;
}

std::size_t Dataset::CountKnownTasks(const std::vector<std::string>& wanted) const {
  std::size_t known = 0;
  for (const auto& w : wanted) {
    for (const auto& t : tasks) {
      if (t == w) {
        ++known;
        break;
      }
    }
  }
  return known;
}

}  // namespace fedrx::ml
