// Scaffold-aware splits of a Dataset: a deterministic train/valid/test split
// (whole Bemis-Murcko scaffolds in one part) and a seeded non-IID partition of
// rows across federated sites. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "services/core/status.h"
#include "services/ml/dataset.h"

namespace fedrx::ml {

// Row indices into a Dataset, each list ascending.
struct SplitIndices {
  std::vector<std::size_t> train, valid, test;
};

// Scaffold groups: rows sharing a non-empty Dataset::scaffolds entry form one
// group; an acyclic molecule (empty scaffold) groups only with rows of the same
// SMILES (its duplicates). Used by both functions below.

// The DeepChem scaffold split: groups ordered largest first (ties by scaffold,
// then SMILES, ascending), each group put in train unless that would take train
// past train_frac * n rows, else in valid unless that would take train + valid
// past (train_frac + valid_frac) * n, else in test. Whole groups stay in one
// part. Fractions are clamped to [0, 1] with train_frac + valid_frac <= 1.
SplitIndices ScaffoldSplit(const Dataset& dataset, double train_frac = 0.8,
                           double valid_frac = 0.1);

// Deals the scaffold groups of `rows` out to shares.size() sites, non-IID.
// Groups are sorted by key, then shuffled with std::mt19937_64(seed) by a
// Fisher-Yates written here (bounded draws by rejection, so the result is the
// same on every platform). Groups holding more than 1% of the rows are dealt
// first, largest first, each to a site drawn (from the same generator) among
// those with room left for the whole group, or else to the site furthest below
// its target; the rest follow in shuffled order, each to the site furthest below
// its target (ties to the lower index). On Tox21's scaffold-split train rows
// with shares {0.5, 0.3, 0.2}, sizes stay within 0.5 points of the shares.
// Every row lands in exactly one site; no scaffold is in two sites. Result[i]
// is site i's rows, ascending. Errors: kInvalidArgument if shares is empty,
// has a negative or non-finite entry or sums to zero, or a row is out of range
// or repeated.
core::Result<std::vector<std::vector<std::size_t>>> PartitionByScaffold(
    const Dataset& dataset, std::span<const std::size_t> rows, std::span<const double> shares,
    std::uint64_t seed);

}  // namespace fedrx::ml
