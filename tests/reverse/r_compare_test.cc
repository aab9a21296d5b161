// NEEDS R: runs Rscript (a declared dependency, deploy/install-deps.sh) as a
// child process. Fisher's exact two-sided p-value must equal R's
// fisher.test(...)$p.value, and Benjamini-Hochberg q-values R's
// p.adjust(method = "BH"), to 1e-9 relative, over a grid of 2x2 tables with
// zero cells, small and large counts. Without Rscript the test fails.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "services/reverse/association.h"
#include "tests/support/rscript.h"

namespace fedrx::reverse {
namespace {

std::vector<PairCounts> Grid() {
  std::vector<PairCounts> tables;
  const std::uint64_t small[] = {0, 1, 2, 5, 17};
  for (auto a : small)
    for (auto b : small)
      for (auto c : small)
        for (auto d : small)
          if (a + b + c + d > 0) tables.push_back({a, b, c, d});
  // Larger and unbalanced tables, incl. very small p-values and the sizes of
  // pooled SIDER x Tox21 counts.
  const std::vector<PairCounts> large = {
      {120, 340, 56, 900}, {1200, 3400, 560, 9000}, {50000, 49000, 51000, 50500},
      {300, 2, 4, 280},    {0, 700, 650, 3},        {25, 1402, 3, 0},
      {7, 0, 0, 1500},     {431, 569, 398, 602},    {1, 999, 999, 1},
      {60, 60, 60, 60}};
  tables.insert(tables.end(), large.begin(), large.end());
  return tables;
}

double RelDiff(double x, double r) {
  if (x == r) return 0;
  return std::abs(x - r) / std::max(std::abs(r), 1e-300);
}

TEST(RCompareTest, FisherAndBenjaminiHochbergMatchR) {
  const auto tables = Grid();
  std::ostringstream script;
  script << "out <- commandArgs(trailingOnly = TRUE)[1]\n"
            "t <- matrix(c(";
  for (std::size_t i = 0; i < tables.size(); ++i) {
    const auto& t = tables[i];
    script << (i ? "," : "") << t.a << "," << t.b << "," << t.c << "," << t.d;
  }
  // Each table as R's matrix(c(a, c, b, d), 2): rows clinical +/-, columns
  // preclinical +/-.
  script
      << "), ncol = 4, byrow = TRUE)\n"
         "p <- apply(t, 1, function(r) fisher.test(matrix(c(r[1], r[3], r[2], r[4]), 2))$p.value)\n"
         "q <- p.adjust(p, method = 'BH')\n"
         "bh <- c(0.5, 0.03, 0.01, 0.02, 0.02, 0, 1, 0.049, 1e-12, 0.7)\n"
         "qb <- p.adjust(bh, method = 'BH')\n"
         "lines <- c(sprintf('p%d,%.17g', seq_along(p) - 1, p),\n"
         "           sprintf('q%d,%.17g', seq_along(q) - 1, q),\n"
         "           sprintf('b%d,%.17g', seq_along(qb) - 1, qb))\n"
         "writeLines(lines, out)\n";
  const auto r = testing::RunRscriptForValues(script.str(), std::chrono::seconds(120));
  ASSERT_TRUE(r.error.empty()) << r.error;

  std::vector<double> p;
  double worst = 0;
  for (std::size_t i = 0; i < tables.size(); ++i) {
    const auto& t = tables[i];
    auto mine = FisherExactTwoSided(t);
    ASSERT_TRUE(mine.ok()) << mine.status();
    const double theirs = r.Get("p" + std::to_string(i));
    worst = std::max(worst, RelDiff(*mine, theirs));
    EXPECT_LE(RelDiff(*mine, theirs), 1e-9) << "table " << t.a << " " << t.b << " " << t.c << " "
                                            << t.d << ": " << *mine << " vs R " << theirs;
    p.push_back(*mine);
  }
  std::cout << "worst Fisher relative difference to R over " << tables.size()
            << " tables: " << worst << "\n";
  auto q = BenjaminiHochberg(p);
  ASSERT_TRUE(q.ok());
  for (std::size_t i = 0; i < q->size(); ++i) {
    EXPECT_LE(RelDiff((*q)[i], r.Get("q" + std::to_string(i))), 1e-9) << "q" << i;
  }
  const std::vector<double> bh = {0.5, 0.03, 0.01, 0.02, 0.02, 0, 1, 0.049, 1e-12, 0.7};
  auto qb = BenjaminiHochberg(bh);
  ASSERT_TRUE(qb.ok());
  for (std::size_t i = 0; i < bh.size(); ++i) {
    EXPECT_LE(RelDiff((*qb)[i], r.Get("b" + std::to_string(i))), 1e-9) << "b" << i;
  }
}

}  // namespace
}  // namespace fedrx::reverse
