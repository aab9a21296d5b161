// The report service over an in-memory store: a candidate report from a run
// record and its step outputs stored apart (outputs inlined), a study report
// from the coordinator's records, reports stored per the keys and listed
// newest first; unknown run/study/report refused as NotFound naming it,
// oversized content as ResourceExhausted with nothing stored, bad kind or
// format as InvalidArgument; the counters; and the handlers answering over a
// bus through RequestService.
#include "services/report/report_service.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "services/coordinator/study_store.h"
#include "services/core/keys.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"
#include "tests/report/report_fixtures.h"

namespace fedrx::report {
namespace {

using core::testing::FakeClock;
using core::testing::FakeStateStore;
using nlohmann::json;

constexpr char kRun[] = "run-20261126T190102Z-3f9a1c";

// Stores `run` as the orchestrator does: the record without outputs, each
// succeeded step's output under its own key.
void StoreRun(core::StateStore& store, json run) {
  const std::string id = run["run_id"];
  for (json& step : run["steps"]) {
    if (!step.contains("output")) continue;
    ASSERT_TRUE(store
                    .Set(*core::keys::WorkflowStepOutput(id, step["id"].get<std::string>()),
                         step["output"].dump())
                    .ok());
    step.erase("output");
  }
  ASSERT_TRUE(store.Set(*core::keys::WorkflowRun(id), run.dump()).ok());
}

void StoreStudy(core::StateStore& store, const StudyView& view) {
  coordinator::StudyStore studies(store);
  ASSERT_TRUE(studies.Create(view.spec, std::vector<float>{0.f, 0.f}, 1000).ok());
  for (const StudyRoundView& r : view.rounds) {
    coordinator::RoundRecord rec;
    rec.round = r.round;
    rec.state = codec::RoundState::kClosed;
    rec.base_version = r.base_version;
    rec.selected = r.selected;
    rec.contributed = r.contributed;
    rec.samples = r.samples;
    rec.started_at_ms = r.started_ms;
    rec.closed_at_ms = r.closed_ms;
    ASSERT_TRUE(studies.SaveRound(view.spec.study_id, rec).ok());
    ASSERT_TRUE(studies.SaveRoundMetrics(view.spec.study_id, r.round, r.metrics).ok());
  }
  ASSERT_TRUE(
      studies.SaveState(view.spec.study_id, codec::StudyState::kCompleted, view.current_round, "")
          .ok());
}

struct Fixture {
  FakeStateStore store;
  FakeClock clock{1795719700000};
  core::Metrics metrics{"report"};
  ReportService reports{store, metrics, clock};

  double Count(const std::string& kind, const std::string& result) {
    return metrics.Read("fedrx_report_reports_total", {{"kind", kind}, {"result", result}});
  }
};

TEST(ReportServiceTest, CandidateReportInlinesStepOutputsAndIsStored) {
  Fixture f;
  StoreRun(f.store, testing::FirstInHumanRun());
  auto info = f.reports.Create({"candidate", kRun});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->report_id, std::string("rpt-candidate-") + kRun + "-1");
  EXPECT_EQ(info->kind, "candidate");
  EXPECT_EQ(info->subject, kRun);
  EXPECT_EQ(info->title, "Candidate report: Candidate-7");
  EXPECT_EQ(info->summary, "proceed with conditions: start at 48.4 mg; monitor liver enzymes");
  EXPECT_EQ(info->created_ms, 1795719700000);

  auto html = f.reports.Get({info->report_id, "html"});
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_EQ(html->format, "html");
  EXPECT_EQ(html->content.size(), info->html_bytes);
  EXPECT_EQ(html->info.report_id, info->report_id);
  // The step outputs read from their own keys are in the page.
  EXPECT_NE(html->content.find("MRSD 48.4 mg"), std::string::npos);
  const testing::XmlPage page = testing::ParseXml(html->content);
  ASSERT_NE(page.doc, nullptr) << page.error;
  EXPECT_EQ(testing::ChartMarks(page.doc.get()).size(), testing::FirstInHumanCharts().size());

  auto doc = f.reports.Get({info->report_id, "json"});
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(doc->content.size(), info->json_bytes);
  const json j = json::parse(doc->content);
  EXPECT_EQ(j["run"]["steps"][3]["output"]["mrsd_mg"], 48.4);
  EXPECT_EQ(j["kind"], "candidate");

  // Stored per the contract: hash fields info/html/json, id in the index.
  auto stored = f.store.HashGetAll(*core::keys::Report(info->report_id));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 3u);
  EXPECT_EQ(json::parse(stored->at("info"))["html_bytes"], info->html_bytes);
  auto index = f.store.SetMembers(core::keys::ReportIndex());
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, std::vector<std::string>{info->report_id});

  // A second report of the same run takes the next number.
  auto again = f.reports.Create({"candidate", kRun});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->report_id, std::string("rpt-candidate-") + kRun + "-2");
  EXPECT_EQ(f.Count("candidate", "ok"), 2);
}

TEST(ReportServiceTest, StudyReportFromTheCoordinatorsRecords) {
  Fixture f;
  StoreStudy(f.store, testing::ThreeRoundStudy());
  auto info = f.reports.Create({"study", "tox21-demo"});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->report_id, "rpt-study-tox21-demo-1");
  EXPECT_EQ(info->title, "Study report: Tox21 federated");
  EXPECT_EQ(info->summary,
            "tox21-demo: completed, 3 of 3 rounds closed, validation mean ROC-AUC 0.72, privacy "
            "epsilon spent 4.5, 1 dropouts");
  auto doc = f.reports.Get({info->report_id, "json"});
  ASSERT_TRUE(doc.ok());
  const json j = json::parse(doc->content);
  EXPECT_EQ(j["rounds"].size(), 3u);
  EXPECT_EQ(j["rounds"][1]["dropouts"], json::array({"site-b"}));
  EXPECT_EQ(f.Count("study", "ok"), 1);
}

TEST(ReportServiceTest, ListsNewestFirstByKind) {
  Fixture f;
  StoreRun(f.store, testing::FirstInHumanRun());
  StoreStudy(f.store, testing::ThreeRoundStudy());
  ASSERT_TRUE(f.reports.Create({"candidate", kRun}).ok());
  f.clock.Advance(std::chrono::milliseconds(1000));
  ASSERT_TRUE(f.reports.Create({"study", "tox21-demo"}).ok());
  f.clock.Advance(std::chrono::milliseconds(1000));
  ASSERT_TRUE(f.reports.Create({"candidate", kRun}).ok());
  auto all = f.reports.List({"", 50});
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->reports.size(), 3u);
  EXPECT_EQ(all->reports[0].report_id, std::string("rpt-candidate-") + kRun + "-2");
  EXPECT_EQ(all->reports[1].report_id, "rpt-study-tox21-demo-1");
  EXPECT_EQ(all->reports[2].report_id, std::string("rpt-candidate-") + kRun + "-1");
  auto studies = f.reports.List({"study", 50});
  ASSERT_TRUE(studies.ok());
  ASSERT_EQ(studies->reports.size(), 1u);
  EXPECT_EQ(studies->reports[0].kind, "study");
  auto one = f.reports.List({"", 1});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->reports.size(), 1u);
  auto defaulted = f.reports.List({"", 0});  // 0: the default limit
  ASSERT_TRUE(defaulted.ok());
  EXPECT_EQ(defaulted->reports.size(), 3u);
}

TEST(ReportServiceTest, RefusesUnknownAndBadRequests) {
  Fixture f;
  auto run = f.reports.Create({"candidate", "run-missing"});
  ASSERT_EQ(run.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(run.status().message().find("run-missing"), std::string::npos);
  EXPECT_EQ(run.status().where(), "CreateReport.subject");
  auto study = f.reports.Create({"study", "no-such-study"});
  ASSERT_EQ(study.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(study.status().message().find("no-such-study"), std::string::npos);
  auto report = f.reports.Get({"rpt-x", "html"});
  ASSERT_EQ(report.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(report.status().message().find("rpt-x"), std::string::npos);
  auto kind = f.reports.Create({"weekly", kRun});
  EXPECT_EQ(kind.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(kind.status().where(), "CreateReport.kind");
  auto subject = f.reports.Create({"candidate", "../etc"});
  EXPECT_EQ(subject.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(subject.status().where(), "CreateReport.subject");
  auto format = f.reports.Get({"rpt-x", "pdf"});
  EXPECT_EQ(format.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(format.status().where(), "GetReport.format");
  auto list = f.reports.List({"weekly", 10});
  EXPECT_EQ(list.status().where(), "ListReports.kind");
  // A record that is not JSON is data loss, not a crash.
  ASSERT_TRUE(f.store.Set(*core::keys::WorkflowRun("run-bad"), "{not json").ok());
  EXPECT_EQ(f.reports.Create({"candidate", "run-bad"}).status().code(),
            core::StatusCode::kDataLoss);
  EXPECT_EQ(f.Count("candidate", "not_found"), 1);
  EXPECT_EQ(f.Count("study", "not_found"), 1);
  EXPECT_EQ(f.Count("invalid", "invalid_argument"), 1);
  EXPECT_TRUE(f.store.SetMembers(core::keys::ReportIndex())->empty());
}

TEST(ReportServiceTest, OversizedReportIsRefusedAndNotStored) {
  Fixture f;
  json run = testing::FirstInHumanRun();
  run["input"]["notes"] = std::string(950000, 'x');  // copied into the report's JSON
  StoreRun(f.store, run);
  auto info = f.reports.Create({"candidate", kRun});
  ASSERT_EQ(info.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(info.status().message().find(std::string("rpt-candidate-") + kRun + "-1"),
            std::string::npos);
  EXPECT_NE(info.status().message().find("900000"), std::string::npos);
  EXPECT_TRUE(f.store.SetMembers(core::keys::ReportIndex())->empty());
  EXPECT_FALSE(
      f.store.HashGet(*core::keys::Report(std::string("rpt-candidate-") + kRun + "-1"), "info")
          ->has_value());
  EXPECT_EQ(f.Count("candidate", "resource_exhausted"), 1);
}

TEST(ReportServiceTest, StoreOutageIsReturnedNotHidden) {
  Fixture f;
  StoreRun(f.store, testing::FirstInHumanRun());
  f.store.SetDown(true);
  EXPECT_EQ(f.reports.Create({"candidate", kRun}).status().code(), core::StatusCode::kUnavailable);
  EXPECT_EQ(f.reports.List({}).status().code(), core::StatusCode::kUnavailable);
  f.store.SetDown(false);
  EXPECT_TRUE(f.reports.Create({"candidate", kRun}).ok());
}

// The handlers answer CreateReport, GetReport and ListReports over a bus.
TEST(ReportServiceTest, AnswersOverTheBus) {
  Fixture f;
  StoreRun(f.store, testing::FirstInHumanRun());
  core::testing::FakeNetwork network;
  core::Metrics client_metrics("client");
  core::testing::FakeBus server(network, core::BusOptions{"report"}, f.metrics, f.clock);
  core::testing::FakeBus client(network, core::BusOptions{"client"}, client_metrics, f.clock);
  domain::RequestServiceOptions options;
  options.name = "report";
  options.endpoint = "tcp://127.0.0.1:5586";
  domain::RequestService service(options, server, f.metrics, f.clock);
  InstallReportHandlers(service, f.reports);
  ASSERT_TRUE(service.Start().ok());
  auto channel = client.Connect(options.endpoint, [](codec::Message&&) {});
  ASSERT_TRUE(channel.ok());

  // Sends `body` and runs the service until the answer arrives (handlers run
  // on a worker thread; bounded by iterations, not by time).
  const auto call = [&](codec::Body body) -> core::Result<codec::Message> {
    std::optional<core::Result<codec::Message>> answer;
    EXPECT_TRUE(client
                    .Request(*channel, core::MakeMessage(std::move(body)), std::chrono::seconds(60),
                             [&](core::Result<codec::Message>&& m) { answer = std::move(m); })
                    .ok());
    for (int i = 0; i < 200000 && !answer.has_value(); ++i) {
      network.Pump();
      EXPECT_TRUE(service.Tick().ok());
      network.Pump();
      if (!answer.has_value()) std::this_thread::yield();
    }
    if (!answer.has_value()) return core::Internal("no answer");
    return std::move(*answer);
  };

  auto created = call(codec::CreateReport{"candidate", kRun});
  ASSERT_TRUE(created.ok()) << created.status();
  const auto& info = std::get<codec::ReportInfo>(created->body);
  EXPECT_EQ(info.report_id, std::string("rpt-candidate-") + kRun + "-1");
  auto got = call(codec::GetReport{info.report_id, "html"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(std::get<codec::ReportDocument>(got->body).content.size(), info.html_bytes);
  auto listed = call(codec::ListReports{"candidate", 10});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(std::get<codec::ReportList>(listed->body).reports.size(), 1u);
  auto missing = call(codec::GetReport{"rpt-none", "html"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("rpt-none"), std::string::npos);
}

}  // namespace
}  // namespace fedrx::report
