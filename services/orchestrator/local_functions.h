// The orchestrator's local functions: small computations a workflow runs between domain calls
// (organ classes flagged by a toxicity panel, dose levels from the MRSD) and the output
// functions that turn a finished run into an evidenced answer (the first-in-human verdict, the
// lead-triage ranking). Pure functions over JSON; a LocalFunctions table is safe to read from
// many threads once built.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "services/core/status.h"

namespace fedrx::orchestrator {

// args = the step's resolved `with` (or the workflow's resolved output.with);
// run = the run record JSON the engine keeps (run_id, workflow, input, steps[] with id, state,
// error, skip_reason) with each succeeded step's output inlined as steps[i].output. A function
// never throws; bad args = InvalidArgument naming args.<field>.
using LocalFunction = std::function<core::Result<nlohmann::json>(const nlohmann::json& args,
                                                                 const nlohmann::json& run)>;

class LocalFunctions {
 public:
  // Replaces a function of the same name.
  void Register(std::string name, LocalFunction fn);
  // nullptr if unknown. The pointer stays valid while the table is not modified.
  const LocalFunction* Find(std::string_view name) const;
  std::vector<std::string> Names() const;  // sorted

 private:
  std::map<std::string, LocalFunction, std::less<>> fns_;
};

// flag_organ_classes, dose_levels, first_in_human_verdict, rank_candidates.
LocalFunctions BuiltinLocalFunctions();

// --- The built-in functions, callable directly (tests, tools) ---------------------------------

// flag_organ_classes. args: {panels: [ToxicityPanel JSON, ...]} or {panel: ToxicityPanel JSON},
// threshold in [0, 1] (default 0.5), structure_index (default 0). A task of the structure is
// flagged when its probability >= threshold or its prediction set is "positive"; each flagged
// task maps to the organ classes of services/reverse/organ_classes.h whose assay families
// (prefixes) it belongs to. Output:
//   {organ_classes: [names, strongest evidence first], flagged_task_count, threshold,
//    structure_index, structure, evidence: [{task, panel, panel_index, field, probability,
//    prediction_set, p_positive, organ_classes}], classes: [{organ_class, max_probability,
//    tasks}]}
// where `field` is the path of the task's probability inside its panel JSON. A structure the
// panel refused (error_code or error set) is InvalidArgument naming it.
core::Result<nlohmann::json> FlagOrganClasses(const nlohmann::json& args,
                                              const nlohmann::json& run);

// dose_levels. args: {mrsd_mg > 0, multiples (default [1, 3, 10, 30, 60]; increasing, > 0, the
// first <= 1 so that the trial starts at or below the MRSD)}; optionally {model: PkModel JSON,
// tox_auc50 (>= 0; 0 = derive), tox_auc50_multiple (default 30), response_auc50 (>= 0; 0 =
// derive), response_auc50_multiple (default 10)}. Output {dose_mg, start_dose_mg, mrsd_mg,
// multiples}, and with a model {start_auc_mg_h_per_l, tox_auc50, response_auc50, assumptions}:
// the typical AUC(0-inf) at the start dose is F·D/CL (F = bioavailability for oral_1cmt, else
// 1), and an exposure threshold not given is that AUC times its multiple.
core::Result<nlohmann::json> DoseLevels(const nlohmann::json& args, const nlohmann::json& run);

// first_in_human_verdict over a run of deploy/workflows/first-in-human.yaml (steps tox, toxcast,
// clinical, dose, flags, reverse, levels, virtual_trial, escalation_3p3, looked up by id; any
// may be missing or failed). args (all optional): ct_tox_threshold (0.5), p_dlt_limit (0.05),
// structure_index (0). Output {verdict, summary, rules, findings: [{label, value, unit, step,
// field, model?}], conditions, missing: [{step, reason}], notes, recommended_dose_mg?}. Each
// finding's value is the value at `field` (a path like "clinical[0].tasks[1].probability") of
// step `step`'s output; `model` is the answering model (study_id, model_version) when the output
// names one. The rules, first applicable wins: do_not_proceed (CT_TOX prediction set "positive"
// or probability >= ct_tox_threshold), incomplete (tox, clinical or dose without output, or the
// structure refused), proceed_with_conditions (organ classes flagged, out of domain, CT_TOX not
// excluded, P(DLT) at the start dose > p_dlt_limit, a supporting step missing), proceed. When the
// flags step has no output the organ classes are flagged from the panels that answered, at
// input.flag_threshold.
core::Result<nlohmann::json> FirstInHumanVerdict(const nlohmann::json& args,
                                                 const nlohmann::json& run);

// rank_candidates over a run of deploy/workflows/lead-triage.yaml (input.structures,
// input.names; steps tox, toxcast, clinical). args (all optional): threshold (default
// input.flag_threshold, else 0.5). Output {ranking: [{rank, structure, name?, score, ct_tox,
// prediction_set, approval_probability, flags, organ_classes, in_domain, reasons}], rule,
// summary, missing}; lower score ranks first, the formula is in `rule`.
core::Result<nlohmann::json> RankCandidates(const nlohmann::json& args, const nlohmann::json& run);

}  // namespace fedrx::orchestrator
