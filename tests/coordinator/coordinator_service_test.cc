// CoordinatorService over the in-memory bus and store: sites register and are
// listed through real envelopes; health reflects the store; bad requests get
// Error replies with the field named.
#include "services/coordinator/coordinator_service.h"

#include <gtest/gtest.h>

#include "services/coordinator/study_runner.h"
#include "services/coordinator/study_store.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

using core::StatusCode;
using std::chrono::milliseconds;

class CoordinatorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(service_.Start().ok());
    auto ch = client_bus_.Connect("inproc://coordinator", [](codec::Message&&) {});
    ASSERT_TRUE(ch.ok());
    channel_ = *ch;
  }

  core::Result<codec::Message> Ask(codec::Body body) {
    return core::Call(client_bus_, channel_, core::MakeMessage(std::move(body)), milliseconds(1000));
  }

  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::testing::FakeStateStore store_;
  core::Metrics server_metrics_{"coordinator"};
  core::Metrics client_metrics_{"cli"};
  core::testing::FakeBus server_bus_{network_, core::BusOptions{"coordinator"}, server_metrics_,
                                     clock_};
  core::testing::FakeBus client_bus_{network_, core::BusOptions{"cli"}, client_metrics_, clock_};
  CoordinatorService service_{CoordinatorOptions{"inproc://coordinator", "test"}, server_bus_,
                              store_, server_metrics_, clock_};
  core::ChannelId channel_ = 0;
};

TEST_F(CoordinatorServiceTest, SiteRegistersAndIsListed) {
  auto reg = Ask(codec::RegisterSite{"site-a", "Pharma A", 500, {"NR-AR"}, "h"});
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_TRUE(std::get<codec::SiteRegistered>(reg->body).first_registration);

  auto list = Ask(codec::ListSites{});
  ASSERT_TRUE(list.ok()) << list.status();
  const auto& sites = std::get<codec::SiteList>(list->body).sites;
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].site_id, "site-a");
  EXPECT_EQ(sites[0].institution, "Pharma A");
  EXPECT_EQ(server_metrics_.Read("fedrx_coordinator_requests_total",
                                 {{"type", "RegisterSite"}, {"code", "ok"}}),
            1);
}

TEST_F(CoordinatorServiceTest, InvalidRegistrationGetsErrorNamingTheField) {
  auto reg = Ask(codec::RegisterSite{"", "Pharma A", 1, {}, ""});
  ASSERT_FALSE(reg.ok());
  EXPECT_EQ(reg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reg.status().where(), "RegisterSite.site_id");
  EXPECT_EQ(server_metrics_.Read("fedrx_coordinator_requests_total",
                                 {{"type", "RegisterSite"}, {"code", "invalid_argument"}}),
            1);
}

TEST_F(CoordinatorServiceTest, UnhandledBodyIsUnimplemented) {
  auto reply = Ask(codec::TrainTask{});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kUnimplemented);
}

TEST_F(CoordinatorServiceTest, HealthReflectsTheStore) {
  auto up = Ask(codec::HealthCheck{});
  ASSERT_TRUE(up.ok());
  EXPECT_TRUE(std::get<codec::HealthStatus>(up->body).ready);
  EXPECT_EQ(std::get<codec::HealthStatus>(up->body).service, "coordinator");

  store_.SetDown(true);
  auto down = Ask(codec::HealthCheck{});
  ASSERT_TRUE(down.ok());
  EXPECT_FALSE(std::get<codec::HealthStatus>(down->body).ready);
  EXPECT_NE(std::get<codec::HealthStatus>(down->body).detail.find("state store"),
            std::string::npos);
  EXPECT_FALSE(service_.CheckReady().ready);
}

TEST_F(CoordinatorServiceTest, StoreOutageIsAnErrorReplyAndLosesNothing) {
  ASSERT_TRUE(Ask(codec::RegisterSite{"site-a", "A", 1, {}, ""}).ok());
  store_.SetDown(true);
  auto refused = Ask(codec::RegisterSite{"site-b", "B", 1, {}, ""});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  store_.SetDown(false);
  auto list = Ask(codec::ListSites{});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(std::get<codec::SiteList>(list->body).sites.size(), 1u);
}

TEST_F(CoordinatorServiceTest, DrainingRefusesNewRegistrations) {
  service_.BeginDrain();
  auto reg = Ask(codec::RegisterSite{"site-a", "A", 1, {}, ""});
  ASSERT_FALSE(reg.ok());
  EXPECT_EQ(reg.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(service_.CheckReady().ready);
}

// Privacy spent is exported without a label per study: the largest epsilon
// and the largest share of a budget among the studies the coordinator runs
// (here resumed from the store, after 3 and 5 rounds).
TEST(CoordinatorPrivacyMetricsTest, ExportTheLargestEpsilonAndBudgetShareAcrossStudies) {
  const auto dp_spec = [](const std::string& id, float noise, double budget) {
    codec::StudySpec s;
    s.study_id = id;
    s.tasks = {"t0"};
    s.model = {4, {2}, 1, 0.0f};
    s.rounds = 10;
    s.min_sites = 1;
    s.local_epochs = 1;
    s.learning_rate = 0.01f;
    s.batch_size = 8;
    s.strategy = "fedavg";
    s.round_deadline_ms = 10000;
    s.dp_clip_norm = 1.0f;
    s.dp_noise_multiplier = noise;
    s.dp_delta = 1e-5;
    s.dp_epsilon_budget = budget;
    return s;
  };
  const codec::StudySpec a = dp_spec("loose", 0.8f, 0);  // more epsilon per round, no budget
  const codec::StudySpec b = dp_spec("tight", 3.0f, 0);
  auto acc_a = MakeAccountant(a);
  auto acc_b = MakeAccountant(b);
  ASSERT_TRUE(acc_a.ok() && acc_a->has_value() && acc_b.ok() && acc_b->has_value());
  const double eps_a = (*acc_a)->EpsilonAfter(3), eps_b = (*acc_b)->EpsilonAfter(5);
  ASSERT_GT(eps_a, eps_b);
  codec::StudySpec b_budget = b;
  b_budget.dp_epsilon_budget = 2 * eps_b;  // half of it spent

  core::testing::FakeNetwork network;
  core::testing::FakeClock clock;
  core::testing::FakeStateStore store;
  core::Metrics metrics{"coordinator"};
  StudyStore studies(store);
  const std::vector<float> initial(13, 0.0f);
  ASSERT_TRUE(studies.Create(a, initial, 0).ok());
  ASSERT_TRUE(studies.Create(b_budget, initial, 0).ok());
  ASSERT_TRUE(studies.SaveState("loose", codec::StudyState::kCompleted, 3, "").ok());
  ASSERT_TRUE(studies.SaveState("tight", codec::StudyState::kCompleted, 5, "").ok());
  core::testing::FakeBus bus{network, core::BusOptions{"coordinator"}, metrics, clock};
  CoordinatorService service{CoordinatorOptions{"inproc://coordinator", "test"}, bus, store,
                             metrics, clock};
  ASSERT_TRUE(service.Start().ok());
  ASSERT_TRUE(service.Tick().ok());
  EXPECT_NEAR(metrics.Read("fedrx_coordinator_privacy_epsilon_max"), eps_a, 1e-9);
  EXPECT_NEAR(metrics.Read("fedrx_coordinator_privacy_budget_spent_ratio_max"), 0.5, 1e-9);
}

}  // namespace
}  // namespace fedrx::coordinator
