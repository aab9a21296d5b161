// Virtual trials: validation, the default modified-Fibonacci levels, the
// population exposure summary (exact without variability; log-normal
// percentiles and population P(DLT) against quadrature with it), and the
// escalation on per-patient exposures, whose DLTs are marginally Bernoulli
// with the population P(DLT), so its operating characteristics agree with a
// fixed-rate simulation on those rates within Monte Carlo error.
#include "services/trial/virtual_trial.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "services/trial/escalation.h"

namespace fedrx::trial {
namespace {

codec::RunVirtualTrial Request() {
  codec::RunVirtualTrial r;
  r.model.kind = "oral_1cmt";
  r.model.cl_l_per_h = 10;
  r.model.v_l = 50;
  r.model.ka_per_h = 1.2;
  r.model.bioavailability = 0.8;
  r.bsv_cv = 0.3;
  r.start_dose_mg = 25;
  r.tox_auc50 = 30;
  r.tox_hill = 3;
  r.response_auc50 = 8;
  r.response_hill = 1;
  r.response_emax = 0.9;
  r.design.design = "boin";
  r.design.target = 0.3;
  r.trials = 2000;
  r.population = 20000;
  r.seed = 3;
  return r;
}

void ExpectInvalid(const codec::RunVirtualTrial& r, const std::string& where) {
  auto out = RunVirtualTrial(r);
  ASSERT_FALSE(out.ok()) << where;
  EXPECT_EQ(out.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().where(), where);
}

TEST(VirtualTrialTest, RejectsBadRequests) {
  auto r = Request();
  r.model.cl_l_per_h = -1;
  ExpectInvalid(r, "RunVirtualTrial.model.cl_l_per_h");
  r = Request();
  r.start_dose_mg = 0;
  ExpectInvalid(r, "RunVirtualTrial.start_dose_mg");
  r = Request();
  r.dose_mg = {10, 5};
  ExpectInvalid(r, "RunVirtualTrial.dose_mg[1]");
  r = Request();
  r.tox_auc50 = 0;
  ExpectInvalid(r, "RunVirtualTrial.tox_auc50");
  r = Request();
  r.bsv_cv = -0.1;
  ExpectInvalid(r, "RunVirtualTrial.bsv_cv");
  r = Request();
  r.response_emax = 1.5;
  ExpectInvalid(r, "RunVirtualTrial.response_emax");
  r = Request();
  r.population = 0;
  ExpectInvalid(r, "RunVirtualTrial.population");
  r = Request();
  r.trials = 0;
  ExpectInvalid(r, "RunVirtualTrial.trials");
  r = Request();
  r.design.target = 0;
  ExpectInvalid(r, "RunVirtualTrial.design.target");
}

// Without variability every subject has the typical AUC = F D / CL, and
// P(DLT), P(response) are the curves at that AUC; default levels are the
// start dose times {1, 2, 3.3, 5, 7}.
TEST(VirtualTrialTest, NoVariabilityIsExact) {
  auto r = Request();
  r.bsv_cv = 0;
  r.population = 50;
  r.trials = 20;
  auto out = RunVirtualTrial(r);
  ASSERT_TRUE(out.ok()) << out.status();
  const double mult[] = {1, 2, 3.3, 5, 7};
  ASSERT_EQ(out->dose_mg.size(), 5u);
  for (int d = 0; d < 5; ++d) {
    EXPECT_DOUBLE_EQ(out->dose_mg[d], 25 * mult[d]);
    const double auc = 0.8 * out->dose_mg[d] / 10;
    EXPECT_NEAR(out->auc_median[d], auc, 1e-12);
    EXPECT_NEAR(out->auc_p05[d], auc, 1e-12);
    EXPECT_NEAR(out->auc_p95[d], auc, 1e-12);
    EXPECT_NEAR(out->p_dlt[d], 1 / (1 + std::pow(30 / auc, 3)), 1e-12);
    EXPECT_NEAR(out->p_response[d], 0.9 * auc / (8 + auc), 1e-12);
  }
}

// With CV 0.3 (omega^2 = ln 1.09): AUC percentiles are typical x
// exp(z_q omega) and the population P(DLT) is E[curve(AUC e^-eta)], checked
// by quadrature, within Monte Carlo error of 20000 subjects.
TEST(VirtualTrialTest, PopulationExposureMatchesLogNormal) {
  auto r = Request();
  r.trials = 10;
  auto out = RunVirtualTrial(r);
  ASSERT_TRUE(out.ok()) << out.status();
  const double omega = std::sqrt(std::log(1.09));
  for (int d = 0; d < 5; ++d) {
    const double auc = 0.8 * out->dose_mg[d] / 10;
    // SE of a sample quantile of log AUC, relative: ~ omega * 2.1 / sqrt(n).
    const double tol = 5 * omega * 2.1 / std::sqrt(20000.0);
    EXPECT_NEAR(std::log(out->auc_median[d] / auc), 0, tol);
    EXPECT_NEAR(std::log(out->auc_p05[d] / auc), -1.6448536 * omega, tol);
    EXPECT_NEAR(std::log(out->auc_p95[d] / auc), 1.6448536 * omega, tol);
    // E over eta ~ N(0, omega^2) of the curve at AUC e^-eta (Simpson).
    double p = 0, p2 = 0;
    const int m = 4000;
    for (int i = 0; i <= m; ++i) {
      const double z = -10 + 20.0 * i / m;
      const double wgt = ((i == 0 || i == m) ? 1 : (i % 2 ? 4 : 2)) * (20.0 / m / 3) *
                         std::exp(-z * z / 2) / std::sqrt(2 * M_PI);
      const double c = 1 / (1 + std::pow(30 / (auc * std::exp(-omega * z)), 3));
      p += wgt * c;
      p2 += wgt * c * c;
    }
    const double se = std::sqrt((p2 - p * p) / 20000);
    EXPECT_NEAR(out->p_dlt[d], p, 5 * se + 1e-12) << "dose " << d + 1;
    EXPECT_GT(out->p_response[d], 0);
    EXPECT_LT(out->p_response[d], 0.9);
    if (d > 0) {
      EXPECT_GT(out->p_dlt[d], out->p_dlt[d - 1]);
    }
  }
}

// Each patient's DLT is marginally Bernoulli(population P(DLT)) and patients
// are independent, so the virtual trial's selection percentages agree with a
// fixed-rate simulation on out.p_dlt within 4.5 standard errors; the same seed
// gives the same answer.
TEST(VirtualTrialTest, EscalationMatchesFixedRatesOnPopulationPdlt) {
  for (const char* design : {"boin", "crm", "3+3"}) {
    auto r = Request();
    r.design.design = design;
    auto out = RunVirtualTrial(r);
    ASSERT_TRUE(out.ok()) << out.status();
    codec::SimulateEscalation fixed;
    fixed.design = r.design;
    fixed.true_tox = out->p_dlt;
    fixed.trials = r.trials;
    fixed.seed = 12345;
    auto oc = SimulateEscalation(fixed);
    ASSERT_TRUE(oc.ok());
    for (int d = 0; d < 5; ++d) {
      const double p = (out->oc.selection_pct[d] + oc->selection_pct[d]) / 200;
      const double se = 100 * std::sqrt(2 * p * (1 - p) / r.trials);
      EXPECT_NEAR(out->oc.selection_pct[d], oc->selection_pct[d], 4.5 * se + 1e-9)
          << design << " dose " << d + 1;
    }
    auto again = RunVirtualTrial(r);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->oc.selection_pct, out->oc.selection_pct);
    EXPECT_EQ(again->p_dlt, out->p_dlt);
    EXPECT_EQ(out->oc.design, design);
    EXPECT_FALSE(out->working.notes.empty());
  }
}

}  // namespace
}  // namespace fedrx::trial
