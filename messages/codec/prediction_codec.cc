// Wire conversion of the ML domain bodies (prediction.fbs): toxicity panels,
// clinical assessments and reverse translation. Each Write() writes one plain
// type as its table; each Read() reads a table back, an absent table reading
// as the plain type's defaults (the schema's defaults equal message.h's).
#include <string>
#include <utility>
#include <vector>

#include "messages/codec/codec_internal.h"

namespace fedrx::codec::internal {
namespace {

namespace fb = flatbuffers;
namespace w = fedrx::wire;
using Builder = fb::FlatBufferBuilder;

// Declared first so that WriteAll() and ReadAll() find every overload
// whatever the order of the definitions below.
fb::Offset<w::ModelProvenance> Write(Builder& b, const ModelProvenance& v);
fb::Offset<w::TaskPrediction> Write(Builder& b, const TaskPrediction& v);
fb::Offset<w::DomainAssessment> Write(Builder& b, const DomainAssessment& v);
fb::Offset<w::StructurePrediction> Write(Builder& b, const StructurePrediction& v);
fb::Offset<w::PhaseTransition> Write(Builder& b, const PhaseTransition& v);
fb::Offset<w::ClinicalSuccess> Write(Builder& b, const ClinicalSuccess& v);
fb::Offset<w::AssayAssociation> Write(Builder& b, const AssayAssociation& v);
fb::Offset<w::SendEndpointRecommendation> Write(Builder& b, const SendEndpointRecommendation& v);
fb::Offset<w::OrganClassRecommendation> Write(Builder& b, const OrganClassRecommendation& v);
ModelProvenance Read(const w::ModelProvenance* v);
TaskPrediction Read(const w::TaskPrediction* v);
DomainAssessment Read(const w::DomainAssessment* v);
StructurePrediction Read(const w::StructurePrediction* v);
PhaseTransition Read(const w::PhaseTransition* v);
ClinicalSuccess Read(const w::ClinicalSuccess* v);
AssayAssociation Read(const w::AssayAssociation* v);
SendEndpointRecommendation Read(const w::SendEndpointRecommendation* v);
OrganClassRecommendation Read(const w::OrganClassRecommendation* v);

// ---- Encoding ---------------------------------------------------------------

// A vector of tables, each written by the Write() overload for T.
template <typename T>
auto WriteAll(Builder& b, const std::vector<T>& v) {
  return WriteTables(b, v, [](Builder& builder, const T& x) { return Write(builder, x); });
}

fb::Offset<w::ModelProvenance> Write(Builder& b, const ModelProvenance& v) {
  auto study = b.CreateString(v.study_id);
  auto hash = b.CreateString(v.preparation_hash);
  auto method = b.CreateString(v.method);
  return w::CreateModelProvenance(b, study, v.model_version, hash, v.calibration_samples,
                                  v.calibration_version, method);
}

fb::Offset<w::TaskPrediction> Write(Builder& b, const TaskPrediction& v) {
  auto task = b.CreateString(v.task);
  auto set = b.CreateString(v.prediction_set);
  return w::CreateTaskPrediction(b, task, v.probability, v.p_negative, v.p_positive, set,
                                 v.credibility, v.confidence, v.calibrated);
}

fb::Offset<w::DomainAssessment> Write(Builder& b, const DomainAssessment& v) {
  return w::CreateDomainAssessment(b, v.score, v.p_value, v.in_domain, v.threshold, v.calibrated);
}

fb::Offset<w::StructurePrediction> Write(Builder& b, const StructurePrediction& v) {
  // Children first: FlatBuffers builds a table after everything it points to.
  auto input = b.CreateString(v.input);
  auto canonical = b.CreateString(v.canonical_smiles);
  auto code = b.CreateString(v.error_code);
  auto error = b.CreateString(v.error);
  auto where = b.CreateString(v.error_where);
  auto tasks = WriteAll(b, v.tasks);
  auto domain = Write(b, v.domain);
  return w::CreateStructurePrediction(b, input, canonical, code, error, where, tasks, domain);
}

fb::Offset<w::PhaseTransition> Write(Builder& b, const PhaseTransition& v) {
  return w::CreatePhaseTransition(b, b.CreateString(v.transition), v.base_rate, v.adjusted,
                                  v.weight);
}

fb::Offset<w::ClinicalSuccess> Write(Builder& b, const ClinicalSuccess& v) {
  auto area = b.CreateString(v.therapeutic_area);
  auto transitions = WriteAll(b, v.transitions);
  auto source = b.CreateString(v.source);
  return w::CreateClinicalSuccess(b, area, v.risk, v.log_likelihood_ratio, transitions,
                                  v.base_likelihood_of_approval, v.adjusted_likelihood_of_approval,
                                  source);
}

fb::Offset<w::AssayAssociation> Write(Builder& b, const AssayAssociation& v) {
  auto label = b.CreateString(v.clinical_label);
  auto assay = b.CreateString(v.assay);
  auto evidence = b.CreateString(v.evidence);
  return w::CreateAssayAssociation(b, label, assay, v.a, v.b, v.c, v.d, v.sufficient_evidence,
                                   v.odds_ratio, v.ci_low, v.ci_high, v.p_value, v.q_value,
                                   v.significant, v.in_table_family, evidence);
}

fb::Offset<w::SendEndpointRecommendation> Write(Builder& b, const SendEndpointRecommendation& v) {
  auto domain = b.CreateString(v.domain);
  auto code = b.CreateString(v.code);
  auto note = b.CreateString(v.note);
  return w::CreateSendEndpointRecommendation(b, domain, code, note);
}

fb::Offset<w::OrganClassRecommendation> Write(Builder& b, const OrganClassRecommendation& v) {
  auto organ_class = b.CreateString(v.organ_class);
  auto terms = b.CreateVectorOfStrings(v.matched_terms);
  auto assays = WriteAll(b, v.assays);
  auto endpoints = WriteAll(b, v.endpoints);
  auto none_reason = b.CreateString(v.none_reason);
  auto rationale = b.CreateString(v.rationale);
  auto reference = b.CreateString(v.reference);
  return w::CreateOrganClassRecommendation(b, organ_class, terms, assays, endpoints, none_reason,
                                           rationale, reference);
}

// ---- Decoding ---------------------------------------------------------------

// A vector of tables, each read by the Read() overload for W.
template <typename W>
auto ReadAll(const fb::Vector<fb::Offset<W>>* v) {
  return ReadTables(v, [](const W* x) { return Read(x); });
}

ModelProvenance Read(const w::ModelProvenance* v) {
  ModelProvenance out;
  if (v == nullptr) return out;
  out.study_id = Str(v->study_id());
  out.model_version = v->model_version();
  out.preparation_hash = Str(v->preparation_hash());
  out.calibration_samples = v->calibration_samples();
  out.calibration_version = v->calibration_version();
  out.method = Str(v->method());
  return out;
}

TaskPrediction Read(const w::TaskPrediction* v) {
  TaskPrediction out;
  if (v == nullptr) return out;
  out.task = Str(v->task());
  out.probability = v->probability();
  out.p_negative = v->p_negative();
  out.p_positive = v->p_positive();
  out.prediction_set = Str(v->prediction_set());
  out.credibility = v->credibility();
  out.confidence = v->confidence();
  out.calibrated = v->calibrated();
  return out;
}

DomainAssessment Read(const w::DomainAssessment* v) {
  DomainAssessment out;
  if (v == nullptr) return out;
  out.score = v->score();
  out.p_value = v->p_value();
  out.in_domain = v->in_domain();
  out.threshold = v->threshold();
  out.calibrated = v->calibrated();
  return out;
}

StructurePrediction Read(const w::StructurePrediction* v) {
  StructurePrediction out;
  if (v == nullptr) return out;
  out.input = Str(v->input());
  out.canonical_smiles = Str(v->canonical_smiles());
  out.error_code = Str(v->error_code());
  out.error = Str(v->error());
  out.error_where = Str(v->error_where());
  out.tasks = ReadAll(v->tasks());
  out.domain = Read(v->domain());
  return out;
}

PhaseTransition Read(const w::PhaseTransition* v) {
  PhaseTransition out;
  if (v == nullptr) return out;
  out.transition = Str(v->transition());
  out.base_rate = v->base_rate();
  out.adjusted = v->adjusted();
  out.weight = v->weight();
  return out;
}

ClinicalSuccess Read(const w::ClinicalSuccess* v) {
  ClinicalSuccess out;
  if (v == nullptr) return out;
  out.therapeutic_area = Str(v->therapeutic_area());
  out.risk = v->risk();
  out.log_likelihood_ratio = v->log_likelihood_ratio();
  out.transitions = ReadAll(v->transitions());
  out.base_likelihood_of_approval = v->base_likelihood_of_approval();
  out.adjusted_likelihood_of_approval = v->adjusted_likelihood_of_approval();
  out.source = Str(v->source());
  return out;
}

AssayAssociation Read(const w::AssayAssociation* v) {
  AssayAssociation out;
  if (v == nullptr) return out;
  out.clinical_label = Str(v->clinical_label());
  out.assay = Str(v->assay());
  out.a = v->a();
  out.b = v->b();
  out.c = v->c();
  out.d = v->d();
  out.sufficient_evidence = v->sufficient_evidence();
  out.odds_ratio = v->odds_ratio();
  out.ci_low = v->ci_low();
  out.ci_high = v->ci_high();
  out.p_value = v->p_value();
  out.q_value = v->q_value();
  out.significant = v->significant();
  out.in_table_family = v->in_table_family();
  out.evidence = Str(v->evidence());
  return out;
}

SendEndpointRecommendation Read(const w::SendEndpointRecommendation* v) {
  SendEndpointRecommendation out;
  if (v == nullptr) return out;
  out.domain = Str(v->domain());
  out.code = Str(v->code());
  out.note = Str(v->note());
  return out;
}

OrganClassRecommendation Read(const w::OrganClassRecommendation* v) {
  OrganClassRecommendation out;
  if (v == nullptr) return out;
  out.organ_class = Str(v->organ_class());
  out.matched_terms = Strs(v->matched_terms());
  out.assays = ReadAll(v->assays());
  out.endpoints = ReadAll(v->endpoints());
  out.none_reason = Str(v->none_reason());
  out.rationale = Str(v->rationale());
  out.reference = Str(v->reference());
  return out;
}

}  // namespace

// ---- Bodies: encoding -------------------------------------------------------

BodyOffset EncodeDomain(Builder& b, const PredictToxicity& v) {
  auto smiles = b.CreateVectorOfStrings(v.smiles);
  auto panel = b.CreateString(v.panel);
  auto tasks = b.CreateVectorOfStrings(v.tasks);
  return {w::Body::PredictToxicity,
          w::CreatePredictToxicity(b, smiles, panel, tasks, v.confidence).Union()};
}

BodyOffset EncodeDomain(Builder& b, const ToxicityPanel& v) {
  auto panel = b.CreateString(v.panel);
  auto model = Write(b, v.model);
  auto tasks = b.CreateVectorOfStrings(v.tasks);
  auto results = WriteAll(b, v.results);
  auto working = WriteWorking(b, v.working);
  return {w::Body::ToxicityPanel,
          w::CreateToxicityPanel(b, panel, model, v.confidence, tasks, results, working).Union()};
}

BodyOffset EncodeDomain(Builder& b, const AssessClinical& v) {
  auto smiles = b.CreateVectorOfStrings(v.smiles);
  auto area = b.CreateString(v.therapeutic_area);
  return {w::Body::AssessClinical, w::CreateAssessClinical(b, smiles, area, v.confidence).Union()};
}

BodyOffset EncodeDomain(Builder& b, const ClinicalAssessment& v) {
  auto model = Write(b, v.model);
  auto clinical = WriteAll(b, v.clinical);
  auto success = WriteAll(b, v.success);
  auto side_effect_model = Write(b, v.side_effect_model);
  auto side_effects = WriteAll(b, v.side_effects);
  auto unavailable = b.CreateString(v.side_effects_unavailable);
  auto working = WriteWorking(b, v.working);
  return {w::Body::ClinicalAssessment,
          w::CreateClinicalAssessment(b, model, v.confidence, clinical, success, side_effect_model,
                                      side_effects, unavailable, working)
              .Union()};
}

BodyOffset EncodeDomain(Builder& b, const ReverseTranslate& v) {
  auto organ_classes = b.CreateVectorOfStrings(v.organ_classes);
  auto events = b.CreateVectorOfStrings(v.adverse_events);
  auto labels = b.CreateVectorOfStrings(v.clinical_labels);
  return {w::Body::ReverseTranslate,
          w::CreateReverseTranslate(b, organ_classes, events, labels, v.fdr).Union()};
}

BodyOffset EncodeDomain(Builder& b, const ReverseTranslation& v) {
  auto organ_classes = WriteAll(b, v.organ_classes);
  auto labels = WriteAll(b, v.label_associations);
  auto study = b.CreateString(v.counts_study);
  auto working = WriteWorking(b, v.working);
  return {w::Body::ReverseTranslation,
          w::CreateReverseTranslation(b, organ_classes, labels, study, v.counts_version,
                                      v.counts_sites, v.counts_compounds, v.counts_secure, working)
              .Union()};
}

// ---- Bodies: decoding -------------------------------------------------------

bool PredictionBodyOf(const w::Envelope& env, Body& out, DecodeError& error) {
  switch (env.body_type()) {
    case w::Body::PredictToxicity: {
      const auto* v = env.body_as_PredictToxicity();
      PredictToxicity m;
      m.smiles = Strs(v->smiles());
      m.panel = Str(v->panel());
      m.tasks = Strs(v->tasks());
      m.confidence = v->confidence();
      out = std::move(m);
      return true;
    }
    case w::Body::ToxicityPanel: {
      const auto* v = env.body_as_ToxicityPanel();
      ToxicityPanel m;
      m.panel = Str(v->panel());
      m.model = Read(v->model());
      m.confidence = v->confidence();
      m.tasks = Strs(v->tasks());
      m.results = ReadAll(v->results());
      m.working = ReadWorking(v->working());
      out = std::move(m);
      return true;
    }
    case w::Body::AssessClinical: {
      const auto* v = env.body_as_AssessClinical();
      AssessClinical m;
      m.smiles = Strs(v->smiles());
      m.therapeutic_area = Str(v->therapeutic_area());
      m.confidence = v->confidence();
      out = std::move(m);
      return true;
    }
    case w::Body::ClinicalAssessment: {
      const auto* v = env.body_as_ClinicalAssessment();
      ClinicalAssessment m;
      m.model = Read(v->model());
      m.confidence = v->confidence();
      m.clinical = ReadAll(v->clinical());
      m.success = ReadAll(v->success());
      m.side_effect_model = Read(v->side_effect_model());
      m.side_effects = ReadAll(v->side_effects());
      m.side_effects_unavailable = Str(v->side_effects_unavailable());
      m.working = ReadWorking(v->working());
      out = std::move(m);
      return true;
    }
    case w::Body::ReverseTranslate: {
      const auto* v = env.body_as_ReverseTranslate();
      ReverseTranslate m;
      m.organ_classes = Strs(v->organ_classes());
      m.adverse_events = Strs(v->adverse_events());
      m.clinical_labels = Strs(v->clinical_labels());
      m.fdr = v->fdr();
      out = std::move(m);
      return true;
    }
    case w::Body::ReverseTranslation: {
      const auto* v = env.body_as_ReverseTranslation();
      ReverseTranslation m;
      m.organ_classes = ReadAll(v->organ_classes());
      m.label_associations = ReadAll(v->label_associations());
      m.counts_study = Str(v->counts_study());
      m.counts_version = v->counts_version();
      m.counts_sites = v->counts_sites();
      m.counts_compounds = v->counts_compounds();
      m.counts_secure = v->counts_secure();
      m.working = ReadWorking(v->working());
      out = std::move(m);
      return true;
    }
    default:
      break;
  }
  error.fault = DecodeFault::kUnknownBody;
  error.message = "body type " + std::to_string(static_cast<int>(env.body_type())) +
                  " is not an ML domain body";
  error.where = "envelope.body";
  return false;
}

}  // namespace fedrx::codec::internal
