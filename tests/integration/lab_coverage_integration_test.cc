// `fedrx-lab coverage` against a real Redis: a model and its calibration
// stored through the coordinator's StudyStore, as the coordinator stores
// them, are read back by the command, which reports per-class conformal
// coverage of a test file. The calibration rows are the test rows here, so
// the conformal guarantee holds in-sample: coverage at least the confidence
// (less 1/(n+1)) in each class; the row counts are the file's labels.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "services/coordinator/study_store.h"
#include "services/core/redis_state_store.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/domain.h"
#include "services/ml/metrics.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"
#include "services/ml/trainer.h"
#include "tests/support/child_process.h"
#include "tests/support/redis_server.h"

namespace fedrx {
namespace {

using namespace std::chrono_literals;

TEST(LabCoverageIntegrationTest, ReadsTheStoredCalibrationAndCoversInSample) {
  testing::TempDir dir;
  auto redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();

  // 600 Tox21 records, two tasks, a small network trained briefly.
  std::ifstream full(FEDRX_TOX21_CSV);
  std::ofstream part(dir.path() + "/part.csv");
  std::string line;
  for (int n = 0; n <= 600 && std::getline(full, line); ++n) part << line << "\n";
  part.close();
  const std::string study_file = dir.path() + "/cov.study";
  std::ofstream(study_file) << "study.id = cov-int\nstudy.tasks = NR-AhR,SR-MMP\n"
                               "model.input_dim = 512\nmodel.hidden = 32\ntrain.rounds = 3\n"
                               "featurize.radius = 2\n";
  auto config = core::Config::Load(study_file, core::ProcessEnvironment());
  ASSERT_TRUE(config.ok()) << config.status();
  auto spec = ml::StudySpecFromConfig(*config);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const ml::NetSpec net = ml::NetSpecFromStudy(*spec);
  ml::FingerprintOptions fp;
  fp.bits = 512;
  auto all = ml::LoadCsvDataset(dir.path() + "/part.csv", ml::CsvOptions{}, fp, nullptr);
  ASSERT_TRUE(all.ok()) << all.status();
  const ml::Dataset data = all->WithTasks(spec->tasks);
  std::vector<float> w = ml::InitParameters(net, 5);
  ml::TrainOptions o;
  o.epochs = 2;
  ml::Trainer trainer(o);
  ASSERT_TRUE(trainer.Train(net, data, w).ok());
  const std::string model = dir.path() + "/model.bin";
  std::ofstream(model, std::ios::binary)
      .write(reinterpret_cast<const char*>(w.data()),
             static_cast<std::streamsize>(w.size() * sizeof(float)));

  // The calibration a coordinator would store, from the same rows.
  auto pred = ml::PredictWithEmbedding(net, w, data.x);
  ASSERT_TRUE(pred.ok());
  coordinator::VersionCalibration cal;
  cal.version = 0;
  cal.samples = data.size();
  cal.tasks = spec->tasks;
  cal.histograms = *ml::Histograms(data, pred->probabilities);
  cal.embedding = *ml::MomentsOf(pred->embedding, net.hidden.back());
  auto ref = ml::ReferenceFromMoments(cal.embedding);
  ASSERT_TRUE(ref.ok());
  cal.domain_histogram = *ml::DomainHistogram(pred->embedding, *ref, 100);
  {
    core::RedisOptions ro;
    ro.port = (*redis)->port();
    auto store = core::RedisStateStore::Connect(ro, nullptr);
    ASSERT_TRUE(store.ok()) << store.status();
    coordinator::StudyStore studies(**store);
    ASSERT_TRUE(studies.Create(*spec, w, 0).ok());
    ASSERT_TRUE(studies.SaveCalibration("cov-int", cal).ok());
    // The same study under another id, with no calibration stored.
    codec::StudySpec uncalibrated = *spec;
    uncalibrated.study_id = "cov-none";
    ASSERT_TRUE(studies.Create(uncalibrated, w, 0).ok());
  }

  const std::string out = dir.path() + "/coverage.json";
  auto lab = testing::ChildProcess::Spawn(
      FEDRX_LAB_BIN,
      {"coverage", "--study", study_file, "--model", model, "--test", dir.path() + "/part.csv",
       "--redis", "127.0.0.1:" + std::to_string((*redis)->port()), "--version", "0", "--confidence",
       "0.8,0.9", "--json", out});
  ASSERT_TRUE(lab.ok()) << lab.status();
  auto code = (*lab)->Wait(120s);
  ASSERT_TRUE(code.ok());
  ASSERT_EQ(*code, 0) << (*lab)->Log();

  std::ifstream f(out);
  const nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["study"], "cov-int");
  EXPECT_EQ(j["version"], 0);
  EXPECT_EQ(j["calibration_samples"].get<std::uint64_t>(), data.size());
  std::uint64_t negatives = 0, positives = 0;
  for (std::size_t r = 0; r < data.size(); ++r) {
    for (std::size_t t = 0; t < data.num_tasks(); ++t) {
      negatives += data.label(r, t) == 0 ? 1 : 0;
      positives += data.label(r, t) == 1 ? 1 : 0;
    }
  }
  ASSERT_EQ(j["levels"].size(), 2u);
  for (const auto& level : j["levels"]) {
    const double confidence = level["confidence"].get<double>();
    const auto& neg = level["overall"]["negative"];
    const auto& pos = level["overall"]["positive"];
    EXPECT_EQ(neg["rows"].get<std::uint64_t>(), negatives);
    EXPECT_EQ(pos["rows"].get<std::uint64_t>(), positives);
    EXPECT_GE(neg["coverage"].get<double>(), confidence - 1.0 / (negatives + 1.0)) << confidence;
    EXPECT_GE(pos["coverage"].get<double>(), confidence - 1.0 / (positives + 1.0)) << confidence;
  }
  // In-sample, the domain flag marks at most about 1% of the rows.
  EXPECT_LE(j["domain"]["out_of_domain"].get<double>(), 0.02 * data.size() + 1);

  // A version without a calibration is refused, naming what is missing.
  const std::string none_file = dir.path() + "/none.study";
  std::ofstream(none_file) << "study.id = cov-none\nstudy.tasks = NR-AhR,SR-MMP\n"
                              "model.input_dim = 512\nmodel.hidden = 32\ntrain.rounds = 3\n"
                              "featurize.radius = 2\n";
  auto missing = testing::ChildProcess::Spawn(
      FEDRX_LAB_BIN,
      {"coverage", "--study", none_file, "--model", model, "--test", dir.path() + "/part.csv",
       "--redis", "127.0.0.1:" + std::to_string((*redis)->port()), "--json", out});
  ASSERT_TRUE(missing.ok());
  auto missing_code = (*missing)->Wait(120s);
  ASSERT_TRUE(missing_code.ok());
  EXPECT_EQ(*missing_code, 1);
  EXPECT_NE((*missing)->Log().find("no calibration stored for cov-none version 0"),
            std::string::npos)
      << (*missing)->Log();
}

}  // namespace
}  // namespace fedrx
