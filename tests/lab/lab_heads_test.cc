// heads-prepare and heads-compare: the private-heads demo's data, and the
// per-site comparison of the federated trunk + private head against local
// training.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "services/coordinator/study_runner.h"
#include "services/core/config.h"
#include "services/lab/lab.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"

namespace fedrx::lab {
namespace {

core::Result<codec::StudySpec> LoadStudyFile(const std::string& path) {
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::Config::Load(path, core::ProcessEnvironment()));
  return ml::StudySpecFromConfig(config);
}

TEST(LabHeadsStudyTest, IsAValidPrivateHeadsStudyOfTheFourInstitutions) {
  auto spec = LoadStudyFile(std::string(FEDRX_SOURCE_DIR) + "/deploy/studies/heads-demo.study");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(coordinator::ValidateStudySpec(*spec).ok()) << coordinator::ValidateStudySpec(*spec);
  EXPECT_TRUE(spec->private_heads);
  EXPECT_TRUE(spec->tasks.empty());  // each site brings its own
  EXPECT_EQ(spec->sites, (std::vector<std::string>{"nr-lab", "sr-lab", "clinical-c", "toxcast-d"}));
  EXPECT_GE(spec->min_sites, 3u);
  const ml::NetSpec net = ml::NetSpecFromStudy(*spec);
  EXPECT_EQ(net.input_dim, 2048u);
  EXPECT_EQ(net.hidden, std::vector<std::uint32_t>{512});
  EXPECT_GT(net.dropout, 0.f);
  EXPECT_EQ(coordinator::InitialModel(*spec).size(), ml::TrunkParameterCount(net));
}

// The vendored ToxCast subset loads, with labels in every chosen assay.
TEST(LabHeadsStudyTest, VendoredToxCastSubsetHasItsAssays) {
  ml::LoadReport report;
  ml::FingerprintOptions fp;
  fp.bits = 64;
  auto d = ml::LoadCsvDataset(std::string(FEDRX_SOURCE_DIR) + "/deploy/data/toxcast/toxcast.csv",
                              ml::CsvOptions{}, fp, &report);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(report.rows_read, 3000u);
  EXPECT_GT(report.rows_loaded, 2900u);
  ASSERT_EQ(d->num_tasks(), 8u);
  for (std::size_t t = 0; t < d->num_tasks(); ++t) {
    EXPECT_EQ(d->tasks[t].rfind("ATG_", 0), 0u) << d->tasks[t];
    std::size_t pos = 0, neg = 0;
    for (std::size_t r = 0; r < d->size(); ++r) {
      pos += d->label(r, t) == 1;
      neg += d->label(r, t) == 0;
    }
    EXPECT_GT(pos, 500u) << d->tasks[t];
    EXPECT_GT(neg, 1500u) << d->tasks[t];
  }
}

class LabHeadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fedrx-heads-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "out");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(Path(name)) << text;
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(Path(name));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Runs fedrx-lab; the exit code, with stderr in err_.
  int Lab(std::vector<std::string> args) {
    std::ostringstream out, err;
    const int code = lab::Run(args, out, err);
    out_ = out.str();
    err_ = err.str();
    return code;
  }

  std::filesystem::path dir_;
  std::string out_, err_;
};

// 40 distinct molecules that RDKit parses: alcohols (acyclic) and
// benzene derivatives (one shared scaffold).
std::vector<std::string> Molecules() {
  std::vector<std::string> m;
  for (int n = 1; n <= 20; ++n) m.push_back(std::string(n, 'C') + "O");
  for (int n = 0; n < 20; ++n) m.push_back("c1ccccc1" + std::string(n, 'C') + "N");
  return m;
}

const std::vector<std::string> kNr = {"NR-AR", "NR-AR-LBD", "NR-AhR",       "NR-Aromatase",
                                      "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma"};
const std::vector<std::string> kSr = {"SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"};

class LabHeadsPrepareTest : public LabHeadsTest {
 protected:
  void SetUp() override {
    LabHeadsTest::SetUp();
    const auto mols = Molecules();
    std::string tox21;
    for (const auto& t : kNr) tox21 += t + ",";
    for (const auto& t : kSr) tox21 += t + ",";
    tox21 += "mol_id,smiles\n";
    for (std::size_t i = 0; i < mols.size(); ++i) {
      for (std::size_t t = 0; t < 12; ++t) tox21 += ((i + t) % 3 == 0 ? "1," : "0,");
      tox21 += "TOX" + std::to_string(i) + "," + mols[i] + "\n";
    }
    Write("tox21.csv", tox21);
    // ClinTox and ToxCast share some molecules with Tox21.
    std::string clintox = "smiles,FDA_APPROVED,CT_TOX\n";
    for (std::size_t i = 0; i < 12; ++i) {
      clintox +=
          mols[i * 3] + "," + std::to_string(i % 2) + "," + std::to_string(i % 3 == 0) + "\n";
    }
    Write("clintox.csv", clintox);
    std::string toxcast = "smiles,ATG_A_up,ATG_B_dn\n";
    for (std::size_t i = 0; i < 15; ++i) {
      toxcast +=
          mols[i * 2 + 1] + "," + std::to_string(i % 2) + "," + (i % 4 == 0 ? "" : "1") + "\n";
    }
    toxcast += "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCO,,\n";  // no label: dropped
    Write("toxcast.csv", toxcast);
  }
  int Prepare(const std::string& out) {
    return Lab({"heads-prepare", "--tox21", Path("tox21.csv"), "--clintox", Path("clintox.csv"),
                "--toxcast", Path("toxcast.csv"), "--out", Path(out), "--seed", "11"});
  }
  ml::Dataset LoadSite(const std::string& file) {
    ml::FingerprintOptions fp;
    fp.bits = 64;
    auto d = ml::LoadCsvDataset(Path("out/" + file), ml::CsvOptions{}, fp, nullptr);
    EXPECT_TRUE(d.ok()) << file << ": " << d.status();
    return d.ok() ? *d : ml::Dataset{};
  }
};

TEST_F(LabHeadsPrepareTest, EachSiteHoldsItsOwnTaskColumns) {
  ASSERT_EQ(Prepare("out"), 0) << err_;
  EXPECT_EQ(LoadSite("nr-site.csv").tasks, kNr);
  EXPECT_EQ(LoadSite("sr-site.csv").tasks, kSr);
  EXPECT_EQ(LoadSite("clintox-site.csv").tasks,
            (std::vector<std::string>{"FDA_APPROVED", "CT_TOX"}));
  const ml::Dataset toxcast = LoadSite("toxcast-site.csv");
  EXPECT_EQ(toxcast.tasks, (std::vector<std::string>{"ATG_A_up", "ATG_B_dn"}));
  EXPECT_EQ(toxcast.size(), 15u);  // the row without labels is not the site's data
  EXPECT_EQ(LoadSite("clintox-site.csv").size(), 12u);
  EXPECT_NE(out_.find("nr-site.csv"), std::string::npos) << out_;
}

TEST_F(LabHeadsPrepareTest, EachSiteIsSplitIntoDisjointScaffoldParts) {
  ASSERT_EQ(Prepare("out"), 0) << err_;
  for (const char* file : {"nr-site.csv", "sr-site.csv", "clintox-site.csv", "toxcast-site.csv"}) {
    const ml::Dataset d = LoadSite(file);
    ASSERT_EQ(d.split.size(), d.size()) << file;
    std::map<std::string, std::set<std::string>> smiles, scaffolds;
    for (std::size_t r = 0; r < d.size(); ++r) {
      ASSERT_TRUE(d.split[r] == "train" || d.split[r] == "valid" || d.split[r] == "test")
          << file << " row " << r << ": '" << d.split[r] << "'";
      smiles[d.split[r]].insert(d.smiles[r]);
      if (!d.scaffolds[r].empty()) scaffolds[d.split[r]].insert(d.scaffolds[r]);
    }
    EXPECT_FALSE(smiles["train"].empty()) << file;
    EXPECT_FALSE(smiles["test"].empty()) << file;
    for (const char* a : {"train", "valid", "test"}) {
      for (const char* b : {"train", "valid", "test"}) {
        if (std::string(a) >= b) continue;
        for (const auto& s : smiles[a]) EXPECT_EQ(smiles[b].count(s), 0u) << file << " " << s;
        for (const auto& s : scaffolds[a]) EXPECT_EQ(scaffolds[b].count(s), 0u) << file << " " << s;
      }
    }
    // About 80% train.
    const auto train = std::count(d.split.begin(), d.split.end(), "train");
    EXPECT_GE(train, static_cast<long>(d.size() * 6 / 10)) << file;
    EXPECT_LE(train, static_cast<long>(d.size() * 8 / 10) + 1) << file;
  }
}

TEST_F(LabHeadsPrepareTest, NuclearReceptorAndStressSitesOverlapButDiffer) {
  ASSERT_EQ(Prepare("out"), 0) << err_;
  const ml::Dataset nr = LoadSite("nr-site.csv"), sr = LoadSite("sr-site.csv");
  EXPECT_EQ(nr.size(), 24u);  // 60% of 40
  EXPECT_EQ(sr.size(), 24u);
  const std::set<std::string> a(nr.smiles.begin(), nr.smiles.end());
  const std::set<std::string> b(sr.smiles.begin(), sr.smiles.end());
  std::size_t both = 0;
  for (const auto& s : a) both += b.count(s);
  EXPECT_GT(both, 0u);
  EXPECT_LT(both, a.size());
  EXPECT_NE(a, b);
  // Deterministic for a seed.
  ASSERT_EQ(Prepare("again"), 1) << "the output directory must exist";
  std::filesystem::create_directories(dir_ / "again");
  ASSERT_EQ(Prepare("again"), 0) << err_;
  EXPECT_EQ(Read("out/nr-site.csv"), Read("again/nr-site.csv"));
  EXPECT_EQ(Read("out/sr-site.csv"), Read("again/sr-site.csv"));
}

TEST_F(LabHeadsPrepareTest, NeedsAllThreeSources) {
  EXPECT_EQ(Lab({"heads-prepare", "--tox21", Path("tox21.csv"), "--clintox", Path("clintox.csv"),
                 "--out", Path("out")}),
            1);
  EXPECT_NE(err_.find("--toxcast is required"), std::string::npos) << err_;
}

// A tiny private-heads study (64-bit inputs, a 4-unit trunk) and one site.
class LabHeadsCompareTest : public LabHeadsTest {
 protected:
  void SetUp() override {
    LabHeadsTest::SetUp();
    Write("heads.study",
          "study.id = tiny-heads\nstudy.sites = site-a,site-b\nmodel.input_dim = 64\n"
          "model.hidden = 4\nmodel.dropout = 0.1\ntrain.private_heads = true\n"
          "train.rounds = 2\ntrain.local_epochs = 2\ntrain.learning_rate = 0.01\n"
          "train.batch_size = 8\ntrain.seed = 3\n");
    auto spec = LoadStudyFile(Path("heads.study"));
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec_ = *spec;
    const auto mols = Molecules();
    std::string csv = "smiles,T1,T2,split\n";
    for (std::size_t i = 0; i < mols.size(); ++i) {
      csv += mols[i] + "," + std::to_string((i / 4) % 2) + "," + std::to_string((i / 3) % 2) + "," +
             (i % 4 == 3 ? "test" : "train") + "\n";
    }
    Write("site-a.csv", csv);
    trunk_ = coordinator::InitialModel(spec_);
    WriteFloats("trunk.bin", "", trunk_);
    net_ = ml::WithHead(ml::NetSpecFromStudy(spec_), 2);
    head_ = ml::InitHead(net_, 5);
    WriteFloats("site-a.head", "fedrx-head 1\nT1,T2\n" + std::to_string(head_.size()) + "\n",
                head_);
  }
  void WriteFloats(const std::string& name, const std::string& header,
                   const std::vector<float>& v) const {
    std::ofstream out(Path(name), std::ios::binary);
    out << header;
    out.write(reinterpret_cast<const char*>(v.data()),
              static_cast<std::streamsize>(v.size() * sizeof(float)));
  }
  int Compare(const std::string& sites) {
    return Lab({"heads-compare", "--study", Path("heads.study"), "--trunk", Path("trunk.bin"),
                "--sites", sites, "--json", Path("heads.json")});
  }
  // The number after `key": ` following `after` in the JSON written.
  double JsonValue(const std::string& after, const std::string& key) const {
    const std::string json = Read("heads.json");
    const auto from = json.find(after);
    if (from == std::string::npos) return -1;
    const auto at = json.find("\"" + key + "\": ", from);
    if (at == std::string::npos) return -1;
    return std::strtod(json.c_str() + at + key.size() + 4, nullptr);
  }

  codec::StudySpec spec_;
  ml::NetSpec net_;
  std::vector<float> trunk_, head_;
};

TEST_F(LabHeadsCompareTest, ScoresTheFederatedTrunkUnderTheSitesHeadAndLocalTraining) {
  ASSERT_EQ(Compare("site-a=" + Path("site-a.csv") + ":" + Path("site-a.head")), 0) << err_;
  // The federated column is exactly trunk + head on the site's test rows.
  ml::FingerprintOptions fp;
  fp.bits = 64;
  auto all = ml::LoadCsvDataset(Path("site-a.csv"), ml::CsvOptions{}, fp, nullptr);
  ASSERT_TRUE(all.ok()) << all.status();
  const ml::Dataset test = all->WithSplit("test");
  ASSERT_EQ(test.size(), 10u);
  auto full = ml::JoinTrunkHead(net_, trunk_, head_);
  ASSERT_TRUE(full.ok());
  auto probs = ml::Predict(net_, *full, test.x);
  ASSERT_TRUE(probs.ok());
  auto metrics = ml::Evaluate(test, *probs);
  ASSERT_TRUE(metrics.ok());
  const double federated = ml::MeanRocAuc(*metrics);

  EXPECT_EQ(JsonValue("\"site-a\"", "test_rows"), 10);
  EXPECT_EQ(JsonValue("\"site-a\"", "train_rows"), 30);
  EXPECT_NEAR(JsonValue("federated_trunk_private_head", "mean_roc_auc"), federated, 1e-5);
  const double local = JsonValue("\"local_only\": ", "mean_roc_auc");
  EXPECT_GE(local, 0);
  EXPECT_LE(local, 1);
  EXPECT_NEAR(JsonValue("\"site-a\"", "gain"), federated - local, 2e-5);
  EXPECT_EQ(JsonValue("\"site-a\"", "local_only_epochs"), -1);  // a study-level field
  EXPECT_EQ(JsonValue("", "local_only_epochs"), 4);             // rounds x local epochs
  const std::string json = Read("heads.json");
  EXPECT_NE(json.find("\"tasks\": [\"T1\", \"T2\"]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"study\": \"tiny-heads\""), std::string::npos) << json;
  EXPECT_NE(json.find("instead of SIDER"), std::string::npos) << json;
  EXPECT_NE(out_.find("own machine"), std::string::npos) << out_;

  // Trained on its own train rows, the local model is no longer the start.
  auto again = Lab({"heads-compare", "--study", Path("heads.study"), "--trunk", Path("trunk.bin"),
                    "--sites", "site-a=" + Path("site-a.csv") + ":" + Path("site-a.head"), "--json",
                    Path("heads.json"), "--epochs", "1"});
  ASSERT_EQ(again, 0) << err_;
  EXPECT_EQ(JsonValue("", "local_only_epochs"), 1);
  EXPECT_NEAR(JsonValue("federated_trunk_private_head", "mean_roc_auc"), federated, 1e-5);
}

// Local-only training starts where the site started: the coordinator's
// initial trunk and the head ml::PrivateHeadSeed seeds (its value for study seed 3
// and site-a, pinned so that a change of the derivation is seen).
TEST_F(LabHeadsCompareTest, LocalOnlyStartsFromTheSitesInitialHead) {
  ASSERT_EQ(Lab({"heads-compare", "--study", Path("heads.study"), "--trunk", Path("trunk.bin"),
                 "--sites", "site-a=" + Path("site-a.csv") + ":" + Path("site-a.head"), "--json",
                 Path("heads.json"), "--epochs", "0"}),
            0)
      << err_;
  ml::FingerprintOptions fp;
  fp.bits = 64;
  auto all = ml::LoadCsvDataset(Path("site-a.csv"), ml::CsvOptions{}, fp, nullptr);
  ASSERT_TRUE(all.ok()) << all.status();
  const ml::Dataset test = all->WithSplit("test");
  auto start = ml::JoinTrunkHead(net_, coordinator::InitialModel(spec_),
                                 ml::InitHead(net_, 470015111948089502ULL));
  ASSERT_TRUE(start.ok());
  auto probs = ml::Predict(net_, *start, test.x);
  ASSERT_TRUE(probs.ok());
  auto metrics = ml::Evaluate(test, *probs);
  ASSERT_TRUE(metrics.ok());
  EXPECT_NEAR(JsonValue("\"local_only\": ", "mean_roc_auc"), ml::MeanRocAuc(*metrics), 1e-5);
  EXPECT_NEAR(JsonValue("\"local_only\": ", "roc_auc"), (*metrics)[0].roc_auc, 1e-5);
}

TEST_F(LabHeadsCompareTest, RefusesAHeadFileOfTheWrongSize) {
  std::vector<float> short_head(head_.begin(), head_.end() - 1);
  WriteFloats("short.head", "fedrx-head 1\nT1,T2\n" + std::to_string(short_head.size()) + "\n",
              short_head);
  EXPECT_EQ(Compare("site-a=" + Path("site-a.csv") + ":" + Path("short.head")), 1);
  EXPECT_NE(err_.find(Path("short.head")), std::string::npos) << err_;
  EXPECT_NE(err_.find("needs " + std::to_string(head_.size())), std::string::npos) << err_;
  // A header that claims the right count over too few bytes is refused too.
  WriteFloats("lying.head", "fedrx-head 1\nT1,T2\n" + std::to_string(head_.size()) + "\n",
              short_head);
  EXPECT_EQ(Compare("site-a=" + Path("site-a.csv") + ":" + Path("lying.head")), 1);
  EXPECT_NE(err_.find(Path("lying.head")), std::string::npos) << err_;
  // Raw floats without the site's header are not a head file.
  WriteFloats("raw.head", "", head_);
  EXPECT_EQ(Compare("site-a=" + Path("site-a.csv") + ":" + Path("raw.head")), 1);
  EXPECT_NE(err_.find("not a private head file"), std::string::npos) << err_;
  EXPECT_FALSE(std::filesystem::exists(Path("heads.json")));
}

TEST_F(LabHeadsCompareTest, RefusesAHeadOfOtherTasks) {
  WriteFloats("other.head", "fedrx-head 1\nT2,T1\n" + std::to_string(head_.size()) + "\n", head_);
  EXPECT_EQ(Compare("site-a=" + Path("site-a.csv") + ":" + Path("other.head")), 1);
  EXPECT_NE(err_.find("the head is of tasks 'T2,T1'"), std::string::npos) << err_;
}

TEST_F(LabHeadsCompareTest, RefusesMissingOrMalformedSites) {
  EXPECT_EQ(Lab({"heads-compare", "--study", Path("heads.study"), "--trunk", Path("trunk.bin"),
                 "--json", Path("heads.json")}),
            1);
  EXPECT_NE(err_.find("--sites is required"), std::string::npos) << err_;
  EXPECT_EQ(Compare("site-a=" + Path("site-a.csv")), 1);
  EXPECT_NE(err_.find("expected ID=CSV:HEAD_FILE"), std::string::npos) << err_;
  EXPECT_EQ(Compare("site-z=" + Path("site-a.csv") + ":" + Path("site-a.head")), 1);
  EXPECT_NE(err_.find("'site-z' is not one of the study's sites"), std::string::npos) << err_;
}

TEST_F(LabHeadsCompareTest, RefusesATrunkOfTheWrongSize) {
  std::vector<float> big = trunk_;
  big.push_back(0);
  WriteFloats("trunk.bin", "", big);
  EXPECT_EQ(Compare("site-a=" + Path("site-a.csv") + ":" + Path("site-a.head")), 1);
  EXPECT_NE(err_.find(Path("trunk.bin")), std::string::npos) << err_;
}

}  // namespace
}  // namespace fedrx::lab
