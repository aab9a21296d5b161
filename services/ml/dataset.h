// Dataset: molecules as sparse binary fingerprints with multi-task labels
// (missing labels allowed), the shape every fedrx trainer and evaluator takes.
// Value type; not shared across threads while being modified.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace fedrx::ml {

// Label value for "not measured": costs nothing in the loss, skipped in metrics.
inline constexpr std::int8_t kMissing = -1;

// Binary rows in compressed sparse row form: row i's set bits are
// indices[offsets[i] .. offsets[i+1]), ascending and unique, each < dim.
struct SparseRows {
  std::uint32_t dim = 0;
  std::vector<std::uint64_t> offsets{0};
  std::vector<std::uint32_t> indices;

  std::size_t rows() const { return offsets.size() - 1; }
  std::span<const std::uint32_t> row(std::size_t i) const {
    return {indices.data() + offsets[i], static_cast<std::size_t>(offsets[i + 1] - offsets[i])};
  }
  void AddRow(std::span<const std::uint32_t> bits);
};

struct Dataset {
  std::vector<std::string> tasks;
  // One entry per row: canonical SMILES, Bemis-Murcko scaffold (canonical
  // SMILES; empty for acyclic molecules), and an optional split tag
  // ("train", "valid", "test") taken from the input file.
  std::vector<std::string> smiles;
  std::vector<std::string> scaffolds;
  std::vector<std::string> split;
  SparseRows x;
  // Row-major rows() x tasks.size(): 0, 1 or kMissing.
  std::vector<std::int8_t> y;

  std::size_t size() const { return x.rows(); }
  std::size_t num_tasks() const { return tasks.size(); }
  std::int8_t label(std::size_t row, std::size_t task) const { return y[row * tasks.size() + task]; }

  // The rows at `rows`, in that order.
  Dataset Subset(std::span<const std::size_t> rows) const;
  // The rows whose split tag equals `tag`.
  Dataset WithSplit(const std::string& tag) const;
  // The same rows with label columns for `wanted` tasks, in that order; a task
  // this dataset does not have is all kMissing.
  Dataset WithTasks(const std::vector<std::string>& wanted) const;
  // How many of `wanted` this dataset has labels for.
  std::size_t CountKnownTasks(const std::vector<std::string>& wanted) const;
};

}  // namespace fedrx::ml
