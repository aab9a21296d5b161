// StudyRunner in a private-heads study: the global model is the trunk alone
// (its size, its initial values the trunk prefix of the full init), updates
// of any other size (a trunk with a head) are refused and never folded in,
// secure aggregation runs over the trunk's dimension, and federated
// evaluation reports per-task metrics for whatever tasks the sites name,
// merging a task that several sites hold.
#include <gtest/gtest.h>

#include <cmath>

#include "services/coordinator/study_runner.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

class RecordingSites final : public SiteChannel {
 public:
  std::vector<std::string> AvailableSites(const std::string&) const override { return available; }
  core::Status SendToSite(const std::string& site, codec::Message message) override {
    sent[site].push_back(std::move(message));
    return core::Status::Ok();
  }
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
  std::vector<std::string> available = {"site-a", "site-b", "site-c"};
  std::map<std::string, std::vector<codec::Message>> sent;
};

codec::StudySpec Spec() {
  codec::StudySpec s;
  s.study_id = "ph";
  s.model = {6, {4}, 0, 0.0f};  // trunk: 6*4 + 4 = 28 parameters
  s.private_heads = true;
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

constexpr std::size_t kTrunk = 28;
constexpr std::uint32_t kBins = 4;

std::vector<codec::Tensor> Floats(std::vector<float> w) {
  std::vector<codec::Tensor> t;
  const auto n = static_cast<std::int64_t>(w.size());
  t.push_back(
      codec::Tensor{"weights", codec::DType::kFloat32, {n}, codec::Blob::FromFloats(std::move(w))});
  return t;
}

// Histograms of `tasks` tasks, each: negatives in bin `neg`, positives in bin `pos`.
std::vector<codec::Tensor> Histograms(std::size_t tasks, std::size_t neg, std::size_t pos) {
  auto* owner = new std::vector<std::uint64_t>(tasks * 2 * kBins, 0);
  for (std::size_t t = 0; t < tasks; ++t) {
    (*owner)[(t * 2) * kBins + neg] = 3;
    (*owner)[(t * 2 + 1) * kBins + pos] = 3;
  }
  std::vector<codec::Tensor> out;
  out.push_back(codec::Tensor{
      "histograms",
      codec::DType::kUInt64,
      {static_cast<std::int64_t>(tasks), 2, kBins},
      codec::Blob(owner, reinterpret_cast<const std::byte*>(owner->data()), owner->size() * 8,
                  [](void* p) { delete static_cast<std::vector<std::uint64_t>*>(p); })});
  return out;
}

class StudyRunnerPrivateHeadsTest : public ::testing::Test {
 protected:
  void Create(const codec::StudySpec& spec) {
    ASSERT_TRUE(ValidateStudySpec(spec).ok()) << ValidateStudySpec(spec);
    initial_ = InitialModel(spec);
    ASSERT_TRUE(studies_.Create(spec, initial_, 0).ok());
    auto record = studies_.Load("ph");
    ASSERT_TRUE(record.ok());
    auto strategy = MakeStrategy(record->spec);
    ASSERT_TRUE(strategy.ok());
    RunnerTimings timings;
    timings.histogram_bins = kBins;
    runner_ = std::make_unique<StudyRunner>(*record, studies_, sites_, std::move(*strategy), clock_,
                                            metrics_, timings);
  }

  double Rejected(const std::string& reason) {
    return metrics_.Read("fedrx_coordinator_updates_rejected_total", {{"reason", reason}});
  }

  std::vector<float> initial_;
  core::testing::FakeStateStore store_;
  StudyStore studies_{store_};
  RecordingSites sites_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"coordinator"};
  std::unique_ptr<StudyRunner> runner_;
};

TEST(PrivateHeadsSpecTest, TheGlobalModelIsTheTrunkPrefixOfTheFullInit) {
  const codec::StudySpec spec = Spec();
  EXPECT_EQ(GlobalParameterCount(spec), kTrunk);
  const std::vector<float> trunk = InitialModel(spec);
  ASSERT_EQ(trunk.size(), kTrunk);
  // A site's whole network drawn from the study seed starts with this trunk,
  // whatever its head.
  const std::vector<float> whole =
      ml::InitParameters(ml::WithHead(ml::NetSpecFromStudy(spec), 3), spec.seed);
  EXPECT_EQ(std::vector<float>(whole.begin(), whole.begin() + kTrunk), trunk);
}

TEST(PrivateHeadsSpecTest, ValidationAllowsNoTasksButNoHead) {
  codec::StudySpec spec = Spec();
  EXPECT_TRUE(ValidateStudySpec(spec).ok());
  spec.tasks = {"FDA_APPROVED", "CT_TOX"};  // a panel the sites' heads are drawn from
  EXPECT_TRUE(ValidateStudySpec(spec).ok());
  spec.tasks = {"CT_TOX", "CT_TOX"};
  EXPECT_EQ(ValidateStudySpec(spec).where(), "StudySpec.tasks[1]");
  spec = Spec();
  spec.model.num_tasks = 2;  // a shared head in a private-heads study
  EXPECT_EQ(ValidateStudySpec(spec).where(), "StudySpec.model.num_tasks");
  spec = Spec();
  spec.private_heads = false;  // a shared-head study still needs its tasks
  EXPECT_EQ(ValidateStudySpec(spec).where(), "StudySpec.tasks");
}

TEST_F(StudyRunnerPrivateHeadsTest, RoundAggregatesTrunksOnlyAndEvaluatesEachSitesOwnTasks) {
  Create(Spec());
  ASSERT_TRUE(runner_->Tick().ok());
  ASSERT_EQ(runner_->phase(), StudyRunner::Phase::kTraining);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    auto tasks = sites_.Of<codec::TrainTask>(site);
    ASSERT_EQ(tasks.size(), 1u);
    EXPECT_EQ(tasks[0]->tensors.at(0).data.As<float>().size(), kTrunk) << site;
    ASSERT_TRUE(runner_->OnUpdateReady(site, {"ph", 1, 0, 10, {}}).ok());
  }
  std::vector<float> ta(kTrunk, 0.25f), tb(kTrunk, 0.75f);
  auto ua = Floats(ta);
  ASSERT_TRUE(runner_->OnModelUpdate("site-a", {"ph", 1, "site-a", 0, 10, {}}, ua).ok());
  auto ub = Floats(tb);
  ASSERT_TRUE(runner_->OnModelUpdate("site-b", {"ph", 1, "site-b", 0, 10, {}}, ub).ok());
  // site-c sends its trunk with a 3-task head (4*3 + 3 values of 9): refused.
  std::vector<float> with_head(kTrunk, 0.5f);
  with_head.resize(kTrunk + 15, 9.0f);
  auto uc = Floats(with_head);
  EXPECT_FALSE(runner_->OnModelUpdate("site-c", {"ph", 1, "site-c", 0, 10, {}}, uc).ok());
  EXPECT_EQ(Rejected("wrong_shape"), 1);

  // The round closed with a and b: the stored model is the trunk, their mean.
  ASSERT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  auto model = studies_.LoadModel("ph", 1);
  ASSERT_TRUE(model.ok());
  ASSERT_EQ(model->size(), kTrunk);
  for (float v : *model) EXPECT_FLOAT_EQ(v, 0.5f);
  EXPECT_EQ(std::count(model->begin(), model->end(), 9.0f), 0);

  // site-a holds tasks x, y, z; site-b holds y and w. Both rank their own
  // tasks perfectly, except site-b's y, ranked backwards.
  for (const char* site : {"site-a", "site-b"}) {
    auto evals = sites_.Of<codec::EvaluateTask>(site);
    ASSERT_EQ(evals.size(), 1u);
    EXPECT_EQ(evals[0]->tensors.at(0).data.As<float>().size(), kTrunk);
  }
  auto ha = Histograms(3, 0, 3);
  ASSERT_TRUE(
      runner_->OnEvaluationResult("site-a", {"ph", 1, 1, "valid", 6, {"x", "y", "z"}}, ha).ok());
  auto* owner = new std::vector<std::uint64_t>(2 * 2 * kBins, 0);
  (*owner)[0 * kBins + 3] = 3;  // y: negatives high
  (*owner)[1 * kBins + 0] = 3;  //    positives low
  (*owner)[2 * kBins + 0] = 3;  // w: negatives low
  (*owner)[3 * kBins + 3] = 3;  //    positives high
  std::vector<codec::Tensor> hb;
  hb.push_back(codec::Tensor{
      "histograms",
      codec::DType::kUInt64,
      {2, 2, kBins},
      codec::Blob(owner, reinterpret_cast<const std::byte*>(owner->data()), owner->size() * 8,
                  [](void* p) { delete static_cast<std::vector<std::uint64_t>*>(p); })});
  ASSERT_TRUE(runner_->OnEvaluationResult("site-b", {"ph", 1, 1, "valid", 6, {"y", "w"}}, hb).ok());

  auto metrics = studies_.LoadRoundMetrics("ph", 1);
  ASSERT_TRUE(metrics.ok());
  EXPECT_DOUBLE_EQ(metrics->at("valid_roc_auc:x"), 1.0);
  EXPECT_DOUBLE_EQ(metrics->at("valid_roc_auc:z"), 1.0);
  EXPECT_DOUBLE_EQ(metrics->at("valid_roc_auc:w"), 1.0);
  // y pooled from both sites: positives above negatives at site-a, below them
  // at site-b, so pooled they fall in the same bins: no better than chance.
  EXPECT_DOUBLE_EQ(metrics->at("valid_roc_auc:y"), 0.5);
  // One evaluation stage, and no calibration: the platform serves no heads.
  EXPECT_EQ(sites_.Of<codec::EvaluateTask>("site-a").size(), 1u);
  auto calibration = studies_.LoadCalibration("ph", 1);
  ASSERT_TRUE(calibration.ok());
  EXPECT_FALSE(calibration->has_value());
  EXPECT_DOUBLE_EQ(metrics->at("valid_mean_roc_auc"), 3.5 / 4);
  EXPECT_DOUBLE_EQ(metrics->at("valid_samples"), 12.0);
  EXPECT_EQ(runner_->record().current_round, 2u);
}

TEST_F(StudyRunnerPrivateHeadsTest, EvaluationWithoutTaskNamesOrWithBadOnesIsRefused) {
  Create(Spec());
  ASSERT_TRUE(runner_->Tick().ok());
  for (const char* site : {"site-a", "site-b"}) {
    ASSERT_TRUE(runner_->OnUpdateReady(site, {"ph", 1, 0, 10, {}}).ok());
    auto u = Floats(std::vector<float>(kTrunk, 0.5f));
    ASSERT_TRUE(runner_->OnModelUpdate(site, {"ph", 1, site, 0, 10, {}}, u).ok());
  }
  // site-c never answers: the deadline closes the round.
  clock_.Advance(std::chrono::milliseconds(10001));
  ASSERT_TRUE(runner_->Tick().ok());
  ASSERT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  auto h1 = Histograms(1, 0, 3);
  EXPECT_FALSE(runner_->OnEvaluationResult("site-a", {"ph", 1, 1, "valid", 6, {}}, h1).ok());
  auto h2 = Histograms(2, 0, 3);
  EXPECT_FALSE(
      runner_->OnEvaluationResult("site-b", {"ph", 1, 1, "valid", 6, {"y", "y"}}, h2).ok());
  EXPECT_EQ(Rejected("wrong_tasks"), 2);
}

TEST_F(StudyRunnerPrivateHeadsTest, SecureAggregationRunsOverTheTrunk) {
  codec::StudySpec spec = Spec();
  spec.secure_aggregation = true;
  Create(spec);
  sites_.available = {"site-a", "site-b"};
  ASSERT_TRUE(runner_->Tick().ok());
  for (const char* site : {"site-a", "site-b"}) {
    ASSERT_TRUE(runner_->OnUpdateReady(site, {"ph", 1, 0, 10, {}}).ok());
  }
  ASSERT_EQ(runner_->phase(), StudyRunner::Phase::kSecureAggregation);
  for (const char* site : {"site-a", "site-b"}) {
    auto starts = sites_.Of<codec::SecAggStart>(site);
    ASSERT_EQ(starts.size(), 1u);
    EXPECT_EQ(std::get<codec::SecAggStart>(starts[0]->body).params.dimension, kTrunk);
  }
}

}  // namespace
}  // namespace fedrx::coordinator
