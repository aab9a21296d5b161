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

}  // namespace fedrx::ml
