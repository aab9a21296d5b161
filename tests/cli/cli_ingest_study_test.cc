// `fedrx ingest study` through RunIngestCommand on the vendored SEND and SDTM
// studies: the summary a scientist reads, the exit codes, and that a failed
// ingest leaves the store's current version as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "services/cli/ingest_command.h"

namespace fedrx::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// The vendored study folder tests/data/ingest/<study> of the source tree.
std::string DataDir(const std::string& study) {
  return (fs::path(FEDRX_SOURCE_DIR) / "tests" / "data" / "ingest" / study).string();
}

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class CliIngestStudyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("fedrx_cli_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = (dir_ / "store").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.insert(args.begin(), {"ingest", "study"});
    return RunIngestCommand(args, out_, err_, /*err_is_tty=*/false);
  }

  fs::path dir_;
  std::string store_;
  std::ostringstream out_, err_;
};

TEST_F(CliIngestStudyTest, SendStudySummaryDoseGroupsFindingsAndBodyWeightChange) {
  ASSERT_EQ(
      Run({"--in", DataDir("send_pointcross_pc201708"), "--store", store_, "--max-findings", "3"}),
      0)
      << err_.str();
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("-> version 1\n"));
  EXPECT_THAT(out, HasSubstr("  study               PC201708\n"));
  EXPECT_THAT(out, HasSubstr("  standard            SEND\n"));
  EXPECT_THAT(out, HasSubstr("  species / strain    RAT / SPRAGUE-DAWLEY\n"));
  EXPECT_THAT(out, HasSubstr("  route               ORAL GAVAGE\n"));
  EXPECT_THAT(out, HasSubstr("  duration            P13W (91 days)\n"));
  EXPECT_THAT(out, HasSubstr("  subjects            150 in 11 dose groups\n"));
  EXPECT_THAT(out, HasSubstr("  findings            BW 1751, OM 1200\n"));
  EXPECT_THAT(out, HasSubstr("  unmapped rows       none\n"));
  EXPECT_THAT(
      out, HasSubstr("  conformance         0 errors, 0 warnings, 280 notices (no define.xml)\n"));
  EXPECT_THAT(out, HasSubstr("  top rules           FDRX-NM0003 280 notice\n"));
  // Dose groups: the control and the high dose, with their group sizes.
  EXPECT_THAT(
      out, HasSubstr("  1         Group 1, Control, nonrecovery          0 mg/kg   20  control\n"));
  EXPECT_THAT(out,
              HasSubstr("  4TK       Group 4,200 mg/kg PCDRUG, TK         200 mg/kg   10  TK\n"));
  // Three findings shown, the rest counted.
  EXPECT_THAT(out, HasSubstr("notice   FDRX-NM0003 OM          747 OMSTRESN"));
  EXPECT_THAT(out, HasSubstr("280 notices (277 not shown)\n"));
  // Body-weight gain by group and sex: the 200 mg/kg males gain half what the controls do.
  EXPECT_THAT(
      out, HasSubstr(
               "  1                0 mg/kg      110.5 +- 30.7 g (10)      176.9 +- 32.8 g (10)\n"));
  EXPECT_THAT(
      out, HasSubstr(
               "  4              200 mg/kg       46.9 +- 32.4 g (10)       90.2 +- 20.5 g (10)\n"));
  EXPECT_THAT(out, Not(HasSubstr("  2TK              2 mg/kg")));  // TK animals are not weighed
  EXPECT_THAT(
      err_.str(),
      HasSubstr("ingest: read 6 domains (BW 1751, DM 150, EX 150, OM 1200, TS 50, TX 112 rows)\n"));
  EXPECT_EQ(ReadBytes(fs::path(store_) / "CURRENT"), "1\n");

  ASSERT_EQ(Run({"--in", DataDir("send_pointcross_pc201708"), "--store", store_}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("-> version 2\n"));
}

TEST_F(CliIngestStudyTest, SdtmStudyWithVitalsShowsWeightChangeAndRecordsErrors) {
  // DM/AE and EX/VS of the same study are vendored in two folders.
  const fs::path study = dir_ / "sdtm";
  fs::create_directories(study);
  for (const char* from : {"cdisc_sdtm_msg_sample", "cdisc_sdtm_msg_sample_findings"}) {
    for (const auto& e : fs::directory_iterator(DataDir(from))) {
      if (e.path().extension() == ".json") fs::copy_file(e.path(), study / e.path().filename());
    }
  }
  const std::string report = (dir_ / "report.json").string();
  ASSERT_EQ(
      Run({"--in", study.string(), "--store", store_, "--prefer", "json", "--report", report}), 0)
      << err_.str();
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("  study               CDISCPILOT01\n"));
  EXPECT_THAT(out, HasSubstr("  standard            SDTM\n"));
  EXPECT_THAT(out, HasSubstr("  species / strain    HUMAN / -\n"));
  EXPECT_THAT(out, HasSubstr("  adverse events      74\n"));
  EXPECT_THAT(out, HasSubstr("body-weight change, first to last weight"));
  // VS WEIGHT (kg) in g, by arm: 5 placebo subjects weighed, 3 F and 2 M.
  EXPECT_THAT(
      out, HasSubstr(
               "  PLACEBO             0 mg    1660.0 +- 2284.8 g (3)   -1255.0 +- 2086.0 g (2)\n"));
  EXPECT_THAT(ReadBytes(report), HasSubstr("\"FDRX-VR0002\": 74"));
}

TEST_F(CliIngestStudyTest, RefuseOnErrorsExitsOneAndWritesNothing) {
  EXPECT_EQ(
      Run({"--in", DataDir("cdisc_sdtm_msg_sample"), "--store", store_, "--refuse-on-errors"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("76 conformance errors"));
  EXPECT_THAT(err_.str(), HasSubstr(DataDir("cdisc_sdtm_msg_sample")));
  EXPECT_FALSE(fs::exists(fs::path(store_) / "CURRENT"));
}

TEST_F(CliIngestStudyTest, FolderWithoutDmExitsOneNamingTheFolderAndKeepsTheVersion) {
  ASSERT_EQ(Run({"--in", DataDir("send_cber_pilot_8326556"), "--store", store_}), 0) << err_.str();
  const std::string v1 = ReadBytes(fs::path(store_) / "versions/1/descriptor.json");
  const fs::path no_dm = dir_ / "no_dm";
  fs::create_directories(no_dm);
  for (const auto& e : fs::directory_iterator(DataDir("send_pointcross_pc201708"))) {
    if (e.path().filename() != "dm.xpt") fs::copy_file(e.path(), no_dm / e.path().filename());
  }
  EXPECT_EQ(Run({"--in", no_dm.string(), "--store", store_}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("current version is unchanged"));
  EXPECT_THAT(err_.str(), HasSubstr("no DM (demographics) dataset"));
  EXPECT_THAT(err_.str(), HasSubstr(no_dm.string()));
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(ReadBytes(fs::path(store_) / "CURRENT"), "1\n");
  EXPECT_EQ(ReadBytes(fs::path(store_) / "versions/1/descriptor.json"), v1);
  EXPECT_FALSE(fs::exists(fs::path(store_) / "versions/2"));
}

TEST_F(CliIngestStudyTest, EmptyFolderExitsOne) {
  fs::create_directories(dir_ / "empty");
  EXPECT_EQ(Run({"--in", (dir_ / "empty").string(), "--store", store_}), 1);
  EXPECT_THAT(err_.str(), HasSubstr((dir_ / "empty").string()));
}

TEST_F(CliIngestStudyTest, BadUsageExitsTwo) {
  EXPECT_EQ(Run({"--store", store_}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--in is required"));
  EXPECT_EQ(
      Run({"--in", DataDir("send_pointcross_pc201708"), "--store", store_, "--prefer", "csv"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("expected xpt or json"));
  EXPECT_EQ(
      Run({"--in", DataDir("send_pointcross_pc201708"), "--store", store_, "--max-findings", "x"}),
      2);
  EXPECT_EQ(Run({"--in", DataDir("send_pointcross_pc201708"), "--store", store_, "--tasks", "a"}),
            2);
  EXPECT_EQ(
      Run({"--in", DataDir("send_pointcross_pc201708"), "--store", store_, "--frobnicate", "1"}),
      2);
  EXPECT_THAT(err_.str(), HasSubstr("usage: fedrx ingest"));
  EXPECT_FALSE(fs::exists(fs::path(store_) / "CURRENT"));
}

}  // namespace
}  // namespace fedrx::cli
