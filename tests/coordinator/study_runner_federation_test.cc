// StudyRunner with the federation options of a study: a server optimiser
// steps the model from the aggregate and its state is stored with each
// model version (a restarted coordinator follows the same trajectory); norm
// bounding measures updates against the round's base model; differential
// privacy weighs sites equally, reports epsilon and ends the study before a
// round would exceed its budget.
#include <gtest/gtest.h>

#include <cmath>

#include "services/coordinator/robust_strategy.h"
#include "services/coordinator/study_runner.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

class Sites final : public SiteChannel {
 public:
  std::vector<std::string> AvailableSites(const std::string&) const override { return available; }
  core::Status SendToSite(const std::string&, codec::Message) override {
    return core::Status::Ok();
  }
  std::vector<std::string> available = {"site-a", "site-b", "site-c"};
};

codec::StudySpec Spec() {
  codec::StudySpec s;
  s.study_id = "s1";
  s.tasks = {"t0"};
  s.model = {4, {2}, 1, 0.0f};  // 13 parameters
  s.rounds = 3;
  s.min_sites = 3;
  s.local_epochs = 1;
  s.learning_rate = 0.01f;
  s.batch_size = 8;
  s.seed = 5;
  s.strategy = "fedavg";
  s.round_deadline_ms = 10000;
  s.evaluate_every = 0;  // rounds follow each other directly
  return s;
}

constexpr std::size_t kParams = 13;

// One study on its own store, driven round by round.
class Study {
 public:
  explicit Study(const codec::StudySpec& spec) {
    initial = ml::InitParameters(ml::NetSpecFromStudy(spec), spec.seed);
    EXPECT_TRUE(ValidateStudySpec(spec).ok()) << ValidateStudySpec(spec);
    EXPECT_TRUE(studies.Create(spec, initial, 0).ok());
    Restart();
  }

  // A new runner from what the store holds, as after a coordinator restart.
  void Restart() {
    auto record = studies.Load("s1");
    ASSERT_TRUE(record.ok());
    auto strategy = MakeStrategy(record->spec);
    ASSERT_TRUE(strategy.ok());
    runner = std::make_unique<StudyRunner>(*record, studies, sites, std::move(*strategy), clock,
                                           metrics);
  }

  // Runs the current round with site i sending updates[i] trained on samples[i].
  void Round(const std::vector<std::vector<float>>& updates,
             const std::vector<std::uint64_t>& samples = {1, 1, 1}) {
    ASSERT_TRUE(runner->Tick().ok());
    ASSERT_EQ(runner->phase(), StudyRunner::Phase::kTraining);
    const std::uint32_t round = runner->record().current_round;
    const std::uint32_t base = runner->record().model_version;
    const char* names[] = {"site-a", "site-b", "site-c"};
    for (std::size_t i = 0; i < updates.size(); ++i) {
      ASSERT_TRUE(runner->OnUpdateReady(names[i], {"s1", round, base, samples[i], {}}).ok());
      std::vector<codec::Tensor> t;
      t.push_back(codec::Tensor{"weights", codec::DType::kFloat32,
                                {static_cast<std::int64_t>(kParams)},
                                codec::Blob::FromFloats(std::vector<float>(updates[i]))});
      ASSERT_TRUE(runner
                      ->OnModelUpdate(names[i], {"s1", round, names[i], base, samples[i], {}}, t)
                      .ok());
    }
  }

  std::vector<float> Model(std::uint32_t version) {
    auto m = studies.LoadModel("s1", version);
    EXPECT_TRUE(m.ok());
    return m.ok() ? *m : std::vector<float>{};
  }

  std::vector<float> initial;
  core::testing::FakeStateStore store;
  StudyStore studies{store};
  Sites sites;
  core::testing::FakeClock clock;
  core::Metrics metrics{"coordinator"};
  std::unique_ptr<StudyRunner> runner;
};

std::vector<float> Plus(const std::vector<float>& w, float d) {
  std::vector<float> out = w;
  for (float& x : out) x += d;
  return out;
}

TEST(StudyRunnerFederationTest, FedAdamStepsTheModelFromTheAggregate) {
  codec::StudySpec spec = Spec();
  spec.server_optimizer = "fedadam";
  spec.server_learning_rate = 0.1f;
  Study study(spec);
  // The sites' mean is initial + 0.5: Delta = 0.5 everywhere, so
  // x = initial + 0.1 * 0.05 / (sqrt(0.00250099) + 0.001) = initial + 0.0980202.
  study.Round({Plus(study.initial, 0.3f), Plus(study.initial, 0.5f), Plus(study.initial, 0.7f)});
  const std::vector<float> model = study.Model(1);
  ASSERT_EQ(model.size(), kParams);
  for (std::size_t i = 0; i < kParams; ++i) EXPECT_NEAR(model[i] - study.initial[i], 0.0980202, 1e-5);
}

TEST(StudyRunnerFederationTest, ServerOptimizerStateIsStoredWithTheModelAndSurvivesARestart) {
  codec::StudySpec spec = Spec();
  spec.server_optimizer = "fedyogi";
  spec.server_learning_rate = 0.05f;
  Study steady(spec), restarted(spec);
  const auto updates = [](const std::vector<float>& base, float shift) {
    return std::vector<std::vector<float>>{Plus(base, shift), Plus(base, 2 * shift),
                                           Plus(base, 3 * shift)};
  };
  steady.Round(updates(steady.initial, 0.2f));
  restarted.Round(updates(restarted.initial, 0.2f));
  // The state sits with version 1 only.
  auto v1 = restarted.studies.LoadOptimizerState("s1", 1);
  auto v0 = restarted.studies.LoadOptimizerState("s1", 0);
  ASSERT_TRUE(v1.ok() && v0.ok());
  EXPECT_TRUE(v1->has_value());
  EXPECT_FALSE(v0->has_value());

  restarted.Restart();
  steady.Round(updates(steady.Model(1), -0.1f));
  restarted.Round(updates(restarted.Model(1), -0.1f));
  const std::vector<float> a = steady.Model(2), b = restarted.Model(2);
  EXPECT_EQ(a, b);  // bit for bit: the moments were restored, not restarted
  // And the moments mattered: a fresh optimiser from version 1 would differ.
  auto fresh = ServerOptimizer::FromStudy(spec);
  ASSERT_TRUE(fresh.ok());
  std::vector<float> agg = Plus(steady.Model(1), -0.2f);  // the round-2 mean
  ASSERT_TRUE(fresh->Step(steady.Model(1), agg).ok());
  EXPECT_NE(agg, a);
}

TEST(StudyRunnerFederationTest, NormBoundClipsAgainstTheRoundsBaseModel) {
  codec::StudySpec spec = Spec();
  spec.strategy = "norm_bound";
  spec.norm_bound = 1.0f;
  Study study(spec);
  // Two honest updates move every parameter by 0.1 (norm 0.1 sqrt(13) < 1);
  // the third moves every parameter by 100 and is scaled back to norm 1.
  study.Round({Plus(study.initial, 0.1f), Plus(study.initial, 0.1f), Plus(study.initial, 100.0f)});
  const std::vector<float> model = study.Model(1);
  const double clipped = 1.0 / std::sqrt(static_cast<double>(kParams));
  for (std::size_t i = 0; i < kParams; ++i) {
    EXPECT_NEAR(model[i] - study.initial[i], (0.1 + 0.1 + clipped) / 3, 1e-5);
  }
}

TEST(StudyRunnerFederationTest, MedianStrategyFromTheSpecResistsAnOutlier) {
  codec::StudySpec spec = Spec();
  spec.strategy = "median";
  Study study(spec);
  study.Round({Plus(study.initial, 0.1f), Plus(study.initial, 0.2f), Plus(study.initial, 1e4f)});
  const std::vector<float> model = study.Model(1);
  for (std::size_t i = 0; i < kParams; ++i) EXPECT_NEAR(model[i] - study.initial[i], 0.2, 1e-5);
}

TEST(StudyRunnerFederationTest, PrivacyBudgetEndsTheStudyBeforeItIsExceeded) {
  codec::StudySpec spec = Spec();
  spec.rounds = 10;
  spec.dp_clip_norm = 1.0f;
  spec.dp_noise_multiplier = 2.0f;
  spec.dp_delta = 1e-5;
  auto accountant = MakeAccountant(spec);
  ASSERT_TRUE(accountant.ok() && accountant->has_value());
  // A budget between two and three rounds' epsilon.
  const double eps2 = (*accountant)->EpsilonAfter(2), eps3 = (*accountant)->EpsilonAfter(3);
  spec.dp_epsilon_budget = (eps2 + eps3) / 2;
  Study study(spec);

  // Sample counts are ignored with DP: the unweighted mean.
  study.Round({Plus(study.initial, 0.1f), Plus(study.initial, 0.2f), Plus(study.initial, 0.6f)},
              {1, 1000, 5});
  const std::vector<float> model = study.Model(1);
  for (std::size_t i = 0; i < kParams; ++i) EXPECT_NEAR(model[i] - study.initial[i], 0.3, 1e-5);
  ASSERT_TRUE(study.runner->EpsilonSpent().has_value());
  EXPECT_NEAR(*study.runner->EpsilonSpent(), (*accountant)->EpsilonAfter(1), 1e-9);
  auto m1 = study.studies.LoadRoundMetrics("s1", 1);
  ASSERT_TRUE(m1.ok());
  EXPECT_DOUBLE_EQ(m1->at("privacy_epsilon"), (*accountant)->EpsilonAfter(1));

  study.Round({study.Model(1), study.Model(1), study.Model(1)});
  EXPECT_EQ(study.runner->record().model_version, 2u);
  // Round 3 would exceed the budget: the study ends, completed at version 2.
  ASSERT_TRUE(study.runner->Tick().ok());
  EXPECT_EQ(study.runner->phase(), StudyRunner::Phase::kDone);
  EXPECT_EQ(study.runner->record().state, codec::StudyState::kCompleted);
  EXPECT_NE(study.runner->record().detail.find("privacy budget"), std::string::npos);
  EXPECT_NEAR(study.runner->EpsilonSpent().value_or(-1), eps2, 1e-9);
  auto stored = study.studies.Load("s1");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, codec::StudyState::kCompleted);
  EXPECT_EQ(stored->current_round, 2u);
  // A restarted coordinator leaves the ended study alone.
  study.Restart();
  ASSERT_TRUE(study.runner->Tick().ok());
  EXPECT_EQ(study.runner->phase(), StudyRunner::Phase::kDone);
}

TEST(StudyRunnerFederationTest, ValidationChecksTheFederationOptions) {
  const auto field = [](codec::StudySpec s) {
    core::Status st = ValidateStudySpec(s);
    EXPECT_FALSE(st.ok());
    return st.where();
  };
  codec::StudySpec s = Spec();
  ASSERT_TRUE(ValidateStudySpec(s).ok());
  {
    auto k = s;
    k.strategy = "krum";
    k.krum_byzantine = 1;  // needs min_sites >= 5
    EXPECT_EQ(field(k), "StudySpec.min_sites");
    k.min_sites = 5;
    EXPECT_TRUE(ValidateStudySpec(k).ok());
  }
  {
    auto o = s;
    o.server_optimizer = "lamb";
    EXPECT_EQ(field(o), "StudySpec.server_optimizer");
    o.server_optimizer = "fedadam";
    o.server_tau = 0;
    EXPECT_EQ(field(o), "StudySpec.server_tau");
  }
  {
    auto p = s;
    p.proximal_mu = -1;
    EXPECT_EQ(field(p), "StudySpec.proximal_mu");
  }
  {
    auto d = s;
    d.dp_noise_multiplier = 1;  // noise without a clip norm
    EXPECT_EQ(field(d), "StudySpec.dp_clip_norm");
    d.dp_clip_norm = 1;
    d.dp_delta = 0;
    EXPECT_EQ(field(d), "StudySpec.dp_delta");
    d.dp_delta = 1e-5;
    d.dp_epsilon_budget = 0.01;  // below one round's epsilon
    EXPECT_EQ(field(d), "StudySpec.dp_epsilon_budget");
    d.dp_epsilon_budget = 50;
    EXPECT_TRUE(ValidateStudySpec(d).ok());
  }
  {
    auto a = s;
    a.secure_aggregation = true;  // in the round protocol, with fedavg or norm_bound
    EXPECT_TRUE(ValidateStudySpec(a).ok()) << ValidateStudySpec(a);
    a.strategy = "norm_bound";
    a.norm_bound = 1;
    EXPECT_TRUE(ValidateStudySpec(a).ok()) << ValidateStudySpec(a);
    for (const char* needs_each : {"median", "trimmed_mean", "krum", "multikrum"}) {
      a.strategy = needs_each;
      EXPECT_EQ(field(a), "StudySpec.strategy") << needs_each;
    }
    a.strategy = "fedavg";
    a.min_sites = 1;  // the protocol needs t >= 2
    EXPECT_EQ(field(a), "StudySpec.secagg_threshold");
    a.secagg_threshold = 2;
    EXPECT_TRUE(ValidateStudySpec(a).ok()) << ValidateStudySpec(a);
    a.sites = {"site-a"};
    EXPECT_EQ(field(a), "StudySpec.secagg_threshold");  // more than the sites named
    a.sites.clear();
    a.secure_aggregation = false;
    EXPECT_EQ(field(a), "StudySpec.secagg_threshold");
  }
}

}  // namespace
}  // namespace fedrx::coordinator
