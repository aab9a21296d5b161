// Calibrated predictions: a ModelServer's probabilities with each task's
// Mondrian conformal p-values and prediction set, and each structure's
// applicability-domain assessment, as the ML domain services answer them
// (codec::StructurePrediction). One snapshot answers the whole request.
// Pure functions over thread-safe servers; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/status.h"
#include "services/serving/model_server.h"

namespace fedrx::serving {

// A structure is out of the applicability domain when fewer than 1 % of the
// sites' validation rows lie at least as far from the training rows'
// embedding reference (domain p-value < 0.01): a conformal outlier test at
// level 1 %, so about 1 in 100 structures like the validation rows is
// flagged by chance, and a structure flagged is unlike 99 % of them.
inline constexpr double kOutOfDomainPValue = 0.01;

struct CalibratedBatch {
  std::shared_ptr<const ServedModel> model;  // the snapshot every structure used
  codec::ModelProvenance provenance;
  std::vector<std::string> tasks;                   // the answered tasks, in order
  std::vector<codec::StructurePrediction> results;  // one per input, same order
};

// Predicts `smiles` with the current model of `study` and calibrates each
// answer: per task in `tasks` (empty: all of the model's, in its order) the
// probability, conformal p-values, prediction set at `confidence`,
// credibility and confidence; per structure the domain score, p-value and
// flag (kOutOfDomainPValue). Embeddings come from the same forward pass.
// Without a calibration for the version, tasks are answered with
// calibrated = false and set "both", and provenance.method says why.
// Errors for the whole request (`where` prefixed by `request`, e.g.
// "PredictToxicity.tasks[1]"): kInvalidArgument for an unknown or repeated
// task, confidence outside (0, 1), no structures or more than the server's
// max_batch; ModelServer::Current's kNotFound/kUnavailable (naming the
// study) when there is no model. A structure that cannot be featurised gets
// its own error (error_code, error, error_where "smiles[i]"); the others are
// still answered.
core::Result<CalibratedBatch> PredictCalibrated(const ModelServer& server, const std::string& study,
                                                const std::vector<std::string>& smiles,
                                                const std::vector<std::string>& tasks,
                                                double confidence,
                                                std::string_view request = "PredictToxicity");

// The same with a given snapshot (tests, and callers holding one already).
core::Result<CalibratedBatch> PredictCalibratedWith(std::shared_ptr<const ServedModel> model,
                                                    const std::vector<std::string>& smiles,
                                                    const std::vector<std::string>& tasks,
                                                    double confidence, std::string_view request,
                                                    std::size_t max_batch, int threads);

// The provenance of answers from `model`: study, version, preparation hash,
// calibration rows and version, and one line on the method (or why the
// answers are uncalibrated).
codec::ModelProvenance ProvenanceOf(const ServedModel& model);

}  // namespace fedrx::serving
