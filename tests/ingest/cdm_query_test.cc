#include "services/ingest/cdm_query.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tests/ingest/cdm_test_util.h"

namespace fedrx::ingest::cdm {
namespace {

using testing::MapVendored;

const GroupStatistic* Find(const std::vector<GroupStatistic>& stats, const std::string& set,
                           const std::string& sex) {
  for (const GroupStatistic& s : stats) {
    if (s.set_code == set && s.sex == sex) return &s;
  }
  return nullptr;
}

struct Expected {
  const char* set;
  const char* sex;
  std::size_t n;
  double mean;
  double sd;
};

// Expected values were computed independently of this code with a small pure-python
// SAS XPORT reader (namestr + IBM float decoding) over the vendored bw.xpt/dm.xpt:
// for each animal, the rows with BWTESTCD == "BW" ordered by BWDY (then file order),
// change = BWSTRESN(last) - BWSTRESN(first) in g, grouped by DM SETCD and SEX;
// mean = statistics.mean, sd = statistics.stdev (n - 1).
TEST(IngestCdmQueryTest, BodyWeightChangeByDoseGroupInRat) {
  const StudyData d = MapVendored({"send_pointcross_pc201708"});
  const auto stats = BodyWeightChangeByDoseGroup(d);
  const Expected expected[] = {
      {"1", "F", 10, 110.5, 30.74717692551446},  {"1", "M", 10, 176.9, 32.75650910718187},
      {"1R", "F", 5, 110.6, 18.568791021496256}, {"1R", "M", 5, 216.8, 16.66433316997713},
      {"2", "F", 10, 115.1, 35.63534450202184},  {"2", "M", 10, 174.4, 35.56277704441979},
      {"2R", "F", 5, 117.0, 42.118879377305376}, {"2R", "M", 5, 166.4, 20.489021450523204},
      {"3", "F", 10, 116.0, 36.52396473549935},  {"3", "M", 10, 173.2, 27.425859654307608},
      {"3R", "F", 5, 142.4, 30.1794632159023},   {"3R", "M", 5, 180.4, 33.81271950021175},
      {"4", "F", 10, 46.9, 32.37094032890886},   {"4", "M", 10, 90.2, 20.46025958345158},
      {"4R", "F", 5, 53.8, 34.42673379802388},   {"4R", "M", 5, 100.6, 23.638950907347812},
  };
  for (const Expected& e : expected) {
    const GroupStatistic* s = Find(stats, e.set, e.sex);
    ASSERT_NE(s, nullptr) << e.set << e.sex;
    EXPECT_EQ(s->n, e.n) << e.set << e.sex;
    ASSERT_TRUE(s->mean && s->sd) << e.set << e.sex;
    EXPECT_NEAR(*s->mean, e.mean, 1e-9) << e.set << e.sex;
    EXPECT_NEAR(*s->sd, e.sd, 1e-9) << e.set << e.sex;
    EXPECT_EQ(s->unit, "g");
    EXPECT_EQ(s->excluded, 0u);
  }
  // The high dose gains far less than control: what a translational service asks.
  EXPECT_LT(*Find(stats, "4", "M")->mean, *Find(stats, "1", "M")->mean);
  EXPECT_DOUBLE_EQ(*Find(stats, "4", "M")->dose, 200.0);
  EXPECT_TRUE(Find(stats, "1", "M")->control);
  // TK animals have no body weights: listed, with n = 0.
  const GroupStatistic* tk = Find(stats, "2TK", "M");
  ASSERT_NE(tk, nullptr);
  EXPECT_EQ(tk->n, 0u);
  EXPECT_FALSE(tk->mean.has_value());
}

// Same method over the CBER json (BWSTRESN in kg, x1000): changes 100, 0, -100, 200 g.
TEST(IngestCdmQueryTest, BodyWeightChangeInMonkeyNormalisedFromKg) {
  const StudyData d = MapVendored({"send_cber_pilot_8326556"});
  const auto stats = BodyWeightChangeByDoseGroup(d, /*by_sex=*/false);
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].n, 4u);
  EXPECT_NEAR(*stats[0].mean, 50.0, 1e-9);
  EXPECT_NEAR(*stats[0].sd, 129.09944487358055, 1e-9);
  EXPECT_EQ(stats[0].unit, "g");
}

// Clinical body weight is VS WEIGHT in kg; the same query answers it. Expected values
// from python over vs.json/dm.json: VSTESTCD == "WEIGHT" ordered by VSDY, VSSTRESN * 1000.
TEST(IngestCdmQueryTest, BodyWeightChangeInSdtmComesFromVitalSigns) {
  const StudyData d = MapVendored({"cdisc_sdtm_msg_sample", "cdisc_sdtm_msg_sample_findings"});
  const auto stats = BodyWeightChangeByDoseGroup(d);
  const Expected expected[] = {
      {"PLACEBO", "F", 3, 1660.0, 2284.8194677041774},
      {"PLACEBO", "M", 2, -1255.0, 2085.965004500315},
      {"ZAN_HIGH", "F", 4, -657.5, 891.2678235711942},
      {"ZAN_HIGH", "M", 3, -1813.3333333333333, 2526.1499031794083},
      {"ZAN_LOW", "F", 4, -112.5, 1791.6170535766453},
  };
  for (const Expected& e : expected) {
    const GroupStatistic* s = Find(stats, e.set, e.sex);
    ASSERT_NE(s, nullptr) << e.set << e.sex;
    EXPECT_EQ(s->n, e.n) << e.set << e.sex;
    EXPECT_NEAR(*s->mean, e.mean, 1e-6) << e.set << e.sex;
    EXPECT_NEAR(*s->sd, e.sd, 1e-6) << e.set << e.sex;
  }
  const GroupStatistic* one = Find(stats, "ZAN_LOW", "M");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->n, 1u);
  EXPECT_NEAR(*one->mean, -230.0, 1e-6);
  EXPECT_FALSE(one->sd.has_value());  // a single subject has no SD
}

// From python over om.xpt: OMSPEC == "LIVER", each animal's OMSTRESN (g), grouped by SETCD.
TEST(IngestCdmQueryTest, LiverWeightByDoseGroup) {
  const StudyData d = MapVendored({"send_pointcross_pc201708"});
  FindingQuery q;
  q.domain = "OM";
  q.test_code = "WEIGHT";
  q.specimen = "LIVER";
  const auto stats = FindingSummaryByDoseGroup(d, q);
  const Expected expected[] = {
      {"1", "", 20, 8.407955, 2.283968919383652},    {"1R", "", 10, 8.71038, 1.5205216756831264},
      {"2", "", 20, 8.32302, 1.375701786304759},     {"2R", "", 10, 8.84304, 1.7215168713150106},
      {"3", "", 20, 8.950097, 1.8733455802586818},   {"3R", "", 10, 10.420858, 2.2145252168043204},
      {"4", "", 20, 11.4508415, 3.2108528474932525}, {"4R", "", 10, 11.144493, 2.6138462353230003},
  };
  for (const Expected& e : expected) {
    const GroupStatistic* s = Find(stats, e.set, e.sex);
    ASSERT_NE(s, nullptr) << e.set;
    EXPECT_EQ(s->n, e.n) << e.set;
    EXPECT_NEAR(*s->mean, e.mean, 1e-9) << e.set;
    EXPECT_NEAR(*s->sd, e.sd, 1e-9) << e.set;
    EXPECT_EQ(s->unit, "g");
  }
}

TEST(IngestCdmQueryTest, FindingSummaryOnAStudyDayAndInOneUnit) {
  StudyData d;
  d.dose_groups.push_back({.set_code = "A", .label = "A"});
  for (const char* id : {"s1", "s2", "s3"}) d.subjects.push_back({.usubjid = id, .set_code = "A"});
  const auto add = [&](const char* id, double day, double v, const char* unit) {
    Finding f;
    f.domain = "LB";
    f.usubjid = id;
    f.test_code = "ALT";
    f.value = v;
    f.unit = unit;
    f.unit_normalised = true;
    f.study_day = day;
    d.findings.push_back(f);
  };
  add("s1", 1, 10, "U/L");
  add("s1", 29, 30, "U/L");
  add("s2", 29, 50, "U/L");
  add("s3", 29, 7, "ukat-unknown");
  const auto last = FindingSummaryByDoseGroup(d, "LB", "ALT");
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].n, 2u);  // s3's value is in another unit
  EXPECT_EQ(last[0].excluded, 1u);
  EXPECT_DOUBLE_EQ(*last[0].mean, 40.0);
  EXPECT_DOUBLE_EQ(*last[0].sd, std::sqrt(200.0));
  FindingQuery day1{.domain = "LB", .test_code = "ALT", .study_day = 1.0};
  const auto first = FindingSummaryByDoseGroup(d, day1);
  EXPECT_EQ(first[0].n, 1u);
  EXPECT_DOUBLE_EQ(*first[0].mean, 10.0);
}

}  // namespace
}  // namespace fedrx::ingest::cdm
