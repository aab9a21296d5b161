// The escalation engine: request validation (InvalidArgument naming the
// field), reproducibility (same seed, same answer; trial i independent of the
// number of trials), agreement of two seeds within Monte Carlo error, the
// random stream's uniform and normal transforms, and the summary arithmetic.
#include "services/trial/escalation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace fedrx::trial {
namespace {

codec::SimulateEscalation Request(const std::string& design) {
  codec::SimulateEscalation req;
  req.design.design = design;
  req.design.target = 0.3;
  req.true_tox = {0.05, 0.15, 0.30, 0.45, 0.60};
  req.trials = 2000;
  req.seed = 1;
  return req;
}

void ExpectInvalid(const codec::SimulateEscalation& req, const std::string& where) {
  auto oc = SimulateEscalation(req);
  ASSERT_FALSE(oc.ok()) << where;
  EXPECT_EQ(oc.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(oc.status().where(), where);
  EXPECT_FALSE(oc.status().message().empty());
}

TEST(SimulateEscalationTest, RejectsBadRequests) {
  auto req = Request("boin");
  req.true_tox = {0.1, 0.3, 0.2};
  ExpectInvalid(req, "SimulateEscalation.true_tox[2]");
  req.true_tox = {0.1, 1.3};
  ExpectInvalid(req, "SimulateEscalation.true_tox[1]");
  req.true_tox = {0.1, NAN};
  ExpectInvalid(req, "SimulateEscalation.true_tox[1]");
  req.true_tox = {};
  ExpectInvalid(req, "SimulateEscalation.true_tox");

  req = Request("boin");
  req.design.target = 1.0;
  ExpectInvalid(req, "SimulateEscalation.design.target");
  req = Request("boin");
  req.design.start_dose = 6;
  ExpectInvalid(req, "SimulateEscalation.design.start_dose");
  req = Request("boin");
  req.design.cohort_size = 0;
  ExpectInvalid(req, "SimulateEscalation.design.cohort_size");
  req = Request("crm");
  req.design.max_patients = 31;
  ExpectInvalid(req, "SimulateEscalation.design.max_patients");
  req = Request("boin");
  req.design.phi2 = 0.2;
  ExpectInvalid(req, "SimulateEscalation.design.phi2");
  req = Request("boin");
  req.design.elimination_cutoff = 1.5;
  ExpectInvalid(req, "SimulateEscalation.design.elimination_cutoff");
  req = Request("crm");
  req.design.overdose_probability = 0;
  ExpectInvalid(req, "SimulateEscalation.design.overdose_probability");
  req = Request("mtpi");
  ExpectInvalid(req, "SimulateEscalation.design.design");
  req = Request("3+3");
  req.trials = 0;
  ExpectInvalid(req, "SimulateEscalation.trials");
  req.trials = 1000001;
  ExpectInvalid(req, "SimulateEscalation.trials");
  // Work bounds: 1e6 CRM trials of 10 cohorts are 1e7 updates (allowed
  // only up to that); 1e6 BOIN trials of 300 patients exceed 1e8 patients.
  req = Request("crm");
  req.trials = 1000000;
  req.design.max_patients = 33;
  ExpectInvalid(req, "SimulateEscalation.trials");
  req = Request("boin");
  req.trials = 1000000;
  req.design.max_patients = 300;
  ExpectInvalid(req, "SimulateEscalation.trials");
}

// The same seed gives the same answer, and a trial's outcome does not depend
// on how many trials run (trial i has its own stream).
TEST(SimulateEscalationTest, SameSeedSameAnswer) {
  for (const char* design : {"3+3", "boin", "crm"}) {
    auto req = Request(design);
    req.trials = 500;
    auto a = SimulateEscalation(req);
    auto b = SimulateEscalation(req);
    ASSERT_TRUE(a.ok() && b.ok()) << design;
    EXPECT_EQ(a->selection_pct, b->selection_pct) << design;
    EXPECT_EQ(a->patients_mean, b->patients_mean) << design;
    EXPECT_EQ(a->dlt_mean, b->dlt_mean) << design;
    // Trial i is the design run on Rng::ForTrial(seed, i), whatever the count.
    req.trials = 3;
    auto three = SimulateEscalation(req);
    auto finder = MakeDoseFinder(req.design, 5, "design");
    ASSERT_TRUE(three.ok() && finder.ok());
    const FixedRateSource source(req.true_tox);
    std::vector<double> mean(5, 0);
    for (int i = 0; i < 3; ++i) {
      Rng rng = Rng::ForTrial(req.seed, i);
      const TrialRecord r = (*finder)->Run(source, rng);
      for (int d = 0; d < 5; ++d) mean[d] += r.patients[d] / 3.0;
    }
    for (int d = 0; d < 5; ++d) EXPECT_NEAR(three->patients_mean[d], mean[d], 1e-12) << design;
  }
}

// Two seeds agree within 4.5 standard errors of a proportion (2000 trials)
// on every dose's selection percentage, for every design.
TEST(SimulateEscalationTest, SeedsAgreeWithinMonteCarloError) {
  for (const char* design : {"3+3", "boin", "crm"}) {
    auto req = Request(design);
    auto a = SimulateEscalation(req);
    req.seed = 20240607;
    auto b = SimulateEscalation(req);
    ASSERT_TRUE(a.ok() && b.ok()) << design;
    EXPECT_NE(a->selection_pct, b->selection_pct) << design;
    for (std::size_t d = 0; d < 5; ++d) {
      const double p = (a->selection_pct[d] + b->selection_pct[d]) / 200;
      const double se_diff = 100 * std::sqrt(2 * p * (1 - p) / req.trials);
      EXPECT_NEAR(a->selection_pct[d], b->selection_pct[d], 4.5 * se_diff + 1e-9)
          << design << " dose " << d + 1;
    }
  }
}

// Totals are the sums of the per-dose means; 3+3 on rates (0, 0, 1) treats
// 3 + 6 + 3 patients (dose 2 expanded after dose 3's 3/3) and selects dose 2.
TEST(SimulateEscalationTest, SummaryArithmetic) {
  auto req = Request("3+3");
  req.true_tox = {0, 0, 1};
  req.trials = 10;
  auto oc = SimulateEscalation(req);
  ASSERT_TRUE(oc.ok());
  EXPECT_EQ(oc->selection_pct, (std::vector<double>{0, 100, 0}));
  EXPECT_EQ(oc->patients_mean, (std::vector<double>{3, 6, 3}));
  EXPECT_EQ(oc->dlt_mean, (std::vector<double>{0, 0, 3}));
  EXPECT_DOUBLE_EQ(oc->patients_total_mean, 12);
  EXPECT_DOUBLE_EQ(oc->dlt_total_mean, 3);
  EXPECT_DOUBLE_EQ(oc->early_stop_pct, 0);
  // Closest to 0.3: both 0-rate doses are 0.3 away, the 1-rate dose 0.7.
  EXPECT_DOUBLE_EQ(oc->correct_selection_pct, 100);
  EXPECT_EQ(oc->design, "3+3");
  EXPECT_FALSE(oc->working.method.empty());
}

// The uniform has mean 1/2 and variance 1/12, the normal mean 0 and variance
// 1 (200000 draws, 5 standard errors); streams of different trials differ.
TEST(RngTest, UniformAndNormalMoments) {
  Rng rng(42);
  const int n = 200000;
  double su = 0, su2 = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    su2 += u * u;
    const double z = rng.Normal();
    sn += z;
    sn2 += z * z;
  }
  EXPECT_NEAR(su / n, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(su2 / n - (su / n) * (su / n), 1.0 / 12, 0.002);
  EXPECT_NEAR(sn / n, 0, 5 / std::sqrt(n));
  EXPECT_NEAR(sn2 / n, 1, 5 * std::sqrt(2.0 / n));
  EXPECT_NE(Rng::ForTrial(1, 0).Next(), Rng::ForTrial(1, 1).Next());
  EXPECT_NE(Rng::ForTrial(1, 0).Next(), Rng::ForTrial(2, 0).Next());
  EXPECT_EQ(Rng::ForTrial(5, 9).Next(), Rng::ForTrial(5, 9).Next());
}

}  // namespace
}  // namespace fedrx::trial
