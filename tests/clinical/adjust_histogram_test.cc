// The likelihood ratio estimated from the platform's aggregated CT_TOX score
// histogram (EstimateLikelihoodRatioFromHistogram): grouping at the pooled
// quantiles, the smoothed per-group LR worked by hand, monotonicity by
// pool-adjacent-violators, and each bad histogram refused with its field.
#include <gtest/gtest.h>

#include <cmath>

#include "services/clinical/adjust.h"

namespace fedrx::clinical {
namespace {

ml::ScoreHistogram Histogram(std::vector<std::uint64_t> approved,
                             std::vector<std::uint64_t> failed) {
  ml::ScoreHistogram h;
  h.neg = std::move(approved);  // CT_TOX 0
  h.pos = std::move(failed);    // CT_TOX 1
  return h;
}

// 4 bins, 2 groups: pooled counts 10, 10, 10, 10 cut at 20 (after bin 1).
// Group 0 (scores < 0.5): 18 approved, 2 failed; group 1: 12 approved, 8 failed.
// n_approved = 30, n_failed = 10, k = 2:
//   LR_0 = (18.5 / 31) / (2.5 / 11) = 2.62581, LR_1 = (12.5 / 31) / (8.5 / 11) = 0.52182.
TEST(HistogramLikelihoodRatioTest, GroupsAtPooledQuantilesAndSmoothsByHand) {
  Working working;
  HistogramLrOptions options;
  options.bins = 2;
  auto lr = EstimateLikelihoodRatioFromHistogram(Histogram({9, 9, 6, 6}, {1, 1, 4, 4}), options,
                                                 &working);
  ASSERT_TRUE(lr.ok()) << lr.status();
  EXPECT_EQ(lr->method, LrMethod::kBinned);
  EXPECT_EQ(lr->n_approved, 30u);
  EXPECT_EQ(lr->n_failed, 10u);
  ASSERT_EQ(lr->bin_upper.size(), 2u);
  EXPECT_DOUBLE_EQ(lr->bin_upper[0], 0.5);
  EXPECT_DOUBLE_EQ(lr->bin_upper[1], 1.0);
  EXPECT_NEAR(std::exp(lr->bin_log_lr[0]), (18.5 / 31) / (2.5 / 11), 1e-12);
  EXPECT_NEAR(std::exp(lr->bin_log_lr[1]), (12.5 / 31) / (8.5 / 11), 1e-12);
  // LogLr reads the step function: a low risk favours approval, a high one failure.
  EXPECT_DOUBLE_EQ(lr->LogLr(0.2), lr->bin_log_lr[0]);
  EXPECT_DOUBLE_EQ(lr->LogLr(0.9), lr->bin_log_lr[1]);
  EXPECT_GT(lr->LogLr(0.2), 0);
  EXPECT_LT(lr->LogLr(0.9), 0);
  EXPECT_FALSE(working.empty());
  EXPECT_EQ(working.front().values[0].value, 30);
}

// A raw LR that rises between two groups is pooled: the result is
// non-increasing in risk, and the pooled LR is that of the two groups'
// summed counts, between the two raw ones.
TEST(HistogramLikelihoodRatioTest, PoolsAdjacentViolatorsToMonotone) {
  HistogramLrOptions options;
  options.bins = 4;
  // Pooled 10 per bin; approved/failed: (5,5), (8,2), (4,6), (1,9): the
  // second group is more "approved" than the first, a violation.
  auto lr = EstimateLikelihoodRatioFromHistogram(Histogram({5, 8, 4, 1}, {5, 2, 6, 9}), options);
  ASSERT_TRUE(lr.ok()) << lr.status();
  ASSERT_EQ(lr->bin_log_lr.size(), 4u);
  for (std::size_t j = 1; j < 4; ++j) EXPECT_LE(lr->bin_log_lr[j], lr->bin_log_lr[j - 1]);
  const double n1 = 18, n0 = 22, k = 4;
  const auto raw = [&](double a, double f) {
    return std::log(((a + 0.5) / (n1 + 0.5 * k)) / ((f + 0.5) / (n0 + 0.5 * k)));
  };
  // The pooled block's LR is that of its summed counts (0.5 per bin it spans).
  EXPECT_NEAR(lr->bin_log_lr[0],
              std::log(((13 + 1.0) / (n1 + 0.5 * k)) / ((7 + 1.0) / (n0 + 0.5 * k))), 1e-12);
  EXPECT_LT(lr->bin_log_lr[0], raw(8, 2));
  EXPECT_GT(lr->bin_log_lr[0], raw(5, 5));
  EXPECT_DOUBLE_EQ(lr->bin_log_lr[0], lr->bin_log_lr[1]);
  EXPECT_NEAR(lr->bin_log_lr[2], raw(4, 6), 1e-12);
  EXPECT_NEAR(lr->bin_log_lr[3], raw(1, 9), 1e-12);
}

// Many empty fine bins (as 1000-bin histograms of a small validation fold
// are): groups never come out empty, and every compound is in one group.
TEST(HistogramLikelihoodRatioTest, SparseFineBinsGiveNonEmptyGroups) {
  std::vector<std::uint64_t> approved(1000, 0), failed(1000, 0);
  approved[10] = 40;
  approved[200] = 30;
  failed[200] = 3;
  failed[950] = 7;
  HistogramLrOptions options;
  options.bins = 5;
  auto lr = EstimateLikelihoodRatioFromHistogram(Histogram(approved, failed), options);
  ASSERT_TRUE(lr.ok()) << lr.status();
  // Three occupied fine bins: at most three groups.
  EXPECT_LE(lr->bin_upper.size(), 3u);
  EXPECT_GE(lr->bin_upper.size(), 2u);
  EXPECT_DOUBLE_EQ(lr->bin_upper.back(), 1.0);
  EXPECT_GT(lr->LogLr(0.0105), lr->LogLr(0.96));
  for (std::size_t j = 1; j < lr->bin_log_lr.size(); ++j) {
    EXPECT_LE(lr->bin_log_lr[j], lr->bin_log_lr[j - 1]);
  }
}

// Bad histograms and options are refused with the field named.
TEST(HistogramLikelihoodRatioTest, RefusesBadHistograms) {
  const auto where = [](const ml::ScoreHistogram& h, int bins = 2) {
    HistogramLrOptions o;
    o.bins = bins;
    auto r = EstimateLikelihoodRatioFromHistogram(h, o);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
    return r.status().where();
  };
  EXPECT_EQ(where(Histogram({}, {})), "histogram");
  EXPECT_EQ(where(Histogram({1, 2}, {1, 2, 3})), "histogram.pos");
  EXPECT_EQ(where(Histogram({0, 0}, {1, 2})), "histogram.neg");
  EXPECT_EQ(where(Histogram({3, 2}, {0, 0})), "histogram.pos");
  EXPECT_EQ(where(Histogram({3, 2}, {1, 1}), 1), "options.bins");
  EXPECT_EQ(where(Histogram({3, 2}, {1, 1}), 3), "options.bins");
}

// A score that ranks failed compounds lower than approved ones (as an
// anti-informative model does) is pooled into one block: LR = 1 everywhere.
TEST(HistogramLikelihoodRatioTest, ScoreRankingTheWrongWayGivesNoEvidence) {
  HistogramLrOptions options;
  options.bins = 4;
  auto lr = EstimateLikelihoodRatioFromHistogram(Histogram({1, 3, 6, 10}, {5, 3, 1, 1}), options);
  ASSERT_TRUE(lr.ok()) << lr.status();
  for (double r : {0.1, 0.3, 0.6, 0.9}) EXPECT_NEAR(lr->LogLr(r), 0.0, 1e-12) << r;
}

// All compounds in one fine bin: no score separates them, so LR = 1.
TEST(HistogramLikelihoodRatioTest, OneOccupiedBinIsNeutral) {
  HistogramLrOptions options;
  options.bins = 2;
  auto lr = EstimateLikelihoodRatioFromHistogram(Histogram({0, 5, 0}, {0, 3, 0}), options);
  ASSERT_TRUE(lr.ok()) << lr.status();
  EXPECT_DOUBLE_EQ(lr->LogLr(0.1), 0.0);
  EXPECT_DOUBLE_EQ(lr->LogLr(0.9), 0.0);
}

}  // namespace
}  // namespace fedrx::clinical
