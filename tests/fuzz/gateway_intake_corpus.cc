// Writes the gateway intake fuzzer's seed corpus: valid envelopes of the
// bodies each role sends (and some it may not), from every kind of sender,
// encoded by the real codec so that the seeds follow the schemas as they
// are. Usage: gateway_intake_corpus OUT_DIR (the directory must exist).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "messages/codec/codec.h"
#include "services/core/testing/fake_clock.h"
#include "tests/fuzz/fuzz_input.h"

namespace fedrx::fuzz {
namespace {

// The fuzz target's FakeClock starts here; seeds are sent "now" so that the
// gateway's stale-message check lets them through.
const std::int64_t kNowMs = core::testing::FakeClock().WallMillis();

using Frames = std::vector<std::vector<std::uint8_t>>;

Frames Encoded(codec::Body body, const std::string& id, std::vector<codec::Tensor> tensors = {},
               std::int64_t sent_at_ms = kNowMs) {
  codec::Message m;
  m.header.message_id = id;
  m.header.sender = "seed";
  m.header.sent_at_ms = sent_at_ms;
  m.body = std::move(body);
  m.tensors = std::move(tensors);
  Frames frames;
  for (const codec::Blob& b : codec::Encode(std::move(m))) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
    frames.emplace_back(p, p + b.size());
  }
  return frames;
}

// A masked input's words (dimension 4 plus the weight).
constexpr std::uint32_t kMaskedWords[] = {0xdeadbeef, 1, 0x80000000u, 42, 65536};

std::vector<codec::Tensor> Weights() {
  std::vector<codec::Tensor> t;
  t.push_back(codec::Tensor{
      "weights", codec::DType::kFloat32, {2, 2}, codec::Blob::FromFloats({1, 2, 3, 4})});
  return t;
}

struct Seed {
  std::string name;
  std::vector<std::uint8_t> bytes;
};

class Corpus {
 public:
  // One message from `sender`.
  void Add(const std::string& name, Sender sender, Frames frames, std::size_t clock_step = 0,
           bool push_back = false) {
    std::vector<std::uint8_t> bytes;
    AppendMessage(bytes, Control(sender, clock_step, false, push_back), frames);
    seeds_.push_back({name, std::move(bytes)});
  }
  // Several messages in one input.
  void AddSequence(const std::string& name, std::vector<std::pair<std::uint8_t, Frames>> messages) {
    std::vector<std::uint8_t> bytes;
    for (const auto& [control, frames] : messages) AppendMessage(bytes, control, frames);
    seeds_.push_back({name, std::move(bytes)});
  }
  bool WriteTo(const std::string& dir) const {
    for (const Seed& s : seeds_) {
      std::ofstream f(dir + "/" + s.name, std::ios::binary | std::ios::trunc);
      f.write(reinterpret_cast<const char*>(s.bytes.data()),
              static_cast<std::streamsize>(s.bytes.size()));
      if (!f) {
        std::fprintf(stderr, "gateway_intake_corpus: cannot write %s/%s\n", dir.c_str(),
                     s.name.c_str());
        return false;
      }
    }
    std::printf("gateway_intake_corpus: %zu seeds in %s\n", seeds_.size(), dir.c_str());
    return true;
  }

 private:
  std::vector<Seed> seeds_;
};

// Requests a person sends to the domain services, with the values of a
// realistic first-in-human plan and screen (doubles, vectors, nested tables).
void AddDomainRequests(Corpus& c, const std::string& p, Sender who) {
  codec::TranslateDose dose;
  dose.noaels = {{"rat", 50, 0, "request"}, {"dog", 10, 12, "SEND study PC201708, dose group 3"}};
  c.Add(p + "translate-dose", who, Encoded(dose, "m-td"));
  const codec::PkModel oral{"oral_1cmt", 3.5, 20, 1.2, 0.8, 0, 0};
  c.Add(p + "simulate-pk", who,
        Encoded(codec::SimulatePk{oral, 100, 12, 5, {0, 1, 2, 4, 8, 12}, 250, 12}, "m-sp"));
  c.Add(p + "fit-pk", who,
        Encoded(codec::FitPk{{0.25, 0.5, 1, 2, 4, 8, 12, 24},
                             {2.8, 6.6, 10.5, 9.7, 8.6, 6.9, 5.0, 1.9},
                             320,
                             {{"lKe", -2.5, ""}}},
                "m-fp"));
  codec::ComputeSampleSize size;
  size.test = "simon_two_stage";
  size.p0 = 0.1;
  size.p1 = 0.3;
  c.Add(p + "sample-size", who, Encoded(size, "m-ss"));
  codec::EscalationDesign boin;
  boin.design = "boin";
  boin.max_patients = 24;
  c.Add(p + "escalation", who,
        Encoded(codec::SimulateEscalation{boin, {0.05, 0.1, 0.2, 0.3, 0.5}, 100, 7}, "m-se"));
  codec::RunVirtualTrial virtual_trial;
  virtual_trial.model = oral;
  virtual_trial.start_dose_mg = 30;
  virtual_trial.tox_auc50 = 400;
  virtual_trial.response_auc50 = 150;
  virtual_trial.design = boin;
  virtual_trial.trials = 50;
  virtual_trial.population = 100;
  c.Add(p + "virtual-trial", who, Encoded(virtual_trial, "m-vt"));
  // The tox, clinical and reverse services' requests.
  codec::PredictToxicity tox;
  tox.smiles = {"CCO", "c1ccccc1O", "not a smiles"};
  tox.panel = "tox21";
  tox.tasks = {"NR-AR", "SR-MMP"};
  tox.confidence = 0.8;
  c.Add(p + "predict-toxicity", who, Encoded(tox, "m-pt"));
  codec::AssessClinical clinical;
  clinical.smiles = {"CC(=O)Oc1ccccc1C(=O)O"};
  clinical.therapeutic_area = "oncology";
  c.Add(p + "assess-clinical", who, Encoded(clinical, "m-ac"));
  codec::ReverseTranslate reverse;
  reverse.organ_classes = {"Hepatobiliary disorders"};
  reverse.adverse_events = {"hepatitis"};
  reverse.clinical_labels = {"CT_TOX"};
  reverse.fdr = 0.1;
  c.Add(p + "reverse-translate", who, Encoded(reverse, "m-rt"));
}

// The domain services' answers, sent by a person: refused as bodies only
// services send.
void AddDomainAnswers(Corpus& c) {
  codec::Working working{
      "bsa",
      "FDA 2005",
      {{"HED", "NOAEL x Km ratio", {{"noael", 50, "mg/kg"}}, {"hed", 8.1, "mg/kg"}, "Table 1"}},
      {"note"}};
  codec::DoseTranslation dose;
  dose.heds = {{"rat", 50, 0.15, 6, 0.162, 8.1, "request"}};
  dose.working = working;
  c.Add("scientist-sends-dose-translation", kScientist, Encoded(dose, "m-dt"));
  c.Add("scientist-sends-pk-profile", kScientist,
        Encoded(codec::PkProfile{{0, 1}, {5, 4}, {{"cmax", 5, "mg/L"}}, working}, "m-pp"));
  c.Add("admin-sends-pk-fit", kAdmin,
        Encoded(codec::PkFit{{{"lKe", -2.4, 0.2, ""}}, 0.7, 8, 6, {2.5}, working}, "m-pf"));
  codec::SampleSizeResult size;
  size.test = "t_two_sample";
  size.n = 63.8;
  c.Add("admin-sends-sample-size-result", kAdmin, Encoded(size, "m-sr"));
  codec::OperatingCharacteristics oc;
  oc.design = "boin";
  oc.selection_pct = {10, 60, 30};
  oc.boundaries = {{1, 0, 1, -1}, {3, 0, 2, 3}};
  c.Add("scientist-sends-operating-characteristics", kScientist, Encoded(oc, "m-oc"));
  codec::VirtualTrialResult result;
  result.dose_mg = {30, 60};
  result.auc_median = {8, 16};
  result.oc = oc;
  c.Add("site-sends-virtual-trial-result", kSite, Encoded(result, "m-vr"));
  // The ML services' answers, nested several tables deep.
  codec::StructurePrediction structure;
  structure.input = "CCO";
  structure.canonical_smiles = "CCO";
  structure.tasks = {{"NR-AR", 0.2, 0.6, 0.05, "negative", 0.6, 0.95, true}};
  structure.domain = {0.4, 0.3, true, 0.01, true};
  codec::ToxicityPanel panel;
  panel.panel = "tox21";
  panel.model = {"tox21-demo", 3, "hash", 900, 3, "conformal"};
  panel.tasks = {"NR-AR"};
  panel.results = {structure};
  panel.working = working;
  c.Add("scientist-sends-toxicity-panel", kScientist, Encoded(panel, "m-tp"));
  codec::ClinicalAssessment assessment;
  assessment.clinical = {structure};
  assessment.success = {
      {"oncology", 0.3, -0.4, {{"phase1_to_phase2", 0.5, 0.45, 0.25}}, 0.05, 0.04, "source"}};
  c.Add("admin-sends-clinical-assessment", kAdmin, Encoded(assessment, "m-ca"));
  codec::ReverseTranslation translation;
  codec::OrganClassRecommendation organ;
  organ.organ_class = "Hepatobiliary disorders";
  organ.assays = {
      {"CT_TOX", "SR-MMP", 5, 6, 7, 80, true, 2.5, 1.1, 5.6, 0.01, 0.04, true, true, "evidence"}};
  organ.endpoints = {{"LB", "ALT", "note"}};
  translation.organ_classes = {organ};
  c.Add("site-sends-reverse-translation", kSite, Encoded(translation, "m-rv"));
}

// Requests a person sends to the orchestrator and the report service.
void AddWorkflowRequests(Corpus& c, const std::string& p, Sender who) {
  codec::RunWorkflow run;
  run.workflow = "first-in-human";
  run.input_json =
      R"({"structure":"CC(=O)Nc1ccc(O)cc1","noaels":[{"species":"rat","noael_mg_per_kg":50}]})";
  run.run_id = "run-seed-1";
  c.Add(p + "run-workflow", who, Encoded(run, "m-rw"));
  c.Add(p + "get-workflow-run", who, Encoded(codec::GetWorkflowRun{"run-seed-1", true}, "m-gw"));
  c.Add(p + "list-workflows", who, Encoded(codec::ListWorkflows{}, "m-lw"));
  c.Add(p + "list-workflow-runs", who, Encoded(codec::ListWorkflowRuns{"lead-triage", 5}, "m-lr"));
  c.Add(p + "create-report", who, Encoded(codec::CreateReport{"candidate", "run-seed-1"}, "m-cr"));
  c.Add(p + "get-report", who, Encoded(codec::GetReport{"rep-seed-1", "json"}, "m-gr"));
  c.Add(p + "list-reports", who, Encoded(codec::ListReports{"study", 3}, "m-lp"));
}

// The orchestrator's and the report service's answers, sent by people and
// sites: refused as bodies only services send.
void AddWorkflowAnswers(Corpus& c) {
  codec::StepState step;
  step.step = "tox";
  step.service = "tox";
  step.call = "PredictToxicity";
  step.state = "failed";
  step.attempts = 2;
  step.started_ms = kNowMs - 3000;
  step.finished_ms = kNowMs;
  step.error_code = "unavailable";
  step.error = "no answer";
  step.error_where = "steps.tox";
  codec::WorkflowRun run;
  run.run_id = "run-seed-1";
  run.workflow = "first-in-human";
  run.workflow_version = "1";
  run.state = "partial";
  run.steps = {step, step};
  run.output_json = R"({"verdict":"incomplete"})";
  c.Add("scientist-sends-workflow-run", kScientist, Encoded(run, "m-wr"));
  codec::WorkflowList list;
  list.workflows = {{"first-in-human", "1", "seed", {"tox", "dose"}, {"structure"}}};
  c.Add("admin-sends-workflow-list", kAdmin, Encoded(list, "m-wl"));
  codec::WorkflowRunList runs;
  runs.runs = {run};
  c.Add("site-sends-workflow-run-list", kSite, Encoded(runs, "m-rl"));
  const codec::ReportInfo info{"rep-seed-1", "candidate", "run-seed-1", "Seed report",
                               kNowMs,       2048,        512,          "proceed"};
  c.Add("scientist-sends-report-info", kScientist, Encoded(info, "m-ri"));
  codec::ReportDocument document;
  document.info = info;
  document.format = "html";
  document.content = "<!doctype html><title>seed</title><svg class=\"chart\"></svg>";
  c.Add("admin-sends-report-document", kAdmin, Encoded(document, "m-rd"));
  codec::ReportList reports;
  reports.reports = {info, info};
  c.Add("site-sends-report-list", kSite, Encoded(reports, "m-rp"));
}

void Build(Corpus& c) {
  const codec::RegisterSite reg{"site-1", "Site One", 120, {"NR-AR", "SR-p53"}, "hash"};
  const codec::UpdateReady ready{"study", 1, 0, 120, {{"loss", 0.5}}};
  const codec::ModelUpdate update{"study", 1, "site-1", 0, 120, {{"loss", 0.5}}};
  const codec::EvaluationResult eval{"study", 1, 1, "validation", 120};

  // What a site sends, from the site, and from identities that must be refused.
  for (Sender who : {kSite, kUnenrolled, kSuspended}) {
    const std::string p = std::to_string(who) + "-";
    c.Add(p + "register", who, Encoded(reg, "m-reg"));
    c.Add(p + "heartbeat", who, Encoded(codec::Heartbeat{{"study"}}, "m-hb"), 0, true);
    c.Add(p + "update-ready", who, Encoded(ready, "m-ur"));
    c.Add(p + "model-update", who, Encoded(update, "m-mu", Weights()));
    c.Add(p + "evaluation", who, Encoded(eval, "m-ev"));
    c.Add(p + "get-study", who, Encoded(codec::GetStudy{"study"}, "m-gs"));
    c.Add(p + "health", who, Encoded(codec::HealthCheck{}, "m-hc"));
    // Secure aggregation's answers (keys are 32 bytes, sealed shares 104).
    const std::vector<std::uint8_t> key(32, 7);
    c.Add(p + "secagg-keys", who, Encoded(codec::SecAggKeys{"study", 1, {1, key, key}}, "m-sk"));
    c.Add(p + "secagg-shares", who,
          Encoded(
              codec::SecAggShares{"study", 1, 1, key, {{1, 2, std::vector<std::uint8_t>(104, 3)}}},
              "m-ss"));
    std::vector<codec::Tensor> masked;
    masked.push_back(codec::Tensor{"masked",
                                   codec::DType::kUInt32,
                                   {5},
                                   codec::Blob::CopyOf(std::as_bytes(std::span(kMaskedWords)))});
    c.Add(p + "secagg-masked", who,
          Encoded(codec::SecAggMaskedInput{"study", 1, 1}, "m-sm", std::move(masked)));
    c.Add(p + "secagg-unmask", who,
          Encoded(codec::SecAggUnmaskResponse{"study", 1, 1, {{2, 1, {1, 2, 3, 4, 5}}}, {}, {}},
                  "m-su"));
  }
  // A scientist's and an admin's bodies, from each role.
  codec::StudySpec spec;
  spec.study_id = "study";
  spec.name = "Seed study";
  spec.tasks = {"NR-AR"};
  spec.model = {2048, {64}, 1, 0.1f};
  spec.rounds = 2;
  spec.min_sites = 1;
  spec.local_epochs = 1;
  spec.learning_rate = 0.01f;
  spec.strategy = "fedavg";
  spec.sites = {"site-1"};
  for (Sender who : {kScientist, kAdmin, kSite}) {
    const std::string p = "people-" + std::to_string(who) + "-";
    c.Add(p + "health", who, Encoded(codec::HealthCheck{}, "m-hc"));
    c.Add(p + "list-sites", who, Encoded(codec::ListSites{}, "m-ls"));
    c.Add(p + "create-study", who, Encoded(codec::CreateStudy{spec}, "m-cs"));
    c.Add(p + "get-model", who, Encoded(codec::GetModel{"study", 0, true}, "m-gm"));
    c.Add(p + "enrol", who,
          Encoded(codec::EnrolInstitution{"lab-7", "Lab Seven", "scientist"}, "m-en"));
    c.Add(p + "list-institutions", who, Encoded(codec::ListInstitutions{}, "m-li"));
    c.Add(p + "set-status", who, Encoded(codec::SetInstitutionStatus{"site-2", "active"}, "m-ss"));
    c.Add(p + "verify-audit", who, Encoded(codec::VerifyAudit{}, "m-va"));
    // The domain services' requests (translational, trial, tox, clinical,
    // reverse).
    AddDomainRequests(c, p, who);
    // The orchestrator's and the report service's requests.
    AddWorkflowRequests(c, p, who);
  }
  // Bodies only services send.
  c.Add("site-sends-train-task", kSite,
        Encoded(codec::TrainTask{"study", 1, 0, 1, 8, 0.1f, 7, 0}, "m-tt", Weights()));
  c.Add("site-sends-error", kSite,
        Encoded(codec::Error{codec::ErrorCode::kInternal, "boom", "here"}, "m-er"));
  // The domain services' answers, which no role may send.
  AddDomainAnswers(c);
  AddWorkflowAnswers(c);

  // The plaintext path: register, then send as the registered site.
  const std::uint8_t plain = Control(kNone, 0, false, true);
  c.AddSequence("plain-register-then-update", {{plain, Encoded(reg, "p-1")},
                                               {plain, Encoded(ready, "p-2")},
                                               {plain, Encoded(update, "p-3", Weights())}});
  c.Add("plain-unregistered-heartbeat", kNone, Encoded(codec::Heartbeat{}, "p-hb"));
  // Replays and time: the same id twice, a stale send time, the readiness probe.
  const std::uint8_t site = Control(kSite, 0, false, false);
  c.AddSequence("site-replayed-id", {{site, Encoded(reg, "r-1")}, {site, Encoded(ready, "r-1")}});
  c.Add("site-stale", kSite, Encoded(ready, "s-1", {}, kNowMs - 10 * 60 * 1000));
  c.Add("site-future", kSite, Encoded(ready, "s-2", {}, kNowMs + 10 * 60 * 1000));
  c.AddSequence("site-after-status-ttl",
                {{site, Encoded(reg, "t-1")},
                 {Control(kSite, 4, true, true), Encoded(ready, "t-2", {}, kNowMs + 2500)}});
  // An admin reactivates the suspended site, which then sends.
  c.AddSequence(
      "admin-reactivates-then-site-2",
      {{Control(kAdmin, 0, false, false),
        Encoded(codec::SetInstitutionStatus{"site-2", "active"}, "a-1")},
       {Control(kSuspended, 4, false, false),
        Encoded(codec::RegisterSite{"site-2", "Site Two", 5, {}, ""}, "a-2", {}, kNowMs + 2500)}});
  // Shapes the codec must refuse: no frames, a tensor frame without its spec,
  // a spec without its frame.
  c.Add("no-frames", kSite, {});
  Frames extra = Encoded(ready, "x-1");
  extra.push_back({1, 2, 3, 4});
  c.Add("extra-frame", kSite, extra);
  Frames missing = Encoded(update, "x-2", Weights());
  missing.pop_back();
  c.Add("missing-frame", kSite, missing);
}

}  // namespace
}  // namespace fedrx::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gateway_intake_corpus OUT_DIR\n");
    return 2;
  }
  fedrx::fuzz::Corpus corpus;
  fedrx::fuzz::Build(corpus);
  return corpus.WriteTo(argv[1]) ? 0 : 1;
}
