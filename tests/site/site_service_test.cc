// SiteService over the in-memory bus: it registers its descriptor (never
// rows), announces its approved studies, refuses tasks for studies its
// institution did not approve, trains when asked and hands its update over
// only when granted, answers a repeated task from its cached update, and
// evaluates with score histograms only.
#include "services/site/site_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"
#include "services/privacy/secagg_client.h"
#include "services/privacy/secagg_server.h"
#include "services/privacy/secagg_wire.h"

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
    ASSERT_TRUE(
        platform_
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
                       if (hold_study_) {
                         held_.push_back(std::move(in));
                         return;
                       }
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
                     } else if (auto* e = std::get_if<codec::EvaluationResult>(&in.message.body)) {
                       evaluations_.push_back(*e);
                       auto c = in.message.tensors.at(0).data.As<std::uint64_t>();
                       histogram_.assign(c.begin(), c.end());
                       histogram_shape_ = in.message.tensors.at(0).shape;
                     } else if (std::string_view(codec::BodyName(in.message.body))
                                    .starts_with("SecAgg")) {
                       secagg_.push_back(std::move(in.message));
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
    t.push_back(codec::Tensor{"weights",
                              codec::DType::kFloat32,
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

  // The study the platform describes to the site (GetStudy); while
  // hold_study_ is set, the requests wait in held_ unanswered.
  codec::StudySpec study_ = Spec();
  bool hold_study_ = false;
  std::vector<core::Inbound> held_;
  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"site"};
  core::Metrics platform_metrics_{"gateway"};
  core::testing::FakeBus platform_{network_, core::BusOptions{"gateway"}, platform_metrics_,
                                   clock_};
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
  std::vector<codec::Message> secagg_;  // the site's secure-aggregation answers
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

// Two rounds' tasks that arrive while the site is still asking for the
// study's settings: only the newest is trained (one training at a time), the
// older one is counted as superseded, and exactly one update is reported.
TEST_F(SiteServiceTest, TasksQueuedBeforeTheSettingsTrainOnlyTheNewestRound) {
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  hold_study_ = true;
  TrainTask(1);
  TrainTask(2);
  ASSERT_EQ(held_.size(), 1u);  // one request for the settings, not two
  codec::StudyInfo info;
  info.study = study_;
  ASSERT_TRUE(core::Reply(platform_, held_[0], info).ok());
  network_.Pump();
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  ASSERT_EQ(ready_.size(), 1u);
  EXPECT_EQ(ready_[0].round, 2u);
  EXPECT_EQ(site->rounds_trained(), 1u);
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "superseded"}}), 1);
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "busy"}}), 0);
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
  t.push_back(codec::Tensor{"weights",
                            codec::DType::kFloat32,
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

namespace fedrx::site {
namespace {

template <typename T>
const T& Last(const std::vector<codec::Message>& messages) {
  EXPECT_FALSE(messages.empty());
  const T* body = messages.empty() ? nullptr : std::get_if<T>(&messages.back().body);
  EXPECT_NE(body, nullptr) << (messages.empty() ? "none" : codec::BodyName(messages.back().body));
  static const T empty{};
  return body == nullptr ? empty : *body;
}

// The site in a secure-aggregation round against a real SecAggServer, with
// the test playing the second participant: it refuses a plain upload, masks
// its weighted delta (never sending it in the clear), and the unmasked sum is
// its delta within the fixed point's rounding. It never masks a round twice.
TEST_F(SiteServiceTest, SecAggStudySiteMasksItsDeltaAndNeverUploadsItPlainly) {
  study_.secure_aggregation = true;
  study_.min_sites = 2;
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  Push(core::MakeMessage(codec::UploadGrant{"s1", 1}));
  EXPECT_TRUE(updates_.empty());
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "secagg_only"}}), 1);

  privacy::SecAggParams params;
  params.round = 99;
  params.dimension = initial_.size();
  params.threshold = 2;
  params.max_sites = 2;
  params.encoding.scale_bits = 24;
  auto server = privacy::SecAggServer::Create(params);
  auto peer = privacy::SecAggClient::Create(params, 2);
  ASSERT_TRUE(server.ok() && peer.ok());
  // Stage 0: weight 16 samples / cap 32 = 0.5.
  Push(core::MakeMessage(codec::SecAggStart{"s1", 1, 0, 1, privacy::ParamsToWire(params), 32}));
  ASSERT_EQ(secagg_.size(), 1u);
  const auto& keys = Last<codec::SecAggKeys>(secagg_);
  EXPECT_EQ(keys.study_id, "s1");
  auto site_keys = privacy::FromWire(keys.keys);
  ASSERT_TRUE(site_keys.ok());
  ASSERT_TRUE(server->AcceptKeys(*site_keys).ok());
  ASSERT_TRUE(server->AcceptKeys(*peer->AdvertiseKeys()).ok());
  auto roster = server->CloseKeys();
  ASSERT_TRUE(roster.ok());
  // Stage 1.
  codec::SecAggRoster wire_roster = privacy::ToWire(*roster);
  wire_roster.study_id = "s1";
  wire_roster.round = 1;
  Push(core::MakeMessage(wire_roster));
  ASSERT_EQ(secagg_.size(), 2u);
  auto site_shares = privacy::FromWire(Last<codec::SecAggShares>(secagg_));
  ASSERT_TRUE(site_shares.ok());
  ASSERT_TRUE(server->AcceptShares(*site_shares).ok());
  ASSERT_TRUE(server->AcceptShares(*peer->ShareKeys(*roster)).ok());
  auto bundles = server->CloseShares();
  ASSERT_TRUE(bundles.ok());
  // Stage 2: the peer's update is zero, so the sum is the site's alone.
  for (const auto& b : *bundles) {
    if (b.to == 2) {
      auto y = peer->MaskInput(b, std::vector<float>(initial_.size(), 0.0f), 1.0);
      ASSERT_TRUE(y.ok());
      ASSERT_TRUE(server->AcceptMaskedInput(*y).ok());
      continue;
    }
    codec::SecAggBundle wire = privacy::ToWire(b);
    wire.study_id = "s1";
    wire.round = 1;
    Push(core::MakeMessage(wire));
  }
  ASSERT_EQ(secagg_.size(), 3u);
  const auto& header = Last<codec::SecAggMaskedInput>(secagg_);
  EXPECT_EQ(header.id, 1u);
  ASSERT_EQ(secagg_.back().tensors.size(), 1u);
  const auto& tensor = secagg_.back().tensors[0];
  EXPECT_EQ(tensor.dtype, codec::DType::kUInt32);
  auto words = tensor.data.As<std::uint32_t>();
  ASSERT_EQ(words.size(), initial_.size() + 1);
  const std::vector<float> trained = PlainTraining();
  std::size_t in_clear = 0;
  for (std::size_t i = 0; i < initial_.size(); ++i) {
    in_clear += words[i] == params.encoding.Encode(0.5 * (trained[i] - initial_[i]));
  }
  EXPECT_EQ(in_clear, 0u);
  ASSERT_TRUE(
      server->AcceptMaskedInput({1, std::vector<std::uint32_t>(words.begin(), words.end())}).ok());
  auto request = server->CloseMaskedInput();
  ASSERT_TRUE(request.ok());
  // Stage 3.
  codec::SecAggUnmaskRequest wire_request = privacy::ToWire(*request);
  wire_request.study_id = "s1";
  wire_request.round = 1;
  Push(core::MakeMessage(wire_request));
  ASSERT_EQ(secagg_.size(), 4u);
  auto response = privacy::FromWire(Last<codec::SecAggUnmaskResponse>(secagg_));
  ASSERT_TRUE(response.ok());
  ASSERT_TRUE(server->AcceptUnmask(*response).ok());
  ASSERT_TRUE(server->AcceptUnmask(*peer->Unmask(*request)).ok());
  auto result = server->Finish();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NEAR(result->total_weight, 1.5, 2 * params.encoding.MaxErrorPerSite());
  ASSERT_EQ(result->weighted_sum.size(), initial_.size());
  for (std::size_t i = 0; i < initial_.size(); ++i) {
    EXPECT_NEAR(result->weighted_sum[i], 0.5 * (trained[i] - initial_[i]),
                2 * params.encoding.MaxErrorPerSite() + 1e-7);
  }
  EXPECT_TRUE(updates_.empty());
  EXPECT_EQ(metrics_.Read("fedrx_site_secagg_rounds_total"), 1);

  // Asked to run round 1 again (a new key set, other survivors), it refuses:
  // two sums over different sets would reveal the difference.
  Push(core::MakeMessage(codec::SecAggStart{"s1", 1, 0, 1, privacy::ParamsToWire(params), 32}));
  EXPECT_EQ(secagg_.size(), 4u);
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "secagg_repeat"}}), 1);
}

TEST_F(SiteServiceTest, SecAggStartForAStudyWithoutSecureAggregationIsRefused) {
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  privacy::SecAggParams params;
  params.round = 1;
  params.dimension = initial_.size();
  params.threshold = 2;
  params.max_sites = 2;
  Push(core::MakeMessage(codec::SecAggStart{"s1", 1, 0, 1, privacy::ParamsToWire(params), 0}));
  EXPECT_TRUE(secagg_.empty());
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "bad_task"}}), 1);
}

TEST_F(SiteServiceTest, SecAggThresholdBelowTheDpNoiseSharesIsRefused) {
  study_.secure_aggregation = true;
  study_.min_sites = 3;  // the noise is shared among 3 sites
  study_.dp_clip_norm = 1.0f;
  study_.dp_noise_multiplier = 1.0f;
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  privacy::SecAggParams params;
  params.round = 1;
  params.dimension = initial_.size();
  params.threshold = 2;  // a sum of 2 would carry 2/3 of the noise accounted for
  params.max_sites = 3;
  Push(core::MakeMessage(codec::SecAggStart{"s1", 1, 0, 1, privacy::ParamsToWire(params), 0}));
  EXPECT_TRUE(secagg_.empty());
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "bad_task"}}), 1);
  params.threshold = 3;
  Push(core::MakeMessage(codec::SecAggStart{"s1", 1, 0, 1, privacy::ParamsToWire(params), 0}));
  ASSERT_EQ(secagg_.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<codec::SecAggKeys>(secagg_[0].body));
}

// SecAgg+: the site takes part only with the neighbour count its study names
// (a coordinator cannot thin the graph), and then seals its shares for its k
// neighbours in the roster's graph, not for every site.
TEST_F(SiteServiceTest, SecAggPlusSiteSharesWithItsStudysNeighboursOnly) {
  study_.secure_aggregation = true;
  study_.min_sites = 2;
  study_.secagg_neighbours = 2;
  auto site = MakeSite();
  ASSERT_TRUE(site->Start().ok());
  network_.Pump();
  TrainTask(1);
  ASSERT_TRUE(TickUntil(*site, [&] { return !ready_.empty(); }));
  privacy::SecAggParams params;
  params.round = 7;
  params.dimension = initial_.size();
  params.threshold = 2;
  params.max_sites = 5;
  params.encoding.scale_bits = 20;
  // The complete graph, and another k, are not what the study asks for.
  for (std::size_t k : {0, 4}) {
    params.neighbours = k;
    Push(core::MakeMessage(codec::SecAggStart{"s1", 1, 0, 1, privacy::ParamsToWire(params), 0}));
  }
  EXPECT_TRUE(secagg_.empty());
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "bad_task"}}), 2);

  params.neighbours = 2;
  auto server = privacy::SecAggServer::Create(params);
  ASSERT_TRUE(server.ok()) << server.status();
  Push(core::MakeMessage(codec::SecAggStart{"s1", 1, 0, 1, privacy::ParamsToWire(params), 0}));
  ASSERT_EQ(secagg_.size(), 1u);
  auto site_keys = privacy::FromWire(Last<codec::SecAggKeys>(secagg_).keys);
  ASSERT_TRUE(site_keys.ok());
  ASSERT_TRUE(server->AcceptKeys(*site_keys).ok());
  std::vector<privacy::SecAggClient> peers;
  for (privacy::ParticipantId id = 2; id <= 5; ++id) {
    auto peer = privacy::SecAggClient::Create(params, id);
    ASSERT_TRUE(peer.ok());
    peers.push_back(std::move(*peer));
    ASSERT_TRUE(server->AcceptKeys(*peers.back().AdvertiseKeys()).ok());
  }
  auto roster = server->CloseKeys();
  ASSERT_TRUE(roster.ok());
  codec::SecAggRoster wire_roster = privacy::ToWire(*roster);
  wire_roster.study_id = "s1";
  wire_roster.round = 1;
  Push(core::MakeMessage(wire_roster));
  ASSERT_EQ(secagg_.size(), 2u);
  auto shares = privacy::FromWire(Last<codec::SecAggShares>(secagg_));
  ASSERT_TRUE(shares.ok());
  std::vector<privacy::ParticipantId> to;
  for (const auto& share : shares->shares) to.push_back(share.to);
  std::sort(to.begin(), to.end());
  const privacy::NeighbourGraph graph({1, 2, 3, 4, 5}, 2, roster->graph_seed);
  EXPECT_EQ(to, graph.Of(1));
  EXPECT_EQ(to.size(), 2u);
  EXPECT_TRUE(server->AcceptShares(*shares).ok());
}

}  // namespace
}  // namespace fedrx::site
