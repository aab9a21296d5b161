// Private heads at the site, over the in-memory bus: two sites with
// different task sets (3 and 2 tasks) take part in one private-heads study.
// Each trains the shared trunk with a head of its own, sends only the trunk
// (never a head value), keeps its head changing round after round, and
// evaluates its own tasks with its own head.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"
#include "services/site/site_service.h"
#include "tests/support/child_process.h"

namespace fedrx::site {
namespace {

using std::chrono::milliseconds;

constexpr std::uint32_t kDim = 8;
constexpr std::size_t kTrunk = kDim * 5 + 5;  // one hidden layer of 5

// `rows` rows over 8 bits; task t is positive when bit t is set (some missing).
ml::Dataset Data(const std::vector<std::string>& tasks, std::size_t rows, std::size_t shift) {
  ml::Dataset d;
  d.tasks = tasks;
  d.x.dim = kDim;
  for (std::size_t i = 0; i < rows; ++i) {
    std::vector<std::uint32_t> bits;
    for (std::uint32_t b = 0; b < kDim; ++b) {
      if (((i + shift) >> (b % 4)) & 1u) bits.push_back(b);
    }
    d.x.AddRow(bits);
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const bool set = std::find(bits.begin(), bits.end(), t) != bits.end();
      d.y.push_back(i % 7 == t ? ml::kMissing : static_cast<std::int8_t>(set ? 1 : 0));
    }
    d.smiles.push_back("C");
    d.scaffolds.push_back("");
    d.split.push_back("");
  }
  return d;
}

codec::StudySpec Spec() {
  codec::StudySpec s;
  s.study_id = "ph";
  s.model = {kDim, {5}, 0, 0.0f};  // the trunk only
  s.private_heads = true;
  s.rounds = 3;
  s.min_sites = 2;
  s.local_epochs = 2;
  s.learning_rate = 0.05f;
  s.batch_size = 8;
  s.seed = 9;
  return s;
}

std::vector<float> Trunk() {
  std::vector<float> w = ml::InitParameters(ml::WithHead(ml::NetSpecFromStudy(Spec()), 1), 9);
  w.resize(kTrunk);
  return w;
}

codec::Message WithWeights(codec::Body body, std::vector<float> w) {
  std::vector<codec::Tensor> t;
  t.push_back(codec::Tensor{"weights",
                            codec::DType::kFloat32,
                            {static_cast<std::int64_t>(w.size())},
                            codec::Blob::FromFloats(std::move(w))});
  return core::MakeMessage(std::move(body), std::move(t));
}

class SitePrivateHeadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        platform_
            .Serve("inproc://gateway",
                   [this](core::Inbound&& in) {
                     auto& body = in.message.body;
                     if (auto* r = std::get_if<codec::RegisterSite>(&body)) {
                       peers_[r->site_id] = in.peer;
                       core::Reply(platform_, in, codec::SiteRegistered{r->site_id, 1, true})
                           .IgnoreError();
                     } else if (std::holds_alternative<codec::GetStudy>(body)) {
                       codec::StudyInfo info;
                       info.study = Spec();
                       core::Reply(platform_, in, info).IgnoreError();
                     } else if (auto* u = std::get_if<codec::UpdateReady>(&body)) {
                       ready_.push_back(u->round);
                     } else if (auto* m = std::get_if<codec::ModelUpdate>(&body)) {
                       auto w = in.message.tensors.at(0).data.As<float>();
                       ASSERT_EQ(in.message.tensors.size(), 1u);
                       updates_[m->site_id].push_back(std::vector<float>(w.begin(), w.end()));
                       core::Reply(platform_, in, codec::Ack{"ok"}).IgnoreError();
                     } else if (std::holds_alternative<codec::EvaluationResult>(body)) {
                       evaluations_.push_back(std::move(in.message));
                     }
                   })
            .ok());
  }

  std::unique_ptr<SiteService> MakeSite(const std::string& id, core::testing::FakeBus& bus,
                                        const std::vector<std::string>& tasks,
                                        const std::string& state_dir = "") {
    SiteOptions o;
    o.state_dir = state_dir;
    o.site_id = id;
    o.institution = id;
    o.gateway_endpoint = "inproc://gateway";
    o.approved_studies = {"ph"};
    o.fingerprint_bits = kDim;
    o.train_threads = 1;
    LocalData data{Data(tasks, 40, id.size()), Data(tasks, 14, 3), Data(tasks, 4, 5)};
    auto site = std::make_unique<SiteService>(o, std::move(data), bus, metrics_, clock_);
    EXPECT_TRUE(site->Start().ok());
    network_.Pump();
    return site;
  }

  void Push(const std::string& site, codec::Message m) {
    m.header.route_to = site;
    ASSERT_TRUE(platform_.SendTo(peers_.at(site), std::move(m)).ok());
    network_.Pump();
  }

  // One round at `site`: the trunk goes out, the site trains, is granted and
  // uploads. Returns what it uploaded.
  std::vector<float> Round(SiteService& site, const std::string& id, std::uint32_t round,
                           const std::vector<float>& trunk) {
    const std::size_t before = ready_.size();
    Push(id,
         WithWeights(codec::TrainTask{"ph", round, round - 1, 2, 8, 0.05f, 11 + round, 0}, trunk));
    site.WaitForTraining();
    site.Tick().IgnoreError();
    network_.Pump();
    EXPECT_EQ(ready_.size(), before + 1) << id << " round " << round;
    Push(id, core::MakeMessage(codec::UploadGrant{"ph", round}));
    EXPECT_FALSE(updates_[id].empty());
    return updates_[id].empty() ? std::vector<float>() : updates_[id].back();
  }

  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"site"};
  core::Metrics platform_metrics_{"gateway"};
  core::testing::FakeBus platform_{network_, core::BusOptions{"gateway"}, platform_metrics_,
                                   clock_};
  core::testing::FakeBus bus_a_{network_, core::BusOptions{"site-a"}, metrics_, clock_};
  core::testing::FakeBus bus_b_{network_, core::BusOptions{"site-b"}, metrics_, clock_};
  std::map<std::string, core::PeerId> peers_;
  std::vector<std::uint32_t> ready_;
  std::map<std::string, std::vector<std::vector<float>>> updates_;
  std::vector<codec::Message> evaluations_;
};

// No value of `head` occurs anywhere in `sent`.
bool ContainsNoneOf(const std::vector<float>& sent, const std::vector<float>& head) {
  for (float h : head) {
    if (std::find(sent.begin(), sent.end(), h) != sent.end()) return false;
  }
  return true;
}

TEST_F(SitePrivateHeadsTest, SitesWithDifferentTasksSendOnlyTheTrunkAndKeepTheirHeads) {
  auto a = MakeSite("site-a", bus_a_, {"a0", "a1", "a2"});
  auto b = MakeSite("site-b", bus_b_, {"b0", "b1"});
  const ml::NetSpec trunk_spec = ml::NetSpecFromStudy(Spec());
  const std::vector<float> head_a0 =
      ml::InitHead(ml::WithHead(trunk_spec, 3), HeadSeed(Spec().seed, "site-a"));
  const std::vector<float> head_b0 =
      ml::InitHead(ml::WithHead(trunk_spec, 2), HeadSeed(Spec().seed, "site-b"));
  ASSERT_EQ(head_a0.size(), 5u * 3 + 3);
  ASSERT_EQ(head_b0.size(), 5u * 2 + 2);

  std::vector<float> trunk = Trunk();
  std::map<std::string, std::vector<std::vector<float>>> heads;
  for (std::uint32_t round = 1; round <= 2; ++round) {
    const std::vector<float> ua = Round(*a, "site-a", round, trunk);
    const std::vector<float> ub = Round(*b, "site-b", round, trunk);
    // Exactly the trunk leaves each site, trained.
    ASSERT_EQ(ua.size(), kTrunk);
    ASSERT_EQ(ub.size(), kTrunk);
    EXPECT_NE(ua, trunk);
    EXPECT_NE(ub, trunk);
    heads["site-a"].push_back(a->head("ph"));
    heads["site-b"].push_back(b->head("ph"));
    ASSERT_EQ(heads["site-a"].back().size(), head_a0.size());
    ASSERT_EQ(heads["site-b"].back().size(), head_b0.size());
    // No head value, initial or trained, is in what left.
    EXPECT_TRUE(ContainsNoneOf(ua, heads["site-a"].back()));
    EXPECT_TRUE(ContainsNoneOf(ua, head_a0));
    EXPECT_TRUE(ContainsNoneOf(ub, heads["site-b"].back()));
    EXPECT_TRUE(ContainsNoneOf(ub, head_b0));
    // The coordinator's FedAvg of the two trunks is the next global model.
    for (std::size_t i = 0; i < kTrunk; ++i) trunk[i] = (ua[i] + ub[i]) / 2;
  }
  // Each head trained, and kept training from where it was.
  EXPECT_NE(heads["site-a"][0], head_a0);
  EXPECT_NE(heads["site-a"][1], heads["site-a"][0]);
  EXPECT_NE(heads["site-b"][0], head_b0);
  EXPECT_NE(heads["site-b"][1], heads["site-b"][0]);

  // Evaluation: the global trunk under each site's own head, on its own tasks.
  Push("site-a", WithWeights(codec::EvaluateTask{"ph", 2, 2, "valid", 10}, trunk));
  Push("site-b", WithWeights(codec::EvaluateTask{"ph", 2, 2, "valid", 10}, trunk));
  ASSERT_EQ(evaluations_.size(), 2u);
  const auto& ea = std::get<codec::EvaluationResult>(evaluations_[0].body);
  const auto& eb = std::get<codec::EvaluationResult>(evaluations_[1].body);
  EXPECT_EQ(ea.tasks, (std::vector<std::string>{"a0", "a1", "a2"}));
  EXPECT_EQ(eb.tasks, (std::vector<std::string>{"b0", "b1"}));
  EXPECT_EQ(evaluations_[0].tensors.at(0).shape, (std::vector<std::int64_t>{3, 2, 10}));
  EXPECT_EQ(evaluations_[1].tensors.at(0).shape, (std::vector<std::int64_t>{2, 2, 10}));
  // Every labelled validation entry is counted once: 14 rows x tasks, minus
  // the missing labels (row i misses task i % 7).
  auto counted = [](const codec::Message& m) {
    std::uint64_t n = 0;
    for (std::uint64_t c : m.tensors.at(0).data.As<std::uint64_t>()) n += c;
    return n;
  };
  EXPECT_EQ(counted(evaluations_[0]), 14u * 3 - 2 * 3);
  EXPECT_EQ(counted(evaluations_[1]), 14u * 2 - 2 * 2);
}

TEST_F(SitePrivateHeadsTest, AWholeNetworkInsteadOfATrunkIsRefused) {
  auto a = MakeSite("site-a", bus_a_, {"a0", "a1", "a2"});
  // A coordinator that sent trunk + a head would be sending a head: refused.
  std::vector<float> whole = Trunk();
  whole.resize(kTrunk + 18, 0.1f);
  Push("site-a", WithWeights(codec::TrainTask{"ph", 1, 0, 2, 8, 0.05f, 11, 0}, whole));
  a->WaitForTraining();
  a->Tick().IgnoreError();
  network_.Pump();
  EXPECT_TRUE(ready_.empty());
  EXPECT_EQ(metrics_.Read("fedrx_site_rejected_total", {{"reason", "bad_task"}}), 1);
  EXPECT_TRUE(a->head("ph").empty());
}

TEST_F(SitePrivateHeadsTest, ARestartedSiteResumesItsHeadFromItsStateDir) {
  testing::TempDir dir;
  std::vector<float> trained;
  {
    auto a = MakeSite("site-a", bus_a_, {"a0", "a1", "a2"}, dir.path());
    Round(*a, "site-a", 1, Trunk());
    trained = a->head("ph");
    ASSERT_EQ(trained.size(), 18u);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/ph.head"));
  // The same site, restarted: the next round starts from the stored head
  // (taken when training starts, before the round has changed it).
  core::testing::FakeBus again{network_, core::BusOptions{"site-a"}, metrics_, clock_};
  auto a = MakeSite("site-a", again, {"a0", "a1", "a2"}, dir.path());
  EXPECT_TRUE(a->head("ph").empty());
  Push("site-a", WithWeights(codec::TrainTask{"ph", 2, 1, 2, 8, 0.05f, 13, 0}, Trunk()));
  EXPECT_EQ(a->head("ph"), trained);
  a->WaitForTraining();
  a->Tick().IgnoreError();
  network_.Pump();
  EXPECT_NE(a->head("ph"), trained);  // and trains on from it
  // A site with other tasks would not take that head: it starts its own.
  core::testing::FakeBus other{network_, core::BusOptions{"site-a"}, metrics_, clock_};
  auto b = MakeSite("site-a", other, {"a0", "a1"}, dir.path());
  Push("site-a", WithWeights(codec::TrainTask{"ph", 2, 1, 2, 8, 0.05f, 13, 0}, Trunk()));
  EXPECT_EQ(b->head("ph"), ml::InitHead(ml::WithHead(ml::NetSpecFromStudy(Spec()), 2),
                                        HeadSeed(Spec().seed, "site-a")));
  b->WaitForTraining();
}

}  // namespace
}  // namespace fedrx::site
