#include "services/cli/design_json.h"

#include <iomanip>
#include <ostream>

#include <nlohmann/json.hpp>

namespace fedrx::cli {
namespace {

using nlohmann::json;

json ToJson(const codec::Quantity& q) {
  return json{{"name", q.name}, {"value", q.value}, {"unit", q.unit}};
}

json Quantities(const std::vector<codec::Quantity>& v) {
  json out = json::array();
  for (const auto& q : v) out.push_back(ToJson(q));
  return out;
}

}  // namespace

json ToJson(const codec::Working& w) {
  json steps = json::array();
  for (const auto& s : w.steps) {
    steps.push_back(json{{"label", s.label},
                         {"formula", s.formula},
                         {"inputs", Quantities(s.inputs)},
                         {"result", ToJson(s.result)},
                         {"reference", s.reference}});
  }
  return json{{"method", w.method}, {"guidance", w.guidance}, {"steps", steps}, {"notes", w.notes}};
}

json ToJson(const codec::DoseTranslation& a) {
  json heds = json::array();
  for (const auto& h : a.heds) {
    heds.push_back(json{{"species", h.species},
                        {"noael_mg_per_kg", h.noael_mg_per_kg},
                        {"body_weight_kg", h.body_weight_kg},
                        {"km", h.km},
                        {"conversion_factor", h.conversion_factor},
                        {"hed_mg_per_kg", h.hed_mg_per_kg},
                        {"source", h.source}});
  }
  return json{{"heds", heds},
              {"chosen_species", a.chosen_species},
              {"species_reason", a.species_reason},
              {"hed_mg_per_kg", a.hed_mg_per_kg},
              {"safety_factor", a.safety_factor},
              {"safety_factor_reason", a.safety_factor_reason},
              {"mrsd_mg_per_kg", a.mrsd_mg_per_kg},
              {"human_weight_kg", a.human_weight_kg},
              {"mrsd_mg", a.mrsd_mg},
              {"working", ToJson(a.working)}};
}

json ToJson(const codec::PkProfile& a) {
  json metrics = json::object();
  for (const auto& m : a.metrics) metrics[m.name] = json{{"value", m.value}, {"unit", m.unit}};
  return json{{"times_h", a.times_h},
              {"conc_mg_per_l", a.conc_mg_per_l},
              {"metrics", metrics},
              {"working", ToJson(a.working)}};
}

json ToJson(const codec::PkFit& a) {
  json estimates = json::array();
  for (const auto& e : a.estimates) {
    estimates.push_back(json{
        {"name", e.name}, {"value", e.value}, {"std_error", e.std_error}, {"unit", e.unit}});
  }
  return json{{"estimates", estimates},   {"residual_se", a.residual_se},
              {"df", a.df},               {"iterations", a.iterations},
              {"fitted", a.fitted},       {"working", ToJson(a.working)}};
}

json ToJson(const codec::SampleSizeResult& a) {
  json out{{"test", a.test},
           {"n", a.n},
           {"n_per_group", a.n_per_group},
           {"n_total", a.n_total},
           {"power", a.power},
           {"working", ToJson(a.working)}};
  if (a.test == "log_rank") {
    out["events"] = a.events;
    out["event_probability"] = a.event_probability;
  }
  if (a.test == "simon_two_stage") {
    out["simon"] = json{{"r1", a.simon_r1},         {"n1", a.simon_n1},
                        {"r", a.simon_r},           {"n", a.simon_n},
                        {"en0", a.simon_en0},       {"pet0", a.simon_pet0},
                        {"achieved_alpha", a.achieved_alpha}};
  }
  return out;
}

json ToJson(const codec::OperatingCharacteristics& a) {
  json boundaries = json::array();
  for (const auto& b : a.boundaries) {
    boundaries.push_back(json{{"n", b.n},
                              {"escalate_at_most", b.escalate_at_most},
                              {"deescalate_at_least", b.deescalate_at_least},
                              {"eliminate_at_least", b.eliminate_at_least}});
  }
  json out{{"design", a.design},
           {"trials", a.trials},
           {"seed", a.seed},
           {"selection_pct", a.selection_pct},
           {"patients_mean", a.patients_mean},
           {"dlt_mean", a.dlt_mean},
           {"early_stop_pct", a.early_stop_pct},
           {"correct_selection_pct", a.correct_selection_pct},
           {"patients_total_mean", a.patients_total_mean},
           {"dlt_total_mean", a.dlt_total_mean},
           {"working", ToJson(a.working)}};
  if (a.design == "boin") {
    out["lambda_e"] = a.lambda_e;
    out["lambda_d"] = a.lambda_d;
    out["boundaries"] = boundaries;
  }
  return out;
}

json ToJson(const codec::VirtualTrialResult& a) {
  return json{{"dose_mg", a.dose_mg},       {"auc_median", a.auc_median},
              {"auc_p05", a.auc_p05},       {"auc_p95", a.auc_p95},
              {"p_dlt", a.p_dlt},           {"p_response", a.p_response},
              {"oc", ToJson(a.oc)},         {"working", ToJson(a.working)}};
}

json ToJson(const ingest::cdm::NoaelProposal& p) {
  json groups = json::array();
  for (const auto& g : p.groups) {
    json bw = json::object();
    for (const auto& [sex, pct] : g.bw_change_vs_control_pct) bw[sex.empty() ? "all" : sex] = pct;
    json row{{"set_code", g.set_code}, {"label", g.label},     {"dose_unit", g.dose_unit},
             {"control", g.control},   {"adverse", g.adverse}, {"reason", g.reason},
             {"bw_change_vs_control_pct", bw}};
    row["dose"] = g.dose ? json(*g.dose) : json(nullptr);
    row["alt_fold_vs_control"] =
        g.alt_fold_vs_control ? json(*g.alt_fold_vs_control) : json(nullptr);
    groups.push_back(std::move(row));
  }
  return json{{"study_id", p.study_id},
              {"species", p.species},
              {"strain", p.strain},
              {"route", p.route},
              {"duration", p.duration},
              {"noael", p.noael},
              {"noael_unit", p.noael_unit},
              {"noael_set_code", p.noael_set_code},
              {"noael_label", p.noael_label},
              {"rule", p.rule},
              {"groups", groups}};
}

void PrintWorking(const codec::Working& w, std::ostream& out) {
  out << "working: " << w.method << "\n";
  if (!w.guidance.empty()) out << "  following: " << w.guidance << "\n";
  int i = 0;
  for (const auto& s : w.steps) {
    out << "  " << ++i << ". " << s.label << "\n";
    if (!s.formula.empty()) out << "     " << s.formula << "\n";
    if (!s.inputs.empty()) {
      out << "     with";
      for (const auto& q : s.inputs) {
        out << " " << q.name << " = " << std::setprecision(6) << q.value
            << (q.unit.empty() ? "" : " " + q.unit) << ";";
      }
      out << "\n";
    }
    out << "     => " << s.result.name << " = " << std::setprecision(6) << s.result.value
        << (s.result.unit.empty() ? "" : " " + s.result.unit);
    if (!s.reference.empty()) out << "   [" << s.reference << "]";
    out << "\n";
  }
  for (const auto& n : w.notes) out << "  note: " << n << "\n";
}

}  // namespace fedrx::cli
