// Wire conversion of the domain bodies: translational (dose translation,
// pharmacokinetics) and trial (sample size, escalation, virtual trials).
// Each Write() writes one plain type as its table; each Read() reads a table
// back, an absent table reading as the plain type's defaults.
#include <string>
#include <utility>
#include <vector>

#include "messages/codec/codec_internal.h"

namespace fedrx::codec::internal {
namespace {

namespace fb = flatbuffers;
namespace w = fedrx::wire;
using Builder = fb::FlatBufferBuilder;

// Every Write() and Read() is declared here so that WriteAll() and ReadAll()
// find each of them whatever the order of the definitions below.
fb::Offset<w::Quantity> Write(Builder& b, const Quantity& v);
fb::Offset<w::WorkStep> Write(Builder& b, const WorkStep& v);
fb::Offset<w::Working> Write(Builder& b, const Working& v);
fb::Offset<w::SpeciesNoael> Write(Builder& b, const SpeciesNoael& v);
fb::Offset<w::SpeciesHed> Write(Builder& b, const SpeciesHed& v);
fb::Offset<w::PkModel> Write(Builder& b, const PkModel& v);
fb::Offset<w::Estimate> Write(Builder& b, const Estimate& v);
fb::Offset<w::EscalationDesign> Write(Builder& b, const EscalationDesign& v);
fb::Offset<w::BoundaryRow> Write(Builder& b, const BoundaryRow& v);
fb::Offset<w::OperatingCharacteristics> Write(Builder& b, const OperatingCharacteristics& v);
Quantity Read(const w::Quantity* v);
WorkStep Read(const w::WorkStep* v);
Working Read(const w::Working* v);
SpeciesNoael Read(const w::SpeciesNoael* v);
SpeciesHed Read(const w::SpeciesHed* v);
PkModel Read(const w::PkModel* v);
Estimate Read(const w::Estimate* v);
EscalationDesign Read(const w::EscalationDesign* v);
BoundaryRow Read(const w::BoundaryRow* v);
OperatingCharacteristics Read(const w::OperatingCharacteristics* v);

// ---- Encoding ---------------------------------------------------------------

fb::Offset<w::Quantity> Write(Builder& b, const Quantity& v) {
  return w::CreateQuantity(b, b.CreateString(v.name), v.value, b.CreateString(v.unit));
}

// A vector of tables, each written by the Write() overload for T.
template <typename T>
auto WriteAll(Builder& b, const std::vector<T>& v) {
  return WriteTables(b, v, [](Builder& builder, const T& x) { return Write(builder, x); });
}

fb::Offset<w::WorkStep> Write(Builder& b, const WorkStep& v) {
  // Children first: FlatBuffers builds a table after everything it points to.
  auto label = b.CreateString(v.label);
  auto formula = b.CreateString(v.formula);
  auto inputs = WriteAll(b, v.inputs);
  auto result = Write(b, v.result);
  return w::CreateWorkStep(b, label, formula, inputs, result, b.CreateString(v.reference));
}

fb::Offset<w::Working> Write(Builder& b, const Working& v) {
  auto method = b.CreateString(v.method);
  auto guidance = b.CreateString(v.guidance);
  auto steps = WriteAll(b, v.steps);
  return w::CreateWorking(b, method, guidance, steps, b.CreateVectorOfStrings(v.notes));
}

fb::Offset<w::SpeciesNoael> Write(Builder& b, const SpeciesNoael& v) {
  return w::CreateSpeciesNoael(b, b.CreateString(v.species), v.noael_mg_per_kg, v.body_weight_kg,
                               b.CreateString(v.source));
}

fb::Offset<w::SpeciesHed> Write(Builder& b, const SpeciesHed& v) {
  return w::CreateSpeciesHed(b, b.CreateString(v.species), v.noael_mg_per_kg, v.body_weight_kg,
                             v.km, v.conversion_factor, v.hed_mg_per_kg, b.CreateString(v.source));
}

fb::Offset<w::PkModel> Write(Builder& b, const PkModel& v) {
  return w::CreatePkModel(b, b.CreateString(v.kind), v.cl_l_per_h, v.v_l, v.ka_per_h,
                          v.bioavailability, v.q_l_per_h, v.v2_l);
}

fb::Offset<w::Estimate> Write(Builder& b, const Estimate& v) {
  return w::CreateEstimate(b, b.CreateString(v.name), v.value, v.std_error, b.CreateString(v.unit));
}

fb::Offset<w::EscalationDesign> Write(Builder& b, const EscalationDesign& v) {
  return w::CreateEscalationDesign(b, b.CreateString(v.design), v.target, v.cohort_size,
                                   v.max_patients, v.start_dose, b.CreateVector(v.skeleton),
                                   v.prior_sd, v.overdose_probability, v.elimination_cutoff,
                                   v.extra_safe, v.phi1, v.phi2, v.stop_at_n);
}

fb::Offset<w::BoundaryRow> Write(Builder& b, const BoundaryRow& v) {
  return w::CreateBoundaryRow(b, v.n, v.escalate_at_most, v.deescalate_at_least,
                              v.eliminate_at_least);
}

fb::Offset<w::OperatingCharacteristics> Write(Builder& b, const OperatingCharacteristics& v) {
  auto design = b.CreateString(v.design);
  auto selection = b.CreateVector(v.selection_pct);
  auto patients = b.CreateVector(v.patients_mean);
  auto dlts = b.CreateVector(v.dlt_mean);
  auto boundaries = WriteAll(b, v.boundaries);
  auto working = Write(b, v.working);
  return w::CreateOperatingCharacteristics(b, design, v.trials, v.seed, selection, patients, dlts,
                                           v.early_stop_pct, v.correct_selection_pct,
                                           v.patients_total_mean, v.dlt_total_mean, v.lambda_e,
                                           v.lambda_d, boundaries, working);
}

// ---- Decoding ---------------------------------------------------------------

// An absent string reads as `fallback`: the message.h default of a field
// whose default is not empty (FlatBuffers has no string defaults in C++).
std::string StrOr(const fb::String* s, const std::string& fallback) {
  return s == nullptr ? fallback : s->str();
}

Quantity Read(const w::Quantity* v) {
  if (v == nullptr) return {};
  return Quantity{Str(v->name()), v->value(), Str(v->unit())};
}

// A vector of tables, each read by the Read() overload for W.
template <typename W>
auto ReadAll(const fb::Vector<fb::Offset<W>>* v) {
  return ReadTables(v, [](const W* x) { return Read(x); });
}

WorkStep Read(const w::WorkStep* v) {
  if (v == nullptr) return {};
  return WorkStep{Str(v->label()), Str(v->formula()), ReadAll(v->inputs()), Read(v->result()),
                  Str(v->reference())};
}

Working Read(const w::Working* v) {
  if (v == nullptr) return {};
  return Working{Str(v->method()), Str(v->guidance()), ReadAll(v->steps()), Strs(v->notes())};
}

SpeciesNoael Read(const w::SpeciesNoael* v) {
  if (v == nullptr) return {};
  return SpeciesNoael{Str(v->species()), v->noael_mg_per_kg(), v->body_weight_kg(),
                      Str(v->source())};
}

SpeciesHed Read(const w::SpeciesHed* v) {
  if (v == nullptr) return {};
  return SpeciesHed{Str(v->species()),      v->noael_mg_per_kg(), v->body_weight_kg(), v->km(),
                    v->conversion_factor(), v->hed_mg_per_kg(),   Str(v->source())};
}

PkModel Read(const w::PkModel* v) {
  if (v == nullptr) return {};
  return PkModel{Str(v->kind()),       v->cl_l_per_h(), v->v_l(), v->ka_per_h(),
                 v->bioavailability(), v->q_l_per_h(),  v->v2_l()};
}

Estimate Read(const w::Estimate* v) {
  if (v == nullptr) return {};
  return Estimate{Str(v->name()), v->value(), v->std_error(), Str(v->unit())};
}

EscalationDesign Read(const w::EscalationDesign* v) {
  EscalationDesign out;
  if (v == nullptr) return out;
  out.design = Str(v->design());
  out.target = v->target();
  out.cohort_size = v->cohort_size();
  out.max_patients = v->max_patients();
  out.start_dose = v->start_dose();
  out.skeleton = Vec(v->skeleton());
  out.prior_sd = v->prior_sd();
  out.overdose_probability = v->overdose_probability();
  out.elimination_cutoff = v->elimination_cutoff();
  out.extra_safe = v->extra_safe();
  out.phi1 = v->phi1();
  out.phi2 = v->phi2();
  out.stop_at_n = v->stop_at_n();
  return out;
}

BoundaryRow Read(const w::BoundaryRow* v) {
  if (v == nullptr) return {};
  return BoundaryRow{v->n(), v->escalate_at_most(), v->deescalate_at_least(),
                     v->eliminate_at_least()};
}

OperatingCharacteristics Read(const w::OperatingCharacteristics* v) {
  OperatingCharacteristics out;
  if (v == nullptr) return out;
  out.design = Str(v->design());
  out.trials = v->trials();
  out.seed = v->seed();
  out.selection_pct = Vec(v->selection_pct());
  out.patients_mean = Vec(v->patients_mean());
  out.dlt_mean = Vec(v->dlt_mean());
  out.early_stop_pct = v->early_stop_pct();
  out.correct_selection_pct = v->correct_selection_pct();
  out.patients_total_mean = v->patients_total_mean();
  out.dlt_total_mean = v->dlt_total_mean();
  out.lambda_e = v->lambda_e();
  out.lambda_d = v->lambda_d();
  out.boundaries = ReadAll(v->boundaries());
  out.working = Read(v->working());
  return out;
}

}  // namespace

// The Working table, shared with prediction_codec.cc.
fb::Offset<w::Working> WriteWorking(Builder& b, const Working& v) { return Write(b, v); }
Working ReadWorking(const w::Working* v) { return Read(v); }

// ---- Bodies: encoding -------------------------------------------------------

BodyOffset EncodeDomain(Builder& b, const TranslateDose& v) {
  auto noaels = WriteAll(b, v.noaels);
  return {w::Body::TranslateDose,
          w::CreateTranslateDose(b, noaels, b.CreateString(v.method), v.exponent,
                                 b.CreateString(v.species), b.CreateString(v.species_reason),
                                 v.safety_factor, b.CreateString(v.safety_factor_reason),
                                 v.human_weight_kg)
              .Union()};
}

BodyOffset EncodeDomain(Builder& b, const DoseTranslation& v) {
  auto heds = WriteAll(b, v.heds);
  auto working = Write(b, v.working);
  return {w::Body::DoseTranslation,
          w::CreateDoseTranslation(b, heds, b.CreateString(v.chosen_species),
                                   b.CreateString(v.species_reason), v.hed_mg_per_kg,
                                   v.safety_factor, b.CreateString(v.safety_factor_reason),
                                   v.mrsd_mg_per_kg, v.human_weight_kg, v.mrsd_mg, working)
              .Union()};
}

BodyOffset EncodeDomain(Builder& b, const SimulatePk& v) {
  auto model = Write(b, v.model);
  return {w::Body::SimulatePk,
          w::CreateSimulatePk(b, model, v.dose_mg, v.tau_h, v.doses, b.CreateVector(v.times_h),
                              v.noael_auc_mg_h_per_l, v.noael_cmax_mg_per_l)
              .Union()};
}

BodyOffset EncodeDomain(Builder& b, const PkProfile& v) {
  auto times = b.CreateVector(v.times_h);
  auto conc = b.CreateVector(v.conc_mg_per_l);
  auto metrics = WriteAll(b, v.metrics);
  auto working = Write(b, v.working);
  return {w::Body::PkProfile, w::CreatePkProfile(b, times, conc, metrics, working).Union()};
}

BodyOffset EncodeDomain(Builder& b, const FitPk& v) {
  auto times = b.CreateVector(v.times_h);
  auto conc = b.CreateVector(v.conc_mg_per_l);
  auto start = WriteAll(b, v.start);
  return {w::Body::FitPk, w::CreateFitPk(b, times, conc, v.dose_mg, start).Union()};
}

BodyOffset EncodeDomain(Builder& b, const PkFit& v) {
  auto estimates = WriteAll(b, v.estimates);
  auto fitted = b.CreateVector(v.fitted);
  auto working = Write(b, v.working);
  return {w::Body::PkFit,
          w::CreatePkFit(b, estimates, v.residual_se, v.df, v.iterations, fitted, working).Union()};
}

BodyOffset EncodeDomain(Builder& b, const ComputeSampleSize& v) {
  auto test = b.CreateString(v.test);
  auto solve_for = b.CreateString(v.solve_for);
  auto simon = b.CreateString(v.simon_design);
  return {w::Body::ComputeSampleSize,
          w::CreateComputeSampleSize(b, test, solve_for, v.sides, v.alpha, v.power, v.n, v.delta,
                                     v.sd, v.p0, v.p1, v.p2, v.hazard_ratio, v.allocation,
                                     v.accrual_time, v.follow_up, v.median_control, simon)
              .Union()};
}

BodyOffset EncodeDomain(Builder& b, const SampleSizeResult& v) {
  auto test = b.CreateString(v.test);
  auto working = Write(b, v.working);
  return {w::Body::SampleSizeResult,
          w::CreateSampleSizeResult(b, test, v.n, v.n_per_group, v.n_total, v.power, v.events,
                                    v.event_probability, v.simon_r1, v.simon_n1, v.simon_r,
                                    v.simon_n, v.simon_en0, v.simon_pet0, v.achieved_alpha, working)
              .Union()};
}

BodyOffset EncodeDomain(Builder& b, const SimulateEscalation& v) {
  auto design = Write(b, v.design);
  return {
      w::Body::SimulateEscalation,
      w::CreateSimulateEscalation(b, design, b.CreateVector(v.true_tox), v.trials, v.seed).Union()};
}

BodyOffset EncodeDomain(Builder& b, const OperatingCharacteristics& v) {
  return {w::Body::OperatingCharacteristics, Write(b, v).Union()};
}

BodyOffset EncodeDomain(Builder& b, const RunVirtualTrial& v) {
  auto model = Write(b, v.model);
  auto doses = b.CreateVector(v.dose_mg);
  auto design = Write(b, v.design);
  return {w::Body::RunVirtualTrial,
          w::CreateRunVirtualTrial(b, model, v.bsv_cv, doses, v.start_dose_mg, v.tox_auc50,
                                   v.tox_hill, v.response_auc50, v.response_hill, v.response_emax,
                                   design, v.trials, v.population, v.seed)
              .Union()};
}

BodyOffset EncodeDomain(Builder& b, const VirtualTrialResult& v) {
  auto doses = b.CreateVector(v.dose_mg);
  auto median = b.CreateVector(v.auc_median);
  auto p05 = b.CreateVector(v.auc_p05);
  auto p95 = b.CreateVector(v.auc_p95);
  auto p_dlt = b.CreateVector(v.p_dlt);
  auto p_response = b.CreateVector(v.p_response);
  auto oc = Write(b, v.oc);
  auto working = Write(b, v.working);
  return {w::Body::VirtualTrialResult,
          w::CreateVirtualTrialResult(b, doses, median, p05, p95, p_dlt, p_response, oc, working)
              .Union()};
}

// ---- Bodies: decoding -------------------------------------------------------

bool DomainBodyOf(const w::Envelope& env, Body& out, DecodeError& error) {
  const auto missing = [&](std::string message, std::string where) {
    error.fault = DecodeFault::kMissingField;
    error.message = std::move(message);
    error.where = std::move(where);
    return false;
  };
  switch (env.body_type()) {
    case w::Body::TranslateDose: {
      const auto* v = env.body_as_TranslateDose();
      TranslateDose m;
      m.noaels = ReadAll(v->noaels());
      m.method = StrOr(v->method(), m.method);
      m.exponent = v->exponent();
      m.species = Str(v->species());
      m.species_reason = Str(v->species_reason());
      m.safety_factor = v->safety_factor();
      m.safety_factor_reason = Str(v->safety_factor_reason());
      m.human_weight_kg = v->human_weight_kg();
      out = std::move(m);
      return true;
    }
    case w::Body::DoseTranslation: {
      const auto* v = env.body_as_DoseTranslation();
      DoseTranslation m;
      m.heds = ReadAll(v->heds());
      m.chosen_species = Str(v->chosen_species());
      m.species_reason = Str(v->species_reason());
      m.hed_mg_per_kg = v->hed_mg_per_kg();
      m.safety_factor = v->safety_factor();
      m.safety_factor_reason = Str(v->safety_factor_reason());
      m.mrsd_mg_per_kg = v->mrsd_mg_per_kg();
      m.human_weight_kg = v->human_weight_kg();
      m.mrsd_mg = v->mrsd_mg();
      m.working = Read(v->working());
      out = std::move(m);
      return true;
    }
    case w::Body::SimulatePk: {
      const auto* v = env.body_as_SimulatePk();
      if (v->model() == nullptr) {
        return missing("the PK model is missing", "SimulatePk.model");
      }
      out = SimulatePk{Read(v->model()),
                       v->dose_mg(),
                       v->tau_h(),
                       v->doses(),
                       Vec(v->times_h()),
                       v->noael_auc_mg_h_per_l(),
                       v->noael_cmax_mg_per_l()};
      return true;
    }
    case w::Body::PkProfile: {
      const auto* v = env.body_as_PkProfile();
      out = PkProfile{Vec(v->times_h()), Vec(v->conc_mg_per_l()), ReadAll(v->metrics()),
                      Read(v->working())};
      return true;
    }
    case w::Body::FitPk: {
      const auto* v = env.body_as_FitPk();
      out = FitPk{Vec(v->times_h()), Vec(v->conc_mg_per_l()), v->dose_mg(), ReadAll(v->start())};
      return true;
    }
    case w::Body::PkFit: {
      const auto* v = env.body_as_PkFit();
      out = PkFit{ReadAll(v->estimates()), v->residual_se(), v->df(),
                  v->iterations(),         Vec(v->fitted()), Read(v->working())};
      return true;
    }
    case w::Body::ComputeSampleSize: {
      const auto* v = env.body_as_ComputeSampleSize();
      ComputeSampleSize m;
      m.test = Str(v->test());
      m.solve_for = StrOr(v->solve_for(), m.solve_for);
      m.sides = v->sides();
      m.alpha = v->alpha();
      m.power = v->power();
      m.n = v->n();
      m.delta = v->delta();
      m.sd = v->sd();
      m.p0 = v->p0();
      m.p1 = v->p1();
      m.p2 = v->p2();
      m.hazard_ratio = v->hazard_ratio();
      m.allocation = v->allocation();
      m.accrual_time = v->accrual_time();
      m.follow_up = v->follow_up();
      m.median_control = v->median_control();
      m.simon_design = StrOr(v->simon_design(), m.simon_design);
      out = std::move(m);
      return true;
    }
    case w::Body::SampleSizeResult: {
      const auto* v = env.body_as_SampleSizeResult();
      SampleSizeResult m;
      m.test = Str(v->test());
      m.n = v->n();
      m.n_per_group = v->n_per_group();
      m.n_total = v->n_total();
      m.power = v->power();
      m.events = v->events();
      m.event_probability = v->event_probability();
      m.simon_r1 = v->simon_r1();
      m.simon_n1 = v->simon_n1();
      m.simon_r = v->simon_r();
      m.simon_n = v->simon_n();
      m.simon_en0 = v->simon_en0();
      m.simon_pet0 = v->simon_pet0();
      m.achieved_alpha = v->achieved_alpha();
      m.working = Read(v->working());
      out = std::move(m);
      return true;
    }
    case w::Body::SimulateEscalation: {
      const auto* v = env.body_as_SimulateEscalation();
      if (v->design() == nullptr) {
        return missing("the escalation design is missing", "SimulateEscalation.design");
      }
      out = SimulateEscalation{Read(v->design()), Vec(v->true_tox()), v->trials(), v->seed()};
      return true;
    }
    case w::Body::OperatingCharacteristics:
      out = Read(env.body_as_OperatingCharacteristics());
      return true;
    case w::Body::RunVirtualTrial: {
      const auto* v = env.body_as_RunVirtualTrial();
      if (v->model() == nullptr) {
        return missing("the PK model is missing", "RunVirtualTrial.model");
      }
      if (v->design() == nullptr) {
        return missing("the escalation design is missing", "RunVirtualTrial.design");
      }
      RunVirtualTrial m;
      m.model = Read(v->model());
      m.bsv_cv = v->bsv_cv();
      m.dose_mg = Vec(v->dose_mg());
      m.start_dose_mg = v->start_dose_mg();
      m.tox_auc50 = v->tox_auc50();
      m.tox_hill = v->tox_hill();
      m.response_auc50 = v->response_auc50();
      m.response_hill = v->response_hill();
      m.response_emax = v->response_emax();
      m.design = Read(v->design());
      m.trials = v->trials();
      m.population = v->population();
      m.seed = v->seed();
      out = std::move(m);
      return true;
    }
    case w::Body::VirtualTrialResult: {
      const auto* v = env.body_as_VirtualTrialResult();
      VirtualTrialResult m;
      m.dose_mg = Vec(v->dose_mg());
      m.auc_median = Vec(v->auc_median());
      m.auc_p05 = Vec(v->auc_p05());
      m.auc_p95 = Vec(v->auc_p95());
      m.p_dlt = Vec(v->p_dlt());
      m.p_response = Vec(v->p_response());
      m.oc = Read(v->oc());
      m.working = Read(v->working());
      out = std::move(m);
      return true;
    }
    default:
      break;
  }
  error.fault = DecodeFault::kUnknownBody;
  error.message =
      "body type " + std::to_string(static_cast<int>(env.body_type())) + " is not a domain body";
  error.where = "envelope.body";
  return false;
}

}  // namespace fedrx::codec::internal
