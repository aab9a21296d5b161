// Isotonic regression (pool-adjacent-violators) fits: known answers for
// unweighted and weighted pools, and the properties of the fit.
#include "services/trial/isotonic.h"

#include <gtest/gtest.h>

#include <vector>

namespace fedrx::trial {
namespace {

// Already non-decreasing input comes back unchanged.
TEST(IsotonicRegressionTest, MonotoneInputIsUnchanged) {
  const std::vector<double> x = {0.1, 0.2, 0.2, 0.5};
  EXPECT_EQ(IsotonicRegression(x), x);
}

// One violating pair is replaced by its mean.
TEST(IsotonicRegressionTest, PoolsOneViolatingPair) {
  const std::vector<double> fit = IsotonicRegression(std::vector<double>{0.1, 0.4, 0.2, 0.5});
  ASSERT_EQ(fit.size(), 4u);
  EXPECT_DOUBLE_EQ(fit[0], 0.1);
  EXPECT_DOUBLE_EQ(fit[1], 0.3);
  EXPECT_DOUBLE_EQ(fit[2], 0.3);
  EXPECT_DOUBLE_EQ(fit[3], 0.5);
}

// A pool that then violates its left neighbour is merged again:
// {4, 1, 1}: pool(4, 1) = 2.5 still exceeds 1, so all three pool to 2.
TEST(IsotonicRegressionTest, CascadingPools) {
  const std::vector<double> fit = IsotonicRegression(std::vector<double>{4, 1, 1});
  for (double v : fit) EXPECT_DOUBLE_EQ(v, 2.0);
  const std::vector<double> fit2 = IsotonicRegression(std::vector<double>{1, 5, 3, 2, 6});
  const std::vector<double> want = {1, 10.0 / 3, 10.0 / 3, 10.0 / 3, 6};
  ASSERT_EQ(fit2.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_DOUBLE_EQ(fit2[i], want[i]);
}

// Weights pull the pooled value towards the heavier observation.
TEST(IsotonicRegressionTest, WeightedPoolIsWeightedMean) {
  const std::vector<double> x = {0.6, 0.2};
  const std::vector<double> w = {1, 3};
  const std::vector<double> fit = IsotonicRegression(x, w);
  EXPECT_DOUBLE_EQ(fit[0], 0.3);
  EXPECT_DOUBLE_EQ(fit[1], 0.3);
}

// The fit is non-decreasing and preserves the weighted sum (a property of
// the least-squares projection onto the monotone cone).
TEST(IsotonicRegressionTest, FitIsMonotoneAndKeepsWeightedSum) {
  const std::vector<double> x = {0.5, 0.1, 0.7, 0.3, 0.3, 0.9, 0.2, 0.8};
  const std::vector<double> w = {2, 1, 4, 1, 3, 1, 5, 2};
  const std::vector<double> fit = IsotonicRegression(x, w);
  double sx = 0, sf = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (i > 0) {
      EXPECT_LE(fit[i - 1], fit[i] + 1e-15);
    }
    sx += w[i] * x[i];
    sf += w[i] * fit[i];
  }
  EXPECT_NEAR(sx, sf, 1e-12);
}

TEST(IsotonicRegressionTest, EmptyAndSingle) {
  EXPECT_TRUE(IsotonicRegression(std::vector<double>{}).empty());
  EXPECT_EQ(IsotonicRegression(std::vector<double>{0.4}), std::vector<double>{0.4});
}

}  // namespace
}  // namespace fedrx::trial
