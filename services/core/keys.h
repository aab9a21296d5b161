// Typed Redis key builders: the only place key names are spelled. Ids are
// validated ([A-Za-z0-9._-], 1..64 bytes) so no input can forge another key.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "services/core/status.h"

namespace fedrx::core {

// A Redis key built by one of the functions in `keys`.
class Key {
 public:
  const std::string& str() const { return s_; }
  bool operator==(const Key& o) const { return s_ == o.s_; }
  bool operator<(const Key& o) const { return s_ < o.s_; }

 private:
  explicit Key(std::string s) : s_(std::move(s)) {}
  friend struct KeyFactory;
  std::string s_;
};

// Checks an external id; the error names `what` (e.g. "RegisterSite.site_id").
Status ValidateId(std::string_view id, std::string_view what);

namespace keys {
// Hash of one site's registration record.
Result<Key> Site(std::string_view site_id);
// Set of every registered site id.
Key SiteIndex();
// Hash of one study's spec and state.
Result<Key> Study(std::string_view study_id);
// Set of every study id.
Key StudyIndex();
// Set of the site ids a study names (the institutions that joined it); the
// gateway admits a site's study messages only for studies that name it.
Result<Key> StudySites(std::string_view study_id);
// Hash of one round of a study.
Result<Key> Round(std::string_view study_id, std::uint32_t round);
// Hash of a round's metrics (name -> value).
Result<Key> RoundMetrics(std::string_view study_id, std::uint32_t round);
// Raw float32 weights of a model version, and its metadata hash.
Result<Key> ModelWeights(std::string_view study_id, std::uint32_t version);
Result<Key> ModelMeta(std::string_view study_id, std::uint32_t version);
// Hash of a model version's calibration (score histograms, embedding
// moments, domain histogram; see coordinator/study_store.h).
Result<Key> ModelCalibration(std::string_view study_id, std::uint32_t version);
// String: the id of the coordinator replica that drives a study, with an
// expiry (a lease; see services/coordinator/study_leases.h).
Result<Key> CoordinatorLease(std::string_view study_id);
// String: a coordinator replica's liveness record (its id, with an expiry
// it renews), by which replicas tell a lease's holder is alive.
Result<Key> CoordinatorReplica(std::string_view replica_id);
// Hash of a service's liveness record (used by health checks).
Result<Key> ServiceHeartbeat(std::string_view service);
// Hash of one enrolled institution (name, role, status, public key, times).
Result<Key> Institution(std::string_view institution_id);
// Set of every enrolled institution id.
Key InstitutionIndex();
// String: the id of the institution a CURVE public key was enrolled for.
// `public_key` must be a Z85 CURVE key (40 characters; see CheckCurveKey).
Result<Key> InstitutionByKey(std::string_view public_key);
// Stream of the tamper-evident audit trail (see services/security/audit_log.h).
Key AuditStream();
// String: one workflow run's record (JSON; see services/orchestrator/engine.h).
Result<Key> WorkflowRun(std::string_view run_id);
// String: the output JSON of one step of a workflow run.
Result<Key> WorkflowStepOutput(std::string_view run_id, std::string_view step_id);
// Set of every workflow run id.
Key WorkflowRunIndex();
// Set of the workflow runs not yet finished (the orchestrator resumes them).
Key WorkflowActiveRuns();
// Hash of one report (fields info, html, json; see services/report).
Result<Key> Report(std::string_view report_id);
// Set of every report id.
Key ReportIndex();
}  // namespace keys

// Test-only escape hatch for conformance suites: a key under "fedrx:test:".
Key TestKey(std::string_view suffix);

}  // namespace fedrx::core
