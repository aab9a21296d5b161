// Gateway admission policy for the domain services' bodies: people
// (scientists and admins) may send the translational, trial, tox, clinical
// and reverse requests; sites may not; no role may send the answers, which
// only the services write. The table (RolesAllowed); the gateway over the
// in-memory bus refusing such messages with the reason and location a client
// sees; admitted requests reaching their domain service (never the
// coordinator) and their answers coming back by correlation; a request for a
// service the gateway has no endpoint for answered Unavailable, naming it.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "gateway/gateway_policy.h"
#include "gateway/gateway_service.h"
#include "messages/codec/message.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"
#include "services/security/audit_log.h"
#include "services/security/institution_registry.h"

namespace fedrx::gateway {
namespace {

std::vector<std::string> Roles(const codec::Body& body) {
  const auto& roles = RolesAllowed(body);
  std::vector<std::string> out(roles.begin(), roles.end());
  std::sort(out.begin(), out.end());
  return out;
}

// Bodies are built in place, one at a time: GCC 12 spends about a minute and
// gigabytes on a braced list of Body conversions such as {TranslateDose{}, ...}.
template <typename... T>
std::vector<codec::Body> BodiesOf() {
  std::vector<codec::Body> out;
  (out.emplace_back(std::in_place_type<T>), ...);
  return out;
}

const std::vector<codec::Body>& DomainRequests() {
  static const std::vector<codec::Body> bodies =
      BodiesOf<codec::TranslateDose, codec::SimulatePk, codec::FitPk, codec::ComputeSampleSize,
               codec::SimulateEscalation, codec::RunVirtualTrial, codec::PredictToxicity,
               codec::AssessClinical, codec::ReverseTranslate>();
  return bodies;
}

const std::vector<codec::Body>& DomainAnswers() {
  static const std::vector<codec::Body> bodies =
      BodiesOf<codec::DoseTranslation, codec::PkProfile, codec::PkFit, codec::SampleSizeResult,
               codec::OperatingCharacteristics, codec::VirtualTrialResult, codec::ToxicityPanel,
               codec::ClinicalAssessment, codec::ReverseTranslation>();
  return bodies;
}

TEST(DomainPolicyTest, ScientistsAndAdminsMaySendEveryDomainRequest) {
  for (const codec::Body& body : DomainRequests()) {
    EXPECT_EQ(Roles(body), (std::vector<std::string>{"admin", "scientist"}))
        << codec::BodyName(body);
  }
}

TEST(DomainPolicyTest, SitesMayNotSendDomainRequests) {
  for (const codec::Body& body : DomainRequests()) {
    const auto& roles = RolesAllowed(body);
    EXPECT_EQ(std::find(roles.begin(), roles.end(), std::string_view("site")), roles.end())
        << codec::BodyName(body);
  }
}

TEST(DomainPolicyTest, NoRoleMaySendADomainAnswer) {
  for (const codec::Body& body : DomainAnswers()) {
    EXPECT_TRUE(RolesAllowed(body).empty()) << codec::BodyName(body);
  }
}

// The eighteen domain bodies (translational, trial, then tox, clinical and
// reverse) are eighteen consecutive members of the union ending with
// ReverseTranslation, requests and answers alternating (append-only schema):
// the lists above cover them all. (The orchestrator and report bodies that
// follow are covered by workflow_policy_test.cc.)
TEST(DomainPolicyTest, TheListsCoverEveryDomainBody) {
  ASSERT_EQ(DomainRequests().size() + DomainAnswers().size(), 18u);
  const std::size_t end = codec::Body(codec::ReverseTranslation{}).index() + 1;
  for (std::size_t i = 0; i < DomainRequests().size(); ++i) {
    EXPECT_EQ(DomainRequests()[i].index(), end - 18 + 2 * i);
    EXPECT_EQ(DomainAnswers()[i].index(), end - 18 + 2 * i + 1);
  }
}

// Adding the domain bodies left the earlier rows of the table as they were.
TEST(DomainPolicyTest, EarlierBodiesKeepTheirRoles) {
  EXPECT_EQ(Roles(codec::CreateStudy{}), (std::vector<std::string>{"admin"}));
  EXPECT_EQ(Roles(codec::ListSites{}), (std::vector<std::string>{"admin", "scientist"}));
  EXPECT_EQ(Roles(codec::Heartbeat{}), (std::vector<std::string>{"site"}));
  EXPECT_EQ(Roles(codec::HealthCheck{}), (std::vector<std::string>{"admin", "scientist", "site"}));
  EXPECT_TRUE(RolesAllowed(codec::SecAggUnmaskRequest{}).empty());
  EXPECT_TRUE(RolesAllowed(codec::Error{}).empty());
}

// ---- Through the gateway -----------------------------------------------------

// A secure gateway on the in-memory bus (identities set through FakeNetwork)
// with a coordinator that records what reaches it. Only refusals are
// exercised: they are answered by the gateway itself, whatever service the
// admitted requests are routed to.
class DomainGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(coordinator_bus_
                    .Serve("inproc://coordinator",
                           [this](core::Inbound&& in) {
                             reached_coordinator_.push_back(codec::BodyName(in.message.body));
                           })
                    .ok());
    ASSERT_TRUE(gateway_.Start().ok());
  }

  // A connection from `client_` as `id`, enrolled with `role`, to the gateway
  // at `endpoint`.
  core::ChannelId As(const std::string& id, security::Role role,
                     const std::string& endpoint = "inproc://domain-gateway") {
    EXPECT_TRUE(registry_.Enrol(id, "Institution " + id, role).ok());
    network_.SetIdentity("client", {id, security::RoleName(role)});
    auto ch = client_.Connect(endpoint, [](codec::Message&&) {});
    EXPECT_TRUE(ch.ok());
    return *ch;
  }

  core::Result<codec::Message> Send(core::ChannelId ch, codec::Body body) {
    return core::Call(client_, ch, core::MakeMessage(std::move(body)),
                      std::chrono::milliseconds(1000));
  }

  double Denied(const std::string& reason) {
    return metrics_.Read("fedrx_gateway_denied_total", {{"reason", reason}});
  }

  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"gateway"};
  core::Metrics other_metrics_{"other"};
  core::testing::FakeStateStore store_;
  security::InstitutionRegistry registry_{store_, clock_};
  security::AuditLog audit_{store_, clock_, metrics_};
  core::testing::FakeBus coordinator_bus_{network_, core::BusOptions{"coordinator"}, other_metrics_,
                                          clock_};
  core::testing::FakeBus gateway_bus_{network_, core::BusOptions{"gateway"}, metrics_, clock_};
  core::testing::FakeBus client_{network_, core::BusOptions{"client"}, other_metrics_, clock_};
  GatewayService gateway_{GatewayOptions{"inproc://domain-gateway", "inproc://coordinator"},
                          gateway_bus_, metrics_, clock_,
                          GatewaySecurity{&registry_, &audit_, std::chrono::milliseconds(2000)}};
  std::vector<std::string> reached_coordinator_;
};

TEST_F(DomainGatewayTest, ASiteIsRefusedADomainRequestNamingTheRolesThatMay) {
  auto site = As("site-a", security::Role::kSite);
  auto reply = Send(site, BodiesOf<codec::TranslateDose>()[0]);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::StatusCode::kPermissionDenied);
  EXPECT_EQ(reply.status().message(),
            "role 'site' may not send TranslateDose (only scientist, admin)");
  EXPECT_EQ(reply.status().where(), "identity.role");
  EXPECT_EQ(Denied("role"), 1);
  EXPECT_TRUE(reached_coordinator_.empty());
}

TEST_F(DomainGatewayTest, AnswersAreRefusedFromPeopleAsBodiesOnlyServicesSend) {
  auto scientist = As("lab-x", security::Role::kScientist);
  std::size_t sent = 0;
  for (const codec::Body& body : DomainAnswers()) {
    auto reply = Send(scientist, body);
    ++sent;
    ASSERT_FALSE(reply.ok()) << codec::BodyName(body);
    EXPECT_EQ(reply.status().code(), core::StatusCode::kPermissionDenied);
    EXPECT_EQ(reply.status().message(),
              std::string(codec::BodyName(body)) + " is not accepted at the gateway");
    EXPECT_EQ(reply.status().where(), "envelope.body");
  }
  EXPECT_EQ(Denied("message_type"), static_cast<double>(sent));
  EXPECT_EQ(Denied("role"), 0);
  EXPECT_TRUE(reached_coordinator_.empty());
}

// With no translational service configured, the gateway answers a
// scientist's admitted request itself: unavailable, naming the setting.
TEST_F(DomainGatewayTest, ARequestForAnUnconfiguredServiceIsUnavailable) {
  auto scientist = As("lab-x", security::Role::kScientist);
  auto reply = Send(scientist, BodiesOf<codec::SimulatePk>()[0]);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), core::StatusCode::kUnavailable);
  EXPECT_EQ(reply.status().where(), "gateway.services.translational.endpoint");
  EXPECT_EQ(Denied("role"), 0);
  EXPECT_TRUE(reached_coordinator_.empty());
}

// The same for the ML services: each admitted request is answered
// Unavailable by the gateway, naming the service and its setting, and
// counted per service; nothing reaches the coordinator.
TEST_F(DomainGatewayTest, AnMlRequestForAnUnconfiguredServiceIsUnavailableNamingIt) {
  auto scientist = As("lab-x", security::Role::kScientist);
  const std::vector<codec::Body> requests =
      BodiesOf<codec::PredictToxicity, codec::AssessClinical, codec::ReverseTranslate>();
  const std::vector<std::string> services = {"tox", "clinical", "reverse"};
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto reply = Send(scientist, requests[i]);
    ASSERT_FALSE(reply.ok()) << services[i];
    EXPECT_EQ(reply.status().code(), core::StatusCode::kUnavailable);
    EXPECT_EQ(reply.status().message(),
              "no " + services[i] + " service is configured at this gateway");
    EXPECT_EQ(reply.status().where(), "gateway.services." + services[i] + ".endpoint");
    EXPECT_EQ(metrics_.Read("fedrx_gateway_unavailable_total", {{"service", services[i]}}), 1)
        << services[i];
  }
  EXPECT_EQ(Denied("role"), 0);
  EXPECT_TRUE(reached_coordinator_.empty());
}

TEST_F(DomainGatewayTest, ASiteIsRefusedEachMlRequestNamingTheRolesThatMay) {
  auto site = As("site-a", security::Role::kSite);
  std::size_t sent = 0;
  for (const codec::Body& body :
       BodiesOf<codec::PredictToxicity, codec::AssessClinical, codec::ReverseTranslate>()) {
    auto reply = Send(site, body);
    ++sent;
    ASSERT_FALSE(reply.ok()) << codec::BodyName(body);
    EXPECT_EQ(reply.status().code(), core::StatusCode::kPermissionDenied);
    EXPECT_EQ(reply.status().message(), "role 'site' may not send " +
                                            std::string(codec::BodyName(body)) +
                                            " (only scientist, admin)");
    EXPECT_EQ(reply.status().where(), "identity.role");
  }
  EXPECT_EQ(Denied("role"), static_cast<double>(sent));
  EXPECT_TRUE(reached_coordinator_.empty());
}

// A gateway with both domain services behind it, each a fake that records
// the bodies it receives and answers the ones it knows.
class DomainRoutingTest : public DomainGatewayTest {
 protected:
  void SetUp() override {
    DomainGatewayTest::SetUp();
    Serve(translational_bus_, "inproc://translational", translational_seen_);
    Serve(trial_bus_, "inproc://trial", trial_seen_);
    Serve(tox_bus_, "inproc://tox", tox_seen_);
    Serve(clinical_bus_, "inproc://clinical", clinical_seen_);
    Serve(reverse_bus_, "inproc://reverse", reverse_seen_);
    GatewayOptions options{"inproc://routed-gateway", "inproc://coordinator"};
    options.service_endpoints = {{"translational", "inproc://translational"},
                                 {"trial", "inproc://trial"},
                                 {"tox", "inproc://tox"},
                                 {"clinical", "inproc://clinical"},
                                 {"reverse", "inproc://reverse"}};
    routed_ = std::make_unique<GatewayService>(
        options, routed_bus_, routed_metrics_, clock_,
        GatewaySecurity{&registry_, &audit_, std::chrono::milliseconds(2000)});
    ASSERT_TRUE(routed_->Start().ok());
  }

  void Serve(core::testing::FakeBus& bus, const std::string& endpoint,
             std::vector<std::string>& seen) {
    ASSERT_TRUE(bus.Serve(endpoint,
                          [&bus, &seen](core::Inbound&& in) {
                            seen.push_back(codec::BodyName(in.message.body));
                            const codec::Body& body = in.message.body;
                            if (std::holds_alternative<codec::TranslateDose>(body)) {
                              codec::DoseTranslation answer;
                              answer.chosen_species = "rat";
                              answer.mrsd_mg = 48.6;
                              EXPECT_TRUE(core::Reply(bus, in, std::move(answer)).ok());
                            } else if (std::holds_alternative<codec::ComputeSampleSize>(body)) {
                              codec::SampleSizeResult answer;
                              answer.test = std::get<codec::ComputeSampleSize>(body).test;
                              answer.n_total = 128;
                              EXPECT_TRUE(core::Reply(bus, in, std::move(answer)).ok());
                            } else if (std::holds_alternative<codec::PredictToxicity>(body)) {
                              codec::ToxicityPanel answer;
                              answer.panel = std::get<codec::PredictToxicity>(body).panel;
                              answer.confidence = 0.9;
                              EXPECT_TRUE(core::Reply(bus, in, std::move(answer)).ok());
                            } else if (std::holds_alternative<codec::AssessClinical>(body)) {
                              codec::ClinicalAssessment answer;
                              answer.model.study_id = "clintox-demo";
                              EXPECT_TRUE(core::Reply(bus, in, std::move(answer)).ok());
                            } else if (std::holds_alternative<codec::ReverseTranslate>(body)) {
                              codec::ReverseTranslation answer;
                              answer.counts_sites = 3;
                              EXPECT_TRUE(core::Reply(bus, in, std::move(answer)).ok());
                            }
                          })
                    .ok());
  }

  // Sends `body` as message `id` and waits for the answer.
  core::Result<codec::Message> Ask(core::ChannelId ch, codec::Body body, const std::string& id) {
    codec::Message m = core::MakeMessage(std::move(body));
    m.header.message_id = id;
    return core::Call(client_, ch, std::move(m), std::chrono::milliseconds(1000));
  }

  core::Metrics routed_metrics_{"gateway"};
  core::testing::FakeBus routed_bus_{network_, core::BusOptions{"routed-gateway"}, routed_metrics_,
                                     clock_};
  core::testing::FakeBus translational_bus_{network_, core::BusOptions{"translational"},
                                            other_metrics_, clock_};
  core::testing::FakeBus trial_bus_{network_, core::BusOptions{"trial"}, other_metrics_, clock_};
  core::testing::FakeBus tox_bus_{network_, core::BusOptions{"tox"}, other_metrics_, clock_};
  core::testing::FakeBus clinical_bus_{network_, core::BusOptions{"clinical"}, other_metrics_,
                                       clock_};
  core::testing::FakeBus reverse_bus_{network_, core::BusOptions{"reverse"}, other_metrics_,
                                      clock_};
  std::unique_ptr<GatewayService> routed_;
  std::vector<std::string> translational_seen_;
  std::vector<std::string> trial_seen_;
  std::vector<std::string> tox_seen_;
  std::vector<std::string> clinical_seen_;
  std::vector<std::string> reverse_seen_;

  // Every service other than the one named saw nothing.
  void OnlyReached(const std::vector<std::string>& service_seen) {
    for (const auto* seen :
         {&translational_seen_, &trial_seen_, &tox_seen_, &clinical_seen_, &reverse_seen_}) {
      if (seen != &service_seen) {
        EXPECT_TRUE(seen->empty());
      }
    }
    EXPECT_TRUE(reached_coordinator_.empty());
  }
};

// A request its service never answers: once the gateway's request timeout
// (60 s by default) passes, the person is told (DeadlineExceeded, naming the
// service, from "gateway") instead of being left waiting, and the timeout is
// counted for that service; the counter is exported at zero before.
TEST_F(DomainRoutingTest, ARequestItsServiceNeverAnswersIsToldDeadlineExceededAndCounted) {
  EXPECT_EQ(routed_metrics_.Read("fedrx_gateway_request_timeouts_total", {{"service", "trial"}}),
            0);
  EXPECT_EQ(
      routed_metrics_.Read("fedrx_gateway_request_timeouts_total", {{"service", "coordinator"}}),
      0);
  auto scientist = As("lab-x", security::Role::kScientist, "inproc://routed-gateway");
  // The fake trial service answers ComputeSampleSize only.
  codec::Message m = core::MakeMessage(codec::SimulateEscalation{});
  m.header.message_id = "slow-1";
  std::optional<core::Result<codec::Message>> got;
  ASSERT_TRUE(client_
                  .Request(scientist, std::move(m), std::chrono::minutes(5),
                           [&got](core::Result<codec::Message>&& r) { got = std::move(r); })
                  .ok());
  network_.Pump();
  EXPECT_EQ(trial_seen_, std::vector<std::string>{"SimulateEscalation"});
  ASSERT_TRUE(routed_->Tick().ok());
  network_.Pump();
  EXPECT_FALSE(got.has_value());  // still within the timeout

  clock_.Advance(std::chrono::seconds(61));
  ASSERT_TRUE(routed_->Tick().ok());
  network_.Pump();
  ASSERT_TRUE(got.has_value());
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->status().code(), core::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(got->status().message(), "the trial service did not answer within 60000 ms");
  EXPECT_EQ(got->status().where(), "gateway");
  EXPECT_EQ(routed_metrics_.Read("fedrx_gateway_request_timeouts_total", {{"service", "trial"}}),
            1);
  EXPECT_EQ(routed_metrics_.Read("fedrx_gateway_request_timeouts_total", {{"service", "tox"}}), 0);
}

TEST_F(DomainRoutingTest, AScientistsDoseRequestReachesTranslationalAndIsAnswered) {
  auto scientist = As("lab-x", security::Role::kScientist, "inproc://routed-gateway");
  codec::TranslateDose request;
  request.noaels = {{"rat", 50, 0, "request"}};
  auto reply = Ask(scientist, std::move(request), "dose-1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.correlation_id, "dose-1");
  ASSERT_TRUE(std::holds_alternative<codec::DoseTranslation>(reply->body))
      << codec::BodyName(reply->body);
  EXPECT_EQ(std::get<codec::DoseTranslation>(reply->body).chosen_species, "rat");
  EXPECT_EQ(std::get<codec::DoseTranslation>(reply->body).mrsd_mg, 48.6);
  EXPECT_EQ(translational_seen_, std::vector<std::string>{"TranslateDose"});
  EXPECT_TRUE(trial_seen_.empty());
  EXPECT_TRUE(reached_coordinator_.empty());
}

TEST_F(DomainRoutingTest, AnAdminsSampleSizeRequestReachesTrialAndIsAnswered) {
  auto admin = As("admin-1", security::Role::kAdmin, "inproc://routed-gateway");
  codec::ComputeSampleSize request;
  request.test = "t_two_sample";
  auto reply = Ask(admin, std::move(request), "size-1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.correlation_id, "size-1");
  ASSERT_TRUE(std::holds_alternative<codec::SampleSizeResult>(reply->body))
      << codec::BodyName(reply->body);
  EXPECT_EQ(std::get<codec::SampleSizeResult>(reply->body).test, "t_two_sample");
  EXPECT_EQ(std::get<codec::SampleSizeResult>(reply->body).n_total, 128);
  EXPECT_EQ(trial_seen_, std::vector<std::string>{"ComputeSampleSize"});
  EXPECT_TRUE(translational_seen_.empty());
  EXPECT_TRUE(reached_coordinator_.empty());
}

TEST_F(DomainRoutingTest, AScientistsToxicityRequestReachesToxAndIsAnswered) {
  auto scientist = As("lab-x", security::Role::kScientist, "inproc://routed-gateway");
  codec::PredictToxicity request;
  request.smiles = {"CCO"};
  request.panel = "toxcast";
  auto reply = Ask(scientist, std::move(request), "tox-1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.correlation_id, "tox-1");
  ASSERT_TRUE(std::holds_alternative<codec::ToxicityPanel>(reply->body))
      << codec::BodyName(reply->body);
  EXPECT_EQ(std::get<codec::ToxicityPanel>(reply->body).panel, "toxcast");
  EXPECT_EQ(tox_seen_, std::vector<std::string>{"PredictToxicity"});
  OnlyReached(tox_seen_);
}

TEST_F(DomainRoutingTest, AnAdminsClinicalRequestReachesClinicalAndIsAnswered) {
  auto admin = As("admin-1", security::Role::kAdmin, "inproc://routed-gateway");
  codec::AssessClinical request;
  request.smiles = {"CCO"};
  auto reply = Ask(admin, std::move(request), "clin-1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.correlation_id, "clin-1");
  ASSERT_TRUE(std::holds_alternative<codec::ClinicalAssessment>(reply->body))
      << codec::BodyName(reply->body);
  EXPECT_EQ(std::get<codec::ClinicalAssessment>(reply->body).model.study_id, "clintox-demo");
  EXPECT_EQ(clinical_seen_, std::vector<std::string>{"AssessClinical"});
  OnlyReached(clinical_seen_);
}

TEST_F(DomainRoutingTest, AScientistsReverseRequestReachesReverseAndIsAnswered) {
  auto scientist = As("lab-x", security::Role::kScientist, "inproc://routed-gateway");
  codec::ReverseTranslate request;
  request.organ_classes = {"Hepatobiliary disorders"};
  auto reply = Ask(scientist, std::move(request), "rev-1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.correlation_id, "rev-1");
  ASSERT_TRUE(std::holds_alternative<codec::ReverseTranslation>(reply->body))
      << codec::BodyName(reply->body);
  EXPECT_EQ(std::get<codec::ReverseTranslation>(reply->body).counts_sites, 3u);
  EXPECT_EQ(reverse_seen_, std::vector<std::string>{"ReverseTranslate"});
  OnlyReached(reverse_seen_);
}

}  // namespace
}  // namespace fedrx::gateway
