// Recommendations: assays ranked significant-first then by the OR's lower
// confidence bound, insufficient evidence last and never with an OR, adverse
// events mapped to organ classes, the class's SEND endpoints attached, and
// InvalidArgument naming an unknown class or term.
#include "services/reverse/recommend.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fedrx::reverse {
namespace {

Association Sufficient(std::string clinical, std::string assay, double ci_low, double q) {
  Association a;
  a.pair = {std::move(clinical), std::move(assay)};
  a.counts = {10, 10, 10, 10};
  a.sufficient_evidence = true;
  a.odds_ratio = {ci_low * 2, ci_low, ci_low * 4, 0.3, false};
  a.p_value = q / 2;
  a.q_value = q;
  return a;
}

Association Insufficient(std::string clinical, std::string assay) {
  Association a;
  a.pair = {std::move(clinical), std::move(assay)};
  a.counts = {1, 2, 0, 50};
  a.insufficient_reason = "insufficient evidence: 3 clinical positives (minimum 5)";
  return a;
}

std::vector<std::string> Assays(const OrganClassRecommendation& rec) {
  std::vector<std::string> out;
  for (const auto& a : rec.assays) out.push_back(a.assay);
  return out;
}

TEST(RecommendTest, RanksSignificantFirstThenByLowerBound) {
  const std::string liver = "Hepatobiliary disorders";
  const std::vector<Association> associations = {
      Insufficient(liver, "NR-AhR"),
      Sufficient(liver, "NR-AR", 2.5, 0.20),   // strongest bound, not significant
      Sufficient(liver, "SR-ARE", 1.2, 0.01),  // significant
      Sufficient(liver, "SR-MMP", 1.9, 0.03),  // significant, larger bound
      Sufficient(liver, "NR-ER", 0.4, 0.60),
      Sufficient("Cardiac disorders", "SR-MMP", 9.0, 0.001),  // another class
  };
  auto recs = Recommend({{"hepatobiliary disorders"}, {}}, associations);
  ASSERT_TRUE(recs.ok()) << recs.status();
  ASSERT_EQ(recs->size(), 1u);
  const auto& rec = (*recs)[0];
  EXPECT_EQ(rec.organ_class, liver);
  EXPECT_EQ(Assays(rec),
            (std::vector<std::string>{"SR-MMP", "SR-ARE", "NR-AR", "NR-ER", "NR-AhR"}));
  EXPECT_TRUE(rec.assays[0].significant);
  EXPECT_TRUE(rec.assays[0].in_table_family);   // SR-MMP is a liver family
  EXPECT_FALSE(rec.assays[2].in_table_family);  // NR-AR is not
  EXPECT_FALSE(rec.assays[2].significant);
  EXPECT_NE(rec.assays[0].evidence.find("OR 3.8 (95% CI 1.9-7.6)"), std::string::npos)
      << rec.assays[0].evidence;
  const auto& last = rec.assays.back();
  EXPECT_FALSE(last.sufficient_evidence);
  EXPECT_EQ(last.odds_ratio.estimate, 0);
  EXPECT_EQ(last.evidence.rfind("insufficient evidence", 0), 0u) << last.evidence;
  EXPECT_EQ(last.evidence.find("OR "), std::string::npos);
  // The class's endpoints come with the assays.
  bool alt = false;
  for (const auto& e : rec.in_vivo_endpoints) alt |= e.domain == "LB" && e.code == "ALT";
  EXPECT_TRUE(alt);
}

TEST(RecommendTest, QThresholdDecidesSignificance) {
  const std::string liver = "Hepatobiliary disorders";
  auto recs = Recommend(
      {{liver}, {}},
      {Sufficient(liver, "SR-ARE", 1.2, 0.01), Sufficient(liver, "SR-MMP", 1.9, 0.03)}, 0.02);
  ASSERT_TRUE(recs.ok());
  EXPECT_EQ(Assays((*recs)[0]), (std::vector<std::string>{"SR-ARE", "SR-MMP"}));
  EXPECT_EQ(Recommend({{liver}, {}}, {}, 0.0).status().where(), "Recommend.q_threshold");
}

TEST(RecommendTest, AdverseEventsMapToOrganClassesAndMerge) {
  auto recs =
      Recommend({{"Cardiac disorders"}, {"Torsade de pointes", "Jaundice", "SOCIAL CIRCUMSTANCES"}},
                {Sufficient("Cardiac disorders", "NVS_IC_hKhERGCh", 3.0, 0.001)});
  ASSERT_TRUE(recs.ok()) << recs.status();
  ASSERT_EQ(recs->size(), 3u);
  EXPECT_EQ((*recs)[0].organ_class, "Cardiac disorders");
  EXPECT_EQ((*recs)[0].matched_terms,
            (std::vector<std::string>{"Cardiac disorders", "Torsade de pointes"}));
  ASSERT_EQ((*recs)[0].assays.size(), 1u);
  EXPECT_TRUE((*recs)[0].assays[0].in_table_family);
  EXPECT_EQ((*recs)[1].organ_class, "Hepatobiliary disorders");
  EXPECT_TRUE((*recs)[1].assays.empty());  // no counts for it
  EXPECT_EQ((*recs)[2].organ_class, "Social circumstances");
  EXPECT_TRUE((*recs)[2].in_vivo_endpoints.empty());
  EXPECT_FALSE((*recs)[2].none_reason.empty());
}

TEST(RecommendTest, UnknownClassOrTermIsNamed) {
  auto bad_class = Recommend({{"Cardiac disorders", "Liver stuff"}, {}}, {});
  EXPECT_EQ(bad_class.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_class.status().where(), "Recommend.organ_classes[1]");
  EXPECT_NE(bad_class.status().message().find("Liver stuff"), std::string::npos);
  auto bad_term = Recommend({{}, {"nausea", "purple toes"}}, {});
  EXPECT_EQ(bad_term.status().where(), "Recommend.adverse_events[1]");
  EXPECT_NE(bad_term.status().message().find("purple toes"), std::string::npos);
  EXPECT_EQ(Recommend({}, {}).status().where(), "Recommend.signal");
}

// End to end on counts: Analyze's insufficient pair surfaces as such.
TEST(RecommendTest, FromAnalyzedCounts) {
  const std::string kidney = "Renal and urinary disorders";
  auto analyzed =
      Analyze({{kidney, "SR-MMP"}, {kidney, "SR-HSE"}}, {{40, 10, 15, 60}, {2, 1, 3, 90}});
  ASSERT_TRUE(analyzed.ok());
  auto recs = Recommend({{}, {"acute kidney injury"}}, *analyzed);
  ASSERT_TRUE(recs.ok()) << recs.status();
  const auto& rec = (*recs)[0];
  ASSERT_EQ(rec.assays.size(), 2u);
  EXPECT_EQ(rec.assays[0].assay, "SR-MMP");
  EXPECT_TRUE(rec.assays[0].significant);
  EXPECT_NEAR(rec.assays[0].odds_ratio.estimate, 40.0 * 60 / (10 * 15), 1e-12);
  EXPECT_EQ(rec.assays[1].assay, "SR-HSE");
  EXPECT_FALSE(rec.assays[1].sufficient_evidence);
  EXPECT_NE(rec.assays[1].evidence.find("3 clinical positives"), std::string::npos)
      << rec.assays[1].evidence;
}

}  // namespace
}  // namespace fedrx::reverse
