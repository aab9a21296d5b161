// The clinical service behind the gateway, with the real binaries, a real
// Redis and CURVE sockets on loopback: a small ClinTox model trained here and
// its calibration are stored in Redis through the coordinator's StudyStore;
// an enrolled scientist asks through the gateway with `fedrx clinical
// assess` and gets the CT_TOX / FDA_APPROVED probabilities a local
// ml::Predict of the same weights gives, and phase-transition success rates
// equal to clinical::AdjustForRisk with the likelihood ratio of the stored
// CT_TOX histogram; the side-effect profile's absence is explained; bad input
// is refused naming the field (an unknown area listing the known ones) and
// bad structures are refused alone and counted.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "services/clinical/adjust.h"
#include "services/clinical/base_rates.h"
#include "services/clinical/evaluate.h"
#include "services/coordinator/study_store.h"
#include "services/core/redis_state_store.h"
#include "services/ml/chem.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/domain.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"
#include "services/ml/trainer.h"
#include "tests/integration/served_model.h"
#include "tests/support/child_process.h"
#include "tests/support/gateway_stack.h"

namespace fedrx {
namespace {

using integration::CalibrationOf;
using integration::Fingerprint;

using namespace std::chrono_literals;
using nlohmann::json;

constexpr char kStudy[] = "clintox-int";

// Paracetamol, aspirin, nicotine, thalidomide.
const std::vector<std::string> kQueries = {"CC(=O)Nc1ccc(O)cc1", "CC(=O)Oc1ccccc1C(=O)O",
                                           "CN1CCC[C@H]1c1cccnc1",
                                           "O=C1CCC(N2C(=O)c3ccccc3C2=O)C(=O)N1"};

codec::StudySpec Spec() {
  codec::StudySpec s;
  s.study_id = kStudy;
  s.name = "clinical integration";
  s.tasks = {"CT_TOX", "FDA_APPROVED"};
  s.model.input_dim = 1024;
  s.model.hidden = {64, 32};
  s.model.num_tasks = 2;
  s.model.dropout = 0.1f;
  s.rounds = 100;
  s.fingerprint_radius = 2;
  return s;
}

class ClinicalServiceTest : public testing::GatewayStackTest {
 protected:
  ClinicalServiceTest()
      : GatewayStackTest({FEDRX_COORDINATOR_BIN, FEDRX_GATEWAY_BIN, FEDRX_CLI_BIN}) {}

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartRedis());
    store_ = ConnectStore();
    ASSERT_NE(store_, nullptr);
    ASSERT_NO_FATAL_FAILURE(TrainAndStore());
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    ASSERT_NO_FATAL_FAILURE(StartBackend("clinical", FEDRX_CLINICAL_BIN,
                                         {{"FEDRX_CLINICAL_REDIS", RedisAddress()},
                                          {"FEDRX_CLINICAL_STUDY", kStudy},
                                          {"FEDRX_CLINICAL_REFRESH_INTERVAL", "100ms"}},
                                         clinical_));
    ASSERT_NO_FATAL_FAILURE(StartGateway({&clinical_}));
  }

  // A small ClinTox model trained here (version 0) with its calibration:
  // every third compound is a validation (calibration) row.
  void TrainAndStore() {
    auto all = ml::LoadCsvDataset(FEDRX_CLINTOX_CSV, ml::CsvOptions{}, Fingerprint(), nullptr);
    ASSERT_TRUE(all.ok()) << all.status();
    const ml::Dataset data = all->WithTasks({"CT_TOX", "FDA_APPROVED"});
    std::vector<std::size_t> train_rows, valid_rows;
    for (std::size_t i = 0; i < data.size(); ++i) {
      (i % 3 == 0 ? valid_rows : train_rows).push_back(i);
    }
    train_ = data.Subset(train_rows);
    valid_ = data.Subset(valid_rows);
    spec_ = Spec();
    net_ = ml::NetSpecFromStudy(spec_);
    weights_ = ml::InitParameters(net_, 3);
    ml::TrainOptions o;
    o.epochs = 3;
    o.seed = 1;
    ml::Trainer trainer(o);
    ASSERT_TRUE(trainer.Train(net_, train_, weights_).ok());
    calibration_ = CalibrationOf(0, net_, weights_, train_, valid_);
    coordinator::StudyStore studies(*store_);
    ASSERT_TRUE(studies.Create(spec_, weights_, 0).ok());
    ASSERT_TRUE(studies.SaveCalibration(kStudy, calibration_).ok());
  }

  std::vector<float> LocalPredict() { return integration::LocalPredict(net_, weights_, kQueries); }

  // Asks until the service has loaded the model at its first refresh.
  std::pair<int, std::string> AskWhenLoaded(const std::vector<std::string>& args) {
    int code = -1;
    std::string out;
    for (int attempt = 0; attempt < 50; ++attempt) {
      std::tie(code, out) = Ask(args);
      if (code == 0 || out.find("unavailable") == std::string::npos) break;
      std::this_thread::sleep_for(100ms);
    }
    return {code, out};
  }

  json ReadJson(const std::string& path) {
    std::ifstream f(path);
    json j = json::parse(f, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path;
    return j;
  }

  std::unique_ptr<core::RedisStateStore> store_;
  ml::Dataset train_, valid_;
  codec::StudySpec spec_;
  ml::NetSpec net_;
  std::vector<float> weights_;
  coordinator::VersionCalibration calibration_;
  testing::Backend clinical_;
};

TEST_F(ClinicalServiceTest, AssessmentThroughTheGatewayEqualsLocalModelAndAdjustment) {
  std::string list;
  for (const std::string& q : kQueries) list += (list.empty() ? "" : ",") + q;
  const std::string out_json = Path("clinical.json");
  auto [code, out] = AskWhenLoaded(
      {"clinical", "assess", "--smiles", list, "--confidence", "0.8", "--json", out_json});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("LOA from Phase I"), std::string::npos) << out;
  EXPECT_NE(out.find("phase1_to_phase2"), std::string::npos) << out;
  EXPECT_NE(out.find("risk (CT_TOX)"), std::string::npos) << out;
  const json a = ReadJson(out_json);
  EXPECT_EQ(a["model"]["study_id"], kStudy);
  EXPECT_EQ(a["model"]["model_version"].get<std::uint32_t>(), 0u);
  EXPECT_EQ(a["model"]["calibration_samples"].get<std::uint64_t>(), valid_.size());
  EXPECT_NE(a["side_effects_unavailable"].get<std::string>().find("SIDER"), std::string::npos);

  // The probabilities of a local forward pass; the success of AdjustForRisk
  // with the LR of the stored CT_TOX histogram (the service's 5 groups).
  const std::vector<float> local = LocalPredict();
  auto lr = clinical::EstimateLikelihoodRatioFromHistogram(calibration_.histograms[0]);
  ASSERT_TRUE(lr.ok()) << lr.status();
  const clinical::BaseRates base = *clinical::LookupBaseRates("all_indications");
  ASSERT_EQ(a["clinical"].size(), kQueries.size());
  ASSERT_EQ(a["success"].size(), kQueries.size());
  for (std::size_t i = 0; i < kQueries.size(); ++i) {
    const json& s = a["clinical"][i];
    ASSERT_EQ(s["tasks"].size(), 2u) << s.dump();
    EXPECT_EQ(s["tasks"][0]["task"], "CT_TOX");
    const double risk = s["tasks"][0]["probability"].get<double>();
    EXPECT_NEAR(risk, local[i * 2], 1e-6);
    EXPECT_NEAR(s["tasks"][1]["probability"].get<double>(), local[i * 2 + 1], 1e-6);
    EXPECT_TRUE(s["tasks"][0]["calibrated"].get<bool>());
    auto expected = clinical::AdjustForRisk(base, *lr, risk);
    ASSERT_TRUE(expected.ok());
    const json& got = a["success"][i];
    EXPECT_EQ(got["therapeutic_area"], "all_indications");
    EXPECT_DOUBLE_EQ(got["log_likelihood_ratio"].get<double>(), expected->log_lr);
    ASSERT_EQ(got["transitions"].size(), 4u);
    for (int k = 0; k < clinical::kTransitionCount; ++k) {
      EXPECT_DOUBLE_EQ(got["transitions"][k]["base_rate"].get<double>(), expected->base[k]);
      EXPECT_DOUBLE_EQ(got["transitions"][k]["adjusted"].get<double>(), expected->adjusted[k]);
    }
    EXPECT_DOUBLE_EQ(got["adjusted_likelihood_of_approval"].get<double>(), expected->adjusted_loa);
    EXPECT_EQ(got["source"], base.source);
  }
  EXPECT_FALSE(a["working"]["steps"].empty());
  EXPECT_EQ(Metric(clinical_.http, "fedrx_clinical_model_version", R"(study="clintox-int")"), 0);
  const double counted =
      Metric(clinical_.http, "fedrx_clinical_structures_total", R"(domain="in")") +
      Metric(clinical_.http, "fedrx_clinical_structures_total", R"(domain="out")");
  EXPECT_EQ(counted, static_cast<double>(kQueries.size()));
}

TEST_F(ClinicalServiceTest, BadInputIsRefusedNamingTheFieldAndCounted) {
  auto [code, out] = AskWhenLoaded({"clinical", "assess", "--smiles", "CCO"});
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) = Ask({"clinical", "assess", "--smiles", "CCO", "--area", "dermatology"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("AssessClinical.therapeutic_area"), std::string::npos) << out;
  EXPECT_NE(out.find("oncology"), std::string::npos) << out;
  std::tie(code, out) = Ask({"clinical", "assess", "--smiles", "CCO", "--confidence", "1.5"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("AssessClinical.confidence"), std::string::npos) << out;
  // Per-structure refusals: the others are still answered, in an LOA-only area.
  const std::string huge(10000, 'C');
  const std::string out_json = Path("bad.json");
  std::tie(code, out) = Ask({"clinical", "assess", "--smiles", "CCO,not_a_smiles," + huge, "--area",
                             "oncology", "--json", out_json});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("REFUSED"), std::string::npos) << out;
  const json a = ReadJson(out_json);
  ASSERT_EQ(a["clinical"].size(), 3u);
  EXPECT_FALSE(a["clinical"][0].contains("error"));
  EXPECT_EQ(a["clinical"][1]["error"]["where"], "smiles[1]");
  EXPECT_NE(a["clinical"][2]["error"]["message"].get<std::string>().find("heavy atoms"),
            std::string::npos);
  EXPECT_EQ(a["success"][0]["therapeutic_area"], "oncology");
  EXPECT_DOUBLE_EQ(a["success"][0]["base_likelihood_of_approval"].get<double>(), 0.053);
  EXPECT_EQ(Metric(clinical_.http, "fedrx_clinical_structures_total", R"(domain="refused")"), 2);
  EXPECT_EQ(Metric(clinical_.http, "fedrx_clinical_requests_total",
                   R"(code="invalid_argument",type="AssessClinical")"),
            2);
}

}  // namespace
}  // namespace fedrx

namespace fedrx {
namespace {

// `fedrx-lab clinical-evaluate` reads the model and its calibration from the
// registry as stored and scores base against adjusted LOA on the given
// compounds: its figures equal AdjustForRisk and ScoreProbabilities on a
// local forward pass of the same weights.
TEST_F(ClinicalServiceTest, LabEvaluationEqualsTheLocalAdjustment) {
  const std::string study = Write("clintox-int.study", std::string("study.id = ") + kStudy +
                                                           "\nstudy.tasks = CT_TOX,FDA_APPROVED\n"
                                                           "model.input_dim = 1024\n"
                                                           "model.hidden = 64,32\n"
                                                           "train.rounds = 1\n");
  // The first 300 ClinTox compounds (one per line in that file).
  std::ifstream full(FEDRX_CLINTOX_CSV);
  std::ofstream part(Path("held-out.csv"));
  std::string line;
  for (int n = 0; n <= 300 && std::getline(full, line); ++n) part << line << "\n";
  part.close();
  const std::string out_json = Path("evaluation.json");
  auto child = testing::ChildProcess::Spawn(
      FEDRX_LAB_BIN, {"clinical-evaluate", "--study", study, "--test", Path("held-out.csv"),
                      "--redis", RedisAddress(), "--json", out_json, "--version", "0"});
  ASSERT_TRUE(child.ok()) << child.status();
  auto code = (*child)->Wait(60s);
  ASSERT_TRUE(code.ok());
  ASSERT_EQ(*code, 0) << (*child)->Log();
  const json e = ReadJson(out_json);

  auto test = ml::LoadCsvDataset(Path("held-out.csv"), ml::CsvOptions{}, Fingerprint(), nullptr);
  ASSERT_TRUE(test.ok()) << test.status();
  const ml::Dataset rows = test->WithTasks(spec_.tasks);
  auto p = ml::Predict(net_, weights_, rows.x);
  ASSERT_TRUE(p.ok());
  auto lr = clinical::EstimateLikelihoodRatioFromHistogram(calibration_.histograms[0]);
  ASSERT_TRUE(lr.ok());
  const clinical::BaseRates base = *clinical::LookupBaseRates("all_indications");
  std::vector<double> base_loa, adjusted_loa;
  std::vector<bool> approved;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    auto a = clinical::AdjustForRisk(base, *lr, (*p)[r * 2]);
    ASSERT_TRUE(a.ok());
    base_loa.push_back(a->base_loa);
    adjusted_loa.push_back(a->adjusted_loa);
    approved.push_back(rows.label(r, 1) == 1);
  }
  auto base_scores = clinical::ScoreProbabilities(base_loa, approved);
  auto adjusted_scores = clinical::ScoreProbabilities(adjusted_loa, approved);
  ASSERT_TRUE(base_scores.ok() && adjusted_scores.ok());
  EXPECT_EQ(e["test_compounds"].get<std::size_t>(), rows.size());
  EXPECT_EQ(e["model_version"].get<std::uint32_t>(), 0u);
  EXPECT_EQ(e["likelihood_ratio"]["calibration_approved"].get<std::size_t>(), lr->n_approved);
  const auto near = [](const json& v, double want) {
    EXPECT_NEAR(v.get<double>(), want, 1e-5 * std::max(1.0, std::abs(want))) << v;
  };
  near(e["loa"]["base_probability"], base.TransitionProduct().value());
  near(e["loa"]["base"]["brier"], base_scores->brier);
  near(e["loa"]["adjusted"]["brier"], adjusted_scores->brier);
  near(e["loa"]["adjusted"]["log_loss"], adjusted_scores->log_loss);
  near(e["loa"]["adjusted"]["roc_auc"], adjusted_scores->roc_auc);
  ASSERT_EQ(e["likelihood_ratio"]["log_lr"].size(), lr->bin_log_lr.size());
  for (std::size_t j = 0; j < lr->bin_log_lr.size(); ++j) {
    near(e["likelihood_ratio"]["log_lr"][j], lr->bin_log_lr[j]);
  }
}

}  // namespace
}  // namespace fedrx
