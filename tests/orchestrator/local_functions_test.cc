// Local functions of workflows: organ-class flagging through the reverse library's table, dose
// levels and the derived exposure thresholds, the first-in-human verdict over hand-made runs
// (proceed, conditions, do not proceed, incomplete; every finding traceable to its step and
// field), the lead-triage ranking; and the two built-in workflow files, loaded and dry-run so
// that every request they build decodes into the message structs.
#include "services/orchestrator/local_functions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "services/domain/domain_json.h"
#include "services/orchestrator/expression.h"
#include "services/orchestrator/workflow.h"

namespace fedrx::orchestrator {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// --- Hand-made service answers (shapes of services/domain/domain_json.cc) ---------------------

json Task(const std::string& name, double probability, const std::string& set,
          double p_positive = 0.5) {
  return {{"task", name},          {"probability", probability},
          {"p_negative", 0.5},     {"p_positive", p_positive},
          {"prediction_set", set}, {"credibility", 0.5},
          {"confidence", 0.5},     {"calibrated", true}};
}

json Domain(bool in_domain) {
  return {{"score", in_domain ? 0.2 : 0.9},
          {"p_value", in_domain ? 0.4 : 0.003},
          {"in_domain", in_domain},
          {"threshold", 0.01},
          {"calibrated", true}};
}

json Model(const std::string& study, int version) {
  return {
      {"study_id", study},          {"model_version", version},       {"preparation_hash", "h"},
      {"calibration_samples", 500}, {"calibration_version", version}, {"method", "Mondrian ICP"}};
}

json Structure(const std::string& smiles, std::vector<json> tasks, bool in_domain = true) {
  return {{"input", smiles},
          {"canonical_smiles", smiles},
          {"tasks", std::move(tasks)},
          {"domain", Domain(in_domain)}};
}

json Refused(const std::string& smiles) {
  return {
      {"input", smiles},
      {"error",
       {{"code", "invalid_argument"}, {"message", "unparseable SMILES"}, {"where", "smiles[0]"}}}};
}

json Panel(const std::string& panel, std::vector<json> results, int version = 3) {
  json names = json::array();
  if (!results.empty() && results[0].contains("tasks")) {
    for (const json& t : results[0]["tasks"]) names.push_back(t["task"]);
  }
  return {{"panel", panel},     {"model", Model(panel + "-study", version)},
          {"confidence", 0.9},  {"tasks", names},
          {"results", results}, {"working", json::object()}};
}

json Clinical(double ct_tox, const std::string& set, double approval = 0.9, bool in_domain = true) {
  json s = Structure(
      "CCO", {Task("FDA_APPROVED", approval, "positive"), Task("CT_TOX", ct_tox, set)}, in_domain);
  return {{"model", Model("clintox-study", 5)},
          {"confidence", 0.9},
          {"clinical", json::array({s})},
          {"success", json::array({{{"therapeutic_area", "oncology"},
                                    {"risk", ct_tox},
                                    {"log_likelihood_ratio", -0.4},
                                    {"transitions", json::array()},
                                    {"base_likelihood_of_approval", 0.051},
                                    {"adjusted_likelihood_of_approval", 0.066},
                                    {"source", "Wong et al. 2019"}}})},
          {"side_effects_unavailable", "no SIDER study is served"},
          {"working", json::object()}};
}

// Rat NOAEL 20 mg/kg: HED 20 x 6/37 = 3.243 mg/kg, MRSD 0.3243 mg/kg, x 60 kg = 19.46 mg.
json Dose() {
  return {{"heds", json::array({{{"species", "dog"},
                                 {"noael_mg_per_kg", 10},
                                 {"body_weight_kg", 10},
                                 {"km", 20},
                                 {"conversion_factor", 1.85},
                                 {"hed_mg_per_kg", 5.405},
                                 {"source", ""}},
                                {{"species", "rat"},
                                 {"noael_mg_per_kg", 20},
                                 {"body_weight_kg", 0.15},
                                 {"km", 6},
                                 {"conversion_factor", 6.17},
                                 {"hed_mg_per_kg", 3.243},
                                 {"source", "PC201708"}}})},
          {"chosen_species", "rat"},
          {"species_reason", "most sensitive species (lowest HED)"},
          {"hed_mg_per_kg", 3.243},
          {"safety_factor", 10},
          {"safety_factor_reason", "default"},
          {"mrsd_mg_per_kg", 0.3243},
          {"human_weight_kg", 60},
          {"mrsd_mg", 19.46},
          {"working", json::object()}};
}

json Oc(const std::string& design, std::vector<double> selection, double dlts, double patients) {
  return {{"design", design},
          {"trials", 500},
          {"seed", 1},
          {"selection_pct", selection},
          {"patients_mean", json::array()},
          {"dlt_mean", json::array()},
          {"early_stop_pct", 0.4},
          {"correct_selection_pct", 50},
          {"patients_total_mean", patients},
          {"dlt_total_mean", dlts},
          {"working", json::object()}};
}

json VirtualTrial(double p_dlt_start) {
  return {{"dose_mg", {19.46, 58.38, 194.6, 583.8, 1167.6}},
          {"auc_median", json::array()},
          {"auc_p05", json::array()},
          {"auc_p95", json::array()},
          {"p_dlt", {p_dlt_start, 0.01, 0.1, 0.45, 0.75}},
          {"p_response", json::array()},
          {"oc", Oc("boin", {2, 10, 55, 30, 3}, 5.1, 27.3)},
          {"working", json::object()}};
}

json Reverse() {
  return {{"organ_classes",
           json::array(
               {{{"organ_class", "Hepatobiliary disorders"},
                 {"matched_terms", json::array()},
                 {"assays", json::array({{{"clinical_label", "CT_TOX"},
                                          {"assay", "SR-ARE"},
                                          {"sufficient_evidence", true},
                                          {"odds_ratio", 3.1},
                                          {"q_value", 0.02},
                                          {"significant", true}}})},
                 {"endpoints", json::array({{{"domain", "LB"}, {"code", "ALT"}, {"note", ""}},
                                            {{"domain", "LB"}, {"code", "AST"}, {"note", ""}},
                                            {{"domain", "MI"}, {"code", "LIVER"}, {"note", ""}}})},
                 {"none_reason", ""},
                 {"rationale", ""},
                 {"reference", ""}}})},
          {"label_associations", json::array()},
          {"counts_study", "pair-counts"},
          {"counts_version", 2},
          {"counts_sites", 3},
          {"counts_compounds", 1400},
          {"counts_secure", true},
          {"working", json::object()}};
}

json Succeeded(const std::string& id, json output) {
  return {{"id", id}, {"state", "succeeded"}, {"attempts", 1}, {"output", std::move(output)}};
}

json Failed(const std::string& id, const std::string& code, const std::string& message) {
  return {{"id", id},
          {"state", "failed"},
          {"attempts", 3},
          {"error", {{"code", code}, {"message", message}, {"where", ""}}}};
}

// A skipped step as the engine records it: skipped_by "condition" or "failure".
json Skipped(const std::string& id, const std::string& why, const std::string& by) {
  return {{"id", id}, {"state", "skipped"}, {"skip_reason", why}, {"skipped_by", by}};
}

json Tox21(double sr_are, double nr_ahr, bool in_domain = true) {
  return Panel("tox21",
               {Structure("CCO",
                          {Task("SR-ARE", sr_are, sr_are >= 0.5 ? "both" : "negative"),
                           Task("NR-AhR", nr_ahr, "negative"), Task("SR-HSE", 0.1, "negative")},
                          in_domain)});
}

json ToxCast() {
  return Panel("toxcast",
               {Structure("CCO", {Task("TOX21_ERa_BLA_Agonist_ratio", 0.05, "negative")})});
}

// A whole first-in-human run: `flagged` puts SR-ARE at 0.8 (Hepatobiliary, Skin, Renal).
json FihRun(bool flagged, double ct_tox, const std::string& ct_set, double p_dlt_start = 0.001) {
  const json tox = Tox21(flagged ? 0.8 : 0.2, 0.1);
  auto flags = FlagOrganClasses({{"panels", {tox, ToxCast()}}, {"threshold", 0.5}}, json::object());
  EXPECT_TRUE(flags.ok()) << flags.status();
  json steps = json::array({Succeeded("tox", tox), Succeeded("toxcast", ToxCast()),
                            Succeeded("clinical", Clinical(ct_tox, ct_set)),
                            Succeeded("dose", Dose()), Succeeded("flags", *flags)});
  if (flagged) {
    steps.push_back(Succeeded("reverse", Reverse()));
  } else {
    steps.push_back(
        Skipped("reverse", "condition false: len(steps.flags.organ_classes) > 0", "condition"));
  }
  auto levels = DoseLevels({{"mrsd_mg", 19.46}}, json::object());
  EXPECT_TRUE(levels.ok()) << levels.status();
  steps.push_back(Succeeded("levels", *levels));
  steps.push_back(Succeeded("virtual_trial", VirtualTrial(p_dlt_start)));
  steps.push_back(Succeeded("escalation_3p3", Oc("3+3", {5, 20, 50, 20, 5}, 3.2, 14.1)));
  return {{"run_id", "run-1"},
          {"workflow", "first-in-human"},
          {"state", "succeeded"},
          {"input", {{"structure", "CCO"}, {"flag_threshold", 0.5}}},
          {"steps", steps}};
}

json& StepOf(json& run, const std::string& id) {
  for (json& s : run["steps"]) {
    if (s["id"] == id) return s;
  }
  ADD_FAILURE() << "no step " << id;
  return run;
}

// The value at a path such as "results[0].tasks[2].probability", walked independently of the
// function under test; nullptr when the path does not exist.
const json* Walk(const json& root, const std::string& path) {
  const json* cur = &root;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') {
      ++i;
    } else if (path[i] == '[') {
      const std::size_t close = path.find(']', i);
      const std::size_t k = std::stoul(path.substr(i + 1, close - i - 1));
      if (!cur->is_array() || k >= cur->size()) return nullptr;
      cur = &(*cur)[k];
      i = close + 1;
    } else {
      std::size_t end = path.find_first_of(".[", i);
      if (end == std::string::npos) end = path.size();
      const std::string key = path.substr(i, end - i);
      if (!cur->is_object() || !cur->contains(key)) return nullptr;
      cur = &(*cur)[key];
      i = end;
    }
  }
  return cur;
}

std::vector<std::string> Strings(const json& array) {
  std::vector<std::string> out;
  for (const json& v : array) out.push_back(v.get<std::string>());
  return out;
}

// --- flag_organ_classes -----------------------------------------------------------------------

// Tasks at or above the threshold, or with a "positive" prediction set, map to the organ classes
// whose assay families (services/reverse/organ_classes.cc) contain them: SR-ARE -> hepatobiliary,
// skin, renal; NR-AhR -> neoplasms; NR-AR -> reproductive; ATG_PXRE (prefix ATG_PXR) ->
// hepatobiliary. Classes are ordered by their strongest task's probability, then table order.
TEST(FlagOrganClassesTest, MapsFlaggedTasksToOrganClassesStrongestFirst) {
  const json tox21 = Panel(
      "tox21", {Structure("CCO", {Task("SR-ARE", 0.8, "both"), Task("NR-AhR", 0.6, "both"),
                                  Task("NR-AR", 0.2, "positive"), Task("SR-HSE", 0.1, "negative"),
                                  Task("NR-AR-LBD", 0.49, "both")})});
  const json toxcast = Panel("toxcast", {Structure("CCO", {Task("ATG_PXRE_CIS_up", 0.9, "both")})});
  auto out = FlagOrganClasses({{"panels", {tox21, toxcast}}, {"threshold", 0.5}}, json::object());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Strings((*out)["organ_classes"]),
              ElementsAre("Hepatobiliary disorders", "Skin and subcutaneous tissue disorders",
                          "Renal and urinary disorders",
                          "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
                          "Reproductive system and breast disorders"));
  EXPECT_EQ((*out)["flagged_task_count"], 4);
  const json& ev = (*out)["evidence"];
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0]["task"], "SR-ARE");
  EXPECT_EQ(ev[0]["panel"], "tox21");
  EXPECT_EQ(ev[0]["field"], "results[0].tasks[0].probability");
  EXPECT_DOUBLE_EQ(ev[0]["probability"].get<double>(), 0.8);
  EXPECT_THAT(Strings(ev[0]["organ_classes"]),
              ElementsAre("Hepatobiliary disorders", "Skin and subcutaneous tissue disorders",
                          "Renal and urinary disorders"));
  EXPECT_EQ(ev[2]["task"], "NR-AR");  // flagged by its prediction set alone
  EXPECT_EQ(ev[2]["prediction_set"], "positive");
  EXPECT_THAT(Strings(ev[2]["organ_classes"]),
              ElementsAre("Reproductive system and breast disorders"));
  EXPECT_EQ(ev[3]["task"], "ATG_PXRE_CIS_up");
  EXPECT_EQ(ev[3]["panel_index"], 1);
  EXPECT_THAT(Strings(ev[3]["organ_classes"]), ElementsAre("Hepatobiliary disorders"));
  EXPECT_DOUBLE_EQ((*out)["classes"][0]["max_probability"].get<double>(), 0.9);
  EXPECT_THAT(Strings((*out)["classes"][0]["tasks"]), ElementsAre("SR-ARE", "ATG_PXRE_CIS_up"));
}

// The threshold is inclusive: 0.5 flags a task at 0.5; a hair above does not; "both" alone
// never flags. A threshold outside [0, 1] is refused naming args.threshold.
TEST(FlagOrganClassesTest, ThresholdIsInclusiveAndChecked) {
  const json panel = Panel("tox21", {Structure("CCO", {Task("SR-p53", 0.5, "both")})});
  auto at = FlagOrganClasses({{"panel", panel}, {"threshold", 0.5}}, json::object());
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ((*at)["flagged_task_count"], 1);
  EXPECT_THAT(Strings((*at)["organ_classes"]),
              ElementsAre("Gastrointestinal disorders",
                          "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
                          "Blood and lymphatic system disorders"));
  auto above = FlagOrganClasses({{"panel", panel}, {"threshold", 0.500001}}, json::object());
  ASSERT_TRUE(above.ok()) << above.status();
  EXPECT_EQ((*above)["flagged_task_count"], 0);
  EXPECT_TRUE((*above)["organ_classes"].empty());

  auto bad = FlagOrganClasses({{"panel", panel}, {"threshold", 1.5}}, json::object());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().where(), "args.threshold");
  auto none = FlagOrganClasses({{"threshold", 0.5}}, json::object());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().where(), "args.panels");
}

// A structure the tox service refused cannot be flagged: InvalidArgument naming the structure
// and where it is, in both refusal shapes (domain JSON "error" object, codec "error_code").
TEST(FlagOrganClassesTest, RefusedStructureIsInvalidArgument) {
  auto out = FlagOrganClasses({{"panels", {Panel("tox21", {Refused("C1CC")})}}}, json::object());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("'C1CC'"));
  EXPECT_EQ(out.status().where(), "args.panels[0].results[0]");

  json codec_shape = Panel("tox21", {{{"input", "XYZ"},
                                      {"error_code", "invalid_argument"},
                                      {"error", "bad atom"},
                                      {"tasks", json::array()}}});
  auto out2 = FlagOrganClasses({{"panel", codec_shape}}, json::object());
  ASSERT_FALSE(out2.ok());
  EXPECT_THAT(out2.status().message(), HasSubstr("'XYZ'"));
  EXPECT_EQ(out2.status().where(), "args.panel.results[0]");

  auto index =
      FlagOrganClasses({{"panel", Tox21(0.1, 0.1)}, {"structure_index", 2}}, json::object());
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().where(), "args.panel.results");
}

// --- dose_levels ------------------------------------------------------------------------------

// MRSD x [1, 3, 10, 30, 60] by default; with a PK model the start-dose AUC is F·D/CL and the
// exposure thresholds not given are 30x (toxicity) and 10x (response) that AUC.
TEST(DoseLevelsTest, MultiplesOfTheMrsdAndDerivedExposures) {
  auto plain = DoseLevels({{"mrsd_mg", 20}}, json::object());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)["dose_mg"], json({20.0, 60.0, 200.0, 600.0, 1200.0}));
  EXPECT_DOUBLE_EQ((*plain)["start_dose_mg"].get<double>(), 20);
  EXPECT_FALSE(plain->contains("tox_auc50"));

  const json model = {{"kind", "oral_1cmt"},
                      {"cl_l_per_h", 10},
                      {"v_l", 50},
                      {"ka_per_h", 1},
                      {"bioavailability", 0.8}};
  auto derived =
      DoseLevels({{"mrsd_mg", 20}, {"multiples", {0.5, 1, 2}}, {"model", model}, {"tox_auc50", 0}},
                 json::object());
  ASSERT_TRUE(derived.ok()) << derived.status();
  EXPECT_EQ((*derived)["dose_mg"], json({10.0, 20.0, 40.0}));
  EXPECT_DOUBLE_EQ((*derived)["start_auc_mg_h_per_l"].get<double>(), 0.8 * 10 / 10);
  EXPECT_DOUBLE_EQ((*derived)["tox_auc50"].get<double>(), 30 * 0.8);
  EXPECT_DOUBLE_EQ((*derived)["response_auc50"].get<double>(), 10 * 0.8);
  EXPECT_EQ((*derived)["assumptions"].size(), 3u);

  auto given = DoseLevels({{"mrsd_mg", 20}, {"model", model}, {"tox_auc50", 75}}, json::object());
  ASSERT_TRUE(given.ok()) << given.status();
  EXPECT_DOUBLE_EQ((*given)["tox_auc50"].get<double>(), 75);
}

// Bad arguments name their field: MRSD not > 0, multiples not increasing, a first multiple
// above 1 (the trial would start above the MRSD), a model without clearance.
TEST(DoseLevelsTest, RefusesBadArguments) {
  struct Case {
    json args;
    std::string where;
  };
  const std::vector<Case> cases = {
      {{{"mrsd_mg", 0}}, "args.mrsd_mg"},
      {{{"mrsd_mg", "ten"}}, "args.mrsd_mg"},
      {json::object(), "args.mrsd_mg"},
      {{{"mrsd_mg", 5}, {"multiples", {1, 3, 2}}}, "args.multiples[2]"},
      {{{"mrsd_mg", 5}, {"multiples", {1, -3}}}, "args.multiples[1]"},
      {{{"mrsd_mg", 5}, {"multiples", json::array()}}, "args.multiples"},
      {{{"mrsd_mg", 5}, {"multiples", {2, 3}}}, "args.multiples[0]"},
      {{{"mrsd_mg", 5}, {"model", {{"kind", "oral_1cmt"}}}}, "args.model.cl_l_per_h"},
      {{{"mrsd_mg", 5},
        {"model", {{"kind", "iv_bolus_1cmt"}, {"cl_l_per_h", 5}}},
        {"tox_auc50", -1}},
       "args.tox_auc50"},
  };
  for (const Case& c : cases) {
    auto out = DoseLevels(c.args, json::object());
    ASSERT_FALSE(out.ok()) << c.args.dump();
    EXPECT_EQ(out.status().code(), core::StatusCode::kInvalidArgument) << c.args.dump();
    EXPECT_EQ(out.status().where(), c.where) << c.args.dump();
  }
}

// --- first_in_human_verdict -------------------------------------------------------------------

// No flags, CT_TOX 0.12 "negative", in domain, P(DLT) at the start dose 0.001, reverse skipped by
// its condition (not a gap): proceed, no conditions, nothing missing, and the summary cites the
// MRSD working.
TEST(FirstInHumanVerdictTest, CleanCandidateProceeds) {
  auto v = FirstInHumanVerdict(json::object(), FihRun(false, 0.12, "negative"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)["verdict"], "proceed") << v->dump(2);
  EXPECT_TRUE((*v)["conditions"].empty()) << (*v)["conditions"].dump();
  EXPECT_TRUE((*v)["missing"].empty()) << (*v)["missing"].dump();
  EXPECT_EQ((*v)["summary"],
            "proceed: MRSD 19.5 mg (rat NOAEL 20 mg/kg, SF 10); CT_TOX risk 0.12 (negative); "
            "0 organ classes flagged; P(DLT) at start 0.001; BOIN recommends 195 mg");
  EXPECT_DOUBLE_EQ((*v)["recommended_dose_mg"].get<double>(), 194.6);
  EXPECT_EQ((*v)["rules"].size(), 4u);
  EXPECT_THAT(Strings((*v)["notes"]),
              testing::Contains("escalation designs on the same per-dose P(DLT), per trial: BOIN "
                                "27.3 patients, 5.1 DLTs; 3+3 14.1 patients, 3.2 DLTs"));
}

// SR-ARE at 0.8 flags three organ classes: proceed with conditions, the hepatobiliary condition
// names the endpoints from the reverse answer, the task and the federated association.
TEST(FirstInHumanVerdictTest, FlaggedCandidateProceedsWithConditions) {
  auto v = FirstInHumanVerdict(json::object(), FihRun(true, 0.12, "negative"));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)["verdict"], "proceed_with_conditions");
  const std::vector<std::string> conditions = Strings((*v)["conditions"]);
  ASSERT_EQ(conditions.size(), 3u) << (*v)["conditions"].dump(2);
  EXPECT_EQ(conditions[0],
            "add LB ALT/AST, MI LIVER to the GLP study: Hepatobiliary disorders flagged by SR-ARE "
            "(tox21) probability 0.8, prediction set both; federated association SR-ARE OR 3.1 "
            "(q 0.02)");
  // The skin class is not in the reverse answer: its endpoints come from the table.
  EXPECT_THAT(conditions[1], StartsWith("add MI SKIN, CL CS to the GLP study: Skin and "
                                        "subcutaneous tissue disorders flagged by SR-ARE"));
  EXPECT_THAT((*v)["summary"].get<std::string>(),
              HasSubstr("CT_TOX risk 0.12 (negative); 3 organ classes flagged"));
}

// P(DLT) at the start dose above 0.05 alone is a condition naming the figure.
TEST(FirstInHumanVerdictTest, HighStartDoseDltRiskIsACondition) {
  auto v = FirstInHumanVerdict(json::object(), FihRun(false, 0.12, "negative", 0.08));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)["verdict"], "proceed_with_conditions");
  ASSERT_EQ((*v)["conditions"].size(), 1u);
  EXPECT_EQ((*v)["conditions"][0],
            "the virtual trial's P(DLT) at the start dose 19.5 mg is 0.08 > 0.05: consider a "
            "lower start dose or sentinel dosing");
}

// CT_TOX "positive" at the panel's confidence, or a probability >= 0.5 with an uncertain set:
// do not proceed, the first condition says why. 0.49 "both" is a condition, not a stop.
TEST(FirstInHumanVerdictTest, HighClinicalToxicityDoesNotProceed) {
  auto positive = FirstInHumanVerdict(json::object(), FihRun(false, 0.3, "positive"));
  ASSERT_TRUE(positive.ok()) << positive.status();
  EXPECT_EQ((*positive)["verdict"], "do_not_proceed");
  EXPECT_THAT((*positive)["conditions"][0].get<std::string>(),
              HasSubstr("CT_TOX probability 0.3, prediction set positive"));
  EXPECT_THAT((*positive)["summary"].get<std::string>(),
              StartsWith("do not proceed: MRSD 19.5 mg"));

  auto probable = FirstInHumanVerdict(json::object(), FihRun(false, 0.5, "both"));
  ASSERT_TRUE(probable.ok());
  EXPECT_EQ((*probable)["verdict"], "do_not_proceed");

  auto uncertain = FirstInHumanVerdict(json::object(), FihRun(false, 0.49, "both"));
  ASSERT_TRUE(uncertain.ok());
  EXPECT_EQ((*uncertain)["verdict"], "proceed_with_conditions");
  EXPECT_THAT((*uncertain)["conditions"][0].get<std::string>(),
              HasSubstr("not excluded at the panel's confidence (CT_TOX probability 0.49"));

  // The threshold is an argument of the output function.
  auto strict = FirstInHumanVerdict({{"ct_tox_threshold", 0.4}}, FihRun(false, 0.45, "negative"));
  ASSERT_TRUE(strict.ok());
  EXPECT_EQ((*strict)["verdict"], "do_not_proceed");
}

// The tox step failed (service down) and flags was skipped for it: incomplete, both listed in
// missing with the reason, and the summary says which critical step failed. The organ classes
// are not invented.
TEST(FirstInHumanVerdictTest, FailedToxStepIsIncomplete) {
  json run = FihRun(false, 0.12, "negative");
  StepOf(run, "tox") = Failed("tox", "unavailable", "tox service did not answer");
  StepOf(run, "flags") = Skipped("flags", "needs tox, which failed", "failure");
  auto v = FirstInHumanVerdict(json::object(), run);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)["verdict"], "incomplete");
  const json& missing = (*v)["missing"];
  ASSERT_EQ(missing.size(), 2u) << missing.dump(2);
  EXPECT_EQ(missing[0]["step"], "tox");
  EXPECT_EQ(missing[0]["reason"], "failed (unavailable): tox service did not answer");
  EXPECT_EQ(missing[1]["step"], "flags");
  EXPECT_EQ(missing[1]["reason"], "skipped: needs tox, which failed");
  EXPECT_THAT((*v)["summary"].get<std::string>(),
              StartsWith("incomplete (tox failed): MRSD 19.5 mg"));
}

// Without the flags step (toxcast failed, so flags was skipped) the verdict flags the organ
// classes itself from the tox21 panel, citing the tox step's fields.
TEST(FirstInHumanVerdictTest, FlagsFromTheAnsweredPanelWhenTheFlagsStepIsMissing) {
  json run = FihRun(true, 0.12, "negative");
  StepOf(run, "toxcast") = Failed("toxcast", "not_found", "no toxcast study served");
  StepOf(run, "flags") = Skipped("flags", "needs toxcast, which failed", "failure");
  StepOf(run, "reverse") =
      Skipped("reverse", "needs flags, which was skipped (needs toxcast, which failed)", "failure");
  auto v = FirstInHumanVerdict(json::object(), run);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)["verdict"], "proceed_with_conditions");
  EXPECT_THAT(Strings((*v)["conditions"]),
              testing::Contains(HasSubstr("Hepatobiliary disorders flagged by SR-ARE (tox21)")));
  bool cited = false;
  for (const json& f : (*v)["findings"]) {
    if (f["step"] == "tox" && f["field"] == "results[0].tasks[0].probability") cited = true;
  }
  EXPECT_TRUE(cited);
  EXPECT_EQ((*v)["missing"].size(), 3u);
}

// Every finding names a step and a field, and its value is the value at that field of that
// step's output (walked here independently); findings of model answers carry the model's study
// id and version.
TEST(FirstInHumanVerdictTest, EveryFindingEqualsTheValueAtItsField) {
  json run = FihRun(true, 0.12, "negative");
  json& clinical = StepOf(run, "clinical")["output"];
  clinical.erase("side_effects_unavailable");
  clinical["side_effect_model"] = Model("sider-study", 2);
  clinical["side_effects"] = json::array({Structure(
      "CCO",
      {Task("Hepatobiliary disorders", 0.7, "both"), Task("Eye disorders", 0.1, "negative"),
       Task("Cardiac disorders", 0.4, "both"), Task("Renal and urinary disorders", 0.3, "both")})});
  auto v = FirstInHumanVerdict(json::object(), run);
  ASSERT_TRUE(v.ok()) << v.status();
  std::set<std::string> labels;
  ASSERT_GT((*v)["findings"].size(), 30u);
  for (const json& f : (*v)["findings"]) {
    const std::string step = f["step"], field = f["field"];
    labels.insert(f["label"].get<std::string>());
    const json* output = nullptr;
    for (const json& s : run["steps"]) {
      if (s["id"] == step) output = &s["output"];
    }
    ASSERT_NE(output, nullptr) << f.dump();
    const json* at = Walk(*output, field);
    ASSERT_NE(at, nullptr) << f.dump();
    EXPECT_EQ(*at, f["value"]) << f.dump();
    if (step == "clinical" && field.starts_with("side_effects")) {
      EXPECT_EQ(f["model"]["study_id"], "sider-study");
      EXPECT_EQ(f["model"]["model_version"], 2);
    } else if (step == "clinical") {
      EXPECT_EQ(f["model"]["study_id"], "clintox-study");
      EXPECT_EQ(f["model"]["model_version"], 5);
    }
    if (step == "reverse") {
      EXPECT_EQ(f["model"]["study_id"], "pair-counts");
    }
    if (step == "dose") {
      EXPECT_FALSE(f.contains("model"));
    }
  }
  for (const char* label : {"maximum recommended starting dose (MRSD)",
                            "MRSD per kg",
                            "human equivalent dose (HED) of the species used",
                            "species used",
                            "rat NOAEL",
                            "safety factor",
                            "clinical-toxicity risk (CT_TOX probability)",
                            "CT_TOX prediction set",
                            "approval probability (FDA_APPROVED)",
                            "likelihood of approval from Phase I, base rate for the area",
                            "likelihood of approval from Phase I, adjusted by the predicted risk",
                            "flagged toxicity tasks",
                            "organ classes flagged",
                            "Hepatobiliary disorders: top assay association, SR-ARE odds ratio",
                            "Hepatobiliary disorders: top assay association, SR-ARE q-value (BH)",
                            "BOIN selects 19.5 mg as MTD",
                            "BOIN recommended dose (most often selected)",
                            "BOIN expected DLTs per trial",
                            "3+3 selects 195 mg as MTD",
                            "3+3 expected DLTs per trial",
                            "virtual trial P(DLT) at the start dose",
                            "side effect: Hepatobiliary disorders probability",
                            "side effect: Cardiac disorders probability",
                            "side effect: Renal and urinary disorders probability"}) {
    EXPECT_TRUE(labels.count(label)) << label;
  }
  EXPECT_FALSE(labels.count("side effect: Eye disorders probability"));  // only the top three
}

// Run records of the wrong shape (steps not an array, outputs with wrong types) never throw:
// the verdict is incomplete, every step is listed missing, and no wrongly typed value is cited.
TEST(FirstInHumanVerdictTest, MalformedRunRecordIsIncompleteNotACrash) {
  auto v = FirstInHumanVerdict(json::object(), {{"steps", "nonsense"}});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ((*v)["verdict"], "incomplete");
  EXPECT_EQ((*v)["missing"].size(), 9u);
  EXPECT_EQ((*v)["missing"][0]["reason"], "not in the run");

  json run = FihRun(false, 0.12, "negative");
  StepOf(run, "dose")["output"] = {{"mrsd_mg", "twenty"}, {"heds", 3}, {"chosen_species", 7}};
  StepOf(run, "clinical")["output"]["clinical"] = json::array({{{"input", "CCO"}, {"tasks", 5}}});
  StepOf(run, "tox")["output"]["results"] = "none";
  auto w = FirstInHumanVerdict(json::object(), run);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)["verdict"], "incomplete");
  for (const json& f : (*w)["findings"]) {
    EXPECT_NE(f["label"], "maximum recommended starting dose (MRSD)") << f.dump();
  }
  const LocalFunctions fns = BuiltinLocalFunctions();
  auto r = (*fns.Find("rank_candidates"))(json::object(), run);
  ASSERT_TRUE(r.ok()) << r.status();
  auto bad = FirstInHumanVerdict(json::array(), run);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().where(), "args");
}

// --- rank_candidates --------------------------------------------------------------------------

// Score = CT_TOX + 0.5 if "positive" + 0.05 per flag + 0.1 out of domain, lowest first; a
// structure the clinical service refused ranks last. A: 0.30; B: 0.10 + 2 flags = 0.20;
// C: 0.05 out of domain = 0.15; D refused.
TEST(RankCandidatesTest, RanksByTheStatedScore) {
  json tox = Panel("tox21",
                   {Structure("A", {Task("SR-ARE", 0.1, "negative")}),
                    Structure("B", {Task("SR-ARE", 0.7, "both"), Task("SR-MMP", 0.2, "positive")}),
                    Structure("C", {Task("SR-ARE", 0.1, "negative")}, false), Refused("D")});
  json clinical = Clinical(0.30, "negative");
  clinical["clinical"] = json::array(
      {Structure("A", {Task("CT_TOX", 0.30, "both"), Task("FDA_APPROVED", 0.7, "both")}),
       Structure("B", {Task("CT_TOX", 0.10, "negative")}),
       Structure("C", {Task("CT_TOX", 0.05, "negative")}), Refused("D")});
  const json run = {
      {"input",
       {{"structures", {"A", "B", "C", "D"}}, {"names", {"alpha", "beta", "gamma", "delta"}}}},
      {"steps",
       {Succeeded("tox", tox), Failed("toxcast", "not_found", "no study"),
        Succeeded("clinical", clinical)}}};
  auto out = RankCandidates(json::object(), run);
  ASSERT_TRUE(out.ok()) << out.status();
  const json& r = (*out)["ranking"];
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0]["name"], "gamma");
  EXPECT_NEAR(r[0]["score"].get<double>(), 0.15, 1e-12);
  EXPECT_EQ(r[0]["in_domain"], false);
  EXPECT_THAT(Strings(r[0]["reasons"]),
              testing::Contains("outside the tox21 model's applicability domain"));
  EXPECT_EQ(r[1]["name"], "beta");
  EXPECT_NEAR(r[1]["score"].get<double>(), 0.20, 1e-12);
  EXPECT_EQ(r[1]["flags"], 2);
  EXPECT_EQ(r[2]["name"], "alpha");
  EXPECT_NEAR(r[2]["score"].get<double>(), 0.30, 1e-12);
  EXPECT_DOUBLE_EQ(r[2]["approval_probability"].get<double>(), 0.7);
  EXPECT_EQ(r[3]["name"], "delta");
  EXPECT_TRUE(r[3]["score"].is_null());
  EXPECT_EQ(r[3]["rank"], 4);
  EXPECT_THAT((*out)["rule"].get<std::string>(), StartsWith("score = CT_TOX probability + 0.5"));
  EXPECT_EQ((*out)["summary"],
            "first: gamma (score 0.15, CT_TOX 0.05, 0 tox flags) of 4 ranked; 1 out of domain; "
            "1 step(s) missing");
  ASSERT_EQ((*out)["missing"].size(), 1u);
  EXPECT_EQ((*out)["missing"][0]["step"], "toxcast");
}

// --- Registry and built-in workflow files -----------------------------------------------------

TEST(LocalFunctionsTest, BuiltinsAreRegisteredByName) {
  const LocalFunctions fns = BuiltinLocalFunctions();
  EXPECT_THAT(fns.Names(), ElementsAre("dose_levels", "first_in_human_verdict",
                                       "flag_organ_classes", "rank_candidates"));
  ASSERT_NE(fns.Find("dose_levels"), nullptr);
  EXPECT_EQ(fns.Find("nope"), nullptr);
  auto out = (*fns.Find("dose_levels"))({{"mrsd_mg", 2}}, json::object());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)["dose_mg"], json({2.0, 6.0, 20.0, 60.0, 120.0}));
}

// The catalog the engine builds: domain bodies of domain_json.h at their service, and the
// built-in local functions.
core::Status Catalog(std::string_view service, std::string_view call) {
  static const LocalFunctions kFns = BuiltinLocalFunctions();
  if (service == "local") {
    if (kFns.Find(call) != nullptr) return core::Status::Ok();
    return core::InvalidArgument("unknown local function '" + std::string(call) + "'");
  }
  if (domain::IsDomainRequest(call) && domain::ServiceOfRequest(call) == service) {
    return core::Status::Ok();
  }
  return core::InvalidArgument("service '" + std::string(service) + "' does not serve '" +
                               std::string(call) + "'");
}

// Both files of deploy/workflows load, with the steps and output the contract names.
TEST(BuiltinWorkflowsTest, BothFilesLoad) {
  auto all = LoadWorkflowDir(FEDRX_WORKFLOWS_DIR, Catalog);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  const Workflow& fih = (*all)[0];
  EXPECT_EQ(fih.name, "first-in-human");
  std::vector<std::string> ids;
  for (const StepSpec& s : fih.steps) ids.push_back(s.id);
  EXPECT_THAT(ids, ElementsAre("tox", "toxcast", "clinical", "dose", "flags", "reverse", "levels",
                               "virtual_trial", "escalation_3p3"));
  EXPECT_EQ(fih.output_call, "first_in_human_verdict");
  EXPECT_EQ(fih.report, "candidate");
  EXPECT_EQ(fih.steps[5].when, "len(steps.flags.organ_classes) > 0");
  EXPECT_THAT(fih.steps[8].needs, ElementsAre("virtual_trial"));
  const Workflow& triage = (*all)[1];
  EXPECT_EQ(triage.name, "lead-triage");
  EXPECT_EQ(triage.output_call, "rank_candidates");
}

// A canned answer per domain call of the dry run.
json CannedAnswer(const std::string& step) {
  if (step == "tox") return Tox21(0.8, 0.1);
  if (step == "toxcast") return ToxCast();
  if (step == "clinical") return Clinical(0.12, "negative");
  if (step == "dose") return Dose();
  if (step == "reverse") return Reverse();
  if (step == "virtual_trial") return VirtualTrial(0.001);
  if (step == "escalation_3p3") return Oc("3+3", {5, 20, 50, 20, 5}, 3.2, 14.1);
  return nullptr;
}

// The first-in-human file run dry: inputs resolved with their defaults, each step's `with`
// resolved against canned answers, every domain request decoded by domain_json into its message
// struct (field names and types match message.h), the local functions run, and the verdict
// computed. The virtual trial gets the assumed PK, 5 levels from the MRSD and tox_auc50 = 30x the
// start-dose AUC.
TEST(BuiltinWorkflowsTest, FirstInHumanDryRunBuildsValidRequests) {
  auto wf = LoadWorkflowFile(std::string(FEDRX_WORKFLOWS_DIR) + "/first-in-human.yaml", Catalog);
  ASSERT_TRUE(wf.ok()) << wf.status();
  auto input = ResolveInputs(
      *wf,
      {{"structure", "CCO"},
       {"noaels", {{{"species", "rat"}, {"noael_mg_per_kg", 20}, {"body_weight_kg", 0.15}}}}},
      nullptr);
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_EQ((*input)["human_pk"]["kind"], "oral_1cmt");
  const LocalFunctions fns = BuiltinLocalFunctions();
  json scope = {{"input", *input}, {"steps", json::object()}};
  json run = {{"input", *input}, {"steps", json::array()}};
  std::map<std::string, codec::Body> requests;
  for (const StepSpec& step : wf->steps) {
    if (!step.when.empty()) {
      auto cond = Condition::Parse(step.when);
      ASSERT_TRUE(cond.ok());
      auto yes = cond->Evaluate(scope);
      ASSERT_TRUE(yes.ok()) << yes.status();
      ASSERT_TRUE(*yes) << step.id;  // SR-ARE 0.8 flags classes, so reverse runs
    }
    auto with = ResolveTemplate(step.with, scope, "steps." + step.id + ".with");
    ASSERT_TRUE(with.ok()) << step.id << ": " << with.status();
    json output;
    if (step.service == "local") {
      auto out = (*fns.Find(step.call))(*with, run);
      ASSERT_TRUE(out.ok()) << step.id << ": " << out.status();
      output = *out;
    } else {
      auto body = domain::RequestFromJson(step.call, *with, step.id);
      ASSERT_TRUE(body.ok()) << step.id << ": " << body.status();
      requests.emplace(step.id, *body);
      output = CannedAnswer(step.id);
    }
    scope["steps"][step.id] = output;
    run["steps"].push_back(Succeeded(step.id, output));
  }
  const auto& trial = std::get<codec::RunVirtualTrial>(requests.at("virtual_trial"));
  EXPECT_EQ(trial.model.kind, "oral_1cmt");
  EXPECT_DOUBLE_EQ(trial.model.bioavailability, 0.8);
  ASSERT_EQ(trial.dose_mg.size(), 5u);
  EXPECT_DOUBLE_EQ(trial.dose_mg[0], 19.46);
  EXPECT_DOUBLE_EQ(trial.dose_mg[4], 19.46 * 60);
  EXPECT_DOUBLE_EQ(trial.start_dose_mg, 19.46);
  EXPECT_DOUBLE_EQ(trial.tox_auc50, 30 * 0.8 * 19.46 / 10);
  EXPECT_DOUBLE_EQ(trial.response_auc50, 10 * 0.8 * 19.46 / 10);
  EXPECT_EQ(trial.design.design, "boin");
  EXPECT_DOUBLE_EQ(trial.design.target, 0.3);
  EXPECT_EQ(trial.trials, 500);
  const auto& esc = std::get<codec::SimulateEscalation>(requests.at("escalation_3p3"));
  EXPECT_EQ(esc.design.design, "3+3");
  EXPECT_EQ(esc.true_tox, std::vector<double>({0.001, 0.01, 0.1, 0.45, 0.75}));
  const auto& dose = std::get<codec::TranslateDose>(requests.at("dose"));
  ASSERT_EQ(dose.noaels.size(), 1u);
  EXPECT_EQ(dose.noaels[0].species, "rat");
  EXPECT_DOUBLE_EQ(dose.safety_factor, 10);
  const auto& reverse = std::get<codec::ReverseTranslate>(requests.at("reverse"));
  EXPECT_EQ(reverse.organ_classes.front(), "Hepatobiliary disorders");
  EXPECT_EQ(reverse.clinical_labels, std::vector<std::string>({"CT_TOX"}));
  EXPECT_EQ(std::get<codec::PredictToxicity>(requests.at("toxcast")).panel, "toxcast");

  auto with = ResolveTemplate(wf->output_with, scope, "output.with");
  ASSERT_TRUE(with.ok()) << with.status();
  auto verdict = (*fns.Find(wf->output_call))(*with, run);
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_EQ((*verdict)["verdict"], "proceed_with_conditions");
}

// The lead-triage file run dry over three analogues: its three requests decode, and the ranking
// covers every structure with its name.
TEST(BuiltinWorkflowsTest, LeadTriageDryRunBuildsValidRequests) {
  auto wf = LoadWorkflowFile(std::string(FEDRX_WORKFLOWS_DIR) + "/lead-triage.yaml", Catalog);
  ASSERT_TRUE(wf.ok()) << wf.status();
  auto input = ResolveInputs(
      *wf, {{"structures", {"CCO", "CCN", "CCC"}}, {"names", {"a", "b", "c"}}}, nullptr);
  ASSERT_TRUE(input.ok()) << input.status();
  json scope = {{"input", *input}, {"steps", json::object()}};
  json run = {{"input", *input}, {"steps", json::array()}};
  for (const StepSpec& step : wf->steps) {
    auto with = ResolveTemplate(step.with, scope, "steps." + step.id + ".with");
    ASSERT_TRUE(with.ok()) << with.status();
    auto body = domain::RequestFromJson(step.call, *with, step.id);
    ASSERT_TRUE(body.ok()) << step.id << ": " << body.status();
    json output;
    if (step.call == "PredictToxicity") {
      const auto& r = std::get<codec::PredictToxicity>(*body);
      EXPECT_EQ(r.smiles, std::vector<std::string>({"CCO", "CCN", "CCC"}));
      std::vector<json> results;
      for (const std::string& s : r.smiles)
        results.push_back(Structure(s, {Task("SR-ARE", 0.1, "negative")}));
      output = Panel(r.panel, results);
    } else {
      output = Clinical(0.2, "negative");
      output["clinical"] = json::array({Structure("CCO", {Task("CT_TOX", 0.2, "negative")}),
                                        Structure("CCN", {Task("CT_TOX", 0.1, "negative")}),
                                        Structure("CCC", {Task("CT_TOX", 0.3, "negative")})});
    }
    run["steps"].push_back(Succeeded(step.id, output));
  }
  auto with = ResolveTemplate(wf->output_with, scope, "output.with");
  ASSERT_TRUE(with.ok()) << with.status();
  auto ranking = RankCandidates(*with, run);
  ASSERT_TRUE(ranking.ok()) << ranking.status();
  const json& r = (*ranking)["ranking"];
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0]["name"], "b");
  EXPECT_EQ(r[1]["name"], "a");
  EXPECT_EQ(r[2]["name"], "c");
}

}  // namespace
}  // namespace fedrx::orchestrator
