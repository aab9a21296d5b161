// BOIN: the boundary table against an independent derivation (the paper's
// formulas, elimination by numerically integrating the Beta posterior) and
// against the published table for target 0.3; MTD selection (isotonic
// estimates, elimination, extrasafe, the package's tie rule); trial conduct
// on scripted outcomes; and the operating characteristics of a scenario with
// a clearly correct dose.
#include "services/trial/boin.h"

#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <vector>

#include "tests/trial/scripted_source.h"

namespace fedrx::trial {
namespace {

// P(p > target) for p ~ Beta(1 + y, 1 + n - y) by Simpson's rule on the
// density (independent of the binomial-sum identity the library uses).
double TailByIntegration(double target, int y, int n) {
  const int m = 20000;
  const double h = (1 - target) / m;
  const double log_c = std::lgamma(n + 2.0) - std::lgamma(y + 1.0) - std::lgamma(n - y + 1.0);
  auto f = [&](double p) {
    if (p <= 0 || p >= 1) return (p >= 1 && y == n) ? std::exp(log_c) : 0.0;
    return std::exp(log_c + y * std::log(p) + (n - y) * std::log1p(-p));
  };
  double s = f(target) + f(1.0);
  for (int i = 1; i < m; ++i) s += f(target + i * h) * (i % 2 ? 4 : 2);
  return s * h / 3;
}

struct Derived {
  int escalate, deescalate, eliminate;
};

Derived DeriveRow(double target, int n) {
  const double phi1 = 0.6 * target, phi2 = 1.4 * target;
  const double le =
      std::log((1 - phi1) / (1 - target)) / std::log(target * (1 - phi1) / (phi1 * (1 - target)));
  const double ld =
      std::log((1 - target) / (1 - phi2)) / std::log(phi2 * (1 - target) / (target * (1 - phi2)));
  Derived d{static_cast<int>(std::floor(le * n)), static_cast<int>(std::ceil(ld * n)), -1};
  if (n >= 3) {
    for (int y = 1; y <= n; ++y) {
      if (TailByIntegration(target, y, n) > 0.95) {
        d.eliminate = y;
        break;
      }
    }
  }
  if (d.eliminate >= 0 && d.deescalate > d.eliminate) d.deescalate = d.eliminate;
  return d;
}

// Every row n = 1..30 for targets 0.2, 0.25, 0.3 (cohort 3) matches the
// independent derivation, and lambda_e / lambda_d match the values the BOIN
// paper tabulates (0.157/0.238, 0.197/0.298, 0.236/0.358).
TEST(BoinBoundaryTest, TableMatchesIndependentDerivation) {
  const double targets[] = {0.2, 0.25, 0.3};
  const double lambda_e[] = {0.1572, 0.1968, 0.2365};
  const double lambda_d[] = {0.2385, 0.2984, 0.3585};
  for (int t = 0; t < 3; ++t) {
    auto b = BoinBoundaryTable(targets[t], 30, 3);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_NEAR(b->lambda_e, lambda_e[t], 1e-4);
    EXPECT_NEAR(b->lambda_d, lambda_d[t], 1e-4);
    ASSERT_EQ(b->rows.size(), 30u);
    for (int n = 1; n <= 30; ++n) {
      const Derived want = DeriveRow(targets[t], n);
      const codec::BoundaryRow& row = b->rows[n - 1];
      EXPECT_EQ(row.n, n);
      EXPECT_EQ(row.escalate_at_most, want.escalate) << "target " << targets[t] << " n " << n;
      EXPECT_EQ(row.deescalate_at_least, want.deescalate) << "target " << targets[t] << " n " << n;
      EXPECT_EQ(row.eliminate_at_least, want.eliminate) << "target " << targets[t] << " n " << n;
    }
  }
}

// The table BOIN's documentation prints for target 0.3, cohort 3, 10 cohorts.
TEST(BoinBoundaryTest, PublishedTableForTarget03) {
  auto b = BoinBoundaryTable(0.3, 30, 3);
  ASSERT_TRUE(b.ok());
  const int esc[] = {0, 1, 2, 2, 3, 4, 4, 5, 6, 7};
  const int des[] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  const int eli[] = {3, 4, 5, 7, 8, 9, 10, 11, 12, 14};
  for (int i = 0; i < 10; ++i) {
    const codec::BoundaryRow& row = b->rows[3 * (i + 1) - 1];
    EXPECT_EQ(row.escalate_at_most, esc[i]);
    EXPECT_EQ(row.deescalate_at_least, des[i]);
    EXPECT_EQ(row.eliminate_at_least, eli[i]);
  }
  // Below 3 patients nothing is eliminated.
  EXPECT_EQ(b->rows[0].eliminate_at_least, -1);
  EXPECT_EQ(b->rows[1].eliminate_at_least, -1);
}

// As get.boundary, the table stops at n.earlystop.
TEST(BoinBoundaryTest, RowsStopAtEarlyStopN) {
  auto b = BoinBoundaryTable(0.3, 30, 3, 0, 0, 0.95, 12);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->rows.size(), 12u);
}

TEST(BoinBoundaryTest, RejectsBadArguments) {
  auto b = BoinBoundaryTable(0.3, 30, 3, 0.35, 0);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().where(), "phi1");
  b = BoinBoundaryTable(0.3, 31, 3);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().where(), "max_patients");
  b = BoinBoundaryTable(1.2, 30, 3);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().where(), "target");
  b = BoinBoundaryTable(0.3, 30, 3, 0, 0.29);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().where(), "phi2");
}

// The Beta posterior tail equals its numerical integral.
TEST(BoinBoundaryTest, PosteriorTailMatchesIntegral) {
  for (int n : {3, 6, 10, 30}) {
    for (int y = 0; y <= n; y += 2) {
      EXPECT_NEAR(BetaPosteriorAbove(0.3, y, n), TailByIntegration(0.3, y, n), 1e-9);
    }
  }
}

// select.mtd's documented example: n = (3, 3, 15, 9, 0), y = (0, 0, 4, 4, 0)
// selects dose 3 (estimates 0.016, 0.016, 0.268, 0.445).
TEST(BoinSelectMtdTest, PackageExample) {
  EXPECT_EQ(BoinSelectMtd({3, 3, 15, 9, 0}, {0, 0, 4, 4, 0}, 0.3, 0.95, false), 2);
}

// An eliminated dose (5/6: P(p > 0.3) > 0.95) is not selected; an
// eliminated lowest dose means no MTD; untried doses are not selected.
TEST(BoinSelectMtdTest, EliminationAndUntriedDoses) {
  EXPECT_GT(BetaPosteriorAbove(0.3, 5, 6), 0.95);
  EXPECT_EQ(BoinSelectMtd({3, 3, 6}, {0, 1, 5}, 0.3, 0.95, false), 1);
  EXPECT_EQ(BoinSelectMtd({3}, {3}, 0.3, 0.95, false), -1);
  EXPECT_EQ(BoinSelectMtd({3, 0, 0}, {0, 0, 0}, 0.3, 0.95, false), 0);
  EXPECT_EQ(BoinSelectMtd({0, 0}, {0, 0}, 0.3, 0.95, false), -1);
}

// Ties: equal estimates above the target select the lower dose, below the
// target the higher dose.
TEST(BoinSelectMtdTest, TieRule) {
  EXPECT_EQ(BoinSelectMtd({3, 3}, {2, 2}, 0.3, 0.95, false), 0);
  EXPECT_EQ(BoinSelectMtd({3, 3}, {0, 0}, 0.3, 0.95, false), 1);
  // A pool (2/3 then 0/3 violates monotonicity) above target: lower dose.
  EXPECT_EQ(BoinSelectMtd({3, 3}, {2, 1}, 0.3, 0.95, false), 0);
}

// extrasafe: 2/3 at the lowest dose gives P(p > 0.3) = 0.916 > 0.95 - 0.05,
// so nothing is selected; without extrasafe a dose is.
TEST(BoinSelectMtdTest, ExtraSafeStops) {
  EXPECT_NEAR(BetaPosteriorAbove(0.3, 2, 3), 0.9163, 1e-4);
  EXPECT_EQ(BoinSelectMtd({3, 3}, {2, 0}, 0.3, 0.95, true), -1);
  EXPECT_GE(BoinSelectMtd({3, 3}, {2, 0}, 0.3, 0.95, false), 0);
}

using test_support::ScriptedSource;

std::unique_ptr<DoseFinder> Boin(int max_patients, int ndose, bool extra_safe = false) {
  codec::EscalationDesign d;
  d.design = "boin";
  d.target = 0.3;
  d.cohort_size = 3;
  d.max_patients = max_patients;
  d.extra_safe = extra_safe;
  auto f = MakeDoseFinder(d, ndose, "design");
  EXPECT_TRUE(f.ok()) << f.status();
  return std::move(*f);
}

// 0/3 escalates, 2/3 de-escalates, the last cohort ends the trial; the MTD
// is the dose whose estimate is closest to the target.
TEST(BoinDesignTest, ConductFollowsBoundaries) {
  auto boin = Boin(9, 3);
  ScriptedSource src({{0, 1}, {2}, {}});
  Rng rng(1);
  const TrialRecord r = boin->Run(src, rng);
  EXPECT_EQ(r.patients, (std::vector<int>{6, 3, 0}));
  EXPECT_EQ(r.dlts, (std::vector<int>{1, 2, 0}));
  EXPECT_EQ(r.mtd, 0);
}

// 3/3 at the lowest dose eliminates it: the trial stops with no MTD.
TEST(BoinDesignTest, LowestDoseEliminatedStopsTrial) {
  auto boin = Boin(30, 3);
  ScriptedSource src({{3}, {}, {}});
  Rng rng(1);
  const TrialRecord r = boin->Run(src, rng);
  EXPECT_EQ(r.patients, (std::vector<int>{3, 0, 0}));
  EXPECT_EQ(r.mtd, -1);
}

// 1/3 stays (0 < 1 < 2); an eliminated dose is never re-entered: dose 2 with
// 3/3 is eliminated, dose 1 then keeps 0/3 cohorts without escalating.
TEST(BoinDesignTest, EliminatedDoseIsNotReentered) {
  auto boin = Boin(15, 2);
  ScriptedSource src({{0, 0, 0, 0}, {3}});
  Rng rng(1);
  const TrialRecord r = boin->Run(src, rng);
  EXPECT_EQ(r.patients, (std::vector<int>{12, 3}));
  EXPECT_EQ(r.mtd, 0);
}

// Scenario (0.05, 0.15, 0.30, 0.45, 0.60), target 0.3: dose 3 is selected
// most often; percentages and counts add up.
TEST(BoinDesignTest, SelectsClearlyCorrectDose) {
  codec::SimulateEscalation req;
  req.design.design = "boin";
  req.true_tox = {0.05, 0.15, 0.30, 0.45, 0.60};
  req.trials = 2000;
  req.seed = 7;
  auto oc = SimulateEscalation(req);
  ASSERT_TRUE(oc.ok()) << oc.status();
  double total = oc->early_stop_pct;
  for (double s : oc->selection_pct) total += s;
  EXPECT_NEAR(total, 100.0, 1e-9);
  for (int d : {0, 1, 3, 4}) EXPECT_GT(oc->selection_pct[2], oc->selection_pct[d]);
  EXPECT_DOUBLE_EQ(oc->correct_selection_pct, oc->selection_pct[2]);
  EXPECT_GT(oc->correct_selection_pct, 40.0);
  EXPECT_LE(oc->patients_total_mean, 30.0 + 1e-9);
  EXPECT_GT(oc->patients_total_mean, 29.0);  // early stops are rare here
  EXPECT_NEAR(oc->lambda_e, 0.2365, 1e-4);
  EXPECT_EQ(oc->boundaries.size(), 30u);
  EXPECT_EQ(oc->design, "boin");
}

}  // namespace
}  // namespace fedrx::trial
