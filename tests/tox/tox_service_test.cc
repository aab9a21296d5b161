// The tox handler over an in-memory registry: answers a panel with the
// served study's version and calibration; each bad input gives its error
// (field named) and the right per-structure counter (none for a request
// refused whole); a request during switches is answered by one version.
// Also the panel list parser, the options, and RequestService::Every (the
// periodic refresh on the runner's thread).
#include "services/tox/tox_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <thread>

#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/domain/request_service.h"
#include "services/ml/domain.h"
#include "services/serving/calibrated.h"
#include "tests/serving/serving_test_util.h"

namespace fedrx::tox {
namespace {

using core::testing::FakeStateStore;
using serving::testing::KeyFile;
using serving::testing::TinySpec;
using serving::testing::Weights;

const std::vector<std::string> kTraining = {"CCO",       "CCCO",    "CCN",      "c1ccccc1O",
                                            "c1ccccc1N", "CC(=O)O", "c1ccncc1", "CCCCCC"};

coordinator::VersionCalibration Calibration(const codec::StudySpec& spec, std::uint32_t version,
                                            const std::vector<float>& weights,
                                            std::vector<std::uint64_t> domain) {
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  ml::FingerprintOptions fp;
  fp.radius = 2;
  fp.bits = net.input_dim;
  const ingest::ConsortiumKey key(serving::testing::kSecret);
  ml::SparseRows x;
  x.dim = net.input_dim;
  for (const std::string& s : kTraining) {
    x.AddRow(ml::ScrambleBits(ml::PrepareMolecule(s, fp)->bits, key.ScrambleKey(), net.input_dim));
  }
  auto out = ml::PredictWithEmbedding(net, weights, x);
  EXPECT_TRUE(out.ok());
  coordinator::VersionCalibration c;
  c.version = version;
  c.samples = 1000;
  c.tasks = spec.tasks;
  c.histograms.resize(spec.tasks.size());
  for (ml::ScoreHistogram& h : c.histograms) {
    h.neg = {6, 5, 4, 3, 2};
    h.pos = {1, 2, 3, 4, 5};
  }
  c.embedding = *ml::MomentsOf(out->embedding, net.hidden.back());
  c.domain_histogram = std::move(domain);
  return c;
}

struct Fixture {
  FakeStateStore store;
  serving::ModelRegistry registry{store};
  core::Metrics metrics{"tox"};
  KeyFile key{serving::testing::kSecret};
  std::unique_ptr<serving::ModelServer> server;
  std::unique_ptr<ToxHandler> handler;
  std::vector<float> weights = Weights(TinySpec("tox21-demo"), 1);

  explicit Fixture(std::size_t max_structures = 8) {
    EXPECT_TRUE(coordinator::StudyStore(store).Create(TinySpec("tox21-demo"), weights, 0).ok());
    EXPECT_TRUE(coordinator::StudyStore(store)
                    .Create(TinySpec("toxcast-demo"), Weights(TinySpec("toxcast-demo"), 5), 0)
                    .ok());
    serving::ServingOptions options;
    options.studies = {"tox21-demo", "toxcast-demo"};
    options.key_file = key.path();
    options.max_heavy_atoms = 200;
    server = std::move(serving::ModelServer::Create(options, registry, metrics)).value();
    ToxOptions tox;
    tox.panels = {{"tox21", "tox21-demo"}, {"toxcast", "toxcast-demo"}};
    tox.max_structures = max_structures;
    auto created = ToxHandler::Create(tox, *server, metrics);
    EXPECT_TRUE(created.ok()) << created.status();
    handler = std::move(created).value();
  }
  double Count(const std::string& panel, const std::string& domain) const {
    return metrics.Read("fedrx_tox_structures_total", {{"panel", panel}, {"domain", domain}});
  }
  double Total() const {
    double sum = 0;
    for (const char* p : {"tox21", "toxcast"}) {
      for (const char* d : {"in", "out", "unassessed", "refused"}) sum += Count(p, d);
    }
    return sum;
  }
};

codec::PredictToxicity Request(std::vector<std::string> smiles) {
  codec::PredictToxicity r;
  r.smiles = std::move(smiles);
  return r;
}

void ExpectRefusedWhole(const Fixture& f, const core::Result<codec::ToxicityPanel>& r,
                        core::StatusCode code, const std::string& where) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status();
  EXPECT_EQ(r.status().where(), where) << r.status();
  EXPECT_EQ(f.Total(), 0) << "a request refused whole counts no structure";
}

TEST(ToxHandlerTest, BeforeAnyModelIsLoadedUnavailableNamingTheStudy) {
  Fixture f;
  auto r = f.handler->Predict(Request({"CCO"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("tox21-demo"), std::string::npos) << r.status();
  EXPECT_EQ(f.Total(), 0);
}

TEST(ToxHandlerTest, AnswersThePanelWithVersionCalibrationAndDomain) {
  Fixture f;
  // Validation rows' domain scores all in the last of 10 bins: nothing is farther.
  std::vector<std::uint64_t> domain(10, 0);
  domain[9] = 30;
  ASSERT_TRUE(
      coordinator::StudyStore(f.store)
          .SaveCalibration("tox21-demo", Calibration(TinySpec("tox21-demo"), 0, f.weights, domain))
          .ok());
  ASSERT_TRUE(f.server->Refresh().ok());
  codec::PredictToxicity req = Request({"CCO", "c1ccccc1O"});
  req.confidence = 0.8;
  auto r = f.handler->Predict(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->panel, "tox21");
  EXPECT_EQ(r->model.study_id, "tox21-demo");
  EXPECT_EQ(r->model.model_version, 0u);
  EXPECT_EQ(r->model.calibration_samples, 1000u);
  EXPECT_EQ(r->confidence, 0.8);
  EXPECT_EQ(r->tasks, TinySpec().tasks);
  ASSERT_EQ(r->results.size(), 2u);
  for (const codec::StructurePrediction& s : r->results) {
    ASSERT_EQ(s.tasks.size(), 3u);
    EXPECT_TRUE(s.tasks[0].calibrated);
    EXPECT_TRUE(s.domain.calibrated);
    EXPECT_DOUBLE_EQ(s.domain.p_value, 1.0);
    EXPECT_TRUE(s.domain.in_domain);
  }
  EXPECT_EQ(f.Count("tox21", "in"), 2);
  EXPECT_EQ(f.Count("tox21", "out"), 0);
  // The working states the method and works the first p-value through.
  EXPECT_NE(r->working.method.find("Mondrian"), std::string::npos);
  EXPECT_FALSE(r->working.guidance.empty());
  ASSERT_GE(r->working.steps.size(), 5u);
  EXPECT_NE(r->working.steps[0].label.find("positive"), std::string::npos);
  EXPECT_DOUBLE_EQ(r->working.steps[0].result.value, r->results[0].tasks[0].p_positive);
  EXPECT_DOUBLE_EQ(r->working.steps[1].result.value, r->results[0].tasks[0].p_negative);
  // The working's counts reproduce the p-value: (count + 1) / (n1 + 1).
  const auto& in = r->working.steps[0].inputs;
  ASSERT_EQ(in.size(), 5u);
  EXPECT_DOUBLE_EQ((in[3].value + 1) / (in[4].value + 1), r->results[0].tasks[0].p_positive);

  // The other panel's study has no calibration: unassessed, and the answer says so.
  codec::PredictToxicity other = Request({"CCO"});
  other.panel = "toxcast";
  auto u = f.handler->Predict(other);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->model.study_id, "toxcast-demo");
  EXPECT_FALSE(u->results[0].tasks[0].calibrated);
  EXPECT_EQ(u->results[0].tasks[0].prediction_set, "both");
  EXPECT_NE(u->model.method.find("uncalibrated"), std::string::npos);
  EXPECT_EQ(f.Count("toxcast", "unassessed"), 1);
}

TEST(ToxHandlerTest, OutOfDomainStructuresAreFlaggedAndCounted) {
  Fixture f;
  std::vector<std::uint64_t> domain(1000, 0);
  domain[0] = 500;  // every validation row almost at the training mean
  ASSERT_TRUE(
      coordinator::StudyStore(f.store)
          .SaveCalibration("tox21-demo", Calibration(TinySpec("tox21-demo"), 0, f.weights, domain))
          .ok());
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = f.handler->Predict(Request({"CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1"}));
  ASSERT_TRUE(r.ok()) << r.status();
  for (const codec::StructurePrediction& s : r->results) {
    EXPECT_FALSE(s.domain.in_domain);
    EXPECT_DOUBLE_EQ(s.domain.p_value, 1.0 / 501.0);
  }
  EXPECT_EQ(f.Count("tox21", "out"), 2);
  EXPECT_EQ(f.Count("tox21", "in"), 0);
}

TEST(ToxHandlerTest, BadRequestsAreRefusedWholeNamingTheField) {
  Fixture f(/*max_structures=*/4);
  ASSERT_TRUE(f.server->Refresh().ok());
  ExpectRefusedWhole(f, f.handler->Predict(Request({})), core::StatusCode::kInvalidArgument,
                     "PredictToxicity.smiles");
  ExpectRefusedWhole(f, f.handler->Predict(Request({"C", "CC", "CCC", "CCCC", "CCCCC"})),
                     core::StatusCode::kInvalidArgument, "PredictToxicity.smiles");
  codec::PredictToxicity panel = Request({"CCO"});
  panel.panel = "toxcats";
  auto unknown_panel = f.handler->Predict(panel);
  ExpectRefusedWhole(f, unknown_panel, core::StatusCode::kInvalidArgument, "PredictToxicity.panel");
  EXPECT_NE(unknown_panel.status().message().find("toxcats"), std::string::npos);
  codec::PredictToxicity task = Request({"CCO"});
  task.tasks = {"sr_p53", "SR-P53x"};
  auto unknown_task = f.handler->Predict(task);
  ExpectRefusedWhole(f, unknown_task, core::StatusCode::kInvalidArgument,
                     "PredictToxicity.tasks[1]");
  EXPECT_NE(unknown_task.status().message().find("SR-P53x"), std::string::npos);
  for (double c : {0.0, 1.0, -0.5, 2.0, std::nan("")}) {
    codec::PredictToxicity conf = Request({"CCO"});
    conf.confidence = c;
    ExpectRefusedWhole(f, f.handler->Predict(conf), core::StatusCode::kInvalidArgument,
                       "PredictToxicity.confidence");
  }
}

TEST(ToxHandlerTest, BadStructuresAreRefusedAloneAndCounted) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  std::string huge;
  for (int i = 0; i < 10000; ++i) huge += "C";
  auto r = f.handler->Predict(Request({"", "not a molecule", "CCO", huge, "   ", "C1CC"}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results.size(), 6u);
  for (std::size_t i : {0u, 1u, 3u, 4u, 5u}) {
    const codec::StructurePrediction& s = r->results[i];
    EXPECT_EQ(s.error_code, "invalid_argument") << i;
    EXPECT_EQ(s.error_where, "smiles[" + std::to_string(i) + "]");
    EXPECT_TRUE(s.tasks.empty());
  }
  EXPECT_NE(r->results[0].error.find("empty"), std::string::npos);
  EXPECT_NE(r->results[3].error.find("more than 200 heavy atoms"), std::string::npos)
      << r->results[3].error;
  EXPECT_TRUE(r->results[2].error_code.empty());
  EXPECT_EQ(r->results[2].tasks.size(), 3u);
  EXPECT_EQ(f.Count("tox21", "refused"), 5);
  EXPECT_EQ(f.Count("tox21", "unassessed"), 1);  // no calibration stored
}

// Requests while another thread keeps publishing versions: every answer's
// probabilities are those of the one version its provenance names.
TEST(ToxHandlerTest, RequestsDuringSwitchesAreAnsweredByOneVersion) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  const codec::StudySpec spec = TinySpec("tox21-demo");
  std::map<std::uint32_t, std::vector<float>> weights = {{0, f.weights}};
  for (std::uint32_t v = 1; v <= 5; ++v) weights[v] = Weights(spec, 100 + v);
  const std::vector<std::string> smiles = {"CCO", "c1ccccc1O", "CCN"};
  // Each version's own answers, computed one at a time on a fixed snapshot.
  std::map<std::uint32_t, std::vector<double>> expected;
  for (const auto& [v, w] : weights) {
    auto snapshot =
        std::make_shared<serving::ServedModel>(*f.server->Current("tox21-demo").value());
    snapshot->version = v;
    snapshot->weights = w;
    auto b = serving::PredictCalibratedWith(snapshot, smiles, {}, 0.9, "PredictToxicity", 16, 1);
    ASSERT_TRUE(b.ok());
    for (const auto& s : b->results) {
      for (const auto& t : s.tasks) expected[v].push_back(t.probability);
    }
  }
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    for (std::uint32_t v = 1; v <= 5; ++v) {
      serving::testing::Publish(f.store, "tox21-demo", v - 1, weights[v]);
      EXPECT_TRUE(f.server->Refresh().ok());
    }
    done = true;
  });
  int answered = 0;
  while (!done || answered < 3) {
    auto r = f.handler->Predict(Request(smiles));
    ASSERT_TRUE(r.ok()) << r.status();
    const std::vector<double>& want = expected.at(r->model.model_version);
    std::size_t k = 0;
    for (const auto& s : r->results) {
      for (const auto& t : s.tasks) EXPECT_NEAR(t.probability, want[k++], 1e-7);
    }
    ++answered;
  }
  publisher.join();
  EXPECT_EQ(f.metrics.Read("fedrx_tox_model_version", {{"study", "tox21-demo"}}), 5);
  EXPECT_EQ(f.metrics.Read("fedrx_tox_model_switches_total", {{"study", "tox21-demo"}}), 5);
}

TEST(ToxOptionsTest, ParsesPanels) {
  auto p = ParsePanels(" tox21=tox21-demo , toxcast=toxcast-demo,", "tox.panels");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->size(), 2u);
  EXPECT_EQ(p->at("toxcast"), "toxcast-demo");
  for (const char* bad : {"", "tox21", "=x", "a=b,a=c", "tox21=bad id!"}) {
    auto r = ParsePanels(bad, "tox.panels");
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().where().find("tox.panels"), std::string::npos) << bad;
  }
}

TEST(ToxOptionsTest, ReadsConfigAndChecksTheDefaultPanel) {
  auto config =
      core::Config::Parse("tox.panels = toxcast=tc\ntox.max_structures = 10\n", "test", {});
  ASSERT_TRUE(config.ok());
  auto o = ToxOptionsFrom(*config);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->default_panel, "toxcast");  // tox21 is not a panel: the first one
  EXPECT_EQ(o->max_structures, 10u);
  auto too_many = core::Config::Parse("tox.max_structures = 100000\n", "test", {});
  EXPECT_FALSE(ToxOptionsFrom(*too_many).ok());

  Fixture f;
  ToxOptions wrong;
  wrong.panels = {{"tox21", "tox21-demo"}};
  wrong.default_panel = "toxcast";
  EXPECT_EQ(ToxHandler::Create(wrong, *f.server, f.metrics).status().where(), "tox.default_panel");
  ToxOptions unserved;
  unserved.panels = {{"tox21", "other-study"}};
  EXPECT_EQ(ToxHandler::Create(unserved, *f.server, f.metrics).status().where(), "tox.panels");
}

// Every(): first run at the first tick, then once per interval of the
// service's clock; never while draining.
TEST(RequestServiceEveryTest, RunsOnTicksOncePerInterval) {
  core::testing::FakeClock clock;
  core::testing::FakeNetwork network;
  core::Metrics metrics("svc");
  core::testing::FakeBus bus(network, core::BusOptions{"svc"}, metrics, clock);
  domain::RequestServiceOptions options;
  options.name = "svc";
  domain::RequestService service(options, bus, metrics, clock);
  int runs = 0;
  service.Every(std::chrono::milliseconds(2000), [&runs] { ++runs; });
  ASSERT_TRUE(service.Tick().ok());
  EXPECT_EQ(runs, 1);
  ASSERT_TRUE(service.Tick().ok());
  clock.Advance(std::chrono::milliseconds(1999));
  ASSERT_TRUE(service.Tick().ok());
  EXPECT_EQ(runs, 1);
  clock.Advance(std::chrono::milliseconds(1));
  ASSERT_TRUE(service.Tick().ok());
  EXPECT_EQ(runs, 2);
  clock.Advance(std::chrono::milliseconds(5000));
  ASSERT_TRUE(service.Tick().ok());
  EXPECT_EQ(runs, 3);  // one run per tick, however late
  service.BeginDrain();
  clock.Advance(std::chrono::milliseconds(5000));
  ASSERT_TRUE(service.Tick().ok());
  EXPECT_EQ(runs, 3);
}

}  // namespace
}  // namespace fedrx::tox
