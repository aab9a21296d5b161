#include "services/ingest/conformance.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "services/ingest/controlled_terms.h"
#include "services/ingest/define_xml.h"
#include "services/ingest/study_folder.h"
#include "tests/ingest/ingest_test_util.h"

namespace fedrx::ingest::conformance {
namespace {

using testing::DataDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// --- building tables in memory ----------------------------------------------

Column Text(std::string name, std::vector<std::string> values, int length = 0) {
  Column c;
  c.name = std::move(name);
  c.storage = StorageType::kText;
  c.data_type = DataType::kString;
  int longest = 0;
  for (const auto& v : values) longest = std::max<int>(longest, v.size());
  c.length = length > 0 ? length : std::max(1, longest);
  c.text = std::move(values);
  return c;
}

Column Num(std::string name, std::vector<std::optional<double>> values) {
  Column c;
  c.name = std::move(name);
  c.storage = StorageType::kNumber;
  c.data_type = DataType::kDouble;
  c.length = 8;
  for (const auto& v : values) {
    if (v)
      c.AppendNumber(*v);
    else {
      c.number.push_back(std::nan(""));
      c.missing.push_back(kSystemMissing);
    }
  }
  return c;
}

Table MakeTable(std::string name, std::vector<Column> columns) {
  Table t;
  t.name = std::move(name);
  t.num_rows = columns.empty() ? 0 : columns[0].size();
  t.columns = std::move(columns);
  return t;
}

Column& Col(Table& t, std::string_view name) {
  const int i = t.ColumnIndex(name);
  EXPECT_GE(i, 0) << name;
  return t.columns[i];
}

// A small SEND study on which every rule is quiet.
std::map<std::string, Table> CleanSendStudy() {
  std::map<std::string, Table> s;
  const std::vector<std::string> study(3, "S1");
  s["DM"] = MakeTable(
      "DM", {Text("STUDYID", study), Text("DOMAIN", {"DM", "DM", "DM"}),
             Text("USUBJID", {"S1-001", "S1-002", "S1-003"}), Text("SUBJID", {"001", "002", "003"}),
             Text("RFSTDTC", {"2017-01-02", "2017-01", "2017-01-02T08:30"}),
             Text("SEX", {"M", "F", "M"}), Text("ARMCD", {"1", "2", "1"}),
             Text("ARM", {"Control", "High", "Control"}), Text("SETCD", {"1", "2", "1"})});
  s["TS"] = MakeTable(
      "TS", {Text("STUDYID", std::vector<std::string>(6, "S1")),
             Text("DOMAIN", std::vector<std::string>(6, "TS")), Num("TSSEQ", {1, 1, 1, 1, 1, 1}),
             Text("TSPARMCD", {"SNDIGVER", "SPECIES", "STRAIN", "ROUTE", "DOSDUR", "STSTDTC"}),
             Text("TSPARM", {"SEND IG", "Species", "Strain", "Route", "Dosing Duration", "Start"}),
             Text("TSVAL", {"SEND IMPLEMENTATION GUIDE VERSION 3.1", "RAT", "SPRAGUE-DAWLEY",
                            "ORAL GAVAGE", "P13W", "2017-01-01"})});
  s["EX"] = MakeTable("EX", {Text("STUDYID", study), Text("DOMAIN", {"EX", "EX", "EX"}),
                             Text("USUBJID", {"S1-001", "S1-002", "S1-003"}),
                             Num("EXSEQ", {1, 1, 1}), Text("EXTRT", {"DRUG", "DRUG", "DRUG"}),
                             Num("EXDOSE", {0, 20, 0}), Text("EXDOSU", {"mg/kg", "mg/kg", "mg/kg"}),
                             Text("EXROUTE", {"ORAL GAVAGE", "ORAL GAVAGE", "ORAL GAVAGE"}),
                             Text("EXSTDTC", {"2017-01-02", "2017-01-02", "2017-01-02"})});
  s["BW"] = MakeTable(
      "BW", {Text("STUDYID", {"S1", "S1", "S1", "S1"}), Text("DOMAIN", {"BW", "BW", "BW", "BW"}),
             Text("USUBJID", {"S1-001", "S1-001", "S1-002", "S1-003"}), Num("BWSEQ", {1, 2, 1, 1}),
             Text("BWTESTCD", {"BW", "TERMBW", "BW", "BW"}),
             Text("BWTEST", {"Body Weight", "Terminal Body Weight", "Body Weight", "Body Weight"}),
             Text("BWSTRESC", {"250", "260.5", "240", ""}), Num("BWSTRESN", {250, 260.5, 240, {}}),
             Text("BWSTRESU", {"g", "g", "g", ""}),
             Text("BWDTC", {"2017-01-02", "2017-02-02T09:00:00", "2003---15", "--01-02"})});
  s["LB"] = MakeTable(
      "LB", {Text("STUDYID", {"S1", "S1"}), Text("DOMAIN", {"LB", "LB"}),
             Text("USUBJID", {"S1-001", "S1-002"}), Num("LBSEQ", {1, 1}),
             Text("LBTESTCD", {"ALT", "HGB"}), Text("LBTEST", {"ALT", "Hemoglobin"}),
             Text("LBSTRESC", {"<5", "14.1"}), Num("LBSTRESN", {{}, 14.1}),
             Text("LBSTRESU", {"U/L", "g/dL"}), Text("LBDTC", {"2017-01-02", "2017-01-02"}),
             Text("LBELTM", {"PT2H", "-P1DT3.5H"})});
  s["SUPPBW"] =
      MakeTable("SUPPBW", {Text("STUDYID", {"S1", "S1"}), Text("RDOMAIN", {"BW", "BW"}),
                           Text("USUBJID", {"S1-001", "S1-001"}), Text("IDVAR", {"BWSEQ", "BWSEQ"}),
                           Text("IDVARVAL", {"1", "2"}), Text("QNAM", {"BWFAST", "BWFAST"}),
                           Text("QLABEL", {"Fasting", "Fasting"}), Text("QVAL", {"Y", "Y"})});
  return s;
}

using Where = std::tuple<std::string, std::size_t, std::string>;  // dataset, row, variable

std::vector<Where> Findings(const ConformanceReport& report, std::string_view rule) {
  std::vector<Where> out;
  for (const Finding& f : report.findings) {
    if (f.rule_id == rule) out.emplace_back(f.dataset, f.row, f.variable);
  }
  return out;
}

const Finding* First(const ConformanceReport& report, std::string_view rule) {
  for (const Finding& f : report.findings) {
    if (f.rule_id == rule) return &f;
  }
  return nullptr;
}

std::string Describe(const ConformanceReport& report) {
  std::ostringstream out;
  PrintReport(report, out, 50);
  return out.str();
}

// --- the rules on crafted tables ------------------------------------------------

TEST(IngestConformanceTest, RuleIdsAreUniqueStableAndDescribed) {
  std::set<std::string_view> ids;
  for (const RuleInfo& rule : ConformanceRules()) {
    EXPECT_TRUE(ids.insert(rule.id).second) << rule.id;
    EXPECT_EQ(rule.id.substr(0, 5), "FDRX-");
    EXPECT_EQ(rule.id.size(), 11u) << rule.id;
    EXPECT_FALSE(rule.description.empty());
  }
  EXPECT_EQ(ids.size(), 38u);
  EXPECT_TRUE(ids.count("FDRX-RD0001"));
  EXPECT_TRUE(ids.count("FDRX-KY0002"));
}

TEST(IngestConformanceTest, CleanSendStudyHasNoFindings) {
  const auto study = CleanSendStudy();
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(report.findings, IsEmpty()) << Describe(report);
  EXPECT_EQ(report.errors + report.warnings + report.notices, 0u);
  EXPECT_EQ(report.study_id, "S1");
  EXPECT_EQ(report.standard, Standard::kSend);
  EXPECT_TRUE(report.standard_detected);
  ASSERT_EQ(report.datasets.size(), 6u);
  EXPECT_EQ(report.datasets[0].name, "BW");
  EXPECT_EQ(report.datasets[0].rows, 4u);
  EXPECT_EQ(report.datasets[0].columns, 10u);
}

TEST(IngestConformanceTest, RequiredDatasetsPerStandard) {
  auto study = CleanSendStudy();
  study.erase("EX");
  study.erase("BW");
  study.erase("SUPPBW");
  ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(Findings(report, "FDRX-ST0001"), ElementsAre(Where{"EX", 0, ""}));
  EXPECT_THAT(Findings(report, "FDRX-ST0002"), ElementsAre(Where{"BW", 0, ""}));

  // An SDTM study (given, not detected) needs DM, TS and EX, not BW.
  study.erase("TS");
  CheckOptions sdtm;
  sdtm.standard = Standard::kSdtm;
  report = CheckTables(study, nullptr, sdtm);
  EXPECT_FALSE(report.standard_detected);
  EXPECT_THAT(Findings(report, "FDRX-ST0001"), ElementsAre(Where{"EX", 0, ""}, Where{"TS", 0, ""}));
  EXPECT_THAT(Findings(report, "FDRX-ST0002"), IsEmpty());
  // SDTM's DM also requires SITEID and COUNTRY; SEND's SETCD is not required.
  EXPECT_THAT(Findings(report, "FDRX-VR0001"),
              ElementsAre(Where{"DM", 0, "SITEID"}, Where{"DM", 0, "COUNTRY"}));
}

TEST(IngestConformanceTest, UndetectableStandardIsANoticeAndSkipsStandardRules) {
  std::map<std::string, Table> study;
  study["LB"] = CleanSendStudy().at("LB");
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_EQ(report.standard, Standard::kUnknown);
  EXPECT_THAT(Findings(report, "FDRX-ST0003"), ElementsAre(Where{"", 0, ""}));
  EXPECT_THAT(Findings(report, "FDRX-ST0001"), IsEmpty());
  EXPECT_EQ(report.notices, 1u);
  EXPECT_EQ(report.errors, 0u);
}

TEST(IngestConformanceTest, RequiredVariablesMissingOrNull) {
  auto study = CleanSendStudy();
  Table& bw = study["BW"];
  bw.columns.erase(bw.columns.begin() + bw.ColumnIndex("BWTESTCD"));
  Col(study["DM"], "USUBJID").text[1] = "";
  Col(study["EX"], "EXSEQ").missing[2] = kSystemMissing;
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(Findings(report, "FDRX-VR0001"), ElementsAre(Where{"BW", 0, "BWTESTCD"}));
  EXPECT_THAT(Findings(report, "FDRX-VR0002"),
              ElementsAre(Where{"DM", 2, "USUBJID"}, Where{"EX", 3, "EXSEQ"}));
  EXPECT_EQ(First(report, "FDRX-VR0002")->severity, Severity::kError);
}

TEST(IngestConformanceTest, TypesNamesLabelsAndLengths) {
  auto study = CleanSendStudy();
  Table& bw = study["BW"];
  bw.columns[bw.ColumnIndex("BWSTRESN")] = Text("BWSTRESN", {"250", "260.5", "240", ""});
  Table& lb = study["LB"];
  lb.columns[lb.ColumnIndex("LBTESTCD")] = Num("LBTESTCD", {1, 2});
  lb.columns.push_back(Text("LBVERYLONG", {"a", "b"}));
  lb.columns.push_back(Text("LBCOMM", {std::string(201, 'x'), "b"}, 201));
  Col(lb, "LBTEST").label = std::string(41, 'L');
  Col(lb, "LBSTRESU").label = std::string(40, 'L');  // the limit itself is fine
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(Findings(report, "FDRX-VR0003"), ElementsAre(Where{"BW", 0, "BWSTRESN"}));
  EXPECT_THAT(Findings(report, "FDRX-VR0004"), ElementsAre(Where{"LB", 0, "LBTESTCD"}));
  EXPECT_THAT(Findings(report, "FDRX-VR0005"), ElementsAre(Where{"LB", 0, "LBVERYLONG"}));
  EXPECT_THAT(Findings(report, "FDRX-VR0006"), ElementsAre(Where{"LB", 0, "LBTEST"}));
  EXPECT_THAT(Findings(report, "FDRX-VR0007"), ElementsAre(Where{"LB", 0, "LBCOMM"}));
  EXPECT_EQ(First(report, "FDRX-VR0007")->message, "character length is 201 bytes, more than 200");
  // A text BWSTRESN is not compared with BWSTRESC.
  EXPECT_THAT(Findings(report, "FDRX-NM0001"), IsEmpty());
}

TEST(IngestConformanceTest, KeysMustBeUnique) {
  auto study = CleanSendStudy();
  Col(study["DM"], "USUBJID").text[2] = "S1-001";
  Col(study["BW"], "BWSEQ").number[1] = 1;  // S1-001 has BWSEQ 1 twice
  Col(study["SUPPBW"], "IDVARVAL").text[1] = "1";
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(Findings(report, "FDRX-KY0001"), ElementsAre(Where{"DM", 3, "USUBJID"}));
  EXPECT_EQ(First(report, "FDRX-KY0001")->message, "STUDYID+USUBJID repeats record 1");
  EXPECT_THAT(Findings(report, "FDRX-KY0002"), ElementsAre(Where{"BW", 2, "BWSEQ"}));
  EXPECT_EQ(First(report, "FDRX-KY0002")->message, "STUDYID+USUBJID+BWSEQ repeats record 1");
  EXPECT_THAT(Findings(report, "FDRX-KY0003"), ElementsAre(Where{"SUPPBW", 2, "QNAM"}));
}

TEST(IngestConformanceTest, DomainStudyIdAndSubjectsAreConsistent) {
  auto study = CleanSendStudy();
  Col(study["EX"], "DOMAIN").text[1] = "XE";
  Col(study["LB"], "STUDYID").text[0] = "S2";
  Col(study["BW"], "USUBJID").text[3] = "S1-999";
  Col(study["SUPPBW"], "USUBJID").text[0] = "S1-998";
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(Findings(report, "FDRX-CN0001"), ElementsAre(Where{"EX", 2, "DOMAIN"}));
  EXPECT_EQ(First(report, "FDRX-CN0001")->message, "DOMAIN is 'XE', not 'EX' (1 records)");
  EXPECT_THAT(Findings(report, "FDRX-CN0002"), ElementsAre(Where{"LB", 1, "STUDYID"}));
  EXPECT_EQ(First(report, "FDRX-CN0002")->message,
            "STUDYID is 'S2', not the study's 'S1' (1 records)");
  EXPECT_THAT(Findings(report, "FDRX-CN0003"),
              ElementsAre(Where{"BW", 4, "USUBJID"}, Where{"SUPPBW", 1, "USUBJID"}));
  // Subject ids are never quoted.
  for (const Finding& f : report.findings) EXPECT_THAT(f.message, Not(HasSubstr("S1-99")));
}

TEST(IngestConformanceTest, SplitDatasetKeepsItsParentDomain) {
  auto study = CleanSendStudy();
  Table lbch = study["LB"];
  lbch.name = "LBCH";
  study["LBCH"] = lbch;
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(Findings(report, "FDRX-CN0001"), IsEmpty()) << Describe(report);
}

TEST(IngestConformanceTest, ControlledTerminologyQuotesCodesOnly) {
  auto study = CleanSendStudy();
  Col(study["DM"], "SEX").text[0] = "MALE";
  Col(study["DM"], "SEX").text[2] = "private note: owner's cat";  // free text, never quoted
  Col(study["TS"], "TSVAL").text[1] = "UNICORN";
  Col(study["TS"], "TSVAL").text[2] = "CRL:CD(SD)";
  Col(study["TS"], "TSVAL").text[3] = "BY MOUTH";
  Col(study["EX"], "EXROUTE").text[1] = "oral";
  Col(study["EX"], "EXDOSU").text[2] = "MG/KG";
  Col(study["BW"], "BWSTRESU").text[0] = "G";
  Col(study["BW"], "BWTESTCD").text[2] = "WEIGHT";
  Col(study["LB"], "LBTESTCD").text[1] = "ZZTEST";
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(Findings(report, "FDRX-CT0001"),
              ElementsAre(Where{"DM", 1, "SEX"}, Where{"DM", 3, "SEX"}));
  EXPECT_EQ(report.findings.size(), 10u) << Describe(report);
  const Finding* sex = First(report, "FDRX-CT0001");
  EXPECT_EQ(sex->message, "SEX 'MALE' is not in fedrx's SEX terms (1 records)");
  EXPECT_EQ(sex->severity, Severity::kWarning);
  for (const Finding& f : report.findings) {
    EXPECT_THAT(f.message, Not(HasSubstr("owner")));
    EXPECT_THAT(f.message, Not(HasSubstr("private")));
  }
  EXPECT_THAT(Findings(report, "FDRX-CT0002"), ElementsAre(Where{"TS", 2, "TSVAL"}));
  EXPECT_THAT(Findings(report, "FDRX-CT0003"), ElementsAre(Where{"TS", 3, "TSVAL"}));
  EXPECT_EQ(First(report, "FDRX-CT0003")->message,
            "TSVAL a value that is not shown (not code-like) is not in fedrx's STRAIN terms "
            "(1 records)");
  EXPECT_THAT(Findings(report, "FDRX-CT0004"),
              ElementsAre(Where{"EX", 2, "EXROUTE"}, Where{"TS", 4, "TSVAL"}));
  EXPECT_THAT(Findings(report, "FDRX-CT0005"),
              ElementsAre(Where{"BW", 1, "BWSTRESU"}, Where{"EX", 3, "EXDOSU"}));
  EXPECT_THAT(Findings(report, "FDRX-CT0006"), ElementsAre(Where{"BW", 3, "BWTESTCD"}));
  EXPECT_THAT(Findings(report, "FDRX-CT0007"), ElementsAre(Where{"LB", 2, "LBTESTCD"}));
  EXPECT_EQ(First(report, "FDRX-CT0007")->severity, Severity::kNotice);
  EXPECT_EQ(First(report, "FDRX-CT0007")->message,
            "LBTESTCD 'ZZTEST' is not in fedrx's LBTESTCD terms (1 records)");
}

TEST(IngestConformanceTest, ControlledTermTablesMatchCdiscSpelling) {
  EXPECT_TRUE(InCodelist(Codelist::kSex, "UNDIFFERENTIATED"));
  EXPECT_FALSE(InCodelist(Codelist::kSex, "m"));
  EXPECT_TRUE(InCodelist(Codelist::kUnit, "10^9/L"));
  EXPECT_TRUE(InCodelist(Codelist::kUnit, "mg/kg/day"));
  EXPECT_FALSE(InCodelist(Codelist::kUnit, "MG/KG"));
  EXPECT_TRUE(InCodelist(Codelist::kRoute, "INTRAPERITONEAL"));
  EXPECT_TRUE(InCodelist(Codelist::kLbTestCode, "UREAN"));
  EXPECT_TRUE(InCodelist(Codelist::kLbTestCode, "BUN"));
  EXPECT_EQ(CodelistTerms(Codelist::kBwTestCode).size(), 2u);
  EXPECT_STREQ(CodelistName(Codelist::kUnit), "UNIT");
}

TEST(IngestConformanceTest, Iso8601DatesAndDurations) {
  auto study = CleanSendStudy();
  auto& dtc = Col(study["BW"], "BWDTC").text;
  dtc = {"2017-13-01", "2017-02-30T25:00", "17-01-02", "2017-01-02T10:15:30.5+01:00"};
  Col(study["LB"], "LBDTC").text = {"2017-01-02/2017-01-05", "2017-01-02T10:61"};
  Col(study["LB"], "LBELTM").text = {"P", "PT1H30M"};
  Col(study["TS"], "TSVAL").text[4] = "13 weeks";
  Col(study["TS"], "TSVAL").text[5] = "01/01/2017";
  study["TE"] = MakeTable("TE", {Text("STUDYID", {"S1", "S1"}), Text("DOMAIN", {"TE", "TE"}),
                                 Text("ETCD", {"1", "2"}), Text("ELEMENT", {"A", "B"}),
                                 Text("TESTRL", {"x", "y"}), Text("TEDUR", {"P29D", "P1M2D3W"})});
  const ConformanceReport report = CheckTables(study, nullptr);
  // Row 2 fails on hour 25, not on 30 February: a format check only bounds the day by 31.
  EXPECT_THAT(Findings(report, "FDRX-DT0001"),
              ElementsAre(Where{"BW", 1, "BWDTC"}, Where{"BW", 2, "BWDTC"}, Where{"BW", 3, "BWDTC"},
                          Where{"LB", 2, "LBDTC"}, Where{"TS", 6, "TSVAL"}));
  EXPECT_THAT(
      Findings(report, "FDRX-DT0002"),
      ElementsAre(Where{"LB", 1, "LBELTM"}, Where{"TE", 2, "TEDUR"}, Where{"TS", 5, "TSVAL"}));
  EXPECT_EQ(First(report, "FDRX-DT0001")->message,
            "BWDTC '2017-13-01' is not an ISO 8601 date/datetime");
}

TEST(IngestConformanceTest, StandardResultMustMatchItsCharacterForm) {
  auto study = CleanSendStudy();
  auto& stresn = Col(study["BW"], "BWSTRESN");
  stresn.number[0] = 251;       // differs
  stresn.number[1] = 260.5001;  // rounded: relative difference 4e-7
  stresn.missing[2] = kSystemMissing;
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(Findings(report, "FDRX-NM0001"), ElementsAre(Where{"BW", 1, "BWSTRESN"}));
  EXPECT_THAT(Findings(report, "FDRX-NM0002"), ElementsAre(Where{"BW", 3, "BWSTRESN"}));
  EXPECT_THAT(Findings(report, "FDRX-NM0003"), ElementsAre(Where{"BW", 2, "BWSTRESN"}));
  // Results are never quoted.
  for (const Finding& f : report.findings) EXPECT_THAT(f.message, Not(HasSubstr("25")));
}

TEST(IngestConformanceTest, ReaderProblemsBecomeFindings) {
  auto study = CleanSendStudy();
  Table& bw = study["BW"];
  bw.problems.push_back({2, bw.ColumnIndex("BWSTRESN"), "text that is not a number"});
  bw.problems.push_back({-1, -1, "dataset label is missing"});
  bw.problems_dropped = 7;
  const ConformanceReport report = CheckTables(study, nullptr);
  EXPECT_THAT(Findings(report, "FDRX-RD0001"),
              ElementsAre(Where{"BW", 0, ""}, Where{"BW", 3, "BWSTRESN"}));
  EXPECT_THAT(Findings(report, "FDRX-RD0002"), ElementsAre(Where{"BW", 0, ""}));
  EXPECT_EQ(First(report, "FDRX-RD0002")->message, "7 more reader problems were counted, not kept");
}

TEST(IngestConformanceTest, FindingsAreCappedPerRuleAndDatasetButCounted) {
  auto study = CleanSendStudy();
  Col(study["BW"], "USUBJID").text = {"X1", "X2", "X3", "X4"};
  CheckOptions options;
  options.max_findings_per_rule_and_dataset = 2;
  const ConformanceReport report = CheckTables(study, nullptr, options);
  EXPECT_EQ(Findings(report, "FDRX-CN0003").size(), 2u);
  EXPECT_EQ(report.counts_by_rule.at("FDRX-CN0003"), 4u);
  EXPECT_EQ(report.errors, 4u);
  EXPECT_EQ(report.findings_not_stored, 2u);
}

// A define.xml for the clean study, with deliberate differences.
std::string CraftedDefine() {
  return R"(<ODM xmlns:def="http://www.cdisc.org/ns/def/v2.0"><Study OID="S1">
<MetaDataVersion OID="M" def:StandardName="SEND-IG" def:StandardVersion="3.1">
<ItemGroupDef OID="IG.DM" Name="DM" Domain="DM">
  <ItemRef ItemOID="IT.STUDYID" Mandatory="Yes"/><ItemRef ItemOID="IT.DOMAIN" Mandatory="Yes"/>
  <ItemRef ItemOID="IT.USUBJID" Mandatory="Yes" KeySequence="2"/>
  <ItemRef ItemOID="IT.DM.SUBJID" Mandatory="Yes"/><ItemRef ItemOID="IT.DM.RFSTDTC"/>
  <ItemRef ItemOID="IT.DM.SEX" Mandatory="Yes"/><ItemRef ItemOID="IT.DM.ARMCD"/>
  <ItemRef ItemOID="IT.DM.ARM"/><ItemRef ItemOID="IT.DM.AGE"/>
</ItemGroupDef>
<ItemGroupDef OID="IG.PC" Name="PC" Domain="PC"><ItemRef ItemOID="IT.STUDYID"/></ItemGroupDef>
<ItemDef OID="IT.STUDYID" Name="STUDYID" DataType="text" Length="2"/>
<ItemDef OID="IT.DOMAIN" Name="DOMAIN" DataType="text" Length="2"/>
<ItemDef OID="IT.USUBJID" Name="USUBJID" DataType="text" Length="6"/>
<ItemDef OID="IT.DM.SUBJID" Name="SUBJID" DataType="integer" Length="8"/>
<ItemDef OID="IT.DM.RFSTDTC" Name="RFSTDTC" DataType="date"/>
<ItemDef OID="IT.DM.SEX" Name="SEX" DataType="text" Length="1"/>
<ItemDef OID="IT.DM.ARMCD" Name="ARMCD" DataType="text" Length="1"/>
<ItemDef OID="IT.DM.ARM" Name="ARM" DataType="text" Length="30"/>
<ItemDef OID="IT.DM.AGE" Name="AGE" DataType="integer" Length="8"/>
</MetaDataVersion></Study></ODM>)";
}

TEST(IngestConformanceTest, DatasetsAndVariablesAgainstDefine) {
  auto study = CleanSendStudy();
  Col(study["DM"], "SEX").text[1] = "";  // Mandatory in the define (and required)
  const auto define = ParseDefineXml(CraftedDefine(), "crafted.xml");
  ASSERT_TRUE(define.ok()) << define.status();
  const ConformanceReport report = CheckTables(study, &*define);
  EXPECT_TRUE(report.define_checked);
  EXPECT_THAT(Findings(report, "FDRX-DF0002"),
              ElementsAre(Where{"BW", 0, ""}, Where{"EX", 0, ""}, Where{"LB", 0, ""},
                          Where{"SUPPBW", 0, ""}, Where{"TS", 0, ""}));
  EXPECT_THAT(Findings(report, "FDRX-DF0003"), ElementsAre(Where{"PC", 0, ""}));
  EXPECT_THAT(Findings(report, "FDRX-DF0004"), ElementsAre(Where{"DM", 0, "SETCD"}));
  EXPECT_THAT(Findings(report, "FDRX-DF0005"), ElementsAre(Where{"DM", 0, "AGE"}));
  EXPECT_THAT(Findings(report, "FDRX-DF0006"), ElementsAre(Where{"DM", 0, "SUBJID"}));
  EXPECT_EQ(First(report, "FDRX-DF0006")->message,
            "define.xml DataType is 'integer' but the data are character");
  EXPECT_THAT(Findings(report, "FDRX-DF0007"), ElementsAre(Where{"DM", 0, "ARM"}));
  EXPECT_EQ(First(report, "FDRX-DF0007")->message, "length is 7, define.xml Length is 30");
  EXPECT_THAT(Findings(report, "FDRX-DF0008"), ElementsAre(Where{"DM", 2, "SEX"}));
  EXPECT_THAT(Findings(report, "FDRX-VR0002"), ElementsAre(Where{"DM", 2, "SEX"}));
}

TEST(IngestConformanceTest, UnreadableDefineIsAnError) {
  StudyFolder folder;
  folder.domains = CleanSendStudy();
  folder.has_define_xml = true;
  folder.define_error =
      "invalid_argument: malformed XML: Start-end tags mismatch (at define.xml:7)";
  const ConformanceReport report = CheckStudy(folder);
  EXPECT_FALSE(report.define_checked);
  EXPECT_THAT(Findings(report, "FDRX-DF0001"), ElementsAre(Where{"", 0, ""}));
  EXPECT_THAT(First(report, "FDRX-DF0001")->message, HasSubstr("define.xml:7"));
  EXPECT_EQ(report.findings.size(), 1u);
}

TEST(IngestConformanceTest, JsonReportCarriesCountsAndFindings) {
  auto study = CleanSendStudy();
  Col(study["DM"], "SEX").text[0] = "X";
  Col(study["BW"], "BWSEQ").number[1] = 1;
  const ConformanceReport report = CheckTables(study, nullptr);
  const auto json = nlohmann::json::parse(ReportJson(report));
  EXPECT_EQ(json["study_id"], "S1");
  EXPECT_EQ(json["standard"], "SEND");
  EXPECT_EQ(json["datasets"].size(), 6u);
  EXPECT_EQ(json["datasets"][1]["name"], "DM");
  EXPECT_EQ(json["datasets"][1]["rows"], 3);
  EXPECT_EQ(json["counts"]["error"], 1);
  EXPECT_EQ(json["counts"]["warning"], 1);
  EXPECT_EQ(json["counts"]["notice"], 0);
  EXPECT_EQ(json["counts_by_rule"]["FDRX-KY0002"], 1);
  ASSERT_EQ(json["findings"].size(), 2u);
  EXPECT_EQ(json["findings"][0]["rule_id"], "FDRX-KY0002");
  EXPECT_EQ(json["findings"][0]["severity"], "error");
  EXPECT_EQ(json["findings"][0]["dataset"], "BW");
  EXPECT_EQ(json["findings"][0]["row"], 2);
  EXPECT_EQ(json["findings"][0]["variable"], "BWSEQ");
  EXPECT_EQ(json["findings"][1]["rule_id"], "FDRX-CT0001");
}

TEST(IngestConformanceTest, PrintedReportIsAFixedWidthTableWithASummary) {
  auto study = CleanSendStudy();
  Col(study["LB"], "LBTESTCD").text[0] = "ZZ1";  // notice
  Col(study["DM"], "SEX").text[0] = "X";         // warning
  Col(study["BW"], "BWSEQ").number[1] = 1;       // error
  const ConformanceReport report = CheckTables(study, nullptr);
  std::ostringstream out;
  PrintReport(report, out, 2);
  EXPECT_EQ(out.str(),
            "SEVERITY RULE        DATASET     ROW VARIABLE MESSAGE\n"
            "error    FDRX-KY0002 BW            2 BWSEQ    STUDYID+USUBJID+BWSEQ repeats record 1\n"
            "warning  FDRX-CT0001 DM            1 SEX      SEX 'X' is not in fedrx's SEX terms (1 "
            "records)\n"
            "study S1 (SEND): 6 datasets, 20 records; 1 errors, 1 warnings, 1 notices (1 not "
            "shown)\n");
}

// --- the vendored real studies --------------------------------------------------

TEST(IngestConformanceTest, CberSendPilotSubsetIsCleanAndConsistent) {
  const auto study = ReadStudyFolder(DataDir("send_cber_pilot_8326556"));
  ASSERT_TRUE(study.ok()) << study.status();
  const ConformanceReport report = CheckStudy(*study);
  EXPECT_EQ(report.study_id, "8326556");
  EXPECT_EQ(report.standard, Standard::kSend);  // TS SNDIGVER
  // DM, TS, EX and BW are all there; 4 monkeys, unique, and every BW/EX record
  // belongs to one of them; units kg / ug/dose, route INTRAMUSCULAR, SEX F.
  EXPECT_THAT(report.findings, IsEmpty()) << Describe(report);
}

TEST(IngestConformanceTest, SdtmMessageSampleReportsUncodedAdverseEventsAndMissingTs) {
  const auto study = ReadStudyFolder(DataDir("cdisc_sdtm_msg_sample"));
  ASSERT_TRUE(study.ok()) << study.status();
  const ConformanceReport report = CheckStudy(*study);
  EXPECT_EQ(report.study_id, "CDISCPILOT01");
  EXPECT_EQ(report.standard, Standard::kSdtm);  // DM has SITEID/COUNTRY/RACE
  // Only DM and AE are vendored: TS and EX are missing.
  EXPECT_THAT(Findings(report, "FDRX-ST0001"), ElementsAre(Where{"EX", 0, ""}, Where{"TS", 0, ""}));
  // AEDECOD is empty in all 74 AE records (verified in ae.json: the sample is
  // not MedDRA-coded). Subject 15 is a screen failure: null ARMCD/ARM with
  // ARMNRS "SCREEN FAILURE" is allowed.
  EXPECT_EQ(report.counts_by_rule.at("FDRX-VR0002"), 74u);
  EXPECT_EQ(First(report, "FDRX-VR0002")->variable, "AEDECOD");
  EXPECT_EQ(report.errors, 76u);
  EXPECT_EQ(report.warnings, 0u);
  EXPECT_EQ(report.notices, 0u);
  // 18 unique subjects in DM, every AE subject among them, AESEQ unique.
  EXPECT_EQ(report.counts_by_rule.count("FDRX-KY0001"), 0u);
  EXPECT_EQ(report.counts_by_rule.count("FDRX-KY0002"), 0u);
  EXPECT_EQ(report.counts_by_rule.count("FDRX-CN0003"), 0u);
  EXPECT_EQ(report.counts_by_rule.count("FDRX-DT0001"), 0u);
}

TEST(IngestConformanceTest, PointCrossSubsetAgainstItsDefine) {
  const auto study = ReadStudyFolder(DataDir("send_pointcross_pc201708"));
  ASSERT_TRUE(study.ok()) << study.status();
  const auto define = ReadDefineXml(DataDir("send_pointcross_pc201708_define") + "/define.xml");
  ASSERT_TRUE(define.ok()) << define.status();
  const ConformanceReport report = CheckTables(study->domains, &*define);
  EXPECT_EQ(report.study_id, "PC201708");
  EXPECT_EQ(report.standard, Standard::kSend);
  // The define describes 28 datasets; 6 are vendored (BW, DM, EX, OM, TS, TX).
  EXPECT_EQ(report.counts_by_rule.at("FDRX-DF0003"), 22u);
  // Every vendored dataset and variable matches its define (type, length,
  // mandatory values), keys are unique, and every subject is in DM.
  for (const char* rule :
       {"FDRX-DF0002", "FDRX-DF0004", "FDRX-DF0005", "FDRX-DF0006", "FDRX-DF0007", "FDRX-DF0008",
        "FDRX-KY0001", "FDRX-KY0002", "FDRX-CN0003", "FDRX-VR0001", "FDRX-VR0002"}) {
    EXPECT_EQ(report.counts_by_rule.count(rule), 0u) << rule;
  }
  // OMSTRESN keeps 6 significant digits of OMSTRESC in 280 of its 1200 records,
  // e.g. record 747: OMSTRESC "10.37472", OMSTRESN 10.3747.
  EXPECT_EQ(report.counts_by_rule.at("FDRX-NM0003"), 280u);
  EXPECT_EQ(Findings(report, "FDRX-NM0003")[0], (Where{"OM", 747, "OMSTRESN"}));
  EXPECT_EQ(report.counts_by_rule.count("FDRX-NM0001"), 0u);
  EXPECT_EQ(report.errors, 0u);
}

}  // namespace
}  // namespace fedrx::ingest::conformance
