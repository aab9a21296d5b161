#include "services/coordinator/server_optimizer.h"

#include <gtest/gtest.h>

#include <vector>

namespace fedrx::coordinator {
namespace {

ServerOptimizer Make(const char* name, float lr, float b1 = 0.9f, float b2 = 0.99f,
                     float tau = 1e-3f) {
  auto o = ServerOptimizer::Create({name, lr, b1, b2, tau});
  EXPECT_TRUE(o.ok()) << o.status();
  return std::move(*o);
}

TEST(ServerOptimizerTest, FedAvgAtRateOneIsTheAggregateBitForBit) {
  ServerOptimizer o = Make("fedavg", 1.0f);
  EXPECT_TRUE(o.identity());
  EXPECT_FALSE(o.stateful());
  std::vector<float> global = {1.0f, 2.0f}, agg = {1.1f, 1.7f};
  const std::vector<float> before = agg;
  ASSERT_TRUE(o.Step(global, agg).ok());
  EXPECT_EQ(agg, before);
}

TEST(ServerOptimizerTest, FedAvgWithAServerRateScalesTheStep) {
  ServerOptimizer o = Make("fedavg", 0.5f);
  EXPECT_FALSE(o.identity());
  std::vector<float> global = {1.0f, 2.0f}, agg = {2.0f, 1.0f};
  ASSERT_TRUE(o.Step(global, agg).ok());
  EXPECT_FLOAT_EQ(agg[0], 1.5f);
  EXPECT_FLOAT_EQ(agg[1], 1.5f);
}

TEST(ServerOptimizerTest, FedAvgMAccumulatesMomentum) {
  // beta 0.9, eta 1. Step 1: Delta 0.5, m = 0.5, x = 1.5.
  // Step 2 from 1.5 with aggregate 1.7: Delta 0.2, m = 0.45 + 0.2 = 0.65, x = 2.15.
  ServerOptimizer o = Make("fedavgm", 1.0f, 0.9f);
  std::vector<float> x = {1.5f};
  ASSERT_TRUE(o.Step(std::vector<float>{1.0f}, x).ok());
  EXPECT_FLOAT_EQ(x[0], 1.5f);
  std::vector<float> y = {1.7f};
  ASSERT_TRUE(o.Step(x, y).ok());
  EXPECT_NEAR(y[0], 2.15f, 1e-6);
  EXPECT_EQ(o.steps(), 2u);
}

TEST(ServerOptimizerTest, FedAdamTwoStepsByHand) {
  // eta 0.1, beta1 0.9, beta2 0.99, tau 1e-3, v starts at tau^2 = 1e-6.
  // Step 1: x = 1, aggregate 1.5, Delta = 0.5:
  //   m = 0.05, v = 0.99e-6 + 0.01 * 0.25 = 0.00250099,
  //   x = 1 + 0.1 * 0.05 / (sqrt(0.00250099) + 0.001) = 1.0980201901...
  // Step 2: aggregate x - 0.2, Delta = -0.2:
  //   m = 0.045 - 0.02 = 0.025, v = 0.99 * 0.00250099 + 0.01 * 0.04 = 0.0028759801,
  //   x = 1.0980201901 + 0.1 * 0.025 / (sqrt(0.0028759801) + 0.001) = 1.1437841287...
  ServerOptimizer o = Make("fedadam", 0.1f);
  std::vector<float> x = {1.5f};
  ASSERT_TRUE(o.Step(std::vector<float>{1.0f}, x).ok());
  EXPECT_NEAR(x[0], 1.0980201901, 2e-6);
  std::vector<float> y = {x[0] - 0.2f};
  ASSERT_TRUE(o.Step(x, y).ok());
  EXPECT_NEAR(y[0], 1.1437841288, 2e-6);
}

TEST(ServerOptimizerTest, FedYogiAndFedAdagradFirstStepByHand) {
  // Delta 0.5, v0 = 1e-6 < Delta^2, so Yogi's v = v0 + 0.01 * 0.25 = 0.002501;
  // x = 1 + 0.1 * 0.05 / (sqrt(0.002501) + 0.001) = 1.0980199980.
  ServerOptimizer yogi = Make("fedyogi", 0.1f);
  std::vector<float> x = {1.5f};
  ASSERT_TRUE(yogi.Step(std::vector<float>{1.0f}, x).ok());
  EXPECT_NEAR(x[0], 1.0980199980, 2e-6);
  // Adagrad: v = 1e-6 + 0.25, x = 1 + 0.1 * 0.05 / (sqrt(0.250001) + 0.001) = 1.0099800200.
  ServerOptimizer adagrad = Make("fedadagrad", 0.1f);
  std::vector<float> z = {1.5f};
  ASSERT_TRUE(adagrad.Step(std::vector<float>{1.0f}, z).ok());
  EXPECT_NEAR(z[0], 1.0099800200, 2e-6);
}

TEST(ServerOptimizerTest, YogiKeepsVLargerThanAdamAfterALargeStep) {
  // After a large Delta, a small one: Adam's v shrinks by beta2 regardless;
  // Yogi's v (> Delta^2) shrinks only by (1 - beta2) Delta^2, so its step is smaller.
  ServerOptimizer adam = Make("fedadam", 0.1f), yogi = Make("fedyogi", 0.1f);
  std::vector<float> a = {11.0f}, y = {11.0f};
  const std::vector<float> g = {1.0f};
  ASSERT_TRUE(adam.Step(g, a).ok());
  ASSERT_TRUE(yogi.Step(g, y).ok());
  std::vector<float> a2 = {a[0] + 0.01f}, y2 = {y[0] + 0.01f};
  ASSERT_TRUE(adam.Step(a, a2).ok());
  ASSERT_TRUE(yogi.Step(y, y2).ok());
  // By hand: m = 0.901 for both; Adam's v = 0.99 * 1.00000099 + 1e-6 = 0.990002,
  // step 0.0901 / (sqrt(0.990002) + 0.001) = 0.090463; Yogi's v = 1.000001 - 1e-6
  // = 1.0, step 0.0901 / 1.001 = 0.090010.
  EXPECT_NEAR(a2[0] - a[0], 0.090463f, 2e-5);
  EXPECT_NEAR(y2[0] - y[0], 0.090010f, 2e-5);
  EXPECT_LT(y2[0] - y[0], a2[0] - a[0]);
}

TEST(ServerOptimizerTest, StateRoundTripsAndResumesTheSameTrajectory) {
  ServerOptimizer a = Make("fedadam", 0.1f);
  std::vector<float> x = {1.5f, -0.5f, 2.0f};
  ASSERT_TRUE(a.Step(std::vector<float>{1.0f, 0.0f, 2.5f}, x).ok());
  const std::string state = a.SerializeState();

  ServerOptimizer b = Make("fedadam", 0.1f);
  ASSERT_TRUE(b.RestoreState(state, 3).ok());
  EXPECT_EQ(b.steps(), 1u);
  std::vector<float> next_a = {x[0] + 0.3f, x[1] - 0.1f, x[2]};
  std::vector<float> next_b = next_a;
  ASSERT_TRUE(a.Step(x, next_a).ok());
  ASSERT_TRUE(b.Step(x, next_b).ok());
  EXPECT_EQ(next_a, next_b);

  // Wrong kind, wrong size, garbage: refused as data loss.
  ServerOptimizer yogi = Make("fedyogi", 0.1f);
  EXPECT_EQ(yogi.RestoreState(state, 3).code(), core::StatusCode::kDataLoss);
  EXPECT_EQ(b.RestoreState(state, 4).code(), core::StatusCode::kDataLoss);
  EXPECT_EQ(b.RestoreState("nonsense", 3).code(), core::StatusCode::kDataLoss);
  // A fresh optimiser's state (no step yet) restores to fresh.
  ServerOptimizer fresh = Make("fedadam", 0.1f);
  ServerOptimizer c = Make("fedadam", 0.1f);
  ASSERT_TRUE(c.RestoreState(fresh.SerializeState(), 3).ok());
  EXPECT_EQ(c.steps(), 0u);
}

TEST(ServerOptimizerTest, CreateRejectsUnknownNamesAndOutOfRangeOptions) {
  EXPECT_EQ(ServerOptimizer::Create({"sgd", 1, 0.9f, 0.99f, 1e-3f}).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ServerOptimizer::Create({"fedadam", 0, 0.9f, 0.99f, 1e-3f}).ok());
  EXPECT_FALSE(ServerOptimizer::Create({"fedadam", 0.1f, 1.0f, 0.99f, 1e-3f}).ok());
  EXPECT_FALSE(ServerOptimizer::Create({"fedadam", 0.1f, 0.9f, 1.0f, 1e-3f}).ok());
  EXPECT_FALSE(ServerOptimizer::Create({"fedadam", 0.1f, 0.9f, 0.99f, 0}).ok());
  auto empty = ServerOptimizer::Create({"", 1, 0.9f, 0.99f, 1e-3f});
  ASSERT_TRUE(empty.ok());
  EXPECT_STREQ(empty->name(), "fedavg");
  std::vector<float> agg = {1, 2};
  EXPECT_EQ(empty->Step(std::vector<float>{1}, agg).code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::coordinator
