// 3+3: each rule on scripted outcomes (escalation, expansion, de-escalation
// to confirm the MTD with 6 patients, the top dose, stopping at the lowest),
// and simulated selection against the exact probabilities for one and two
// doses.
#include "services/trial/three_plus_three.h"

#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <vector>

#include "tests/trial/scripted_source.h"

namespace fedrx::trial {
namespace {

using test_support::ScriptedSource;

TrialRecord RunScript(int ndose, std::vector<std::deque<int>> script, int start_dose = 1) {
  codec::EscalationDesign d;
  d.design = "3+3";
  d.start_dose = start_dose;
  auto f = MakeDoseFinder(d, ndose, "design");
  EXPECT_TRUE(f.ok()) << f.status();
  ScriptedSource src(std::move(script));
  Rng rng(1);
  return (*f)->Run(src, rng);
}

// No DLTs anywhere: 3 per dose up to the top, which is expanded to 6 and is
// the MTD.
TEST(ThreePlusThreeTest, TopDoseExpandedToSix) {
  const TrialRecord r = RunScript(4, {{}, {}, {}, {}});
  EXPECT_EQ(r.patients, (std::vector<int>{3, 3, 3, 6}));
  EXPECT_EQ(r.mtd, 3);
}

// 0/3, then 1/3 + 0/3 (1/6) escalates, then 2/3 exceeds: back to the dose
// with 6, which is the MTD.
TEST(ThreePlusThreeTest, OneInSixEscalatesTwoDltsDeescalate) {
  const TrialRecord r = RunScript(4, {{0}, {1, 0}, {2}, {}});
  EXPECT_EQ(r.patients, (std::vector<int>{3, 6, 3, 0}));
  EXPECT_EQ(r.dlts, (std::vector<int>{0, 1, 2, 0}));
  EXPECT_EQ(r.mtd, 1);
}

// 2/3 at dose 2 after 0/3 at dose 1: dose 1 gets 3 more; 0/6 makes it the MTD.
TEST(ThreePlusThreeTest, DeescalationExpandsToSix) {
  const TrialRecord r = RunScript(3, {{0, 0}, {2}, {}});
  EXPECT_EQ(r.patients, (std::vector<int>{6, 3, 0}));
  EXPECT_EQ(r.mtd, 0);
}

// ... and if the expansion shows 2/6 there, the trial goes one more down; at
// the lowest dose that means no MTD.
TEST(ThreePlusThreeTest, TooToxicAtLowestStops) {
  TrialRecord r = RunScript(3, {{0, 2}, {2}, {}});
  EXPECT_EQ(r.patients, (std::vector<int>{6, 3, 0}));
  EXPECT_EQ(r.mtd, -1);
  r = RunScript(3, {{2}, {}, {}});
  EXPECT_EQ(r.patients, (std::vector<int>{3, 0, 0}));
  EXPECT_EQ(r.mtd, -1);
  // 1/3 then 1/3 (2/6) at the lowest dose also stops.
  r = RunScript(3, {{1, 1}, {}, {}});
  EXPECT_EQ(r.patients, (std::vector<int>{6, 0, 0}));
  EXPECT_EQ(r.mtd, -1);
}

// Starting at dose 2 with 2/3 there: dose 1, untried, gets 3 + 3 and is the MTD.
TEST(ThreePlusThreeTest, StartAboveLowestGoesDownToUntried) {
  const TrialRecord r = RunScript(3, {{0, 1}, {2}, {}}, 2);
  EXPECT_EQ(r.patients, (std::vector<int>{6, 3, 0}));
  EXPECT_EQ(r.mtd, 0);
}

// One dose with rate p: MTD iff (0/3 and <= 1/3 more) or (1/3 and 0/3 more):
// q^3 (q^3 + 3 p q^2) + 3 p q^2 q^3. Two doses (p1, p2): dose 2 needs dose 1
// passed (0/3, or 1/3 + 0/3) and then the same; dose 1 is selected when it
// passed, dose 2 failed, and dose 1 holds 6 with <= 1 DLT.
TEST(ThreePlusThreeTest, SimulationMatchesExactProbabilities) {
  auto b = [](int k, int n, double p) {
    return std::tgamma(n + 1.0) / (std::tgamma(k + 1.0) * std::tgamma(n - k + 1.0)) *
           std::pow(p, k) * std::pow(1 - p, n - k);
  };
  const double p1 = 0.15, p2 = 0.35;
  // Dose 1 passes with 0/3 (then later needs 3 more if dose 2 fails) or 1/6.
  const double pass0 = b(0, 3, p1), pass1 = b(1, 3, p1) * b(0, 3, p1);
  auto top_ok = [&](double p) {
    return b(0, 3, p) * (b(0, 3, p) + b(1, 3, p)) + b(1, 3, p) * b(0, 3, p);
  };
  const double sel2 = (pass0 + pass1) * top_ok(p2);
  // Dose 2 fails: dose 1 with 0/3 is expanded (needs <= 1 in 3 more); with
  // 1/6 it is the MTD directly.
  const double sel1 = (1 - top_ok(p2)) * (pass0 * (b(0, 3, p1) + b(1, 3, p1)) + pass1);
  codec::SimulateEscalation req;
  req.design.design = "3+3";
  req.true_tox = {p1, p2};
  req.trials = 40000;
  req.seed = 99;
  auto oc = SimulateEscalation(req);
  ASSERT_TRUE(oc.ok()) << oc.status();
  const double se1 = 100 * std::sqrt(sel1 * (1 - sel1) / req.trials);
  const double se2 = 100 * std::sqrt(sel2 * (1 - sel2) / req.trials);
  EXPECT_NEAR(oc->selection_pct[0], 100 * sel1, 4.5 * se1);
  EXPECT_NEAR(oc->selection_pct[1], 100 * sel2, 4.5 * se2);
  EXPECT_NEAR(oc->early_stop_pct, 100 * (1 - sel1 - sel2), 4.5 * std::max(se1, se2) * 1.5);

  req.true_tox = {0.2};
  auto one = SimulateEscalation(req);
  ASSERT_TRUE(one.ok());
  const double q = 0.8, p = 0.2;
  const double want =
      std::pow(q, 3) * (std::pow(q, 3) + 3 * p * q * q) + 3 * p * q * q * std::pow(q, 3);
  EXPECT_NEAR(one->selection_pct[0], 100 * want,
              4.5 * 100 * std::sqrt(want * (1 - want) / req.trials));
}

}  // namespace
}  // namespace fedrx::trial
