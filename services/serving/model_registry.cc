#include "services/serving/model_registry.h"

#include <utility>

#include "services/coordinator/study_store.h"
#include "services/core/keys.h"
#include "services/ml/study_spec.h"

namespace fedrx::serving {
namespace {

std::string Describe(const ml::NetSpec& net) {
  std::string hidden;
  for (std::size_t i = 0; i < net.hidden.size(); ++i) {
    if (i > 0) hidden += ",";
    hidden += std::to_string(net.hidden[i]);
  }
  return "input " + std::to_string(net.input_dim) + ", hidden " + hidden + ", tasks " +
         std::to_string(net.num_tasks);
}

}  // namespace

core::Result<ModelRegistry::Head> ModelRegistry::Latest(const std::string& study) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Study(study));
  coordinator::StudyStore studies(store_);
  core::Result<coordinator::StudyRecord> record = studies.Load(study);
  if (!record.ok()) {
    const core::Status& s = record.status();
    // The coordinator's NotFound names the field; a server's operator needs the key.
    if (s.code() == core::StatusCode::kNotFound) {
      return core::NotFound("no study '" + study + "' in the registry", key.str());
    }
    return s.where().empty() ? core::Status(s.code(), s.message(), key.str()) : s;
  }
  Head head;
  head.version = record->model_version;
  head.spec = std::move(record->spec);
  if (head.spec.study_id != study) {
    return core::Status(core::StatusCode::kDataLoss,
                        "stored spec names study '" + head.spec.study_id + "'", key.str());
  }
  return head;
}

core::Result<std::vector<float>> ModelRegistry::Weights(const std::string& study,
                                                        std::uint32_t version,
                                                        const ml::NetSpec& net) {
  FEDRX_RETURN_IF_ERROR(ml::ValidateSpec(net));
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::ModelWeights(study, version));
  coordinator::StudyStore studies(store_);
  FEDRX_ASSIGN_OR_RETURN(std::vector<float> weights, studies.LoadModel(study, version));
  const std::size_t expected = ml::ParameterCount(net);
  if (weights.size() != expected) {
    return core::Status(core::StatusCode::kDataLoss,
                        "model version " + std::to_string(version) + " holds " +
                            std::to_string(weights.size()) + " values; the study's network (" +
                            Describe(net) + ") has " + std::to_string(expected),
                        key.str());
  }
  if (core::Status valid = ml::ValidateParameters(net, weights); !valid.ok()) {
    return core::Status(core::StatusCode::kDataLoss,
                        "model version " + std::to_string(version) + ": " + valid.message() +
                            (valid.where().empty() ? "" : " (" + valid.where() + ")"),
                        key.str());
  }
  return weights;
}

core::Result<StoredModel> ModelRegistry::LoadLatest(const std::string& study) {
  FEDRX_ASSIGN_OR_RETURN(Head head, Latest(study));
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::Study(study));
  StoredModel m;
  m.study = study;
  m.version = head.version;
  m.spec = std::move(head.spec);
  if (m.spec.private_heads) {
    return core::FailedPrecondition("study '" + study +
                                        "' trains private heads: the platform holds only the "
                                        "shared trunk, no task head to serve",
                                    key.str());
  }
  m.net = ml::NetSpecFromStudy(m.spec);
  if (m.spec.tasks.size() != m.net.num_tasks) {
    return core::Status(core::StatusCode::kDataLoss,
                        "stored spec names " + std::to_string(m.spec.tasks.size()) +
                            " tasks but its network has " + std::to_string(m.net.num_tasks) +
                            " outputs",
                        key.str());
  }
  if (core::Status valid = ml::ValidateSpec(m.net); !valid.ok()) {
    return core::Status(core::StatusCode::kDataLoss, "stored spec: " + valid.message(), key.str());
  }
  FEDRX_ASSIGN_OR_RETURN(m.weights, Weights(study, m.version, m.net));
  return m;
}

core::Result<std::optional<coordinator::VersionCalibration>> ModelRegistry::Calibration(
    const std::string& study, std::uint32_t version) {
  FEDRX_ASSIGN_OR_RETURN(core::Key key, core::keys::ModelCalibration(study, version));
  coordinator::StudyStore studies(store_);
  core::Result<std::optional<coordinator::VersionCalibration>> c =
      studies.LoadCalibration(study, version);
  if (!c.ok()) {
    const core::Status& s = c.status();
    return s.where().empty() ? core::Status(s.code(), s.message(), key.str()) : s;
  }
  if (c->has_value() && (*c)->version != version) {
    return core::Status(core::StatusCode::kDataLoss,
                        "calibration stored for version " + std::to_string(version) +
                            " names version " + std::to_string((*c)->version),
                        key.str());
  }
  return c;
}

}  // namespace fedrx::serving
