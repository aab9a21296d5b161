#include "services/ml/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "services/core/random.h"

namespace fedrx::ml {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(RocAucTest, PerfectReversedAndAllTied) {
  const std::vector<float> s = {0.1f, 0.2f, 0.3f, 0.4f};
  EXPECT_DOUBLE_EQ(RocAuc(s, std::vector<std::int8_t>{0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(RocAuc(s, std::vector<std::int8_t>{1, 1, 0, 0}), 0.0);
  const std::vector<float> tied = {0.5f, 0.5f, 0.5f, 0.5f};
  EXPECT_DOUBLE_EQ(RocAuc(tied, std::vector<std::int8_t>{1, 0, 1, 0}), 0.5);
}

TEST(RocAucTest, ClassicFourPointExample) {
  // scikit-learn's roc_auc_score example: 0.75.
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f};
  EXPECT_DOUBLE_EQ(RocAuc(s, std::vector<std::int8_t>{0, 0, 1, 1}), 0.75);
}

TEST(RocAucTest, TiesCountHalf) {
  // Pairs (pos, neg): (0.5, 0.2) win, (0.5, 0.5) tie, (0.9, 0.2) win, (0.9, 0.5) win.
  const std::vector<float> s = {0.2f, 0.5f, 0.5f, 0.9f};
  EXPECT_DOUBLE_EQ(RocAuc(s, std::vector<std::int8_t>{0, 0, 1, 1}), 3.5 / 4);
}

TEST(RocAucTest, SkipsMissingLabels) {
  const std::vector<float> s = {0.1f, 0.9f, 0.4f, 0.0f, 0.35f, 0.8f};
  const std::vector<std::int8_t> y = {0, kMissing, 0, kMissing, 1, 1};
  EXPECT_DOUBLE_EQ(RocAuc(s, y), 0.75);
}

TEST(RocAucTest, NaNWhenUndefined) {
  const std::vector<float> s = {0.1f, 0.2f, 0.3f};
  EXPECT_TRUE(std::isnan(RocAuc(s, std::vector<std::int8_t>{1, 1, 1})));
  EXPECT_TRUE(std::isnan(RocAuc(s, std::vector<std::int8_t>{0, kMissing, 0})));
  EXPECT_TRUE(std::isnan(RocAuc(s, std::vector<std::int8_t>{0, 1})));  // size mismatch
  const std::vector<float> with_nan = {0.1f, kNaN, 0.3f};
  EXPECT_TRUE(std::isnan(RocAuc(with_nan, std::vector<std::int8_t>{0, 1, 1})));
  // A NaN score whose label is missing does not matter.
  EXPECT_DOUBLE_EQ(RocAuc(with_nan, std::vector<std::int8_t>{0, kMissing, 1}), 1.0);
}

TEST(PrAucTest, ScikitLearnExample) {
  // average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333...
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f};
  EXPECT_NEAR(PrAuc(s, std::vector<std::int8_t>{0, 0, 1, 1}), 5.0 / 6, 1e-12);
}

TEST(PrAucTest, StepwiseSumOverThresholds) {
  // Descending: n p p n p. Positives found at ranks 2, 3, 5 with precision
  // 1/2, 2/3, 3/5, each adding recall 1/3.
  const std::vector<float> s = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
  const std::vector<std::int8_t> y = {0, 1, 1, 0, 1};
  EXPECT_NEAR(PrAuc(s, y), (0.5 + 2.0 / 3 + 0.6) / 3, 1e-12);
}

TEST(PrAucTest, TiedScoresFormOneThreshold) {
  const std::vector<float> s = {0.5f, 0.5f, 0.5f, 0.5f};
  EXPECT_DOUBLE_EQ(PrAuc(s, std::vector<std::int8_t>{1, 0, 1, 0}), 0.5);
}

TEST(PrAucTest, PerfectOneAndNoPositivesNaN) {
  const std::vector<float> s = {0.1f, 0.2f, 0.3f, 0.4f};
  EXPECT_DOUBLE_EQ(PrAuc(s, std::vector<std::int8_t>{0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(PrAuc(s, std::vector<std::int8_t>{1, 1, 1, kMissing}), 1.0);
  EXPECT_TRUE(std::isnan(PrAuc(s, std::vector<std::int8_t>{0, 0, 0, kMissing})));
}

Dataset TwoTaskData() {
  Dataset d;
  d.tasks = {"a", "b"};
  d.x.dim = 1;
  for (int i = 0; i < 4; ++i) d.x.AddRow({});
  d.smiles.assign(4, "");
  d.scaffolds.assign(4, "");
  // Task a: the classic example; task b: one class only.
  d.y = {0, 1, 0, 1, 1, kMissing, 1, 1};
  return d;
}

TEST(EvaluateTest, PerTaskMetricsAndMean) {
  const Dataset d = TwoTaskData();
  const std::vector<float> probs = {0.1f, 0.5f, 0.4f, 0.5f, 0.35f, 0.5f, 0.8f, 0.5f};
  const auto m = Evaluate(d, probs);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].task, "a");
  EXPECT_DOUBLE_EQ((*m)[0].roc_auc, 0.75);
  EXPECT_NEAR((*m)[0].pr_auc, 5.0 / 6, 1e-12);
  EXPECT_EQ((*m)[0].positives, 2u);
  EXPECT_EQ((*m)[0].negatives, 2u);
  EXPECT_EQ((*m)[1].positives, 3u);
  EXPECT_EQ((*m)[1].negatives, 0u);
  EXPECT_TRUE(std::isnan((*m)[1].roc_auc));
  EXPECT_DOUBLE_EQ(MeanRocAuc(*m), 0.75);  // task b has no AUC
  EXPECT_TRUE(std::isnan(MeanRocAuc({})));
}

TEST(EvaluateTest, RejectsWrongProbabilityCount) {
  const auto m = Evaluate(TwoTaskData(), std::vector<float>(7, 0.5f));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("expected 8"));
}

TEST(HistogramTest, BinsEdgesAndClamping) {
  Dataset d;
  d.tasks = {"a"};
  d.x.dim = 1;
  const std::vector<float> probs = {0.0f, 0.05f, 0.1f, 0.55f, 1.0f, 1.5f, -0.2f, 0.3f};
  d.y = {1, 0, 1, 0, 1, 0, 1, kMissing};
  for (std::size_t i = 0; i < probs.size(); ++i) d.x.AddRow({});
  const auto h = Histograms(d, probs, 10);
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_EQ(h->size(), 1u);
  const ScoreHistogram& a = (*h)[0];
  EXPECT_EQ(a.pos, (std::vector<std::uint64_t>{2, 1, 0, 0, 0, 0, 0, 0, 0, 1}));  // 0, -0.2 | 0.1 | 1.0
  EXPECT_EQ(a.neg, (std::vector<std::uint64_t>{1, 0, 0, 0, 0, 1, 0, 0, 0, 1}));  // 0.05 | 0.55 | 1.5
}

TEST(HistogramTest, RejectsBadInput) {
  Dataset d;
  d.tasks = {"a"};
  d.x.dim = 1;
  d.x.AddRow({});
  d.y = {1};
  EXPECT_FALSE(Histograms(d, std::vector<float>{0.5f}, 0).ok());
  EXPECT_FALSE(Histograms(d, std::vector<float>{0.5f, 0.5f}).ok());
  const auto nan = Histograms(d, std::vector<float>{kNaN});
  ASSERT_FALSE(nan.ok());
  EXPECT_THAT(nan.status().message(), HasSubstr("NaN"));
}

// Random scores with some signal, and one task.
Dataset RandomScored(std::size_t n, std::uint64_t seed, std::vector<float>* probs) {
  core::Xoshiro256 rng(seed);
  Dataset d;
  d.tasks = {"a"};
  d.x.dim = 1;
  for (std::size_t i = 0; i < n; ++i) {
    d.x.AddRow({});
    const bool pos = rng.NextDouble() < 0.2;
    const double u = rng.NextDouble();
    d.y.push_back(rng.NextDouble() < 0.1 ? kMissing : static_cast<std::int8_t>(pos));
    probs->push_back(static_cast<float>(pos ? std::sqrt(u) : u * u));
  }
  return d;
}

TEST(HistogramTest, AucFromHistogramCloseToExact) {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    std::vector<float> probs;
    const Dataset d = RandomScored(5000, seed, &probs);
    const auto h = Histograms(d, probs);
    ASSERT_TRUE(h.ok());
    const double exact_roc = RocAuc(probs, d.y);
    const double exact_ap = PrAuc(probs, d.y);
    EXPECT_GT(exact_roc, 0.7);
    EXPECT_LT(exact_roc, 0.95);
    EXPECT_NEAR(RocAucFromHistogram((*h)[0]), exact_roc, 1e-3) << seed;
    EXPECT_NEAR(PrAucFromHistogram((*h)[0]), exact_ap, 3e-3) << seed;
  }
}

TEST(HistogramTest, ExactWhenEveryScoreHasItsOwnBin) {
  const std::vector<float> probs = {0.05f, 0.45f, 0.35f, 0.85f, 0.15f, 0.65f};
  Dataset d;
  d.tasks = {"a"};
  d.x.dim = 1;
  d.y = {0, 0, 1, 1, 1, 0};
  for (std::size_t i = 0; i < probs.size(); ++i) d.x.AddRow({});
  const auto h = Histograms(d, probs, 10);
  ASSERT_TRUE(h.ok());
  EXPECT_DOUBLE_EQ(RocAucFromHistogram((*h)[0]), RocAuc(probs, d.y));
  EXPECT_DOUBLE_EQ(PrAucFromHistogram((*h)[0]), PrAuc(probs, d.y));
}

TEST(HistogramTest, MergedSitesEqualPooledData) {
  std::vector<float> pa, pb;
  const Dataset a = RandomScored(700, 11, &pa);
  const Dataset b = RandomScored(400, 12, &pb);
  std::vector<float> pooled_probs = pa;
  pooled_probs.insert(pooled_probs.end(), pb.begin(), pb.end());
  Dataset pooled = a;
  for (std::size_t i = 0; i < b.size(); ++i) {
    pooled.x.AddRow({});
    pooled.y.push_back(b.y[i]);
  }
  std::vector<ScoreHistogram> merged;
  ASSERT_TRUE(Merge(merged, *Histograms(a, pa)).ok());
  ASSERT_TRUE(Merge(merged, *Histograms(b, pb)).ok());
  const auto expected = Histograms(pooled, pooled_probs);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(merged[0].pos, (*expected)[0].pos);
  EXPECT_EQ(merged[0].neg, (*expected)[0].neg);
  EXPECT_DOUBLE_EQ(RocAucFromHistogram(merged[0]), RocAucFromHistogram((*expected)[0]));
}

TEST(HistogramTest, MergeRejectsMismatchAndLeavesTargetUnchanged) {
  ScoreHistogram ten{std::vector<std::uint64_t>(10, 1), std::vector<std::uint64_t>(10, 2)};
  ScoreHistogram five{std::vector<std::uint64_t>(5, 1), std::vector<std::uint64_t>(5, 1)};
  std::vector<ScoreHistogram> into = {ten, ten};
  const std::vector<ScoreHistogram> from = {ten, five};
  const core::Status s = Merge(into, from);
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("task 1"));
  EXPECT_EQ(into[0].pos, ten.pos);  // task 0 was not merged either
  EXPECT_FALSE(Merge(into, std::vector<ScoreHistogram>{ten}).ok());

  ScoreHistogram big{{std::numeric_limits<std::uint64_t>::max()}, {0}};
  ScoreHistogram one{{1}, {0}};
  EXPECT_THAT(Merge(big, one).message(), HasSubstr("overflow"));
  ScoreHistogram lopsided{{1, 2}, {1}};
  ScoreHistogram empty;
  EXPECT_FALSE(Merge(empty, lopsided).ok());
  EXPECT_TRUE(std::isnan(RocAucFromHistogram(lopsided)));
}

}  // namespace
}  // namespace fedrx::ml
