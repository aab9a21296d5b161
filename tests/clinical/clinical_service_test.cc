// The clinical handler over an in-memory registry: the ClinTox calls with
// their calibration, the phase-transition success equal to AdjustForRisk
// with the likelihood ratio of the served calibration histogram, the
// side-effect profile's absence explained; each bad input refused with its
// field (the whole request) or alone (a structure), and the per-structure
// domain counters. Also HistogramOf and the options.
#include "services/clinical/clinical_service.h"

#include <gtest/gtest.h>

#include <cmath>

#include "services/clinical/base_rates.h"
#include "services/core/config.h"
#include "services/ml/domain.h"
#include "services/serving/calibrated.h"
#include "tests/serving/serving_test_util.h"

namespace fedrx::clinical {
namespace {

using core::testing::FakeStateStore;
using serving::testing::Weights;

codec::StudySpec ClinToxSpec(const std::string& id = "clintox-demo",
                             std::vector<std::string> tasks = {"CT_TOX", "FDA_APPROVED"}) {
  codec::StudySpec s = serving::testing::TinySpec(id);
  s.tasks = std::move(tasks);
  s.model.num_tasks = static_cast<std::uint32_t>(s.tasks.size());
  return s;
}

// A calibration whose CT_TOX histogram separates the classes: approved
// compounds score low, failed ones high (10 bins).
coordinator::VersionCalibration Calibration(const codec::StudySpec& spec,
                                            const std::vector<float>& weights,
                                            std::vector<std::uint64_t> domain) {
  const ml::NetSpec net = ml::NetSpecFromStudy(spec);
  ml::FingerprintOptions fp;
  fp.radius = 2;
  fp.bits = net.input_dim;
  ml::SparseRows x;
  x.dim = net.input_dim;
  for (const char* s : {"CCO", "CCCO", "CCN", "c1ccccc1O", "c1ccccc1N", "CC(=O)O"}) {
    x.AddRow(ml::PrepareMolecule(s, fp)->bits);
  }
  auto out = ml::PredictWithEmbedding(net, weights, x);
  EXPECT_TRUE(out.ok());
  coordinator::VersionCalibration c;
  c.version = 0;
  c.samples = 500;
  c.tasks = spec.tasks;
  c.histograms.resize(spec.tasks.size());
  c.histograms[0].neg = {30, 30, 25, 20, 15, 10, 5, 3, 1, 1};
  c.histograms[0].pos = {0, 1, 1, 2, 3, 5, 8, 10, 15, 20};
  c.histograms[1].neg = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  c.histograms[1].pos = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  c.embedding = *ml::MomentsOf(out->embedding, net.hidden.back());
  c.domain_histogram = std::move(domain);
  return c;
}

struct Fixture {
  FakeStateStore store;
  serving::ModelRegistry registry{store};
  core::Metrics metrics{"clinical"};
  std::unique_ptr<serving::ModelServer> server;
  std::unique_ptr<ClinicalHandler> handler;
  std::vector<float> weights = Weights(ClinToxSpec(), 3);

  explicit Fixture(ClinicalOptions options = {}, codec::StudySpec spec = ClinToxSpec()) {
    weights = Weights(spec, 3);
    EXPECT_TRUE(coordinator::StudyStore(store).Create(spec, weights, 0).ok());
    serving::ServingOptions serving;
    serving.studies = {options.study};
    if (!options.side_effect_study.empty()) serving.studies.push_back(options.side_effect_study);
    server = std::move(serving::ModelServer::Create(serving, registry, metrics)).value();
    auto created = ClinicalHandler::Create(options, *server, metrics);
    EXPECT_TRUE(created.ok()) << created.status();
    handler = std::move(created).value();
  }
  void Calibrate(std::vector<std::uint64_t> domain = std::vector<std::uint64_t>(10, 0)) {
    if (domain == std::vector<std::uint64_t>(10, 0)) domain[9] = 50;  // all far: in domain
    ASSERT_TRUE(coordinator::StudyStore(store)
                    .SaveCalibration("clintox-demo", Calibration(ClinToxSpec(), weights, domain))
                    .ok());
  }
  double Count(const std::string& domain) const {
    return metrics.Read("fedrx_clinical_structures_total", {{"domain", domain}});
  }
  double Total() const {
    return Count("in") + Count("out") + Count("unassessed") + Count("refused");
  }
};

codec::AssessClinical Request(std::vector<std::string> smiles, std::string area = "") {
  codec::AssessClinical r;
  r.smiles = std::move(smiles);
  r.therapeutic_area = std::move(area);
  return r;
}

void ExpectRefusedWhole(const Fixture& f, const core::Result<codec::ClinicalAssessment>& r,
                        core::StatusCode code, const std::string& where) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status();
  EXPECT_EQ(r.status().where(), where) << r.status();
  EXPECT_EQ(f.Total(), 0) << "a request refused whole counts no structure";
}

TEST(ClinicalHandlerTest, BeforeAnyModelIsLoadedUnavailableNamingTheStudy) {
  Fixture f;
  auto r = f.handler->Assess(Request({"CCO"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("clintox-demo"), std::string::npos) << r.status();
  EXPECT_EQ(f.Total(), 0);
}

// The success of each structure is AdjustForRisk on the all-indications base
// rates, at its CT_TOX probability, through the LR estimated from the served
// CT_TOX calibration histogram: the same numbers, transition by transition.
TEST(ClinicalHandlerTest, SuccessEqualsAdjustForRiskWithTheCalibrationLikelihoodRatio) {
  Fixture f;
  f.Calibrate();
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = f.handler->Assess(Request({"CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model.study_id, "clintox-demo");
  EXPECT_EQ(r->model.calibration_samples, 500u);
  ASSERT_EQ(r->clinical.size(), 3u);
  ASSERT_EQ(r->success.size(), 3u);

  const coordinator::VersionCalibration c = Calibration(ClinToxSpec(), f.weights, {1});
  HistogramLrOptions options;  // the service's default: 5 groups
  auto lr = EstimateLikelihoodRatioFromHistogram(c.histograms[0], options);
  ASSERT_TRUE(lr.ok());
  const BaseRates base = *LookupBaseRates("all_indications");
  for (std::size_t i = 0; i < 3; ++i) {
    const codec::StructurePrediction& s = r->clinical[i];
    ASSERT_TRUE(s.error_code.empty()) << s.error;
    ASSERT_EQ(s.tasks.size(), 2u);
    EXPECT_EQ(s.tasks[0].task, "CT_TOX");
    EXPECT_EQ(s.tasks[1].task, "FDA_APPROVED");
    EXPECT_TRUE(s.tasks[0].calibrated);
    auto expected = AdjustForRisk(base, *lr, s.tasks[0].probability);
    ASSERT_TRUE(expected.ok());
    const codec::ClinicalSuccess& got = r->success[i];
    EXPECT_EQ(got.therapeutic_area, "all_indications");
    EXPECT_DOUBLE_EQ(got.risk, s.tasks[0].probability);
    EXPECT_DOUBLE_EQ(got.log_likelihood_ratio, expected->log_lr);
    ASSERT_EQ(got.transitions.size(), 4u);
    for (int k = 0; k < kTransitionCount; ++k) {
      EXPECT_EQ(got.transitions[k].transition, TransitionName(Transition(k)));
      EXPECT_DOUBLE_EQ(got.transitions[k].base_rate, expected->base[k]);
      EXPECT_DOUBLE_EQ(got.transitions[k].adjusted, expected->adjusted[k]);
      EXPECT_DOUBLE_EQ(got.transitions[k].weight, expected->weight[k]);
    }
    EXPECT_DOUBLE_EQ(got.base_likelihood_of_approval, expected->base_loa);
    EXPECT_DOUBLE_EQ(got.adjusted_likelihood_of_approval, expected->adjusted_loa);
    EXPECT_EQ(got.source, base.source);
  }
  // The calibration separates the classes: the evidence is not neutral.
  EXPECT_NE(r->success[0].log_likelihood_ratio, 0.0);
  // Every base figure is cited in the working too.
  std::size_t cited = 0;
  for (const codec::WorkStep& step : r->working.steps) {
    if (step.label.rfind("base rate ", 0) == 0) {
      ++cited;
      EXPECT_EQ(step.reference, base.source);
    }
  }
  EXPECT_EQ(cited, 4u);
  EXPECT_NE(r->working.method.find("2011-2020"), std::string::npos);
  EXPECT_EQ(r->side_effects_unavailable, kNoSideEffectStudy);
  EXPECT_TRUE(r->side_effects.empty());
  EXPECT_EQ(f.Count("in"), 3);
}

// An area with only a confirmed LOA: no transitions are invented; the LOA is
// adjusted as a whole by the same log LR.
TEST(ClinicalHandlerTest, AreaWithOnlyAnLoaAdjustsTheLoaAsAWhole) {
  Fixture f;
  f.Calibrate();
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = f.handler->Assess(Request({"CCO"}, "Oncology"));
  ASSERT_TRUE(r.ok()) << r.status();
  const codec::ClinicalSuccess& s = r->success[0];
  EXPECT_EQ(s.therapeutic_area, "oncology");
  EXPECT_TRUE(s.transitions.empty());
  EXPECT_DOUBLE_EQ(s.base_likelihood_of_approval, 0.053);
  EXPECT_NEAR(s.adjusted_likelihood_of_approval, Sigmoid(Logit(0.053) + s.log_likelihood_ratio),
              1e-15);
}

// Without a calibration: the base rates unadjusted (log LR 0), the domain
// unassessed, and the working says why.
TEST(ClinicalHandlerTest, UncalibratedVersionReturnsTheBaseRates) {
  Fixture f;
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = f.handler->Assess(Request({"CCO"}));
  ASSERT_TRUE(r.ok()) << r.status();
  const codec::ClinicalSuccess& s = r->success[0];
  EXPECT_DOUBLE_EQ(s.log_likelihood_ratio, 0.0);
  for (const codec::PhaseTransition& t : s.transitions) EXPECT_DOUBLE_EQ(t.adjusted, t.base_rate);
  EXPECT_DOUBLE_EQ(s.adjusted_likelihood_of_approval, s.base_likelihood_of_approval);
  bool noted = false;
  for (const std::string& n : r->working.notes) noted |= n.find("unadjusted") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(f.Count("unassessed"), 1);
}

TEST(ClinicalHandlerTest, OutOfDomainStructuresAreCounted) {
  Fixture f;
  std::vector<std::uint64_t> domain(1000, 0);
  domain[0] = 400;  // every validation row at the training mean
  f.Calibrate(domain);
  ASSERT_TRUE(f.server->Refresh().ok());
  auto r = f.handler->Assess(Request({"CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1"}));
  ASSERT_TRUE(r.ok()) << r.status();
  for (const auto& s : r->clinical) EXPECT_FALSE(s.domain.in_domain);
  EXPECT_EQ(f.Count("out"), 2);
  EXPECT_EQ(f.Count("in"), 0);
}

TEST(ClinicalHandlerTest, BadRequestsAreRefusedWholeNamingTheField) {
  ClinicalOptions options;
  options.max_structures = 3;
  Fixture f(options);
  ASSERT_TRUE(f.server->Refresh().ok());
  auto area = f.handler->Assess(Request({"CCO"}, "dermatology"));
  ExpectRefusedWhole(f, area, core::StatusCode::kInvalidArgument,
                     "AssessClinical.therapeutic_area");
  EXPECT_NE(area.status().message().find("dermatology"), std::string::npos);
  for (const std::string& known : KnownAreas()) {
    EXPECT_NE(area.status().message().find(known), std::string::npos) << known;
  }
  ExpectRefusedWhole(f, f.handler->Assess(Request({})), core::StatusCode::kInvalidArgument,
                     "AssessClinical.smiles");
  ExpectRefusedWhole(f, f.handler->Assess(Request({"C", "CC", "CCC", "CCCC"})),
                     core::StatusCode::kInvalidArgument, "AssessClinical.smiles");
  for (double c : {0.0, 1.0, -0.1, 1.5, std::nan("")}) {
    codec::AssessClinical r = Request({"CCO"});
    r.confidence = c;
    ExpectRefusedWhole(f, f.handler->Assess(r), core::StatusCode::kInvalidArgument,
                       "AssessClinical.confidence");
  }
}

TEST(ClinicalHandlerTest, BadStructuresAreRefusedAloneAndCounted) {
  Fixture f;
  f.Calibrate();
  ASSERT_TRUE(f.server->Refresh().ok());
  std::string huge;
  for (int i = 0; i < 10000; ++i) huge += "C";
  auto r = f.handler->Assess(Request({"", "not a molecule", "CCO", huge}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->clinical.size(), 4u);
  ASSERT_EQ(r->success.size(), 4u);
  for (std::size_t i : {0u, 1u, 3u}) {
    EXPECT_EQ(r->clinical[i].error_code, "invalid_argument") << i;
    EXPECT_EQ(r->clinical[i].error_where, "smiles[" + std::to_string(i) + "]");
    EXPECT_TRUE(r->success[i].transitions.empty());
    EXPECT_EQ(r->success[i].adjusted_likelihood_of_approval, 0);
  }
  EXPECT_NE(r->clinical[3].error.find("heavy atoms"), std::string::npos);
  EXPECT_EQ(r->success[2].transitions.size(), 4u);
  EXPECT_EQ(f.Count("refused"), 3);
  EXPECT_EQ(f.Count("in"), 1);
}

// A study without the ClinTox tasks cannot answer: FailedPrecondition naming the key.
TEST(ClinicalHandlerTest, StudyWithoutClinToxTasksIsAFailedPrecondition) {
  Fixture f(ClinicalOptions{}, ClinToxSpec("clintox-demo", {"CT_TOX", "NR-AR"}));
  ASSERT_TRUE(f.server->Refresh().ok());
  ExpectRefusedWhole(f, f.handler->Assess(Request({"CCO"})), core::StatusCode::kFailedPrecondition,
                     "clinical.study");
}

// A configured side-effect study with no model: the ClinTox answer stands,
// and side_effects_unavailable names the study.
TEST(ClinicalHandlerTest, SideEffectStudyWithoutModelIsExplained) {
  ClinicalOptions options;
  options.side_effect_study = "sider-private";
  Fixture f(options);
  ASSERT_TRUE(f.server->Refresh().ok() || true);  // the side-effect study does not exist
  auto r = f.handler->Assess(Request({"CCO"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->side_effects.empty());
  EXPECT_NE(r->side_effects_unavailable.find("sider-private"), std::string::npos)
      << r->side_effects_unavailable;
}

// HistogramOf gives back the histogram the sites summed, bin by bin.
TEST(ClinicalHistogramTest, RebuildsTheCalibrationHistogram) {
  ml::ScoreHistogram h;
  h.neg = {3, 0, 7, 1, 0, 2};
  h.pos = {0, 4, 0, 0, 5, 1};
  auto m = serving::MondrianCalibration::Create(h, "h");
  ASSERT_TRUE(m.ok()) << m.status();
  const ml::ScoreHistogram back = HistogramOf(*m);
  EXPECT_EQ(back.neg, h.neg);
  EXPECT_EQ(back.pos, h.pos);
}

TEST(ClinicalOptionsTest, ReadsConfigAndRefusesBadValues) {
  auto config = core::Config::Parse(
      "clinical.study = ct-study\nclinical.side_effect_study = se-study\n"
      "clinical.max_structures = 12\nclinical.lr_bins = 4\n",
      "test", {});
  ASSERT_TRUE(config.ok()) << config.status();
  auto o = ClinicalOptionsFrom(*config);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->study, "ct-study");
  EXPECT_EQ(o->side_effect_study, "se-study");
  EXPECT_EQ(o->max_structures, 12u);
  EXPECT_EQ(o->lr_bins, 4);
  auto defaults = ClinicalOptionsFrom(*core::Config::Parse("", "test", {}));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->study, "clintox-demo");
  EXPECT_TRUE(defaults->side_effect_study.empty());
  auto bad = ClinicalOptionsFrom(*core::Config::Parse("clinical.lr_bins = 1\n", "test", {}));
  ASSERT_FALSE(bad.ok());
  auto bad_id = ClinicalOptionsFrom(*core::Config::Parse("clinical.study = a b\n", "test", {}));
  ASSERT_FALSE(bad_id.ok());
  EXPECT_EQ(bad_id.status().where(), "clinical.study");
}

}  // namespace
}  // namespace fedrx::clinical
