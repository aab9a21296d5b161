// Codec, domain bodies (translational.fbs, trial.fbs): every request and
// answer of the translational and trial services survives encode/decode with
// every field, nested tables included; an absent field or table decodes to the
// C++ default (the schema defaults equal message.h's); a request without a
// required table is refused with a fault and a location; damaged envelopes of
// these bodies are decoded or refused, never read out of bounds.
#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "messages/codec/codec.h"

namespace fedrx::codec {
namespace {

// ---- Field-by-field comparison ----------------------------------------------
// Same(want, got, where) checks every field of a plain type: the decoded value
// equals the original, and the original differs from the type's default (so a
// field the codec forgot cannot pass by carrying its default). Each Same()
// also counts the fields it checked against the struct's number of fields, so
// a field added to message.h without a check here fails the test.

// Converts to any type: counts an aggregate's fields by how many initialise it.
struct AnyField {
  template <typename U>
  operator U() const;  // only in unevaluated contexts
};

template <typename T, typename... A>
constexpr std::size_t FieldCount() {
  if constexpr (requires { T{A{}..., AnyField{}}; }) {
    return FieldCount<T, A..., AnyField>();
  } else {
    return sizeof...(A);
  }
}
static_assert(FieldCount<Quantity>() == 3);
static_assert(FieldCount<WorkStep>() == 5);

void Same(const Quantity& want, const Quantity& got, const std::string& where);
void Same(const WorkStep& want, const WorkStep& got, const std::string& where);
void Same(const Working& want, const Working& got, const std::string& where);
void Same(const SpeciesNoael& want, const SpeciesNoael& got, const std::string& where);
void Same(const SpeciesHed& want, const SpeciesHed& got, const std::string& where);
void Same(const PkModel& want, const PkModel& got, const std::string& where);
void Same(const Estimate& want, const Estimate& got, const std::string& where);
void Same(const EscalationDesign& want, const EscalationDesign& got, const std::string& where);
void Same(const BoundaryRow& want, const BoundaryRow& got, const std::string& where);
void Same(const OperatingCharacteristics& want, const OperatingCharacteristics& got,
          const std::string& where);

template <typename T>
concept Record = requires(const T& a, const std::string& where) {
  Same(a, a, where);
};

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};
template <typename T>
concept RecordVector = IsVector<T>::value && Record<typename T::value_type>;

template <typename T>
void CheckField(const T& want, const T& got, const T& fallback, const std::string& where) {
  if constexpr (Record<T>) {
    Same(want, got, where);
  } else if constexpr (RecordVector<T>) {
    EXPECT_FALSE(want.empty()) << where << ": the sample leaves it empty";
    ASSERT_EQ(got.size(), want.size()) << where;
    for (std::size_t i = 0; i < want.size(); ++i) {
      Same(want[i], got[i], where + "[" + std::to_string(i) + "]");
    }
  } else {
    EXPECT_NE(want, fallback) << where << ": the sample holds the default value";
    EXPECT_EQ(got, want) << where;
  }
}

// Checks one field of `want`/`got` against the default of their type.
#define FEDRX_FIELD(f)                                                                  \
  do {                                                                                  \
    ++checked;                                                                          \
    CheckField(want.f, got.f, std::remove_cvref_t<decltype(want)>{}.f, where + "." #f); \
  } while (false)
#define FEDRX_ALL_FIELDS_CHECKED()                                      \
  EXPECT_EQ(checked, FieldCount<std::remove_cvref_t<decltype(want)>>()) \
      << where << ": a field of this type is not checked by the test"

void Same(const Quantity& want, const Quantity& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(name);
  FEDRX_FIELD(value);
  FEDRX_FIELD(unit);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const WorkStep& want, const WorkStep& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(label);
  FEDRX_FIELD(formula);
  FEDRX_FIELD(inputs);
  FEDRX_FIELD(result);
  FEDRX_FIELD(reference);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const Working& want, const Working& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(method);
  FEDRX_FIELD(guidance);
  FEDRX_FIELD(steps);
  FEDRX_FIELD(notes);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const SpeciesNoael& want, const SpeciesNoael& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(species);
  FEDRX_FIELD(noael_mg_per_kg);
  FEDRX_FIELD(body_weight_kg);
  FEDRX_FIELD(source);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const SpeciesHed& want, const SpeciesHed& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(species);
  FEDRX_FIELD(noael_mg_per_kg);
  FEDRX_FIELD(body_weight_kg);
  FEDRX_FIELD(km);
  FEDRX_FIELD(conversion_factor);
  FEDRX_FIELD(hed_mg_per_kg);
  FEDRX_FIELD(source);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const PkModel& want, const PkModel& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(kind);
  FEDRX_FIELD(cl_l_per_h);
  FEDRX_FIELD(v_l);
  FEDRX_FIELD(ka_per_h);
  FEDRX_FIELD(bioavailability);
  FEDRX_FIELD(q_l_per_h);
  FEDRX_FIELD(v2_l);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const Estimate& want, const Estimate& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(name);
  FEDRX_FIELD(value);
  FEDRX_FIELD(std_error);
  FEDRX_FIELD(unit);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const EscalationDesign& want, const EscalationDesign& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(design);
  FEDRX_FIELD(target);
  FEDRX_FIELD(cohort_size);
  FEDRX_FIELD(max_patients);
  FEDRX_FIELD(start_dose);
  FEDRX_FIELD(skeleton);
  FEDRX_FIELD(prior_sd);
  FEDRX_FIELD(overdose_probability);
  FEDRX_FIELD(elimination_cutoff);
  FEDRX_FIELD(extra_safe);
  FEDRX_FIELD(phi1);
  FEDRX_FIELD(phi2);
  FEDRX_FIELD(stop_at_n);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const BoundaryRow& want, const BoundaryRow& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(n);
  FEDRX_FIELD(escalate_at_most);
  FEDRX_FIELD(deescalate_at_least);
  FEDRX_FIELD(eliminate_at_least);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const OperatingCharacteristics& want, const OperatingCharacteristics& got,
          const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(design);
  FEDRX_FIELD(trials);
  FEDRX_FIELD(seed);
  FEDRX_FIELD(selection_pct);
  FEDRX_FIELD(patients_mean);
  FEDRX_FIELD(dlt_mean);
  FEDRX_FIELD(early_stop_pct);
  FEDRX_FIELD(correct_selection_pct);
  FEDRX_FIELD(patients_total_mean);
  FEDRX_FIELD(dlt_total_mean);
  FEDRX_FIELD(lambda_e);
  FEDRX_FIELD(lambda_d);
  FEDRX_FIELD(boundaries);
  FEDRX_FIELD(working);
  FEDRX_ALL_FIELDS_CHECKED();
}

// The bodies themselves.

void Same(const TranslateDose& want, const TranslateDose& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(noaels);
  FEDRX_FIELD(method);
  FEDRX_FIELD(exponent);
  FEDRX_FIELD(species);
  FEDRX_FIELD(species_reason);
  FEDRX_FIELD(safety_factor);
  FEDRX_FIELD(safety_factor_reason);
  FEDRX_FIELD(human_weight_kg);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const DoseTranslation& want, const DoseTranslation& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(heds);
  FEDRX_FIELD(chosen_species);
  FEDRX_FIELD(species_reason);
  FEDRX_FIELD(hed_mg_per_kg);
  FEDRX_FIELD(safety_factor);
  FEDRX_FIELD(safety_factor_reason);
  FEDRX_FIELD(mrsd_mg_per_kg);
  FEDRX_FIELD(human_weight_kg);
  FEDRX_FIELD(mrsd_mg);
  FEDRX_FIELD(working);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const SimulatePk& want, const SimulatePk& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(model);
  FEDRX_FIELD(dose_mg);
  FEDRX_FIELD(tau_h);
  FEDRX_FIELD(doses);
  FEDRX_FIELD(times_h);
  FEDRX_FIELD(noael_auc_mg_h_per_l);
  FEDRX_FIELD(noael_cmax_mg_per_l);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const PkProfile& want, const PkProfile& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(times_h);
  FEDRX_FIELD(conc_mg_per_l);
  FEDRX_FIELD(metrics);
  FEDRX_FIELD(working);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const FitPk& want, const FitPk& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(times_h);
  FEDRX_FIELD(conc_mg_per_l);
  FEDRX_FIELD(dose_mg);
  FEDRX_FIELD(start);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const PkFit& want, const PkFit& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(estimates);
  FEDRX_FIELD(residual_se);
  FEDRX_FIELD(df);
  FEDRX_FIELD(iterations);
  FEDRX_FIELD(fitted);
  FEDRX_FIELD(working);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const ComputeSampleSize& want, const ComputeSampleSize& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(test);
  FEDRX_FIELD(solve_for);
  FEDRX_FIELD(sides);
  FEDRX_FIELD(alpha);
  FEDRX_FIELD(power);
  FEDRX_FIELD(n);
  FEDRX_FIELD(delta);
  FEDRX_FIELD(sd);
  FEDRX_FIELD(p0);
  FEDRX_FIELD(p1);
  FEDRX_FIELD(p2);
  FEDRX_FIELD(hazard_ratio);
  FEDRX_FIELD(allocation);
  FEDRX_FIELD(accrual_time);
  FEDRX_FIELD(follow_up);
  FEDRX_FIELD(median_control);
  FEDRX_FIELD(simon_design);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const SampleSizeResult& want, const SampleSizeResult& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(test);
  FEDRX_FIELD(n);
  FEDRX_FIELD(n_per_group);
  FEDRX_FIELD(n_total);
  FEDRX_FIELD(power);
  FEDRX_FIELD(events);
  FEDRX_FIELD(event_probability);
  FEDRX_FIELD(simon_r1);
  FEDRX_FIELD(simon_n1);
  FEDRX_FIELD(simon_r);
  FEDRX_FIELD(simon_n);
  FEDRX_FIELD(simon_en0);
  FEDRX_FIELD(simon_pet0);
  FEDRX_FIELD(achieved_alpha);
  FEDRX_FIELD(working);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const SimulateEscalation& want, const SimulateEscalation& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(design);
  FEDRX_FIELD(true_tox);
  FEDRX_FIELD(trials);
  FEDRX_FIELD(seed);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const RunVirtualTrial& want, const RunVirtualTrial& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(model);
  FEDRX_FIELD(bsv_cv);
  FEDRX_FIELD(dose_mg);
  FEDRX_FIELD(start_dose_mg);
  FEDRX_FIELD(tox_auc50);
  FEDRX_FIELD(tox_hill);
  FEDRX_FIELD(response_auc50);
  FEDRX_FIELD(response_hill);
  FEDRX_FIELD(response_emax);
  FEDRX_FIELD(design);
  FEDRX_FIELD(trials);
  FEDRX_FIELD(population);
  FEDRX_FIELD(seed);
  FEDRX_ALL_FIELDS_CHECKED();
}

void Same(const VirtualTrialResult& want, const VirtualTrialResult& got, const std::string& where) {
  int checked = 0;
  FEDRX_FIELD(dose_mg);
  FEDRX_FIELD(auc_median);
  FEDRX_FIELD(auc_p05);
  FEDRX_FIELD(auc_p95);
  FEDRX_FIELD(p_dlt);
  FEDRX_FIELD(p_response);
  FEDRX_FIELD(oc);
  FEDRX_FIELD(working);
  FEDRX_ALL_FIELDS_CHECKED();
}

#undef FEDRX_FIELD
#undef FEDRX_ALL_FIELDS_CHECKED

// ---- Samples: every field away from its default -----------------------------

Working SampleWorking(const std::string& tag) {
  Working w;
  w.method = tag + ": body surface area scaling";
  w.guidance = "FDA 2005, Estimating the Maximum Safe Starting Dose";
  WorkStep step;
  step.label = "Human equivalent dose (rat)";
  step.formula = "HED = NOAEL x (animal Km / human Km)";
  step.inputs = {{"noael", 50, "mg/kg"}, {"km_animal", 6, "kg/m^2"}, {"km_human", 37, "kg/m^2"}};
  step.result = {"hed", 8.108108108108109, "mg/kg"};
  step.reference = "Table 1";
  WorkStep second;
  second.label = "MRSD";
  second.formula = "MRSD = HED / SF";
  second.inputs = {{"hed", 8.108108108108109, "mg/kg"}};
  second.result = {"mrsd", 0.8108108108108109, "mg/kg"};
  second.reference = "Step 5";
  w.steps = {step, second};
  w.notes = {"rat weight outside the working range", "safety factor 10 (default)"};
  return w;
}

PkModel SampleModel() { return PkModel{"iv_bolus_2cmt", 3.5, 20, 1.2, 0.85, 7.25, 40}; }

EscalationDesign SampleDesign() {
  EscalationDesign d;
  d.design = "boin";
  d.target = 0.25;
  d.cohort_size = 4;
  d.max_patients = 36;
  d.start_dose = 2;
  d.skeleton = {0.05, 0.12, 0.25, 0.4};
  d.prior_sd = 1.5;
  d.overdose_probability = 0.3;
  d.elimination_cutoff = 0.9;
  d.extra_safe = true;
  d.phi1 = 0.15;
  d.phi2 = 0.35;
  d.stop_at_n = 12;
  return d;
}

TranslateDose SampleTranslateDose() {
  TranslateDose t;
  t.noaels = {{"rat", 50, 0.25, "SEND study PC201708, dose group 3"}, {"Dog", 10, 12.5, "request"}};
  t.method = "weight_exponent";
  t.exponent = 0.75;
  t.species = "dog";
  t.species_reason = "dog is the most relevant species";
  t.safety_factor = 12.5;
  t.safety_factor_reason = "steep dose-response curve";
  t.human_weight_kg = 70;
  return t;
}

DoseTranslation SampleDoseTranslation() {
  DoseTranslation d;
  d.heds = {{"rat", 50, 0.15, 6, 6.0 / 37, 8.108108108108109, "request"},
            {"dog", 10, 10, 20, 20.0 / 37, 5.405405405405405, "SEND study 2"}};
  d.chosen_species = "dog";
  d.species_reason = "most sensitive species (lowest HED)";
  d.hed_mg_per_kg = 5.405405405405405;
  d.safety_factor = 10;
  d.safety_factor_reason = "default";
  d.mrsd_mg_per_kg = 0.5405405405405405;
  d.human_weight_kg = 60;
  d.mrsd_mg = 32.43243243243243;
  d.working = SampleWorking("translate");
  return d;
}

SimulatePk SampleSimulatePk() {
  return SimulatePk{SampleModel(), 100, 12, 7, {0, 0.5, 1, 2, 4, 8, 12, 24}, 250.5, 12.25};
}

PkProfile SamplePkProfile() {
  PkProfile p;
  p.times_h = {0, 1, 2, 4};
  p.conc_mg_per_l = {5, 4.2, 3.5, 2.45};
  p.metrics = {{"cmax", 5, "mg/L"}, {"auc_0_inf", 28.57, "mg*h/L"}, {"t_half", 3.96, "h"}};
  p.working = SampleWorking("pk");
  return p;
}

FitPk SampleFitPk() {
  return FitPk{{0.25, 0.57, 1.12, 2.02, 3.82, 5.1},
               {2.84, 6.57, 10.5, 9.66, 8.58, 8.36},
               320,
               {{"lKe", -2.5, "log(1/h)"}, {"lKa", 0.5, "log(1/h)"}, {"lCl", -3, "log(L/h)"}}};
}

PkFit SamplePkFit() {
  PkFit f;
  f.estimates = {{"lKe", -2.4365, 0.2229, "log(1/h)"},
                 {"lKa", 0.1575, 0.4281, "log(1/h)"},
                 {"ke", 0.0875, 0.0195, "1/h"},
                 {"t_half", 7.92, 1.77, "h"}};
  f.residual_se = 0.7683;
  f.df = 8;
  f.iterations = 6;
  f.fitted = {2.5, 6.1, 9.9};
  f.working = SampleWorking("fit");
  return f;
}

ComputeSampleSize SampleComputeSampleSize() {
  ComputeSampleSize c;
  c.test = "log_rank";
  c.solve_for = "power";
  c.sides = 1;
  c.alpha = 0.025;
  c.power = 0.9;
  c.n = 120;
  c.delta = 0.5;
  c.sd = 2;
  c.p0 = 0.1;
  c.p1 = 0.3;
  c.p2 = 0.45;
  c.hazard_ratio = 0.7;
  c.allocation = 0.6;
  c.accrual_time = 24;
  c.follow_up = 12;
  c.median_control = 9;
  c.simon_design = "minimax";
  return c;
}

SampleSizeResult SampleSampleSizeResult() {
  SampleSizeResult r;
  r.test = "simon_two_stage";
  r.n = 63.76576;
  r.n_per_group = 64;
  r.n_total = 128;
  r.power = 0.8014;
  r.events = 247.3;
  r.event_probability = 0.61;
  r.simon_r1 = 1;
  r.simon_n1 = 10;
  r.simon_r = 5;
  r.simon_n = 29;
  r.simon_en0 = 15.01;
  r.simon_pet0 = 0.7361;
  r.achieved_alpha = 0.0471;
  r.working = SampleWorking("sample size");
  return r;
}

SimulateEscalation SampleSimulateEscalation() {
  return SimulateEscalation{SampleDesign(), {0.05, 0.1, 0.2, 0.3, 0.5}, 5000, 20261126};
}

OperatingCharacteristics SampleOc() {
  OperatingCharacteristics oc;
  oc.design = "crm";
  oc.trials = 2000;
  oc.seed = 0xfedc'ba98'7654'3210ull;  // beyond 2^63: the full unsigned range survives
  oc.selection_pct = {1.5, 20.25, 55, 18, 3.5};
  oc.patients_mean = {3.2, 8.1, 11.7, 5.5, 1.5};
  oc.dlt_mean = {0.16, 0.81, 2.34, 1.65, 0.75};
  oc.early_stop_pct = 1.75;
  oc.correct_selection_pct = 55;
  oc.patients_total_mean = 30;
  oc.dlt_total_mean = 5.71;
  oc.lambda_e = 0.236;
  oc.lambda_d = 0.359;
  oc.boundaries = {{1, 0, 1, 3}, {3, 0, 2, 3}, {6, 1, 3, 4}};
  oc.working = SampleWorking("escalation");
  return oc;
}

RunVirtualTrial SampleRunVirtualTrial() {
  RunVirtualTrial r;
  r.model = SampleModel();
  r.bsv_cv = 0.45;
  r.dose_mg = {10, 20, 33, 50, 70};
  r.start_dose_mg = 32.4;
  r.tox_auc50 = 400;
  r.tox_hill = 3;
  r.response_auc50 = 150;
  r.response_hill = 1.5;
  r.response_emax = 0.8;
  r.design = SampleDesign();
  r.trials = 250;
  r.population = 500;
  r.seed = 99;
  return r;
}

VirtualTrialResult SampleVirtualTrialResult() {
  VirtualTrialResult v;
  v.dose_mg = {10, 20, 33};
  v.auc_median = {5, 10, 16.5};
  v.auc_p05 = {2.1, 4.2, 6.9};
  v.auc_p95 = {11.9, 23.8, 39.3};
  v.p_dlt = {0.01, 0.04, 0.1};
  v.p_response = {0.2, 0.35, 0.5};
  v.oc = SampleOc();
  v.working = SampleWorking("virtual trial");
  return v;
}

// ---- Helpers ----------------------------------------------------------------

Message WithBody(Body body) {
  Message m;
  m.header.message_id = "m-1";
  m.header.sender = "scientist-1";
  m.header.sent_at_ms = 1764158400000;
  m.body = std::move(body);
  return m;
}

// Encodes `body` in an envelope and decodes it back; the body must survive
// as the same alternative.
template <typename T>
T RoundTrip(const T& body) {
  Decoded d = Decode(Encode(WithBody(body)));
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().where + ": " + d.error().message);
  if (!d.ok()) return {};
  EXPECT_TRUE(std::holds_alternative<T>(d.message().body))
      << "decoded as " << BodyName(d.message().body);
  if (!std::holds_alternative<T>(d.message().body)) return {};
  return std::get<T>(std::move(d.message().body));
}

std::vector<Blob> OneFrame(const std::uint8_t* data, std::size_t size) {
  std::vector<Blob> frames;
  frames.push_back(Blob::CopyOf(std::span(reinterpret_cast<const std::byte*>(data), size)));
  return frames;
}

// Finishes an envelope (no generated code: the raw FlatBuffers builder) around
// a body table already in `b`.
void FinishEnvelope(flatbuffers::FlatBufferBuilder& b, std::size_t type,
                    flatbuffers::uoffset_t body, const char* message_id) {
  const auto id = b.CreateString(message_id);
  const auto env = b.StartTable();
  // Envelope fields by id: 0 schema_version, 1 message_id, 5 body_type, 6 body.
  b.AddElement<std::uint16_t>(flatbuffers::FieldIndexToOffset(0), kSchemaVersion, 0);
  b.AddOffset(flatbuffers::FieldIndexToOffset(1), id);
  b.AddElement<std::uint8_t>(flatbuffers::FieldIndexToOffset(5), static_cast<std::uint8_t>(type),
                             0);
  b.AddOffset(flatbuffers::FieldIndexToOffset(6), flatbuffers::Offset<void>(body));
  b.Finish(flatbuffers::Offset<void>(b.EndTable(env)), "FRX1");
}

// A verifiable envelope whose body is an empty table of body type `type`:
// every field of the body absent.
std::vector<Blob> EnvelopeWithEmptyBody(std::size_t type) {
  flatbuffers::FlatBufferBuilder b(128);
  FinishEnvelope(b, type, b.EndTable(b.StartTable()), "m-empty");
  return OneFrame(b.GetBufferPointer(), b.GetSize());
}

template <typename T>
std::size_t TypeOf() {
  return Body(T{}).index() + 1;  // wire type 0 is NONE
}

// ---- Round trips ------------------------------------------------------------

TEST(DomainCodecTest, TranslateDoseSurvivesWithEveryField) {
  const TranslateDose want = SampleTranslateDose();
  Same(want, RoundTrip(want), "TranslateDose");
}

TEST(DomainCodecTest, DoseTranslationSurvivesWithEveryFieldAndItsWorking) {
  const DoseTranslation want = SampleDoseTranslation();
  Same(want, RoundTrip(want), "DoseTranslation");
}

TEST(DomainCodecTest, SimulatePkSurvivesWithItsModel) {
  const SimulatePk want = SampleSimulatePk();
  Same(want, RoundTrip(want), "SimulatePk");
}

TEST(DomainCodecTest, PkProfileSurvivesWithEveryField) {
  const PkProfile want = SamplePkProfile();
  Same(want, RoundTrip(want), "PkProfile");
}

TEST(DomainCodecTest, FitPkSurvivesWithItsStartingValues) {
  const FitPk want = SampleFitPk();
  Same(want, RoundTrip(want), "FitPk");
}

TEST(DomainCodecTest, PkFitSurvivesWithEveryEstimate) {
  const PkFit want = SamplePkFit();
  Same(want, RoundTrip(want), "PkFit");
}

TEST(DomainCodecTest, ComputeSampleSizeSurvivesWithEveryField) {
  const ComputeSampleSize want = SampleComputeSampleSize();
  Same(want, RoundTrip(want), "ComputeSampleSize");
}

TEST(DomainCodecTest, SampleSizeResultSurvivesWithEveryField) {
  const SampleSizeResult want = SampleSampleSizeResult();
  Same(want, RoundTrip(want), "SampleSizeResult");
}

TEST(DomainCodecTest, SimulateEscalationSurvivesWithItsDesign) {
  const SimulateEscalation want = SampleSimulateEscalation();
  Same(want, RoundTrip(want), "SimulateEscalation");
}

TEST(DomainCodecTest, OperatingCharacteristicsSurviveWithBoundaries) {
  const OperatingCharacteristics want = SampleOc();
  Same(want, RoundTrip(want), "OperatingCharacteristics");
}

TEST(DomainCodecTest, RunVirtualTrialSurvivesWithModelAndDesign) {
  const RunVirtualTrial want = SampleRunVirtualTrial();
  Same(want, RoundTrip(want), "RunVirtualTrial");
}

TEST(DomainCodecTest, VirtualTrialResultSurvivesWithItsOperatingCharacteristics) {
  const VirtualTrialResult want = SampleVirtualTrialResult();
  Same(want, RoundTrip(want), "VirtualTrialResult");
}

// Values a service may legitimately put in an answer (infinite margins, the
// extremes of each integer type, empty strings where a default exists) travel
// unchanged: the wire neither rounds nor substitutes (zero's sign aside).
TEST(DomainCodecTest, ExtremeValuesSurviveExactly) {
  PkProfile p;
  p.metrics = {{"margin_auc", std::numeric_limits<double>::infinity(), ""},
               {"tiny", std::numeric_limits<double>::denorm_min(), "mg/L"},
               {"negative_zero", -0.0, ""}};
  const PkProfile got = RoundTrip(p);
  ASSERT_EQ(got.metrics.size(), 3u);
  EXPECT_EQ(got.metrics[0].value, std::numeric_limits<double>::infinity());
  EXPECT_EQ(got.metrics[1].value, std::numeric_limits<double>::denorm_min());
  // FlatBuffers leaves a value equal to its default (0) off the wire, so a
  // negative zero arrives as zero: equal in value, without its sign.
  EXPECT_EQ(got.metrics[2].value, 0.0);

  SampleSizeResult r;
  r.n_per_group = std::numeric_limits<std::int64_t>::max();
  r.n_total = std::numeric_limits<std::int64_t>::min();
  r.simon_r = std::numeric_limits<std::int32_t>::min();
  const SampleSizeResult r2 = RoundTrip(r);
  EXPECT_EQ(r2.n_per_group, std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(r2.n_total, std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(r2.simon_r, std::numeric_limits<std::int32_t>::min());

  // An explicitly empty method is sent as empty, not replaced by "bsa".
  TranslateDose t;
  t.method = "";
  ComputeSampleSize c;
  c.solve_for = "";
  c.simon_design = "";
  EXPECT_EQ(RoundTrip(t).method, "");
  EXPECT_EQ(RoundTrip(c).solve_for, "");
  EXPECT_EQ(RoundTrip(c).simon_design, "");
}

// A NaN is carried as it is (the services refuse it with a located error;
// the codec does not judge values).
TEST(DomainCodecTest, NanTravelsForTheServiceToRefuse) {
  TranslateDose t;
  t.noaels = {{"rat", std::nan(""), 0, ""}};
  const TranslateDose got = RoundTrip(t);
  ASSERT_EQ(got.noaels.size(), 1u);
  EXPECT_TRUE(std::isnan(got.noaels[0].noael_mg_per_kg));
}

// Default-constructed bodies (the defaults the schema leaves off the wire)
// come back as their defaults.
TEST(DomainCodecTest, DefaultBodiesSurviveAsDefaults) {
  const TranslateDose t = RoundTrip(TranslateDose{});
  EXPECT_EQ(t.method, "bsa");
  EXPECT_EQ(t.exponent, 0.67);
  EXPECT_EQ(t.safety_factor, 10);
  EXPECT_EQ(t.human_weight_kg, 60);
  const SimulateEscalation s = RoundTrip(SimulateEscalation{});
  EXPECT_EQ(s.design.prior_sd, 1.16);
  EXPECT_EQ(s.trials, 1000);
  EXPECT_EQ(s.seed, 1u);
  const OperatingCharacteristics oc = RoundTrip(OperatingCharacteristics{});
  EXPECT_TRUE(oc.boundaries.empty());
  EXPECT_TRUE(oc.working.steps.empty());
}

TEST(DomainCodecTest, BodyNamesAreStable) {
  EXPECT_STREQ(BodyName(Body{TranslateDose{}}), "TranslateDose");
  EXPECT_STREQ(BodyName(Body{DoseTranslation{}}), "DoseTranslation");
  EXPECT_STREQ(BodyName(Body{SimulatePk{}}), "SimulatePk");
  EXPECT_STREQ(BodyName(Body{PkProfile{}}), "PkProfile");
  EXPECT_STREQ(BodyName(Body{FitPk{}}), "FitPk");
  EXPECT_STREQ(BodyName(Body{PkFit{}}), "PkFit");
  EXPECT_STREQ(BodyName(Body{ComputeSampleSize{}}), "ComputeSampleSize");
  EXPECT_STREQ(BodyName(Body{SampleSizeResult{}}), "SampleSizeResult");
  EXPECT_STREQ(BodyName(Body{SimulateEscalation{}}), "SimulateEscalation");
  EXPECT_STREQ(BodyName(Body{OperatingCharacteristics{}}), "OperatingCharacteristics");
  EXPECT_STREQ(BodyName(Body{RunVirtualTrial{}}), "RunVirtualTrial");
  EXPECT_STREQ(BodyName(Body{VirtualTrialResult{}}), "VirtualTrialResult");
}

// A profile travels inside the envelope, which the default Limits bound to
// 1 MiB: 60 000 time points (times and concentrations, 16 bytes a point)
// fit; 70 000 do not, and the receiver refuses the envelope as oversized
// before parsing it. A service must keep its grids below about 65 000 points.
TEST(DomainCodecTest, PkProfileSizeIsBoundedByTheEnvelopeLimit) {
  const auto profile = [](std::size_t points) {
    PkProfile p;
    p.times_h.resize(points);
    p.conc_mg_per_l.resize(points);
    for (std::size_t i = 0; i < points; ++i) {
      p.times_h[i] = 0.01 * static_cast<double>(i);
      p.conc_mg_per_l[i] = 1.0 / (1.0 + static_cast<double>(i));
    }
    return p;
  };
  const PkProfile fits = profile(60000);
  const PkProfile got = RoundTrip(fits);
  EXPECT_EQ(got.times_h, fits.times_h);
  EXPECT_EQ(got.conc_mg_per_l, fits.conc_mg_per_l);

  Decoded d = Decode(Encode(WithBody(profile(70000))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().fault, DecodeFault::kOversized);
  EXPECT_EQ(d.error().where, "frame 0");
}

// ---- Absent fields and tables -----------------------------------------------

// An empty body table (what an older or terse sender writes) decodes to the
// C++ defaults, the non-empty string defaults included: the schema's
// defaults equal message.h's.
template <typename T>
T FromEmptyTable() {
  Decoded d = Decode(EnvelopeWithEmptyBody(TypeOf<T>()));
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().where + ": " + d.error().message);
  if (!d.ok() || !std::holds_alternative<T>(d.message().body)) return {};
  return std::get<T>(std::move(d.message().body));
}

TEST(DomainCodecAbsentTest, EmptyTranslateDoseDecodesToTheDefaults) {
  const TranslateDose t = FromEmptyTable<TranslateDose>();
  const TranslateDose def;
  EXPECT_TRUE(t.noaels.empty());
  EXPECT_EQ(t.method, "bsa");
  EXPECT_EQ(t.exponent, def.exponent);
  EXPECT_EQ(t.species, "");
  EXPECT_EQ(t.species_reason, "");
  EXPECT_EQ(t.safety_factor, 10);
  EXPECT_EQ(t.safety_factor_reason, "");
  EXPECT_EQ(t.human_weight_kg, 60);
}

TEST(DomainCodecAbsentTest, EmptyComputeSampleSizeDecodesToTheDefaults) {
  const ComputeSampleSize c = FromEmptyTable<ComputeSampleSize>();
  const ComputeSampleSize def;
  EXPECT_EQ(c.test, "");
  EXPECT_EQ(c.solve_for, "n");
  EXPECT_EQ(c.sides, 2);
  EXPECT_EQ(c.alpha, def.alpha);
  EXPECT_EQ(c.power, def.power);
  EXPECT_EQ(c.n, 0);
  EXPECT_EQ(c.sd, 1);
  EXPECT_EQ(c.allocation, 0.5);
  EXPECT_EQ(c.simon_design, "optimal");
}

TEST(DomainCodecAbsentTest, AnswersWithoutWorkingDecodeToEmptyWorking) {
  const DoseTranslation d = FromEmptyTable<DoseTranslation>();
  EXPECT_TRUE(d.heds.empty());
  EXPECT_EQ(d.mrsd_mg, 0);
  EXPECT_TRUE(d.working.method.empty());
  EXPECT_TRUE(d.working.steps.empty());

  const PkProfile p = FromEmptyTable<PkProfile>();
  EXPECT_TRUE(p.times_h.empty());
  EXPECT_TRUE(p.metrics.empty());
  EXPECT_TRUE(p.working.notes.empty());

  const PkFit f = FromEmptyTable<PkFit>();
  EXPECT_TRUE(f.estimates.empty());
  EXPECT_EQ(f.df, 0);
  EXPECT_TRUE(f.working.guidance.empty());

  const SampleSizeResult s = FromEmptyTable<SampleSizeResult>();
  EXPECT_EQ(s.n_total, 0);
  EXPECT_TRUE(s.working.steps.empty());

  const FitPk fit = FromEmptyTable<FitPk>();
  EXPECT_TRUE(fit.start.empty());
  EXPECT_EQ(fit.dose_mg, 0);
}

TEST(DomainCodecAbsentTest, OperatingCharacteristicsWithoutTablesDecodeToDefaults) {
  const OperatingCharacteristics oc = FromEmptyTable<OperatingCharacteristics>();
  EXPECT_EQ(oc.design, "");
  EXPECT_EQ(oc.trials, 0);
  EXPECT_EQ(oc.seed, 0u);
  EXPECT_TRUE(oc.selection_pct.empty());
  EXPECT_TRUE(oc.boundaries.empty());
  EXPECT_TRUE(oc.working.steps.empty());

  const VirtualTrialResult v = FromEmptyTable<VirtualTrialResult>();
  EXPECT_TRUE(v.dose_mg.empty());
  EXPECT_TRUE(v.oc.selection_pct.empty());
  EXPECT_EQ(v.oc.trials, 0);
  EXPECT_TRUE(v.working.steps.empty());
}

// Inside a present table an absent nested table reads as its defaults too: a
// BoundaryRow written with only n keeps the -1 "not applicable" defaults.
TEST(DomainCodecAbsentTest, BoundaryRowDefaultsAreNotApplicable) {
  OperatingCharacteristics oc;
  oc.boundaries = {BoundaryRow{4}};
  const OperatingCharacteristics got = RoundTrip(oc);
  ASSERT_EQ(got.boundaries.size(), 1u);
  EXPECT_EQ(got.boundaries[0].n, 4);
  EXPECT_EQ(got.boundaries[0].escalate_at_most, -1);
  EXPECT_EQ(got.boundaries[0].deescalate_at_least, -1);
  EXPECT_EQ(got.boundaries[0].eliminate_at_least, -1);
}

// Requests whose model or design table is absent cannot be answered: the
// codec refuses them and names the missing table.
TEST(DomainCodecAbsentTest, RequestsWithoutTheirRequiredTablesAreRefused) {
  struct Case {
    std::size_t type;
    const char* where;
  };
  for (const Case& c : {Case{TypeOf<SimulatePk>(), "SimulatePk.model"},
                        Case{TypeOf<SimulateEscalation>(), "SimulateEscalation.design"},
                        Case{TypeOf<RunVirtualTrial>(), "RunVirtualTrial.model"}}) {
    Decoded d = Decode(EnvelopeWithEmptyBody(c.type));
    ASSERT_FALSE(d.ok()) << c.where;
    EXPECT_EQ(d.error().fault, DecodeFault::kMissingField) << c.where;
    EXPECT_EQ(d.error().where, c.where);
    EXPECT_EQ(d.error().message_id, "m-empty");
    EXPECT_FALSE(d.error().message.empty());
  }
}

// ---- Damaged input ----------------------------------------------------------

// The Verifier checks only that a vector's length is 4-aligned, so a peer can
// place a [double] whose elements sit at an address that is 4 but not 8
// aligned; the FlatBuffers builder never writes one. Here such a vector is
// planted inside a [uint] (its length word, then each double's two halves)
// and SimulatePk.times_h points at it: the doubles come out exact (the codec
// copies the bytes rather than reading through a misaligned double pointer).
TEST(DomainCodecDamageTest, DoubleVectorAtAFourByteAlignedAddressDecodesExactly) {
  const std::vector<double> times = {0.25, 1.5, 12, 24.125};
  bool planted_misaligned = false;
  for (const int pad : {0, 1}) {
    flatbuffers::FlatBufferBuilder b(256);
    const auto model = b.EndTable(b.StartTable());
    for (int i = 0; i < pad; ++i) b.PushElement<std::uint32_t>(0);
    std::vector<std::uint32_t> words = {static_cast<std::uint32_t>(times.size())};
    for (const double t : times) {
      std::uint32_t halves[2];
      std::memcpy(halves, &t, sizeof halves);
      words.push_back(halves[0]);
      words.push_back(halves[1]);
    }
    const flatbuffers::uoffset_t carrier = b.CreateVector(words).o;
    // The planted vector's length is the carrier's first element, 4 bytes on.
    const flatbuffers::uoffset_t planted = carrier - 4;
    const auto start = b.StartTable();
    b.AddOffset(flatbuffers::FieldIndexToOffset(0), flatbuffers::Offset<void>(model));
    b.AddOffset(flatbuffers::FieldIndexToOffset(4), flatbuffers::Offset<void>(planted));
    FinishEnvelope(b, TypeOf<SimulatePk>(), b.EndTable(start), "m-odd");
    // Offsets count from the buffer's end; the doubles start 4 bytes after
    // the planted length.
    const std::size_t data_at = b.GetSize() - planted + 4;
    if (data_at % 8 != 4) continue;
    planted_misaligned = true;
    std::vector<Blob> frames = OneFrame(b.GetBufferPointer(), b.GetSize());
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(frames[0].data()) % 8, 0u);
    Decoded d = Decode(std::move(frames));
    ASSERT_TRUE(d.ok()) << d.error().where << ": " << d.error().message;
    EXPECT_EQ(std::get<SimulatePk>(d.message().body).times_h, times);
  }
  EXPECT_TRUE(planted_misaligned) << "neither padding put the doubles at 4 mod 8";
}

// Flipping bytes of encoded domain bodies yields a decoded message or a
// DecodeError, never a crash or an out-of-bounds read (run under ASan in the
// fuzz build). Seeded, so a failure reproduces.
TEST(DomainCodecDamageTest, RandomByteFlipsAreDecodedOrRefusedCleanly) {
  std::mt19937 rng(7);
  const std::vector<Body> bodies = {SampleTranslateDose(),
                                    SampleDoseTranslation(),
                                    SampleSimulatePk(),
                                    SamplePkProfile(),
                                    SampleFitPk(),
                                    SamplePkFit(),
                                    SampleComputeSampleSize(),
                                    SampleSampleSizeResult(),
                                    SampleSimulateEscalation(),
                                    SampleOc(),
                                    SampleRunVirtualTrial(),
                                    SampleVirtualTrialResult()};
  std::size_t decoded = 0;
  std::size_t refused = 0;
  for (const Body& body : bodies) {
    std::vector<Blob> frames = Encode(WithBody(body));
    const auto* p = reinterpret_cast<const std::uint8_t*>(frames[0].data());
    const std::vector<std::uint8_t> clean(p, p + frames[0].size());
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<std::uint8_t> bytes = clean;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] ^= 1u << (rng() % 8);
      Decoded d = Decode(OneFrame(bytes.data(), bytes.size()));
      if (d.ok()) {
        ++decoded;
        EXPECT_LT(d.message().body.index(), kBodyCount);
      } else {
        ++refused;
        EXPECT_FALSE(d.error().where.empty());
      }
    }
  }
  // Both outcomes occur: the flips reach values (decoded) and offsets (refused).
  EXPECT_GT(decoded, 0u);
  EXPECT_GT(refused, 0u);
}

}  // namespace
}  // namespace fedrx::codec
