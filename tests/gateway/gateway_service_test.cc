// GatewayService over the in-memory bus: a site's messages reach the
// coordinator stamped with the site it registered as (never what the sender
// wrote); the coordinator's replies and pushes reach the named site; a site
// that has not registered is refused; an unknown destination is counted.
// With an authenticated identity (CURVE) the identity is the origin, only
// active sites may send site messages, and every decision is audited. The
// policy: roles per message, administration answered by the gateway, people's
// requests answered by correlation, rate and size limits per role, replays
// and stale messages refused, a site acts only for itself and in studies that
// name it, and a revoked institution's session is dropped.
#include "gateway/gateway_service.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>

#include "services/core/curve_keys.h"
#include "services/core/keys.h"
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
                             } else if (const auto* get = std::get_if<codec::GetStudy>(
                                            &in.message.body)) {
                               codec::StudyInfo info;
                               info.study.study_id = get->study_id;
                               info.detail = "answered";
                               ASSERT_TRUE(core::Reply(coordinator_bus_, in, info).ok());
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
  // Records are queued and written once per Tick.
  EXPECT_EQ(gateway_metrics_.Read("fedrx_gateway_audit_records_total", {{"decision", "admitted"}}),
            0);
  ASSERT_TRUE(secure_gateway_.Tick().ok());

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

// The secure gateway with the policy under test: its own limits, and a
// store that holds studies' site lists.
class GatewayPolicyTest : public GatewayIdentityTest {
 protected:
  void StartPolicy(GatewayLimits limits) {
    GatewaySecurity security{&registry_, &audit_, milliseconds(2000), std::move(limits), &store_};
    policy_ = std::make_unique<GatewayService>(
        GatewayOptions{"inproc://policy", "inproc://coordinator"}, policy_bus_, gateway_metrics_,
        clock_, security);
    ASSERT_TRUE(policy_->Start().ok());
  }

  // A connection as `id` (enrolled with `role`) from client bus `bus`.
  core::ChannelId As(core::testing::FakeBus& bus, const std::string& id, security::Role role,
                     std::vector<codec::Message>* pushes = nullptr) {
    if (!registry_.Get(id).ok()) Enrol(id, role);
    network_.SetIdentity(bus_name_of_.at(&bus), {id, security::RoleName(role)});
    auto ch = bus.Connect("inproc://policy", [pushes](codec::Message&& m) {
      if (pushes != nullptr) pushes->push_back(std::move(m));
    });
    EXPECT_TRUE(ch.ok());
    return *ch;
  }

  void StudyNames(const std::string& study, const std::string& site) {
    ASSERT_TRUE(store_.SetAdd(*core::keys::StudySites(study), site).ok());
  }

  core::Result<codec::Message> Ask(core::testing::FakeBus& bus, core::ChannelId ch,
                                   codec::Body body, std::vector<codec::Tensor> tensors = {}) {
    return core::Call(bus, ch, core::MakeMessage(std::move(body), std::move(tensors)),
                      milliseconds(1000));
  }

  static GatewayLimits Unlimited() {
    GatewayLimits limits;
    limits.per_role.clear();
    return limits;
  }

  std::map<const core::testing::FakeBus*, std::string> bus_name_of_{
      {&site_a_, "site-a"}, {&site_b_, "site-b"}, {&admin_bus_, "admin-client"}};
  core::testing::FakeBus policy_bus_{network_, core::BusOptions{"policy-gateway"}, gateway_metrics_,
                                     clock_};
  core::testing::FakeBus admin_bus_{network_, core::BusOptions{"admin-client"}, other_metrics_,
                                    clock_};
  std::unique_ptr<GatewayService> policy_;
};

TEST_F(GatewayPolicyTest, EachMessageTypeOnlyFromItsRoles) {
  StartPolicy(Unlimited());
  auto site = As(site_a_, "site-a", security::Role::kSite);
  auto create = Ask(site_a_, site, codec::CreateStudy{});
  ASSERT_FALSE(create.ok());
  EXPECT_EQ(create.status().code(), core::StatusCode::kPermissionDenied);
  EXPECT_EQ(create.status().message(), "role 'site' may not send CreateStudy (only admin)");
  EXPECT_EQ(create.status().where(), "identity.role");

  auto scientist = As(site_b_, "lab-x", security::Role::kScientist);
  auto enrol = Ask(site_b_, scientist, codec::EnrolInstitution{"evil", "Evil", "admin"});
  ASSERT_FALSE(enrol.ok());
  EXPECT_EQ(enrol.status().code(), core::StatusCode::kPermissionDenied);
  EXPECT_FALSE(registry_.Get("evil").ok());
  auto update = Ask(site_b_, scientist, codec::UpdateReady{"s", 1, 0, 5, {}});
  ASSERT_FALSE(update.ok());
  EXPECT_EQ(update.status().code(), core::StatusCode::kPermissionDenied);

  // Bodies only services send are refused whoever sends them.
  auto task = Ask(site_a_, site, codec::TrainTask{"s", 1});
  ASSERT_FALSE(task.ok());
  EXPECT_EQ(task.status().where(), "envelope.body");
  EXPECT_TRUE(seen_.empty());
  EXPECT_EQ(Denied("role"), 3);
  EXPECT_EQ(Denied("message_type"), 1);
}

TEST_F(GatewayPolicyTest, ScientistsRequestIsAnsweredByCorrelation) {
  StartPolicy(Unlimited());
  auto scientist = As(site_b_, "lab-x", security::Role::kScientist);
  codec::Message get = core::MakeMessage(codec::GetStudy{"tox"});
  get.header.message_id = "mine-1";
  get.header.origin = "site-a";  // never trusted
  auto reply = core::Call(site_b_, scientist, std::move(get), milliseconds(1000));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.correlation_id, "mine-1");
  const auto& info = std::get<codec::StudyInfo>(reply->body);
  EXPECT_EQ(info.study.study_id, "tox");
  EXPECT_EQ(info.detail, "answered");
  ASSERT_EQ(seen_.size(), 1u);
  // A person is not a site: the coordinator sees no origin.
  EXPECT_EQ(seen_[0].origin, "");
  EXPECT_EQ(policy_->pending_requests(), 0u);
  EXPECT_EQ(gateway_metrics_.Read("fedrx_gateway_forwarded_total", {{"direction", "to_person"}}),
            1);
}

TEST_F(GatewayPolicyTest, HealthIsAnsweredByTheGatewayForAnyEnrolledRole) {
  StartPolicy(Unlimited());
  auto site = As(site_a_, "site-a", security::Role::kSite);
  auto health = Ask(site_a_, site, codec::HealthCheck{});
  ASSERT_TRUE(health.ok()) << health.status();
  const auto& status = std::get<codec::HealthStatus>(health->body);
  EXPECT_EQ(status.service, "gateway");
  EXPECT_FALSE(status.ready);  // the coordinator has not been probed yet
  EXPECT_TRUE(seen_.empty());
}

TEST_F(GatewayPolicyTest, AdminManagesInstitutionsAndChecksTheAuditTrail) {
  StartPolicy(Unlimited());
  auto admin = As(admin_bus_, "ops", security::Role::kAdmin);
  auto enrolled = Ask(admin_bus_, admin, codec::EnrolInstitution{"pharma-q", "Pharma Q", "site"});
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  const auto& e = std::get<codec::InstitutionEnrolled>(enrolled->body);
  EXPECT_EQ(e.institution.id, "pharma-q");
  EXPECT_EQ(e.institution.role, "site");
  EXPECT_EQ(e.institution.status, "active");
  ASSERT_TRUE(core::CheckCurveKeyPair({e.institution.public_key, e.secret_key}, "reply").ok());
  auto stored = registry_.Get("pharma-q");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->public_key, e.institution.public_key);

  auto again = Ask(admin_bus_, admin, codec::EnrolInstitution{"pharma-q", "Again", "site"});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), core::StatusCode::kAlreadyExists);
  auto bad_role = Ask(admin_bus_, admin, codec::EnrolInstitution{"x", "X", "root"});
  ASSERT_FALSE(bad_role.ok());
  EXPECT_EQ(bad_role.status().where(), "EnrolInstitution.role");

  auto suspended = Ask(admin_bus_, admin, codec::SetInstitutionStatus{"pharma-q", "suspended"});
  ASSERT_TRUE(suspended.ok()) << suspended.status();
  ASSERT_EQ(std::get<codec::InstitutionList>(suspended->body).institutions.size(), 1u);
  EXPECT_EQ(std::get<codec::InstitutionList>(suspended->body).institutions[0].status, "suspended");
  auto bogus = Ask(admin_bus_, admin, codec::SetInstitutionStatus{"pharma-q", "gone"});
  ASSERT_FALSE(bogus.ok());
  EXPECT_EQ(bogus.status().where(), "SetInstitutionStatus.status");

  auto list = Ask(admin_bus_, admin, codec::ListInstitutions{});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(std::get<codec::InstitutionList>(list->body).institutions.size(), 2u);

  auto verify = Ask(admin_bus_, admin, codec::VerifyAudit{});
  ASSERT_TRUE(verify.ok()) << verify.status();
  const auto& report = std::get<codec::AuditReport>(verify->body);
  EXPECT_TRUE(report.intact);
  // enrol, enrol again (refused), bad role (refused), suspend, bogus
  // (refused), list: six records before this request's own.
  EXPECT_EQ(report.records, 6u);
  EXPECT_TRUE(seen_.empty());
}

TEST_F(GatewayPolicyTest, AFloodingIdentityIsThrottledAndOthersAreNot) {
  GatewayLimits limits = Unlimited();
  limits.per_role["site"] = RoleLimits{5, 5, 0};
  StartPolicy(limits);
  auto flooder = As(site_a_, "site-a", security::Role::kSite);
  auto other = As(site_b_, "site-b", security::Role::kSite);
  int refused = 0;
  for (int i = 0; i < 8; ++i) {
    auto r = Ask(site_a_, flooder, codec::HealthCheck{});
    if (!r.ok()) {
      ++refused;
      EXPECT_EQ(r.status().code(), core::StatusCode::kResourceExhausted);
      EXPECT_NE(r.status().message().find("rate limit of 5 messages/s"), std::string::npos);
    }
  }
  EXPECT_EQ(refused, 3);
  EXPECT_TRUE(Ask(site_b_, other, codec::HealthCheck{}).ok());
  EXPECT_EQ(gateway_metrics_.Read("fedrx_gateway_rate_limited_total", {{"role", "site"}}), 3);

  // Tokens come back with time: 1 s at 5/s refills the bucket.
  clock_.Advance(milliseconds(1000));
  EXPECT_TRUE(Ask(site_a_, flooder, codec::HealthCheck{}).ok());

  // The first refusal is audited at once, the other two summed at the sweep.
  ASSERT_TRUE(policy_->Tick().ok());
  auto records = store_.StreamRange(core::keys::AuditStream());
  ASSERT_TRUE(records.ok()) << records.status();
  int limited_records = 0;
  bool summary = false;
  for (const auto& entry : *records) {
    for (const auto& [field, value] : entry.fields) {
      if (field == "reason" && value.find("rate limit") != std::string::npos) ++limited_records;
      if (field == "reason" && value == "2 further messages refused over the rate limit") {
        summary = true;
      }
    }
  }
  EXPECT_EQ(limited_records, 2);
  EXPECT_TRUE(summary);
  EXPECT_TRUE(audit_.Verify().ok());
}

TEST_F(GatewayPolicyTest, MessagesOverTheRolesSizeLimitAreRefused) {
  GatewayLimits limits = Unlimited();
  limits.per_role["site"] = RoleLimits{0, 0, 1000};
  StartPolicy(limits);
  StudyNames("tox", "site-a");
  auto site = As(site_a_, "site-a", security::Role::kSite);
  std::vector<float> weights(1000, 0.5f);
  std::vector<codec::Tensor> tensors;
  tensors.push_back(codec::Tensor{"weights", codec::DType::kFloat32, {1000},
                                  codec::Blob::FromFloats(std::move(weights))});
  auto r = Ask(site_a_, site, codec::ModelUpdate{"tox", 1, "site-a", 0, 10, {}}, std::move(tensors));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(), "ModelUpdate carries 4000 tensor bytes; the site limit is 1000");
  EXPECT_TRUE(seen_.empty());
  EXPECT_EQ(Denied("too_large"), 1);
}

TEST_F(GatewayPolicyTest, ReplayedAndStaleMessagesAreRefused) {
  StartPolicy(Unlimited());
  auto site = As(site_a_, "site-a", security::Role::kSite);
  codec::Message first = core::MakeMessage(codec::HealthCheck{});
  first.header.message_id = "same-id";
  ASSERT_TRUE(core::Call(site_a_, site, std::move(first), milliseconds(1000)).ok());
  codec::Message replay = core::MakeMessage(codec::HealthCheck{});
  replay.header.message_id = "same-id";
  auto r = core::Call(site_a_, site, std::move(replay), milliseconds(1000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().where(), "envelope.message_id");
  EXPECT_NE(r.status().message().find("replay"), std::string::npos);
  EXPECT_EQ(Denied("replay"), 1);

  // The same id from another identity is not a replay.
  auto other = As(site_b_, "site-b", security::Role::kSite);
  codec::Message theirs = core::MakeMessage(codec::HealthCheck{});
  theirs.header.message_id = "same-id";
  EXPECT_TRUE(core::Call(site_b_, other, std::move(theirs), milliseconds(1000)).ok());

  // A sender whose clock is ten minutes behind sends stale messages.
  core::testing::FakeClock behind(clock_.WallMillis() - 10 * 60 * 1000);
  core::testing::FakeBus late{network_, core::BusOptions{"late"}, other_metrics_, behind};
  bus_name_of_[&late] = "late";
  auto late_ch = As(late, "site-c", security::Role::kSite);
  codec::Message old = core::MakeMessage(codec::HealthCheck{});
  ASSERT_TRUE(late.Send(late_ch, std::move(old)).ok());
  network_.Pump();
  EXPECT_EQ(Denied("stale"), 1);
}

TEST_F(GatewayPolicyTest, ASiteActsOnlyForItselfAndInStudiesThatNameIt) {
  StartPolicy(Unlimited());
  StudyNames("tox", "site-a");
  StudyNames("other", "site-b");
  auto site = As(site_a_, "site-a", security::Role::kSite);
  auto as_b = Ask(site_a_, site, codec::ModelUpdate{"tox", 1, "site-b", 0, 10, {}});
  ASSERT_FALSE(as_b.ok());
  EXPECT_EQ(as_b.status().where(), "ModelUpdate.site_id");
  EXPECT_EQ(Denied("origin_mismatch"), 1);

  auto not_joined = Ask(site_a_, site, codec::UpdateReady{"other", 1, 0, 5, {}});
  ASSERT_FALSE(not_joined.ok());
  EXPECT_EQ(not_joined.status().message(), "site 'site-a' has not joined study 'other'");
  auto unknown = Ask(site_a_, site, codec::GetStudy{"nosuch"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(Denied("not_joined"), 2);
  EXPECT_TRUE(seen_.empty());

  ASSERT_TRUE(site_a_.Send(site, core::MakeMessage(codec::UpdateReady{"tox", 1, 0, 5, {}})).ok());
  network_.Pump();
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].type, "UpdateReady");
  EXPECT_EQ(seen_[0].origin, "site-a");
}

// Secure aggregation: a site's four answers pass only from role site and
// only in studies that name it; the coordinator's stage requests are never
// accepted from a client.
TEST_F(GatewayPolicyTest, SecAggAnswersOnlyFromSitesInTheirStudies) {
  StartPolicy(Unlimited());
  StudyNames("tox", "site-a");
  auto site = As(site_a_, "site-a", security::Role::kSite);
  auto not_joined = Ask(site_a_, site, codec::SecAggKeys{"other", 1, {}});
  ASSERT_FALSE(not_joined.ok());
  EXPECT_EQ(not_joined.status().message(), "site 'site-a' has not joined study 'other'");
  auto scientist = As(site_b_, "lab-x", security::Role::kScientist);
  auto from_scientist = Ask(site_b_, scientist, codec::SecAggMaskedInput{"tox", 1, 1});
  ASSERT_FALSE(from_scientist.ok());
  EXPECT_EQ(from_scientist.status().code(), core::StatusCode::kPermissionDenied);
  auto stage_request = Ask(site_a_, site, codec::SecAggUnmaskRequest{"tox", 1, {1, 2}});
  ASSERT_FALSE(stage_request.ok());
  EXPECT_EQ(stage_request.status().where(), "envelope.body");
  EXPECT_TRUE(seen_.empty());

  const codec::Body answers[] = {
      codec::SecAggKeys{"tox", 1, {}}, codec::SecAggShares{"tox", 1, 1, {}, {}},
      codec::SecAggMaskedInput{"tox", 1, 1}, codec::SecAggUnmaskResponse{"tox", 1, 1, {}, {}, {}}};
  for (const auto& body : answers) {
    ASSERT_TRUE(site_a_.Send(site, core::MakeMessage(body)).ok());
  }
  network_.Pump();
  ASSERT_EQ(seen_.size(), 4u);
  EXPECT_EQ(seen_[0].type, "SecAggKeys");
  EXPECT_EQ(seen_[3].type, "SecAggUnmaskResponse");
  EXPECT_EQ(seen_[3].origin, "site-a");
}

TEST_F(GatewayPolicyTest, ARevokedInstitutionsSessionIsDropped) {
  StartPolicy(Unlimited());
  std::vector<codec::Message> pushes;
  auto site = As(site_a_, "site-a", security::Role::kSite, &pushes);
  ASSERT_TRUE(Ask(site_a_, site, codec::RegisterSite{"site-a", "A", 5, {}, ""}).ok());
  EXPECT_EQ(policy_->connected_sites(), 1u);

  auto admin = As(admin_bus_, "ops", security::Role::kAdmin);
  ASSERT_TRUE(Ask(admin_bus_, admin, codec::SetInstitutionStatus{"site-a", "revoked"}).ok());
  clock_.Advance(milliseconds(1000));
  ASSERT_TRUE(policy_->Tick().ok());
  EXPECT_EQ(policy_->connected_sites(), 0u);
  EXPECT_EQ(gateway_metrics_.Read("fedrx_gateway_sessions_dropped_total"), 1);

  // Nothing reaches the dropped session, and what it sends is refused.
  codec::Message push = core::MakeMessage(codec::TrainTask{"tox", 1});
  push.header.route_to = "site-a";
  ASSERT_TRUE(coordinator_bus_.SendTo(coordinator_peer_, std::move(push)).ok());
  network_.Pump();
  EXPECT_TRUE(pushes.empty());
  auto after = Ask(site_a_, site, codec::HealthCheck{});
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.status().message().find("revoked"), std::string::npos);
}

}  // namespace
}  // namespace fedrx::gateway
