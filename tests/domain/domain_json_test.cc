// services/domain/domain_json.h: the answers' JSON is exactly what `fedrx ...
// --json` wrote before it moved out of the CLI; requests written by BodyToJson
// read back to the same request; every kind of bad request JSON is refused with
// the member's path and what was expected; the request -> service table.
#include "services/domain/domain_json.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fedrx::domain {
namespace {

using nlohmann::json;

// --- Answers -----------------------------------------------------------------

codec::Working SampleWorking() {
  codec::Working w;
  w.method = "body-surface-area scaling";
  w.guidance = "FDA 2005";
  codec::WorkStep s;
  s.label = "HED";
  s.formula = "HED = NOAEL x (Wa/Wh)^0.33";
  s.inputs = {{"noael", 50, "mg/kg"}, {"exponent", 0.33, ""}};
  s.result = {"hed", 8.1, "mg/kg"};
  s.reference = "Table 1";
  w.steps = {s};
  w.notes = {"rat most sensitive"};
  return w;
}

codec::DoseTranslation SampleDoseTranslation() {
  codec::DoseTranslation a;
  a.heds = {{"rat", 50, 0.15, 6, 6.2, 8.06, "study R-1"}};
  a.chosen_species = "rat";
  a.species_reason = "lowest HED";
  a.hed_mg_per_kg = 8.06;
  a.safety_factor = 10;
  a.safety_factor_reason = "default";
  a.mrsd_mg_per_kg = 0.806;
  a.human_weight_kg = 60;
  a.mrsd_mg = 48.36;
  a.working = SampleWorking();
  return a;
}

codec::PkProfile SamplePkProfile() {
  codec::PkProfile a;
  a.times_h = {0, 1, 2};
  a.conc_mg_per_l = {0, 1.5, 1.2};
  a.metrics = {{"cmax", 1.5, "mg/L"}, {"auc", 9.25, "mg*h/L"}};
  a.working.method = "method";
  return a;
}

codec::PkFit SamplePkFit() {
  codec::PkFit a;
  a.estimates = {{"cl", 2.5, 0.3, "L/h"}, {"v", 30, 4, "L"}};
  a.residual_se = 0.12;
  a.df = 9;
  a.iterations = 7;
  a.fitted = {0.5, 0.75};
  a.working.method = "method";
  return a;
}

codec::SampleSizeResult SampleSampleSize(const std::string& test) {
  codec::SampleSizeResult a;
  a.test = test;
  a.n = 63.77;
  a.n_per_group = 64;
  a.n_total = 128;
  a.power = 0.8;
  a.events = 191.5;
  a.event_probability = 0.62;
  a.simon_r1 = 1;
  a.simon_n1 = 10;
  a.simon_r = 5;
  a.simon_n = 29;
  a.simon_en0 = 15.01;
  a.simon_pet0 = 0.736;
  a.achieved_alpha = 0.047;
  a.working.method = "method";
  return a;
}

codec::OperatingCharacteristics SampleOc(const std::string& design) {
  codec::OperatingCharacteristics a;
  a.design = design;
  a.trials = 500;
  a.seed = 42;
  a.selection_pct = {10, 60, 30};
  a.patients_mean = {6, 9, 3};
  a.dlt_mean = {0.5, 2, 1.5};
  a.early_stop_pct = 1.5;
  a.correct_selection_pct = 60;
  a.patients_total_mean = 18;
  a.dlt_total_mean = 4;
  a.lambda_e = 0.236;
  a.lambda_d = 0.358;
  a.boundaries = {{3, 0, 2, 3}, {6, 1, 3, 4}};
  a.working.method = "method";
  return a;
}

codec::VirtualTrialResult SampleVirtualTrial() {
  codec::VirtualTrialResult a;
  a.dose_mg = {10, 30};
  a.auc_median = {5, 15};
  a.auc_p05 = {2, 6};
  a.auc_p95 = {9, 27};
  a.p_dlt = {0.05, 0.2};
  a.p_response = {0.1, 0.35};
  a.oc = SampleOc("boin");
  a.working.method = "method";
  return a;
}

codec::StructurePrediction SampleStructure() {
  codec::StructurePrediction s;
  s.input = "OCC";
  s.canonical_smiles = "CCO";
  codec::TaskPrediction t;
  t.task = "SR-HSE";
  t.probability = 0.71;
  t.p_negative = 0.04;
  t.p_positive = 0.52;
  t.prediction_set = "positive";
  t.credibility = 0.52;
  t.confidence = 0.96;
  t.calibrated = true;
  s.tasks = {t};
  s.domain = {0.31, 0.44, true, 0.05, true};
  return s;
}

codec::StructurePrediction SampleRefused() {
  codec::StructurePrediction s;
  s.input = "C1CC";
  s.error_code = "invalid_argument";
  s.error = "unclosed ring";
  s.error_where = "smiles[1]";
  return s;
}

codec::ModelProvenance SampleModel(const std::string& study) {
  return {study, 7, "sha256:ab", 148, 7, "Mondrian ICP"};
}

codec::ToxicityPanel SampleToxicityPanel() {
  codec::ToxicityPanel a;
  a.panel = "tox21";
  a.model = SampleModel("tox21-demo");
  a.confidence = 0.9;
  a.tasks = {"SR-HSE"};
  a.results = {SampleStructure(), SampleRefused()};
  a.working.method = "method";
  return a;
}

codec::ClinicalAssessment SampleClinical(bool side_effects) {
  codec::ClinicalAssessment a;
  a.model = SampleModel("clintox-demo");
  a.confidence = 0.85;
  a.clinical = {SampleStructure(), SampleRefused()};
  codec::ClinicalSuccess c;
  c.therapeutic_area = "oncology";
  c.risk = 0.2;
  c.log_likelihood_ratio = -0.3;
  c.transitions = {{"phase1_to_phase2", 0.52, 0.48, 0.4}};
  c.base_likelihood_of_approval = 0.05;
  c.adjusted_likelihood_of_approval = 0.041;
  c.source = "BIO 2021";
  a.success = {c, codec::ClinicalSuccess{}};
  if (side_effects) {
    a.side_effect_model = SampleModel("sider-demo");
    a.side_effects = {SampleStructure()};
  } else {
    a.side_effects_unavailable = "no side-effect study is served";
  }
  a.working.method = "method";
  return a;
}

codec::ReverseTranslation SampleReverse() {
  codec::ReverseTranslation a;
  codec::AssayAssociation strong;
  strong.clinical_label = "Hepatobiliary disorders";
  strong.assay = "SR-MMP";
  strong.a = 12;
  strong.b = 30;
  strong.c = 40;
  strong.d = 900;
  strong.sufficient_evidence = true;
  strong.odds_ratio = 9;
  strong.ci_low = 4.2;
  strong.ci_high = 19.3;
  strong.p_value = 1e-6;
  strong.q_value = 2e-5;
  strong.significant = true;
  strong.in_table_family = true;
  strong.evidence = "12/42 vs 40/940";
  codec::AssayAssociation weak = strong;
  weak.assay = "NR-AR";
  weak.sufficient_evidence = false;
  weak.significant = false;
  weak.in_table_family = false;
  weak.evidence = "too few";
  codec::OrganClassRecommendation c;
  c.organ_class = "Hepatobiliary disorders";
  c.matched_terms = {"hepatitis"};
  c.assays = {strong, weak};
  c.endpoints = {{"LB", "ALT", "liver enzyme"}};
  c.none_reason = "";
  c.rationale = "mitochondrial toxicity";
  c.reference = "Olson 2000";
  a.organ_classes = {c};
  codec::AssayAssociation label = weak;
  label.clinical_label = "CT_TOX";
  a.label_associations = {label};
  a.counts_study = "pairs-demo";
  a.counts_version = 3;
  a.counts_sites = 2;
  a.counts_compounds = 982;
  a.counts_secure = true;
  a.working.method = "method";
  return a;
}

// The text the CLI's own ToJson functions (services/cli/design_json.cc,
// tox_command.cc, clinical_command.cc, reverse_command.cc at commit 84fb101)
// produced for the samples above, before they moved here.
const std::map<std::string, std::string>& Before() {
  static const auto* before = new std::map<std::string, std::string>{
      {"DoseTranslation",
       R"j({"chosen_species":"rat","hed_mg_per_kg":8.06,"heds":[{"body_weight_kg":0.15,"conversion_)j"
       R"j(factor":6.2,"hed_mg_per_kg":8.06,"km":6.0,"noael_mg_per_kg":50.0,"source":"study R-1","s)j"
       R"j(pecies":"rat"}],"human_weight_kg":60.0,"mrsd_mg":48.36,"mrsd_mg_per_kg":0.806,"safety_fa)j"
       R"j(ctor":10.0,"safety_factor_reason":"default","species_reason":"lowest HED","working":{"gu)j"
       R"j(idance":"FDA 2005","method":"body-surface-area scaling","notes":["rat most sensitive"],")j"
       R"j(steps":[{"formula":"HED = NOAEL x (Wa/Wh)^0.33","inputs":[{"name":"noael","unit":"mg/kg")j"
       R"j(,"value":50.0},{"name":"exponent","unit":"","value":0.33}],"label":"HED","reference":"Ta)j"
       R"j(ble 1","result":{"name":"hed","unit":"mg/kg","value":8.1}}]}})j"},
      {"PkProfile",
       R"j({"conc_mg_per_l":[0.0,1.5,1.2],"metrics":{"auc":{"unit":"mg*h/L","value":9.25},"cmax":{")j"
       R"j(unit":"mg/L","value":1.5}},"times_h":[0.0,1.0,2.0],"working":{"guidance":"","method":"me)j"
       R"j(thod","notes":[],"steps":[]}})j"},
      {"PkFit",
       R"j({"df":9,"estimates":[{"name":"cl","std_error":0.3,"unit":"L/h","value":2.5},{"name":"v",)j"
       R"j("std_error":4.0,"unit":"L","value":30.0}],"fitted":[0.5,0.75],"iterations":7,"residual_s)j"
       R"j(e":0.12,"working":{"guidance":"","method":"method","notes":[],"steps":[]}})j"},
      {"SampleSize_t",
       R"j({"n":63.77,"n_per_group":64,"n_total":128,"power":0.8,"test":"two_sample_t","working":{")j"
       R"j(guidance":"","method":"method","notes":[],"steps":[]}})j"},
      {"SampleSize_lr",
       R"j({"event_probability":0.62,"events":191.5,"n":63.77,"n_per_group":64,"n_total":128,"power)j"
       R"j(":0.8,"test":"log_rank","working":{"guidance":"","method":"method","notes":[],"steps":[])j"
       R"j(}})j"},
      {"SampleSize_simon",
       R"j({"n":63.77,"n_per_group":64,"n_total":128,"power":0.8,"simon":{"achieved_alpha":0.047,"e)j"
       R"j(n0":15.01,"n":29,"n1":10,"pet0":0.736,"r":5,"r1":1},"test":"simon_two_stage","working":{)j"
       R"j("guidance":"","method":"method","notes":[],"steps":[]}})j"},
      {"Oc_boin",
       R"j({"boundaries":[{"deescalate_at_least":2,"eliminate_at_least":3,"escalate_at_most":0,"n":)j"
       R"j(3},{"deescalate_at_least":3,"eliminate_at_least":4,"escalate_at_most":1,"n":6}],"correct)j"
       R"j(_selection_pct":60.0,"design":"boin","dlt_mean":[0.5,2.0,1.5],"dlt_total_mean":4.0,"earl)j"
       R"j(y_stop_pct":1.5,"lambda_d":0.358,"lambda_e":0.236,"patients_mean":[6.0,9.0,3.0],"patient)j"
       R"j(s_total_mean":18.0,"seed":42,"selection_pct":[10.0,60.0,30.0],"trials":500,"working":{"g)j"
       R"j(uidance":"","method":"method","notes":[],"steps":[]}})j"},
      {"Oc_33",
       R"j({"correct_selection_pct":60.0,"design":"3+3","dlt_mean":[0.5,2.0,1.5],"dlt_total_mean":4)j"
       R"j(.0,"early_stop_pct":1.5,"patients_mean":[6.0,9.0,3.0],"patients_total_mean":18.0,"seed":)j"
       R"j(42,"selection_pct":[10.0,60.0,30.0],"trials":500,"working":{"guidance":"","method":"meth)j"
       R"j(od","notes":[],"steps":[]}})j"},
      {"VirtualTrial",
       R"j({"auc_median":[5.0,15.0],"auc_p05":[2.0,6.0],"auc_p95":[9.0,27.0],"dose_mg":[10.0,30.0],)j"
       R"j("oc":{"boundaries":[{"deescalate_at_least":2,"eliminate_at_least":3,"escalate_at_most":0)j"
       R"j(,"n":3},{"deescalate_at_least":3,"eliminate_at_least":4,"escalate_at_most":1,"n":6}],"co)j"
       R"j(rrect_selection_pct":60.0,"design":"boin","dlt_mean":[0.5,2.0,1.5],"dlt_total_mean":4.0,)j"
       R"j("early_stop_pct":1.5,"lambda_d":0.358,"lambda_e":0.236,"patients_mean":[6.0,9.0,3.0],"pa)j"
       R"j(tients_total_mean":18.0,"seed":42,"selection_pct":[10.0,60.0,30.0],"trials":500,"working)j"
       R"j(":{"guidance":"","method":"method","notes":[],"steps":[]}},"p_dlt":[0.05,0.2],"p_respons)j"
       R"j(e":[0.1,0.35],"working":{"guidance":"","method":"method","notes":[],"steps":[]}})j"},
      {"Tox",
       R"j({"confidence":0.9,"model":{"calibration_samples":148,"calibration_version":7,"method":"M)j"
       R"j(ondrian ICP","model_version":7,"preparation_hash":"sha256:ab","study_id":"tox21-demo"},")j"
       R"j(panel":"tox21","results":[{"canonical_smiles":"CCO","domain":{"calibrated":true,"in_doma)j"
       R"j(in":true,"p_value":0.44,"score":0.31,"threshold":0.05},"input":"OCC","tasks":[{"calibrat)j"
       R"j(ed":true,"confidence":0.96,"credibility":0.52,"p_negative":0.04,"p_positive":0.52,"predi)j"
       R"j(ction_set":"positive","probability":0.71,"task":"SR-HSE"}]},{"error":{"code":"invalid_ar)j"
       R"j(gument","message":"unclosed ring","where":"smiles[1]"},"input":"C1CC"}],"tasks":["SR-HSE)j"
       R"j("],"working":{"guidance":"","method":"method","notes":[],"steps":[]}})j"},
      {"Clinical_se",
       R"j({"clinical":[{"canonical_smiles":"CCO","domain":{"calibrated":true,"in_domain":true,"p_v)j"
       R"j(alue":0.44,"score":0.31,"threshold":0.05},"input":"OCC","tasks":[{"calibrated":true,"con)j"
       R"j(fidence":0.96,"credibility":0.52,"p_negative":0.04,"p_positive":0.52,"prediction_set":"p)j"
       R"j(ositive","probability":0.71,"task":"SR-HSE"}]},{"error":{"code":"invalid_argument","mess)j"
       R"j(age":"unclosed ring","where":"smiles[1]"},"input":"C1CC"}],"confidence":0.85,"model":{"c)j"
       R"j(alibration_samples":148,"calibration_version":7,"method":"Mondrian ICP","model_version":)j"
       R"j(7,"preparation_hash":"sha256:ab","study_id":"clintox-demo"},"side_effect_model":{"calibr)j"
       R"j(ation_samples":148,"calibration_version":7,"method":"Mondrian ICP","model_version":7,"pr)j"
       R"j(eparation_hash":"sha256:ab","study_id":"sider-demo"},"side_effects":[{"canonical_smiles")j"
       R"j(:"CCO","domain":{"calibrated":true,"in_domain":true,"p_value":0.44,"score":0.31,"thresho)j"
       R"j(ld":0.05},"input":"OCC","tasks":[{"calibrated":true,"confidence":0.96,"credibility":0.52)j"
       R"j(,"p_negative":0.04,"p_positive":0.52,"prediction_set":"positive","probability":0.71,"tas)j"
       R"j(k":"SR-HSE"}]}],"success":[{"adjusted_likelihood_of_approval":0.041,"base_likelihood_of_)j"
       R"j(approval":0.05,"log_likelihood_ratio":-0.3,"risk":0.2,"source":"BIO 2021","therapeutic_a)j"
       R"j(rea":"oncology","transitions":[{"adjusted":0.48,"base_rate":0.52,"transition":"phase1_to)j"
       R"j(_phase2","weight":0.4}]},{"adjusted_likelihood_of_approval":0.0,"base_likelihood_of_appr)j"
       R"j(oval":0.0,"log_likelihood_ratio":0.0,"risk":0.0,"source":"","therapeutic_area":"","trans)j"
       R"j(itions":[]}],"working":{"guidance":"","method":"method","notes":[],"steps":[]}})j"},
      {"Clinical_nose",
       R"j({"clinical":[{"canonical_smiles":"CCO","domain":{"calibrated":true,"in_domain":true,"p_v)j"
       R"j(alue":0.44,"score":0.31,"threshold":0.05},"input":"OCC","tasks":[{"calibrated":true,"con)j"
       R"j(fidence":0.96,"credibility":0.52,"p_negative":0.04,"p_positive":0.52,"prediction_set":"p)j"
       R"j(ositive","probability":0.71,"task":"SR-HSE"}]},{"error":{"code":"invalid_argument","mess)j"
       R"j(age":"unclosed ring","where":"smiles[1]"},"input":"C1CC"}],"confidence":0.85,"model":{"c)j"
       R"j(alibration_samples":148,"calibration_version":7,"method":"Mondrian ICP","model_version":)j"
       R"j(7,"preparation_hash":"sha256:ab","study_id":"clintox-demo"},"side_effects_unavailable":")j"
       R"j(no side-effect study is served","success":[{"adjusted_likelihood_of_approval":0.041,"bas)j"
       R"j(e_likelihood_of_approval":0.05,"log_likelihood_ratio":-0.3,"risk":0.2,"source":"BIO 2021)j"
       R"j(","therapeutic_area":"oncology","transitions":[{"adjusted":0.48,"base_rate":0.52,"transi)j"
       R"j(tion":"phase1_to_phase2","weight":0.4}]},{"adjusted_likelihood_of_approval":0.0,"base_li)j"
       R"j(kelihood_of_approval":0.0,"log_likelihood_ratio":0.0,"risk":0.0,"source":"","therapeutic)j"
       R"j(_area":"","transitions":[]}],"working":{"guidance":"","method":"method","notes":[],"step)j"
       R"j(s":[]}})j"},
      {"Reverse",
       R"j({"counts_compounds":982,"counts_secure":true,"counts_sites":2,"counts_study":"pairs-demo)j"
       R"j(","counts_version":3,"label_associations":[{"a":12,"assay":"NR-AR","b":30,"c":40,"clinic)j"
       R"j(al_label":"CT_TOX","d":900,"evidence":"too few","in_table_family":false,"significant":fa)j"
       R"j(lse,"sufficient_evidence":false}],"organ_classes":[{"assays":[{"a":12,"assay":"SR-MMP",")j"
       R"j(b":30,"c":40,"ci_high":19.3,"ci_low":4.2,"clinical_label":"Hepatobiliary disorders","d":)j"
       R"j(900,"evidence":"12/42 vs 40/940","in_table_family":true,"odds_ratio":9.0,"p_value":1e-06)j"
       R"j(,"q_value":2e-05,"significant":true,"sufficient_evidence":true},{"a":12,"assay":"NR-AR",)j"
       R"j("b":30,"c":40,"clinical_label":"Hepatobiliary disorders","d":900,"evidence":"too few","i)j"
       R"j(n_table_family":false,"significant":false,"sufficient_evidence":false}],"endpoints":[{"c)j"
       R"j(ode":"ALT","domain":"LB","note":"liver enzyme"}],"matched_terms":["hepatitis"],"none_rea)j"
       R"j(son":"","organ_class":"Hepatobiliary disorders","rationale":"mitochondrial toxicity","re)j"
       R"j(ference":"Olson 2000"}],"working":{"guidance":"","method":"method","notes":[],"steps":[])j"
       R"j(}})j"},
  };
  return *before;
}

// Every answer's JSON text is byte-for-byte what the CLI wrote before the move
// (the demo and the integration tests read those files).
TEST(DomainJsonAnswerTest, TextIsWhatTheCliWroteBeforeTheMove) {
  const std::map<std::string, json> now = {
      {"DoseTranslation", ToJson(SampleDoseTranslation())},
      {"PkProfile", ToJson(SamplePkProfile())},
      {"PkFit", ToJson(SamplePkFit())},
      {"SampleSize_t", ToJson(SampleSampleSize("two_sample_t"))},
      {"SampleSize_lr", ToJson(SampleSampleSize("log_rank"))},
      {"SampleSize_simon", ToJson(SampleSampleSize("simon_two_stage"))},
      {"Oc_boin", ToJson(SampleOc("boin"))},
      {"Oc_33", ToJson(SampleOc("3+3"))},
      {"VirtualTrial", ToJson(SampleVirtualTrial())},
      {"Tox", ToJson(SampleToxicityPanel())},
      {"Clinical_se", ToJson(SampleClinical(true))},
      {"Clinical_nose", ToJson(SampleClinical(false))},
      {"Reverse", ToJson(SampleReverse())},
  };
  ASSERT_EQ(now.size(), Before().size());
  for (const auto& [name, j] : now) {
    SCOPED_TRACE(name);
    EXPECT_EQ(j.dump(), Before().at(name));
  }
}

// Members that mean something only for some tests, designs or outcomes are
// written only there.
TEST(DomainJsonAnswerTest, ConditionalMembersAppearOnlyWhereTheyMeanSomething) {
  const json t = ToJson(SampleSampleSize("two_sample_t"));
  EXPECT_FALSE(t.contains("events"));
  EXPECT_FALSE(t.contains("simon"));
  const json lr = ToJson(SampleSampleSize("log_rank"));
  EXPECT_DOUBLE_EQ(lr["events"].get<double>(), 191.5);
  EXPECT_FALSE(lr.contains("simon"));
  const json simon = ToJson(SampleSampleSize("simon_two_stage"));
  EXPECT_EQ(simon["simon"]["n1"], 10);
  EXPECT_EQ(simon["simon"]["r"], 5);

  EXPECT_EQ(ToJson(SampleOc("boin"))["boundaries"][1]["eliminate_at_least"], 4);
  EXPECT_FALSE(ToJson(SampleOc("3+3")).contains("lambda_e"));

  const json tox = ToJson(SampleToxicityPanel());
  EXPECT_EQ(tox["results"][0]["tasks"][0]["prediction_set"], "positive");
  EXPECT_EQ(tox["results"][1]["error"]["where"], "smiles[1]");
  EXPECT_FALSE(tox["results"][1].contains("tasks"));

  const json served = ToJson(SampleClinical(true));
  EXPECT_EQ(served["side_effect_model"]["study_id"], "sider-demo");
  EXPECT_FALSE(served.contains("side_effects_unavailable"));
  const json unserved = ToJson(SampleClinical(false));
  EXPECT_EQ(unserved["side_effects_unavailable"], "no side-effect study is served");
  EXPECT_FALSE(unserved.contains("side_effects"));

  const json reverse = ToJson(SampleReverse());
  const json& assays = reverse["organ_classes"][0]["assays"];
  EXPECT_DOUBLE_EQ(assays[0]["odds_ratio"].get<double>(), 9);
  EXPECT_FALSE(assays[1].contains("odds_ratio"));  // not enough evidence
}

// BodyToJson gives a domain body's typed JSON, and only the type name of any
// other body.
TEST(DomainJsonAnswerTest, BodyToJsonIsTheTypedJsonOrJustTheTypeName) {
  EXPECT_EQ(BodyToJson(codec::Body(SampleDoseTranslation())), ToJson(SampleDoseTranslation()));
  EXPECT_EQ(BodyToJson(codec::Body(SampleReverse())), ToJson(SampleReverse()));
  EXPECT_EQ(BodyToJson(codec::Body(codec::Ack{})), json({{"type", "Ack"}}));
  EXPECT_EQ(BodyToJson(codec::Body(codec::HealthCheck{})), json({{"type", "HealthCheck"}}));
  codec::Error error;
  error.message = "something private";
  EXPECT_EQ(BodyToJson(codec::Body(error)), json({{"type", "Error"}}));
}

// --- Requests ----------------------------------------------------------------

// One of each request, every member away from its default.
std::vector<codec::Body> SampleRequests() {
  codec::TranslateDose dose;
  dose.noaels = {{"rat", 50, 0.25, "study R-1"}, {"dog", 12.5, 10, "study D-2"}};
  dose.method = "exponent";
  dose.exponent = 0.7;
  dose.species = "dog";
  dose.species_reason = "most relevant metabolism";
  dose.safety_factor = 20;
  dose.safety_factor_reason = "steep dose-response";
  dose.human_weight_kg = 70;

  codec::PkModel model{"two_compartment_oral", 2.5, 30, 1.1, 0.8, 4, 50};
  codec::SimulatePk pk;
  pk.model = model;
  pk.dose_mg = 100;
  pk.tau_h = 12;
  pk.doses = 5;
  pk.times_h = {0, 0.5, 1, 24};
  pk.noael_auc_mg_h_per_l = 40;
  pk.noael_cmax_mg_per_l = 5.5;

  codec::FitPk fit;
  fit.times_h = {0.25, 0.5, 1};
  fit.conc_mg_per_l = {2.1, 3.7, 5.2};
  fit.dose_mg = 320;
  fit.start = {{"cl", 2, "L/h"}, {"v", 30, "L"}};

  codec::ComputeSampleSize size;
  size.test = "log_rank";
  size.solve_for = "power";
  size.sides = 1;
  size.alpha = 0.025;
  size.power = 0.9;
  size.n = 120;
  size.delta = 0.4;
  size.sd = 1.3;
  size.p0 = 0.1;
  size.p1 = 0.3;
  size.p2 = 0.25;
  size.hazard_ratio = 0.7;
  size.allocation = 0.6;
  size.accrual_time = 24;
  size.follow_up = 12;
  size.median_control = 9.5;
  size.simon_design = "minimax";

  codec::EscalationDesign design;
  design.design = "crm";
  design.target = 0.25;
  design.cohort_size = 2;
  design.max_patients = 24;
  design.start_dose = 2;
  design.skeleton = {0.05, 0.1, 0.2, 0.35};
  design.prior_sd = 1.3;
  design.overdose_probability = 0.3;
  design.elimination_cutoff = 0.9;
  design.extra_safe = true;
  design.phi1 = 0.15;
  design.phi2 = 0.35;
  design.stop_at_n = 9;
  codec::SimulateEscalation escalation;
  escalation.design = design;
  escalation.true_tox = {0.05, 0.12, 0.25, 0.4};
  escalation.trials = 250;
  escalation.seed = (std::uint64_t{1} << 63) + 5;  // beyond int64: must stay unsigned

  codec::RunVirtualTrial trial;
  trial.model = model;
  trial.bsv_cv = 0.4;
  trial.dose_mg = {10, 30, 100};
  trial.start_dose_mg = 10;
  trial.tox_auc50 = 80;
  trial.tox_hill = 3;
  trial.response_auc50 = 20;
  trial.response_hill = 1.5;
  trial.response_emax = 0.8;
  trial.design = design;
  trial.trials = 300;
  trial.population = 500;
  trial.seed = 77;

  codec::PredictToxicity tox;
  tox.smiles = {"CCO", "c1ccccc1O"};
  tox.panel = "toxcast";
  tox.tasks = {"SR-HSE", "NR-AR"};
  tox.confidence = 0.8;

  codec::AssessClinical clinical;
  clinical.smiles = {"CCO"};
  clinical.therapeutic_area = "oncology";
  clinical.confidence = 0.95;

  codec::ReverseTranslate reverse;
  reverse.organ_classes = {"Hepatobiliary disorders"};
  reverse.adverse_events = {"hepatitis", "jaundice"};
  reverse.clinical_labels = {"CT_TOX"};
  reverse.fdr = 0.1;

  return {dose, pk, fit, size, escalation, trial, tox, clinical, reverse};
}

// Each request, written by BodyToJson and read back by RequestFromJson (also
// through its text, as it travels), is the same request: same alternative,
// every member (the JSON writes every member, so equal JSON is equal members).
TEST(DomainJsonRequestTest, WrittenRequestsReadBackUnchanged) {
  // Members per struct, so that a member left out of the JSON cannot go unnoticed.
  const std::map<std::string, std::size_t> members = {
      {"TranslateDose", 8},      {"SimulatePk", 7},         {"FitPk", 4},
      {"ComputeSampleSize", 17}, {"SimulateEscalation", 4}, {"RunVirtualTrial", 13},
      {"PredictToxicity", 4},    {"AssessClinical", 3},     {"ReverseTranslate", 4}};
  const std::vector<codec::Body> requests = SampleRequests();
  ASSERT_EQ(requests.size(), 9u);
  for (const codec::Body& body : requests) {
    const std::string type = codec::BodyName(body);
    SCOPED_TRACE(type);
    const json written = BodyToJson(body);
    EXPECT_EQ(written.size(), members.at(type));
    for (const json& j : {written, json::parse(written.dump())}) {
      core::Result<codec::Body> read = RequestFromJson(type, j, "R");
      ASSERT_TRUE(read.ok()) << read.status();
      EXPECT_EQ(read->index(), body.index());
      EXPECT_EQ(BodyToJson(*read), written);
    }
  }
  // Nested structs write every member too.
  EXPECT_EQ(ToJson(codec::PkModel{}).size(), 7u);
  EXPECT_EQ(ToJson(codec::EscalationDesign{}).size(), 13u);
  EXPECT_EQ(ToJson(codec::SpeciesNoael{}).size(), 4u);
  EXPECT_EQ(ToJson(codec::Quantity{}).size(), 3u);
}

// A few members compared directly after the round trip through text: nested
// structs, arrays of structs, a bool, a uint64 beyond int64.
TEST(DomainJsonRequestTest, RoundTripKeepsNestedValues) {
  const std::vector<codec::Body> requests = SampleRequests();
  const auto text = [](const codec::Body& b) { return json::parse(BodyToJson(b).dump()); };

  auto dose = RequestFromJson("TranslateDose", text(requests[0]), "R");
  ASSERT_TRUE(dose.ok()) << dose.status();
  const auto& d = std::get<codec::TranslateDose>(*dose);
  ASSERT_EQ(d.noaels.size(), 2u);
  EXPECT_EQ(d.noaels[1].species, "dog");
  EXPECT_DOUBLE_EQ(d.noaels[1].noael_mg_per_kg, 12.5);
  EXPECT_DOUBLE_EQ(d.exponent, 0.7);

  auto esc = RequestFromJson("SimulateEscalation", text(requests[4]), "R");
  ASSERT_TRUE(esc.ok()) << esc.status();
  const auto& e = std::get<codec::SimulateEscalation>(*esc);
  EXPECT_EQ(e.seed, (std::uint64_t{1} << 63) + 5);
  EXPECT_TRUE(e.design.extra_safe);
  EXPECT_EQ(e.design.stop_at_n, 9);
  EXPECT_EQ(e.design.skeleton, (std::vector<double>{0.05, 0.1, 0.2, 0.35}));

  auto fit = RequestFromJson("FitPk", text(requests[2]), "R");
  ASSERT_TRUE(fit.ok()) << fit.status();
  const auto& f = std::get<codec::FitPk>(*fit);
  ASSERT_EQ(f.start.size(), 2u);
  EXPECT_EQ(f.start[1].unit, "L");
  EXPECT_DOUBLE_EQ(f.start[1].value, 30);
}

// Absent members keep the struct's defaults, at every level.
TEST(DomainJsonRequestTest, AbsentMembersKeepTheirDefaults) {
  auto r = RequestFromJson(
      "TranslateDose", json::parse(R"({"noaels":[{"species":"rat","noael_mg_per_kg":50}]})"), "R");
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& d = std::get<codec::TranslateDose>(*r);
  EXPECT_EQ(d.method, "bsa");
  EXPECT_DOUBLE_EQ(d.exponent, 0.67);
  EXPECT_DOUBLE_EQ(d.safety_factor, 10);
  EXPECT_DOUBLE_EQ(d.human_weight_kg, 60);
  EXPECT_DOUBLE_EQ(d.noaels[0].noael_mg_per_kg, 50);
  EXPECT_DOUBLE_EQ(d.noaels[0].body_weight_kg, 0);

  auto s =
      RequestFromJson("SimulateEscalation", json::parse(R"({"design":{"design":"boin"}})"), "R");
  ASSERT_TRUE(s.ok()) << s.status();
  const auto& e = std::get<codec::SimulateEscalation>(*s);
  EXPECT_EQ(e.design.design, "boin");
  EXPECT_DOUBLE_EQ(e.design.target, 0.3);
  EXPECT_EQ(e.design.cohort_size, 3);
  EXPECT_EQ(e.trials, 1000);
  EXPECT_EQ(e.seed, 1u);

  auto empty = RequestFromJson("ReverseTranslate", json::object(), "R");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_DOUBLE_EQ(std::get<codec::ReverseTranslate>(*empty).fdr, 0.05);
}

// Numbers are taken whatever JSON number kind they arrive as, when the value
// fits: an integer for a double member, a whole 200.0 for an integer member,
// the largest uint64 for a seed.
TEST(DomainJsonRequestTest, NumbersThatFitAreAcceptedInEitherJsonKind) {
  auto r = RequestFromJson(
      "SimulateEscalation",
      json::parse(R"({"trials":200.0,"seed":18446744073709551615,"design":{"target":1}})"), "R");
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& e = std::get<codec::SimulateEscalation>(*r);
  EXPECT_EQ(e.trials, 200);
  EXPECT_EQ(e.seed, std::numeric_limits<std::uint64_t>::max());
  EXPECT_DOUBLE_EQ(e.design.target, 1.0);
}

struct BadCase {
  std::string type;
  json request;
  std::string where;
  std::string message;  // a part of the message
};

// Every kind of bad input is InvalidArgument naming the member's path below
// `where` and saying what was expected.
TEST(DomainJsonRequestTest, BadMembersAreRefusedWithTheirPath) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<BadCase> cases = {
      {"TranslateDose", json::parse("[1,2]"), "R", "expected an object (TranslateDose), got array"},
      {"AssessClinical", json("CCO"), "R", "expected an object (AssessClinical), got string"},
      {"TranslateDose",
       json::parse(R"({"noaels":[{"species":"rat"},{"species":"dog","noael_mg_per_kg":"50"}]})"),
       "R.noaels[1].noael_mg_per_kg", "expected a number, got string"},
      {"TranslateDose", json::parse(R"({"noaels":[{"species":"rat","mg":1}]})"), "R.noaels[0].mg",
       "unknown field 'mg' of SpeciesNoael"},
      {"TranslateDose", json::parse(R"({"safety":10})"), "R.safety",
       "unknown field 'safety' of TranslateDose"},
      {"PredictToxicity", json::parse(R"({"panel":null})"), "R.panel",
       "expected a string, got null"},
      {"PredictToxicity", json::parse(R"({"smiles":"CCO"})"), "R.smiles",
       "expected an array, got string"},
      {"PredictToxicity", json::parse(R"({"smiles":["CCO","CCN",5]})"), "R.smiles[2]",
       "expected a string, got number"},
      {"PredictToxicity", json{{"confidence", nan}}, "R.confidence", "expected a finite number"},
      {"SimulatePk", json{{"dose_mg", -inf}}, "R.dose_mg", "expected a finite number"},
      {"FitPk", json{{"times_h", {0.5, inf}}}, "R.times_h[1]", "expected a finite number"},
      {"FitPk", json::parse(R"({"start":[{"name":"cl","value":true}]})"), "R.start[0].value",
       "expected a number, got boolean"},
      {"SimulateEscalation", json::parse(R"({"trials":3000000000})"), "R.trials",
       "expected an integer from -2147483648 to 2147483647, got 3000000000"},
      {"SimulateEscalation", json::parse(R"({"seed":-1})"), "R.seed",
       "expected an integer from 0 to 18446744073709551615, got -1"},
      {"SimulateEscalation", json::parse(R"({"design":{"cohort_size":2.5}})"),
       "R.design.cohort_size", "expected an integer from -2147483648 to 2147483647, got 2.5"},
      {"SimulateEscalation", json::parse(R"({"design":{"extra_safe":"yes"}})"),
       "R.design.extra_safe", "expected true or false, got string"},
      {"SimulateEscalation", json::parse(R"({"design":{"skeleton":[0.1,"x"]}})"),
       "R.design.skeleton[1]", "expected a number, got string"},
      {"SimulatePk", json::parse(R"({"model":3})"), "R.model",
       "expected an object (PkModel), got number"},
      {"SimulatePk", json::parse(R"({"doses":1e10})"), "R.doses", "expected an integer"},
      {"RunVirtualTrial", json::parse(R"({"design":{"phi3":0.1}})"), "R.design.phi3",
       "unknown field 'phi3' of EscalationDesign"},
      {"ComputeSampleSize", json::parse(R"({"sides":"2"})"), "R.sides",
       "expected an integer from -2147483648 to 2147483647, got string"},
      {"ReverseTranslate", json::parse(R"({"fdr":[0.05]})"), "R.fdr",
       "expected a number, got array"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.type + " " + c.request.dump());
    core::Result<codec::Body> r = RequestFromJson(c.type, c.request, "R");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().where(), c.where);
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status().message();
  }
}

// With an empty `where` the path starts at the member, without a leading dot.
TEST(DomainJsonRequestTest, EmptyWhereGivesTheBarePath) {
  auto r = RequestFromJson("FitPk", json::parse(R"({"start":[{"q":1}]})"), "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().where(), "start[0].q");
}

// A body type that is not one of the nine requests (an answer, a platform
// message, a made-up name) is refused, naming it.
TEST(DomainJsonRequestTest, UnknownBodyTypeIsRefusedByName) {
  for (const std::string type : {"Frobnicate", "DoseTranslation", "HealthCheck", ""}) {
    SCOPED_TRACE(type);
    auto r = RequestFromJson(type, json::object(), "steps.dose");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().where(), "steps.dose");
    EXPECT_NE(r.status().message().find("'" + type + "' is not a domain request"),
              std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("TranslateDose"), std::string::npos);
  }
}

// The request -> service table the orchestrator validates workflows with.
TEST(DomainJsonRequestTest, EachRequestNamesItsService) {
  const std::map<std::string, std::string> expected = {
      {"TranslateDose", "translational"}, {"SimulatePk", "translational"},
      {"FitPk", "translational"},         {"ComputeSampleSize", "trial"},
      {"SimulateEscalation", "trial"},    {"RunVirtualTrial", "trial"},
      {"PredictToxicity", "tox"},         {"AssessClinical", "clinical"},
      {"ReverseTranslate", "reverse"}};
  for (const auto& [type, service] : expected) {
    EXPECT_TRUE(IsDomainRequest(type)) << type;
    EXPECT_EQ(ServiceOfRequest(type), service) << type;
  }
  for (const std::string type : {"DoseTranslation", "ToxicityPanel", "RunWorkflow", "Ack", ""}) {
    EXPECT_FALSE(IsDomainRequest(type)) << type;
    EXPECT_EQ(ServiceOfRequest(type), "") << type;
  }
}

}  // namespace
}  // namespace fedrx::domain
