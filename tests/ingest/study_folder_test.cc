#include "services/ingest/study_folder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/ingest/ingest_test_util.h"

namespace fedrx::ingest {
namespace {

using testing::DataDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::WriteBytes;

TEST(IngestStudyFolderTest, PrefersXportAndListsWhatItRead) {
  const auto study = ReadStudyFolder(DataDir("send_cber_pilot_8326556"));
  ASSERT_TRUE(study.ok()) << study.status();
  ASSERT_EQ(study->domains.size(), 4u);
  EXPECT_THAT(study->files_read, ElementsAre("bw.xpt", "dm.xpt", "ex.xpt", "ts.xpt"));
  EXPECT_THAT(study->files_skipped, ElementsAre("bw.json", "dm.json", "ex.json", "ts.json"));
  EXPECT_THAT(study->files_ignored, ElementsAre("PROVENANCE.md"));
  EXPECT_FALSE(study->has_define_xml);
  const Table& dm = study->domains.at("DM");
  EXPECT_EQ(dm.format, SourceFormat::kXport);
  EXPECT_EQ(dm.num_rows, 4u);
  EXPECT_EQ(study->domains.at("BW").num_rows, 44u);
}

TEST(IngestStudyFolderTest, PrefersDatasetJsonWhenAsked) {
  StudyFolderOptions options;
  options.prefer = SourceFormat::kDatasetJson;
  const auto study = ReadStudyFolder(DataDir("cdisc_sdtm_msg_sample"), options);
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_THAT(study->files_read, ElementsAre("ae.json", "dm.json"));
  EXPECT_EQ(study->domains.at("DM").format, SourceFormat::kDatasetJson);
  EXPECT_EQ(study->domains.at("AE").num_rows, 74u);
}

TEST(IngestStudyFolderTest, FallsBackToTheOtherFormatAndNotesDefineXml) {
  ScratchDir dir;
  const std::string send = DataDir("send_cber_pilot_8326556");
  std::filesystem::copy_file(send + "/dm.xpt", dir.File("DM.XPT"));
  std::filesystem::copy_file(send + "/ts.json", dir.File("ts.json"));
  WriteBytes(dir.File("define.xml"), "<ODM/>");
  const auto study = ReadStudyFolder(dir.path().string());
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_THAT(study->files_read, ElementsAre("DM.XPT", "ts.json"));
  EXPECT_EQ(study->domains.at("TS").format, SourceFormat::kDatasetJson);
  EXPECT_TRUE(study->has_define_xml);
  EXPECT_THAT(study->define_xml, HasSubstr("define.xml"));

  StudyFolderOptions strict;
  strict.read_other_format = false;
  const auto only_xpt = ReadStudyFolder(dir.path().string(), strict);
  ASSERT_TRUE(only_xpt.ok()) << only_xpt.status();
  EXPECT_THAT(only_xpt->files_read, ElementsAre("DM.XPT"));
  EXPECT_THAT(only_xpt->files_skipped, ElementsAre("ts.json"));
}

TEST(IngestStudyFolderTest, ABadFileFailsTheFolderAndIsNamed) {
  ScratchDir dir;
  std::filesystem::copy_file(DataDir("send_cber_pilot_8326556") + "/dm.xpt", dir.File("dm.xpt"));
  WriteBytes(dir.File("lb.xpt"), "not an xport file at all");
  const auto study = ReadStudyFolder(dir.path().string());
  ASSERT_FALSE(study.ok());
  EXPECT_EQ(study.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(study.status().message(), HasSubstr("domain LB"));
  EXPECT_THAT(study.status().where(), HasSubstr("lb.xpt"));
}

TEST(IngestStudyFolderTest, EmptyOrMissingFolderIsNotFound) {
  ScratchDir dir;
  EXPECT_EQ(ReadStudyFolder(dir.path().string()).status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(ReadStudyFolder(dir.File("absent")).status().code(), core::StatusCode::kNotFound);
}

TEST(IngestStudyFolderTest, TwoFilesForOneDomainAreRefused) {
  ScratchDir dir;
  const std::string dm = DataDir("send_cber_pilot_8326556") + "/dm.xpt";
  std::filesystem::copy_file(dm, dir.File("dm.xpt"));
  std::filesystem::copy_file(dm, dir.File("DM.xpt"));
  const auto study = ReadStudyFolder(dir.path().string());
  ASSERT_FALSE(study.ok());
  EXPECT_EQ(study.status().code(), core::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace fedrx::ingest
