// ModelRegistry: the federated models the coordinator has published, read
// from the StateStore exactly as the coordinator wrote them (through its
// StudyStore): a study's latest model version, its StudySpec, the weights
// of a version, checked against the architecture the spec describes, and the
// calibration statistics stored for a version.
// Not thread-safe (a StateStore belongs to one thread): one per thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "messages/codec/message.h"
#include "services/coordinator/study_store.h"
#include "services/core/state_store.h"
#include "services/core/status.h"
#include "services/ml/model.h"

namespace fedrx::serving {

// One published model version of a study, weights already checked.
struct StoredModel {
  std::string study;
  std::uint32_t version = 0;
  codec::StudySpec spec;
  ml::NetSpec net;  // NetSpecFromStudy(spec)
  std::vector<float> weights;
};

class ModelRegistry {
 public:
  // `store` is not owned and must outlive the registry.
  explicit ModelRegistry(core::StateStore& store) : store_(store) {}

  // The latest model version of `study` and its spec. Errors (their `where`
  // names the Redis key): kNotFound when the study does not exist, kDataLoss
  // when its stored spec is unreadable, kInvalidArgument for a bad id,
  // kUnavailable when the store does not answer. Blocks on the store.
  struct Head {
    std::uint32_t version = 0;
    codec::StudySpec spec;
  };
  core::Result<Head> Latest(const std::string& study);

  // The weights of `version` of a study whose network is `net`. kNotFound
  // when the version is not stored; kDataLoss when the blob is not a whole
  // number of float32 values, its count disagrees with ParameterCount(net),
  // or a value is not finite; kInvalidArgument when `net` itself is invalid.
  // Blocks on the store.
  core::Result<std::vector<float>> Weights(const std::string& study, std::uint32_t version,
                                           const ml::NetSpec& net);

  // Latest() then Weights() of that version. Also kFailedPrecondition for a
  // private-heads study (the platform holds only the trunk: no head to serve)
  // and kDataLoss when the spec's tasks disagree with its network's outputs.
  core::Result<StoredModel> LoadLatest(const std::string& study);

  // The calibration the coordinator stored for `version` of a study
  // (StudyStore::LoadCalibration); nullopt while there is none. kDataLoss
  // (naming the key) when it is unreadable or names another version;
  // kUnavailable when the store does not answer. Blocks on the store.
  core::Result<std::optional<coordinator::VersionCalibration>> Calibration(const std::string& study,
                                                                           std::uint32_t version);

 private:
  core::StateStore& store_;
};

}  // namespace fedrx::serving
