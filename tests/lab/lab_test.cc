#include "services/lab/lab.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "services/coordinator/study_runner.h"
#include "services/core/config.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"

namespace fedrx::lab {
namespace {

core::Result<codec::StudySpec> LoadStudyFile(const std::string& path) {
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::Config::Load(path, core::ProcessEnvironment()));
  return ml::StudySpecFromConfig(config);
}

// The demo's DP study: valid for the coordinator, and within epsilon 8 at
// delta 1e-5 after every one of its rounds by the coordinator's accountant,
// so the budget never ends it early.
TEST(DpStudyFileTest, PassesValidationWithinEpsilonEight) {
  auto spec = LoadStudyFile(std::string(FEDRX_SOURCE_DIR) + "/deploy/studies/tox21-dp.study");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(coordinator::ValidateStudySpec(*spec).ok()) << coordinator::ValidateStudySpec(*spec);
  EXPECT_TRUE(coordinator::DpEnabled(*spec));
  EXPECT_DOUBLE_EQ(spec->dp_delta, 1e-5);
  EXPECT_GT(spec->dp_epsilon_budget, 0);
  EXPECT_LE(spec->dp_epsilon_budget, 8.0);
  auto accountant = coordinator::MakeAccountant(*spec);
  ASSERT_TRUE(accountant.ok()) << accountant.status();
  ASSERT_TRUE(accountant->has_value());
  EXPECT_LE((*accountant)->EpsilonAfter(spec->rounds), 8.0);
  EXPECT_LE((*accountant)->EpsilonAfter(spec->rounds), spec->dp_epsilon_budget);
  EXPECT_FALSE((*accountant)->WouldExceed(spec->rounds));
  // Same tasks and featurisation as the demo's study, so that the comparison
  // evaluates both on the same test rows.
  auto demo = LoadStudyFile(std::string(FEDRX_SOURCE_DIR) + "/deploy/studies/tox21-demo.study");
  ASSERT_TRUE(demo.ok()) << demo.status();
  EXPECT_EQ(spec->tasks, demo->tasks);
  EXPECT_EQ(spec->sites, demo->sites);
  EXPECT_EQ(spec->model.input_dim, demo->model.input_dim);
  EXPECT_EQ(spec->fingerprint_radius, demo->fingerprint_radius);
  EXPECT_NE(spec->study_id, demo->study_id);
}

class LabCompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fedrx-lab-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    const std::string common =
        "study.tasks = NR-AR,NR-AhR\nmodel.input_dim = 64\nmodel.hidden = 4\n"
        "train.rounds = 4\ntrain.seed = 3\n";
    Write("plain.study", "study.id = plain\n" + common);
    Write("dp.study", "study.id = private\n" + common +
                          "privacy.clip_norm = 0.5\nprivacy.noise_multiplier = 1.5\n"
                          "privacy.delta = 1e-5\nprivacy.epsilon_budget = 8\n");
    std::string csv = "smiles,NR-AR,NR-AhR\n";
    const char* smiles[] = {"CCO",
                            "c1ccccc1O",
                            "CC(=O)Nc1ccc(O)cc1",
                            "CCN(CC)CC",
                            "c1ccc2ccccc2c1",
                            "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
                            "OC(=O)c1ccccc1O",
                            "CCCCCCCC",
                            "Clc1ccc(Cl)cc1",
                            "NC(=O)c1cccnc1"};
    for (int i = 0; i < 10; ++i) {
      csv += std::string(smiles[i]) + "," + std::to_string(i % 2) + "," +
             std::to_string((i / 2) % 2) + "\n";
    }
    Write("test.csv", csv);
    ml::NetSpec net;
    net.input_dim = 64;
    net.hidden = {4};
    net.num_tasks = 2;
    const std::vector<float> w = ml::InitParameters(net, 3);
    std::ofstream(Path("model.bin"), std::ios::binary)
        .write(reinterpret_cast<const char*>(w.data()),
               static_cast<std::streamsize>(w.size() * sizeof(float)));
    Write("poisoning.json", "{\"simulated\": true, \"sites\": 10}\n");
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

  std::filesystem::path dir_;
};

TEST_F(LabCompareTest, WritesTheDpAndPoisoningEntries) {
  std::ostringstream out, err;
  const int code =
      lab::Run({"compare", "--study", Path("plain.study"), "--test", Path("test.csv"), "--json",
                Path("cmp.json"), "--dp-model", Path("model.bin"), "--dp-study", Path("dp.study"),
                "--dp-epsilon", "7.25", "--dp-rounds", "4", "--poisoning", Path("poisoning.json"),
                "federated=" + Path("model.bin")},
               out, err);
  ASSERT_EQ(code, 0) << err.str();
  const std::string json = Read("cmp.json");
  // The same weights on the same network: no loss against federated.
  EXPECT_NE(json.find("\"dp\": {\"epsilon\": 7.25, \"delta\": 1e-05, \"rounds\": 4, "
                      "\"clip_norm\": 0.5, \"noise_multiplier\": 1.5, \"mean_roc_auc\": "),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"loss_vs_federated\": 0,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"poisoning\": {\"simulated\": true, \"sites\": 10}"), std::string::npos)
      << json;
  // The accountant's epsilon for 4 rounds at sigma 1.5, as the coordinator computes it.
  auto spec = LoadStudyFile(Path("dp.study"));
  ASSERT_TRUE(spec.ok());
  auto accountant = coordinator::MakeAccountant(*spec);
  ASSERT_TRUE(accountant.ok() && accountant->has_value());
  char expected[64];
  std::snprintf(expected, sizeof expected, "\"accountant_epsilon\": %.6g",
                (*accountant)->EpsilonAfter(4));
  EXPECT_NE(json.find(expected), std::string::npos) << json;
  EXPECT_NE(out.str().find("dp: client-level DP"), std::string::npos) << out.str();
}

TEST_F(LabCompareTest, DpModelNeedsTheCoordinatorsEpsilon) {
  std::ostringstream out, err;
  const int code = lab::Run({"compare", "--study", Path("plain.study"), "--test", Path("test.csv"),
                             "--json", Path("cmp.json"), "--dp-model", Path("model.bin"),
                             "--dp-study", Path("dp.study"), "federated=" + Path("model.bin")},
                            out, err);
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.str().find("--dp-epsilon"), std::string::npos) << err.str();
}

TEST_F(LabCompareTest, DpStudyWithoutNoiseIsRefused) {
  std::ostringstream out, err;
  const int code =
      lab::Run({"compare", "--study", Path("plain.study"), "--test", Path("test.csv"), "--json",
                Path("cmp.json"), "--dp-model", Path("model.bin"), "--dp-study",
                Path("plain.study"), "--dp-epsilon", "1", "federated=" + Path("model.bin")},
               out, err);
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.str().find("privacy.clip_norm"), std::string::npos) << err.str();
}

TEST_F(LabCompareTest, PoisoningFileMustBeOneObject) {
  Write("bad.json", "[1, 2]\n");
  std::ostringstream out, err;
  const int code = lab::Run(
      {"compare", "--study", Path("plain.study"), "--test", Path("test.csv"), "--json",
       Path("cmp.json"), "--poisoning", Path("bad.json"), "federated=" + Path("model.bin")},
      out, err);
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.str().find("one JSON object"), std::string::npos) << err.str();
}

TEST(LabPoisonTest, RefusesAsManyAttackersAsSites) {
  std::ostringstream out, err;
  const int code = lab::Run({"poison", "--study", "s", "--data", "d", "--test", "t", "--json", "j",
                             "--sites", "3", "--attackers", "3"},
                            out, err);
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.str().find("--attackers"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace fedrx::lab
