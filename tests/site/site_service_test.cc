// SiteService over the in-memory bus: it registers its descriptor (never
// rows), announces its approved studies, refuses tasks for studies its
// institution did not approve, trains when asked and hands its update over
// only when granted, answers a repeated task from its cached update, and
// evaluates with score histograms only.
#include "services/site/site_service.h"

#include <gtest/gtest.h>

#include <cmath>

#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"

namespace fedrx::site {
namespace {

using std::chrono::milliseconds;

// A tiny dataset: 4-bit inputs, one task, label = bit 0 set.
ml::Dataset Tiny(std::size_t rows, const std::string& tag) {
  ml::Dataset d;
  d.tasks = {"t0"};
  d.x.dim = 4;
  for (std::size_t i = 0; i < rows; ++i) {
    std::vector<std::uint32_t> bits = {static_cast<std::uint32_t>(i % 2), 2};
    if (bits[0] == bits[1]) bits.pop_back();
    std::sort(bits.begin(), bits.end());
    d.x.AddRow(bits);
    d.y.push_back(i % 2 == 0 ? 1 : 0);
    d.smiles.push_back("C");
    d.scaffolds.push_back("");
    d.split.push_back(tag);
  }
  return d;
}

codec::StudySpec Spec() {
  codec::StudySpec s;
  s.study_id = "s1";
  s.tasks = {"t0"};
  s.model = {4, {3}, 1, 0.0f};
  s.rounds = 3;
  s.min_sites = 1;
  s.local_epochs = 2;
  s.learning_rate = 0.05f;
  s.batch_size = 4;
  return s;
}

class SiteServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(platform_
                    .Serve("inproc://gateway",
                           [this](core::Inbound&& in) {
                             peer_ = in.peer;
                             received_.push_back(codec::BodyName(in.message.body));
                             if (auto* r = std::get_if<codec::RegisterSite>(&in.message.body)) {
                               registered_ = *r;
                               core::Reply(platform_, in, codec::SiteRegistered{r->site_id, 1, true})
                                   .IgnoreError();
                             } else if (auto* h = std::get_if<codec::Heartbeat>(&in.message.body)) {
                               approved_ = h->approved_studies;
                             } else if (std::holds_alternative<codec::GetStudy>(in.message.body)) {
                               codec::StudyInfo info;
                               info.study = study_;
                               core::Reply(platform_, in, info).IgnoreError();
                             } else if (auto* u = std::get_if<codec::UpdateReady>(&in.message.body)) {
                               ready_.push_back(*u);
                             } else if (auto* m = std::get_if<codec::ModelUpdate>(&in.message.body)) {
                               updates_.push_back(*m);
                               auto w = in.message.tensors.at(0).data.As<float>();
                               update_weights_.assign(w.begin(), w.end());
                               core::Reply(platform_, in, codec::Ack{"ok"}).IgnoreError();
                             } else if (auto* e =
                                            std::get_if<codec::EvaluationResult>(&in.message.body)) {
                               evaluations_.push_back(*e);
                               auto c = in.message.tensors.at(0).data.As<std::uint64_t>();
                               histogram_.assign(c.begin(), c.end());
                               histogram_shape_ = in.message.tensors.at(0).shape;
                             }
                           })
                    .ok());
  }

  std::unique_ptr<SiteService> MakeSite(float synthetic_step = 0) {
    SiteOptions o;
    o.site_id = "site-a";
    o.institution = "Hospital A";
    o.gateway_endpoint = "inproc://gateway";
    o.approved_studies = {"s1"};
    o.preparation_hash = "prep-1";
    o.fingerprint_bits = 4;
    o.heartbeat_interval = milliseconds(1000);
    o.train_threads = 1;
    o.synthetic_step = synthetic_step;
    LocalData data{Tiny(16, "train"), Tiny(6, "valid"), Tiny(4, "test")};
    return std::make_unique<SiteService>(o, std::move(data), site_bus_, metrics_, clock_);
  }

  void Push(codec::Message m) {
    m.header.route_to = "site-a";
    ASSERT_TRUE(platform_.SendTo(peer_, std::move(m)).ok());
    network_.Pump();
  }

  void TrainTask(std::uint32_t round, const std::string& study = "s1") {
    std::vector<float> w = ml::InitParameters(ml::NetSpecFromStudy(Spec()), 3);
    initial_ = w;
    std::vector<codec::Tensor> t;
    t.push_back(codec::Tensor{"weights", codec::DType::kFloat32,
                              {static_cast<std::int64_t>(w.size())},
                              codec::Blob::FromFloats(std::move(w))});
    Push(core::MakeMessage(codec::TrainTask{study, round, 0, 2, 4, 0.05f, 11, 0}, std::move(t)));
  }

  // Lets training on the worker thread finish, then ticks the site so it
  // reports; true when `done` holds then.
  template <typename Pred>
  bool TickUntil(SiteService& site, Pred done) {
    site.WaitForTraining();
    site.Tick().IgnoreError();
    network_.Pump();
    return done();
  }

  // The study the platform describes to the site (GetStudy).
  codec::StudySpec study_ = Spec();
  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"site"};
  core::Metrics platform_metrics_{"gateway"};
  core::testing::FakeBus platform_{network_, core::BusOptions{"gateway"}, platform_metrics_, clock_};
  core::testing::FakeBus site_bus_{network_, core::BusOptions{"site-a"}, metrics_, clock_};
  core::PeerId peer_;
  std::vector<std::string> received_;
  std::optional<codec::RegisterSite> registered_;
  std::vector<std::string> approved_;
  std::vector<codec::UpdateReady> ready_;
  std::vector<codec::ModelUpdate> updates_;
  std::vector<float> update_weights_;
  std::vector<float> initial_;
  std::vector<codec::EvaluationResult> evaluations_;
  std::vector<std::uint64_t> histogram_;
  std::vector<std::int64_t> histogram_shape_;
};

TEST_F(SiteServiceTest, RegistersItsDescriptorAndAnnouncesApprovedStudies) {
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  ASSERT_TRUE(registered_.has_value());
  EXPECT_EQ(registered_->site_id, "site-a");
  EXPECT_EQ(registered_->num_samples, 16u);
  EXPECT_EQ(registered_->tasks, std::vector<std::string>{"t0"});
  EXPECT_EQ(registered_->schema_hash, "prep-1");
  EXPECT_TRUE(site->registered());
  EXPECT_TRUE(site->CheckReady().ready);
  ASSERT_TRUE(site->Tick().ok());
  network_.Pump();
  EXPECT_EQ(approved_, std::vector<std::string>{"s1"});
}

TEST_F(SiteServiceTest, RefusesTasksForStudiesNotApproved) {
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1, "other-study");
  EXPECT_TRUE(ready_.empty());
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "not_approved"}}), 1);
}

TEST_F(SiteServiceTest, TrainsThenUploadsOnlyWhenGranted) {
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  EXPECT_EQ(ready_[0].round, 1u);
  EXPECT_EQ(ready_[0].num_samples, 16u);
  EXPECT_TRUE(updates_.empty());  // nothing leaves before the grant

  Push(core::MakeMessage(codec::UploadGrant{"s1", 1}));
  ASSERT_EQ(updates_.size(), 1u);
  EXPECT_EQ(updates_[0].site_id, "site-a");
  EXPECT_EQ(updates_[0].num_samples, 16u);
  ASSERT_EQ(update_weights_.size(), initial_.size());
  EXPECT_NE(update_weights_, initial_);  // it trained
  EXPECT_EQ(std::count(received_.begin(), received_.end(), "GetStudy"), 1);
}

TEST_F(SiteServiceTest, RepeatedTaskIsAnsweredFromTheCachedUpdate) {
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return ready_.size() == 1; }));
  TrainTask(1);  // the coordinator restarted and repeats the round
  EXPECT_EQ(ready_.size(), 2u);
  EXPECT_EQ(site->rounds_trained(), 1u);
}

TEST_F(SiteServiceTest, StrayGrantIsCountedNotAnswered) {
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  Push(core::MakeMessage(codec::UploadGrant{"s1", 4}));
  EXPECT_TRUE(updates_.empty());
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "stray_grant"}}), 1);
}

TEST_F(SiteServiceTest, EvaluationSendsOnlyHistogramCounts) {
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  std::vector<float> w = ml::InitParameters(ml::NetSpecFromStudy(Spec()), 3);
  std::vector<codec::Tensor> t;
  t.push_back(codec::Tensor{"weights", codec::DType::kFloat32,
                            {static_cast<std::int64_t>(w.size())},
                            codec::Blob::FromFloats(std::move(w))});
  Push(core::MakeMessage(codec::EvaluateTask{"s1", 1, 1, "valid", 10}, std::move(t)));
  ASSERT_EQ(evaluations_.size(), 1u);
  EXPECT_EQ(evaluations_[0].num_samples, 6u);
  EXPECT_EQ(histogram_shape_, (std::vector<std::int64_t>{1, 2, 10}));
  std::uint64_t neg = 0, pos = 0;
  for (int b = 0; b < 10; ++b) {
    neg += histogram_[b];
    pos += histogram_[10 + b];
  }
  EXPECT_EQ(pos, 3u);  // rows 0, 2, 4 of the 6 validation rows are positive
  EXPECT_EQ(neg, 3u);
}

TEST_F(SiteServiceTest, SyntheticModeAddsItsStepWithoutTraining) {
  auto site = MakeSite(0.25f);
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_EQ(ready_.size(), 1u);
  Push(core::MakeMessage(codec::UploadGrant{"s1", 1}));
  ASSERT_EQ(update_weights_.size(), initial_.size());
  for (std::size_t i = 0; i < initial_.size(); ++i) {
    EXPECT_FLOAT_EQ(update_weights_[i], initial_[i] + 0.25f);
  }
}

}  // namespace
}  // namespace fedrx::site

namespace fedrx::site {
namespace {

double DeltaNorm(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s);
}

// The weights a plain local training run of the fixture's task gives (the
// site's Trainer with the same options, from the same initial model).
std::vector<float> PlainTraining() {
  const codec::StudySpec spec = Spec();
  std::vector<float> w = ml::InitParameters(ml::NetSpecFromStudy(spec), 3);
  ml::TrainOptions o;
  o.epochs = 2;
  o.batch_size = 4;
  o.learning_rate = 0.05f;
  o.threads = 1;
  o.seed = 11;
  o.keep_optimizer_state = true;
  ml::Trainer trainer(o);
  EXPECT_TRUE(trainer.Train(ml::NetSpecFromStudy(spec), Tiny(16, "train"), w).ok());
  return w;
}

TEST_F(SiteServiceTest, PlainStudyUpdateIsPlainLocalTraining) {
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  Push(core::MakeMessage(codec::UploadGrant{"s1", 1}));
  EXPECT_EQ(update_weights_, PlainTraining());
}

TEST_F(SiteServiceTest, FedProxKeepsTheUpdateCloserToTheGlobalModel) {
  study_.proximal_mu = 50.0f;
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  Push(core::MakeMessage(codec::UploadGrant{"s1", 1}));
  ASSERT_EQ(update_weights_.size(), initial_.size());
  const double prox = DeltaNorm(update_weights_, initial_);
  const double plain = DeltaNorm(PlainTraining(), initial_);
  EXPECT_GT(prox, 0.0);
  EXPECT_LT(prox, 0.5 * plain);
}

TEST_F(SiteServiceTest, DpClipsTheUpdateDeltaBeforeItLeaves) {
  study_.dp_clip_norm = 0.01f;  // clipping only
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  Push(core::MakeMessage(codec::UploadGrant{"s1", 1}));
  ASSERT_EQ(update_weights_.size(), initial_.size());
  ASSERT_GT(DeltaNorm(PlainTraining(), initial_), 0.01);  // so the clip bites
  EXPECT_NEAR(DeltaNorm(update_weights_, initial_), 0.01, 1e-5);
  EXPECT_EQ(metrics_.Read("fedrx_site_updates_clipped_total"), 1);
}

TEST_F(SiteServiceTest, DpNoiseIsAddedToTheClippedDelta) {
  study_.dp_clip_norm = 0.01f;
  study_.dp_noise_multiplier = 1.0f;
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  Push(core::MakeMessage(codec::UploadGrant{"s1", 1}));
  ASSERT_EQ(update_weights_.size(), initial_.size());
  // Clipped to 0.01, then N(0, 0.01^2) per parameter: the norm is no longer
  // the clip norm (equality has probability zero), and stays of the order
  // 0.01 sqrt(parameters) (far below 1).
  const double norm = DeltaNorm(update_weights_, initial_);
  EXPECT_GT(std::fabs(norm - 0.01), 1e-6);
  EXPECT_LT(norm, 1.0);
}

}  // namespace
}  // namespace fedrx::site
