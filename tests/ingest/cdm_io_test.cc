#include "services/ingest/cdm_io.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/ingest/cdm_test_util.h"

namespace fedrx::ingest::cdm {
namespace {

using testing::MapVendored;
using testing::ReadBytes;
using testing::ScratchDir;
using testing::WriteBytes;

TEST(IngestCdmIoTest, MappedSendStudyRoundTripsExactly) {
  const StudyData d = MapVendored({"send_pointcross_pc201708"});
  ASSERT_EQ(d.findings.size(), 2951u);
  ScratchDir dir;
  ASSERT_TRUE(WriteCdm(dir.File("cdm"), d).ok());
  const auto back = ReadCdm(dir.File("cdm"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->findings.size(), d.findings.size());
  EXPECT_TRUE(*back == d);
}

TEST(IngestCdmIoTest, MappedSdtmStudyRoundTripsExactly) {
  const StudyData d = MapVendored({"cdisc_sdtm_msg_sample", "cdisc_sdtm_msg_sample_findings"});
  ScratchDir dir;
  ASSERT_TRUE(WriteCdm(dir.File("cdm"), d).ok());
  const auto back = ReadCdm(dir.File("cdm"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == d);
}

StudyData Awkward() {
  StudyData d;
  d.study.id = "X,1";
  d.study.standard = Standard::kSdtm;
  d.study.title = "A \"quoted\", multi-line\ntitle with Latin-1 \x92 byte";
  d.study.planned_duration_days = 0.1 + 0.2;
  d.study.parameters = {{"STITLE", " leading and trailing "}, {"EMPTY", ""}};
  DoseGroup g;
  g.set_code = "1";
  g.dose = 1e-300;
  g.parameters = {{"TRTDOS", "0.1"}};
  d.dose_groups.push_back(g);
  d.subjects.push_back({.usubjid = "S-1", .set_code = "1", .age = -0.0});
  Finding f;
  f.domain = "LB";
  f.usubjid = "S-1";
  f.value = std::nextafter(1.0, 2.0);
  f.text = "\r\n";
  f.study_day = -7;
  d.findings.push_back(f);
  AdverseEvent a;
  a.usubjid = "S-1";
  a.serious = false;
  d.adverse_events.push_back(a);
  d.adverse_events.push_back({.usubjid = "S-1", .serious = std::nullopt});
  d.issues.push_back({IssueKind::kUnitUnnormalised, "LB", 12345678901, "LBSTRESU", "why, \"so\""});
  d.tallies.push_back({.domain = "LB", .rows = 3, .mapped = 2, .unmapped = 1});
  return d;
}

TEST(IngestCdmIoTest, AwkwardStringsAndNumbersRoundTrip) {
  const StudyData d = Awkward();
  ScratchDir dir;
  ASSERT_TRUE(WriteCdm(dir.File("cdm"), d).ok());
  const auto back = ReadCdm(dir.File("cdm"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->study.title, d.study.title);
  EXPECT_EQ(*back->study.planned_duration_days, 0.1 + 0.2);
  EXPECT_EQ(*back->findings[0].value, std::nextafter(1.0, 2.0));
  EXPECT_EQ(back->findings[0].text, "\r\n");
  EXPECT_TRUE(std::signbit(*back->subjects[0].age));
  EXPECT_FALSE(back->adverse_events[1].serious.has_value());
  EXPECT_TRUE(*back == d);
}

TEST(IngestCdmIoTest, MalformedFilesAreDataLossWithWhere) {
  ScratchDir dir;
  ASSERT_TRUE(WriteCdm(dir.File("cdm"), Awkward()).ok());
  const std::string findings = dir.File("cdm") + "/findings.csv";
  std::string text = ReadBytes(findings);
  WriteBytes(findings, text + "LB,S-1,too,few\n");
  auto r = ReadCdm(dir.File("cdm"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kDataLoss);
  EXPECT_NE(r.status().where().find("findings.csv:"), std::string::npos);

  WriteBytes(findings, "domain,usubjid\n");
  r = ReadCdm(dir.File("cdm"));
  EXPECT_EQ(r.status().code(), core::StatusCode::kDataLoss);

  std::string bad_number = text;
  bad_number.replace(bad_number.find("1.0000000000000002"), 18, "one");
  WriteBytes(findings, bad_number);
  r = ReadCdm(dir.File("cdm"));
  EXPECT_EQ(r.status().code(), core::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("value"), std::string::npos);
}

TEST(IngestCdmIoTest, MissingDirectoryOrFileIsNotFound) {
  ScratchDir dir;
  EXPECT_EQ(ReadCdm(dir.File("absent")).status().code(), core::StatusCode::kNotFound);
  ASSERT_TRUE(WriteCdm(dir.File("cdm"), Awkward()).ok());
  std::filesystem::remove(dir.File("cdm") + "/subjects.csv");
  EXPECT_EQ(ReadCdm(dir.File("cdm")).status().code(), core::StatusCode::kNotFound);
}

TEST(IngestCdmIoTest, OtherFormatVersionIsRefused) {
  ScratchDir dir;
  ASSERT_TRUE(WriteCdm(dir.File("cdm"), Awkward()).ok());
  const std::string study = dir.File("cdm") + "/study.csv";
  std::string text = ReadBytes(study);
  text.replace(text.find("fedrx-cdm/1"), 11, "fedrx-cdm/9");
  WriteBytes(study, text);
  EXPECT_EQ(ReadCdm(dir.File("cdm")).status().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::ingest::cdm
