// Gateway routing (gateway_routes.h): which service answers each request
// body people send, and the domain services whose endpoints the gateway reads
// from its configuration. Answers and site traffic go to the coordinator.
#include "gateway/gateway_routes.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/message.h"

namespace fedrx::gateway {
namespace {

std::string Route(const codec::Body& body) { return std::string(ServiceFor(body)); }

TEST(GatewayRoutesTest, MlRequestsGoToTheirServices) {
  EXPECT_EQ(Route(codec::PredictToxicity{}), "tox");
  EXPECT_EQ(Route(codec::AssessClinical{}), "clinical");
  EXPECT_EQ(Route(codec::ReverseTranslate{}), "reverse");
}

TEST(GatewayRoutesTest, TranslationalAndTrialRequestsKeepTheirServices) {
  EXPECT_EQ(Route(codec::TranslateDose{}), "translational");
  EXPECT_EQ(Route(codec::SimulatePk{}), "translational");
  EXPECT_EQ(Route(codec::FitPk{}), "translational");
  EXPECT_EQ(Route(codec::ComputeSampleSize{}), "trial");
  EXPECT_EQ(Route(codec::SimulateEscalation{}), "trial");
  EXPECT_EQ(Route(codec::RunVirtualTrial{}), "trial");
}

// Answers come back by correlation and are never routed to a domain service;
// site and study traffic goes to the coordinator.
TEST(GatewayRoutesTest, AnswersAndPlatformTrafficGoToTheCoordinator) {
  EXPECT_EQ(Route(codec::ToxicityPanel{}), kCoordinatorService);
  EXPECT_EQ(Route(codec::ClinicalAssessment{}), kCoordinatorService);
  EXPECT_EQ(Route(codec::ReverseTranslation{}), kCoordinatorService);
  EXPECT_EQ(Route(codec::CreateStudy{}), kCoordinatorService);
  EXPECT_EQ(Route(codec::Heartbeat{}), kCoordinatorService);
}

// Workflow requests go to the orchestrator, report requests to the report
// service; their answers, like every answer, are not routed.
TEST(GatewayRoutesTest, WorkflowAndReportRequestsGoToTheirServices) {
  EXPECT_EQ(Route(codec::RunWorkflow{}), "orchestrator");
  EXPECT_EQ(Route(codec::GetWorkflowRun{}), "orchestrator");
  EXPECT_EQ(Route(codec::ListWorkflows{}), "orchestrator");
  EXPECT_EQ(Route(codec::ListWorkflowRuns{}), "orchestrator");
  EXPECT_EQ(Route(codec::CreateReport{}), "report");
  EXPECT_EQ(Route(codec::GetReport{}), "report");
  EXPECT_EQ(Route(codec::ListReports{}), "report");
  EXPECT_EQ(Route(codec::WorkflowRun{}), kCoordinatorService);
  EXPECT_EQ(Route(codec::WorkflowList{}), kCoordinatorService);
  EXPECT_EQ(Route(codec::WorkflowRunList{}), kCoordinatorService);
  EXPECT_EQ(Route(codec::ReportInfo{}), kCoordinatorService);
  EXPECT_EQ(Route(codec::ReportDocument{}), kCoordinatorService);
  EXPECT_EQ(Route(codec::ReportList{}), kCoordinatorService);
}

TEST(GatewayRoutesTest, DomainServicesListEveryRoutedServiceInAStableOrder) {
  const std::vector<std::string_view> want = {"translational", "trial",        "tox",   "clinical",
                                              "reverse",       "orchestrator", "report"};
  EXPECT_EQ(DomainServices(), want);
}

}  // namespace
}  // namespace fedrx::gateway
