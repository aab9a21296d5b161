#include "services/ingest/cdm_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "tests/ingest/cdm_test_util.h"

namespace fedrx::ingest::cdm {
namespace {

using testing::MapVendored;
using testing::TextTable;

std::size_t CountSubjects(const StudyData& d, const std::string& set_code) {
  return static_cast<std::size_t>(
      std::count_if(d.subjects.begin(), d.subjects.end(),
                    [&](const Subject& s) { return s.set_code == set_code; }));
}

const Finding* FindFinding(const StudyData& d, const std::string& domain,
                           const std::string& usubjid, const std::string& testcd, double day) {
  for (const Finding& f : d.findings) {
    if (f.domain == domain && f.usubjid == usubjid && f.test_code == testcd && f.study_day &&
        *f.study_day == day) {
      return &f;
    }
  }
  return nullptr;
}

void ExpectEveryRowAccountedFor(const StudyData& d) {
  for (const DomainTally& t : d.tallies) {
    EXPECT_EQ(t.rows, t.mapped + t.unmapped) << t.domain;
  }
}

TEST(IngestCdmMapTest, SendCberPilotStudyFromTsDmExBw) {
  const StudyData d = MapVendored({"send_cber_pilot_8326556"});
  EXPECT_EQ(d.study.id, "8326556");
  EXPECT_EQ(d.study.standard, Standard::kSend);
  EXPECT_EQ(d.study.species, "MONKEY");
  EXPECT_EQ(d.study.strain, "CYNOMOLGUS");
  EXPECT_EQ(d.study.route, "INTRAMUSCULAR");
  EXPECT_EQ(d.study.planned_duration, "P29D");
  ASSERT_TRUE(d.study.planned_duration_days.has_value());
  EXPECT_DOUBLE_EQ(*d.study.planned_duration_days, 29.0);
  EXPECT_EQ(d.study.design, "PARALLEL");
  EXPECT_EQ(d.study.study_type, "REPEAT DOSE TOXICITY");
  EXPECT_EQ(d.study.sponsor, "Covance Laboratories Inc.");
  EXPECT_EQ(d.study.parameters.at("TRTCAS"), "UNKNOWN");  // TSVALNF when TSVAL is empty
  // No TX here: the one group comes from DM SETCD, its dose from EX (20 ug/dose).
  ASSERT_EQ(d.dose_groups.size(), 1u);
  EXPECT_EQ(d.dose_groups[0].set_code, "1");
  ASSERT_TRUE(d.dose_groups[0].dose.has_value());
  EXPECT_DOUBLE_EQ(*d.dose_groups[0].dose, 0.02);
  EXPECT_EQ(d.dose_groups[0].dose_unit, "mg");
  EXPECT_EQ(CountSubjects(d, "1"), 4u);
  EXPECT_EQ(d.exposures.size(), 8u);
  // BW is in kg in the source: I10808 weighed 2.7 kg on day -8 and 3.0 kg on day 43.
  const Finding* bw = FindFinding(d, "BW", "8326556-I10808", "BW", -8);
  ASSERT_NE(bw, nullptr);
  EXPECT_DOUBLE_EQ(*bw->value, 2700.0);
  EXPECT_EQ(bw->unit, "g");
  EXPECT_TRUE(bw->unit_normalised);
  EXPECT_EQ(bw->visit, "Predose Day 1");
  const Finding* bw43 = FindFinding(d, "BW", "8326556-I10808", "BW", 43);
  ASSERT_NE(bw43, nullptr);
  EXPECT_DOUBLE_EQ(*bw43->value, 3000.0);
  ASSERT_NE(d.FindTally("BW"), nullptr);
  EXPECT_EQ(d.FindTally("BW")->mapped, 44u);
  EXPECT_EQ(d.FindTally("TS")->mapped, 32u);
  EXPECT_TRUE(d.issues.empty());
  ExpectEveryRowAccountedFor(d);
}

TEST(IngestCdmMapTest, SendPointCrossDoseGroupsFromTx) {
  const StudyData d = MapVendored({"send_pointcross_pc201708"});
  EXPECT_EQ(d.study.standard, Standard::kSend);
  EXPECT_EQ(d.study.species, "RAT");
  EXPECT_EQ(d.study.strain, "SPRAGUE-DAWLEY");
  EXPECT_EQ(d.study.route, "ORAL GAVAGE");
  EXPECT_EQ(d.study.planned_duration, "P13W");
  EXPECT_DOUBLE_EQ(*d.study.planned_duration_days, 91.0);
  ASSERT_EQ(d.dose_groups.size(), 11u);
  // Subjects per set, counted from DM SETCD.
  const std::pair<const char*, std::size_t> expected[] = {
      {"1", 20},  {"2", 20},  {"3", 20},   {"4", 20},   {"1R", 10}, {"2R", 10},
      {"3R", 10}, {"4R", 10}, {"2TK", 10}, {"3TK", 10}, {"4TK", 10}};
  for (const auto& [set, n] : expected) {
    EXPECT_NE(d.FindDoseGroup(set), nullptr) << set;
    EXPECT_EQ(CountSubjects(d, set), n) << set;
  }
  const DoseGroup* control = d.FindDoseGroup("1");
  EXPECT_TRUE(control->control);
  EXPECT_DOUBLE_EQ(*control->dose, 0.0);
  EXPECT_EQ(control->dose_unit, "mg/kg");
  EXPECT_FALSE(control->recovery);
  const DoseGroup* high = d.FindDoseGroup("4R");
  EXPECT_FALSE(high->control);
  EXPECT_DOUBLE_EQ(*high->dose, 200.0);
  EXPECT_TRUE(high->recovery);
  EXPECT_TRUE(d.FindDoseGroup("3TK")->toxicokinetic);
  EXPECT_EQ(d.FindDoseGroup("3TK")->arm_code, "3");
  // PC201708-1001 weighed 361 g on day 8 (BWSTRESN in g).
  const Finding* bw = FindFinding(d, "BW", "PC201708-1001", "BW", 8);
  ASSERT_NE(bw, nullptr);
  EXPECT_DOUBLE_EQ(*bw->value, 361.0);
  EXPECT_EQ(d.FindTally("BW")->mapped, 1751u);
  EXPECT_EQ(d.FindTally("OM")->mapped, 1200u);
  EXPECT_EQ(d.FindTally("TX")->mapped, 112u);
  // OM: the brain of PC201708-1001 weighed 2.0789 g.
  const auto brain = std::find_if(d.findings.begin(), d.findings.end(), [](const Finding& f) {
    return f.domain == "OM" && f.usubjid == "PC201708-1001" && f.specimen == "BRAIN";
  });
  ASSERT_NE(brain, d.findings.end());
  EXPECT_DOUBLE_EQ(*brain->value, 2.0789);
  EXPECT_TRUE(d.issues.empty());
  ExpectEveryRowAccountedFor(d);
}

TEST(IngestCdmMapTest, SdtmSampleMapsSubjectsAdverseEventsExposureAndVitals) {
  const StudyData d = MapVendored({"cdisc_sdtm_msg_sample", "cdisc_sdtm_msg_sample_findings"});
  EXPECT_EQ(d.study.standard, Standard::kSdtm);
  EXPECT_EQ(d.study.id, "CDISCPILOT01");
  EXPECT_EQ(d.study.species, "HUMAN");
  EXPECT_EQ(d.study.route, "SUBCUTANEOUS");  // no TS: every EXROUTE agrees
  ASSERT_EQ(d.subjects.size(), 18u);
  EXPECT_EQ(CountSubjects(d, "PLACEBO"), 5u);
  EXPECT_EQ(CountSubjects(d, "ZAN_LOW"), 5u);
  EXPECT_EQ(CountSubjects(d, "ZAN_HIGH"), 7u);
  EXPECT_EQ(d.FindSubject("CDISC015")->set_code, "");  // not randomised
  const Subject* s1 = d.FindSubject("CDISC001");
  EXPECT_DOUBLE_EQ(*s1->age, 84.0);
  EXPECT_EQ(s1->sex, "M");
  const DoseGroup* placebo = d.FindDoseGroup("PLACEBO");
  EXPECT_TRUE(placebo->control);
  EXPECT_DOUBLE_EQ(*placebo->dose, 0.0);
  EXPECT_DOUBLE_EQ(*d.FindDoseGroup("ZAN_LOW")->dose, 54.0);
  EXPECT_EQ(d.FindDoseGroup("ZAN_LOW")->dose_unit, "mg");
  // ZAN_HIGH subjects took 54 and 81 mg: no single dose level.
  EXPECT_FALSE(d.FindDoseGroup("ZAN_HIGH")->dose.has_value());
  ASSERT_EQ(d.adverse_events.size(), 74u);
  const AdverseEvent& ae = d.adverse_events[0];
  EXPECT_EQ(ae.usubjid, "CDISC001");
  EXPECT_EQ(ae.term, "INJECTION SITE REACTION");
  EXPECT_EQ(ae.severity, "MODERATE");
  EXPECT_EQ(ae.serious, false);
  EXPECT_DOUBLE_EQ(*ae.start_day, 3.0);
  EXPECT_EQ(std::count_if(d.adverse_events.begin(), d.adverse_events.end(),
                          [](const AdverseEvent& a) { return a.serious == true; }),
            4);
  // This sample is not MedDRA-coded: SOC is empty, the event is still mapped.
  EXPECT_EQ(ae.soc, "");
  EXPECT_EQ(d.exposures.size(), 1583u);
  EXPECT_EQ(d.FindTally("VS")->mapped, 1414u);
  // Body weight of CDISC001 at baseline (day 1): 78.93 kg -> g.
  const Finding* w = FindFinding(d, "VS", "CDISC001", "WEIGHT", 1);
  ASSERT_NE(w, nullptr);
  EXPECT_NEAR(*w->value, 78930.0, 1e-9);
  EXPECT_EQ(w->unit, "g");
  EXPECT_TRUE(IsBodyWeight(*w));
  ExpectEveryRowAccountedFor(d);
}

std::map<std::string, Table> SmallSdtm() {
  std::map<std::string, Table> domains;
  domains["DM"] = TextTable("DM", {"STUDYID", "USUBJID", "SEX", "ARMCD", "ARM", "AGE"},
                            {{"S1", "S1-001", "F", "A", "Drug A", "40"},
                             {"S1", "S1-002", "M", "PBO", "Placebo", "51"},
                             {"S1", "", "M", "A", "Drug A", "33"},
                             {"S1", "S1-001", "F", "A", "Drug A", "40"}});
  domains["AE"] = TextTable("AE",
                            {"USUBJID", "AESEQ", "AETERM", "AEDECOD", "AEBODSYS", "AESOC", "AESEV",
                             "AESER", "AESTDY", "AEENDY"},
                            {{"S1-001", "1", "headache", "Headache", "Nervous system disorders",
                              "Nervous system disorders", "MILD", "N", "3", "NA"},
                             {"S1-999", "1", "nausea", "Nausea", "", "", "MILD", "N", "2", ""},
                             {"S1-002", "2", "", "", "", "", "", "", "", ""}});
  domains["LB"] =
      TextTable("LB",
                {"USUBJID", "LBSEQ", "LBTESTCD", "LBTEST", "LBSTRESC", "LBSTRESN", "LBSTRESU",
                 "LBSTAT", "LBSPEC", "LBDY"},
                {{"S1-001", "1", "GLUC", "Glucose", "99.1", "99.1", "mg/dL", "", "SERUM", "1"},
                 {"S1-001", "2", "XYZ", "Odd", "7", "7", "widgets/L", "", "SERUM", "1"},
                 {"S1-002", "3", "GLUC", "Glucose", "", "", "", "NOT DONE", "SERUM", "1"},
                 {"S1-002", "4", "", "Blank", "1", "1", "g/L", "", "SERUM", "1"}});
  domains["CO"] = TextTable("CO", {"USUBJID", "COVAL"}, {{"S1-001", "a comment"}});
  return domains;
}

TEST(IngestCdmMapTest, EveryRowIsMappedOrReported) {
  const auto d = MapDomains(SmallSdtm());
  ASSERT_TRUE(d.ok()) << d.status();
  ExpectEveryRowAccountedFor(*d);
  const auto has = [&](IssueKind kind, const std::string& domain, std::int64_t row,
                       const std::string& why_part) {
    return std::any_of(d->issues.begin(), d->issues.end(), [&](const MappingIssue& i) {
      return i.kind == kind && i.domain == domain && i.row == row &&
             i.why.find(why_part) != std::string::npos;
    });
  };
  // DM: an empty USUBJID and a repeated one are not subjects.
  EXPECT_EQ(d->subjects.size(), 2u);
  EXPECT_EQ(d->FindTally("DM")->unmapped, 2u);
  EXPECT_TRUE(has(IssueKind::kRowUnmapped, "DM", 2, "USUBJID is empty"));
  EXPECT_TRUE(has(IssueKind::kRowUnmapped, "DM", 3, "repeats"));
  // AE: SOC mapped; an unknown subject and an unnamed event reported.
  ASSERT_EQ(d->adverse_events.size(), 1u);
  EXPECT_EQ(d->adverse_events[0].soc, "Nervous system disorders");
  EXPECT_EQ(d->adverse_events[0].decoded_term, "Headache");
  EXPECT_FALSE(d->adverse_events[0].end_day.has_value());  // "NA"
  EXPECT_TRUE(has(IssueKind::kRowUnmapped, "AE", 1, "not in DM"));
  EXPECT_TRUE(has(IssueKind::kRowUnmapped, "AE", 2, "AETERM"));
  // LB: glucose normalised to mmol/L; the unknown unit kept as is and reported.
  EXPECT_EQ(d->FindTally("LB")->mapped, 2u);
  EXPECT_EQ(d->FindTally("LB")->unmapped, 2u);
  EXPECT_EQ(d->FindTally("LB")->unnormalised, 1u);
  const Finding& gluc = d->findings[0];
  EXPECT_EQ(gluc.unit, "mmol/L");
  EXPECT_NEAR(*gluc.value, 99.1 * 10 / 180.16, 1e-12);
  const Finding& odd = d->findings[1];
  EXPECT_EQ(odd.test_code, "XYZ");
  EXPECT_DOUBLE_EQ(*odd.value, 7.0);
  EXPECT_EQ(odd.unit, "widgets/L");
  EXPECT_FALSE(odd.unit_normalised);
  EXPECT_TRUE(has(IssueKind::kUnitUnnormalised, "LB", 1, "widgets/L"));
  EXPECT_TRUE(has(IssueKind::kRowUnmapped, "LB", 2, "LBSTAT is NOT DONE"));
  EXPECT_TRUE(has(IssueKind::kRowUnmapped, "LB", 3, "test code is empty"));
  // CO has no counterpart: reported once, its row counted.
  EXPECT_EQ(d->FindTally("CO")->unmapped, 1u);
  EXPECT_TRUE(has(IssueKind::kDomainUnmapped, "CO", -1, "no counterpart"));
  // Control arm named PBO; dose groups from DM ARMCD.
  ASSERT_NE(d->FindDoseGroup("PBO"), nullptr);
  EXPECT_TRUE(d->FindDoseGroup("PBO")->control);
  EXPECT_FALSE(d->FindDoseGroup("A")->control);
}

TEST(IngestCdmMapTest, IssuesBeyondTheCapAreCountedNotStored) {
  auto domains = SmallSdtm();
  MapOptions options;
  options.max_issues_per_domain = 1;
  const auto d = MapDomains(domains, options);
  ASSERT_TRUE(d.ok());
  const DomainTally* lb = d->FindTally("LB");
  EXPECT_EQ(lb->issues_dropped, 2u);  // three LB issues, one stored
  EXPECT_EQ(lb->unmapped, 2u);        // rows are still counted exactly
  EXPECT_EQ(std::count_if(d->issues.begin(), d->issues.end(),
                          [](const MappingIssue& i) { return i.domain == "LB"; }),
            1);
}

TEST(IngestCdmMapTest, StudyWithoutDmIsRefused) {
  auto domains = SmallSdtm();
  domains.erase("DM");
  const auto d = MapDomains(domains);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), core::StatusCode::kFailedPrecondition);
}

TEST(IngestCdmMapTest, IsoDurations) {
  EXPECT_DOUBLE_EQ(*IsoDurationDays("P13W"), 91.0);
  EXPECT_DOUBLE_EQ(*IsoDurationDays("P29D"), 29.0);
  EXPECT_DOUBLE_EQ(*IsoDurationDays("PT12H"), 0.5);
  EXPECT_DOUBLE_EQ(*IsoDurationDays("P1DT12H"), 1.5);
  EXPECT_FALSE(IsoDurationDays("P6M").has_value());
  EXPECT_FALSE(IsoDurationDays("P1Y").has_value());
  EXPECT_FALSE(IsoDurationDays("13 weeks").has_value());
  EXPECT_FALSE(IsoDurationDays("P").has_value());
  EXPECT_FALSE(IsoDurationDays("PT").has_value());
}

TEST(IngestCdmMapTest, DetectsTheStandard) {
  EXPECT_EQ(DetectStandard(SmallSdtm()), Standard::kSdtm);
  std::map<std::string, Table> send;
  send["DM"] = TextTable("DM", {"USUBJID", "SETCD"}, {{"X-1", "1"}});
  EXPECT_EQ(DetectStandard(send), Standard::kSend);
}

}  // namespace
}  // namespace fedrx::ingest::cdm
