// IngestStudy on the vendored SEND and SDTM studies: what a version holds, that
// its descriptor agrees with its CDM files, and that a bad input writes nothing
// and leaves the previous version exactly as it was.
#include "services/ingest/study_ingest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "services/ingest/cdm_io.h"
#include "tests/ingest/ingest_test_util.h"

namespace fedrx::ingest {
namespace {

namespace fs = std::filesystem;
using testing::DataDir;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadBytes;
using testing::ScratchDir;
using testing::WriteBytes;
using Stage = StudyIngestProgress::Stage;

// Copies every file of `from` into `to` except those named in `skip`.
void CopyFolder(const std::string& from, const fs::path& to,
                const std::vector<std::string>& skip = {}) {
  fs::create_directories(to);
  for (const auto& entry : fs::directory_iterator(from)) {
    const std::string name = entry.path().filename().string();
    if (std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
    fs::copy_file(entry.path(), to / name, fs::copy_options::overwrite_existing);
  }
}

// Every file under the store (relative path -> bytes), LOCK and tmp/ aside.
std::map<std::string, std::string> Snapshot(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const std::string rel = fs::relative(entry.path(), root).string();
    if (rel == "LOCK" || rel.rfind("tmp", 0) == 0) continue;
    files[rel] = ReadBytes(entry.path().string());
  }
  return files;
}

nlohmann::json ReadJson(const std::string& path) { return nlohmann::json::parse(ReadBytes(path)); }

TEST(IngestStudyTest, SendPointCrossWritesVersionOneWithDescriptorMatchingItsCdm) {
  ScratchDir scratch;
  const std::string store = scratch.File("store");
  const auto r = IngestStudy(DataDir("send_pointcross_pc201708"), store);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version.number, 1u);
  EXPECT_EQ(ReadBytes(store + "/CURRENT"), "1\n");
  EXPECT_EQ(r->counts.subjects, 150u);
  EXPECT_EQ(r->counts.dose_groups, 11u);
  EXPECT_EQ(r->counts.exposures, 150u);
  EXPECT_EQ(r->counts.findings, (std::map<std::string, std::size_t>{{"BW", 1751}, {"OM", 1200}}));
  EXPECT_FALSE(r->define_used);

  // The descriptor's counts are those of the CDM files written beside it.
  const auto cdm = cdm::ReadCdm(r->version.dir + "/cdm");
  ASSERT_TRUE(cdm.ok()) << cdm.status();
  EXPECT_EQ(*cdm, r->data);
  const nlohmann::json d = ReadJson(r->version.dir + "/descriptor.json");
  EXPECT_EQ(d["kind"], "fedrx-study/1");
  EXPECT_EQ(d["study_id"], "PC201708");
  EXPECT_EQ(d["standard"], "SEND");
  EXPECT_EQ(d["species"], "RAT");
  EXPECT_EQ(d["route"], "ORAL GAVAGE");
  EXPECT_EQ(d["duration_days"], 91.0);
  EXPECT_EQ(d["counts"]["subjects"], cdm->subjects.size());
  EXPECT_EQ(d["counts"]["dose_groups"], cdm->dose_groups.size());
  EXPECT_EQ(d["counts"]["exposures"], cdm->exposures.size());
  EXPECT_EQ(d["counts"]["adverse_events"], 0);
  std::size_t bw = 0, om = 0;
  for (const cdm::Finding& f : cdm->findings) (f.domain == "BW" ? bw : om) += 1;
  EXPECT_EQ(d["counts"]["findings"]["BW"], bw);
  EXPECT_EQ(d["counts"]["findings"]["OM"], om);
  EXPECT_EQ(bw + om, cdm->findings.size());
  EXPECT_TRUE(d["counts"]["unmapped_rows"].empty());  // every PC201708 row maps
  // Dose groups carry design, not subjects: control 0 mg/kg, 20 animals.
  ASSERT_EQ(d["dose_groups"].size(), 11u);
  EXPECT_EQ(d["dose_groups"][0]["set_code"], "1");
  EXPECT_EQ(d["dose_groups"][0]["dose"], 0.0);
  EXPECT_EQ(d["dose_groups"][0]["dose_unit"], "mg/kg");
  EXPECT_EQ(d["dose_groups"][0]["subjects"], 20);
  EXPECT_EQ(d["dose_groups"][0]["control"], true);
  // Conformance: as the report (NM0003: 280 OMSTRESN rounded to 6 digits), no errors.
  EXPECT_EQ(d["conformance"]["error"], 0);
  EXPECT_EQ(d["conformance"]["by_rule"]["FDRX-NM0003"], 280);
  EXPECT_EQ(d["conformance"]["define_checked"], false);
  EXPECT_EQ(ReadJson(r->version.dir + "/conformance.json")["counts_by_rule"]["FDRX-NM0003"], 280);
  // Source files with the hashes PROVENANCE.md records.
  ASSERT_EQ(d["sources"].size(), 6u);
  EXPECT_EQ(d["sources"][1]["file"], "dm.xpt");
  EXPECT_EQ(d["sources"][1]["bytes"], 16080);
  EXPECT_EQ(d["sources"][1]["sha256"],
            "ab5d342a5ae13d3b8613fc318d319f7ea642a4caa8bd8e360f080dda383b341f");
  EXPECT_EQ(d["schema_hash"], r->schema_hash);
  EXPECT_EQ(r->schema_hash.size(), 64u);
  // Never a subject id.
  EXPECT_THAT(ReadBytes(r->version.dir + "/descriptor.json"), Not(HasSubstr("PC201708-1001")));
}

TEST(IngestStudyTest, DefineXmlBesideTheDataIsCheckedAndHashed) {
  ScratchDir scratch;
  CopyFolder(DataDir("send_pointcross_pc201708"), scratch.path() / "study");
  CopyFolder(DataDir("send_pointcross_pc201708_define"), scratch.path() / "study");
  const auto r = IngestStudy(scratch.File("study"), scratch.File("store"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->define_used);
  EXPECT_TRUE(r->report.define_checked);
  // 28 datasets in the define, 6 present.
  EXPECT_EQ(r->report.counts_by_rule.at("FDRX-DF0003"), 22u);
  EXPECT_EQ(r->report.errors, 0u);
  const nlohmann::json d = ReadJson(r->version.dir + "/descriptor.json");
  EXPECT_EQ(d["conformance"]["define_checked"], true);
  ASSERT_EQ(d["sources"].size(), 7u);
  EXPECT_EQ(d["sources"][6]["file"], "define.xml");
  EXPECT_EQ(d["sources"][6]["sha256"],
            "a447de5704483cdb8ebbd6d4845a6d5947ccd3a5f9f9f5b30093bd4a6edfd1af");
}

TEST(IngestStudyTest, SdtmSampleIsIngestedWithItsConformanceErrorsRecorded) {
  ScratchDir scratch;
  const auto r = IngestStudy(DataDir("cdisc_sdtm_msg_sample"), scratch.File("store"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version.number, 1u);
  EXPECT_EQ(r->data.study.standard, cdm::Standard::kSdtm);
  EXPECT_EQ(r->counts.subjects, 18u);
  EXPECT_EQ(r->counts.adverse_events, 74u);
  // AEDECOD is empty in all 74 AE records; TS and EX are missing.
  const nlohmann::json d = ReadJson(r->version.dir + "/descriptor.json");
  EXPECT_EQ(d["standard"], "SDTM");
  EXPECT_EQ(d["species"], "HUMAN");
  EXPECT_EQ(d["counts"]["adverse_events"], 74);
  EXPECT_EQ(d["conformance"]["error"], 76);
  EXPECT_EQ(d["conformance"]["warning"], 0);
  EXPECT_EQ(d["conformance"]["by_rule"]["FDRX-VR0002"], 74);
  EXPECT_EQ(d["conformance"]["by_rule"]["FDRX-ST0001"], 2);
  const nlohmann::json c = ReadJson(r->version.dir + "/conformance.json");
  EXPECT_EQ(c["counts"]["error"], 76);
  EXPECT_EQ(c["study_id"], "CDISCPILOT01");
}

TEST(IngestStudyTest, RefuseOnErrorsWritesNoVersionButTheReport) {
  ScratchDir scratch;
  StudyIngestOptions options;
  options.refuse_on_errors = true;
  options.report_path = scratch.File("report.json");
  const auto r = IngestStudy(DataDir("cdisc_sdtm_msg_sample"), scratch.File("store"), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("76 conformance errors"));
  EXPECT_FALSE(fs::exists(scratch.File("store/CURRENT")));
  EXPECT_EQ(ReadJson(options.report_path)["counts_by_rule"]["FDRX-VR0002"], 74);
}

TEST(IngestStudyTest, SecondIngestWritesVersionTwoAndKeepsVersionOne) {
  ScratchDir scratch;
  const std::string store = scratch.File("store");
  const auto first = IngestStudy(DataDir("send_cber_pilot_8326556"), store);
  ASSERT_TRUE(first.ok()) << first.status();
  const auto before = Snapshot(store);
  const auto second = IngestStudy(DataDir("send_pointcross_pc201708"), store);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->version.number, 2u);
  EXPECT_EQ(ReadBytes(store + "/CURRENT"), "2\n");
  const auto after = Snapshot(store);
  for (const auto& [path, bytes] : before) {
    if (path == "CURRENT") continue;
    EXPECT_EQ(after.at(path), bytes) << path;
  }
  EXPECT_EQ(ReadJson(first->version.dir + "/descriptor.json")["study_id"], "8326556");
  EXPECT_EQ(ReadJson(second->version.dir + "/descriptor.json")["study_id"], "PC201708");
  // Same CDM format, same columns: the schema hash does not depend on the study.
  EXPECT_EQ(first->schema_hash, second->schema_hash);
}

TEST(IngestStudyTest, ProgressReportsEveryDomainReadAndMapped) {
  ScratchDir scratch;
  std::vector<std::string> read, mapped;
  int committed = 0;
  StudyIngestOptions options;
  options.progress = [&](const StudyIngestProgress& p) {
    if (p.stage == Stage::kRead) read.push_back(p.domain + ":" + std::to_string(p.rows));
    if (p.stage == Stage::kMapped) mapped.push_back(p.domain + ":" + std::to_string(p.rows));
    if (p.stage == Stage::kCommitted) ++committed;
  };
  ASSERT_TRUE(IngestStudy(DataDir("send_pointcross_pc201708"), scratch.File("store"), options).ok());
  EXPECT_THAT(read, ::testing::ElementsAre("BW:1751", "DM:150", "EX:150", "OM:1200", "TS:50",
                                           "TX:112"));
  EXPECT_THAT(mapped, ::testing::ElementsAre("BW:1751", "DM:150", "EX:150", "OM:1200", "TS:50",
                                             "TX:112"));
  EXPECT_EQ(committed, 1);
}

// ---- bad inputs: an error naming what and where, the previous version intact ----

class IngestStudyBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = scratch_.File("store");
    const auto v1 = IngestStudy(DataDir("send_cber_pilot_8326556"), store_);
    ASSERT_TRUE(v1.ok()) << v1.status();
    before_ = Snapshot(store_);
    ASSERT_EQ(before_.at("CURRENT"), "1\n");
  }
  void ExpectStoreUnchanged() {
    EXPECT_EQ(Snapshot(store_), before_);
    EXPECT_FALSE(fs::exists(store_ + "/versions/2"));
  }
  ScratchDir scratch_;
  std::string store_;
  std::map<std::string, std::string> before_;
};

TEST_F(IngestStudyBadInputTest, FolderWithoutDmWritesNothing) {
  const std::string folder = scratch_.File("no_dm");
  CopyFolder(DataDir("send_pointcross_pc201708"), folder, {"dm.xpt"});
  const auto r = IngestStudy(folder, store_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("no DM"));
  EXPECT_EQ(r.status().where(), folder);
  ExpectStoreUnchanged();
}

TEST_F(IngestStudyBadInputTest, TruncatedXptWritesNothingAndNamesTheFile) {
  const std::string folder = scratch_.File("truncated");
  CopyFolder(DataDir("send_pointcross_pc201708"), folder);
  const std::string bw = ReadBytes(folder + "/bw.xpt");
  WriteBytes(folder + "/bw.xpt", bw.substr(0, bw.size() / 2 + 37));
  const auto r = IngestStudy(folder, store_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("truncated"));
  EXPECT_THAT(r.status().where(), HasSubstr("bw.xpt"));
  ExpectStoreUnchanged();
}

TEST_F(IngestStudyBadInputTest, EmptyFolderWritesNothing) {
  const std::string folder = scratch_.File("empty");
  fs::create_directories(folder);
  const auto r = IngestStudy(folder, store_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
  EXPECT_THAT(r.status().where(), HasSubstr("empty"));
  ExpectStoreUnchanged();
}

TEST_F(IngestStudyBadInputTest, DmWithoutSubjectsWritesNothing) {
  // A DM with its columns but no record: read fine, maps to zero subjects.
  const std::string folder = scratch_.File("no_subjects");
  CopyFolder(DataDir("send_cber_pilot_8326556"), folder);
  for (const char* f : {"bw.xpt", "dm.xpt", "ex.xpt", "ts.xpt", "bw.json", "ex.json", "ts.json"}) {
    fs::remove(folder + "/" + f);
  }
  nlohmann::json dm = ReadJson(folder + "/dm.json");
  dm["rows"] = nlohmann::json::array();
  dm["records"] = 0;
  WriteBytes(folder + "/dm.json", dm.dump());
  const auto r = IngestStudy(folder, store_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("no subject"));
  EXPECT_THAT(r.status().where(), HasSubstr("DM"));
  ExpectStoreUnchanged();
}

TEST_F(IngestStudyBadInputTest, MissingFolderWritesNothing) {
  const auto r = IngestStudy(scratch_.File("nope"), store_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
  EXPECT_THAT(r.status().where(), HasSubstr("nope"));
  ExpectStoreUnchanged();
}

}  // namespace
}  // namespace fedrx::ingest
