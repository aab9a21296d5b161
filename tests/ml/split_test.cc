#include "services/ml/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "services/ml/csv_dataset.h"

namespace fedrx::ml {
namespace {

// Rows with the given scaffolds; acyclic rows (empty scaffold) get the SMILES
// given, others a SMILES made unique by the row number.
Dataset Synthetic(const std::vector<std::string>& scaffolds,
                  const std::vector<std::string>& acyclic_smiles = {}) {
  Dataset ds;
  ds.tasks = {"t"};
  std::size_t next_acyclic = 0;
  for (std::size_t i = 0; i < scaffolds.size(); ++i) {
    ds.scaffolds.push_back(scaffolds[i]);
    ds.smiles.push_back(scaffolds[i].empty() ? acyclic_smiles.at(next_acyclic++)
                                             : "mol" + std::to_string(i));
    ds.x.AddRow({});
    ds.y.push_back(0);
  }
  return ds;
}

std::string GroupKey(const Dataset& ds, std::size_t r) {
  return ds.scaffolds[r].empty() ? "acyclic:" + ds.smiles[r] : ds.scaffolds[r];
}

std::set<std::string> Keys(const Dataset& ds, const std::vector<std::size_t>& rows) {
  std::set<std::string> out;
  for (std::size_t r : rows) out.insert(GroupKey(ds, r));
  return out;
}

bool Disjoint(const std::set<std::string>& a, const std::set<std::string>& b) {
  return std::none_of(a.begin(), a.end(), [&](const std::string& k) { return b.count(k) > 0; });
}

const Dataset& Tox21() {
  static const Dataset* ds = [] {
    auto r = LoadCsvDataset(FEDRX_TOX21_CSV, {}, {}, nullptr);
    EXPECT_TRUE(r.ok()) << r.status();
    return new Dataset(r.ok() ? std::move(r).value() : Dataset{});
  }();
  return *ds;
}

TEST(ScaffoldSplitTest, FillsTrainThenValidThenTestLargestGroupFirst) {
  // Groups: a x4 (rows 0,3,5,8), b x2 (1,6), c x2 (2,9), acyclic X (4), Y (7).
  const Dataset ds = Synthetic({"a", "b", "c", "a", "", "a", "b", "", "a", "c"}, {"X", "Y"});
  // Cut-offs 6 and 8 rows. a -> train (4), b -> train (6), c would make train 8
  // -> valid (8), X would make train 7 and train+valid 9 -> test, Y -> test.
  const SplitIndices s = ScaffoldSplit(ds, 0.6, 0.2);
  EXPECT_EQ(s.train, (std::vector<std::size_t>{0, 1, 3, 5, 6, 8}));
  EXPECT_EQ(s.valid, (std::vector<std::size_t>{2, 9}));
  EXPECT_EQ(s.test, (std::vector<std::size_t>{4, 7}));
}

TEST(ScaffoldSplitTest, TiesGoByScaffoldString) {
  // Two groups of two: "b" sorts before "z" whatever the row order.
  const Dataset ds = Synthetic({"z", "b", "z", "b"});
  const SplitIndices s = ScaffoldSplit(ds, 0.5, 0.5);
  EXPECT_EQ(s.train, (std::vector<std::size_t>{1, 3}));
  EXPECT_EQ(s.valid, (std::vector<std::size_t>{0, 2}));
  EXPECT_TRUE(s.test.empty());
}

TEST(ScaffoldSplitTest, AcyclicMoleculesAreSeparateGroupsButDuplicatesStayTogether) {
  const Dataset ds = Synthetic({"", "", "", ""}, {"CCO", "CCN", "CCO", "CCC"});
  const SplitIndices s = ScaffoldSplit(ds, 0.5, 0.25);
  // CCO x2 first (largest), then CCC, CCN by SMILES.
  EXPECT_EQ(s.train, (std::vector<std::size_t>{0, 2}));
  EXPECT_EQ(s.valid, (std::vector<std::size_t>{3}));
  EXPECT_EQ(s.test, (std::vector<std::size_t>{1}));
}

TEST(ScaffoldSplitTest, FractionsAreClamped) {
  const Dataset ds = Synthetic({"a", "b", "c"});
  const SplitIndices all_train = ScaffoldSplit(ds, 1.5, 0.3);
  EXPECT_EQ(all_train.train.size(), 3u);
  EXPECT_TRUE(all_train.valid.empty() && all_train.test.empty());
  const SplitIndices all_test = ScaffoldSplit(ds, -1, std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(all_test.test.size(), 3u);
  EXPECT_TRUE(ScaffoldSplit(Dataset{}).train.empty());
}

TEST(ScaffoldSplitTest, Tox21IsScaffoldDisjointAndNear80_10_10) {
  const Dataset& ds = Tox21();
  ASSERT_EQ(ds.size(), 7831u);
  const SplitIndices s = ScaffoldSplit(ds);
  EXPECT_EQ(s.train.size(), 6264u);
  EXPECT_EQ(s.valid.size(), 783u);
  EXPECT_EQ(s.test.size(), 784u);
  std::vector<std::size_t> all;
  for (const auto* part : {&s.train, &s.valid, &s.test}) {
    EXPECT_TRUE(std::is_sorted(part->begin(), part->end()));
    all.insert(all.end(), part->begin(), part->end());
  }
  std::sort(all.begin(), all.end());
  std::vector<std::size_t> expected(ds.size());
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all, expected);  // every row exactly once
  const auto train = Keys(ds, s.train), valid = Keys(ds, s.valid), test = Keys(ds, s.test);
  EXPECT_TRUE(Disjoint(train, valid));
  EXPECT_TRUE(Disjoint(train, test));
  EXPECT_TRUE(Disjoint(valid, test));
  EXPECT_NEAR(static_cast<double>(s.train.size()) / ds.size(), 0.8, 0.01);
  EXPECT_NEAR(static_cast<double>(s.valid.size()) / ds.size(), 0.1, 0.01);
  // The biggest scaffold, benzene, is in train.
  EXPECT_EQ(train.count("c1ccccc1"), 1u);
  // Deterministic.
  const SplitIndices again = ScaffoldSplit(ds);
  EXPECT_EQ(again.train, s.train);
  EXPECT_EQ(again.test, s.test);
}

void ExpectPartitionOf(const Dataset& ds, std::vector<std::size_t> rows,
                       const std::vector<std::vector<std::size_t>>& sites) {
  std::vector<std::size_t> all;
  for (const auto& site : sites) {
    EXPECT_TRUE(std::is_sorted(site.begin(), site.end()));
    all.insert(all.end(), site.begin(), site.end());
  }
  std::sort(all.begin(), all.end());
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(all, rows);  // each given row in exactly one site, nothing else
  for (std::size_t i = 0; i < sites.size(); ++i) {
    for (std::size_t j = i + 1; j < sites.size(); ++j) {
      EXPECT_TRUE(Disjoint(Keys(ds, sites[i]), Keys(ds, sites[j]))) << i << " " << j;
    }
  }
}

TEST(PartitionByScaffoldTest, Tox21TrainRowsGoToThreeSitesNearTheirShares) {
  const Dataset& ds = Tox21();
  const SplitIndices split = ScaffoldSplit(ds);
  const std::vector<double> shares = {0.5, 0.3, 0.2};
  for (std::uint64_t seed : {1u, 42u, 2024u}) {
    auto sites = PartitionByScaffold(ds, split.train, shares, seed);
    ASSERT_TRUE(sites.ok()) << sites.status();
    ASSERT_EQ(sites->size(), 3u);
    ExpectPartitionOf(ds, split.train, *sites);
    for (std::size_t k = 0; k < 3; ++k) {
      const double got = static_cast<double>((*sites)[k].size()) / split.train.size();
      EXPECT_NEAR(got, shares[k], 0.01) << "seed " << seed << " site " << k;
    }
  }
}

TEST(PartitionByScaffoldTest, SameSeedSamePartitionOtherSeedDifferent) {
  const Dataset& ds = Tox21();
  const SplitIndices split = ScaffoldSplit(ds);
  const std::vector<double> shares = {0.5, 0.3, 0.2};
  auto a = PartitionByScaffold(ds, split.train, shares, 7);
  auto b = PartitionByScaffold(ds, split.train, shares, 7);
  auto c = PartitionByScaffold(ds, split.train, shares, 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
  // Not a near-copy either: many rows change site.
  std::vector<int> site_a(ds.size(), -1), site_c(ds.size(), -1);
  for (int k = 0; k < 3; ++k) {
    for (std::size_t r : (*a)[k]) site_a[r] = k;
    for (std::size_t r : (*c)[k]) site_c[r] = k;
  }
  std::size_t moved = 0;
  for (std::size_t r : split.train) moved += site_a[r] != site_c[r];
  EXPECT_GT(moved, split.train.size() / 5);
}

TEST(PartitionByScaffoldTest, BiggestScaffoldSiteDependsOnSeed) {
  const Dataset& ds = Tox21();
  const SplitIndices split = ScaffoldSplit(ds);
  const std::vector<double> shares = {0.5, 0.3, 0.2};
  std::set<std::size_t> benzene_sites;
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    auto sites = PartitionByScaffold(ds, split.train, shares, seed);
    ASSERT_TRUE(sites.ok());
    for (std::size_t k = 0; k < 3; ++k) {
      for (std::size_t r : (*sites)[k]) {
        if (ds.scaffolds[r] == "c1ccccc1") benzene_sites.insert(k);
      }
    }
  }
  // 1485 benzene rows fit in site 0 or 1 (targets 3132, 1879) but not site 2 (1253).
  EXPECT_EQ(benzene_sites, (std::set<std::size_t>{0, 1}));
}

TEST(PartitionByScaffoldTest, SyntheticPartitionKeepsGroupsWhole) {
  std::vector<std::string> scaffolds;
  for (int g = 0; g < 40; ++g) {
    for (int i = 0; i <= g % 5; ++i) scaffolds.push_back("s" + std::to_string(g));
  }
  std::vector<std::string> acyclic;
  for (int i = 0; i < 20; ++i) {
    scaffolds.push_back("");
    acyclic.push_back(i % 2 ? "CC" : "C" + std::to_string(i));
  }
  const Dataset ds = Synthetic(scaffolds, acyclic);
  std::vector<std::size_t> rows(ds.size());
  std::iota(rows.begin(), rows.end(), 0);
  const std::vector<double> shares = {2, 1, 1};  // need not sum to 1
  auto sites = PartitionByScaffold(ds, rows, shares, 99);
  ASSERT_TRUE(sites.ok()) << sites.status();
  ExpectPartitionOf(ds, rows, *sites);
  EXPECT_NEAR((*sites)[0].size(), ds.size() / 2.0, 5);
  EXPECT_NEAR((*sites)[1].size(), ds.size() / 4.0, 5);
}

TEST(PartitionByScaffoldTest, OnlyTheGivenRowsArePartitioned) {
  const Dataset ds = Synthetic({"a", "b", "a", "c", "b", "d"});
  const std::vector<std::size_t> rows = {5, 0, 2, 3};
  const std::vector<double> shares = {0.5, 0.5};
  auto sites = PartitionByScaffold(ds, rows, shares, 1);
  ASSERT_TRUE(sites.ok());
  ExpectPartitionOf(ds, rows, *sites);
}

TEST(PartitionByScaffoldTest, ZeroShareSiteGetsNothing) {
  const Dataset ds = Synthetic({"a", "b", "a", "c", "b", "d", "e", "f"});
  std::vector<std::size_t> rows(ds.size());
  std::iota(rows.begin(), rows.end(), 0);
  const std::vector<double> shares = {1, 0};
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    auto sites = PartitionByScaffold(ds, rows, shares, seed);
    ASSERT_TRUE(sites.ok());
    EXPECT_EQ((*sites)[0].size(), ds.size());
    EXPECT_TRUE((*sites)[1].empty());
  }
}

TEST(PartitionByScaffoldTest, InvalidSharesAndRowsAreRejected) {
  const Dataset ds = Synthetic({"a", "b"});
  const std::vector<std::size_t> rows = {0, 1};
  auto code = [&](std::vector<double> shares, std::vector<std::size_t> r) {
    return PartitionByScaffold(ds, r, shares, 1).status().code();
  };
  const auto kBad = core::StatusCode::kInvalidArgument;
  EXPECT_EQ(code({}, rows), kBad);
  EXPECT_EQ(code({0.5, -0.1}, rows), kBad);
  EXPECT_EQ(code({0, 0}, rows), kBad);
  EXPECT_EQ(code({std::nan(""), 1}, rows), kBad);
  EXPECT_EQ(code({std::numeric_limits<double>::infinity()}, rows), kBad);
  EXPECT_EQ(code({1}, {0, 2}), kBad);
  EXPECT_EQ(code({1}, {1, 1}), kBad);
  EXPECT_EQ(code({1}, {}), core::StatusCode::kOk);
}

}  // namespace
}  // namespace fedrx::ml
