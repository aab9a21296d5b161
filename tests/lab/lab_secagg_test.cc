#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "services/coordinator/study_runner.h"
#include "services/core/config.h"
#include "services/lab/lab.h"
#include "services/lab/secagg_demo.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"

namespace fedrx::lab {
namespace {

core::Result<codec::StudySpec> LoadStudyFile(const std::string& path) {
  FEDRX_ASSIGN_OR_RETURN(core::Config config, core::Config::Load(path, core::ProcessEnvironment()));
  return ml::StudySpecFromConfig(config);
}

// key = value lines of a study file, comments and blank lines left out.
std::map<std::string, std::string> StudyKeys(const std::string& path) {
  std::map<std::string, std::string> keys;
  std::ifstream in(path);
  std::string line;
  const auto trim = [](std::string s) {
    const auto b = s.find_first_not_of(" \t\r");
    const auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    keys[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return keys;
}

// The demo's secure study: valid for the coordinator, and the plain demo
// study in every setting but its id, name and the secure-aggregation keys, so
// that the two runs on the same sites are the same computation up to the
// fixed point's rounding.
TEST(LabSecAggStudyFileTest, PassesValidationAndDiffersFromTheDemoOnlyInIdNameAndSecAgg) {
  const std::string dir = std::string(FEDRX_SOURCE_DIR) + "/deploy/studies/";
  auto spec = LoadStudyFile(dir + "tox21-secagg.study");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(coordinator::ValidateStudySpec(*spec).ok()) << coordinator::ValidateStudySpec(*spec);
  EXPECT_EQ(spec->study_id, "tox21-secagg");
  EXPECT_TRUE(spec->secure_aggregation);
  EXPECT_EQ(coordinator::SecAggThreshold(*spec), 2u);
  EXPECT_FALSE(coordinator::DpEnabled(*spec));  // sample-weighted FedAvg, as the plain study

  const std::map<std::string, std::string> secure = StudyKeys(dir + "tox21-secagg.study");
  const std::map<std::string, std::string> plain = StudyKeys(dir + "tox21-demo.study");
  ASSERT_FALSE(plain.empty());
  std::set<std::string> differing;
  for (const auto& [key, value] : secure) {
    auto it = plain.find(key);
    if (it == plain.end() || it->second != value) differing.insert(key);
  }
  for (const auto& [key, value] : plain) {
    if (secure.count(key) == 0) differing.insert(key);
  }
  const std::set<std::string> expected = {"study.id", "study.name", "privacy.secure_aggregation",
                                          "privacy.secagg_threshold"};
  EXPECT_EQ(differing, expected);

  // The 3 sites' rounds use 24 fractional bits: 2^-25 per site per coordinate.
  ASSERT_EQ(spec->sites.size(), 3u);
  EXPECT_EQ(coordinator::SecAggEncoding(spec->sites.size()).scale_bits, 24);
  EXPECT_DOUBLE_EQ(coordinator::SecAggEncoding(spec->sites.size()).MaxErrorPerSite(),
                   std::ldexp(1.0, -25));
}

std::vector<SecAggSimSite> RandomSites(std::size_t n, std::size_t dimension, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-0.05f, 0.05f);
  std::uniform_real_distribution<double> weight(0.2, 1.0);
  std::vector<SecAggSimSite> sites(n);
  for (auto& s : sites) {
    s.update.resize(dimension);
    for (float& x : s.update) x = value(rng);
    s.weight = weight(rng);
  }
  sites[0].weight = 1.0;  // the largest site
  return sites;
}

TEST(LabSecAggRoundTest, ThreeOfTenLeavingAfterTheirMaskedInputStillSumAllTen) {
  std::vector<SecAggSimSite> sites = RandomSites(10, 300, 1);
  for (std::size_t i = 7; i < 10; ++i) sites[i].leave = SecAggLeave::kAfterMaskedInput;
  auto r = SimulateSecAggRound(sites, 6);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->completed) << r->failure;
  EXPECT_EQ(r->advertised, 10u);
  EXPECT_EQ(r->shared, 10u);
  EXPECT_EQ(r->survivors.size(), 10u);
  EXPECT_EQ(r->responders, 7u);
  EXPECT_EQ(r->scale_bits, 24);  // coordinator::SecAggEncoding(10)
  EXPECT_DOUBLE_EQ(r->rounding_per_site, std::ldexp(1.0, -25));
  // 10 sites' rounding plus the float32 rounding of sums below 10 x 0.05.
  EXPECT_GE(r->error_bound, 10 * std::ldexp(1.0, -25));
  EXPECT_LE(r->error_bound, 10 * std::ldexp(1.0, -25) + 0.5 * std::ldexp(1.0, -24));
  EXPECT_TRUE(r->within_bound);
  EXPECT_LE(r->max_abs_error, r->error_bound);
  EXPECT_LE(r->weight_error, 10 * std::ldexp(1.0, -25));
  EXPECT_EQ(r->clipped_coordinates, 0u);
  // Every site sent its masked vector: 301 words and an envelope.
  for (std::uint64_t b : r->bytes_sent) EXPECT_GT(b, 301u * 4);
  EXPECT_GT(r->plain_update_bytes, 300u * 4);
}

// Updates on the fixed point's grid with weight 1 sum exactly: any mask left
// in the sum, or any site counted twice or not at all, would show.
TEST(LabSecAggRoundTest, UpdatesOnTheGridSumExactly) {
  std::vector<SecAggSimSite> sites(5);
  for (std::size_t i = 0; i < sites.size(); ++i) {
    sites[i].update = {0.25f * static_cast<float>(i + 1), -1.0f / 1024, 3.0f, 0};
  }
  sites[4].leave = SecAggLeave::kAfterMaskedInput;
  auto r = SimulateSecAggRound(sites, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->completed) << r->failure;
  EXPECT_EQ(r->survivors.size(), 5u);
  EXPECT_EQ(r->max_abs_error, 0.0);
  EXPECT_EQ(r->weight_error, 0.0);
  EXPECT_EQ(r->max_abs_sum, 15.0);  // 5 x 3
  EXPECT_TRUE(r->within_bound);
}

// A site that leaves before its masked input is out of the sum: its large
// update would put the sum off by 5 per coordinate had it been counted.
TEST(LabSecAggRoundTest, SiteLeavingBeforeItsMaskedInputIsExcludedFromTheSum) {
  std::vector<SecAggSimSite> sites = RandomSites(6, 200, 2);
  for (float& x : sites[2].update) x = 5.0f;
  sites[2].weight = 1.0;
  sites[2].leave = SecAggLeave::kBeforeMaskedInput;
  auto r = SimulateSecAggRound(sites, 4);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->completed) << r->failure;
  EXPECT_EQ(r->shared, 6u);
  EXPECT_EQ(r->survivors, (std::vector<privacy::ParticipantId>{1, 2, 4, 5, 6}));
  EXPECT_EQ(r->responders, 5u);
  EXPECT_TRUE(r->within_bound);
  EXPECT_LT(r->max_abs_sum, 5 * 0.05 + 1e-6);  // only the small updates
  EXPECT_GT(r->bytes_sent[2], 0u);             // keys and shares went out
}

TEST(LabSecAggRoundTest, SiteThatNeverSendsKeysIsNotInTheRound) {
  std::vector<SecAggSimSite> sites = RandomSites(4, 50, 3);
  sites[3].leave = SecAggLeave::kBeforeKeys;
  auto r = SimulateSecAggRound(sites, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->completed) << r->failure;
  EXPECT_EQ(r->advertised, 3u);
  EXPECT_EQ(r->survivors, (std::vector<privacy::ParticipantId>{1, 2, 3}));
  EXPECT_EQ(r->bytes_sent[3], 0u);
  EXPECT_TRUE(r->within_bound);
}

TEST(LabSecAggRoundTest, TooFewSitesLeftToUnmaskFailsCleanly) {
  std::vector<SecAggSimSite> sites = RandomSites(5, 40, 4);
  for (std::size_t i = 2; i < 5; ++i) sites[i].leave = SecAggLeave::kAfterMaskedInput;
  auto r = SimulateSecAggRound(sites, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->completed);
  EXPECT_EQ(r->failure.code(), core::StatusCode::kFailedPrecondition) << r->failure;
  EXPECT_NE(r->failure.message().find("threshold"), std::string::npos) << r->failure;
  EXPECT_EQ(r->survivors.size(), 5u);  // all masked inputs were in
  EXPECT_EQ(r->responders, 2u);
}

TEST(LabSecAggRoundTest, RefusesBadInput) {
  std::vector<SecAggSimSite> sites = RandomSites(3, 10, 5);
  EXPECT_EQ(SimulateSecAggRound(sites, 1).status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(SimulateSecAggRound(sites, 4).status().code(), core::StatusCode::kInvalidArgument);
  std::vector<SecAggSimSite> one(sites.begin(), sites.begin() + 1);
  EXPECT_EQ(SimulateSecAggRound(one, 2).status().code(), core::StatusCode::kInvalidArgument);
  std::vector<SecAggSimSite> ragged = sites;
  ragged[1].update.pop_back();
  EXPECT_EQ(SimulateSecAggRound(ragged, 2).status().code(), core::StatusCode::kInvalidArgument);
  std::vector<SecAggSimSite> heavy = sites;
  heavy[2].weight = 1.5;
  EXPECT_EQ(SimulateSecAggRound(heavy, 2).status().code(), core::StatusCode::kInvalidArgument);
}

class LabSecAggCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fedrx-lab-secagg-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    Write("secure.study",
          "study.id = secure\nstudy.tasks = NR-AR,NR-AhR\nstudy.sites = a,b,c\n"
          "model.input_dim = 64\nmodel.hidden = 4\ntrain.rounds = 2\ntrain.seed = 3\n"
          "train.batch_size = 4\nprivacy.secure_aggregation = true\n"
          "privacy.secagg_threshold = 2\n");
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
                            "NC(=O)c1cccnc1",
                            "CC(=O)O",
                            "c1ccncc1"};
    for (int i = 0; i < 12; ++i) {
      csv += std::string(smiles[i]) + "," + std::to_string(i % 2) + "," +
             std::to_string((i / 2) % 2) + "\n";
    }
    Write("data.csv", csv);
    net_.input_dim = 64;
    net_.hidden = {4};
    net_.num_tasks = 2;
    plain_ = ml::InitParameters(net_, 3);
    WriteWeights("plain.bin", plain_);
    std::vector<float> secure = plain_;
    secure[5] += 0.125f;
    WriteWeights("secure.bin", secure);
    std::vector<float> first = plain_;
    first[7] += std::ldexp(1.0f, -24);  // an exact difference: |plain_[7]| < 2^-1
    WriteWeights("first.bin", first);
    WriteWeights("short.bin", std::vector<float>(plain_.begin(), plain_.end() - 1));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(Path(name)) << text;
  }
  void WriteWeights(const std::string& name, const std::vector<float>& w) const {
    std::ofstream(Path(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(w.data()),
               static_cast<std::streamsize>(w.size() * sizeof(float)));
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(Path(name));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::vector<std::string> Args(std::vector<std::string> extra) const {
    std::vector<std::string> args = {"secagg",         "--study", Path("secure.study"), "--data",
                                     Path("data.csv"), "--json",  Path("out.json")};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::filesystem::path dir_;
  ml::NetSpec net_;
  std::vector<float> plain_;
};

TEST_F(LabSecAggCommandTest, WritesTheSimulatedDropoutAndThePlatformComparison) {
  std::ostringstream out, err;
  const int code =
      lab::Run(Args({"--sites", "4", "--dropouts", "1", "--plain-model", Path("plain.bin"),
                     "--secure-model", Path("secure.bin"), "--test", Path("data.csv"),
                     "--plain-first", Path("plain.bin"), "--secure-first", Path("first.bin")}),
               out, err);
  ASSERT_EQ(code, 0) << err.str() << out.str();
  const std::string json = Read("out.json");
  // t = 3 (a majority of 4) by default: 1 may leave.
  EXPECT_NE(json.find("{\"simulated_dropout\": {\"simulated\": true, \"sites\": 4, \"threshold\": "
                      "3, \"parameters\": " +
                      std::to_string(ml::ParameterCount(net_)) +
                      ", \"dropped_after_masked_input\": 1, \"completed\": true, "
                      "\"survivors\": 4, \"unmasking_responders\": 3, \"max_abs_error\": "),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"within_bound\": true,\n"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"within_bound\": false"), std::string::npos) << json;
  EXPECT_NE(json.find("\"dropped_before_masked_input\": {\"dropped\": 1, \"completed\": true, "
                      "\"survivors\": 3,"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"below_threshold\": {\"dropped\": 2, \"completed\": false, \"error\": "
                      "\"failed_precondition: "),
            std::string::npos)
      << json;
  // The two models differ in one weight, by 0.125.
  EXPECT_NE(json.find("\"platform\": {\"study\": \"secure\", \"secure_aggregation\": true, "
                      "\"sites\": 3, \"secagg_threshold\": 2, \"rounds\": 2, "),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"max_abs_diff_vs_plain\": 0.125,"), std::string::npos) << json;
  // Round 1's models differ by 2^-24, within 3 sites' rounding of 2^-25 each.
  EXPECT_NE(json.find("\"first_round\": {\"max_abs_diff_vs_plain\": 5.96046e-08, \"bound\": "),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"within_bound\": true}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"scale_bits\": 24, \"rounding_per_site\": 2.98023e-08"), std::string::npos)
      << json;
  EXPECT_NE(out.str().find("SIMULATED secure aggregation: 4 in-process sites"), std::string::npos)
      << out.str();
}

TEST_F(LabSecAggCommandTest, RefusesBadFlagsNamingThem) {
  const auto refused = [&](std::vector<std::string> args, const std::string& flag) {
    std::ostringstream out, err;
    EXPECT_EQ(lab::Run(args, out, err), 1) << flag;
    EXPECT_NE(err.str().find("invalid_argument"), std::string::npos) << err.str();
    EXPECT_NE(err.str().find("(at " + flag + ")"), std::string::npos) << err.str();
  };
  refused({"secagg", "--data", Path("data.csv"), "--json", Path("out.json")}, "--study");
  refused({"secagg", "--study", Path("secure.study"), "--json", Path("out.json")}, "--data");
  refused(Args({"--sites", "1"}), "--sites");
  refused(Args({"--sites", "10", "--dropouts", "10"}), "--dropouts");
  // t = 6 of 10 by default: at most 4 may drop.
  refused(Args({"--sites", "10", "--dropouts", "5"}), "--dropouts");
  refused(Args({"--sites", "10", "--dropouts", "3", "--threshold", "8"}), "--dropouts");
  refused(Args({"--sites", "10", "--threshold", "11"}), "--threshold");
  refused(Args({"--dropouts", "two"}), "--dropouts");
  refused(Args({"--plain-model", Path("plain.bin"), "--test", Path("data.csv")}), "--secure-model");
  refused(Args({"--plain-model", Path("plain.bin"), "--secure-model", Path("secure.bin")}),
          "--test");
  refused(Args({"--sites", "4", "--dropouts", "1", "--plain-model", Path("short.bin"),
                "--secure-model", Path("secure.bin"), "--test", Path("data.csv")}),
          "--plain-model");
  refused(Args({"--sites", "4", "--dropouts", "1", "--plain-model", Path("plain.bin"),
                "--secure-model", Path("short.bin"), "--test", Path("data.csv")}),
          "--secure-model");
  refused(
      Args({"--sites", "4", "--dropouts", "1", "--plain-model", Path("plain.bin"), "--secure-model",
            Path("secure.bin"), "--test", Path("data.csv"), "--plain-first", Path("plain.bin")}),
      "--secure-first");
  EXPECT_FALSE(std::filesystem::exists(Path("out.json")));
}

}  // namespace
}  // namespace fedrx::lab
