#include "services/coordinator/robust_strategy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "services/coordinator/strategy.h"

namespace fedrx::coordinator {
namespace {

std::vector<float> Aggregate(Strategy& s, const std::vector<std::vector<float>>& updates,
                       const std::vector<double>& weights = {}) {
  s.Begin(updates.at(0).size());
  for (std::size_t i = 0; i < updates.size(); ++i) {
    EXPECT_TRUE(s.Accept(updates[i], weights.empty() ? 1.0 : weights[i]).ok());
  }
  auto out = s.Finish();
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<float>{};
}

double Distance(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s);
}

TEST(RobustStrategyTest, MedianOfFiveIgnoresTwoOutliers) {
  CoordinateMedian median;
  const auto out = Aggregate(median, {{1, 10}, {2, 20}, {3, 30}, {1000, -1000}, {-1000, 1e6}});
  EXPECT_EQ(out, (std::vector<float>{2, 20}));
}

TEST(RobustStrategyTest, MedianOfAnEvenCountAveragesTheMiddleTwo) {
  CoordinateMedian median;
  EXPECT_EQ(Aggregate(median, {{1}, {4}, {2}, {100}}), (std::vector<float>{3}));
}

TEST(RobustStrategyTest, MedianIgnoresSampleCounts) {
  CoordinateMedian median;
  EXPECT_EQ(Aggregate(median, {{1}, {2}, {50}}, {1, 1, 1e9}), (std::vector<float>{2}));
}

TEST(RobustStrategyTest, TrimmedMeanDropsTheExtremesPerCoordinate) {
  // beta 0.2 of 5: one value dropped from each end.
  TrimmedMean trimmed(0.2);
  const auto out = Aggregate(trimmed, {{1, 5}, {2, -100}, {3, 6}, {4, 7}, {100, 8}});
  // coordinate 0: {2, 3, 4} -> 3; coordinate 1: {5, 6, 7} -> 6.
  EXPECT_FLOAT_EQ(out[0], 3.0f);
  EXPECT_FLOAT_EQ(out[1], 6.0f);
  // beta 0.4 of 10 drops 4 from each end: the mean of the middle two.
  TrimmedMean more(0.4);
  const auto mid = Aggregate(more, {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {90}});
  EXPECT_FLOAT_EQ(mid[0], 4.5f);
  // beta 0 is the plain mean.
  TrimmedMean none(0);
  EXPECT_FLOAT_EQ(Aggregate(none, {{1}, {2}, {6}})[0], 3.0f);
}

TEST(RobustStrategyTest, KrumPicksFromTheHonestCluster) {
  // Seven updates near (1, 1), two far away, f = 2.
  std::vector<std::vector<float>> u = {{1.0f, 1.1f}, {0.9f, 1.0f}, {1.1f, 0.9f}, {1.0f, 1.0f},
                                       {0.95f, 1.05f}, {1.05f, 0.95f}, {1.02f, 0.98f},
                                       {50, 50},     {-40, 60}};
  Krum krum(2, 1);
  const auto out = Aggregate(krum, u);
  ASSERT_EQ(krum.chosen().size(), 1u);
  EXPECT_LT(krum.chosen()[0], 7u);
  EXPECT_LT(Distance(out, {1, 1}), 0.2);
  // Multi-Krum with m = 0 averages the n - f = 7 best: exactly the honest ones.
  Krum multi(2, 0);
  const auto avg = Aggregate(multi, u);
  ASSERT_EQ(multi.chosen().size(), 7u);
  for (std::size_t i : multi.chosen()) EXPECT_LT(i, 7u);
  EXPECT_NEAR(avg[0], (1.0 + 0.9 + 1.1 + 1.0 + 0.95 + 1.05 + 1.02) / 7, 1e-6);
  EXPECT_NEAR(avg[1], (1.1 + 1.0 + 0.9 + 1.0 + 1.05 + 0.95 + 0.98) / 7, 1e-6);
}

TEST(RobustStrategyTest, KrumScoresAreSumsOverTheNearestNeighbours) {
  // 1-D, n = 5, f = 1: each score sums the n - f - 2 = 2 smallest squared
  // distances. Points 0, 1, 3, 4, 10:
  //   0: {1, 9, 16, 100} -> 1 + 9 = 10;  1: {1, 4, 9, 81} -> 5;
  //   3: {9, 4, 1, 49} -> 5;  4: {16, 9, 1, 36} -> 10;  10: {100, 81, 49, 36} -> 85.
  // Lowest: points 1 and 3 (tie, first accepted wins).
  Krum krum(1, 1);
  const auto out = Aggregate(krum, {{0}, {1}, {3}, {4}, {10}});
  EXPECT_EQ(out, (std::vector<float>{1}));
  Krum two(1, 2);
  EXPECT_EQ(Aggregate(two, {{0}, {1}, {3}, {4}, {10}}), (std::vector<float>{2}));
}

TEST(RobustStrategyTest, KrumNeedsTwoFPlusThreeUpdates) {
  Krum krum(2, 1);
  krum.Begin(1);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(krum.Accept(std::vector<float>{float(i)}, 1).ok());
  auto out = krum.Finish();
  EXPECT_EQ(out.status().code(), core::StatusCode::kFailedPrecondition);
}

TEST(RobustStrategyTest, SignFlippedAttackersMoveFedAvgButNotMedianOrKrum) {
  // Ten sites: eight honest updates around the true model t, two attackers
  // that send -10 (t - g) + g (sign flipped and scaled), g the global model.
  std::mt19937 rng(42);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  const std::size_t d = 50;
  std::vector<float> global(d, 0.0f), target(d);
  for (std::size_t j = 0; j < d; ++j) target[j] = 1.0f + 0.01f * static_cast<float>(j);
  std::vector<std::vector<float>> updates;
  for (int i = 0; i < 8; ++i) {
    std::vector<float> u(d);
    for (std::size_t j = 0; j < d; ++j) u[j] = target[j] + noise(rng);
    updates.push_back(u);
  }
  for (int i = 0; i < 2; ++i) {
    std::vector<float> u(d);
    for (std::size_t j = 0; j < d; ++j) u[j] = global[j] - 10.0f * (target[j] - global[j]);
    updates.push_back(u);
  }
  const double honest_scale = Distance(target, global);  // how far the honest step goes

  FedAvg fedavg;
  CoordinateMedian median;
  Krum krum(2, 1);
  Krum multi(2, 0);
  TrimmedMean trimmed(0.2);
  const double err_avg = Distance(Aggregate(fedavg, updates), target);
  const double err_median = Distance(Aggregate(median, updates), target);
  const double err_krum = Distance(Aggregate(krum, updates), target);
  const double err_multi = Distance(Aggregate(multi, updates), target);
  const double err_trimmed = Distance(Aggregate(trimmed, updates), target);
  // FedAvg lands on the wrong side of the global model: 0.8 t - 2 t = -1.2 t.
  EXPECT_GT(err_avg, 2.0 * honest_scale);
  for (double err : {err_median, err_krum, err_multi, err_trimmed}) {
    EXPECT_LT(err, 0.1 * honest_scale);
  }
}

TEST(RobustStrategyTest, NormBoundClipsDeltasFromTheGlobalModel) {
  const std::vector<float> global = {1, 1};
  NormBounded bounded(1.0);
  EXPECT_TRUE(bounded.uses_global());
  bounded.BeginFrom(global);
  // Delta (3, 4): norm 5, scaled to (0.6, 0.8). Delta (0, 0.5): kept.
  ASSERT_TRUE(bounded.Accept(std::vector<float>{4, 5}, 1).ok());
  ASSERT_TRUE(bounded.Accept(std::vector<float>{1, 1.5f}, 3).ok());
  EXPECT_EQ(bounded.clipped(), 1u);
  auto out = bounded.Finish();
  ASSERT_TRUE(out.ok());
  // Sample-weighted mean: (1 * (1.6, 1.8) + 3 * (1, 1.5)) / 4.
  EXPECT_NEAR((*out)[0], (1.6 + 3.0) / 4, 1e-6);
  EXPECT_NEAR((*out)[1], (1.8 + 4.5) / 4, 1e-6);
}

TEST(RobustStrategyTest, NormBoundWithoutTheGlobalModelRefuses) {
  NormBounded bounded(1.0);
  bounded.Begin(2);
  EXPECT_EQ(bounded.Accept(std::vector<float>{1, 1}, 1).code(),
            core::StatusCode::kFailedPrecondition);
}

TEST(RobustStrategyTest, BufferedRulesRefuseWrongSizesAndWeights) {
  CoordinateMedian median;
  median.Begin(3);
  EXPECT_EQ(median.Accept(std::vector<float>{1, 2}, 1).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(median.Accept(std::vector<float>{1, 2, 3}, 0).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(median.accepted(), 0u);
  EXPECT_EQ(median.Finish().status().code(), core::StatusCode::kFailedPrecondition);
}

TEST(RobustStrategyTest, MakeStrategyBuildsEachNamedRuleWithTheSpecsParameters) {
  codec::StudySpec spec;
  for (const char* name : {"fedavg", "median", "trimmed_mean", "krum", "multikrum"}) {
    spec.strategy = name;
    auto s = MakeStrategy(spec);
    ASSERT_TRUE(s.ok()) << name << ": " << s.status();
    EXPECT_STREQ((*s)->name(), name);
  }
  spec.strategy = "norm_bound";
  EXPECT_FALSE(MakeStrategy(spec).ok());  // needs a bound
  spec.norm_bound = 2.5f;
  ASSERT_TRUE(MakeStrategy(spec).ok());
  spec.strategy = "trimmed_mean";
  spec.trim_fraction = 0.5f;
  EXPECT_EQ(MakeStrategy(spec).status().code(), core::StatusCode::kInvalidArgument);
  spec.strategy = "krum";
  spec.krum_selected = 3;
  EXPECT_EQ(MakeStrategy(spec).status().code(), core::StatusCode::kInvalidArgument);
  spec.strategy = "bulyan";
  EXPECT_EQ(MakeStrategy(spec).status().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::coordinator
