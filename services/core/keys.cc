#include "services/core/keys.h"

#include "services/core/curve_keys.h"

namespace fedrx::core {

struct KeyFactory {
  static Key Make(std::string s) { return Key(std::move(s)); }
};

namespace {
constexpr std::string_view kPrefix = "fedrx:";

bool IdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

Key Join(std::string_view kind, std::string_view id) {
  std::string s;
  s.reserve(kPrefix.size() + kind.size() + 1 + id.size());
  s.append(kPrefix).append(kind).append(":").append(id);
  return KeyFactory::Make(std::move(s));
}
}  // namespace

Status ValidateId(std::string_view id, std::string_view what) {
  if (id.empty()) return InvalidArgument("id is empty", std::string(what));
  if (id.size() > 64) {
    return InvalidArgument("id is " + std::to_string(id.size()) + " bytes, at most 64 allowed",
                           std::string(what));
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (!IdChar(id[i])) {
      return InvalidArgument(
          "id has a character outside [A-Za-z0-9._-] at offset " + std::to_string(i),
          std::string(what));
    }
  }
  return Status::Ok();
}

namespace keys {
namespace {
Result<Key> StudyPart(std::string_view study_id, std::string_view part, std::uint32_t n) {
  FEDRX_RETURN_IF_ERROR(ValidateId(study_id, "study_id"));
  return KeyFactory::Make(std::string(kPrefix) + "study:" + std::string(study_id) + ":" +
                          std::string(part) + ":" + std::to_string(n));
}
}  // namespace

Result<Key> Site(std::string_view site_id) {
  FEDRX_RETURN_IF_ERROR(ValidateId(site_id, "site_id"));
  return Join("site", site_id);
}

Key SiteIndex() { return KeyFactory::Make(std::string(kPrefix) + "sites"); }

Result<Key> Study(std::string_view study_id) {
  FEDRX_RETURN_IF_ERROR(ValidateId(study_id, "study_id"));
  return Join("study", study_id);
}

Result<Key> CoordinatorLease(std::string_view study_id) {
  FEDRX_RETURN_IF_ERROR(ValidateId(study_id, "study_id"));
  return KeyFactory::Make(std::string(kPrefix) + "coordinator:lease:" + std::string(study_id));
}

Result<Key> CoordinatorReplica(std::string_view replica_id) {
  FEDRX_RETURN_IF_ERROR(ValidateId(replica_id, "replica_id"));
  return KeyFactory::Make(std::string(kPrefix) + "coordinator:replica:" + std::string(replica_id));
}

Key StudyIndex() { return KeyFactory::Make(std::string(kPrefix) + "studies"); }

Result<Key> StudySites(std::string_view study_id) {
  FEDRX_RETURN_IF_ERROR(ValidateId(study_id, "study_id"));
  return Join("study-sites", study_id);
}

Result<Key> Round(std::string_view study_id, std::uint32_t round) {
  return StudyPart(study_id, "round", round);
}

Result<Key> RoundMetrics(std::string_view study_id, std::uint32_t round) {
  return StudyPart(study_id, "round-metrics", round);
}

Result<Key> ModelWeights(std::string_view study_id, std::uint32_t version) {
  return StudyPart(study_id, "model", version);
}

Result<Key> ModelMeta(std::string_view study_id, std::uint32_t version) {
  return StudyPart(study_id, "model-meta", version);
}

Result<Key> ModelCalibration(std::string_view study_id, std::uint32_t version) {
  return StudyPart(study_id, "model-calibration", version);
}

Result<Key> ServiceHeartbeat(std::string_view service) {
  FEDRX_RETURN_IF_ERROR(ValidateId(service, "service"));
  return Join("heartbeat", service);
}

Result<Key> Institution(std::string_view institution_id) {
  FEDRX_RETURN_IF_ERROR(ValidateId(institution_id, "institution_id"));
  return Join("institution", institution_id);
}

Key InstitutionIndex() { return KeyFactory::Make(std::string(kPrefix) + "institutions"); }

// Z85 includes ':', but the key is a fixed 40 characters at the end of its own
// prefix, so it cannot reach into another key's namespace.
Result<Key> InstitutionByKey(std::string_view public_key) {
  FEDRX_RETURN_IF_ERROR(CheckCurveKey(public_key, "public_key"));
  return Join("institution-key", public_key);
}

Key AuditStream() { return KeyFactory::Make(std::string(kPrefix) + "audit"); }

Result<Key> WorkflowRun(std::string_view run_id) {
  FEDRX_RETURN_IF_ERROR(ValidateId(run_id, "run_id"));
  return KeyFactory::Make(std::string(kPrefix) + "orchestrator:run:" + std::string(run_id));
}

Result<Key> WorkflowStepOutput(std::string_view run_id, std::string_view step_id) {
  FEDRX_RETURN_IF_ERROR(ValidateId(run_id, "run_id"));
  FEDRX_RETURN_IF_ERROR(ValidateId(step_id, "step_id"));
  return KeyFactory::Make(std::string(kPrefix) + "orchestrator:run:" + std::string(run_id) +
                          ":step:" + std::string(step_id));
}

Key WorkflowRunIndex() { return KeyFactory::Make(std::string(kPrefix) + "orchestrator:runs"); }

Key WorkflowActiveRuns() { return KeyFactory::Make(std::string(kPrefix) + "orchestrator:active"); }

Result<Key> Report(std::string_view report_id) {
  FEDRX_RETURN_IF_ERROR(ValidateId(report_id, "report_id"));
  return Join("report", report_id);
}

Key ReportIndex() { return KeyFactory::Make(std::string(kPrefix) + "reports"); }

}  // namespace keys

Key TestKey(std::string_view suffix) {
  return KeyFactory::Make(std::string(kPrefix) + "test:" + std::string(suffix));
}

}  // namespace fedrx::core
