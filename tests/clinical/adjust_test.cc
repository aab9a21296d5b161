// Risk adjustment: likelihood-ratio estimation and its application to the
// base rates.
#include "tests/clinical/beta_pairs.h"
#include "services/clinical/adjust.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace fedrx::clinical {
namespace {

BaseRates Overall() { return *LookupBaseRates("all_indications"); }

using test_support::BetaPairs;

// A logistic LR model with log LR(r) = -3 logit(r) (equal class counts).
LikelihoodRatioModel TrueModel() {
  LikelihoodRatioModel m;
  m.method = LrMethod::kLogistic;
  m.n_approved = m.n_failed = 1;
  m.intercept = 0.0;
  m.slope = -3.0;
  return m;
}

// With LR = 1 (log LR = 0) every transition and the LOA equal the base.
TEST(AdjustTest, NeutralLikelihoodRatioReturnsBase) {
  auto a = AdjustByLogLr(Overall(), 0.0);
  ASSERT_TRUE(a.ok()) << a.status();
  for (int k = 0; k < kTransitionCount; ++k) EXPECT_DOUBLE_EQ(a->adjusted[k], a->base[k]);
  EXPECT_DOUBLE_EQ(a->adjusted_loa, a->base_loa);
  auto b = AdjustForRisk(Overall(), LikelihoodRatioModel::Neutral(), 0.7);
  ASSERT_TRUE(b.ok());
  for (int k = 0; k < kTransitionCount; ++k) EXPECT_DOUBLE_EQ(b->adjusted[k], b->base[k]);
}

// Weights follow the expected safety failures (Tufts shares 1/3, 0.17, 1/3, 0):
// by hand, masses 0.48/3, 0.711*0.17, 0.422/3, 0 -> w = 0.37956, 0.28674, 0.33370, 0.
TEST(AdjustTest, WeightsFollowSafetyFailureMass) {
  auto a = AdjustByLogLr(Overall(), 1.0);
  ASSERT_TRUE(a.ok());
  EXPECT_NEAR(a->weight[0], 0.16 / 0.4215333, 1e-5);
  EXPECT_NEAR(a->weight[1], 0.12087 / 0.4215333, 1e-5);
  EXPECT_NEAR(a->weight[2], 0.1406667 / 0.4215333, 1e-5);
  EXPECT_DOUBLE_EQ(a->weight[3], 0.0);
  EXPECT_DOUBLE_EQ(a->adjusted[3], 0.906);  // filing -> approval left at base
  // logit p' = logit p + w log LR, by hand for Phase I -> II.
  EXPECT_NEAR(Logit(a->adjusted[0]), Logit(0.52) + a->weight[0], 1e-12);
  EXPECT_NEAR(a->adjusted_loa,
              a->adjusted[0] * a->adjusted[1] * a->adjusted[2] * a->adjusted[3], 1e-15);
}

// A higher predicted toxicity risk never raises any transition or the LOA.
TEST(AdjustTest, MonotoneDecreasingInRisk) {
  const auto model = TrueModel();
  double prev_loa = 1.0;
  std::array<double, kTransitionCount> prev{1, 1, 1, 1};
  for (double r = 0.0; r <= 1.0; r += 0.05) {
    auto a = AdjustForRisk(Overall(), model, r);
    ASSERT_TRUE(a.ok()) << r;
    for (int k = 0; k < 3; ++k) {
      EXPECT_LT(a->adjusted[k], prev[k]) << "r=" << r << " k=" << k;
      prev[k] = a->adjusted[k];
    }
    EXPECT_LT(a->adjusted_loa, prev_loa);
    prev_loa = a->adjusted_loa;
  }
  // Low risk raises the LOA above base, high risk lowers it.
  EXPECT_GT(AdjustForRisk(Overall(), model, 0.1)->adjusted_loa, 0.0787);
  EXPECT_LT(AdjustForRisk(Overall(), model, 0.9)->adjusted_loa, 0.0787);
  EXPECT_NEAR(AdjustForRisk(Overall(), model, 0.5)->adjusted_loa, 0.52 * 0.289 * 0.578 * 0.906,
              1e-12);
}

// Even extreme evidence keeps every probability strictly inside (0,1).
TEST(AdjustTest, StaysInsideOpenUnitInterval) {
  for (double log_lr : {-1e6, -50.0, 50.0, 1e6}) {
    auto a = AdjustByLogLr(Overall(), log_lr);
    ASSERT_TRUE(a.ok());
    for (int k = 0; k < kTransitionCount; ++k) {
      EXPECT_GT(a->adjusted[k], 0.0);
      EXPECT_LT(a->adjusted[k], 1.0);
    }
    EXPECT_GT(a->adjusted_loa, 0.0);
    EXPECT_LT(a->adjusted_loa, 1.0);
  }
  auto steep = TrueModel();
  steep.slope = -50;
  for (double r : {0.0, 1.0}) {
    auto a = AdjustForRisk(Overall(), steep, r);
    ASSERT_TRUE(a.ok());
    EXPECT_GT(a->adjusted_loa, 0.0);
    EXPECT_LT(a->adjusted_loa, 1.0);
  }
}

// The logistic estimate recovers the generating log LR = -3 logit r.
TEST(AdjustTest, LogisticRecoversKnownLikelihoodRatio) {
  Working working;
  auto m = EstimateLikelihoodRatio(BetaPairs(5000, 7), {}, &working);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NEAR(m->slope, -3.0, 0.15);
  for (double r : {0.1, 0.3, 0.5, 0.7, 0.9}) {
    EXPECT_NEAR(m->LogLr(r), -3.0 * Logit(r), 0.25) << r;
  }
  EXPECT_GE(working.size(), 3u);
  EXPECT_EQ(working[0].values[0].name, "n_approved");
  EXPECT_DOUBLE_EQ(working[0].values[0].value, 5000.0);
}

// The binned estimate is monotone non-increasing in risk, and each bin's
// LR = P(bin | approved) / P(bin | failed) is an average of the true LR over
// the bin, so it lies between the truth at the bin's two edges (plus sampling
// error and the +0.5 smoothing).
TEST(AdjustTest, BinnedIsMonotoneAndBracketedByTruth) {
  LrOptions opt;
  opt.method = LrMethod::kBinned;
  opt.bins = 10;
  auto m = EstimateLikelihoodRatio(BetaPairs(5000, 11), opt);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->bin_log_lr.size(), m->bin_upper.size());
  ASSERT_GE(m->bin_upper.size(), 8u);
  for (std::size_t j = 1; j < m->bin_log_lr.size(); ++j) {
    EXPECT_LE(m->bin_log_lr[j], m->bin_log_lr[j - 1]);
    const double lower = m->bin_upper[j - 1];
    const double upper = m->bin_upper[j];
    EXPECT_LE(m->bin_log_lr[j], -3.0 * Logit(lower) + 0.3) << "bin " << j;
    if (upper < 1.0) {
      EXPECT_GE(m->bin_log_lr[j], -3.0 * Logit(upper) - 0.3) << "bin " << j;
    }
  }
  EXPECT_GE(m->bin_log_lr[0], -3.0 * Logit(m->bin_upper[0]) - 0.3);
  EXPECT_GT(m->LogLr(0.2), 1.5);   // truth 4.16
  EXPECT_LT(m->LogLr(0.8), -1.5);  // truth -4.16
}

// Bad inputs are InvalidArgument with the field named.
TEST(AdjustTest, BadInputIsInvalidArgumentWithWhere) {
  auto empty = EstimateLikelihoodRatio({});
  EXPECT_EQ(empty.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.status().where(), "pairs");

  std::vector<RiskLabel> nan{{0.2, true}, {std::nan(""), false}};
  auto n = EstimateLikelihoodRatio(nan);
  EXPECT_EQ(n.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(n.status().where(), "pairs[1].risk");

  std::vector<RiskLabel> out{{0.2, true}, {1.5, false}};
  EXPECT_EQ(EstimateLikelihoodRatio(out).status().where(), "pairs[1].risk");

  std::vector<RiskLabel> one{{0.2, true}, {0.4, true}};
  auto o = EstimateLikelihoodRatio(one);
  EXPECT_EQ(o.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(o.status().where(), "pairs[].approved");

  LrOptions opt;
  opt.method = LrMethod::kBinned;
  opt.bins = 1;
  EXPECT_EQ(EstimateLikelihoodRatio(BetaPairs(10, 1), opt).status().where(), "options.bins");

  for (double r : {-0.01, 1.01, std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto a = AdjustForRisk(Overall(), TrueModel(), r);
    EXPECT_EQ(a.status().code(), core::StatusCode::kInvalidArgument) << r;
    EXPECT_EQ(a.status().where(), "risk");
  }
  auto h = AdjustForRisk(*LookupBaseRates("hematology"), TrueModel(), 0.3);
  EXPECT_EQ(h.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.status().where(), "base.transition[0]");
  EXPECT_EQ(AdjustByLogLr(Overall(), std::nan("")).status().where(), "log_lr");
}

// Perfectly separated data makes the logistic fit diverge: FailedPrecondition.
TEST(AdjustTest, SeparatedDataFailsPrecondition) {
  std::vector<RiskLabel> sep{{0.1, true}, {0.2, true}, {0.8, false}, {0.9, false}};
  auto m = EstimateLikelihoodRatio(sep);
  EXPECT_EQ(m.status().code(), core::StatusCode::kFailedPrecondition);
  LrOptions opt;
  opt.method = LrMethod::kBinned;
  opt.bins = 2;
  auto b = EstimateLikelihoodRatio(sep, opt);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_GT(b->LogLr(0.1), 0.0);
  EXPECT_LT(b->LogLr(0.9), 0.0);
}

}  // namespace
}  // namespace fedrx::clinical
