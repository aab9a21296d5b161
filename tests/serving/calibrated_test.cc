// Calibrated predictions through a ModelServer over an in-memory store
// holding a tiny model and its calibration written by the coordinator's
// StudyStore: p-values, sets and domain flags equal the documented formulas
// on the model's own outputs; no calibration answers uncalibrated and says
// so; a calibration stored later is picked up by Refresh (same version, new
// snapshot); bad requests name the field; concurrent switches never mix
// versions within an answer.
#include "services/serving/calibrated.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <string>
#include <thread>

#include "services/core/keys.h"
#include "services/ingest/compounds.h"
#include "services/ml/chem.h"
#include "services/ml/domain.h"
#include "tests/serving/serving_test_util.h"

namespace fedrx::serving {
namespace {

using core::testing::FakeStateStore;
using testing::KeyFile;
using testing::TinySpec;
using testing::Weights;

const std::vector<std::string> kTraining = {"CCO",       "CCCO",    "CCN",       "c1ccccc1O",
                                            "c1ccccc1N", "CC(=O)O", "CCOC(=O)C", "c1ccncc1",
                                            "CC(C)O",    "OCCO",    "NCCN",      "CCCCCC"};
const std::vector<std::string> kQueries = {"CCO", "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1"};

ml::SparseRows SiteFeatures(const std::vector<std::string>& smiles, std::uint32_t dim) {
  ml::FingerprintOptions fp;
  fp.radius = 2;
  fp.bits = dim;
  const ingest::ConsortiumKey key(testing::kSecret);
  ml::SparseRows x;
  x.dim = dim;
  for (const std::string& s : smiles) {
    core::Result<ml::PreparedMolecule> m = ml::PrepareMolecule(s, fp);
    EXPECT_TRUE(m.ok()) << s;
    x.AddRow(ml::ScrambleBits(m->bits, key.ScrambleKey(), dim));
  }
  return x;
}

// The model's own outputs and embeddings for `smiles`, as a site computes them.
ml::PredictionWithEmbedding Forward(const std::vector<float>& weights,
                                    const std::vector<std::string>& smiles) {
  const ml::NetSpec net = ml::NetSpecFromStudy(TinySpec());
  auto out = ml::PredictWithEmbedding(net, weights, SiteFeatures(smiles, net.input_dim));
  EXPECT_TRUE(out.ok()) << out.status();
  return *out;
}

// 10-bin histograms, different per task so a mix-up shows: task t has
// negatives {t+1, ..., } low and positives high.
std::vector<ml::ScoreHistogram> HandHistograms() {
  std::vector<ml::ScoreHistogram> h(3);
  for (std::size_t t = 0; t < 3; ++t) {
    h[t].neg = {5 + t, 4, 4, 3, 3, 2, 2, 1, 1, 0};
    h[t].pos = {0, 1, 1, 1, 2, 2, 3, 3, 4 + t, 5};
  }
  return h;
}

coordinator::VersionCalibration MakeCalibration(std::uint32_t version,
                                                const std::vector<float>& weights,
                                                std::vector<std::uint64_t> domain) {
  coordinator::VersionCalibration c;
  c.version = version;
  c.samples = 1000;
  c.tasks = TinySpec().tasks;
  c.histograms = HandHistograms();
  const ml::PredictionWithEmbedding train = Forward(weights, kTraining);
  auto moments = ml::MomentsOf(train.embedding, TinySpec().model.hidden.back());
  EXPECT_TRUE(moments.ok()) << moments.status();
  c.embedding = *moments;
  c.domain_histogram = std::move(domain);
  return c;
}

struct Fixture {
  FakeStateStore store;
  ModelRegistry registry{store};
  core::Metrics metrics{"test"};
  KeyFile key{testing::kSecret};
  std::vector<float> weights = Weights(TinySpec(), 1);
  std::unique_ptr<ModelServer> server;

  Fixture() {
    EXPECT_TRUE(coordinator::StudyStore(store).Create(TinySpec(), weights, 0).ok());
    ServingOptions options;
    options.studies = {"tox"};
    options.key_file = key.path();
    auto created = ModelServer::Create(options, registry, metrics);
    EXPECT_TRUE(created.ok()) << created.status();
    server = std::move(created).value();
  }
  void Save(const coordinator::VersionCalibration& c) {
    ASSERT_TRUE(coordinator::StudyStore(store).SaveCalibration("tox", c).ok());
  }
  double Calibrated() const {
    return metrics.Read("fedrx_test_model_calibrated", {{"study", "tox"}});
  }
};

// p_1 = (positives in bins <= b + 1) / (n_1 + 1), p_0 = (negatives in bins >= b + 1) / (n_0 + 1).
LabelPValues ByHand(const ml::ScoreHistogram& h, double s) {
  const std::size_t b = std::min<std::size_t>(static_cast<std::size_t>(s * 10), 9);
  std::uint64_t below = 0, above = 0, n1 = 0, n0 = 0;
  for (std::size_t k = 0; k < 10; ++k) {
    n1 += h.pos[k];
    n0 += h.neg[k];
    if (k <= b) below += h.pos[k];
    if (k >= b) above += h.neg[k];
  }
  return {(above + 1.0) / (n0 + 1.0), (below + 1.0) / (n1 + 1.0)};
}

TEST(CalibratedTest, WithoutCalibrationAnswersUncalibratedAndSaysSo) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->provenance.model_version, 0u);
  EXPECT_EQ(r->provenance.calibration_samples, 0u);
  EXPECT_NE(r->provenance.method.find("uncalibrated"), std::string::npos) << r->provenance.method;
  EXPECT_NE(r->provenance.method.find("no calibration is stored for model version 0"),
            std::string::npos)
      << r->provenance.method;
  const ml::PredictionWithEmbedding direct = Forward(f.weights, kQueries);
  ASSERT_EQ(r->results.size(), kQueries.size());
  for (std::size_t i = 0; i < kQueries.size(); ++i) {
    const codec::StructurePrediction& s = r->results[i];
    EXPECT_TRUE(s.error_code.empty()) << s.error;
    ASSERT_EQ(s.tasks.size(), 3u);
    for (std::size_t t = 0; t < 3; ++t) {
      EXPECT_FALSE(s.tasks[t].calibrated);
      EXPECT_EQ(s.tasks[t].prediction_set, "both");
      EXPECT_EQ(s.tasks[t].p_negative, 0);
      EXPECT_NEAR(s.tasks[t].probability, direct.probabilities[i * 3 + t], 1e-6);
    }
    EXPECT_FALSE(s.domain.calibrated);
    EXPECT_TRUE(s.domain.in_domain);
    EXPECT_EQ(s.domain.p_value, 1);
  }
  EXPECT_EQ(f.Calibrated(), 0);
}

TEST(CalibratedTest, PValuesSetsAndDomainFollowTheFormulas) {
  Fixture f;
  // Every validation row in the top domain bin: nothing is farther, p = 1.
  std::vector<std::uint64_t> far(100, 0);
  far[99] = 40;
  f.Save(MakeCalibration(0, f.weights, far));
  ASSERT_TRUE(f.server->Refresh().ok());
  EXPECT_EQ(f.Calibrated(), 1);
  auto r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.8);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->provenance.calibration_samples, 1000u);
  EXPECT_EQ(r->provenance.calibration_version, 0u);
  EXPECT_NE(r->provenance.method.find("Mondrian inductive conformal"), std::string::npos);
  const ml::PredictionWithEmbedding direct = Forward(f.weights, kQueries);
  const ml::PredictionWithEmbedding train = Forward(f.weights, kTraining);
  auto reference =
      ml::ReferenceFromMoments(*ml::MomentsOf(train.embedding, TinySpec().model.hidden.back()));
  ASSERT_TRUE(reference.ok());
  const std::vector<ml::ScoreHistogram> h = HandHistograms();
  const std::size_t width = TinySpec().model.hidden.back();
  for (std::size_t i = 0; i < kQueries.size(); ++i) {
    const codec::StructurePrediction& s = r->results[i];
    ASSERT_TRUE(s.error_code.empty()) << s.error;
    for (std::size_t t = 0; t < 3; ++t) {
      const double prob = direct.probabilities[i * 3 + t];
      const LabelPValues want = ByHand(h[t], prob);
      const codec::TaskPrediction& got = s.tasks[t];
      EXPECT_TRUE(got.calibrated);
      EXPECT_DOUBLE_EQ(got.p_negative, want.negative) << "structure " << i << " task " << t;
      EXPECT_DOUBLE_EQ(got.p_positive, want.positive) << "structure " << i << " task " << t;
      const bool neg = want.negative > 0.2, pos = want.positive > 0.2;
      EXPECT_EQ(got.prediction_set, neg && pos ? "both"
                                    : neg      ? "negative"
                                    : pos      ? "positive"
                                               : "empty");
      EXPECT_DOUBLE_EQ(got.credibility, std::max(want.negative, want.positive));
      EXPECT_DOUBLE_EQ(got.confidence, 1 - std::min(want.negative, want.positive));
    }
    const std::span<const float> e(direct.embedding.data() + i * width, width);
    EXPECT_NEAR(s.domain.score, ml::DomainScore(e, *reference), 1e-12);
    EXPECT_TRUE(s.domain.calibrated);
    EXPECT_DOUBLE_EQ(s.domain.p_value, 41.0 / 41.0);
    EXPECT_TRUE(s.domain.in_domain);
    EXPECT_EQ(s.domain.threshold, kOutOfDomainPValue);
  }
}

TEST(CalibratedTest, StructuresFartherThanEveryValidationRowAreOutOfDomain) {
  Fixture f;
  // 200 validation rows, all with domain score below 0.001: a query with a
  // larger score has p = 1/201 < 0.01.
  std::vector<std::uint64_t> near(1000, 0);
  near[0] = 200;
  f.Save(MakeCalibration(0, f.weights, near));
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
  ASSERT_TRUE(r.ok()) << r.status();
  for (const codec::StructurePrediction& s : r->results) {
    ASSERT_GE(s.domain.score, 0.001) << s.input;
    EXPECT_DOUBLE_EQ(s.domain.p_value, 1.0 / 201.0);
    EXPECT_FALSE(s.domain.in_domain) << s.input;
  }
}

TEST(CalibratedTest, CalibrationStoredLaterIsPickedUpBySameVersionNewSnapshot) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  auto before = f.server->Current("tox");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ((*before)->calibration, nullptr);
  // Stage 0 only (no domain histogram) first, then the complete one.
  f.Save(MakeCalibration(0, f.weights, {}));
  ASSERT_TRUE(f.server->Refresh().ok());
  auto partial = f.server->Current("tox");
  ASSERT_TRUE(partial.ok());
  EXPECT_NE(*partial, *before);
  EXPECT_EQ((*partial)->version, 0u);
  ASSERT_NE((*partial)->calibration, nullptr);
  EXPECT_FALSE((*partial)->calibration->domain.has_value());
  EXPECT_EQ((*before)->calibration, nullptr);  // the old snapshot is unchanged
  auto r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->results[0].tasks[0].calibrated);
  EXPECT_FALSE(r->results[0].domain.calibrated);
  EXPECT_GT(r->results[0].domain.score, 0);  // scored, not flagged
  EXPECT_NE(r->provenance.method.find("no domain-score histogram"), std::string::npos);

  f.Save(MakeCalibration(0, f.weights, std::vector<std::uint64_t>(100, 1)));
  ASSERT_TRUE(f.server->Refresh().ok());
  auto complete = f.server->Current("tox");
  ASSERT_TRUE(complete.ok());
  EXPECT_NE(*complete, *partial);
  ASSERT_TRUE((*complete)->calibration->domain.has_value());
  // Nothing more to pick up: the snapshot stays.
  ASSERT_TRUE(f.server->Refresh().ok());
  EXPECT_EQ(*f.server->Current("tox"), *complete);
  EXPECT_EQ(f.metrics.Read("fedrx_test_model_switches_total", {{"study", "tox"}}), 0);
}

// A new version arrives without its calibration: answered uncalibrated (the
// previous version's statistics describe another model), then calibrated.
TEST(CalibratedTest, NewVersionIsUncalibratedUntilItsCalibrationArrives) {
  Fixture f;
  f.Save(MakeCalibration(0, f.weights, std::vector<std::uint64_t>(10, 3)));
  ASSERT_TRUE(f.server->Refresh().ok());
  const std::vector<float> v1 = Weights(TinySpec(), 2);
  testing::Publish(f.store, "tox", 0, v1);
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->provenance.model_version, 1u);
  EXPECT_FALSE(r->results[0].tasks[0].calibrated);
  EXPECT_NE(r->provenance.method.find("model version 1"), std::string::npos);
  EXPECT_EQ(f.Calibrated(), 0);
  f.Save(MakeCalibration(1, v1, std::vector<std::uint64_t>(10, 3)));
  ASSERT_TRUE(f.server->Refresh().ok());
  r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->results[0].tasks[0].calibrated);
  EXPECT_EQ(r->provenance.calibration_version, 1u);
  EXPECT_EQ(f.Calibrated(), 1);
}

// An unreadable calibration leaves the model served, uncalibrated and saying
// why; the failure is returned and counted; a good one stored later is used.
TEST(CalibratedTest, UnreadableCalibrationServesTheModelUncalibratedUntilRepaired) {
  Fixture f;
  auto key = core::keys::ModelCalibration("tox", 0);
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(f.store.HashSet(*key, {{"format", "bogus"}}).ok());
  const core::Status refreshed = f.server->Refresh();
  EXPECT_EQ(refreshed.code(), core::StatusCode::kDataLoss) << refreshed;
  EXPECT_EQ(f.metrics.Read("fedrx_test_calibration_load_failures_total", {{"study", "tox"}}), 1);
  auto r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->provenance.model_version, 0u);
  EXPECT_FALSE(r->results[0].tasks[0].calibrated);
  EXPECT_NE(r->provenance.method.find("could not be read"), std::string::npos)
      << r->provenance.method;
  f.Save(MakeCalibration(0, f.weights, std::vector<std::uint64_t>(10, 3)));
  ASSERT_TRUE(f.server->Refresh().ok());
  r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->results[0].tasks[0].calibrated);
}

// Statistics that do not fit the model are left out with a note: moments of
// another width (no domain), a task missing from the calibration, a task
// with no positive calibration row.
TEST(CalibratedTest, PartsThatDoNotFitTheModelAreLeftOutWithANote) {
  Fixture f;
  coordinator::VersionCalibration c = MakeCalibration(0, f.weights, {5, 5});
  c.tasks = {"nr_ar", "sr_are"};
  c.histograms.resize(2);
  c.histograms[1].pos.assign(10, 0);
  c.embedding.sum.resize(3);
  c.embedding.sum_squares.resize(3);
  f.Save(c);
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
  ASSERT_TRUE(r.ok()) << r.status();
  const codec::StructurePrediction& s = r->results[0];
  EXPECT_TRUE(s.tasks[0].calibrated);   // nr_ar
  EXPECT_FALSE(s.tasks[1].calibrated);  // sr_are: no positives
  EXPECT_EQ(s.tasks[1].prediction_set, "both");
  EXPECT_FALSE(s.tasks[2].calibrated);  // sr_p53: not in the calibration
  EXPECT_FALSE(s.domain.calibrated);
  const std::string& m = r->provenance.method;
  EXPECT_NE(m.find("'sr_are' has 26 negative and 0 positive"), std::string::npos) << m;
  EXPECT_NE(m.find("'sr_p53' has no calibration histogram"), std::string::npos) << m;
  EXPECT_NE(m.find("embedding statistics have 3 units"), std::string::npos) << m;
}

// The calibration's histograms are matched to the model's tasks by name.
TEST(CalibratedTest, TaskSubsetInRequestedOrderUsesEachTasksOwnHistogram) {
  Fixture f;
  f.Save(MakeCalibration(0, f.weights, std::vector<std::uint64_t>(10, 3)));
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = PredictCalibrated(*f.server, "tox", kQueries, {"sr_p53", "nr_ar"}, 0.9);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tasks, (std::vector<std::string>{"sr_p53", "nr_ar"}));
  const ml::PredictionWithEmbedding direct = Forward(f.weights, kQueries);
  const std::vector<ml::ScoreHistogram> h = HandHistograms();
  for (std::size_t i = 0; i < kQueries.size(); ++i) {
    ASSERT_EQ(r->results[i].tasks.size(), 2u);
    EXPECT_EQ(r->results[i].tasks[0].task, "sr_p53");
    EXPECT_NEAR(r->results[i].tasks[0].probability, direct.probabilities[i * 3 + 2], 1e-6);
    EXPECT_DOUBLE_EQ(r->results[i].tasks[0].p_positive,
                     ByHand(h[2], direct.probabilities[i * 3 + 2]).positive);
    EXPECT_EQ(r->results[i].tasks[1].task, "nr_ar");
    EXPECT_DOUBLE_EQ(r->results[i].tasks[1].p_negative,
                     ByHand(h[0], direct.probabilities[i * 3]).negative);
  }
}

TEST(CalibratedTest, BadRequestsNameTheField) {
  Fixture f;
  // Before any model is loaded: unavailable, naming the study.
  auto none = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find("'tox'"), std::string::npos);
  ASSERT_TRUE(f.server->Refresh().ok());
  auto unknown = PredictCalibrated(*f.server, "tox", kQueries, {"nr_ar", "nr_xyz"}, 0.9);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().where(), "PredictToxicity.tasks[1]");
  EXPECT_NE(unknown.status().message().find("nr_xyz"), std::string::npos);
  auto twice = PredictCalibrated(*f.server, "tox", kQueries, {"nr_ar", "nr_ar"}, 0.9);
  EXPECT_EQ(twice.status().where(), "PredictToxicity.tasks[1]");
  for (double c : {0.0, 1.0, 1.2, -1.0, std::nan("")}) {
    auto bad = PredictCalibrated(*f.server, "tox", kQueries, {}, c);
    EXPECT_EQ(bad.status().where(), "PredictToxicity.confidence") << c;
  }
  auto empty = PredictCalibrated(*f.server, "tox", {}, {}, 0.9);
  EXPECT_EQ(empty.status().where(), "PredictToxicity.smiles");
  auto clinical = PredictCalibrated(*f.server, "tox", {}, {}, 0.9, "AssessClinical");
  EXPECT_EQ(clinical.status().where(), "AssessClinical.smiles");
  auto other = PredictCalibrated(*f.server, "nope", kQueries, {}, 0.9);
  EXPECT_EQ(other.status().code(), core::StatusCode::kNotFound);
}

TEST(CalibratedTest, BadStructuresFailAloneWithTheirIndex) {
  Fixture f;
  f.Save(MakeCalibration(0, f.weights, std::vector<std::uint64_t>(10, 3)));
  ASSERT_TRUE(f.server->Refresh().ok());
  const std::string huge(10000, 'C');
  auto r = PredictCalibrated(*f.server, "tox", {"CCO", "", "C1CC", huge, "c1ccccc1O"}, {}, 0.9);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results.size(), 5u);
  for (std::size_t i : {1u, 2u, 3u}) {
    const codec::StructurePrediction& s = r->results[i];
    EXPECT_EQ(s.error_code, "invalid_argument") << i;
    EXPECT_EQ(s.error_where, "smiles[" + std::to_string(i) + "]");
    EXPECT_TRUE(s.tasks.empty());
  }
  EXPECT_NE(r->results[3].error.find("heavy atoms"), std::string::npos) << r->results[3].error;
  EXPECT_EQ(r->results[3].input, huge);
  for (std::size_t i : {0u, 4u}) {
    EXPECT_TRUE(r->results[i].error_code.empty());
    EXPECT_EQ(r->results[i].tasks.size(), 3u);
    EXPECT_TRUE(r->results[i].domain.calibrated);
  }
}

// While another thread keeps switching between two versions (each with its
// own calibration), every answer's probabilities are those of the version its
// provenance names.
TEST(CalibratedTest, SwitchesDuringRequestsNeverMixVersions) {
  Fixture f;
  std::map<std::uint32_t, std::vector<float>> weights = {{0, f.weights}};
  f.Save(MakeCalibration(0, f.weights, std::vector<std::uint64_t>(10, 3)));
  ASSERT_TRUE(f.server->Refresh().ok());
  for (std::uint32_t v = 1; v <= 6; ++v) weights[v] = Weights(TinySpec(), 10 + v);
  std::map<std::uint32_t, std::vector<float>> expected;
  for (const auto& [v, w] : weights) expected[v] = Forward(w, kQueries).probabilities;
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    for (std::uint32_t v = 1; v <= 6; ++v) {
      testing::Publish(f.store, "tox", v - 1, weights[v]);
      f.Save(MakeCalibration(v, weights[v], std::vector<std::uint64_t>(10, 3)));
      EXPECT_TRUE(f.server->Refresh().ok());
    }
    done = true;
  });
  std::size_t answered = 0;
  std::map<std::uint32_t, int> seen;
  while (!done || answered < 5) {
    auto r = PredictCalibrated(*f.server, "tox", kQueries, {}, 0.9);
    ASSERT_TRUE(r.ok()) << r.status();
    const std::uint32_t v = r->provenance.model_version;
    ++seen[v];
    EXPECT_EQ(r->model->version, v);
    if (r->provenance.calibration_samples > 0) {
      EXPECT_EQ(r->provenance.calibration_version, v);
    }
    for (std::size_t i = 0; i < kQueries.size(); ++i) {
      for (std::size_t t = 0; t < 3; ++t) {
        EXPECT_NEAR(r->results[i].tasks[t].probability, expected[v][i * 3 + t], 1e-6)
            << "version " << v;
      }
    }
    ++answered;
  }
  publisher.join();
  EXPECT_EQ(f.server->Current("tox").value()->version, 6u);
  EXPECT_GE(seen.size(), 1u);
}

}  // namespace
}  // namespace fedrx::serving
