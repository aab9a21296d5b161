#include "services/domain/domain_json.h"

#include <array>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace fedrx::domain {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------
// Requests: one list of members per struct, used both to write and to read,
// so that the two cannot drift apart. `v(name, member)` is called once per
// member, in declaration order.

template <typename S, typename T>
concept Is = std::same_as<std::remove_const_t<S>, T>;

template <typename T>
constexpr std::string_view kName = "";

#define FEDRX_DOMAIN_JSON_NAME(T) \
  template <>                     \
  constexpr std::string_view kName<codec::T> = #T

FEDRX_DOMAIN_JSON_NAME(Quantity);
FEDRX_DOMAIN_JSON_NAME(SpeciesNoael);
FEDRX_DOMAIN_JSON_NAME(PkModel);
FEDRX_DOMAIN_JSON_NAME(EscalationDesign);
FEDRX_DOMAIN_JSON_NAME(TranslateDose);
FEDRX_DOMAIN_JSON_NAME(SimulatePk);
FEDRX_DOMAIN_JSON_NAME(FitPk);
FEDRX_DOMAIN_JSON_NAME(ComputeSampleSize);
FEDRX_DOMAIN_JSON_NAME(SimulateEscalation);
FEDRX_DOMAIN_JSON_NAME(RunVirtualTrial);
FEDRX_DOMAIN_JSON_NAME(PredictToxicity);
FEDRX_DOMAIN_JSON_NAME(AssessClinical);
FEDRX_DOMAIN_JSON_NAME(ReverseTranslate);
#undef FEDRX_DOMAIN_JSON_NAME

template <typename S, typename V>
requires Is<S, codec::Quantity>
void Fields(S& x, V&& v) {
  v("name", x.name);
  v("value", x.value);
  v("unit", x.unit);
}

template <typename S, typename V>
requires Is<S, codec::SpeciesNoael>
void Fields(S& x, V&& v) {
  v("species", x.species);
  v("noael_mg_per_kg", x.noael_mg_per_kg);
  v("body_weight_kg", x.body_weight_kg);
  v("source", x.source);
}

template <typename S, typename V>
requires Is<S, codec::PkModel>
void Fields(S& x, V&& v) {
  v("kind", x.kind);
  v("cl_l_per_h", x.cl_l_per_h);
  v("v_l", x.v_l);
  v("ka_per_h", x.ka_per_h);
  v("bioavailability", x.bioavailability);
  v("q_l_per_h", x.q_l_per_h);
  v("v2_l", x.v2_l);
}

template <typename S, typename V>
requires Is<S, codec::EscalationDesign>
void Fields(S& x, V&& v) {
  v("design", x.design);
  v("target", x.target);
  v("cohort_size", x.cohort_size);
  v("max_patients", x.max_patients);
  v("start_dose", x.start_dose);
  v("skeleton", x.skeleton);
  v("prior_sd", x.prior_sd);
  v("overdose_probability", x.overdose_probability);
  v("elimination_cutoff", x.elimination_cutoff);
  v("extra_safe", x.extra_safe);
  v("phi1", x.phi1);
  v("phi2", x.phi2);
  v("stop_at_n", x.stop_at_n);
}

template <typename S, typename V>
requires Is<S, codec::TranslateDose>
void Fields(S& x, V&& v) {
  v("noaels", x.noaels);
  v("method", x.method);
  v("exponent", x.exponent);
  v("species", x.species);
  v("species_reason", x.species_reason);
  v("safety_factor", x.safety_factor);
  v("safety_factor_reason", x.safety_factor_reason);
  v("human_weight_kg", x.human_weight_kg);
}

template <typename S, typename V>
requires Is<S, codec::SimulatePk>
void Fields(S& x, V&& v) {
  v("model", x.model);
  v("dose_mg", x.dose_mg);
  v("tau_h", x.tau_h);
  v("doses", x.doses);
  v("times_h", x.times_h);
  v("noael_auc_mg_h_per_l", x.noael_auc_mg_h_per_l);
  v("noael_cmax_mg_per_l", x.noael_cmax_mg_per_l);
}

template <typename S, typename V>
requires Is<S, codec::FitPk>
void Fields(S& x, V&& v) {
  v("times_h", x.times_h);
  v("conc_mg_per_l", x.conc_mg_per_l);
  v("dose_mg", x.dose_mg);
  v("start", x.start);
}

template <typename S, typename V>
requires Is<S, codec::ComputeSampleSize>
void Fields(S& x, V&& v) {
  v("test", x.test);
  v("solve_for", x.solve_for);
  v("sides", x.sides);
  v("alpha", x.alpha);
  v("power", x.power);
  v("n", x.n);
  v("delta", x.delta);
  v("sd", x.sd);
  v("p0", x.p0);
  v("p1", x.p1);
  v("p2", x.p2);
  v("hazard_ratio", x.hazard_ratio);
  v("allocation", x.allocation);
  v("accrual_time", x.accrual_time);
  v("follow_up", x.follow_up);
  v("median_control", x.median_control);
  v("simon_design", x.simon_design);
}

template <typename S, typename V>
requires Is<S, codec::SimulateEscalation>
void Fields(S& x, V&& v) {
  v("design", x.design);
  v("true_tox", x.true_tox);
  v("trials", x.trials);
  v("seed", x.seed);
}

template <typename S, typename V>
requires Is<S, codec::RunVirtualTrial>
void Fields(S& x, V&& v) {
  v("model", x.model);
  v("bsv_cv", x.bsv_cv);
  v("dose_mg", x.dose_mg);
  v("start_dose_mg", x.start_dose_mg);
  v("tox_auc50", x.tox_auc50);
  v("tox_hill", x.tox_hill);
  v("response_auc50", x.response_auc50);
  v("response_hill", x.response_hill);
  v("response_emax", x.response_emax);
  v("design", x.design);
  v("trials", x.trials);
  v("population", x.population);
  v("seed", x.seed);
}

template <typename S, typename V>
requires Is<S, codec::PredictToxicity>
void Fields(S& x, V&& v) {
  v("smiles", x.smiles);
  v("panel", x.panel);
  v("tasks", x.tasks);
  v("confidence", x.confidence);
}

template <typename S, typename V>
requires Is<S, codec::AssessClinical>
void Fields(S& x, V&& v) {
  v("smiles", x.smiles);
  v("therapeutic_area", x.therapeutic_area);
  v("confidence", x.confidence);
}

template <typename S, typename V>
requires Is<S, codec::ReverseTranslate>
void Fields(S& x, V&& v) {
  v("organ_classes", x.organ_classes);
  v("adverse_events", x.adverse_events);
  v("clinical_labels", x.clinical_labels);
  v("fdr", x.fdr);
}

template <typename T>
struct IsVector : std::false_type {};
template <typename E>
struct IsVector<std::vector<E>> : std::true_type {};

template <typename T>
json Write(const T& x) {
  if constexpr (std::is_same_v<T, std::string> || std::is_arithmetic_v<T>) {
    return json(x);
  } else if constexpr (IsVector<T>::value) {
    json out = json::array();
    for (const auto& e : x) out.push_back(Write(e));
    return out;
  } else {
    json out = json::object();
    Fields(x, [&out](const char* name, const auto& member) { out[name] = Write(member); });
    return out;
  }
}

std::string Member(std::string_view where, std::string_view name) {
  std::string out(where);
  if (!out.empty()) out += '.';
  out += name;
  return out;
}

core::Status Expected(const std::string& where, std::string_view what, const json& got) {
  return core::InvalidArgument("expected " + std::string(what) + ", got " + got.type_name(), where);
}

template <typename T>
core::Status ReadInteger(const json& j, const std::string& where, T& out) {
  using Limits = std::numeric_limits<T>;
  const std::string range =
      "an integer from " + std::to_string(Limits::min()) + " to " + std::to_string(Limits::max());
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(Limits::max())) {
      return core::InvalidArgument("expected " + range + ", got " + std::to_string(u), where);
    }
    out = static_cast<T>(u);
    return {};
  }
  if (j.is_number_integer()) {
    const auto s = j.get<std::int64_t>();
    const bool low = Limits::is_signed ? s < static_cast<std::int64_t>(Limits::min()) : s < 0;
    const bool high =
        s > 0 && static_cast<std::uint64_t>(s) > static_cast<std::uint64_t>(Limits::max());
    if (low || high) {
      return core::InvalidArgument("expected " + range + ", got " + std::to_string(s), where);
    }
    out = static_cast<T>(s);
    return {};
  }
  if (j.is_number_float()) {
    // A whole number written as 3.0 (e.g. by a YAML or template conversion) is
    // accepted; anything else is not an integer.
    const double d = j.get<double>();
    const double bound = std::ldexp(1.0, Limits::digits);  // 2^31, 2^32, 2^63, 2^64
    const double low = Limits::is_signed ? -bound : 0.0;
    if (!std::isfinite(d) || std::trunc(d) != d || d < low || d >= bound) {
      return core::InvalidArgument("expected " + range + ", got " + j.dump(), where);
    }
    out = static_cast<T>(d);
    return {};
  }
  return Expected(where, range, j);
}

template <typename T>
core::Status Read(const json& j, const std::string& where, T& out) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) return Expected(where, "a string", j);
    out = j.get<std::string>();
    return {};
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) return Expected(where, "true or false", j);
    out = j.get<bool>();
    return {};
  } else if constexpr (std::is_integral_v<T>) {
    return ReadInteger(j, where, out);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!j.is_number()) return Expected(where, "a number", j);
    const double d = j.get<double>();
    if (!std::isfinite(d)) {
      return core::InvalidArgument("expected a finite number, got " + std::to_string(d), where);
    }
    out = d;
    return {};
  } else if constexpr (IsVector<T>::value) {
    if (!j.is_array()) return Expected(where, "an array", j);
    T values(j.size());
    for (std::size_t i = 0; i < j.size(); ++i) {
      FEDRX_RETURN_IF_ERROR(Read(j[i], where + "[" + std::to_string(i) + "]", values[i]));
    }
    out = std::move(values);
    return {};
  } else {
    if (!j.is_object()) return Expected(where, "an object (" + std::string(kName<T>) + ")", j);
    std::vector<std::string_view> names;
    Fields(out, [&names](const char* name, auto&) { names.emplace_back(name); });
    for (auto it = j.begin(); it != j.end(); ++it) {
      bool known = false;
      for (std::string_view n : names) known = known || n == it.key();
      if (known) continue;
      std::string list;
      for (std::string_view n : names) list += (list.empty() ? "" : ", ") + std::string(n);
      return core::InvalidArgument("unknown field '" + it.key() + "' of " + std::string(kName<T>) +
                                       " (its fields: " + list + ")",
                                   Member(where, it.key()));
    }
    core::Status status;
    Fields(out, [&](const char* name, auto& member) {
      if (!status.ok()) return;
      const auto found = j.find(name);
      if (found != j.end()) status = Read(*found, Member(where, name), member);
    });
    return status;
  }
}

template <typename T>
core::Result<codec::Body> ReadRequest(const json& j, std::string_view where) {
  T request;
  FEDRX_RETURN_IF_ERROR(Read(j, std::string(where), request));
  return codec::Body(std::move(request));
}

struct RequestEntry {
  std::string_view body_type;
  std::string_view service;
  core::Result<codec::Body> (*read)(const json&, std::string_view);
};

constexpr std::array<RequestEntry, 9> kRequests{{
    {"TranslateDose", "translational", &ReadRequest<codec::TranslateDose>},
    {"SimulatePk", "translational", &ReadRequest<codec::SimulatePk>},
    {"FitPk", "translational", &ReadRequest<codec::FitPk>},
    {"ComputeSampleSize", "trial", &ReadRequest<codec::ComputeSampleSize>},
    {"SimulateEscalation", "trial", &ReadRequest<codec::SimulateEscalation>},
    {"RunVirtualTrial", "trial", &ReadRequest<codec::RunVirtualTrial>},
    {"PredictToxicity", "tox", &ReadRequest<codec::PredictToxicity>},
    {"AssessClinical", "clinical", &ReadRequest<codec::AssessClinical>},
    {"ReverseTranslate", "reverse", &ReadRequest<codec::ReverseTranslate>},
}};

const RequestEntry* FindRequest(std::string_view body_type) {
  for (const RequestEntry& e : kRequests) {
    if (e.body_type == body_type) return &e;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Answers: written by hand, because some members are written only where they
// mean something (the files the CLI has always written keep their shape).

json Quantities(const std::vector<codec::Quantity>& v) {
  json out = json::array();
  for (const auto& q : v) out.push_back(ToJson(q));
  return out;
}

json ToJson(const codec::ClinicalSuccess& s) {
  json transitions = json::array();
  for (const codec::PhaseTransition& t : s.transitions) {
    transitions.push_back({{"transition", t.transition},
                           {"base_rate", t.base_rate},
                           {"adjusted", t.adjusted},
                           {"weight", t.weight}});
  }
  return {{"therapeutic_area", s.therapeutic_area},
          {"risk", s.risk},
          {"log_likelihood_ratio", s.log_likelihood_ratio},
          {"transitions", std::move(transitions)},
          {"base_likelihood_of_approval", s.base_likelihood_of_approval},
          {"adjusted_likelihood_of_approval", s.adjusted_likelihood_of_approval},
          {"source", s.source}};
}

json Structures(const std::vector<codec::StructurePrediction>& v) {
  json out = json::array();
  for (const auto& s : v) out.push_back(domain::ToJson(s));
  return out;
}

json ToJson(const codec::AssayAssociation& a) {
  json j = {{"clinical_label", a.clinical_label},
            {"assay", a.assay},
            {"a", a.a},
            {"b", a.b},
            {"c", a.c},
            {"d", a.d},
            {"sufficient_evidence", a.sufficient_evidence},
            {"significant", a.significant},
            {"in_table_family", a.in_table_family},
            {"evidence", a.evidence}};
  // Without enough evidence the statistics are not computed; leaving them out
  // keeps a reader from taking the zeros for results.
  if (a.sufficient_evidence) {
    j["odds_ratio"] = a.odds_ratio;
    j["ci_low"] = a.ci_low;
    j["ci_high"] = a.ci_high;
    j["p_value"] = a.p_value;
    j["q_value"] = a.q_value;
  }
  return j;
}

}  // namespace

json ToJson(const codec::Quantity& q) { return Write(q); }
json ToJson(const codec::SpeciesNoael& r) { return Write(r); }
json ToJson(const codec::PkModel& r) { return Write(r); }
json ToJson(const codec::EscalationDesign& r) { return Write(r); }
json ToJson(const codec::TranslateDose& r) { return Write(r); }
json ToJson(const codec::SimulatePk& r) { return Write(r); }
json ToJson(const codec::FitPk& r) { return Write(r); }
json ToJson(const codec::ComputeSampleSize& r) { return Write(r); }
json ToJson(const codec::SimulateEscalation& r) { return Write(r); }
json ToJson(const codec::RunVirtualTrial& r) { return Write(r); }
json ToJson(const codec::PredictToxicity& r) { return Write(r); }
json ToJson(const codec::AssessClinical& r) { return Write(r); }
json ToJson(const codec::ReverseTranslate& r) { return Write(r); }

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

json ToJson(const codec::ModelProvenance& m) {
  return {{"study_id", m.study_id},
          {"model_version", m.model_version},
          {"preparation_hash", m.preparation_hash},
          {"calibration_samples", m.calibration_samples},
          {"calibration_version", m.calibration_version},
          {"method", m.method}};
}

json ToJson(const codec::StructurePrediction& s) {
  json j = {{"input", s.input}};
  if (!s.error_code.empty()) {
    j["error"] = {{"code", s.error_code}, {"message", s.error}, {"where", s.error_where}};
    return j;
  }
  j["canonical_smiles"] = s.canonical_smiles;
  json tasks = json::array();
  for (const codec::TaskPrediction& t : s.tasks) {
    tasks.push_back({{"task", t.task},
                     {"probability", t.probability},
                     {"p_negative", t.p_negative},
                     {"p_positive", t.p_positive},
                     {"prediction_set", t.prediction_set},
                     {"credibility", t.credibility},
                     {"confidence", t.confidence},
                     {"calibrated", t.calibrated}});
  }
  j["tasks"] = std::move(tasks);
  j["domain"] = {{"score", s.domain.score},
                 {"p_value", s.domain.p_value},
                 {"in_domain", s.domain.in_domain},
                 {"threshold", s.domain.threshold},
                 {"calibrated", s.domain.calibrated}};
  return j;
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
  // Metrics keyed by name, so that a reader (or a workflow reference) finds
  // "metrics.cmax.value" without searching a list.
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
    estimates.push_back(
        json{{"name", e.name}, {"value", e.value}, {"std_error", e.std_error}, {"unit", e.unit}});
  }
  return json{
      {"estimates", estimates},     {"residual_se", a.residual_se}, {"df", a.df},
      {"iterations", a.iterations}, {"fitted", a.fitted},           {"working", ToJson(a.working)}};
}

json ToJson(const codec::SampleSizeResult& a) {
  json out{{"test", a.test},       {"n", a.n},         {"n_per_group", a.n_per_group},
           {"n_total", a.n_total}, {"power", a.power}, {"working", ToJson(a.working)}};
  if (a.test == "log_rank") {
    out["events"] = a.events;
    out["event_probability"] = a.event_probability;
  }
  if (a.test == "simon_two_stage") {
    out["simon"] = json{{"r1", a.simon_r1},
                        {"n1", a.simon_n1},
                        {"r", a.simon_r},
                        {"n", a.simon_n},
                        {"en0", a.simon_en0},
                        {"pet0", a.simon_pet0},
                        {"achieved_alpha", a.achieved_alpha}};
  }
  return out;
}

json ToJson(const codec::OperatingCharacteristics& a) {
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
    json boundaries = json::array();
    for (const auto& b : a.boundaries) {
      boundaries.push_back(json{{"n", b.n},
                                {"escalate_at_most", b.escalate_at_most},
                                {"deescalate_at_least", b.deescalate_at_least},
                                {"eliminate_at_least", b.eliminate_at_least}});
    }
    out["lambda_e"] = a.lambda_e;
    out["lambda_d"] = a.lambda_d;
    out["boundaries"] = boundaries;
  }
  return out;
}

json ToJson(const codec::VirtualTrialResult& a) {
  return json{{"dose_mg", a.dose_mg}, {"auc_median", a.auc_median},
              {"auc_p05", a.auc_p05}, {"auc_p95", a.auc_p95},
              {"p_dlt", a.p_dlt},     {"p_response", a.p_response},
              {"oc", ToJson(a.oc)},   {"working", ToJson(a.working)}};
}

json ToJson(const codec::ToxicityPanel& a) {
  return {{"panel", a.panel}, {"model", ToJson(a.model)},         {"confidence", a.confidence},
          {"tasks", a.tasks}, {"results", Structures(a.results)}, {"working", ToJson(a.working)}};
}

json ToJson(const codec::ClinicalAssessment& a) {
  json success = json::array();
  for (const codec::ClinicalSuccess& s : a.success) success.push_back(ToJson(s));
  json j = {{"model", ToJson(a.model)},
            {"confidence", a.confidence},
            {"clinical", Structures(a.clinical)},
            {"success", std::move(success)},
            {"working", ToJson(a.working)}};
  if (a.side_effects_unavailable.empty()) {
    j["side_effect_model"] = ToJson(a.side_effect_model);
    j["side_effects"] = Structures(a.side_effects);
  } else {
    j["side_effects_unavailable"] = a.side_effects_unavailable;
  }
  return j;
}

json ToJson(const codec::ReverseTranslation& a) {
  json classes = json::array();
  for (const auto& c : a.organ_classes) {
    json endpoints = json::array();
    for (const auto& e : c.endpoints) {
      endpoints.push_back({{"domain", e.domain}, {"code", e.code}, {"note", e.note}});
    }
    json assays = json::array();
    for (const auto& x : c.assays) assays.push_back(ToJson(x));
    classes.push_back({{"organ_class", c.organ_class},
                       {"matched_terms", c.matched_terms},
                       {"endpoints", endpoints},
                       {"assays", assays},
                       {"none_reason", c.none_reason},
                       {"rationale", c.rationale},
                       {"reference", c.reference}});
  }
  json labels = json::array();
  for (const auto& x : a.label_associations) labels.push_back(ToJson(x));
  return {{"organ_classes", classes},         {"label_associations", labels},
          {"counts_study", a.counts_study},   {"counts_version", a.counts_version},
          {"counts_sites", a.counts_sites},   {"counts_compounds", a.counts_compounds},
          {"counts_secure", a.counts_secure}, {"working", ToJson(a.working)}};
}

json BodyToJson(const codec::Body& body) {
  return std::visit(
      [&body](const auto& x) -> json {
        if constexpr (requires { domain::ToJson(x); }) {
          return domain::ToJson(x);
        } else {
          return json{{"type", codec::BodyName(body)}};
        }
      },
      body);
}

core::Result<codec::Body> RequestFromJson(std::string_view body_type, const json& j,
                                          std::string_view where) {
  const RequestEntry* entry = FindRequest(body_type);
  if (entry == nullptr) {
    std::string known;
    for (const RequestEntry& e : kRequests)
      known += (known.empty() ? "" : ", ") + std::string(e.body_type);
    return core::InvalidArgument(
        "'" + std::string(body_type) + "' is not a domain request (those are: " + known + ")",
        std::string(where));
  }
  return entry->read(j, where);
}

bool IsDomainRequest(std::string_view body_type) { return FindRequest(body_type) != nullptr; }

std::string_view ServiceOfRequest(std::string_view body_type) {
  const RequestEntry* entry = FindRequest(body_type);
  return entry == nullptr ? std::string_view() : entry->service;
}

}  // namespace fedrx::domain
