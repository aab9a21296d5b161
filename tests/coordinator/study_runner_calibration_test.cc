// StudyRunner's two-stage evaluation with fake sites: stage 0 brings score
// histograms and embedding moments, stage 1 (sent only once stage 0 is
// summed, to the sites it accepted) brings domain histograms against the
// reference of the summed moments; the version's calibration is stored with
// the sums of what was accepted; malformed answers are refused with their
// reason and leave the sums alone; a stage 1 without answers still stores
// stage 0; a restart during stage 1 evaluates again from stage 0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "services/coordinator/study_runner.h"
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
    sent[site].push_back(std::move(message));
    return core::Status::Ok();
  }
  // The evaluation tasks of `stage` sent to `site`, oldest first.
  std::vector<const codec::Message*> Evaluations(const std::string& site,
                                                 std::uint32_t stage) const {
    std::vector<const codec::Message*> out;
    auto it = sent.find(site);
    if (it == sent.end()) return out;
    for (const auto& m : it->second) {
      const auto* task = std::get_if<codec::EvaluateTask>(&m.body);
      if (task != nullptr && task->stage == stage) out.push_back(&m);
    }
    return out;
  }

  std::vector<std::string> available = {"site-a", "site-b", "site-c"};
  std::map<std::string, std::vector<codec::Message>> sent;
};

// One task, a network 4 -> 2 -> 1: the embedding has D = 2 units.
codec::StudySpec Spec() {
  codec::StudySpec s;
  s.study_id = "s1";
  s.tasks = {"t0"};
  s.model = {4, {2}, 1, 0.0f};
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

constexpr std::size_t kBins = 10;

template <typename T>
codec::Tensor TensorOf(const char* name, codec::DType dtype, std::vector<std::int64_t> shape,
                       const std::vector<T>& values) {
  std::vector<std::byte> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return codec::Tensor{name, dtype, std::move(shape), codec::Blob::FromBytes(std::move(bytes))};
}

// Stage 0: negatives in bin 2, positives in bin 8 of task t0 (neg + pos rows).
codec::Tensor Histograms(std::uint64_t neg, std::uint64_t pos) {
  std::vector<std::uint64_t> counts(2 * kBins, 0);
  counts[2] = neg;
  counts[kBins + 8] = pos;
  return TensorOf("histograms", codec::DType::kUInt64, {1, 2, kBins}, counts);
}

codec::Tensor Moments(std::vector<double> sum, std::vector<double> sum_squares) {
  std::vector<double> both = sum;
  both.insert(both.end(), sum_squares.begin(), sum_squares.end());
  return TensorOf("embedding_moments", codec::DType::kFloat64,
                  {2, static_cast<std::int64_t>(sum.size())}, both);
}

codec::Tensor DomainHistogram(std::vector<std::uint64_t> counts) {
  return TensorOf("domain_histogram", codec::DType::kUInt64,
                  {static_cast<std::int64_t>(counts.size())}, counts);
}

std::vector<double> Doubles(const codec::Tensor& t) {
  std::vector<double> out(t.data.size() / sizeof(double));
  std::memcpy(out.data(), t.data.data(), t.data.size());
  return out;
}

class StudyRunnerCalibrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = Spec();
    initial_ = ml::InitParameters(ml::NetSpecFromStudy(spec_), spec_.seed);
    ASSERT_TRUE(studies_.Create(spec_, initial_, 0).ok());
    runner_ = MakeRunner();
  }

  std::unique_ptr<StudyRunner> MakeRunner() {
    RunnerTimings timings;
    timings.histogram_bins = kBins;
    timings.evaluation_timeout = milliseconds(3000);
    return std::make_unique<StudyRunner>(*studies_.Load("s1"), studies_, sites_,
                                         std::make_unique<FedAvg>(), clock_, metrics_, timings);
  }

  // Round 1 trains on the three sites; the runner is then in stage 0.
  void Train() {
    ASSERT_TRUE(runner_->Tick().ok());
    for (const char* site : {"site-a", "site-b", "site-c"}) {
      ASSERT_TRUE(runner_->OnUpdateReady(site, codec::UpdateReady{"s1", 1, 0, 10, {}}).ok());
      std::vector<codec::Tensor> w;
      w.push_back(
          codec::Tensor{"weights",
                        codec::DType::kFloat32,
                        {static_cast<std::int64_t>(initial_.size())},
                        codec::Blob::FromFloats(std::vector<float>(initial_.size(), 0.5f))});
      ASSERT_TRUE(
          runner_->OnModelUpdate(site, codec::ModelUpdate{"s1", 1, site, 0, 10, {}}, w).ok());
    }
    ASSERT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  }

  core::Status Stage0(StudyRunner& r, const std::string& site, std::uint64_t samples,
                      std::uint64_t rows, std::vector<codec::Tensor> tensors) {
    codec::EvaluationResult result{"s1", 1, 1, "valid", samples};
    result.stage = 0;
    result.embedding_rows = rows;
    return r.OnEvaluationResult(site, result, tensors);
  }

  core::Status Stage1(StudyRunner& r, const std::string& site, std::vector<codec::Tensor> tensors,
                      std::uint32_t stage = 1) {
    codec::EvaluationResult result{"s1", 1, 1, "valid", 8};
    result.stage = stage;
    return r.OnEvaluationResult(site, result, tensors);
  }

  static std::vector<codec::Tensor> Both(codec::Tensor a, codec::Tensor b) {
    std::vector<codec::Tensor> t;
    t.push_back(std::move(a));
    t.push_back(std::move(b));
    return t;
  }
  static std::vector<codec::Tensor> One(codec::Tensor a) {
    std::vector<codec::Tensor> t;
    t.push_back(std::move(a));
    return t;
  }

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

// Moments: site-a 2 rows sum [2, 0] squares [4, 0]; site-b 1 row [1, 3] /
// [1, 9]; site-c 1 row [1, 1] / [1, 1]. Summed: 4 rows, sum [4, 4], squares
// [6, 10]: mean [1, 1], sd [sqrt(6/4 - 1), sqrt(10/4 - 1)] = [sqrt(.5),
// sqrt(1.5)] (the floor, a tenth of sqrt(1.5), does not bind).
TEST_F(StudyRunnerCalibrationTest, TwoStagesStoreTheSumsOfTheSites) {
  Train();
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    ASSERT_EQ(sites_.Evaluations(site, 0).size(), 1u) << site;
  }
  ASSERT_TRUE(
      Stage0(*runner_, "site-a", 8, 2, Both(Histograms(5, 3), Moments({2, 0}, {4, 0}))).ok());
  ASSERT_TRUE(
      Stage0(*runner_, "site-b", 8, 1, Both(Histograms(4, 4), Moments({1, 3}, {1, 9}))).ok());
  // Stage 1 waits for every site's stage 0.
  EXPECT_TRUE(sites_.Evaluations("site-a", 1).empty());
  ASSERT_TRUE(
      Stage0(*runner_, "site-c", 8, 1, Both(Histograms(6, 2), Moments({1, 1}, {1, 1}))).ok());
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    auto stage1 = sites_.Evaluations(site, 1);
    ASSERT_EQ(stage1.size(), 1u) << site;
    const auto& tensors = stage1[0]->tensors;
    ASSERT_EQ(tensors.size(), 3u);
    EXPECT_EQ(tensors[0].name, "weights");
    EXPECT_EQ(tensors[1].name, "embedding_mean");
    EXPECT_EQ(tensors[1].dtype, codec::DType::kFloat64);
    EXPECT_EQ(tensors[1].shape, (std::vector<std::int64_t>{2}));
    EXPECT_EQ(Doubles(tensors[1]), (std::vector<double>{1.0, 1.0}));
    EXPECT_EQ(tensors[2].name, "embedding_scale");
    const std::vector<double> scale = Doubles(tensors[2]);
    ASSERT_EQ(scale.size(), 2u);
    EXPECT_NEAR(scale[0], std::sqrt(0.5), 1e-12);
    EXPECT_NEAR(scale[1], std::sqrt(1.5), 1e-12);
  }
  EXPECT_FALSE(studies_.LoadCalibration("s1", 1)->has_value());  // not before stage 1 ends
  ASSERT_TRUE(
      Stage1(*runner_, "site-a", One(DomainHistogram({5, 0, 0, 0, 0, 3, 0, 0, 0, 0}))).ok());
  ASSERT_TRUE(
      Stage1(*runner_, "site-b", One(DomainHistogram({0, 8, 0, 0, 0, 0, 0, 0, 0, 0}))).ok());
  ASSERT_TRUE(
      Stage1(*runner_, "site-c", One(DomainHistogram({1, 1, 0, 0, 0, 0, 0, 0, 0, 6}))).ok());

  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kWaitingForSites);
  EXPECT_EQ((*studies_.LoadRound("s1", 1))->state, codec::RoundState::kClosed);
  auto metrics = studies_.LoadRoundMetrics("s1", 1);
  ASSERT_TRUE(metrics.ok());
  EXPECT_DOUBLE_EQ(metrics->at("valid_mean_roc_auc"), 1.0);
  EXPECT_DOUBLE_EQ(metrics->at("valid_samples"), 24.0);
  auto stored = studies_.LoadCalibration("s1", 1);
  ASSERT_TRUE(stored.ok() && stored->has_value()) << stored.status();
  const VersionCalibration& c = **stored;
  EXPECT_EQ(c.version, 1u);
  EXPECT_EQ(c.samples, 24u);
  EXPECT_EQ(c.tasks, std::vector<std::string>{"t0"});
  ASSERT_EQ(c.histograms.size(), 1u);
  ASSERT_EQ(c.histograms[0].neg.size(), kBins);
  EXPECT_EQ(c.histograms[0].neg[2], 15u);
  EXPECT_EQ(c.histograms[0].pos[8], 9u);
  EXPECT_EQ(c.embedding.rows, 4u);
  EXPECT_EQ(c.embedding.sum, (std::vector<double>{4, 4}));
  EXPECT_EQ(c.embedding.sum_squares, (std::vector<double>{6, 10}));
  EXPECT_EQ(c.domain_histogram, (std::vector<std::uint64_t>{6, 9, 0, 0, 0, 3, 0, 0, 0, 6}));
  EXPECT_EQ(metrics_.Read("fedrx_coordinator_calibrations_stored_total", {{"domain", "present"}}),
            1);
}

// No site answers stage 1: at its deadline the round closes and the
// calibration is stored from stage 0 alone (no domain histogram); a late
// stage-1 answer is then refused as stale.
TEST_F(StudyRunnerCalibrationTest, StageOneTimeoutStillStoresStageZero) {
  Train();
  ASSERT_TRUE(
      Stage0(*runner_, "site-a", 8, 2, Both(Histograms(5, 3), Moments({2, 0}, {4, 0}))).ok());
  ASSERT_TRUE(
      Stage0(*runner_, "site-b", 8, 1, Both(Histograms(4, 4), Moments({1, 3}, {1, 9}))).ok());
  ASSERT_TRUE(
      Stage0(*runner_, "site-c", 8, 1, Both(Histograms(6, 2), Moments({1, 1}, {1, 1}))).ok());
  ASSERT_EQ(sites_.Evaluations("site-a", 1).size(), 1u);
  clock_.Advance(milliseconds(2999));
  ASSERT_TRUE(runner_->Tick().ok());
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  clock_.Advance(milliseconds(1));
  ASSERT_TRUE(runner_->Tick().ok());
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kWaitingForSites);
  auto stored = studies_.LoadCalibration("s1", 1);
  ASSERT_TRUE(stored.ok() && stored->has_value()) << stored.status();
  EXPECT_EQ((*stored)->samples, 24u);
  EXPECT_EQ((*stored)->embedding.rows, 4u);
  EXPECT_EQ((*stored)->embedding.sum, (std::vector<double>{4, 4}));
  EXPECT_TRUE((*stored)->domain_histogram.empty());
  EXPECT_DOUBLE_EQ(studies_.LoadRoundMetrics("s1", 1)->at("valid_mean_roc_auc"), 1.0);
  EXPECT_EQ(
      Stage1(*runner_, "site-a", One(DomainHistogram(std::vector<std::uint64_t>(kBins, 0)))).code(),
      StatusCode::kFailedPrecondition);
  EXPECT_EQ(Rejected("stale_evaluation"), 1);
  EXPECT_EQ(metrics_.Read("fedrx_coordinator_calibrations_stored_total", {{"domain", "missing"}}),
            1);
}

// Stage 0: moments of the wrong dtype, of the wrong width, missing, not
// finite, and histograms counting more rows than the site has are refused
// with their reason; only the accepted site's sums are kept and only it is
// asked for stage 1, whose wrong-sized and over-counting answers are refused
// in turn.
TEST_F(StudyRunnerCalibrationTest, MalformedAnswersAreRefusedAndLeaveTheSumsAlone) {
  Train();
  // site-a: float32 moments.
  std::vector<codec::Tensor> f32 = One(Histograms(5, 3));
  f32.push_back(TensorOf("embedding_moments", codec::DType::kFloat32, {2, 2},
                         std::vector<float>{1, 1, 1, 1}));
  core::Status dtype = Stage0(*runner_, "site-a", 8, 1, std::move(f32));
  EXPECT_EQ(dtype.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dtype.where(), "tensor 1 (embedding_moments)");
  // A second try after a refusal: that site's part has ended.
  EXPECT_EQ(
      Stage0(*runner_, "site-a", 8, 2, Both(Histograms(5, 3), Moments({2, 0}, {4, 0}))).code(),
      StatusCode::kFailedPrecondition);
  EXPECT_EQ(Rejected("not_asked"), 1);
  // site-b: three units instead of two.
  EXPECT_EQ(Stage0(*runner_, "site-b", 8, 1, Both(Histograms(4, 4), Moments({1, 3, 0}, {1, 9, 0})))
                .where(),
            "tensor 1 (embedding_moments)");
  EXPECT_EQ(Rejected("wrong_shape"), 2);
  ASSERT_EQ(metrics_.Read("fedrx_coordinator_updates_rejected_total", {{"reason", "bad_values"}}),
            0);
  // site-c is fine.
  ASSERT_TRUE(
      Stage0(*runner_, "site-c", 8, 1, Both(Histograms(6, 2), Moments({1, 1}, {1, 1}))).ok());
  // Stage 1 goes to site-c alone, with its moments as the reference: mean
  // [1, 1], sd [0, 0], so both units get the absolute floor.
  EXPECT_TRUE(sites_.Evaluations("site-a", 1).empty());
  EXPECT_TRUE(sites_.Evaluations("site-b", 1).empty());
  ASSERT_EQ(sites_.Evaluations("site-c", 1).size(), 1u);
  EXPECT_EQ(Doubles(sites_.Evaluations("site-c", 1)[0]->tensors[2]),
            (std::vector<double>{ml::kAbsoluteScaleFloor, ml::kAbsoluteScaleFloor}));
  // A stage-0 answer now is stale.
  EXPECT_EQ(Stage1(*runner_, "site-c", One(DomainHistogram(std::vector<std::uint64_t>(kBins, 0))),
                   /*stage=*/0)
                .code(),
            StatusCode::kFailedPrecondition);
  // 9 rows scored of the 8 it evaluated in stage 0.
  EXPECT_EQ(Stage1(*runner_, "site-c", One(DomainHistogram({9, 0, 0, 0, 0, 0, 0, 0, 0, 0}))).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Rejected("bad_counts"), 1);
  // Its refusal ended stage 1: the calibration holds site-c's stage 0 only.
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kWaitingForSites);
  auto stored = studies_.LoadCalibration("s1", 1);
  ASSERT_TRUE(stored.ok() && stored->has_value()) << stored.status();
  EXPECT_EQ((*stored)->samples, 8u);
  EXPECT_EQ((*stored)->embedding.rows, 1u);
  EXPECT_EQ((*stored)->embedding.sum, (std::vector<double>{1, 1}));
  EXPECT_EQ((*stored)->histograms[0].neg[2], 6u);
  EXPECT_TRUE((*stored)->domain_histogram.empty());
}

TEST_F(StudyRunnerCalibrationTest, MissingNonFiniteAndOvercountingStageZeroAreRefused) {
  Train();
  core::Status missing = Stage0(*runner_, "site-a", 8, 1, One(Histograms(5, 3)));
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Rejected("wrong_shape"), 1);
  core::Status nan = Stage0(
      *runner_, "site-b", 8, 1,
      Both(Histograms(4, 4), Moments({1, std::numeric_limits<double>::quiet_NaN()}, {1, 1})));
  EXPECT_EQ(nan.where(), "tensor 1 (embedding_moments).sum[1]");
  EXPECT_EQ(Rejected("bad_values"), 1);
  core::Status over = Stage0(*runner_, "site-c", 7, 1,
                             Both(Histograms(6, 2), Moments({1, 1}, {1, 1})));  // 8 rows of 7
  EXPECT_EQ(over.where(), "tensor 0 (histograms)");
  EXPECT_EQ(Rejected("bad_counts"), 1);
  // Nothing accepted: no stage 1, no calibration, the round still closes.
  EXPECT_TRUE(sites_.Evaluations("site-c", 1).empty());
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kWaitingForSites);
  auto stored = studies_.LoadCalibration("s1", 1);
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
  EXPECT_EQ((*studies_.LoadRound("s1", 1))->state, codec::RoundState::kClosed);
}

// The stage-1 answer must be one uint64 tensor "domain_histogram" of the
// evaluation's bins.
TEST_F(StudyRunnerCalibrationTest, WrongDomainHistogramShapeIsRefused) {
  Train();
  ASSERT_TRUE(
      Stage0(*runner_, "site-a", 8, 2, Both(Histograms(5, 3), Moments({2, 0}, {4, 0}))).ok());
  ASSERT_TRUE(
      Stage0(*runner_, "site-b", 8, 1, Both(Histograms(4, 4), Moments({1, 3}, {1, 9}))).ok());
  ASSERT_TRUE(
      Stage0(*runner_, "site-c", 8, 1, Both(Histograms(6, 2), Moments({1, 1}, {1, 1}))).ok());
  core::Status bins =
      Stage1(*runner_, "site-a", One(DomainHistogram(std::vector<std::uint64_t>(11, 0))));
  EXPECT_EQ(bins.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bins.where(), "tensor 0 (domain_histogram)");
  core::Status name = Stage1(
      *runner_, "site-b",
      One(TensorOf("histograms", codec::DType::kUInt64, {10}, std::vector<std::uint64_t>(10, 0))));
  EXPECT_EQ(name.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Rejected("wrong_shape"), 2);
  ASSERT_TRUE(
      Stage1(*runner_, "site-c", One(DomainHistogram({1, 1, 0, 0, 0, 0, 0, 0, 0, 6}))).ok());
  auto stored = studies_.LoadCalibration("s1", 1);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->domain_histogram,
            (std::vector<std::uint64_t>{1, 1, 0, 0, 0, 0, 0, 0, 0, 6}));
  EXPECT_EQ((*stored)->embedding.rows, 4u);
}

// A coordinator restarted during stage 1 evaluates the version again from
// stage 0 and stores the same calibration.
TEST_F(StudyRunnerCalibrationTest, RestartDuringStageOneStartsAgainFromStageZero) {
  Train();
  ASSERT_TRUE(
      Stage0(*runner_, "site-a", 8, 2, Both(Histograms(5, 3), Moments({2, 0}, {4, 0}))).ok());
  ASSERT_TRUE(
      Stage0(*runner_, "site-b", 8, 1, Both(Histograms(4, 4), Moments({1, 3}, {1, 9}))).ok());
  ASSERT_TRUE(
      Stage0(*runner_, "site-c", 8, 1, Both(Histograms(6, 2), Moments({1, 1}, {1, 1}))).ok());
  ASSERT_EQ(sites_.Evaluations("site-b", 1).size(), 1u);
  runner_.reset();  // the coordinator dies in stage 1
  sites_.sent.clear();
  runner_ = MakeRunner();
  ASSERT_TRUE(runner_->Tick().ok());
  EXPECT_EQ(runner_->phase(), StudyRunner::Phase::kEvaluating);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    EXPECT_EQ(sites_.Evaluations(site, 0).size(), 1u) << site;
    EXPECT_TRUE(sites_.Evaluations(site, 1).empty()) << site;
  }
  ASSERT_TRUE(
      Stage0(*runner_, "site-a", 8, 2, Both(Histograms(5, 3), Moments({2, 0}, {4, 0}))).ok());
  ASSERT_TRUE(
      Stage0(*runner_, "site-b", 8, 1, Both(Histograms(4, 4), Moments({1, 3}, {1, 9}))).ok());
  ASSERT_TRUE(
      Stage0(*runner_, "site-c", 8, 1, Both(Histograms(6, 2), Moments({1, 1}, {1, 1}))).ok());
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    ASSERT_TRUE(Stage1(*runner_, site, One(DomainHistogram({8, 0, 0, 0, 0, 0, 0, 0, 0, 0}))).ok());
  }
  auto stored = studies_.LoadCalibration("s1", 1);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->embedding.sum_squares, (std::vector<double>{6, 10}));
  EXPECT_EQ((*stored)->domain_histogram[0], 24u);
  EXPECT_EQ((*studies_.LoadRound("s1", 1))->state, codec::RoundState::kClosed);
}

}  // namespace
}  // namespace fedrx::coordinator
