// Whom the coordinator believes a message speaks for. In CURVE mode the
// envelope's origin (the site a gateway forwards for) counts only on
// messages from an identity of role "gateway"; from anyone else it is cleared
// and counted, so a client that reaches the coordinator directly cannot pose
// as a site. Without CURVE, origin is taken as given. FakeNetwork::SetIdentity
// stands in for the CURVE handshake.
#include <gtest/gtest.h>

#include "services/coordinator/coordinator_service.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"

namespace fedrx::coordinator {
namespace {

using core::StatusCode;
using std::chrono::milliseconds;

class CoordinatorOriginTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    options_.endpoint = "inproc://coordinator";
    options_.authenticated = authenticated();
    service_ = std::make_unique<CoordinatorService>(options_, server_bus_, store_, server_metrics_,
                                                    clock_);
    ASSERT_TRUE(service_->Start().ok());
    network_.SetIdentity("gateway", core::Identity{"gateway-1", "gateway"});
    network_.SetIdentity("console", core::Identity{"ops-console", "admin"});
    for (core::testing::FakeBus* bus : {&gateway_bus_, &console_bus_, &anonymous_bus_}) {
      auto ch = bus->Connect("inproc://coordinator", [](codec::Message&&) {});
      ASSERT_TRUE(ch.ok());
      channels_[bus] = *ch;
    }
  }

  bool authenticated() const { return GetParam(); }

  // Sends `body` from `bus` with the envelope's origin set to `origin`.
  core::Result<codec::Message> AskAs(core::testing::FakeBus& bus, const std::string& origin,
                                     codec::Body body) {
    codec::Message m = core::MakeMessage(std::move(body));
    m.header.origin = origin;
    return core::Call(bus, channels_[&bus], std::move(m), milliseconds(1000));
  }

  double OriginsIgnored() {
    return server_metrics_.Read("fedrx_coordinator_origin_ignored_total", {});
  }

  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::testing::FakeStateStore store_;
  core::Metrics server_metrics_{"coordinator"};
  core::Metrics client_metrics_{"client"};
  core::testing::FakeBus server_bus_{network_, core::BusOptions{"coordinator"}, server_metrics_,
                                     clock_};
  core::testing::FakeBus gateway_bus_{network_, core::BusOptions{"gateway"}, client_metrics_,
                                      clock_};
  core::testing::FakeBus console_bus_{network_, core::BusOptions{"console"}, client_metrics_,
                                      clock_};
  // No identity: what a CURVE server never delivers, and a plaintext one always does.
  core::testing::FakeBus anonymous_bus_{network_, core::BusOptions{"anonymous"}, client_metrics_,
                                        clock_};
  CoordinatorOptions options_;
  std::unique_ptr<CoordinatorService> service_;
  std::map<core::testing::FakeBus*, core::ChannelId> channels_;
};

// An update "from site-a" gets past the origin check (and fails later, on the
// missing study) only when the coordinator believes origin.
TEST_P(CoordinatorOriginTest, GatewayMaySpeakForASite) {
  auto reply = AskAs(gateway_bus_, "site-a", codec::ModelUpdate{"study-x", 1, "site-a", 0, 1, {}});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kNotFound) << reply.status();
  EXPECT_EQ(reply.status().where(), "study_id");
  EXPECT_EQ(OriginsIgnored(), 0);
}

TEST_P(CoordinatorOriginTest, OtherIdentitiesCannotPoseAsASite) {
  auto reply = AskAs(console_bus_, "site-a", codec::ModelUpdate{"study-x", 1, "site-a", 0, 1, {}});
  ASSERT_FALSE(reply.ok());
  if (authenticated()) {
    EXPECT_EQ(reply.status().code(), StatusCode::kPermissionDenied) << reply.status();
    EXPECT_EQ(reply.status().where(), "envelope.origin");
    EXPECT_NE(reply.status().message().find("must come through a gateway"), std::string::npos)
        << reply.status();
    EXPECT_EQ(OriginsIgnored(), 1);
  } else {
    // Plaintext: origin is taken as given (only the network keeps others out).
    EXPECT_EQ(reply.status().code(), StatusCode::kNotFound) << reply.status();
    EXPECT_EQ(OriginsIgnored(), 0);
  }
}

TEST_P(CoordinatorOriginTest, AConnectionWithoutIdentityCannotPoseAsASite) {
  auto reply =
      AskAs(anonymous_bus_, "site-a", codec::ModelUpdate{"study-x", 1, "site-a", 0, 1, {}});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(),
            authenticated() ? StatusCode::kPermissionDenied : StatusCode::kNotFound)
      << reply.status();
  EXPECT_EQ(OriginsIgnored(), authenticated() ? 1 : 0);
}

// RegisterSite checks a believed origin against the site it registers.
TEST_P(CoordinatorOriginTest, ANonGatewaySenderSpeaksForItselfAndIsAnsweredDirectly) {
  // From the gateway, origin site-a binds the connection: it cannot register site-b.
  auto from_gateway =
      AskAs(gateway_bus_, "site-a", codec::RegisterSite{"site-b", "B", 1, {"t"}, "h"});
  ASSERT_FALSE(from_gateway.ok());
  EXPECT_EQ(from_gateway.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(from_gateway.status().where(), "RegisterSite.site_id");

  // From the console, the same envelope: in CURVE mode origin is dropped, so
  // it is an operator's registration, answered straight back (not routed to
  // "site-a").
  auto from_console =
      AskAs(console_bus_, "site-a", codec::RegisterSite{"site-b", "B", 1, {"t"}, "h"});
  if (authenticated()) {
    ASSERT_TRUE(from_console.ok()) << from_console.status();
    EXPECT_EQ(std::get<codec::SiteRegistered>(from_console->body).site_id, "site-b");
    EXPECT_TRUE(from_console->header.route_to.empty());
    EXPECT_EQ(OriginsIgnored(), 1);
  } else {
    ASSERT_FALSE(from_console.ok());
    EXPECT_EQ(from_console.status().code(), StatusCode::kPermissionDenied);
  }
}

TEST_P(CoordinatorOriginTest, MessagesWithoutOriginAreNotCounted) {
  auto health = AskAs(console_bus_, "", codec::HealthCheck{});
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(std::get<codec::HealthStatus>(health->body).service, "coordinator");
  EXPECT_EQ(OriginsIgnored(), 0);
}

INSTANTIATE_TEST_SUITE_P(CurveAndPlaintext, CoordinatorOriginTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Curve" : "Plaintext";
                         });

}  // namespace
}  // namespace fedrx::coordinator
