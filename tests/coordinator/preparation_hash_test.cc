// A study with an expected preparation hash leaves out sites that registered
// another one (counted once each), and takes the ones that match; a site
// directory remembers each site's registered hash.
#include <gtest/gtest.h>

#include "services/coordinator/site_directory.h"
#include "services/coordinator/study_runner.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

class HashedSites final : public SiteChannel {
 public:
  std::vector<std::string> AvailableSites(const std::string&) const override { return available; }
  core::Status SendToSite(const std::string& site, codec::Message message) override {
    sent[site].push_back(std::move(message));
    return core::Status::Ok();
  }
  std::optional<std::string> PreparationHashOf(const std::string& site) const override {
    auto it = hashes.find(site);
    if (it == hashes.end()) return std::nullopt;
    return it->second;
  }
  std::size_t TrainTasks(const std::string& site) const {
    auto it = sent.find(site);
    if (it == sent.end()) return 0;
    std::size_t n = 0;
    for (const auto& m : it->second) n += std::holds_alternative<codec::TrainTask>(m.body);
    return n;
  }
  std::vector<std::string> available;
  std::map<std::string, std::string> hashes;
  std::map<std::string, std::vector<codec::Message>> sent;
};

codec::StudySpec Spec(const std::string& hash) {
  codec::StudySpec s;
  s.study_id = "s1";
  s.tasks = {"t0"};
  s.model = {4, {2}, 1, 0.0f};
  s.rounds = 1;
  s.min_sites = 2;
  s.local_epochs = 1;
  s.learning_rate = 0.01f;
  s.batch_size = 8;
  s.seed = 5;
  s.strategy = "fedavg";
  s.round_deadline_ms = 10000;
  s.preparation_hash = hash;
  return s;
}

struct Fixture {
  explicit Fixture(const std::string& hash) {
    codec::StudySpec spec = Spec(hash);
    EXPECT_TRUE(studies.Create(spec, ml::InitParameters(ml::NetSpecFromStudy(spec), 5), 0).ok());
    runner = std::make_unique<StudyRunner>(*studies.Load("s1"), studies, sites,
                                           std::make_unique<FedAvg>(), clock, metrics,
                                           RunnerTimings{});
  }
  double Refused() {
    return metrics.Read("fedrx_coordinator_sites_refused_total", {{"reason", "preparation_hash"}});
  }
  core::testing::FakeStateStore store;
  StudyStore studies{store};
  HashedSites sites;
  core::testing::FakeClock clock;
  core::Metrics metrics{"coordinator"};
  std::unique_ptr<StudyRunner> runner;
};

TEST(PreparationHashTest, SiteWithAnotherHashIsRefusedAndCountedOnce) {
  Fixture f("prep-good");
  f.sites.available = {"site-a", "site-b", "site-c"};
  f.sites.hashes = {{"site-a", "prep-good"}, {"site-b", "prep-other-key"}, {"site-c", "prep-good"}};
  ASSERT_TRUE(f.runner->Tick().ok());
  ASSERT_TRUE(f.runner->Tick().ok());
  EXPECT_EQ(f.runner->phase(), StudyRunner::Phase::kTraining);
  EXPECT_EQ(f.sites.TrainTasks("site-a"), 1u);
  EXPECT_EQ(f.sites.TrainTasks("site-b"), 0u);
  EXPECT_EQ(f.sites.TrainTasks("site-c"), 1u);
  EXPECT_EQ(f.Refused(), 1.0);
  auto round = f.studies.LoadRound("s1", 1);
  ASSERT_TRUE(round.ok() && round->has_value());
  EXPECT_EQ((*round)->selected, (std::vector<std::string>{"site-a", "site-c"}));
}

TEST(PreparationHashTest, TooFewMatchingSitesKeepTheStudyWaiting) {
  Fixture f("prep-good");
  f.sites.available = {"site-a", "site-b"};
  f.sites.hashes = {{"site-a", "prep-good"}, {"site-b", "prep-bad"}};
  ASSERT_TRUE(f.runner->Tick().ok());
  EXPECT_EQ(f.runner->phase(), StudyRunner::Phase::kWaitingForSites);
  EXPECT_TRUE(f.sites.sent.empty());
  EXPECT_EQ(f.Refused(), 1.0);
}

TEST(PreparationHashTest, NoExpectedHashTakesEverySite) {
  Fixture f("");
  f.sites.available = {"site-a", "site-b"};
  f.sites.hashes = {{"site-a", "x"}, {"site-b", "y"}};
  ASSERT_TRUE(f.runner->Tick().ok());
  EXPECT_EQ(f.runner->phase(), StudyRunner::Phase::kTraining);
  EXPECT_EQ(f.Refused(), 0.0);
}

TEST(PreparationHashTest, SiteDirectoryRemembersRegisteredHashes) {
  core::testing::FakeClock clock;
  core::Metrics metrics("coordinator");
  core::testing::FakeNetwork network;
  core::testing::FakeBus bus(network, core::BusOptions{}, metrics, clock);
  SiteDirectory directory(bus, clock);
  EXPECT_FALSE(directory.PreparationHashOf("site-a").has_value());
  directory.Prepared("site-a", "prep-1");
  ASSERT_TRUE(directory.PreparationHashOf("site-a").has_value());
  EXPECT_EQ(*directory.PreparationHashOf("site-a"), "prep-1");
  // A hash alone does not make a site available.
  EXPECT_TRUE(directory.AvailableSites("s1").empty());
}

}  // namespace
}  // namespace fedrx::coordinator
