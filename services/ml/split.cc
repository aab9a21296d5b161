#include "services/ml/split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <utility>

namespace fedrx::ml {
namespace {

using Group = std::vector<std::size_t>;

// (scaffold, SMILES if acyclic else "") -> rows, ascending. The map's order
// is the deterministic starting order both functions build on.
std::vector<Group> ScaffoldGroups(const Dataset& dataset, std::span<const std::size_t> rows) {
  std::map<std::pair<std::string, std::string>, Group> by_key;
  for (std::size_t r : rows) {
    // A row without a scaffold or SMILES entry (a malformed Dataset) is a
    // group of its own rather than an out-of-range read.
    const std::string scaffold = r < dataset.scaffolds.size() ? dataset.scaffolds[r] : "";
    std::string acyclic_key;
    if (scaffold.empty()) {
      acyclic_key = r < dataset.smiles.size() ? dataset.smiles[r] : "#row" + std::to_string(r);
    }
    by_key[{scaffold, std::move(acyclic_key)}].push_back(r);
  }
  std::vector<Group> groups;
  groups.reserve(by_key.size());
  for (auto& [key, group] : by_key) {
    std::sort(group.begin(), group.end());
    groups.push_back(std::move(group));
  }
  return groups;
}

// Uniform in [0, n) from a 64-bit engine, by rejecting the lowest 2^64 mod n
// outputs: exact, and unlike std::uniform_int_distribution the same everywhere.
std::uint64_t UniformBelow(std::mt19937_64& rng, std::uint64_t n) {
  const std::uint64_t reject_below = (0 - n) % n;
  std::uint64_t x;
  do {
    x = rng();
  } while (x < reject_below);
  return x % n;
}

}  // namespace

SplitIndices ScaffoldSplit(const Dataset& dataset, double train_frac, double valid_frac) {
  if (!(train_frac >= 0)) train_frac = 0;  // also catches NaN
  if (!(valid_frac >= 0)) valid_frac = 0;
  train_frac = std::min(train_frac, 1.0);
  valid_frac = std::min(valid_frac, 1.0 - train_frac);

  const std::size_t n = dataset.size();
  std::vector<std::size_t> all(n);
  for (std::size_t i = 0; i < n; ++i) all[i] = i;
  std::vector<Group> groups = ScaffoldGroups(dataset, all);
  // Largest first; the map order (by key) breaks ties.
  std::stable_sort(groups.begin(), groups.end(),
                   [](const Group& a, const Group& b) { return a.size() > b.size(); });

  const double train_cutoff = train_frac * static_cast<double>(n);
  const double valid_cutoff = (train_frac + valid_frac) * static_cast<double>(n);
  SplitIndices out;
  for (const Group& g : groups) {
    const auto size = static_cast<double>(g.size());
    std::vector<std::size_t>* dest = &out.test;
    if (static_cast<double>(out.train.size()) + size <= train_cutoff) {
      dest = &out.train;
    } else if (static_cast<double>(out.train.size() + out.valid.size()) + size <= valid_cutoff) {
      dest = &out.valid;
    }
    dest->insert(dest->end(), g.begin(), g.end());
  }
  for (auto* part : {&out.train, &out.valid, &out.test}) std::sort(part->begin(), part->end());
  return out;
}

core::Result<std::vector<std::vector<std::size_t>>> PartitionByScaffold(
    const Dataset& dataset, std::span<const std::size_t> rows, std::span<const double> shares,
    std::uint64_t seed) {
  if (shares.empty()) return core::InvalidArgument("no sites: shares is empty");
  double total_share = 0;
  for (std::size_t k = 0; k < shares.size(); ++k) {
    if (!std::isfinite(shares[k]) || shares[k] < 0) {
      return core::InvalidArgument("share " + std::to_string(k) + " is negative or not finite");
    }
    total_share += shares[k];
  }
  if (!(total_share > 0)) return core::InvalidArgument("shares sum to zero");
  std::vector<bool> seen(dataset.size(), false);
  for (std::size_t r : rows) {
    if (r >= dataset.size()) {
      return core::InvalidArgument("row " + std::to_string(r) + " is outside the dataset of " +
                                   std::to_string(dataset.size()) + " rows");
    }
    if (seen[r]) return core::InvalidArgument("row " + std::to_string(r) + " is listed twice");
    seen[r] = true;
  }

  std::vector<Group> groups = ScaffoldGroups(dataset, rows);
  std::mt19937_64 rng(seed);
  for (std::size_t i = groups.size(); i > 1; --i) {
    std::swap(groups[i - 1], groups[UniformBelow(rng, i)]);
  }
  // A big group dealt late could overshoot its site's share by its whole size,
  // so groups over 1% of the rows go first, largest first, each to a random
  // site that still has room for all of it (the site furthest below its target
  // if none has). The rest follow in shuffled order, each to the site furthest
  // below its target, which evens out the sizes.
  const std::size_t big = rows.size() / 100;
  const auto small_begin = std::stable_partition(groups.begin(), groups.end(),
                                                 [&](const Group& g) { return g.size() > big; });
  std::stable_sort(groups.begin(), small_begin,
                   [](const Group& a, const Group& b) { return a.size() > b.size(); });

  std::vector<double> target(shares.size());
  for (std::size_t k = 0; k < shares.size(); ++k) {
    target[k] = shares[k] / total_share * static_cast<double>(rows.size());
  }
  std::vector<std::vector<std::size_t>> sites(shares.size());
  auto gap = [&](std::size_t k) { return target[k] - static_cast<double>(sites[k].size()); };
  std::vector<std::size_t> roomy;
  for (auto it = groups.begin(); it != groups.end(); ++it) {
    const Group& g = *it;
    std::size_t dest = 0;
    for (std::size_t k = 1; k < sites.size(); ++k) {
      if (gap(k) > gap(dest)) dest = k;
    }
    if (it < small_begin) {
      roomy.clear();
      for (std::size_t k = 0; k < sites.size(); ++k) {
        if (gap(k) >= static_cast<double>(g.size())) roomy.push_back(k);
      }
      if (!roomy.empty()) dest = roomy[UniformBelow(rng, roomy.size())];
    }
    sites[dest].insert(sites[dest].end(), g.begin(), g.end());
  }
  for (auto& site : sites) std::sort(site.begin(), site.end());
  return sites;
}

}  // namespace fedrx::ml
