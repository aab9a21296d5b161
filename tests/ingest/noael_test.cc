// The site-side NOAEL screen over a real SEND study: PointCross PC201708 (rat,
// control and three dose levels, recovery and TK sets). Its high dose gains
// about half the control's body weight (see cdm_query_test), the lower two
// within a few percent, so the rule proposes the middle dose; recovery and TK
// sets never count. Also: a named NOAEL group, and refusals.
#include "services/ingest/noael.h"

#include <gtest/gtest.h>

#include "tests/ingest/cdm_test_util.h"

namespace fedrx::ingest::cdm {
namespace {

using testing::MapVendored;

TEST(NoaelTest, PointCrossRatNoaelIsTheDoseBelowTheBodyWeightEffect) {
  const StudyData d = MapVendored({"send_pointcross_pc201708"});
  auto p = ProposeNoael(d);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->species, "RAT");
  EXPECT_EQ(p->noael_set_code, "3");
  ASSERT_EQ(p->groups.size(), 4u);  // control and three dosed main-study groups
  EXPECT_TRUE(p->groups[0].control);
  EXPECT_EQ(p->groups[0].set_code, "1");
  const GroupEvidence& high = p->groups[3];
  EXPECT_EQ(high.set_code, "4");
  EXPECT_DOUBLE_EQ(*high.dose, 200.0);
  EXPECT_TRUE(high.adverse);
  // Group 4 vs control: F 46.9 vs 110.5 g, M 90.2 vs 176.9 g.
  ASSERT_EQ(high.bw_change_vs_control_pct.size(), 2u);
  EXPECT_EQ(high.bw_change_vs_control_pct[0].first, "F");
  EXPECT_NEAR(high.bw_change_vs_control_pct[0].second, 100.0 * (46.9 - 110.5) / 110.5, 1e-9);
  EXPECT_NEAR(high.bw_change_vs_control_pct[1].second, 100.0 * (90.2 - 176.9) / 176.9, 1e-9);
  EXPECT_FALSE(p->groups[1].adverse);
  EXPECT_FALSE(p->groups[2].adverse);
  EXPECT_DOUBLE_EQ(p->noael, *p->groups[2].dose);
  EXPECT_LT(p->noael, 200.0);
}

TEST(NoaelTest, TheStudyDirectorMayNameTheGroup) {
  const StudyData d = MapVendored({"send_pointcross_pc201708"});
  NoaelRule rule;
  rule.noael_set_code = "2";
  auto p = ProposeNoael(d, rule);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->noael_set_code, "2");
  EXPECT_TRUE(p->groups[3].adverse);  // the evidence is still reported

  rule.noael_set_code = "2R";  // a recovery set is not a main-study group
  auto bad = ProposeNoael(d, rule);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().where(), "NoaelRule.noael_set_code");
}

TEST(NoaelTest, AStricterRuleThatMakesEveryDoseAdverseGivesNoNoael) {
  const StudyData d = MapVendored({"send_pointcross_pc201708"});
  NoaelRule rule;
  rule.bw_gain_drop_pct = 0.01;  // any loss of gain at all
  auto p = ProposeNoael(d, rule);
  // Group 2 males gain 174.4 g vs 176.9 g in control: adverse under this rule.
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(p.status().message().find("lowest dose"), std::string::npos);
}

TEST(NoaelTest, AStudyWithoutAControlIsRefused) {
  StudyData d;
  d.study.id = "S1";
  d.dose_groups.push_back({.set_code = "A", .label = "A", .dose = 10.0, .dose_unit = "mg/kg"});
  auto p = ProposeNoael(d);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(p.status().message().find("no main-study control"), std::string::npos);
}

TEST(NoaelTest, ThresholdsOutOfRangeAreRefused) {
  StudyData d;
  NoaelRule rule;
  rule.alt_fold = 0.5;
  auto p = ProposeNoael(d, rule);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().where(), "NoaelRule.alt_fold");
}

}  // namespace
}  // namespace fedrx::ingest::cdm
