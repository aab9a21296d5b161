// GatewayService over the in-memory bus: a site's messages reach the
// coordinator stamped with the site it registered as (never what the sender
// wrote); the coordinator's replies and pushes reach the named site; a site
// that has not registered is refused; an unknown destination is counted.
// With an authenticated identity (CURVE) the identity is the origin, only
// active sites may send site messages, and every decision is audited.
#include "gateway/gateway_service.h"

#include <gtest/gtest.h>

#include <optional>

#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"

namespace fedrx::gateway {
namespace {

using std::chrono::milliseconds;

class GatewayServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(coordinator_bus_
                    .Serve("inproc://coordinator",
                           [this](core::Inbound&& in) {
                             seen_.push_back({in.message.header.origin,
                                              codec::BodyName(in.message.body)});
                             coordinator_peer_ = in.peer;
                             if (std::holds_alternative<codec::RegisterSite>(in.message.body)) {
                               auto& r = std::get<codec::RegisterSite>(in.message.body);
                               ASSERT_TRUE(core::Reply(coordinator_bus_, in,
                                                       codec::SiteRegistered{r.site_id, 1, true})
                                               .ok());
                             } else if (std::holds_alternative<codec::HealthCheck>(
                                            in.message.body)) {
                               ASSERT_TRUE(core::Reply(coordinator_bus_, in,
                                                       codec::HealthStatus{"coordinator", true})
                                               .ok());
                             }
                           })
                    .ok());
    ASSERT_TRUE(gateway_.Start().ok());
  }

  // A site connection; returns its channel.
  core::ChannelId ConnectSite(core::testing::FakeBus& bus, std::vector<codec::Message>* pushes) {
    auto ch = bus.Connect("inproc://sites", [pushes](codec::Message&& m) {
      if (pushes != nullptr) pushes->push_back(std::move(m));
    });
    EXPECT_TRUE(ch.ok());
    return *ch;
  }

  core::Result<codec::Message> Register(core::testing::FakeBus& bus, core::ChannelId ch,
                                        const std::string& id) {
    return core::Call(bus, ch, core::MakeMessage(codec::RegisterSite{id, "Inst", 5, {}, ""}),
                      milliseconds(1000));
  }

  struct Seen {
    std::string origin;
    std::string type;
  };

  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics gateway_metrics_{"gateway"};
  core::Metrics other_metrics_{"other"};
  core::testing::FakeBus coordinator_bus_{network_, core::BusOptions{"coordinator"}, other_metrics_,
                                          clock_};
  core::testing::FakeBus gateway_bus_{network_, core::BusOptions{"gateway"}, gateway_metrics_,
                                      clock_};
  core::testing::FakeBus site_a_{network_, core::BusOptions{"site-a"}, other_metrics_, clock_};
  core::testing::FakeBus site_b_{network_, core::BusOptions{"site-b"}, other_metrics_, clock_};
  GatewayService gateway_{GatewayOptions{"inproc://sites", "inproc://coordinator"}, gateway_bus_,
                          gateway_metrics_, clock_};
  std::vector<Seen> seen_;
  core::PeerId coordinator_peer_;
};

TEST_F(GatewayServiceTest, RegistrationIsForwardedWithOriginAndAnswered) {
  auto ch = ConnectSite(site_a_, nullptr);
  auto reply = Register(site_a_, ch, "site-a");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(std::get<codec::SiteRegistered>(reply->body).site_id, "site-a");
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].origin, "site-a");
  EXPECT_EQ(seen_[0].type, "RegisterSite");
  EXPECT_EQ(gateway_.connected_sites(), 1u);
  EXPECT_EQ(gateway_metrics_.Read("fedrx_gateway_forwarded_total", {{"direction", "to_site"}}), 1);
}

TEST_F(GatewayServiceTest, SpoofedOriginIsReplacedByTheRegisteredSite) {
  auto ch = ConnectSite(site_a_, nullptr);
  ASSERT_TRUE(Register(site_a_, ch, "site-a").ok());
  codec::Message hb = core::MakeMessage(codec::Heartbeat{});
  hb.header.origin = "site-b";  // pretends to be another site
  ASSERT_TRUE(site_a_.Send(ch, std::move(hb)).ok());
  network_.Pump();
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_EQ(seen_[1].type, "Heartbeat");
  EXPECT_EQ(seen_[1].origin, "site-a");
}

TEST_F(GatewayServiceTest, UnregisteredSiteIsRefused) {
  auto ch = ConnectSite(site_a_, nullptr);
  auto reply = core::Call(site_a_, ch, core::MakeMessage(codec::UpdateReady{"s", 1, 0, 5, {}}),
                          milliseconds(1000));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reply.status().where(), "envelope.origin");
  EXPECT_TRUE(seen_.empty());
  EXPECT_EQ(gateway_metrics_.Read("fedrx_gateway_rejected_total", {{"reason", "unregistered"}}), 1);
}

TEST_F(GatewayServiceTest, InvalidSiteIdIsRefused) {
  auto ch = ConnectSite(site_a_, nullptr);
  auto reply = Register(site_a_, ch, "no spaces allowed");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().where(), "RegisterSite.site_id");
  EXPECT_TRUE(seen_.empty());
}

TEST_F(GatewayServiceTest, CoordinatorPushReachesOnlyTheNamedSite) {
  std::vector<codec::Message> a_pushes, b_pushes;
  auto cha = ConnectSite(site_a_, &a_pushes);
  auto chb = ConnectSite(site_b_, &b_pushes);
  ASSERT_TRUE(Register(site_a_, cha, "site-a").ok());
  ASSERT_TRUE(Register(site_b_, chb, "site-b").ok());

  codec::Message task = core::MakeMessage(codec::TrainTask{"s", 1, 0, 1, 64, 0.001f, 7, 0});
  task.header.route_to = "site-b";
  task.tensors.push_back(
      codec::Tensor{"w", codec::DType::kFloat32, {3}, codec::Blob::FromFloats({1, 2, 3})});
  ASSERT_TRUE(coordinator_bus_.SendTo(coordinator_peer_, std::move(task)).ok());
  network_.Pump();
  EXPECT_TRUE(a_pushes.empty());
  ASSERT_EQ(b_pushes.size(), 1u);
  EXPECT_EQ(std::get<codec::TrainTask>(b_pushes[0].body).seed, 7u);
  ASSERT_EQ(b_pushes[0].tensors.size(), 1u);
  EXPECT_FLOAT_EQ(b_pushes[0].tensors[0].data.As<float>()[2], 3.0f);
}

TEST_F(GatewayServiceTest, PushForAnUnknownSiteIsCounted) {
  auto ch = ConnectSite(site_a_, nullptr);
  ASSERT_TRUE(Register(site_a_, ch, "site-a").ok());
  codec::Message task = core::MakeMessage(codec::UploadGrant{"s", 1});
  task.header.route_to = "site-zz";
  ASSERT_TRUE(coordinator_bus_.SendTo(coordinator_peer_, std::move(task)).ok());
  network_.Pump();
  EXPECT_EQ(gateway_metrics_.Read("fedrx_gateway_unroutable_total"), 1);
}

TEST_F(GatewayServiceTest, ReadyOnlyOnceTheCoordinatorAnswers) {
  EXPECT_FALSE(gateway_.CheckReady().ready);
  ASSERT_TRUE(gateway_.Tick().ok());
  network_.Pump();
  gateway_bus_.Poll(milliseconds(0)).IgnoreError();
  EXPECT_TRUE(gateway_.CheckReady().ready);
  clock_.Advance(std::chrono::seconds(10));
  EXPECT_FALSE(gateway_.CheckReady().ready);
}

// The gateway behind a CURVE bus: messages carry the identity the
// authenticator gave the connection (set here through FakeNetwork).
class GatewayIdentityTest : public GatewayServiceTest {
 protected:
  void SetUp() override {
    GatewayServiceTest::SetUp();
    ASSERT_TRUE(secure_gateway_.Start().ok());
  }

  void Enrol(const std::string& id, security::Role role) {
    ASSERT_TRUE(registry_.Enrol(id, "Institution " + id, role).ok());
  }

  core::ChannelId ConnectSecure(core::testing::FakeBus& bus) {
    auto ch = bus.Connect("inproc://secure-sites", [](codec::Message&&) {});
    EXPECT_TRUE(ch.ok());
    return *ch;
  }

  double Denied(const std::string& reason) {
    return gateway_metrics_.Read("fedrx_gateway_denied_total", {{"reason", reason}});
  }

  core::testing::FakeStateStore store_;
  security::InstitutionRegistry registry_{store_, clock_};
  security::AuditLog audit_{store_, clock_, gateway_metrics_};
  core::testing::FakeBus secure_bus_{network_, core::BusOptions{"secure-gateway"}, gateway_metrics_,
                                     clock_};
  GatewayService secure_gateway_{GatewayOptions{"inproc://secure-sites", "inproc://coordinator"},
                                 secure_bus_, gateway_metrics_, clock_,
                                 GatewaySecurity{&registry_, &audit_, milliseconds(2000)}};
};

TEST_F(GatewayIdentityTest, IdentityIsTheOriginWhateverTheSenderWrites) {
  Enrol("site-a", security::Role::kSite);
  network_.SetIdentity("site-a", {"site-a", "site"});
  auto ch = ConnectSecure(site_a_);
  codec::Message hb = core::MakeMessage(codec::Heartbeat{});
  hb.header.origin = "site-b";
  ASSERT_TRUE(site_a_.Send(ch, std::move(hb)).ok());
  network_.Pump();
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].type, "Heartbeat");
  EXPECT_EQ(seen_[0].origin, "site-a");
  EXPECT_EQ(secure_gateway_.connected_sites(), 1u);
}

TEST_F(GatewayIdentityTest, RegisterSiteForAnotherIdIsRefused) {
  Enrol("site-a", security::Role::kSite);
  network_.SetIdentity("site-a", {"site-a", "site"});
  auto ch = ConnectSecure(site_a_);
  auto reply = Register(site_a_, ch, "site-b");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::StatusCode::kPermissionDenied);
  EXPECT_EQ(reply.status().where(), "RegisterSite.site_id");
  EXPECT_TRUE(seen_.empty());
  EXPECT_EQ(Denied("origin_mismatch"), 1);

  auto own = Register(site_a_, ch, "site-a");
  ASSERT_TRUE(own.ok()) << own.status();
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].origin, "site-a");
}

TEST_F(GatewayIdentityTest, ScientistMayNotSendSiteMessages) {
  Enrol("lab-x", security::Role::kScientist);
  network_.SetIdentity("site-a", {"lab-x", "scientist"});
  auto ch = ConnectSecure(site_a_);
  auto reply = Register(site_a_, ch, "lab-x");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::StatusCode::kPermissionDenied);
  EXPECT_NE(reply.status().message().find("scientist"), std::string::npos);
  EXPECT_NE(reply.status().message().find("RegisterSite"), std::string::npos);
  EXPECT_TRUE(seen_.empty());
  EXPECT_EQ(Denied("role"), 1);
}

TEST_F(GatewayIdentityTest, RevokedInstitutionIsRefusedOnceItsStatusIsRechecked) {
  Enrol("site-a", security::Role::kSite);
  network_.SetIdentity("site-a", {"site-a", "site"});
  auto ch = ConnectSecure(site_a_);
  ASSERT_TRUE(Register(site_a_, ch, "site-a").ok());
  ASSERT_TRUE(registry_.Revoke("site-a").ok());

  // Within the cache TTL the cached (active) status still holds.
  ASSERT_TRUE(site_a_.Send(ch, core::MakeMessage(codec::Heartbeat{})).ok());
  network_.Pump();
  ASSERT_EQ(seen_.size(), 2u);

  clock_.Advance(milliseconds(2000));
  auto reply = core::Call(site_a_, ch, core::MakeMessage(codec::UpdateReady{"s", 1, 0, 5, {}}),
                          milliseconds(1000));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::StatusCode::kPermissionDenied);
  EXPECT_NE(reply.status().message().find("revoked"), std::string::npos);
  EXPECT_EQ(seen_.size(), 2u);
  EXPECT_EQ(Denied("inactive"), 1);
}

TEST_F(GatewayIdentityTest, AdmittedAndDeniedMessagesAreAuditedInAVerifiableChain) {
  Enrol("site-a", security::Role::kSite);
  network_.SetIdentity("site-a", {"site-a", "site"});
  auto ch = ConnectSecure(site_a_);
  ASSERT_TRUE(Register(site_a_, ch, "site-a").ok());
  ASSERT_FALSE(Register(site_a_, ch, "site-b").ok());
  ASSERT_TRUE(site_a_.Send(ch, core::MakeMessage(codec::Heartbeat{})).ok());
  network_.Pump();

  EXPECT_EQ(gateway_metrics_.Read("fedrx_gateway_audit_records_total", {{"decision", "admitted"}}),
            2);
  EXPECT_EQ(gateway_metrics_.Read("fedrx_gateway_audit_records_total", {{"decision", "denied"}}),
            1);
  auto report = audit_.Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 3u);
}

TEST_F(GatewayIdentityTest, PlaintextPeersKeepTheRegistrationRule) {
  // No identity: the secure gateway's plaintext path is today's behaviour.
  auto ch = ConnectSecure(site_a_);
  auto reply = core::Call(site_a_, ch, core::MakeMessage(codec::UpdateReady{"s", 1, 0, 5, {}}),
                          milliseconds(1000));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::StatusCode::kFailedPrecondition);
  auto report = audit_.Verify();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->records, 0u);
}

}  // namespace
}  // namespace fedrx::gateway
