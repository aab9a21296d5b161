// StudyRunner over an in-memory store and site channel: a round sends the
// model to the available sites, grants uploads in site order, averages the
// updates by sample count, stores the new version and evaluates it; late,
// broken and stray updates are refused with a reason and leave the round
// intact; a round below the minimum fails cleanly; a restarted runner resumes
// from the store and reaches the same model.
#include "services/coordinator/study_runner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "services/core/bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

using core::StatusCode;
using std::chrono::milliseconds;

class RecordingSites final : public SiteChannel {
 public:
  std::vector<std::string> AvailableSites(const std::string&) const override { return available; }
  core::Status SendToSite(const std::string& site, codec::Message message) override {
    if (unreachable.count(site) != 0) return core::Unavailable("gone", site);
    sent[site].push_back(std::move(message));
    return core::Status::Ok();
  }
  // Bodies of type T sent to `site`, oldest first.
  template <typename T>
  std::vector<const codec::Message*> Of(const std::string& site) const {
    std::vector<const codec::Message*> out;
    auto it = sent.find(site);
    if (it == sent.end()) return out;
    for (const auto& m : it->second) {
      if (std::holds_alternative<T>(m.body)) out.push_back(&m);
    }
    return out;
  }

  std::vector<std::string> available;
  std::set<std::string> unreachable;
  std::map<std::string, std::vector<codec::Message>> sent;
};

codec::StudySpec SmallSpec() {
  codec::StudySpec s;
  s.study_id = "s1";
  s.tasks = {"t0"};
  s.model = {4, {2}, 1, 0.0f};  // 4*2 + 2 + 2*1 + 1 = 13 parameters
  s.rounds = 2;
  s.min_sites = 2;
  s.local_epochs = 1;
  s.learning_rate = 0.01f;
  s.batch_size = 8;
  s.seed = 5;
  s.strategy = "fedavg";
  s.round_deadline_ms = 10000;
  return s;
}

constexpr std::size_t kParams = 13;

std::vector<codec::Tensor> Weights(std::vector<float> w) {
  std::vector<codec::Tensor> t;
  const auto n = static_cast<std::int64_t>(w.size());
  t.push_back(
      codec::Tensor{"weights", codec::DType::kFloat32, {n}, codec::Blob::FromFloats(std::move(w))});
  return t;
}

// The embedding moments a calibrating study's stage-0 answer carries (the
// trunk's last layer has 2 units): here of no training rows, so the
// evaluation ends without its domain stage.
codec::Tensor NoMoments() {
  return codec::Tensor{"embedding_moments",
                       codec::DType::kFloat64,
                       {2, 2},
                       codec::Blob::CopyOf(std::vector<std::byte>(4 * sizeof(double)))};
}

class StudyRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = SmallSpec();
    initial_ = ml::InitParameters(ml::NetSpecFromStudy(spec_), spec_.seed);
    ASSERT_EQ(initial_.size(), kParams);
    ASSERT_TRUE(studies_.Create(spec_, initial_, clock_.WallMillis()).ok());
    runner_ = MakeRunner();
    sites_.available = {"site-c", "site-a", "site-b"};
  }

  std::unique_ptr<StudyRunner> MakeRunner() {
    auto record = studies_.Load("s1");
    EXPECT_TRUE(record.ok());
    RunnerTimings timings;
    timings.histogram_bins = 10;
    timings.upload_timeout = milliseconds(2000);
    return std::make_unique<StudyRunner>(*record, studies_, sites_, std::make_unique<FedAvg>(),
                                         clock_, metrics_, timings);
  }

  core::Status Ready(StudyRunner& r, const std::string& site, std::uint64_t samples,
                     std::uint32_t round = 1, std::uint32_t base = 0) {
    return r.OnUpdateReady(site, codec::UpdateReady{"s1", round, base, samples, {}});
  }

  core::Status Upload(StudyRunner& r, const std::string& site, std::vector<float> w,
                      std::uint64_t samples, std::uint32_t round = 1, std::uint32_t base = 0) {
    auto t = Weights(std::move(w));
    return r.OnModelUpdate(site, codec::ModelUpdate{"s1", round, site, base, samples, {}}, t);
  }

  std::size_t Grants(const std::string& site) { return sites_.Of<codec::UploadGrant>(site).size(); }

  double Rejected(const std::string& reason) {
    return metrics_.Read("fedrx_coordinator_updates_rejected_total", {{"reason", reason}});
  }

  codec::StudySpec spec_;
  std::vector<float> initial_;
  core::testing::FakeStateStore store_;
  StudyStore studies_{store_};
  RecordingSites sites_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"coordinator"};
  std::unique_ptr<StudyRunner> runner_;
};

TEST_F(StudyRunnerTest, RoundSendsTheModelToEveryAvailableSite) {
  ASSERT_TRUE(runner_->Tick().ok());
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kTraining);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    auto tasks = sites_.Of<codec::TrainTask>(site);
    ASSERT_EQ(tasks.size(), 1u) << site;
    const auto& task = std::get<codec::TrainTask>(tasks[0]->body);
    EXPECT_EQ(task.round, 1u);
    EXPECT_EQ(task.model_version, 0u);
    EXPECT_EQ(task.seed, SiteRoundSeed(5, 1, site));
    ASSERT_EQ(tasks[0]->tensors.size(), 1u);
    auto w = tasks[0]->tensors[0].data.As<float>();
    ASSERT_EQ(w.size(), kParams);
    EXPECT_EQ(w[3], initial_[3]);
  }
  auto round = studies_.LoadRound("s1", 1);
  ASSERT_TRUE(round.ok() && round->has_value());
  EXPECT_EQ((*round)->state, codec::RoundState::kTraining);
  EXPECT_EQ((*round)->selected, (std::vector<std::string>{"site-a", "site-b", "site-c"}));
}

TEST_F(StudyRunnerTest, WaitsWhileFewerThanMinimumSitesAreAvailable) {
  sites_.available = {"site-a"};
  ASSERT_TRUE(runner_->Tick().ok());
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kWaitingForSites);
  EXPECT_TRUE(sites_.sent.empty());
}

TEST(StudyRunnerSelectionTest, NamedSitesGetAMomentToAppearBeforeTheRoundStartsWithoutThem) {
  core::testing::FakeStateStore store;
  StudyStore studies(store);
  RecordingSites sites;
  core::testing::FakeClock clock;
  core::Metrics metrics("coordinator");
  codec::StudySpec spec = SmallSpec();
  spec.sites = {"site-a", "site-b", "site-c"};
  ASSERT_TRUE(studies.Create(spec, ml::InitParameters(ml::NetSpecFromStudy(spec), 1), 0).ok());
  RunnerTimings timings;
  timings.selection_wait = milliseconds(3000);
  StudyRunner runner(*studies.Load("s1"), studies, sites, std::make_unique<FedAvg>(), clock,
                     metrics, timings);
  sites.available = {"site-a", "site-b"};  // site-c not heard from yet
  ASSERT_TRUE(runner.Tick().ok());
  clock.Advance(milliseconds(2999));
  ASSERT_TRUE(runner.Tick().ok());
  EXPECT_EQ(runner.phase(), StudyRunner::Phase::kWaitingForSites);
  clock.Advance(milliseconds(1));
  ASSERT_TRUE(runner.Tick().ok());
  EXPECT_EQ(runner.phase(), StudyRunner::Phase::kTraining);
  EXPECT_TRUE(sites.Of<codec::TrainTask>("site-c").empty());
  EXPECT_EQ(sites.Of<codec::TrainTask>("site-a").size(), 1u);
}

TEST(StudyRunnerSelectionTest, AllNamedSitesPresentStartAtOnce) {
  core::testing::FakeStateStore store;
  StudyStore studies(store);
  RecordingSites sites;
  core::testing::FakeClock clock;
  core::Metrics metrics("coordinator");
  codec::StudySpec spec = SmallSpec();
  spec.sites = {"site-a", "site-b"};
  ASSERT_TRUE(studies.Create(spec, ml::InitParameters(ml::NetSpecFromStudy(spec), 1), 0).ok());
  StudyRunner runner(*studies.Load("s1"), studies, sites, std::make_unique<FedAvg>(), clock,
                     metrics);
  sites.available = {"site-a", "site-b"};
  ASSERT_TRUE(runner.Tick().ok());
  EXPECT_EQ(runner.phase(), StudyRunner::Phase::kTraining);
}

TEST_F(StudyRunnerTest, UploadsAreGrantedInSiteOrderAndAveragedBySamples) {
  ASSERT_TRUE(runner_->Tick().ok());
  ASSERT_TRUE(Ready(*runner_, "site-b", 300).ok());
  EXPECT_EQ(Grants("site-b"), 0u);  // site-a comes first and is not ready
  ASSERT_TRUE(Ready(*runner_, "site-a", 100).ok());
  EXPECT_EQ(Grants("site-a"), 1u);
  EXPECT_EQ(Grants("site-b"), 0u);  // one upload at a time
  ASSERT_TRUE(Upload(*runner_, "site-a", std::vector<float>(kParams, 1.0f), 100).ok());
  EXPECT_EQ(Grants("site-b"), 1u);
  ASSERT_TRUE(Upload(*runner_, "site-b", std::vector<float>(kParams, 2.0f), 300).ok());
  ASSERT_TRUE(Ready(*runner_, "site-c", 600).ok());
  ASSERT_TRUE(Upload(*runner_, "site-c", std::vector<float>(kParams, 4.0f), 600).ok());

  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  EXPECT_EQ(runner_->record().model_version, 1u);
  auto model = studies_.LoadModel("s1", 1);
  ASSERT_TRUE(model.ok());
  // (100*1 + 300*2 + 600*4) / 1000 = 3.1
  for (float v : *model) EXPECT_NEAR(v, 3.1f, 1e-6f);
  auto round = studies_.LoadRound("s1", 1);
  EXPECT_EQ((*round)->samples, 1000u);
  EXPECT_EQ((*round)->state, codec::RoundState::kEvaluating);
  EXPECT_EQ(metrics_.Read("fedrx_coordinator_updates_accepted_total"), 3);
}

TEST_F(StudyRunnerTest, EvaluationHistogramsBecomeRoundMetricsAndTheStudyMovesOn) {
  ASSERT_TRUE(runner_->Tick().ok());
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    ASSERT_TRUE(Ready(*runner_, site, 10).ok());
    ASSERT_TRUE(Upload(*runner_, site, std::vector<float>(kParams, 0.5f), 10).ok());
  }
  ASSERT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    auto evals = sites_.Of<codec::EvaluateTask>(site);
    ASSERT_EQ(evals.size(), 1u);
    EXPECT_EQ(std::get<codec::EvaluateTask>(evals[0]->body).model_version, 1u);
    EXPECT_EQ(std::get<codec::EvaluateTask>(evals[0]->body).split, "valid");
  }
  // Each site: negatives in bin 2, positives in bin 8 -> perfect separation.
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    std::vector<std::uint64_t> counts(1 * 2 * 10, 0);
    counts[2] = 5;       // task 0, class 0 (negatives), bin 2
    counts[10 + 8] = 3;  // task 0, class 1 (positives), bin 8
    auto* owner = new std::vector<std::uint64_t>(std::move(counts));
    std::vector<codec::Tensor> t;
    t.push_back(codec::Tensor{
        "histograms",
        codec::DType::kUInt64,
        {1, 2, 10},
        codec::Blob(owner, reinterpret_cast<const std::byte*>(owner->data()), owner->size() * 8,
                    [](void* p) { delete static_cast<std::vector<std::uint64_t>*>(p); })});
    t.push_back(NoMoments());
    ASSERT_TRUE(
        runner_->OnEvaluationResult(site, codec::EvaluationResult{"s1", 1, 1, "valid", 8}, t).ok());
  }
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kWaitingForSites);
  EXPECT_EQ(runner_->record().current_round, 2u);
  auto metrics = studies_.LoadRoundMetrics("s1", 1);
  ASSERT_TRUE(metrics.ok());
  EXPECT_DOUBLE_EQ(metrics->at("valid_mean_roc_auc"), 1.0);
  EXPECT_DOUBLE_EQ(metrics->at("valid_samples"), 24.0);
  EXPECT_EQ((*studies_.LoadRound("s1", 1))->state, codec::RoundState::kClosed);
  auto info = runner_->Info();
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->rounds.size(), 1u);
  EXPECT_EQ(info->rounds[0].updates_received, 3u);
}

TEST_F(StudyRunnerTest, SiteMissingTheDeadlineIsDroppedAndTheRoundClosesWithTheRest) {
  ASSERT_TRUE(runner_->Tick().ok());
  ASSERT_TRUE(Ready(*runner_, "site-a", 10).ok());
  ASSERT_TRUE(Upload(*runner_, "site-a", std::vector<float>(kParams, 1.0f), 10).ok());
  ASSERT_TRUE(Ready(*runner_, "site-c", 30).ok());  // site-b never answers
  EXPECT_EQ(Grants("site-c"), 0u);
  clock_.Advance(milliseconds(10001));
  ASSERT_TRUE(runner_->Tick().ok());
  EXPECT_EQ(Grants("site-c"), 1u);
  ASSERT_TRUE(Upload(*runner_, "site-c", std::vector<float>(kParams, 3.0f), 30).ok());
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  auto model = studies_.LoadModel("s1", 1);
  for (float v : *model) EXPECT_NEAR(v, 2.5f, 1e-6f);
  EXPECT_EQ(metrics_.Read("fedrx_coordinator_dropouts_total", {{"stage", "training"}}), 1);
  EXPECT_EQ(Rejected("late"), 0);
  EXPECT_EQ(Ready(*runner_, "site-b", 10).code(), StatusCode::kFailedPrecondition);
}

TEST_F(StudyRunnerTest, ModelThatCannotBeStoredAtCloseIsStoredOnceTheStoreIsBack) {
  ASSERT_TRUE(runner_->Tick().ok());
  ASSERT_TRUE(Ready(*runner_, "site-a", 10).ok());
  ASSERT_TRUE(Upload(*runner_, "site-a", std::vector<float>(kParams, 1.0f), 10).ok());
  ASSERT_TRUE(Ready(*runner_, "site-b", 30).ok());
  ASSERT_TRUE(Upload(*runner_, "site-b", std::vector<float>(kParams, 3.0f), 30).ok());
  store_.SetDown(true);  // site-c never answers; the round closes at the deadline
  clock_.Advance(milliseconds(10001));
  EXPECT_EQ(runner_->Tick().code(), StatusCode::kUnavailable);
  EXPECT_EQ(runner_->Tick().code(), StatusCode::kUnavailable);  // retried, not lost
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kTraining);
  store_.SetDown(false);
  ASSERT_TRUE(runner_->Tick().ok());
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  EXPECT_EQ(runner_->record().model_version, 1u);
  auto model = studies_.LoadModel("s1", 1);
  ASSERT_TRUE(model.ok());
  ASSERT_EQ(model->size(), kParams);
  for (float v : *model) EXPECT_NEAR(v, 2.5f, 1e-6f);
}

TEST_F(StudyRunnerTest, RoundBelowMinimumFailsAndTheModelStays) {
  ASSERT_TRUE(runner_->Tick().ok());
  ASSERT_TRUE(Ready(*runner_, "site-a", 10).ok());
  ASSERT_TRUE(Upload(*runner_, "site-a", std::vector<float>(kParams, 1.0f), 10).ok());
  clock_.Advance(milliseconds(10001));
  ASSERT_TRUE(runner_->Tick().ok());
  EXPECT_EQ((*studies_.LoadRound("s1", 1))->state, codec::RoundState::kFailed);
  EXPECT_EQ(runner_->record().model_version, 0u);
  EXPECT_EQ(runner_->record().current_round, 2u);
  EXPECT_EQ(metrics_.Read("fedrx_coordinator_rounds_total", {{"outcome", "failed"}}), 1);
  // The next round starts from the unchanged initial model.
  ASSERT_TRUE(runner_->Tick().ok());
  auto tasks = sites_.Of<codec::TrainTask>("site-a");
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(std::get<codec::TrainTask>(tasks[1]->body).model_version, 0u);
}

TEST_F(StudyRunnerTest, WrongShapeAndNonFiniteUpdatesAreRefusedAndTheRoundGoesOn) {
  ASSERT_TRUE(runner_->Tick().ok());
  for (const char* site : {"site-a", "site-b", "site-c"})
    ASSERT_TRUE(Ready(*runner_, site, 10).ok());
  core::Status shape = Upload(*runner_, "site-a", std::vector<float>(kParams - 1, 1.0f), 10);
  EXPECT_EQ(shape.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(shape.where(), "tensor 0");
  EXPECT_EQ(Rejected("wrong_shape"), 1);
  std::vector<float> nan(kParams, 1.0f);
  nan[7] = std::numeric_limits<float>::quiet_NaN();
  core::Status finite = Upload(*runner_, "site-b", nan, 10);
  EXPECT_EQ(finite.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Rejected("not_finite"), 1);
  // site-c still gets its turn; one update is below min_sites=2, so after the
  // deadline the round fails rather than publishing a model from one site.
  EXPECT_EQ(Grants("site-c"), 1u);
  ASSERT_TRUE(Upload(*runner_, "site-c", std::vector<float>(kParams, 1.0f), 10).ok());
  EXPECT_EQ((*studies_.LoadRound("s1", 1))->state, codec::RoundState::kFailed);
  EXPECT_EQ(runner_->record().model_version, 0u);
}

TEST_F(StudyRunnerTest, StrayUpdatesAreRefusedWithTheirReason) {
  ASSERT_TRUE(runner_->Tick().ok());
  EXPECT_EQ(Upload(*runner_, "site-a", std::vector<float>(kParams, 1.0f), 10).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(Rejected("not_granted"), 1);
  EXPECT_EQ(Upload(*runner_, "site-x", std::vector<float>(kParams, 1.0f), 10).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Rejected("not_selected"), 1);
  EXPECT_EQ(Upload(*runner_, "site-a", std::vector<float>(kParams, 1.0f), 10, /*round=*/7).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(Rejected("stale_round"), 1);
  EXPECT_EQ(Ready(*runner_, "site-a", 10, 1, /*base=*/3).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Rejected("wrong_base"), 1);
  // None of it touched the round.
  ASSERT_TRUE(Ready(*runner_, "site-a", 10).ok());
  ASSERT_TRUE(Upload(*runner_, "site-a", std::vector<float>(kParams, 1.0f), 10).ok());
  EXPECT_EQ((*studies_.LoadRound("s1", 1))->contributed, std::vector<std::string>{"site-a"});
}

TEST_F(StudyRunnerTest, RestartedRunnerResumesTheRoundAndReachesTheSameModel) {
  auto update_of = [](const std::string& site, std::uint32_t round) {
    std::vector<float> w(kParams);
    for (std::size_t i = 0; i < kParams; ++i) {
      w[i] = 0.1f * static_cast<float>(i) + static_cast<float>(site.back() - 'a') * 0.37f +
             0.013f * static_cast<float>(round);
    }
    return w;
  };
  auto samples_of = [](const std::string& site) -> std::uint64_t {
    return 100 + 37 * static_cast<std::uint64_t>(site.back() - 'a');
  };
  // Feeds the granted site its update until the round leaves training.
  auto drive = [&](StudyRunner& r, std::uint32_t round, std::uint32_t base,
                   std::vector<std::string> ready_order, std::size_t stop_after = 99) {
    std::size_t uploads = 0;
    for (const auto& site : ready_order) {
      ASSERT_TRUE(Ready(r, site, samples_of(site), round, base).ok());
    }
    for (const char* site : {"site-a", "site-b", "site-c"}) {
      if (uploads == stop_after) return;
      ASSERT_TRUE(Upload(r, site, update_of(site, round), samples_of(site), round, base).ok());
      ++uploads;
    }
  };
  auto evaluate_all = [&](StudyRunner& r, std::uint32_t round, std::uint32_t version) {
    for (const char* site : {"site-a", "site-b", "site-c"}) {
      std::vector<codec::Tensor> none;
      std::vector<std::uint64_t> counts(20, 1);
      auto* owner = new std::vector<std::uint64_t>(std::move(counts));
      none.push_back(codec::Tensor{
          "histograms",
          codec::DType::kUInt64,
          {1, 2, 10},
          codec::Blob(owner, reinterpret_cast<const std::byte*>(owner->data()), 160,
                      [](void* p) { delete static_cast<std::vector<std::uint64_t>*>(p); })});
      none.push_back(NoMoments());
      ASSERT_TRUE(r.OnEvaluationResult(
                       site, codec::EvaluationResult{"s1", round, version, "valid", 20}, none)
                      .ok());
    }
  };

  // Uninterrupted run on a separate store.
  core::testing::FakeStateStore other_store;
  StudyStore other(other_store);
  ASSERT_TRUE(other.Create(spec_, initial_, 0).ok());
  {
    RecordingSites s;
    s.available = {"site-a", "site-b", "site-c"};
    RunnerTimings timings;
    timings.histogram_bins = 10;
    StudyRunner r(*other.Load("s1"), other, s, std::make_unique<FedAvg>(), clock_, metrics_,
                  timings);
    ASSERT_TRUE(r.Tick().ok());
    drive(r, 1, 0, {"site-a", "site-b", "site-c"});
    evaluate_all(r, 1, 1);
    ASSERT_TRUE(r.Tick().ok());
    drive(r, 2, 1, {"site-c", "site-a", "site-b"});
    evaluate_all(r, 2, 2);
    ASSERT_EQ(r.phase(), StudyRunner::Phase::kDone);
  }

  // Interrupted: round 1 completes; round 2 dies after one upload.
  ASSERT_TRUE(runner_->Tick().ok());
  drive(*runner_, 1, 0, {"site-b", "site-c", "site-a"});
  evaluate_all(*runner_, 1, 1);
  ASSERT_TRUE(runner_->Tick().ok());
  drive(*runner_, 2, 1, {"site-a", "site-b", "site-c"}, /*stop_after=*/1);
  runner_.reset();  // the coordinator dies

  auto resumed = MakeRunner();
  EXPECT_EQ(resumed->record().current_round, 2u);
  ASSERT_TRUE(resumed->Tick().ok());  // round 2 starts again from version 1
  EXPECT_EQ(resumed->phase(), StudyRunner::Phase::kTraining);
  drive(*resumed, 2, 1, {"site-b", "site-a", "site-c"});
  evaluate_all(*resumed, 2, 2);
  ASSERT_EQ(resumed->phase(), StudyRunner::Phase::kDone);

  auto a = other.LoadModel("s1", 2);
  auto b = studies_.LoadModel("s1", 2);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (std::size_t i = 0; i < a->size(); ++i) EXPECT_EQ((*a)[i], (*b)[i]) << i;  // bit-identical
  EXPECT_EQ(studies_.Load("s1")->state, codec::StudyState::kCompleted);
}

TEST_F(StudyRunnerTest, RestartDuringEvaluationRepeatsOnlyTheEvaluation) {
  ASSERT_TRUE(runner_->Tick().ok());
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    ASSERT_TRUE(Ready(*runner_, site, 10).ok());
    ASSERT_TRUE(Upload(*runner_, site, std::vector<float>(kParams, 1.0f), 10).ok());
  }
  runner_.reset();
  sites_.sent.clear();
  auto resumed = MakeRunner();
  ASSERT_TRUE(resumed->Tick().ok());
  EXPECT_EQ(resumed->phase(), StudyRunner::Phase::kEvaluating);
  EXPECT_EQ(resumed->record().model_version, 1u);
  EXPECT_TRUE(sites_.Of<codec::TrainTask>("site-a").empty());
  EXPECT_EQ(sites_.Of<codec::EvaluateTask>("site-a").size(), 1u);
}

TEST(StudySpecTest, InvalidSpecsNameTheirField) {
  codec::StudySpec s = SmallSpec();
  s.tasks = {"a", "b"};
  EXPECT_EQ(ValidateStudySpec(s).where(), "StudySpec.model.num_tasks");
  s = SmallSpec();
  s.learning_rate = -1;
  EXPECT_EQ(ValidateStudySpec(s).where(), "StudySpec.learning_rate");
  s = SmallSpec();
  s.strategy = "magic";
  EXPECT_EQ(ValidateStudySpec(s).where(), "StudySpec.strategy");
  s = SmallSpec();
  s.sites = {"a"};
  EXPECT_EQ(ValidateStudySpec(s).where(), "StudySpec.min_sites");
  s = SmallSpec();
  s.model.hidden = {};
  EXPECT_EQ(ValidateStudySpec(s).where(), "StudySpec.model");
  EXPECT_TRUE(ValidateStudySpec(SmallSpec()).ok());
}

TEST(FedAvgTest, WeightsBySampleCountAndRefusesWrongSizes) {
  FedAvg avg;
  avg.Begin(3);
  ASSERT_TRUE(avg.Accept(std::vector<float>{1, 2, 3}, 1).ok());
  ASSERT_TRUE(avg.Accept(std::vector<float>{3, 6, 9}, 3).ok());
  EXPECT_EQ(avg.Accept(std::vector<float>{1, 2}, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(avg.Accept(std::vector<float>{1, 2, 3}, 0).code(), StatusCode::kInvalidArgument);
  auto out = avg.Finish();
  ASSERT_TRUE(out.ok());
  EXPECT_FLOAT_EQ((*out)[0], 2.5f);
  EXPECT_FLOAT_EQ((*out)[1], 5.0f);
  EXPECT_FLOAT_EQ((*out)[2], 7.5f);
  EXPECT_EQ(avg.Finish().status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fedrx::coordinator
