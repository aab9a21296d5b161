// Statistics studies (statistic "pair_counts"): the round sums the sites'
// 2x2 counts exactly (no FedAvg weighting), in the clear or through secure
// aggregation (whose unmasked sum equals the plain sum, word for word), stores
// the sum as version 1 and completes; counts that cannot be a site's table
// (fractions, negatives, more than the compounds it declared) are refused;
// and the spec's checks refuse what does not apply to counts.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>

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

// Rows CT_TOX, FDA_APPROVED x columns SR-MMP, NR-AhR, SR-p53: 6 pairs, 24 words.
codec::StudySpec CountsSpec(bool secure) {
  codec::StudySpec s;
  s.study_id = "counts";
  s.statistic = kStatisticPairCounts;
  s.statistic_rows = {"CT_TOX", "FDA_APPROVED"};
  s.tasks = {"SR-MMP", "NR-AhR", "SR-p53"};
  s.rounds = 1;
  s.min_sites = 3;
  s.round_deadline_ms = 10000;
  s.strategy = "fedavg";
  s.secure_aggregation = secure;
  s.secagg_threshold = secure ? 3 : 0;
  return s;
}

struct FakeSite {
  std::string name;
  std::uint64_t compounds = 0;                    // declared
  std::vector<float> counts;                      // what it sends (24 words)
  std::shared_ptr<privacy::SecAggClient> client;  // shared: the test copies sites
  double weight = -1;
  privacy::SecAggParams params;
};

// Counts a site could hold: per pair a table summing to at most `compounds`.
std::vector<float> TableCounts(std::uint64_t compounds, std::uint32_t salt) {
  std::vector<float> v;
  for (std::uint32_t pair = 0; pair < 6; ++pair) {
    const std::uint64_t a = (salt * 7 + pair * 3) % 11;
    const std::uint64_t b = (salt * 5 + pair) % 13;
    const std::uint64_t c = (salt + pair * 2) % 17;
    const std::uint64_t used = a + b + c;
    const std::uint64_t d = compounds > used ? (compounds - used) / (pair + 1) : 0;
    for (std::uint64_t x : {a, b, c, d}) v.push_back(static_cast<float>(x));
  }
  return v;
}

class CountsStudy {
 public:
  CountsStudy(const codec::StudySpec& spec, std::vector<FakeSite> sites)
      : sites_(std::move(sites)) {
    EXPECT_TRUE(ValidateStudySpec(spec).ok()) << ValidateStudySpec(spec);
    EXPECT_EQ(GlobalParameterCount(spec), 24u);
    EXPECT_TRUE(studies.Create(spec, InitialModel(spec), 0).ok());
    for (const auto& s : sites_) channel.available.push_back(s.name);
    auto record = studies.Load(spec.study_id);
    EXPECT_TRUE(record.ok());
    auto strategy = MakeStrategy(record->spec);
    EXPECT_TRUE(strategy.ok());
    runner = std::make_unique<StudyRunner>(*record, studies, channel, std::move(*strategy), clock,
                                           metrics);
  }

  FakeSite& site(const std::string& name) {
    for (auto& s : sites_) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no site " << name;
    return sites_.front();
  }

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
      if (runner->unmasking()) {
        ASSERT_TRUE(runner->AwaitUnmasking().ok());
        any = true;
      }
    }
  }

  std::vector<float> Model(std::uint32_t version) {
    auto m = studies.LoadModel("counts", version);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : std::vector<float>{};
  }

  core::testing::FakeStateStore store;
  StudyStore studies{store};
  Channel channel;
  core::testing::FakeClock clock;
  core::Metrics metrics{"coordinator"};
  std::unique_ptr<StudyRunner> runner;
  std::vector<core::Status> update_answers;
  std::uint32_t plain_updates = 0;

 private:
  void Handle(FakeSite& s, codec::Message& m) {
    if (auto* task = std::get_if<codec::TrainTask>(&m.body)) {
      // The "model" a counts study hands out is its version 0: all zeros.
      ASSERT_EQ(m.tensors.size(), 1u);
      for (float w : m.tensors[0].data.As<float>()) ASSERT_EQ(w, 0.0f);
      ASSERT_TRUE(
          runner
              ->OnUpdateReady(s.name, {"counts", task->round, task->model_version, s.compounds, {}})
              .ok());
      return;
    }
    if (auto* grant = std::get_if<codec::UploadGrant>(&m.body)) {
      ++plain_updates;
      std::vector<codec::Tensor> tensors;
      tensors.push_back(codec::Tensor{"weights",
                                      codec::DType::kFloat32,
                                      {static_cast<std::int64_t>(s.counts.size())},
                                      codec::Blob::CopyOf(std::as_bytes(std::span(s.counts)))});
      update_answers.push_back(runner->OnModelUpdate(
          s.name, {"counts", grant->round, s.name, 0, s.compounds, {}}, tensors));
      return;
    }
    if (auto* start = std::get_if<codec::SecAggStart>(&m.body)) {
      auto params = privacy::ParamsFromWire(start->params);
      ASSERT_TRUE(params.ok()) << params.status();
      s.params = *params;
      auto client = privacy::SecAggClient::Create(*params, start->participant);
      ASSERT_TRUE(client.ok());
      s.client = std::make_shared<privacy::SecAggClient>(std::move(*client));
      // What a site does: cap 0 means weight 1.
      s.weight = start->weight_cap == 0 ? 1.0 : 0.5;
      auto keys = s.client->AdvertiseKeys();
      ASSERT_TRUE(keys.ok());
      ASSERT_TRUE(
          runner->OnSecAggKeys(s.name, {"counts", start->round, privacy::ToWire(*keys)}).ok());
      return;
    }
    if (auto* roster = std::get_if<codec::SecAggRoster>(&m.body)) {
      auto r = privacy::FromWire(*roster);
      ASSERT_TRUE(r.ok());
      auto shares = s.client->ShareKeys(*r);
      ASSERT_TRUE(shares.ok()) << shares.status();
      codec::SecAggShares out = privacy::ToWire(*shares);
      out.study_id = "counts";
      out.round = roster->round;
      ASSERT_TRUE(runner->OnSecAggShares(s.name, out).ok());
      return;
    }
    if (auto* bundle = std::get_if<codec::SecAggBundle>(&m.body)) {
      auto b = privacy::FromWire(*bundle);
      ASSERT_TRUE(b.ok());
      auto y = s.client->MaskInput(*b, s.counts, s.weight);
      ASSERT_TRUE(y.ok()) << y.status();
      EXPECT_EQ(s.client->clipped_coordinates(), 0u);
      std::vector<codec::Tensor> tensors;
      tensors.push_back(codec::Tensor{"masked",
                                      codec::DType::kUInt32,
                                      {static_cast<std::int64_t>(y->masked.size())},
                                      codec::Blob::CopyOf(std::as_bytes(std::span(y->masked)))});
      ASSERT_TRUE(
          runner->OnSecAggMaskedInput(s.name, {"counts", bundle->round, y->id}, tensors).ok());
      return;
    }
    if (auto* request = std::get_if<codec::SecAggUnmaskRequest>(&m.body)) {
      auto response = s.client->Unmask(privacy::FromWire(*request));
      ASSERT_TRUE(response.ok()) << response.status();
      codec::SecAggUnmaskResponse out = privacy::ToWire(*response);
      out.study_id = "counts";
      out.round = request->round;
      ASSERT_TRUE(runner->OnSecAggUnmaskResponse(s.name, out).ok());
      return;
    }
    if (std::holds_alternative<codec::EvaluateTask>(m.body)) {
      ADD_FAILURE() << "a counts study has no model to evaluate";
    }
  }

  std::vector<FakeSite> sites_;
};

std::vector<FakeSite> ThreeSites() {
  std::vector<FakeSite> sites(3);
  const char* names[] = {"hospital-d", "hospital-f", "pharma-e"};
  const std::uint64_t compounds[] = {412, 95, 1503};
  for (std::uint32_t i = 0; i < 3; ++i) {
    sites[i].name = names[i];
    sites[i].compounds = compounds[i];
    sites[i].counts = TableCounts(compounds[i], i + 1);
  }
  return sites;
}

std::vector<float> SumOf(const std::vector<FakeSite>& sites) {
  std::vector<float> sum(24, 0.0f);
  for (const auto& s : sites) {
    for (std::size_t i = 0; i < 24; ++i) sum[i] += s.counts[i];
  }
  return sum;
}

TEST(StudyRunnerStatisticsTest, PlainRoundStoresTheExactSumAndCompletes) {
  const std::vector<FakeSite> sites = ThreeSites();
  CountsStudy study(CountsSpec(false), sites);
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  EXPECT_EQ(study.plain_updates, 3u);
  for (const auto& s : study.update_answers) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(study.runner->phase(), StudyRunner::Phase::kDone);
  EXPECT_EQ(study.runner->record().state, codec::StudyState::kCompleted);
  ASSERT_EQ(study.runner->record().model_version, 1u);
  // The sum, not a sample-weighted mean: word for word.
  EXPECT_EQ(study.Model(1), SumOf(sites));
  auto round = study.studies.LoadRound("counts", 1);
  ASSERT_TRUE(round.ok() && round->has_value());
  EXPECT_EQ((*round)->state, codec::RoundState::kClosed);
  EXPECT_EQ((*round)->samples, 412u + 95 + 1503);
  auto metrics = study.studies.LoadRoundMetrics("counts", 1);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ((*metrics)["statistic_sites"], 3);
  EXPECT_EQ((*metrics)["statistic_compounds"], 2010);
  EXPECT_EQ((*metrics)["statistic_pairs"], 6);
  EXPECT_EQ((*metrics)["statistic_secure"], 0);
  auto stored = study.studies.Load("counts");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, codec::StudyState::kCompleted);
}

TEST(StudyRunnerStatisticsTest, SecureRoundUnmasksTheSameSumAsThePlainOne) {
  const std::vector<FakeSite> sites = ThreeSites();
  CountsStudy plain(CountsSpec(false), sites);
  ASSERT_TRUE(plain.runner->Tick().ok());
  plain.Pump();
  CountsStudy secure(CountsSpec(true), sites);
  ASSERT_TRUE(secure.runner->Tick().ok());
  secure.Pump();
  EXPECT_EQ(secure.plain_updates, 0u);  // nothing travelled unmasked
  ASSERT_EQ(secure.runner->record().model_version, 1u);
  EXPECT_EQ(secure.runner->record().state, codec::StudyState::kCompleted);
  EXPECT_EQ(secure.Model(1), plain.Model(1));
  EXPECT_EQ(secure.Model(1), SumOf(sites));
  // Integers at scale 2^0, clipped at the largest declared count; weight 1.
  const FakeSite& site = secure.site("pharma-e");
  EXPECT_EQ(site.params.encoding.scale_bits, 0);
  EXPECT_EQ(site.params.encoding.clip, 1503.0);
  EXPECT_EQ(site.weight, 1.0);
  auto metrics = secure.studies.LoadRoundMetrics("counts", 1);
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ((*metrics)["statistic_secure"], 1);
}

TEST(StudyRunnerStatisticsTest, MalformedCountsAreRefusedAndNeverSummed) {
  struct Case {
    const char* what;
    std::size_t word;
    float value;
  };
  // hospital-f declares 95 compounds.
  for (const Case& c : {Case{"fraction", 5, 2.5f}, Case{"negative", 0, -1.0f},
                        Case{"above its compounds", 3, 500.0f}}) {
    SCOPED_TRACE(c.what);
    std::vector<FakeSite> sites = ThreeSites();
    sites[1].counts[c.word] = c.value;
    CountsStudy study(CountsSpec(false), sites);
    ASSERT_TRUE(study.runner->Tick().ok());
    study.Pump();
    ASSERT_EQ(study.update_answers.size(), 3u);
    // Grants go in site-id order: hospital-d, hospital-f, pharma-e.
    EXPECT_TRUE(study.update_answers[0].ok());
    EXPECT_EQ(study.update_answers[1].code(), core::StatusCode::kInvalidArgument);
    EXPECT_EQ(study.update_answers[1].where(), "tensor 0 (counts)");
    EXPECT_EQ(study.metrics.Read("fedrx_coordinator_updates_rejected_total",
                                 {{"reason", "malformed_counts"}}),
              1);
    // Two of the three needed: the round fails, no counts are stored.
    EXPECT_EQ(study.runner->record().model_version, 0u);
    EXPECT_EQ(study.runner->record().state, codec::StudyState::kFailed);
  }
}

TEST(StudyRunnerStatisticsTest, CountsOfTheWrongLengthAreRefused) {
  std::vector<FakeSite> sites = ThreeSites();
  sites[0].counts.resize(20);
  CountsStudy study(CountsSpec(false), sites);
  ASSERT_TRUE(study.runner->Tick().ok());
  study.Pump();
  ASSERT_FALSE(study.update_answers.empty());
  EXPECT_EQ(study.update_answers[0].code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(study.update_answers[0].where(), "tensor 0");
  EXPECT_EQ(study.runner->record().model_version, 0u);
}

TEST(StudyRunnerStatisticsTest, CountsEncodingIsExactAndRefusesSumsThatCouldReach2To24) {
  auto e = CountsEncoding(1503, 3);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->scale_bits, 0);
  EXPECT_EQ(e->clip, 1503.0);
  EXPECT_EQ(e->Decode(e->Encode(1503) + e->Encode(1) + e->Encode(0)), 1504.0);
  EXPECT_TRUE(CountsEncoding(0, 3).ok());  // no compounds: clip 1
  // 3 x 5.6M >= 2^24: the stored float32 sum could round.
  auto big = CountsEncoding(5'600'000, 3);
  EXPECT_EQ(big.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CountsEncoding(5'500'000, 3).ok());
}

TEST(StudyRunnerStatisticsTest, SpecChecksRefuseWhatDoesNotApplyToCounts) {
  EXPECT_TRUE(ValidateStudySpec(CountsSpec(true)).ok());
  const auto where = [](codec::StudySpec s) { return ValidateStudySpec(s).where(); };
  codec::StudySpec s = CountsSpec(true);
  s.statistic = "means";
  EXPECT_EQ(where(s), "StudySpec.statistic");
  s = CountsSpec(true);
  s.statistic_rows.clear();
  EXPECT_EQ(where(s), "StudySpec.statistic_rows");
  s = CountsSpec(true);
  s.statistic.clear();  // rows without a statistic
  EXPECT_EQ(where(s), "StudySpec.statistic");
  s = CountsSpec(true);
  s.tasks.clear();
  EXPECT_EQ(where(s), "StudySpec.tasks");
  s = CountsSpec(true);
  s.tasks.push_back("CT_TOX");
  EXPECT_EQ(where(s), "StudySpec.statistic_rows[0]");
  s = CountsSpec(true);
  s.statistic_rows.push_back("CT_TOX");
  EXPECT_EQ(where(s), "StudySpec.statistic_rows[2]");
  s = CountsSpec(true);
  s.rounds = 3;
  EXPECT_EQ(where(s), "StudySpec.rounds");
  s = CountsSpec(true);
  s.dp_clip_norm = 1;
  s.dp_noise_multiplier = 1;
  EXPECT_EQ(where(s), "StudySpec.dp_clip_norm");
  s = CountsSpec(true);
  s.strategy = "median";
  EXPECT_EQ(where(s), "StudySpec.strategy");
  s = CountsSpec(true);
  s.secagg_threshold = 1;
  EXPECT_EQ(where(s), "StudySpec.secagg_threshold");
  s = CountsSpec(true);
  s.sites = {"hospital-d", "pharma-e"};  // min_sites 3 > 2 named
  EXPECT_EQ(where(s), "StudySpec.min_sites");
  s = CountsSpec(true);
  s.private_heads = true;
  EXPECT_EQ(where(s), "StudySpec.private_heads");
}

}  // namespace
}  // namespace fedrx::coordinator
