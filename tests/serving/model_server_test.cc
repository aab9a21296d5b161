// ModelServer: predictions equal a direct forward pass on the sites'
// features, new versions are picked up without failing requests, bad
// structures fail alone, and a preparation mismatch is refused.
#include "services/serving/model_server.h"

#include <atomic>
#include <cmath>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "services/ingest/compounds.h"
#include "services/ml/chem.h"
#include "tests/serving/serving_test_util.h"

namespace fedrx::serving {
namespace {

using core::testing::FakeStateStore;
using testing::KeyFile;
using testing::TinySpec;
using testing::Weights;

const std::vector<std::string> kMolecules = {
    "CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "[Na+].[O-]C(=O)c1ccccc1", "CN1CCC[C@H]1c1cccnc1"};

// Features as a site's ingest computes them: PrepareMolecule, then the key's scrambling.
ml::SparseRows SiteFeatures(const std::vector<std::string>& smiles, std::uint32_t dim,
                            const std::string& secret) {
  ml::FingerprintOptions fp;
  fp.radius = 2;
  fp.bits = dim;
  const ingest::ConsortiumKey key(secret);
  ml::SparseRows x;
  x.dim = dim;
  for (const std::string& s : smiles) {
    core::Result<ml::PreparedMolecule> m = ml::PrepareMolecule(s, fp);
    EXPECT_TRUE(m.ok()) << s;
    x.AddRow(ml::ScrambleBits(m->bits, key.ScrambleKey(), dim));
  }
  return x;
}

struct Fixture {
  FakeStateStore store;
  ModelRegistry registry{store};
  core::Metrics metrics{"test"};
  KeyFile key{testing::kSecret};
  std::unique_ptr<ModelServer> server;

  explicit Fixture(codec::StudySpec spec = TinySpec()) {
    EXPECT_TRUE(coordinator::StudyStore(store).Create(spec, Weights(spec, 1), 0).ok());
    ServingOptions options;
    options.studies = {"tox"};
    options.key_file = key.path();
    auto created = ModelServer::Create(options, registry, metrics);
    EXPECT_TRUE(created.ok()) << created.status();
    server = std::move(created).value();
  }
};

void ExpectMatchesForward(const PredictionBatch& batch, const std::vector<float>& weights,
                          const std::vector<std::string>& smiles) {
  const codec::StudySpec spec = TinySpec();
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  core::Result<std::vector<float>> direct =
      ml::Predict(net, weights, SiteFeatures(smiles, net.input_dim, testing::kSecret));
  ASSERT_TRUE(direct.ok());
  ASSERT_EQ(batch.results.size(), smiles.size());
  for (std::size_t i = 0; i < smiles.size(); ++i) {
    ASSERT_TRUE(batch.results[i].status.ok()) << batch.results[i].status;
    ASSERT_EQ(batch.results[i].probabilities.size(), 3u);
    for (std::size_t t = 0; t < 3; ++t) {
      EXPECT_NEAR(batch.results[i].probabilities[t], (*direct)[i * 3 + t], 1e-6)
          << smiles[i] << " task " << t;
    }
  }
}

// Predictions equal ml::Predict of the stored weights on the features a site
// computes with the consortium key.
TEST(ModelServerTest, PredictionsEqualDirectForwardPassOnSiteFeatures) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  core::Result<PredictionBatch> batch = f.server->Predict("tox", kMolecules);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->version, 0u);
  EXPECT_EQ(batch->model->tasks(), TinySpec().tasks);
  ExpectMatchesForward(*batch, Weights(TinySpec(), 1), kMolecules);
  // The salt is served as its largest fragment, neutralised, as the sites stored it.
  EXPECT_EQ(batch->results[3].canonical_smiles, "O=C(O)c1ccccc1");
}

// Without the key the features differ: the key really is applied.
TEST(ModelServerTest, ScramblingKeyChangesTheFeatures) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  core::Result<PredictionBatch> batch = f.server->Predict("tox", {"c1ccccc1O"});
  ASSERT_TRUE(batch.ok());
  const ml::NetSpec net = ml::NetSpecFromStudy(TinySpec());
  ml::FingerprintOptions fp;
  fp.bits = net.input_dim;
  ml::SparseRows plain;
  plain.dim = net.input_dim;
  plain.AddRow(ml::PrepareMolecule("c1ccccc1O", fp)->bits);
  std::vector<float> unscrambled = ml::Predict(net, Weights(TinySpec(), 1), plain).value();
  EXPECT_GT(std::fabs(unscrambled[0] - batch->results[0].probabilities[0]), 1e-6);
}

// The embedding is the trunk's last hidden layer: the head applied to it
// gives the served probabilities.
TEST(ModelServerTest, EmbeddingThroughTheHeadGivesTheProbabilities) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  PredictOptions options;
  options.embeddings = true;
  core::Result<PredictionBatch> batch = f.server->Predict("tox", kMolecules, options);
  ASSERT_TRUE(batch.ok());
  const ml::NetSpec& net = batch->model->net;
  const ml::LayerView<const float> head =
      ml::Layer(net, batch->model->weights, net.hidden.size());
  for (const StructurePrediction& r : batch->results) {
    ASSERT_EQ(r.embedding.size(), 8u);
    for (float e : r.embedding) EXPECT_GE(e, 0.0f);
    for (std::size_t t = 0; t < 3; ++t) {
      double z = head.bias[t];
      for (std::size_t i = 0; i < 8; ++i) z += double{r.embedding[i]} * head.w(i, t);
      EXPECT_NEAR(1.0 / (1.0 + std::exp(-z)), r.probabilities[t], 1e-5);
    }
  }
  // Without asking, no embedding is computed.
  core::Result<PredictionBatch> plain = f.server->Predict("tox", kMolecules);
  EXPECT_TRUE(plain->results[0].embedding.empty());
}

// A newly published version is picked up by Refresh; a prediction still
// holding the old snapshot completes with the old version and weights.
TEST(ModelServerTest, RefreshSwitchesAndOldSnapshotStillAnswers) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  std::shared_ptr<const ServedModel> old = f.server->Current("tox").value();
  EXPECT_EQ(f.metrics.Read("fedrx_test_model_version", {{"study", "tox"}}), 0);

  // Nothing new: no switch.
  ASSERT_TRUE(f.server->Refresh().ok());
  EXPECT_EQ(f.server->Current("tox").value(), old);

  testing::Publish(f.store, "tox", 0, Weights(TinySpec(), 2));
  ASSERT_TRUE(f.server->Refresh().ok());
  EXPECT_EQ(f.server->Current("tox").value()->version, 1u);
  EXPECT_EQ(f.metrics.Read("fedrx_test_model_version", {{"study", "tox"}}), 1);
  EXPECT_EQ(f.metrics.Read("fedrx_test_model_switches_total", {{"study", "tox"}}), 1);

  core::Result<PredictionBatch> held = PredictWith(old, kMolecules);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->version, 0u);
  ExpectMatchesForward(*held, Weights(TinySpec(), 1), kMolecules);
  core::Result<PredictionBatch> fresh = f.server->Predict("tox", kMolecules);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->version, 1u);
  ExpectMatchesForward(*fresh, Weights(TinySpec(), 2), kMolecules);
}

// Requests running on other threads while versions switch all succeed, each
// answering with the version it started on.
TEST(ModelServerTest, SwitchNeverFailsConcurrentRequests) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, answered{0}, max_version{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!done.load()) {
        core::Result<PredictionBatch> b = f.server->Predict("tox", {"CCO", "c1ccccc1O"});
        if (!b.ok() || !b->results[0].status.ok() || b->version != b->model->version) {
          ++failures;
        } else {
          max_version = std::max<int>(max_version, static_cast<int>(b->version));
        }
        ++answered;
      }
    });
  }
  for (std::uint32_t v = 0; v < 5; ++v) {
    testing::Publish(f.store, "tox", v, Weights(TinySpec(), 10 + v));
    ASSERT_TRUE(f.server->Refresh().ok());
  }
  while (answered.load() < 20) std::this_thread::yield();
  done = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(f.server->Current("tox").value()->version, 5u);
  EXPECT_EQ(f.metrics.Read("fedrx_test_model_switches_total", {{"study", "tox"}}), 5);
}

// Bad structures get their own errors; the good ones in the batch still
// match the direct forward pass.
TEST(ModelServerTest, BadStructuresFailAloneInTheBatch) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  std::string huge;
  for (int i = 0; i < 10000; ++i) huge += "C";
  const std::vector<std::string> input = {"CCO", "", "C1CC(((", huge, "   ", "c1ccccc1O",
                                          std::string(201, 'C')};
  core::Result<PredictionBatch> batch = f.server->Predict("tox", input);
  ASSERT_TRUE(batch.ok()) << batch.status();
  const auto& r = batch->results;
  ASSERT_EQ(r.size(), input.size());
  EXPECT_TRUE(r[0].status.ok());
  EXPECT_TRUE(r[5].status.ok());
  for (std::size_t i : {1, 2, 3, 4, 6}) {
    EXPECT_EQ(r[i].status.code(), core::StatusCode::kInvalidArgument) << i;
    EXPECT_EQ(r[i].status.where(), "smiles[" + std::to_string(i) + "]");
    EXPECT_TRUE(r[i].probabilities.empty());
  }
  EXPECT_NE(r[1].status.message().find("empty"), std::string::npos);
  EXPECT_NE(r[4].status.message().find("empty"), std::string::npos);
  EXPECT_NE(r[3].status.message().find("heavy atoms"), std::string::npos) << r[3].status;
  EXPECT_NE(r[6].status.message().find("heavy atoms"), std::string::npos) << r[6].status;
  EXPECT_EQ(r[2].status.message().find("heavy atoms"), std::string::npos);
  ExpectMatchesForward(PredictionBatch{batch->model, 0, {r[0], r[5]}},
                       Weights(TinySpec(), 1), {"CCO", "c1ccccc1O"});
}

// Featurising on several threads gives exactly the single-threaded answer,
// errors in their places.
TEST(ModelServerTest, ThreadsDoNotChangeResults) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  std::shared_ptr<const ServedModel> model = f.server->Current("tox").value();
  std::vector<std::string> input = kMolecules;
  input.insert(input.begin() + 2, "C1CC(((");
  input.push_back("");
  core::Result<PredictionBatch> one = PredictWith(model, input, {}, 4096, 1);
  core::Result<PredictionBatch> three = PredictWith(model, input, {}, 4096, 3);
  ASSERT_TRUE(one.ok() && three.ok());
  for (std::size_t i = 0; i < input.size(); ++i) {
    EXPECT_EQ(one->results[i].status.code(), three->results[i].status.code()) << i;
    EXPECT_EQ(one->results[i].status.where(), three->results[i].status.where()) << i;
    EXPECT_EQ(one->results[i].probabilities, three->results[i].probabilities) << i;
  }
  EXPECT_FALSE(one->results[2].status.ok());
  EXPECT_TRUE(one->results[3].status.ok());
}

// Heavy atoms are counted from the text: hydrogens (bracketed, isotopes)
// do not count, two-letter halogens are one atom, Hg is heavy.
TEST(ModelServerTest, CountsHeavyAtomsFromText) {
  EXPECT_EQ(CountHeavyAtoms("CCO", 200), 3u);
  EXPECT_EQ(CountHeavyAtoms("c1ccccc1Br", 200), 7u);
  EXPECT_EQ(CountHeavyAtoms("[H]C([2H])([H+])Cl", 200), 2u);
  EXPECT_EQ(CountHeavyAtoms("[Hg]Cl.[Na+]", 200), 3u);
  EXPECT_EQ(CountHeavyAtoms("C%10CC%10", 200), 3u);
  EXPECT_EQ(CountHeavyAtoms(std::string(10000, 'C'), 200), 201u);
}

// Batch-level refusals: an empty request, an oversized one, an unknown study.
TEST(ModelServerTest, RefusesEmptyOversizedAndUnknown) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  EXPECT_EQ(f.server->Predict("tox", {}).status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.server->Predict("tox", std::vector<std::string>(4097, "C")).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.server->Predict("other", {"C"}).status().code(), core::StatusCode::kNotFound);
}

// Before any model is loaded, and when the registry lacks the study,
// requests get kUnavailable carrying the load error.
TEST(ModelServerTest, NoModelYetIsUnavailable) {
  FakeStateStore store;
  ModelRegistry registry(store);
  core::Metrics metrics("test");
  ServingOptions options;
  options.studies = {"tox"};
  auto server = ModelServer::Create(options, registry, metrics).value();
  EXPECT_EQ(server->Predict("tox", {"C"}).status().code(), core::StatusCode::kUnavailable);
  core::Status refreshed = server->Refresh();
  EXPECT_EQ(refreshed.code(), core::StatusCode::kNotFound);
  core::Status s = server->Predict("tox", {"C"}).status();
  EXPECT_EQ(s.code(), core::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("no study 'tox'"), std::string::npos) << s;
  EXPECT_EQ(metrics.Read("fedrx_test_model_load_failures_total", {{"study", "tox"}}), 1);
  EXPECT_EQ(metrics.Read("fedrx_test_model_version", {{"study", "tox"}}), -1);
}

// A corrupt new version is not served: the previous one stays in use.
TEST(ModelServerTest, CorruptNewVersionKeepsServingTheOldOne) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  std::vector<float> bad = Weights(TinySpec(), 2);
  bad.pop_back();
  testing::Publish(f.store, "tox", 0, bad);
  core::Status s = f.server->Refresh();
  EXPECT_EQ(s.code(), core::StatusCode::kDataLoss);
  EXPECT_EQ(f.server->Current("tox").value()->version, 0u);
  EXPECT_TRUE(f.server->Predict("tox", {"CCO"}).ok());
}

// The spec's preparation hash must be what this server's preparation
// produces: the sites' own hash is served, another is refused.
TEST(ModelServerTest, PreparationHashIsChecked) {
  ingest::PrepOptions prep;
  prep.fingerprint.radius = 2;
  prep.fingerprint.bits = 256;
  const ingest::ConsortiumKey key(testing::kSecret);
  const std::string site_hash =
      ingest::IngestPreparationHash(prep, key, ingest::ReferenceSetHash(prep, key).value());
  {
    codec::StudySpec spec = TinySpec();
    spec.preparation_hash = site_hash;
    Fixture f(spec);
    core::Status s = f.server->Refresh();
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(f.server->Current("tox").value()->preparation_hash, site_hash);
  }
  {
    // Sites prepared without the key (or with another): refused.
    codec::StudySpec spec = TinySpec();
    spec.preparation_hash =
        ingest::IngestPreparationHash(prep, ingest::ConsortiumKey(),
                                      ingest::ReferenceSetHash(prep, ingest::ConsortiumKey()).value());
    Fixture f(spec);
    core::Status s = f.server->Refresh();
    EXPECT_EQ(s.code(), core::StatusCode::kFailedPrecondition);
    EXPECT_NE(s.message().find("refusing to serve"), std::string::npos) << s;
    core::Status p = f.server->Predict("tox", {"CCO"}).status();
    EXPECT_EQ(p.code(), core::StatusCode::kUnavailable);
    EXPECT_NE(p.message().find("refusing to serve"), std::string::npos) << p;
  }
}

// A missing or too-short key file fails at startup, naming the file.
TEST(ModelServerTest, BadKeyFileFailsCreate) {
  FakeStateStore store;
  ModelRegistry registry(store);
  core::Metrics metrics("test");
  ServingOptions options;
  options.studies = {"tox"};
  options.key_file = "/nonexistent/fedrx-key";
  auto r = ModelServer::Create(options, registry, metrics);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().where(), "/nonexistent/fedrx-key");
  KeyFile shortkey("short");
  options.key_file = shortkey.path();
  EXPECT_EQ(ModelServer::Create(options, registry, metrics).status().code(),
            core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedrx::serving
