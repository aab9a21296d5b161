#include "services/cli/design_command.h"

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "services/cli/design_json.h"
#include "services/ingest/cdm_io.h"
#include "services/ingest/dataset_store.h"
#include "services/ingest/noael.h"

namespace fedrx::cli {

namespace {

using nlohmann::json;

// SPECIES=MG_PER_KG[@BODY_WEIGHT_KG]
core::Result<codec::SpeciesNoael> ParseNoael(const std::string& item) {
  const auto eq = item.find('=');
  if (eq == std::string::npos || eq == 0) {
    return core::InvalidArgument("'" + item + "' is not SPECIES=MG_PER_KG[@BODY_WEIGHT_KG]",
                                 "--noael");
  }
  codec::SpeciesNoael n;
  n.species = item.substr(0, eq);
  n.source = "request";
  std::string dose = item.substr(eq + 1);
  std::string weight;
  if (const auto at = dose.find('@'); at != std::string::npos) {
    weight = dose.substr(at + 1);
    dose = dose.substr(0, at);
  }
  Options one;
  one.flags["noael"] = dose;
  FEDRX_ASSIGN_OR_RETURN(n.noael_mg_per_kg, NumberOr(one, "noael", 0));
  if (!weight.empty()) {
    one.flags["noael"] = weight;
    FEDRX_ASSIGN_OR_RETURN(n.body_weight_kg, NumberOr(one, "noael", 0));
  }
  return n;
}

core::Result<ingest::cdm::NoaelProposal> NoaelFromStudy(const Options& o, const std::string& root) {
  FEDRX_ASSIGN_OR_RETURN(ingest::DatasetStore store, ingest::DatasetStore::Open(root, false));
  FEDRX_ASSIGN_OR_RETURN(std::optional<ingest::StoreVersion> current, store.Current());
  if (!current) return core::NotFound("the store has no ingested version yet", root);
  FEDRX_ASSIGN_OR_RETURN(ingest::cdm::StudyData study, ingest::cdm::ReadCdm(current->dir + "/cdm"));
  ingest::cdm::NoaelRule rule;
  FEDRX_ASSIGN_OR_RETURN(rule.bw_gain_drop_pct, NumberOr(o, "bw-drop", rule.bw_gain_drop_pct));
  FEDRX_ASSIGN_OR_RETURN(rule.alt_fold, NumberOr(o, "alt-fold", rule.alt_fold));
  rule.noael_set_code = TextOr(o, "noael-group", "");
  return ingest::cdm::ProposeNoael(study, rule);
}

void PrintNoael(const ingest::cdm::NoaelProposal& p, std::ostream& out) {
  out << "NOAEL proposed at this institution from study " << p.study_id << " (" << p.species
      << (p.strain.empty() ? "" : " " + p.strain) << ", " << p.route << ", " << p.duration
      << ")\n  rule: " << p.rule << "\n";
  out << "  " << std::left << std::setw(6) << "SET" << std::setw(28) << "GROUP" << std::right
      << std::setw(10) << "DOSE"
      << "  " << std::left << "EVIDENCE\n";
  for (const auto& g : p.groups) {
    std::ostringstream dose;
    if (g.dose) dose << *g.dose << " " << g.dose_unit;
    out << "  " << std::left << std::setw(6) << g.set_code << std::setw(28) << g.label.substr(0, 27)
        << std::right << std::setw(10) << dose.str() << "  " << std::left
        << (g.adverse ? "ADVERSE: " : "") << g.reason << "\n";
  }
  out << "  NOAEL " << p.noael << " " << p.noael_unit << " (group " << p.noael_set_code << ")\n";
}

core::Status Translate(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::TranslateDose r;
  if (auto it = o.flags.find("noael"); it != o.flags.end()) {
    for (const std::string& item : SplitComma(it->second)) {
      FEDRX_ASSIGN_OR_RETURN(codec::SpeciesNoael n, ParseNoael(item));
      r.noaels.push_back(std::move(n));
    }
  }
  json evidence;
  if (auto it = o.flags.find("from-study"); it != o.flags.end()) {
    FEDRX_ASSIGN_OR_RETURN(ingest::cdm::NoaelProposal p, NoaelFromStudy(o, it->second));
    PrintNoael(p, out);
    evidence = ToJson(p);
    codec::SpeciesNoael n;
    n.species = p.species;
    n.noael_mg_per_kg = p.noael;
    n.source = "SEND study " + p.study_id + ", group " + p.noael_set_code + " (" + p.noael_label +
               "), " + p.noael_unit + "; proposed at the institution by: " + p.rule;
    r.noaels.push_back(std::move(n));
  }
  if (r.noaels.empty()) {
    return core::InvalidArgument("give --noael SPECIES=MG_PER_KG,... or --from-study STORE",
                                 "--noael");
  }
  r.species = TextOr(o, "species", r.species);
  r.species_reason = TextOr(o, "species-reason", r.species_reason);
  r.safety_factor_reason = TextOr(o, "safety-factor-reason", r.safety_factor_reason);
  r.method = TextOr(o, "method", r.method);
  FEDRX_ASSIGN_OR_RETURN(r.safety_factor, NumberOr(o, "safety-factor", r.safety_factor));
  FEDRX_ASSIGN_OR_RETURN(r.exponent, NumberOr(o, "exponent", r.exponent));
  FEDRX_ASSIGN_OR_RETURN(r.human_weight_kg, NumberOr(o, "human-weight", r.human_weight_kg));
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::DoseTranslation a, Expect<codec::DoseTranslation>(std::move(m)));
  out << std::left << std::setw(22) << "SPECIES" << std::right << std::setw(14) << "NOAEL mg/kg"
      << std::setw(8) << "Km" << std::setw(14) << "HED mg/kg"
      << "\n";
  for (const auto& h : a.heds) {
    out << std::left << std::setw(22) << h.species << std::right << std::setw(14)
        << h.noael_mg_per_kg << std::setw(8) << h.km << std::setw(14) << std::setprecision(4)
        << h.hed_mg_per_kg << "\n";
  }
  out << "species: " << a.chosen_species << " (" << a.species_reason << ")\n"
      << "HED " << std::setprecision(4) << a.hed_mg_per_kg << " mg/kg; safety factor "
      << a.safety_factor << " (" << a.safety_factor_reason << ")\n"
      << "MRSD " << a.mrsd_mg_per_kg << " mg/kg = " << a.mrsd_mg << " mg for a "
      << a.human_weight_kg << " kg adult\n";
  PrintWorking(a.working, out);
  json j = ToJson(a);
  if (!evidence.is_null()) j["noael_from_study"] = evidence;
  return WriteJsonIfAsked(o, j);
}

core::Result<codec::PkModel> PkModelFrom(const Options& o) {
  codec::PkModel m;
  FEDRX_ASSIGN_OR_RETURN(m.kind, Required(o, "model"));
  FEDRX_ASSIGN_OR_RETURN(m.cl_l_per_h, NumberOr(o, "cl", 0));
  FEDRX_ASSIGN_OR_RETURN(m.v_l, NumberOr(o, "v", 0));
  FEDRX_ASSIGN_OR_RETURN(m.ka_per_h, NumberOr(o, "ka", 0));
  FEDRX_ASSIGN_OR_RETURN(m.bioavailability, NumberOr(o, "f", 1));
  FEDRX_ASSIGN_OR_RETURN(m.q_l_per_h, NumberOr(o, "q", 0));
  FEDRX_ASSIGN_OR_RETURN(m.v2_l, NumberOr(o, "v2", 0));
  return m;
}

void PrintMetrics(const std::vector<codec::Quantity>& metrics, std::ostream& out) {
  for (const auto& q : metrics) {
    out << "  " << std::left << std::setw(20) << q.name << std::right << std::setw(14)
        << std::setprecision(5) << q.value << " " << q.unit << "\n";
  }
}

core::Status Pk(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::SimulatePk r;
  FEDRX_ASSIGN_OR_RETURN(r.model, PkModelFrom(o));
  FEDRX_ASSIGN_OR_RETURN(r.dose_mg, NumberOr(o, "dose", 0));
  FEDRX_ASSIGN_OR_RETURN(r.tau_h, NumberOr(o, "tau", 0));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t doses, IntegerOr(o, "doses", 1, 1, 10000));
  r.doses = static_cast<std::int32_t>(doses);
  FEDRX_ASSIGN_OR_RETURN(r.times_h, NumbersOr(o, "times"));
  FEDRX_ASSIGN_OR_RETURN(r.noael_auc_mg_h_per_l, NumberOr(o, "noael-auc", 0));
  FEDRX_ASSIGN_OR_RETURN(r.noael_cmax_mg_per_l, NumberOr(o, "noael-cmax", 0));
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::PkProfile a, Expect<codec::PkProfile>(std::move(m)));
  out << "profile: " << a.times_h.size() << " time points\n";
  PrintMetrics(a.metrics, out);
  PrintWorking(a.working, out);
  return WriteJsonIfAsked(o, ToJson(a));
}

core::Status Fit(core::Bus& bus, const Options& o, std::ostream& out) {
  FEDRX_ASSIGN_OR_RETURN(std::string path, Required(o, "data"));
  std::ifstream f(path);
  if (!f) return core::NotFound("cannot read the data file", path);
  codec::FitPk r;
  FEDRX_ASSIGN_OR_RETURN(r.dose_mg, NumberOr(o, "dose", 0));
  std::string line;
  int line_no = 0;
  while (std::getline(f, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto cells = SplitComma(line);
    Options row;
    if (cells.size() != 2) {
      return core::InvalidArgument("expected two columns, time_h,conc_mg_per_l",
                                   path + ":" + std::to_string(line_no));
    }
    row.flags["t"] = cells[0];
    row.flags["c"] = cells[1];
    auto t = NumberOr(row, "t", 0);
    auto c = NumberOr(row, "c", 0);
    if (!t.ok() || !c.ok()) {
      if (line_no == 1) continue;  // a header
      return core::InvalidArgument("'" + line + "' is not two numbers",
                                   path + ":" + std::to_string(line_no));
    }
    r.times_h.push_back(*t);
    r.conc_mg_per_l.push_back(*c);
  }
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::PkFit a, Expect<codec::PkFit>(std::move(m)));
  out << std::left << std::setw(10) << "PARAMETER" << std::right << std::setw(14) << "ESTIMATE"
      << std::setw(14) << "STD ERROR"
      << "\n";
  for (const auto& e : a.estimates) {
    out << std::left << std::setw(10) << e.name << std::right << std::setw(14)
        << std::setprecision(5) << e.value << std::setw(14) << e.std_error << " " << e.unit << "\n";
  }
  out << "residual SE " << a.residual_se << " on " << a.df << " df, " << a.iterations
      << " iterations\n";
  PrintWorking(a.working, out);
  return WriteJsonIfAsked(o, ToJson(a));
}

core::Status SampleSize(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::ComputeSampleSize r;
  FEDRX_ASSIGN_OR_RETURN(r.test, Required(o, "test"));
  r.solve_for = TextOr(o, "solve", r.solve_for);
  r.simon_design = TextOr(o, "simon-design", r.simon_design);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t sides, IntegerOr(o, "sides", r.sides, 1, 2));
  r.sides = static_cast<std::int32_t>(sides);
  FEDRX_ASSIGN_OR_RETURN(r.alpha, NumberOr(o, "alpha", r.alpha));
  FEDRX_ASSIGN_OR_RETURN(r.power, NumberOr(o, "power", r.power));
  FEDRX_ASSIGN_OR_RETURN(r.n, NumberOr(o, "n", r.n));
  FEDRX_ASSIGN_OR_RETURN(r.delta, NumberOr(o, "delta", r.delta));
  FEDRX_ASSIGN_OR_RETURN(r.sd, NumberOr(o, "sd", r.sd));
  FEDRX_ASSIGN_OR_RETURN(r.p0, NumberOr(o, "p0", r.p0));
  FEDRX_ASSIGN_OR_RETURN(r.p1, NumberOr(o, "p1", r.p1));
  FEDRX_ASSIGN_OR_RETURN(r.p2, NumberOr(o, "p2", r.p2));
  FEDRX_ASSIGN_OR_RETURN(r.hazard_ratio, NumberOr(o, "hr", r.hazard_ratio));
  FEDRX_ASSIGN_OR_RETURN(r.allocation, NumberOr(o, "allocation", r.allocation));
  FEDRX_ASSIGN_OR_RETURN(r.accrual_time, NumberOr(o, "accrual", r.accrual_time));
  FEDRX_ASSIGN_OR_RETURN(r.follow_up, NumberOr(o, "follow-up", r.follow_up));
  FEDRX_ASSIGN_OR_RETURN(r.median_control, NumberOr(o, "median-control", r.median_control));
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::SampleSizeResult a, Expect<codec::SampleSizeResult>(std::move(m)));
  out << a.test << ": n = " << std::setprecision(6) << a.n << " (" << a.n_per_group
      << " per group, " << a.n_total << " in all), power " << a.power << "\n";
  if (a.test == "log_rank") {
    out << "events " << a.events << ", probability of an event " << a.event_probability << "\n";
  }
  if (a.test == "simon_two_stage") {
    out << "stage 1: stop if <= " << a.simon_r1 << " responses of " << a.simon_n1
        << "; overall: reject if <= " << a.simon_r << " of " << a.simon_n << "; EN0 " << a.simon_en0
        << ", PET0 " << a.simon_pet0 << ", alpha " << a.achieved_alpha << "\n";
  }
  PrintWorking(a.working, out);
  return WriteJsonIfAsked(o, ToJson(a));
}

core::Result<codec::EscalationDesign> DesignFrom(const Options& o) {
  codec::EscalationDesign d;
  FEDRX_ASSIGN_OR_RETURN(d.design, Required(o, "design"));
  FEDRX_ASSIGN_OR_RETURN(d.target, NumberOr(o, "target", d.target));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t cohort, IntegerOr(o, "cohort", d.cohort_size, 1, 100));
  d.cohort_size = static_cast<std::int32_t>(cohort);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t max_n,
                         IntegerOr(o, "max-patients", d.max_patients, 1, 10000));
  d.max_patients = static_cast<std::int32_t>(max_n);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t start, IntegerOr(o, "start", d.start_dose, 1, 1000));
  d.start_dose = static_cast<std::int32_t>(start);
  FEDRX_ASSIGN_OR_RETURN(d.skeleton, NumbersOr(o, "skeleton"));
  FEDRX_ASSIGN_OR_RETURN(d.prior_sd, NumberOr(o, "prior-sd", d.prior_sd));
  FEDRX_ASSIGN_OR_RETURN(d.overdose_probability, NumberOr(o, "overdose", d.overdose_probability));
  FEDRX_ASSIGN_OR_RETURN(d.elimination_cutoff, NumberOr(o, "elimination", d.elimination_cutoff));
  const std::string extra = TextOr(o, "extra-safe", "no");
  if (extra != "yes" && extra != "no") {
    return core::InvalidArgument("'" + extra + "' is not yes or no", "--extra-safe");
  }
  d.extra_safe = extra == "yes";
  FEDRX_ASSIGN_OR_RETURN(d.phi1, NumberOr(o, "phi1", d.phi1));
  FEDRX_ASSIGN_OR_RETURN(d.phi2, NumberOr(o, "phi2", d.phi2));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t stop, IntegerOr(o, "stop-at", d.stop_at_n, 0, 10000));
  d.stop_at_n = static_cast<std::int32_t>(stop);
  return d;
}

void PrintOc(const codec::OperatingCharacteristics& a, const std::vector<double>& true_tox,
             std::ostream& out) {
  out << a.design << ": " << a.trials << " simulated trials (seed " << a.seed << ")\n";
  out << std::right << std::setw(6) << "DOSE" << std::setw(10) << "TRUE P" << std::setw(12)
      << "SELECTED %" << std::setw(12) << "PATIENTS" << std::setw(10) << "DLTS"
      << "\n";
  for (std::size_t i = 0; i < a.selection_pct.size(); ++i) {
    out << std::setw(6) << i + 1 << std::setw(10) << std::setprecision(3)
        << (i < true_tox.size() ? true_tox[i] : 0.0) << std::setw(12) << std::setprecision(4)
        << a.selection_pct[i] << std::setw(12)
        << (i < a.patients_mean.size() ? a.patients_mean[i] : 0) << std::setw(10)
        << (i < a.dlt_mean.size() ? a.dlt_mean[i] : 0) << "\n";
  }
  out << "early stop " << a.early_stop_pct << "%, correct selection " << a.correct_selection_pct
      << "%, patients " << a.patients_total_mean << ", DLTs " << a.dlt_total_mean << "\n";
  if (a.design == "boin") {
    out << "BOIN boundaries: lambda_e " << a.lambda_e << ", lambda_d " << a.lambda_d << "\n";
  }
}

core::Status Escalate(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::SimulateEscalation r;
  FEDRX_ASSIGN_OR_RETURN(r.design, DesignFrom(o));
  FEDRX_ASSIGN_OR_RETURN(r.true_tox, NumbersOr(o, "tox"));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t trials, IntegerOr(o, "trials", r.trials, 1, 1000000));
  r.trials = static_cast<std::int32_t>(trials);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t seed, IntegerOr(o, "seed", 1, 0, INT64_MAX));
  r.seed = static_cast<std::uint64_t>(seed);
  const std::vector<double> true_tox = r.true_tox;
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::OperatingCharacteristics a,
                         Expect<codec::OperatingCharacteristics>(std::move(m)));
  PrintOc(a, true_tox, out);
  PrintWorking(a.working, out);
  return WriteJsonIfAsked(o, ToJson(a));
}

core::Status Virtual(core::Bus& bus, const Options& o, std::ostream& out) {
  codec::RunVirtualTrial r;
  FEDRX_ASSIGN_OR_RETURN(r.model, PkModelFrom(o));
  FEDRX_ASSIGN_OR_RETURN(r.bsv_cv, NumberOr(o, "bsv-cv", r.bsv_cv));
  FEDRX_ASSIGN_OR_RETURN(r.dose_mg, NumbersOr(o, "doses-mg"));
  FEDRX_ASSIGN_OR_RETURN(r.start_dose_mg, NumberOr(o, "start-dose", 0));
  if (auto it = o.flags.find("start-from"); it != o.flags.end()) {
    std::ifstream f(it->second);
    if (!f) return core::NotFound("cannot read the dose translation", it->second);
    json j = json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("mrsd_mg") || !j["mrsd_mg"].is_number()) {
      return core::InvalidArgument("not a `dose translate --json` answer (no mrsd_mg)", it->second);
    }
    r.start_dose_mg = j["mrsd_mg"].get<double>();
  }
  FEDRX_ASSIGN_OR_RETURN(r.tox_auc50, NumberOr(o, "tox-auc50", 0));
  FEDRX_ASSIGN_OR_RETURN(r.tox_hill, NumberOr(o, "tox-hill", r.tox_hill));
  FEDRX_ASSIGN_OR_RETURN(r.response_auc50, NumberOr(o, "response-auc50", r.response_auc50));
  FEDRX_ASSIGN_OR_RETURN(r.response_hill, NumberOr(o, "response-hill", r.response_hill));
  FEDRX_ASSIGN_OR_RETURN(r.response_emax, NumberOr(o, "response-emax", r.response_emax));
  FEDRX_ASSIGN_OR_RETURN(r.design, DesignFrom(o));
  FEDRX_ASSIGN_OR_RETURN(std::int64_t trials, IntegerOr(o, "trials", r.trials, 1, 1000000));
  r.trials = static_cast<std::int32_t>(trials);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t population,
                         IntegerOr(o, "population", r.population, 1, 10000000));
  r.population = static_cast<std::int32_t>(population);
  FEDRX_ASSIGN_OR_RETURN(std::int64_t seed, IntegerOr(o, "seed", 1, 0, INT64_MAX));
  r.seed = static_cast<std::uint64_t>(seed);
  FEDRX_ASSIGN_OR_RETURN(codec::Message m, Ask(bus, o, std::move(r)));
  FEDRX_ASSIGN_OR_RETURN(codec::VirtualTrialResult a,
                         Expect<codec::VirtualTrialResult>(std::move(m)));
  out << std::right << std::setw(6) << "DOSE" << std::setw(12) << "MG" << std::setw(14)
      << "AUC MEDIAN" << std::setw(20) << "AUC 5-95%" << std::setw(10) << "P(DLT)" << std::setw(12)
      << "P(RESP)"
      << "\n";
  for (std::size_t i = 0; i < a.dose_mg.size(); ++i) {
    std::ostringstream range;
    range << std::setprecision(4) << a.auc_p05.at(i) << "-" << a.auc_p95.at(i);
    out << std::setw(6) << i + 1 << std::setw(12) << std::setprecision(4) << a.dose_mg[i]
        << std::setw(14) << a.auc_median.at(i) << std::setw(20) << range.str() << std::setw(10)
        << std::setprecision(3) << a.p_dlt.at(i) << std::setw(12) << a.p_response.at(i) << "\n";
  }
  PrintOc(a.oc, a.p_dlt, out);
  PrintWorking(a.working, out);
  return WriteJsonIfAsked(o, ToJson(a));
}

}  // namespace

bool IsDesignCommand(const Options& o) {
  return !o.command.empty() && (o.command[0] == "dose" || o.command[0] == "trial");
}

core::Status RunDesignCommand(core::Bus& bus, const Options& given, std::ostream& out) {
  // Simulations take seconds: without --timeout, wait as long as the gateway does.
  Options o = given;
  if (!o.timeout_given) o.timeout = std::chrono::seconds(60);
  const auto& c = o.command;
  if (!o.via_gateway) {
    return core::InvalidArgument(
        "dose and trial questions go through the gateway: give --gateway, --key-file and "
        "--server-key-file",
        "--gateway");
  }
  const std::string verb = c.size() >= 2 ? c[0] + " " + c[1] : c[0];
  if (c.size() != 2) return core::InvalidArgument("unknown command '" + verb + "'", "COMMAND");
  if (verb == "dose translate") return Translate(bus, o, out);
  if (verb == "dose pk") return Pk(bus, o, out);
  if (verb == "dose fit") return Fit(bus, o, out);
  if (verb == "trial sample-size") return SampleSize(bus, o, out);
  if (verb == "trial escalate") return Escalate(bus, o, out);
  if (verb == "trial virtual") return Virtual(bus, o, out);
  return core::InvalidArgument("unknown command '" + verb + "'", "COMMAND");
}

}  // namespace fedrx::cli
