#include "services/orchestrator/engine.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <exception>
#include <random>
#include <set>
#include <utility>

#include "services/core/bus.h"
#include "services/core/keys.h"
#include "services/core/random.h"
#include "services/domain/domain_json.h"
#include "services/ml/chem.h"
#include "services/orchestrator/expression.h"

namespace fedrx::orchestrator {

using nlohmann::json;

namespace {

constexpr std::size_t kReportCall = static_cast<std::size_t>(-1);

const std::vector<double> kStepBuckets = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

// Text that never throws on bytes that are not UTF-8 (a stored record may hold anything).
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::int64_t Int(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  if (it->is_number_float()) return static_cast<std::int64_t>(it->get<double>());
  return it->get<std::int64_t>();
}

json ErrorJson(const core::Status& s) {
  return {{"code", core::StatusCodeName(s.code())}, {"message", s.message()}, {"where", s.where()}};
}

bool Retryable(core::StatusCode code) {
  return code == core::StatusCode::kUnavailable || code == core::StatusCode::kDeadlineExceeded ||
         code == core::StatusCode::kResourceExhausted;
}

bool Terminal(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "skipped";
}

bool RunTerminal(const std::string& state) {
  return state == "succeeded" || state == "partial" || state == "failed";
}

std::string UtcStamp(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

core::Status RdkitSmilesCheck(std::string_view smiles, std::string_view where) {
  auto mol = ml::PrepareMolecule(smiles, ml::FingerprintOptions{});
  if (mol.ok()) return core::Status::Ok();
  return core::InvalidArgument("not a usable structure: " + mol.status().message(),
                               std::string(where));
}

std::string_view AnswerTypeOf(std::string_view request_type) {
  static const std::map<std::string_view, std::string_view> kAnswers = {
      {"TranslateDose", "DoseTranslation"},
      {"SimulatePk", "PkProfile"},
      {"FitPk", "PkFit"},
      {"ComputeSampleSize", "SampleSizeResult"},
      {"SimulateEscalation", "OperatingCharacteristics"},
      {"RunVirtualTrial", "VirtualTrialResult"},
      {"PredictToxicity", "ToxicityPanel"},
      {"AssessClinical", "ClinicalAssessment"},
      {"ReverseTranslate", "ReverseTranslation"},
  };
  auto it = kAnswers.find(request_type);
  return it == kAnswers.end() ? std::string_view() : it->second;
}

// One active run. `record` is the run record JSON of the contract, always the
// truth; the rest is what the engine needs between ticks.
struct Engine::Run {
  const Workflow* wf = nullptr;
  std::string id;
  json record;
  std::map<std::string, json> outputs;               // succeeded steps' outputs, by step id
  std::set<std::string> unsaved_outputs;             // written with the next record
  std::vector<std::vector<std::size_t>> needs;       // per step: indices it waits for
  std::vector<std::optional<Condition>> conditions;  // per step
  std::vector<core::Status> condition_errors;        // per step: a `when` that did not parse
  std::map<std::size_t, std::chrono::steady_clock::time_point> retry_at;
  std::map<std::size_t, std::uint64_t> in_flight;  // step index (or kReportCall) -> token
  std::map<std::size_t, std::chrono::steady_clock::time_point> sent_at;
  bool dirty = false;     // record (or outputs) not yet stored
  bool finished = false;  // terminal state reached; may still wait for its report
  bool done = false;      // nothing more to do: drop from memory

  json& step(std::size_t i) { return record["steps"][i]; }
  bool report_pending() const {
    auto it = record.find("report_pending");
    return it != record.end() && it->is_boolean() && it->get<bool>();
  }
};

struct Engine::Completion {
  std::string run_id;
  std::size_t index = 0;
  std::uint64_t token = 0;
  core::Result<codec::Body> answer = core::Internal("no answer");
};

// Answers land here (possibly from inside StepCaller::Call) and are taken in
// at the next Tick; callbacks hold it weakly so that an engine destroyed with
// requests in flight is never called back.
struct Engine::Inbox {
  std::deque<Completion> queue;
};

Engine::Engine(core::StateStore& store, const core::Clock& clock, core::Metrics& metrics,
               StepCaller& caller, const LocalFunctions& functions, std::vector<Workflow> workflows,
               EngineOptions options)
    : store_(store),
      clock_(clock),
      metrics_(metrics),
      caller_(caller),
      functions_(functions),
      workflows_(std::move(workflows)),
      options_(std::move(options)),
      inbox_(std::make_shared<Inbox>()),
      runs_active_(metrics.Gauge("runs_active", "Workflow runs not yet finished")),
      runs_resumed_(metrics.Counter("runs_resumed_total",
                                    "Workflow runs carried on after an orchestrator restart")),
      runs_unreadable_(metrics.Counter(
          "runs_unreadable_total",
          "Active workflow runs whose record could not be read at resume (marked failed)")),
      store_errors_(metrics.Counter("store_errors_total",
                                    "Writes of a run record that failed (retried next tick)")) {
  if (!options_.smiles_check) options_.smiles_check = RdkitSmilesCheck;
  std::random_device rd;
  id_state_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
              static_cast<std::uint64_t>(clock_.WallMillis());
}

Engine::~Engine() = default;

const Workflow* Engine::FindWorkflow(std::string_view name) const {
  for (const Workflow& wf : workflows_) {
    if (wf.name == name) return &wf;
  }
  return nullptr;
}

std::size_t Engine::in_flight() const {
  std::size_t n = 0;
  for (const auto& [id, run] : runs_) n += run->in_flight.size();
  return n;
}

void Engine::UpdateActiveGauge() { runs_active_.Set(static_cast<double>(runs_.size())); }

std::string Engine::NewRunId() {
  char hex[8];
  std::snprintf(hex, sizeof hex, "%06llx",
                static_cast<unsigned long long>(core::SplitMix64(id_state_) & 0xffffff));
  return "run-" + UtcStamp(clock_.WallMillis()) + "-" + hex;
}

namespace {

// Per-step dependency indices (explicit needs plus the steps a `when` reads)
// and parsed conditions, for a run of `wf`.
void Prepare(const Workflow& wf, std::vector<std::vector<std::size_t>>& needs,
             std::vector<std::optional<Condition>>& conditions,
             std::vector<core::Status>& condition_errors) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < wf.steps.size(); ++i) index[wf.steps[i].id] = i;
  needs.assign(wf.steps.size(), {});
  conditions.assign(wf.steps.size(), std::nullopt);
  condition_errors.assign(wf.steps.size(), core::Status::Ok());
  for (std::size_t i = 0; i < wf.steps.size(); ++i) {
    const StepSpec& s = wf.steps[i];
    std::set<std::size_t> deps;
    for (const std::string& n : s.needs) {
      if (auto it = index.find(n); it != index.end() && it->second != i) deps.insert(it->second);
    }
    if (!s.when.empty()) {
      auto c = Condition::Parse(s.when);
      if (c.ok()) {
        for (const std::string& n : c->ReferencedSteps()) {
          if (auto it = index.find(n); it != index.end() && it->second != i) {
            deps.insert(it->second);
          }
        }
        conditions[i] = std::move(*c);
      } else {
        condition_errors[i] = c.status();
      }
    }
    needs[i].assign(deps.begin(), deps.end());
  }
}

}  // namespace

// --- Starting a run ---------------------------------------------------------

core::Result<codec::WorkflowRun> Engine::Start(std::string_view workflow,
                                               std::string_view input_json,
                                               std::string_view run_id) {
  const Workflow* wf = FindWorkflow(workflow);
  if (wf == nullptr) {
    std::string known;
    for (const Workflow& w : workflows_) known += (known.empty() ? "" : ", ") + w.name;
    return core::InvalidArgument(
        "no workflow named '" + std::string(workflow) + "' (known: " + known + ")",
        "RunWorkflow.workflow");
  }
  std::string id(run_id);
  if (!id.empty()) {
    FEDRX_RETURN_IF_ERROR(core::ValidateId(id, "RunWorkflow.run_id"));
    if (runs_.count(id) != 0) return Get(id, false);
    FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::WorkflowRun(id));
    FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> existing, store_.Get(key));
    if (existing) return Get(id, false);
  }
  json given = json::object();
  if (!input_json.empty()) {
    given = json::parse(input_json, nullptr, false);
    if (given.is_discarded() || !given.is_object()) {
      return core::InvalidArgument("the input is not a JSON object", "RunWorkflow.input_json");
    }
  }
  FEDRX_ASSIGN_OR_RETURN(json input, ResolveInputs(*wf, given, options_.smiles_check));

  if (id.empty()) {
    // A clash of generated ids is unlikely (24 random bits within a second); check anyway.
    for (int tries = 0; tries < 4; ++tries) {
      id = NewRunId();
      FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::WorkflowRun(id));
      FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> existing, store_.Get(key));
      if (!existing && runs_.count(id) == 0) break;
    }
  }

  auto run = std::make_unique<Run>();
  run->wf = wf;
  run->id = id;
  json steps = json::array();
  for (const StepSpec& s : wf->steps) {
    steps.push_back({{"id", s.id},
                     {"service", s.service},
                     {"call", s.call},
                     {"needs", s.needs},
                     {"state", "pending"},
                     {"attempts", 0},
                     {"started_ms", 0},
                     {"finished_ms", 0}});
  }
  run->record = {{"run_id", id},
                 {"workflow", wf->name},
                 {"workflow_version", wf->version},
                 {"workflow_sha256", wf->sha256},
                 {"workflow_file", wf->file},
                 {"state", "running"},
                 {"created_ms", clock_.WallMillis()},
                 {"finished_ms", 0},
                 {"input", std::move(input)},
                 {"steps", std::move(steps)},
                 {"summary", ""},
                 {"report_id", ""},
                 {"report_error", ""}};
  Prepare(*wf, run->needs, run->conditions, run->condition_errors);

  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::WorkflowRun(id));
  core::WriteBatch batch;
  batch.Set(key, Dump(run->record));
  batch.SetAdd(core::keys::WorkflowRunIndex(), id);
  batch.SetAdd(core::keys::WorkflowActiveRuns(), id);
  FEDRX_RETURN_IF_ERROR(store_.Apply(batch));

  codec::WorkflowRun answer = ToMessage(run->record, nullptr);
  runs_.emplace(id, std::move(run));
  UpdateActiveGauge();
  return answer;
}

// --- Resume -----------------------------------------------------------------

core::Status Engine::Resume() {
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                         store_.SetMembers(core::keys::WorkflowActiveRuns()));
  for (const std::string& id : ids) {
    if (runs_.count(id) != 0) continue;
    FEDRX_RETURN_IF_ERROR(LoadActiveRun(id));
  }
  UpdateActiveGauge();
  return core::Status::Ok();
}

void Engine::MarkUnreadable(const std::string& run_id, const core::Status& why) {
  runs_unreadable_.Inc();
  metrics_.CountError("run_record", core::StatusCodeName(why.code()));
  core::WriteBatch batch;
  auto key = core::keys::WorkflowRun(run_id);
  if (key.ok()) {
    json record = {{"run_id", run_id},
                   {"workflow", ""},
                   {"state", "failed"},
                   {"created_ms", 0},
                   {"finished_ms", clock_.WallMillis()},
                   {"steps", json::array()},
                   {"summary", "run could not be resumed: " + why.message()},
                   {"error", ErrorJson(why)},
                   {"report_id", ""},
                   {"report_error", ""}};
    // Keep what was there (it may help whoever investigates), as text.
    auto old = store_.Get(*key);
    if (old.ok() && old->has_value()) record["unreadable_record"] = **old;
    batch.Set(*key, Dump(record));
  }
  batch.SetRemove(core::keys::WorkflowActiveRuns(), run_id);
  if (!store_.Apply(batch).ok()) store_errors_.Inc();
}

core::Status Engine::LoadActiveRun(const std::string& run_id) {
  auto key = core::keys::WorkflowRun(run_id);
  if (!key.ok()) {
    MarkUnreadable(run_id,
                   core::Status(core::StatusCode::kDataLoss,
                                "malformed run id in the active set: " + key.status().message(),
                                "fedrx:orchestrator:active"));
    return core::Status::Ok();
  }
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> text, store_.Get(*key));
  if (!text) {
    MarkUnreadable(
        run_id, core::Status(core::StatusCode::kDataLoss, "the run record is missing", key->str()));
    return core::Status::Ok();
  }
  json record = json::parse(*text, nullptr, false);
  auto corrupt = [&](const std::string& what) {
    MarkUnreadable(run_id, core::Status(core::StatusCode::kDataLoss,
                                        "the run record is unreadable: " + what, key->str()));
    return core::Status::Ok();
  };
  if (record.is_discarded()) return corrupt("not JSON");
  if (!record.is_object()) return corrupt("not a JSON object");
  if (Str(record, "run_id") != run_id) return corrupt("its run_id is not '" + run_id + "'");
  if (!record.contains("steps") || !record["steps"].is_array()) return corrupt("no steps array");
  if (!record.contains("input") || !record["input"].is_object()) {
    return corrupt("no input object");
  }
  static const std::set<std::string> kStates = {"pending", "running", "succeeded", "failed",
                                                "skipped"};
  for (const json& s : record["steps"]) {
    if (!s.is_object() || Str(s, "id").empty() || kStates.count(Str(s, "state")) == 0 ||
        !s.contains("attempts") || !s["attempts"].is_number_integer()) {
      return corrupt("a step entry is malformed");
    }
  }

  auto run = std::make_unique<Run>();
  run->id = run_id;
  run->record = std::move(record);
  run->wf = FindWorkflow(Str(run->record, "workflow"));
  auto fail_run = [&](const core::Status& why) {
    // The record is sound but cannot be carried on: close it as failed.
    run->record["state"] = "failed";
    run->record["finished_ms"] = clock_.WallMillis();
    run->record["summary"] = "run could not be resumed: " + why.message();
    run->record["error"] = ErrorJson(why);
    run->record.erase("report_pending");
    run->finished = true;
    run->dirty = true;
    metrics_
        .Counter(
            "runs_total", "Workflow runs finished, by workflow and final state",
            {{"workflow", run->wf != nullptr ? run->wf->name : "unknown"}, {"state", "failed"}})
        .Inc();
    if (Persist(*run).ok()) return;
    run->done = false;  // retried from Tick
    runs_.emplace(run_id, std::move(run));
  };
  if (run->wf == nullptr) {
    fail_run(core::FailedPrecondition(
        "workflow '" + Str(run->record, "workflow") + "' is not loaded", "workflow"));
    return core::Status::Ok();
  }
  const Workflow& wf = *run->wf;
  bool same_steps = run->record["steps"].size() == wf.steps.size();
  for (std::size_t i = 0; same_steps && i < wf.steps.size(); ++i) {
    same_steps = Str(run->record["steps"][i], "id") == wf.steps[i].id;
  }
  if (!same_steps) {
    fail_run(core::FailedPrecondition(
        "workflow '" + wf.name + "' no longer has the steps the run began with", wf.file));
    return core::Status::Ok();
  }
  Prepare(wf, run->needs, run->conditions, run->condition_errors);

  // Outputs of succeeded steps, in one round trip.
  std::vector<core::Key> out_keys;
  std::vector<std::size_t> out_index;
  for (std::size_t i = 0; i < wf.steps.size(); ++i) {
    json& s = run->step(i);
    const std::string state = Str(s, "state");
    if (state == "succeeded") {
      FEDRX_ASSIGN_OR_RETURN(core::Key k, core::keys::WorkflowStepOutput(run_id, wf.steps[i].id));
      out_keys.push_back(std::move(k));
      out_index.push_back(i);
    } else if (state == "running") {
      // Its answer is lost with the process that waited for it: ask again.
      s["state"] = "pending";
    }
  }
  if (!out_keys.empty()) {
    FEDRX_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> outs, store_.GetMany(out_keys));
    for (std::size_t k = 0; k < outs.size(); ++k) {
      const std::size_t i = out_index[k];
      json out = outs[k] ? json::parse(*outs[k], nullptr, false) : json();
      if (!outs[k] || out.is_discarded()) {
        json& s = run->step(i);
        s["state"] = "failed";
        s["error"] = ErrorJson(core::Status(core::StatusCode::kDataLoss,
                                            outs[k] ? "the step's stored output is not JSON"
                                                    : "the step's stored output is missing",
                                            out_keys[k].str()));
        metrics_.CountError("step_output", "data_loss");
        continue;
      }
      run->outputs[wf.steps[i].id] = std::move(out);
    }
  }
  const std::string state = Str(run->record, "state");
  if (RunTerminal(state)) {
    run->finished = true;
    // Finished but its report was never recorded: ask again (Tick); else only
    // the active-set entry was left behind.
    if (!run->report_pending()) run->dirty = true;
  }
  runs_resumed_.Inc();
  if (run->finished && !run->report_pending()) {
    if (Persist(*run).ok()) return core::Status::Ok();
  }
  runs_.emplace(run_id, std::move(run));
  return core::Status::Ok();
}

// --- Ticking ----------------------------------------------------------------

void Engine::Tick() {
  caller_.Maintain();
  while (!inbox_->queue.empty()) {
    Completion c = std::move(inbox_->queue.front());
    inbox_->queue.pop_front();
    OnCompletion(std::move(c));
  }
  for (auto it = runs_.begin(); it != runs_.end();) {
    TickRun(*it->second);
    if (it->second->done) {
      it = runs_.erase(it);
    } else {
      ++it;
    }
  }
  UpdateActiveGauge();
}

void Engine::TickRun(Run& run) {
  if (run.dirty && !Persist(run).ok()) return;
  if (!run.finished) {
    while (Advance(run)) {
    }
    MaybeFinishRun(run);
  }
  if (run.finished && !run.dirty) {
    if (run.report_pending()) {
      if (run.in_flight.count(kReportCall) == 0) RequestReport(run);
    } else {
      run.done = true;
    }
  }
}

bool Engine::Advance(Run& run) {
  if (run.dirty) return false;  // nothing new starts until the record is stored
  const Workflow& wf = *run.wf;
  const auto now = clock_.Now();
  for (std::size_t i = 0; i < wf.steps.size(); ++i) {
    json& s = run.step(i);
    if (Str(s, "state") != "pending") continue;
    if (auto r = run.retry_at.find(i); r != run.retry_at.end() && now < r->second) continue;
    bool ready = true;
    std::string skip;
    bool skip_by_failure = false;
    for (std::size_t j : run.needs[i]) {
      const json& d = run.step(j);
      const std::string ds = Str(d, "state");
      if (!Terminal(ds)) {
        ready = false;
        break;
      }
      if (!skip.empty()) continue;
      const std::string& did = wf.steps[j].id;
      if (ds == "failed") {
        skip = "needs " + did + ", which failed";
        skip_by_failure = true;
      } else if (ds == "skipped") {
        skip = "needs " + did + ", which was skipped (" + Str(d, "skip_reason") + ")";
        skip_by_failure = Str(d, "skipped_by") != "condition";
      }
    }
    if (!ready) continue;
    if (skip.empty() && run.conditions[i]) {
      auto holds = run.conditions[i]->Evaluate(Scope(run));
      if (!holds.ok()) {
        s["state"] = "running";
        s["attempts"] = s["attempts"].get<int>() + 1;
        s["started_ms"] = clock_.WallMillis();
        FinishStep(run, i, holds.status().WithContext("condition '" + wf.steps[i].when + "'"));
        return true;
      }
      if (!*holds) {
        skip = "condition false: " + wf.steps[i].when;
        skip_by_failure = false;
      }
    } else if (skip.empty() && !run.condition_errors[i].ok()) {
      s["state"] = "running";
      s["attempts"] = s["attempts"].get<int>() + 1;
      FinishStep(run, i, run.condition_errors[i]);
      return true;
    }
    if (!skip.empty()) {
      s["state"] = "skipped";
      s["skip_reason"] = skip;
      s["skipped_by"] = skip_by_failure ? "failure" : "condition";
      s["finished_ms"] = clock_.WallMillis();
      metrics_
          .Counter("steps_total", "Workflow steps finished, by service and state",
                   {{"service", wf.steps[i].service}, {"state", "skipped"}})
          .Inc();
      run.dirty = true;
      Persist(run).IgnoreError();  // retried from TickRun when it fails
      return true;
    }
    StartStep(run, i);
    return true;
  }
  return false;
}

void Engine::StartStep(Run& run, std::size_t i) {
  const StepSpec& spec = run.wf->steps[i];
  json& s = run.step(i);
  const json before = s;
  const std::string where = "steps." + spec.id + ".with";
  auto fail = [&](const core::Status& status) {
    s["state"] = "running";
    s["attempts"] = s["attempts"].get<int>() + 1;
    if (Int(s, "started_ms") == 0) s["started_ms"] = clock_.WallMillis();
    FinishStep(run, i, status);
  };
  auto args = ResolveTemplate(spec.with, Scope(run), where);
  if (!args.ok()) return fail(args.status());

  if (spec.service == "local") {
    const LocalFunction* fn = functions_.Find(spec.call);
    if (fn == nullptr) {
      return fail(core::FailedPrecondition("no local function '" + spec.call + "'",
                                           "steps." + spec.id + ".call"));
    }
    s["state"] = "running";
    s["attempts"] = s["attempts"].get<int>() + 1;
    if (Int(s, "started_ms") == 0) s["started_ms"] = clock_.WallMillis();
    s["request"] = *args;
    const auto t0 = clock_.Now();
    core::Result<json> out = core::Internal("not run");
    try {
      out = (*fn)(*args, RecordWithOutputs(run));
    } catch (const std::exception& e) {
      // Local functions promise not to throw; one that does fails its step, not the process.
      out = core::Internal(std::string("local function threw: ") + e.what(),
                           "steps." + spec.id + ".call");
    }
    metrics_
        .Histogram("step_duration_seconds", "Time from sending a step to its answer, by service",
                   kStepBuckets, {{"service", spec.service}})
        .Observe(std::chrono::duration<double>(clock_.Now() - t0).count());
    return FinishStep(run, i, std::move(out));
  }

  auto body = domain::RequestFromJson(spec.call, *args, where);
  if (!body.ok()) return fail(body.status());

  s["state"] = "running";
  s["attempts"] = s["attempts"].get<int>() + 1;
  if (Int(s, "started_ms") == 0) s["started_ms"] = clock_.WallMillis();
  s["request"] = *args;
  run.dirty = true;
  if (!Persist(run).ok()) {
    // Nothing is sent that the store does not know about: try again later.
    s = before;
    run.dirty = false;
    run.retry_at[i] = clock_.Now() + options_.retry_backoff;
    return;
  }
  run.retry_at.erase(i);
  const std::uint64_t token = core::SplitMix64(id_state_);
  run.in_flight[i] = token;
  run.sent_at[i] = clock_.Now();
  std::weak_ptr<Inbox> inbox = inbox_;
  caller_.Call(spec.service, std::move(*body), spec.timeout,
               [inbox, run_id = run.id, i, token](core::Result<codec::Body>&& answer) {
                 if (auto in = inbox.lock()) {
                   in->queue.push_back(Completion{run_id, i, token, std::move(answer)});
                 }
               });
}

void Engine::OnCompletion(Completion&& c) {
  auto rit = runs_.find(c.run_id);
  if (rit == runs_.end()) return;
  Run& run = *rit->second;
  auto fit = run.in_flight.find(c.index);
  if (fit == run.in_flight.end() || fit->second != c.token) return;  // a stale answer
  run.in_flight.erase(fit);

  core::Result<codec::Body> answer = std::move(c.answer);
  if (answer.ok() && std::holds_alternative<codec::Error>(*answer)) {
    answer = core::FromErrorBody(std::get<codec::Error>(*answer));
  }

  if (c.index == kReportCall) {
    if (answer.ok() && std::holds_alternative<codec::ReportInfo>(*answer)) {
      run.record["report_id"] = std::get<codec::ReportInfo>(*answer).report_id;
      run.record["report_error"] = "";
    } else if (answer.ok()) {
      run.record["report_error"] =
          std::string("the report service answered with a ") + codec::BodyName(*answer) + " body";
    } else {
      run.record["report_error"] = answer.status().ToString();
    }
    metrics_
        .Counter("reports_total", "Reports asked of the report service, by result",
                 {{"result", Str(run.record, "report_id").empty() ? "error" : "ok"}})
        .Inc();
    run.record.erase("report_pending");
    run.dirty = true;
    Persist(run).IgnoreError();  // retried from TickRun
    return;
  }

  const std::size_t i = c.index;
  const StepSpec& spec = run.wf->steps[i];
  if (auto sit = run.sent_at.find(i); sit != run.sent_at.end()) {
    metrics_
        .Histogram("step_duration_seconds", "Time from sending a step to its answer, by service",
                   kStepBuckets, {{"service", spec.service}})
        .Observe(std::chrono::duration<double>(clock_.Now() - sit->second).count());
    run.sent_at.erase(sit);
  }
  json& s = run.step(i);
  if (!answer.ok()) {
    const core::Status& st = answer.status();
    const int attempts = s["attempts"].get<int>();
    if (Retryable(st.code()) && attempts <= spec.retries) {
      auto wait = options_.retry_backoff * (1LL << std::min(attempts - 1, 16));
      if (wait > options_.retry_backoff_max) wait = options_.retry_backoff_max;
      run.retry_at[i] = clock_.Now() + wait;
      s["state"] = "pending";
      s["last_error"] = ErrorJson(st);
      metrics_
          .Counter("step_retries_total", "Step attempts repeated after a retryable error",
                   {{"service", spec.service}})
          .Inc();
      run.dirty = true;
      Persist(run).IgnoreError();
      return;
    }
    FinishStep(run, i, st);
    return;
  }
  const std::string_view expected = AnswerTypeOf(spec.call);
  const std::string_view got = codec::BodyName(*answer);
  if (got != expected) {
    FinishStep(
        run, i,
        core::Internal("the " + spec.service + " service answered " + spec.call + " with a " +
                           std::string(got) + " body (expected " + std::string(expected) + ")",
                       "steps." + spec.id));
    return;
  }
  FinishStep(run, i, domain::BodyToJson(*answer));
}

void Engine::FinishStep(Run& run, std::size_t i, core::Result<json> output) {
  const StepSpec& spec = run.wf->steps[i];
  json& s = run.step(i);
  s["finished_ms"] = clock_.WallMillis();
  s.erase("last_error");
  if (output.ok()) {
    s["state"] = "succeeded";
    s.erase("error");
    const json& out = *output;
    if (out.is_object()) {
      auto m = out.find("model");
      if (m != out.end() && m->is_object()) {
        json prov = *m;
        auto se = out.find("side_effect_model");
        if (se != out.end() && se->is_object() && !Str(*se, "study_id").empty()) {
          prov["side_effect_model"] = *se;
        }
        s["provenance"] = std::move(prov);
      }
    }
    run.outputs[spec.id] = std::move(*output);
    run.unsaved_outputs.insert(spec.id);
  } else {
    s["state"] = "failed";
    s["error"] = ErrorJson(output.status());
  }
  metrics_
      .Counter("steps_total", "Workflow steps finished, by service and state",
               {{"service", spec.service}, {"state", Str(s, "state")}})
      .Inc();
  run.dirty = true;
  Persist(run).IgnoreError();  // retried from TickRun
}

void Engine::MaybeFinishRun(Run& run) {
  if (run.finished || run.dirty || !run.in_flight.empty()) return;
  const Workflow& wf = *run.wf;
  std::size_t succeeded = 0, failed = 0, skipped = 0;
  bool failure = false;
  for (std::size_t i = 0; i < wf.steps.size(); ++i) {
    const json& s = run.step(i);
    const std::string st = Str(s, "state");
    if (!Terminal(st)) return;
    if (st == "succeeded") ++succeeded;
    if (st == "failed") {
      ++failed;
      failure = true;
    }
    if (st == "skipped") {
      ++skipped;
      if (Str(s, "skipped_by") != "condition") failure = true;
    }
  }
  std::string summary;
  bool output_failed = false;
  if (!wf.output_call.empty()) {
    core::Result<json> out = core::Internal("not run");
    const LocalFunction* fn = functions_.Find(wf.output_call);
    if (fn == nullptr) {
      out = core::FailedPrecondition("no local function '" + wf.output_call + "'", "output.call");
    } else {
      auto args = ResolveTemplate(wf.output_with, Scope(run), "output.with");
      if (!args.ok()) {
        out = args.status();
      } else {
        try {
          out = (*fn)(*args, RecordWithOutputs(run));
        } catch (const std::exception& e) {
          out = core::Internal(std::string("output function threw: ") + e.what(), "output.call");
        }
      }
    }
    if (out.ok()) {
      if (out->is_object() && out->contains("summary") && (*out)["summary"].is_string()) {
        summary = (*out)["summary"].get<std::string>();
      }
      run.record["output"] = std::move(*out);
    } else {
      output_failed = true;
      run.record["output_error"] = ErrorJson(out.status());
      summary = "no output: " + out.status().message();
    }
  }
  if (summary.empty()) {
    summary =
        std::to_string(succeeded) + " of " + std::to_string(wf.steps.size()) + " steps succeeded";
    if (failed > 0) summary += ", " + std::to_string(failed) + " failed";
    if (skipped > 0) summary += ", " + std::to_string(skipped) + " skipped";
  }
  std::string state = "succeeded";
  if (failure && succeeded == 0) {
    state = "failed";
  } else if (failure || output_failed) {
    state = "partial";
  }
  run.record["state"] = state;
  run.record["summary"] = summary;
  run.record["finished_ms"] = clock_.WallMillis();
  if (wf.report == "candidate") run.record["report_pending"] = true;
  run.finished = true;
  run.dirty = true;
  metrics_
      .Counter("runs_total", "Workflow runs finished, by workflow and final state",
               {{"workflow", wf.name}, {"state", state}})
      .Inc();
  Persist(run).IgnoreError();  // retried from TickRun
}

void Engine::RequestReport(Run& run) {
  const std::uint64_t token = core::SplitMix64(id_state_);
  run.in_flight[kReportCall] = token;
  std::weak_ptr<Inbox> inbox = inbox_;
  caller_.Call("report", codec::CreateReport{"candidate", run.id}, options_.report_timeout,
               [inbox, run_id = run.id, token](core::Result<codec::Body>&& answer) {
                 if (auto in = inbox.lock()) {
                   in->queue.push_back(Completion{run_id, kReportCall, token, std::move(answer)});
                 }
               });
}

core::Status Engine::Persist(Run& run) {
  core::WriteBatch batch;
  for (const std::string& step_id : run.unsaved_outputs) {
    FEDRX_ASSIGN_OR_RETURN(core::Key k, core::keys::WorkflowStepOutput(run.id, step_id));
    batch.Set(k, Dump(run.outputs[step_id]));
  }
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::WorkflowRun(run.id));
  batch.Set(key, Dump(run.record));
  if (run.finished && !run.report_pending()) {
    batch.SetRemove(core::keys::WorkflowActiveRuns(), run.id);
  }
  core::Status s = store_.Apply(batch);
  if (!s.ok()) {
    store_errors_.Inc();
    metrics_.CountError("state_store", core::StatusCodeName(s.code()));
    run.dirty = true;
    return s;
  }
  run.unsaved_outputs.clear();
  run.dirty = false;
  return core::Status::Ok();
}

// --- Reading ----------------------------------------------------------------

json Engine::Scope(const Run& run) const {
  json steps = json::object();
  for (const auto& [id, out] : run.outputs) steps[id] = out;
  return {{"input", run.record.contains("input") ? run.record.at("input") : json::object()},
          {"steps", std::move(steps)}};
}

json Engine::RecordWithOutputs(const Run& run) const {
  json r = run.record;
  for (json& s : r["steps"]) {
    auto it = run.outputs.find(Str(s, "id"));
    if (it != run.outputs.end() && Str(s, "state") == "succeeded") s["output"] = it->second;
  }
  return r;
}

codec::WorkflowRun Engine::ToMessage(const json& record,
                                     const std::map<std::string, json>* outputs) const {
  codec::WorkflowRun m;
  m.run_id = Str(record, "run_id");
  m.workflow = Str(record, "workflow");
  m.workflow_version = Str(record, "workflow_version");
  m.state = Str(record, "state");
  m.created_ms = Int(record, "created_ms");
  m.finished_ms = Int(record, "finished_ms");
  m.summary = Str(record, "summary");
  m.report_id = Str(record, "report_id");
  m.report_error = Str(record, "report_error");
  if (record.is_object() && record.contains("steps") && record.at("steps").is_array()) {
    for (const json& s : record.at("steps")) {
      codec::StepState st;
      st.step = Str(s, "id");
      st.service = Str(s, "service");
      st.call = Str(s, "call");
      st.state = Str(s, "state");
      st.attempts = static_cast<std::uint32_t>(std::max<std::int64_t>(0, Int(s, "attempts")));
      st.started_ms = Int(s, "started_ms");
      st.finished_ms = Int(s, "finished_ms");
      if (st.state == "failed" && s.contains("error")) {
        st.error_code = Str(s.at("error"), "code");
        st.error = Str(s.at("error"), "message");
        st.error_where = Str(s.at("error"), "where");
      } else if (st.state == "skipped") {
        st.error = Str(s, "skip_reason");
      } else if (s.is_object() && s.contains("last_error")) {
        // Waiting to be tried again: why the last attempt failed.
        st.error_code = Str(s.at("last_error"), "code");
        st.error = Str(s.at("last_error"), "message");
        st.error_where = Str(s.at("last_error"), "where");
      }
      if (outputs != nullptr && st.state == "succeeded") {
        if (auto it = outputs->find(st.step); it != outputs->end()) {
          st.output_json = Dump(it->second);
        }
      }
      m.steps.push_back(std::move(st));
    }
  }
  if (outputs != nullptr && record.is_object() && record.contains("output")) {
    m.output_json = Dump(record.at("output"));
  }
  return m;
}

core::Result<json> Engine::GetRecord(std::string_view run_id) {
  FEDRX_RETURN_IF_ERROR(core::ValidateId(run_id, "run_id"));
  if (auto it = runs_.find(run_id); it != runs_.end()) return RecordWithOutputs(*it->second);
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::WorkflowRun(run_id));
  FEDRX_ASSIGN_OR_RETURN(std::optional<std::string> text, store_.Get(key));
  if (!text) {
    return core::NotFound("no workflow run '" + std::string(run_id) + "'", "run_id");
  }
  json record = json::parse(*text, nullptr, false);
  if (record.is_discarded() || !record.is_object()) {
    return core::Status(core::StatusCode::kDataLoss, "the run record is not a JSON object",
                        key.str());
  }
  if (!record.contains("steps") || !record["steps"].is_array()) return record;
  std::vector<core::Key> keys;
  std::vector<std::size_t> index;
  for (std::size_t i = 0; i < record["steps"].size(); ++i) {
    const json& s = record["steps"][i];
    if (Str(s, "state") != "succeeded") continue;
    auto k = core::keys::WorkflowStepOutput(run_id, Str(s, "id"));
    if (!k.ok()) continue;
    keys.push_back(std::move(*k));
    index.push_back(i);
  }
  if (!keys.empty()) {
    FEDRX_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> outs, store_.GetMany(keys));
    for (std::size_t k = 0; k < outs.size(); ++k) {
      if (!outs[k]) continue;
      json out = json::parse(*outs[k], nullptr, false);
      if (!out.is_discarded()) record["steps"][index[k]]["output"] = std::move(out);
    }
  }
  return record;
}

core::Result<codec::WorkflowRun> Engine::Get(std::string_view run_id, bool include_outputs) {
  if (auto it = runs_.find(run_id); it != runs_.end()) {
    return ToMessage(it->second->record, include_outputs ? &it->second->outputs : nullptr);
  }
  auto record = GetRecord(run_id);
  if (!record.ok()) {
    core::Status s = record.status();
    if (s.where() == "run_id") s = core::Status(s.code(), s.message(), "GetWorkflowRun.run_id");
    return s;
  }
  if (!include_outputs) return ToMessage(*record, nullptr);
  std::map<std::string, json> outputs;
  if (record->contains("steps") && (*record)["steps"].is_array()) {
    for (const json& s : (*record)["steps"]) {
      if (s.is_object() && s.contains("output")) outputs[Str(s, "id")] = s.at("output");
    }
  }
  return ToMessage(*record, &outputs);
}

core::Result<std::vector<codec::WorkflowRun>> Engine::List(std::string_view workflow,
                                                           std::uint32_t limit) {
  if (limit == 0) limit = 20;
  limit = std::min(limit, options_.max_list);
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                         store_.SetMembers(core::keys::WorkflowRunIndex()));
  std::vector<core::Key> keys;
  std::vector<std::string> stored_ids;
  std::vector<json> records;
  for (const std::string& id : ids) {
    if (auto it = runs_.find(id); it != runs_.end()) {
      records.push_back(it->second->record);
      continue;
    }
    auto k = core::keys::WorkflowRun(id);
    if (!k.ok()) continue;
    keys.push_back(std::move(*k));
  }
  constexpr std::size_t kChunk = 256;
  for (std::size_t from = 0; from < keys.size(); from += kChunk) {
    std::vector<core::Key> chunk(keys.begin() + from,
                                 keys.begin() + std::min(keys.size(), from + kChunk));
    FEDRX_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> texts, store_.GetMany(chunk));
    for (const auto& t : texts) {
      if (!t) continue;
      json r = json::parse(*t, nullptr, false);
      if (r.is_discarded() || !r.is_object()) continue;
      records.push_back(std::move(r));
    }
  }
  std::vector<const json*> chosen;
  for (const json& r : records) {
    if (workflow.empty() || Str(r, "workflow") == workflow) chosen.push_back(&r);
  }
  std::sort(chosen.begin(), chosen.end(), [](const json* a, const json* b) {
    const auto ca = Int(*a, "created_ms"), cb = Int(*b, "created_ms");
    if (ca != cb) return ca > cb;
    return Str(*a, "run_id") > Str(*b, "run_id");
  });
  if (chosen.size() > limit) chosen.resize(limit);
  std::vector<codec::WorkflowRun> out;
  out.reserve(chosen.size());
  for (const json* r : chosen) out.push_back(ToMessage(*r, nullptr));
  return out;
}

}  // namespace fedrx::orchestrator
