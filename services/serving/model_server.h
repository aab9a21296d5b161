// ModelServer: the models the ML domain services answer with. Holds one
// immutable ServedModel snapshot per study, replaced whole when Refresh()
// finds a newer version in the registry (or the served version's calibration
// appears); a prediction keeps the snapshot it started with, so a switch
// never fails or mixes a request. Structures are
// featurised as the study's sites prepared them (same standardisation,
// fingerprint and consortium key; the spec's preparation hash is checked).
// Thread-safe: Predict/Current from any thread; Refresh from one thread at a
// time (it uses the registry's StateStore, which belongs to that thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "messages/codec/message.h"
#include "services/core/metrics.h"
#include "services/core/status.h"
#include "services/ingest/compounds.h"
#include "services/ml/chem.h"
#include "services/ml/dataset.h"
#include "services/ml/domain.h"
#include "services/ml/model.h"
#include "services/serving/conformal.h"
#include "services/serving/featurize.h"
#include "services/serving/model_registry.h"

namespace fedrx::serving {

struct ServingOptions {
  // The studies served (their ids bound the metric labels).
  std::vector<std::string> studies;
  // The consortium key file the sites prepared with (ingest's ConsortiumKey
  // file); empty when the sites did not scramble fingerprints.
  std::string key_file;
  // Fold count the sites' ingest used: part of the preparation hash only.
  std::uint32_t folds = 5;
  // Structures with more heavy atoms are refused before parsing.
  std::size_t max_heavy_atoms = 200;
  // Structures per Predict call; a larger batch is refused whole.
  std::size_t max_batch = 4096;
  // Threads of one request: featurisation and the forward pass (ml::Predict).
  int threads = 1;
};

// A model version's calibration as served: the sites' aggregated statistics
// (coordinator::VersionCalibration of the same version), checked against the
// model and indexed for conformal p-values and the applicability domain.
struct ServedCalibration {
  std::uint32_t version = 0;  // the model version the statistics were computed on
  std::uint64_t samples = 0;  // validation rows behind the histograms
  // Per task of ServedModel::tasks(), same order; nullopt when the
  // calibration has no usable histogram for the task (see notes).
  std::vector<std::optional<MondrianCalibration>> tasks;
  // The training rows' embedding reference; nullopt without moments.
  std::optional<ml::EmbeddingReference> reference;
  // The validation rows' domain scores; nullopt when not stored (stage 1 of
  // the evaluation did not complete) or without a reference.
  std::optional<DomainCalibration> domain;
  // Why a part above is missing, one line each (for answers and logs).
  std::vector<std::string> notes;
};

// Checks `c` against a model with `tasks` outputs and a last hidden layer of
// `embedding_dims` units. A part that does not fit (a task's histogram, the
// moments, the domain histogram) is left out with a note; kDataLoss only when
// `c` is for another version than `version`.
core::Result<ServedCalibration> MakeServedCalibration(const coordinator::VersionCalibration& c,
                                                      std::uint32_t version,
                                                      const std::vector<std::string>& tasks,
                                                      std::size_t embedding_dims);

// One model version as served: immutable once built, shared by every
// prediction that started on it.
struct ServedModel {
  std::string study;
  std::uint32_t version = 0;
  codec::StudySpec spec;  // tasks name the outputs, in order
  ml::NetSpec net;
  std::vector<float> weights;
  Featurizer featurizer;         // the sites' preparation for this study
  std::string preparation_hash;  // this server's, for the study's options and key
  // The version's calibration; null while none is stored for it (answers
  // are then uncalibrated, and `uncalibrated_reason` says why).
  std::shared_ptr<const ServedCalibration> calibration;
  std::string uncalibrated_reason;

  const std::vector<std::string>& tasks() const { return spec.tasks; }
};

// The answer for one structure of a request.
struct StructurePrediction {
  // OK, or why this structure was refused (kInvalidArgument; `where` is
  // "smiles[i]"). The other fields are empty when not OK.
  core::Status status;
  std::string canonical_smiles;
  // One probability per task, in ServedModel::tasks() order.
  std::vector<float> probabilities;
  // The trunk's last hidden layer (after ReLU), hidden.back() values; only
  // when asked for (PredictOptions::embeddings).
  std::vector<float> embedding;
};

struct PredictOptions {
  bool embeddings = false;
};

struct PredictionBatch {
  std::shared_ptr<const ServedModel> model;  // the snapshot every row used
  std::uint32_t version = 0;                 // model->version
  std::vector<StructurePrediction> results;  // one per input structure, same order
};

// Runs `model` on `smiles`: featurises each structure (a bad one gets its own
// error and does not stop the others), then one forward pass over all the
// valid rows, each on up to `threads` threads (results do not depend on
// it). Errors for the whole batch: kInvalidArgument when it is empty
// or over `max_batch`. Pure; thread-safe.
core::Result<PredictionBatch> PredictWith(std::shared_ptr<const ServedModel> model,
                                          const std::vector<std::string>& smiles,
                                          const PredictOptions& options = {},
                                          std::size_t max_batch = 4096, int threads = 1);

class ModelServer {
 public:
  // Reads the key file (kNotFound/kInvalidArgument naming it) and checks the
  // options; loads no model (call Refresh). `registry` and `metrics` are not
  // owned and must outlive the server. Metrics, prefixed by the metrics'
  // service: model_version{study} (gauge: the version in use, -1 while none),
  // model_switches_total{study}, model_load_failures_total{study},
  // model_calibrated{study} (gauge: 1 when the version in use is calibrated),
  // calibration_load_failures_total{study}.
  static core::Result<std::unique_ptr<ModelServer>> Create(ServingOptions options,
                                                           ModelRegistry& registry,
                                                           core::Metrics& metrics);

  // For each served study, loads the registry's latest version when it is
  // newer than the one served (or none is) and swaps it in, with its
  // calibration when one is stored. When the served version has no
  // calibration yet (or one without the domain histogram), looks for it
  // again and, once found, swaps in a new snapshot of the same version that
  // carries it. A calibration that cannot be read (kDataLoss) leaves the
  // model served uncalibrated; its error is returned and counted. A study whose
  // load fails keeps serving the version it had; its error is returned (the
  // first one, with the others' count in the message) and counted, and the
  // other studies are still refreshed. kFailedPrecondition when a study's
  // spec carries a preparation hash this server's preparation does not
  // produce (that study is not served). Blocks on the store; call it
  // periodically from one thread.
  core::Status Refresh();

  // The snapshot in use for `study`; kNotFound when it is not one of the
  // served studies, kUnavailable (with the last load error) while it has no
  // model.
  core::Result<std::shared_ptr<const ServedModel>> Current(const std::string& study) const;

  // PredictWith(Current(study), ...).
  core::Result<PredictionBatch> Predict(const std::string& study,
                                        const std::vector<std::string>& smiles,
                                        const PredictOptions& options = {}) const;

  const ServingOptions& options() const { return options_; }

 private:
  ModelServer(ServingOptions options, ingest::ConsortiumKey key, ModelRegistry& registry,
              core::Metrics& metrics);
  core::Result<std::shared_ptr<ServedModel>> Build(StoredModel stored);
  // Loads and checks the calibration of `model`'s version into `out`
  // (calibration or uncalibrated_reason). Non-OK when the store fails or
  // holds an unreadable calibration.
  core::Status AttachCalibration(ServedModel& out);
  // Whether Refresh should look for `model`'s calibration again.
  static bool WantsCalibration(const ServedModel& model);
  core::Result<std::string> PreparationHashFor(const ml::FingerprintOptions& fp);

  struct Slot {
    std::shared_ptr<const ServedModel> model;
    core::Status last_error;
    core::GaugeRef version;
    core::CounterRef switches;
    core::CounterRef failures;
    core::GaugeRef calibrated;
    core::CounterRef calibration_failures;
  };

  const ServingOptions options_;
  const ingest::ConsortiumKey key_;
  ModelRegistry& registry_;
  std::mutex refresh_mu_;                          // one Refresh at a time; guards hash_cache_
  std::map<std::string, std::string> hash_cache_;  // by fingerprint options
  mutable std::mutex mu_;                          // guards slots_' model and last_error
  std::map<std::string, Slot> slots_;
};

}  // namespace fedrx::serving
