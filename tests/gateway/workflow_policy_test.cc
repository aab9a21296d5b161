// Gateway admission and routing of the orchestrator's and the report
// service's bodies: people (scientists and admins) may send RunWorkflow,
// GetWorkflowRun, ListWorkflows, ListWorkflowRuns, CreateReport, GetReport and
// ListReports; sites may not; no role may send the answers (WorkflowRun,
// WorkflowList, WorkflowRunList, ReportInfo, ReportDocument, ReportList),
// which only the services write. The table (RolesAllowed); the gateway over
// the in-memory bus refusing such messages with the reason and location a
// client sees; admitted requests reaching the orchestrator or the report
// service (never the coordinator or another service) and their answers coming
// back by correlation, a report page at the report service's 900,000-byte cap
// included; a request for one of them when the gateway has no endpoint
// answered Unavailable, naming it.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
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

// Bodies are built in place, one at a time (a braced list of Body conversions
// is slow to compile).
template <typename... T>
std::vector<codec::Body> BodiesOf() {
  std::vector<codec::Body> out;
  (out.emplace_back(std::in_place_type<T>), ...);
  return out;
}

const std::vector<codec::Body>& WorkflowRequests() {
  static const std::vector<codec::Body> bodies =
      BodiesOf<codec::RunWorkflow, codec::GetWorkflowRun, codec::ListWorkflows,
               codec::ListWorkflowRuns, codec::CreateReport, codec::GetReport,
               codec::ListReports>();
  return bodies;
}

const std::vector<codec::Body>& WorkflowAnswers() {
  static const std::vector<codec::Body> bodies =
      BodiesOf<codec::WorkflowRun, codec::WorkflowList, codec::WorkflowRunList, codec::ReportInfo,
               codec::ReportDocument, codec::ReportList>();
  return bodies;
}

TEST(WorkflowPolicyTest, ScientistsAndAdminsMaySendEveryWorkflowAndReportRequest) {
  for (const codec::Body& body : WorkflowRequests()) {
    EXPECT_EQ(Roles(body), (std::vector<std::string>{"admin", "scientist"}))
        << codec::BodyName(body);
  }
}

TEST(WorkflowPolicyTest, SitesMayNotSendWorkflowOrReportRequests) {
  for (const codec::Body& body : WorkflowRequests()) {
    const auto& roles = RolesAllowed(body);
    EXPECT_EQ(std::find(roles.begin(), roles.end(), std::string_view("site")), roles.end())
        << codec::BodyName(body);
  }
}

TEST(WorkflowPolicyTest, NoRoleMaySendAWorkflowOrReportAnswer) {
  for (const codec::Body& body : WorkflowAnswers()) {
    EXPECT_TRUE(RolesAllowed(body).empty()) << codec::BodyName(body);
  }
}

// The thirteen bodies follow ReverseTranslation in the union (append-only
// schema): the two lists above cover exactly them.
TEST(WorkflowPolicyTest, TheListsCoverEveryOrchestratorAndReportBody) {
  const std::size_t first = codec::Body(codec::ReverseTranslation{}).index() + 1;
  std::set<std::size_t> covered;
  for (const auto* list : {&WorkflowRequests(), &WorkflowAnswers()}) {
    for (const codec::Body& body : *list) covered.insert(body.index());
  }
  ASSERT_EQ(covered.size(), 13u);
  EXPECT_EQ(*covered.begin(), first);
  EXPECT_EQ(*covered.rbegin(), first + 12);
}

// Adding these bodies left the earlier rows of the table as they were.
TEST(WorkflowPolicyTest, EarlierBodiesKeepTheirRoles) {
  EXPECT_EQ(Roles(codec::PredictToxicity{}), (std::vector<std::string>{"admin", "scientist"}));
  EXPECT_TRUE(RolesAllowed(codec::ReverseTranslation{}).empty());
  EXPECT_EQ(Roles(codec::CreateStudy{}), (std::vector<std::string>{"admin"}));
  EXPECT_EQ(Roles(codec::Heartbeat{}), (std::vector<std::string>{"site"}));
  EXPECT_EQ(Roles(codec::HealthCheck{}), (std::vector<std::string>{"admin", "scientist", "site"}));
}

// The per-role message limits count tensor bytes; people's 1 MiB default is
// not lowered below what a report request needs (none carries tensors).
TEST(WorkflowPolicyTest, PeoplesDefaultLimitsAdmitReportTraffic) {
  const auto limits = GatewayLimits::DefaultRoleLimits();
  EXPECT_EQ(limits.at("scientist").max_message_bytes, 1ull << 20);
  EXPECT_EQ(limits.at("admin").max_message_bytes, 1ull << 20);
}

// ---- Through the gateway -----------------------------------------------------

// A secure gateway on the in-memory bus (identities set through FakeNetwork)
// with a coordinator that records what reaches it and no orchestrator or
// report endpoint.
class WorkflowGatewayTest : public ::testing::Test {
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
                     const std::string& endpoint = "inproc://workflow-gateway") {
    EXPECT_TRUE(registry_.Enrol(id, "Institution " + id, role).ok());
    network_.SetIdentity("client", {id, security::RoleName(role)});
    auto ch = client_.Connect(endpoint, [](codec::Message&&) {});
    EXPECT_TRUE(ch.ok());
    return *ch;
  }

  // Sends `body` as message `id` and waits for the answer.
  core::Result<codec::Message> Ask(core::ChannelId ch, codec::Body body, const std::string& id) {
    codec::Message m = core::MakeMessage(std::move(body));
    m.header.message_id = id;
    return core::Call(client_, ch, std::move(m), std::chrono::milliseconds(1000));
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
  GatewayService gateway_{GatewayOptions{"inproc://workflow-gateway", "inproc://coordinator"},
                          gateway_bus_, metrics_, clock_,
                          GatewaySecurity{&registry_, &audit_, std::chrono::milliseconds(2000)}};
  std::vector<std::string> reached_coordinator_;
};

TEST_F(WorkflowGatewayTest, ASiteIsRefusedEachRequestNamingTheRolesThatMay) {
  auto site = As("site-a", security::Role::kSite);
  std::size_t sent = 0;
  for (const codec::Body& body : WorkflowRequests()) {
    auto reply = Ask(site, body, "site-" + std::to_string(sent));
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

TEST_F(WorkflowGatewayTest, AnswersAreRefusedFromPeopleAsBodiesOnlyServicesSend) {
  auto scientist = As("lab-x", security::Role::kScientist);
  std::size_t sent = 0;
  for (const codec::Body& body : WorkflowAnswers()) {
    auto reply = Ask(scientist, body, "answer-" + std::to_string(sent));
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

// With neither service configured, the gateway answers each admitted request
// itself: Unavailable, naming the service and its setting, counted per
// service; nothing reaches the coordinator.
TEST_F(WorkflowGatewayTest, ARequestForAnUnconfiguredServiceIsUnavailableNamingIt) {
  auto admin = As("admin-1", security::Role::kAdmin);
  const std::vector<codec::Body> requests =
      BodiesOf<codec::RunWorkflow, codec::ListWorkflows, codec::CreateReport, codec::GetReport>();
  const std::vector<std::string> services = {"orchestrator", "orchestrator", "report", "report"};
  for (std::size_t i = 0; i < requests.size(); ++i) {
    auto reply = Ask(admin, requests[i], "unconf-" + std::to_string(i));
    ASSERT_FALSE(reply.ok()) << codec::BodyName(requests[i]);
    EXPECT_EQ(reply.status().code(), core::StatusCode::kUnavailable);
    EXPECT_EQ(reply.status().message(),
              "no " + services[i] + " service is configured at this gateway");
    EXPECT_EQ(reply.status().where(), "gateway.services." + services[i] + ".endpoint");
  }
  EXPECT_EQ(metrics_.Read("fedrx_gateway_unavailable_total", {{"service", "orchestrator"}}), 2);
  EXPECT_EQ(metrics_.Read("fedrx_gateway_unavailable_total", {{"service", "report"}}), 2);
  EXPECT_EQ(Denied("role"), 0);
  EXPECT_TRUE(reached_coordinator_.empty());
}

// A gateway with the orchestrator, the report service and the tox service
// behind it, each a fake that records the bodies it receives and answers the
// ones it knows.
class WorkflowRoutingTest : public WorkflowGatewayTest {
 protected:
  static constexpr std::size_t kReportCap = 900000;  // the report service's content cap

  void SetUp() override {
    WorkflowGatewayTest::SetUp();
    Serve(orchestrator_bus_, "inproc://orchestrator", orchestrator_seen_);
    Serve(report_bus_, "inproc://report", report_seen_);
    Serve(tox_bus_, "inproc://tox", tox_seen_);
    GatewayOptions options{"inproc://routed-workflow-gateway", "inproc://coordinator"};
    options.service_endpoints = {{"orchestrator", "inproc://orchestrator"},
                                 {"report", "inproc://report"},
                                 {"tox", "inproc://tox"}};
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
                            if (const auto* run = std::get_if<codec::RunWorkflow>(&body)) {
                              codec::WorkflowRun answer;
                              answer.run_id = run->run_id;
                              answer.workflow = run->workflow;
                              answer.state = "running";
                              EXPECT_TRUE(core::Reply(bus, in, std::move(answer)).ok());
                            } else if (std::holds_alternative<codec::ListWorkflows>(body)) {
                              codec::WorkflowList answer;
                              answer.workflows.resize(2);
                              answer.workflows[0].name = "first-in-human";
                              answer.workflows[1].name = "lead-triage";
                              EXPECT_TRUE(core::Reply(bus, in, std::move(answer)).ok());
                            } else if (const auto* get = std::get_if<codec::GetReport>(&body)) {
                              // A page at the report service's cap.
                              codec::ReportDocument answer;
                              answer.info.report_id = get->report_id;
                              answer.info.kind = "candidate";
                              answer.info.html_bytes = kReportCap;
                              answer.format = get->format;
                              answer.content.assign(kReportCap, 'p');
                              answer.content.replace(0, 15, "<!doctype html>");
                              EXPECT_TRUE(core::Reply(bus, in, std::move(answer)).ok());
                            } else if (const auto* list = std::get_if<codec::ListReports>(&body)) {
                              codec::ReportList answer;
                              answer.reports.resize(list->limit);
                              EXPECT_TRUE(core::Reply(bus, in, std::move(answer)).ok());
                            }
                          })
                    .ok());
  }

  // Every service other than the one named saw nothing.
  void OnlyReached(const std::vector<std::string>& service_seen) {
    for (const auto* seen : {&orchestrator_seen_, &report_seen_, &tox_seen_}) {
      if (seen != &service_seen) {
        EXPECT_TRUE(seen->empty());
      }
    }
    EXPECT_TRUE(reached_coordinator_.empty());
  }

  core::Metrics routed_metrics_{"gateway"};
  core::testing::FakeBus routed_bus_{network_, core::BusOptions{"routed-gateway"}, routed_metrics_,
                                     clock_};
  core::testing::FakeBus orchestrator_bus_{network_, core::BusOptions{"orchestrator"},
                                           other_metrics_, clock_};
  core::testing::FakeBus report_bus_{network_, core::BusOptions{"report"}, other_metrics_, clock_};
  core::testing::FakeBus tox_bus_{network_, core::BusOptions{"tox"}, other_metrics_, clock_};
  std::unique_ptr<GatewayService> routed_;
  std::vector<std::string> orchestrator_seen_;
  std::vector<std::string> report_seen_;
  std::vector<std::string> tox_seen_;
};

TEST_F(WorkflowRoutingTest, AScientistsRunWorkflowReachesTheOrchestratorAndIsAnswered) {
  auto scientist = As("lab-x", security::Role::kScientist, "inproc://routed-workflow-gateway");
  codec::RunWorkflow request;
  request.workflow = "first-in-human";
  request.input_json = R"({"structure":"CCO"})";
  request.run_id = "run-1";
  auto reply = Ask(scientist, std::move(request), "wf-1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.correlation_id, "wf-1");
  ASSERT_TRUE(std::holds_alternative<codec::WorkflowRun>(reply->body))
      << codec::BodyName(reply->body);
  const auto& run = std::get<codec::WorkflowRun>(reply->body);
  EXPECT_EQ(run.run_id, "run-1");
  EXPECT_EQ(run.workflow, "first-in-human");
  EXPECT_EQ(run.state, "running");
  EXPECT_EQ(orchestrator_seen_, std::vector<std::string>{"RunWorkflow"});
  OnlyReached(orchestrator_seen_);
}

TEST_F(WorkflowRoutingTest, AnAdminsListWorkflowsReachesTheOrchestratorAndIsAnswered) {
  auto admin = As("admin-1", security::Role::kAdmin, "inproc://routed-workflow-gateway");
  auto reply = Ask(admin, codec::ListWorkflows{}, "wf-list-1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.correlation_id, "wf-list-1");
  ASSERT_TRUE(std::holds_alternative<codec::WorkflowList>(reply->body))
      << codec::BodyName(reply->body);
  const auto& list = std::get<codec::WorkflowList>(reply->body);
  ASSERT_EQ(list.workflows.size(), 2u);
  EXPECT_EQ(list.workflows[1].name, "lead-triage");
  EXPECT_EQ(orchestrator_seen_, std::vector<std::string>{"ListWorkflows"});
  OnlyReached(orchestrator_seen_);
}

// A report page at the report service's 900,000-byte cap comes back to a
// scientist through the gateway whole: the gateway's and the client's 1 MiB
// envelope limit leave room for it, and the per-role limit counts only tensor
// bytes of what people send.
TEST_F(WorkflowRoutingTest, AScientistGetsAReportPageAtTheServicesCapWhole) {
  auto scientist = As("lab-x", security::Role::kScientist, "inproc://routed-workflow-gateway");
  codec::GetReport request;
  request.report_id = "rep-1";
  request.format = "html";
  auto reply = Ask(scientist, std::move(request), "rep-get-1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->header.correlation_id, "rep-get-1");
  ASSERT_TRUE(std::holds_alternative<codec::ReportDocument>(reply->body))
      << codec::BodyName(reply->body);
  const auto& doc = std::get<codec::ReportDocument>(reply->body);
  EXPECT_EQ(doc.info.report_id, "rep-1");
  EXPECT_EQ(doc.format, "html");
  EXPECT_EQ(doc.content.size(), kReportCap);
  EXPECT_EQ(doc.content.substr(0, 15), "<!doctype html>");
  EXPECT_EQ(report_seen_, std::vector<std::string>{"GetReport"});
  OnlyReached(report_seen_);
}

TEST_F(WorkflowRoutingTest, AnAdminsListReportsReachesTheReportServiceAndIsAnswered) {
  auto admin = As("admin-1", security::Role::kAdmin, "inproc://routed-workflow-gateway");
  codec::ListReports request;
  request.kind = "candidate";
  request.limit = 3;
  auto reply = Ask(admin, std::move(request), "rep-list-1");
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(std::holds_alternative<codec::ReportList>(reply->body))
      << codec::BodyName(reply->body);
  EXPECT_EQ(std::get<codec::ReportList>(reply->body).reports.size(), 3u);
  EXPECT_EQ(report_seen_, std::vector<std::string>{"ListReports"});
  OnlyReached(report_seen_);
}

// A request for a configured service other than these still goes there:
// adding the two services moved no route.
TEST_F(WorkflowRoutingTest, ToxRequestsStillReachTox) {
  auto scientist = As("lab-x", security::Role::kScientist, "inproc://routed-workflow-gateway");
  codec::PredictToxicity request;
  request.smiles = {"CCO"};
  // The fake tox answers nothing; the request is only checked to arrive.
  codec::Message m = core::MakeMessage(std::move(request));
  m.header.message_id = "tox-1";
  ASSERT_TRUE(client_.Send(scientist, std::move(m)).ok());
  network_.Pump();
  EXPECT_EQ(tox_seen_, std::vector<std::string>{"PredictToxicity"});
  OnlyReached(tox_seen_);
}

}  // namespace
}  // namespace fedrx::gateway
