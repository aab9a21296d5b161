// Test helpers for the orchestrator engine and service: a StepCaller the test
// answers by hand, and a small workflow over real domain request types with
// local functions registered by the test.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages/codec/message.h"
#include "services/domain/domain_json.h"
#include "services/orchestrator/local_functions.h"
#include "services/orchestrator/step_caller.h"
#include "services/orchestrator/workflow.h"

namespace fedrx::orchestrator::testing {

// Records every call; the test answers them in any order it likes.
class ManualStepCaller final : public StepCaller {
 public:
  struct Call_ {
    std::string service;
    codec::Body body;
    std::chrono::milliseconds timeout{0};
    Callback done;
  };

  void Call(std::string_view service, codec::Body body, std::chrono::milliseconds timeout,
            Callback done) override {
    ++calls_by_type[codec::BodyName(body)];
    ++total_calls;
    pending.push_back(Call_{std::string(service), std::move(body), timeout, std::move(done)});
  }

  // Unanswered calls of body type `type` ("PredictToxicity", "CreateReport").
  std::size_t PendingOf(std::string_view type) const {
    std::size_t n = 0;
    for (const Call_& c : pending) n += codec::BodyName(c.body) == type ? 1 : 0;
    return n;
  }

  // Answers the oldest pending call of body type `type`; false when none.
  bool Answer(std::string_view type, core::Result<codec::Body> answer) {
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      if (codec::BodyName(it->body) != type) continue;
      Call_ c = std::move(*it);
      pending.erase(it);
      c.done(std::move(answer));
      return true;
    }
    return false;
  }

  // The body of the oldest pending call of `type` (must exist).
  const codec::Body& BodyOf(std::string_view type) const {
    for (const Call_& c : pending) {
      if (codec::BodyName(c.body) == type) return c.body;
    }
    ADD_FAILURE() << "no pending " << type;
    static const codec::Body kNone;
    return kNone;
  }

  std::deque<Call_> pending;
  std::map<std::string, int> calls_by_type;
  int total_calls = 0;
};

// Domain steps tox || clinical || dose; local `levels` after dose; local
// `flagged` only when the toxicity panel's confidence is above 0.5; the
// output function `verdict`; a candidate report.
inline constexpr char kTestWorkflow[] = R"(name: test-flow
version: "3"
description: a small test workflow
inputs:
  structure: {type: smiles, required: true}
  noaels: {type: array, required: true, min_items: 1}
  area: {type: string, default: "oncology"}
steps:
  - id: tox
    service: tox
    call: PredictToxicity
    with:
      smiles: ["${input.structure}"]
      panel: tox21
    timeout: 5s
    retries: 1
  - id: clinical
    service: clinical
    call: AssessClinical
    with:
      smiles: ["${input.structure}"]
      therapeutic_area: "${input.area}"
    retries: 0
  - id: dose
    service: translational
    call: TranslateDose
    with:
      noaels: "${input.noaels}"
    retries: 0
  - id: levels
    service: local
    call: triple
    with:
      mrsd: "${steps.dose.mrsd_mg}"
  - id: flagged
    service: local
    call: echo
    with:
      panel: "${steps.tox.panel}"
    when: "steps.tox.confidence > 0.5"
output:
  call: verdict
report: candidate
)";

// A workflow without report and without output function, one domain step.
inline constexpr char kSmallWorkflow[] = R"(name: small
version: "1"
inputs:
  noaels: {type: array, required: true}
steps:
  - id: dose
    service: translational
    call: TranslateDose
    with:
      noaels: "${input.noaels}"
)";

// A local step reading a field the dose answer does not have.
inline constexpr char kMissingPathWorkflow[] = R"(name: missing-path
version: "1"
inputs:
  noaels: {type: array, required: true}
steps:
  - id: dose
    service: translational
    call: TranslateDose
    with:
      noaels: "${input.noaels}"
  - id: use
    service: local
    call: echo
    with:
      x: "${steps.dose.no_such_field}"
)";

inline LocalFunctions TestFunctions() {
  LocalFunctions f;
  f.Register("triple",
             [](const nlohmann::json& args, const nlohmann::json&) -> core::Result<nlohmann::json> {
               if (!args.contains("mrsd") || !args["mrsd"].is_number()) {
                 return core::InvalidArgument("mrsd must be a number", "args.mrsd");
               }
               return nlohmann::json{
                   {"dose_mg", {args["mrsd"].get<double>(), 3 * args["mrsd"].get<double>()}}};
             });
  f.Register("echo",
             [](const nlohmann::json& args, const nlohmann::json&) -> core::Result<nlohmann::json> {
               return args;
             });
  // Counts the steps by state, from the run record it is given.
  f.Register("verdict",
             [](const nlohmann::json&, const nlohmann::json& run) -> core::Result<nlohmann::json> {
               int ok = 0, with_output = 0;
               for (const auto& s : run.at("steps")) {
                 if (s.value("state", "") == "succeeded") ++ok;
                 if (s.contains("output")) ++with_output;
               }
               return nlohmann::json{
                   {"verdict", ok == 5 ? "proceed" : "incomplete"},
                   {"summary", "verdict: " + std::string(ok == 5 ? "proceed" : "incomplete") +
                                   " (" + std::to_string(ok) + " steps)"},
                   {"outputs_seen", with_output}};
             });
  return f;
}

// Local functions of `functions`, domain requests by their service.
inline CallCatalog TestCatalog(const LocalFunctions& functions) {
  return [&functions](std::string_view service, std::string_view call) -> core::Status {
    if (service == "local") {
      return functions.Find(call) != nullptr
                 ? core::Status::Ok()
                 : core::InvalidArgument("no local function " + std::string(call));
    }
    if (domain::IsDomainRequest(call) && domain::ServiceOfRequest(call) == service) {
      return core::Status::Ok();
    }
    return core::InvalidArgument(std::string(service) + " does not serve " + std::string(call));
  };
}

inline std::vector<Workflow> TestWorkflows(const LocalFunctions& functions) {
  std::vector<Workflow> out;
  for (const auto& [text, file] : {std::pair<const char*, const char*>{kTestWorkflow, "test.yaml"},
                                   {kSmallWorkflow, "small.yaml"},
                                   {kMissingPathWorkflow, "missing-path.yaml"}}) {
    auto wf = ParseWorkflow(text, file, TestCatalog(functions));
    EXPECT_TRUE(wf.ok()) << wf.status();
    if (wf.ok()) out.push_back(std::move(*wf));
  }
  return out;
}

// A candidate the test workflow accepts (aspirin, a rat NOAEL).
inline std::string TestInput() {
  return R"({"structure": "CC(=O)Oc1ccccc1C(=O)O",
             "noaels": [{"species": "rat", "noael_mg_per_kg": 50}]})";
}

inline codec::ToxicityPanel TestPanel(double confidence = 0.9) {
  codec::ToxicityPanel p;
  p.panel = "tox21";
  p.model.study_id = "tox21-demo";
  p.model.model_version = 3;
  p.confidence = confidence;
  p.tasks = {"NR-AR"};
  return p;
}

inline codec::ClinicalAssessment TestClinical() {
  codec::ClinicalAssessment c;
  c.model.study_id = "clintox-demo";
  c.model.model_version = 2;
  return c;
}

inline codec::DoseTranslation TestDose(double mrsd_mg = 48.6) {
  codec::DoseTranslation d;
  d.chosen_species = "rat";
  d.mrsd_mg = mrsd_mg;
  return d;
}

}  // namespace fedrx::orchestrator::testing
