// Fixtures of the report tests: a first-in-human run record written by
// hand (every step's output inlined, field names as services/domain's JSON),
// a study view, and XML checks of a page through libxml2.
#pragma once

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "services/report/study_report.h"

namespace fedrx::report::testing {

inline nlohmann::json FirstInHumanRun() {
  return nlohmann::json::parse(R"json({
  "run_id": "run-20261126T190102Z-3f9a1c", "workflow": "first-in-human", "workflow_version": "1",
  "workflow_sha256": "9f2c4e0d7a1b", "workflow_file": "first-in-human.yaml",
  "state": "succeeded", "created_ms": 1795719662000, "finished_ms": 1795719671500,
  "input": {"name": "Candidate-7", "structure": "CC(=O)Nc1ccc(O)cc1", "therapeutic_area": "oncology",
            "flag_threshold": 0.5,
            "noaels": [{"species": "rat", "noael_mg_per_kg": 50}, {"species": "dog", "noael_mg_per_kg": 20}]},
  "steps": [
    {"id": "tox", "service": "tox", "call": "PredictToxicity", "needs": [], "state": "succeeded",
     "attempts": 1, "started_ms": 1795719662100, "finished_ms": 1795719663300,
     "request": {"smiles": ["CC(=O)Nc1ccc(O)cc1"], "panel": "tox21"},
     "provenance": {"study_id": "tox21-demo", "model_version": 3},
     "output": {"panel": "tox21", "confidence": 0.9,
       "model": {"study_id": "tox21-demo", "model_version": 3, "preparation_hash": "prep-abc",
                 "calibration_samples": 1200, "calibration_version": 3,
                 "method": "Mondrian inductive conformal prediction on the sites' validation folds"},
       "tasks": ["NR-AR", "SR-p53", "NR-AhR"],
       "results": [{"input": "CC(=O)Nc1ccc(O)cc1", "canonical_smiles": "CC(=O)Nc1ccc(O)cc1",
         "error_code": "", "error": "", "error_where": "",
         "tasks": [
           {"task": "NR-AR", "probability": 0.08, "p_negative": 0.62, "p_positive": 0.03,
            "prediction_set": "negative", "credibility": 0.62, "confidence": 0.97, "calibrated": true},
           {"task": "SR-p53", "probability": 0.71, "p_negative": 0.04, "p_positive": 0.44,
            "prediction_set": "positive", "credibility": 0.44, "confidence": 0.96, "calibrated": true},
           {"task": "NR-AhR", "probability": 0.35, "p_negative": 0.21, "p_positive": 0.18,
            "prediction_set": "both", "credibility": 0.21, "confidence": 0.82, "calibrated": true}],
         "domain": {"score": 0.31, "p_value": 0.42, "in_domain": true, "threshold": 0.05, "calibrated": true}}],
       "working": {"method": "conformal", "guidance": "", "steps": [
         {"label": "p-value of the positive label", "formula": "p = (n_ge + 1) / (n + 1)",
          "inputs": [{"name": "n_ge", "value": 527, "unit": ""}, {"name": "n", "value": 1200, "unit": ""}],
          "result": {"name": "p_positive", "value": 0.44, "unit": ""}, "reference": "Vovk 2005"}],
         "notes": ["calibrated on summed site histograms"]}}},
    {"id": "toxcast", "service": "tox", "call": "PredictToxicity", "state": "succeeded", "attempts": 1,
     "started_ms": 1795719662100, "finished_ms": 1795719663800,
     "request": {"smiles": ["CC(=O)Nc1ccc(O)cc1"], "panel": "toxcast"},
     "output": {"panel": "toxcast", "confidence": 0.9,
       "model": {"study_id": "toxcast-demo", "model_version": 2, "calibration_samples": 0},
       "tasks": ["TOX21_ERa_BLA_Agonist_ratio", "ATG_PXRE_CIS_up"],
       "results": [{"input": "CC(=O)Nc1ccc(O)cc1", "canonical_smiles": "CC(=O)Nc1ccc(O)cc1",
         "error_code": "",
         "tasks": [
           {"task": "TOX21_ERa_BLA_Agonist_ratio", "probability": 0.12, "p_negative": 0, "p_positive": 0,
            "prediction_set": "both", "calibrated": false},
           {"task": "ATG_PXRE_CIS_up", "probability": 0.64, "p_negative": 0, "p_positive": 0,
            "prediction_set": "both", "calibrated": false}],
         "domain": {"score": 0.93, "p_value": 0.01, "in_domain": false, "threshold": 0.05, "calibrated": true}}]}},
    {"id": "clinical", "service": "clinical", "call": "AssessClinical", "state": "succeeded", "attempts": 1,
     "started_ms": 1795719662100, "finished_ms": 1795719664100,
     "output": {"model": {"study_id": "clintox-demo", "model_version": 4, "calibration_samples": 300,
                          "calibration_version": 4},
       "confidence": 0.9,
       "clinical": [{"input": "CC(=O)Nc1ccc(O)cc1", "canonical_smiles": "CC(=O)Nc1ccc(O)cc1", "error_code": "",
         "tasks": [
           {"task": "CT_TOX", "probability": 0.22, "p_negative": 0.35, "p_positive": 0.08,
            "prediction_set": "negative", "calibrated": true},
           {"task": "FDA_APPROVED", "probability": 0.81, "p_negative": 0.05, "p_positive": 0.52,
            "prediction_set": "positive", "calibrated": true}],
         "domain": {"score": 0.2, "p_value": 0.6, "in_domain": true, "threshold": 0.05, "calibrated": true}}],
       "success": [{"therapeutic_area": "oncology", "risk": 0.22, "log_likelihood_ratio": -0.4,
         "transitions": [
           {"transition": "phase1_to_phase2", "base_rate": 0.52, "adjusted": 0.58, "weight": 0.6},
           {"transition": "phase2_to_phase3", "base_rate": 0.25, "adjusted": 0.27, "weight": 0.2},
           {"transition": "phase3_to_filing", "base_rate": 0.48, "adjusted": 0.5, "weight": 0.1},
           {"transition": "filing_to_approval", "base_rate": 0.82, "adjusted": 0.83, "weight": 0.1}],
         "base_likelihood_of_approval": 0.051, "adjusted_likelihood_of_approval": 0.065,
         "source": "BIO/Informa/QLS 2021"}],
       "side_effect_model": {}, "side_effects": [],
       "side_effects_unavailable": "no study trained on the SIDER organ classes is served"}},
    {"id": "dose", "service": "translational", "call": "TranslateDose", "state": "succeeded", "attempts": 1,
     "started_ms": 1795719662100, "finished_ms": 1795719662200,
     "output": {"heds": [
         {"species": "rat", "noael_mg_per_kg": 50, "body_weight_kg": 0.15, "km": 6, "conversion_factor": 6.2,
          "hed_mg_per_kg": 8.06, "source": "FDA 2005 Table 1"},
         {"species": "dog", "noael_mg_per_kg": 20, "body_weight_kg": 10, "km": 20, "conversion_factor": 1.8,
          "hed_mg_per_kg": 11.1, "source": "FDA 2005 Table 1"}],
       "chosen_species": "rat", "species_reason": "most sensitive species (lowest HED)",
       "hed_mg_per_kg": 8.06, "safety_factor": 10, "safety_factor_reason": "default",
       "mrsd_mg_per_kg": 0.806, "human_weight_kg": 60, "mrsd_mg": 48.4,
       "working": {"method": "body surface area", "guidance": "FDA 2005 MRSD guidance", "steps": [
         {"label": "HED of the rat", "formula": "HED = NOAEL x (Km_animal / Km_human)",
          "inputs": [{"name": "NOAEL", "value": 50, "unit": "mg/kg"}, {"name": "Km_rat", "value": 6, "unit": ""}],
          "result": {"name": "HED", "value": 8.06, "unit": "mg/kg"}, "reference": "FDA 2005 Table 1"},
         {"label": "MRSD", "formula": "MRSD = HED / SF x 60 kg",
          "inputs": [{"name": "SF", "value": 10, "unit": ""}],
          "result": {"name": "MRSD", "value": 48.4, "unit": "mg"}, "reference": "FDA 2005 step 4"}],
         "notes": []}}},
    {"id": "flags", "service": "local", "call": "flag_organ_classes", "state": "succeeded", "attempts": 1,
     "started_ms": 1795719664200, "finished_ms": 1795719664210,
     "output": {"organ_classes": ["Hepatobiliary disorders"],
       "evidence": [{"task": "SR-p53", "probability": 0.71, "prediction_set": "positive",
                     "organ_classes": ["Hepatobiliary disorders"]}]}},
    {"id": "reverse", "service": "reverse", "call": "ReverseTranslate", "state": "succeeded", "attempts": 1,
     "started_ms": 1795719664300, "finished_ms": 1795719664900,
     "output": {"organ_classes": [{"organ_class": "Hepatobiliary disorders", "matched_terms": ["hepatitis"],
         "assays": [
           {"clinical_label": "Hepatobiliary disorders", "assay": "SR-p53", "a": 40, "b": 60, "c": 80, "d": 820,
            "sufficient_evidence": true, "odds_ratio": 6.83, "ci_low": 4.3, "ci_high": 10.8,
            "p_value": 1e-12, "q_value": 1e-11, "significant": true, "in_table_family": true,
            "evidence": "40 of 120 assay-positive compounds"},
           {"clinical_label": "Hepatobiliary disorders", "assay": "NR-AR", "a": 5, "b": 95, "c": 45, "d": 855,
            "sufficient_evidence": true, "odds_ratio": 1.0, "ci_low": 0.39, "ci_high": 2.6,
            "p_value": 0.99, "q_value": 0.99, "significant": false, "in_table_family": false,
            "evidence": "5 of 50"}],
         "endpoints": [{"domain": "LB", "code": "ALT", "note": "alanine aminotransferase"},
                       {"domain": "MI", "code": "LIVER", "note": "histopathology"}],
         "none_reason": "", "rationale": "hepatotoxicity signals map to liver enzymes and histopathology",
         "reference": "Olson 2000"}],
       "label_associations": [], "counts_study": "reverse-counts", "counts_version": 1,
       "counts_sites": 3, "counts_compounds": 1000, "counts_secure": true}},
    {"id": "levels", "service": "local", "call": "dose_levels", "state": "succeeded", "attempts": 1,
     "started_ms": 1795719664300, "finished_ms": 1795719664301,
     "output": {"dose_mg": [48.4, 145, 484, 1452, 2904]}},
    {"id": "virtual_trial", "service": "trial", "call": "RunVirtualTrial", "state": "succeeded", "attempts": 1,
     "started_ms": 1795719664400, "finished_ms": 1795719669000,
     "output": {"dose_mg": [48.4, 145, 484, 1452, 2904], "auc_median": [2, 6, 20, 60, 120],
       "auc_p05": [1, 3, 10, 30, 60], "auc_p95": [4, 12, 40, 120, 240],
       "p_dlt": [0.01, 0.04, 0.15, 0.38, 0.61], "p_response": [0.05, 0.15, 0.4, 0.65, 0.8],
       "oc": {"design": "boin", "trials": 1000, "seed": 1,
         "selection_pct": [1.5, 12.0, 52.3, 28.1, 3.0], "patients_mean": [3.5, 6.2, 10.1, 6.0, 1.2],
         "dlt_mean": [0.04, 0.25, 1.5, 2.3, 0.7], "early_stop_pct": 3.1, "correct_selection_pct": 52.3,
         "patients_total_mean": 27.0, "dlt_total_mean": 4.8},
       "working": {"method": "virtual population", "steps": [], "notes": ["2000 virtual patients"]}}},
    {"id": "escalation_3p3", "service": "trial", "call": "SimulateEscalation", "state": "succeeded",
     "attempts": 1, "started_ms": 1795719669100, "finished_ms": 1795719671000,
     "output": {"design": "3+3", "trials": 1000, "seed": 1,
       "selection_pct": [4.0, 20.5, 41.0, 22.0, 2.5], "patients_mean": [3.3, 4.1, 4.8, 3.0, 0.8],
       "dlt_mean": [0.03, 0.16, 0.72, 1.1, 0.5], "early_stop_pct": 10.0, "correct_selection_pct": 41.0,
       "patients_total_mean": 16.0, "dlt_total_mean": 2.5}}
  ],
  "output": {"verdict": "proceed_with_conditions",
    "summary": "proceed with conditions: start at 48.4 mg; monitor liver enzymes",
    "findings": [
      {"label": "MRSD", "value": 48.4, "unit": "mg", "step": "dose", "field": "mrsd_mg", "model": {}},
      {"label": "SR-p53 probability", "value": 0.71, "unit": "", "step": "tox",
       "field": "results[0].tasks[1].probability", "model": {"study_id": "tox21-demo", "model_version": 3}}],
    "conditions": ["monitor ALT in the in-vivo studies"], "missing": []},
  "summary": "proceed with conditions", "report_id": "", "report_error": ""
})json");
}

// The charts FirstInHumanRun() yields.
inline std::set<std::string> FirstInHumanCharts() {
  return {"tox-tox-0",        "tox-toxcast-0", "clinical-clinical-0",
          "phase-clinical-0", "hed-dose",      "virtual-trial-virtual_trial",
          "oc-selection",     "oc-patients",   "oc-dlts",
          "assoc-reverse-0",  "timeline"};
}

// The step of `run` with id `id` (it must exist).
inline nlohmann::json& StepById(nlohmann::json& run, const std::string& id) {
  for (nlohmann::json& s : run["steps"]) {
    if (s["id"] == id) return s;
  }
  throw std::out_of_range("no step " + id);
}

inline StudyView ThreeRoundStudy() {
  StudyView v;
  v.spec.study_id = "tox21-demo";
  v.spec.name = "Tox21 federated";
  v.spec.tasks = {"NR-AR", "SR-p53"};
  v.spec.rounds = 3;
  v.spec.min_sites = 2;
  v.spec.strategy = "fedavg";
  v.spec.sites = {"site-a", "site-b", "site-c"};
  v.spec.dp_clip_norm = 1.0f;
  v.spec.dp_noise_multiplier = 0.8f;
  v.spec.dp_epsilon_budget = 10;
  v.state = "completed";
  v.current_round = 3;
  v.model_version = 3;
  const double roc[] = {0.61, 0.68, 0.72};
  for (std::uint32_t r = 1; r <= 3; ++r) {
    StudyRoundView round;
    round.round = r;
    round.state = "closed";
    round.base_version = r - 1;
    round.selected = {"site-a", "site-b", "site-c"};
    round.contributed = r == 2 ? std::vector<std::string>{"site-a", "site-c"} : round.selected;
    round.samples = 3000;
    round.started_ms = 1795719662000 + r * 10000;
    round.closed_ms = round.started_ms + 8000;
    round.metrics = {{"valid_mean_roc_auc", roc[r - 1]},
                     {"valid_mean_pr_auc", roc[r - 1] - 0.3},
                     {"valid_roc_auc:NR-AR", roc[r - 1] - 0.02},
                     {"valid_roc_auc:SR-p53", roc[r - 1] + 0.02},
                     {"privacy_epsilon", 1.5 * r}};
    v.rounds.push_back(round);
  }
  return v;
}

// A parsed page; null doc when the XML parser refused it (error then says why).
struct XmlPage {
  std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc{nullptr, &xmlFreeDoc};
  std::string error;
};

inline XmlPage ParseXml(const std::string& text) {
  XmlPage page;
  xmlResetLastError();
  xmlDocPtr doc = xmlReadMemory(text.data(), static_cast<int>(text.size()), "report.html", "UTF-8",
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  page.doc.reset(doc);
  if (doc == nullptr) {
    const xmlError* e = xmlGetLastError();
    page.error = e != nullptr && e->message != nullptr
                     ? std::string(e->message) + " at line " + std::to_string(e->line)
                     : "unknown XML error";
  }
  return page;
}

// Evaluates `xpath` on `doc`: the number of nodes it selects.
inline int CountNodes(xmlDoc* doc, const std::string& xpath, xmlNode* context = nullptr) {
  std::unique_ptr<xmlXPathContext, decltype(&xmlXPathFreeContext)> ctx(xmlXPathNewContext(doc),
                                                                       &xmlXPathFreeContext);
  if (context != nullptr) ctx->node = context;
  std::unique_ptr<xmlXPathObject, decltype(&xmlXPathFreeObject)> obj(
      xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(xpath.c_str()), ctx.get()),
      &xmlXPathFreeObject);
  if (!obj || obj->nodesetval == nullptr) return 0;
  return obj->nodesetval->nodeNr;
}

// Each chart's name -> its drawn marks (titled rect, path, circle: data, not axes or legends).
inline std::map<std::string, int> ChartMarks(xmlDoc* doc) {
  std::map<std::string, int> out;
  std::unique_ptr<xmlXPathContext, decltype(&xmlXPathFreeContext)> ctx(xmlXPathNewContext(doc),
                                                                       &xmlXPathFreeContext);
  std::unique_ptr<xmlXPathObject, decltype(&xmlXPathFreeObject)> obj(
      xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>("//svg[@class='chart']"), ctx.get()),
      &xmlXPathFreeObject);
  if (!obj || obj->nodesetval == nullptr) return out;
  for (int i = 0; i < obj->nodesetval->nodeNr; ++i) {
    xmlNode* svg = obj->nodesetval->nodeTab[i];
    xmlChar* name = xmlGetProp(svg, reinterpret_cast<const xmlChar*>("data-chart"));
    const std::string key = name != nullptr ? reinterpret_cast<const char*>(name) : "";
    xmlFree(name);
    out[key] = CountNodes(doc, ".//rect[title]|.//path|.//circle", svg);
  }
  return out;
}

}  // namespace fedrx::report::testing
