// Association statistics: odds ratios and Woolf intervals computed by hand on
// small tables (with the Haldane-Anscombe correction for zero cells), site
// counting matched by InChIKey with missing labels skipped, summing two sites'
// counts equals counting the pooled rows, Flatten/Unflatten round trips, the
// insufficient-evidence rule, and errors on bad input.
#include "services/reverse/association.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace fedrx::reverse {
namespace {

constexpr double kZ975 = 1.959963984540054;  // qnorm(0.975)

// A well-formed synthetic InChIKey for compound number i.
std::string Key(int i) {
  std::string block(14, 'A');
  for (int pos = 13; pos >= 0 && i > 0; --pos, i /= 26)
    block[pos] = static_cast<char>('A' + i % 26);
  return block + "-UHFFFAOYSA-N";
}

TEST(OddsRatioTest, WoolfIntervalByHand) {
  // OR = 10*12 / (5*3) = 8; SE = sqrt(1/10 + 1/5 + 1/3 + 1/12).
  auto r = ComputeOddsRatio({10, 5, 3, 12});
  ASSERT_TRUE(r.ok()) << r.status();
  const double se = std::sqrt(0.1 + 0.2 + 1.0 / 3 + 1.0 / 12);
  EXPECT_NEAR(r->estimate, 8.0, 1e-12);
  EXPECT_NEAR(r->log_se, se, 1e-12);
  EXPECT_NEAR(r->ci_low, std::exp(std::log(8.0) - kZ975 * se), 1e-9);
  EXPECT_NEAR(r->ci_high, std::exp(std::log(8.0) + kZ975 * se), 1e-9);
  EXPECT_NEAR(r->ci_low, 1.52228, 1e-5);   // exp(2.079442 - 1.659226)
  EXPECT_NEAR(r->ci_high, 42.0421, 1e-4);  // exp(2.079442 + 1.659226)
  EXPECT_FALSE(r->corrected);
}

TEST(OddsRatioTest, ZeroCellAddsHalfToEveryCell) {
  auto r = ComputeOddsRatio({0, 5, 3, 12});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->corrected);
  EXPECT_NEAR(r->estimate, (0.5 * 12.5) / (5.5 * 3.5), 1e-12);
  const double se = std::sqrt(1 / 0.5 + 1 / 5.5 + 1 / 3.5 + 1 / 12.5);
  EXPECT_NEAR(r->log_se, se, 1e-12);
  EXPECT_TRUE(std::isfinite(r->ci_high));
}

TEST(OddsRatioTest, NinetyPercentIntervalIsNarrower) {
  auto r95 = ComputeOddsRatio({10, 5, 3, 12});
  auto r90 = ComputeOddsRatio({10, 5, 3, 12}, 0.90);
  ASSERT_TRUE(r95.ok() && r90.ok());
  EXPECT_NEAR(r90->ci_low, std::exp(std::log(8.0) - 1.6448536269514722 * r90->log_se), 1e-9);
  EXPECT_GT(r90->ci_low, r95->ci_low);
}

TEST(OddsRatioTest, RejectsEmptyTableAndBadConfidence) {
  EXPECT_EQ(ComputeOddsRatio({0, 0, 0, 0}).status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeOddsRatio({1, 2, 3, 4}, 1.0).status().where(), "ComputeOddsRatio.confidence");
  EXPECT_EQ(ComputeOddsRatio({1, 2, 3, 4}, std::nan("")).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(FisherExactTwoSided({0, 0, 0, 0}).status().code(), core::StatusCode::kInvalidArgument);
  // Absurd counts (beyond any compound library, or near 2^64 so that the
  // margins would overflow) are rejected, not computed.
  const std::uint64_t huge = ~std::uint64_t{0} - 1;
  EXPECT_EQ(FisherExactTwoSided({huge, huge, 1, 1}).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeOddsRatio({kMaxTableTotal, 1, 1, 1}).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(Analyze({{"Cardiac disorders", "SR-MMP"}}, {{huge, 5, 5, 5}}).status().where(),
            "Analyze.summed[0]");
}

TEST(FisherTest, DegenerateMarginsGiveOne) {
  // Only one table has these margins.
  EXPECT_EQ(*FisherExactTwoSided({0, 0, 3, 7}), 1.0);
  EXPECT_EQ(*FisherExactTwoSided({4, 0, 0, 0}), 1.0);
}

TEST(FisherTest, SmallTableByHand) {
  // Margins rows (3, 3), columns (3, 3): P(x) = C(3,x)C(3,3-x)/20 = 1,9,9,1 /20.
  // Observed x = 3: tables no more probable are x = 0 and 3 -> p = 0.1.
  EXPECT_NEAR(*FisherExactTwoSided({3, 0, 0, 3}), 0.1, 1e-15);
  // Observed x = 2 (prob 9/20): every table qualifies -> 1.
  EXPECT_NEAR(*FisherExactTwoSided({2, 1, 1, 2}), 1.0, 1e-15);
}

TEST(BenjaminiHochbergTest, ByHand) {
  // Sorted p 0.01, 0.02, 0.03, 0.5 (n = 4): n p / i = 0.04, 0.04, 0.04, 0.5.
  auto q = BenjaminiHochberg({0.5, 0.03, 0.01, 0.02});
  ASSERT_TRUE(q.ok());
  EXPECT_NEAR((*q)[0], 0.5, 1e-15);
  EXPECT_NEAR((*q)[1], 0.04, 1e-15);
  EXPECT_NEAR((*q)[2], 0.04, 1e-15);
  EXPECT_NEAR((*q)[3], 0.04, 1e-15);
}

TEST(BenjaminiHochbergTest, RejectsBadInput) {
  EXPECT_EQ(BenjaminiHochberg({}).status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(BenjaminiHochberg({0.1, 1.5}).status().where(), "BenjaminiHochberg.p[1]");
  EXPECT_EQ(BenjaminiHochberg({std::nan("")}).status().where(), "BenjaminiHochberg.p[0]");
}

TEST(CountPairsTest, MatchesByInchikeyAndSkipsMissingLabels) {
  LabelTable clinical{{"Hepatobiliary disorders", "Cardiac disorders"}, {}};
  LabelTable preclinical{{"SR-MMP"}, {}};
  clinical.by_inchikey[Key(1)] = {true, false};
  clinical.by_inchikey[Key(2)] = {true, std::nullopt};
  clinical.by_inchikey[Key(3)] = {false, true};
  clinical.by_inchikey[Key(4)] = {false, false};  // no preclinical row
  preclinical.by_inchikey[Key(1)] = {true};
  preclinical.by_inchikey[Key(2)] = {false};
  preclinical.by_inchikey[Key(3)] = {std::nullopt};
  preclinical.by_inchikey[Key(5)] = {true};  // no clinical row
  const auto pairs = AllPairs(clinical.names, preclinical.names);
  auto counts = CountPairs(pairs, clinical, preclinical);
  ASSERT_TRUE(counts.ok()) << counts.status();
  ASSERT_EQ(counts->size(), 2u);
  EXPECT_EQ((*counts)[0], (PairCounts{1, 1, 0, 0}));  // hepatobiliary: keys 1 and 2
  EXPECT_EQ((*counts)[1], (PairCounts{0, 0, 1, 0}));  // cardiac: key 1 only
}

TEST(CountPairsTest, RejectsBadInput) {
  LabelTable clinical{{"Cardiac disorders"}, {{Key(1), {true}}}};
  LabelTable preclinical{{"SR-MMP"}, {{Key(1), {true}}}};
  auto unknown = CountPairs({{"Cardiac disorders", "NR-AR"}}, clinical, preclinical);
  EXPECT_EQ(unknown.status().where(), "CountPairs.pairs[0].preclinical");
  LabelTable bad_key = clinical;
  bad_key.by_inchikey["aspirin"] = {false};
  EXPECT_EQ(CountPairs({{"Cardiac disorders", "SR-MMP"}}, bad_key, preclinical).status().where(),
            "CountPairs.clinical.by_inchikey");
  LabelTable bad_row = preclinical;
  bad_row.by_inchikey[Key(2)] = {true, false};
  EXPECT_EQ(CountPairs({{"Cardiac disorders", "SR-MMP"}}, clinical, bad_row).status().code(),
            core::StatusCode::kInvalidArgument);
}

std::optional<bool> RandomLabel(std::mt19937& rng) {
  const int v = static_cast<int>(rng() % 5);
  if (v == 0) return std::nullopt;
  return v <= 2;
}

TEST(CountPairsTest, SummingSitesEqualsCountingPooledRows) {
  std::mt19937 rng(20261126);
  const std::vector<std::string> clin = {"Hepatobiliary disorders", "Cardiac disorders",
                                         "Renal and urinary disorders"};
  const std::vector<std::string> pre = {"SR-MMP", "NR-AR", "SR-p53", "NR-AhR"};
  LabelTable c1{clin, {}}, c2{clin, {}}, cp{clin, {}};
  LabelTable p1{pre, {}}, p2{pre, {}}, pp{pre, {}};
  for (int i = 0; i < 400; ++i) {
    std::vector<std::optional<bool>> crow, prow;
    for (std::size_t j = 0; j < clin.size(); ++j) crow.push_back(RandomLabel(rng));
    for (std::size_t j = 0; j < pre.size(); ++j) prow.push_back(RandomLabel(rng));
    const bool site1 = i % 3 != 0;
    // Some compounds have only clinical or only preclinical labels at a site.
    if (i % 7 != 0) {
      (site1 ? c1 : c2).by_inchikey[Key(i)] = crow;
      cp.by_inchikey[Key(i)] = crow;
    }
    if (i % 11 != 0) {
      (site1 ? p1 : p2).by_inchikey[Key(i)] = prow;
      pp.by_inchikey[Key(i)] = prow;
    }
  }
  const auto pairs = AllPairs(clin, pre);
  auto s1 = CountPairs(pairs, c1, p1);
  auto s2 = CountPairs(pairs, c2, p2);
  auto pooled = CountPairs(pairs, cp, pp);
  ASSERT_TRUE(s1.ok() && s2.ok() && pooled.ok());
  auto sum = SumCounts({*s1, *s2});
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(*sum, *pooled);
  // The same through the flattened vectors a secure sum adds word by word.
  const auto f1 = Flatten(*s1), f2 = Flatten(*s2);
  std::vector<std::uint64_t> added(f1.size());
  for (std::size_t i = 0; i < f1.size(); ++i) added[i] = f1[i] + f2[i];
  auto back = Unflatten(added, pairs.size());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *pooled);
  std::uint64_t total = 0;
  for (const auto& t : *pooled) total += t.total();
  EXPECT_GT(total, 1000u);  // the test counted something
}

TEST(FlattenTest, RoundTripsAndChecksSizes) {
  const std::vector<PairCounts> counts = {{1, 2, 3, 4}, {0, 0, 0, 9}, {4000000000u, 5, 6, 7}};
  const auto flat = Flatten(counts);
  ASSERT_EQ(flat.size(), 12u);
  EXPECT_EQ(flat[4], 0u);
  EXPECT_EQ(flat[7], 9u);
  auto back = Unflatten(flat, 3);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, counts);
  EXPECT_EQ(Unflatten(flat, 2).status().where(), "Unflatten.flat");
  auto flat32 = FlattenU32(counts);
  ASSERT_TRUE(flat32.ok());
  auto back32 = UnflattenU32(*flat32, 3);
  ASSERT_TRUE(back32.ok());
  EXPECT_EQ(*back32, counts);
  EXPECT_EQ(FlattenU32({{5000000000u, 0, 0, 0}}).status().where(), "FlattenU32.counts[0]");
  EXPECT_EQ(SumCounts({{{1, 1, 1, 1}}, {}}).status().where(), "SumCounts.sites[1]");
}

TEST(AnalyzeTest, InsufficientEvidenceHasNoStatisticsAndLeavesTheFdrFamily) {
  const std::vector<PairKey> pairs = {
      {"Hepatobiliary disorders", "SR-MMP"},
      {"Hepatobiliary disorders", "NR-AR"},
      {"Hepatobiliary disorders", "SR-p53"},
  };
  // Third: 4 preclinical positives (< 5).
  const std::vector<PairCounts> counts = {{30, 10, 10, 50}, {12, 28, 20, 40}, {3, 40, 1, 60}};
  auto result = Analyze(pairs, counts);
  ASSERT_TRUE(result.ok()) << result.status();
  const auto& rows = *result;
  EXPECT_TRUE(rows[0].sufficient_evidence);
  EXPECT_TRUE(rows[1].sufficient_evidence);
  EXPECT_FALSE(rows[2].sufficient_evidence);
  EXPECT_EQ(rows[2].insufficient_reason,
            "insufficient evidence: 4 preclinical positives (minimum 5)");
  EXPECT_EQ(rows[2].odds_ratio.estimate, 0);
  // q over the two sufficient pairs only.
  auto q = BenjaminiHochberg({rows[0].p_value, rows[1].p_value});
  ASSERT_TRUE(q.ok());
  EXPECT_DOUBLE_EQ(rows[0].q_value, (*q)[0]);
  EXPECT_DOUBLE_EQ(rows[1].q_value, (*q)[1]);
  EXPECT_NEAR(rows[0].odds_ratio.estimate, 15.0, 1e-12);
  EXPECT_EQ(Analyze(pairs, {}).status().where(), "Analyze.summed");
}

}  // namespace
}  // namespace fedrx::reverse
