// The quality table's lab pieces: the ToxCast panel rule, `prepare` with it
// (scaffold-disjoint site files), `export` (the store's exact bits) and the
// conformal coverage tally behind `coverage`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "services/coordinator/study_runner.h"
#include "services/core/config.h"
#include "services/ingest/compounds.h"
#include "services/lab/coverage.h"
#include "services/lab/lab.h"
#include "services/lab/panel.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/study_spec.h"

namespace fedrx::lab {
namespace {

class LabQualityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fedrx-lab-quality-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(Path(name)) << text;
  }

  std::filesystem::path dir_;
};

// Thirty molecules on ten ring scaffolds (three each: the ring with methyl,
// ethyl or chloro on it) plus acyclic ones; labels: A on every row (10
// positive), B on every row but rarely positive (2), C on a few rows only
// (4 measured), D positive on every other measured row (rate 0.5).
std::string PanelCsv() {
  const std::vector<std::string> rings = {"c1ccccc1", "C1CCCCC1",      "c1ccncc1", "c1ccoc1",
                                          "c1ccsc1",  "C1CCNCC1",      "C1CCOCC1", "c1cnccn1",
                                          "C1CCCC1",  "c1ccc2ccccc2c1"};
  const std::vector<std::string> subs = {"C", "CC", "Cl"};
  std::string csv = "smiles,A,B,C,D\n";
  int i = 0;
  for (const auto& ring : rings) {
    for (const auto& sub : subs) {
      const std::string a = i % 3 == 0 ? "1" : "0";
      const std::string b = i == 4 || i == 17 ? "1" : "0";
      const std::string c = i < 4 ? std::to_string(i % 2) : "";
      const std::string d = std::to_string(i % 2);
      csv += sub + ring + "," + a + "," + b + "," + c + "," + d + "\n";
      ++i;
    }
  }
  for (const char* acyclic : {"CCO", "CCCO", "CCCCO", "CCN", "CCCN", "CCCCN"}) {
    csv += std::string(acyclic) + ",0,0,,0\n";
  }
  return csv;
}

// The rule keeps exactly the columns that pass every threshold and says why
// each other one was left out.
TEST_F(LabQualityTest, PanelRuleKeepsColumnsWithEnoughLabelsAndPositives) {
  Write("panel.csv", PanelCsv());
  ml::FingerprintOptions fp;
  fp.bits = 256;
  auto data = ml::LoadCsvDataset(Path("panel.csv"), ml::CsvOptions{}, fp, nullptr);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->size(), 36u);
  PanelRule rule;
  rule.min_labelled = 20;
  rule.min_positives = 5;
  rule.max_positive_rate = 0.4;
  std::vector<AssayCount> counts;
  auto chosen = ChoosePanel(*data, rule, counts);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(*chosen, std::vector<std::string>{"A"});
  ASSERT_EQ(counts.size(), 4u);
  EXPECT_EQ(counts[0].labelled, 36u);
  EXPECT_EQ(counts[0].positives, 10u);
  EXPECT_TRUE(counts[0].chosen);
  EXPECT_EQ(counts[1].positives, 2u);
  EXPECT_EQ(counts[1].reason, "2 positives < 5");
  EXPECT_EQ(counts[2].labelled, 4u);
  EXPECT_EQ(counts[2].reason, "4 measured < 20");
  EXPECT_EQ(counts[3].positives, 15u);
  EXPECT_EQ(counts[3].reason, "positive rate 0.417 > 0.4");

  // Nothing passes: an error naming the flag, not an empty panel.
  rule.min_positives = 1000;
  auto none = ChoosePanel(*data, rule, counts);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().where(), "--min-labelled");
}

core::Result<codec::StudySpec> StudyFile(const std::string& name) {
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::Config::Load(std::string(FEDRX_SOURCE_DIR) +
                                                                     "/deploy/studies/" + name,
                                                                 core::ProcessEnvironment()));
  return ml::StudySpecFromConfig(config);
}

// The ToxCast study trains exactly the assays the documented rule chooses
// from the vendored file (deploy/data/toxcast/README.md), is a valid study,
// and prepares structures as the Tox21 study does (one tox service
// featurisation for both panels).
TEST(ToxCastStudyFileTest, TrainsThePanelTheRuleChooses) {
  auto spec = StudyFile("toxcast-demo.study");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(coordinator::ValidateStudySpec(*spec).ok()) << coordinator::ValidateStudySpec(*spec);
  auto tox21 = StudyFile("tox21-demo.study");
  ASSERT_TRUE(tox21.ok()) << tox21.status();
  EXPECT_EQ(spec->model.input_dim, tox21->model.input_dim);
  EXPECT_EQ(spec->fingerprint_radius, tox21->fingerprint_radius);
  EXPECT_EQ(spec->sites, (std::vector<std::string>{"toxcast-g", "toxcast-h", "toxcast-i"}));

  ml::FingerprintOptions fp;
  fp.bits = spec->model.input_dim;
  auto data = ml::LoadCsvDataset(std::string(FEDRX_SOURCE_DIR) + "/deploy/data/toxcast/toxcast.csv",
                                 ml::CsvOptions{}, fp, nullptr);
  ASSERT_TRUE(data.ok()) << data.status();
  PanelRule rule;
  rule.min_labelled = 2500;
  rule.min_positives = 500;
  rule.max_positive_rate = 0.4;
  std::vector<AssayCount> counts;
  auto chosen = ChoosePanel(*data, rule, counts);
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ(*chosen, spec->tasks);
  // The README's figures: the weakest assay of the panel.
  EXPECT_EQ(counts.back().task, "ATG_DR4_LXR_CIS_dn");
  EXPECT_EQ(counts.back().labelled, 3000u);
  EXPECT_EQ(counts.back().positives, 614u);
}

// RestrictToPanel drops the rows without any of the panel's labels.
TEST_F(LabQualityTest, RestrictToPanelDropsRowsWithoutPanelLabels) {
  Write("panel.csv", PanelCsv());
  ml::FingerprintOptions fp;
  fp.bits = 256;
  auto data = ml::LoadCsvDataset(Path("panel.csv"), ml::CsvOptions{}, fp, nullptr);
  ASSERT_TRUE(data.ok()) << data.status();
  const ml::Dataset c_only = RestrictToPanel(*data, {"C"});
  EXPECT_EQ(c_only.tasks, std::vector<std::string>{"C"});
  EXPECT_EQ(c_only.size(), 4u);
  const ml::Dataset a_and_c = RestrictToPanel(*data, {"C", "A"});
  EXPECT_EQ(a_and_c.tasks, (std::vector<std::string>{"C", "A"}));
  EXPECT_EQ(a_and_c.size(), 36u);
}

// `prepare` with the panel rule: the files hold only the panel's tasks; every
// molecule is in exactly one of the site files and the test file, and no
// scaffold is in two of them.
TEST_F(LabQualityTest, PrepareWithPanelWritesScaffoldDisjointShares) {
  Write("panel.csv", PanelCsv());
  std::ostringstream out, err;
  const int code =
      lab::Run({"prepare", "--data", Path("panel.csv"), "--out", dir_.string(), "--sites",
                "s1,s2,s3", "--shares", "0.5,0.3,0.2", "--seed", "7", "--min-labelled", "30",
                "--min-positives", "5", "--max-positive-rate", "0.45"},
               out, err);
  ASSERT_EQ(code, 0) << err.str();
  EXPECT_NE(out.str().find("panel: 2 of 4 assays, 36 of 36 rows"), std::string::npos) << out.str();
  std::map<std::string, std::string> file_of_scaffold;
  std::set<std::string> smiles_seen;
  std::size_t rows = 0;
  for (const std::string name : {"s1", "s2", "s3", "test"}) {
    auto d = ml::LoadCsvDataset(Path(name + ".csv"), ml::CsvOptions{}, ml::FingerprintOptions{},
                                nullptr);
    ASSERT_TRUE(d.ok()) << name << ": " << d.status();
    EXPECT_EQ(d->tasks, (std::vector<std::string>{"A", "D"})) << name;
    for (std::size_t r = 0; r < d->size(); ++r) {
      EXPECT_TRUE(smiles_seen.insert(d->smiles[r]).second) << d->smiles[r] << " twice";
      // Acyclic molecules have no scaffold; they group by SMILES (checked above).
      if (d->scaffolds[r].empty()) continue;
      auto [it, inserted] = file_of_scaffold.emplace(d->scaffolds[r], name);
      EXPECT_EQ(it->second, name) << "scaffold " << d->scaffolds[r] << " in two files";
      if (name == "test") {
        EXPECT_EQ(d->split[r], "test");
      } else {
        EXPECT_TRUE(d->split[r] == "train" || d->split[r] == "valid") << d->split[r];
      }
    }
    rows += d->size();
  }
  EXPECT_EQ(rows, 36u);
}

// `export` writes, for every row of a store, exactly the (scrambled) bits,
// labels and split tag the store holds.
TEST_F(LabQualityTest, ExportEqualsTheStoresBits) {
  std::string csv = "smiles,split,T1,T2\n";
  const char* smiles[] = {"CCO",
                          "c1ccccc1O",
                          "CC(=O)Nc1ccc(O)cc1",
                          "CCN(CC)CC",
                          "c1ccc2ccccc2c1",
                          "OC(=O)c1ccccc1O",
                          "Clc1ccc(Cl)cc1",
                          "NC(=O)c1cccnc1"};
  for (int i = 0; i < 8; ++i) {
    csv += std::string(smiles[i]) + "," + (i < 6 ? "train" : "test") + "," + std::to_string(i % 2) +
           "," + (i % 3 == 0 ? "" : std::to_string((i / 2) % 2)) + "\n";
  }
  Write("in.csv", csv);
  ingest::CompoundIngest result;
  ingest::PrepOptions prep;
  const ingest::ConsortiumKey key("quality-test-consortium-key-0123");
  ASSERT_TRUE(
      ingest::IngestCompoundFile(Path("in.csv"), Path("store"), {}, prep, key, {}, result).ok());
  auto loaded = ingest::LoadCurrentCompounds(Path("store"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ml::Dataset& d = loaded->dataset;

  std::ostringstream out, err;
  ASSERT_EQ(lab::Run({"export", "--data", Path("store"), "--out", Path("x.csv")}, out, err), 0)
      << err.str();
  std::ifstream in(Path("x.csv"));
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "smiles,split,T1,T2,bits");
  std::size_t r = 0;
  while (std::getline(in, line)) {
    ASSERT_LT(r, d.size());
    std::vector<std::string> fields;
    std::stringstream s(line);
    std::string field;
    while (std::getline(s, field, ',')) fields.push_back(field);
    if (!line.empty() && line.back() == ',') fields.push_back("");
    ASSERT_EQ(fields.size(), 5u) << line;
    EXPECT_EQ(fields[0], d.smiles[r]);
    EXPECT_EQ(fields[1], d.split[r]);
    for (std::size_t t = 0; t < 2; ++t) {
      const std::int8_t y = d.label(r, t);
      EXPECT_EQ(fields[2 + t], y == ml::kMissing ? "" : std::to_string(y)) << line;
    }
    std::vector<std::uint32_t> bits;
    std::stringstream b(fields[4]);
    std::uint32_t bit;
    while (b >> bit) bits.push_back(bit);
    const auto want = d.x.row(r);
    EXPECT_EQ(bits, std::vector<std::uint32_t>(want.begin(), want.end())) << "row " << r;
    ++r;
  }
  EXPECT_EQ(r, d.size());
  EXPECT_EQ(d.size(), 8u);
  // The key changed the bits: an unkeyed preparation of the first row differs.
  auto plain = ml::PrepareMolecule(d.smiles[0], ml::FingerprintOptions{});
  ASSERT_TRUE(plain.ok());
  EXPECT_NE(plain->bits, std::vector<std::uint32_t>(d.x.row(0).begin(), d.x.row(0).end()));
}

}  // namespace
}  // namespace fedrx::lab

namespace fedrx::lab {
namespace {

// A one-task test set of 4 negatives and 2 positives (one row unlabelled),
// every probability 0.5 (bin 500 of 1000).
ml::Dataset CoverageSet() {
  ml::Dataset d;
  d.tasks = {"T"};
  d.x.dim = 8;
  const std::vector<std::int8_t> labels = {0, 0, 0, 0, 1, 1, ml::kMissing};
  for (std::int8_t y : labels) {
    d.x.AddRow(std::vector<std::uint32_t>{});
    d.smiles.push_back("C");
    d.scaffolds.push_back("");
    d.y.push_back(y);
  }
  return d;
}

// Calibration: 20 negatives and 20 positives, all scored 0.9 (bin 900). At
// 0.5: p(negative) = (20 + 1) / 21 = 1 and p(positive) = (0 + 1) / 21, so at
// confidence 0.9 (p > 0.1) the set is {negative}: every negative covered,
// no positive; at 0.97 (p > 0.03) both labels stay in and everything is
// covered.
TEST(ConformalCoverageTest, CountsCoveragePerClassFromTheHistograms) {
  const ml::Dataset test = CoverageSet();
  ml::ScoreHistogram h;
  h.pos.assign(1000, 0);
  h.neg.assign(1000, 0);
  h.pos[900] = 20;
  h.neg[900] = 20;
  const std::vector<float> probs(test.size(), 0.5f);
  auto levels = ConformalCoverage(test, probs, {h}, {0.9, 0.97});
  ASSERT_TRUE(levels.ok()) << levels.status();
  ASSERT_EQ(levels->size(), 2u);
  const CoverageLevel& l90 = (*levels)[0];
  EXPECT_EQ(l90.all_negative.rows, 4u);
  EXPECT_EQ(l90.all_negative.covered, 4u);
  EXPECT_EQ(l90.all_positive.rows, 2u);
  EXPECT_EQ(l90.all_positive.covered, 0u);
  EXPECT_DOUBLE_EQ(l90.all_negative.coverage(), 1.0);
  EXPECT_DOUBLE_EQ(l90.all_positive.coverage(), 0.0);
  EXPECT_EQ(l90.sets.at("negative"), 6u);
  const CoverageLevel& l97 = (*levels)[1];
  EXPECT_EQ(l97.positive[0].covered, 2u);
  EXPECT_EQ(l97.negative[0].covered, 4u);
  EXPECT_EQ(l97.sets.at("both"), 6u);
}

// Inputs that disagree are refused, naming what is wrong.
TEST(ConformalCoverageTest, RefusesMismatchedInputs) {
  const ml::Dataset test = CoverageSet();
  ml::ScoreHistogram h;
  h.pos.assign(10, 1);
  h.neg.assign(10, 1);
  const std::vector<float> probs(test.size(), 0.5f);
  auto no_hist = ConformalCoverage(test, probs, {}, {0.9});
  ASSERT_FALSE(no_hist.ok());
  EXPECT_EQ(no_hist.status().where(), "calibration.histograms");
  auto short_probs = ConformalCoverage(test, std::vector<float>(3, 0.5f), {h}, {0.9});
  ASSERT_FALSE(short_probs.ok());
  EXPECT_EQ(short_probs.status().where(), "probabilities");
  auto bad_conf = ConformalCoverage(test, probs, {h}, {1.0});
  ASSERT_FALSE(bad_conf.ok());
  EXPECT_EQ(bad_conf.status().where(), "confidence");
}

}  // namespace
}  // namespace fedrx::lab
