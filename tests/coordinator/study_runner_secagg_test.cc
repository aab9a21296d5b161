// StudyRunner with secure aggregation: after local training the round runs
// the four SecAgg stages with the sites (played here by real SecAggClients
// answering the runner's messages), streams masked inputs into the
// SecAggServer, and commits base + the weighted mean delta of the surviving
// sites, equal to their FedAvg within the fixed point's rounding. Below the
// threshold the round fails and the next one runs. The coordinator never
// receives or stores an individual update.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "services/coordinator/study_runner.h"
#include "services/core/bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"
#include "services/privacy/secagg_client.h"
#include "services/privacy/secagg_wire.h"

namespace fedrx::coordinator {
namespace {

using std::chrono::milliseconds;

class Channel final : public SiteChannel {
 public:
  std::vector<std::string> AvailableSites(const std::string&) const override { return available; }
  core::Status SendToSite(const std::string& site, codec::Message message) override {
    outbox[site].push_back(std::move(message));
    return core::Status::Ok();
  }
  std::vector<std::string> available;
  std::map<std::string, std::deque<codec::Message>> outbox;
};

// After which answer a site falls silent (kNever: it follows every stage).
enum class SilentAfter { kNever, kTraining, kKeys, kShares, kMaskedInput };

struct FakeSite {
  std::string name;
  std::uint64_t samples = 1;
  float spread = 0.5f;  // deltas uniform in [-spread, spread]
  SilentAfter silent = SilentAfter::kNever;
  bool tamper_bundle = false;  // the first share relayed to it is corrupted in transit
  // This round's model and update.
  std::vector<float> global;
  std::vector<float> trained;
  std::optional<privacy::SecAggClient> client;
  double weight = 1;
  std::uint32_t round = 0;
};

codec::StudySpec Spec(std::uint32_t min_sites, std::uint32_t threshold) {
  codec::StudySpec s;
  s.study_id = "s1";
  s.tasks = {"t0"};
  s.model = {4, {2}, 1, 0.0f};  // 13 parameters
  s.rounds = 2;
  s.min_sites = min_sites;
  s.local_epochs = 1;
  s.learning_rate = 0.01f;
  s.batch_size = 8;
  s.seed = 5;
  s.strategy = "fedavg";
  s.round_deadline_ms = 10000;
  s.evaluate_every = 0;
  s.secure_aggregation = true;
  s.secagg_threshold = threshold;
  return s;
}

constexpr std::size_t kParams = 13;

// A study whose sites answer every message the runner sends them, and a log
// of everything the coordinator received from them.
class SecAggStudy {
 public:
  SecAggStudy(const codec::StudySpec& spec, std::vector<FakeSite> sites)
      : spec_(spec), sites_(std::move(sites)) {
    EXPECT_TRUE(ValidateStudySpec(spec).ok()) << ValidateStudySpec(spec);
    initial = ml::InitParameters(ml::NetSpecFromStudy(spec), spec.seed);
    EXPECT_TRUE(studies.Create(spec, initial, 0).ok());
    for (const auto& s : sites_) channel.available.push_back(s.name);
    auto record = studies.Load("s1");
    EXPECT_TRUE(record.ok());
    auto strategy = MakeStrategy(record->spec);
    EXPECT_TRUE(strategy.ok());
    RunnerTimings timings;
    timings.secagg_stage_timeout = milliseconds(2000);
    runner = std::make_unique<StudyRunner>(*record, studies, channel, std::move(*strategy), clock,
                                           metrics, timings);
  }

  FakeSite& site(const std::string& name) {
    for (auto& s : sites_) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no site " << name;
    return sites_.front();
  }

  // Delivers every queued message until none is left; a round whose
  // unmasking went to the worker is completed (as the next Tick would) unless
  // the test looks at the pending unmasking itself (await_unmasking false).
  void Pump() {
    for (bool any = true; any;) {
      any = false;
      for (auto& s : sites_) {
        auto& box = channel.outbox[s.name];
        while (!box.empty()) {
          codec::Message m = std::move(box.front());
          box.pop_front();
          any = true;
          Handle(s, m);
        }
      }
      if (await_unmasking && runner->unmasking()) {
        ASSERT_TRUE(runner->AwaitUnmasking().ok());
        any = true;
      }
    }
  }

  // Lets the deadline of whatever the runner waits for pass.
  void PassDeadline() {
    clock.Advance(milliseconds(spec_.round_deadline_ms + 1));
    ASSERT_TRUE(runner->Tick().ok());
    Pump();
  }

  double Counter(std::string_view name, std::string_view label, std::string_view value) {
    return metrics.Read(name, {{std::string(label), std::string(value)}});
  }

  std::vector<float> Model(std::uint32_t version) {
    auto m = studies.LoadModel("s1", version);
    EXPECT_TRUE(m.ok());
    return m.ok() ? *m : std::vector<float>{};
  }

  std::vector<float> initial;
  core::testing::FakeStateStore store;
  StudyStore studies{store};
  Channel channel;
  core::testing::FakeClock clock;
  core::Metrics metrics{"coordinator"};
  std::unique_ptr<StudyRunner> runner;
  // Every masked vector the coordinator received, by site (test-side copy).
  std::map<std::string, std::vector<std::vector<std::uint32_t>>> received_masked;
  // Each site's plain fixed-point input (w * delta, then w), as it masked it.
  std::map<std::string, std::vector<std::uint32_t>> plain_encoded;
  std::uint32_t tensors_received = 0;
  // The weight each site masked with, in the order they masked.
  std::vector<double> weights_seen;
  // The participant whose sealed share was corrupted (0: none).
  privacy::ParticipantId tampered_dealer = 0;
  bool await_unmasking = true;
  // What the round's secure aggregation exchanged: the params each site was
  // started with, the roster, each site's participant id, the holders its
  // shares were sealed for, and the senders of the shares relayed to it.
  std::map<std::string, privacy::SecAggParams> started_with;
  privacy::KeyRoster roster;
  std::map<std::string, privacy::ParticipantId> participant;
  std::map<std::string, std::vector<privacy::ParticipantId>> shared_with;
  std::map<std::string, std::vector<privacy::ParticipantId>> received_from;

 private:
  void Handle(FakeSite& s, codec::Message& m) {
    if (auto* task = std::get_if<codec::TrainTask>(&m.body)) {
      auto w = m.tensors.at(0).data.As<float>();
      s.global.assign(w.begin(), w.end());
      s.trained = s.global;
      std::mt19937 rng(static_cast<std::uint32_t>(std::hash<std::string>()(s.name)) + task->round);
      std::uniform_real_distribution<float> d(-s.spread, s.spread);
      for (float& x : s.trained) x += d(rng);
      s.round = task->round;
      s.client.reset();
      ASSERT_TRUE(
          runner->OnUpdateReady(s.name, {"s1", task->round, task->model_version, s.samples, {}})
              .ok());
      return;
    }
    if (s.silent == SilentAfter::kTraining) return;
    if (auto* start = std::get_if<codec::SecAggStart>(&m.body)) {
      auto params = privacy::ParamsFromWire(start->params);
      ASSERT_TRUE(params.ok()) << params.status();
      params_ = *params;
      started_with[s.name] = *params;
      participant[s.name] = start->participant;
      auto client = privacy::SecAggClient::Create(*params, start->participant);
      ASSERT_TRUE(client.ok());
      s.client.emplace(std::move(*client));
      s.weight = start->weight_cap == 0
                     ? 1.0
                     : static_cast<double>(s.samples) / static_cast<double>(start->weight_cap);
      auto keys = s.client->AdvertiseKeys();
      ASSERT_TRUE(keys.ok());
      ASSERT_TRUE(runner->OnSecAggKeys(s.name, {"s1", start->round, privacy::ToWire(*keys)}).ok());
      return;
    }
    if (s.silent == SilentAfter::kKeys) return;
    if (auto* roster = std::get_if<codec::SecAggRoster>(&m.body)) {
      auto r = privacy::FromWire(*roster);
      ASSERT_TRUE(r.ok());
      this->roster = *r;
      auto shares = s.client->ShareKeys(*r);
      ASSERT_TRUE(shares.ok()) << shares.status();
      for (const auto& share : shares->shares) shared_with[s.name].push_back(share.to);
      codec::SecAggShares out = privacy::ToWire(*shares);
      out.study_id = "s1";
      out.round = roster->round;
      ASSERT_TRUE(runner->OnSecAggShares(s.name, out).ok());
      return;
    }
    if (s.silent == SilentAfter::kShares) return;
    if (auto* bundle = std::get_if<codec::SecAggBundle>(&m.body)) {
      auto b = privacy::FromWire(*bundle);
      ASSERT_TRUE(b.ok());
      for (const auto& share : b->shares) received_from[s.name].push_back(share.from);
      if (s.tamper_bundle) {
        ASSERT_FALSE(b->shares.empty());
        b->shares[0].ciphertext[10] ^= 0x01;
        tampered_dealer = b->shares[0].from;
      }
      weights_seen.push_back(s.weight);
      std::vector<float> delta(s.trained.size());
      for (std::size_t i = 0; i < delta.size(); ++i) delta[i] = s.trained[i] - s.global[i];
      std::vector<std::uint32_t> plain(delta.size() + 1);
      for (std::size_t i = 0; i < delta.size(); ++i) {
        plain[i] = params_.encoding.Encode(s.weight * static_cast<double>(delta[i]));
      }
      plain.back() = params_.encoding.EncodeWeight(s.weight);
      plain_encoded[s.name] = plain;
      auto y = s.client->MaskInput(*b, delta, s.weight);
      ASSERT_TRUE(y.ok()) << y.status();
      received_masked[s.name].push_back(y->masked);
      std::vector<codec::Tensor> tensors;
      tensors.push_back(codec::Tensor{"masked",
                                      codec::DType::kUInt32,
                                      {static_cast<std::int64_t>(y->masked.size())},
                                      codec::Blob::CopyOf(std::as_bytes(std::span(y->masked)))});
      ++tensors_received;
      ASSERT_TRUE(runner->OnSecAggMaskedInput(s.name, {"s1", bundle->round, y->id}, tensors).ok());
      EXPECT_TRUE(tensors.empty());  // folded in and let go
      return;
    }
    if (s.silent == SilentAfter::kMaskedInput) return;
    if (auto* request = std::get_if<codec::SecAggUnmaskRequest>(&m.body)) {
      auto response = s.client->Unmask(privacy::FromWire(*request));
      ASSERT_TRUE(response.ok()) << response.status();
      codec::SecAggUnmaskResponse out = privacy::ToWire(*response);
      out.study_id = "s1";
      out.round = request->round;
      ASSERT_TRUE(runner->OnSecAggUnmaskResponse(s.name, out).ok());
      return;
    }
    if (std::holds_alternative<codec::UploadGrant>(m.body)) {
      ADD_FAILURE() << "a secagg study granted " << s.name << " a plain upload";
    }
  }

  codec::StudySpec spec_;
  std::vector<FakeSite> sites_;
  privacy::SecAggParams params_;
};

// FedAvg of the given sites' deltas from `base`, in double.
std::vector<double> FedAvgOf(SecAggStudy& study, const std::vector<std::string>& names,
                             const std::vector<float>& base, bool equal_weights = false) {
  std::vector<double> sum(kParams, 0.0);
  double total = 0;
  for (const auto& n : names) {
    FakeSite& s = study.site(n);
    for (std::size_t i = 0; i < kParams; ++i) {
      sum[i] += (equal_weights ? 1.0 : static_cast<double>(s.samples)) * (s.trained[i] - base[i]);
    }
    total += equal_weights ? 1.0 : static_cast<double>(s.samples);
  }
  for (std::size_t i = 0; i < kParams; ++i) sum[i] = base[i] + sum[i] / total;
  return sum;
}

bool Contains(const std::string& haystack, const void* bytes, std::size_t n) {
  return haystack.find(std::string_view(static_cast<const char*>(bytes), n)) != std::string::npos;
}

std::vector<FakeSite> FiveSites() {
  std::vector<FakeSite> sites(5);
  const char* names[] = {"site-a", "site-b", "site-c", "site-d", "site-e"};
  const std::uint64_t samples[] = {100, 250, 50, 400, 175};
  for (std::size_t i = 0; i < 5; ++i) {
    sites[i].name = names[i];
    sites[i].samples = samples[i];
  }
  return sites;
}

TEST(StudyRunnerSecAggTest, RoundCommitsTheFedAvgOfTheSurvivorsWithinTheQuantisationBound) {
  std::vector<FakeSite> sites = FiveSites();
  sites[3].silent = SilentAfter::kShares;       // site-d: no masked input (its masks are undone)
  sites[4].silent = SilentAfter::kMaskedInput;  // site-e: masked input in, then gone
  SecAggStudy study(Spec(3, 3), std::move(sites));
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  // Every site answered the keys and shares; site-d's masked input never comes.
  EXPECT_EQ(study.runner->phase(), StudyRunner::Phase::kSecureAggregation);
  study.PassDeadline();  // closes the masked-input stage without site-d
  EXPECT_EQ(study.runner->phase(), StudyRunner::Phase::kSecureAggregation);
  study.PassDeadline();  // closes unmasking without site-e: Finish
  ASSERT_EQ(study.runner->record().model_version, 1u);

  // site-e's input is in the sum (its self mask is rebuilt from the others'
  // shares); site-d's is not.
  const std::vector<std::string> survivors = {"site-a", "site-b", "site-c", "site-e"};
  auto round = study.studies.LoadRound("s1", 1);
  ASSERT_TRUE(round.ok() && round->has_value());
  EXPECT_EQ((*round)->contributed, survivors);
  EXPECT_EQ((*round)->samples, 100u + 250 + 50 + 175);
  EXPECT_TRUE((*round)->secagg_detections.empty());

  const std::vector<double> expected = FedAvgOf(study, survivors, study.initial);
  const std::vector<float> model = study.Model(1);
  ASSERT_EQ(model.size(), kParams);
  // Documented bound: each of the |U3| sites adds at most e = 2^-(bits+1) to
  // each coordinate of sum(w delta) and to sum(w); the mean is off by at most
  // |U3| e (1 + |mean delta|) / (sum(w) - |U3| e), plus float rounding.
  const double e = SecAggEncoding(5).MaxErrorPerSite();
  const double total_w = (100.0 + 250 + 50 + 175) / 400.0;
  for (std::size_t i = 0; i < kParams; ++i) {
    const double mean_delta = std::abs(expected[i] - study.initial[i]);
    const double bound = 4 * e * (1 + mean_delta) / (total_w - 4 * e) + 1e-6;
    EXPECT_NEAR(model[i], expected[i], bound) << "coordinate " << i;
  }
  EXPECT_EQ(study.Counter("fedrx_coordinator_rounds_total", "outcome", "closed"), 1);
  EXPECT_EQ(study.Counter("fedrx_coordinator_dropouts_total", "stage", "secagg_masked_input"), 1);
  EXPECT_EQ(study.Counter("fedrx_coordinator_dropouts_total", "stage", "secagg_unmask"), 1);
}

TEST(StudyRunnerSecAggTest, CoordinatorNeverReceivesOrStoresAnIndividualUpdate) {
  SecAggStudy study(Spec(3, 3), FiveSites());
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  ASSERT_EQ(study.runner->record().model_version, 1u);
  // All five masked inputs arrived (nothing else carried a tensor), and none
  // is its site's plain encoding: the masks leave no coordinate in clear.
  ASSERT_EQ(study.tensors_received, 5u);
  for (const auto& [site, vectors] : study.received_masked) {
    const auto& plain = study.plain_encoded.at(site);
    for (const auto& y : vectors) {
      ASSERT_EQ(y.size(), kParams + 1);
      std::size_t equal = 0;
      for (std::size_t i = 0; i < y.size(); ++i) equal += y[i] == plain[i];
      EXPECT_EQ(equal, 0u) << site;
    }
  }
  // Nothing in the store holds a site's trained weights, its delta, its
  // plain encoding or its masked vector.
  const std::vector<std::string> stored = study.store.AllStrings();
  for (const char* name : {"site-a", "site-b", "site-c", "site-d", "site-e"}) {
    FakeSite& s = study.site(name);
    std::vector<float> delta(kParams);
    for (std::size_t i = 0; i < kParams; ++i) delta[i] = s.trained[i] - s.global[i];
    for (const auto& v : stored) {
      EXPECT_FALSE(Contains(v, s.trained.data(), kParams * sizeof(float))) << name;
      EXPECT_FALSE(Contains(v, delta.data(), kParams * sizeof(float))) << name;
      // Any 4 consecutive parameters of the update would already be too much.
      EXPECT_FALSE(Contains(v, s.trained.data() + 4, 4 * sizeof(float))) << name;
      const auto& plain = study.plain_encoded.at(name);
      EXPECT_FALSE(Contains(v, plain.data(), plain.size() * 4)) << name;
      for (const auto& y : study.received_masked.at(name)) {
        EXPECT_FALSE(Contains(v, y.data(), y.size() * 4)) << name;
      }
    }
  }
  // The new model is stored (as it should be) and is not any site's update.
  const std::vector<float> model = study.Model(1);
  for (const char* name : {"site-a", "site-b", "site-c", "site-d", "site-e"}) {
    EXPECT_NE(model, study.site(name).trained) << name;
  }
}

TEST(StudyRunnerSecAggTest, PlainModelUpdateIsRefusedAndDroppedInASecAggRound) {
  std::vector<FakeSite> sites = FiveSites();
  sites.resize(3);
  SecAggStudy study(Spec(3, 3), std::move(sites));
  ASSERT_TRUE(study.runner->Tick().ok());
  std::vector<codec::Tensor> t;
  t.push_back(codec::Tensor{"weights",
                            codec::DType::kFloat32,
                            {static_cast<std::int64_t>(kParams)},
                            codec::Blob::FromFloats(std::vector<float>(kParams, 0.5f))});
  core::Status s = study.runner->OnModelUpdate("site-a", {"s1", 1, "site-a", 0, 10, {}}, t);
  EXPECT_EQ(s.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("aggregates securely"), std::string::npos) << s;
  EXPECT_TRUE(t.empty());  // not kept
  EXPECT_EQ(
      study.Counter("fedrx_coordinator_updates_rejected_total", "reason", "secure_aggregation"), 1);
  study.Pump();
  EXPECT_EQ(study.runner->record().model_version, 1u);
}

TEST(StudyRunnerSecAggTest, AnswerUnderAnotherSitesParticipantIdIsRefused) {
  std::vector<FakeSite> sites = FiveSites();
  sites.resize(3);
  sites[0].silent = SilentAfter::kTraining;  // site-a trains but lets the test answer for it
  SecAggStudy study(Spec(3, 3), std::move(sites));
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  ASSERT_EQ(study.runner->phase(), StudyRunner::Phase::kSecureAggregation);
  // site-a is participant 1; it claims to be 2 (site-b, which already answered).
  codec::SecAggKeys keys{
      "s1", 1, {2, std::vector<std::uint8_t>(32, 9), std::vector<std::uint8_t>(32, 8)}};
  core::Status s = study.runner->OnSecAggKeys("site-a", keys);
  EXPECT_EQ(s.code(), core::StatusCode::kPermissionDenied) << s;
  EXPECT_EQ(s.where(), "SecAggKeys.id");
  // A site outside the round cannot join it.
  keys.keys.id = 4;
  EXPECT_EQ(study.runner->OnSecAggKeys("site-z", keys).code(), core::StatusCode::kPermissionDenied);
  // A stale round is refused.
  keys.round = 7;
  EXPECT_EQ(study.runner->OnSecAggKeys("site-a", keys).code(),
            core::StatusCode::kFailedPrecondition);
}

TEST(StudyRunnerSecAggTest, BelowThresholdTheRoundFailsCleanlyAndTheNextRoundRuns) {
  std::vector<FakeSite> sites = FiveSites();
  sites.resize(3);
  sites[2].silent = SilentAfter::kKeys;  // site-c: keys, then silent
  SecAggStudy study(Spec(3, 3), std::move(sites));
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  ASSERT_EQ(study.runner->phase(), StudyRunner::Phase::kSecureAggregation);
  study.PassDeadline();  // the shares stage closes with 2 of 3: below t = 3
  EXPECT_EQ(study.runner->record().model_version, 0u);
  auto round1 = study.studies.LoadRound("s1", 1);
  ASSERT_TRUE(round1.ok() && round1->has_value());
  EXPECT_EQ((*round1)->state, codec::RoundState::kFailed);
  EXPECT_EQ(study.Counter("fedrx_coordinator_rounds_total", "outcome", "failed"), 1);
  EXPECT_EQ(study.Counter("fedrx_coordinator_secagg_rounds_failed_total", "stage", "secagg_shares"),
            1);
  EXPECT_EQ(study.runner->record().current_round, 2u);
  EXPECT_EQ(study.runner->phase(), StudyRunner::Phase::kWaitingForSites);

  // Round 2 with every site present completes from the unchanged model.
  study.site("site-c").silent = SilentAfter::kNever;
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  ASSERT_EQ(study.runner->record().model_version, 1u);
  const std::vector<double> expected =
      FedAvgOf(study, {"site-a", "site-b", "site-c"}, study.initial);
  const std::vector<float> model = study.Model(1);
  for (std::size_t i = 0; i < kParams; ++i) EXPECT_NEAR(model[i], expected[i], 1e-5);
  EXPECT_EQ(study.Counter("fedrx_coordinator_rounds_total", "outcome", "closed"), 1);
}

TEST(StudyRunnerSecAggTest, TooFewTrainedSitesFailTheRoundBeforeAnyKeys) {
  std::vector<FakeSite> sites = FiveSites();
  sites.resize(3);
  SecAggStudy study(Spec(2, 3), std::move(sites));
  ASSERT_TRUE(study.runner->Tick().ok());
  // Only two sites report ready; at the deadline the round cannot reach t = 3.
  study.channel.outbox["site-c"].clear();
  study.Pump();
  study.PassDeadline();
  EXPECT_EQ(study.Counter("fedrx_coordinator_secagg_rounds_failed_total", "stage", "training"), 1);
  EXPECT_EQ(study.runner->record().current_round, 2u);
}

TEST(StudyRunnerSecAggTest, WithDifferentialPrivacyEverySiteWeighsTheSame) {
  codec::StudySpec spec = Spec(3, 3);
  spec.dp_clip_norm = 100;  // clipping only (far above these deltas): no accountant
  SecAggStudy study(spec, FiveSites());
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  ASSERT_EQ(study.runner->record().model_version, 1u);
  EXPECT_EQ(study.weights_seen, std::vector<double>(5, 1.0));
  const std::vector<double> expected =
      FedAvgOf(study, {"site-a", "site-b", "site-c", "site-d", "site-e"}, study.initial,
               /*equal_weights=*/true);
  const std::vector<float> model = study.Model(1);
  for (std::size_t i = 0; i < kParams; ++i) EXPECT_NEAR(model[i], expected[i], 1e-6);
}

TEST(StudyRunnerSecAggTest, DetectionsGoToTheMetricAndTheRoundRecord) {
  std::vector<FakeSite> sites = FiveSites();
  sites[2].tamper_bundle = true;  // site-c cannot open one share sealed for it
  SecAggStudy study(Spec(3, 3), std::move(sites));
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  // One missing share of five leaves t = 3: the round still completes.
  ASSERT_EQ(study.runner->record().model_version, 1u);
  auto round = study.studies.LoadRound("s1", 1);
  ASSERT_TRUE(round.ok() && round->has_value());
  // Participant ids follow the sorted site ids: 1 is site-a, ..., 5 site-e.
  ASSERT_GE(study.tampered_dealer, 1u);
  ASSERT_LE(study.tampered_dealer, 5u);
  const std::string dealer =
      std::string("site-") + static_cast<char>('a' + study.tampered_dealer - 1);
  ASSERT_NE(dealer, "site-c");
  EXPECT_EQ((*round)->secagg_detections,
            std::vector<std::string>{"share_failed_authentication:" + dealer});
  EXPECT_EQ(study.Counter("fedrx_coordinator_secagg_detections_total", "kind",
                          "share_failed_authentication"),
            1);
  const std::vector<double> expected =
      FedAvgOf(study, {"site-a", "site-b", "site-c", "site-d", "site-e"}, study.initial);
  const std::vector<float> model = study.Model(1);
  for (std::size_t i = 0; i < kParams; ++i) EXPECT_NEAR(model[i], expected[i], 1e-6);
}

// SecAgg+ (secagg_neighbours = k): the sites are started with k, and each
// seals its shares for, and is relayed shares from, exactly its k
// neighbours in the graph the library builds from the round's roster; the
// masks still cancel, so the model is the same FedAvg.
codec::StudySpec SecAggPlusSpec(std::uint32_t neighbours, std::uint32_t threshold) {
  codec::StudySpec s = Spec(threshold, threshold);
  s.secagg_neighbours = neighbours;
  return s;
}

std::vector<privacy::ParticipantId> Sorted(std::vector<privacy::ParticipantId> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(StudyRunnerSecAggTest, SecAggPlusSitesShareOnlyWithTheirNeighbours) {
  SecAggStudy study(SecAggPlusSpec(2, 2), FiveSites());
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  ASSERT_EQ(study.runner->record().model_version, 1u);

  std::vector<privacy::ParticipantId> u1;
  for (const auto& k : study.roster.sites) u1.push_back(k.id);
  ASSERT_EQ(u1.size(), 5u);
  const privacy::NeighbourGraph graph(u1, 2, study.roster.graph_seed);
  ASSERT_FALSE(graph.complete());
  std::size_t relayed = 0;
  for (const char* name : {"site-a", "site-b", "site-c", "site-d", "site-e"}) {
    EXPECT_EQ(study.started_with.at(name).neighbours, 2u) << name;
    const std::vector<privacy::ParticipantId> neighbours = graph.Of(study.participant.at(name));
    ASSERT_EQ(neighbours.size(), 2u) << name;
    EXPECT_EQ(Sorted(study.shared_with.at(name)), neighbours) << name;
    EXPECT_EQ(Sorted(study.received_from.at(name)), neighbours) << name;
    relayed += study.received_from.at(name).size();
  }
  EXPECT_EQ(relayed, 5u * 2);  // the complete graph would relay 5 * 4

  const std::vector<double> expected =
      FedAvgOf(study, {"site-a", "site-b", "site-c", "site-d", "site-e"}, study.initial);
  const std::vector<float> model = study.Model(1);
  ASSERT_EQ(model.size(), kParams);
  for (std::size_t i = 0; i < kParams; ++i) EXPECT_NEAR(model[i], expected[i], 1e-6);
}

TEST(StudyRunnerSecAggTest, SecAggPlusRemovesTheMasksOfADroppedSiteFromItsNeighbours) {
  std::vector<FakeSite> sites = FiveSites();
  sites[3].silent = SilentAfter::kShares;  // site-d: shares out, no masked input
  SecAggStudy study(SecAggPlusSpec(2, 2), std::move(sites));
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  study.PassDeadline();  // closes the masked-input stage without site-d
  ASSERT_EQ(study.runner->record().model_version, 1u);
  const std::vector<std::string> survivors = {"site-a", "site-b", "site-c", "site-e"};
  auto round = study.studies.LoadRound("s1", 1);
  ASSERT_TRUE(round.ok() && round->has_value());
  EXPECT_EQ((*round)->contributed, survivors);
  const std::vector<double> expected = FedAvgOf(study, survivors, study.initial);
  const std::vector<float> model = study.Model(1);
  ASSERT_EQ(model.size(), kParams);
  for (std::size_t i = 0; i < kParams; ++i) EXPECT_NEAR(model[i], expected[i], 1e-6);
}

TEST(StudyRunnerSecAggTest, BadSecAggNeighboursAreRefusedNamingTheKey) {
  EXPECT_TRUE(ValidateStudySpec(SecAggPlusSpec(2, 2)).ok());
  EXPECT_TRUE(ValidateStudySpec(SecAggPlusSpec(2, 3)).ok());  // t = k + 1
  const auto refused = [](const codec::StudySpec& spec) {
    core::Status s = ValidateStudySpec(spec);
    EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(s.where(), "StudySpec.secagg_neighbours") << s;
    EXPECT_NE(s.message().find("privacy.secagg_neighbours"), std::string::npos) << s;
    return s.message();
  };
  EXPECT_NE(refused(SecAggPlusSpec(3, 2)).find("even"), std::string::npos);
  // The threshold must fit a neighbourhood of k + 1, also when it is min_sites.
  EXPECT_NE(refused(SecAggPlusSpec(2, 4)).find("neighbourhood of 3"), std::string::npos);
  codec::StudySpec by_min_sites = Spec(4, 0);
  by_min_sites.secagg_neighbours = 2;
  EXPECT_NE(refused(by_min_sites).find("threshold 4"), std::string::npos);
  // Fewer neighbours than the sites named.
  codec::StudySpec named = SecAggPlusSpec(4, 2);
  named.sites = {"site-a", "site-b", "site-c", "site-d"};
  EXPECT_NE(refused(named).find("below the 4 sites"), std::string::npos);
  named.sites.push_back("site-e");
  EXPECT_TRUE(ValidateStudySpec(named).ok()) << ValidateStudySpec(named);
  // Only with secure aggregation.
  codec::StudySpec plain = Spec(2, 0);
  plain.secagg_neighbours = 2;
  plain.secure_aggregation = false;
  refused(plain);
}

// Unmasking runs on a worker: while it is held there, the runner answers
// (its study info, ticks past every deadline) and refuses the round's late
// SecAgg answers without touching the server; once released, the next Tick
// closes the round with the FedAvg model.
TEST(StudyRunnerSecAggTest, RunnerAnswersWhileTheRoundIsUnmaskedOnItsWorker) {
  SecAggStudy study(Spec(3, 3), FiveSites());
  study.await_unmasking = false;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> entered;
  std::future<void> worker_entered = entered.get_future();
  study.runner->SetUnmaskHookForTesting([gate, &entered] {
    entered.set_value();
    gate.wait();
  });
  // Declared after the study, so destroyed first: a failed assertion below
  // still lets the worker go before the runner joins it.
  struct Release {
    std::promise<void>& p;
    bool done = false;
    void operator()() {
      if (!done) p.set_value();
      done = true;
    }
    ~Release() { (*this)(); }
  } let_go{release};

  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  // Every unmask response is in; the worker holds the round's server.
  ASSERT_TRUE(study.runner->unmasking());
  worker_entered.wait();
  EXPECT_EQ(study.runner->phase(), StudyRunner::Phase::kSecureAggregation);

  auto info = study.runner->Info();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->current_round, 1u);
  EXPECT_EQ(info->model_version, 0u);
  ASSERT_EQ(info->rounds.size(), 1u);
  EXPECT_EQ(info->rounds[0].state, codec::RoundState::kTraining);

  study.clock.Advance(milliseconds(60000));  // past the stage and round deadlines
  ASSERT_TRUE(study.runner->Tick().ok());
  EXPECT_TRUE(study.runner->unmasking());
  EXPECT_EQ(study.runner->record().model_version, 0u);
  EXPECT_EQ(study.Counter("fedrx_coordinator_rounds_total", "outcome", "failed"), 0);

  const privacy::ParticipantId a = study.participant.at("site-a");
  core::Status late = study.runner->OnSecAggUnmaskResponse("site-a", {"s1", 1, a, {}, {}, {}});
  EXPECT_EQ(late.code(), core::StatusCode::kFailedPrecondition) << late;
  EXPECT_NE(late.message().find("being unmasked"), std::string::npos) << late;
  const std::vector<std::uint32_t> words(kParams + 1, 7);
  std::vector<codec::Tensor> masked;
  masked.push_back(codec::Tensor{"masked",
                                 codec::DType::kUInt32,
                                 {static_cast<std::int64_t>(words.size())},
                                 codec::Blob::CopyOf(std::as_bytes(std::span(words)))});
  EXPECT_EQ(study.runner->OnSecAggMaskedInput("site-b", {"s1", 1, study.participant.at("site-b")},
                                              masked)
                .code(),
            core::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(masked.empty());  // dropped unread
  EXPECT_EQ(study.Counter("fedrx_coordinator_updates_rejected_total", "reason", "late"), 2);
  // Another round's answers are still just stale.
  EXPECT_EQ(study.runner->OnSecAggUnmaskResponse("site-a", {"s1", 2, a, {}, {}, {}}).code(),
            core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(study.Counter("fedrx_coordinator_updates_rejected_total", "reason", "stale_round"), 1);

  let_go();
  ASSERT_TRUE(study.runner->AwaitUnmasking().ok());
  EXPECT_FALSE(study.runner->unmasking());
  ASSERT_EQ(study.runner->record().model_version, 1u);
  EXPECT_EQ(study.Counter("fedrx_coordinator_rounds_total", "outcome", "closed"), 1);
  EXPECT_NE(study.metrics.Serialize().find("fedrx_coordinator_secagg_finish_seconds_count 1"),
            std::string::npos);
  const std::vector<double> expected =
      FedAvgOf(study, {"site-a", "site-b", "site-c", "site-d", "site-e"}, study.initial);
  const std::vector<float> model = study.Model(1);
  ASSERT_EQ(model.size(), kParams);
  for (std::size_t i = 0; i < kParams; ++i) EXPECT_NEAR(model[i], expected[i], 1e-6);
  // Nothing is pending any more: AwaitUnmasking returns at once.
  EXPECT_TRUE(study.runner->AwaitUnmasking().ok());
}

TEST(StudyRunnerSecAggTest, EncodingIsTheFinestThatCannotWrap) {
  EXPECT_EQ(SecAggEncoding(3).scale_bits, 24);
  EXPECT_EQ(SecAggEncoding(15).scale_bits, 24);  // 15 * 8 * 2^24 < 2^31
  EXPECT_EQ(SecAggEncoding(16).scale_bits, 23);
  EXPECT_EQ(SecAggEncoding(100).scale_bits, 21);  // 100 * 8 * 2^21 < 2^31
  EXPECT_EQ(SecAggEncoding(4095).scale_bits, 16);
  for (std::size_t n : {2, 5, 100, 1000, 4095}) {
    EXPECT_TRUE(SecAggEncoding(n).Validate(n).ok()) << n;
    EXPECT_DOUBLE_EQ(SecAggEncoding(n).clip, 8.0);
  }
  EXPECT_NE(SecAggRoundTag("s1", 1), SecAggRoundTag("s1", 2));
  EXPECT_NE(SecAggRoundTag("s1", 1), SecAggRoundTag("s2", 1));
}

}  // namespace
}  // namespace fedrx::coordinator
