// SiteService's two evaluation stages on a small dataset: stage 0 adds the
// per-unit sums and sums of squares of the trunk's last hidden layer over
// the site's training rows (and their count); stage 1 answers the histogram
// of its validation rows' domain scores against the reference sent after the
// weights. Malformed stage-1 tasks (missing or wrong-sized reference, NaN,
// an unknown stage) are refused, counted, and not answered.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/ml/domain.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"
#include "services/site/site_service.h"

namespace fedrx::site {
namespace {

using std::chrono::milliseconds;

// 4-bit inputs, one task; rows differ in which bits are set so that their
// embeddings differ.
ml::Dataset Rows(std::size_t rows, std::uint32_t offset) {
  ml::Dataset d;
  d.tasks = {"t0"};
  d.x.dim = 4;
  for (std::size_t i = 0; i < rows; ++i) {
    const auto k = static_cast<std::uint32_t>((i + offset) % 7) + 1;  // 1..7: a non-empty bit set
    std::vector<std::uint32_t> bits;
    for (std::uint32_t b = 0; b < 3; ++b) {
      if (k & (1u << b)) bits.push_back(b);
    }
    if (i % 3 == 0) bits.push_back(3);
    d.x.AddRow(bits);
    d.y.push_back(i % 2 == 0 ? 1 : 0);
    d.smiles.push_back("C");
    d.scaffolds.push_back("");
    d.split.push_back("");
  }
  return d;
}

codec::StudySpec Spec() {
  codec::StudySpec s;
  s.study_id = "s1";
  s.tasks = {"t0"};
  s.model = {4, {5, 3}, 1, 0.0f};  // the embedding: the last hidden layer's 3 units
  s.rounds = 3;
  s.min_sites = 1;
  s.local_epochs = 1;
  s.learning_rate = 0.05f;
  s.batch_size = 4;
  return s;
}

std::vector<double> Doubles(const codec::Tensor& t) {
  std::vector<double> out(t.data.size() / sizeof(double));
  std::memcpy(out.data(), t.data.data(), t.data.size());
  return out;
}

std::vector<std::uint64_t> Counts(const codec::Tensor& t) {
  std::vector<std::uint64_t> out(t.data.size() / sizeof(std::uint64_t));
  std::memcpy(out.data(), t.data.data(), t.data.size());
  return out;
}

codec::Tensor DoubleTensor(const char* name, const std::vector<double>& v) {
  std::vector<std::byte> bytes(v.size() * sizeof(double));
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return codec::Tensor{name,
                       codec::DType::kFloat64,
                       {static_cast<std::int64_t>(v.size())},
                       codec::Blob::FromBytes(std::move(bytes))};
}

class SiteCalibrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    train_ = Rows(20, 0);
    valid_ = Rows(9, 3);
    weights_ = ml::InitParameters(ml::NetSpecFromStudy(Spec()), 17);
    ASSERT_TRUE(
        platform_
            .Serve("inproc://gateway",
                   [this](core::Inbound&& in) {
                     peer_ = in.peer;
                     if (auto* r = std::get_if<codec::RegisterSite>(&in.message.body)) {
                       core::Reply(platform_, in, codec::SiteRegistered{r->site_id, 1, true})
                           .IgnoreError();
                     } else if (std::holds_alternative<codec::GetStudy>(in.message.body)) {
                       codec::StudyInfo info;
                       info.study = Spec();
                       core::Reply(platform_, in, info).IgnoreError();
                     } else if (std::holds_alternative<codec::UpdateReady>(in.message.body)) {
                       ++ready_;
                     } else if (std::holds_alternative<codec::EvaluationResult>(in.message.body)) {
                       results_.push_back(std::move(in.message));
                     }
                   })
            .ok());
    SiteOptions o;
    o.site_id = "site-a";
    o.institution = "Hospital A";
    o.gateway_endpoint = "inproc://gateway";
    o.approved_studies = {"s1"};
    o.fingerprint_bits = 4;
    o.train_threads = 1;
    site_ = std::make_unique<SiteService>(o, LocalData{train_, valid_, Rows(2, 5)}, site_bus_,
                                          metrics_, clock_);
    ASSERT_TRUE(site_->Start().ok());
    network_.Pump();
    // A training task makes the site fetch the study's spec.
    std::vector<codec::Tensor> t;
    t.push_back(Weights());
    Push(core::MakeMessage(codec::TrainTask{"s1", 1, 0, 1, 4, 0.05f, 11, 0}, std::move(t)));
    site_->WaitForTraining();
    site_->Tick().IgnoreError();
    network_.Pump();
    ASSERT_EQ(ready_, 1);
  }

  codec::Tensor Weights() const {
    return codec::Tensor{"weights",
                         codec::DType::kFloat32,
                         {static_cast<std::int64_t>(weights_.size())},
                         codec::Blob::FromFloats(std::vector<float>(weights_))};
  }

  void Push(codec::Message m) {
    m.header.route_to = "site-a";
    ASSERT_TRUE(platform_.SendTo(peer_, std::move(m)).ok());
    network_.Pump();
  }

  void Stage1(std::vector<double> mean, std::vector<double> scale, std::uint32_t stage = 1) {
    std::vector<codec::Tensor> t;
    t.push_back(Weights());
    t.push_back(DoubleTensor("embedding_mean", mean));
    t.push_back(DoubleTensor("embedding_scale", scale));
    Push(core::MakeMessage(codec::EvaluateTask{"s1", 1, 1, "valid", 10, stage}, std::move(t)));
  }

  // The embedding of `rows` under the fixture's weights, computed here.
  std::vector<float> Embedding(const ml::Dataset& rows) const {
    auto out = ml::PredictWithEmbedding(ml::NetSpecFromStudy(Spec()), weights_, rows.x);
    EXPECT_TRUE(out.ok());
    return out->embedding;
  }

  double BadTasks() { return metrics_.Read("fedrx_site_rejected_total", {{"reason", "bad_task"}}); }

  ml::Dataset train_, valid_;
  std::vector<float> weights_;
  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"site"};
  core::Metrics platform_metrics_{"gateway"};
  core::testing::FakeBus platform_{network_, core::BusOptions{"gateway"}, platform_metrics_,
                                   clock_};
  core::testing::FakeBus site_bus_{network_, core::BusOptions{"site-a"}, metrics_, clock_};
  core::PeerId peer_;
  int ready_ = 0;
  std::vector<codec::Message> results_;
  std::unique_ptr<SiteService> site_;
};

// Stage 0: the histograms as before, then "embedding_moments" [2, 3] equal
// to the sums over the 20 training rows' embeddings computed here.
TEST_F(SiteCalibrationTest, StageZeroSendsTrainingEmbeddingMoments) {
  std::vector<codec::Tensor> t;
  t.push_back(Weights());
  Push(core::MakeMessage(codec::EvaluateTask{"s1", 1, 1, "valid", 10}, std::move(t)));
  ASSERT_EQ(results_.size(), 1u);
  const auto& result = std::get<codec::EvaluationResult>(results_[0].body);
  EXPECT_EQ(result.stage, 0u);
  EXPECT_EQ(result.num_samples, 9u);
  EXPECT_EQ(result.embedding_rows, 20u);
  ASSERT_EQ(results_[0].tensors.size(), 2u);
  EXPECT_EQ(results_[0].tensors[0].name, "histograms");
  const codec::Tensor& moments = results_[0].tensors[1];
  EXPECT_EQ(moments.name, "embedding_moments");
  EXPECT_EQ(moments.dtype, codec::DType::kFloat64);
  EXPECT_EQ(moments.shape, (std::vector<std::int64_t>{2, 3}));
  const std::vector<double> got = Doubles(moments);
  ASSERT_EQ(got.size(), 6u);
  const std::vector<float> e = Embedding(train_);
  ASSERT_EQ(e.size(), 20u * 3);
  double nonzero = 0;
  for (std::size_t k = 0; k < 3; ++k) {
    double sum = 0, squares = 0;
    for (std::size_t i = 0; i < 20; ++i) {
      sum += e[i * 3 + k];
      squares += double(e[i * 3 + k]) * e[i * 3 + k];
    }
    EXPECT_NEAR(got[k], sum, 1e-9 * (1 + std::abs(sum))) << k;
    EXPECT_NEAR(got[3 + k], squares, 1e-9 * (1 + squares)) << k;
    nonzero += squares;
  }
  EXPECT_GT(nonzero, 0);  // the check is not of zeros against zeros
}

// Stage 1: "domain_histogram" [10] holds each validation row's DomainScore,
// computed here from the same reference, in its bin; 9 rows in all.
TEST_F(SiteCalibrationTest, StageOneSendsTheDomainHistogramOfValidationRows) {
  const std::vector<float> e = Embedding(train_);
  auto moments = ml::MomentsOf(e, 3);
  ASSERT_TRUE(moments.ok());
  auto ref = ml::ReferenceFromMoments(*moments);
  ASSERT_TRUE(ref.ok());
  Stage1(ref->mean, ref->scale);
  ASSERT_EQ(results_.size(), 1u);
  const auto& result = std::get<codec::EvaluationResult>(results_[0].body);
  EXPECT_EQ(result.stage, 1u);
  EXPECT_EQ(result.num_samples, 9u);
  ASSERT_EQ(results_[0].tensors.size(), 1u);
  const codec::Tensor& h = results_[0].tensors[0];
  EXPECT_EQ(h.name, "domain_histogram");
  EXPECT_EQ(h.dtype, codec::DType::kUInt64);
  EXPECT_EQ(h.shape, (std::vector<std::int64_t>{10}));
  std::vector<std::uint64_t> expected(10, 0);
  const std::vector<float> v = Embedding(valid_);
  for (std::size_t i = 0; i < 9; ++i) {
    const double u = ml::DomainScore(std::span<const float>(v).subspan(i * 3, 3), *ref);
    ASSERT_TRUE(u >= 0 && u < 1) << u;
    ++expected[std::min<std::size_t>(static_cast<std::size_t>(u * 10), 9)];
  }
  EXPECT_EQ(Counts(h), expected);
  // A reference far from every row (mean 1000 on each unit) puts all 9 rows
  // in the last bin: s ~ 1000 / scale, u > 0.9.
  results_.clear();
  Stage1({1000, 1000, 1000}, {1, 1, 1});
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(Counts(results_[0].tensors[0]),
            (std::vector<std::uint64_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 9}));
}

TEST_F(SiteCalibrationTest, MalformedStageOneTasksAreRefusedAndCounted) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Stage1({0, 0}, {1, 1});  // two units, the embedding has three
  Stage1({0, nan, 0}, {1, 1, 1});
  Stage1({0, 0, 0}, {1, 0, 1});  // a zero scale
  Stage1({0, 0, 0}, {1, 1, 1}, /*stage=*/2);
  std::vector<codec::Tensor> only_weights;
  only_weights.push_back(Weights());
  Push(core::MakeMessage(codec::EvaluateTask{"s1", 1, 1, "valid", 10, 1}, std::move(only_weights)));
  std::vector<codec::Tensor> swapped;
  swapped.push_back(Weights());
  swapped.push_back(DoubleTensor("embedding_scale", {1, 1, 1}));
  swapped.push_back(DoubleTensor("embedding_mean", {0, 0, 0}));
  Push(core::MakeMessage(codec::EvaluateTask{"s1", 1, 1, "valid", 10, 1}, std::move(swapped)));
  EXPECT_TRUE(results_.empty());
  EXPECT_EQ(BadTasks(), 6);
  // A well-formed task is still answered afterwards.
  Stage1({0, 0, 0}, {1, 1, 1});
  EXPECT_EQ(results_.size(), 1u);
}

}  // namespace
}  // namespace fedrx::site
