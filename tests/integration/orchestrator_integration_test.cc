// The orchestrator and the report service with the real binaries: a real
// Redis, the domain services (tox and clinical serving small models trained
// here), fedrx-orchestrator calling them over CURVE as a client they admit,
// fedrx-report, the gateway, and a scientist running `fedrx assess` (the real
// CLI). Checks: (a) a first-in-human run ends with a verdict, the HTML and
// JSON report files are written and every step's state and output is in
// Redis; (b) a domain service that is down makes the run partial, its steps'
// error says why, and the independent steps succeed; (c) an orchestrator
// SIGKILLed while a slow step is in flight resumes the run after restart
// without repeating the finished steps (the services' request counters);
// (d) bad input (an unparseable structure, no NOAEL, an unknown species, an
// unknown workflow) is refused or fails the one step, naming the code and
// the place; (e) a workflow directory with a cycle or an unknown service stops
// fedrx-orchestrator at start with the file:line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "services/coordinator/study_store.h"
#include "services/core/keys.h"
#include "services/core/redis_state_store.h"
#include "services/ml/csv_dataset.h"
#include "services/ml/model.h"
#include "services/ml/study_spec.h"
#include "services/ml/trainer.h"
#include "tests/integration/served_model.h"
#include "tests/support/child_process.h"
#include "tests/support/gateway_stack.h"

namespace fedrx {
namespace {

using integration::CalibrationOf;
using integration::Fingerprint;
using ::testing::AnyOf;
using ::testing::HasSubstr;

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kToxStudy[] = "tox-orch";
constexpr char kClinicalStudy[] = "clintox-orch";

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Polls `done` every 100 ms until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return done();
}

const json* StepOf(const json& run, const std::string& id) {
  if (!run.contains("steps")) return nullptr;
  for (const json& s : run["steps"]) {
    if (s.value("id", "") == id) return &s;
  }
  return nullptr;
}

std::string StateOf(const json& run, const std::string& id) {
  const json* s = StepOf(run, id);
  return s == nullptr ? "" : s->value("state", "");
}

codec::StudySpec ModelSpec(const std::string& id, const std::vector<std::string>& tasks) {
  codec::StudySpec s;
  s.study_id = id;
  s.name = id;
  s.tasks = tasks;
  s.model.input_dim = 1024;
  s.model.hidden = {32, 16};
  s.model.num_tasks = static_cast<std::uint32_t>(tasks.size());
  s.model.dropout = 0.1f;
  s.rounds = 100;
  s.fingerprint_radius = 2;
  return s;
}

class OrchestratorTest : public testing::GatewayStackTest {
 protected:
  OrchestratorTest()
      : GatewayStackTest({FEDRX_COORDINATOR_BIN, FEDRX_GATEWAY_BIN, FEDRX_CLI_BIN}) {}

  void SetUp() override {
#if !defined(FEDRX_ORCHESTRATOR_BIN) || !defined(FEDRX_REPORT_BIN)
    GTEST_SKIP() << "fedrx-orchestrator and fedrx-report are not built";
#endif
  }

  // Trains and publishes the tox and clinical models, then starts every
  // domain service except those in `down` (their endpoints and keys are
  // configured in the orchestrator, but nothing listens), the report service,
  // the orchestrator with `workflows_dir`, and the gateway.
  void StartStack(const std::set<std::string>& down = {},
                  const std::string& workflows_dir = std::string(FEDRX_SOURCE_DIR) +
                                                     "/deploy/workflows") {
#if defined(FEDRX_ORCHESTRATOR_BIN) && defined(FEDRX_REPORT_BIN)
    ASSERT_NO_FATAL_FAILURE(StartRedis());
    store_ = ConnectStore();
    ASSERT_NE(store_, nullptr);
    ASSERT_NO_FATAL_FAILURE(PublishModels());
    // The orchestrator's key pair: a client every domain service and the
    // report service admit, and its own server key pair for the gateway.
    orchestrator_.keys = AddClient("orchestrator-1", "orchestrator");
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    const std::map<std::string, std::pair<std::string, std::map<std::string, std::string>>> specs =
        {
            {"translational",
             { FEDRX_TRANSLATIONAL_BIN,
               {} }},
            {"trial",
             { FEDRX_TRIAL_BIN,
               {} }},
            {"tox",
             { FEDRX_TOX_BIN,
               { {"FEDRX_TOX_REDIS", RedisAddress()},
                 {"FEDRX_TOX_PANELS", std::string("tox21=") + kToxStudy + ",toxcast=" + kToxStudy},
                 { "FEDRX_TOX_REFRESH_INTERVAL",
                   "100ms" } } }},
            {"clinical",
             { FEDRX_CLINICAL_BIN,
               { {"FEDRX_CLINICAL_REDIS", RedisAddress()},
                 {"FEDRX_CLINICAL_STUDY", kClinicalStudy},
                 { "FEDRX_CLINICAL_REFRESH_INTERVAL",
                   "100ms" } } }},
            {"reverse",
             { FEDRX_REVERSE_BIN,
               { {"FEDRX_REVERSE_REDIS", RedisAddress()},
                 {"FEDRX_REVERSE_COUNTS_STUDY", "reverse-counts"},
                 { "FEDRX_REVERSE_COUNTS_REFRESH",
                   "200ms" } } }},
            {"report",
             { FEDRX_REPORT_BIN,
               {
                 { "FEDRX_REPORT_REDIS",
                   RedisAddress() }
               } }},
        };
    for (const auto& [name, spec] : specs) {
      testing::Backend& b = backends_[name];
      if (down.count(name) > 0) {
        // Configured but not running: an endpoint nothing listens on.
        b.name = name;
        b.endpoint = "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort());
        b.keys = testing::NewCurveKeyPair();
        b.public_file = Path(name + ".pub");
        ASSERT_TRUE(core::WriteCurvePublicKey(b.public_file, b.keys.public_key).ok());
        continue;
      }
      ASSERT_NO_FATAL_FAILURE(StartBackend(name, spec.first, spec.second, b));
    }
    orchestrator_env_ = {{"FEDRX_ORCHESTRATOR_REDIS", RedisAddress()},
                         {"FEDRX_ORCHESTRATOR_WORKFLOWS_DIR", workflows_dir},
                         {"FEDRX_ORCHESTRATOR_KEY_FILE", Path("orchestrator.key")},
                         { "FEDRX_ORCHESTRATOR_RETRY_BACKOFF",
                           "50ms" }};
    for (const auto& [name, b] : backends_) {
      std::string upper = name;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      orchestrator_env_["FEDRX_ORCHESTRATOR_SERVICES_" + upper + "_ENDPOINT"] = b.endpoint;
      orchestrator_env_["FEDRX_ORCHESTRATOR_SERVICES_" + upper + "_PUBLIC_KEY_FILE"] =
          b.public_file;
    }
    ASSERT_NO_FATAL_FAILURE(
        StartBackend("orchestrator", FEDRX_ORCHESTRATOR_BIN, orchestrator_env_, orchestrator_));
    std::vector<const testing::Backend*> behind = {&orchestrator_};
    for (const auto& [name, b] : backends_) {
      if (down.count(name) == 0) behind.push_back(&b);
    }
    ASSERT_NO_FATAL_FAILURE(StartGateway(behind));
    // The model services answer once their first refresh loaded the models.
    if (down.count("tox") == 0)
      ASSERT_NO_FATAL_FAILURE(WaitAnswered({"tox", "predict", "--smiles", "CCO"}));
    if (down.count("clinical") == 0) {
      ASSERT_NO_FATAL_FAILURE(WaitAnswered({"clinical", "assess", "--smiles", "CCO"}));
    }
#else
    (void)down;
    (void)workflows_dir;
#endif
  }

  void RestartOrchestrator() {
#if defined(FEDRX_ORCHESTRATOR_BIN)
    ASSERT_NO_FATAL_FAILURE(
        StartBackend("orchestrator", FEDRX_ORCHESTRATOR_BIN, orchestrator_env_, orchestrator_));
#endif
  }

  void WaitAnswered(const std::vector<std::string>& args) {
    int code = -1;
    std::string out;
    for (int attempt = 0; attempt < 50 && code != 0; ++attempt) {
      std::tie(code, out) = Ask(args);
      if (code != 0) std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(code, 0) << out;
  }

  // Small tox (Tox21 rows) and clinical (ClinTox) models, version 0, with
  // their calibration, stored as the coordinator stores them.
  void PublishModels() {
    coordinator::StudyStore studies(*store_);
    {
      std::ifstream full(FEDRX_TOX21_CSV);
      std::ofstream part(Path("tox21-part.csv"));
      std::string line;
      for (int n = 0; n <= 900 && std::getline(full, line); ++n) part << line << "\n";
    }
    auto tox = ml::LoadCsvDataset(Path("tox21-part.csv"), ml::CsvOptions{}, Fingerprint(), nullptr);
    ASSERT_TRUE(tox.ok()) << tox.status();
    ASSERT_NO_FATAL_FAILURE(TrainAndStore(studies, ModelSpec(kToxStudy, tox->tasks), *tox));
    auto clintox = ml::LoadCsvDataset(FEDRX_CLINTOX_CSV, ml::CsvOptions{}, Fingerprint(), nullptr);
    ASSERT_TRUE(clintox.ok()) << clintox.status();
    const ml::Dataset ct = clintox->WithTasks({"CT_TOX", "FDA_APPROVED"});
    ASSERT_NO_FATAL_FAILURE(
        TrainAndStore(studies, ModelSpec(kClinicalStudy, {"CT_TOX", "FDA_APPROVED"}), ct));
  }

  void TrainAndStore(coordinator::StudyStore& studies, const codec::StudySpec& spec,
                     const ml::Dataset& data) {
    std::vector<std::size_t> train_rows, valid_rows;
    for (std::size_t i = 0; i < data.size(); ++i)
      (i % 3 == 0 ? valid_rows : train_rows).push_back(i);
    const ml::Dataset train = data.Subset(train_rows);
    const ml::Dataset valid = data.Subset(valid_rows);
    const ml::NetSpec net = ml::NetSpecFromStudy(spec);
    std::vector<float> w = ml::InitParameters(net, 3);
    ml::TrainOptions o;
    o.epochs = 2;
    o.seed = 1;
    ml::Trainer trainer(o);
    ASSERT_TRUE(trainer.Train(net, train, w).ok());
    ASSERT_TRUE(studies.Create(spec, w, 0).ok());
    ASSERT_TRUE(
        studies.SaveCalibration(spec.study_id, CalibrationOf(0, net, w, train, valid)).ok());
  }

  // `fedrx assess ARGS` as the scientist, started and left running.
  std::unique_ptr<testing::ChildProcess> StartAssess(std::vector<std::string> args) {
    args.insert(args.begin(), {"--gateway", gateway_endpoint_, "--key-file", scientist_key_,
                               "--server-key-file", gateway_public_file_, "assess"});
    auto child = testing::ChildProcess::Spawn(FEDRX_CLI_BIN, args);
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::move(*child) : nullptr;
  }

  // `fedrx assess ARGS` to its end: exit code and output.
  std::pair<int, std::string> Assess(std::vector<std::string> args) {
    auto child = StartAssess(std::move(args));
    if (child == nullptr) return {-1, ""};
    auto code = child->Wait(90s);
    EXPECT_TRUE(code.ok()) << "fedrx assess did not exit: " << child->Log();
    return {code.ok() ? *code : -1, child->Log()};
  }

  // The run record the orchestrator keeps in Redis (null when absent).
  json RunRecord(const std::string& run_id) {
    auto key = core::keys::WorkflowRun(run_id);
    EXPECT_TRUE(key.ok()) << key.status();
    if (!key.ok()) return nullptr;
    auto value = store_->Get(*key);
    if (!value.ok() || !value->has_value()) return nullptr;
    json j = json::parse(**value, nullptr, false);
    return j.is_discarded() ? json(nullptr) : j;
  }

  std::optional<std::string> StepOutput(const std::string& run_id, const std::string& step) {
    auto key = core::keys::WorkflowStepOutput(run_id, step);
    EXPECT_TRUE(key.ok()) << key.status();
    if (!key.ok()) return std::nullopt;
    auto value = store_->Get(*key);
    return value.ok() ? *value : std::nullopt;
  }

  // The candidate file `name` holding `text`.
  std::string Candidate(const std::string& name, const std::string& text) {
    return Write(name, text);
  }

  std::unique_ptr<core::RedisStateStore> store_;
  std::map<std::string, testing::Backend> backends_;
  testing::Backend orchestrator_;
  std::map<std::string, std::string> orchestrator_env_;
};

constexpr char kAspirin[] =
    "# Aspirin as a first-in-human candidate, with rat and dog NOAELs.\n"
    "structure: CC(=O)Oc1ccccc1C(=O)O\n"
    "therapeutic_area: oncology\n"
    "noaels:\n"
    "  - {species: rat, noael_mg_per_kg: 50}\n"
    "  - species: dog\n"
    "    noael_mg_per_kg: 10\n";

// (a) The whole first-in-human workflow through the real CLI: a verdict, the
// report files, and every step's state (and each succeeded step's output) in
// Redis.
TEST_F(OrchestratorTest, FirstInHumanRunEndsWithAVerdictAndWritesTheReport) {
  ASSERT_NO_FATAL_FAILURE(StartStack());
  const std::string out_dir = Path("reports");
  auto [code, out] = Assess({Candidate("aspirin.yaml", kAspirin), "--out", out_dir, "--run-id",
                             "run-aspirin", "--poll-ms", "100", "--timeout-s", "80"});
  ASSERT_EQ(code, 0) << out;
  const json run = RunRecord("run-aspirin");
  ASSERT_TRUE(run.is_object()) << out;
  EXPECT_EQ(run["workflow"], "first-in-human");
  EXPECT_EQ(run["state"], "succeeded") << run.dump(1).substr(0, 4000);
  ASSERT_TRUE(run.contains("output")) << out;
  EXPECT_THAT(run["output"].value("verdict", ""),
              AnyOf("proceed", "proceed_with_conditions", "do_not_proceed", "incomplete"));
  // The verdict line the CLI printed is the run's summary.
  const std::string summary = run.value("summary", "");
  ASSERT_FALSE(summary.empty());
  EXPECT_THAT(out, HasSubstr(summary + "\nrun run-aspirin: succeeded"));
  for (const char* step : {"tox", "clinical", "dose"}) {
    EXPECT_EQ(StateOf(run, step), "succeeded") << step;
    EXPECT_THAT(out, HasSubstr(std::string("] ") + step)) << "no progress line for " << step;
  }
  // Every step ended, and each one that succeeded has its output stored.
  for (const json& s : run["steps"]) {
    const std::string id = s.value("id", "");
    EXPECT_THAT(s.value("state", ""), AnyOf("succeeded", "skipped")) << id << ": " << s.dump();
    if (s.value("state", "") == "succeeded") {
      auto output = StepOutput("run-aspirin", id);
      ASSERT_TRUE(output.has_value()) << id;
      EXPECT_FALSE(json::parse(*output, nullptr, false).is_discarded()) << id;
      EXPECT_GE(s.value("attempts", 0), 1) << id;
    }
  }
  // The dose step's output is the translational service's answer.
  auto dose = StepOutput("run-aspirin", "dose");
  ASSERT_TRUE(dose.has_value());
  EXPECT_GT(json::parse(*dose).value("mrsd_mg", 0.0), 0.0);
  // The report: one self-contained HTML page with charts, and the JSON.
  const std::string html = ReadBytes(out_dir + "/run-aspirin.html");
  ASSERT_FALSE(html.empty()) << out;
  EXPECT_THAT(html, HasSubstr("<svg"));
  EXPECT_THAT(html, ::testing::Not(HasSubstr("src=\"http")));
  const json report = json::parse(ReadBytes(out_dir + "/run-aspirin.json"), nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  EXPECT_THAT(report.dump(), HasSubstr("run-aspirin"));
  EXPECT_THAT(out, HasSubstr(out_dir + "/run-aspirin.html"));
  EXPECT_THAT(out, HasSubstr(out_dir + "/run-aspirin.json"));
  EXPECT_FALSE(run.value("report_id", "").empty());
  // The stored report is listed and fetched with `fedrx report`.
  auto [lcode, listed] = Ask({"report", "list", "--kind", "candidate"});
  EXPECT_EQ(lcode, 0) << listed;
  EXPECT_THAT(listed, HasSubstr(run.value("report_id", "")));
  const std::string fetched = Path("fetched.html");
  auto [gcode, got] = Ask({"report", "get", run.value("report_id", ""), "--out", fetched});
  EXPECT_EQ(gcode, 0) << got;
  EXPECT_EQ(ReadBytes(fetched), html);
  // And the run with `fedrx workflow show`.
  auto [scode, shown] = Ask({"workflow", "show", "run-aspirin"});
  EXPECT_EQ(scode, 0) << shown;
  EXPECT_THAT(shown, HasSubstr("run run-aspirin: succeeded"));
}

// (b) The trial service is down (configured, nothing listening): its steps
// fail with the reason, the run is partial with a verdict, and the steps that
// do not need it succeed. The built-in workflow with short step timeouts and
// no retries, so that waiting out the down service takes seconds.
TEST_F(OrchestratorTest, ADomainServiceDownGivesAPartialRunWithTheReason) {
  const std::string workflows = Path("workflows");
  fs::create_directories(workflows);
  {
    std::ifstream in(std::string(FEDRX_SOURCE_DIR) + "/deploy/workflows/first-in-human.yaml");
    std::ofstream out(workflows + "/first-in-human.yaml");
    std::string line;
    std::size_t shortened = 0;
    while (std::getline(in, line)) {
      const std::size_t indent = line.find_first_not_of(' ');
      if (indent != std::string::npos && line.compare(indent, 8, "timeout:") == 0) {
        line = line.substr(0, indent) + "timeout: 3s";
        ++shortened;
      } else if (indent != std::string::npos && line.compare(indent, 8, "retries:") == 0) {
        line = line.substr(0, indent) + "retries: 0";
      }
      out << line << "\n";
    }
    ASSERT_GT(shortened, 0u);
  }
  ASSERT_NO_FATAL_FAILURE(StartStack({"trial"}, workflows));
  auto [code, out] = Assess({Candidate("aspirin.yaml", kAspirin), "--out", Path("r"), "--run-id",
                             "run-down", "--poll-ms", "100", "--timeout-s", "85"});
  EXPECT_EQ(code, 0) << out;
  const json run = RunRecord("run-down");
  ASSERT_TRUE(run.is_object()) << out;
  EXPECT_EQ(run["state"], "partial") << run.dump(1).substr(0, 4000);
  bool a_trial_step_failed = false;
  for (const json& s : run["steps"]) {
    const std::string id = s.value("id", "");
    if (s.value("service", "") == "trial") {
      const std::string state = s.value("state", "");
      EXPECT_THAT(state, AnyOf("failed", "skipped")) << id;
      if (state == "failed") {
        a_trial_step_failed = true;
        ASSERT_TRUE(s.contains("error")) << s.dump();
        // Nothing answers: the request times out (a service that is not
        // configured at all fails at once as unavailable).
        EXPECT_THAT(s["error"].value("code", ""), AnyOf("unavailable", "deadline_exceeded"))
            << s.dump();
        EXPECT_FALSE(s["error"].value("message", "").empty()) << s.dump();
        EXPECT_THAT(out, HasSubstr(id)) << "the CLI shows the failed step";
      }
    }
  }
  EXPECT_TRUE(a_trial_step_failed) << run.dump(1).substr(0, 4000);
  for (const char* step : {"tox", "clinical", "dose"}) {
    EXPECT_EQ(StateOf(run, step), "succeeded") << step;
  }
  EXPECT_THAT(out, HasSubstr("run run-down: partial"));
}

// The slow step of the resume test: a CRM escalation simulation with many
// trials takes the trial service seconds; the quick steps around it take
// milliseconds.
constexpr char kResumeWorkflow[] = R"(name: resume-check
version: "1"
description: A quick dose translation and PK profile, and a slow escalation simulation.
inputs:
  noaels: {type: array, required: true, min_items: 1}
  trials: {type: integer, default: 1000}
steps:
  - id: dose
    service: translational
    call: TranslateDose
    with:
      noaels: "${input.noaels}"
  - id: pk
    service: translational
    call: SimulatePk
    with:
      model: {kind: iv_bolus_1cmt, cl_l_per_h: 5, v_l: 50}
      dose_mg: "${steps.dose.mrsd_mg}"
  - id: slow
    service: trial
    call: SimulateEscalation
    needs: [dose]
    timeout: 120s
    retries: 0
    with:
      design: {design: crm, target: 0.3, skeleton: [0.05, 0.1, 0.2, 0.3, 0.45]}
      true_tox: [0.05, 0.1, 0.2, 0.3, 0.45]
      trials: "${input.trials}"
)";

// (c) SIGKILL of the orchestrator while the slow step is in flight: the
// restarted orchestrator resumes the run, the CLI that kept polling sees it
// end, and the steps finished before the kill were not sent again.
TEST_F(OrchestratorTest, AKilledOrchestratorResumesTheRunWithoutRepeatingFinishedSteps) {
  const std::string workflows = Path("workflows");
  fs::create_directories(workflows);
  std::ofstream(workflows + "/resume-check.yaml") << kResumeWorkflow;
  ASSERT_NO_FATAL_FAILURE(StartStack({}, workflows));
  const std::string candidate =
      Candidate("resume.yaml", "noaels: [{species: rat, noael_mg_per_kg: 50}]\ntrials: 60000\n");
  auto cli = StartAssess({candidate, "--workflow", "resume-check", "--out", Path("r"), "--run-id",
                          "run-resume", "--poll-ms", "100", "--timeout-s", "100"});
  ASSERT_NE(cli, nullptr);
  // Wait for the quick steps to finish and the slow one to be in flight.
  ASSERT_TRUE(WaitUntil(
      [&] {
        const json run = RunRecord("run-resume");
        return run.is_object() && StateOf(run, "dose") == "succeeded" &&
               StateOf(run, "pk") == "succeeded" && StateOf(run, "slow") == "running";
      },
      30s))
      << RunRecord("run-resume").dump(1) << "\n"
      << cli->Log();
  ASSERT_TRUE(orchestrator_.process->Signal(SIGKILL).ok());
  ASSERT_TRUE(orchestrator_.process->Wait(10s).ok());
  // Still "running" in Redis, and in the active set the restart reads.
  EXPECT_EQ(RunRecord("run-resume")["state"], "running");
  auto active = store_->SetMembers(core::keys::WorkflowActiveRuns());
  ASSERT_TRUE(active.ok());
  EXPECT_THAT(*active, ::testing::Contains("run-resume"));

  ASSERT_NO_FATAL_FAILURE(RestartOrchestrator());
  auto code = cli->Wait(100s);
  ASSERT_TRUE(code.ok()) << cli->Log();
  EXPECT_EQ(*code, 0) << cli->Log();
  const json run = RunRecord("run-resume");
  EXPECT_EQ(run["state"], "succeeded") << run.dump(1);
  EXPECT_EQ(StateOf(run, "slow"), "succeeded");
  EXPECT_THAT(cli->Log(), HasSubstr("run run-resume: succeeded (3 of 3 steps succeeded"));
  // The quick steps ran once: one TranslateDose and one SimulatePk reached
  // the translational service, and each step took one attempt.
  EXPECT_EQ(Metric(backends_["translational"].http, "fedrx_translational_requests_total",
                   R"(code="ok",type="TranslateDose")"),
            1);
  EXPECT_EQ(Metric(backends_["translational"].http, "fedrx_translational_requests_total",
                   R"(code="ok",type="SimulatePk")"),
            1);
  EXPECT_EQ(StepOf(run, "dose")->value("attempts", 0), 1);
  EXPECT_EQ(StepOf(run, "pk")->value("attempts", 0), 1);
  // The step in flight at the kill was asked again by the new process.
  EXPECT_EQ(StepOf(run, "slow")->value("attempts", 0), 2);
  // The slow step was sent again after the restart (the first answer went to
  // the killed process).
  EXPECT_GE(Metric(backends_["trial"].http, "fedrx_trial_requests_total",
                   R"(code="ok",type="SimulateEscalation")"),
            1);
  EXPECT_EQ(Metric(orchestrator_.http, "fedrx_orchestrator_runs_resumed_total", ""), 1);
  auto still_active = store_->SetMembers(core::keys::WorkflowActiveRuns());
  ASSERT_TRUE(still_active.ok());
  EXPECT_THAT(*still_active, ::testing::Not(::testing::Contains("run-resume")));
}

// (d) Bad input: refused at the start with the code and the input's name, or,
// for a species the translational service does not know, the dose step fails
// naming it while the rest of the run stands.
TEST_F(OrchestratorTest, BadInputIsRefusedOrFailsTheOneStepNamingWhere) {
  ASSERT_NO_FATAL_FAILURE(StartStack());
  auto [code, out] = Assess({Candidate("bad-smiles.yaml",
                                       "structure: C1CC(\nnoaels: [{species: rat, "
                                       "noael_mg_per_kg: 50}]\n"),
                             "--poll-ms", "100"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("fedrx: invalid_argument: "));
  EXPECT_THAT(out, HasSubstr("(at input.structure)"));

  std::tie(code, out) =
      Assess({Candidate("no-noael.yaml", "structure: CCO\ntherapeutic_area: oncology\n"),
              "--poll-ms", "100"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("fedrx: invalid_argument: missing required input 'noaels' (at "
                             "input.noaels)"));

  std::tie(code, out) =
      Assess({Candidate("empty-noael.yaml", "structure: CCO\nnoaels: []\n"), "--poll-ms", "100"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("fedrx: invalid_argument: "));
  EXPECT_THAT(out, HasSubstr("(at input.noaels)"));

  std::tie(code, out) = Assess(
      {Candidate("ok.yaml", kAspirin), "--workflow", "no-such-workflow", "--poll-ms", "100"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("fedrx: invalid_argument: no workflow named 'no-such-workflow'"));
  EXPECT_THAT(out, HasSubstr("(at RunWorkflow.workflow)"));

  // Nothing was started for those.
  auto runs = store_->SetMembers(core::keys::WorkflowRunIndex());
  ASSERT_TRUE(runs.ok());
  EXPECT_TRUE(runs->empty()) << ::testing::PrintToString(*runs);

  std::tie(code, out) = Assess({Candidate("unicorn.yaml",
                                          "structure: CC(=O)Oc1ccccc1C(=O)O\n"
                                          "noaels: [{species: unicorn, noael_mg_per_kg: 5}]\n"),
                                "--run-id", "run-unicorn", "--out", Path("r"), "--poll-ms", "100",
                                "--timeout-s", "80"});
  EXPECT_EQ(code, 0) << out;  // partial: a verdict without the dose
  const json run = RunRecord("run-unicorn");
  ASSERT_TRUE(run.is_object()) << out;
  EXPECT_EQ(run["state"], "partial");
  const json* dose = StepOf(run, "dose");
  ASSERT_NE(dose, nullptr);
  EXPECT_EQ(dose->value("state", ""), "failed");
  ASSERT_TRUE(dose->contains("error")) << dose->dump();
  EXPECT_EQ((*dose)["error"].value("code", ""), "invalid_argument") << dose->dump();
  EXPECT_THAT((*dose)["error"].value("message", ""), HasSubstr("unicorn")) << dose->dump();
  EXPECT_EQ((*dose)["error"].value("where", ""), "TranslateDose.noaels[0].species") << dose->dump();
  EXPECT_EQ(StateOf(run, "tox"), "succeeded");
  EXPECT_EQ(StateOf(run, "clinical"), "succeeded");
  EXPECT_THAT(out, HasSubstr("unicorn"));
  EXPECT_THAT(out, HasSubstr("run run-unicorn: partial"));
}

// (e) A workflow file with a cycle, or a step naming an unknown service, stops
// fedrx-orchestrator at start: non-zero exit, the file and line printed.
TEST(OrchestratorStartTest, AWorkflowWithACycleOrAnUnknownServiceStopsStartupWithTheLine) {
#if !defined(FEDRX_ORCHESTRATOR_BIN)
  GTEST_SKIP() << "fedrx-orchestrator is not built";
#else
  struct Case {
    std::string file, text, expected_where, expected_words;
  };
  const std::vector<Case> cases = {
      {"cycle.yaml",
       "name: cycle\n"             // 1
       "version: \"1\"\n"          // 2
       "steps:\n"                  // 3
       "  - id: first\n"           // 4
       "    service: local\n"      // 5
       "    call: dose_levels\n"   // 6
       "    needs: [second]\n"     // 7
       "    with: {mrsd_mg: 1}\n"  // 8
       "  - id: second\n"          // 9
       "    service: local\n"      // 10
       "    call: dose_levels\n"   // 11
       "    with:\n"               // 12
       "      mrsd_mg: \"${steps.first.dose_mg[0]}\"\n",
       "cycle.yaml:", "cycle"},
      {"unknown-service.yaml",
       "name: unknown-service\n"
       "version: \"1\"\n"
       "steps:\n"
       "  - id: ask\n"
       "    service: pharmacy\n"  // 5
       "    call: TranslateDose\n",
       "unknown-service.yaml:", "pharmacy"},
  };
  for (const Case& c : cases) {
    testing::TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    std::ofstream(dir.path() + "/" + c.file) << c.text;
    auto child = testing::ChildProcess::Spawn(
        FEDRX_ORCHESTRATOR_BIN, {},
        {{"FEDRX_ORCHESTRATOR_WORKFLOWS_DIR", dir.path()},
         {"FEDRX_ORCHESTRATOR_ENDPOINT",
          "tcp://127.0.0.1:" + std::to_string(testing::FreeTcpPort())},
         {"FEDRX_HTTP_LISTEN", "127.0.0.1:" + std::to_string(testing::FreeTcpPort())},
         {"FEDRX_REDIS_STARTUP_WAIT", "1s"}});
    ASSERT_TRUE(child.ok()) << child.status();
    auto code = (*child)->Wait(20s);
    ASSERT_TRUE(code.ok()) << c.file << ": still running: " << (*child)->Log();
    EXPECT_NE(*code, 0) << (*child)->Log();
    const std::string log = (*child)->Log();
    EXPECT_THAT(log, HasSubstr(c.expected_where)) << log;
    EXPECT_THAT(log, HasSubstr(c.expected_words)) << log;
    if (c.file == "cycle.yaml") {
      // The line of the first step in the cycle, and the steps around it.
      EXPECT_THAT(log, HasSubstr("(at cycle.yaml:4)")) << log;
      EXPECT_THAT(log, HasSubstr("first -> second -> first")) << log;
    } else {
      // The step's, its service's or its call's line.
      EXPECT_THAT(log,
                  AnyOf(HasSubstr("unknown-service.yaml:4"), HasSubstr("unknown-service.yaml:5"),
                        HasSubstr("unknown-service.yaml:6")))
          << log;
    }
  }
#endif
}

}  // namespace
}  // namespace fedrx
