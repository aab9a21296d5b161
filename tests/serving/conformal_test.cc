// Conformal prediction from aggregated histograms: hand-computed p-values,
// sets, credibility and confidence; bin edges identical to the sites'
// ml::Histograms; binned p-values never below the exact ones; and the
// empirical coverage of the prediction sets on seeded data at least the
// nominal level and within a few points of it.
#include "services/serving/conformal.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "services/ml/dataset.h"
#include "services/ml/metrics.h"

namespace fedrx::serving {
namespace {

ml::ScoreHistogram Hist(std::vector<std::uint64_t> neg, std::vector<std::uint64_t> pos) {
  ml::ScoreHistogram h;
  h.neg = std::move(neg);
  h.pos = std::move(pos);
  return h;
}

// 4 bins; positives {1,0,2,3} (n1 = 6), negatives {4,2,1,0} (n0 = 7).
MondrianCalibration Example() {
  auto c = MondrianCalibration::Create(Hist({4, 2, 1, 0}, {1, 0, 2, 3}), "h");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// p_1 = (positives in bins <= b, + 1) / 7; p_0 = (negatives in bins >= b, + 1) / 8.
TEST(ConformalTest, PValuesCountTheTestBinAgainstTheTestRow) {
  const MondrianCalibration c = Example();
  EXPECT_EQ(c.positives(), 6u);
  EXPECT_EQ(c.negatives(), 7u);
  auto p = c.PValues(0.6);  // bin 2
  ASSERT_TRUE(p.ok());
  EXPECT_DOUBLE_EQ(p->positive, 4.0 / 7.0);
  EXPECT_DOUBLE_EQ(p->negative, 2.0 / 8.0);
  p = c.PValues(0.1);  // bin 0
  EXPECT_DOUBLE_EQ(p->positive, 2.0 / 7.0);
  EXPECT_DOUBLE_EQ(p->negative, 8.0 / 8.0);
  p = c.PValues(0.99);  // bin 3
  EXPECT_DOUBLE_EQ(p->positive, 7.0 / 7.0);
  EXPECT_DOUBLE_EQ(p->negative, 1.0 / 8.0);
}

TEST(ConformalTest, SetsCredibilityAndConfidence) {
  const MondrianCalibration c = Example();
  const LabelPValues mid = *c.PValues(0.6);        // p0 = 0.25, p1 = 4/7
  EXPECT_EQ(PredictionSet(mid, 0.8), "both");      // both exceed 0.2
  EXPECT_EQ(PredictionSet(mid, 0.7), "positive");  // 0.25 <= 0.3
  EXPECT_DOUBLE_EQ(Credibility(mid), 4.0 / 7.0);
  EXPECT_DOUBLE_EQ(Confidence(mid), 0.75);
  const LabelPValues low = *c.PValues(0.1);        // p0 = 1, p1 = 2/7
  EXPECT_EQ(PredictionSet(low, 0.8), "both");      // 2/7 > 0.2
  EXPECT_EQ(PredictionSet(low, 0.7), "negative");  // 2/7 <= 0.3
  EXPECT_DOUBLE_EQ(Confidence(low), 1.0 - 2.0 / 7.0);
  EXPECT_EQ(PredictionSet(*c.PValues(0.99), 0.8), "positive");  // p0 = 0.125
  // A score unlike either class: positives all high, negatives all low.
  auto sep = MondrianCalibration::Create(Hist({5, 0, 0, 0}, {0, 0, 0, 5}), "h");
  ASSERT_TRUE(sep.ok());
  const LabelPValues odd = *sep->PValues(0.4);  // bin 1: p0 = p1 = 1/6
  EXPECT_DOUBLE_EQ(odd.negative, 1.0 / 6.0);
  EXPECT_DOUBLE_EQ(odd.positive, 1.0 / 6.0);
  EXPECT_EQ(PredictionSet(odd, 0.8), "empty");
  EXPECT_EQ(PredictionSet(odd, 0.9), "both");  // 1/6 > 0.1
}

// A p-value equal to the significance level does not admit the label.
TEST(ConformalTest, PValueEqualToSignificanceExcludesTheLabel) {
  const LabelPValues p{0.25, 0.5};
  EXPECT_EQ(PredictionSet(p, 0.75), "positive");
}

// A class with no calibration rows can never be excluded (p-value 1).
TEST(ConformalTest, ClassWithoutRowsIsNeverExcluded) {
  auto c = MondrianCalibration::Create(Hist({3, 2, 0, 0}, {0, 0, 0, 0}), "h");
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(c->PValues(0.0)->positive, 1.0);
  EXPECT_DOUBLE_EQ(c->PValues(0.9)->positive, 1.0);
  EXPECT_DOUBLE_EQ(c->PValues(0.9)->negative, 1.0 / 6.0);
}

TEST(ConformalTest, BinEdges) {
  EXPECT_EQ(ScoreBin(0.0, 4), 0u);
  EXPECT_EQ(ScoreBin(0.25, 4), 1u);  // the lower edge belongs to the bin
  EXPECT_EQ(ScoreBin(0.2499999, 4), 0u);
  EXPECT_EQ(ScoreBin(0.75, 4), 3u);
  EXPECT_EQ(ScoreBin(1.0, 4), 3u);  // 1.0 in the last bin
  EXPECT_EQ(ScoreBin(-0.5, 4), 0u);
  EXPECT_EQ(ScoreBin(7.0, 4), 3u);
  // Float scores as the network emits them: 0.3f is just above 0.3, 0.7f just below.
  EXPECT_EQ(ScoreBin(static_cast<double>(0.3f), 10), 3u);
  EXPECT_EQ(ScoreBin(static_cast<double>(0.7f), 10), 6u);
}

// Every float score falls into the bin ml::Histograms counted it in at the site.
TEST(ConformalTest, BinsAgreeWithTheSitesHistograms) {
  for (std::size_t bins : {1u, 3u, 10u, 1000u, 1024u}) {
    std::vector<float> scores;
    for (std::size_t k = 0; k <= bins; ++k) {
      const float edge = static_cast<float>(static_cast<double>(k) / static_cast<double>(bins));
      scores.push_back(edge);
      scores.push_back(std::nextafter(edge, 0.0f));
      scores.push_back(std::nextafter(edge, 1.0f));
    }
    for (float s : scores) {
      ml::Dataset d;
      d.tasks = {"t"};
      d.x.dim = 1;
      d.x.AddRow({});
      d.y = {1};
      auto h = ml::Histograms(d, std::span<const float>(&s, 1), bins);
      ASSERT_TRUE(h.ok());
      const std::size_t b = ScoreBin(static_cast<double>(s), bins);
      ASSERT_LT(b, bins);
      EXPECT_EQ((*h)[0].pos[b], 1u) << "score " << s << " bins " << bins;
    }
  }
}

// Exact conformal p-values from raw scores, for comparison.
LabelPValues Exact(const std::vector<float>& neg, const std::vector<float>& pos, float s) {
  std::size_t a = 0, b = 0;
  for (float x : pos) a += x <= s;
  for (float x : neg) b += x >= s;
  return {(b + 1.0) / (neg.size() + 1.0), (a + 1.0) / (pos.size() + 1.0)};
}

// Binned p-values are never below the exact ones, and equal them when no
// calibration score shares the test score's bin.
TEST(ConformalTest, BinnedPValuesAreConservative) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> neg(300), pos(200);
  for (float& x : neg) x = u(rng) * u(rng);
  for (float& x : pos) x = 1.0f - u(rng) * u(rng);
  for (std::size_t bins : {10u, 1000u}) {
    ml::ScoreHistogram h{std::vector<std::uint64_t>(bins), std::vector<std::uint64_t>(bins)};
    for (float x : pos) ++h.pos[ScoreBin(x, bins)];
    for (float x : neg) ++h.neg[ScoreBin(x, bins)];
    auto c = MondrianCalibration::Create(h, "h");
    ASSERT_TRUE(c.ok());
    std::size_t equal = 0;
    for (int i = 0; i < 500; ++i) {
      const float s = u(rng);
      const LabelPValues exact = Exact(neg, pos, s);
      const LabelPValues binned = *c->PValues(s);
      EXPECT_GE(binned.positive, exact.positive - 1e-12);
      EXPECT_GE(binned.negative, exact.negative - 1e-12);
      const std::size_t b = ScoreBin(s, bins);
      if (h.pos[b] == 0) {
        EXPECT_DOUBLE_EQ(binned.positive, exact.positive);
        ++equal;
      }
      if (h.neg[b] == 0) {
        EXPECT_DOUBLE_EQ(binned.negative, exact.negative);
      }
    }
    if (bins == 1000) {
      EXPECT_GT(equal, 100u);  // the equality branch was exercised
    }
  }
}

// Beta(a, b) from two gammas.
float Beta(std::mt19937_64& rng, double a, double b) {
  std::gamma_distribution<double> ga(a, 1.0), gb(b, 1.0);
  const double x = ga(rng), y = gb(rng);
  return static_cast<float>(x / (x + y));
}

struct Row {
  float score;
  int label;
};

std::vector<Row> Draw(std::mt19937_64& rng, std::size_t n) {
  std::bernoulli_distribution positive(0.3);
  std::vector<Row> rows(n);
  for (Row& r : rows) {
    r.label = positive(rng) ? 1 : 0;
    // Overlapping classes, as a real model's scores: positives ~ Beta(4, 2),
    // negatives ~ Beta(2, 4).
    r.score = r.label ? Beta(rng, 4, 2) : Beta(rng, 2, 4);
  }
  return rows;
}

// Seeded data from a known distribution. Conformal validity is marginal
// (over the calibration draw and the test row), so the test repeats 400
// independent calibration sets (1500 rows, binned by the sites' own
// ml::Histograms) each with 4000 test rows and, per class, checks that the
// mean share of test rows whose prediction set holds their label is >=
// nominal (up to 3 standard errors estimated from the repetitions' spread)
// and within 2 points (1000 bins) or 5 points (10 bins, more conservative)
// above it.
TEST(ConformalTest, CoverageOfPredictionSetsOnSeededData) {
  constexpr int kRepetitions = 400;
  std::mt19937_64 rng(20261126);
  const std::vector<double> levels = {0.8, 0.9, 0.95};
  const std::vector<std::size_t> bin_counts = {1000, 10};
  // coverage[bins][level][class] per repetition.
  std::vector<double> sum(bin_counts.size() * levels.size() * 2, 0.0);
  std::vector<double> sum_squares(sum.size(), 0.0);
  for (int rep = 0; rep < kRepetitions; ++rep) {
    const std::vector<Row> calibration = Draw(rng, 1500);
    const std::vector<Row> test = Draw(rng, 4000);
    ml::Dataset d;
    d.tasks = {"t"};
    d.x.dim = 1;
    std::vector<float> scores;
    for (const Row& r : calibration) {
      d.x.AddRow({});
      d.y.push_back(static_cast<std::int8_t>(r.label));
      scores.push_back(r.score);
    }
    for (std::size_t bi = 0; bi < bin_counts.size(); ++bi) {
      auto h = ml::Histograms(d, scores, bin_counts[bi]);
      ASSERT_TRUE(h.ok());
      auto c = MondrianCalibration::Create((*h)[0], "h");
      ASSERT_TRUE(c.ok());
      for (std::size_t li = 0; li < levels.size(); ++li) {
        std::size_t covered[2] = {0, 0}, total[2] = {0, 0};
        for (const Row& r : test) {
          const std::string_view set = PredictionSet(*c->PValues(r.score), levels[li]);
          const bool hit = set == "both" || (set == "positive" && r.label == 1) ||
                           (set == "negative" && r.label == 0);
          covered[r.label] += hit;
          ++total[r.label];
        }
        for (int y : {0, 1}) {
          const double coverage = static_cast<double>(covered[y]) / total[y];
          const std::size_t k = (bi * levels.size() + li) * 2 + y;
          sum[k] += coverage;
          sum_squares[k] += coverage * coverage;
        }
      }
    }
  }
  for (std::size_t bi = 0; bi < bin_counts.size(); ++bi) {
    for (std::size_t li = 0; li < levels.size(); ++li) {
      for (int y : {0, 1}) {
        const std::size_t k = (bi * levels.size() + li) * 2 + y;
        const double mean = sum[k] / kRepetitions;
        const double var = (sum_squares[k] - kRepetitions * mean * mean) / (kRepetitions - 1);
        const double se = std::sqrt(std::max(var, 0.0) / kRepetitions);
        std::printf("coverage bins=%zu nominal=%.2f class=%d: mean %.4f (se %.4f)\n",
                    bin_counts[bi], levels[li], y, mean, se);
        EXPECT_GE(mean, levels[li] - 3 * se)
            << "class " << y << " nominal " << levels[li] << " bins " << bin_counts[bi];
        EXPECT_LE(mean, levels[li] + (bin_counts[bi] == 10 ? 0.05 : 0.02))
            << "class " << y << " nominal " << levels[li] << " bins " << bin_counts[bi];
      }
    }
  }
}

TEST(ConformalTest, DomainPValue) {
  // 4 bins over [0, 1): {5, 3, 2, 0}, 10 rows.
  auto d = DomainCalibration::Create({5, 3, 2, 0}, "domain_histogram");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->rows(), 10u);
  EXPECT_DOUBLE_EQ(*d->PValue(0.0), 11.0 / 11.0);
  EXPECT_DOUBLE_EQ(*d->PValue(0.3), 6.0 / 11.0);  // bin 1: 3 + 2 + 0 + 1
  EXPECT_DOUBLE_EQ(*d->PValue(0.5), 3.0 / 11.0);
  EXPECT_DOUBLE_EQ(*d->PValue(0.9), 1.0 / 11.0);  // farther than every calibration row
  EXPECT_FALSE(d->PValue(std::nan("")).ok());
}

TEST(ConformalTest, RefusesBadInput) {
  auto shape = MondrianCalibration::Create(Hist({1, 2}, {1}), "calibration.histograms[2]");
  ASSERT_FALSE(shape.ok());
  EXPECT_EQ(shape.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(shape.status().where(), "calibration.histograms[2]");
  EXPECT_FALSE(MondrianCalibration::Create(Hist({}, {}), "h").ok());
  const std::uint64_t big = ~std::uint64_t{0} - 1;
  EXPECT_FALSE(MondrianCalibration::Create(Hist({big, 5}, {0, 0}), "h").ok());
  EXPECT_FALSE(Example().PValues(std::nan("")).ok());
  EXPECT_FALSE(DomainCalibration::Create({}, "d").ok());
  EXPECT_FALSE(DomainCalibration::Create({0, 0}, "d").ok());
  for (double bad : {0.0, 1.0, -0.1, 1.5, std::nan("")}) {
    const core::Status s = ValidateConfidence(bad, "PredictToxicity.confidence");
    EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.where(), "PredictToxicity.confidence");
  }
  EXPECT_TRUE(ValidateConfidence(0.9, "c").ok());
}

}  // namespace
}  // namespace fedrx::serving
