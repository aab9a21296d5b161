#include "services/lab/simulation.h"

#include <gtest/gtest.h>

#include <vector>

#include "services/ml/synthetic.h"

namespace fedrx::lab {
namespace {

TEST(SignFlipAndScaleTest, ReversesAndMagnifiesTheUpdate) {
  const std::vector<float> global = {1.0f, 2.0f, 3.0f, -0.5f};
  std::vector<float> trained = {2.0f, 2.0f, 1.0f, 0.0f};
  ASSERT_TRUE(SignFlipAndScale(global, trained, 10).ok());
  // global - 10 (trained - global), per parameter.
  EXPECT_FLOAT_EQ(trained[0], -9.0f);
  EXPECT_FLOAT_EQ(trained[1], 2.0f);
  EXPECT_FLOAT_EQ(trained[2], 23.0f);
  EXPECT_FLOAT_EQ(trained[3], -5.5f);
}

TEST(SignFlipAndScaleTest, ScaleMinusOneIsTheHonestUpdate) {
  const std::vector<float> global = {0.25f, -1.0f};
  std::vector<float> trained = {0.75f, 3.0f};
  ASSERT_TRUE(SignFlipAndScale(global, trained, -1).ok());
  EXPECT_FLOAT_EQ(trained[0], 0.75f);
  EXPECT_FLOAT_EQ(trained[1], 3.0f);
}

TEST(SignFlipAndScaleTest, RejectsMismatchedSizesAndLeavesTheModel) {
  const std::vector<float> global = {1.0f, 2.0f};
  std::vector<float> trained = {5.0f, 6.0f, 7.0f};
  const core::Status s = SignFlipAndScale(global, trained, 10);
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(trained, (std::vector<float>{5.0f, 6.0f, 7.0f}));
}

// Ten sites holding slices of one synthetic problem, the first `attackers`
// of them attacking, and a held-out test set of the same problem.
class PoisoningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ml::SyntheticOptions o;
    o.rows = 2000;
    o.dim = 256;
    o.bits_per_row = 12;
    o.tasks = 3;
    o.model_seed = 11;
    o.sample_seed = 12;
    const ml::Dataset all = ml::MakeSyntheticDataset(o);
    o.rows = 600;
    o.sample_seed = 13;
    test_ = ml::MakeSyntheticDataset(o);
    net_.input_dim = o.dim;
    net_.hidden = {16};
    net_.num_tasks = o.tasks;
    net_.dropout = 0;
    for (std::size_t i = 0; i < 10; ++i) {
      std::vector<std::size_t> rows;
      for (std::size_t r = i; r < all.size(); r += 10) rows.push_back(r);
      sites_.push_back({"site-" + std::to_string(i), all.Subset(rows), i < 2});
    }
    options_.rounds = 4;
    options_.learning_rate = 0.01f;
    options_.batch_size = 32;
    options_.seed = 5;
    options_.attack_scale = 10;
    options_.threads = 1;
  }

  SimulationResult RunRule(const std::string& strategy, bool attacked) {
    std::vector<SimulatedSite> sites = sites_;
    if (!attacked) {
      for (auto& s : sites) s.attacker = false;
    }
    codec::StudySpec rule;
    rule.strategy = strategy;
    rule.trim_fraction = 0.2f;
    rule.krum_byzantine = 2;
    auto r = SimulateFederation(net_, sites, test_, rule, options_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(*r) : SimulationResult{};
  }

  ml::NetSpec net_;
  ml::Dataset test_;
  std::vector<SimulatedSite> sites_;
  SimulationOptions options_;
};

TEST_F(PoisoningTest, AttackersBreakFedAvgButNotMedian) {
  const SimulationResult clean = RunRule("fedavg", false);
  const SimulationResult fedavg = RunRule("fedavg", true);
  const SimulationResult median = RunRule("median", true);
  ASSERT_EQ(clean.round_mean_roc_auc.size(), 4u);
  // Deterministic for these seeds: about 0.89 clean, 0.84 median, 0.39 FedAvg.
  EXPECT_GT(clean.mean_roc_auc, 0.85);
  EXPECT_GT(median.mean_roc_auc, 0.8);
  // The reversed, magnified updates drive FedAvg below chance.
  EXPECT_LT(fedavg.mean_roc_auc, 0.5);
  EXPECT_LT(fedavg.mean_roc_auc, median.mean_roc_auc - 0.3);
  // Each round moves the median model forward.
  EXPECT_LT(median.round_mean_roc_auc.front(), median.round_mean_roc_auc.back());
}

TEST_F(PoisoningTest, KrumAndTrimmedMeanResistTwoAttackers) {
  const SimulationResult fedavg = RunRule("fedavg", true);
  const SimulationResult krum = RunRule("krum", true);
  const SimulationResult trimmed = RunRule("trimmed_mean", true);
  EXPECT_EQ(krum.rule, "krum");
  EXPECT_EQ(trimmed.rule, "trimmed_mean");
  // About 0.74 and 0.82: Krum keeps one site's update (a tenth of the
  // data), so it learns more slowly than the rules that average several.
  EXPECT_GT(krum.mean_roc_auc, 0.7);
  EXPECT_GT(trimmed.mean_roc_auc, 0.78);
  EXPECT_GT(krum.mean_roc_auc, fedavg.mean_roc_auc + 0.3);
  EXPECT_GT(trimmed.mean_roc_auc, krum.mean_roc_auc);
}

TEST_F(PoisoningTest, SameSeedsGiveTheSameModel) {
  const SimulationResult a = RunRule("median", true);
  const SimulationResult b = RunRule("median", true);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.round_mean_roc_auc, b.round_mean_roc_auc);
}

TEST_F(PoisoningTest, WithoutAttackersMedianIsCloseToFedAvg) {
  const SimulationResult fedavg = RunRule("fedavg", false);
  const SimulationResult median = RunRule("median", false);
  EXPECT_NEAR(median.mean_roc_auc, fedavg.mean_roc_auc, 0.05);
}

TEST_F(PoisoningTest, KrumNeedsEnoughSites) {
  sites_.resize(6);  // Krum with f = 2 needs n >= 7
  codec::StudySpec rule;
  rule.strategy = "krum";
  rule.krum_byzantine = 2;
  auto r = SimulateFederation(net_, sites_, test_, rule, options_);
  EXPECT_FALSE(r.ok());
}

TEST_F(PoisoningTest, UnknownRuleIsRefused) {
  codec::StudySpec rule;
  rule.strategy = "mode";
  auto r = SimulateFederation(net_, sites_, test_, rule, options_);
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
}

TEST_F(PoisoningTest, DpNoiseCostsAccuracyAndIsReproducible) {
  for (auto& s : sites_) s.attacker = false;
  codec::StudySpec rule;
  rule.strategy = "fedavg";
  options_.dp_clip_norm = 0.5;
  options_.dp_noise_multiplier = 0.0;
  auto clipped = SimulateFederation(net_, sites_, test_, rule, options_);
  ASSERT_TRUE(clipped.ok()) << clipped.status();
  options_.dp_noise_multiplier = 20.0;
  auto noisy = SimulateFederation(net_, sites_, test_, rule, options_);
  auto again = SimulateFederation(net_, sites_, test_, rule, options_);
  ASSERT_TRUE(noisy.ok() && again.ok());
  EXPECT_EQ(noisy->model, again->model);
  // About 0.77 clipped only, and chance once the noise (stddev 10 per
  // parameter) swamps the clipped updates.
  EXPECT_GT(clipped->mean_roc_auc, 0.7);
  EXPECT_LT(noisy->mean_roc_auc, 0.6);
}

}  // namespace
}  // namespace fedrx::lab
