// With domain_codec.cc, prediction_codec.cc and workflow_codec.cc, the only
// code that touches the FlatBuffers-generated types.
#include "messages/codec/codec.h"

#include <flatbuffers/flatbuffers.h>

#include <array>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "messages/codec/codec_internal.h"
#include "messages/envelope_generated.h"

namespace fedrx::codec {
namespace {

namespace fb = flatbuffers;
namespace w = fedrx::wire;
using internal::Str;
using internal::Strs;
using internal::Vec;

constexpr std::array<const char*, kBodyCount> kBodyNames = {"Error",
                                                            "Ack",
                                                            "HealthCheck",
                                                            "HealthStatus",
                                                            "RegisterSite",
                                                            "SiteRegistered",
                                                            "ListSites",
                                                            "SiteList",
                                                            "CreateStudy",
                                                            "StudyCreated",
                                                            "RoundStatus",
                                                            "TrainTask",
                                                            "ModelUpdate",
                                                            "ModelVersion",
                                                            "Heartbeat",
                                                            "UpdateReady",
                                                            "UploadGrant",
                                                            "EvaluateTask",
                                                            "EvaluationResult",
                                                            "GetStudy",
                                                            "StudyInfo",
                                                            "GetModel",
                                                            "EnrolInstitution",
                                                            "InstitutionEnrolled",
                                                            "ListInstitutions",
                                                            "InstitutionList",
                                                            "SetInstitutionStatus",
                                                            "VerifyAudit",
                                                            "AuditReport",
                                                            "SecAggStart",
                                                            "SecAggRoster",
                                                            "SecAggBundle",
                                                            "SecAggUnmaskRequest",
                                                            "SecAggKeys",
                                                            "SecAggShares",
                                                            "SecAggMaskedInput",
                                                            "SecAggUnmaskResponse",
                                                            "TranslateDose",
                                                            "DoseTranslation",
                                                            "SimulatePk",
                                                            "PkProfile",
                                                            "FitPk",
                                                            "PkFit",
                                                            "ComputeSampleSize",
                                                            "SampleSizeResult",
                                                            "SimulateEscalation",
                                                            "OperatingCharacteristics",
                                                            "RunVirtualTrial",
                                                            "VirtualTrialResult",
                                                            "PredictToxicity",
                                                            "ToxicityPanel",
                                                            "AssessClinical",
                                                            "ClinicalAssessment",
                                                            "ReverseTranslate",
                                                            "ReverseTranslation",
                                                            "RunWorkflow",
                                                            "GetWorkflowRun",
                                                            "WorkflowRun",
                                                            "ListWorkflows",
                                                            "WorkflowList",
                                                            "ListWorkflowRuns",
                                                            "WorkflowRunList",
                                                            "CreateReport",
                                                            "ReportInfo",
                                                            "GetReport",
                                                            "ReportDocument",
                                                            "ListReports",
                                                            "ReportList"};
static_assert(static_cast<std::size_t>(w::Body::MAX) == kBodyCount,
              "codec::Body and wire::Body must list the same bodies");
// A name left out of kBodyNames would be a null pointer, not a compile error.
constexpr bool EveryBodyNamed() {
  for (const char* name : kBodyNames) {
    if (name == nullptr) return false;
  }
  return true;
}
static_assert(EveryBodyNamed(), "kBodyNames must name every body");

// ---- Encoding ---------------------------------------------------------------

using Builder = fb::FlatBufferBuilder;

fb::Offset<fb::Vector<fb::Offset<fb::String>>> Strings(Builder& b,
                                                       const std::vector<std::string>& v) {
  return b.CreateVectorOfStrings(v);
}

fb::Offset<fb::Vector<fb::Offset<w::Metric>>> Metrics(Builder& b, const std::vector<Metric>& v) {
  std::vector<fb::Offset<w::Metric>> out;
  out.reserve(v.size());
  for (const auto& m : v) out.push_back(w::CreateMetric(b, b.CreateString(m.name), m.value));
  return b.CreateVector(out);
}

fb::Offset<w::StudySpec> Spec(Builder& b, const StudySpec& s) {
  auto model = w::CreateModelSpec(b, s.model.input_dim, b.CreateVector(s.model.hidden),
                                  s.model.num_tasks, s.model.dropout);
  return w::CreateStudySpec(
      b, b.CreateString(s.study_id), b.CreateString(s.name), Strings(b, s.tasks), model, s.rounds,
      s.min_sites, s.local_epochs, s.learning_rate, s.seed, b.CreateString(s.strategy),
      s.round_deadline_ms, s.batch_size, Strings(b, s.sites), s.fingerprint_radius,
      s.evaluate_every, b.CreateString(s.server_optimizer), s.server_learning_rate, s.proximal_mu,
      s.trim_fraction, s.krum_byzantine, s.norm_bound, s.dp_clip_norm, s.dp_noise_multiplier,
      s.dp_delta, s.dp_epsilon_budget, s.secure_aggregation, s.secagg_threshold, s.krum_selected,
      s.server_beta1, s.server_beta2, s.server_tau, s.private_heads, s.secagg_neighbours,
      b.CreateString(s.preparation_hash), b.CreateString(s.statistic),
      Strings(b, s.statistic_rows));
}

fb::Offset<w::InstitutionInfo> Institution(Builder& b, const InstitutionInfo& v) {
  return w::CreateInstitutionInfo(b, b.CreateString(v.id), b.CreateString(v.name),
                                  b.CreateString(v.role), b.CreateString(v.status),
                                  b.CreateString(v.public_key), v.enrolled_at_ms, v.updated_at_ms);
}

fb::Offset<w::SecAggKeyAdvertisement> KeyAd(Builder& b, const SecAggKeyAdvertisement& v) {
  return w::CreateSecAggKeyAdvertisement(b, v.id, b.CreateVector(v.encryption_key),
                                         b.CreateVector(v.mask_key));
}

fb::Offset<fb::Vector<fb::Offset<w::SecAggEncryptedShare>>> Sealed(
    Builder& b, const std::vector<SecAggEncryptedShare>& v) {
  std::vector<fb::Offset<w::SecAggEncryptedShare>> out;
  out.reserve(v.size());
  for (const auto& s : v) {
    out.push_back(w::CreateSecAggEncryptedShare(b, s.from, s.to, b.CreateVector(s.ciphertext)));
  }
  return b.CreateVector(out);
}

fb::Offset<fb::Vector<fb::Offset<w::SecAggRevealedShare>>> Revealed(
    Builder& b, const std::vector<SecAggRevealedShare>& v) {
  std::vector<fb::Offset<w::SecAggRevealedShare>> out;
  out.reserve(v.size());
  for (const auto& s : v) {
    out.push_back(w::CreateSecAggRevealedShare(b, s.owner, s.holder, b.CreateVector(s.y)));
  }
  return b.CreateVector(out);
}

struct BodyEncoder {
  Builder& b;

  std::pair<w::Body, fb::Offset<void>> operator()(const Error& v) const {
    return {w::Body::Error, w::CreateError(b, static_cast<w::ErrorCode>(v.code),
                                           b.CreateString(v.message), b.CreateString(v.where))
                                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const Ack& v) const {
    return {w::Body::Ack, w::CreateAck(b, b.CreateString(v.detail)).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const HealthCheck&) const {
    return {w::Body::HealthCheck, w::CreateHealthCheck(b).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const HealthStatus& v) const {
    return {w::Body::HealthStatus,
            w::CreateHealthStatus(b, b.CreateString(v.service), v.ready, b.CreateString(v.version),
                                  v.uptime_s, b.CreateString(v.detail))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const RegisterSite& v) const {
    return {w::Body::RegisterSite,
            w::CreateRegisterSite(b, b.CreateString(v.site_id), b.CreateString(v.institution),
                                  v.num_samples, Strings(b, v.tasks), b.CreateString(v.schema_hash))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SiteRegistered& v) const {
    return {w::Body::SiteRegistered,
            w::CreateSiteRegistered(b, b.CreateString(v.site_id), v.registered_at_ms,
                                    v.first_registration)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ListSites&) const {
    return {w::Body::ListSites, w::CreateListSites(b).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SiteList& v) const {
    std::vector<fb::Offset<w::SiteInfo>> sites;
    sites.reserve(v.sites.size());
    for (const auto& s : v.sites) {
      sites.push_back(w::CreateSiteInfo(
          b, b.CreateString(s.site_id), b.CreateString(s.institution), s.num_samples,
          Strings(b, s.tasks), b.CreateString(s.schema_hash), s.registered_at_ms, s.last_seen_ms));
    }
    return {w::Body::SiteList, w::CreateSiteList(b, b.CreateVector(sites)).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const CreateStudy& v) const {
    return {w::Body::CreateStudy, w::CreateCreateStudy(b, Spec(b, v.study)).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const StudyCreated& v) const {
    return {w::Body::StudyCreated, w::CreateStudyCreated(b, b.CreateString(v.study_id)).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const RoundStatus& v) const {
    return {w::Body::RoundStatus,
            w::CreateRoundStatus(b, b.CreateString(v.study_id), v.round,
                                 static_cast<w::RoundState>(v.state), v.sites_selected,
                                 v.updates_received, v.deadline_ms)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const TrainTask& v) const {
    return {w::Body::TrainTask,
            w::CreateTrainTask(b, b.CreateString(v.study_id), v.round, v.model_version,
                               v.local_epochs, v.batch_size, v.learning_rate, v.seed, v.deadline_ms)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ModelUpdate& v) const {
    return {w::Body::ModelUpdate,
            w::CreateModelUpdate(b, b.CreateString(v.study_id), v.round, b.CreateString(v.site_id),
                                 v.base_version, v.num_samples, Metrics(b, v.metrics))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ModelVersion& v) const {
    return {w::Body::ModelVersion,
            w::CreateModelVersion(b, b.CreateString(v.study_id), v.version, v.round,
                                  v.created_at_ms, Metrics(b, v.metrics))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const Heartbeat& v) const {
    return {w::Body::Heartbeat, w::CreateHeartbeat(b, Strings(b, v.approved_studies)).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const UpdateReady& v) const {
    return {w::Body::UpdateReady,
            w::CreateUpdateReady(b, b.CreateString(v.study_id), v.round, v.base_version,
                                 v.num_samples, Metrics(b, v.metrics))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const UploadGrant& v) const {
    return {w::Body::UploadGrant,
            w::CreateUploadGrant(b, b.CreateString(v.study_id), v.round).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const EvaluateTask& v) const {
    return {w::Body::EvaluateTask,
            w::CreateEvaluateTask(b, b.CreateString(v.study_id), v.round, v.model_version,
                                  b.CreateString(v.split), v.bins, v.stage)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const EvaluationResult& v) const {
    return {w::Body::EvaluationResult,
            w::CreateEvaluationResult(b, b.CreateString(v.study_id), v.round, v.model_version,
                                      b.CreateString(v.split), v.num_samples, Strings(b, v.tasks),
                                      v.stage, v.embedding_rows)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const GetStudy& v) const {
    return {w::Body::GetStudy, w::CreateGetStudy(b, b.CreateString(v.study_id)).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const StudyInfo& v) const {
    std::vector<fb::Offset<w::RoundSummary>> rounds;
    rounds.reserve(v.rounds.size());
    for (const auto& r : v.rounds) {
      rounds.push_back(w::CreateRoundSummary(
          b, r.round, static_cast<w::RoundState>(r.state), r.sites_selected, r.updates_received,
          r.samples, Metrics(b, r.metrics), r.started_at_ms, r.closed_at_ms));
    }
    return {w::Body::StudyInfo,
            w::CreateStudyInfo(b, Spec(b, v.study), static_cast<w::StudyState>(v.state),
                               v.current_round, v.model_version, b.CreateVector(rounds),
                               b.CreateString(v.detail))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const GetModel& v) const {
    return {w::Body::GetModel,
            w::CreateGetModel(b, b.CreateString(v.study_id), v.version, v.latest).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const EnrolInstitution& v) const {
    return {w::Body::EnrolInstitution,
            w::CreateEnrolInstitution(b, b.CreateString(v.id), b.CreateString(v.name),
                                      b.CreateString(v.role))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const InstitutionEnrolled& v) const {
    auto info = Institution(b, v.institution);
    return {w::Body::InstitutionEnrolled,
            w::CreateInstitutionEnrolled(b, info, b.CreateString(v.secret_key)).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ListInstitutions&) const {
    return {w::Body::ListInstitutions, w::CreateListInstitutions(b).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const InstitutionList& v) const {
    std::vector<fb::Offset<w::InstitutionInfo>> list;
    list.reserve(v.institutions.size());
    for (const auto& i : v.institutions) list.push_back(Institution(b, i));
    return {w::Body::InstitutionList, w::CreateInstitutionList(b, b.CreateVector(list)).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SetInstitutionStatus& v) const {
    return {
        w::Body::SetInstitutionStatus,
        w::CreateSetInstitutionStatus(b, b.CreateString(v.id), b.CreateString(v.status)).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const VerifyAudit&) const {
    return {w::Body::VerifyAudit, w::CreateVerifyAudit(b).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const AuditReport& v) const {
    return {w::Body::AuditReport,
            w::CreateAuditReport(b, v.intact, v.records, b.CreateString(v.last_id),
                                 b.CreateString(v.last_hash), b.CreateString(v.problem))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SecAggStart& v) const {
    const auto& p = v.params;
    auto params = w::CreateSecAggParams(b, p.round_tag, p.dimension, p.threshold, p.max_sites,
                                        p.clip, p.scale_bits, p.neighbours);
    return {w::Body::SecAggStart,
            w::CreateSecAggStart(b, b.CreateString(v.study_id), v.round, v.base_version,
                                 v.participant, params, v.weight_cap)
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SecAggRoster& v) const {
    std::vector<fb::Offset<w::SecAggKeyAdvertisement>> sites;
    sites.reserve(v.sites.size());
    for (const auto& k : v.sites) sites.push_back(KeyAd(b, k));
    return {w::Body::SecAggRoster,
            w::CreateSecAggRoster(b, b.CreateString(v.study_id), v.round, b.CreateVector(sites),
                                  b.CreateVector(v.graph_seed))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SecAggBundle& v) const {
    return {w::Body::SecAggBundle,
            w::CreateSecAggBundle(b, b.CreateString(v.study_id), v.round, v.to, Sealed(b, v.shares))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SecAggUnmaskRequest& v) const {
    return {w::Body::SecAggUnmaskRequest,
            w::CreateSecAggUnmaskRequest(b, b.CreateString(v.study_id), v.round,
                                         b.CreateVector(v.survivors))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SecAggKeys& v) const {
    auto keys = KeyAd(b, v.keys);
    return {w::Body::SecAggKeys,
            w::CreateSecAggKeys(b, b.CreateString(v.study_id), v.round, keys).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SecAggShares& v) const {
    return {w::Body::SecAggShares,
            w::CreateSecAggShares(b, b.CreateString(v.study_id), v.round, v.id,
                                  b.CreateVector(v.self_seed_commitment), Sealed(b, v.shares))
                .Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SecAggMaskedInput& v) const {
    return {w::Body::SecAggMaskedInput,
            w::CreateSecAggMaskedInput(b, b.CreateString(v.study_id), v.round, v.id).Union()};
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SecAggUnmaskResponse& v) const {
    return {w::Body::SecAggUnmaskResponse,
            w::CreateSecAggUnmaskResponse(
                b, b.CreateString(v.study_id), v.round, v.id, Revealed(b, v.self_seed_shares),
                Revealed(b, v.mask_key_shares), b.CreateVector(v.failed_shares))
                .Union()};
  }
  // The domain bodies (translational.fbs, trial.fbs): domain_codec.cc writes them.
  std::pair<w::Body, fb::Offset<void>> operator()(const TranslateDose& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const DoseTranslation& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SimulatePk& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const PkProfile& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const FitPk& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const PkFit& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ComputeSampleSize& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SampleSizeResult& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const SimulateEscalation& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const OperatingCharacteristics& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const RunVirtualTrial& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const VirtualTrialResult& v) const {
    return internal::EncodeDomain(b, v);
  }
  // The ML domain bodies (prediction.fbs): prediction_codec.cc writes them.
  std::pair<w::Body, fb::Offset<void>> operator()(const PredictToxicity& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ToxicityPanel& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const AssessClinical& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ClinicalAssessment& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReverseTranslate& v) const {
    return internal::EncodeDomain(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReverseTranslation& v) const {
    return internal::EncodeDomain(b, v);
  }
  // The orchestrator and report bodies: workflow_codec.cc writes them.
  std::pair<w::Body, fb::Offset<void>> operator()(const RunWorkflow& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const GetWorkflowRun& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const WorkflowRun& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ListWorkflows& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const WorkflowList& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ListWorkflowRuns& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const WorkflowRunList& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const CreateReport& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReportInfo& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const GetReport& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReportDocument& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ListReports& v) const {
    return internal::EncodeWorkflow(b, v);
  }
  std::pair<w::Body, fb::Offset<void>> operator()(const ReportList& v) const {
    return internal::EncodeWorkflow(b, v);
  }
};

// ---- Decoding ---------------------------------------------------------------

InstitutionInfo InstitutionOf(const w::InstitutionInfo* v) {
  if (v == nullptr) return {};
  return InstitutionInfo{Str(v->id()),      Str(v->name()),       Str(v->role()),
                         Str(v->status()),  Str(v->public_key()), v->enrolled_at_ms(),
                         v->updated_at_ms()};
}

std::vector<Metric> MetricsOf(const fb::Vector<fb::Offset<w::Metric>>* v) {
  std::vector<Metric> out;
  if (v == nullptr) return out;
  out.reserve(v->size());
  for (const auto* m : *v) out.push_back({Str(m->name()), m->value()});
  return out;
}

SecAggKeyAdvertisement KeyAdOf(const w::SecAggKeyAdvertisement* v) {
  if (v == nullptr) return {};
  return SecAggKeyAdvertisement{v->id(), Vec(v->encryption_key()), Vec(v->mask_key())};
}

std::vector<SecAggEncryptedShare> SealedOf(
    const fb::Vector<fb::Offset<w::SecAggEncryptedShare>>* v) {
  std::vector<SecAggEncryptedShare> out;
  if (v == nullptr) return out;
  out.reserve(v->size());
  for (const auto* s : *v) out.push_back({s->from(), s->to(), Vec(s->ciphertext())});
  return out;
}

std::vector<SecAggRevealedShare> RevealedOf(
    const fb::Vector<fb::Offset<w::SecAggRevealedShare>>* v) {
  std::vector<SecAggRevealedShare> out;
  if (v == nullptr) return out;
  out.reserve(v->size());
  for (const auto* s : *v) out.push_back({s->owner(), s->holder(), Vec(s->y())});
  return out;
}

StudySpec SpecOf(const w::StudySpec* s) {
  StudySpec out;
  if (s == nullptr) return out;
  out.study_id = Str(s->study_id());
  out.name = Str(s->name());
  out.tasks = Strs(s->tasks());
  if (const auto* m = s->model()) {
    out.model.input_dim = m->input_dim();
    if (m->hidden() != nullptr) out.model.hidden.assign(m->hidden()->begin(), m->hidden()->end());
    out.model.num_tasks = m->num_tasks();
    out.model.dropout = m->dropout();
  }
  out.rounds = s->rounds();
  out.min_sites = s->min_sites();
  out.local_epochs = s->local_epochs();
  out.learning_rate = s->learning_rate();
  out.seed = s->seed();
  out.strategy = Str(s->strategy());
  out.round_deadline_ms = s->round_deadline_ms();
  out.batch_size = s->batch_size();
  out.sites = Strs(s->sites());
  out.fingerprint_radius = s->fingerprint_radius();
  out.evaluate_every = s->evaluate_every();
  out.server_optimizer = Str(s->server_optimizer());
  out.server_learning_rate = s->server_learning_rate();
  out.proximal_mu = s->proximal_mu();
  out.trim_fraction = s->trim_fraction();
  out.krum_byzantine = s->krum_byzantine();
  out.norm_bound = s->norm_bound();
  out.dp_clip_norm = s->dp_clip_norm();
  out.dp_noise_multiplier = s->dp_noise_multiplier();
  out.dp_delta = s->dp_delta();
  out.dp_epsilon_budget = s->dp_epsilon_budget();
  out.secure_aggregation = s->secure_aggregation();
  out.secagg_threshold = s->secagg_threshold();
  out.krum_selected = s->krum_selected();
  out.server_beta1 = s->server_beta1();
  out.server_beta2 = s->server_beta2();
  out.server_tau = s->server_tau();
  out.private_heads = s->private_heads();
  out.secagg_neighbours = s->secagg_neighbours();
  out.preparation_hash = Str(s->preparation_hash());
  out.statistic = Str(s->statistic());
  out.statistic_rows = Strs(s->statistic_rows());
  return out;
}

bool RoundStateOf(std::int8_t raw, RoundState& out) {
  if (raw < 0 || raw > static_cast<std::int8_t>(RoundState::kEvaluating)) return false;
  out = static_cast<RoundState>(raw);
  return true;
}

// Converts a verified body. Returns false (with `error` set) for a bad field.
bool BodyOf(const w::Envelope& env, Body& out, DecodeError& error) {
  const auto bad = [&](DecodeFault fault, std::string message, std::string where) {
    error.fault = fault;
    error.message = std::move(message);
    error.where = std::move(where);
    return false;
  };
  // The Verifier accepts a union whose type is set and whose value is absent
  // (an absent table verifies); every body_as_X() below would then be null.
  if (const auto type = static_cast<std::size_t>(env.body_type());
      type >= 1 && type <= kBodyCount && env.body() == nullptr) {
    return bad(
        DecodeFault::kMissingField,
        std::string("the envelope names a ") + kBodyNames[type - 1] + " body but carries none",
        "envelope.body");
  }
  switch (env.body_type()) {
    case w::Body::Error: {
      const auto* v = env.body_as_Error();
      const auto code = static_cast<std::uint16_t>(v->code());
      if (code > static_cast<std::uint16_t>(ErrorCode::kUnimplemented)) {
        return bad(DecodeFault::kBadField, "error code " + std::to_string(code) + " is not known",
                   "Error.code");
      }
      out = Error{static_cast<ErrorCode>(code), Str(v->message()), Str(v->where())};
      return true;
    }
    case w::Body::Ack:
      out = Ack{Str(env.body_as_Ack()->detail())};
      return true;
    case w::Body::HealthCheck:
      out = HealthCheck{};
      return true;
    case w::Body::HealthStatus: {
      const auto* v = env.body_as_HealthStatus();
      out = HealthStatus{Str(v->service()), v->ready(), Str(v->version()), v->uptime_s(),
                         Str(v->detail())};
      return true;
    }
    case w::Body::RegisterSite: {
      const auto* v = env.body_as_RegisterSite();
      out = RegisterSite{Str(v->site_id()), Str(v->institution()), v->num_samples(),
                         Strs(v->tasks()), Str(v->schema_hash())};
      return true;
    }
    case w::Body::SiteRegistered: {
      const auto* v = env.body_as_SiteRegistered();
      out = SiteRegistered{Str(v->site_id()), v->registered_at_ms(), v->first_registration()};
      return true;
    }
    case w::Body::ListSites:
      out = ListSites{};
      return true;
    case w::Body::SiteList: {
      SiteList list;
      if (const auto* sites = env.body_as_SiteList()->sites()) {
        list.sites.reserve(sites->size());
        for (const auto* s : *sites) {
          list.sites.push_back(SiteInfo{Str(s->site_id()), Str(s->institution()), s->num_samples(),
                                        Strs(s->tasks()), Str(s->schema_hash()),
                                        s->registered_at_ms(), s->last_seen_ms()});
        }
      }
      out = std::move(list);
      return true;
    }
    case w::Body::CreateStudy: {
      const auto* v = env.body_as_CreateStudy();
      if (v->study() == nullptr) {
        return bad(DecodeFault::kMissingField, "CreateStudy carries no study", "CreateStudy.study");
      }
      out = CreateStudy{SpecOf(v->study())};
      return true;
    }
    case w::Body::StudyCreated:
      out = StudyCreated{Str(env.body_as_StudyCreated()->study_id())};
      return true;
    case w::Body::RoundStatus: {
      const auto* v = env.body_as_RoundStatus();
      const auto state = static_cast<std::int8_t>(v->state());
      if (state < 0 || state > static_cast<std::int8_t>(RoundState::kEvaluating)) {
        return bad(DecodeFault::kBadField, "round state " + std::to_string(state) + " is not known",
                   "RoundStatus.state");
      }
      out = RoundStatus{Str(v->study_id()),
                        v->round(),
                        static_cast<RoundState>(state),
                        v->sites_selected(),
                        v->updates_received(),
                        v->deadline_ms()};
      return true;
    }
    case w::Body::TrainTask: {
      const auto* v = env.body_as_TrainTask();
      out = TrainTask{Str(v->study_id()), v->round(),         v->model_version(), v->local_epochs(),
                      v->batch_size(),    v->learning_rate(), v->seed(),          v->deadline_ms()};
      return true;
    }
    case w::Body::ModelUpdate: {
      const auto* v = env.body_as_ModelUpdate();
      out = ModelUpdate{Str(v->study_id()), v->round(),       Str(v->site_id()),
                        v->base_version(),  v->num_samples(), MetricsOf(v->metrics())};
      return true;
    }
    case w::Body::ModelVersion: {
      const auto* v = env.body_as_ModelVersion();
      out = ModelVersion{Str(v->study_id()), v->version(), v->round(), v->created_at_ms(),
                         MetricsOf(v->metrics())};
      return true;
    }
    case w::Body::Heartbeat:
      out = Heartbeat{Strs(env.body_as_Heartbeat()->approved_studies())};
      return true;
    case w::Body::UpdateReady: {
      const auto* v = env.body_as_UpdateReady();
      out = UpdateReady{Str(v->study_id()), v->round(), v->base_version(), v->num_samples(),
                        MetricsOf(v->metrics())};
      return true;
    }
    case w::Body::UploadGrant: {
      const auto* v = env.body_as_UploadGrant();
      out = UploadGrant{Str(v->study_id()), v->round()};
      return true;
    }
    case w::Body::EvaluateTask: {
      const auto* v = env.body_as_EvaluateTask();
      out = EvaluateTask{Str(v->study_id()), v->round(), v->model_version(),
                         Str(v->split()),    v->bins(),  v->stage()};
      return true;
    }
    case w::Body::EvaluationResult: {
      const auto* v = env.body_as_EvaluationResult();
      out = EvaluationResult{Str(v->study_id()), v->round(),         v->model_version(),
                             Str(v->split()),    v->num_samples(),   Strs(v->tasks()),
                             v->stage(),         v->embedding_rows()};
      return true;
    }
    case w::Body::GetStudy:
      out = GetStudy{Str(env.body_as_GetStudy()->study_id())};
      return true;
    case w::Body::StudyInfo: {
      const auto* v = env.body_as_StudyInfo();
      StudyInfo info;
      info.study = SpecOf(v->study());
      const auto state = static_cast<std::int8_t>(v->state());
      if (state < 0 || state > static_cast<std::int8_t>(StudyState::kFailed)) {
        return bad(DecodeFault::kBadField, "study state " + std::to_string(state) + " is not known",
                   "StudyInfo.state");
      }
      info.state = static_cast<StudyState>(state);
      info.current_round = v->current_round();
      info.model_version = v->model_version();
      if (const auto* rounds = v->rounds()) {
        for (const auto* r : *rounds) {
          RoundSummary rs;
          if (!RoundStateOf(static_cast<std::int8_t>(r->state()), rs.state)) {
            return bad(DecodeFault::kBadField, "round state is not known",
                       "StudyInfo.rounds.state");
          }
          rs.round = r->round();
          rs.sites_selected = r->sites_selected();
          rs.updates_received = r->updates_received();
          rs.samples = r->samples();
          rs.metrics = MetricsOf(r->metrics());
          rs.started_at_ms = r->started_at_ms();
          rs.closed_at_ms = r->closed_at_ms();
          info.rounds.push_back(std::move(rs));
        }
      }
      info.detail = Str(v->detail());
      out = std::move(info);
      return true;
    }
    case w::Body::GetModel: {
      const auto* v = env.body_as_GetModel();
      out = GetModel{Str(v->study_id()), v->version(), v->latest()};
      return true;
    }
    case w::Body::EnrolInstitution: {
      const auto* v = env.body_as_EnrolInstitution();
      out = EnrolInstitution{Str(v->id()), Str(v->name()), Str(v->role())};
      return true;
    }
    case w::Body::InstitutionEnrolled: {
      const auto* v = env.body_as_InstitutionEnrolled();
      out = InstitutionEnrolled{InstitutionOf(v->institution()), Str(v->secret_key())};
      return true;
    }
    case w::Body::ListInstitutions:
      out = ListInstitutions{};
      return true;
    case w::Body::InstitutionList: {
      InstitutionList list;
      if (const auto* items = env.body_as_InstitutionList()->institutions()) {
        list.institutions.reserve(items->size());
        for (const auto* i : *items) list.institutions.push_back(InstitutionOf(i));
      }
      out = std::move(list);
      return true;
    }
    case w::Body::SetInstitutionStatus: {
      const auto* v = env.body_as_SetInstitutionStatus();
      out = SetInstitutionStatus{Str(v->id()), Str(v->status())};
      return true;
    }
    case w::Body::VerifyAudit:
      out = VerifyAudit{};
      return true;
    case w::Body::AuditReport: {
      const auto* v = env.body_as_AuditReport();
      out = AuditReport{v->intact(), v->records(), Str(v->last_id()), Str(v->last_hash()),
                        Str(v->problem())};
      return true;
    }
    case w::Body::SecAggStart: {
      const auto* v = env.body_as_SecAggStart();
      SecAggStart m{Str(v->study_id()), v->round(), v->base_version(),
                    v->participant(),   {},         v->weight_cap()};
      if (const auto* p = v->params()) {
        m.params = SecAggParams{p->round_tag(), p->dimension(),  p->threshold(), p->max_sites(),
                                p->clip(),      p->scale_bits(), p->neighbours()};
      } else {
        return bad(DecodeFault::kMissingField, "secure-aggregation parameters are missing",
                   "SecAggStart.params");
      }
      out = std::move(m);
      return true;
    }
    case w::Body::SecAggRoster: {
      const auto* v = env.body_as_SecAggRoster();
      SecAggRoster m{Str(v->study_id()), v->round(), {}, Vec(v->graph_seed())};
      if (const auto* sites = v->sites()) {
        m.sites.reserve(sites->size());
        for (const auto* k : *sites) m.sites.push_back(KeyAdOf(k));
      }
      out = std::move(m);
      return true;
    }
    case w::Body::SecAggBundle: {
      const auto* v = env.body_as_SecAggBundle();
      out = SecAggBundle{Str(v->study_id()), v->round(), v->to(), SealedOf(v->shares())};
      return true;
    }
    case w::Body::SecAggUnmaskRequest: {
      const auto* v = env.body_as_SecAggUnmaskRequest();
      out = SecAggUnmaskRequest{Str(v->study_id()), v->round(), Vec(v->survivors())};
      return true;
    }
    case w::Body::SecAggKeys: {
      const auto* v = env.body_as_SecAggKeys();
      if (v->keys() == nullptr) {
        return bad(DecodeFault::kMissingField, "the key advertisement is missing",
                   "SecAggKeys.keys");
      }
      out = SecAggKeys{Str(v->study_id()), v->round(), KeyAdOf(v->keys())};
      return true;
    }
    case w::Body::SecAggShares: {
      const auto* v = env.body_as_SecAggShares();
      out = SecAggShares{Str(v->study_id()), v->round(), v->id(), Vec(v->self_seed_commitment()),
                         SealedOf(v->shares())};
      return true;
    }
    case w::Body::SecAggMaskedInput: {
      const auto* v = env.body_as_SecAggMaskedInput();
      out = SecAggMaskedInput{Str(v->study_id()), v->round(), v->id()};
      return true;
    }
    case w::Body::SecAggUnmaskResponse: {
      const auto* v = env.body_as_SecAggUnmaskResponse();
      out = SecAggUnmaskResponse{Str(v->study_id()),
                                 v->round(),
                                 v->id(),
                                 RevealedOf(v->self_seed_shares()),
                                 RevealedOf(v->mask_key_shares()),
                                 Vec(v->failed_shares())};
      return true;
    }
    // The domain bodies: domain_codec.cc reads them.
    case w::Body::TranslateDose:
    case w::Body::DoseTranslation:
    case w::Body::SimulatePk:
    case w::Body::PkProfile:
    case w::Body::FitPk:
    case w::Body::PkFit:
    case w::Body::ComputeSampleSize:
    case w::Body::SampleSizeResult:
    case w::Body::SimulateEscalation:
    case w::Body::OperatingCharacteristics:
    case w::Body::RunVirtualTrial:
    case w::Body::VirtualTrialResult:
      return internal::DomainBodyOf(env, out, error);
    // The ML domain bodies: prediction_codec.cc reads them.
    case w::Body::PredictToxicity:
    case w::Body::ToxicityPanel:
    case w::Body::AssessClinical:
    case w::Body::ClinicalAssessment:
    case w::Body::ReverseTranslate:
    case w::Body::ReverseTranslation:
      return internal::PredictionBodyOf(env, out, error);
    // The orchestrator and report bodies: workflow_codec.cc reads them.
    case w::Body::RunWorkflow:
    case w::Body::GetWorkflowRun:
    case w::Body::WorkflowRun:
    case w::Body::ListWorkflows:
    case w::Body::WorkflowList:
    case w::Body::ListWorkflowRuns:
    case w::Body::WorkflowRunList:
    case w::Body::CreateReport:
    case w::Body::ReportInfo:
    case w::Body::GetReport:
    case w::Body::ReportDocument:
    case w::Body::ListReports:
    case w::Body::ReportList:
      return internal::WorkflowBodyOf(env, out, error);
    case w::Body::NONE:
      return bad(DecodeFault::kUnknownBody, "the envelope carries no body", "envelope.body");
  }
  return bad(DecodeFault::kUnknownBody,
             "body type " + std::to_string(static_cast<int>(env.body_type())) +
                 " is not known to this build (schema version " + std::to_string(kSchemaVersion) +
                 ")",
             "envelope.body");
}

// Checks each tensor spec against its frame; fills `out`, moving the frames.
bool TensorsOf(const w::Envelope& env, std::vector<Blob>& frames, std::vector<Tensor>& out,
               DecodeError& error) {
  const auto* specs = env.tensors();
  const std::size_t n_specs = specs == nullptr ? 0 : specs->size();
  const std::size_t n_frames = frames.size() - 1;
  if (n_specs != n_frames) {
    error = {DecodeFault::kTensorMismatch,
             "the envelope describes " + std::to_string(n_specs) + " tensor(s) but " +
                 std::to_string(n_frames) + " tensor frame(s) arrived",
             "envelope.tensors",
             {}};
    return false;
  }
  out.reserve(n_specs);
  for (std::size_t i = 0; i < n_specs; ++i) {
    const auto* spec = specs->Get(static_cast<fb::uoffset_t>(i));
    Blob& frame = frames[i + 1];
    const std::string name = Str(spec->name());
    const std::string where = "tensor " + std::to_string(i) + " (" + name + ")";
    const auto dtype_raw = static_cast<std::uint8_t>(spec->dtype());
    if (dtype_raw > static_cast<std::uint8_t>(DType::kUInt8)) {
      error = {DecodeFault::kBadField,
               "dtype " + std::to_string(dtype_raw) + " is not known",
               where,
               {}};
      return false;
    }
    const auto dtype = static_cast<DType>(dtype_raw);
    // Product of the shape times the element size, refusing negative dims and overflow.
    unsigned __int128 expected = DTypeSize(dtype);
    std::vector<std::int64_t> shape;
    for (const std::int64_t dim : Vec(spec->shape())) {
      if (dim < 0) {
        error = {DecodeFault::kBadField, "shape has a negative dimension", where, {}};
        return false;
      }
      expected *= static_cast<std::uint64_t>(dim);
      if (expected > std::numeric_limits<std::uint64_t>::max()) {
        error = {DecodeFault::kBadField, "shape overflows 64 bits", where, {}};
        return false;
      }
      shape.push_back(dim);
    }
    if (spec->byte_length() != frame.size() || expected != frame.size()) {
      error = {DecodeFault::kTensorMismatch,
               "spec says " + std::to_string(spec->byte_length()) + " bytes (shape implies " +
                   std::to_string(static_cast<std::uint64_t>(expected)) + ") but the frame has " +
                   std::to_string(frame.size()),
               where,
               {}};
      return false;
    }
    // Typed views (Blob::As) need aligned data, but a transport may hand over
    // a small frame at an odd address (zmq keeps small messages inside its
    // receive buffer); such a frame is copied. Large frames arrive aligned.
    if (reinterpret_cast<std::uintptr_t>(frame.data()) % alignof(std::uint64_t) != 0) {
      frame = Blob::CopyOf(frame.bytes());
    }
    out.push_back(Tensor{name, dtype, std::move(shape), std::move(frame)});
  }
  return true;
}

}  // namespace

const char* BodyNameAt(std::size_t index) {
  return index < kBodyNames.size() ? kBodyNames[index] : "unknown";
}

const char* BodyName(const Body& body) { return BodyNameAt(body.index()); }

std::size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kInt32:
      return 4;
    case DType::kInt64:
      return 8;
    case DType::kUInt32:
      return 4;
    case DType::kUInt64:
      return 8;
    case DType::kUInt8:
      return 1;
  }
  return 1;
}

const char* DecodeFaultName(DecodeFault fault) {
  switch (fault) {
    case DecodeFault::kNoFrames:
      return "no_frames";
    case DecodeFault::kOversized:
      return "oversized";
    case DecodeFault::kNotAnEnvelope:
      return "not_an_envelope";
    case DecodeFault::kVerifyFailed:
      return "verify_failed";
    case DecodeFault::kNewerSchema:
      return "newer_schema";
    case DecodeFault::kUnknownBody:
      return "unknown_body";
    case DecodeFault::kMissingField:
      return "missing_field";
    case DecodeFault::kBadField:
      return "bad_field";
    case DecodeFault::kTensorMismatch:
      return "tensor_mismatch";
  }
  return "unknown";
}

std::vector<Blob> Encode(Message&& message) {
  Builder b(256 + 64 * message.tensors.size());
  auto [type, body] = std::visit(BodyEncoder{b}, message.body);

  std::vector<fb::Offset<w::TensorSpec>> specs;
  specs.reserve(message.tensors.size());
  for (const auto& t : message.tensors) {
    specs.push_back(w::CreateTensorSpec(b, b.CreateString(t.name), static_cast<w::DType>(t.dtype),
                                        b.CreateVector(t.shape), t.data.size()));
  }
  const auto& h = message.header;
  auto env = w::CreateEnvelope(b, h.schema_version, b.CreateString(h.message_id),
                               b.CreateString(h.correlation_id), b.CreateString(h.sender),
                               h.sent_at_ms, type, body, specs.empty() ? 0 : b.CreateVector(specs),
                               h.origin.empty() ? 0 : b.CreateString(h.origin),
                               h.route_to.empty() ? 0 : b.CreateString(h.route_to));
  w::FinishEnvelopeBuffer(b, env);

  std::vector<Blob> frames;
  frames.reserve(1 + message.tensors.size());
  auto* detached = new fb::DetachedBuffer(b.Release());
  frames.emplace_back(detached, reinterpret_cast<const std::byte*>(detached->data()),
                      detached->size(),
                      [](void* p) { delete static_cast<fb::DetachedBuffer*>(p); });
  for (auto& t : message.tensors) frames.push_back(std::move(t.data));
  message.tensors.clear();
  return frames;
}

Decoded Decode(std::vector<Blob>&& frames, const Limits& limits) {
  const auto fail = [](DecodeFault fault, std::string message, std::string where,
                       std::string message_id = {}) {
    return Decoded(DecodeError{fault, std::move(message), std::move(where), std::move(message_id)});
  };
  if (frames.empty()) return fail(DecodeFault::kNoFrames, "no frames arrived", "message");
  if (frames.size() - 1 > limits.max_tensors) {
    return fail(DecodeFault::kOversized,
                std::to_string(frames.size() - 1) + " tensor frames exceed the limit of " +
                    std::to_string(limits.max_tensors),
                "message");
  }
  const Blob& head = frames[0];
  if (head.size() > limits.max_envelope_bytes) {
    return fail(DecodeFault::kOversized,
                "envelope of " + std::to_string(head.size()) + " bytes exceeds the limit of " +
                    std::to_string(limits.max_envelope_bytes),
                "frame 0");
  }
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].size() > limits.max_tensor_bytes) {
      return fail(DecodeFault::kOversized,
                  "tensor frame of " + std::to_string(frames[i].size()) +
                      " bytes exceeds the limit of " + std::to_string(limits.max_tensor_bytes),
                  "frame " + std::to_string(i));
    }
  }
  if (head.size() < 8 ||
      !w::EnvelopeBufferHasIdentifier(reinterpret_cast<const void*>(head.data()))) {
    return fail(DecodeFault::kNotAnEnvelope,
                "frame 0 (" + std::to_string(head.size()) +
                    " bytes) is not a fedrx envelope (identifier FRX1 missing)",
                "frame 0");
  }

  // The Verifier checks alignment; a transport may hand over a small frame at
  // an odd address, so such a frame is copied (envelopes are small).
  std::vector<std::uint64_t> aligned;
  const std::uint8_t* buf = reinterpret_cast<const std::uint8_t*>(head.data());
  if (reinterpret_cast<std::uintptr_t>(buf) % alignof(std::uint64_t) != 0) {
    aligned.resize((head.size() + 7) / 8);
    std::memcpy(aligned.data(), head.data(), head.size());
    buf = reinterpret_cast<const std::uint8_t*>(aligned.data());
  }
  fb::Verifier verifier(buf, head.size(), /*max_depth=*/32, /*max_tables=*/100000);
  if (!w::VerifyEnvelopeBuffer(verifier)) {
    return fail(DecodeFault::kVerifyFailed,
                "the envelope failed FlatBuffers verification (truncated or corrupt)", "frame 0");
  }
  const w::Envelope& env = *w::GetEnvelope(buf);

  Message msg;
  msg.header.message_id = Str(env.message_id());
  const std::string id_for_errors =
      msg.header.message_id.size() <= limits.max_id_bytes ? msg.header.message_id : std::string();
  if (env.schema_version() == 0) {
    return fail(DecodeFault::kMissingField, "schema_version is missing", "envelope.schema_version",
                id_for_errors);
  }
  if (env.schema_version() > kSchemaVersion) {
    return fail(DecodeFault::kNewerSchema,
                "schema version " + std::to_string(env.schema_version()) +
                    " is newer than this build's " + std::to_string(kSchemaVersion),
                "envelope.schema_version", id_for_errors);
  }
  if (msg.header.message_id.empty()) {
    return fail(DecodeFault::kMissingField, "message_id is empty", "envelope.message_id");
  }
  const auto too_long = [&](const fb::String* s, std::size_t max,
                            const char* where) -> std::optional<Decoded> {
    if (s != nullptr && s->size() > max) {
      return fail(DecodeFault::kBadField,
                  std::to_string(s->size()) + " bytes exceed the limit of " + std::to_string(max),
                  where, id_for_errors);
    }
    return std::nullopt;
  };
  if (auto e = too_long(env.message_id(), limits.max_id_bytes, "envelope.message_id")) {
    return std::move(*e);
  }
  if (auto e = too_long(env.correlation_id(), limits.max_id_bytes, "envelope.correlation_id")) {
    return std::move(*e);
  }
  if (auto e = too_long(env.sender(), 256, "envelope.sender")) return std::move(*e);
  if (auto e = too_long(env.origin(), limits.max_id_bytes, "envelope.origin")) return std::move(*e);
  if (auto e = too_long(env.route_to(), limits.max_id_bytes, "envelope.route_to")) {
    return std::move(*e);
  }

  msg.header.schema_version = env.schema_version();
  msg.header.correlation_id = Str(env.correlation_id());
  msg.header.sender = Str(env.sender());
  msg.header.sent_at_ms = env.sent_at_ms();
  msg.header.origin = Str(env.origin());
  msg.header.route_to = Str(env.route_to());

  DecodeError error{};
  if (!BodyOf(env, msg.body, error)) {
    error.message_id = id_for_errors;
    return Decoded(std::move(error));
  }
  if (!TensorsOf(env, frames, msg.tensors, error)) {
    error.message_id = id_for_errors;
    return Decoded(std::move(error));
  }
  return Decoded(std::move(msg));
}

}  // namespace fedrx::codec

namespace fedrx::codec::testing {

Blob EnvelopeWithBodyType(const std::string& message_id, std::uint8_t body_type) {
  fb::FlatBufferBuilder b(256);
  const auto body = w::CreateAck(b, b.CreateString("")).Union();
  const auto id = b.CreateString(message_id);
  w::EnvelopeBuilder env(b);
  env.add_schema_version(kSchemaVersion);
  env.add_message_id(id);
  env.add_body_type(static_cast<w::Body>(body_type));
  env.add_body(body);
  w::FinishEnvelopeBuffer(b, env.Finish());
  auto* detached = new fb::DetachedBuffer(b.Release());
  return Blob(detached, reinterpret_cast<const std::byte*>(detached->data()), detached->size(),
              [](void* p) { delete static_cast<fb::DetachedBuffer*>(p); });
}

Blob EnvelopeWithBodyTypeOnly(const std::string& message_id, std::uint8_t body_type) {
  fb::FlatBufferBuilder b(256);
  const auto id = b.CreateString(message_id);
  w::EnvelopeBuilder env(b);
  env.add_schema_version(kSchemaVersion);
  env.add_message_id(id);
  env.add_body_type(static_cast<w::Body>(body_type));
  w::FinishEnvelopeBuffer(b, env.Finish());
  auto* detached = new fb::DetachedBuffer(b.Release());
  return Blob(detached, reinterpret_cast<const std::byte*>(detached->data()), detached->size(),
              [](void* p) { delete static_cast<fb::DetachedBuffer*>(p); });
}

}  // namespace fedrx::codec::testing
