// Sample size and power: published figures (R's documented examples, Simon's
// 1989 tables, the classic Schoenfeld event count), inverse consistency
// between solving n and solving power, the event-probability integral checked
// against an independent quadrature, input validation and the working.
#include "services/trial/sample_size.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "services/trial/distributions.h"

namespace fedrx::trial {
namespace {

codec::ComputeSampleSize Request(std::string test) {
  codec::ComputeSampleSize rq;
  rq.test = std::move(test);
  return rq;
}

const codec::WorkStep* FindStep(const codec::Working& w, const std::string& label) {
  for (const auto& s : w.steps) {
    if (s.label == label) return &s;
  }
  return nullptr;
}

// --- t test ------------------------------------------------------------------

// R: power.t.test(delta = 1, sd = 1, power = 0.9, strict = TRUE)$n = 22.02109
// (the example in R's documentation) and power.t.test(n = 20, delta = 1,
// strict = TRUE)$power = 0.8689530.
TEST(SampleSizeTest, TTestMatchesRDocumentedExamples) {
  auto n = SolveNTTest(1.0, 1.0, 0.05, 0.9, 2);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_NEAR(*n, 22.02108843, 1e-6);
  auto p = PowerTTest(20, 1.0, 1.0, 0.05, 2);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(*p, 0.8689530277, 1e-8);
  // One-sided: power.t.test(delta = 0.5, power = 0.8, alternative = "one.sided").
  auto n1 = SolveNTTest(0.5, 1.0, 0.05, 0.8, 1);
  ASSERT_TRUE(n1.ok());
  EXPECT_NEAR(*n1, 50.15078339, 1e-6);
}

// Solving n then evaluating the power at that n gives back the power asked for.
TEST(SampleSizeTest, TTestSolveAndPowerAreInverse) {
  for (double d : {0.3, 0.7, 1.5}) {
    for (int sides : {1, 2}) {
      auto n = SolveNTTest(d, 2.0, 0.05, 0.85, sides);
      ASSERT_TRUE(n.ok());
      auto p = PowerTTest(*n, d, 2.0, 0.05, sides);
      ASSERT_TRUE(p.ok());
      EXPECT_NEAR(*p, 0.85, 1e-10) << "d=" << d << " sides=" << sides;
    }
  }
}

// strict = TRUE: the two-sided power includes the lower tail. At a tiny effect
// the two tails are almost equal, so the power is close to alpha, not alpha/2.
TEST(SampleSizeTest, TTestTwoSidedPowerIncludesBothTails) {
  auto p = PowerTTest(10, 1e-6, 1.0, 0.05, 2);
  ASSERT_TRUE(p.ok());
  EXPECT_NEAR(*p, 0.05, 1e-6);
  // And the lower tail is exactly what separates it from the upper tail alone.
  const double df = 18, ncp = std::sqrt(5.0) * 0.4;
  const double t = StudentTUpperQuantile(0.025, df);
  auto p2 = PowerTTest(10, 0.4, 1.0, 0.05, 2);
  ASSERT_TRUE(p2.ok());
  EXPECT_NEAR(*p2 - NoncentralTUpper(t, df, ncp), NoncentralTCdf(-t, df, ncp), 1e-14);
  EXPECT_GT(NoncentralTCdf(-t, df, ncp), 0.0);
}

// The sign of delta does not change the answer (one-sided: in delta's direction).
TEST(SampleSizeTest, TTestSignOfDeltaIrrelevant) {
  auto a = SolveNTTest(0.5, 1.0, 0.05, 0.8, 1);
  auto b = SolveNTTest(-0.5, 1.0, 0.05, 0.8, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_DOUBLE_EQ(*a, *b);
}

TEST(SampleSizeTest, ComputeTTestFillsAnswerAndWorking) {
  auto rq = Request("t_two_sample");
  rq.delta = 0.5;
  rq.sd = 1;
  auto r = ComputeSampleSize(rq);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->n, 63.76561, 1e-4);  // power.t.test(delta = .5, power = .8)$n
  EXPECT_EQ(r->n_per_group, 64);
  EXPECT_EQ(r->n_total, 128);
  EXPECT_DOUBLE_EQ(r->power, 0.8);
  const auto* ncp = FindStep(r->working, "noncentrality");
  ASSERT_NE(ncp, nullptr);
  EXPECT_NEAR(ncp->result.value, std::sqrt(r->n / 2) * 0.5, 1e-12);
  const auto* df = FindStep(r->working, "degrees of freedom");
  ASSERT_NE(df, nullptr);
  EXPECT_NEAR(df->result.value, 2 * (r->n - 1), 1e-12);
  const auto* at_ceil = FindStep(r->working, "power at the rounded-up n");
  ASSERT_NE(at_ceil, nullptr);
  EXPECT_GE(at_ceil->result.value, 0.8);
  EXPECT_LT(at_ceil->result.value, 0.81);
  EXPECT_FALSE(r->working.guidance.empty());
  EXPECT_NE(r->working.method.find("power.t.test"), std::string::npos);

  rq.solve_for = "power";
  rq.n = 64;
  auto p = ComputeSampleSize(rq);
  ASSERT_TRUE(p.ok());
  EXPECT_NEAR(p->power, at_ceil->result.value, 1e-12);
}

// --- proportions ---------------------------------------------------------------

// R: power.prop.test(p1 = .5, p2 = .75, power = .9, strict = TRUE)$n = 76.70692,
// power.prop.test(n = 50, p1 = .5, p2 = .75, strict = TRUE)$power = 0.7401672;
// pwr.2p.test(h = ES.h(.5, .75), power = .9)$n = 76.65294.
TEST(SampleSizeTest, TwoProportionsMatchRDocumentedExamples) {
  auto n = SolveNTwoProportions(0.5, 0.75, 0.05, 0.9, 2);
  ASSERT_TRUE(n.ok());
  EXPECT_NEAR(*n, 76.70691612, 1e-6);
  auto p = PowerTwoProportions(50, 0.5, 0.75, 0.05, 2);
  ASSERT_TRUE(p.ok());
  EXPECT_NEAR(*p, 0.7401671935, 1e-9);
  auto na = SolveNTwoProportionsArcsine(0.5, 0.75, 0.05, 0.9, 2);
  ASSERT_TRUE(na.ok());
  EXPECT_NEAR(*na, 76.65294059, 1e-4);
  EXPECT_NEAR(CohenH(0.5, 0.75), 2 * std::asin(std::sqrt(0.5)) - 2 * std::asin(std::sqrt(0.75)),
              1e-15);
}

// The order of p1 and p2 does not matter, and the two formulas are distinct.
TEST(SampleSizeTest, TwoProportionsSymmetricAndFormulasDiffer) {
  auto a = SolveNTwoProportions(0.3, 0.5, 0.05, 0.8, 2);
  auto b = SolveNTwoProportions(0.5, 0.3, 0.05, 0.8, 2);
  auto c = SolveNTwoProportionsArcsine(0.3, 0.5, 0.05, 0.8, 2);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NEAR(*a, *b, 1e-8);
  EXPECT_GT(std::fabs(*a - *c), 0.1);
  auto rq = Request("two_proportions_arcsine");
  rq.p1 = 0.3;
  rq.p2 = 0.5;
  auto r = ComputeSampleSize(rq);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->n, *c, 1e-9);
  ASSERT_NE(FindStep(r->working, "effect size"), nullptr);
}

// --- log-rank --------------------------------------------------------------------

// The textbook figure: HR 0.75, 1:1, two-sided 5%, 80% power needs 380 events
// (4 (1.96 + 0.8416)^2 / log(0.75)^2 = 379.35).
TEST(SampleSizeTest, SchoenfeldClassicEventCount) {
  auto d = SchoenfeldEvents(0.75, 0.5, 0.05, 0.8, 2);
  ASSERT_TRUE(d.ok());
  EXPECT_NEAR(*d, 379.3517296, 1e-6);
  EXPECT_EQ(std::ceil(*d), 380);
  // Unequal allocation 2:1 needs 9/8 as many events as 1:1.
  auto d21 = SchoenfeldEvents(0.75, 2.0 / 3.0, 0.05, 0.8, 2);
  ASSERT_TRUE(d21.ok());
  EXPECT_NEAR(*d21 / *d, 0.25 / (2.0 / 9.0), 1e-12);
  // HR and 1/HR need the same events.
  auto inv = SchoenfeldEvents(1 / 0.75, 0.5, 0.05, 0.8, 2);
  ASSERT_TRUE(inv.ok());
  EXPECT_NEAR(*inv, *d, 1e-9);
  auto p = LogRankPower(*d, 0.75, 0.5, 0.05, 2);
  ASSERT_TRUE(p.ok());
  EXPECT_NEAR(*p, 0.8, 1e-12);
}

// The closed form equals (1/A) * integral over entry times s in [0, A] of
// 1 - exp(-lambda (A + F - s)), computed here by composite Simpson.
TEST(SampleSizeTest, EventProbabilityMatchesQuadrature) {
  const double hr = 0.7, a = 0.5, accrual = 18, follow = 12, median = 10;
  auto p = EventProbability(hr, a, accrual, follow, median);
  ASSERT_TRUE(p.ok()) << p.status();
  auto simpson = [&](double lambda) {
    const int m = 2000;
    const double h = accrual / m;
    double sum = 0;
    for (int i = 0; i <= m; ++i) {
      const double s = i * h;
      const double f = 1 - std::exp(-lambda * (accrual + follow - s));
      sum += f * ((i == 0 || i == m) ? 1 : (i % 2 ? 4 : 2));
    }
    return sum * h / 3 / accrual;
  };
  const double lc = std::numbers::ln2 / median;
  EXPECT_NEAR(p->hazard_control, lc, 1e-15);
  EXPECT_NEAR(p->hazard_experimental, lc * hr, 1e-15);
  EXPECT_NEAR(p->control, simpson(lc), 1e-10);
  EXPECT_NEAR(p->experimental, simpson(lc * hr), 1e-10);
  EXPECT_NEAR(p->pooled, 0.5 * (p->control + p->experimental), 1e-15);
  // No accrual period: everyone followed for F.
  auto p0 = EventProbability(hr, a, 0, follow, median);
  ASSERT_TRUE(p0.ok());
  EXPECT_NEAR(p0->control, 1 - std::exp(-lc * follow), 1e-15);
  // A tiny accrual tends to the same limit.
  auto pt = EventProbability(hr, a, 1e-9, follow, median);
  ASSERT_TRUE(pt.ok());
  EXPECT_NEAR(pt->control, p0->control, 1e-9);
}

TEST(SampleSizeTest, ComputeLogRankGivesSubjectsAndArms) {
  auto rq = Request("log_rank");
  rq.hazard_ratio = 0.75;
  rq.allocation = 2.0 / 3.0;
  rq.accrual_time = 24;
  rq.follow_up = 12;
  rq.median_control = 12;
  auto r = ComputeSampleSize(rq);
  ASSERT_TRUE(r.ok()) << r.status();
  auto d = SchoenfeldEvents(0.75, 2.0 / 3.0, 0.05, 0.8, 2);
  auto p = EventProbability(0.75, 2.0 / 3.0, 24, 12, 12);
  ASSERT_TRUE(d.ok() && p.ok());
  EXPECT_NEAR(r->events, *d, 1e-9);
  EXPECT_NEAR(r->event_probability, p->pooled, 1e-15);
  EXPECT_NEAR(r->n, *d / p->pooled, 1e-9);
  const auto exp_arm = static_cast<std::int64_t>(std::ceil(r->n * 2 / 3));
  const auto ctl_arm = static_cast<std::int64_t>(std::ceil(r->n / 3));
  EXPECT_EQ(r->n_total, exp_arm + ctl_arm);
  EXPECT_EQ(r->n_per_group, exp_arm);
  ASSERT_NE(FindStep(r->working, "events"), nullptr);
  ASSERT_NE(FindStep(r->working, "event probability, control"), nullptr);

  // Power from events: n is the number of events; without survival inputs only
  // the power is given.
  auto pq = Request("log_rank");
  pq.solve_for = "power";
  pq.hazard_ratio = 0.75;
  pq.n = 380;
  auto pw = ComputeSampleSize(pq);
  ASSERT_TRUE(pw.ok()) << pw.status();
  EXPECT_NEAR(pw->power,
              NormalCdf(std::sqrt(380 * 0.25) * std::fabs(std::log(0.75)) - NormalQuantile(0.975)),
              1e-14);
  EXPECT_GT(pw->power, 0.8);
  EXPECT_DOUBLE_EQ(pw->events, 380);
  EXPECT_EQ(pw->n, 0);
}

// --- Simon ------------------------------------------------------------------------

struct SimonRow {
  double p0, p1, alpha, beta;
  SimonCriterion criterion;
  int r1, n1, r, n;
  double en0, pet0;
};

// Simon (1989), Tables 1-2 (EN0 and PET0 printed to 1 and 2 decimals).
TEST(SampleSizeTest, SimonMatchesPublishedTable) {
  const std::vector<SimonRow> rows = {
      {0.10, 0.30, 0.05, 0.20, SimonCriterion::kOptimal, 1, 10, 5, 29, 15.0, 0.74},
      {0.10, 0.30, 0.05, 0.20, SimonCriterion::kMinimax, 1, 15, 5, 25, 19.5, 0.55},
      {0.05, 0.25, 0.05, 0.20, SimonCriterion::kOptimal, 0, 9, 2, 17, 12.0, 0.63},
      {0.05, 0.25, 0.05, 0.20, SimonCriterion::kMinimax, 0, 12, 2, 16, 13.8, 0.54},
      {0.20, 0.40, 0.05, 0.20, SimonCriterion::kOptimal, 3, 13, 12, 43, 20.6, 0.75},
      {0.20, 0.40, 0.05, 0.20, SimonCriterion::kMinimax, 4, 18, 10, 33, 22.3, 0.72},
      {0.30, 0.50, 0.05, 0.20, SimonCriterion::kOptimal, 5, 15, 18, 46, 23.6, 0.72},
      {0.30, 0.50, 0.05, 0.20, SimonCriterion::kMinimax, 6, 19, 16, 39, 25.7, 0.67},
  };
  for (const auto& row : rows) {
    auto s = SimonTwoStage(row.p0, row.p1, row.alpha, 1 - row.beta, row.criterion);
    ASSERT_TRUE(s.ok()) << s.status();
    SCOPED_TRACE(testing::Message()
                 << "p0=" << row.p0 << " p1=" << row.p1 << " "
                 << (row.criterion == SimonCriterion::kOptimal ? "optimal" : "minimax"));
    EXPECT_EQ(s->r1, row.r1);
    EXPECT_EQ(s->n1, row.n1);
    EXPECT_EQ(s->r, row.r);
    EXPECT_EQ(s->n, row.n);
    EXPECT_NEAR(s->en0, row.en0, 0.05);
    EXPECT_NEAR(s->pet0, row.pet0, 0.005);
    EXPECT_LE(s->alpha, row.alpha);
    EXPECT_GE(s->power, 1 - row.beta);
  }
}

// The reported alpha, power, PET0 and EN0 recomputed from the binomial directly.
TEST(SampleSizeTest, SimonOperatingCharacteristicsRecompute) {
  auto rq = Request("simon_two_stage");
  rq.p0 = 0.1;
  rq.p1 = 0.3;
  rq.simon_design = "optimal";
  auto r = ComputeSampleSize(rq);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->simon_r1, 1);
  EXPECT_EQ(r->simon_n1, 10);
  EXPECT_EQ(r->simon_r, 5);
  EXPECT_EQ(r->simon_n, 29);
  EXPECT_EQ(r->n_per_group, 29);
  auto promising = [&](double p) {
    double sum = 0;
    for (int x1 = r->simon_r1 + 1; x1 <= r->simon_n1; ++x1) {
      double tail = 0;
      for (int x2 = std::max(0, r->simon_r - x1 + 1); x2 <= r->simon_n - r->simon_n1; ++x2) {
        tail += BinomialPmf(x2, r->simon_n - r->simon_n1, p);
      }
      sum += BinomialPmf(x1, r->simon_n1, p) * tail;
    }
    return sum;
  };
  const double pet = BinomialPmf(0, 10, 0.1) + BinomialPmf(1, 10, 0.1);
  EXPECT_NEAR(r->simon_pet0, pet, 1e-14);
  EXPECT_NEAR(r->simon_en0, 10 + (1 - pet) * 19, 1e-12);
  EXPECT_NEAR(r->achieved_alpha, promising(0.1), 1e-14);
  EXPECT_NEAR(r->power, promising(0.3), 1e-14);
  ASSERT_NE(FindStep(r->working, "type I error"), nullptr);
}

// A difference too small for n <= max_n is an error, not a design.
TEST(SampleSizeTest, SimonNotFoundIsFailedPrecondition) {
  auto s = SimonTwoStage(0.10, 0.15, 0.05, 0.8, SimonCriterion::kMinimax, 40);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), core::StatusCode::kFailedPrecondition);
}

// --- validation ---------------------------------------------------------------------

TEST(SampleSizeTest, BadInputsNameTheField) {
  struct Case {
    std::string name;
    codec::ComputeSampleSize rq;
    std::string where;
  };
  std::vector<Case> cases;
  auto t = Request("t_two_sample");
  t.delta = 1;
  auto add = [&](std::string name, codec::ComputeSampleSize rq, std::string where) {
    cases.push_back({std::move(name), std::move(rq), std::move(where)});
  };
  add("unknown test", Request("anova"), "ComputeSampleSize.test");
  {
    auto r = t;
    r.solve_for = "alpha";
    add("solve_for", r, "ComputeSampleSize.solve_for");
  }
  {
    auto r = t;
    r.sides = 3;
    add("sides", r, "ComputeSampleSize.sides");
  }
  {
    auto r = t;
    r.alpha = 0;
    add("alpha 0", r, "ComputeSampleSize.alpha");
  }
  {
    auto r = t;
    r.alpha = std::nan("");
    add("alpha NaN", r, "ComputeSampleSize.alpha");
  }
  {
    auto r = t;
    r.power = 1;
    add("power 1", r, "ComputeSampleSize.power");
  }
  {
    auto r = t;
    r.power = 0.01;
    add("power below alpha", r, "ComputeSampleSize.power");
  }
  {
    auto r = t;
    r.delta = 0;
    add("delta 0", r, "ComputeSampleSize.delta");
  }
  {
    auto r = t;
    r.sd = -1;
    add("sd", r, "ComputeSampleSize.sd");
  }
  {
    auto r = t;
    r.sd = INFINITY;
    add("sd inf", r, "ComputeSampleSize.sd");
  }
  {
    auto r = t;
    r.solve_for = "power";
    r.n = 1;
    add("n 1", r, "ComputeSampleSize.n");
  }
  {
    auto r = t;
    r.solve_for = "power";
    r.n = 2e9;
    add("n too large", r, "ComputeSampleSize.n");
  }
  {
    auto r = Request("two_proportions");
    r.p1 = 0.2;
    r.p2 = 1.0;
    add("p2 1", r, "ComputeSampleSize.p2");
  }
  {
    auto r = Request("two_proportions");
    r.p1 = -0.2;
    r.p2 = 0.5;
    add("p1 negative", r, "ComputeSampleSize.p1");
  }
  {
    auto r = Request("two_proportions");
    r.p1 = 0.4;
    r.p2 = 0.4;
    add("p equal", r, "ComputeSampleSize.p2");
  }
  {
    auto r = Request("log_rank");
    r.hazard_ratio = 1;
    r.median_control = 10;
    r.follow_up = 10;
    add("hr 1", r, "ComputeSampleSize.hazard_ratio");
  }
  {
    auto r = Request("log_rank");
    r.hazard_ratio = 0.7;
    r.allocation = 1;
    r.median_control = 10;
    r.follow_up = 10;
    add("allocation", r, "ComputeSampleSize.allocation");
  }
  {
    auto r = Request("log_rank");
    r.hazard_ratio = 0.7;
    r.follow_up = 10;
    add("median missing", r, "ComputeSampleSize.median_control");
  }
  {
    auto r = Request("log_rank");
    r.hazard_ratio = 0.7;
    r.median_control = 10;
    add("no time", r, "ComputeSampleSize.follow_up");
  }
  {
    auto r = Request("log_rank");
    r.hazard_ratio = 0.7;
    r.median_control = 10;
    r.accrual_time = -1;
    r.follow_up = 5;
    add("negative accrual", r, "ComputeSampleSize.accrual_time");
  }
  {
    auto r = Request("simon_two_stage");
    r.p0 = 0.3;
    r.p1 = 0.2;
    add("p1 below p0", r, "ComputeSampleSize.p1");
  }
  {
    auto r = Request("simon_two_stage");
    r.p0 = 0.1;
    r.p1 = 0.3;
    r.simon_design = "admissible";
    add("design", r, "ComputeSampleSize.simon_design");
  }
  {
    auto r = Request("simon_two_stage");
    r.p0 = 0.1;
    r.p1 = 0.3;
    r.solve_for = "power";
    r.n = 30;
    add("simon power", r, "ComputeSampleSize.solve_for");
  }
  for (const auto& c : cases) {
    auto r = ComputeSampleSize(c.rq);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(r.status().where(), c.where) << c.name << ": " << r.status();
    EXPECT_FALSE(r.status().message().empty()) << c.name;
  }
}

// Typed functions name their own arguments.
TEST(SampleSizeTest, TypedFunctionsValidate) {
  auto a = PowerTTest(0.5, 1, 1, 0.05, 2);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().where(), "PowerTTest.n");
  auto b = SchoenfeldEvents(0.7, 0.5, 0.05, 0.8, 0);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().where(), "SchoenfeldEvents.sides");
  auto c = EventProbability(0.7, 0.5, 10, 10, 0);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().where(), "EventProbability.median_control");
  auto d = SimonTwoStage(0.1, 0.3, 0.05, 0.8, SimonCriterion::kOptimal, 1000);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().where(), "SimonTwoStage.max_n");
}

// Events so rare that more than 1e9 subjects would be needed: an error, not an
// overflowing count.
TEST(SampleSizeTest, LogRankTooRareEventsIsFailedPrecondition) {
  auto rq = Request("log_rank");
  rq.hazard_ratio = 0.7;
  rq.median_control = 1e300;
  rq.follow_up = 1;
  auto r = ComputeSampleSize(rq);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kFailedPrecondition);
}

// Beyond df = 4e5 the noncentral t is R's normal approximation (A&S 26.7.10),
// which joins the exact distribution smoothly at the switch.
TEST(SampleSizeTest, NoncentralTApproximationJoinsExact) {
  const double exact = NoncentralTUpper(2.0, 3.99e5, 2.5);
  const double approx = NoncentralTUpper(2.0, 4.01e5, 2.5);
  const double s = 1 / (4 * 4.01e5);
  EXPECT_NEAR(approx, NormalUpper((2.0 * (1 - s) - 2.5) / std::sqrt(1 + 8 * s)), 1e-15);
  EXPECT_NEAR(exact, approx, 1e-6);
  // Far left tail with a large noncentrality is 0, as in R.
  EXPECT_EQ(NoncentralTCdf(-1.0, 10, 41), 0.0);
}

// An effect too small for 1e7 per group is an error, never a number.
TEST(SampleSizeTest, UnreachablePowerIsFailedPrecondition) {
  auto n = SolveNTwoProportions(0.5, 0.5000001, 0.05, 0.99, 2);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), core::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fedrx::trial
