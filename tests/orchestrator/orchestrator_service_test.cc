// The orchestrator service on the in-memory bus: its requests (RunWorkflow,
// GetWorkflowRun, ListWorkflows, ListWorkflowRuns, HealthCheck) and errors,
// and a whole run whose steps go over the bus (BusStepCaller) to fake domain
// and report services.
#include "services/orchestrator/orchestrator_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "services/core/bus.h"
#include "services/core/config.h"
#include "services/core/curve_keys.h"
#include "services/core/keys.h"
#include "services/core/testing/fake_bus.h"
#include "services/core/testing/fake_clock.h"
#include "services/core/testing/fake_state_store.h"
#include "services/orchestrator/bus_step_caller.h"
#include "services/orchestrator/engine.h"
#include "tests/orchestrator/engine_test_support.h"

namespace fedrx::orchestrator {
namespace {

using nlohmann::json;

constexpr std::chrono::milliseconds kWait{2000};

class OrchestratorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The domain services and the report service, answering at once.
    Serve(tox_bus_, "inproc://tox", [](const codec::Body&) -> core::Result<codec::Body> {
      return codec::Body(testing::TestPanel(0.9));
    });
    Serve(clinical_bus_, "inproc://clinical", [](const codec::Body&) -> core::Result<codec::Body> {
      return codec::Body(testing::TestClinical());
    });
    Serve(translational_bus_, "inproc://translational",
          [](const codec::Body& b) -> core::Result<codec::Body> {
            const auto& r = std::get<codec::TranslateDose>(b);
            if (r.noaels.empty() || r.noaels[0].species == "yeti") {
              return core::InvalidArgument("unknown species", "TranslateDose.noaels[0].species");
            }
            return codec::Body(testing::TestDose(12.5));
          });
    Serve(report_bus_, "inproc://report",
          [this](const codec::Body& b) -> core::Result<codec::Body> {
            const auto& r = std::get<codec::CreateReport>(b);
            reports_asked_.push_back(r.kind + ":" + r.subject);
            codec::ReportInfo info;
            info.report_id = "rep-" + r.subject;
            return codec::Body(info);
          });
    ASSERT_TRUE(caller_.Connect().ok());
    ASSERT_TRUE(service_.Start().ok());
    auto ch = client_.Connect("inproc://orchestrator", [](codec::Message&&) {});
    ASSERT_TRUE(ch.ok());
    channel_ = *ch;
  }

  void Serve(core::testing::FakeBus& bus, const std::string& endpoint,
             std::function<core::Result<codec::Body>(const codec::Body&)> answer) {
    ASSERT_TRUE(bus.Serve(endpoint,
                          [&bus, answer](core::Inbound&& in) {
                            auto a = answer(in.message.body);
                            if (a.ok()) {
                              EXPECT_TRUE(core::Reply(bus, in, std::move(*a)).ok());
                            } else {
                              EXPECT_TRUE(core::ReplyError(bus, in, a.status()).ok());
                            }
                          })
                    .ok());
  }

  core::Result<codec::Message> Ask(codec::Body body) {
    return core::Call(client_, channel_, core::MakeMessage(std::move(body)), kWait);
  }

  // Lets the traffic flow and the service tick until `done` or 50 rounds.
  template <typename Pred>
  void RunUntil(Pred done) {
    for (int i = 0; i < 50 && !done(); ++i) {
      network_.Pump();
      ASSERT_TRUE(service_.Tick().ok());
      network_.Pump();
      clock_.Advance(std::chrono::milliseconds(100));
    }
  }

  codec::WorkflowRun GetRun(const std::string& id, bool outputs) {
    auto reply = Ask(codec::GetWorkflowRun{id, outputs});
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok() || !std::holds_alternative<codec::WorkflowRun>(reply->body)) return {};
    return std::get<codec::WorkflowRun>(reply->body);
  }

  core::testing::FakeNetwork network_;
  core::testing::FakeClock clock_;
  core::Metrics metrics_{"orchestrator"};
  core::Metrics other_metrics_{"other"};
  core::testing::FakeStateStore store_;
  LocalFunctions functions_ = testing::TestFunctions();
  core::testing::FakeBus bus_{network_, core::BusOptions{"orchestrator"}, metrics_, clock_};
  core::testing::FakeBus client_{network_, core::BusOptions{"client"}, other_metrics_, clock_};
  core::testing::FakeBus tox_bus_{network_, core::BusOptions{"tox"}, other_metrics_, clock_};
  core::testing::FakeBus clinical_bus_{network_, core::BusOptions{"clinical"}, other_metrics_,
                                       clock_};
  core::testing::FakeBus translational_bus_{network_, core::BusOptions{"translational"},
                                            other_metrics_, clock_};
  core::testing::FakeBus report_bus_{network_, core::BusOptions{"report"}, other_metrics_, clock_};
  BusStepCaller caller_{bus_,
                        {{"tox", "inproc://tox"},
                         {"clinical", "inproc://clinical"},
                         {"translational", "inproc://translational"},
                         {"report", "inproc://report"}}};
  Engine engine_{store_, clock_, metrics_, caller_, functions_, testing::TestWorkflows(functions_)};
  OrchestratorService service_{OrchestratorOptions{"inproc://orchestrator", "test"},
                               bus_,
                               store_,
                               metrics_,
                               clock_,
                               engine_};
  core::ChannelId channel_ = 0;
  std::vector<std::string> reports_asked_;
};

// A run over the bus: RunWorkflow answers at once (running), the steps go to
// the services, and GetWorkflowRun then shows the finished run with outputs
// and the report the report service wrote.
TEST_F(OrchestratorServiceTest, RunsWorkflowOverTheBusToTheEnd) {
  auto started = Ask(codec::RunWorkflow{"test-flow", testing::TestInput(), "run-bus-1"});
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(std::holds_alternative<codec::WorkflowRun>(started->body));
  const auto& run = std::get<codec::WorkflowRun>(started->body);
  EXPECT_EQ(run.run_id, "run-bus-1");
  EXPECT_EQ(run.state, "running");
  ASSERT_EQ(run.steps.size(), 5u);
  EXPECT_EQ(run.steps[0].state, "pending");

  RunUntil([&] { return engine_.active_runs() == 0; });
  const codec::WorkflowRun done = GetRun("run-bus-1", true);
  EXPECT_EQ(done.state, "succeeded");
  EXPECT_EQ(done.summary, "verdict: proceed (5 steps)");
  EXPECT_EQ(done.report_id, "rep-run-bus-1");
  EXPECT_EQ(reports_asked_, std::vector<std::string>{"candidate:run-bus-1"});
  ASSERT_EQ(done.steps.size(), 5u);
  EXPECT_DOUBLE_EQ(json::parse(done.steps[2].output_json)["mrsd_mg"].get<double>(), 12.5);
  EXPECT_EQ(json::parse(done.steps[0].output_json)["model"]["study_id"], "tox21-demo");
  EXPECT_EQ(json::parse(done.output_json)["verdict"], "proceed");
  EXPECT_EQ(
      metrics_.Read("fedrx_orchestrator_requests_total", {{"type", "RunWorkflow"}, {"code", "ok"}}),
      1);

  // Without include_outputs: states only.
  const codec::WorkflowRun light = GetRun("run-bus-1", false);
  EXPECT_EQ(light.output_json, "");
  EXPECT_EQ(light.steps[0].output_json, "");
}

// A service's refusal fails that step with its code and where, and the run is
// partial; a step whose service is not configured fails as unavailable,
// naming the config key.
TEST_F(OrchestratorServiceTest, ServiceErrorsBecomeStepFailures) {
  auto started = Ask(codec::RunWorkflow{
      "test-flow", R"({"structure": "CCO", "noaels": [{"species": "yeti", "noael_mg_per_kg": 5}]})",
      ""});
  ASSERT_TRUE(started.ok()) << started.status();
  const std::string id = std::get<codec::WorkflowRun>(started->body).run_id;
  RunUntil([&] { return engine_.active_runs() == 0; });
  const codec::WorkflowRun done = GetRun(id, false);
  EXPECT_EQ(done.state, "partial");
  EXPECT_EQ(done.steps[2].state, "failed");
  EXPECT_EQ(done.steps[2].error_code, "invalid_argument");
  EXPECT_EQ(done.steps[2].error_where, "TranslateDose.noaels[0].species");
  EXPECT_EQ(done.steps[3].state, "skipped");
  EXPECT_EQ(done.steps[3].error, "needs dose, which failed");

  // The caller alone: a service with no endpoint is unavailable at once.
  BusStepCaller bare(bus_, {});
  std::optional<core::Status> got;
  bare.Call("reverse", codec::ReverseTranslate{}, kWait,
            [&](core::Result<codec::Body>&& r) { got = r.status(); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->code(), core::StatusCode::kUnavailable);
  EXPECT_EQ(got->where(), "orchestrator.services.reverse.endpoint");
  EXPECT_NE(got->message().find("reverse"), std::string::npos);
}

// Health probes: a configured service that answers nothing is taken as down
// after the probes it missed in a row, and a step for it then fails at once as
// unavailable (naming the probes) instead of waiting out its timeout; a
// service that answers its probes is never down.
TEST_F(OrchestratorServiceTest, ServiceMissingItsHealthProbesFailsStepsAtOnce) {
  // The fixture's tox service answers every request, the probes included.
  BusStepCaller probing(
      bus_, {{"trial", "inproc://nobody"}, {"tox", "inproc://tox"}}, &clock_,
      ProbeOptions{std::chrono::milliseconds(100), std::chrono::milliseconds(200), 2});
  ASSERT_TRUE(probing.Connect().ok());
  for (int i = 0; i < 20 && !probing.Down("trial"); ++i) {
    probing.Maintain();
    network_.Pump();
    clock_.Advance(std::chrono::milliseconds(150));
    network_.Pump();
  }
  EXPECT_TRUE(probing.Down("trial"));
  EXPECT_FALSE(probing.Down("tox"));

  std::optional<core::Status> got;
  probing.Call("trial", codec::RunVirtualTrial{}, std::chrono::seconds(120),
               [&](core::Result<codec::Body>&& r) { got = r.status(); });
  ASSERT_TRUE(got.has_value()) << "a step for a down service must not wait for its timeout";
  EXPECT_EQ(got->code(), core::StatusCode::kUnavailable);
  EXPECT_EQ(got->where(), "orchestrator.services.trial.endpoint");
  EXPECT_NE(got->message().find("inproc://nobody"), std::string::npos);
  EXPECT_NE(got->message().find("health probes"), std::string::npos);
}

// Requests the service refuses: unknown workflow and bad input (InvalidArgument
// with where), an unknown run (NotFound naming it), a body it does not serve.
TEST_F(OrchestratorServiceTest, RefusesBadRequestsWithWhere) {
  auto unknown = Ask(codec::RunWorkflow{"nope", testing::TestInput(), ""});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().where(), "RunWorkflow.workflow");

  auto bad_smiles =
      Ask(codec::RunWorkflow{"test-flow", R"({"structure": "not a smiles", "noaels": [{}]})", ""});
  ASSERT_FALSE(bad_smiles.ok());
  EXPECT_EQ(bad_smiles.status().where(), "input.structure");

  auto missing = Ask(codec::GetWorkflowRun{"run-missing", false});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().where(), "GetWorkflowRun.run_id");
  EXPECT_NE(missing.status().message().find("run-missing"), std::string::npos);

  auto bad_list = Ask(codec::ListWorkflowRuns{"nope", 5});
  ASSERT_FALSE(bad_list.ok());
  EXPECT_EQ(bad_list.status().where(), "ListWorkflowRuns.workflow");

  auto other = Ask(codec::TranslateDose{});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), core::StatusCode::kUnimplemented);
  EXPECT_EQ(metrics_.Read("fedrx_orchestrator_requests_total",
                          {{"type", "RunWorkflow"}, {"code", "invalid_argument"}}),
            2);
}

// ListWorkflows describes each workflow (required inputs first);
// ListWorkflowRuns answers newest first within the limit; HealthCheck is ready
// while the store answers.
TEST_F(OrchestratorServiceTest, ListsWorkflowsRunsAndHealth) {
  auto list = Ask(codec::ListWorkflows{});
  ASSERT_TRUE(list.ok()) << list.status();
  const auto& wfs = std::get<codec::WorkflowList>(list->body).workflows;
  ASSERT_EQ(wfs.size(), 3u);
  EXPECT_EQ(wfs[0].name, "test-flow");
  EXPECT_EQ(wfs[0].version, "3");
  EXPECT_EQ(wfs[0].steps,
            (std::vector<std::string>{"tox", "clinical", "dose", "levels", "flagged"}));
  ASSERT_EQ(wfs[0].inputs.size(), 3u);
  EXPECT_EQ(wfs[0].inputs[2], "area");  // the optional one last

  for (const char* id : {"run-1", "run-2", "run-3"}) {
    ASSERT_TRUE(Ask(codec::RunWorkflow{"small", R"({"noaels": [{"species": "rat"}]})", id}).ok());
    clock_.Advance(std::chrono::seconds(1));
  }
  auto runs = Ask(codec::ListWorkflowRuns{"small", 2});
  ASSERT_TRUE(runs.ok()) << runs.status();
  const auto& got = std::get<codec::WorkflowRunList>(runs->body).runs;
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].run_id, "run-3");
  EXPECT_EQ(got[1].run_id, "run-2");

  auto health = Ask(codec::HealthCheck{});
  ASSERT_TRUE(health.ok());
  EXPECT_TRUE(std::get<codec::HealthStatus>(health->body).ready);
  EXPECT_EQ(std::get<codec::HealthStatus>(health->body).service, "orchestrator");
  store_.SetDown(true);
  auto sick = Ask(codec::HealthCheck{});
  ASSERT_TRUE(sick.ok());
  EXPECT_FALSE(std::get<codec::HealthStatus>(sick->body).ready);
  store_.SetDown(false);
}

// Draining refuses new runs (Unavailable) but still answers reads.
TEST_F(OrchestratorServiceTest, DrainingRefusesNewRuns) {
  service_.BeginDrain();
  auto refused = Ask(codec::RunWorkflow{"small", R"({"noaels": [{"species": "rat"}]})", ""});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), core::StatusCode::kUnavailable);
  EXPECT_TRUE(Ask(codec::ListWorkflows{}).ok());
  EXPECT_TRUE(service_.Drained());
}

// Bus configuration: a service's public key needs the orchestrator's own key
// pair, and a client key pair needs the server side configured too.
TEST(OrchestratorBusConfigTest, CurveKeysNeedOwnKeyPair) {
  auto config = core::Config::Parse(
      "orchestrator.services.tox.endpoint = tcp://127.0.0.1:5582\n"
      "orchestrator.services.tox.public_key_file = /nonexistent/tox.pub\n",
      "test.conf", {});
  ASSERT_TRUE(config.ok()) << config.status();
  core::BusOptions bus;
  core::Status s = ConfigureOrchestratorBus(*config, bus);
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.where(), "orchestrator.key_file");

  auto endpoints = ServiceEndpointsFrom(*config);
  ASSERT_TRUE(endpoints.ok());
  EXPECT_EQ(endpoints->size(), 1u);
  EXPECT_EQ(endpoints->at("tox"), "tcp://127.0.0.1:5582");
}

// With key files: the orchestrator's own pair goes into the bus (it serves
// and connects with it), each service's public key under its endpoint; a
// client pair without the server side is refused.
TEST(OrchestratorBusConfigTest, LoadsOwnPairAndServerKeysByEndpoint) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("orch-curve-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto own = core::GenerateCurveKeyPair();
  auto tox = core::GenerateCurveKeyPair();
  ASSERT_TRUE(own.ok() && tox.ok());
  ASSERT_TRUE(core::WriteCurveKeyPair((dir / "orch.key").string(), *own).ok());
  ASSERT_TRUE(core::WriteCurvePublicKey((dir / "tox.pub").string(), tox->public_key).ok());
  const std::string common = "orchestrator.key_file = " + (dir / "orch.key").string() +
                             "\norchestrator.services.tox.endpoint = tcp://127.0.0.1:5582\n"
                             "orchestrator.services.tox.public_key_file = " +
                             (dir / "tox.pub").string() + "\n";

  auto client_only = core::Config::Parse(common, "a.conf", {});
  ASSERT_TRUE(client_only.ok());
  core::BusOptions refused;
  EXPECT_EQ(ConfigureOrchestratorBus(*client_only, refused).where(), "orchestrator.curve_key_file");

  auto both = core::Config::Parse(
      common + "orchestrator.curve_key_file = " + (dir / "orch.key").string() + "\n", "b.conf", {});
  ASSERT_TRUE(both.ok());
  core::BusOptions bus;
  ASSERT_TRUE(ConfigureOrchestratorBus(*both, bus).ok());
  EXPECT_EQ(bus.curve_public_key, own->public_key);
  EXPECT_EQ(bus.curve_secret_key, own->secret_key);
  EXPECT_EQ(bus.curve_server_keys.at("tcp://127.0.0.1:5582"), tox->public_key);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fedrx::orchestrator
