#include "services/serving/calibrated.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace fedrx::serving {
namespace {

// ProvenanceOf's text states the threshold.
static_assert(kOutOfDomainPValue == 0.01);

std::string Field(std::string_view request, const std::string& field) {
  return std::string(request) + "." + field;
}

// The model's output index of each wanted task; all of them when none is named.
core::Result<std::vector<std::size_t>> ResolveTasks(const ServedModel& model,
                                                    const std::vector<std::string>& wanted,
                                                    std::string_view request) {
  const std::vector<std::string>& known = model.tasks();
  std::vector<std::size_t> out;
  if (wanted.empty()) {
    for (std::size_t t = 0; t < known.size(); ++t) out.push_back(t);
    return out;
  }
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const std::string where = Field(request, "tasks[" + std::to_string(i) + "]");
    const auto it = std::find(known.begin(), known.end(), wanted[i]);
    if (it == known.end()) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      return core::InvalidArgument("unknown task '" + wanted[i] + "' for study '" + model.study +
                                       "' (its tasks: " + list + ")",
                                   where);
    }
    const std::size_t index = static_cast<std::size_t>(it - known.begin());
    if (std::find(out.begin(), out.end(), index) != out.end()) {
      return core::InvalidArgument("task '" + wanted[i] + "' is listed twice", where);
    }
    out.push_back(index);
  }
  return out;
}

void SetError(codec::StructurePrediction& out, const core::Status& s) {
  out.error_code = core::StatusCodeName(s.code());
  out.error = s.message();
  out.error_where = s.where();
}

codec::TaskPrediction Uncalibrated(const std::string& task, double probability) {
  codec::TaskPrediction p;
  p.task = task;
  p.probability = probability;
  p.prediction_set = "both";
  p.calibrated = false;
  return p;
}

}  // namespace

codec::ModelProvenance ProvenanceOf(const ServedModel& model) {
  codec::ModelProvenance p;
  p.study_id = model.study;
  p.model_version = model.version;
  p.preparation_hash = model.preparation_hash;
  if (!model.calibration) {
    p.method =
        "uncalibrated: " + model.uncalibrated_reason +
        "; probabilities only, every prediction set is \"both\" and no domain flag is raised";
    return p;
  }
  const ServedCalibration& c = *model.calibration;
  p.calibration_samples = c.samples;
  p.calibration_version = c.version;
  p.method = "Mondrian inductive conformal prediction on the sites' validation folds (" +
             std::to_string(c.samples) + " rows, model version " + std::to_string(c.version) +
             ", class-conditional score histograms summed across sites)";
  if (c.domain) {
    p.method +=
        "; applicability domain: distance of the trunk embedding from the training rows' "
        "summed moments, conformal p-value against " +
        std::to_string(c.domain->rows()) + " validation rows, out of domain when p < 0.01";
  } else {
    p.method += "; applicability domain not flagged";
  }
  for (const std::string& note : c.notes) p.method += "; " + note;
  return p;
}

core::Result<CalibratedBatch> PredictCalibratedWith(std::shared_ptr<const ServedModel> model,
                                                    const std::vector<std::string>& smiles,
                                                    const std::vector<std::string>& tasks,
                                                    double confidence, std::string_view request,
                                                    std::size_t max_batch, int threads) {
  if (!model) return core::FailedPrecondition("no model", "model");
  FEDRX_RETURN_IF_ERROR(ValidateConfidence(confidence, Field(request, "confidence")));
  FEDRX_ASSIGN_OR_RETURN(std::vector<std::size_t> columns, ResolveTasks(*model, tasks, request));
  if (smiles.empty()) return core::InvalidArgument("no structures", Field(request, "smiles"));
  if (smiles.size() > max_batch) {
    return core::InvalidArgument(std::to_string(smiles.size()) + " structures; at most " +
                                     std::to_string(max_batch) + " per request",
                                 Field(request, "smiles"));
  }
  const ServedCalibration* calibration = model->calibration.get();
  PredictOptions options;
  options.embeddings = calibration != nullptr && calibration->reference.has_value();
  FEDRX_ASSIGN_OR_RETURN(PredictionBatch batch,
                         PredictWith(model, smiles, options, max_batch, threads));

  CalibratedBatch out;
  out.model = batch.model;
  out.provenance = ProvenanceOf(*model);
  for (std::size_t c : columns) out.tasks.push_back(model->tasks()[c]);
  out.results.resize(smiles.size());
  for (std::size_t i = 0; i < smiles.size(); ++i) {
    const StructurePrediction& in = batch.results[i];
    codec::StructurePrediction& r = out.results[i];
    r.input = smiles[i];
    r.domain.threshold = kOutOfDomainPValue;
    if (!in.status.ok()) {
      SetError(r, in.status);
      continue;
    }
    r.canonical_smiles = in.canonical_smiles;
    for (std::size_t c : columns) {
      const std::string& task = model->tasks()[c];
      const double probability = in.probabilities[c];
      const std::optional<MondrianCalibration>* task_calibration =
          calibration ? &calibration->tasks[c] : nullptr;
      if (!task_calibration || !task_calibration->has_value()) {
        r.tasks.push_back(Uncalibrated(task, probability));
        continue;
      }
      core::Result<LabelPValues> p = (*task_calibration)->PValues(probability);
      if (!p.ok()) {
        SetError(r,
                 core::Internal("the model gave a non-numeric probability for task '" + task + "'",
                                "smiles[" + std::to_string(i) + "]"));
        r.tasks.clear();
        break;
      }
      codec::TaskPrediction t;
      t.task = task;
      t.probability = probability;
      t.p_negative = p->negative;
      t.p_positive = p->positive;
      t.prediction_set = std::string(PredictionSet(*p, confidence));
      t.credibility = Credibility(*p);
      t.confidence = Confidence(*p);
      t.calibrated = true;
      r.tasks.push_back(std::move(t));
    }
    if (!r.error_code.empty()) continue;
    // Domain: the score needs the reference; the p-value and flag need the
    // validation rows' histogram too. Without them: in domain, uncalibrated.
    r.domain.p_value = 1;
    r.domain.in_domain = true;
    r.domain.calibrated = false;
    if (calibration && calibration->reference) {
      const double score = ml::DomainScore(in.embedding, *calibration->reference);
      if (std::isnan(score)) {
        r.tasks.clear();
        SetError(r, core::Internal("the domain score of this structure is not a number",
                                   "smiles[" + std::to_string(i) + "]"));
        continue;
      }
      r.domain.score = score;
      if (calibration->domain) {
        const double p = *calibration->domain->PValue(score);
        r.domain.p_value = p;
        r.domain.in_domain = p >= kOutOfDomainPValue;
        r.domain.calibrated = true;
      }
    }
  }
  return out;
}

core::Result<CalibratedBatch> PredictCalibrated(const ModelServer& server, const std::string& study,
                                                const std::vector<std::string>& smiles,
                                                const std::vector<std::string>& tasks,
                                                double confidence, std::string_view request) {
  // One snapshot for the whole request: a switch during it cannot mix versions.
  FEDRX_ASSIGN_OR_RETURN(std::shared_ptr<const ServedModel> model, server.Current(study));
  return PredictCalibratedWith(std::move(model), smiles, tasks, confidence, request,
                               server.options().max_batch, server.options().threads);
}

}  // namespace fedrx::serving
