// Evaluation of the adjustment: the scores against hand-computed values and
// against R, and the comparison of adjusted with unadjusted probabilities.
#include "tests/clinical/beta_pairs.h"
#include "services/clinical/evaluate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>

#include "tests/support/rscript.h"

namespace fedrx::clinical {
namespace {

using test_support::BetaPairs;

// Four compounds scored by hand: Brier = (0.01+0.04+0.36+0.36)/4 = 0.1925;
// log loss = -(ln .9 + ln .8 + ln .4 + ln .4)/4; AUC: 3 of 4 approved-failed
// pairs ordered right = 0.75; two bins: [0,.5) mean .3 observed .5,
// [.5,1] mean .75 observed .5, calibration error .5*.2 + .5*.25 = .225.
TEST(EvaluateTest, ScoresMatchHandComputedValues) {
  auto s = ScoreProbabilities({0.9, 0.2, 0.6, 0.4}, {true, false, false, true}, 2);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_NEAR(s->brier, 0.1925, 1e-12);
  EXPECT_NEAR(s->log_loss, -(std::log(0.9) + std::log(0.8) + 2 * std::log(0.4)) / 4, 1e-12);
  EXPECT_NEAR(s->roc_auc, 0.75, 1e-12);
  ASSERT_EQ(s->calibration.size(), 2u);
  EXPECT_EQ(s->calibration[0].count, 2u);
  EXPECT_NEAR(s->calibration[0].mean_predicted, 0.3, 1e-12);
  EXPECT_NEAR(s->calibration[0].observed_rate, 0.5, 1e-12);
  EXPECT_NEAR(s->calibration[1].mean_predicted, 0.75, 1e-12);
  EXPECT_NEAR(s->calibration[1].observed_rate, 0.5, 1e-12);
  EXPECT_NEAR(s->calibration_error, 0.225, 1e-12);
}

// Ties count one half: a constant prediction has AUC exactly 0.5.
TEST(EvaluateTest, TiedPredictionsGiveHalfAuc) {
  auto s = ScoreProbabilities({0.3, 0.3, 0.3}, {true, false, false});
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->roc_auc, 0.5);
  ASSERT_EQ(s->calibration.size(), 1u);
  EXPECT_NEAR(s->calibration[0].observed_rate, 1.0 / 3.0, 1e-12);
}

// On held-out data from the generating model, the adjusted probability beats
// the constant base (the held-out prevalence) on every score.
TEST(EvaluateTest, AdjustmentImprovesOnBaseWithInformativeRisk) {
  auto model = EstimateLikelihoodRatio(BetaPairs(2000, 3));
  ASSERT_TRUE(model.ok());
  const auto held_out = BetaPairs(1000, 5);
  auto ev = EvaluateAdjustment(held_out, *model, 0.5);
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_EQ(ev->n, 2000u);
  EXPECT_EQ(ev->n_approved, 1000u);
  EXPECT_DOUBLE_EQ(ev->base.roc_auc, 0.5);
  EXPECT_NEAR(ev->base.brier, 0.25, 1e-12);
  EXPECT_NEAR(ev->base.log_loss, std::log(2.0), 1e-12);
  EXPECT_GT(ev->adjusted.roc_auc, 0.85);
  EXPECT_LT(ev->adjusted.brier, 0.15);
  EXPECT_LT(ev->adjusted.log_loss, ev->base.log_loss);
  EXPECT_GT(ev->brier_skill, 0.4);
  EXPECT_LT(ev->adjusted.calibration_error, 0.05);
  EXPECT_EQ(ev->working.size(), 3u);
}

// An uninformative LR leaves the base scores unchanged.
TEST(EvaluateTest, NeutralModelEqualsBase) {
  auto ev = EvaluateAdjustment(BetaPairs(50, 9), LikelihoodRatioModel::Neutral(), 0.3);
  ASSERT_TRUE(ev.ok());
  EXPECT_DOUBLE_EQ(ev->adjusted.brier, ev->base.brier);
  EXPECT_DOUBLE_EQ(ev->adjusted.log_loss, ev->base.log_loss);
  EXPECT_DOUBLE_EQ(ev->brier_skill, 0.0);
}

// Bad inputs are InvalidArgument with the field named.
TEST(EvaluateTest, BadInputIsInvalidArgumentWithWhere) {
  const auto m = LikelihoodRatioModel::Neutral();
  EXPECT_EQ(EvaluateAdjustment({}, m, 0.5).status().where(), "pairs");
  EXPECT_EQ(EvaluateAdjustment({{0.1, true}, {-0.2, false}}, m, 0.5).status().where(),
            "pairs[1].risk");
  EXPECT_EQ(EvaluateAdjustment({{0.1, false}, {0.2, false}}, m, 0.5).status().where(),
            "pairs[].approved");
  auto b = EvaluateAdjustment({{0.1, true}, {0.2, false}}, m, 1.0);
  EXPECT_EQ(b.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(b.status().where(), "base_probability");
  EXPECT_EQ(EvaluateAdjustment({{0.1, true}, {0.2, false}}, m, std::nan("")).status().where(),
            "base_probability");
  EXPECT_EQ(ScoreProbabilities({0.1}, {true, false}).status().where(), "probabilities");
  EXPECT_EQ(ScoreProbabilities({0.1, std::nan("")}, {true, false}).status().where(),
            "probabilities[1]");
  EXPECT_EQ(ScoreProbabilities({0.1, 0.2}, {true, true}).status().where(), "approved");
  EXPECT_EQ(ScoreProbabilities({0.1, 0.2}, {true, false}, 0).status().where(), "bins");
}

// Needs R (Rscript): Brier, log loss, AUC (from ranks) and the logistic fit
// of approval on logit(risk) (glm) agree with R on the same 400 compounds.
TEST(EvaluateRCompareTest, ScoresAndLogisticFitMatchR) {
  const auto pairs = BetaPairs(200, 21);
  auto model = EstimateLikelihoodRatio(pairs);
  ASSERT_TRUE(model.ok());
  std::vector<double> p;
  std::vector<bool> y;
  for (const auto& r : pairs) {
    p.push_back(Sigmoid(model->LogLr(r.risk)));
    y.push_back(r.approved);
  }
  auto s = ScoreProbabilities(p, y);
  ASSERT_TRUE(s.ok());

  std::ostringstream script;
  script.precision(17);
  script << "r <- c(";
  for (std::size_t i = 0; i < pairs.size(); ++i) script << (i ? "," : "") << pairs[i].risk;
  script << ")\ny <- c(";
  for (std::size_t i = 0; i < pairs.size(); ++i) script << (i ? "," : "") << (y[i] ? 1 : 0);
  script << ")\n"
            "out <- commandArgs(trailingOnly = TRUE)[1]\n"
            "x <- qlogis(pmin(pmax(r, 1e-6), 1 - 1e-6))\n"
            "fit <- glm(y ~ x, family = binomial)\n"
            "p <- plogis(coef(fit)[1] + coef(fit)[2] * x - log(sum(y) / sum(1 - y)))\n"
            "n1 <- sum(y); n0 <- sum(1 - y)\n"
            "auc <- (sum(rank(p)[y == 1]) - n1 * (n1 + 1) / 2) / (n1 * n0)\n"
            "v <- c(a = unname(coef(fit)[1]), b = unname(coef(fit)[2]),\n"
            "       brier = mean((p - y)^2),\n"
            "       logloss = -mean(y * log(p) + (1 - y) * log(1 - p)), auc = auc)\n"
            "writeLines(paste0(names(v), ',', format(v, digits = 17)), out)\n";
  auto r = testing::RunRscriptForValues(script.str(), std::chrono::seconds(60));
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_NEAR(model->intercept, r.Get("a"), 1e-6);
  EXPECT_NEAR(model->slope, r.Get("b"), 1e-6);
  EXPECT_NEAR(s->brier, r.Get("brier"), 1e-9);
  EXPECT_NEAR(s->log_loss, r.Get("logloss"), 1e-9);
  EXPECT_NEAR(s->roc_auc, r.Get("auc"), 1e-12);
}

}  // namespace
}  // namespace fedrx::clinical
