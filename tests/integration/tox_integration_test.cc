// The tox service behind the gateway, with the real binaries, a real Redis
// and CURVE sockets on loopback: a model trained here on Tox21 rows and its
// calibration are stored in Redis through the coordinator's StudyStore; an
// enrolled scientist asks through the gateway with `fedrx tox predict` and
// gets the probabilities a local ml::Predict of the same weights gives, with
// conformal p-values matching the stored histograms; bad input is refused
// naming the field and counted; new versions published while requests run
// are switched to without a failed request, each answer from one version.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

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

constexpr char kStudy[] = "tox-int";

const std::vector<std::string> kQueries = {"CCO", "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1",
                                           "Clc1ccc(Cl)cc1"};

codec::StudySpec Spec(const std::vector<std::string>& tasks) {
  codec::StudySpec s;
  s.study_id = kStudy;
  s.name = "tox integration";
  s.tasks = tasks;
  s.model.input_dim = 1024;
  s.model.hidden = {64, 32};
  s.model.num_tasks = static_cast<std::uint32_t>(tasks.size());
  s.model.dropout = 0.1f;
  s.rounds = 100;
  s.fingerprint_radius = 2;
  return s;
}

class ToxServiceTest : public testing::GatewayStackTest {
 protected:
  ToxServiceTest() : GatewayStackTest({FEDRX_COORDINATOR_BIN, FEDRX_GATEWAY_BIN, FEDRX_CLI_BIN}) {}

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartRedis());
    store_ = ConnectStore();
    ASSERT_NE(store_, nullptr);
    ASSERT_NO_FATAL_FAILURE(TrainAndStore());
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    ASSERT_NO_FATAL_FAILURE(StartBackend("tox", FEDRX_TOX_BIN,
                                         {{"FEDRX_TOX_REDIS", RedisAddress()},
                                          {"FEDRX_TOX_PANELS", std::string("tox21=") + kStudy},
                                          {"FEDRX_TOX_REFRESH_INTERVAL", "100ms"},
                                          {"FEDRX_TOX_WORKERS", "2"}},
                                         tox_));
    ASSERT_NO_FATAL_FAILURE(StartGateway({&tox_}));
  }

  // A small model trained here on Tox21 rows (version 0) with its calibration.
  void TrainAndStore() {
    // The first 1500 Tox21 records (one per line in that file) are enough.
    std::ifstream full(FEDRX_TOX21_CSV);
    std::ofstream part(Path("tox21-part.csv"));
    std::string line;
    for (int n = 0; n <= 1500 && std::getline(full, line); ++n) part << line << "\n";
    part.close();
    ml::CsvOptions csv;
    auto all = ml::LoadCsvDataset(Path("tox21-part.csv"), csv, Fingerprint(), nullptr);
    ASSERT_TRUE(all.ok()) << all.status();
    ASSERT_GT(all->size(), 1400u);
    std::vector<std::size_t> train_rows, valid_rows;
    for (std::size_t i = 0; i < all->size(); ++i) {
      (i % 3 == 0 ? valid_rows : train_rows).push_back(i);
    }
    train_ = all->Subset(train_rows);
    valid_ = all->Subset(valid_rows);
    spec_ = Spec(all->tasks);
    net_ = ml::NetSpecFromStudy(spec_);
    std::vector<float> w = ml::InitParameters(net_, 3);
    ml::TrainOptions o;
    o.epochs = 3;
    o.seed = 1;
    ml::Trainer trainer(o);
    ASSERT_TRUE(trainer.Train(net_, train_, w).ok());
    weights_[0] = w;
    coordinator::StudyStore studies(*store_);
    ASSERT_TRUE(studies.Create(spec_, w, 0).ok());
    ASSERT_TRUE(studies.SaveCalibration(kStudy, CalibrationOf(0, net_, w, train_, valid_)).ok());
  }

  // Publishes version base + 1 as the coordinator does at the end of a round.
  void Publish(std::uint32_t base, const std::vector<float>& w) {
    coordinator::StudyStore studies(*store_);
    coordinator::RoundRecord round;
    round.round = base + 1;
    round.base_version = base;
    round.state = codec::RoundState::kClosed;
    ASSERT_TRUE(studies.CommitRound(kStudy, round, w, base + 2, false, 1000).ok());
  }

  // ml::Predict on features prepared as the sites prepare them.
  std::vector<float> LocalPredict(std::uint32_t version) {
    return integration::LocalPredict(net_, weights_.at(version), kQueries);
  }

  std::string QueryList() const {
    std::string s;
    for (const std::string& q : kQueries) s += (s.empty() ? "" : ",") + q;
    return s;
  }

  json ReadJson(const std::string& path) {
    std::ifstream f(path);
    json j = json::parse(f, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path;
    return j;
  }

  // The answer's probabilities equal a local forward pass of the version it names.
  void ExpectMatchesLocal(const json& answer) {
    const std::uint32_t version = answer["model"]["model_version"].get<std::uint32_t>();
    ASSERT_TRUE(weights_.count(version)) << version;
    const std::vector<float> local = LocalPredict(version);
    const std::size_t tasks = spec_.tasks.size();
    ASSERT_EQ(answer["results"].size(), kQueries.size());
    for (std::size_t i = 0; i < kQueries.size(); ++i) {
      const json& r = answer["results"][i];
      ASSERT_EQ(r["tasks"].size(), tasks) << r.dump();
      for (std::size_t t = 0; t < tasks; ++t) {
        EXPECT_NEAR(r["tasks"][t]["probability"].get<double>(), local[i * tasks + t], 1e-6)
            << "version " << version << " structure " << i << " task " << t;
      }
    }
  }

  std::unique_ptr<core::RedisStateStore> store_;
  ml::Dataset train_, valid_;
  codec::StudySpec spec_;
  ml::NetSpec net_;
  std::map<std::uint32_t, std::vector<float>> weights_;
  testing::Backend tox_;
};

TEST_F(ToxServiceTest, PanelThroughTheGatewayEqualsLocalPredictWithConformalSets) {
  // The service loads the model at its first refresh; ask until it has.
  const std::string out_json = Path("tox.json");
  int code = -1;
  std::string out;
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::tie(code, out) =
        Ask({"tox", "predict", "--smiles", QueryList(), "--confidence", "0.8", "--json", out_json});
    if (code == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("model version 0"), std::string::npos) << out;
  EXPECT_NE(out.find("P(tox)"), std::string::npos) << out;
  const json a = ReadJson(out_json);
  EXPECT_EQ(a["panel"], "tox21");
  EXPECT_EQ(a["model"]["study_id"], kStudy);
  EXPECT_EQ(a["model"]["calibration_samples"].get<std::uint64_t>(), valid_.size());
  ASSERT_NO_FATAL_FAILURE(ExpectMatchesLocal(a));

  // p-values from the stored histograms, by the documented formula.
  const coordinator::VersionCalibration c = CalibrationOf(0, net_, weights_[0], train_, valid_);
  for (std::size_t i = 0; i < kQueries.size(); ++i) {
    const json& r = a["results"][i];
    EXPECT_TRUE(r["domain"]["calibrated"].get<bool>());
    for (std::size_t t = 0; t < spec_.tasks.size(); ++t) {
      const json& tp = r["tasks"][t];
      ASSERT_TRUE(tp["calibrated"].get<bool>());
      const double s = tp["probability"].get<double>();
      const ml::ScoreHistogram& h = c.histograms[t];
      const std::size_t bins = h.pos.size();
      const std::size_t b = static_cast<std::size_t>(
          std::clamp(static_cast<double>(static_cast<float>(s)) * bins, 0.0, bins - 1.0));
      std::uint64_t below = 0, above = 0, n1 = 0, n0 = 0;
      for (std::size_t k = 0; k < bins; ++k) {
        n1 += h.pos[k];
        n0 += h.neg[k];
        if (k <= b) below += h.pos[k];
        if (k >= b) above += h.neg[k];
      }
      EXPECT_DOUBLE_EQ(tp["p_positive"].get<double>(), (below + 1.0) / (n1 + 1.0));
      EXPECT_DOUBLE_EQ(tp["p_negative"].get<double>(), (above + 1.0) / (n0 + 1.0));
    }
  }
  EXPECT_FALSE(a["working"]["steps"].empty());
  EXPECT_EQ(Metric(tox_.http, "fedrx_tox_model_version", R"(study="tox-int")"), 0);
  EXPECT_EQ(Metric(tox_.http, "fedrx_tox_model_calibrated", R"(study="tox-int")"), 1);
  const double counted =
      Metric(tox_.http, "fedrx_tox_structures_total", R"(domain="in",panel="tox21")") +
      Metric(tox_.http, "fedrx_tox_structures_total", R"(domain="out",panel="tox21")");
  EXPECT_EQ(counted, static_cast<double>(kQueries.size()));
}

TEST_F(ToxServiceTest, BadInputIsRefusedNamingTheFieldAndCounted) {
  // Wait for the model.
  int code = -1;
  std::string out;
  for (int attempt = 0; attempt < 50 && code != 0; ++attempt) {
    std::tie(code, out) = Ask({"tox", "predict", "--smiles", "CCO"});
    if (code != 0) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) = Ask({"tox", "predict", "--smiles", "CCO", "--tasks", "NR-AR,NOPE"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("PredictToxicity.tasks[1]"), std::string::npos) << out;
  std::tie(code, out) = Ask({"tox", "predict", "--smiles", "CCO", "--panel", "toxcats"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("PredictToxicity.panel"), std::string::npos) << out;
  std::tie(code, out) = Ask({"tox", "predict", "--smiles", "CCO", "--confidence", "1.5"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("PredictToxicity.confidence"), std::string::npos) << out;
  // Per-structure refusals: the others are still answered.
  const std::string huge(10000, 'C');
  const std::string smi = Write("in.smi", "CCO ethanol\nnot_a_smiles\n" + huge + "\n# comment\n");
  const std::string out_json = Path("bad.json");
  std::tie(code, out) = Ask({"tox", "predict", "--in", smi, "--json", out_json});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("REFUSED"), std::string::npos) << out;
  const json a = ReadJson(out_json);
  ASSERT_EQ(a["results"].size(), 3u);
  EXPECT_FALSE(a["results"][0].contains("error"));
  EXPECT_EQ(a["results"][1]["error"]["where"], "smiles[1]");
  EXPECT_NE(a["results"][2]["error"]["message"].get<std::string>().find("heavy atoms"),
            std::string::npos);
  EXPECT_EQ(Metric(tox_.http, "fedrx_tox_structures_total", R"(domain="refused",panel="tox21")"),
            2);
  EXPECT_EQ(Metric(tox_.http, "fedrx_tox_requests_total",
                   R"(code="invalid_argument",type="PredictToxicity")"),
            3);
}

TEST_F(ToxServiceTest, NewVersionsPublishedDuringRequestsAreSwitchedToWithoutAFailure) {
  int code = -1;
  std::string out;
  for (int attempt = 0; attempt < 50 && code != 0; ++attempt) {
    std::tie(code, out) = Ask({"tox", "predict", "--smiles", "CCO"});
    if (code != 0) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(code, 0) << out;
  const double unavailable_before =
      Metric(tox_.http, "fedrx_tox_requests_total", R"(code="unavailable",type="PredictToxicity")");
  constexpr std::uint32_t kVersions = 4;
  for (std::uint32_t v = 1; v <= kVersions; ++v) {
    std::vector<float> w = weights_[v - 1];
    ml::TrainOptions o;
    o.epochs = 1;
    o.seed = 10 + v;
    ml::Trainer trainer(o);
    ASSERT_TRUE(trainer.Train(net_, train_, w).ok());
    weights_[v] = std::move(w);
  }
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    for (std::uint32_t v = 1; v <= kVersions; ++v) {
      std::this_thread::sleep_for(300ms);
      Publish(v - 1, weights_[v]);
      // The calibration arrives a little after the version, as at the coordinator.
      std::this_thread::sleep_for(150ms);
      EXPECT_TRUE(coordinator::StudyStore(*store_)
                      .SaveCalibration(kStudy, CalibrationOf(v, net_, weights_[v], train_, valid_))
                      .ok());
    }
    done = true;
  });
  std::map<std::uint32_t, int> seen;
  int requests = 0;
  while (!done || requests < 3) {
    const std::string out_json = Path("switch-" + std::to_string(requests) + ".json");
    auto [c, o] = Ask({"tox", "predict", "--smiles", QueryList(), "--json", out_json});
    ASSERT_EQ(c, 0) << "request " << requests << " failed during the switches: " << o;
    const json a = ReadJson(out_json);
    ASSERT_NO_FATAL_FAILURE(ExpectMatchesLocal(a));
    const std::uint32_t v = a["model"]["model_version"].get<std::uint32_t>();
    if (a["model"]["calibration_samples"].get<std::uint64_t>() > 0) {
      EXPECT_EQ(a["model"]["calibration_version"].get<std::uint32_t>(), v);
    }
    ++seen[v];
    ++requests;
  }
  publisher.join();
  // The last version is served (and calibrated) within a few refreshes.
  json last;
  for (int attempt = 0; attempt < 50; ++attempt) {
    const std::string out_json = Path("last.json");
    auto [c, o] = Ask({"tox", "predict", "--smiles", QueryList(), "--json", out_json});
    ASSERT_EQ(c, 0) << o;
    last = ReadJson(out_json);
    if (last["model"]["model_version"] == kVersions &&
        last["model"]["calibration_version"] == kVersions) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(last["model"]["model_version"].get<std::uint32_t>(), kVersions);
  EXPECT_EQ(last["model"]["calibration_version"].get<std::uint32_t>(), kVersions);
  ASSERT_NO_FATAL_FAILURE(ExpectMatchesLocal(last));
  EXPECT_GE(seen.size(), 2u) << "requests saw only one version";
  std::printf("%d requests during the switches answered by %zu versions\n", requests, seen.size());
  EXPECT_EQ(Metric(tox_.http, "fedrx_tox_model_switches_total", R"(study="tox-int")"), kVersions);
  // No request failed at the service during the switches either.
  EXPECT_EQ(
      Metric(tox_.http, "fedrx_tox_requests_total", R"(code="unavailable",type="PredictToxicity")"),
      unavailable_before);
}

}  // namespace
}  // namespace fedrx
