#include "services/privacy/dp_mechanism.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace fedrx::privacy {
namespace {

GaussianNoise Seeded(std::uint8_t b) {
  GaussianNoise::Seed seed{};
  seed.fill(b);
  auto g = GaussianNoise::FromSeed(seed);
  EXPECT_TRUE(g.ok());
  return std::move(*g);
}

TEST(DpMechanismTest, ClipScalesDownToTheBoundOnly) {
  std::vector<float> v = {3, 4};  // norm 5
  EXPECT_DOUBLE_EQ(ClipToNorm(v, 10), 5.0);
  EXPECT_EQ(v, (std::vector<float>{3, 4}));
  EXPECT_DOUBLE_EQ(ClipToNorm(v, 1), 5.0);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  EXPECT_NEAR(L2Norm(v), 1.0, 1e-6);
}

TEST(DpMechanismTest, SamplerHasStandardNormalMoments) {
  GaussianNoise g = Seeded(7);
  const int n = 200000;
  double sum = 0, sq = 0, fourth = 0;
  int beyond2 = 0;
  for (int i = 0; i < n; ++i) {
    const double x = g.Next();
    sum += x;
    sq += x * x;
    fourth += x * x * x * x;
    beyond2 += std::fabs(x) > 2;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.01);
  EXPECT_NEAR(fourth / n, 3.0, 0.06);
  EXPECT_NEAR(static_cast<double>(beyond2) / n, 0.0455, 0.002);  // P(|Z| > 2)
}

TEST(DpMechanismTest, SameSeedSameNoiseOtherSeedOtherNoise) {
  GaussianNoise a = Seeded(1), b = Seeded(1), c = Seeded(2);
  for (int i = 0; i < 10000; ++i) {  // crosses a buffer refill
    const double x = a.Next();
    EXPECT_EQ(x, b.Next());
    if (i < 3) {
      EXPECT_NE(x, c.Next());
    }
  }
}

TEST(DpMechanismTest, OsSeededSamplersDiffer) {
  auto a = GaussianNoise::Create();
  auto b = GaussianNoise::Create();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->Next(), b->Next());
}

TEST(DpMechanismTest, PrivatizeClipsTheDeltaAndAddsTheNoiseShare) {
  const std::size_t n = 100000;
  std::vector<float> global(n, 1.0f), trained(n, 1.0f);
  trained[0] = 1.0f + 30.0f;  // delta (30, 40, 0, ...): norm 50
  trained[1] = 1.0f + 40.0f;
  // Clip only.
  {
    std::vector<float> w = trained;
    GaussianNoise g = Seeded(3);
    auto r = PrivatizeUpdate(w, global, {.clip_norm = 5, .noise_multiplier = 0}, g);
    ASSERT_TRUE(r.ok());
    EXPECT_DOUBLE_EQ(r->norm_before_clip, 50.0);
    EXPECT_TRUE(r->clipped);
    EXPECT_FLOAT_EQ(w[0], 1.0f + 3.0f);
    EXPECT_FLOAT_EQ(w[1], 1.0f + 4.0f);
    EXPECT_EQ(w[2], 1.0f);
  }
  // Clip and noise shared by t = 4 sites: stddev sigma C / 2.
  {
    std::vector<float> w = trained;
    GaussianNoise g = Seeded(4);
    auto r = PrivatizeUpdate(w, global,
                             {.clip_norm = 5, .noise_multiplier = 2, .noise_shares = 4}, g);
    ASSERT_TRUE(r.ok());
    EXPECT_DOUBLE_EQ(r->noise_stddev, 5.0);
    double sq = 0;
    for (std::size_t i = 2; i < n; ++i) sq += (w[i] - 1.0) * (w[i] - 1.0);
    EXPECT_NEAR(std::sqrt(sq / (n - 2)), 5.0, 0.05);
  }
  // Off: untouched.
  {
    std::vector<float> w = trained;
    GaussianNoise g = Seeded(5);
    ASSERT_TRUE(PrivatizeUpdate(w, global, {}, g).ok());
    EXPECT_EQ(w, trained);
  }
}

TEST(DpMechanismTest, PrivatizeRejectsBadOptionsAndLeavesTheUpdate) {
  std::vector<float> global(4, 0.0f), w = {1, 2, 3, 4};
  const std::vector<float> before = w;
  GaussianNoise g = Seeded(6);
  EXPECT_FALSE(PrivatizeUpdate(w, std::vector<float>(3), {.clip_norm = 1}, g).ok());
  EXPECT_FALSE(PrivatizeUpdate(w, global, {.clip_norm = 0, .noise_multiplier = 1}, g).ok());
  EXPECT_FALSE(PrivatizeUpdate(w, global, {.clip_norm = 1, .noise_shares = 0}, g).ok());
  EXPECT_FALSE(PrivatizeUpdate(w, global, {.clip_norm = -1}, g).ok());
  EXPECT_EQ(w, before);
}

}  // namespace
}  // namespace fedrx::privacy
