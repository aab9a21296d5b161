// The clinical service's request logic: AssessClinical -> ClinicalAssessment.
// Per structure: the ClinTox tasks (CT_TOX, FDA_APPROVED) of the federated
// ClinTox model with conformal p-values and the applicability-domain flag
// (serving::PredictCalibrated), and the probability of success of each
// clinical phase transition for the requested therapeutic area, the
// published base rates (base_rates.h) adjusted by the structure's predicted
// CT_TOX probability through the likelihood ratio estimated from the
// platform's aggregated CT_TOX calibration histogram (adjust.h); and the
// side-effect profile when a side-effect study is configured.
// Thread-safe: Assess is called from the RequestService's workers; the
// ModelServer is refreshed on another thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "messages/codec/message.h"
#include "services/clinical/adjust.h"
#include "services/core/config.h"
#include "services/core/metrics.h"
#include "services/core/status.h"
#include "services/serving/conformal.h"
#include "services/serving/model_server.h"

namespace fedrx::clinical {

// The ClinTox tasks the service needs from its study.
inline constexpr char kRiskTask[] = "CT_TOX";
inline constexpr char kApprovalTask[] = "FDA_APPROVED";

// Why no side-effect profile is served when clinical.side_effect_study is unset.
inline constexpr char kNoSideEffectStudy[] =
    "no side-effect study is configured (clinical.side_effect_study): the 27 organ-class "
    "profile needs a federated study trained on SIDER-like labels, and SIDER itself is "
    "CC BY-NC-SA (non-commercial), so the platform ships none";

struct ClinicalOptions {
  std::string study = "clintox-demo";  // served; must have tasks CT_TOX and FDA_APPROVED
  std::string side_effect_study;       // served too when set; all its tasks answered
  std::size_t max_structures = 1000;   // per request (1..4096)
  int lr_bins = 5;                     // HistogramLrOptions::bins (2..100)
};

// clinical.study, clinical.side_effect_study, clinical.max_structures,
// clinical.lr_bins. kInvalidArgument naming the key for a bad value or id.
core::Result<ClinicalOptions> ClinicalOptionsFrom(const core::Config& config);

// A task's calibration histogram as the sites summed it, rebuilt from the
// served cumulative counts (bin by bin, exact).
ml::ScoreHistogram HistogramOf(const serving::MondrianCalibration& calibration);

class ClinicalHandler {
 public:
  // `server` serves options.study (and side_effect_study) and, like
  // `metrics`, is not owned and outlives the handler. kInvalidArgument for
  // out-of-range options. Metrics (prefixed by the metrics' service):
  // structures_total{domain} with domain "in" | "out" (the domain flag),
  // "unassessed" (no domain statistics for the model version) or "refused"
  // (the structure could not be read), per answered structure.
  static core::Result<std::unique_ptr<ClinicalHandler>> Create(ClinicalOptions options,
                                                               const serving::ModelServer& server,
                                                               core::Metrics& metrics);

  // Answers one request. Errors for the whole request (nothing counted),
  // `where` naming the field: kInvalidArgument for an unknown therapeutic
  // area (listing the known ones; "AssessClinical.therapeutic_area"), no
  // structures or more than max_structures ("AssessClinical.smiles"),
  // confidence outside (0, 1) ("AssessClinical.confidence"); kUnavailable
  // naming the study while it has no model; kFailedPrecondition when the
  // study lacks CT_TOX or FDA_APPROVED. An empty, unreadable or oversized
  // structure gets its own error (and an empty success entry); the others are
  // answered. All structures are answered by one model version.
  core::Result<codec::ClinicalAssessment> Assess(const codec::AssessClinical& request) const;

 private:
  ClinicalHandler(ClinicalOptions options, const serving::ModelServer& server,
                  core::Metrics& metrics);

  const ClinicalOptions options_;
  const serving::ModelServer& server_;
  core::CounterRef in_, out_, unassessed_, refused_;
};

}  // namespace fedrx::clinical
