// CoordinatorService over the in-memory bus and store: sites register and are
// listed through real envelopes; health reflects the store; bad requests get
// Error replies with the field named.
#include "services/coordinator/coordinator_service.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace fedrx::coordinator
