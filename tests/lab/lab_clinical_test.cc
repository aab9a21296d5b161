// `fedrx-lab clinical-prepare` on the vendored ClinTox and Tox21 files: no
// compound (and no scaffold) is both in a site's share and in the held-out
// test set; the Tox21 labels of a known compound (pentamidine, a dication in
// ClinTox and an isethionate salt in Tox21) are attached through its
// InChIKey; an unmatched compound carries no Tox21 label; the demo's
// clintox-demo study file is valid and names the prepared sites. Needs RDKit
// (reads the real files, about 10 s).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "services/coordinator/study_runner.h"
#include "services/core/config.h"
#include "services/lab/lab.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/study_spec.h"

namespace fedrx::lab {
namespace {

const std::vector<std::string> kSites = {"hospital-d", "pharma-e", "hospital-f"};

class ClinicalPrepareTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("fedrx-lab-clinical-" + std::to_string(::getpid())));
    std::filesystem::create_directories(*dir_);
    const std::string data = std::string(FEDRX_SOURCE_DIR) + "/deploy/data/";
    std::ostringstream out, err;
    code_ = lab::Run({"clinical-prepare", "--clintox", data + "clintox/clintox.csv", "--tox21",
                      data + "tox21/tox21.csv", "--out", dir_->string(), "--sites",
                      "hospital-d,pharma-e,hospital-f", "--shares", "0.4,0.35,0.25", "--seed", "7"},
                     out, err);
    output_ = new std::string(out.str() + err.str());
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete output_;
  }
  static ml::Dataset Read(const std::string& name) {
    ml::LoadReport report;
    auto d = ml::LoadCsvDataset((*dir_ / name).string(), ml::CsvOptions{}, ml::FingerprintOptions{},
                                &report);
    EXPECT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(report.skipped.empty()) << name;
    return d.ok() ? *d : ml::Dataset{};
  }
  static std::vector<std::string> Lines(const std::string& name) {
    std::ifstream f(*dir_ / name);
    std::vector<std::string> lines;
    for (std::string line; std::getline(f, line);) lines.push_back(line);
    return lines;
  }

  static std::filesystem::path* dir_;
  static std::string* output_;
  static int code_;
};
std::filesystem::path* ClinicalPrepareTest::dir_ = nullptr;
std::string* ClinicalPrepareTest::output_ = nullptr;
int ClinicalPrepareTest::code_ = -1;

TEST_F(ClinicalPrepareTest, NoCompoundOrScaffoldInBothASiteShareAndTheTestSet) {
  ASSERT_EQ(code_, 0) << *output_;
  const ml::Dataset test = Read("test.csv");
  ASSERT_GT(test.size(), 100u);
  const std::set<std::string> test_smiles(test.smiles.begin(), test.smiles.end());
  std::set<std::string> test_scaffolds(test.scaffolds.begin(), test.scaffolds.end());
  test_scaffolds.erase("");  // acyclic: grouped by SMILES, checked above
  std::size_t rows = test.size();
  for (const std::string& site : kSites) {
    const ml::Dataset d = Read(site + ".csv");
    ASSERT_GT(d.size(), 100u) << site;
    rows += d.size();
    for (std::size_t r = 0; r < d.size(); ++r) {
      EXPECT_EQ(test_smiles.count(d.smiles[r]), 0u) << site << ": " << d.smiles[r];
      EXPECT_EQ(test_scaffolds.count(d.scaffolds[r]), 0u) << site << ": " << d.scaffolds[r];
      EXPECT_TRUE(d.split[r] == "train" || d.split[r] == "valid") << d.split[r];
    }
    // The study's tasks first, then Tox21's twelve.
    ASSERT_EQ(d.tasks.size(), 14u);
    EXPECT_EQ(d.tasks[0], "CT_TOX");
    EXPECT_EQ(d.tasks[1], "FDA_APPROVED");
    EXPECT_EQ(d.tasks[2], "NR-AR");
    EXPECT_EQ(d.tasks[13], "SR-p53");
  }
  // Every ClinTox compound RDKit reads (1478 of 1484) is in exactly one file.
  EXPECT_EQ(rows, 1478u);
}

// Pentamidine: "[H]/[NH+]=C(\N)/c1ccc(cc1)OCCCCCOc2ccc(cc2)/C(=[NH+]/[H])/N" in
// ClinTox (approved, no toxicity failure); in Tox21 (TOX3796) its
// isethionate salt with NR-AR..SR-p53 = 0,0,0,1,,0,0,1,,0,1,0.
TEST_F(ClinicalPrepareTest, AttachesTheTox21LabelsOfTheSameCompoundByInChIKey) {
  ASSERT_EQ(code_, 0) << *output_;
  std::vector<std::string> found;
  for (const char* file : {"test.csv", "hospital-d.csv", "pharma-e.csv", "hospital-f.csv"}) {
    for (const std::string& line : Lines(file)) {
      if (line.find("OCCCCCOc") != std::string::npos) found.push_back(line);
    }
  }
  ASSERT_EQ(found.size(), 1u);
  const std::string& row = found[0];
  const std::string labels = row.substr(row.find(',') + 1);
  EXPECT_EQ(labels.substr(0, labels.rfind(',')), "0,1,0,0,0,1,,0,0,1,,0,1,0") << row;
}

// The printed match count equals the rows with at least one Tox21 label
// (every matched compound has some), and the others carry none.
TEST_F(ClinicalPrepareTest, UnmatchedCompoundsCarryNoTox21Label) {
  ASSERT_EQ(code_, 0) << *output_;
  const std::string marker = "ClinTox x Tox21 by InChIKey: ";
  const auto at = output_->find(marker);
  ASSERT_NE(at, std::string::npos) << *output_;
  const std::size_t matched = std::stoul(output_->substr(at + marker.size()));
  EXPECT_GT(matched, 500u);
  EXPECT_LT(matched, 1478u);
  std::size_t with_tox21 = 0, without = 0;
  for (const char* file : {"test.csv", "hospital-d.csv", "pharma-e.csv", "hospital-f.csv"}) {
    const ml::Dataset d = Read(file);
    for (std::size_t r = 0; r < d.size(); ++r) {
      bool any = false;
      for (std::size_t t = 2; t < d.num_tasks(); ++t) any |= d.label(r, t) != ml::kMissing;
      (any ? with_tox21 : without)++;
    }
  }
  EXPECT_EQ(with_tox21, matched);
  EXPECT_EQ(with_tox21 + without, 1478u);
}

TEST(ClinicalPrepareFlagsTest, MissingInputIsAnErrorNamingTheFlag) {
  std::ostringstream out, err;
  EXPECT_EQ(lab::Run({"clinical-prepare", "--clintox", "x.csv", "--out", "/tmp", "--sites", "a",
                      "--shares", "1"},
                     out, err),
            1);
  EXPECT_NE(err.str().find("--tox21"), std::string::npos) << err.str();
}

// The demo's ClinTox study: valid, the ClinTox tasks, the clinical sites.
TEST(ClinToxStudyFileTest, IsValidWithTheClinToxTasksAndSites) {
  auto config =
      core::Config::Load(std::string(FEDRX_SOURCE_DIR) + "/deploy/studies/clintox-demo.study",
                         core::ProcessEnvironment());
  ASSERT_TRUE(config.ok()) << config.status();
  auto spec = ml::StudySpecFromConfig(*config);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(coordinator::ValidateStudySpec(*spec).ok());
  EXPECT_EQ(spec->study_id, "clintox-demo");
  EXPECT_EQ(spec->tasks, (std::vector<std::string>{"CT_TOX", "FDA_APPROVED"}));
  EXPECT_EQ(spec->sites, kSites);
  EXPECT_GE(spec->evaluate_every, 1u);  // the calibration comes from the evaluations
}

}  // namespace
}  // namespace fedrx::lab
